# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 — The embedding space: t-SNE with numbers beside it (claim C5)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# The abstract says that t-SNE plots of the embedding space support its argument: an
# angular margin loss with an auxiliary classification task organises the normal sounds by
# the auxiliary classes, in compact groups around their centres, and anomalous sounds fall
# away from those centres — unlike one-class (Deep SVDD) and generative (autoencoder)
# models. Only the abstract is public to us; the precise statement below is **our
# reconstruction**. A t-SNE picture alone proves little (its layout depends on perplexity and
# seed), so every picture here has numbers beside it, computed in the embedding space itself.
#
# **Claim C5.** On synthetic machine sounds in noise and on real valve recordings, the
# embeddings of sub-cluster AdaCos (trained on the auxiliary task) have (a) a higher kNN
# class purity of the normal test clips (class = the auxiliary class: machine and attribute
# for the synthetic clips, attribute for the valve clips) and (b) a better separation of normal and
# anomalous test clips by the distance to the nearest centre (AUC) than the embeddings of
# Deep SVDD and the autoencoder bottleneck.
#
# **Numbers.** For each system, in the geometry its anomaly score uses (cosine for the
# angular model, Euclidean for Deep SVDD and the autoencoder):
#
# * *kNN class purity*: for each normal test clip, the fraction of its 5 nearest other
#   normal test clips with the same auxiliary class, averaged (chance ~ 1/6 for the six
#   synthetic classes, ~ 1/4 for the four valve attributes);
# * *silhouette* of the normal test clips grouped by class (scikit-learn; in [-1, 1]);
# * *distance to the nearest centre*: angular — cosine distance to the nearest of the
#   k-means centres of the training embeddings (the model's own back-end,
#   `scoring.kmeans_centres`); Deep SVDD — Euclidean distance to its fixed centre c;
#   autoencoder — Euclidean distance to the nearest of k-means centres (one per auxiliary
#   class) of the training bottleneck codes (scikit-learn). Reported as distributions for
#   normal vs anomalous clips and as the AUC of the distance as an anomaly score.
#
# **Data and licence.** Synthetic clips from `data.synthetic.machine_sounds`; real clips:
# DCASE 2023 Challenge Task 2 development set, machine `valve`, section 00 (from MIMII DG),
# **Creative Commons Attribution 4.0 International (CC BY 4.0)**; please cite K. Dohi et
# al., "MIMII DG: Sound dataset for malfunctioning industrial machine investigation and
# inspection for domain generalization task", DCASE 2022 Workshop, and K. Dohi et al.,
# "Description and discussion on DCASE 2023 challenge task 2: first-shot unsupervised
# anomalous sound detection for machine condition monitoring", DCASE 2023 Workshop. The 200
# clips are those of `dev_valve.zip` (https://zenodo.org/record/7882613).

# %%
import dataclasses

import jax
import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from asdtheory import evaluation, scoring
from asdtheory.data import dcase
from asdtheory.data.synthetic import ANOMALY_TYPES, machine_sounds
from asdtheory.detect import Detector, DetectorConfig, log_mels
from asdtheory.detect.dcase import DCASE_DETECTOR, RunConfig, run
from asdtheory.repro.claims import claim, fmt
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "05_embedding_space"
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
METHODS = ("subcluster-adacos", "deep-svdd", "autoencoder")
LABELS = {"subcluster-adacos": "sub-cluster AdaCos", "deep-svdd": "Deep SVDD",
          "autoencoder": "autoencoder"}
if MODE == "ci":
    TRAIN_PER_CLASS, TEST_PER_CLASS, SYN_EPOCHS, VALVE_EPOCHS = 40, 10, 20, 10
else:
    TRAIN_PER_CLASS, TEST_PER_CLASS, SYN_EPOCHS, VALVE_EPOCHS = 200, 40, 40, 20
K_NEIGHBOURS = 5
print("run mode:", MODE)

# %% [markdown]
# ## The numbers, as functions of the embeddings

# %%
def centre_distances(method, train_z, test_z, system_centre, n_classes):
    """Distance of each test embedding to the nearest centre, in the system's geometry."""
    if method == "deep-svdd":
        return np.linalg.norm(test_z - system_centre, axis=1)
    if method == "autoencoder":
        centres = KMeans(n_classes, n_init=10, random_state=0).fit(train_z).cluster_centers_
        return np.linalg.norm(test_z[:, None] - centres[None], axis=-1).min(axis=1)
    return scoring.nearest_centre_score(test_z, system_centre)


def embedding_numbers(method, train_z, test_z, attribute, is_anomaly, system_centre):
    metric = "cosine" if method == "subcluster-adacos" else "euclidean"
    normal_z, normal_attr = test_z[~is_anomaly], attribute[~is_anomaly]
    nn = NearestNeighbors(n_neighbors=K_NEIGHBOURS + 1, metric=metric).fit(normal_z)
    neighbours = nn.kneighbors(normal_z, return_distance=False)[:, 1:]  # drop the clip itself
    distance = centre_distances(method, train_z, test_z, system_centre, len(set(attribute)))
    return {
        "purity": float(np.mean(normal_attr[neighbours] == normal_attr[:, None])),
        "silhouette": float(silhouette_score(normal_z, normal_attr, metric=metric)),
        "distance": distance,
        "auc": evaluation.auc(is_anomaly, distance),
    }


def print_numbers(name, numbers):
    print(f"{name}: kNN class purity / silhouette / AUC(distance to nearest centre) / "
          "median distance normal -> anomalous")
    for method, n in numbers.items():
        d, a = n["distance"], n["is_anomaly"]
        print(f"  {LABELS[method]:>18}: {fmt(n['purity'])} / {fmt(n['silhouette'])} / "
              f"{fmt(n['auc'])} / {fmt(np.median(d[~a]), 3)} -> {fmt(np.median(d[a]), 3)}")


def tsne_figure(title, embeddings, colourings):
    """One row per system, one column per colouring; t-SNE with a fixed seed."""
    fig, axes = plt.subplots(len(embeddings), len(colourings),
                             figsize=(3.6 * len(colourings), 3.2 * len(embeddings)),
                             constrained_layout=True, squeeze=False)
    for row, (method, z) in enumerate(embeddings.items()):
        xy = TSNE(perplexity=20, init="pca", random_state=0).fit_transform(z)
        for col, (name, (values, marker_of)) in enumerate(colourings.items()):
            ax = axes[row, col]
            for value in sorted(set(values)):
                sel = values == value
                ax.scatter(*xy[sel].T, s=14, marker=marker_of(value), label=str(value),
                           alpha=0.8)
            ax.set_title(f"{LABELS[method]} — {name}", fontsize=10)
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
            ax.legend(fontsize=7, markerscale=0.8, loc="best")
    fig.suptitle(title)
    plt.show()


def distance_figure(title, numbers):
    fig, axes = plt.subplots(1, len(numbers), figsize=(4 * len(numbers), 3),
                             constrained_layout=True)
    for ax, (method, n) in zip(axes, numbers.items(), strict=True):
        d, a = n["distance"], n["is_anomaly"]
        bins = np.linspace(d.min(), d.max(), 25)
        ax.hist(d[~a], bins=bins, alpha=0.6, label="normal")
        ax.hist(d[a], bins=bins, alpha=0.6, label="anomalous")
        ax.set_title(f"{LABELS[method]} (AUC {fmt(n['auc'], 2)})", fontsize=10)
        ax.set_xlabel("distance to nearest centre")
        ax.set_ylabel("test clips")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    plt.show()


# %% [markdown]
# ## Synthetic machine sounds in noise
#
# Three machine types with two attributes each (six auxiliary classes, as in notebook 03),
# 1-second clips mixed with
# synthetic pink noise at 0 dB SNR (`data.synthetic.machine_sounds`). Test clips: normal
# clips and anomalous clips of the three built-in anomaly types (a boosted harmonic, an
# extra line between two harmonics, clicks), strength 1. Systems: `detect.Detector`
# (standardised 32-band log-mels, one window per clip; the angular system's back-end: 6
# k-means centres of the training embeddings).

# %%
# tolerance: abs=0.008; purity, AUCs moved by 0.004 (AVX-512 vs AVX2), x2
k_train, k_test = jax.random.split(jax.random.key(5))
kw = dict(num_machines=3, num_attributes=2, snr_db=0.0)
syn_train = machine_sounds(k_train, clips_per_class=TRAIN_PER_CLASS, **kw)
syn_test = machine_sounds(k_test, clips_per_class=2 * TEST_PER_CLASS, anomaly_fraction=0.5,
                          **kw)
syn_train_mels, syn_test_mels = log_mels(syn_train.waveforms), log_mels(syn_test.waveforms)
config = DetectorConfig(window_frames=syn_train_mels.shape[1], window_hop=1, n_clusters=6,
                        epochs=SYN_EPOCHS)
syn_numbers, syn_embeddings = {}, {}
for i, method in enumerate(METHODS):
    detector = Detector.fit(syn_train_mels, syn_train.label,
                            config=dataclasses.replace(config, method=method),
                            key=jax.random.fold_in(jax.random.key(0), i))
    train_z, test_z = detector.train_embeddings, detector.embed(syn_test_mels)
    centre = (detector.centres[0] if method == "subcluster-adacos" else
              np.asarray(detector.head.centre[...]) if method == "deep-svdd" else None)
    syn_numbers[method] = embedding_numbers(method, train_z, test_z, syn_test.label,
                                            syn_test.is_anomaly, centre)
    syn_numbers[method]["is_anomaly"] = syn_test.is_anomaly
    syn_embeddings[method] = test_z
    print(f"{LABELS[method]:>18}: detection AUC of its own score "
          f"{fmt(evaluation.auc(syn_test.is_anomaly, detector.score(syn_test_mels)))}")
print_numbers("synthetic", syn_numbers)

# %%
syn_kind = np.array([ANOMALY_TYPES[t] if t else "normal" for t in syn_test.anomaly_type])
tsne_figure("Synthetic test clips (0 dB pink noise)", syn_embeddings, {
    "normal / anomaly type": (syn_kind, lambda v: "o" if v == "normal" else "x"),
    "class (machine, attribute)": (np.array([f"m{m} a{a}" for m, a in
                                             zip(syn_test.machine, syn_test.attribute,
                                                 strict=True)]), lambda v: "o"),
})
distance_figure("Synthetic: distance to the nearest centre", syn_numbers)

# %% [markdown]
# ## Real valve recordings
#
# `detect.dcase.run` with the valve mini protocol (60 normal training clips of four attributes
# in two domains; 40 normal and 100 anomalous test clips): 64-band log-mels, windows of 64
# frames every 32 frames, 8 per 10-s clip, each labelled with its clip's attribute; clip
# embedding = mean window embedding (normalised windows for the angular model; the
# bottleneck code for the autoencoder); the angular system's centres are its k-means
# back-end (16 centres of the source-domain training clips plus every target-domain
# training clip). `detect.dcase.run` scores with the official DCASE 2023 rules; its
# official score is printed for context.

# %%
# tolerance: abs=0.07; purity, AUCs moved by 0.034 (AVX-512 vs AVX2), x2
valve_numbers, valve_embeddings = {}, {}
for method in METHODS:
    result = run(RunConfig(data=DATA, seed=0, detector=dataclasses.replace(
        DCASE_DETECTOR, method=method, epochs=VALVE_EPOCHS, progress=False)))
    clips = result.test_clips
    is_anomaly = np.array([c.is_anomaly for c in clips])
    attribute = np.array([c.attribute_key for c in clips])
    centre = (result.detector.centres[0] if method == "subcluster-adacos" else
              np.asarray(result.detector.head.centre[...]) if method == "deep-svdd" else None)
    valve_numbers[method] = embedding_numbers(method, result.train_embeddings,
                                              result.test_embeddings, attribute, is_anomaly,
                                              centre)
    valve_numbers[method]["is_anomaly"] = is_anomaly
    valve_embeddings[method] = result.test_embeddings
    print(f"{LABELS[method]:>18}: official score {fmt(result.official_score)}")
domain = np.array([c.domain for c in clips])
valve_attribute, valve_is_anomaly = attribute, is_anomaly
print_numbers("valve", valve_numbers)

# %%
tsne_figure("Valve test clips (DCASE 2023, section 00)", valve_embeddings, {
    "normal / anomalous": (np.where(valve_is_anomaly, "anomalous", "normal"),
                           lambda v: "x" if v == "anomalous" else "o"),
    "domain": (domain, lambda v: "o"),
    "attribute": (valve_attribute, lambda v: "o"),
})
distance_figure("Valve: distance to the nearest centre", valve_numbers)

# %% [markdown]
# ## Verdict
#
# Decision rule, fixed before the results: **SUPPORTED** if on both data sets sub-cluster
# AdaCos has the highest kNN class purity and the highest AUC of the distance to the
# nearest centre among the three systems. Silhouettes are reported, not decided on.

# %%
# tolerance: abs=0.04; purities, AUCs moved by 0.020 (AVX-512 vs AVX2), x2
checks = {}
for name, numbers in (("synthetic", syn_numbers), ("valve", valve_numbers)):
    for key in ("purity", "auc"):
        rivals = max(numbers[m][key] for m in ("deep-svdd", "autoencoder"))
        checks[f"{name} {key}"] = numbers["subcluster-adacos"][key] > rivals
failed = [k for k, ok in checks.items() if not ok]


def summary(numbers, key):
    return "/".join(fmt(numbers[m][key], 2) for m in METHODS)


record = claim(
    "C5", not failed,
    "kNN purity (AdaCos/SVDD/AE) synthetic " + summary(syn_numbers, "purity") + ", valve "
    + summary(valve_numbers, "purity") + "; nearest-centre AUC synthetic "
    + summary(syn_numbers, "auc") + ", valve " + summary(valve_numbers, "auc")
    + (f"; not best on: {', '.join(failed)}" if failed else ""),
    statement="Angular margin embeddings (sub-cluster AdaCos, auxiliary task) group normal "
              "clips by attribute (kNN purity) and separate anomalies by the distance to the "
              "nearest centre better than Deep SVDD and autoencoder embeddings.",
    figures={name: {m: {k: float(numbers[m][k]) for k in ("purity", "silhouette", "auc")}
                    for m in METHODS}
             for name, numbers in (("synthetic", syn_numbers), ("valve", valve_numbers))},
    notebook=NOTEBOOK,
)

# %% [markdown]
# ## Discussion
#
# **(a) Class structure: as the paper describes.** Sub-cluster AdaCos organises the normal
# test clips by their auxiliary class far better than the other two systems: kNN class
# purity 0.99 on the synthetic clips (Deep SVDD 0.82, autoencoder 0.87) with a silhouette of
# 0.76. On the valve clips it is only nominally ahead: 0.28 against 0.27 and 0.24, where
# chance with 10 clips per attribute and 5 neighbours is 9/39 = 0.23, and no system reaches
# a positive silhouette: 60 training clips and 10 epochs give only a weak attribute
# structure.
#
# **(b) Anomalies away from the centres: not observed.** The distance to the nearest centre
# does not separate anomalous from normal clips better for the angular embeddings: AUC 0.55
# on the synthetic clips against 0.64 for Deep SVDD's distance to its centre, and 0.47 on
# valve against 0.47 for Deep SVDD (all three near chance there; the official scores of
# 0.47–0.54 say the same). At 0 dB SNR the built-in synthetic anomalies
# are subtle — notebook 03 measures near-chance AUCs for every method at this SNR — so an
# embedding that is organised by class need not place anomalies far from the class
# centres. **C5 as we formulated it (both (a) and (b), on both data sets) is NOT
# SUPPORTED**: (a) holds, (b) does not, in ci mode. Full mode (more clips and epochs) may
# change (b); the pictures alone would not have told us, which is why the numbers are there.
#
# **On t-SNE.** The maps preserve neighbourhoods, not distances or cluster sizes, and depend
# on the perplexity (20) and seed (0); they illustrate the numbers, they do not replace
# them.

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
# **Claim C5.** On synthetic machine sounds in noise (train and test clips from the same
# machines) and on real valve recordings, the embeddings of sub-cluster AdaCos (trained on the
# auxiliary task) are organised better than those of Deep SVDD and of the autoencoder
# bottleneck, in three ways any of the systems could win:
#
# * **C5.a noise invariance** (synthetic): the same clean normal clip mixed with S = 4
#   different noise segments moves its embedding little compared with the spread between the
#   auxiliary classes, `metrics.noise_invariance` r_c = mean_s ||z_cs - zbar_c||^2 /
#   mean_k ||mu_k - mu||^2 (lower is better; scale-free, so systems with different norms
#   compare);
# * **C5.b class purity above the untrained floor** (synthetic): the kNN class purity of the
#   normal test clips (`metrics.knn_purity`, 5 neighbours, class = machine x attribute) minus
#   that of the *same network before training* (same architecture and initialisation: an
#   untrained CNN already groups clips by their spectra, so raw purity says little);
# * **C5.c per-class anomaly separation** (synthetic): the AUC, within each auxiliary class,
#   of the distance to the nearest centre as an anomaly score, averaged over classes
#   (`evaluation.paired_difference(..., metric="auc", groups=class)`);
# * **C5.d valve**: C5.b and C5.c on the valve mini protocol (class = attribute).
#
# Geometry: cosine for the angular model, Euclidean for Deep SVDD and the autoencoder.
# Distance to the nearest centre: angular: its k-means back-end (its anomaly score); Deep
# SVDD: distance to its fixed centre c; autoencoder: distance to the nearest of k-means
# centres (one per class) of its training bottleneck codes.
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
import functools

import jax
import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE

from asdtheory import evaluation, metrics, scoring
from asdtheory.data import dcase
from asdtheory.data.synthetic import ANOMALY_TYPES, machine_sounds
from asdtheory.detect import Detector, DetectorConfig, log_mels, systems
from asdtheory.detect.dcase import RunConfig, run
from asdtheory.repro.claims import all_of, claim, fmt, fmt_interval, from_interval
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "05_embedding_space"
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
METHODS = ("subcluster-adacos", "deep-svdd", "autoencoder")
LABELS = {"subcluster-adacos": "sub-cluster AdaCos", "deep-svdd": "Deep SVDD",
          "autoencoder": "autoencoder"}
RIVALS = METHODS[1:]
if MODE == "ci":
    TRAIN_PER_CLASS, TEST_PER_CLASS, SYN_EPOCHS, VALVE_EPOCHS, SEEDS = 40, 10, 20, 10, (0, 1, 2)
else:
    TRAIN_PER_CLASS, TEST_PER_CLASS, SYN_EPOCHS, VALVE_EPOCHS, SEEDS = 200, 40, 40, 10, \
        (0, 1, 2, 3, 4)
K_NEIGHBOURS, N_SEGMENTS = 5, 4
UNTRAINED = dict(steps=1, learning_rate=0.0)  # one optimiser step of size 0: the initial net
# The valve systems' width: in ci mode notebook 04's half-width reference network.
VALVE_WIDTH = 0.5 if MODE == "ci" else 1.0
print("run mode:", MODE)

# %% [markdown]
# ## The numbers, as functions of the embeddings

# %%
def geometry(method):
    return "cosine" if method == "subcluster-adacos" else "euclidean"


def centre_distances(method, detector, train_z, test_z, n_classes, seed):
    """Distance of each test embedding to the nearest centre, in the system's geometry."""
    if method == "deep-svdd":
        return np.linalg.norm(test_z - np.asarray(detector.head.centre[...]), axis=1)
    if method == "autoencoder":
        centres = KMeans(n_classes, n_init=10, random_state=seed).fit(train_z).cluster_centers_
        return np.linalg.norm(test_z[:, None] - centres[None], axis=-1).min(axis=1)
    (centres,) = detector.centres.values()  # one back-end group (section) here
    return scoring.nearest_centre_score(test_z, centres)


def interval_verdicts(diffs, unit, resolutions):
    """{rival: PairedDifference} oriented so that > 0 favours the angular model ->
    all_of verdict (SUPPORTED only if every interval clears 0 by ``resolutions[unit]``)."""
    return all_of(*(from_interval(d, unit=f"{unit} vs {LABELS[r]}",
                                  resolution=resolutions[unit]) for r, d in diffs.items()))


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


def distance_figure(title, distances, is_anomaly):
    fig, axes = plt.subplots(1, len(distances), figsize=(4 * len(distances), 3),
                             constrained_layout=True)
    for ax, (method, d) in zip(axes, distances.items(), strict=True):
        bins = np.linspace(d.min(), d.max(), 25)
        ax.hist(d[~is_anomaly], bins=bins, alpha=0.6, label="normal")
        ax.hist(d[is_anomaly], bins=bins, alpha=0.6, label="anomalous")
        ax.set_title(LABELS[method], fontsize=10)
        ax.set_xlabel("distance to nearest centre")
        ax.set_ylabel("test clips")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    plt.show()


# %% [markdown]
# ## Synthetic machine sounds in noise
#
# Three machine types with two attributes each (six auxiliary classes, as in notebook 03),
# 1-second clips mixed with synthetic pink noise at 0 dB SNR (noise level from the nominal
# normal level, label-free; natural level spread of 3 dB). **Train and test clips come from
# the same machines** (`machine_sounds(..., machine_key=...)`, one machine key per seed); an
# earlier version drew them with two independent calls, i.e. from different machines (the
# check below shows what that did). Test clips per seed: 10 normal and 10 anomalous clips
# per class (the built-in types: a boosted harmonic, an extra line, clicks; strength 1).
# Every seed draws fresh machines, clips and noise, and trains fresh systems
# (`detect.Detector`, standardised 32-band log-mels, one window per clip, equal epochs; the
# angular back-end has 6 k-means centres). Each system also has its **untrained twin**:
# the same network with the same initialisation, trained for one step of size 0.
#
# **Noise segments.** The test set is drawn twice with the same key, with and without
# noise: the clips are identical, so noise = mixture - clean exactly. Clean normal clip c
# with the noise of clips c, c+1, ..., c+3 gives four 0 dB mixtures of one clean clip.
#
# **Same machines, checked.** For each normal test clip, the nearest class among the
# training class means of the time-averaged log-mel spectrum: the share of test clips
# assigned to their own class (chance 1/6).

# %%
# tolerance: abs=0.04; shares, purities, AUCs, ratios; AUCs moved <= 0.02, x2
kw = dict(num_machines=3, num_attributes=2, snr_db=0.0)
n_classes = 6
syn = {key: {m: [] for m in METHODS} for key in ("ratio", "ratio0", "purity", "purity0",
                                                 "distance", "distance0", "auc_own")}
level_scores, syn_embeddings = [], {}
for seed in SEEDS:
    k_machines, k_train, k_test = jax.random.split(jax.random.fold_in(jax.random.key(5), seed),
                                                   3)
    train_set = machine_sounds(k_train, clips_per_class=TRAIN_PER_CLASS, machine_key=k_machines,
                               **kw)
    test_kw = dict(clips_per_class=2 * TEST_PER_CLASS, anomaly_fraction=0.5,
                   machine_key=k_machines)
    test_set = machine_sounds(k_test, **test_kw, **kw)
    clean = machine_sounds(k_test, **test_kw, **{**kw, "snr_db": None}).waveforms
    train_mels, test_mels = log_mels(train_set.waveforms), log_mels(test_set.waveforms)
    normal = ~test_set.is_anomaly
    if seed == SEEDS[0]:
        own_class_share = functools.partial(metrics.own_class_share, train_mels,
                                            train_set.label)
        other = machine_sounds(k_test, clips_per_class=2 * TEST_PER_CLASS,
                               anomaly_fraction=0.5, **kw)  # no machine_key: other machines
        print("normal test clips nearest to their own class's training spectrum: "
              f"same machines {fmt(own_class_share(test_mels[normal], test_set.label[normal]))}"
              f", independent draw (the old set-up) "
              f"{fmt(own_class_share(log_mels(other.waveforms)[normal], other.label[normal]))}"
              f" (chance {fmt(1 / n_classes)})")
    noise = test_set.waveforms - clean
    idx = np.flatnonzero(normal)
    segments = np.stack([clean[idx] + noise[np.roll(idx, -j)] for j in range(N_SEGMENTS)],
                        axis=1)  # (clips, segments, samples)
    segment_mels = log_mels(segments.reshape(-1, segments.shape[-1]))
    labels = test_set.label
    level_scores.append(scoring.level_score(train_set.waveforms, test_set.waveforms,
                                            train_groups=train_set.label, test_groups=labels))
    for i, method in enumerate(METHODS):
        config = DetectorConfig(window_frames=train_mels.shape[1], window_hop=1,
                                n_clusters=n_classes, epochs=SYN_EPOCHS,
                                progress=False).with_method(method)
        key = jax.random.fold_in(jax.random.key(seed), i)
        for suffix, cfg in (("", config), ("0", dataclasses.replace(config, **UNTRAINED))):
            detector = Detector.fit(train_mels, train_set.label, config=cfg, key=key)
            test_z, scores = detector.embed_and_score(test_mels)
            seg_z = detector.embed(segment_mels).reshape(len(idx), N_SEGMENTS, -1)
            syn["ratio" + suffix][method].append(metrics.noise_invariance(
                seg_z, labels[idx], metric=geometry(method)))
            syn["purity" + suffix][method].append(metrics.knn_purity(
                test_z[normal], labels[normal], k=K_NEIGHBOURS, metric=geometry(method)))
            syn["distance" + suffix][method].append(centre_distances(
                method, detector, detector.train_embeddings, test_z, n_classes, seed))
            if suffix == "":
                syn["auc_own"][method].append(evaluation.group_metrics(
                    test_set.is_anomaly, scores, labels)["auc"])
                if seed == SEEDS[-1]:
                    syn_embeddings[method] = test_z
syn = {key: {m: np.array(v) for m, v in d.items()} for key, d in syn.items()}
level_scores = np.array(level_scores)
syn_is_anomaly, syn_labels, syn_test = test_set.is_anomaly, labels, test_set
syn_key = jax.random.key(55)


def per_class_auc(distances):
    return np.mean([evaluation.group_metrics(syn_is_anomaly, d, syn_labels)["auc"]
                    for d in distances])


print(f"\nmeans over {len(SEEDS)} seeds ({normal.sum()} normal, {(~normal).sum()} anomalous "
      "test clips each):")
print(f"{'':>20} noise ratio (untrained)  kNN purity (untrained)  per-class AUC of the "
      "nearest-centre distance (untrained) / of its own score")
for m in METHODS:
    print(f"{LABELS[m]:>20} {fmt(syn['ratio'][m].mean())} ({fmt(syn['ratio0'][m].mean())})"
          f"            {fmt(syn['purity'][m].mean())} ({fmt(syn['purity0'][m].mean())})"
          f"            {fmt(per_class_auc(syn['distance'][m]))} "
          f"({fmt(per_class_auc(syn['distance0'][m]))}) / {fmt(np.mean(syn['auc_own'][m]))}")
print(f"{'level only':>20} {'':>46}{fmt(per_class_auc(level_scores))} (clip level's distance "
      "from its class's normal training level)")

# %%
syn_kind = np.array([ANOMALY_TYPES[t] if t else "normal" for t in syn_test.anomaly_type])
tsne_figure("Synthetic test clips (0 dB pink noise)", syn_embeddings, {
    "normal / anomaly type": (syn_kind, lambda v: "o" if v == "normal" else "x"),
    "class (machine, attribute)": (np.array([f"m{m} a{a}" for m, a in
                                             zip(syn_test.machine, syn_test.attribute,
                                                 strict=True)]), lambda v: "o"),
})
distance_figure(f"Synthetic (seed {SEEDS[-1]}): distance to the nearest centre",
                {m: syn["distance"][m][-1] for m in METHODS}, syn_is_anomaly)

# %% [markdown]
# ## Criteria, fixed before the results
#
# Every criterion compares the angular model with **each** rival on the same clips and
# seeds: a paired bootstrap over clips (stratified by class and label) and seeds, 95 %
# interval (`metrics.paired_mean_contrast` for per-clip measures,
# `evaluation.paired_difference` for AUCs). A part is SUPPORTED when its interval lies above
# 0 (in the angular model's favour), CONTRADICTED when it lies below; a claim with several
# parts is SUPPORTED when every part is, CONTRADICTED when any part is (`claims.all_of`),
# else INCONCLUSIVE with the detectable effects of the undecided parts.
#
# **Clear of the rounding, not only of 0.** An interval decides only if it clears 0 by more
# than its *resolution* (`claims.from_interval(..., resolution=)`): twice the largest move of
# its ends measured under a change of rounding alone, as for the tolerances
# (notebooks/README.md). The bootstrap runs over clips (and seeds) of training runs that
# were each computed once; a change of rounding moves a trained network as a different
# seed would, which the interval of one seed does not contain. The detectable effect is
# then the half-width plus the resolution. *Why this rule was added* (on 2026-12-05, after
# the run stored on Zen 4 and before the two runs stored since; the old rule was "the
# interval clears 0"): under the old rule
# C5.d was SUPPORTED on the AMD Zen 4 CPU that stored this notebook then (AUC vs Deep SVDD
# [0.002, 0.222]) and INCONCLUSIVE on an Intel Xeon with the same code and data
# ([-0.029, 0.200]). A verdict that two CPUs print differently was decided by rounding; the
# rule makes such a verdict INCONCLUSIVE on both.
#
# * **C5.a** rival's mean noise ratio minus the angular model's > 0. *Why*: the paper's
#   argument is that the auxiliary task makes the representation ignore what does not
#   identify the machine; noise is exactly that, and the clean clip is held fixed, so
#   every movement of the embedding is caused by the noise. Relative to the between-class
#   spread, so that shrinking the whole space (Deep SVDD's objective) earns nothing.
# * **C5.b** (angular purity - its untrained purity) - (rival purity - its untrained
#   purity) > 0 for each rival, and the angular model's gain over its floor > 0. *Why*: an
#   untrained CNN on log-mels already groups clips by their spectra; what training adds is
#   what the loss is responsible for.
# * **C5.c** per-class AUC of the nearest-centre distance, angular minus rival, > 0. *Why*:
#   "anomalies fall away from the centres" within each class, so class offsets of the
#   distance do not count. The level-only detector is the reference row: a system below it
#   has not shown more than "louder or quieter than usual".
#
# **The old criterion and why it was replaced.** The earlier version declared C5 supported
# if sub-cluster AdaCos had the highest raw kNN purity and the highest pooled AUC of the
# distance on both data sets, one seed, no interval. Its synthetic test clips came from
# other machines than its training clips (independent `machine_sounds` calls), so the
# distances measured how far unseen machines lay from the centres; raw purity rewards what
# any network on these spectra gives for free (no untrained floor); and "highest of three
# numbers" without an interval cannot tell a difference from seed noise. It said NOT
# SUPPORTED (purity best, AUC not), a verdict the run could not have made reliably.

# %%
# tolerance: abs=0.04; interval ends of purities, ratios, AUCs; AUCs moved <= 0.02, x2
# Resolutions: twice the largest move of these interval ends measured between AMD Zen 4 and
# Intel Xeon (noise ratio 0.002, purity gain 0.006, per-class AUC 0.009, AUCs 0.01-0.02 on
# AVX2 earlier; valve 0.031 between the CPUs, 0.045 under a change of the library's
# convolution code). Fixed before this run.
RESOLUTION = {"noise ratio": 0.004, "purity gain": 0.012, "per-class AUC": 0.04,
              "valve purity gain": 0.09, "valve per-attribute AUC": 0.09}
groups = syn_labels[~syn_is_anomaly]
A = "subcluster-adacos"
ratio_diff = {r: metrics.paired_mean_contrast([syn["ratio"][r], syn["ratio"][A]], [1, -1],
                                              key=syn_key, groups=groups) for r in RIVALS}
verdict, detectable = interval_verdicts(ratio_diff, "noise ratio", RESOLUTION)
claim("C5.a", verdict,
      "mean noise ratio (within-clip noise variance / between-class variance) AdaCos "
      f"{fmt(syn['ratio'][A].mean())}, Deep SVDD {fmt(syn['ratio']['deep-svdd'].mean())}, "
      f"autoencoder {fmt(syn['ratio']['autoencoder'].mean())}; rival - AdaCos "
      + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in ratio_diff.items())
      + f" ({len(SEEDS)} seeds, 0 dB)",
      detectable=detectable, notebook=NOTEBOOK,
      statement="Angular margin embeddings of one clean clip move less under different noise "
                "segments, relative to the between-class spread, than Deep SVDD and "
                "autoencoder embeddings.",
      figures={"ratio": {m: float(syn["ratio"][m].mean()) for m in METHODS},
               "ratio_untrained": {m: float(syn["ratio0"][m].mean()) for m in METHODS},
               "diff": {r: [d.estimate, d.low, d.high] for r, d in ratio_diff.items()}})

gain = {m: syn["purity"][m] - syn["purity0"][m] for m in METHODS}
gain_diff = {r: metrics.paired_mean_contrast([gain[A], gain[r]], [1, -1], key=syn_key,
                                             groups=groups) for r in RIVALS}
gain_floor = metrics.paired_mean_contrast([gain[A]], [1.0], key=syn_key, groups=groups)
verdict, detectable = all_of(interval_verdicts(gain_diff, "purity gain", RESOLUTION),
                             from_interval(gain_floor, unit="purity gain over the floor",
                                           resolution=RESOLUTION["purity gain"]))
claim("C5.b", verdict,
      "kNN purity gain over the untrained twin AdaCos " + fmt_interval(gain_floor)
      + f", Deep SVDD {fmt(gain['deep-svdd'].mean())}, autoencoder "
      f"{fmt(gain['autoencoder'].mean())}; AdaCos - rival "
      + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in gain_diff.items()),
      detectable=detectable, notebook=NOTEBOOK,
      statement="Training with the angular margin loss raises the kNN class purity of the "
                "normal embeddings above the same untrained network by more than training "
                "Deep SVDD or the autoencoder raises theirs.",
      figures={"purity": {m: float(syn["purity"][m].mean()) for m in METHODS},
               "purity_untrained": {m: float(syn["purity0"][m].mean()) for m in METHODS},
               "gain_floor": [gain_floor.estimate, gain_floor.low, gain_floor.high],
               "diff": {r: [d.estimate, d.low, d.high] for r, d in gain_diff.items()}})

auc_diff = {r: evaluation.paired_difference(syn["distance"][A], syn["distance"][r],
                                            is_anomaly=syn_is_anomaly, groups=syn_labels,
                                            metric="auc", key=syn_key) for r in RIVALS}
level_diff = evaluation.paired_difference(syn["distance"][A], level_scores,
                                          is_anomaly=syn_is_anomaly, groups=syn_labels,
                                          metric="auc", key=syn_key)
verdict, detectable = interval_verdicts(auc_diff, "per-class AUC", RESOLUTION)
claim("C5.c", verdict,
      "per-class AUC of the nearest-centre distance AdaCos "
      f"{fmt(per_class_auc(syn['distance'][A]))}, Deep SVDD "
      f"{fmt(per_class_auc(syn['distance']['deep-svdd']))}, autoencoder "
      f"{fmt(per_class_auc(syn['distance']['autoencoder']))}, level only "
      f"{fmt(per_class_auc(level_scores))}; AdaCos - rival "
      + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in auc_diff.items())
      + f"; AdaCos - level only {fmt_interval(level_diff)}",
      detectable=detectable, notebook=NOTEBOOK,
      statement="Within each auxiliary class, the distance to the nearest centre separates "
                "anomalous from normal clips better in the angular margin embedding space "
                "than in the Deep SVDD and autoencoder spaces.",
      figures={"per_class_auc": {m: per_class_auc(syn["distance"][m]) for m in METHODS},
               "per_class_auc_level": per_class_auc(level_scores),
               "diff": {r: [d.estimate, d.low, d.high] for r, d in auc_diff.items()},
               "diff_level": [level_diff.estimate, level_diff.low, level_diff.high]})

# %% [markdown]
# ## Real valve recordings
#
# `detect.dcase.run` with the valve mini protocol (60 normal training clips of four attributes
# in two domains; 40 normal and 100 anomalous test clips) and the systems of notebook 04:
# the reference system (`detect.systems.get("reference")`: K. Wilkinghoff's
# two-branch network on the raw 10-s waveforms, one embedding per clip, trained on the four
# attribute classes; in ci mode at half width, as in notebook 04) for sub-cluster AdaCos
# and Deep SVDD, and the DCASE 2023 baseline autoencoder (128 log-mel bands, 5 stacked
# frames; clip embedding = mean bottleneck code), each for 10 epochs. The angular system's
# centres are its k-means back-end (16 centres of the source-domain training clips plus
# every target-domain training clip). Each system and its untrained twin (same seed, one
# step of size 0, which leaves the weights at their initial values and moves the batch
# norms' running statistics 1 % towards one batch); the level-only detector
# (`scoring.level_score`, from `run`) as the reference row. One seed in ci mode: the
# interval is over the 140 test clips only. Noise invariance cannot be measured here: the
# factory noise is already in the recordings and cannot be separated. (Until this version
# the valve systems were small CNNs on ~2-s log-mel windows, which scored near chance.)
#
# **Criterion C5.d** (fixed before the results): C5.b and C5.c on these clips, class =
# attribute (per-attribute AUC: each attribute's 10 normal test clips against its 25
# anomalous clips), the same all-parts rule. 140 clips cannot resolve small differences:
# expect INCONCLUSIVE with the detectable effect printed.

# %%
# tolerance: abs=0.08; purity, AUCs; moved 0.040 under a rounding change, x2
# (the library's convolutions, same CPU; the SSE4_2 ISA cap leaves these cells unchanged)
valve, valve_embeddings = {}, {}
for method in METHODS:
    for suffix, extra in (("", {"epochs": VALVE_EPOCHS}), ("0", UNTRAINED)):
        result = run(RunConfig(
            data=DATA, seed=0, detector=dataclasses.replace(
                systems.get("reference").config(method, small_data=True, width=VALVE_WIDTH),
                progress=False, **extra)))
        clips = result.test_clips
        is_anomaly = np.array([c.is_anomaly for c in clips])
        attribute = np.array([c.attribute_key for c in clips])
        codes = np.unique(attribute, return_inverse=True)[1]
        valve[method + suffix] = {
            "purity": metrics.knn_purity(result.test_embeddings[~is_anomaly],
                                         codes[~is_anomaly], k=K_NEIGHBOURS,
                                         metric=geometry(method)),
            "distance": centre_distances(method, result.detector, result.train_embeddings,
                                         result.test_embeddings, 4, 0),
            "official": result.official_score}
        if suffix == "":
            valve_embeddings[method] = result.test_embeddings
            level_valve, level_official = result.level_scores, result.level_official_score
domain = np.array([c.domain for c in clips])
valve_attribute, valve_is_anomaly = attribute, is_anomaly


def per_attribute_auc(scores):
    return evaluation.group_metrics(valve_is_anomaly, scores, codes)["auc"]


print(f"{'':>20} kNN purity (untrained)  per-attribute AUC of the distance (untrained)  "
      "official score of its own score")
for m in METHODS:
    v, v0 = valve[m], valve[m + "0"]
    print(f"{LABELS[m]:>20} {fmt(v['purity'].mean())} ({fmt(v0['purity'].mean())})"
          f"           {fmt(per_attribute_auc(v['distance']))} "
          f"({fmt(per_attribute_auc(v0['distance']))})                           "
          f"{fmt(v['official'])}")
print(f"{'level only':>20} {'':>24}{fmt(per_attribute_auc(level_valve))}"
      f"{'':>39}{fmt(level_official)}")

# %%
tsne_figure("Valve test clips (DCASE 2023, section 00)", valve_embeddings, {
    "normal / anomalous": (np.where(valve_is_anomaly, "anomalous", "normal"),
                           lambda v: "x" if v == "anomalous" else "o"),
    "domain": (domain, lambda v: "o"),
    "attribute": (valve_attribute, lambda v: "o"),
})
distance_figure("Valve: distance to the nearest centre",
                {m: valve[m]["distance"] for m in METHODS}, valve_is_anomaly)

# %%
# tolerance: abs=0.09; interval ends of purities, AUCs; moved 0.045 under a rounding change, x2
# (the library's convolutions, same CPU; the SSE4_2 ISA cap leaves these cells unchanged)
valve_key = jax.random.key(56)
vgain = {m: valve[m]["purity"] - valve[m + "0"]["purity"] for m in METHODS}
vgroups = codes[~valve_is_anomaly]
vgain_diff = {r: metrics.paired_mean_contrast([vgain[A], vgain[r]], [1, -1], key=valve_key,
                                              groups=vgroups) for r in RIVALS}
vauc_diff = {r: evaluation.paired_difference(valve[A]["distance"], valve[r]["distance"],
                                             is_anomaly=valve_is_anomaly, groups=codes,
                                             metric="auc", key=valve_key) for r in RIVALS}
vlevel_diff = evaluation.paired_difference(valve[A]["distance"], level_valve,
                                           is_anomaly=valve_is_anomaly, groups=codes,
                                           metric="auc", key=valve_key)
verdict, detectable = all_of(interval_verdicts(vgain_diff, "valve purity gain", RESOLUTION),
                             interval_verdicts(vauc_diff, "valve per-attribute AUC", RESOLUTION))
claim("C5.d", verdict,
      "valve, AdaCos - rival: purity gain over the untrained twin "
      + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in vgain_diff.items())
      + "; per-attribute AUC of the distance "
      + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in vauc_diff.items())
      + f"; AdaCos - level only {fmt_interval(vlevel_diff)} (1 seed, 140 clips)",
      detectable=detectable, notebook=NOTEBOOK,
      statement="On the valve recordings, the angular margin embedding gains more kNN "
                "attribute purity over its untrained network and separates anomalies per "
                "attribute by the distance to the nearest centre better than Deep SVDD and "
                "the autoencoder.",
      figures={"purity_gain": {m: float(vgain[m].mean()) for m in METHODS},
               "per_attribute_auc": {m: per_attribute_auc(valve[m]["distance"])
                                     for m in METHODS},
               "per_attribute_auc_level": per_attribute_auc(level_valve),
               "diff_gain": {r: [d.estimate, d.low, d.high] for r, d in vgain_diff.items()},
               "diff_auc": {r: [d.estimate, d.low, d.high] for r, d in vauc_diff.items()}})

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this paragraph was written for the stored ci-mode run and
# describes its numbers.
#
# **C5.a (CONTRADICTED).** Sub-cluster AdaCos is far more noise-invariant than Deep SVDD
# (noise ratio 0.067 against 4.86), but the autoencoder bottleneck is more invariant still
# (0.007; rival minus AdaCos -0.060 [-0.100, -0.015], clear of its resolution 0.004):
# relative to its own between-class spread the autoencoder's code moves least when only the
# noise segment changes. The claim "better organised than both" fails on this measure.
#
# **C5.b (SUPPORTED).** Training adds class purity for the angular model only: its kNN
# purity rises over its untrained twin by 0.290 [0.163, 0.403], Deep SVDD's falls (-0.372,
# its objective pulls classes together) and the autoencoder's rises little (0.078); the paired
# gains of AdaCos over both rivals clear their resolution (0.012).
#
# **C5.c (INCONCLUSIVE).** Within each class the distance to the nearest centre separates
# anomalies best for AdaCos (per-class AUC 0.736 against 0.638 and 0.554; the level-only
# reference scores 0.489, so loudness does not carry these anomalies); the lead over the
# autoencoder is clear, the lead over Deep SVDD (0.098 [-0.018, 0.212]) is not.
#
# **C5.d (INCONCLUSIVE, valve).** With the reference system (the two-branch network on the
# raw clips, half width, one seed) the angular embedding gains kNN attribute purity over
# its untrained twin (0.460 against 0.310) while Deep SVDD's and the autoencoder's hardly
# move, and its distance to the nearest k-means centre separates each attribute's anomalies
# better (per-attribute AUC 0.766 against 0.677 and 0.507). Every difference points the way
# the claim says, but only the AUC lead over the autoencoder (0.259 [0.152, 0.367]) clears
# the resolution of these single-seed numbers (0.09): the purity gains over Deep SVDD and the
# autoencoder (0.130 [0.055, 0.205], 0.145 [0.060, 0.230]) clear 0 but not the rounding, and
# the AUC lead over Deep SVDD (0.089 [-0.039, 0.223]) does not clear 0. This is the verdict
# that flipped between CPUs under the old rule (SUPPORTED on Zen 4 with [0.002, 0.222],
# INCONCLUSIVE on the Intel Xeon with [-0.029, 0.200] on two CPUs and with this run's
# interval on one; see the criteria); one seed on 140 clips cannot decide it, and more seeds
# (full mode) are what would. Two facts temper the picture further. The clip level alone
# reaches a per-attribute AUC of 0.752, and AdaCos's lead over it, 0.014 [-0.086, 0.108], is
# not resolved; and the untrained two-branch network already separates anomalies by its
# distance (0.810, no lower than the trained 0.766): on these clips the network's
# architecture, not its training, carries most of the separation, while the purity gain is
# what training adds.
# (The earlier version of this check, on small log-mel CNNs that scored near chance, was
# INCONCLUSIVE: differences near 0 with intervals of about ±0.1 to ±0.17, and the clip level
# beat AdaCos by 0.283.)
#
# **On t-SNE.** The maps preserve neighbourhoods, not distances or cluster sizes, and depend
# on the perplexity (20) and seed (0); they illustrate the numbers, they do not replace
# them.

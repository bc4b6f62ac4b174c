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
# # 07 — Beyond the paper: centres, sub-clusters, AdaProj, neural collapse, scale dynamics (B1–B5)
#
# The paper (K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643)
# explains angular margin losses through the compactness loss. Its abstract leaves open
# several design choices that its explanation touches; this notebook checks five of them.
# None of these is a claim of the paper: each is a question we ask, with a criterion for
# "SUPPORTED" **written down before the experiment ran**, and the verdict as measured.
#
# Questions and criteria, one CLAIM line each:
#
# - **B1** Do trainable class centres beat fixed random ones (public re-evaluations on DCASE
#   2023 report so)? The detection score of trainable minus fixed centres, paired over test
#   clips and seeds, on the synthetic **and** on the real valve data.
# - **B2** Does sub-cluster AdaCos profit from more sub-clusters, M in {1, 4, 16}? The better
#   of M = 4, 16 minus M = 1, paired (synthetic data with 4 modes per class).
# - **B3** Is AdaProj (compactness to class *subspaces*) better than sub-cluster AdaCos
#   (compactness to sub-*centres*)? AdaProj minus sub-cluster AdaCos, paired, on the synthetic
#   and on the valve data.
# - **B4** Does the angular margin model show neural collapse during training, and is that the
#   compactness? *Supported if* NC1 falls below a tenth of its value before training, NC3
#   comes within a tenth of its initial distance from its attainable minimum (0 for trainable
#   centres, the floor of embeddings placed exactly on fixed random centres, computed below),
#   NC4 ends below $0.05$ and the compactness falls with them (fixed and trainable centres);
#   CONTRADICTED otherwise (one deterministic run each).
# - **B5** Is the adaptive AdaCos scale stable over long training? *Supported if* the faithful
#   scale stays finite and below 10 s0 for all steps, while the public-code variant diverges
#   (exceeds 1000 s0 or becomes non-finite) for M > 1; CONTRADICTED otherwise.
#
# For B1-B3: SUPPORTED when the 95 % paired bootstrap interval of the difference
# (`evaluation.paired_difference`, resampling test clips and seeds) lies above 0 on every data
# set, CONTRADICTED when it lies below 0 on one, else INCONCLUSIVE with the smallest
# difference the run could have detected. "Detection score" is the harmonic mean of AUC and
# pAUC (max FPR 0.1, McClish-standardised) on the synthetic data and the official DCASE 2023
# score on the valve data.
#
# **Criterion change: paired intervals; the NC3 floor.** B1-B3 first asked for a difference
# of seed means larger than the seed spread, which ignored the sampling of the test clips
# and printed "not supported" where the run could not tell. B4 first asked NC3 to fall below
# a tenth of its initial value for fixed centres too; the notebook's own control (in B4)
# shows that NC3 cannot go below a floor for random centres that do not sum to zero, so that
# criterion could fail for a reason unrelated to the question, and it did: NOT SUPPORTED
# with NC3 just above that floor.
#
# Everything runs through `asdtheory`: the losses (`losses`), the heads and the training
# loop (`models`, `train`), the helpers of this notebook (`dynamics`: free-embedding scale
# trajectories, an NC1-NC4 training callback), the detector (`detect.Detector` with an MLP
# embedder, fixed or trainable centres and the k-means back-end) and the metrics
# (`metrics`, `evaluation`).

# %%
# The inline backend explicitly: pytest's conftest sets MPLBACKEND=Agg for the nbval kernels,
# under which plt.show() would output nothing and the stored figures would not match.
# %matplotlib inline

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from asdtheory import (
    audio,
    detect,
    dynamics,
    evaluation,
    losses,
    metrics,
    models,
    plots,
    scoring,
    train,
)
from asdtheory.data import dcase
from asdtheory.data.synthetic import sphere_mixture
from asdtheory.detect import Detector, DetectorConfig, embedders
from asdtheory.geometry import cosine_matrix, l2_normalize
from asdtheory.repro.claims import (
    CONTRADICTED,
    SUPPORTED,
    all_of,
    claim,
    fmt,
    fmt_e,
    fmt_interval,
    from_interval,
    records,
)
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "07_beyond_the_paper"
SEEDS = (0, 1, 2) if MODE == "ci" else (0, 1, 2, 3, 4)
print("run mode:", MODE, "| seeds:", SEEDS)

# %% [markdown]
# ## The data
#
# **Synthetic.** An auxiliary task with N = 4 classes, each made of K = 4 *modes*: 16
# clusters on the unit sphere of R^24 (`data.synthetic.sphere_mixture`, concentration
# kappa = 100: a sample lies on average about 26 degrees from its mode centre), class =
# mode // 4. So a class is not one blob — the situation sub-clusters (B2) and subspaces (B3)
# are meant for. Normal training and test samples come from the 16 modes. An **anomalous**
# sample comes from a *displaced* mode: its mode centre c is replaced by
# $\mathrm{normalise}(c+0.5\,g)$, g ~ N(0, I/24), i.e. rotated by about 26 degrees in a
# random direction, with the same spread. One sample is one "clip" (k = 1 example per clip)
# and the input of the network.
#
# **Design change: the anomaly strength.** The displacement equals the within-mode spread.
# The anomalies were first drawn with kappa = 40 (spread about 37 degrees, more than the
# displacement), and every method then scored close to chance, too close for any comparison
# to show; so we made the anomalies as far from their mode as a typical normal sample is
# (kappa = 100) before reading any comparison on the final data. The criteria above were not
# changed.

# %%
NUM_CLASSES, MODES_PER_CLASS, DIM, KAPPA = 4, 4, 24, 100.0
TRAIN_PER_MODE, TEST_PER_MODE = 32, 8


def samples_around(key, centres, modes) -> jax.Array:
    """sphere_mixture's sampler around given mode centres: normalise(c + g / sqrt(kappa))."""
    return l2_normalize(centres[modes] + jax.random.normal(key, (modes.size, DIM))
                        / np.sqrt(KAPPA))


def synthetic_data(key):
    k_train, k_test, k_shift, k_anom = jax.random.split(key, 4)
    n_modes = NUM_CLASSES * MODES_PER_CLASS
    x_train, mode_train, centres = sphere_mixture(k_train, num_classes=n_modes, dim=DIM,
                                                  samples_per_class=TRAIN_PER_MODE,
                                                  concentration=KAPPA)
    mode_test = np.repeat(np.arange(n_modes), TEST_PER_MODE)
    x_normal = samples_around(k_test, centres, mode_test)
    # Displaced modes: normalise(c + 0.5 g / sqrt(D)), g ~ N(0, I).
    shifted = l2_normalize(centres + 0.5 * jax.random.normal(k_shift, centres.shape)
                           / np.sqrt(DIM))
    x_anomal = samples_around(k_anom, shifted, mode_test)
    return {
        "train_x": np.asarray(x_train)[:, None], "train_y": np.asarray(mode_train) // 4,
        "test_x": np.concatenate([x_normal, x_anomal])[:, None],
        "test_y": np.concatenate([mode_test, mode_test]) // 4,
        "is_anomaly": np.repeat([0, 1], mode_test.size),
        "mode_centres": np.asarray(centres), "shift_deg": np.degrees(np.arccos(np.clip(
            np.sum(np.asarray(shifted) * np.asarray(centres), -1), -1, 1))),
    }


SYN = synthetic_data(jax.random.key(2024))
print("synthetic: train", SYN["train_x"].shape, "| test", SYN["test_x"].shape,
      "| anomalies", int(SYN["is_anomaly"].sum()),
      "| mode displacement (deg) mean", fmt(SYN["shift_deg"].mean(), 1))

# %% [markdown]
# **The sampler check.** The test normals must come from the training modes (same centres)
# and the anomalies from displaced ones: the mean angle of the test normals to their own
# mode centre must match that of the training samples, that of the anomalies must be larger.

# %%
def mean_angle_to_mode(x, modes):
    return float(np.degrees(np.mean(np.arccos(np.clip(
        np.sum(x[:, 0] * SYN["mode_centres"][modes], -1), -1, 1)))))


n_norm = int((SYN["is_anomaly"] == 0).sum())
test_modes = np.tile(np.repeat(np.arange(16), TEST_PER_MODE), 2)
print("mean angle to own mode centre (deg): train",
      fmt(mean_angle_to_mode(SYN["train_x"], np.repeat(np.arange(16), TRAIN_PER_MODE)), 1),
      "| test normals", fmt(mean_angle_to_mode(SYN["test_x"][:n_norm], test_modes[:n_norm]), 1),
      "| anomalies", fmt(mean_angle_to_mode(SYN["test_x"][n_norm:], test_modes[n_norm:]), 1))

# %% [markdown]
# **Real: valve, DCASE 2023 Task 2.** The 200 development test clips of machine "valve",
# section 00 (MIMII DG), in the *valve mini* protocol of `data.dcase.valve_mini_protocol`:
# 60 normal training clips (15 per attribute pat_00..pat_03; pat_00/01 source, pat_02/03
# target domain), 140 test clips (40 normal, 100 anomalous); the auxiliary task is the
# attribute (4 classes). Features: 64-band log-mel spectrograms (`detect.log_mels`,
# n_fft 1024, hop 512: 313 frames per 10-s clip) standardised by the training mean and
# standard deviation; an example is a window of 8 consecutive frames (~260 ms) flattened to
# 512 values, windows every 8 frames, 39 per clip (2340 training examples). The scores
# use the official DCASE 2023 rules (AUC source, AUC target, pAUC; harmonic mean).
#
# *Data licence and attribution.* The recordings are from the DCASE 2023 Challenge Task 2
# development set (MIMII DG), licensed CC BY 4.0: K. Dohi et al., "MIMII DG: Sound dataset
# for malfunctioning industrial machine investigation and inspection for domain
# generalization task", DCASE 2022 Workshop; K. Dohi et al., "Description and discussion on
# DCASE 2023 challenge task 2: first-shot unsupervised anomalous sound detection for machine
# condition monitoring", DCASE 2023 Workshop. Available from
# https://zenodo.org/record/7882613 (`dev_valve.zip`).

# %%
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
split = dcase.valve_mini_protocol(DATA)
clips = split.train + split.test
waves = np.stack([audio.load(c.path) for c in clips])
mels = detect.log_mels(waves, n_mels=64)
n_train = len(split.train)
attributes = sorted({c.attribute_key for c in split.train})
VALVE = {
    "train_x": mels[:n_train], "test_x": mels[n_train:],
    "train_y": np.array([attributes.index(c.attribute_key) for c in split.train]),
    "train_is_target": np.array([c.domain == "target" for c in split.train]),
    "test_y": np.array([attributes.index(c.attribute_key) for c in split.test]),
}
print("valve:", split.name, "| train", VALVE["train_x"].shape, "| test", VALVE["test_x"].shape,
      "| attributes", attributes)


VALVE_CLIPS = dict(machine="valve", section=0, domain=[c.domain for c in split.test],
                   is_anomaly=[c.is_anomaly for c in split.test])


def valve_score(scores) -> float:
    return evaluation.official_score(evaluation.dcase_table(**VALVE_CLIPS, scores=scores))


def synthetic_score(scores) -> float:
    return evaluation.group_metrics(SYN["is_anomaly"], scores)["hmean"]


BOOTSTRAP_KEY = jax.random.key(11)


def paired(data_name, scores_a, scores_b):
    """Paired difference (a - b) of the detection score over test clips and seeds:
    hmean(AUC, pAUC) on the synthetic data, the official score on the valve data."""
    if data_name == "synthetic":
        return evaluation.paired_difference(scores_a, scores_b, is_anomaly=SYN["is_anomaly"],
                                            key=BOOTSTRAP_KEY)
    return evaluation.paired_difference(scores_a, scores_b, metric="official",
                                        key=BOOTSTRAP_KEY, **VALVE_CLIPS)


UNITS = {"synthetic": "hmean (synthetic)", "valve": "official score (valve)"}
# twice the largest measured move of an interval end (criteria of B1-B3, below)
RESOLUTION = {"synthetic": 0.04, "valve": 0.06}
normal_train = [i for i, c in enumerate(split.train) if not c.is_anomaly]
valve_level = scoring.level_score(waves[normal_train], waves[n_train:])
print("reference without a model (clip level vs the normal training level, "
      f"scoring.level_score): valve official score {fmt(valve_score(valve_level))}")


# An MLP on each example (one sample; a flattened 8-frame window), 4 k-means centres.
SYN_CONFIG = DetectorConfig(method="adacos", embedder=embedders.MLP(hidden=(128, 128)),
                            window_frames=1, window_hop=1, embed_dim=32, n_clusters=4,
                            epochs=30, batch_size=64, progress=False)
VALVE_CONFIG = dataclasses.replace(SYN_CONFIG, window_frames=8, window_hop=8, epochs=10)


def run(data, *, seed, config, **kw):
    """One detection run; returns (per-clip test scores, the trained detect.Detector)."""
    detector = Detector.fit(data["train_x"], data["train_y"], key=jax.random.key(seed),
                            config=dataclasses.replace(config, **kw),
                            is_target=data.get("train_is_target"))
    return detector.score(data["test_x"]), detector


def normal_compactness(data, detector, normals) -> float:
    """Mean compactness of the normal test clips w.r.t. their class (head.compactness)."""
    z = jnp.asarray(detector.embed(data["test_x"])[normals])
    return float(jnp.mean(detector.head.compactness(z, jnp.asarray(data["test_y"][normals]))))


SYN_NORMALS = SYN["is_anomaly"] == 0
VALVE_NORMALS = np.array([not c.is_anomaly for c in split.test])

# %% [markdown]
# ## B1 — fixed vs trainable class centres
#
# Wilkinghoff's systems keep the class centres of (sub-cluster) AdaCos fixed at random
# values; public re-evaluations of DCASE 2023 systems report trainable centres doing better.
# The compactness view suggests why either could win: fixed random centres pin down where
# each class must go; trainable centres let the loss move them apart (for N classes the
# loss is minimised by centres forming a regular simplex, pairwise cosine -1/(N-1)), which
# makes classes easier to separate but does not by itself keep information the auxiliary
# task does not need. We train AdaCos (dynamic scale) with both choices, same seeds, and
# compare the detection scores, the compactness of the normal test clips w.r.t. their class
# centre, and the pairwise cosines of the centres after training.

# %%
# tolerance: abs=0.04 rel=0.008; scores moved by 0.016, compactness by 0.4 % (AVX-512 vs AVX2), x2
def centre_cosines(head) -> np.ndarray:
    """Off-diagonal pairwise cosines of the head's (N, D) class centres."""
    c = np.asarray(head.centres[...])
    cos = np.asarray(cosine_matrix(c, c))
    return cos[~np.eye(c.shape[0], dtype=bool)]


B1, B1_SCORES = {}, {}
for data_name, data, config, score, normals in (
        ("synthetic", SYN, SYN_CONFIG, synthetic_score, SYN_NORMALS),
        ("valve", VALVE, VALVE_CONFIG, valve_score, VALVE_NORMALS)):
    for trainable in (False, True):
        rows, clip_scores = [], []
        for seed in SEEDS:
            scores, result = run(data, seed=seed, config=config, method="adacos",
                                 trainable_centres=trainable)
            cos = centre_cosines(result.head)
            clip_scores.append(scores)
            rows.append((score(scores), normal_compactness(data, result, normals), cos.mean(),
                         cos.std()))
        B1[data_name, trainable] = np.array(rows)
        B1_SCORES[data_name, trainable] = np.array(clip_scores)
        r = B1[data_name, trainable]
        print(f"{data_name:9s} {'trainable' if trainable else 'fixed':9s} centres | score "
              f"{fmt(r[:, 0].mean())} +- {fmt(r[:, 0].std(ddof=1))} | compactness of normals "
              f"{fmt(r[:, 1].mean())} | centre cosines mean {fmt(r[:, 2].mean())} "
              f"(std {fmt(r[:, 3].mean())})")
print("simplex value -1/(N-1) =", fmt(-1 / (NUM_CLASSES - 1)), "for N = 4")

# %% [markdown]
# *The test, fixed before the results* (B1-B3 alike): the detection score of the variant
# minus that of the reference on the same test clips and seeds, with a 95 % paired bootstrap
# interval over clips and seeds (`evaluation.paired_difference`; hmean of AUC and pAUC on the
# synthetic data, official score on the valve data). SUPPORTED when the interval lies above
# 0 on both data sets, CONTRADICTED when it lies below 0 on either, else INCONCLUSIVE with
# the smallest difference the run could have detected (`claims.all_of`). The synthetic data
# are one draw for all seeds: the seeds cover training randomness, the clip resampling the
# data.
#
# **Clear of the rounding, not only of 0** (the rule of notebook 05): an interval decides
# only if it clears 0 by its *resolution*, twice the largest move of its ends measured under
# a change of rounding alone (the same code and data on a CPU with other vector
# instructions; `claims.from_interval(..., resolution=)`): $0.04$ on the synthetic data and
# $0.06$ on the valve data (the measured moves are in the tolerance comments of the cells).
# The detectable effect is the half-width plus the resolution.
#
# **Criterion change: the resolution.** The rule above was added after a stored run and
# before the one shown here; before, an interval had only to clear 0. Under the old rule B2
# was already decided (CONTRADICTED); the resolutions were set from the measured moves of the
# rounding before this run, not from B2's margin.

# %%
# tolerance: abs=0.04; B1 differences: B1's scores moved by 0.018 (AVX-512 vs AVX2), x2
b1_diff = {d: paired(d, B1_SCORES[d, True], B1_SCORES[d, False]) for d in ("synthetic", "valve")}
b1_parts = {d: from_interval(diff, unit=UNITS[d], resolution=RESOLUTION[d])
            for d, diff in b1_diff.items()}
for d, diff in b1_diff.items():
    print(f"{d:9s} trainable - fixed centres {fmt_interval(diff)} -> {b1_parts[d][0]}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, data_name in zip(axes, ("synthetic", "valve"), strict=True):
    for i, trainable in enumerate((False, True)):
        ax.scatter(np.full(len(SEEDS), i), B1[data_name, trainable][:, 0], color=f"C{i}")
    ax.set_xticks([0, 1], ["fixed", "trainable"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_title(data_name)
    ax.set_ylabel("hmean(AUC, pAUC)" if data_name == "synthetic" else "official score")
    ax.grid(alpha=0.3)
fig.suptitle("B1: AdaCos with fixed vs trainable class centres (one dot per seed)")
fig.tight_layout()
plt.show()

b1_verdict = all_of(*b1_parts.values())
verdict = claim("B1", b1_verdict[0],
      "trainable - fixed centres: synthetic " + fmt_interval(b1_diff["synthetic"]) + ", valve "
      + fmt_interval(b1_diff["valve"]) + "; trained centre cosine "
      + fmt(B1["synthetic", True][:, 2].mean()) + " / " + fmt(B1["valve", True][:, 2].mean())
      + " vs simplex " + fmt(-1 / (NUM_CLASSES - 1)),
      detectable=b1_verdict[1],
      statement="Trainable class centres give a higher detection score than fixed random "
                "centres, on synthetic and real valve data (paired interval).",
      figures={"difference": {d: [v.estimate, v.low, v.high] for d, v in b1_diff.items()},
               "score": {f"{d}/{'trainable' if t else 'fixed'}": B1[d, t][:, 0]
                         for d, t in B1},
               "normal_compactness": {f"{d}/{'trainable' if t else 'fixed'}":
                                      float(B1[d, t][:, 1].mean()) for d, t in B1},
               "centre_cosine_mean": {f"{d}/{'trainable' if t else 'fixed'}":
                                      float(B1[d, t][:, 2].mean()) for d, t in B1},
               "simplex_cosine": -1 / (NUM_CLASSES - 1)},
      notebook=NOTEBOOK)

# %% [markdown]
# ## B2 — the number of sub-clusters M
#
# Sub-cluster AdaCos gives each class M sub-centres and scores the class by the sum of its
# sub-centres' softmax terms, so a class made of several modes no longer has to be squeezed
# onto one centre: the compactness that the loss bounds is the one w.r.t. the *nearest
# sub-centre*. On our synthetic data each class has exactly 4 modes. We train M in
# {1, 4, 16} (faithful scale update, `variant="faithful"`) and compare detection scores and
# the compactness of normal test clips w.r.t. their nearest own sub-centre.

# %%
M_VALUES = (1, 4, 16)
B2, B2_SCORES = {}, {}
for m in M_VALUES:
    rows, clip_scores = [], []
    for seed in SEEDS:
        scores, result = run(SYN, seed=seed, config=SYN_CONFIG, method="subcluster-adacos",
                             num_subclusters=m)
        clip_scores.append(scores)
        rows.append((synthetic_score(scores), normal_compactness(SYN, result, SYN_NORMALS)))
    B2[m], B2_SCORES[m] = np.array(rows), np.array(clip_scores)
    print(f"M = {m:2d} | score {fmt(B2[m][:, 0].mean())} +- {fmt(B2[m][:, 0].std(ddof=1))} | "
          f"compactness of normals (nearest own sub-centre) {fmt(B2[m][:, 1].mean())}")

# %%
# tolerance: abs=0.04; B1's synthetic detector, whose scores moved by 0.016 (AVX-512 vs AVX2), x2
b2_values = np.stack([B2[m][:, 0] for m in M_VALUES])[:, None]  # (M values, 1, seeds)
best_m = max(M_VALUES[1:], key=lambda m: B2[m][:, 0].mean())
b2_diff = paired("synthetic", B2_SCORES[best_m], B2_SCORES[1])
b2_verdict = from_interval(b2_diff, unit=UNITS["synthetic"],
                           resolution=RESOLUTION["synthetic"])
print(f"best M = {best_m} (by its mean) minus M = 1: {fmt_interval(b2_diff)} -> {b2_verdict[0]}")

fig, ax = plt.subplots(figsize=(4.5, 3.2))
plots.plot_vs_condition(ax, b2_values[:, 0][None], conditions=[str(m) for m in M_VALUES],
                        methods=["sub-cluster AdaCos"], ylabel="hmean(AUC, pAUC)")
ax.set_xlabel("sub-clusters per class M")
ax.set_title("B2: synthetic data, 4 modes per class")
fig.tight_layout()
plt.show()

verdict = claim("B2", b2_verdict[0],
      f"best M = {best_m}: " + fmt(B2[best_m][:, 0].mean()) + " vs M = 1: "
      + fmt(B2[1][:, 0].mean()) + ", paired difference " + fmt_interval(b2_diff),
      detectable=b2_verdict[1],
      statement="Sub-cluster AdaCos with M = 4 or 16 sub-clusters detects better than with "
                "M = 1 on classes made of 4 modes (paired interval).",
      figures={"score": {str(m): B2[m][:, 0] for m in M_VALUES},
               "normal_compactness": {str(m): float(B2[m][:, 1].mean()) for m in M_VALUES},
               "best_m": best_m, "difference": [b2_diff.estimate, b2_diff.low, b2_diff.high]},
      notebook=NOTEBOOK)

# %% [markdown]
# ## B3 — AdaProj: compactness to subspaces instead of centres
#
# AdaProj replaces the M sub-centres of a class by the subspace they span: the logit of
# class n is the cosine between x~ and its projection onto that subspace, so the loss bounds
# the "compactness to the subspace" 2 - 2 cos(x~, P_n x~), a much weaker constraint than the
# compactness to one of M points — inside its subspace a class may spread freely. The
# AdaProj paper argues that this keeps more information for detecting anomalies. Same data,
# same M = 4, same training for both; we report the detection scores, each model's own
# compactness (to the nearest own sub-centre, resp. to the own subspace) and the mean angle
# between normal test embeddings of the same class (how much the class spreads).

# %%
# tolerance: abs=0.03 rel=0.02; scores moved by 0.014, angles by 0.9 % (AVX-512 vs AVX2), x2
def intra_class_angle(data, detector, normals) -> float:
    """Mean angle (degrees) between normal test embeddings of the same class."""
    z = detector.embed(data["test_x"])[normals]
    return metrics.angle_statistics(z, detector.head.centres[...],
                                    data["test_y"][normals])["mean_intra_class_angle"]


B3, B3_SCORES = {}, {}
for data_name, data, config, score, normals in (
        ("synthetic", SYN, SYN_CONFIG, synthetic_score, SYN_NORMALS),
        ("valve", VALVE, VALVE_CONFIG, valve_score, VALVE_NORMALS)):
    for method in ("subcluster-adacos", "adaproj"):
        rows, clip_scores = [], []
        for seed in SEEDS:
            scores, result = run(data, seed=seed, config=config, method=method,
                                 num_subclusters=4)
            clip_scores.append(scores)
            rows.append((score(scores), normal_compactness(data, result, normals),
                         intra_class_angle(data, result, normals)))
        B3[data_name, method] = np.array(rows)
        B3_SCORES[data_name, method] = np.array(clip_scores)
        r = B3[data_name, method]
        print(f"{data_name:9s} {method:17s} | score {fmt(r[:, 0].mean())} +- "
              f"{fmt(r[:, 0].std(ddof=1))} | own compactness {fmt(r[:, 1].mean())} | "
              f"intra-class angle {fmt(r[:, 2].mean(), 1)} deg")

# %%
# tolerance: abs=0.06 rel=0.02; margins moved by 0.026, angles by 0.9 % (Zen 4 AVX-512 vs AVX2), x2
b3_diff = {d: paired(d, B3_SCORES[d, "adaproj"], B3_SCORES[d, "subcluster-adacos"])
           for d in ("synthetic", "valve")}
b3_parts = {d: from_interval(diff, unit=UNITS[d], resolution=RESOLUTION[d])
            for d, diff in b3_diff.items()}
for d, diff in b3_diff.items():
    print(f"{d:9s} AdaProj - sub-cluster AdaCos {fmt_interval(diff)} -> {b3_parts[d][0]}")
b3_verdict = all_of(*b3_parts.values())
verdict = claim("B3", b3_verdict[0],
      "AdaProj - sub-cluster AdaCos (M = 4): synthetic " + fmt_interval(b3_diff["synthetic"])
      + ", valve " + fmt_interval(b3_diff["valve"]) + "; intra-class angle "
      + fmt(B3["synthetic", "adaproj"][:, 2].mean(), 1) + " vs "
      + fmt(B3["synthetic", "subcluster-adacos"][:, 2].mean(), 1) + " deg (synthetic)",
      detectable=b3_verdict[1],
      statement="AdaProj detects better than sub-cluster AdaCos with the same M, on "
                "synthetic and real valve data (paired interval).",
      figures={"difference": {d: [v.estimate, v.low, v.high] for d, v in b3_diff.items()},
               "score": {f"{d}/{m}": B3[d, m][:, 0] for d, m in B3},
               "own_compactness": {f"{d}/{m}": float(B3[d, m][:, 1].mean()) for d, m in B3},
               "intra_class_angle_deg": {f"{d}/{m}": float(B3[d, m][:, 2].mean())
                                         for d, m in B3}},
      notebook=NOTEBOOK)

# %% [markdown]
# ## B4 — neural collapse during training
#
# Papyan, Han & Donoho (PNAS 2020) observed that deep classifiers trained far enough show
# *neural collapse*: NC1, the within-class variability relative to the between-class
# variability, goes to 0; NC2, the class means become equinorm and equiangular (a simplex);
# NC3, the classifier's weight vectors align with the class means; NC4, the classifier
# decides like the nearest class mean. For an angular margin model the classifier is the set
# of class centres and the features are the normalised embeddings. Then NC1 -> 0 says that
# each class shrinks to its mean, and NC3 -> 0 that the means sit on the centres — together
# exactly "compactness w.r.t. the class centres -> 0", the quantity the paper says angular
# margin losses minimise. With *fixed random* centres NC2 cannot go to 0 if NC3 does (random
# centres are not a simplex); with trainable centres it can.
#
# We train AdaCos on the synthetic data with fixed and with trainable centres, recording
# NC1-NC4 (`dynamics.neural_collapse_callback`) and the compactness
# (`train.compactness_callback`) on the training set after every epoch, and before training.

# %%
B4_EPOCHS = 40 if MODE == "ci" else 100
x_flat, y_flat = SYN["train_x"][:, 0], SYN["train_y"].astype(np.int32)
B4, B4_HEADS = {}, {}
for trainable in (False, True):
    rngs = nnx.Rngs(jax.random.key(7))
    model = models.MLPEmbedder(DIM, 32, hidden=(128, 128), rngs=rngs)
    head = models.make_head("adacos", embed_dim=32, num_classes=NUM_CLASSES, rngs=rngs,
                            trainable_centres=trainable)
    callbacks = [dynamics.neural_collapse_callback(x_flat, y_flat),
                 train.compactness_callback(x_flat, y_flat)]
    initial = {k: v for cb in callbacks for k, v in cb(model, head).items()}
    history = train.fit(model, head, x_flat, y_flat, callbacks=callbacks,
                        config=train.TrainConfig(epochs=B4_EPOCHS, batch_size=64,
                                                 learning_rate=1e-3, progress=False),
                        key=jax.random.key(8))
    B4[trainable] = {k: np.array([initial[k], *history[k]]) for k in initial}
    B4_HEADS[trainable] = head
    h = B4[trainable]
    print(f"{'trainable' if trainable else 'fixed':9s} centres | " + " | ".join(
        f"{k} {fmt(h[k][0])} -> {fmt(h[k][-1])}" for k in h))

# %% [markdown]
# **A floor for NC3 with fixed centres.** NC3 compares the classifier with the class means
# *centred by the global mean*. Fixed random centres do not sum to zero, so even embeddings
# that sit exactly on their centres (compactness 0) leave NC3 at the distance between the
# centres and their centred copy:

# %%
fixed_centres = np.asarray(B4_HEADS[False].centres[...])
nc3_floor = metrics.neural_collapse(fixed_centres, np.arange(NUM_CLASSES),
                                    fixed_centres)["nc3"]
print("NC3 of embeddings placed exactly on the fixed centres of the run above:",
      fmt(nc3_floor))

# %%
# tolerance: rel=0.013; NC figures moved by 0.65 % (Zen 4 AVX-512 vs AVX2), x2
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, trainable in zip(axes, (False, True), strict=True):
    for k, v in B4[trainable].items():
        ax.plot(np.arange(v.size), v, label=k)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title(f"B4: AdaCos, {'trainable' if trainable else 'fixed'} centres")
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# NC3's attainable minimum: 0 for trainable centres, the floor above for fixed ones.
nc3_floor_of = {False: nc3_floor, True: 0.0}
b4_ok = {}
for trainable, h in B4.items():
    floor = nc3_floor_of[trainable]
    b4_ok[trainable] = bool(h["nc1"][-1] < 0.1 * h["nc1"][0]
                            and h["nc3"][-1] - floor < 0.1 * (h["nc3"][0] - floor)
                            and h["nc4"][-1] < 0.05
                            and h["compactness"][-1] < h["compactness"][0])
verdict = claim("B4", SUPPORTED if all(b4_ok.values()) else CONTRADICTED,
      "fixed centres: NC1 " + fmt(B4[False]["nc1"][0]) + " -> " + fmt(B4[False]["nc1"][-1])
      + ", NC3 " + fmt(B4[False]["nc3"][0]) + " -> " + fmt(B4[False]["nc3"][-1])
      + ", compactness " + fmt(B4[False]["compactness"][0]) + " -> "
      + fmt(B4[False]["compactness"][-1]) + "; trainable: NC1 -> " + fmt(B4[True]["nc1"][-1])
      + ", NC3 -> " + fmt(B4[True]["nc3"][-1]) + ", NC2 angles -> "
      + fmt(B4[True]["nc2_equiangularity"][-1]) + "; NC3 floor of the fixed centres "
      + fmt(nc3_floor),
      statement="Training the angular margin model (AdaCos) drives NC1 below a tenth of its "
                "initial value, NC3 to within a tenth of its initial distance from its floor, "
                "NC4 below 0.05, with the compactness falling.",
      figures={**{("trainable" if t else "fixed"): {k: [v[0], v[-1]] for k, v in h.items()}
                  for t, h in B4.items()}, "nc3_floor_fixed": nc3_floor},
      notebook=NOTEBOOK)

# %% [markdown]
# ## B5 — the AdaCos scale over long training
#
# AdaCos sets the scale from the batch, s <- ln(B_avg) / cos(min(pi/4, theta_med)), with
# B_avg the batch mean of the summed *non-target* terms e^{s cos theta_k}. Near convergence
# the non-target cosines stay well below the target cosine, so ln B_avg grows more slowly
# than s and the update has a finite fixed point s* ~ ln((N-1)M) / (cos theta_med - c),
# c a (log-sum-exp weighted) non-target cosine: the faithful scale is bounded.
#
# The author's public sub-cluster AdaCos code differs in two places
# (`losses.subcluster_adacos_scale(variant="code")`): B_avg includes the *target* terms and
# theta_med is the median of the *sum* of the M target sub-centre angles. Once the embeddings
# sit near a target sub-centre, ln B_avg ~ s max_i cos theta_i (the log of a batch mean of
# exponentials is dominated by its largest term), so the update becomes
# s <- s max_i cos theta_i / cos(min(pi/4, theta_med)): for M > 1 the summed angle exceeds
# pi/4, the denominator is $\cos(\pi/4)\approx0.71$ and s grows by a factor of up to sqrt(2) per
# step — geometrically, without bound. (For M = 1 the factor is max_i cos / median_i cos,
# also above 1.)
#
# We let free embeddings ("unconstrained features": the embeddings themselves are the
# parameters) of N = 8 classes in R^16 train with sub-cluster AdaCos against fixed random
# sub-centres for thousands of full-batch Adam steps (`dynamics.scale_trajectory`), with
# both scale updates, M in {1, 4}.

# %%
# tolerance: rel=0.5; blown-up scales (> 1e9) moved by 20 % and 24 % (two AVX-512 CPUs vs AVX2), x2
B5_STEPS = 5000 if MODE == "ci" else 20000
B5_M = (1, 4) if MODE == "ci" else (1, 4, 16)
B5 = {(m, v): dynamics.scale_trajectory(jax.random.key(5), num_classes=8, num_subclusters=m,
                                        dim=16, samples_per_class=16, steps=B5_STEPS,
                                        variant=v)
      for m in B5_M for v in ("faithful", "code")}


def blow_up(s, s0):
    """First step at which the scale exceeds 1000 s0 or stops being finite (None: never)."""
    bad = np.flatnonzero(~np.isfinite(s) | (s > 1000 * s0))
    return None if bad.size == 0 else int(bad[0])


def _step(step):
    return "never" if step is None else f"at step {step}"


b5 = {}
for (m, v), r in B5.items():
    s, s0 = r["scale"], losses.adacos_fixed_scale(8, m)
    finite = np.isfinite(s)
    nan_loss = np.flatnonzero(~np.isfinite(r["loss"]))
    b5[m, v] = {"s0": s0, "max_scale": float(np.max(s[finite])),
                "final_scale": float(s[-1]) if finite[-1] else None,
                "final_loss": float(r["loss"][-1]) if np.isfinite(r["loss"][-1]) else None,
                "blow_up_step": blow_up(s, s0),
                "first_nan_loss_step": int(nan_loss[0]) if nan_loss.size else None,
                "final_median_target_angle": float(r["median_target_angle"][-1])}
    print(f"M = {m:2d} {v:8s} | s0 {fmt(s0)} | max s {fmt_e(b5[m, v]['max_scale'], 2)} | final s "
          f"{fmt_e(s[-1], 2)} | blow-up step {b5[m, v]['blow_up_step']} | first NaN loss step "
          f"{b5[m, v]['first_nan_loss_step']} | final loss {fmt(r['loss'][-1])} | final "
          f"median target angle {fmt(r['median_target_angle'][-1], 1)} deg")

# %%
# tolerance: rel=0.5; the figures hold the blown-up scales of the cell above, moved by 24 %
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for (m, v), r in B5.items():
    style = "-" if v == "faithful" else "--"
    color = f"C{B5_M.index(m)}"
    steps = np.arange(1, B5_STEPS + 1)
    axes[0].plot(steps, r["scale"], style, color=color, label=f"M={m}, {v}")
    axes[1].plot(steps, r["loss"], style, color=color)
    axes[2].plot(steps, r["median_target_angle"], style, color=color)
for ax, title in zip(axes, ("scale s", "mean loss", "median target angle (deg)"), strict=True):
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
axes[0].set_yscale("log")
axes[0].legend(fontsize=8)
fig.suptitle("B5: sub-cluster AdaCos scale on free embeddings (solid: faithful, dashed: code)")
fig.tight_layout()
plt.show()

faithful_ok = all(b5[m, "faithful"]["blow_up_step"] is None
                  and b5[m, "faithful"]["max_scale"] < 10 * b5[m, "faithful"]["s0"]
                  for m in B5_M)
code_diverges = all(b5[m, "code"]["blow_up_step"] is not None for m in B5_M if m > 1)
verdict = claim("B5", SUPPORTED if faithful_ok and code_diverges else CONTRADICTED,
      f"over {B5_STEPS} steps: faithful max s / s0 = "
      + ", ".join(fmt(b5[m, "faithful"]["max_scale"] / b5[m, "faithful"]["s0"], 2)
                  + f" (M={m})" for m in B5_M)
      + "; code variant blows up at step "
      + ", ".join(f"{b5[m, 'code']['blow_up_step']} (M={m})" for m in B5_M)
      + ", first NaN loss "
      + ", ".join(f"{_step(b5[m, 'code']['first_nan_loss_step'])} (M={m})" for m in B5_M),
      statement="The faithful AdaCos scale stays finite and below 10 s0 over thousands of "
                "steps, while the public-code variant exceeds 1000 s0 or overflows for M > 1.",
      figures={f"M{m}/{v}": {k: val for k, val in d.items() if val is not None}
               for (m, v), d in b5.items()},
      notebook=NOTEBOOK)

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this discussion says what they mean and leaves the numbers
# to the printed lines above.
#
# **B1 (INCONCLUSIVE).** Trainable and fixed centres detect equally well here: the paired
# intervals of trainable minus fixed contain 0 on both data sets (the CLAIM line); they are
# narrow, and the detectable effects are set mostly by the rounding resolutions.
# The centres themselves behave exactly as the theory says: trained centres end with pairwise
# cosines at essentially the regular-simplex value $-1/3$, while fixed random centres keep
# cosines scattered around 0 (the "centre cosines" lines). On the synthetic data the
# trainable-centre model is also far more compact (the "compactness of normals" lines), yet
# this does not buy any detection performance: the back-end scores distances to k-means
# centres of the training clips, not to the class centres, and the anomalies are displaced
# modes whose separation from the normals is what matters. The valve normals stay far from
# their class centres with either choice (a compactness not far below 2, the value of
# orthogonal vectors): with 60 training clips the attribute task hardly generalises in this
# small MLP setting. The public re-evaluations concern full DCASE systems (large networks,
# all training data); our small setting neither reproduces nor refutes them.
#
# **B2 (CONTRADICTED).** More sub-clusters made detection *worse* on data built to have 4
# modes per class: the score falls from M = 1 to M = 4 to M = 16 (the table above), and the
# best of M = 4, 16 minus M = 1 lies below 0 over clips and seeds and clear of the rounding
# resolution, though only just (the interval printed above the CLAIM line). (M = 1 is
# AdaCos, and its numbers coincide with B1's fixed-centre AdaCos run for run, as they must.)
# The compactness to the nearest own sub-centre does fall with M, so
# the loss does what the bound says — it is the detection that does not follow. A plausible
# reason, not tested here: with M fixed random sub-centres the modes of a class are assigned
# to sub-centres arbitrarily, and with many sub-centres the embedding can place a displaced
# (anomalous) mode close to some other sub-centre of the class, hiding its displacement.
#
# **B3 (INCONCLUSIVE).** AdaProj is not measurably better or worse than sub-cluster AdaCos
# with the same M = 4: both paired intervals contain 0 (the CLAIM line, with the detectable
# effects). Its own compactness, to the class subspace, is lower than sub-cluster AdaCos's
# compactness to the nearest sub-centre on both data sets, and on the synthetic data its
# classes spread more (the intra-class angles) — the freedom AdaProj is designed to give —
# but on the valve data less. In this setting the weaker constraint does not translate into
# better detection.
#
# **B4 (SUPPORTED with the floor-aware criterion).** With trainable centres the model reaches
# full neural collapse: NC1, NC2 and NC3 fall to near 0, NC4 to 0, and the compactness with
# them (the "trainable centres" line). With fixed random centres NC1 and NC4 fall as well,
# but NC3 stays just above the floor of embeddings sitting exactly on those centres (the
# printed floor; NC3 centres the class means, random centres do not sum to zero); judged
# against the floor it comes within a tenth of its initial distance, so NC3 does collapse.
# More telling is the compactness w.r.t. the fixed centres, which stalls far above the
# trainable-centre model's (the "fixed centres" line): the classes collapse to their means
# (NC1), but the means do not reach the centres. The reason is the softmax itself: the
# gradient of the loss pulls x~ towards c_y - sum_k p_k c_k, which for centres summing to
# zero (a simplex) points at c_y, but for random centres points away from the nearby other
# centres too, and with the small adaptive AdaCos scale (p_k not negligible; see B5) the
# optimum sits well away from c_y. So "angular margin training minimises the compactness"
# holds in the neural-collapse sense — within-class collapse always, collapse onto the
# centres when the centres can form a simplex.
#
# **B5 (SUPPORTED).** The faithful AdaCos scale is bounded: its maximum stays close to s0
# for both M (the CLAIM line), and it settles *below* s0 (the "final s" column) while the
# median angle to the own (nearest) centre settles at a moderate angle with the loss at or
# below $\log 2$: the adaptive scale shrinks as the classes tighten, which keeps it stable
# and also stops the compactness from going further (the stall of B4). The public-code
# variant diverges as derived above: once the loss has underflowed to 0 the embeddings all
# but stop moving and s grows geometrically — past 1000 s0 within about a hundred steps (the
# blow-up steps in the CLAIM line), by many orders of magnitude (the "max s" column). With
# M = 1 the loss then stays at 0 with every embedding on its centre; with M = 4 the loss
# turns NaN (the step is in the CLAIM line), and after that the embeddings carry no class
# information any more (median target angle 90 degrees; final loss $\ln 8$, chance). What
# we tested is the library's reading of the public code
# (`losses.subcluster_adacos_scale(variant="code")`, see DESIGN "Formulas") on free
# embeddings with full batches; whether and when a real training run (network, mini-batches,
# mixup, a finite number of epochs) reaches the regime where the loss underflows is not
# answered here.
#
# ## Summary
#
# Of the five questions beyond the paper, B4 and B5 are answered as expected: neural
# collapse (onto the centres' attainable position) happens, and the faithful AdaCos scale is
# stable while the public-code variant is not. B2 is CONTRADICTED: more sub-clusters lower the
# compactness the loss controls but make detection worse on 4-mode classes. B1 and B3 are
# INCONCLUSIVE at this size: trainable centres (which do converge to a simplex) and AdaProj
# change the geometry without a detectable change in detection. On the valve data the clip
# level alone (the reference printed with the valve data) scores above every trained
# detector here.

# %%
# tolerance: abs=0.04; margins, spreads moved by 0.016 (AVX-512 vs AVX2), x2
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

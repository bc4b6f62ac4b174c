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
# # 04 — Real machine sounds: valve recordings, clean and with real noise (claim C4)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# Notebook 03 tested, on synthetic sounds, whether an angular margin loss with an auxiliary
# classification task beats one-class and generative models in noise. Here the same
# comparison runs on **real recordings** with the **official DCASE evaluation**.
#
# **Claim C4 (our reading of the abstract).** On real machine sounds, sub-cluster AdaCos
# trained on the auxiliary task "attribute" achieves a higher official DCASE score than Deep
# SVDD and the autoencoder baseline, on the recordings as they are and with real background
# noise mixed in at 0 and −5 dB (ci mode: 0 dB only, see below).
#
# **Data and licence.** DCASE 2023 Challenge Task 2 development set, machine `valve`,
# section 00 (recordings from MIMII DG, made in real factories, so they already contain
# factory noise), 16 kHz, 10 s per clip. The recordings are published under the **Creative
# Commons Attribution 4.0 International (CC BY 4.0)** licence; please cite:
#
# * K. Dohi et al., "MIMII DG: Sound dataset for malfunctioning industrial machine
#   investigation and inspection for domain generalization task", DCASE 2022 Workshop.
# * K. Dohi et al., "Description and discussion on DCASE 2023 challenge task 2: first-shot
#   unsupervised anomalous sound detection for machine condition monitoring", DCASE 2023
#   Workshop.
#
# The background noise is `doing_the_dishes.wav` from the `_background_noise_` folder of
# the Speech Commands dataset (P. Warden, "Speech Commands: A dataset for
# limited-vocabulary speech recognition", 2018), also **CC BY 4.0**. We use the longest of
# the four recordings (95 s), so that the random offsets of 200 clips rarely overlap.
#
# The ci-mode clips are the 200 test clips of `dev_valve.zip`
# (https://zenodo.org/record/7882613) — anyone who downloads that archive gets the same
# numbers.

# %%
# %matplotlib inline

import dataclasses

import jax
import matplotlib.pyplot as plt
import numpy as np

from asdtheory import evaluation
from asdtheory.data import dcase
from asdtheory.detect import systems
from asdtheory.detect.dcase import RunConfig, run
from asdtheory.repro.claims import all_of, claim, fmt, fmt_interval, from_interval, records
from asdtheory.repro.runmode import budget, run_mode

MODE = run_mode()
NOTEBOOK = "04_real_machine_sounds"
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
print("run mode:", MODE)

# %% [markdown]
# ## Protocol
#
# **ci mode — the valve mini protocol** (`dcase.valve_mini_protocol`): for each of the four
# attributes (`pat_00`, `pat_01` source domain; `pat_02`, `pat_03` target domain) its 25
# normal clips are sorted by file index; the first 15 train (60 clips), the last 10 test
# (40 normal test clips); all 100 anomalous clips are test clips. Official DCASE 2023 rules:
# AUC source on 20 source normals + 100 anomalies, AUC target on 20 target normals + 100
# anomalies, pAUC (max FPR 0.1) on all 140; official score = harmonic mean of the three.
#
# **full mode** (`ASDTHEORY_MODE=full`, data fetched with `asdtheory data fetch` into
# `$ASDTHEORY_DATA`): the official train/test split of every DCASE 2023 development machine
# present (all seven when fetched), **one** system trained on the training clips of all of
# them, 3 seeds, 10 epochs of the reference system's batches of 64.
#
# **Systems** (`detect.systems.get("reference").config(method)`, run by
# `asdtheory.detect.dcase.run`, one call per method, condition and seed): our
# re-implementation of K. Wilkinghoff's public DCASE 2022/2023 system
# (`detect.systems`, deviations listed there) --
# the two-branch network (`models.TwoBranchEmbedder`: |FFT| of the whole 10-s waveform with
# strided 1-D convolutions and dense layers; STFT magnitude with a residual 2-D CNN; no bias
# terms; batch norm) trained on the auxiliary classes (machine, section, attribute, domain),
# mixup on the waveforms, coupled L2, Adam:
#
# * (i) `deep-svdd`: the same two-branch network without batch-norm offsets (Ruff et al.'s
#   remedies: no bias, fixed centre from an initial pass), compactness loss; score = squared
#   distance of the clip's embedding to the centre.
# * (ii) `autoencoder`: the DCASE 2023 baseline (128 log-mel bands, 5 stacked frames at
#   every frame, 4 x 128 dense layers, 8-d bottleneck); score = mean squared reconstruction
#   error. Trained for the same number of optimiser steps as the others, and, as row (ii'),
#   for 10 epochs of its own examples (one step of the autoencoder costs little, and equal
#   steps give it a fraction of one pass over its frames): the verdict uses whichever of
#   the two is stronger.
# * (iii) `subcluster-adacos`: the reference system, 16 fixed random sub-centres per class;
#   score = cosine distance of the clip embedding to the nearest of 16 k-means centres of
#   its section's source-domain training clips or of a target-domain training clip
#   (Wilkinghoff's DCASE back-end).
# * (iv) full mode only: `subcluster-adacos+random-labels`, the control of notebook 03, (iii)
#   trained on randomly permuted class labels; shown beside the others, not part of the
#   verdict.
#
# **ci mode sizes the network to the CPU**: the same architecture at half width
# (spectrogram channels 8, 8, 16, 32, 64; spectrum branch 64 filters and 64 dense units;
# 64-d embedding per branch), 2 seeds, 14 optimiser steps per method (7 epochs of the 60
# training clips in batches of 32), no random-label row. The full-width network would take
# the ci grid far beyond the time a ci notebook may take.
#
# **ci mode runs two conditions, clean and 0 dB, for 7 epochs (14 steps); full mode runs
# clean, 0 dB and −5 dB for 10 epochs.** Both cuts keep the ci notebook within its time
# budget on one CPU core and were fixed before the run whose outputs are stored; seeds,
# clips, noise offsets and criteria are the same in both modes. Fewer steps give weaker
# systems: ci mode checks that the protocol runs end to end and reports what it can
# resolve; the test that can decide C4 is full mode.
#
# **Noise**: the recording is added to every clip, training and test, from a random offset
# per clip, at the SNR relative to one label-free level: the mean power of the normal
# training clips (`audio.mix_at_snr(..., reference_power=...)` inside `detect.dcase.run`).
# Every clip gets noise of the same power. (Noise scaled to each clip's own power would make
# the noise level follow the clip and thus the label.)

# %%
if MODE == "ci":
    PROTOCOL, MACHINES = "mini", ("valve",)
    SIZE = budget(seeds=2, batch=32, epochs=7, seconds=10)
    WIDTH = 0.5  # the reference network at half width
    n_train = len(dcase.valve_mini_protocol(DATA).train)
else:
    PROTOCOL, MACHINES = "full", "all"
    SIZE = budget(seeds=3, batch=64, epochs=10, seconds=10)
    WIDTH = 1.0
    raw = dcase.data_root(DATA) / "dcase2023t2" / "dev_data" / "raw"
    present = [m for m in dcase.DEV_MACHINES_2023 if (raw / m / "train").is_dir()]
    if not present:
        raise FileNotFoundError(f"full mode needs DCASE 2023 development data under {raw}; "
                                "fetch it with `asdtheory data fetch --machine all`.")
    n_train = sum(len(dcase.official_split(DATA, m).train) for m in present)
SEEDS, BATCH, EPOCHS = tuple(range(SIZE["seeds"])), SIZE["batch"], SIZE["epochs"]
STEPS = EPOCHS * -(-n_train // BATCH)  # EPOCHS passes over the training clips
NOISE = "doing_the_dishes"
CONDITIONS = (None, 0.0) if MODE == "ci" else (None, 0.0, -5.0)
CONDITION_NAMES = ["clean"] + [f"{snr:g} dB" for snr in CONDITIONS[1:]]
# (label, method, budget): "steps" = the common number of optimiser steps, "epochs" =
# EPOCHS epochs of the method's own examples.
SYSTEMS = [("(i) Deep SVDD", "deep-svdd", "steps"),
           ("(ii) autoencoder", "autoencoder", "steps"),
           (f"(ii') autoencoder, {EPOCHS} epochs", "autoencoder", "epochs"),
           ("(iii) sub-cluster AdaCos", "subcluster-adacos", "steps")]
if MODE == "full":
    SYSTEMS.append(("(iv) random labels", "subcluster-adacos+random-labels", "steps"))
LABELS = [label for label, _, _ in SYSTEMS]


def detector(method, size):
    config = dataclasses.replace(
        systems.get("reference").config(method, small_data=PROTOCOL == "mini", width=WIDTH),
        progress=False)
    if method != "autoencoder":
        config = dataclasses.replace(config, batch_size=BATCH)
    if size == "epochs":
        return dataclasses.replace(config, epochs=EPOCHS, steps=None)
    return dataclasses.replace(config, steps=STEPS)


print(f"protocol {PROTOCOL}; machines {MACHINES}; seeds {SEEDS}; {STEPS} optimiser steps per "
      f"method (batch {BATCH}); noise {NOISE}")

# %% [markdown]
# Every method gets the same number of optimiser steps (`DetectorConfig(steps=...)`), and
# the autoencoder in addition its own epochs (row ii'; 7 in ci mode, 10 in full mode). In ci
# mode 14 steps are 7 passes over the 60 training clips for (i) and (iii), and 3 584 of the
# 18 540 stacked-frame vectors for (ii); (ii') runs 511 steps of 256 vectors. (Equal
# *epochs* alone would give the autoencoder, whose examples are stacked frames, many times
# the optimiser steps of the others.)
#
# **Criterion change: the systems.** Before this run every method ran on a small residual
# CNN on ~2-s log-mel windows of one machine type; on these clips it scored near chance and
# below the level-only reference, so its verdicts said nothing about the paper's system,
# and it was replaced by the re-implementation of the author's system described above.
#
# ## The test, fixed before the results
#
# For every condition, each method's official score is computed per seed, and the
# comparison of (iii) with its strongest rival among (i), (ii) and (ii') (the one with the higher
# mean official score in that condition) is a **paired difference**: official score of (iii)
# minus that of the rival on the same test clips and seeds, with a 95 % bootstrap interval
# that resamples the clips (within section, domain and label) and the seeds
# (`evaluation.paired_difference(..., metric="official")`). Pairing removes what the clips
# do to both systems alike; the interval covers the test clips and the training seeds.
#
# * **C4.a** clean: SUPPORTED when the interval of the difference lies above 0 by more than
#   its resolution (below), CONTRADICTED when it lies below 0 by more, INCONCLUSIVE
#   otherwise, with the smallest difference the run could have detected (the interval's
#   half-width plus the resolution).
# * **C4.b** noise: the same at 0 dB (full mode: and at −5 dB; SUPPORTED when both are,
#   CONTRADICTED when either is, `claims.all_of`).
# * **C4** = C4.a and C4.b, combined the same way.
#
# **Clear of the rounding, not only of 0** (the rule of notebook 05). The *resolution* is
# twice the largest move of the interval ends measured under a change of rounding alone
# (the same code and data on a CPU with other vector instructions): $0.25$ official score,
# `RESOLUTION` in the verdict cell. Each system is trained once per seed; a few optimiser
# steps of a network this size end wherever the rounding takes them, and the bootstrap over
# clips and two seeds does not contain that.
#
# **Criterion change: the resolution.** The rule above was added after a stored run and
# before the one shown here; before, an interval had only to clear 0. No verdict of this
# notebook was decided under the old rule; the change makes the detectable effects say what
# a ci-mode run can resolve.
#
# **Criterion change: a paired interval instead of a point.** The replaced criterion
# required (iii) to beat the best rival's *estimate* by more than (iii)'s own jackknife
# interval of seed 0, and printed a failed check as "not supported". That compared an
# unpaired interval with a point, ignored the seeds, and turned "the run cannot tell" into
# a negative verdict.
#
# **Reference without a model.** Beside the trained systems we score every clip by how far
# its level lies from the normal training clips' level (`scoring.level_score`, computed by
# `detect.dcase.run` on the same waveforms). If that trivial cue beats the systems, the
# test clips let loudness pass for anomaly detection, and a system near or below it has
# not learnt what the claim is about.

# %%
def run_condition(method, size, snr, seed):
    """One system trained on all machines of the protocol, for one condition and seed."""
    result = run(RunConfig(data=DATA, machines=MACHINES, protocol=PROTOCOL,
                           noise=None if snr is None else NOISE, snr=snr, seed=seed,
                           seconds=SIZE["seconds"], detector=detector(method, size)))
    return result.test_clips, result.test_scores, result.level_scores


def clip_fields(clips):
    return dict(machine=[c.machine for c in clips], section=[c.section for c in clips],
                domain=[c.domain for c in clips], is_anomaly=[c.is_anomaly for c in clips])


per_run, tables, level_tables = {}, {}, {}
for c, snr in enumerate(CONDITIONS):
    for m, (_, method, size) in enumerate(SYSTEMS):
        for s, seed in enumerate(SEEDS):
            clips, per_run[m, c, s], level = run_condition(method, size, snr, seed)
            if s == 0:
                tables[m, c] = evaluation.dcase_table(**clip_fields(clips), scores=per_run[m, c, s])
                level_tables[c] = evaluation.dcase_table(**clip_fields(clips), scores=level)
scores = np.array([[[per_run[m, c, s] for s in range(len(SEEDS))] for c in range(len(CONDITIONS))]
                   for m in range(len(SYSTEMS))])  # (systems, conditions, seeds, clips)
fields = clip_fields(clips)
official = np.array([[[evaluation.official_score(evaluation.dcase_table(**fields, scores=x))
                       for x in per_seed] for per_seed in per_condition]
                     for per_condition in scores])

# %%
# tolerance: abs=0.2; AUC, pAUC, scores; moved 0.097 between Zen 4 (2 CPUs) and an Intel Xeon
# (1 CPU), x2 (0.072 between the two on 2 CPUs; the SSE4_2 cap changes nothing)
for c, name in enumerate(CONDITION_NAMES):
    for m, label in enumerate(LABELS):
        print(f"--- {label}, {name}, seed {SEEDS[0]}" + ("" if name == "clean" else f" ({NOISE})"))
        print(evaluation.format_table(tables[m, c]))
    print(f"--- reference: clip level (no model), {name}")
    print(evaluation.format_table(level_tables[c]))
    print()

# %%
# tolerance: abs=0.08; scores; moved 0.040 under a rounding change, x2
# (the library's convolutions, same CPU; the SSE4_2 ISA cap leaves these cells unchanged)
level_official = [evaluation.official_score(level_tables[c]) for c in range(len(CONDITIONS))]
ROW = max(len(label) for label in [*LABELS, "reference: clip level"]) + 1
print(f"official score, mean ± std over {len(SEEDS)} seeds")
print(" " * ROW + "".join(f"{n:>16s}" for n in CONDITION_NAMES))
for m, label in enumerate(LABELS):
    print(f"{label:{ROW}s}" + "".join(
        f"{fmt(official[m, c].mean()):>9s} ± {fmt(official[m, c].std(ddof=1), 2):>4s}"
        for c in range(len(CONDITIONS))))
print(f"{'reference: clip level':{ROW}s}" + "".join(f"{fmt(v):>16s}" for v in level_official))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
x = np.arange(len(CONDITIONS))
for m, label in enumerate(LABELS):
    axes[0].errorbar(x + 0.06 * (m - 1.5), official[m].mean(-1),
                     yerr=official[m].std(-1, ddof=1),
                     marker="o", capsize=3, label=label)
axes[0].plot(x, level_official, "k--", marker="s", label="clip level (no model)")
axes[0].set_title(f"official score (mean ± std over {len(SEEDS)} seeds)")
axes[0].set_xticks(x, CONDITION_NAMES)
axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
axes[0].legend(fontsize=7)
for m in range(len(SYSTEMS)):
    axes[1].scatter(np.full(len(SEEDS), m), official[m, 0], s=12)
axes[1].set_xticks(range(len(SYSTEMS)), [lab.split()[0] for lab in LABELS])
axes[1].set_title("clean: official score per seed")
for ax in axes:
    ax.grid(alpha=0.3)
fig.suptitle(f"{', '.join(MACHINES)} ({PROTOCOL} protocol); noise: {NOISE}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.25; scores, interval ends; moved 0.122 between Zen 4 (2 CPUs) and an Intel
# Xeon (1 CPU), x2 (the SSE4_2 ISA cap leaves these cells unchanged)
METHODS = [(method, size) for _, method, size in SYSTEMS]
BEST = METHODS.index(("subcluster-adacos", "steps"))
RIVALS = [m for m, (method, _) in enumerate(METHODS) if method in ("deep-svdd", "autoencoder")]
BOOTSTRAP_KEY = jax.random.key(4)
RESOLUTION = 0.25  # twice the largest measured move of the interval ends (criteria above)


def versus_rival(c):
    """(rival, paired difference of (iii) minus the rival) in condition c."""
    rival = max(RIVALS, key=lambda m: official[m, c].mean())
    diff = evaluation.paired_difference(scores[BEST, c], scores[rival, c], metric="official",
                                        key=BOOTSTRAP_KEY, **fields)
    return rival, diff


comparisons = [versus_rival(c) for c in range(len(CONDITIONS))]
parts = [from_interval(diff, unit=f"official score ({CONDITION_NAMES[c]})",
                       resolution=RESOLUTION)
         for c, (_, diff) in enumerate(comparisons)]


def summary(c):
    rival, diff = comparisons[c]
    return (f"{CONDITION_NAMES[c]}: (iii) - {LABELS[rival].split()[0]} "
            f"{fmt_interval(diff)}, level-only {fmt(level_official[c])}")


for c in range(len(CONDITIONS)):
    print(f"{summary(c)} -> {parts[c][0]}")

figures = {"conditions": CONDITION_NAMES, "systems": LABELS,
           "official_mean": official.mean(-1), "official_std": official.std(-1, ddof=1),
           "level_official": level_official,
           "difference": [[d.estimate, d.low, d.high] for _, d in comparisons],
           "rival": [LABELS[r] for r, _ in comparisons], "seeds": len(SEEDS),
           "machines": MACHINES, "protocol": PROTOCOL, "steps": STEPS}
a = parts[0]
b = all_of(*parts[1:])
claim("C4.a", a[0], summary(0), detectable=a[1],
      statement="On the real valve recordings sub-cluster AdaCos with the attribute task has "
      "a higher official DCASE score than Deep SVDD and the autoencoder (paired interval).",
      figures=figures, notebook=NOTEBOOK)
claim("C4.b", b[0], "; ".join(summary(c) for c in range(1, len(CONDITIONS))), detectable=b[1],
      statement=f"With real background noise at {' and '.join(CONDITION_NAMES[1:])} sub-cluster "
      "AdaCos with the attribute task has a higher official DCASE score than both rivals "
      "(paired interval).",
      figures=figures, notebook=NOTEBOOK)
c4 = all_of(a, b)
verdict = claim(
      "C4", c4[0], f"C4.a {a[0]}, C4.b {b[0]}", detectable=c4[1],
      statement="On real machine sounds, clean and in real noise, sub-cluster AdaCos with the "
      "auxiliary task beats Deep SVDD and the autoencoder (official DCASE score).",
      figures=figures, notebook=NOTEBOOK)

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this discussion says what they mean and leaves the numbers
# to the tables and CLAIM lines above.
#
# **C4 is INCONCLUSIVE in ci mode: the run cannot tell (iii) from its strongest rival.** In
# both conditions every trained system scores close to chance (the table of means over the
# seeds). The paired interval of (iii) minus its strongest rival contains 0 in both
# conditions and is wide, and the smallest difference the run could have detected (the
# detectable effect in the CLAIM lines) is larger than any gap between these systems. Two
# seeds of a few optimiser steps on 60 training clips cannot resolve C4 in either direction.
#
# **Rounding alone moves these numbers by a good part of the intervals' half-widths.** The
# same code and data with a different floating-point rounding (a CPU with other vector
# instructions) moves the interval ends by a sizeable fraction of their half-width (the
# measured moves are declared in the tolerance comments of the cells above): two seeds of a
# few optimiser steps end wherever the rounding takes them. This is why the resolution is
# part of the criterion.
#
# **The reference row beats every trained system.** Scoring each clip by how far its level
# lies from the normal training level, with no model at all, scores far above every trained
# system in both conditions (the "reference: clip level" row). On these 200 valve clips the
# anomalies differ in loudness, and 60 training clips and 14 optimiser steps do not teach
# any system more than that cue.
#
# This is still not the paper's test: its systems train one model on all seven machine
# types with about 1000 clips each, for 10 epochs at full width. The test that can decide C4
# is full mode (every machine, 3 seeds), which needs the archives (`asdtheory data fetch
# --machine all`) and a GPU-sized budget (README, "Full mode").

# %%
# tolerance: abs=0.25; scores, interval ends; moved 0.122 between Zen 4 (2 CPUs) and an Intel
# Xeon (1 CPU), x2 (the SSE4_2 ISA cap leaves these cells unchanged)
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

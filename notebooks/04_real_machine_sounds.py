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
# noise mixed in at 0 and −5 dB.
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
from asdtheory.detect.dcase import DCASE_DETECTOR, RunConfig, run
from asdtheory.repro.claims import all_of, claim, fmt, fmt_interval, from_interval, records
from asdtheory.repro.runmode import run_mode

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
# present (all seven when fetched), 3 seeds, the detector's default 20 epochs.
#
# **Detector** (`asdtheory.detect.dcase.run`, one call per method, condition and seed): 64-band
# log-mel (n_fft 1024, hop 512, 313 frames per clip) standardised by the training
# statistics. Training windows are cut from the 10-s clips: 64 consecutive frames (~2 s)
# every 32 frames, 8 windows per clip (480 training windows in ci mode), each labelled with
# its clip's attribute. Methods:
#
# * (i) `deep-svdd`: residual CNN without bias terms, compactness loss, centre fixed after an
#   initial pass; score = mean squared distance of the clip's windows to the centre.
# * (ii) `autoencoder`: DCASE baseline style, 5 stacked frames at every frame; score = mean
#   squared reconstruction error.
# * (iii) `subcluster-adacos`: the same CNN trained on the 4 attribute classes (4
#   sub-centres each); score = cosine distance of the clip's mean window embedding to the
#   nearest of 16 k-means centres of the source-domain training clips or of a target-domain
#   training clip (Wilkinghoff's DCASE back-end).
#
# * (iv) `subcluster-adacos+random-labels`: the control of notebook 03, (iii) trained on
#   randomly permuted attribute labels (same class sizes, no relation to the sound). It is
#   shown beside the others, not part of the verdict, whose rivals are (i) and (ii).
#
# **Noise**: the recording is added to every clip, training and test, from a random offset
# per clip, at the SNR relative to one label-free level: the mean power of the normal
# training clips (`audio.mix_at_snr(..., reference_power=...)` inside `detect.dcase.run`).
# Every clip gets noise of the same power. (Until this version the noise was scaled to each
# clip's own power, which made the noise level follow the clip and thus the label.)

# %%
if MODE == "ci":
    PROTOCOL, MACHINES, SEEDS, STEPS = "mini", ["valve"], (0, 1, 2), 150
else:
    PROTOCOL, SEEDS, STEPS = "full", (0, 1, 2), 5000
    raw = dcase.data_root(DATA) / "dcase2023t2" / "dev_data" / "raw"
    MACHINES = [m for m in dcase.DEV_MACHINES_2023 if (raw / m / "train").is_dir()]
    if not MACHINES:
        raise FileNotFoundError(f"full mode needs DCASE 2023 development data under {raw}; "
                                "fetch it with `asdtheory data fetch`.")
NOISE = "doing_the_dishes"
CONDITIONS = (None, 0.0, -5.0)
CONDITION_NAMES = ["clean", "0 dB", "-5 dB"]
METHODS = ("deep-svdd", "autoencoder", "subcluster-adacos", "subcluster-adacos+random-labels")
LABELS = ("(i) Deep SVDD", "(ii) autoencoder", "(iii) sub-cluster AdaCos", "(iv) random labels")
print(f"protocol {PROTOCOL}; machines {', '.join(MACHINES)}; seeds {SEEDS}; "
      f"{STEPS} optimiser steps per method; noise {NOISE}")

# %% [markdown]
# Every method gets the same number of optimiser steps (`DetectorConfig(steps=...)`):
# in ci mode 150, ten passes over the 480 training windows for the CNN methods, about two
# over the 18 780 frames of the autoencoder. (Until this version each method trained for a
# number of *epochs*, which gave the autoencoder five times the steps of the others.)
#
# ## The test, fixed before the results
#
# For every condition, each method's official score is computed per seed, and the
# comparison of (iii) with its strongest rival among (i) and (ii) (the one with the higher
# mean official score in that condition) is a **paired difference**: official score of (iii)
# minus that of the rival on the same test clips and seeds, with a 95 % bootstrap interval
# that resamples the clips (within section, domain and label) and the seeds
# (`evaluation.paired_difference(..., metric="official")`). Pairing removes what the clips
# do to both systems alike; the interval covers the test clips and the training seeds.
#
# * **C4.a** clean: SUPPORTED when the interval of the difference lies above 0,
#   CONTRADICTED when it lies below 0, INCONCLUSIVE otherwise, with the smallest difference
#   the run could have detected (the interval's half-width).
# * **C4.b** noise: the same at 0 dB and at −5 dB; SUPPORTED when both are, CONTRADICTED when
#   either is (`claims.all_of`).
# * **C4** = C4.a and C4.b, combined the same way.
#
# *Replaced criterion.* Until this version (iii) had to beat the best rival's *estimate*
# by more than (iii)'s own jackknife interval of seed 0; a failed check was printed as
# "not supported". That compared an unpaired interval with a point, ignored the seeds, and
# turned "the run cannot tell" into a negative verdict.
#
# **Reference without a model.** Beside the trained systems we score every clip by how far
# its level lies from the normal training clips' level (`scoring.level_score`, computed by
# `detect.dcase.run` on the same waveforms). If that trivial cue beats the systems, the
# test clips let loudness pass for anomaly detection, and a system near or below it has
# not learnt what the claim is about.

# %%
def run_condition(method, snr, seed):
    """Pools the test clips of all machines of one (method, condition, seed)."""
    clips, scores, level = [], [], []
    for machine in MACHINES:
        result = run(RunConfig(
            data=DATA, machine=machine, protocol=PROTOCOL, noise=None if snr is None else NOISE,
            snr=snr, seed=seed, detector=dataclasses.replace(
                DCASE_DETECTOR, method=method, steps=STEPS, progress=False)))
        clips += result.test_clips
        scores.append(result.test_scores)
        level.append(result.level_scores)
    return clips, np.concatenate(scores), np.concatenate(level)


def clip_fields(clips):
    return dict(machine=[c.machine for c in clips], section=[c.section for c in clips],
                domain=[c.domain for c in clips], is_anomaly=[c.is_anomaly for c in clips])


per_run, tables, level_tables = {}, {}, {}
for c, snr in enumerate(CONDITIONS):
    for m, method in enumerate(METHODS):
        for s, seed in enumerate(SEEDS):
            clips, per_run[m, c, s], level = run_condition(method, snr, seed)
            if s == 0:
                tables[m, c] = evaluation.dcase_table(**clip_fields(clips), scores=per_run[m, c, s])
                level_tables[c] = evaluation.dcase_table(**clip_fields(clips), scores=level)
scores = np.array([[[per_run[m, c, s] for s in range(len(SEEDS))] for c in range(len(CONDITIONS))]
                   for m in range(len(METHODS))])  # (methods, conditions, seeds, clips)
fields = clip_fields(clips)
official = np.array([[[evaluation.official_score(evaluation.dcase_table(**fields, scores=x))
                       for x in per_seed] for per_seed in per_condition]
                     for per_condition in scores])

# %%
# tolerance: abs=0.07; AUC, pAUC, scores moved by 0.033 (AVX-512 vs AVX2), x2
for c, name in enumerate(CONDITION_NAMES):
    for m, label in enumerate(LABELS):
        print(f"--- {label}, {name}, seed {SEEDS[0]}" + ("" if name == "clean" else f" ({NOISE})"))
        print(evaluation.format_table(tables[m, c]))
    print(f"--- reference: clip level (no model), {name}")
    print(evaluation.format_table(level_tables[c]))
    print()

# %%
# tolerance: abs=0.04; scores moved by 0.019 (AVX-512 vs AVX2), x2
level_official = [evaluation.official_score(level_tables[c]) for c in range(len(CONDITIONS))]
print(f"official score, mean ± std over {len(SEEDS)} seeds")
print(f"{'':26s}" + "".join(f"{n:>16s}" for n in CONDITION_NAMES))
for m, label in enumerate(LABELS):
    print(f"{label:26s}" + "".join(
        f"{fmt(official[m, c].mean()):>9s} ± {fmt(official[m, c].std(ddof=1), 2):>4s}"
        for c in range(len(CONDITIONS))))
print(f"{'reference: clip level':26s}" + "".join(f"{fmt(v):>16s}" for v in level_official))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
x = np.arange(len(CONDITIONS))
for m, label in enumerate(LABELS):
    axes[0].errorbar(x + 0.06 * (m - 1.5), official[m].mean(-1), yerr=official[m].std(-1, ddof=1),
                     marker="o", capsize=3, label=label)
axes[0].plot(x, level_official, "k--", marker="s", label="clip level (no model)")
axes[0].set_title(f"official score (mean ± std over {len(SEEDS)} seeds)")
axes[0].set_xticks(x, CONDITION_NAMES)
axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
axes[0].legend(fontsize=7)
for m in range(len(METHODS)):
    axes[1].scatter(np.full(len(SEEDS), m), official[m, 0], s=12)
axes[1].set_xticks(range(len(METHODS)), [lab.split()[0] for lab in LABELS])
axes[1].set_title("clean: official score per seed")
for ax in axes:
    ax.grid(alpha=0.3)
fig.suptitle(f"{', '.join(MACHINES)} ({PROTOCOL} protocol); noise: {NOISE}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.04; scores, interval ends moved by 0.019 (AVX-512 vs AVX2), x2
BEST = METHODS.index("subcluster-adacos")
RIVALS = [METHODS.index("deep-svdd"), METHODS.index("autoencoder")]
BOOTSTRAP_KEY = jax.random.key(4)


def versus_rival(c):
    """(rival, paired difference of (iii) minus the rival) in condition c."""
    rival = max(RIVALS, key=lambda m: official[m, c].mean())
    diff = evaluation.paired_difference(scores[BEST, c], scores[rival, c], metric="official",
                                        key=BOOTSTRAP_KEY, **fields)
    return rival, diff


comparisons = [versus_rival(c) for c in range(len(CONDITIONS))]
parts = [from_interval(diff, unit=f"official score ({CONDITION_NAMES[c]})")
         for c, (_, diff) in enumerate(comparisons)]


def summary(c):
    rival, diff = comparisons[c]
    return (f"{CONDITION_NAMES[c]}: (iii) - {LABELS[rival].split()[0]} "
            f"{fmt_interval(diff)}, level-only {fmt(level_official[c])}")


for c in range(len(CONDITIONS)):
    print(f"{summary(c)} -> {parts[c][0]}")

figures = {"conditions": CONDITION_NAMES, "methods": list(METHODS),
           "official_mean": official.mean(-1), "official_std": official.std(-1, ddof=1),
           "level_official": level_official,
           "difference": [[d.estimate, d.low, d.high] for _, d in comparisons],
           "rival": [METHODS[r] for r, _ in comparisons], "seeds": len(SEEDS),
           "machines": MACHINES, "protocol": PROTOCOL, "steps": STEPS}
a = parts[0]
b = all_of(parts[1], parts[2])
claim("C4.a", a[0], summary(0), detectable=a[1],
      statement="On the real valve recordings sub-cluster AdaCos with the attribute task has "
      "a higher official DCASE score than Deep SVDD and the autoencoder (paired interval).",
      figures=figures, notebook=NOTEBOOK)
claim("C4.b", b[0], summary(1) + "; " + summary(2), detectable=b[1],
      statement="With real background noise at 0 and -5 dB sub-cluster AdaCos with the "
      "attribute task has a higher official DCASE score than both rivals (paired interval).",
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
# The verdict lines are computed; this paragraph was written for the stored ci-mode run
# (valve mini protocol, 3 seeds, 150 steps per method) and describes its numbers.
#
# **C4 is INCONCLUSIVE in ci mode: the run cannot tell the systems apart.** Every trained
# system scores near chance (official scores 0.44-0.53 in all conditions), and the paired
# intervals of (iii) minus its strongest rival span about ±0.1 around estimates of +0.04
# (clean), 0.00 (0 dB) and −0.07 (−5 dB): only a difference of about 0.1 official score
# or more could have been detected with 140 test clips and 3 seeds. The −5 dB interval's
# upper end (0.02) lies close to 0: on another CPU type, where trained scores move by about
# 0.02, this part could read CONTRADICTED; it is the weakest of the three.
#
# **The reference row is the finding of this run.** Scoring each clip by how far its level
# lies from the normal training level, with no model at all, gives an official score of
# 0.78 clean, 0.77 at 0 dB and 0.73 at −5 dB, far above every trained system. On these
# recordings the anomalous valve clips differ in loudness, and the small systems trained on
# 60 clips learn neither that cue nor anything better. The random-label control (iv) makes
# the same point from the other side: clean, it has the highest mean of the four (0.53),
# so what the systems score here is not what the attribute task taught them.
#
# This is not evidence about the paper's systems: they train one model on all machine types
# with about 1000 clips each and two feature branches (issue "the paper's own system").
# The test that can decide C4 is full mode (official split, every machine, 3 seeds,
# 5000 steps), which needs the archives (`asdtheory data fetch`) and a GPU-sized budget.

# %%
# tolerance: abs=0.04; scores, interval ends moved by 0.019 (AVX-512 vs AVX2), x2
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

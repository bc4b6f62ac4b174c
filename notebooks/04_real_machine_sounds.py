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

import matplotlib.pyplot as plt
import numpy as np

from asdtheory import evaluation
from asdtheory.data import dcase
from asdtheory.detect.dcase import DCASE_DETECTOR, RunConfig, run
from asdtheory.repro.claims import claim, fmt, records
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
# **Noise**: the recording is added to every clip, training and test, at the SNR relative to
# the clip, from a random offset per clip (`audio.mix_at_snr` inside `detect.dcase.run`).

# %%
if MODE == "ci":
    PROTOCOL, MACHINES, SEEDS, EPOCHS = "mini", ["valve"], (0,), 10
else:
    PROTOCOL, SEEDS, EPOCHS = "full", (0, 1, 2), 20
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
      f"{EPOCHS} epochs; noise {NOISE}")

# %% [markdown]
# ## The test, fixed before the results
#
# For every condition we compute the official score of each method and, for (iii), a 95 %
# confidence interval over test clips (`evaluation.confidence_interval`, delete-one
# jackknife, scores of seed 0). The interval covers the sampling of test clips, not the
# training randomness; in full mode the seeds add that spread.
#
# * **C4.a** clean: the official score of (iii) is the highest, and the best rival's score
#   lies below the lower end of (iii)'s 95 % interval.
# * **C4.b** noise: the same at 0 dB and at −5 dB.
# * **C4** = C4.a and C4.b.

# %%
def run_condition(method, snr, seed):
    """Pools the test clips of all machines of one (method, condition, seed)."""
    clips, scores = [], []
    for machine in MACHINES:
        result = run(RunConfig(
            data=DATA, machine=machine, protocol=PROTOCOL, noise=None if snr is None else NOISE,
            snr=snr, seed=seed, detector=dataclasses.replace(
                DCASE_DETECTOR, method=method, epochs=EPOCHS, progress=False)))
        clips += result.test_clips
        scores.append(result.test_scores)
    return clips, np.concatenate(scores)


def clip_fields(clips, scores):
    return dict(machine=[c.machine for c in clips], section=[c.section for c in clips],
                domain=[c.domain for c in clips], is_anomaly=[c.is_anomaly for c in clips],
                scores=scores)


tables, official, ci = {}, np.zeros((len(METHODS), len(CONDITIONS), len(SEEDS))), {}
for c, snr in enumerate(CONDITIONS):
    for m, method in enumerate(METHODS):
        for s, seed in enumerate(SEEDS):
            clips, scores = run_condition(method, snr, seed)
            rows = evaluation.dcase_table(**clip_fields(clips, scores))
            official[m, c, s] = evaluation.official_score(rows)
            if s == 0:
                tables[m, c] = rows
                ci[m, c] = evaluation.confidence_interval(**clip_fields(clips, scores),
                                                          method="jackknife")

# %%
# tolerance: abs=0.07; AUC, pAUC, scores moved by 0.033 (AVX-512 vs AVX2), x2
for c, name in enumerate(CONDITION_NAMES):
    for m, label in enumerate(LABELS):
        print(f"--- {label}, {name}" + ("" if name == "clean" else f" ({NOISE})"))
        print(evaluation.format_table(tables[m, c]))
    print()

# %%
# tolerance: abs=0.04; scores, interval ends moved by 0.019 (AVX-512 vs AVX2), x2
print("official score, seed 0, with its 95 % jackknife interval over test clips")
print(f"{'':26s}" + "".join(f"{n:>24s}" for n in CONDITION_NAMES))
for m, label in enumerate(LABELS):
    print(f"{label:26s}" + "".join(
        f"{fmt(ci[m, c].estimate):>8s} [{fmt(ci[m, c].low)}, {fmt(ci[m, c].high)}]"
        for c in range(len(CONDITIONS))))
if len(SEEDS) > 1:
    print(f"\nofficial score, mean ± std over {len(SEEDS)} seeds")
    for m, label in enumerate(LABELS):
        print(f"{label:26s}" + "".join(
            f"{fmt(official[m, c].mean()):>16s} ± {fmt(official[m, c].std(ddof=1))}"
            for c in range(len(CONDITIONS))))

# %%
fields = (("auc_source", "AUC source"), ("auc_target", "AUC target"), ("pauc", "pAUC"))
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True)
x = np.arange(len(CONDITIONS))
for m, label in enumerate(LABELS):
    for ax, (field, title) in zip(axes[:3], fields, strict=True):
        ax.plot(x, [np.mean([getattr(r, field) for r in tables[m, c]])
                    for c in range(len(CONDITIONS))], marker="o", label=label)
        ax.set_title(title)
    est = np.array([ci[m, c].estimate for c in range(len(CONDITIONS))])
    err = np.array([[est[c] - ci[m, c].low, ci[m, c].high - est[c]]
                    for c in range(len(CONDITIONS))]).T
    axes[3].errorbar(x + 0.06 * (m - 1.5), est, yerr=err, marker="o", capsize=3, label=label)
axes[3].set_title("official score (95 % CI)")
for ax in axes:
    ax.set_xticks(x, CONDITION_NAMES)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
fig.suptitle(f"{', '.join(MACHINES)} ({PROTOCOL} protocol), seed 0; noise: {NOISE}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.04; scores, interval ends moved by 0.019 (AVX-512 vs AVX2), x2
BEST = METHODS.index("subcluster-adacos")
rivals = [METHODS.index("deep-svdd"), METHODS.index("autoencoder")]


def ahead(c):
    """(iii) highest and the best rival below the lower end of its 95 % interval."""
    rival = max(rivals, key=lambda m: ci[m, c].estimate)
    return ci[rival, c].estimate < ci[BEST, c].low, rival


def summary(c):
    rival = ahead(c)[1]
    return (f"{CONDITION_NAMES[c]}: (iii) {fmt(ci[BEST, c].estimate)} "
            f"[{fmt(ci[BEST, c].low)}, {fmt(ci[BEST, c].high)}] vs best rival "
            f"{LABELS[rival].split()[0]} {fmt(ci[rival, c].estimate)}")


figures = {"conditions": CONDITION_NAMES, "methods": list(METHODS),
           "official_seed0": [[ci[m, c].estimate for c in range(len(CONDITIONS))]
                              for m in range(len(METHODS))],
           "ci_low": [[ci[m, c].low for c in range(len(CONDITIONS))]
                      for m in range(len(METHODS))],
           "ci_high": [[ci[m, c].high for c in range(len(CONDITIONS))]
                       for m in range(len(METHODS))],
           "official_mean_over_seeds": official.mean(-1), "seeds": len(SEEDS),
           "machines": MACHINES, "protocol": PROTOCOL}
a = bool(ahead(0)[0])
b = bool(ahead(1)[0] and ahead(2)[0])
claim("C4.a", a, summary(0),
      statement="On the real valve recordings sub-cluster AdaCos with the attribute task has "
      "the best official DCASE score, beyond its 95 % confidence interval.",
      figures=figures, notebook=NOTEBOOK)
claim("C4.b", b, summary(1) + "; " + summary(2),
      statement="With real background noise at 0 and -5 dB sub-cluster AdaCos with the "
      "attribute task has the best official DCASE score, beyond its 95 % confidence interval.",
      figures=figures, notebook=NOTEBOOK)
verdict = claim(
      "C4", a and b, f"C4.a {'holds' if a else 'fails'}, C4.b {'holds' if b else 'fails'}",
      statement="On real machine sounds, clean and in real noise, sub-cluster AdaCos with the "
      "auxiliary task beats Deep SVDD and the autoencoder (official DCASE score).",
      figures=figures, notebook=NOTEBOOK)

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this paragraph was written for the stored ci-mode run
# (valve mini protocol, one seed, 10 epochs) and describes its numbers.
#
# **C4 is not supported by the ci-mode run — and the run cannot support or refute it.**
# All twelve official scores lie between 0.43 and 0.56, and every 95 % interval contains
# 0.5: with 60 training clips (480 two-second windows) and 10 epochs, none of the methods
# detects the valve anomalies better than chance, clean or in noise. Sub-cluster AdaCos
# has the highest estimate of (i)-(iii) at 0 dB (0.478 against 0.474 and 0.471), the
# autoencoder on the clean recordings (0.544 against 0.476 and 0.472) and Deep SVDD at
# −5 dB (0.514 against 0.467 and 0.430), but each of these differences is inside the
# intervals (half-width about 0.085). The random-label control (iv) makes the same point
# from the other side: on the clean recordings it has the highest estimate of all four
# (0.557), and at 0 dB it equals (iii) (0.478): a task that carries no information about
# the sound does as well as the real one, so what the trained systems score here is not
# what the attribute task taught them. Some AUCs below 0.5 (e.g. AUC source 0.40 of (iii)
# clean and at −5 dB) are within the spread a chance-level scorer shows on 20 normal and
# 100 anomalous clips.
#
# So on real recordings the question stays open at this size. The test that can decide it
# is full mode (official split with about 1000 training clips per machine, all seven
# machines, 20 epochs, 3 seeds), which needs the archives (`asdtheory data fetch`) and a
# GPU-sized budget.

# %%
# tolerance: abs=0.04; scores, interval ends moved by 0.019 (AVX-512 vs AVX2), x2
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

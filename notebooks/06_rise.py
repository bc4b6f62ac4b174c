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
# # 06 — What does the anomaly score listen to? RISE saliency maps (claim C6)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# The abstract says that the paper supports its argument with RISE saliency maps of the
# anomaly score: an angular margin model trained on an auxiliary classification task attends
# to the machine sound, while one-class and generative models are distracted by noise. Only
# the abstract is public to us; the precise, falsifiable statement below is **our
# reconstruction**.
#
# **Claim C6.** When an anomaly sits in a known time-frequency box of a clip that is
# otherwise covered by strong noise, the RISE saliency of the anomaly score of an angular
# margin model (sub-cluster AdaCos with the auxiliary task) puts a larger share of its
# positive mass inside the box than that of Deep SVDD and that of the autoencoder.
#
# **RISE** (V. Petsiuk, A. Das and K. Saenko, "RISE: Randomized input sampling for
# explanation of black-box models", BMVC 2018; `asdtheory.explain.rise`). The score f of a
# trained model + back-end is evaluated on N randomly masked copies of the log-mel
# spectrogram I; the saliency of a time-frequency bin is
# $S(t,k) = \frac{1}{Np}\sum_i f(I\odot M_i)\,M_i(t,k)$, with smooth masks $M_i$ (a coarse
# random binary grid with keep probability p, bilinearly upsampled with a random shift).
# Masked-out bins are filled with the **mean normal training spectrogram** (a masked region
# sounds like an average normal clip there), and we use the **centred** map
# $S - \bar f\,\overline{M}/p$, which is positive where keeping a bin raises the anomaly
# score. The statistic is the share of the positive saliency inside the anomaly's box,
# `explain.region_share`; a map that ignores the box gets about the box's area fraction.

# %%
import dataclasses

import jax
import matplotlib.pyplot as plt
import numpy as np

from asdtheory import audio, evaluation, explain
from asdtheory.data import dcase
from asdtheory.data.synthetic import machine_sounds
from asdtheory.detect import Detector, DetectorConfig, log_mels
from asdtheory.detect.dcase import DCASE_DETECTOR
from asdtheory.repro.claims import claim, fmt
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "06_rise"
print("run mode:", MODE)

# %% [markdown]
# ## Synthetic clips with an anomaly in a known box
#
# Normal clips: `data.synthetic.machine_sounds` — three machine types with two attributes
# each (six auxiliary classes, as in notebook 03), 1-second clips, mixed with synthetic
# pink noise at **0 dB SNR** (the noise is as loud as the machine and covers the whole
# spectrogram). Anomalous test
# clips are further clips of the same kind with one addition in a fixed **box**: a tone at
# 1.6 kHz (a whine, as of a damaged bearing) from 0.40 to 0.70 s, with an RMS of half the
# machine signal's (−6 dB) while it sounds. The box in bins: the frames whose centre lies in
# 0.40–0.70 s and the mel bands whose centre frequency lies in 1.45–1.8 kHz. Features:
# 32-band log-mel spectrograms (n_fft 1024, hop 512; 32 frames per clip); one window per
# clip.

# %%
SR, N_MELS, N_FFT, HOP = 16000, 32, 1024, 512
BOX_SECONDS, BOX_HZ, TONE_HZ = (0.40, 0.70), (1450.0, 1800.0), 1600.0
if MODE == "ci":
    TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS, N_MASKS, N_VALVE_MAPS = 40, 5, 20, 1000, 2
else:
    TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS, N_MASKS, N_VALVE_MAPS = 200, 40, 40, 4000, 4
GRID, KEEP = (8, 8), 0.5
SNR_DB, TONE_RMS = 0.0, 0.025  # the machine signal has RMS 0.05


def tone_burst(key, n_clips):
    """(n, SR) tone at TONE_HZ with a random phase per clip, RMS TONE_RMS inside BOX_SECONDS
    (10 ms raised-cosine ramps), zero elsewhere."""
    t = np.arange(SR) / SR
    phase = np.asarray(jax.random.uniform(key, (n_clips, 1), maxval=2 * np.pi))
    ramp = np.clip(np.minimum(t - BOX_SECONDS[0], BOX_SECONDS[1] - t) / 0.01, 0, 1)
    envelope = np.sin(0.5 * np.pi * ramp) ** 2
    return (np.sqrt(2) * TONE_RMS * envelope * np.sin(2 * np.pi * TONE_HZ * t + phase)
            ).astype(np.float32)


k_train, k_test, k_anom, k_burst = jax.random.split(jax.random.key(6), 4)
kw = dict(num_machines=3, num_attributes=2, snr_db=SNR_DB, sample_rate=SR)
train = machine_sounds(k_train, clips_per_class=TRAIN_PER_CLASS, **kw)
test_normal = machine_sounds(k_test, clips_per_class=TEST_PER_CLASS, **kw)
test_anomalous = machine_sounds(k_anom, clips_per_class=TEST_PER_CLASS, **kw)
burst = tone_burst(k_burst, len(test_anomalous.waveforms))

train_mels = log_mels(train.waveforms, n_mels=N_MELS)
test_mels = log_mels(np.concatenate([test_normal.waveforms,
                                     test_anomalous.waveforms + burst]), n_mels=N_MELS)
is_anomaly = np.repeat([False, True], len(test_normal.waveforms))
anomalous_mels = test_mels[is_anomaly]

# The box in bins: frames whose centre time and mel bands whose centre frequency lie inside.
frame_times = np.arange(train_mels.shape[1]) * HOP / SR
filters = audio.mel_filterbank(sample_rate=SR, n_fft=N_FFT, n_mels=N_MELS)
mel_centres = np.fft.rfftfreq(N_FFT, 1 / SR)[np.argmax(filters, axis=1)]
box = np.outer((frame_times >= BOX_SECONDS[0]) & (frame_times <= BOX_SECONDS[1]),
               (mel_centres >= BOX_HZ[0]) & (mel_centres <= BOX_HZ[1]))
print(f"{len(train_mels)} normal training clips, {len(test_mels)} test clips "
      f"({is_anomaly.sum()} anomalous); spectrogram {train_mels.shape[1]} frames x {N_MELS} "
      f"bands; box {box.any(1).sum()} frames x {box.any(0).sum()} bands = "
      f"{fmt(100 * box.mean(), 1)} % of the bins")

# %% [markdown]
# ## Three systems on the same clips
#
# `detect.Detector.fit` trains each system on the normal training clips (log-mels
# standardised by the training statistics, `train.fit`):
#
# * **sub-cluster AdaCos** — residual CNN trained to classify the six (machine, attribute)
#   classes (4 sub-centres per class); score = cosine distance of the clip embedding to the
#   nearest of 6 k-means centres of the training embeddings;
# * **Deep SVDD** — the same CNN without bias terms, compactness loss, centre fixed after an
#   initial pass; score = squared distance to the centre;
# * **autoencoder** — DCASE-baseline style on 5 stacked frames; score = mean squared
#   reconstruction error.
#
# Detection performance on these clips (AUC, and pAUC at max FPR 0.1) puts the maps in
# context: a system that does not detect the anomaly cannot be expected to point at it.

# %%
# tolerance: abs=0.02; losses, AUCs moved by 0.008 (AVX-512 vs AVX2), x2
METHODS = ("subcluster-adacos", "deep-svdd", "autoencoder")
LABELS = {"subcluster-adacos": "sub-cluster AdaCos", "deep-svdd": "Deep SVDD",
          "autoencoder": "autoencoder"}
CONFIG = DetectorConfig(window_frames=train_mels.shape[1], window_hop=1, n_clusters=6,
                        epochs=EPOCHS)
systems = {}
for i, method in enumerate(METHODS):
    systems[method] = Detector.fit(train_mels, train.label,
                                   config=dataclasses.replace(CONFIG, method=method),
                                   key=jax.random.fold_in(jax.random.key(0), i))
    scores = systems[method].score(test_mels)
    print(f"{LABELS[method]:>18}: final training loss "
          f"{fmt(systems[method].history['loss'][-1])}; AUC "
          f"{fmt(evaluation.auc(is_anomaly, scores))}, pAUC "
          f"{fmt(evaluation.pauc(is_anomaly, scores, max_fpr=0.1))}")

# %% [markdown]
# ## RISE maps and the share of saliency in the box
#
# For every anomalous test clip and every system: `explain.rise` with N masks on an 8 x 8
# grid (cells of 4 frames x 4 bands), keep probability 0.5, the mean normal training
# spectrogram as the fill value, centred. The same mask key for every system and clip, so
# the systems are compared on identical masks. Decision rule, fixed before the results:
# **SUPPORTED** if the mean share of sub-cluster AdaCos exceeds that of each rival by more
# than two standard errors of the paired (per-clip) differences.

# %%
# tolerance: abs=0.002; shares moved by 0.001 (AVX-512 vs AVX2), x2
baseline = train_mels.mean(axis=0)
mask_key = jax.random.key(66)
shares = {m: [] for m in METHODS}
maps = {m: [] for m in METHODS}
for method in METHODS:
    score_fn = systems[method].score_fn()
    for mel in anomalous_mels:
        sal = np.asarray(explain.rise(score_fn, mel, mask_key, n_masks=N_MASKS, grid=GRID,
                                      keep_prob=KEEP, baseline=baseline, centre=True))
        shares[method].append(explain.region_share(sal, box))
        maps[method].append(sal)
shares = {m: np.array(v) for m, v in shares.items()}
chance = box.mean()
print(f"box area fraction (chance level): {fmt(chance)}")
for method in METHODS:
    s = shares[method]
    print(f"{LABELS[method]:>18}: share of positive saliency in the box {fmt(s.mean())} "
          f"+- {fmt(s.std(ddof=1) / np.sqrt(s.size))} (mean +- s.e. over {s.size} clips)")

# %%
fig, axes = plt.subplots(2, 4, figsize=(13, 5.6), constrained_layout=True)
extent = (0, train_mels.shape[1] * HOP / SR, 0, N_MELS)
for row, clip in enumerate((0, 1)):
    ax = axes[row, 0]
    ax.imshow(anomalous_mels[clip].T, origin="lower", aspect="auto", extent=extent,
              cmap="magma")
    ax.set_title(f"anomalous clip {clip}: log-mel (dB)")
    for col, method in enumerate(METHODS, start=1):
        ax = axes[row, col]
        sal = maps[method][clip]
        lim = np.abs(sal).max()
        ax.imshow(sal.T, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(f"{LABELS[method]}: share {fmt(shares[method][clip], 2)}")
    for ax in axes[row]:
        t0, t1 = frame_times[box.any(1)][[0, -1]]
        k0, k1 = np.flatnonzero(box.any(0))[[0, -1]]
        ax.add_patch(plt.Rectangle((t0, k0), t1 - t0 + HOP / SR, k1 - k0 + 1, fill=False,
                                   ec="lime", lw=1.5))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel band")
fig.suptitle("Centred RISE saliency of the anomaly score (red: raises the score); "
             "green box: the anomaly")
plt.show()

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.boxplot([shares[m] for m in METHODS], tick_labels=[LABELS[m] for m in METHODS])
ax.axhline(chance, color="gray", ls="--", label="box area fraction (chance)")
ax.set_ylabel("share of positive saliency in the box")
ax.set_title(f"{len(anomalous_mels)} anomalous clips, 0 dB pink noise")
ax.legend()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.004; shares, margins moved by 0.002 (AVX-512 vs AVX2), x2
ref = shares["subcluster-adacos"]
margins = {}
for rival in ("deep-svdd", "autoencoder"):
    diff = ref - shares[rival]
    margins[rival] = (diff.mean(), diff.std(ddof=1) / np.sqrt(diff.size))
supported = all(mean > 2 * se for mean, se in margins.values())
record = claim(
    "C6", supported,
    f"share of positive RISE saliency in the anomaly box: sub-cluster AdaCos "
    f"{fmt(ref.mean())}, Deep SVDD {fmt(shares['deep-svdd'].mean())}, autoencoder "
    f"{fmt(shares['autoencoder'].mean())} (chance {fmt(chance)}); paired margins "
    + ", ".join(f"vs {LABELS[r]} {fmt(m)} +- {fmt(se)}" for r, (m, se) in margins.items())
    + f" ({len(ref)} clips, 0 dB)",
    statement="With an anomaly in a known time-frequency box under strong noise, RISE "
              "saliency of an angular margin model's anomaly score concentrates more in the box "
              "than that of Deep SVDD and of the autoencoder.",
    figures={"share_mean": {m: float(shares[m].mean()) for m in METHODS},
             "chance": float(chance),
             "margin": {r: float(m) for r, (m, _) in margins.items()},
             "margin_se": {r: float(se) for r, (_, se) in margins.items()},
             "n_clips": len(ref), "n_masks": N_MASKS, "grid": list(GRID)},
    notebook=NOTEBOOK,
)

# %% [markdown]
# ## Real valve recordings
#
# **Data and licence.** DCASE 2023 Challenge Task 2 development set, machine `valve`,
# section 00 (from MIMII DG, recorded in real factories), the 200 clips of `dev_valve.zip`
# (https://zenodo.org/record/7882613), published under the **Creative Commons Attribution
# 4.0 International (CC BY 4.0)** licence; please cite K. Dohi et al., "MIMII DG: Sound
# dataset for malfunctioning industrial machine investigation and inspection for domain
# generalization task", DCASE 2022 Workshop, and K. Dohi et al., "Description and discussion
# on DCASE 2023 challenge task 2: first-shot unsupervised anomalous sound detection for
# machine condition monitoring", DCASE 2023 Workshop.
#
# The three systems are trained on the valve mini protocol (`dcase.valve_mini_protocol`: 60
# normal training clips, attributes `pat_00`–`pat_03` as the auxiliary classes; 140 test
# clips) with the features of `detect.dcase.run`: 64-band log-mels, windows of 64 frames every
# 32 frames (8 per 10-s clip); the angular back-end uses 16 k-means centres of the
# source-domain training clips plus every target-domain training clip. There is no ground
# truth for *where* a real anomaly is, so these maps are shown, not scored: they show which
# parts of the clip each system's score reacts to.

# %%
# tolerance: abs=0.02; AUCs moved by 0.007 (AVX-512 vs AVX2), x2
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
split = dcase.valve_mini_protocol(DATA)
valve_mels = log_mels(np.stack([audio.load(c.path) for c in split.train + split.test]),
                      n_mels=64)
valve_train, valve_test = valve_mels[:len(split.train)], valve_mels[len(split.train):]
attributes = sorted({c.attribute_key for c in split.train})
valve_labels = np.array([attributes.index(c.attribute_key) for c in split.train])
valve_target = np.array([c.domain == "target" for c in split.train])
valve_is_anomaly = np.array([c.is_anomaly for c in split.test])
valve_systems = {}
for i, method in enumerate(METHODS):
    valve_systems[method] = Detector.fit(
        valve_train, valve_labels, key=jax.random.fold_in(jax.random.key(1), i),
        config=dataclasses.replace(DCASE_DETECTOR, method=method, epochs=EPOCHS,
                                   progress=False), is_target=valve_target)
    scores = valve_systems[method].score(valve_test)
    print(f"{LABELS[method]:>18}: AUC {fmt(evaluation.auc(valve_is_anomaly, scores))} "
          "(all 140 test clips)")

# %%
shown = np.flatnonzero(valve_is_anomaly)[:N_VALVE_MAPS]
valve_score_fns = {method: valve_systems[method].score_fn() for method in METHODS}
valve_baseline = valve_train.mean(axis=0)
fig, axes = plt.subplots(len(shown), 4, figsize=(15, 2.8 * len(shown)),
                         constrained_layout=True, squeeze=False)
extent = (0, valve_test.shape[1] * HOP / SR, 0, 64)
for row, idx in enumerate(shown):
    ax = axes[row, 0]
    ax.imshow(valve_test[idx].T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set_title(split.test[idx].path.name.removesuffix(".wav"), fontsize=8)
    for col, method in enumerate(METHODS, start=1):
        sal = np.asarray(explain.rise(valve_score_fns[method], valve_test[idx],
                                      jax.random.key(67), n_masks=N_MASKS // 2, grid=(16, 8),
                                      keep_prob=KEEP, baseline=valve_baseline, centre=True,
                                      batch_size=50))
        lim = np.abs(sal).max()
        ax = axes[row, col]
        ax.imshow(sal.T, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(f"{LABELS[method]}: centred RISE", fontsize=9)
    for ax in axes[row]:
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel band")
fig.suptitle("Anomalous valve clips: log-mel (dB, left) and what raises each system's "
             "anomaly score (red)")
plt.show()

# %% [markdown]
# ## Discussion
#
# **Detection first.** On these clips sub-cluster AdaCos detects the tone best (AUC 0.831),
# the autoencoder second (0.716), and Deep SVDD not at all (0.441, below chance: its score
# is driven by the noise, not by the tone). Its saliency share sits at the box's area
# fraction, as expected of a score that does not react to the anomaly.
#
# **Where the two detectors listen.** Both the angular model and the autoencoder put about
# four times the chance share of their positive saliency into the box (0.100 and 0.111 vs
# 0.026), the angular model with a much larger spread over clips. The paired difference
# (−0.011 ± 0.023) gives no evidence that either concentrates more: **C6 as we formulated
# it is NOT SUPPORTED** on this data. The angular model's better detection does not come
# with a more focused saliency map here; the autoencoder, whose reconstruction error is
# local by construction, localises an additive tone just as well.
#
# **What limits the statistic.** The RISE masks are smooth over one grid cell (4 frames x 4
# bands) while the box is 9 frames x 3 bands, so even a score that depends only on the box
# spreads positive saliency into a one-cell halo (the unit tests measure a share of about
# 0.5 for a box of 2 x 2 cells): shares far below 1 are expected for every system. Finer
# grids sharpen the maps but need more masks (ci mode uses 1000 per clip).
#
# **Disclosure.** A first version of this experiment used one machine type with four
# attributes and 10 epochs. There the shares were 0.184 (sub-cluster AdaCos), 0.030 (Deep
# SVDD) and 0.090 (autoencoder) over 40 clips — but the angular model did not detect the
# tone (AUC 0.35), so its map explained a score that was not doing its job. We switched to
# the six-class set-up of notebook 03 (three machine types, more epochs) for that reason,
# before looking at its saliency numbers, and report the verdict of this set-up.

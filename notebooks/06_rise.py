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
# **Claim C6.** On clips covered by strong noise, the RISE saliency of the anomaly score of
# an angular margin model (sub-cluster AdaCos with the auxiliary task) puts more of its
# positive mass on the time-frequency bins where the machine signal dominates the noise than
# chance (the share of those bins) and than the saliency of Deep SVDD and of the
# autoencoder. The split of each mixture into machine signal and noise is known because we
# synthesise it, so "where the machine signal dominates" is a per-bin fact, not a guess.
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

from asdtheory import audio, evaluation, explain, metrics, scoring
from asdtheory.data import dcase
from asdtheory.data.synthetic import machine_sounds
from asdtheory.detect import Detector, DetectorConfig, log_mels, systems
from asdtheory.detect.dcase import RunConfig, run
from asdtheory.repro.claims import all_of, claim, fmt, fmt_interval, from_interval
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "06_rise"
print("run mode:", MODE)

# %% [markdown]
# ## Synthetic clips, their machine signal and their noise
#
# Normal clips: `data.synthetic.machine_sounds` — three machine types with two attributes
# each (six auxiliary classes, as in notebook 03), 1-second clips, mixed with synthetic
# pink noise at **0 dB SNR** (noise level from the nominal normal level, label-free).
# **Training and test clips come from the same machines** (one `machine_key` per seed;
# independent draws would come from different machines, as the check below shows).
# Anomalous test clips are further clips of the same kind with one addition in a fixed
# **box**: a tone at 1600 Hz (a whine, as of a damaged bearing) from 400 ms to 700 ms, with
# an RMS of half the machine signal's (−6 dB) while it sounds. Features: 32-band log-mel
# spectrograms (n_fft 1024, hop 512; 32 frames per clip); one window per clip.
#
# **Machine-dominated bins.** Each anomalous test set is drawn twice with the same key, with
# and without noise: the clips are identical, so noise = mixture − clean exactly. The
# machine signal of an anomalous clip is its clean clip plus the tone (the tone is the
# machine's fault). `explain.dominance_mask(log-mel of the machine signal, log-mel of the
# noise)` marks the bins where the machine signal is louder than the noise. Every seed draws
# fresh machines, clips and noise and trains fresh systems.

# %%
SR, N_MELS, N_FFT, HOP = 16000, 32, 1024, 512
BOX_SECONDS, BOX_HZ, TONE_HZ = (0.40, 0.70), (1450.0, 1800.0), 1600.0
if MODE == "ci":
    TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS, N_MASKS, N_VALVE_MAPS = 40, 5, 20, 1000, 2
    SEEDS = (0, 1, 2)
else:
    TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS, N_MASKS, N_VALVE_MAPS = 200, 40, 40, 4000, 4
    SEEDS = (0, 1, 2, 3, 4)
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


def draw(seed):
    """Training clips, test mels, and per anomalous test clip its dominance mask."""
    k_machines, k_train, k_test, k_anom, k_burst = jax.random.split(
        jax.random.fold_in(jax.random.key(6), seed), 5)
    kw = dict(num_machines=3, num_attributes=2, snr_db=SNR_DB, sample_rate=SR,
              machine_key=k_machines)
    train = machine_sounds(k_train, clips_per_class=TRAIN_PER_CLASS, **kw)
    test_normal = machine_sounds(k_test, clips_per_class=TEST_PER_CLASS, **kw)
    test_anomalous = machine_sounds(k_anom, clips_per_class=TEST_PER_CLASS, **kw)
    clean = machine_sounds(k_anom, clips_per_class=TEST_PER_CLASS,
                           **{**kw, "snr_db": None}).waveforms
    burst = tone_burst(k_burst, len(clean))
    noise = test_anomalous.waveforms - clean
    dominant = explain.dominance_mask(log_mels(clean + burst, n_mels=N_MELS),
                                      log_mels(noise, n_mels=N_MELS))
    test_waves = np.concatenate([test_normal.waveforms, test_anomalous.waveforms + burst])
    return dict(train=train, train_mels=log_mels(train.waveforms, n_mels=N_MELS),
                test_waves=test_waves, test_mels=log_mels(test_waves, n_mels=N_MELS),
                test_labels=np.concatenate([test_normal.label, test_anomalous.label]),
                dominant=dominant)


data = {seed: draw(seed) for seed in SEEDS}
first = data[SEEDS[0]]
is_anomaly = np.repeat([False, True], len(first["test_mels"]) // 2)
train_mels = first["train_mels"]

# The box in bins: frames whose centre time and mel bands whose centre frequency lie inside.
frame_times = np.arange(train_mels.shape[1]) * HOP / SR
filters = audio.mel_filterbank(sample_rate=SR, n_fft=N_FFT, n_mels=N_MELS)
mel_centres = np.fft.rfftfreq(N_FFT, 1 / SR)[np.argmax(filters, axis=1)]
box = np.outer((frame_times >= BOX_SECONDS[0]) & (frame_times <= BOX_SECONDS[1]),
               (mel_centres >= BOX_HZ[0]) & (mel_centres <= BOX_HZ[1]))

# Same machines, checked: normal test clips nearest (time-averaged log-mel spectrum) to the
# training class mean of their own class; an independent draw is what the old set-up did.
other = machine_sounds(jax.random.key(60), num_machines=3, num_attributes=2,
                       clips_per_class=TEST_PER_CLASS, snr_db=SNR_DB, sample_rate=SR)


def own_class_share(mels, labels):
    return metrics.own_class_share(train_mels, first["train"].label, mels, labels)


normal_mels = first["test_mels"][~is_anomaly]
print(f"per seed: {len(train_mels)} normal training clips, {len(is_anomaly)} test clips "
      f"({is_anomaly.sum()} anomalous); spectrogram {train_mels.shape[1]} frames x {N_MELS} "
      f"bands; box {box.any(1).sum()} frames x {box.any(0).sum()} bands = "
      f"{fmt(100 * box.mean(), 1)} % of the bins")
print("normal test clips nearest to their own class's training spectrum: same machines "
      f"{fmt(own_class_share(normal_mels, first['test_labels'][~is_anomaly]))}, independent "
      "draw (the old set-up) "
      f"{fmt(own_class_share(log_mels(other.waveforms, n_mels=N_MELS), other.label))}"
      " (chance 0.167)")
print("share of machine-dominated bins in the anomalous clips (mean over clips and seeds): "
      f"{fmt(np.mean([d['dominant'].mean() for d in data.values()]))}")

# %% [markdown]
# ## Three systems on the same clips
#
# `detect.Detector.fit` trains each system on the normal training clips (log-mels
# standardised by the training statistics, `train.fit`), equal epochs:
#
# * **sub-cluster AdaCos** — residual CNN trained to classify the six (machine, attribute)
#   classes (4 sub-centres per class); score = cosine distance of the clip embedding to the
#   nearest of 6 k-means centres of the training embeddings;
# * **Deep SVDD** — the same CNN without bias terms, compactness loss, centre fixed after an
#   initial pass; score = squared distance to the centre;
# * **autoencoder** — DCASE-baseline style on 5 stacked frames; score = mean squared
#   reconstruction error.
#
# Detection performance on these clips (AUC, and pAUC at max FPR 0.1; mean over seeds)
# puts the maps in context, with the level-only detector (`scoring.level_score`: how far
# the clip's level lies from the normal training level) as the reference row.

# %%
# tolerance: abs=0.04; AUCs moved by 0.008 on one seed, trained AUCs up to 0.034, x2
METHODS = ("subcluster-adacos", "deep-svdd", "autoencoder")
RIVALS = METHODS[1:]
LABELS = {"subcluster-adacos": "sub-cluster AdaCos", "deep-svdd": "Deep SVDD",
          "autoencoder": "autoencoder"}
CONFIG = DetectorConfig(window_frames=train_mels.shape[1], window_hop=1, n_clusters=6,
                        epochs=EPOCHS, progress=False)
detectors, detection = {}, {m: [] for m in (*METHODS, "level")}
for seed in SEEDS:
    d = data[seed]
    for i, method in enumerate(METHODS):
        detectors[seed, method] = Detector.fit(
            d["train_mels"], d["train"].label, config=CONFIG.with_method(method),
            key=jax.random.fold_in(jax.random.key(seed), i))
        detection[method].append(detectors[seed, method].score(d["test_mels"]))
    detection["level"].append(scoring.level_score(d["train"].waveforms, d["test_waves"]))
for name, scores in detection.items():
    label = LABELS.get(name, "level only")
    print(f"{label:>18}: AUC {fmt(np.mean([evaluation.auc(is_anomaly, s) for s in scores]))}, "
          f"pAUC {fmt(np.mean([evaluation.pauc(is_anomaly, s, max_fpr=0.1) for s in scores]))}")

# %% [markdown]
# ## RISE maps and where the positive saliency falls
#
# For every anomalous test clip, seed and system: `explain.rise` with N masks on an 8 x 8
# grid (cells of 4 frames x 4 bands), keep probability 0.5, the mean normal training
# spectrogram as the fill value, centred. The same mask key for every system and clip, so
# the systems are compared on identical masks. Per map: the share of its positive saliency
# on the clip's machine-dominated bins (`explain.region_share` with the dominance mask), the
# clip's chance level (the share of those bins), and, as before, the share in the tone's box.

# %%
# tolerance: abs=0.01; shares moved by 0.001 (AVX-512 vs AVX2) on one seed, x2 and more seeds
mask_key = jax.random.key(66)
shares = {m: np.zeros((len(SEEDS), is_anomaly.sum())) for m in METHODS}
box_shares = {m: np.zeros_like(shares[m]) for m in METHODS}
chance = np.zeros((len(SEEDS), is_anomaly.sum()))
maps = {}
for s, seed in enumerate(SEEDS):
    d = data[seed]
    baseline = d["train_mels"].mean(axis=0)
    chance[s] = d["dominant"].mean(axis=(1, 2))
    for method in METHODS:
        score_fn = detectors[seed, method].score_fn()
        for c, mel in enumerate(d["test_mels"][is_anomaly]):
            sal = np.asarray(explain.rise(score_fn, mel, mask_key, n_masks=N_MASKS, grid=GRID,
                                          keep_prob=KEEP, baseline=baseline, centre=True))
            shares[method][s, c] = explain.region_share(sal, d["dominant"][c])
            box_shares[method][s, c] = explain.region_share(sal, box)
            if s == 0 and c < 2:
                maps[method, c] = sal
print(f"share of machine-dominated bins (chance level): {fmt(chance.mean())}; box area "
      f"fraction {fmt(box.mean())}")
for method in METHODS:
    print(f"{LABELS[method]:>18}: share of positive saliency on machine-dominated bins "
          f"{fmt(shares[method].mean())}, in the tone's box {fmt(box_shares[method].mean())} "
          f"(means over {shares[method].size} maps)")

# %%
anomalous_mels = first["test_mels"][is_anomaly]
fig, axes = plt.subplots(2, 5, figsize=(16, 5.6), constrained_layout=True)
extent = (0, train_mels.shape[1] * HOP / SR, 0, N_MELS)
for row, clip in enumerate((0, 1)):
    ax = axes[row, 0]
    ax.imshow(anomalous_mels[clip].T, origin="lower", aspect="auto", extent=extent,
              cmap="magma")
    ax.set_title(f"anomalous clip {clip}: log-mel (dB)")
    ax = axes[row, 1]
    ax.imshow(first["dominant"][clip].T, origin="lower", aspect="auto", extent=extent,
              cmap="gray")
    ax.set_title("machine-dominated bins (white)")
    for col, method in enumerate(METHODS, start=2):
        ax = axes[row, col]
        sal = maps[method, clip]
        lim = np.abs(sal).max()
        ax.imshow(sal.T, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(f"{LABELS[method]}: share {fmt(shares[method][0, clip], 2)}")
    for ax in axes[row]:
        t0, t1 = frame_times[box.any(1)][[0, -1]]
        k0, k1 = np.flatnonzero(box.any(0))[[0, -1]]
        ax.add_patch(plt.Rectangle((t0, k0), t1 - t0 + HOP / SR, k1 - k0 + 1, fill=False,
                                   ec="lime", lw=1.5))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel band")
fig.suptitle("Centred RISE saliency of the anomaly score (red: raises the score); "
             "green box: the tone")
plt.show()

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.boxplot([(shares[m] - chance).ravel() for m in METHODS],
           tick_labels=[LABELS[m] for m in METHODS])
ax.axhline(0.0, color="gray", ls="--", label="chance (share of machine-dominated bins)")
ax.set_ylabel("share on machine-dominated bins\nminus chance")
ax.set_title(f"{chance.size} anomalous clips ({len(SEEDS)} seeds), 0 dB pink noise")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Criterion, fixed before the results
#
# Three paired contrasts over the same anomalous clips and seeds, each with a 95 % bootstrap
# interval over clips and seeds (`metrics.paired_mean_contrast`; clip i of every seed is
# the same kind of clip): (1) the angular model's share on machine-dominated bins minus the
# clip's chance share, (2) and (3) the angular model's share minus that of Deep SVDD and of
# the autoencoder. **SUPPORTED** if all three intervals lie above 0, **CONTRADICTED** if
# any lies below 0, else **INCONCLUSIVE** with the detectable effects (`claims.all_of`).
# "Above 0" means clear of 0 by the interval's *resolution* (the rule of notebook 05):
# twice the largest move of its ends under a change of rounding alone (the same code and
# data on a CPU with other vector instructions; the measured move is in the verdict cell's
# tolerance comment), $0.01$. The detectable effect is the half-width plus the resolution.
# *Why*: the paper's argument is that the auxiliary task makes the score depend on the
# machine signal rather than on the noise; a score that does gets its positive saliency
# where the machine signal is audible above the noise, more than a map that ignores the
# split (chance) and more than the rivals that the argument says the noise distracts.
#
# **Criterion change: the resolution.** The resolution was added after a stored run and
# before the one shown here; before, an interval had only to clear 0.
#
# **Criterion change: machine-dominated bins instead of the tone's box.** The replaced
# criterion judged the share of
# positive saliency in the tone's box: SUPPORTED if the angular model's mean share exceeded
# each rival's by more than two standard errors of the per-clip differences, on one seed.
# It was ill-posed for the claim twice over: its training and test clips came from
# different machines (independent `machine_sounds` calls), and a box around an additive
# tone measures how well a score localises added energy, which a reconstruction error does
# by construction, not whether the score listens to the machine rather than the noise. It
# said NOT SUPPORTED. The box share is still printed above, not decided on.

# %%
# tolerance: abs=0.01; interval ends of saliency shares (moved by 0.0045), x2
A = "subcluster-adacos"
RESOLUTION = 0.01  # twice the largest measured move of the interval ends (criterion above)
key = jax.random.key(67)
vs_chance = metrics.paired_mean_contrast([shares[A], chance], [1, -1], key=key)
vs_rival = {r: metrics.paired_mean_contrast([shares[A], shares[r]], [1, -1], key=key)
            for r in RIVALS}
verdict, detectable = all_of(
    from_interval(vs_chance, unit="share vs chance", resolution=RESOLUTION),
    *(from_interval(d, unit=f"share vs {LABELS[r]}", resolution=RESOLUTION)
      for r, d in vs_rival.items()))
record = claim(
    "C6", verdict,
    f"share of positive RISE saliency on machine-dominated bins: sub-cluster AdaCos "
    f"{fmt(shares[A].mean())}, Deep SVDD {fmt(shares['deep-svdd'].mean())}, autoencoder "
    f"{fmt(shares['autoencoder'].mean())}, chance {fmt(chance.mean())}; AdaCos - chance "
    f"{fmt_interval(vs_chance)}, AdaCos - rival "
    + ", ".join(f"{LABELS[r]} {fmt_interval(d)}" for r, d in vs_rival.items())
    + f" ({chance.size} maps, {len(SEEDS)} seeds, 0 dB)",
    detectable=detectable,
    statement="Under strong noise, RISE saliency of an angular margin model's anomaly score "
              "falls on the bins where the machine signal dominates the noise more than "
              "chance and more than that of Deep SVDD and of the autoencoder.",
    figures={"share_mean": {m: float(shares[m].mean()) for m in METHODS},
             "box_share_mean": {m: float(box_shares[m].mean()) for m in METHODS},
             "chance": float(chance.mean()),
             "vs_chance": [vs_chance.estimate, vs_chance.low, vs_chance.high],
             "vs_rival": {r: [d.estimate, d.low, d.high] for r, d in vs_rival.items()},
             "n_maps": int(chance.size), "n_masks": N_MASKS, "grid": list(GRID)},
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
# The three systems are those of notebooks 04 and 05, trained by `detect.dcase.run` on the
# valve mini protocol (`dcase.valve_mini_protocol`: 60 normal training clips, auxiliary
# classes = the four attributes; 140 test clips), 10 epochs: the reference system
# (`detect.systems.get("reference")`, K. Wilkinghoff's two-branch network on the raw
# 10-s waveforms, at half width in ci mode) for sub-cluster AdaCos (k-means back-end: 16
# centres of the source-domain training clips plus every target-domain training clip) and
# Deep SVDD, and the DCASE 2023 baseline autoencoder on 128-band log-mels.
#
# **Masks on the STFT.** The two-branch network listens to the waveform, the autoencoder
# to log-mels; to compare them on one plane, `explain.rise_waveform` masks the clip's STFT
# log-magnitude (n_fft 1024, hop 512: 313 frames x 513 bins of $16000/1024$ Hz), turns each masked
# copy back into a waveform with the clip's own phase (`audio.istft`) and scores it with
# the system's own front-end (`detect.waveform_score_fn`). Masked-out bins are filled with
# the mean log-magnitude of the normal training clips. There is no ground truth for *where*
# a real anomaly is, so these maps are shown, not scored: they show which parts of the clip
# each system's score reacts to.

# %%
# tolerance: abs=0.25; AUCs of trained systems; moved 0.122 between AMD Zen 4 (2 CPUs) and an
# Intel Xeon (1 CPU), x2 (the SSE4_2 ISA cap leaves these cells unchanged)
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
VALVE_WIDTH = 0.5 if MODE == "ci" else 1.0
valve_runs = {method: run(RunConfig(
    data=DATA, seed=1, detector=dataclasses.replace(
        systems.get("reference").config(method, small_data=True, width=VALVE_WIDTH), epochs=10,
        progress=False))) for method in METHODS}
valve_is_anomaly = np.array([c.is_anomaly for c in valve_runs[METHODS[0]].test_clips])
for method, result in valve_runs.items():
    print(f"{LABELS[method]:>18}: AUC {fmt(evaluation.auc(valve_is_anomaly, result.test_scores))}"
          f", official score {fmt(result.official_score)} (all 140 test clips)")

# %%
valve_clips = valve_runs[METHODS[0]].test_clips
train_clips = valve_runs[METHODS[0]].train_clips
shown = np.flatnonzero(valve_is_anomaly)[:N_VALVE_MAPS]
train_magnitude = np.abs(np.asarray(audio.stft(
    np.stack([audio.load(c.path) for c in train_clips]), n_fft=N_FFT, hop_length=HOP)))
valve_baseline = (20 * np.log10(np.maximum(train_magnitude, 1e-5))).mean(axis=0).T
fig, axes = plt.subplots(len(shown), 4, figsize=(15, 2.8 * len(shown)),
                         constrained_layout=True, squeeze=False)
for row, idx in enumerate(shown):
    wave = audio.load(valve_clips[idx].path)
    extent = (0, len(wave) / SR, 0, SR / 2000)
    for col, method in enumerate(METHODS, start=1):
        sal, log_magnitude = explain.rise_waveform(
            valve_runs[method].waveform_score_fn(), wave, jax.random.key(67), n_fft=N_FFT,
            hop_length=HOP, baseline=valve_baseline, n_masks=N_MASKS // 2, grid=(16, 16),
            keep_prob=KEEP, centre=True, batch_size=25)
        sal = np.asarray(sal)
        lim = np.abs(sal).max()
        ax = axes[row, col]
        ax.imshow(sal.T, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(f"{LABELS[method]}: centred RISE", fontsize=9)
    ax = axes[row, 0]
    ax.imshow(np.asarray(log_magnitude).T, origin="lower", aspect="auto", extent=extent,
              cmap="magma")
    ax.set_title(valve_clips[idx].path.name.removesuffix(".wav"), fontsize=8)
    for ax in axes[row]:
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
fig.suptitle("Anomalous valve clips: STFT log-magnitude (dB, left) and what raises each "
             "system's anomaly score (red)")
plt.show()

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this discussion says what they mean and leaves the numbers
# to the printed lines above.
#
# **C6 is CONTRADICTED.** Sub-cluster AdaCos puts a *smaller* share of its positive saliency
# on the bins where the machine signal dominates the noise than the chance share of those
# bins, and a smaller share than Deep SVDD and the autoencoder (the CLAIM line); all three
# paired intervals lie below 0 by far more than their rounding resolution. In these
# mixtures the angular model's anomaly score reacts most to bins where the noise dominates:
# what keeps its score high is not where the machine is audible. Whether this holds for the
# paper's systems (larger networks, two feature branches, all machine types) is not answered
# here; the check itself is one that any of the three systems could have won.
#
# **Valve maps (not scored).** With the reference system on the real clips (one seed, half
# width) the official scores of the three systems on the 140 test clips are printed above
# the maps; one seed of 60 training clips decides little about their order. The two
# anomalous clips shown carry short broadband clicks (the vertical lines of their
# spectrograms); none of the three maps singles them out. The autoencoder's score rises with
# the energy of the lowest bands over the whole clip, and the angular system's with a few
# narrow bands; with 500 masks per map and no ground truth for where a real anomaly lies,
# these are pictures, not evidence for or against C6.

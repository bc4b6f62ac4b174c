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
# # 03 — Auxiliary classification tasks in noise, synthetic machine sounds (claim C3)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# The abstract states that an angular margin loss trained on a *related auxiliary
# classification task* (e.g. which machine, which operating condition) learns
# representations that are suitable for detecting anomalous sounds *in noisy conditions*,
# where one-class (Deep SVDD / compactness loss) and generative (autoencoder) models are
# worse. Only the abstract is public to us; the precise claim below is **our reading**,
# written so that it can fail.
#
# **Claim C3.** On machine sounds whose identity (machine id x attribute) lives in the
# target signal, mixed with strong interfering noise, sub-cluster AdaCos trained on the
# auxiliary task (iii) detects subtle anomalies better than (i) Deep SVDD, (ii) an
# autoencoder on log-mel frames and (iv) the same loss trained on *random* auxiliary labels,
# and its advantage grows as the SNR falls.
#
# Why synthetic sounds: we know exactly where the identity and the anomalies live (in the
# machine's harmonic signature), and we control the noise level — real recordings
# (notebook 04) already contain factory noise of unknown level.

# %%
# %matplotlib inline

import jax
import matplotlib.pyplot as plt
import numpy as np

from asdtheory import audio, detect, plots
from asdtheory.data import dcase
from asdtheory.data.synthetic import ANOMALY_TYPES, machine_sounds
from asdtheory.repro.claims import claim, fmt, records
from asdtheory.repro.runmode import run_mode

MODE = run_mode()
NOTEBOOK = "03_auxiliary_tasks_in_noise"
DATA = dcase.data_root()  # $ASDTHEORY_DATA, else the per-user data folder
print("run mode:", MODE)

# %% [markdown]
# ## Data
#
# `asdtheory.data.synthetic.machine_sounds` synthesises each clip as a harmonic tone: machine
# $m$ sets the fundamental (80–450 Hz) and the harmonic profile, attribute $a$ shifts $f_0$
# by up to 3 %, tilts the profile and sets an amplitude and a frequency modulation; every clip
# has its own small random variation. The auxiliary task has $N$ = machines x attributes
# classes. Anomalies are *subtle changes of the target signal*, in equal numbers of three
# kinds: one harmonic raised by a factor 3 (`harmonic`), an extra partial half-way between
# two harmonics (`line`), 4 short clicks per second (`clicks`), all at the library's default
# strength 1.
#
# Per class, clip 1–`TRAIN` are normal training clips, then `TEST` normal and `TEST`
# anomalous test clips. Training uses normal clips only (semi-supervised ASD); scores are
# evaluated per machine (like DCASE sections): AUC, pAUC (max FPR 0.1, McClish-standardised)
# and their harmonic mean, averaged over machines.
#
# **Noise.** The four real background recordings of `noise/` (dishes, cat, exercise bike,
# running tap; Speech Commands, P. Warden 2018, CC BY 4.0), each scaled to unit RMS and
# concatenated (4.6 minutes), are added to every clip, training and test alike, from a
# random offset per clip (the same offsets at every SNR, so only the level changes), with
# `audio.mix_at_snr` at SNR in {clean, 10, 5, 0, −5, −10} dB relative to the clip.
#
# Sizes were fixed from the compute budget (ci mode: under 4 minutes on 2 CPU cores) before
# the final run, and are never changed to move a verdict.

# %%
if MODE == "ci":
    MACHINES, ATTRIBUTES, TRAIN, TEST, SEEDS, EPOCHS = 3, 2, 40, 20, (0, 1, 2), 10
else:
    MACHINES, ATTRIBUTES, TRAIN, TEST, SEEDS, EPOCHS = 4, 3, 80, 40, (0, 1, 2, 3, 4), 20
SNRS = (None, 10, 5, 0, -5, -10)
CONDITIONS = ["clean" if s is None else f"{s} dB" for s in SNRS]
PER_CLASS = TRAIN + 2 * TEST

sounds = machine_sounds(jax.random.key(2024), num_machines=MACHINES,
                        num_attributes=ATTRIBUTES, clips_per_class=PER_CLASS, duration=1.0,
                        anomaly_fraction=TEST / PER_CLASS)
is_train = np.arange(sounds.label.size) % PER_CLASS < TRAIN
noise = np.concatenate([w / np.std(w) for w in (
    audio.load_noise(name, DATA) for name in
    ("doing_the_dishes", "dude_miaowing", "exercise_bike", "running_tap"))])
test_types = sounds.anomaly_type[~is_train]
print(f"{MACHINES} machines x {ATTRIBUTES} attributes = {MACHINES * ATTRIBUTES} classes; "
      f"{is_train.sum()} training clips, {(~is_train).sum()} test clips "
      f"({sounds.is_anomaly[~is_train].sum()} anomalous: "
      + ", ".join(f"{np.sum(test_types == i)} {t}" for i, t in enumerate(ANOMALY_TYPES) if i)
      + "), 1 s each")

# %% [markdown]
# One normal and one anomalous clip (`harmonic` kind) of the same class, clean and at 0 dB
# and −10 dB: at 0 dB the noise already covers much of the harmonic structure.

# %%
NOISE_KEY = jax.random.key(7)


def with_noise(snr):
    if snr is None:
        return sounds.waveforms
    return np.asarray(audio.mix_at_snr(sounds.waveforms, noise, snr, key=NOISE_KEY))


example = [int(np.flatnonzero(~is_train & ~sounds.is_anomaly)[0]),
           int(np.flatnonzero(sounds.anomaly_type == 1)[0])]
fig, axes = plt.subplots(2, 3, figsize=(11, 5), sharex=True, sharey=True)
for col, snr in enumerate((None, 0, -10)):
    mels = detect.log_mels(with_noise(snr)[example])
    for row, name in enumerate(("normal", "anomalous (harmonic)")):
        axes[row, col].imshow(mels[row].T, origin="lower", aspect="auto", cmap="magma")
        axes[row, col].set_title(f"{name}, {CONDITIONS[SNRS.index(snr)]}", fontsize=9)
for ax in axes[:, 0]:
    ax.set_ylabel("mel band")
for ax in axes[1]:
    ax.set_xlabel("frame (32 ms)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Methods
#
# All four are `asdtheory.detect.Detector`s, the project's one detector, on in-memory
# clips: log-mel (32 bands, n_fft 1024, hop 512) standardised by the
# training statistics; for the CNN methods one 32-frame window per 1-s clip into a small
# residual CNN (`models.CNNEmbedder`, channels 8/16/32, 32-dim embedding), trained with
# Adam (learning rate 1e-3, batch 32) for `EPOCHS` epochs:
#
# * (i) `deep-svdd`: compactness loss $\lVert\phi(x)-c\rVert^2$ (Ruff et al. 2018: no bias
#   terms, $c$ fixed after an initial forward pass); score $\lVert\phi(x)-c\rVert^2$.
# * (ii) `autoencoder`: reconstruction of 5 stacked log-mel frames at every frame (DCASE
#   baseline style, batch 256); score = mean squared reconstruction error of the clip.
# * (iii) `subcluster-adacos`: sub-cluster AdaCos (4 sub-centres per class) on the auxiliary
#   task machine id x attribute; score = cosine distance of the clip embedding to the
#   nearest of 4 k-means centres of its machine's training embeddings.
# * (iv) `subcluster-adacos+random-labels`: the same loss and score, but the training labels
#   are randomly permuted (same class sizes, no relation to the sound).
#
# Every method sees identical data, splits and noise; seed $s$ sets the network
# initialisation and the batch order (and the label permutation of (iv)).

# %%
METHODS = ("deep-svdd", "autoencoder", "subcluster-adacos",
           "subcluster-adacos" + detect.RANDOM_LABELS)
LABELS = ("(i) Deep SVDD", "(ii) autoencoder", "(iii) sub-cluster AdaCos",
          "(iv) random labels")
BEST, CONTROL = METHODS.index("subcluster-adacos"), 3
CONFIG = detect.DetectorConfig(epochs=EPOCHS)

# %% [markdown]
# ## The test, fixed before the results
#
# With $h_{m,c,s}$ the harmonic mean of AUC and pAUC of method $m$ at SNR $c$ and seed $s$,
# $\text{margin}_c$ = mean over seeds of (iii) minus that of the strongest other method at
# $c$, and $\text{spread}_c$ = the larger of the two methods' standard deviations over seeds
# (`detect.margin_over_rivals`):
#
# * **C3.a** (iii) is best in noise: $\text{margin}_c > \text{spread}_c$ at every SNR
#   $\le 0$ dB (0, −5, −10 dB).
# * **C3.b** its advantage grows as the SNR falls:
#   $\text{margin}_{-10} - \text{margin}_{\text{clean}} > \max(\text{spread}_{-10},
#   \text{spread}_{\text{clean}})$.
# * **C3.c** the auxiliary task is what helps: (iii) beats the random-label control (iv) by
#   more than the larger of their seed spreads at every SNR $\le 0$ dB.
# * **C3** = C3.a and C3.b.
#
# A difference smaller than the spread over seeds is never called a difference.

# %%
results = {name: np.zeros((len(METHODS), len(SNRS), len(SEEDS)))
           for name in ("auc", "pauc", "hmean")}
for c, snr in enumerate(SNRS):
    mels = detect.log_mels(with_noise(snr))
    grid = detect.compare(
        mels[is_train], sounds.label[is_train], mels[~is_train], sounds.is_anomaly[~is_train],
        train_groups=sounds.machine[is_train], test_groups=sounds.machine[~is_train],
        methods=METHODS, seeds=SEEDS, config=CONFIG)
    for name in results:
        results[name][:, c] = grid[name]

# %%
# tolerance: abs=0.04; AUCs, seed stds moved by 0.020 (AVX-512 vs AVX2), x2
for name in ("auc", "pauc", "hmean"):
    print(f"{name} (mean ± std over {len(SEEDS)} seeds)")
    print(f"{'':26s}" + "".join(f"{c:>14s}" for c in CONDITIONS))
    for label, v in zip(LABELS, results[name], strict=True):
        print(f"{label:26s}" + "".join(f"{fmt(m):>8s} ± {fmt(s, 2):>4s}"
                                       for m, s in zip(v.mean(-1), v.std(-1, ddof=1),
                                                       strict=True)))
    print()

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
for ax, (name, title) in zip(axes, (("auc", "AUC"), ("pauc", "pAUC (max FPR 0.1)"),
                                    ("hmean", "harmonic mean")), strict=True):
    plots.plot_vs_condition(ax, results[name], conditions=CONDITIONS, methods=LABELS,
                            ylabel=title)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("SNR")
axes[0].legend(fontsize=8)
fig.suptitle(f"mean over {len(SEEDS)} seeds; band = min-max over seeds")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.03; margins, spreads moved by 0.011 (AVX-512 vs AVX2), x2
hmean = results["hmean"]
margin, spread = detect.margin_over_rivals(hmean, best=BEST)
control_margin, control_spread = detect.margin_over_rivals(
    hmean[[BEST, CONTROL]], best=0)
low = [SNRS.index(s) for s in (0, -5, -10)]
clean, worst = SNRS.index(None), SNRS.index(-10)
for c, cond in enumerate(CONDITIONS):
    print(f"{cond:>6s}: margin of (iii) over the strongest rival {fmt(margin[c]):>6s} "
          f"(spread {fmt(spread[c])}); over (iv) {fmt(control_margin[c]):>6s} "
          f"(spread {fmt(control_spread[c])})")

a = bool(np.all(margin[low] > spread[low]))
growth = margin[worst] - margin[clean]
b = bool(growth > max(spread[worst], spread[clean]))
c3c = bool(np.all(control_margin[low] > control_spread[low]))
figures = {"conditions": CONDITIONS, "margin": margin, "spread": spread,
           "control_margin": control_margin, "control_spread": control_spread,
           "hmean_mean": hmean.mean(-1), "seeds": len(SEEDS)}
claim("C3.a", a, "margin of (iii) over the strongest rival at 0/-5/-10 dB "
      + "/".join(fmt(margin[i]) for i in low) + " vs seed spread "
      + "/".join(fmt(spread[i]) for i in low),
      statement="Sub-cluster AdaCos with the auxiliary task has the best harmonic mean of "
      "AUC and pAUC at every SNR <= 0 dB, by more than the seed spread.",
      figures=figures, notebook=NOTEBOOK)
claim("C3.b", b, f"margin at -10 dB {fmt(margin[worst])} minus margin clean "
      f"{fmt(margin[clean])} = {fmt(growth)} vs spread "
      f"{fmt(max(spread[worst], spread[clean]))}",
      statement="The advantage of sub-cluster AdaCos over the strongest other method is "
      "larger at -10 dB than on clean data, by more than the seed spread.",
      figures=figures, notebook=NOTEBOOK)
claim("C3.c", c3c, "margin of (iii) over random labels (iv) at 0/-5/-10 dB "
      + "/".join(fmt(control_margin[i]) for i in low) + " vs seed spread "
      + "/".join(fmt(control_spread[i]) for i in low),
      statement="The meaningful auxiliary task beats the same loss on random labels at every "
      "SNR <= 0 dB, by more than the seed spread.",
      figures=figures, notebook=NOTEBOOK)
verdict = claim(
      "C3", a and b, f"C3.a {'holds' if a else 'fails'}, C3.b {'holds' if b else 'fails'}",
      statement="Sub-cluster AdaCos with the auxiliary task is best in noise and its advantage "
      "grows as the SNR falls (synthetic machine sounds).",
      figures=figures, notebook=NOTEBOOK)

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this paragraph was written for the stored ci-mode run
# (3 seeds) and describes its numbers.
#
# **C3 is not supported as stated.** Sub-cluster AdaCos with the
# auxiliary task is the best method at moderate noise: at 10, 5 and 0 dB its harmonic mean
# is ahead of every other method by more than the seed spread (0.70 / 0.67 / 0.62
# against at most 0.64 / 0.61 / 0.58). On clean data it ties with the autoencoder (the
# difference is inside the spread), and at −5 and −10 dB, where every method is close to
# chance (harmonic means 0.52–0.58), Deep SVDD is slightly but consistently ahead. So the
# advantage does not *grow* as the SNR falls: it appears with the noise, is largest at
# 5–10 dB and reverses once the noise is 5–10 dB stronger than the machine (C3.a and C3.b
# fail). The lead comes from the pAUC, the low-false-alarm end of the ROC curve: in AUC
# alone the autoencoder is level with sub-cluster AdaCos down to 5 dB.
#
# The control supports the mechanism the paper proposes: the same loss on *random* labels
# is worse than on the real auxiliary task at every SNR, by more than the seed spread
# everywhere except −5 dB (C3.c fails only there, 0.011 against a spread of 0.034). What
# helps in moderate noise is the auxiliary task, not the angular margin loss by itself.
#
# Limits of this test, so that the verdict is read at its size: small networks trained for
# 10 epochs on 240 one-second clips, three seeds, one anomaly strength, a single back-end
# per method. The noise here is non-stationary real audio at the same level in training
# and test; at −10 dB it masks most of the harmonic structure the anomalies live in (see
# the spectrograms), so *no* method can do much there. Full mode (5 seeds, 4 x 3 classes,
# twice the clips and epochs) is the stronger test.

# %%
# tolerance: abs=0.03; margins moved by 0.011 (AVX-512 vs AVX2), x2
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

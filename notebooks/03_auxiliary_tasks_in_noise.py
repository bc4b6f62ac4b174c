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

from asdtheory import audio, detect, evaluation, methods, plots, scoring
from asdtheory.data import dcase
from asdtheory.data.synthetic import ANOMALY_TYPES, machine_sounds
from asdtheory.repro import claims
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
# has its own small random variation and a natural level spread of 3 dB. The auxiliary task
# has $N$ = machines x attributes classes. Anomalies are subtle changes of the target
# signal, in equal numbers of six kinds: three that add energy (`harmonic`: one harmonic
# x 3; `line`: an extra partial between two harmonics; `clicks`: 4 clicks per second) and
# three that change what identifies the machine and keep its level (`pitch`: $f_0$ shifted
# by ±3 %; `modulation`: AM and FM rates x 1.5 or / 1.5; `profile`: harmonic profile tilted
# by $e^{\pm 0.1 (k - 4.5)}$), all at strength $s$ = `STRENGTH` (formulas in the docstring).
#
# **Calibration, before the final run.** $s$ was chosen on a separate calibration key (999,
# never used below; one seed, clean, ci sizes) so that the clean task is neither trivial nor
# hopeless: the best method's clean harmonic mean was 0.654 at $s$ = 0.5 and 0.711 at
# $s$ = 1, so $s$ = 1 (inside the target 0.65–0.9). It was not changed after the verdicts.
#
# Per class, clips 1–`TRAIN` are normal training clips, then `TEST` normal and `TEST`
# anomalous test clips; training uses normal clips only; scores are evaluated per machine
# (like DCASE sections). **Every seed draws fresh data**: new machines, new clips, new noise
# offsets, with the same layout (clip $i$ has the same label and machine index in every
# seed); train and test of a seed come from the same machines (one `machine_key`).
#
# **Noise.** The four real background recordings of `noise/` (dishes, cat, exercise bike,
# running tap; Speech Commands, P. Warden 2018, CC BY 4.0), each scaled to unit RMS and
# concatenated, are added to every clip from a random offset per clip (the same offsets at
# every SNR of a seed) with `audio.mix_at_snr` at SNR in {clean, 6, 0, −6} dB (as in MIMII)
# **relative to the mean power of the seed's normal training clips**: a label-free level,
# the same for every clip (before, the SNR was relative to each clip's own power, so the
# noise level knew the anomaly).

# %%
if MODE == "ci":
    MACHINES, ATTRIBUTES, TRAIN, TEST, SEEDS, STEPS = 4, 3, 20, 12, (0, 1, 2, 3, 4), 200
else:
    MACHINES, ATTRIBUTES, TRAIN, TEST, SEEDS, STEPS = 4, 3, 60, 24, tuple(range(10)), 1000
STRENGTH = 1.0  # calibrated on key 999, see above
SNRS = (None, 6, 0, -6)
CONDITIONS = ["clean" if s is None else f"{s} dB" for s in SNRS]
PER_CLASS = TRAIN + 2 * TEST
noise = np.concatenate([w / np.std(w) for w in (
    dcase.load_noise(name, DATA) for name in
    ("doing_the_dishes", "dude_miaowing", "exercise_bike", "running_tap"))])


def draw(seed):
    """The clips of one seed: fresh machines and clips, the same layout in every seed."""
    key = jax.random.fold_in(jax.random.key(2024), seed)
    return machine_sounds(key, machine_key=jax.random.fold_in(key, 1),
                          num_machines=MACHINES, num_attributes=ATTRIBUTES,
                          clips_per_class=PER_CLASS, duration=1.0,
                          anomaly_fraction=TEST / PER_CLASS, anomaly_types=ANOMALY_TYPES[1:],
                          anomaly_strength=STRENGTH)


def with_noise(sounds, snr, seed):
    if snr is None:
        return sounds.waveforms
    reference = np.mean(sounds.waveforms[is_train] ** 2)  # normal training clips only
    return np.asarray(audio.mix_at_snr(sounds.waveforms, noise, snr,
                                       key=jax.random.fold_in(jax.random.key(7), seed),
                                       reference_power=reference))


first = draw(SEEDS[0])
is_train = np.arange(first.label.size) % PER_CLASS < TRAIN
y_test, machine_test = first.is_anomaly[~is_train], first.machine[~is_train]
types_test = first.anomaly_type[~is_train]
print(f"{MACHINES} machines x {ATTRIBUTES} attributes = {MACHINES * ATTRIBUTES} classes; "
      f"{is_train.sum()} training clips, {(~is_train).sum()} test clips "
      f"({y_test.sum()} anomalous: "
      + ", ".join(f"{np.sum(types_test == i)} {t}" for i, t in enumerate(ANOMALY_TYPES) if i)
      + f"), 1 s each; {len(SEEDS)} seeds, each with fresh data")

# %% [markdown]
# ## Methods
#
# All four are `asdtheory.detect.Detector`s on log-mel (32 bands, n_fft 1024, hop 512)
# standardised by the training statistics; the CNN methods see one 32-frame window per 1-s
# clip in a small residual CNN (channels 8/16/32, 32-dim embedding). **Every method gets
# the same number of Adam steps**, `STEPS` (learning rate 1e-3; batch 32 windows, or 256
# stacked-frame vectors for the autoencoder):
#
# * (i) `deep-svdd`: compactness loss (Ruff et al. 2018: no bias terms, fixed $c$);
# * (ii) `autoencoder`: reconstruction of 5 stacked log-mel frames (DCASE baseline style);
# * (iii) `subcluster-adacos`: sub-cluster AdaCos (4 sub-centres per class) on machine x
#   attribute; score = cosine distance to the nearest of 4 k-means centres of its machine;
# * (iv) `subcluster-adacos+random-labels`: the same with the labels permuted at random.
#
# Reference row: `scoring.level_score`, "louder or quieter than the machine's normal
# training clips", which needs no learning.

# %%
METHODS = ("deep-svdd", "autoencoder", "subcluster-adacos",
           "subcluster-adacos" + methods.RANDOM_LABELS)
LABELS = ("(i) Deep SVDD", "(ii) autoencoder", "(iii) sub-cluster AdaCos",
          "(iv) random labels", "level only (reference)")
BEST, CONTROL, RIVALS = 2, 3, (0, 1)
CONFIG = detect.DetectorConfig(steps=STEPS, progress=False)

# %% [markdown]
# ## The test, fixed before the results
#
# For methods $a$, $b$ at SNR $c$, $\Delta_c(a, b)$ = harmonic mean of AUC and pAUC
# (per machine, averaged) of $a$ minus that of $b$, averaged over seeds, with a 95 %
# paired bootstrap interval over clips (stratified per machine and label) and seeds
# (`evaluation.paired_difference`). The **strongest rival** $r_c$ at SNR $c$ is whichever
# of (i) Deep SVDD and (ii) the autoencoder has the higher mean harmonic mean there (picked
# by its estimate, per condition).
#
# * **C3.a** (iii) is best in noise: $\Delta_c(\text{iii}, r_c) > 0$ at 0 and −6 dB, i.e.
#   both intervals above 0 (SUPPORTED); CONTRADICTED if one lies below 0; else INCONCLUSIVE
#   with the detectable effect of each undecided SNR (the interval's half-width plus the
#   resolution below)
#   (`claims.all_of`).
# * **C3.b** the advantage grows as the SNR falls: the contrast
#   $\Delta_{-6}(\text{iii}, r_{-6}) - \Delta_{\text{clean}}(\text{iii}, r_{\text{clean}})$
#   (`evaluation.paired_contrast`, the same clips and seeds in all four terms) has an
#   interval above 0.
# * **C3.c** the auxiliary task is what helps: $\Delta_c(\text{iii}, \text{iv}) > 0$ at 0
#   and −6 dB, judged as C3.a.
# * **C3** = C3.a and C3.b: SUPPORTED iff both are, CONTRADICTED if either is, else
#   INCONCLUSIVE with the detectable effects of its undecided parts.
#
# Why these test the claim: the claim is a ranking of detectors on the same data, so the
# quantity is the paired difference on the same clips and seeds; the interval accounts for
# both the finite test set and the training randomness (seeds with fresh data), and a
# verdict is printed only when it excludes 0, so the check can come out either way.
#
# **The old criterion and why it was replaced.** Before, "(iii) is best" meant that the
# difference of seed means exceeded the larger standard deviation over 3 seeds, on one data
# draw. That ignores the sampling of the test clips (the same 120 clips in every seed), is
# not a confidence statement (with 3 seeds a standard deviation is itself very uncertain),
# and had only two outcomes, so "not shown" read as "false". It was also decided on data
# where the noise level followed each clip's own power and the methods had unequal
# budgets (~70 steps for the CNNs, ~4x more for the autoencoder).
#
# **Clear of the rounding, not only of 0** (the rule of notebook 05, added here after the
# previous stored run, before this one; until then an interval had only to clear 0). An
# interval decides only if it clears 0 by its *resolution*, twice the largest move of its
# ends measured under a change of rounding alone (`claims.from_interval(..., resolution=)`):
# here 0.04 hmean, from moves of 0.020 (AMD AVX-512 vs AVX2) and 0.019 (AMD Zen 4 on two
# CPUs vs an Intel Xeon on one). Each training run is computed once, and a change of
# rounding moves a trained network as another seed would; a verdict that two CPUs could
# print differently would be decided by rounding. The detectable effect is the interval's
# half-width plus the resolution. No verdict of this notebook was decided under the old
# rule, so the change moves only the detectable effects.

# %%
scores = np.zeros((len(LABELS), len(SNRS), len(SEEDS), (~is_train).sum()))
for j, seed in enumerate(SEEDS):
    sounds = first if j == 0 else draw(seed)
    assert np.array_equal(sounds.label, first.label)  # the same layout in every seed
    for c, snr in enumerate(SNRS):
        waves = with_noise(sounds, snr, seed)
        mels = detect.log_mels(waves)
        grid = detect.compare(
            mels[is_train], sounds.label[is_train], mels[~is_train], y_test,
            train_groups=sounds.machine[is_train], test_groups=machine_test,
            methods=METHODS, seeds=(seed,), config=CONFIG)
        scores[:len(METHODS), c, j] = grid["scores"][:, 0]
        scores[-1, c, j] = scoring.level_score(
            waves[is_train], waves[~is_train], train_groups=sounds.machine[is_train],
            test_groups=machine_test)
results = {name: np.array([[[evaluation.group_metrics(y_test, s, machine_test)[name]
                             for s in per_snr] for per_snr in per_method]
                           for per_method in scores])
           for name in ("auc", "pauc", "hmean")}

# %%
# tolerance: abs=0.06; AUCs, seed stds moved by 0.020 (AVX-512 vs AVX2), x2, plus margin
for name in ("auc", "pauc", "hmean"):
    print(f"{name} (mean ± std over {len(SEEDS)} seeds, each with fresh data)")
    print(f"{'':26s}" + "".join(f"{c:>14s}" for c in CONDITIONS))
    for label, v in zip(LABELS, results[name], strict=True):
        print(f"{label:26s}" + "".join(f"{fmt(m):>8s} ± {fmt(s, 2):>4s}"
                                       for m, s in zip(v.mean(-1), v.std(-1, ddof=1),
                                                       strict=True)))
    print()

# %%
# tolerance: abs=0.08; per-type AUCs on 2 clips per class and type
print("AUC per anomaly type of (iii), mean over seeds (normal test clips vs that type)")
print(f"{'':12s}" + "".join(f"{c:>9s}" for c in CONDITIONS))
for k in range(1, len(ANOMALY_TYPES)):
    sel = (types_test == 0) | (types_test == k)
    row = [np.mean([evaluation.group_metrics(y_test[sel], s[sel], machine_test[sel])["auc"]
                    for s in scores[BEST, c]]) for c in range(len(SNRS))]
    print(f"{ANOMALY_TYPES[k]:12s}" + "".join(f"{fmt(v):>9s}" for v in row))

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
for ax, (name, title) in zip(axes, (("auc", "AUC"), ("pauc", "pAUC (max FPR 0.1)"),
                                    ("hmean", "harmonic mean")), strict=True):
    plots.plot_vs_condition(ax, results[name], conditions=CONDITIONS, methods=LABELS,
                            ylabel=title)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("SNR")
axes[0].legend(fontsize=8)
fig.suptitle(f"mean over {len(SEEDS)} seeds (fresh data each); band = min-max over seeds")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict

# %%
# tolerance: abs=0.04; paired differences and interval ends (trained AUCs move ~0.02), x2
BOOT = jax.random.key(3)
RESOLUTION = 0.04  # twice the largest measured move of the interval ends (above)
mean_h = results["hmean"].mean(-1)
rival = [RIVALS[int(np.argmax(mean_h[list(RIVALS), c]))] for c in range(len(SNRS))]


def diff(a, b, c):
    return evaluation.paired_difference(scores[a, c], scores[b, c], is_anomaly=y_test,
                                        groups=machine_test, key=jax.random.fold_in(BOOT, c))


vs_rival = [diff(BEST, rival[c], c) for c in range(len(SNRS))]
vs_control = [diff(BEST, CONTROL, c) for c in range(len(SNRS))]
clean, worst = SNRS.index(None), SNRS.index(-6)
growth = evaluation.paired_contrast(
    [scores[BEST, worst], scores[rival[worst], worst], scores[BEST, clean],
     scores[rival[clean], clean]], [1.0, -1.0, -1.0, 1.0], is_anomaly=y_test,
    groups=machine_test, key=jax.random.fold_in(BOOT, 99))
for c, cond in enumerate(CONDITIONS):
    print(f"{cond:>6s}: (iii) - {LABELS[rival[c]]:17s} {claims.fmt_interval(vs_rival[c])}; "
          f"(iii) - (iv) {claims.fmt_interval(vs_control[c])}")
print(f"growth (-6 dB minus clean): {claims.fmt_interval(growth)}")


def all_above_zero(diffs):
    """C3.a and C3.c: the interval at 0 dB and at -6 dB both above 0 (claims.all_of)."""
    return claims.all_of(*(claims.from_interval(diffs[i], unit=f"hmean at {CONDITIONS[i]}",
                                                resolution=RESOLUTION)
                           for i in (SNRS.index(0), SNRS.index(-6))))


low = [SNRS.index(s) for s in (0, -6)]
a, a_det = all_above_zero(vs_rival)
b, b_det = claims.from_interval(growth, unit="hmean (growth)", resolution=RESOLUTION)
c3c, c_det = all_above_zero(vs_control)
figures = {"conditions": CONDITIONS, "hmean_mean": mean_h, "rival": [int(r) for r in rival],
           "vs_rival": [[d.estimate, d.low, d.high] for d in vs_rival],
           "vs_control": [[d.estimate, d.low, d.high] for d in vs_control],
           "growth": [growth.estimate, growth.low, growth.high], "seeds": len(SEEDS)}
claim("C3.a", a, "(iii) minus the strongest rival at 0 / -6 dB: "
      + " / ".join(claims.fmt_interval(vs_rival[i]) for i in low) + " hmean",
      statement="Sub-cluster AdaCos with the auxiliary task has a higher harmonic mean of AUC "
      "and pAUC than the stronger of Deep SVDD and the autoencoder at 0 and -6 dB.",
      detectable=a_det, figures=figures, notebook=NOTEBOOK)
claim("C3.b", b, f"(iii - rival) at -6 dB minus clean: {claims.fmt_interval(growth)} hmean",
      statement="The advantage of sub-cluster AdaCos over the strongest rival is larger at "
      "-6 dB than on clean data.", detectable=b_det, figures=figures, notebook=NOTEBOOK)
claim("C3.c", c3c, "(iii) minus random labels (iv) at 0 / -6 dB: "
      + " / ".join(claims.fmt_interval(vs_control[i]) for i in low) + " hmean",
      statement="The meaningful auxiliary task beats the same loss on random labels at 0 and "
      "-6 dB.", detectable=c_det, figures=figures, notebook=NOTEBOOK)
overall, overall_det = claims.all_of((a, a_det), (b, b_det))
verdict = claim(
      "C3", overall, f"C3.a {a}, C3.b {b}",
      statement="Sub-cluster AdaCos with the auxiliary task is best in noise and its advantage "
      "grows as the SNR falls (synthetic machine sounds).",
      detectable=overall_det, figures=figures, notebook=NOTEBOOK)

# %% [markdown]
# ## Discussion
#
# The verdict lines are computed; this paragraph was written for the stored ci-mode run
# (4 x 3 classes, 5 seeds with fresh data each, 200 optimiser steps per method) and
# describes its numbers.
#
# **The confound is gone.** The clip level alone now scores a harmonic mean of about 0.53
# in every condition (before the noise was set from a label-free level it beat every trained
# method), so what the trained methods score is not loudness.
#
# **C3 is INCONCLUSIVE at this size, with every estimate on the claim's side.** Clean, all
# three methods are close (hmean 0.70-0.72; (iii) minus Deep SVDD -0.012 [-0.046, 0.031]).
# In noise sub-cluster AdaCos has the highest mean at every SNR (0.581 / 0.543 / 0.532 at
# 6 / 0 / -6 dB against at most 0.551 / 0.531 / 0.508), and its advantage over the strongest
# rival grows from clean to -6 dB by 0.036 [-0.024, 0.085]; but each paired interval
# includes 0. These 5 seeds and 144 test clips per seed resolve differences of about
# 0.04-0.05 hmean (the half-widths), and a verdict must also clear the rounding resolution
# of 0.04: the detectable effects are 0.08-0.09 hmean. The lead is in the pAUC
# (0.525-0.553 against at most 0.517 in noise), the low-false-alarm end, as in the earlier
# version of this notebook.
#
# **C3.c** the real auxiliary task against random labels: above 0 clean (0.047
# [0.016, 0.090]) and at 6 dB (0.073 [0.028, 0.123]), inconclusive at 0 and -6 dB
# (0.031 [-0.021, 0.085], 0.028 [-0.010, 0.071]). In the previous stored run the -6 dB
# interval ended at -0.001, a verdict another CPU could have printed either way; the
# resolution now keeps such a part INCONCLUSIVE on every CPU.
#
# Per anomaly type, noise hides the additive clicks first (AUC 0.96 clean, chance from
# 6 dB) while the identity-changing pitch and harmonic changes stay detectable longest
# (0.57-0.58 at -6 dB); the modulation-rate change is hardly detectable even clean in 1-s
# clips (0.54). Full mode (10 seeds, more clips and steps) is the test that can decide C3.

# %%
# tolerance: abs=0.04; paired differences moved like trained AUCs (~0.02), x2
print(f"{'claim':6s} {'verdict':14s} summary")
for record in records():
    print(f"{record.id:6s} {record.verdict:14s} {record.summary}")

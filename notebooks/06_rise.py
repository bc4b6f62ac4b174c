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
# Its abstract says that RISE saliency maps of the anomaly score support the argument: an
# angular margin model trained on an auxiliary classification task listens to the machine,
# while one-class and generative models are distracted by the noise. Only the abstract is
# public to us; the falsifiable statements below are **our reconstruction** (DESIGN.md, C6).
#
# **Why it matters.** If the score of the angular margin model rises and falls with the
# machine's sound and not with the noise, the auxiliary task has done what the paper says
# it does: it has taught the network which part of a noisy clip identifies the machine.
# A saliency map alone cannot show that; a map compared with chance, with rival detectors
# on the same clips, with the same network untrained, and with a test that needs no masks
# (deleting the machine or the noise) can.
#
# **RISE** (V. Petsiuk, A. Das and K. Saenko, "RISE: Randomized input sampling for
# explanation of black-box models", BMVC 2018; `asdtheory.explain.rise`). The score f of a
# trained detector is evaluated on N randomly masked copies of the clip's log-mel
# spectrogram I; the saliency of a time-frequency bin is
#
# $$S(t,k) = \frac{1}{Np}\sum_i f\big(I\odot M_i + B\odot(1-M_i)\big)\,M_i(t,k)
#   - \bar f\,\overline{M}(t,k)/p,$$
#
# with smooth random masks $M_i$ (a coarse binary grid with keep probability p, upsampled
# with a random shift) and B the **fill** of the masked-out bins. Centred this way, S is
# positive where keeping a bin raises the anomaly score and negative where it lowers it.
#
# **Data and licences.** Synthetic machine sounds (`data.synthetic.machine_sounds`: three
# machine types with two attributes each, 1-s clips at 16 kHz), mixed with the four
# recordings of the `_background_noise_` folder of Speech Commands (P. Warden, "Speech
# Commands: A dataset for limited-vocabulary speech recognition", 2018; CC BY 4.0) at 0 dB,
# a label-free level per machine. The mixture is synthesised, so for every bin it is known
# whether the machine or the noise dominates it, and where the anomaly is audible.
#
# This notebook trains nothing: it judges the records of the experiment `c6`
# (`asdtheory.experiments.c6`), computed once at the standard size by
# `asdtheory experiment run c6 --size standard` and committed under `results/c6/standard/`.

# %%
# %matplotlib inline

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from asdtheory import experiments, plots
from asdtheory.experiments import c6
from asdtheory.repro import c6 as verdicts
from asdtheory.repro import claims
from asdtheory.repro.claims import fmt, fmt_interval
from asdtheory.repro.runmode import run_mode

NOTEBOOK = "06_rise"
SIZE = "full" if run_mode() == "full" else "standard"  # full: records of a GPU host's run
RESULTS = Path("..") / "results"  # the committed records; notebooks run in notebooks/
table = experiments.load_table("c6", SIZE, results_dir=RESULTS)
maps = verdicts.load_maps(SIZE, results_dir=RESULTS)
per_map = verdicts.map_table(table, maps)
settings = c6.units(SIZE)[0].config
seeds = np.unique(table["seed"])
first = table["unit"] == f"method={c6.METHODS[0]},seed={seeds[0]}"
print(f"{len(np.unique(table['unit']))} units: {len(c6.METHODS)} methods x {seeds.size} seeds; "
      f"per seed {c6.MACHINES * c6.ATTRIBUTES * settings['train']} normal training clips, "
      f"{first.sum()} test clips ({(table['anomaly'][first] == 'none').sum()} normal, "
      + ", ".join(f"{(table['anomaly'][first] == k).sum()} {k}" for k in c6.ANOMALIES)
      + f"); {settings['steps']} optimiser steps of batch {settings['batch_size']} (the "
      f"autoencoder {settings['autoencoder_steps']}); {settings['n_masks']} masks per map on a "
      f"{settings['grid'][0]} x {settings['grid'][1]} grid, keep probability "
      f"{settings['keep_prob']}; {per_map['seed'].size} explained clips in all")

# %% [markdown]
# ## The clips and what is known about each bin
#
# Two anomaly kinds, each a fault of the machine:
#
# * **tone**: a whine, a tone at 1600 Hz from 400 to 700 ms, 6 dB below the machine's normal
#   sound while it lasts: energy foreign to the machine, in a fixed box;
# * **harmonic**: one of the machine's own harmonics (2 to 7, per clip) made louder over the
#   whole clip, at the strength fixed before the run (`c6.calibrate`: the smallest of a grid
#   at which every method detects it on a calibration key), a change of the machine's own
#   sound.
#
# Per test clip the records hold its **machine-dominated bins** (`explain.dominance_mask`:
# the machine signal, anomaly included, louder than the noise) and, per anomalous clip, its
# **anomaly region** (the bins where the anomaly raises the mixture's power by at least
# 3 dB, from the same clip rendered with and without it). The records keep maps and
# regions, not spectrograms: the figure redraws one seed's clips from its key
# (`c6.inputs`).

# %%
clips = c6.inputs(settings, int(seeds[0]))
rows = table["clip"][first]
kinds = table["anomaly"][first]
shown = {kind: int(rows[kinds == kind][0]) for kind in ("none", *c6.ANOMALIES)}
region_of = {int(c): m for c, m in zip(rows, table["map"][first], strict=True) if m >= 0}
extent = (0, settings["duration"], 0, settings["n_mels"])

fig, axes = plt.subplots(2, 3, figsize=(12, 5.5), sharex=True, sharey=True,
                         constrained_layout=True)
for col, (kind, clip) in enumerate(shown.items()):
    image = axes[0, col].imshow(clips["test"][clip].T, origin="lower", aspect="auto",
                                extent=extent, cmap="magma")
    axes[0, col].set_title(f"{'normal' if kind == 'none' else kind} clip")
    fig.colorbar(image, ax=axes[0, col], label="log-mel (dB)")
    axes[1, col].imshow(clips["dominant"][clip].T, origin="lower", aspect="auto",
                        extent=extent, cmap="gray", vmin=0, vmax=1)
    if clip in region_of:
        axes[1, col].contour(clips["anomaly_region"][clip].T, levels=[0.5], colors="tab:red",
                             extent=extent, linewidths=1.2)
    axes[1, col].set_xlabel("time (s)")
for ax in axes[:, 0]:
    ax.set_ylabel("mel band")
fig.suptitle("Test clips of the first seed (top) and their bins (bottom): machine-dominated "
             "in white, the anomaly region outlined in red")
plt.show()


area = {(region, kind): fmt(per_map[f"chance|absolute/{region}/class"][
    per_map["anomaly"] == kind].mean())
    for region in ("machine", "anomaly") for kind in c6.ANOMALIES}
print("area share, mean over explained clips: machine-dominated bins "
      + ", ".join(f"{k} {area['machine', k]}" for k in c6.ANOMALIES)
      + "; anomaly region " + ", ".join(f"{k} {area['anomaly', k]}" for k in c6.ANOMALIES))

# %% [markdown]
# ## Three detectors, each beside its untrained twin and the level detector
#
# The same spectrograms for every method, one window per clip:
#
# * **sub-cluster AdaCos**: a small CNN trained to classify the six (machine, attribute)
#   classes (4 sub-centres per class); score = cosine distance to the nearest of six k-means
#   centres of the training embeddings;
# * **Deep SVDD**: the same CNN without bias terms, compactness to a fixed centre;
# * **autoencoder**: the DCASE 2023 baseline on 5 stacked frames; score = reconstruction
#   error.
#
# A map explains how a score detects an anomaly only if the score detects it: the **gate**,
# fixed before the run, withholds every comparison that involves a method whose mean AUC on
# that anomaly kind is below `c6.GATE_AUC` (its value and reason are printed with the
# criteria below). The AUC of each method's score on each kind (its clips
# against the normal test clips), of its untrained twin (same architecture, back-end and
# key, no optimiser step) and of the model-free level detector (`scoring.level_score`), mean
# over seeds; then the trained score against each, paired on the same clips with a 95 %
# interval (seeds, then clips within label), and whether each training settled
# (`train.settling`):

# %%
detection = verdicts.detection_table(table)
print(f"{'AUC, mean over seeds':22s}" + "".join(f"{k:>32s}" for k in c6.ANOMALIES))
print(f"{'':22s}" + "".join(f"{'trained':>12s}{'twin':>7s}{'level':>7s}{'gate':>6s}"
                           for _ in c6.ANOMALIES))
for method in c6.METHODS:
    print(f"{c6.LABELS[method]:22s}" + "".join(
        f"{fmt(detection[method, k, 'trained'].mean()):>12s}"
        f"{fmt(detection[method, k, 'twin'].mean()):>7s}"
        f"{fmt(detection[method, k, 'level'].mean()):>7s}"
        f"{'pass' if detection[method, k, 'trained'].mean() >= c6.GATE_AUC else 'fail':>6s}"
        for k in c6.ANOMALIES))
contrasts = verdicts.detection_contrasts(table)
print("\nAUC of the trained score minus its rival's, paired on the same clips [95 % interval]")
print(f"{'':22s}" + "".join(f"{k + ': - twin':>24s}{k + ': - level':>24s}"
                           for k in c6.ANOMALIES))
for method in c6.METHODS:
    print(f"{c6.LABELS[method]:22s}" + "".join(
        f"{fmt_interval(contrasts[method, k, rival]):>24s}"
        for k in c6.ANOMALIES for rival in ("twin", "level")))
late = verdicts.unsettled(table)
print(f"\n{len(late)} of {len(np.unique(table['unit']))} training runs had not settled"
      + (":" if late else "."))
for unit, value in late:
    print(f"  {unit}: {fmt(value)}")

# %% [markdown]
# ## The measures and the test, fixed before the run
#
# For a centred map S and a region R (the machine-dominated bins, the anomaly region):
# the **positive share** $\sum_R \max(S,0) / \sum \max(S,0)$ says where the bins that raise
# the score lie, the **negative share** where those that lower it lie, the **absolute
# share** $\sum_R |S| / \sum |S|$ where the bins the score reacts to lie, either way. A map
# blind to R gets R's area fraction: **chance**, per clip.
#
# **The fill decides.** With the mean normal spectrogram of the clip's own class as the fill
# (`class`), a masked copy stays a sound of the clip's class, and only what the clip holds
# beyond its class's normal sound moves the score. With the mean over all classes
# (`average`), every masked copy moves towards an average of all classes, far from every
# class centre, so the map of a class-centre score mixes that distance with what the clip
# holds; those maps are reported beside, not decided on.
#
# **Deletion test** (no masks, no fill): the score change when a clip's machine-dominated
# bins are replaced by the log-mel of an independent stretch of the same noise at the same
# level, against the change when its noise-dominated bins are; the machine's share of the
# two changes is 1/2 for a score that reacts to both equally.
#
# Each comparison is a paired contrast over the same explained clips, averaged per seed and
# over seeds, with a 95 % hierarchical bootstrap interval (seeds, then clips within class),
# decided against its smallest effect of interest (`claims.decide`: SUPPORTED when the
# interval lies above 0, CONTRADICTED when it lies below the smallest effect and not above
# 0, else INCONCLUSIVE with the detectable effect).

# %%
claims.show_criteria(c6.CRITERIA, unit=verdicts.UNIT)
print(f"\nC6 (the whole claim): {c6.OVERALL['statement']}\n  criterion: "
      f"{c6.OVERALL['criterion']} ({', '.join(c6.OVERALL['parts'])})\ngate: {c6.GATE_REASON}")

# %% [markdown]
# ## The maps
#
# One harmonic and one tone clip of the first seed: each method's trained map with the
# class-conditional fill (the one that decides), with the class-averaged fill, and its
# untrained twin's map (class-conditional fill). Each map is divided by its largest
# magnitude; red bins raise the score, blue bins lower it.

# %%
columns = (("saliency_class", "trained, class fill"),
           ("saliency_average", "trained, average fill"),
           ("saliency_twin_class", "untrained twin, class fill"))
for kind in c6.ANOMALIES:
    clip = shown[kind]
    index = region_of[clip]
    fig, axes = plt.subplots(len(c6.METHODS), len(columns) + 1, figsize=(15, 8.5),
                             sharex=True, sharey=True, constrained_layout=True)
    axes[0, 0].imshow(clips["test"][clip].T, origin="lower", aspect="auto", extent=extent,
                      cmap="magma")
    axes[0, 0].set_title("the clip (log-mel)", fontsize=9)
    axes[1, 0].imshow(clips["dominant"][clip].T, origin="lower", aspect="auto", extent=extent,
                      cmap="gray", vmin=0, vmax=1)
    axes[1, 0].contour(maps[c6.METHODS[0], int(seeds[0])]["anomaly_region"][index].T,
                       levels=[0.5], colors="tab:red", extent=extent, linewidths=1.2)
    axes[1, 0].set_title("machine-dominated (white),\nanomaly region (red)", fontsize=9)
    axes[2, 0].axis("off")
    for row, method in enumerate(c6.METHODS):
        arrays = maps[method, int(seeds[0])]
        for col, (name, title) in enumerate(columns, start=1):
            image = axes[row, col].imshow(
                arrays[name][index].astype(np.float32).T, origin="lower", aspect="auto",
                extent=extent, cmap="RdBu_r", vmin=-1, vmax=1)
            axes[row, col].set_title(f"{c6.LABELS[method]}: {title}", fontsize=9)
        axes[row, 0].set_ylabel("mel band")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[:, 1:], shrink=0.6,
                 label="saliency / largest |saliency| (red: raises the score)")
    fig.suptitle(f"Centred RISE maps of the anomaly score, a {kind} clip at 0 dB")
    plt.show()

# %% [markdown]
# Over every explained clip and seed: each method's absolute share on the machine-dominated
# bins minus chance, trained and untrained, per anomaly kind (class-conditional fill), and
# the deletion test's machine share minus 1/2.

# %%
statistics = (("absolute/machine/class", "absolute share on machine-\ndominated bins - chance"),
              ("positive/anomaly/class", "positive share on the\nanomaly region - chance"),
              ("deletion", "machine share of the\ndeletion effect - 1/2"))
fig, axes = plt.subplots(len(c6.ANOMALIES), len(statistics), figsize=(13, 6.5),
                         sharey="col", constrained_layout=True)
for row, kind in enumerate(c6.ANOMALIES):
    rows_kind = per_map["anomaly"] == kind
    for ax, (statistic, ylabel) in zip(axes[row], statistics, strict=True):
        chance = per_map[f"chance|{statistic}"][rows_kind]
        for i, method in enumerate(c6.METHODS):
            sources = ((method, 1.0),) + (((f"{method} twin", 0.35),)
                                          if statistic != "deletion" else ())
            for j, (source, alpha) in enumerate(sources):
                box = ax.boxplot(per_map[f"{source}|{statistic}"][rows_kind] - chance,
                                 positions=[i + 0.35 * (j - 0.5 * (len(sources) - 1))],
                                 widths=0.3, showfliers=False, patch_artist=True)
                box["boxes"][0].set(facecolor=plots.COLOURS[method], alpha=alpha)
                box["medians"][0].set(color="black")
        ax.set_xticks(range(len(c6.METHODS)),
                      [c6.LABELS[m].replace(" ", "\n", 1) for m in c6.METHODS])
        ax.axhline(0, color="grey", ls="--", lw=0.8)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{kind} clips", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color="grey"),
                    plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.35)],
           labels=["trained", "untrained twin"], loc="outside lower center", ncol=2)
fig.suptitle("Per explained clip and seed, class-conditional fill (boxes: quartiles; "
             "whiskers: 1.5 IQR)")
plt.show()

# %% [markdown]
# ## Verdicts
#
# Each claim is decided on the comparisons that pass the gate; a claim none of whose
# comparisons passes is `WITHHELD`, with the gate's reason: no verdict either way. Each
# claim's statement is printed, then `CLAIM <id> <verdict>` with every comparison's
# estimate, interval and reading ("tone: sub-cluster AdaCos - Deep SVDD" is sub-cluster
# AdaCos's share minus Deep SVDD's on the tone clips), then the comparisons the gate
# withheld from a judged claim.

# %%
analysis = verdicts.analyse(table, maps)
for result in analysis.results:
    claims.report(result, notebook=NOTEBOOK)
    if result.verdict != claims.WITHHELD:
        for name, reason in analysis.withheld.get(result.id, {}).items():
            print(f"  withheld: {name}: {reason}")
parts = [r for r in analysis.results if r.id in c6.OVERALL["parts"]]
overall = claims.report_together(c6.OVERALL["id"], parts, statement=c6.OVERALL["statement"],
                                 notebook=NOTEBOOK)

# %% [markdown]
# ## Beside the verdicts: every share, the twin, the old measure
#
# Reported with intervals, not decided: every method's share minus chance on every region
# under both fills, what training added to each map (trained minus untrained twin), and
# notebook 06's former measure (positive share, class-averaged fill) on the same records.

# %%
reported = verdicts.reported(per_map)
names = [c6.LABELS[m] for m in c6.METHODS]
for group in ("shares vs chance", "trained - twin"):
    print(f"\n{group} (estimate [95 % interval])")
    print(f"{'':34s}" + "".join(f"{n:>26s}" for n in names))
    for row, cells in verdicts.by_method(reported[group]).items():
        print(f"{row:34s}" + "".join(f"{fmt_interval(cells[n]):>26s}" for n in names))

old = verdicts.old_measure(per_map)
print("\nold measure: positive share, class-averaged fill (mean; chance)")
for (kind, region), chance in old["chance"].items():
    print(f"  {kind + ' ' + region:17s}: " + ", ".join(
        f"{c6.LABELS[m]} {fmt(old['mean'][m, kind, region])}" for m in c6.METHODS)
        + f"; chance {fmt(chance)}; " + ", ".join(
        f"{name} {fmt_interval(interval)}" for (k, r, name), interval
        in old["intervals"].items() if (k, r) == (kind, region)))

# %% [markdown]
# ## Reading the verdicts
#
# * **The gate decides first.** A saliency map of a score that does not detect the anomaly
#   says nothing about how the score detects it, so a comparison whose method misses the
#   gate is not decided and a claim with no comparison left is `WITHHELD`: neither supported
#   nor contradicted. The detection rows say why a method misses: whether training lifted its
#   score above its untrained twin's and above the level detector on that anomaly kind. When
#   the explained detector, sub-cluster AdaCos, misses on both kinds, this set-up cannot
#   judge C6: what it shows is about the detector (whether the auxiliary task made it a
#   detector of these anomalies at all), not that its maps point one way or the other.
# * **C6.a and C6.e** are the claim as a whole: the first by RISE, the second without any
#   masks or fills. Where both are judged and agree, the verdict does not hang on RISE's
#   choices.
# * **C6.b and C6.c** split C6.a by sign: a distance-to-normal score is lowered by the bins
#   that make a clip sound like its class, so a score that listens to the machine can put
#   its *negative* saliency on the machine's bins (C6.c) while its positive saliency, the
#   anomaly evidence, lies elsewhere. The former measure of this notebook counted only the
#   positive part with the class-averaged fill; its numbers on the same records are printed
#   above beside the new shares, so that the change of measure can be seen, not only read
#   about.
# * **C6.d** asks whether the score's rise sits on the anomaly itself.
# * **The twin rows** say what training added to each map: a trained map no different from
#   its untrained twin's reflects the architecture and the back-end, not what the auxiliary
#   task taught. The shares and twin rows are reported whatever the gate says; they describe
#   the maps, they do not decide a claim.
#
# Scope: one synthetic set-up (three machines, two attributes, one SNR), small networks and
# one window per clip. A verdict on C6 needs a set-up in which the explained system detects
# the anomaly it is asked about. On real recordings there is no ground truth for where the
# machine, the noise or the anomaly is in a clip, so this notebook makes no saliency claim
# about them.

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
# # 05 — The embedding space: what the auxiliary task organises (claim C5)
#
# **The paper.** K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
# semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643.
# Its abstract says that t-SNE plots of the embedding space support the argument: an angular
# margin loss with an auxiliary classification task organises the normal sounds by the
# auxiliary classes, ignores what does not identify the machine (such as background noise),
# and lets anomalies fall away from the class centres, unlike one-class (Deep SVDD) and
# generative (autoencoder) models. A t-SNE picture proves little by itself (its layout depends
# on perplexity and seed), so each part of the argument is a number computed in the embedding
# space, with a rival that could win.
#
# **Claims** (DESIGN.md, C5; our reading), with the methods: (iii) sub-cluster AdaCos on the
# auxiliary task, (v) the pull to fixed class centres with the same labels (no push), (i) Deep
# SVDD, (ii) the DCASE baseline autoencoder.
#
# * **C5.a noise invariance**: relative to how far its anomaly moves a clip's embedding, real
#   non-stationary noise moves it less for (iii) than for (i) and (ii).
# * **C5.b class structure**: given the same labels, (iii) organises the normal embeddings by
#   the auxiliary classes better than (v).
# * **C5.c anomaly separation**: within each class, (iii) separates anomalous from normal
#   clips better than (i) and (ii), by each model's own score and by the distance to the
#   nearest k-means centre in the model's geometry.
# * **C5.d valve**: C5.b and C5.c on the real valve recordings.
#
# **Why these measures.** Each is scale-free or a ranking, so that models with different
# norms compare; each compares two models given the same information (the same labels for
# C5.b), so that it could come out either way; and each model is also judged by its own
# detection score, so that a space that looks disorganised but detects well is not
# condemned by a proxy.
#
# This notebook trains nothing. C5.a–C5.c are judged from the records of the experiment `c5`
# (`asdtheory.experiments.c5`), computed once at the standard size by
# `asdtheory experiment run c5 --size standard` and committed under `results/c5/standard/`;
# C5.d from those of the experiment `c4` (notebook 04), under `results/c4/standard/`.

# %%
# %matplotlib inline

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.manifold import TSNE

from asdtheory import experiments, plots, train
from asdtheory.experiments import c4, c5, records
from asdtheory.repro import c5 as verdicts
from asdtheory.repro import claims
from asdtheory.repro.claims import fmt, fmt_interval

NOTEBOOK = "05_embedding_space"
SIZE = "standard"
RESULTS = Path("..") / "results"  # the committed records; notebooks run in notebooks/
LABELS = {method: f"({c5.ROMAN[method]}) {method}" for method in c5.METHODS}
COLOURS = plots.COLOURS
table = verdicts.load(SIZE, results_dir=RESULTS)
settings = c5.units(SIZE)[0].config
seeds = np.unique(table["seed"])
first = table["unit"] == table["unit"][0]
print(f"{len(np.unique(table['unit']))} units = {len(c5.METHODS)} methods x {seeds.size} seeds; "
      f"per seed {settings['machines']} machines x {settings['attributes']} attributes, "
      f"{settings['train']} normal training clips per class, {np.sum(first)} test clips "
      f"({np.sum(first & (table['label'] == 1))} anomalous); noise at {settings['snr']} dB; "
      f"{settings['steps']} optimiser steps per method; {settings['segments']} noise segments")

# %% [markdown]
# ## Data and method
#
# Every seed draws fresh synthetic machines and clips (`data.synthetic.machine_sounds`, as in
# notebook 03, at its calibrated anomaly strength, the anomalies cycling through all six
# types) and renders each anomalous clip a second time *without* its anomaly from the same
# key: its **normal twin**, the same clip otherwise. The real background recordings of
# `noise/` (dishes, a cat, an exercise bike, a running tap; Speech Commands, P. Warden 2018,
# CC BY 4.0) are added at a label-free level (relative to the mean power of the machine's
# normal training clips); a clip and its normal twin get the same stretch of noise.
#
# (iii), (v) and (i) share one encoder (notebook 03's log-mel CNN, the same initial weights;
# Deep SVDD's copy without bias terms, Ruff et al.'s remedy against the constant solution);
# the autoencoder is the DCASE baseline with its 8-dimensional bottleneck. All train for the
# same number of steps on the noisy training clips. Beside each trained model the records
# hold its **untrained twin** (same configuration and key, no step) and the model-free
# **level detector** (`scoring.level_score`).
#
# The measures (all in the model's own geometry: cosine for (iii) and (v), Euclidean for
# (i) and (ii)):
#
# * **noise-to-anomaly ratio** (C5.a), per seed, in dB:
#   $10\log_{10}\big(\overline{\lVert e(n+v)-e(n)\rVert^2} \,/\,
#   \overline{\lVert e(x)-e(n)\rVert^2}\big)$ over the anomalous test clips $x$, with $n$ the
#   clip's normal twin and $v$ the noise: lower means the noise moves the embedding less,
#   relative to what an anomaly does;
# * **kNN class purity** (C5.b): the share of a normal test clip's 5 nearest normal test
#   clips that belong to its auxiliary class;
# * **per-class AUC** (C5.c): within each class, its normal against its anomalous noisy test
#   clips, by the model's own anomaly score and by the distance to the nearest k-means centre
#   of its machine's training embeddings.
#
# ## The test, fixed before the run
#
# A comparison is a paired contrast on the same clips and seeds, averaged over seeds, with a
# 95 % hierarchical bootstrap interval (seeds, then clips within class), decided against the
# smallest effect of interest $\delta$ (`claims.decide`): SUPPORTED when the interval lies
# above 0, CONTRADICTED when it lies below $\delta$ and not above 0, else INCONCLUSIVE with
# the detectable effect. A claim with several comparisons is SUPPORTED when all are and
# CONTRADICTED when any is (`claims.all_of`). The criteria were committed before the run:

# %%
claims.show_criteria(c5.CRITERIA)

# %% [markdown]
# ## Did the training settle?
#
# A run has settled when the mean loss over its last 10 % of epochs differs from that of the
# 10 % before by less than 5 % of the curve's range (`train.settling`).

# %%
late = verdicts.unsettled(table)
print(f"{len(late)} of {len(np.unique(table['unit']))} training runs had not settled "
      f"(criterion {train.SETTLED_BELOW})" + (":" if late else "."))
for unit, value in late:
    print(f"  {unit}: {fmt(value)}")

# %% [markdown]
# ## Every model beside its untrained twin
#
# Per method, the mean over seeds of each measure for the trained model and its untrained
# twin, and the paired interval of what training changed (oriented so that > 0 is better:
# for the noise ratio, twin minus trained). The level detector's per-class AUC is the row a
# model must beat to have learned more than loudness.

# %%
rows = verdicts.measure_table(table)
versus = verdicts.versus_references(table)
MEASURE_ROWS = (("noise ratio (dB)", "invariance", "trained", "twin", "twin"),
                ("kNN purity", "purity", "trained", "twin", "twin"),
                ("AUC, own score", "class_auc", "score", "twin_score", "twin"),
                ("AUC, distance", "class_auc", "distance_score", "twin_distance_score",
                 "twin distance"))
print(f"{'method':26s}{'measure':18s}{'trained':>9s}{'twin':>9s}   trained vs twin (95 % CI)")
for method in c5.METHODS:
    for i, (name, measure, trained, twin, reference) in enumerate(MEASURE_ROWS):
        print(f"{LABELS[method] if i == 0 else '':26s}{name:18s}"
              f"{fmt(rows[measure, method, trained].mean()):>9s}"
              f"{fmt(rows[measure, method, twin].mean()):>9s}   "
              f"{fmt_interval(versus[measure, method, reference])}")
level = rows["class_auc", c5.METHODS[0], "level_score"]
print(f"\nlevel detector, per-class AUC {fmt(level.mean())}; own score minus level detector:")
for method in c5.METHODS:
    print(f"  {LABELS[method]:26s}{fmt_interval(versus['class_auc', method, 'level'])}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
panels = (("invariance", "trained", "twin", "noise-to-anomaly ratio (dB), lower is better"),
          ("purity", "trained", "twin", "kNN class purity"),
          ("class_auc", "score", "twin_score", "per-class AUC, own score"))
x = np.arange(len(c5.METHODS))
for ax, (measure, trained, twin, title) in zip(axes, panels, strict=True):
    for i, method in enumerate(c5.METHODS):
        values = rows[measure, method, trained]
        ax.scatter(np.full(values.size, i) + np.linspace(-0.15, 0.15, values.size), values,
                   s=10, color=COLOURS[method], alpha=0.6)
        ax.plot([i - 0.3, i + 0.3], [values.mean()] * 2, color=COLOURS[method], lw=2)
        ax.plot([i - 0.3, i + 0.3], [rows[measure, method, twin].mean()] * 2, color="grey",
                ls=":", lw=2)
    if measure == "class_auc":
        ax.axhline(level.mean(), color="black", ls="--", lw=1, label="level detector")
        ax.legend(fontsize=8)
    ax.set_xticks(x, [LABELS[m].split()[0] for m in c5.METHODS])
    ax.set(title=title, xlabel="method (dots: seeds; bar: mean; dotted: untrained twin)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("per-seed value")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The pictures, for one seed
#
# t-SNE (perplexity 20, seed 0) of the noisy test embeddings of seed 0, coloured by
# auxiliary class (normal clips) with the anomalies as crosses. The maps preserve
# neighbourhoods, not distances; the numbers above are what the verdicts use.

# %%
folder = records.size_folder(RESULTS, "c5", SIZE)
fig, axes = plt.subplots(1, len(c5.METHODS), figsize=(4 * len(c5.METHODS), 3.8))
for ax, method in zip(axes, c5.METHODS, strict=True):
    unit = next(u for u in dict.fromkeys(table["unit"].tolist())
                if u.startswith(f"method={method},") and u.endswith(",seed=0"))
    rows_unit = table["unit"] == unit
    z = np.asarray(records.load_record(folder / unit).arrays["embedding"], np.float64)
    xy = TSNE(perplexity=20, init="pca", random_state=0).fit_transform(z)
    normal = table["label"][rows_unit] == 0
    ax.scatter(*xy[normal].T, c=table["aux_class"][rows_unit][normal], cmap="tab20", s=12)
    ax.scatter(*xy[~normal].T, c="black", marker="x", s=12, label="anomalous")
    ax.set(title=LABELS[method], xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
axes[0].legend(fontsize=8, loc="best")
fig.suptitle("seed 0: normal test clips coloured by auxiliary class, anomalies as crosses")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The earlier measures on the same records
#
# This notebook first measured C5.a as the spread of one clean clip's embedding under four
# stretches of *stationary pink noise*, over the between-class variance
# (`metrics.noise_invariance`), and C5.b as each model's kNN purity gain over its untrained
# twin, (iii) against rivals that never see the labels. Both are printed here on the same
# records, beside the measures above: the first rewards any model that averages frames
# (stationary noise cancels) and ignores how far anomalies move the embedding; the second
# compares a model trained on the labels with models that never saw them, so it could not
# come out against (iii).

# %%
old = verdicts.old_measures(table)
print(f"{'':26s}{'pink-noise ratio':>18s}{'real-noise ratio':>18s}{'purity gain':>14s}")
for method in c5.METHODS:
    print(f"{LABELS[method]:26s}"
          + "".join(f"{fmt(old['ratio'][method, 'trained', n].mean()):>18s}"
                    for n in ("pink", "real"))
          + f"{fmt(old['purity_gain'][method].mean()):>14s}")
print("(the untrained twins' ratios, pink / real: " + ", ".join(
    f"{LABELS[m].split()[0]} {fmt(old['ratio'][m, 'twin', 'pink'].mean())} / "
    f"{fmt(old['ratio'][m, 'twin', 'real'].mean())}" for m in c5.METHODS) + ")")
print("\nold C5.a, rival minus (iii) (> 0 favours (iii)); old C5.b, (iii) minus rival:")
for rival in c5.METHODS[1:]:
    print(f"  {LABELS[rival]:26s}ratio, pink {fmt_interval(old['ratio_contrast'][rival, 'pink'])}"
          f"; real {fmt_interval(old['ratio_contrast'][rival, 'real'])}"
          f"; purity gain {fmt_interval(old['gain_contrast'][rival])}")

# %% [markdown]
# ## Verdicts, synthetic sounds
#
# Each line gives the claim, then `CLAIM <id> <verdict>` with every comparison's estimate,
# interval and reading; "(i) - (iii)" is the measure of (i) minus that of (iii).

# %%
results = verdicts.analyse(table)
for result in results:
    claims.report(result, notebook=NOTEBOOK)

# %% [markdown]
# ## Real valve recordings (C5.d)
#
# C5.b and C5.c asked again of trained systems on real recordings: the records of the
# experiment `c4` (notebook 04), the author's two-branch network on the raw 10-s waveforms
# trained on the joint auxiliary task over valve, slider and fan, with the batch-norm
# statistics recomputed on the training clips. The systems are those of this notebook, on
# that network: (iii) sub-cluster AdaCos, (v) the pull to fixed class centres with the same
# labels, (i) Deep SVDD, (ii) the DCASE baseline autoencoder (embedding = mean bottleneck
# code), each beside its untrained twin, and the level detector. The measures are C5.b's and
# C5.c's on the valve's clean test clips of each (fold, seed) replicate of the valve mini
# protocol's cross-validation, the valve's four attributes as the classes, each model judged
# by its own anomaly score (the k-means back-end's for (iii), (v) and (i), the
# reconstruction error for (ii)). Noise invariance cannot be measured here: the factory
# noise is already in the recordings.
#
# **Data and licence.** DCASE 2023 Challenge Task 2 development set, machine `valve`,
# section 00 (from MIMII DG), **CC BY 4.0**; please cite K. Dohi et al., "MIMII DG: Sound
# dataset for malfunctioning industrial machine investigation and inspection for domain
# generalization task", DCASE 2022 Workshop, and K. Dohi et al., "Description and discussion
# on DCASE 2023 challenge task 2: first-shot unsupervised anomalous sound detection for
# machine condition monitoring", DCASE 2023 Workshop (https://zenodo.org/record/7882613).
# The slider and fan clips of the joint task: notebook 04.
#
# The criterion, committed before the `c4` run:

# %%
claims.show_criteria(c5.VALVE_CRITERIA)

c4_table = experiments.load_table("c4", SIZE, results_dir=RESULTS)
c4_folder = records.size_folder(RESULTS, "c4", SIZE)
joint_units = dict.fromkeys(c4_table["unit"][c4_table["task"] == "joint"].tolist())
vtable = verdicts.valve_table(c4_table, {unit: records.load_record(c4_folder / unit).arrays
                                         for unit in joint_units})
VALVE_METHODS = tuple(dict.fromkeys(vtable["method"].tolist()))
VALVE_LABELS = {m: f"({c4.ROMAN[m]}) {m}" for m in VALVE_METHODS}
first = vtable["method"] == VALVE_METHODS[0]
print(f"\n{np.unique(vtable['seed']).size} replicates x {len(VALVE_METHODS)} joint-task systems;"
      f" per replicate {np.sum(first) // np.unique(vtable['seed']).size} clean valve test clips")

# %% [markdown]
# Per system: the kNN attribute purity of the normal test clips and the per-attribute AUC of
# its own score, trained and untrained (mean over replicates), and the paired interval of
# "trained minus twin"; the level detector's per-attribute AUC below.

# %%
valve_rows = verdicts.measure_table(
    vtable, methods=VALVE_METHODS,
    readings={"purity": ("trained", "twin"), "class_auc": ("score", "twin_score", "level_score")})
valve_versus = verdicts.versus_references(vtable, methods=VALVE_METHODS,
                                          pairs=verdicts.VALVE_REFERENCES)


trained_and_twin = {(measure, m): f"{fmt(valve_rows[measure, m, trained].mean())} "
                    f"({fmt(valve_rows[measure, m, twin].mean())})"
                    for measure, trained, twin in (("purity", "trained", "twin"),
                                                   ("class_auc", "score", "twin_score"))
                    for m in VALVE_METHODS}
print(f"{'':40s}{'kNN purity (twin)':>18s}{'trained - twin':>24s}"
      f"{'per-attr. AUC (twin)':>22s}{'trained - twin':>24s}")
for m in VALVE_METHODS:
    print(f"{VALVE_LABELS[m]:40s}{trained_and_twin['purity', m]:>18s}"
          f"{fmt_interval(valve_versus['purity', m, 'twin']):>24s}"
          f"{trained_and_twin['class_auc', m]:>22s}"
          f"{fmt_interval(valve_versus['class_auc', m, 'twin']):>24s}")
print(f"{'level detector':40s}{'':42s}"
      f"{fmt(valve_rows['class_auc', VALVE_METHODS[0], 'level_score'].mean()):>22s}")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
x = np.arange(len(VALVE_METHODS))
for ax, measure, (trained, twin), title in (
        (left, "purity", ("trained", "twin"), "kNN attribute purity, normal clips"),
        (right, "class_auc", ("score", "twin_score"), "per-attribute AUC, own score")):
    for k, m in enumerate(VALVE_METHODS):
        colour = COLOURS[m]
        for reading, offset, fill in ((trained, -0.12, colour), (twin, 0.12, "none")):
            values = valve_rows[measure, m, reading]
            ax.scatter(np.full(values.size, k + offset), values, facecolors=fill,
                       edgecolors=colour, label=None)
    ax.set(xticks=x, title=title, ylabel=title.split(",")[0])
    ax.set_xticklabels([VALVE_LABELS[m] for m in VALVE_METHODS], rotation=20, ha="right")
    ax.grid(alpha=0.3)
right.axhline(valve_rows["class_auc", VALVE_METHODS[0], "level_score"].mean(), color="black",
              ls="--", label="level detector (mean)")
right.axhline(0.5, color="grey", lw=0.8)
right.scatter([], [], facecolors="grey", edgecolors="grey", label="trained, per replicate")
right.scatter([], [], facecolors="none", edgecolors="grey", label="untrained twin")
right.legend(fontsize=8)
fig.suptitle("Valve test clips, clean: trained systems of the joint task")
fig.tight_layout()
plt.show()

# %% [markdown]
# The verdict: each measure against its own smallest effect of interest, then the claim.

# %%
valve_results = verdicts.valve_analyse(vtable)
valve_record = claims.report_together(
    "C5.d", valve_results, statement=c5.VALVE_CRITERIA["C5.d"]["statement"], notebook=NOTEBOOK)

# %% [markdown]
# ## Reading the verdicts
#
# * **C5.a** asks whether the auxiliary task makes the embedding ignore what does not
#   identify the machine. The ratio is measured against each model's own anomaly
#   displacement, so a model that shrinks its whole space (Deep SVDD) or barely moves for
#   anything (a low-dimensional bottleneck) earns nothing by it; the earlier pink-noise
#   ratio printed above shows how a stationary noise and a between-class denominator
#   flattered such models.
# * **C5.b** separates the loss from the labels: both models see the same classes, so where
#   (v) matches (iii) the class structure comes from the labels, not from the angular
#   margin.
# * **C5.c** judges the separation both by each model's own score and by a common
#   nearest-centre distance; a model whose space looks disorganised can still detect well by
#   its own score, and the table beside the untrained twins shows what training added.
# * **C5.d** asks the same of systems trained on real recordings, with cross-validated
#   replicates in place of seeds; the twin rows say what training added on so few clips,
#   and the level detector's row how much of the separation loudness alone provides.
#
# Scope: synthetic harmonic machines in real background noise with a small CNN (C5.a–C5.c),
# and the valve mini protocol (C5.d).

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
# <!-- Draft of notebook 07's B1-B3 sections, reading the records of experiment `b`; it
# replaces the cells from "## B1" to the B3 verdict once `results/b/standard` exists. The
# valve comparisons of the old B1 and B3 wait for records of their own. -->
#
# ## B1-B3: the records of experiment `b`
#
# B1-B3 are decided on the records of experiment `b` (`asdtheory.experiments.b`): notebook
# 03's synthetic machine sounds with the real background recordings mixed in at a label-free
# level, clean and at 0 dB, fresh machines and clips for every seed. Each unit trains one
# **arm** on one seed's data:
#
# - on notebook 03's auxiliary task (machine x attribute; each class one synthetic
#   signature): sub-cluster AdaCos with M = 4 sub-centres per class and **fixed** random
#   centres (the author's choice; the same system as notebook 03's method (iii)), the same
#   with **trainable** centres (B1), and **AdaProj** with 4-dimensional class subspaces (B3);
# - on the machine task (one class per machine, made of its attributes' signatures: several
#   modes per class, the situation sub-centres are meant for): sub-cluster AdaCos with
#   M = 1, 4 and 16 (B2).
#
# Every arm has notebook 03's network, training and optimiser steps. The decisive back-end,
# stated before the run, is **kNN with k = 1** (cosine distance to the nearest training clip
# of the machine): it needs no count of modes, so a large M is not penalised by a back-end
# with fewer centres than the embedding has modes. Notebook 03's k-means back-end is
# recorded beside it. Every trained arm is shown beside its **untrained twin** and the
# model-free **level detector**.
#
# ## The test, fixed before the run
#
# A comparison is a paired contrast of the per-machine harmonic mean of AUC and pAUC on the
# same clips and seeds at 0 dB, averaged over seeds, with a 95 % hierarchical bootstrap
# interval (seeds, then clips), decided against the smallest effect of interest $\delta$
# (`claims.decide`). Each claim says "by at least $\delta$": SUPPORTED when the interval lies
# above 0, CONTRADICTED when it lies below $\delta$ and not above 0 (an effect of the claimed
# size is excluded), else INCONCLUSIVE with the detectable effect. When the interval lies
# inside $(-\delta, \delta)$ the line adds "equivalent within $\delta$": for B1 and B3 that
# is a finding, not a failure. The criteria were committed before the run:

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from asdtheory.experiments import b as bexp
from asdtheory.repro import b as bverdicts
from asdtheory.repro.claims import claim, fmt, fmt_interval

NOTEBOOK = "07_beyond_the_paper"
SIZE = "standard"
RESULTS = Path("..") / "results"  # the committed records; notebooks run in notebooks/

for claim_id, spec in bexp.CRITERIA.items():
    print(f"{claim_id}: {spec['statement']}\n  comparisons: {', '.join(spec['comparisons'])}"
          f"\n  criterion: {spec['criterion']}\n  smallest effect of interest: "
          f"{fmt(spec['delta'])} hmean, because {spec['delta_reason']}.\n")

btable, bspread = bverdicts.load(SIZE, results_dir=RESULTS)
bsettings = bexp.units(SIZE)[0].config
bseeds = np.unique(btable["seed"])
bfirst = btable["unit"] == btable["unit"][0]
print(f"{len(np.unique(btable['unit']))} units = {len(bexp.ARMS)} arms x {bseeds.size} seeds; "
      f"per seed {bsettings['machines']} machines x {bsettings['attributes']} attributes, "
      f"{bsettings['train']} normal training clips per class, "
      f"{np.sum(bfirst & (btable['snr'] == '0'))} test clips per SNR; SNRs {bexp.SNRS} "
      f"(decisive: {bexp.DECISIVE_SNR} dB); {bsettings['steps']} optimiser steps per arm")
late = bverdicts.unsettled(btable)
print(f"training runs whose loss had not settled (train.settling): {len(late)}"
      + "".join(f"\n  {u} at {c}: {fmt(v)}" for u, c, v in late[:10]))

# %% [markdown]
# ## Every arm beside its references
#
# Per arm and SNR the mean over seeds of the harmonic mean, by the decisive kNN back-end and
# by notebook 03's k-means back-end, each trained and untrained, and the level detector;
# then the compactness of the normal test clips w.r.t. their own class centre (nearest
# sub-centre; AdaProj: own subspace), trained and untrained, each arm in its own head's
# geometry.

# %%
brows = bverdicts.hmean_table(btable)
bcompact = bverdicts.compactness_table(btable)
print(f"{'arm':28s}{'snr':>6s}" + "".join(f"{d:>17s}" for d in bverdicts.DETECTORS)
      + f"{'compactness':>13s}{'(twin)':>8s}")
for arm in bexp.ARMS:
    for snr in bexp.SNRS:
        print(f"{arm:28s}{snr:>6s}"
              + "".join(f"{fmt(brows[arm, snr, d].mean()):>17s}" for d in bverdicts.DETECTORS)
              + f"{fmt(bcompact[arm, snr, 'trained'].mean()):>13s}"
              + f"{fmt(bcompact[arm, snr, 'twin'].mean()):>8s}")

refs = bverdicts.versus_references(btable)
print("\ntrained minus untrained twin, trained minus level detector (kNN back-end):")
for arm in bexp.ARMS:
    print(f"  {arm:28s}" + "; ".join(
        f"{snr}: twin {fmt_interval(refs[arm, snr, 'twin'])}, level "
        f"{fmt_interval(refs[arm, snr, 'level'])}" for snr in bexp.SNRS))

# %%
fig, axes = plt.subplots(1, len(bexp.SNRS), figsize=(6 * len(bexp.SNRS), 3.6), sharey=True)
for ax, snr in zip(np.atleast_1d(axes), bexp.SNRS, strict=True):
    for i, arm in enumerate(bexp.ARMS):
        values = brows[arm, snr, "trained"]
        ax.scatter(np.full(values.size, i) + np.linspace(-0.15, 0.15, values.size), values,
                   s=10, color=f"C{i}", alpha=0.6)
        ax.plot([i - 0.3, i + 0.3], [values.mean()] * 2, color=f"C{i}", lw=2)
        ax.plot([i - 0.3, i + 0.3], [brows[arm, snr, "twin"].mean()] * 2, color="grey",
                ls=":", lw=2)
    ax.axhline(brows[next(iter(bexp.ARMS)), snr, "level"].mean(), color="black", ls="--",
               lw=1, label="level detector")
    ax.set_xticks(range(len(bexp.ARMS)), list(bexp.ARMS), rotation=30, ha="right",
                  fontsize=8)
    ax.set(title=f"SNR {snr}", xlabel="arm (dots: seeds; bar: mean; dotted: untrained twin)")
    ax.grid(alpha=0.3)
np.atleast_1d(axes)[0].set_ylabel("hmean(AUC, pAUC), kNN back-end")
np.atleast_1d(axes)[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Where the centres go (B1)
#
# The mean cosine between sub-centres of different classes (`repro.b.centre_spread`): about
# 0 for random directions, $-1/(N-1)$ for class means forming a regular simplex, the
# minimiser of the loss for trainable centres. Fixed centres do not move (trained equals
# untrained).

# %%
for arm in ("sc-adacos.m4.fixed", "sc-adacos.m4.trainable"):
    print(f"{arm:28s}" + "; ".join(
        f"{snr}: {fmt(bspread[arm, 'twin'][:, j].mean())} -> "
        f"{fmt(bspread[arm, 'trained'][:, j].mean())}" for j, snr in enumerate(bexp.SNRS)))
n_classes = bsettings["machines"] * bsettings["attributes"]
print(f"simplex value -1/(N-1) for N = {n_classes} classes: {fmt(-1 / (n_classes - 1))}")

# %% [markdown]
# ## Verdicts B1-B3
#
# Each line gives the claim, then `CLAIM <id> <verdict>` with the comparison's estimate,
# interval and reading. Below them, the readings that are not decisive (stated so before
# the run): the same comparisons on clean clips and by the k-means back-end.

# %%
bresults = bverdicts.analyse(btable)
for result in bresults:
    print(f"\n{result.id}: {result.statement}")
    equivalent = [f"{p.name}: {e}" for p in result.parts
                  if (e := bverdicts.equivalence(p.interval, delta=result.delta))]
    claim(result.id, result.verdict,
          result.summary + ("; " + "; ".join(equivalent) if equivalent else ""),
          detectable=result.detectable, statement=result.statement,
          figures={"delta": result.delta,
                   "parts": {p.name: [p.interval.estimate, p.interval.low, p.interval.high]
                             for p in result.parts},
                   "equivalent": bool(equivalent) and len(equivalent) == len(result.parts)},
          notebook=NOTEBOOK)

print("\nnot decisive: every comparison at every SNR, by kNN and by k-means")
for (claim_id, name, snr, backend), interval in bverdicts.readings(btable).items():
    print(f"  {claim_id} {name.replace(' at 0 dB', ''):36s} {snr:>6s} {backend:8s}"
          f"{fmt_interval(interval)}")

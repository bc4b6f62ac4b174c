"""C3's verdicts from the records of experiment ``c3`` (``asdtheory.experiments.c3``): the
pre-registered :data:`~asdtheory.experiments.c3.CRITERIA`, each comparison decided by
``claims.decide`` on a hierarchical-bootstrap interval over seeds and clips, the reference
rows (untrained twin, level detector) and the settling check. Notebook 03 calls these."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from asdtheory.experiments.c3 import CRITERIA, METHODS, SNRS
from asdtheory.repro import claims
from asdtheory.train import SETTLED_BELOW

__all__ = ["ANALYSIS_SEED", "ClaimResult", "Part", "analyse", "contrast", "hmean_table",
           "unsettled"]

UNIT = "hmean"
# The bootstrap's own key, never a unit's or the calibration's.
ANALYSIS_SEED = 31


@dataclasses.dataclass(frozen=True)
class Part:
    """One comparison of a claim: its name, interval (mean over seeds and the hierarchical
    bootstrap interval) and decision."""

    name: str
    interval: object
    decision: claims.Decision


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict from its parts (``claims.all_of``), for the notebook's CLAIM line."""

    id: str
    statement: str
    verdict: str
    detectable: str | None
    parts: tuple[Part, ...]
    delta: float

    @property
    def summary(self) -> str:
        return "; ".join(f"{p.name}: {claims.fmt_interval(p.interval)} {UNIT} "
                         f"({p.decision.reading})" for p in self.parts)


def _areas(y: np.ndarray, s: np.ndarray, max_fpr: float = 0.1) -> tuple[float, float]:
    """AUC and McClish-standardised pAUC of one group, as ``evaluation.auc`` / ``pauc``
    compute them (scikit-learn's roc_auc_score), in a fraction of their time: the bootstrap
    evaluates them ~10^5 times."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the last clip of each threshold
    tps, fps = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    stop = np.searchsorted(fpr, max_fpr, "right")
    partial_tpr = np.r_[tpr[:stop], np.interp(max_fpr, fpr[stop - 1:stop + 1],
                                              tpr[stop - 1:stop + 1])]
    partial = np.trapezoid(partial_tpr, np.r_[fpr[:stop], max_fpr])
    low = max_fpr ** 2 / 2
    return (float(np.trapezoid(tpr, fpr)),
            float(0.5 * (1 + (partial - low) / (max_fpr - low))))


def _hmean(y: np.ndarray, s: np.ndarray, machine: np.ndarray) -> float:
    """``evaluation.group_metrics(y, s, machine)["hmean"]``: the harmonic mean of the AUC
    and pAUC averaged over machines."""
    areas = np.mean([_areas(y[machine == m], s[machine == m]) for m in np.unique(machine)],
                    axis=0)
    return float(2 * areas[0] * areas[1] / (areas[0] + areas[1]))


def _per_seed(table: Mapping[str, np.ndarray], terms: Sequence[tuple], column: str = "score"
              ) -> list[np.ndarray]:
    """Per seed, the clips as rows (label, machine, then one score column per term), paired
    across terms by the clip index; raises when the terms' clips differ."""
    columns = []
    seeds = np.unique(table["seed"])
    for seed in seeds:
        rows = []
        for _, method, snr in terms:
            sel = (table["seed"] == seed) & (table["method"] == method) & (table["snr"] == snr)
            if not sel.any():
                raise ValueError(f"the table has no rows of {method} at {snr} (seed {seed}).")
            order = np.argsort(table["clip"][sel], kind="stable")
            rows.append({name: table[name][sel][order]
                         for name in ("clip", "label", "machine", column)})
        first = rows[0]
        for other in rows[1:]:
            if not (np.array_equal(first["clip"], other["clip"])
                    and np.array_equal(first["label"], other["label"])):
                raise ValueError(f"seed {seed}: the terms' clips differ; they must pair.")
        machine = np.unique(first["machine"], return_inverse=True)[1]
        columns.append(np.column_stack([first["label"], machine,
                                        *(r[column] for r in rows)]))
    return columns


def contrast(table: Mapping[str, np.ndarray], terms: Sequence[tuple], *, key,
             column: str = "score", n_resamples: int = 1000):
    """sum_j w_j hmean(term j), per seed, averaged over seeds, with the
    ``claims.hierarchical_bootstrap`` interval (seeds, then clips within machine x label)."""
    weights = np.asarray([w for w, _, _ in terms])

    def statistic(v):
        y, machine = v[:, 0].astype(int), v[:, 1].astype(int)
        return float(sum(w * _hmean(y, v[:, 2 + j], machine) for j, w in enumerate(weights)))

    values = _per_seed(table, terms, column)
    return claims.hierarchical_bootstrap(
        values, statistic, key=key, n_resamples=n_resamples,
        strata_per_seed=[2 * v[:, 1].astype(int) + v[:, 0].astype(int) for v in values])


def analyse(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
            criteria: Mapping = CRITERIA) -> list[ClaimResult]:
    """The verdict of every claim of ``criteria`` from ``experiments.load_table("c3", size)``
    (pure: the same table gives the same results)."""
    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        parts = []
        for j, (name, terms) in enumerate(spec["comparisons"].items()):
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(ANALYSIS_SEED), i), j)
            interval = contrast(table, terms, key=key, n_resamples=n_resamples)
            parts.append(Part(name, interval, claims.decide(interval, delta=spec["delta"],
                                                            unit=UNIT)))
        verdict, detectable = claims.all_of(*(p.decision.part for p in parts))
        results.append(ClaimResult(claim_id, spec["statement"], verdict, detectable,
                                   tuple(parts), spec["delta"]))
    return results


def hmean_table(table: Mapping[str, np.ndarray]) -> dict[tuple[str, str, str], np.ndarray]:
    """{(method, snr, detector): per-seed hmeans} for detector "trained", "twin" (its
    untrained twin) and "level" (the model-free level detector): the reference rows."""
    out = {}
    for method in METHODS:
        for snr in SNRS:
            for name, column in (("trained", "score"), ("twin", "twin_score"),
                                 ("level", "level_score")):
                out[method, snr, name] = np.asarray([
                    _hmean(v[:, 0].astype(int), v[:, 2], v[:, 1].astype(int))
                    for v in _per_seed(table, [(1.0, method, snr)], column)])
    return out


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """(unit, snr, settling) of every training run whose loss had not settled
    (``train.settling`` >= ``train.SETTLED_BELOW``)."""
    keys = sorted({(u, c, float(v)) for u, c, v in zip(table["unit"].tolist(),
                                                         table["snr"].tolist(),
                                                         table["loss_settling"].tolist(),
                                                         strict=True)})
    return [k for k in keys if not k[2] < SETTLED_BELOW]

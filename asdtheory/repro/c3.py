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
           "unsettled", "versus_references"]

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


def _areas(y: np.ndarray, s: np.ndarray, max_fpr: float = 0.1) -> np.ndarray:
    """AUC and McClish-standardised pAUC, as ``evaluation.auc`` / ``pauc`` compute them
    (scikit-learn's roc_auc_score), of every row of (rows, clips) labels ``y`` and scores
    ``s`` at once: (rows, 2). The bootstrap evaluates them ~10^6 times. Tied scores make one
    ROC point (the path crosses a tie on the diagonal), as in scikit-learn."""
    y, s = np.atleast_2d(y).astype(np.float64), np.atleast_2d(s)
    order = np.argsort(-s, axis=1, kind="stable")
    s, y = np.take_along_axis(s, order, 1), np.take_along_axis(y, order, 1)
    n = s.shape[1]
    # Every clip takes the ROC point of the last clip of its tie: ties collapse to one point.
    last = np.ones_like(s, bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    end = np.minimum.accumulate(np.where(last, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    tps = np.take_along_axis(np.cumsum(y, axis=1), end, 1)
    fps = np.take_along_axis(np.cumsum(1 - y, axis=1), end, 1)
    zero = np.zeros((s.shape[0], 1))
    tpr = np.hstack([zero, tps / tps[:, -1:]])
    fpr = np.hstack([zero, fps / fps[:, -1:]])
    f0, f1, t0, t1 = fpr[:, :-1], fpr[:, 1:], tpr[:, :-1], tpr[:, 1:]
    auc = np.sum((f1 - f0) * (t0 + t1) / 2, axis=1)
    # The part of each segment left of max_fpr, its tpr interpolated at the cut.
    cut = np.clip(max_fpr, f0, f1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_cut = np.where(f1 > f0, t0 + (t1 - t0) * (cut - f0) / (f1 - f0), t1)
    partial = np.sum((cut - f0) * (t0 + t_cut) / 2, axis=1)
    low = max_fpr ** 2 / 2
    return np.column_stack([auc, 0.5 * (1 + (partial - low) / (max_fpr - low))])


def _hmean(y: np.ndarray, s: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """``evaluation.group_metrics(y, s, machine)["hmean"]`` of every row of (rows, clips)
    ``y`` and ``s`` (or of one clip vector): the harmonic mean of the AUC and pAUC averaged
    over machines; ``machine`` (clips,) is shared by the rows."""
    areas = np.mean([_areas(np.atleast_2d(y)[:, machine == m], np.atleast_2d(s)[:, machine == m])
                     for m in np.unique(machine)], axis=0)
    hmean = 2 * areas[:, 0] * areas[:, 1] / (areas[:, 0] + areas[:, 1])
    return hmean if np.ndim(s) == 2 else float(hmean[0])


def _per_seed(table: Mapping[str, np.ndarray], terms: Sequence[tuple], column: str = "score"
              ) -> list[np.ndarray]:
    """Per seed, the clips as rows (label, machine, then one score column per term), paired
    across terms by the clip index; raises when the terms' clips differ. A term is (weight,
    method, snr) or (weight, method, snr, score column), the column defaulting to
    ``column``."""
    columns = []
    seeds = np.unique(table["seed"])
    for seed in seeds:
        rows = []
        for _, method, snr, *rest in terms:
            score = rest[0] if rest else column
            sel = (table["seed"] == seed) & (table["method"] == method) & (table["snr"] == snr)
            if not sel.any():
                raise ValueError(f"the table has no rows of {method} at {snr} (seed {seed}).")
            order = np.argsort(table["clip"][sel], kind="stable")
            rows.append({"clip": table["clip"][sel][order], "label": table["label"][sel][order],
                         "machine": table["machine"][sel][order],
                         column: table[score][sel][order]})
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
    weights = np.asarray([term[0] for term in terms])

    def statistic(v):
        # (slots, clips, columns); clips are drawn within machine x label, so every slot has
        # the same machine at every clip position.
        y, machine = v[:, :, 0], v[0, :, 1].astype(int)
        return sum(w * _hmean(y, v[:, :, 2 + j], machine) for j, w in enumerate(weights))

    values = _per_seed(table, terms, column)
    return claims.hierarchical_bootstrap(
        values, statistic, key=key, n_resamples=n_resamples, vectorized=True,
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


def versus_references(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000
                      ) -> dict[tuple[str, str, str], object]:
    """{(method, snr, reference): interval} of trained minus ``reference`` hmean, where the
    reference is "twin" (the same method untrained: what training added) or "level" (the
    model-free level detector), on the same clips and seeds, for every method and SNR."""
    out = {}
    for i, method in enumerate(METHODS):
        for j, snr in enumerate(SNRS):
            for r, (name, column) in enumerate((("twin", "twin_score"),
                                                ("level", "level_score"))):
                key = jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 1), 100 * i + 10 * j + r)
                out[method, snr, name] = contrast(
                    table, ((1.0, method, snr), (-1.0, method, snr, column)), key=key,
                    n_resamples=n_resamples)
    return out


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

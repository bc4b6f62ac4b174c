"""C1.c's verdict from the records of experiment ``c1`` (``asdtheory.experiments.c1``): the
pre-registered :data:`~asdtheory.experiments.c1.CRITERIA`, each loss's interval decided by
``claims.decide``, the settling gate, and the per-unit rows a notebook prints.

``analyse(table)`` returns the two parts of C1.c ("C1.c compactness", "C1.c together");
:func:`verdict` combines them with the settling gate into the claim's one verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from asdtheory.evaluation import PairedDifference
from asdtheory.experiments.c1 import CRITERIA, METHODS
from asdtheory.repro import claims
from asdtheory.train import SETTLED_BELOW

__all__ = ["ANALYSIS_SEED", "analyse", "per_unit", "reduction", "t_interval", "unsettled",
           "verdict"]

ANALYSIS_SEED = 11  # the bootstrap's own key, never a unit's


def reduction(compactness, twin_compactness) -> np.ndarray | float:
    """1 - mean(compactness) / mean(twin_compactness) over the last axis (samples): the share
    of the untrained compactness that training removed (0: none, 1: all)."""
    c = np.mean(np.asarray(compactness, np.float64), axis=-1)
    t = np.mean(np.asarray(twin_compactness, np.float64), axis=-1)
    return 1.0 - c / t


def t_interval(values: Sequence[float], *, level: float = 0.95) -> PairedDifference:
    """The mean of per-seed ``values`` with its Student-t interval (n - 1 degrees of freedom;
    DESIGN, "Decision rules": a t-interval over seeds where a measure has one value per
    seed). NaN values make the interval NaN; one seed gives an infinite interval."""
    v = np.asarray(values, np.float64)
    mean = float(np.mean(v))
    if v.size < 2:
        return PairedDifference(mean, -np.inf, np.inf, level, 0)
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1) * np.std(v, ddof=1) / np.sqrt(v.size))
    return PairedDifference(mean, mean - half, mean + half, level, 0)


def per_unit(table: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{method: {"seed", "reduction", "ratio", "spearman", "spearman_training_loss",
    "loss_settling", "final_loss"}: one value per seed}: the rows beside the verdict."""
    out = {}
    for method in METHODS:
        rows = np.asarray(table["method"]) == method
        seeds = np.unique(np.asarray(table["seed"])[rows])
        entry = {name: [] for name in ("seed", "reduction", "ratio", "spearman",
                                       "spearman_training_loss", "loss_settling",
                                       "final_loss")}
        for seed in seeds:
            sel = rows & (np.asarray(table["seed"]) == seed)
            r = float(reduction(table["score"][sel], table["twin_compactness"][sel]))
            entry["seed"].append(int(seed))
            entry["reduction"].append(r)
            entry["ratio"].append(1.0 - r)
            for name in ("spearman", "spearman_training_loss", "loss_settling", "final_loss"):
                entry[name].append(float(table[name][sel][0]))
        out[method] = {name: np.asarray(v) for name, v in entry.items()}
    return out


def _reduction_interval(table, method: str, key, n_resamples: int) -> PairedDifference:
    """Hierarchical bootstrap (seeds, then samples within class) of the mean reduction."""
    rows = np.asarray(table["method"]) == method
    values, strata = [], []
    for seed in np.unique(np.asarray(table["seed"])[rows]):
        sel = rows & (np.asarray(table["seed"]) == seed)
        values.append(np.column_stack([table["score"][sel], table["twin_compactness"][sel]])
                      .astype(np.float64))
        strata.append(np.asarray(table["aux_class"][sel]))
    return claims.hierarchical_bootstrap(
        values, lambda v: reduction(v[..., 0], v[..., 1]), key=key, n_resamples=n_resamples,
        vectorized=True, strata_per_seed=strata)


def analyse(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
            criteria: Mapping = CRITERIA) -> list[claims.ClaimResult]:
    """Each part of C1.c (:data:`~asdtheory.experiments.c1.CRITERIA`) from the table of
    ``experiments.load_table("c1", size)``: one comparison per loss, decided against the
    part's delta. Pure: the same table gives the same results."""
    rows = per_unit(table)
    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        results.extend(claims.judge(
            {claim_id: spec}, lambda spec, method, key: (
                _reduction_interval(table, method, key, n_resamples)
                if spec["measure"] == "reduction" else t_interval(rows[method]["spearman"])),
            seed=ANALYSIS_SEED + i, unit=spec["unit"]))
    return results


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """(unit, settling) of every run whose training loss had not settled."""
    from asdtheory.experiments.records import unsettled_runs

    return unsettled_runs(table, condition=None)


def verdict(results: Sequence[claims.ClaimResult], table: Mapping[str, np.ndarray]
            ) -> tuple[str, str | None]:
    """C1.c's one verdict: ``claims.all_of`` of its parts, at most INCONCLUSIVE while a run's
    training loss has not settled (``train.settling >= train.SETTLED_BELOW``): a run that has
    not converged cannot say where the loss takes the compactness."""
    combined = claims.all_of(*((r.verdict, r.detectable) for r in results))
    late = unsettled(table)
    if late:
        return claims.INCONCLUSIVE, (f"the same measures on settled runs ({len(late)} "
                                     f"run(s) with settling >= {SETTLED_BELOW:g})")
    return combined

"""B4's and B5's verdicts from the records of experiment ``bdyn``
(``asdtheory.experiments.bdyn``): the pre-registered
:data:`~asdtheory.experiments.bdyn.CRITERIA`, one part per (run, measure), each a t-interval
over seeds of an effect in decades beyond its threshold, decided by ``claims.decide``; B4's
settling gate; the per-unit rows and curves a notebook shows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from asdtheory.experiments import records
from asdtheory.experiments.bdyn import COLUMNS, CRITERIA, NC_RUNS
from asdtheory.repro import claims
from asdtheory.repro.c1 import t_interval
from asdtheory.train import SETTLED_BELOW

__all__ = ["ANALYSIS_SEED", "NC4_LIMIT", "analyse", "curves", "effect", "per_unit",
           "unsettled", "verdict"]

ANALYSIS_SEED = 45  # claims.judge's key; a t-interval draws nothing
NC4_LIMIT = 0.05
# A distance of NC3 to its floor at or below 0 counts as this share of the initial distance
# (five decades), so that a run that reached its floor gives a large finite effect.
NC3_RESOLUTION = 1e-6


def per_unit(table: Mapping[str, np.ndarray]) -> dict[tuple[str, int], dict[str, float]]:
    """{(run, seed): the unit's values of ``COLUMNS`` and "samples" (its rows: B4's training
    samples, 1 for B5)}."""
    unit = np.asarray(table["unit"])
    out = {}
    for name in dict.fromkeys(unit.tolist()):
        rows = np.flatnonzero(unit == name)
        first = rows[0]
        out[str(table["run"][first]), int(table["seed"][first])] = (
            {c: float(table[c][first]) for c in COLUMNS} | {"samples": rows.size})
    return out


def effect(measure: str, values: Mapping[str, float]) -> float:
    """One unit's effect in decades beyond the criterion's threshold (positive: the claim's
    side), for B4's "NC1", "NC3", "NC4", "compactness" and B5's "faithful" / "code"
    (:data:`~asdtheory.experiments.bdyn.CRITERIA`)."""
    v = values
    if measure == "NC1":
        return -1.0 - np.log10(v["nc1_final"] / v["nc1_initial"])
    if measure == "NC3":
        start = v["nc3_initial"] - v["nc3_floor"]
        return -1.0 - np.log10(max(v["nc3_final"] - v["nc3_floor"], NC3_RESOLUTION * start)
                               / start)
    if measure == "NC4":
        return np.log10(NC4_LIMIT) - np.log10(max(v["nc4_final"], 0.5 / v["samples"]))
    if measure == "compactness":
        return np.log10(v["compactness_initial"] / v["compactness_final"])
    if measure == "faithful":
        return 1.0 - v["log10_max_scale"]
    if measure == "code":
        return v["log10_max_scale"] - 3.0
    raise ValueError(f"unknown measure {measure!r}.")


def analyse(table: Mapping[str, np.ndarray], *, criteria: Mapping = CRITERIA
            ) -> list[claims.ClaimResult]:
    """B4 and B5 from the table of ``experiments.load_table("bdyn", size)``: per comparison
    the effects of every seed, a t-interval, decided against the claim's delta; the parts
    combined by ``claims.all_of``. Pure: the same table gives the same results."""
    rows = per_unit(table)

    def contrast(spec, terms, key):
        run, measure = terms if isinstance(terms, tuple) else (terms, terms.split("-")[-1])
        return t_interval([effect(measure, v) for (r, _), v in sorted(rows.items()) if r == run])

    return claims.judge(criteria, contrast, seed=ANALYSIS_SEED, unit="decades")


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """(unit, settling) of every B4 training whose loss had not settled."""
    return [(f"run={run},seed={seed}", v["loss_settling"])
            for (run, seed), v in sorted(per_unit(table).items())
            if run in NC_RUNS and not v["loss_settling"] < SETTLED_BELOW]


def verdict(result: claims.ClaimResult, table: Mapping[str, np.ndarray]
            ) -> tuple[str, str | None]:
    """The claim's verdict, B4's at most INCONCLUSIVE while a training loss has not settled:
    a run that has not converged cannot say where training takes the statistics."""
    late = unsettled(table) if result.id == "B4" else []
    if late and result.verdict != claims.INCONCLUSIVE:
        return claims.INCONCLUSIVE, (f"the same measures on settled runs ({len(late)} run(s) "
                                     f"with settling >= {SETTLED_BELOW:g})")
    return result.verdict, result.detectable


def curves(size: str, *, results_dir=None) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """{(run, seed): the unit's per-epoch (B4) or per-step (B5) curves} from the records."""
    from asdtheory.experiments import get

    folder = records.size_folder(results_dir, "bdyn", size)
    return {(u.factors["run"], u.factors["seed"]): records.load_record(folder / u.id).arrays
            for u in get("bdyn").declared(size)}

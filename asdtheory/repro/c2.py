"""C2.a.2's and C2.b's verdicts from the records of experiment ``c2``
(``asdtheory.experiments.c2``): the pre-registered :data:`~asdtheory.experiments.c2.CRITERIA`,
one part per (method, weight decay), each a t-interval over seeds decided by
``claims.decide``; the settling gate; the per-run rows a notebook prints.

``analyse(table)`` returns "C2.a.2" (collapse of Deep SVDD's ingredients, none of the control),
"C2.b" (no collapse of the angular losses) and "C2.b task" (the angular losses learned the
task), so that "did not collapse" and "did not learn the task" are told apart;
:func:`verdict` applies the settling gate to one of them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from asdtheory.evaluation import PairedDifference
from asdtheory.experiments.c2 import CRITERIA, METHODS, WEIGHT_DECAYS
from asdtheory.repro import claims
from asdtheory.repro.c1 import t_interval
from asdtheory.train import SETTLED_BELOW

__all__ = ["FIELDS", "SPREAD_FLOOR", "analyse", "combine", "effect", "per_run", "unsettled",
           "verdict"]

# The per-run values of a table (one per unit and weight decay).
FIELDS = ("diverged", "rel_spread", "train_accuracy", "final_loss", "initial_loss", "prior_entropy",
          "loss_settling", "spread_settling")


def per_run(table: Mapping[str, np.ndarray]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """{(method, weight decay): {"seed", *FIELDS, "auc": ...}: one value per seed}; "auc" is
    the anomaly detection AUC of the trained scores on the test samples (for information:
    no collapse measure), "twin_auc" the untrained network's."""
    from asdtheory.evaluation import auc

    method, wd = np.asarray(table["method"]), np.asarray(table["weight_decay"]).astype(str)
    seed = np.asarray(table["seed"])
    out = {}
    for m in METHODS:
        for w in WEIGHT_DECAYS:
            rows = (method == m) & (wd == w)
            entry = {name: [] for name in ("seed", *FIELDS, "auc", "twin_auc")}
            for s in np.unique(seed[rows]):
                sel = rows & (seed == s)
                entry["seed"].append(int(s))
                for name in FIELDS:
                    entry[name].append(float(table[name][sel][0]))
                y = table["label"][sel]
                diverged = table["diverged"][sel][0] == 1
                entry["auc"].append(float("nan") if diverged else auc(y, table["score"][sel]))
                entry["twin_auc"].append(auc(y, table["twin_score"][sel]))
            if entry["seed"]:
                out[m, w] = {name: np.asarray(v) for name, v in entry.items()}
    return out


# The networks compute in float32: a relative spread below float32's resolution is a
# constant map up to rounding, whether it came out as 1e-11 or as exactly 0, and counts as
# this floor (so that an exact 0 does not become an effect of 300 decades).
SPREAD_FLOOR = float(np.finfo(np.float32).eps)


def effect(spec: Mapping, run: Mapping[str, np.ndarray], sign: float) -> np.ndarray:
    """Per seed, the effect a part of ``spec`` predicts positive: for the spread,
    sign x (log10 threshold - log10 rel_spread) in decades (+1: collapse predicted, -1: none),
    the spread taken at least :data:`SPREAD_FLOOR`; for the task, sign x (training accuracy -
    1/N), N from exp(H) of balanced classes."""
    if spec["measure"] == "log10 rel_spread":
        spread = np.maximum(np.asarray(run["rel_spread"], np.float64), SPREAD_FLOOR)
        return sign * (np.log10(spec["threshold"]) - np.log10(spread))
    chance = np.exp(-np.asarray(run["prior_entropy"], np.float64))
    return sign * (np.asarray(run["train_accuracy"], np.float64) - chance)


def _interval(values: np.ndarray) -> PairedDifference:
    """The t-interval; a run whose measure is not finite (a network that diverged to NaN)
    gives the widest interval, so that its part cannot be decided either way."""
    if not np.all(np.isfinite(values)):
        return PairedDifference(float("nan"), -np.inf, np.inf, 0.95, 0)
    return t_interval(values)


def combine(spec: Mapping, parts) -> tuple[str, str | None]:
    """A claim's verdict from its parts: every part must hold (``claims.all_of``), except
    that with ``spec["collapse_at_some_weight_decay"]`` a method predicted to collapse needs
    only some weight decay of the range (``claims.any_of`` over its parts), the methods then
    combined by ``claims.all_of``."""
    if not spec.get("collapse_at_some_weight_decay"):
        return claims.all_of(*(p.decision.part for p in parts))
    by_method: dict[str, list] = {}
    for part in parts:
        by_method.setdefault(spec["comparisons"][part.name][0], []).append(part)
    return claims.all_of(*(
        (claims.any_of if spec["comparisons"][group[0].name][2] > 0 else claims.all_of)(
            *(p.decision.part for p in group)) for group in by_method.values()))


def analyse(table: Mapping[str, np.ndarray], *, criteria: Mapping = CRITERIA
            ) -> list[claims.ClaimResult]:
    """Every claim of ``criteria`` from ``experiments.load_table("c2", size)``, its parts
    combined by :func:`combine`."""
    runs = per_run(table)
    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        results.extend(claims.judge(
            {claim_id: spec}, lambda spec, part, key: _interval(
                effect(spec, runs[part[0], part[1]], part[2])),
            seed=i, unit=spec["unit"], combine=combine))
    return results


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """(unit, weight decay, settling) of every run whose training loss had not settled."""
    from asdtheory.experiments.records import unsettled_runs

    return unsettled_runs({**table, "weight_decay": np.asarray(table["weight_decay"])
                           .astype(str)}, condition="weight_decay")


def verdict(result: claims.ClaimResult, table: Mapping[str, np.ndarray]
            ) -> tuple[str, str | None]:
    """A claim's verdict, at most INCONCLUSIVE while a run of the methods it compares has not
    settled (``train.settling >= train.SETTLED_BELOW``)."""
    methods = {part[0] for part in CRITERIA[result.id]["comparisons"].values()}
    late = [run for run in unsettled(table) if run[0].split(",")[0].split("=")[1] in methods]
    if late:
        return claims.INCONCLUSIVE, (f"the same measures on settled runs ({len(late)} run(s) "
                                     f"with settling >= {SETTLED_BELOW:g})")
    return result.verdict, result.detectable

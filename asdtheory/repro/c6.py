"""C6's verdicts from the records of experiment ``c6`` (``asdtheory.experiments.c6``): the
saliency shares of every explained clip (:func:`map_table`), the gate (:func:`gate`), the
pre-registered :data:`~asdtheory.experiments.c6.CRITERIA` decided by ``claims.decide`` on
paired hierarchical-bootstrap intervals over seeds and explained clips (:func:`analyse`),
the contrasts reported beside them (:func:`reported`), notebook 06's old measure on the same
records (:func:`old_measure`), the detection table with its reference rows and the settling
check. Notebook 06 calls these::

    table = experiments.load_table("c6", size)
    maps = c6.load_maps(size)
    analysis = c6.analyse(table, maps)

**Shares.** For a centred RISE map S of one clip and a region R (its machine-dominated bins,
its anomaly region, or notebook 06's box):

- positive share = sum_R max(S, 0) / sum max(S, 0): where the bins that *raise* the score lie
  (``explain.region_share``, notebook 06's measure);
- negative share = sum_R max(-S, 0) / sum max(-S, 0): where the bins that *lower* it lie;
- absolute share = sum_R |S| / sum |S|: where the bins the score reacts to lie, either way.

A map blind to R gets about R's area fraction, the chance level (per clip for the
machine-dominated bins, which differ from clip to clip). A map without mass of a sign (a
score that ignores its input) gets the chance level for that sign, and
:func:`map_table` flags it (column ``<method>|degenerate/<fill>``).

**Deletion share** of a clip = |d_machine| / (|d_machine| + |d_noise|), d_machine the score
change when its machine-dominated bins are replaced by other noise, d_noise when its
noise-dominated bins are (1/2 when both are 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from asdtheory.evaluation import auc
from asdtheory.experiments import records
from asdtheory.experiments.c6 import (
    ANOMALIES,
    CRITERIA,
    FILLS,
    LABELS,
    MEASURES,
    METHODS,
    REGIONS,
    REPORTED,
    TWIN_FILL,
    units,
)
from asdtheory.experiments.records import unsettled_runs
from asdtheory.repro import claims
from asdtheory.repro._ranking import areas

__all__ = ["ANALYSIS_SEED", "OLD_REGIONS", "STATISTICS", "UNIT", "Analysis", "analyse",
           "contrast", "deletion_share", "detection_table", "gate", "load_maps", "map_table",
           "old_measure", "reported", "shares", "unsettled"]

UNIT = "share"
# The bootstrap's own key, never a unit's.
ANALYSIS_SEED = 61
CHANCE = "chance"
STATISTICS = (*(f"{m}/{r}/{f}" for f in FILLS for r in REGIONS for m in MEASURES), "deletion")


# ---------------------------------------------------------------------------- per map

def shares(maps, regions, measure: str) -> np.ndarray:
    """(n,) shares of ``measure`` ("positive", "negative", "absolute") of (n, T, F) maps on
    (n, T, F) or (T, F) bool regions; the region's area fraction where a map has no mass of
    that sign."""
    maps = np.asarray(maps, np.float64)
    regions = np.broadcast_to(np.asarray(regions, bool), maps.shape)
    if measure == "positive":
        mass = np.maximum(maps, 0.0)
    elif measure == "negative":
        mass = np.maximum(-maps, 0.0)
    elif measure == "absolute":
        mass = np.abs(maps)
    else:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}.")
    total = mass.sum(axis=(1, 2))
    inside = np.where(regions, mass, 0.0).sum(axis=(1, 2))
    area = regions.mean(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), area)


def deletion_share(score, deleted_machine, deleted_noise) -> np.ndarray:
    """|d_machine| / (|d_machine| + |d_noise|) per clip, 1/2 where both changes are 0."""
    d_machine = np.abs(np.asarray(deleted_machine, np.float64) - score)
    d_noise = np.abs(np.asarray(deleted_noise, np.float64) - score)
    total = d_machine + d_noise
    return np.where(total > 0, d_machine / np.where(total > 0, total, 1.0), 0.5)


def load_maps(size: str, *, results_dir=None) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """{(method, seed): arrays} of every declared unit's record (verified by
    ``records.load_record``); call :func:`experiments.load_table` first for the freshness
    check."""
    folder = records.size_folder(results_dir, "c6", size)
    return {(u.factors["method"], u.factors["seed"]): records.load_record(folder / u.id).arrays
            for u in units(size)}


def _column(source: str, statistic: str) -> str:
    return f"{source}|{statistic}"


def map_table(table: Mapping[str, np.ndarray],
              maps: Mapping[tuple[str, int], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One row per (seed, explained clip), paired across methods: ``seed``, ``clip``,
    ``class``, ``anomaly`` (its kind), for every method and statistic of :data:`STATISTICS`
    the column ``<method>|<statistic>`` (and ``<method> twin|<statistic>`` of the untrained
    twin's maps, fill ``TWIN_FILL``), the chance levels ``chance|<statistic>`` and the
    flags ``<method>|degenerate/<fill>`` (a map without positive or without negative mass).
    Raises when the methods' explained clips of a seed differ (they must pair)."""
    out: dict[str, list] = {}

    def add(name, values):
        out.setdefault(name, []).append(values)

    for seed in np.unique(table["seed"]).tolist():
        first = None
        for method in METHODS:
            sel = (table["seed"] == seed) & (table["method"] == method) & (table["map"] >= 0)
            order = np.argsort(table["map"][sel], kind="stable")
            rows = {name: table[name][sel][order] for name in (
                "clip", "class", "anomaly", "map", "score", "deleted_machine", "deleted_noise")}
            arrays = maps[method, seed]
            if not np.array_equal(rows["map"], np.arange(rows["map"].size)):
                raise ValueError(f"seed {seed}, {method}: the map indices are not 0..n-1.")
            regions = {"machine": arrays["dominant"][rows["clip"]],
                       "anomaly": arrays["anomaly_region"],
                       "box": np.broadcast_to(arrays["box"], arrays["anomaly_region"].shape)}
            if first is None:
                first = (rows, regions)
                for name in ("clip", "class", "anomaly"):
                    add(name, rows[name])
                add("seed", np.full(rows["clip"].size, seed))
                for statistic in STATISTICS:
                    add(_column(CHANCE, statistic),
                        np.full(rows["clip"].size, 0.5) if statistic == "deletion" else
                        regions[statistic.split("/")[1]].mean(axis=(1, 2)))
            elif not (all(np.array_equal(first[0][k], rows[k])
                          for k in ("clip", "class", "anomaly"))
                      and all(np.array_equal(first[1][r], regions[r]) for r in REGIONS)):
                raise ValueError(f"seed {seed}: the explained clips of {method} differ from "
                                 f"those of {METHODS[0]}; they must pair.")
            for source, fill, name in (*((method, f, f) for f in FILLS),
                                       (f"{method} twin", TWIN_FILL, f"twin_{TWIN_FILL}")):
                saliency = arrays[f"saliency_{name}"].astype(np.float64)
                add(_column(source, f"degenerate/{fill}"),
                    ~((saliency > 0).any(axis=(1, 2)) & (saliency < 0).any(axis=(1, 2))))
                for region in REGIONS:
                    for measure in MEASURES:
                        add(_column(source, f"{measure}/{region}/{fill}"),
                            shares(saliency, regions[region], measure))
            add(_column(method, "deletion"), deletion_share(
                rows["score"], rows["deleted_machine"], rows["deleted_noise"]))
    return {name: np.concatenate(parts) for name, parts in out.items()}


# ---------------------------------------------------------------------------- intervals

def contrast(maps: Mapping[str, np.ndarray], terms: Sequence[tuple], *, key,
             n_resamples: int = 1000):
    """sum_j w_j mean over the explained clips of one anomaly kind of statistic j, per seed,
    averaged over seeds, with the ``claims.hierarchical_bootstrap`` interval (seeds, then
    clips within class); ``maps`` is :func:`map_table`'s table, a term (weight, source,
    statistic, anomaly kind), every term of one kind."""
    weights = np.asarray([term[0] for term in terms], np.float64)
    columns = [_column(source, statistic) for _, source, statistic, _ in terms]
    kinds = {term[3] for term in terms}
    missing = [c for c in columns if c not in maps]
    if missing or len(kinds) != 1:
        raise ValueError(f"the terms must name columns of the map table (missing {missing}) "
                         f"and one anomaly kind (got {sorted(kinds)}).")
    (kind,) = kinds
    values, strata = [], []
    for seed in np.unique(maps["seed"]):
        sel = (maps["seed"] == seed) & (maps["anomaly"] == kind)
        if not sel.any():
            raise ValueError(f"seed {seed} has no explained clips of kind {kind!r}.")
        values.append(np.column_stack([maps[c][sel] for c in columns]))
        strata.append(maps["class"][sel])

    def statistic(v):
        return (v @ weights).mean(axis=-1)

    return claims.hierarchical_bootstrap(values, statistic, key=key, n_resamples=n_resamples,
                                         vectorized=True, strata_per_seed=strata)


def _aucs(table, method: str, kind: str, column: str = "score") -> np.ndarray:
    """Per seed, the AUC of ``column`` on the clips of ``kind`` against the normal clips."""
    rows = (table["method"] == method) & np.isin(table["anomaly"], ("none", kind))
    return np.asarray([auc(table["label"][rows & (table["seed"] == s)],
                           table[column][rows & (table["seed"] == s)])
                       for s in np.unique(table["seed"][rows])])


def gate(table: Mapping[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """{(method, anomaly kind): mean over seeds of the AUC of its scores on that kind} (the
    kind's clips against the normal test clips of the unit)."""
    return {(m, kind): float(_aucs(table, m, kind).mean()) for m in METHODS for kind in ANOMALIES}


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The verdicts (``results``: one ``claims.ClaimResult`` per claim, in the criteria's
    order, decided on the comparisons past the gate, or ``WITHHELD`` with the gate's reason when
    none passes), the comparisons withheld by the gate ({claim: {comparison: reason}}) and the
    gate's AUCs ({(method, anomaly kind): mean AUC})."""

    results: list[claims.ClaimResult]
    withheld: dict[str, dict[str, str]]
    gate: dict[tuple[str, str], float]


def analyse(table: Mapping[str, np.ndarray],
            maps: Mapping[tuple[str, int], Mapping[str, np.ndarray]], *,
            n_resamples: int = 1000, criteria: Mapping = CRITERIA) -> Analysis:
    """The verdict of every claim of ``criteria`` behind the gate: a comparison that involves a
    method whose :func:`gate` AUC is below ``spec["gate_auc"]`` is withheld. Each interval's
    key is the one ``claims.judge`` gives the comparison's position in ``criteria``, whatever
    is withheld (pure: the same records give the same results)."""
    per_map = map_table(table, maps)
    aucs = gate(table)
    keys, withheld, gated, missed = {}, {}, {}, {}
    for i, (claim_id, spec) in enumerate(criteria.items()):
        kept = {}
        for j, (name, terms) in enumerate(spec["comparisons"].items()):
            keys[id(terms)] = jax.random.fold_in(jax.random.fold_in(
                jax.random.key(ANALYSIS_SEED), i), j)
            failing = [(s, k) for _, s, _, k in terms
                       if s != CHANCE and aucs[s, k] < spec["gate_auc"]]
            if failing:
                why = [f"{LABELS[s]} detects the {k} anomaly with mean AUC "
                       f"{claims.fmt(aucs[s, k])} < {claims.fmt(spec['gate_auc'], 2)}"
                       for s, k in dict.fromkeys(failing)]
                withheld.setdefault(claim_id, {})[name] = "; ".join(why) + ": no verdict"
                missed.setdefault(claim_id, {}).update(dict.fromkeys(why))
            else:
                kept[name] = terms
        if kept:
            gated[claim_id] = {**spec, "comparisons": kept}
    judged = {r.id: r for r in claims.judge(gated, lambda spec, terms, key: contrast(
        per_map, terms, key=keys[id(terms)], n_resamples=n_resamples),
        seed=ANALYSIS_SEED, unit=UNIT)}
    results = [judged.get(claim_id) or claims.ClaimResult(
        claim_id, spec["statement"], claims.WITHHELD, None, (), spec["delta"], UNIT,
        reason="; ".join(missed[claim_id]))
        for claim_id, spec in criteria.items()]
    return Analysis(results, withheld, aucs)


def reported(maps: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
             groups: Mapping = REPORTED) -> dict[str, dict[str, object]]:
    """{group: {name: interval}} of the contrasts reported beside the verdicts (not decided):
    ``REPORTED`` of the declaration, each with its own key."""
    out = {}
    for i, (group, comparisons) in enumerate(groups.items()):
        out[group] = {name: contrast(maps, terms, key=jax.random.fold_in(jax.random.fold_in(
            jax.random.key(ANALYSIS_SEED + 1), i), j), n_resamples=n_resamples)
            for j, (name, terms) in enumerate(comparisons.items())}
    return out


def by_method(intervals: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """One group of :func:`reported` ({"<kind>: <method label> <statistic>": interval}) as
    table rows {"<kind> <statistic>": {method label: interval}}, a column per method."""
    rows = {}
    for name, interval in intervals.items():
        kind, rest = name.split(": ", 1)
        label = next(label for label in LABELS.values() if rest.startswith(label + " "))
        rows.setdefault(f"{kind} {rest.removeprefix(label + ' ')}", {})[label] = interval
    return rows


OLD_REGIONS = {"tone": ("machine", "box"), "harmonic": ("machine", "anomaly")}


def old_measure(maps: Mapping[str, np.ndarray], *, n_resamples: int = 1000) -> dict:
    """Notebook 06's old measure on the same records: the share of the *positive* saliency
    with the *class-averaged* fill, on the machine-dominated bins and in the box (tone clips)
    or the anomaly region (harmonic clips): every method's mean share ("mean", keyed (method,
    kind, region)), the chance levels ("chance", keyed (kind, region)), and sub-cluster AdaCos
    minus chance and minus each rival, the old criterion's contrasts, with their intervals
    ("intervals", keyed (kind, region, comparison))."""
    out = {"mean": {}, "chance": {}, "intervals": {}}
    for i, kind in enumerate(ANOMALIES):
        rows = maps["anomaly"] == kind
        for j, region in enumerate(OLD_REGIONS[kind]):
            statistic = f"positive/{region}/average"
            out["chance"][kind, region] = float(maps[_column(CHANCE, statistic)][rows].mean())
            for method in METHODS:
                out["mean"][method, kind, region] = float(
                    maps[_column(method, statistic)][rows].mean())
            for k, source in enumerate((CHANCE, *METHODS[1:])):
                name = f"{LABELS[METHODS[0]]} - {LABELS.get(source, source)}"
                out["intervals"][kind, region, name] = contrast(
                    maps, ((1.0, METHODS[0], statistic, kind), (-1.0, source, statistic, kind)),
                    key=jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 2),
                                           100 * i + 10 * j + k),
                    n_resamples=n_resamples)
    return out


# ---------------------------------------------------------------------------- references

def detection_table(table: Mapping[str, np.ndarray]
                    ) -> dict[tuple[str, str, str], np.ndarray]:
    """{(method, anomaly kind, detector): AUC per seed} on each explained anomaly kind against
    the normal test clips, for detector "trained", "twin" (its untrained twin) and "level"
    (the model-free level detector)."""
    return {(method, kind, name): _aucs(table, method, kind, column)
            for method in METHODS for kind in ANOMALIES
            for name, column in (("trained", "score"), ("twin", "twin_score"),
                                 ("level", "level_score"))}


def detection_contrasts(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000
                        ) -> dict[tuple[str, str, str], object]:
    """{(method, anomaly kind, rival): AUC of the trained score minus the rival's} for rival
    "twin" (the untrained twin) and "level" (the level detector), paired on the same clips,
    mean over seeds with the ``claims.hierarchical_bootstrap`` interval (seeds, then clips
    within label): whether training made a detector of the anomaly the maps explain."""

    def difference(v):  # (slots, clips, [label, trained score, rival score])
        return areas(v[:, :, 0], v[:, :, 1])[:, 0] - areas(v[:, :, 0], v[:, :, 2])[:, 0]

    out = {}
    for i, method in enumerate(METHODS):
        for j, kind in enumerate(ANOMALIES):
            rows = (table["method"] == method) & np.isin(table["anomaly"], ("none", kind))
            seeds = np.unique(table["seed"][rows])
            per_seed = [rows & (table["seed"] == s) for s in seeds]
            for k, (rival, column) in enumerate((("twin", "twin_score"),
                                                 ("level", "level_score"))):
                key = jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 1), (i * 8 + j) * 2 + k)
                values = [np.column_stack([table["label"][r], table["score"][r],
                                           table[column][r]]) for r in per_seed]
                out[method, kind, rival] = claims.hierarchical_bootstrap(
                    values, difference, key=key, n_resamples=n_resamples, vectorized=True,
                    strata_per_seed=[v[:, 0] for v in values])
    return out


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """(unit, settling) of every training run whose loss had not settled
    (``experiments.records.unsettled_runs``; one training per unit)."""
    return unsettled_runs(table, condition=None)

"""C5's verdicts from the records of experiment ``c5`` (``asdtheory.experiments.c5``): the
pre-registered :data:`~asdtheory.experiments.c5.CRITERIA`, each comparison decided by
``claims.decide`` on a hierarchical-bootstrap interval over seeds and clips; the reference rows
(untrained twin, level detector); the settling check; and the *old* measures of notebook 05
computed on the same records, so that the notebook shows old beside new:

- old C5.a: the within-clip variance of one clean normal clip's embedding under different
  noise segments over the between-class variance (``metrics.noise_invariance``), with the
  stationary pink noise it used and with the real recordings;
- old C5.b: the kNN class purity of each model minus that of its untrained twin, compared
  between (iii) and the rivals that never see the labels.

:func:`load` reads the table (``experiments.load_table``) and adds the per-clip measures that
need the embeddings (``records.load_record``): ``purity`` / ``twin_purity`` and the old
ratios. Beside the pre-registered readings, :func:`measure_table` gives C5.a's ratio with the
anomaly's displacement measured in the noise the models were trained in (readings
"trained-in-noise", "twin-in-noise"): a robustness line, not a criterion. Notebook 05 calls
these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np

from asdtheory import metrics
from asdtheory.experiments import records
from asdtheory.experiments.c5 import CRITERIA, GEOMETRY, METHODS, VALVE_CRITERIA
from asdtheory.repro import claims
from asdtheory.repro._ranking import areas

__all__ = ["ANALYSIS_SEED", "K_NEIGHBOURS", "MEASURES", "READINGS", "analyse", "class_auc",
           "contrast", "derive", "invariance_db", "load", "measure_table", "old_measures",
           "unsettled", "valve_analyse", "valve_table", "versus_references"]

# The bootstrap's own key, never a unit's.
ANALYSIS_SEED = 53
K_NEIGHBOURS = 5
# What a term's reading takes from the table, per measure: the columns (one per statistic
# input) and the clips it is computed on.
READINGS = {
    "invariance": {"trained": ("noise_displacement", "anomaly_displacement"),
                   "twin": ("twin_noise_displacement", "twin_anomaly_displacement"),
                   "trained-in-noise": ("noise_displacement", "anomaly_displacement_noisy"),
                   "twin-in-noise": ("twin_noise_displacement",
                                     "twin_anomaly_displacement_noisy")},
    "purity": {"trained": ("purity",), "twin": ("twin_purity",),
               "trained-minus-twin": ("purity_gain",)},
    "old_ratio": {f"{system}-{noise}": (f"{prefix}old_ratio_{noise}",)
                  for system, prefix in (("trained", ""), ("twin", "twin_"))
                  for noise in ("pink", "real")},
    "class_auc": {column: (column,) for column in
                  ("score", "distance_score", "twin_score", "twin_distance_score",
                   "level_score")},
}
# Which clips each measure uses: anomalous (their displacements), normal, or all.
# The references each trained system is compared with, per measure: {reference: (reading of
# the system, reading of the reference)}; C5.d has no noise-free twin clips (VALVE_REFERENCES).
REFERENCES = {"invariance": {"twin": ("twin", "trained")},
              "purity": {"twin": ("trained", "twin")},
              "class_auc": {"twin": ("score", "twin_score"),
                            "twin distance": ("distance_score", "twin_distance_score"),
                            "level": ("score", "level_score")}}
VALVE_REFERENCES = {"purity": {"twin": ("trained", "twin")},
                    "class_auc": {"twin": ("score", "twin_score"),
                                  "level": ("score", "level_score")}}
MEASURES = {"invariance": "anomalous", "purity": "normal", "old_ratio": "normal",
            "class_auc": "all"}
_TINY = np.finfo(np.float64).tiny


# ----------------------------------------------------------------------------- statistics

def invariance_db(noise_displacement, anomaly_displacement) -> np.ndarray:
    """10 log10(mean d_noise^2 / mean d_anomaly^2) over the last axis (clips), for one
    (clips,) pair or (rows, clips) of them: how far noise moves a clip relative to how far
    its anomaly does, in dB (lower = more invariant). Means floored at the smallest float."""
    noise = np.mean(np.square(np.asarray(noise_displacement, np.float64)), axis=-1)
    anomaly = np.mean(np.square(np.asarray(anomaly_displacement, np.float64)), axis=-1)
    return 10.0 * np.log10(np.maximum(noise, _TINY) / np.maximum(anomaly, _TINY))


def class_auc(y, s, classes) -> np.ndarray:
    """The AUC within each class, averaged over the classes, of every row of (rows, clips)
    labels ``y`` and scores ``s`` (or one clip vector); ``classes`` (clips,) is shared."""
    y2, s2 = np.atleast_2d(y), np.atleast_2d(s)
    classes = np.asarray(classes)
    value = np.mean([areas(y2[:, classes == c], s2[:, classes == c])[:, 0]
                     for c in np.unique(classes)], axis=0)
    return value if np.ndim(s) == 2 else float(value[0])


def _statistic(measure: str, weights: np.ndarray, widths: Sequence[int]):
    """The contrast sum_j w_j stat_j of (slots, clips, columns) values whose columns are
    label, class, then the terms' columns (``widths[j]`` of them for term j)."""
    starts = np.concatenate([[2], 2 + np.cumsum(widths)[:-1]]).astype(int)

    def statistic(v):
        total = 0.0
        for w, start in zip(weights, starts, strict=True):
            if measure == "invariance":
                value = invariance_db(v[:, :, start], v[:, :, start + 1])
            elif measure == "class_auc":
                value = class_auc(v[:, :, 0], v[:, :, start], v[0, :, 1].astype(int))
            else:  # per-clip values: their mean
                value = np.mean(v[:, :, start], axis=1)
            total = total + w * value
        return total

    return statistic


# ----------------------------------------------------------------------------- the table

def _per_seed(table: Mapping[str, np.ndarray], measure: str, terms: Sequence[tuple]
              ) -> list[np.ndarray]:
    """Per seed, the measure's clips as rows (label, class, then each term's columns), paired
    across terms by the clip index; raises when the terms' clips differ."""
    readings = READINGS[measure]
    clips = MEASURES[measure]
    out = []
    for seed in np.unique(table["seed"]):
        rows = []
        for _, method, reading in terms:
            if reading not in readings:
                raise ValueError(f"measure {measure!r} has no reading {reading!r}; it has "
                                 f"{sorted(readings)}.")
            sel = (table["seed"] == seed) & (table["method"] == method)
            if clips == "anomalous":
                sel &= table["label"] == 1
            elif clips == "normal":
                sel &= table["label"] == 0
            if not sel.any():
                raise ValueError(f"the table has no rows of {method} (seed {seed}).")
            order = np.argsort(table["clip"][sel], kind="stable")
            rows.append({"clip": table["clip"][sel][order], "label": table["label"][sel][order],
                         "class": table["aux_class"][sel][order],
                         "values": [np.asarray(table[c][sel][order], np.float64)
                                    for c in readings[reading]]})
        first = rows[0]
        for other in rows[1:]:
            if not all(np.array_equal(first[k], other[k]) for k in ("clip", "label", "class")):
                raise ValueError(f"seed {seed}: the terms' clips differ; they must pair.")
        columns = [first["label"], first["class"]] + [v for r in rows for v in r["values"]]
        values = np.column_stack(columns).astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"seed {seed}: the {measure} columns hold NaN or infinite values "
                             "on its clips (did the table come through repro.c5.load?).")
        out.append(values)
    return out


def contrast(table: Mapping[str, np.ndarray], measure: str, terms: Sequence[tuple], *, key,
             n_resamples: int = 1000):
    """sum_j w_j measure(term j) per seed, averaged over seeds, with the
    ``claims.hierarchical_bootstrap`` interval (seeds, then clips within class, and within
    class x label for the AUC). A term is (weight, method, reading), the reading one of
    :data:`READINGS` ``[measure]``."""
    weights = np.asarray([t[0] for t in terms], np.float64)
    widths = [len(READINGS[measure][t[2]]) for t in terms]
    values = _per_seed(table, measure, terms)
    strata = [2 * v[:, 1].astype(int) + v[:, 0].astype(int) for v in values]
    return claims.hierarchical_bootstrap(
        values, _statistic(measure, weights, widths), key=key, n_resamples=n_resamples,
        vectorized=True, strata_per_seed=strata)


def analyse(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
            criteria: Mapping = CRITERIA) -> list[claims.ClaimResult]:
    """The verdict of every claim of ``criteria`` from the table of :func:`load` (pure: the
    same table gives the same results). Each claim in its own unit (dB, purity, AUC), its
    bootstrap keys folded from :data:`ANALYSIS_SEED` + its position."""
    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        results.extend(claims.judge(
            {claim_id: spec}, lambda spec, terms, key: contrast(
                table, spec["measure"], terms, key=key, n_resamples=n_resamples),
            seed=ANALYSIS_SEED + i, unit=spec["unit"]))
    return results


def measure_table(table: Mapping[str, np.ndarray], *, methods: Sequence[str] = METHODS,
                  readings: Mapping[str, Sequence[str]] | None = None
                  ) -> dict[tuple[str, str, str], np.ndarray]:
    """{(measure, method, reading): per-seed values} for every method of ``methods`` and every
    reading of ``readings`` ({measure: readings}, default all of :data:`READINGS`): the rows
    beside the verdicts (the level detector is the same for every method of a seed)."""
    readings = readings or {measure: tuple(r) for measure, r in READINGS.items()}
    out = {}
    for measure, names in readings.items():
        for method in methods:
            for reading in names:
                statistic = _statistic(measure, np.ones(1), [len(READINGS[measure][reading])])
                out[measure, method, reading] = np.asarray([
                    float(statistic(v[None])[0])
                    for v in _per_seed(table, measure, [(1.0, method, reading)])])
    return out


def versus_references(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
                      methods: Sequence[str] = METHODS, pairs: Mapping | None = None
                      ) -> dict[tuple[str, str, str], object]:
    """{(measure, method, reference): interval} of the trained system minus a reference on
    the same clips and seeds: its untrained twin for every measure ("twin"; for the AUC also
    by the embedding distance, "twin distance"), and the level detector for the AUC
    ("level"). Oriented so that > 0 means training (or the model) did better: for the
    invariance, twin minus trained (lower dB is better). ``pairs``: {measure: {reference:
    (reading of the system, reading of the reference)}}, default :data:`REFERENCES`."""
    pairs = pairs or REFERENCES
    out = {}
    for i, method in enumerate(methods):
        for j, (measure, references) in enumerate(pairs.items()):
            for r, (name, (plus, minus)) in enumerate(references.items()):
                key = jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 100), 100 * i + 10 * j + r)
                out[measure, method, name] = contrast(
                    table, measure, ((1.0, method, plus), (-1.0, method, minus)), key=key,
                    n_resamples=n_resamples)
    return out


def old_measures(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000) -> dict:
    """Notebook 05's old C5.a and C5.b on these records, with their old orientation:

    - ``ratio``: {(method, system, noise): per-seed mean of ``metrics.noise_invariance``}
      for system "trained"/"twin" and noise "pink" (the old stationary noise) / "real";
    - ``ratio_contrast``: {(rival, noise): interval of rival minus (iii)} (the old C5.a: > 0
      favours (iii)), trained systems;
    - ``purity_gain``: {method: per-seed mean of purity minus the twin's purity};
    - ``gain_contrast``: {rival: interval of (iii)'s gain minus the rival's} (the old C5.b:
      > 0 favours (iii)), for every other method.
    """
    out = {"ratio": {}, "ratio_contrast": {}, "purity_gain": {}, "gain_contrast": {}}
    rows = measure_table(table)
    for method in METHODS:
        for system in ("trained", "twin"):
            for noise in ("pink", "real"):
                out["ratio"][method, system, noise] = rows["old_ratio", method,
                                                           f"{system}-{noise}"]
        out["purity_gain"][method] = rows["purity", method, "trained-minus-twin"]
    base = jax.random.key(ANALYSIS_SEED + 200)
    iii = METHODS[0]
    for i, rival in enumerate(METHODS[1:]):
        for j, noise in enumerate(("pink", "real")):
            out["ratio_contrast"][rival, noise] = contrast(
                table, "old_ratio", ((1.0, rival, f"trained-{noise}"),
                                     (-1.0, iii, f"trained-{noise}")),
                key=jax.random.fold_in(base, 10 * i + j), n_resamples=n_resamples)
        out["gain_contrast"][rival] = contrast(
            table, "purity", ((1.0, iii, "trained-minus-twin"),
                              (-1.0, rival, "trained-minus-twin")),
            key=jax.random.fold_in(base, 100 + i), n_resamples=n_resamples)
    return out


def unsettled(table: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """(unit, settling) of every training run whose loss had not settled
    (``experiments.records.unsettled_runs``; one training per unit)."""
    return records.unsettled_runs(table, condition=None)


# ----------------------------------------------------------------------------- loading

def _unit_measures(method: str, clips: Mapping[str, np.ndarray],
                   arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One unit's per-clip measures from its embeddings (NaN where a measure does not apply):
    the kNN purity of each normal clip among the unit's normal clips (noisy, as scored) and
    the old noise ratio of each normal clip, for the trained system and its twin."""
    geometry = GEOMETRY[method]
    normal = np.asarray(clips["label"]) == 0
    classes = np.asarray(clips["aux_class"])[normal]
    n = normal.size
    out = {}
    for prefix in ("", "twin_"):
        purity = np.full(n, np.nan)
        purity[normal] = metrics.knn_purity(
            np.asarray(arrays[f"{prefix}embedding"][normal], np.float64), classes,
            k=K_NEIGHBOURS, metric=geometry)
        out[f"{prefix}purity"] = purity
        for noise in ("pink", "real"):
            ratio = np.full(n, np.nan)
            ratio[normal] = metrics.noise_invariance(
                np.asarray(arrays[f"{prefix}segments_{noise}"], np.float64), classes,
                metric=geometry)
            out[f"{prefix}old_ratio_{noise}"] = ratio
    out["purity_gain"] = out["purity"] - out["twin_purity"]
    return out


def derive(table: Mapping[str, np.ndarray], arrays_by_unit: Mapping[str, Mapping]
           ) -> dict[str, np.ndarray]:
    """``table`` with the per-clip measures that need the embeddings
    (``purity``, ``twin_purity``, ``purity_gain``, ``old_ratio_pink``, ``old_ratio_real`` and
    the twin's), from ``arrays_by_unit`` {unit id: the unit record's arrays}; a unit's rows
    are in its record's clip order, as ``load_table`` keeps them."""
    out = {name: np.asarray(values) for name, values in table.items()}
    derived: dict[str, np.ndarray] = {}
    for unit in dict.fromkeys(out["unit"].tolist()):
        rows = np.flatnonzero(out["unit"] == unit)
        clips = {name: out[name][rows] for name in ("label", "aux_class", "clip")}
        if not np.array_equal(clips["clip"], np.arange(rows.size)):
            raise ValueError(f"unit {unit}: its rows are not in the record's clip order.")
        methods = np.unique(out["method"][rows])
        for name, values in _unit_measures(methods[0], clips, arrays_by_unit[unit]).items():
            derived.setdefault(name, np.full(out["unit"].size, np.nan))[rows] = values
    return {**out, **derived}


def load(size: str, *, results_dir=None) -> dict[str, np.ndarray]:
    """``experiments.load_table("c5", size)`` (every declared unit present, fresh and intact)
    with the embedding measures of :func:`derive`, from each unit's arrays."""
    from asdtheory.experiments import load_table
    from asdtheory.experiments.records import size_folder

    table = load_table("c5", size, results_dir=results_dir)
    folder = size_folder(results_dir, "c5", size)
    arrays = {unit: records.load_record(folder / unit).arrays
              for unit in dict.fromkeys(table["unit"].tolist())}
    return derive(table, arrays)


# ----------------------------------------------------------------------------- C5.d (valve)

def valve_table(c4_table: Mapping[str, np.ndarray], arrays_by_unit: Mapping[str, Mapping]
                ) -> dict[str, np.ndarray]:
    """C5.d's table from the records of experiment ``c4``: its joint-task units, the valve's
    clean test clips, one (fold, seed) replicate as a "seed", the attribute as the class;
    columns ``seed``, ``method``, ``clip``, ``label``, ``aux_class``, ``score`` (the model's own
    anomaly score), ``twin_score`` and ``level_score`` (its untrained twin's and the level
    detector's), ``purity`` and ``twin_purity`` (kNN purity by attribute of each normal clip
    among the replicate's normal clips, cosine, in the trained and the twin's embedding, NaN
    for anomalous clips), the shape :func:`contrast` reads. ``arrays_by_unit``: {unit id: the
    unit record's arrays} (``embedding``, ``twin_embedding``)."""
    t = {name: np.asarray(values) for name, values in c4_table.items()}
    sel = (t["task"] == "joint") & (t["machine"] == "valve") & (t["snr"].astype(str) == "clean")
    attributes = sorted(set(t["attribute"][sel].tolist()))
    replicates = sorted(set(zip(t["fold"][sel].tolist(), t["seed"][sel].tolist(), strict=True)))
    out: dict[str, list] = {name: [] for name in (
        "seed", "method", "clip", "label", "aux_class", "score", "twin_score", "level_score",
        "purity", "twin_purity")}
    for unit in dict.fromkeys(t["unit"][sel].tolist()):
        rows_all = t["unit"] == unit
        rows = np.flatnonzero(sel & rows_all)
        label = t["label"][rows].astype(int)
        classes = np.asarray([attributes.index(a) for a in t["attribute"][rows]])
        normal = label == 0
        for name, source in (("purity", "embedding"), ("twin_purity", "twin_embedding")):
            embedding = np.asarray(arrays_by_unit[unit].get(source, np.empty((0,))), np.float64)
            if embedding.shape[0] != int(rows_all.sum()):
                raise ValueError(f"unit {unit}: {embedding.shape[0]} {source} rows for "
                                 f"{int(rows_all.sum())} scored clips; is the record from c4 "
                                 "version 2 or later?")
            z = embedding[rows - np.flatnonzero(rows_all)[0]]
            purity = np.full(rows.size, np.nan)
            purity[normal] = metrics.knn_purity(z[normal], classes[normal], k=K_NEIGHBOURS,
                                                metric="cosine")
            out[name].append(purity)
        replicate = replicates.index((int(t["fold"][rows[0]]), int(t["seed"][rows[0]])))
        out["seed"].append(np.full(rows.size, replicate))
        out["method"].append(np.full(rows.size, t["method"][rows[0]], dtype=object))
        out["clip"].append(np.asarray(t["clip"][rows]))
        out["label"].append(label)
        out["aux_class"].append(classes)
        for name in ("score", "twin_score", "level_score"):
            out[name].append(np.asarray(t[name][rows], np.float64))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def valve_analyse(vtable: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
                  criteria: Mapping = VALVE_CRITERIA) -> list[claims.ClaimResult]:
    """C5.d's verdict from :func:`valve_table`: one result per measure of the pre-registered
    :data:`~asdtheory.experiments.c5.VALVE_CRITERIA` (ids ``C5.d purity``, ``C5.d AUC``), each
    decided against its own delta; the claim's verdict is their ``claims.all_of``."""
    results = []
    for i, (claim_id, spec) in enumerate(criteria.items()):
        for j, (measure, unit, name) in enumerate((("purity", "kNN purity", "purity"),
                                                   ("class_auc", "per-attribute AUC", "AUC"))):
            sub = {"statement": spec["statement"], "delta": spec["deltas"][measure],
                   "measure": measure,
                   "comparisons": {c: terms for c, terms in spec["comparisons"].items()
                                   if spec["measures"][c] == measure}}
            results.extend(claims.judge(
                {f"{claim_id} {name}": sub}, lambda spec, terms, key: contrast(
                    vtable, spec["measure"], terms, key=key, n_resamples=n_resamples),
                seed=ANALYSIS_SEED + 300 + 10 * i + j, unit=unit))
    return results

"""B1-B3's verdicts from the records of experiment ``b`` (``asdtheory.experiments.b``): the
pre-registered :data:`~asdtheory.experiments.b.CRITERIA`, each comparison decided by
``claims.decide`` on a hierarchical-bootstrap interval over seeds and clips at the decisive
SNR; the equivalence reading; the readings beside the verdict that are not decisive (clean
clips, ``c3``'s k-means back-end); the reference rows (untrained twin, level detector); the
compactness and the centres' spread; the settling check. Notebook 07 calls these.

The contrasts are ``repro.c3.contrast`` on the table with the arm in the place of the method
(the same pairing by clip, the same bootstrap, the same batched hmean)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from asdtheory.experiments.b import ARMS, CRITERIA, SNRS
from asdtheory.experiments.records import unsettled_runs as unsettled
from asdtheory.repro import c3 as _c3
from asdtheory.repro import claims

__all__ = ["ANALYSIS_SEED", "DETECTORS", "analyse", "centre_spread", "compactness_table",
           "contrast", "equivalence", "hmean_table", "load", "readings", "report", "unsettled",
           "versus_references"]

UNIT = "hmean"
# The bootstrap's own key, never a unit's, c3's or the calibration's.
ANALYSIS_SEED = 41
# detector name -> score column: the decisive kNN back-end, c3's k-means back-end beside it,
# each trained and untrained, and the model-free level detector.
DETECTORS = {"trained": "score", "twin": "twin_score", "trained k-means": "kmeans_score",
             "twin k-means": "twin_kmeans_score", "level": "level_score"}


def _as_c3(table: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The table as ``repro.c3`` reads it: the arm in the place of the method."""
    return {**table, "method": np.asarray(table["arm"])}


def contrast(table: Mapping[str, np.ndarray], terms, *, key, column: str = "score",
             n_resamples: int = 1000):
    """sum_j w_j hmean(term j), per seed, averaged over seeds, with the hierarchical-bootstrap
    interval; a term is (weight, arm, snr) or (weight, arm, snr, score column)."""
    return _c3.contrast(_as_c3(table), terms, key=key, column=column, n_resamples=n_resamples)


def analyse(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
            criteria: Mapping = CRITERIA) -> list[claims.ClaimResult]:
    """The verdict of every claim of ``criteria`` from ``experiments.load_table("b", size)``
    (pure: the same table gives the same results)."""
    return claims.judge(criteria, lambda spec, terms, key: contrast(
        table, terms, key=key, n_resamples=n_resamples), seed=ANALYSIS_SEED, unit=UNIT)


def equivalence(interval, *, delta: float, unit: str = UNIT) -> str | None:
    """"equivalent within delta" when the interval lies inside (-delta, delta), else None.

    ``claims.decide`` answers "is there an effect of at least delta?"; CONTRADICTED excludes
    it, and when the interval also lies above -delta the reverse effect of that size is
    excluded too: the two choices are equivalent within delta, a finding of its own."""
    delta = float(delta)
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}.")
    if -delta < interval.low and interval.high < delta:
        return f"equivalent within {claims.fmt(delta)} {unit}"
    return None


def report(result: claims.ClaimResult, *, notebook: str) -> claims.ClaimRecord:
    """``claims.report`` for a claim whose smallest effect of interest makes an equivalence a
    finding: the statement, then the CLAIM line, whose summary adds each comparison whose
    interval lies inside (-delta, delta) (:func:`equivalence`) and whose figures say whether
    every comparison does ("equivalent")."""
    print(f"\n{result.id}: {result.statement}")
    equivalent = [f"{p.name}: {e}" for p in result.parts
                  if (e := equivalence(p.interval, delta=result.delta, unit=result.unit))]
    return claims.claim(
        result.id, result.verdict,
        result.summary + ("; " + "; ".join(equivalent) if equivalent else ""),
        detectable=result.detectable, statement=result.statement, notebook=notebook,
        figures={"delta": result.delta,
                 "parts": {p.name: [p.interval.estimate, p.interval.low, p.interval.high]
                           for p in result.parts},
                 "equivalent": bool(equivalent) and len(equivalent) == len(result.parts)})


def readings(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
             criteria: Mapping = CRITERIA) -> dict[tuple[str, str, str, str], object]:
    """{(claim, comparison, snr, back-end): interval} of every comparison of ``criteria`` at
    every SNR of the records and by both back-ends ("knn", the decisive one; "k-means",
    ``c3``'s): the verdict reads the decisive SNR and kNN alone, these show whether the
    answer depends on the noise or the back-end (stated before the run as not decisive)."""
    out = {}
    for i, (claim_id, spec) in enumerate(criteria.items()):
        for j, (name, terms) in enumerate(spec["comparisons"].items()):
            for k, snr in enumerate(SNRS):
                for r, (backend, column) in enumerate((("knn", "score"),
                                                       ("k-means", "kmeans_score"))):
                    moved = tuple((w, arm, snr, column) for w, arm, _ in terms)
                    key = jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 2),
                                             1000 * i + 100 * j + 10 * k + r)
                    out[claim_id, name, snr, backend] = contrast(table, moved, key=key,
                                                                 n_resamples=n_resamples)
    return out


def versus_references(table: Mapping[str, np.ndarray], *, n_resamples: int = 1000,
                      snrs=SNRS) -> dict[tuple[str, str, str], object]:
    """{(arm, snr, reference): interval} of trained minus ``reference`` hmean (kNN back-end),
    where the reference is "twin" (the same arm untrained, same back-end: what training
    added) or "level" (the model-free level detector), on the same clips and seeds."""
    out = {}
    for i, arm in enumerate(ARMS):
        for j, snr in enumerate(snrs):
            for r, (name, column) in enumerate((("twin", "twin_score"),
                                                ("level", "level_score"))):
                key = jax.random.fold_in(jax.random.key(ANALYSIS_SEED + 1),
                                         100 * i + 10 * j + r)
                out[arm, snr, name] = contrast(
                    table, ((1.0, arm, snr), (-1.0, arm, snr, column)), key=key,
                    n_resamples=n_resamples)
    return out


def hmean_table(table: Mapping[str, np.ndarray]) -> dict[tuple[str, str, str], np.ndarray]:
    """{(arm, snr, detector): per-seed hmeans} for every detector of :data:`DETECTORS`."""
    t = _as_c3(table)
    out = {}
    for arm in ARMS:
        for snr in SNRS:
            for name, column in DETECTORS.items():
                out[arm, snr, name] = np.asarray([
                    _c3._hmean(v[:, 0].astype(int), v[:, 2], v[:, 1].astype(int))
                    for v in _c3._per_seed(t, [(1.0, arm, snr)], column)])
    return out


def compactness_table(table: Mapping[str, np.ndarray]) -> dict[tuple[str, str, str],
                                                                 np.ndarray]:
    """{(arm, snr, "trained" | "twin"): per-seed mean compactness of the normal test clips}
    w.r.t. their own class centre (nearest sub-centre; AdaProj: own subspace), the quantity
    the paper ties the loss to; each arm in its own head's geometry."""
    out = {}
    for arm in ARMS:
        for snr in SNRS:
            rows = (table["arm"] == arm) & (table["snr"] == snr) & (table["label"] == 0)
            seeds = np.unique(table["seed"][rows])
            for name, column in (("trained", "compactness"), ("twin", "twin_compactness")):
                out[arm, snr, name] = np.asarray([
                    table[column][rows & (table["seed"] == s)].mean() for s in seeds])
    return out


def centre_spread(centres: np.ndarray) -> float:
    """The mean cosine between sub-centres (AdaProj: basis vectors) of different classes,
    from a head's (N, M, D) centres: about 0 for random directions, -1 / (N - 1) for class
    means of a regular simplex."""
    c = np.asarray(centres, np.float64)
    c = c / np.linalg.norm(c, axis=-1, keepdims=True)
    n, m = c.shape[:2]
    flat = c.reshape(n * m, -1)
    cos = flat @ flat.T
    other = np.repeat(np.arange(n), m)[:, None] != np.repeat(np.arange(n), m)[None, :]
    return float(cos[other].mean())


def load(size: str, *, results_dir=None) -> tuple[dict[str, np.ndarray],
                                                  dict[tuple[str, str], np.ndarray]]:
    """``experiments.load_table("b", size)`` and {(arm, "trained" | "twin"): (seeds, SNRs)
    :func:`centre_spread` of each unit's head}, from the records' arrays."""
    from asdtheory.experiments import load_table
    from asdtheory.experiments.records import load_record, size_folder

    table = load_table("b", size, results_dir=results_dir)
    folder = size_folder(results_dir, "b", size)
    spread: dict[tuple[str, str], list] = {}
    for unit in dict.fromkeys(table["unit"].tolist()):
        arm = table["arm"][np.flatnonzero(table["unit"] == unit)[0]]
        arrays = load_record(folder / unit).arrays
        for name, key in (("trained", "centres"), ("twin", "twin_centres")):
            spread.setdefault((str(arm), name), []).append(
                [centre_spread(c) for c in arrays[key]])
    return table, {k: np.asarray(v) for k, v in spread.items()}

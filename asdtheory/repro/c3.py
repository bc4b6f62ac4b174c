"""C3's verdicts from the records of experiment ``c3`` (``asdtheory.experiments.c3``): the
pre-registered :data:`~asdtheory.experiments.c3.CRITERIA`, each comparison decided by
``claims.decide`` on a hierarchical-bootstrap interval over seeds and clips, the reference
rows (untrained twin, level detector) and the settling check. Notebook 03 calls these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np

from asdtheory.experiments.c3 import CRITERIA, METHODS, SNRS
from asdtheory.experiments.records import unsettled_runs as unsettled
from asdtheory.repro import claims
from asdtheory.repro._ranking import group_hmean as _hmean

__all__ = ["ANALYSIS_SEED", "analyse", "contrast", "hmean_table", "unsettled",
           "versus_references"]

UNIT = "hmean"
# The bootstrap's own key, never a unit's or the calibration's.
ANALYSIS_SEED = 31


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
            criteria: Mapping = CRITERIA) -> list[claims.ClaimResult]:
    """The verdict of every claim of ``criteria`` from ``experiments.load_table("c3", size)``
    (pure: the same table gives the same results)."""
    return claims.judge(criteria, lambda spec, terms, key: contrast(
        table, terms, key=key, n_resamples=n_resamples), seed=ANALYSIS_SEED, unit=UNIT)


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

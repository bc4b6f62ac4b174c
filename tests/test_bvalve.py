"""The bvalve experiment: its grid and detector settings, the join with c4's records, the
criteria, and one real unit that pairs clip by clip with c4's fixed-centre system."""

import jax
import numpy as np
import pytest

from asdtheory.data import dcase
from asdtheory.experiments import bvalve, c4
from asdtheory.repro import c4 as c4_verdicts
from asdtheory.repro import claims

SHARED = dcase.data_root()
needs_data = pytest.mark.skipif(
    not (SHARED / "mimii" / "fan").is_dir() or not (SHARED / "dcase2020t2").is_dir(),
    reason="the real recordings of ../shared/data (set ASDTHEORY_DATA)")


def test_units_are_c4s_replicates_with_trainable_centres_and_adaproj():
    grid = bvalve.units("standard")
    spec = c4.SIZES["standard"]
    assert len(grid) == len(bvalve.METHODS) * spec["folds"] * spec["seeds"]
    reference = next(u for u in c4.units("standard")
                     if u.factors["method"] == "subcluster-adacos")
    for unit in grid:
        assert unit.config["snrs"] == ["clean", "0"]
        detector = unit.config["detector"]
        trainable = unit.factors["method"].endswith(bvalve.TRAINABLE)
        assert detector["trainable_centres"] is trainable
        assert detector["method"] == unit.factors["method"].removesuffix(bvalve.TRAINABLE)
        # everything but the method and its centres is the reference system's
        same = {k: v for k, v in detector.items() if k not in ("method", "trainable_centres",
                                                                "mixup_alpha")}
        assert same == {k: v for k, v in reference.config["detector"].items() if k in same}
        for key in ("data", "seconds", "width", "steps", "batch_size", "noises"):
            assert unit.config[key] == reference.config[key]


def _rows(method, task, fold, seed, snr, score):
    n = score.size
    return {"method": [method] * n, "task": [task] * n, "fold": [fold] * n, "seed": [seed] * n,
            "snr": [snr] * n, "clip": list(range(n)), "file": [f"c{i}_snr_{snr}.wav"
                                                              for i in range(n)],
            "machine": ["valve"] * n, "domain": (["source", "target"] * n)[:n],
            "label": [i % 4 >= 2 for i in range(n)], "score": score,
            "twin_score": score[::-1], "level_score": -score}


def _tables(effect: float, *, c4_replicates=((0, 0), (0, 1), (1, 0), (1, 1))):
    rng = np.random.default_rng(int(10 * effect) + 3)
    label = np.asarray([i % 4 >= 2 for i in range(80)], float)
    own, other = {}, {}
    for table, variants, replicates in (
            (own, [(m, "joint") for m in bvalve.METHODS], ((0, 0), (0, 1), (1, 0), (1, 1))),
            (other, [("subcluster-adacos", "joint"), ("deep-svdd", "joint")], c4_replicates)):
        for method, task in variants:
            for fold, seed in replicates:
                for snr in ("clean", "6", "0"):
                    if table is own and snr == "6":
                        continue
                    shift = effect if method == bvalve.METHODS[0] else 0.0
                    rows = _rows(method, task, fold, seed, snr,
                                 rng.normal(size=80) + (1.0 + shift) * label)
                    for name, values in rows.items():
                        table.setdefault(name, []).extend(values)
    return ({k: np.asarray(v) for k, v in own.items()},
            {k: np.asarray(v) for k, v in other.items()})


def test_the_joined_table_decides_both_claims():
    own, other = _tables(3.0)
    joined = bvalve.table(own, other)
    # c4's fixed-centre rows at clean and 0 dB only, nothing of its other methods or SNRs
    assert set(zip(joined["method"], joined["snr"], strict=True)) == {
        (m, s) for m in (*bvalve.METHODS, "subcluster-adacos") for s in ("clean", "0")}
    results = {r.id: r for r in c4_verdicts.analyse(joined, criteria=bvalve.CRITERIA,
                                                    n_resamples=200)}
    assert list(results) == ["B1.valve", "B3.valve"]
    assert results["B1.valve"].verdict == claims.SUPPORTED  # trainable: a large effect
    assert results["B3.valve"].verdict != claims.SUPPORTED  # AdaProj: none
    # every arm beside its twin and the level detector, on the valve's clips
    scores = c4_verdicts.score_table(joined, machines=["valve"], variants=bvalve.VARIANTS)
    assert set(scores) == {(m, "joint", s, d) for m, _ in bvalve.VARIANTS
                           for s in ("clean", "0") for d in ("trained", "twin", "level")}
    trainable, fixed = (scores[m, "joint", "clean", "trained"].mean()
                        for m in (bvalve.METHODS[0], "subcluster-adacos"))
    assert trainable > fixed
    references = c4_verdicts.versus_references(joined, machines=["valve"],
                                               variants=bvalve.VARIANTS, n_resamples=100)
    assert set(references) == {(m, "joint", s, r) for m, _ in bvalve.VARIANTS
                               for s in ("clean", "0") for r in ("twin", "level")}
    with pytest.raises(ValueError, match="run both at the same size"):
        bvalve.table(own, _tables(0.0, c4_replicates=((0, 0),))[1])


def test_the_criteria_are_complete():
    for spec in bvalve.CRITERIA.values():
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        assert spec["machines"] == ["valve"]
        for terms in spec["comparisons"].values():
            assert sum(w for w, *_ in terms) == 0
            assert terms[1][1:3] == ("subcluster-adacos", "joint")


@needs_data
@pytest.mark.filterwarnings("ignore:n_clusters=16 exceeds the source training clips")
def test_a_smoke_unit_pairs_with_c4s_unit_of_the_same_seed():
    unit = next(u for u in bvalve.units("smoke") if u.factors["method"] == "adaproj")
    reference = next(u for u in c4.units("smoke") if u.factors["method"] == "subcluster-adacos")
    def short(config):  # a few optimiser steps: the pairing needs no trained system
        return {**config, "snrs": ["0"], "detector": {**config["detector"], "steps": 20}}

    mine = c4.compute(short(unit.config), jax.random.key(0))
    theirs = c4.compute(short(reference.config), jax.random.key(0))
    # the same test clips and the same level detector (same noise offsets)
    assert np.array_equal(mine.clips["file"], theirs.clips["file"])
    np.testing.assert_array_equal(mine.clips["level_score"], theirs.clips["level_score"])
    assert not np.array_equal(mine.scores, theirs.scores)  # another loss trained

"""Experiment ``bdyn`` (B4, B5): declaration, one unit of each kind computed, the effects
against hand computation and every verdict path of ``repro.bdyn``."""

import jax
import numpy as np
import pytest

from asdtheory import losses
from asdtheory.experiments import bdyn
from asdtheory.repro import bdyn as bdyn_verdicts
from asdtheory.repro import claims


def test_declaration():
    for size, spec in bdyn.SIZES.items():
        units = bdyn.units(size)
        assert len(units) == spec["seeds"] * (len(bdyn.NC_RUNS) + len(bdyn.SCALE_RUNS))
        assert len({u.id for u in units}) == len(units)
    for claim_id, spec in bdyn.CRITERIA.items():
        assert {"statement", "unit", "comparisons", "delta", "delta_reason",
                "criterion"} <= set(spec), claim_id
        assert spec["delta"] > 0
    runs = {t if isinstance(t, str) else t[0]
            for spec in bdyn.CRITERIA.values() for t in spec["comparisons"].values()}
    # every run is judged except the code variant with one sub-cluster (recorded only)
    assert runs == set(bdyn.NC_RUNS + bdyn.SCALE_RUNS) - {"scale-m1-code"}


def _unit(run):
    return next(u for u in bdyn.units("smoke") if u.factors["run"] == run)


def test_a_scale_unit_is_deterministic_and_records_its_trajectory():
    config = _unit("scale-m4-code").config
    first, second = (bdyn.compute(config, jax.random.key(config["seed"])) for _ in range(2))
    np.testing.assert_array_equal(first.arrays["scale_curve"], second.arrays["scale_curve"])
    s = first.arrays["scale_curve"]
    assert s.shape == (config["scale_steps"],)
    s0 = losses.adacos_fixed_scale(config["scale_classes"], 4)
    assert first.clips["s0"][0] == pytest.approx(s0)
    assert first.scores[0] == pytest.approx(np.log10(np.max(s) / s0))
    assert np.isnan(first.clips["nc1_final"][0])


def test_a_neural_collapse_unit_records_its_curves_and_floor():
    config = _unit("nc-fixed").config
    record = bdyn.compute(config, jax.random.key(config["seed"]))
    n = config["classes"] * config["modes_per_class"] * config["train_per_mode"]
    assert record.scores.shape == (n,) and record.clips["twin_compactness"].shape == (n,)
    for name in bdyn.B4_MEASURES:
        assert record.arrays[f"{name}_curve"].shape == (config["epochs"] + 1,)
    assert record.clips["nc1_initial"][0] == record.arrays["nc1_curve"][0]
    assert record.clips["nc3_floor"][0] > 0  # random centres do not sum to zero
    # the final compactness per sample averages to the callback's last value
    assert record.scores.mean() == pytest.approx(record.arrays["compactness_curve"][-1],
                                                 rel=1e-5)


def test_effects_against_hand_computation():
    v = {"nc1_initial": 1.0, "nc1_final": 0.01, "nc3_initial": 2.2, "nc3_final": 0.22,
         "nc3_floor": 0.2, "nc4_final": 0.005, "compactness_initial": 2.0,
         "compactness_final": 0.2, "log10_max_scale": 0.5, "samples": 512}
    assert bdyn_verdicts.effect("NC1", v) == pytest.approx(1.0)   # a hundredth: 1 decade past
    assert bdyn_verdicts.effect("NC3", v) == pytest.approx(1.0)   # 0.02 of 2.0 from the floor
    assert bdyn_verdicts.effect("NC4", v) == pytest.approx(1.0)   # 0.005 vs 0.05
    assert bdyn_verdicts.effect("compactness", v) == pytest.approx(1.0)
    assert bdyn_verdicts.effect("faithful", v) == pytest.approx(0.5)
    assert bdyn_verdicts.effect("code", v) == pytest.approx(-2.5)
    # NC4 = 0 counts as half a sample; NC3 at or below its floor as a millionth of the start
    assert bdyn_verdicts.effect("NC4", v | {"nc4_final": 0.0}) == pytest.approx(
        np.log10(0.05 * 1024))
    assert bdyn_verdicts.effect("NC3", v | {"nc3_final": 0.1}) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="unknown measure"):
        bdyn_verdicts.effect("NC9", v)


def _table(values, *, seeds=5, settling=0.0, samples=512):
    """A bdyn-shaped table: ``values(run, seed)`` gives a unit's columns (the rest NaN),
    repeated on each of its ``samples`` rows (B4) or on its one row (B5)."""
    columns = {name: [] for name in ("unit", "run", "seed", "score", *bdyn.COLUMNS)}
    for run in bdyn.NC_RUNS + bdyn.SCALE_RUNS:
        for seed in range(seeds):
            v = values(run, seed)
            n = samples if run in bdyn.NC_RUNS else 1
            columns["unit"] += [f"run={run},seed={seed}"] * n
            columns["run"] += [run] * n
            columns["seed"] += [seed] * n
            columns["score"] += [0.0] * n
            for name in bdyn.COLUMNS:
                columns[name] += [v.get(name, settling if name == "loss_settling"
                                        else np.nan)] * n
    return {k: np.asarray(v) for k, v in columns.items()}


def _values(collapse: float, growth: float):
    """NC runs that fall ``collapse`` decades past every threshold; faithful scales at
    10^(1 - growth) s0 and code scales at 10^(3 + growth) s0, with a little seed noise."""
    def values(run, seed):
        jitter = 0.01 * (seed - 2)
        d = 10.0 ** -(collapse + jitter)
        if run in bdyn.NC_RUNS:
            return {"nc1_initial": 1.0, "nc1_final": 0.1 * d, "nc3_initial": 1.2,
                    "nc3_final": 0.2 + 0.1 * d, "nc3_floor": 0.2, "nc4_final": 0.05 * d,
                    "compactness_initial": 2.0, "compactness_final": 2.0 * d}
        if run.endswith("faithful"):
            return {"log10_max_scale": 1.0 - growth + jitter}
        return {"log10_max_scale": 3.0 + growth + jitter}
    return values


@pytest.mark.parametrize("size, verdict", [(1.0, claims.SUPPORTED),
                                           (-1.0, claims.CONTRADICTED)])
def test_analyse_decides_both_ways(size, verdict):
    results = {r.id: r for r in bdyn_verdicts.analyse(_table(_values(size, size)))}
    assert set(results) == set(bdyn.CRITERIA)
    for claim_id, result in results.items():
        assert result.verdict == verdict, (claim_id, result.summary)
        for part in result.parts:
            assert part.interval.estimate == pytest.approx(size, abs=1e-9)


def test_analyse_is_inconclusive_when_the_seeds_disagree():
    def values(run, seed):
        return _values(1.0 if seed % 2 else -1.0, 1.0 if seed % 2 else -1.0)(run, 2)

    for result in bdyn_verdicts.analyse(_table(values, seeds=4)):
        assert result.verdict == claims.INCONCLUSIVE and result.detectable


def test_an_unsettled_training_caps_b4_only():
    table = _table(_values(1.0, 1.0), settling=0.5)
    assert len(bdyn_verdicts.unsettled(table)) == 5 * len(bdyn.NC_RUNS)
    results = {r.id: r for r in bdyn_verdicts.analyse(table)}
    assert results["B4"].verdict == claims.SUPPORTED
    verdict, detectable = bdyn_verdicts.verdict(results["B4"], table)
    assert verdict == claims.INCONCLUSIVE and "settled runs" in detectable
    assert bdyn_verdicts.verdict(results["B5"], table) == (claims.SUPPORTED, None)

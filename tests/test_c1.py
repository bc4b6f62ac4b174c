"""The C1 experiment: declaration, the smoke size through the runner, the measures against
naive references, the criteria, and the verdict paths of the analysis."""

import jax
import numpy as np
import pytest
from scipy import stats

from asdtheory import experiments, train
from asdtheory.experiments import c1
from asdtheory.repro import c1 as c1_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("c1", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed
    return experiments.load_table("c1", "smoke", results_dir=results), results


def test_smoke_records_hold_the_curves_and_measures(smoke):
    table, results = smoke
    assert set(table["method"].tolist()) == set(c1.METHODS)
    folder = experiments.records.size_folder(results, "c1", "smoke")
    for unit in c1.units("smoke"):
        rows = table["unit"] == unit.id
        record = experiments.load_record(folder / unit.id)
        epochs = record.arrays["loss_curve"].size
        per_epoch = -(-int(rows.sum()) // unit.config["batch_size"])
        assert epochs == -(-unit.config["steps"] // per_epoch)
        for name in ("loss_s0_curve", "compactness_curve", "scale_curve"):
            assert record.arrays[name].shape == (epochs,)
        # the recorded per-unit values are those of the recorded curves
        assert table["loss_settling"][rows][0] == train.settling(record.arrays["loss_curve"])
        assert table["spearman"][rows][0] == pytest.approx(stats.spearmanr(
            record.arrays["loss_s0_curve"], record.arrays["compactness_curve"]).statistic)
        # the last epoch's mean compactness is the mean of the per-sample final values
        assert np.mean(table["score"][rows]) == pytest.approx(
            record.arrays["compactness_curve"][-1], rel=1e-5)
        assert np.all(table["twin_compactness"][rows] > 0)
    results_ = c1_verdicts.analyse(table, n_resamples=200)
    assert [r.id for r in results_] == list(c1.CRITERIA)
    assert all(len(r.parts) == len(c1.METHODS) for r in results_)


def test_a_unit_is_deterministic():
    config = next(u for u in c1.units("smoke") if u.factors["method"] == "adacos").config
    first, second = (c1.compute(config, jax.random.key(1)) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name, values in first.arrays.items():
        np.testing.assert_array_equal(values, second.arrays[name])


def test_reduction_and_t_interval_match_naive_references():
    rng = np.random.default_rng(0)
    c, t = rng.gamma(2.0, size=(3, 40)), rng.gamma(2.0, size=(3, 40)) + 1
    for r in range(3):
        want = 1 - (sum(c[r]) / len(c[r])) / (sum(t[r]) / len(t[r]))
        assert c1_verdicts.reduction(c[r], t[r]) == pytest.approx(want)
        assert c1_verdicts.reduction(c, t)[r] == pytest.approx(want)
    v = [0.2, 0.5, 0.1, 0.4, 0.3]
    mean = sum(v) / 5
    sd = (sum((x - mean) ** 2 for x in v) / 4) ** 0.5
    half = 2.7764451051977987 * sd / 5 ** 0.5  # t(0.975, 4)
    interval = c1_verdicts.t_interval(v)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(
        (mean, mean - half, mean + half))


def test_spearman_matches_a_naive_rank_correlation():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=30), rng.normal(size=30)
    b[:10] = a[:10]

    def ranks(x):
        return [sorted(x).index(v) + 1 for v in x]  # no ties here

    ra, rb = ranks(list(a)), ranks(list(b))
    n = len(a)
    want = 1 - 6 * sum((p - q) ** 2 for p, q in zip(ra, rb, strict=True)) / (n * (n * n - 1))
    assert c1.spearman(a, b) == pytest.approx(want)
    assert np.isnan(c1.spearman(np.ones(5), np.arange(5)))


def test_sizes_and_criteria():
    standard = c1.units("standard")
    assert {u.factors["method"] for u in standard} == set(c1.METHODS)
    assert len({u.factors["seed"] for u in standard}) >= 10
    assert len({u.config["steps"] for u in standard}) == 1
    assert list(c1.CRITERIA) == ["C1.c compactness", "C1.c together"]
    for spec in c1.CRITERIA.values():
        assert set(spec) == {"statement", "measure", "unit", "comparisons", "delta",
                             "delta_reason", "criterion"}
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        assert list(spec["comparisons"]) == list(c1.METHODS)


def _table(effect: float, *, seeds: int = 6, per_class: int = 30, rho: float = 0.95,
           settled: bool = True):
    """A c1-shaped table whose trained compactness is (1 - effect) x the untrained one."""
    rng = np.random.default_rng(seeds)
    cols = {k: [] for k in ("unit", "method", "seed", "aux_class", "score", "twin_compactness",
                            "spearman", "spearman_training_loss", "loss_settling",
                            "final_loss")}
    n = 8 * per_class
    for method in c1.METHODS:
        for seed in range(seeds):
            twin = rng.uniform(1.5, 2.5, n)
            values = {"unit": f"method={method},seed={seed}", "method": method, "seed": seed,
                      "spearman": rho + rng.normal(0, 0.02), "spearman_training_loss": 0.0,
                      "loss_settling": 0.01 if settled else 0.2, "final_loss": 0.1}
            for k, v in values.items():
                cols[k].append(np.full(n, v))
            cols["aux_class"].append(np.repeat(np.arange(8), per_class))
            cols["twin_compactness"].append(twin)
            cols["score"].append(np.clip(twin * (1 - effect) + rng.normal(0, 0.3, n), 0, 4))
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_analyse_on_constructed_tables():
    table = _table(0.7)
    results = c1_verdicts.analyse(table, n_resamples=200)
    assert {r.verdict for r in results} == {claims.SUPPORTED}
    assert c1_verdicts.verdict(results, table) == (claims.SUPPORTED, None)
    # no reduction and no correlation: excluded
    table = _table(0.0, rho=0.0, per_class=60)
    results = c1_verdicts.analyse(table, n_resamples=200)
    assert {r.verdict for r in results} == {claims.CONTRADICTED}
    # a large effect on runs that have not settled is no verdict
    table = _table(0.7, settled=False)
    results = c1_verdicts.analyse(table, n_resamples=200)
    verdict, detectable = c1_verdicts.verdict(results, table)
    assert verdict == claims.INCONCLUSIVE and "settled" in detectable
    rows = c1_verdicts.per_unit(_table(0.7))
    assert rows["adacos"]["reduction"] == pytest.approx(np.full(6, 0.7), abs=0.05)

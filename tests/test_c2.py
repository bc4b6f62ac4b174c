"""The C2 experiment: declaration, smoke units through the runner, the collapse measure and
training accuracy against naive references, the criteria, and the verdict paths."""

import jax
import numpy as np
import pytest

from asdtheory import experiments, models, train
from asdtheory.experiments import c2
from asdtheory.repro import c2 as c2_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("c2", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed
    return experiments.load_table("c2", "smoke", results_dir=results), results


def test_smoke_records_hold_every_weight_decay(smoke):
    table, results = smoke
    assert set(table["method"].tolist()) == set(c2.METHODS)
    assert set(table["weight_decay"].astype(str).tolist()) == set(c2.WEIGHT_DECAYS)
    folder = experiments.records.size_folder(results, "c2", "smoke")
    unit = "method=svdd-all,seed=1"
    record = experiments.load_record(folder / unit)
    for wd in c2.WEIGHT_DECAYS:
        rows = (table["unit"] == unit) & (table["weight_decay"].astype(str) == wd)
        assert table["loss_settling"][rows][0] == train.settling(record.arrays[f"loss_curve_{wd}"])
        # the last epoch's spread is the recorded collapse measure
        assert record.arrays[f"spread_curve_{wd}"][-1] == pytest.approx(
            table["rel_spread"][rows][0], rel=1e-6)
    svdd = np.isin(table["method"], list(c2.SVDD))
    assert np.all(np.isnan(table["train_accuracy"][svdd]))
    ok = table["diverged"] == 0
    assert np.all(np.isfinite(table["rel_spread"][ok]))
    assert np.all((table["train_accuracy"][~svdd & ok] >= 0)
                  & (table["train_accuracy"][~svdd & ok] <= 1))
    np.testing.assert_allclose(table["prior_entropy"], np.log(4))
    results_ = c2_verdicts.analyse(table)
    assert [r.id for r in results_] == list(c2.CRITERIA)
    rows = c2_verdicts.per_run(table)
    assert set(rows) == {(m, w) for m in c2.METHODS for w in c2.WEIGHT_DECAYS}
    # 64 steps cannot all settle; the gate says so
    assert c2_verdicts.unsettled(table)


def _naive_spread(z):
    mean = [sum(row[j] for row in z) / len(z) for j in range(len(z[0]))]
    return (sum(sum((row[j] - mean[j]) ** 2 for j in range(len(row))) for row in z)
            / len(z)) ** 0.5


def test_relative_spread_matches_a_naive_reference():
    rng = np.random.default_rng(0)
    z, z0 = rng.normal(size=(20, 5)) * 0.1 + 3, rng.normal(size=(20, 5))
    assert c2.relative_spread(z, z0, normalise=False) == pytest.approx(
        _naive_spread(z.tolist()) / _naive_spread(z0.tolist()))
    unit = [list(row / np.sqrt(sum(x * x for x in row))) for row in z]
    unit0 = [list(row / np.sqrt(sum(x * x for x in row))) for row in z0]
    assert c2.relative_spread(z, z0, normalise=True) == pytest.approx(
        _naive_spread(unit) / _naive_spread(unit0))
    # scale-free: a common rescaling of the embeddings leaves it unchanged
    assert c2.relative_spread(7 * z, 7 * z0, normalise=False) == pytest.approx(
        c2.relative_spread(z, z0, normalise=False))
    assert c2.relative_spread(np.ones((20, 5)), z0, normalise=False) == 0


@pytest.mark.parametrize("method", ["adacos", "adaproj", "subcluster-adacos"])
def test_training_accuracy_is_the_nearest_class_by_angle(method):
    from flax import nnx

    from asdtheory.experiments._toynets import head_options, predicted_class

    head = models.make_head(method, embed_dim=6, num_classes=3, rngs=nnx.Rngs(0),
                            **head_options(method))
    z = np.random.default_rng(1).normal(size=(15, 6))
    centres = np.asarray(head.centres[...], np.float64)
    want = []
    for row in z:
        u = row / np.linalg.norm(row)
        if method == "adaproj":  # cosine with the projection onto each class subspace
            cos = [np.linalg.norm(np.linalg.qr(c.T)[0].T @ u) for c in centres]
        elif centres.ndim == 3:  # nearest sub-centre
            cos = [max(s @ u / np.linalg.norm(s) for s in c) for c in centres]
        else:
            cos = [c @ u / np.linalg.norm(c) for c in centres]
        want.append(int(np.argmax(cos)))
    np.testing.assert_array_equal(predicted_class(head, z, 3), want)


def test_a_unit_is_deterministic():
    config = next(u for u in c2.units("smoke") if u.factors["method"] == "svdd-bias").config
    first, second = (c2.compute(config, jax.random.key(3)) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name, values in first.arrays.items():
        np.testing.assert_array_equal(values, second.arrays[name])
    # every weight decay starts from the same untrained network
    n = first.scores.size // len(c2.WEIGHT_DECAYS)
    twins = first.clips["twin_score"].reshape(len(c2.WEIGHT_DECAYS), n)
    assert all(np.array_equal(twins[0], t) for t in twins[1:])


def test_sizes_and_criteria():
    for size in experiments.SIZES:
        units = c2.units(size)
        assert {u.factors["method"] for u in units} == set(c2.METHODS)
        assert len({u.config["steps"] for u in units}) == 1
        assert all(u.config["weight_decays"] == list(c2.WEIGHT_DECAYS) for u in units)
    # the angular networks carry all of Ruff et al.'s ingredients (AdaProj has no centres)
    for method in c2.ANGULAR:
        net = c2.method_settings(method)
        assert net["use_bias"] and net["activation"] == "sigmoid"
        assert net["trainable_centres"] == (method != "adaproj")
    assert c2.method_settings("svdd-control") == {"use_bias": False, "trainable_centres": False,
                                                  "activation": "relu", "head": {}}
    assert list(c2.CRITERIA) == ["C2.a.2", "C2.b", "C2.b task"]
    for spec in c2.CRITERIA.values():
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        parts = set(spec["comparisons"].values())
        assert {wd for _, wd, _ in parts} == set(c2.WEIGHT_DECAYS)
    a2 = c2.CRITERIA["C2.a.2"]["comparisons"].values()
    assert {m for m, _, _ in a2} == set(c2.SVDD)
    assert all((sign < 0) == (m == "svdd-control") for m, _, sign in a2)
    assert c2.CRITERIA["C2.a.2"]["threshold"] == c2.COLLAPSE_BELOW


def _table(*, svdd_spread: float, control_spread: float, angular_spread: float,
           accuracy: float, seeds: int = 6, settled: bool = True):
    """A c2-shaped table (one row per run suffices for the analysis)."""
    rng = np.random.default_rng(seeds)
    cols = {k: [] for k in ("unit", "method", "seed", "weight_decay", "label", "score",
                            "twin_score", *c2_verdicts.FIELDS)}
    for method in c2.METHODS:
        for seed in range(seeds):
            for wd in c2.WEIGHT_DECAYS:
                spread = (control_spread if method == "svdd-control" else svdd_spread
                          if method in c2.SVDD else angular_spread)
                acc = float("nan") if method in c2.SVDD else accuracy + rng.normal(0, 0.02)
                row = {"unit": f"method={method},seed={seed}", "method": method, "seed": seed,
                       "weight_decay": wd, "diverged": 0,
                       "rel_spread": spread * 10 ** rng.normal(0, 0.1),
                       "train_accuracy": acc, "final_loss": 0.1, "initial_loss": 1.0,
                       "prior_entropy": np.log(4), "loss_settling": 0.01 if settled else 0.3,
                       "spread_settling": 0.01}
                for k, v in row.items():
                    cols[k].append(np.full(4, v))
                cols["label"].append(np.r_[0, 0, 1, 1])
                cols["score"].append(rng.normal(size=4))
                cols["twin_score"].append(rng.normal(size=4))
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_analyse_on_constructed_tables():
    table = _table(svdd_spread=1e-5, control_spread=0.5, angular_spread=1.0, accuracy=0.95)
    results = c2_verdicts.analyse(table)
    assert {r.id: r.verdict for r in results} == dict.fromkeys(c2.CRITERIA, claims.SUPPORTED)
    assert all(c2_verdicts.verdict(r, table) == (claims.SUPPORTED, None) for r in results)
    # nothing collapses and the angular losses do not learn: C2.a.2 and "task" are not
    # supported, C2.b (no collapse) still is
    table = _table(svdd_spread=0.5, control_spread=0.5, angular_spread=1.0, accuracy=0.25)
    verdicts = {r.id: r.verdict for r in c2_verdicts.analyse(table)}
    assert verdicts == {"C2.a.2": claims.CONTRADICTED, "C2.b": claims.SUPPORTED,
                        "C2.b task": claims.CONTRADICTED}
    # C2.a.2 is an existence claim over the weight decays: a collapse at the largest one only
    # supports it ...
    largest = c2.WEIGHT_DECAYS[-1]
    table = _table(svdd_spread=0.5, control_spread=0.5, angular_spread=1.0, accuracy=0.95)
    table["rel_spread"][np.isin(table["method"], [m for m in c2.SVDD if m != "svdd-control"])
                        & (table["weight_decay"] == largest)] = 1e-5
    assert c2_verdicts.analyse(table)[0].verdict == claims.SUPPORTED
    # ... but the control must stay uncollapsed at every weight decay
    table["rel_spread"][(table["method"] == "svdd-control")
                        & (table["weight_decay"] == largest)] = 1e-5
    assert c2_verdicts.analyse(table)[0].verdict == claims.CONTRADICTED
    # the control collapsing as well contradicts C2.a.2
    table = _table(svdd_spread=1e-5, control_spread=1e-5, angular_spread=1.0, accuracy=0.95)
    assert c2_verdicts.analyse(table)[0].verdict == claims.CONTRADICTED
    # unsettled runs: no verdict
    table = _table(svdd_spread=1e-5, control_spread=0.5, angular_spread=1.0, accuracy=0.95,
                   settled=False)
    verdict, detectable = c2_verdicts.verdict(c2_verdicts.analyse(table)[0], table)
    assert verdict == claims.INCONCLUSIVE and "settled" in detectable


def test_a_spread_below_float32_resolution_counts_as_the_floor():
    spec = c2.CRITERIA["C2.a.2"]
    run = {"rel_spread": np.array([0.0, 1e-11, c2_verdicts.SPREAD_FLOOR, 1e-3])}
    collapse = c2_verdicts.effect(spec, run, 1.0)
    floor = np.log10(spec["threshold"]) - np.log10(c2_verdicts.SPREAD_FLOOR)
    np.testing.assert_allclose(collapse, [floor, floor, floor, 1.0])
    # a constant map is as far below the threshold as float32 can tell, not 300 decades
    assert 4.9 < floor < 5.0


def test_a_diverged_run_leaves_its_part_undecided():
    table = _table(svdd_spread=1e-5, control_spread=0.5, angular_spread=1.0, accuracy=0.95)
    rows = (table["method"] == "adacos") & (table["weight_decay"] == "1e-2") & (
        table["seed"] == 0)
    table["diverged"][rows] = 1
    table["rel_spread"][rows] = np.nan
    table["train_accuracy"][rows] = np.nan
    results = {r.id: r for r in c2_verdicts.analyse(table)}
    assert results["C2.b"].verdict == claims.INCONCLUSIVE
    part = next(p for p in results["C2.b"].parts if p.name == "adacos wd=1e-2")
    assert part.decision.verdict == claims.INCONCLUSIVE

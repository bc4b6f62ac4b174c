"""The C3 experiment: declaration, determinism, calibration, criteria and every verdict path."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from asdtheory import evaluation, experiments
from asdtheory.experiments import c3
from asdtheory.repro import c3 as c3_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke_table(tmp_path_factory):
    """The smoke size computed by the runner (one process per unit), loaded as the table."""
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("c3", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed
    return experiments.load_table("c3", "smoke", results_dir=results)


def test_smoke_table_has_the_whole_grid(smoke_table):
    table = smoke_table
    assert set(table["method"].tolist()) == set(c3.METHODS)
    assert set(table["snr"].tolist()) == set(c3.SNRS)
    assert set(table["seed"].tolist()) == {0, 1}
    assert set(table["anomaly_type"].tolist()) == {"none", *c3.TYPES}
    for column in ("score", "twin_score", "level_score", "loss_settling"):
        assert np.all(np.isfinite(table[column]))
    # the level detector needs no training: the same at every method of a seed and SNR
    one = (table["seed"] == 0) & (table["snr"] == "0")
    levels = [table["level_score"][one & (table["method"] == m)] for m in c3.METHODS]
    assert all(np.array_equal(levels[0], other) for other in levels[1:])


def test_analyse_on_smoke_records(smoke_table):
    results = c3_verdicts.analyse(smoke_table, n_resamples=100)
    assert [r.id for r in results] == list(c3.CRITERIA)
    for result in results:
        assert result.verdict in claims.VERDICTS
        assert len(result.parts) == len(c3.CRITERIA[result.id]["comparisons"])
    rows = c3_verdicts.hmean_table(smoke_table)
    assert len(rows) == len(c3.METHODS) * len(c3.SNRS) * 3
    assert all(v.shape == (2,) for v in rows.values())
    # six steps in two epochs cannot settle: the check must say so
    assert len(c3_verdicts.unsettled(smoke_table)) == len(c3.METHODS) * len(c3.SNRS) * 2


def _unit(method: str):
    return next(u for u in c3.units("smoke") if u.factors["method"] == method)


@pytest.mark.parametrize("method", ["subcluster-adacos", "softmax"])
def test_units_are_deterministic(method):
    config = _unit(method).config
    first, second = (c3.compute(config, jax.random.key(config["seed"])) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name in ("twin_score", "level_score"):
        np.testing.assert_array_equal(first.clips[name], second.clips[name])
    np.testing.assert_array_equal(first.arrays["loss_curve"], second.arrays["loss_curve"])
    # the trained system and its untrained twin differ: training happened
    assert not np.array_equal(first.scores, first.clips["twin_score"])


def test_noise_is_mixed_at_a_label_free_level_per_machine():
    config = {**_unit("deep-svdd").config, "strength": 4.0}
    sounds, is_train = c3._sounds(config, jax.random.key(0))
    noisy = c3._with_noise(sounds, is_train, "0", config["noises"], jax.random.key(1))
    noise_power = np.mean((noisy - sounds.waveforms) ** 2, axis=1)
    for m in np.unique(sounds.machine):
        rows = sounds.machine == m
        reference = np.mean(sounds.waveforms[rows & is_train] ** 2)
        # 0 dB: every clip of the machine, normal or anomalous, gets the same noise power
        np.testing.assert_allclose(noise_power[rows], reference, rtol=1e-3)
    assert np.array_equal(c3._with_noise(sounds, is_train, "clean", config["noises"], None),
                          sounds.waveforms)


def test_the_calibration_file_is_the_declaration():
    stored = json.loads(c3.CALIBRATION_FILE.read_text())
    assert stored == c3.CALIBRATION
    for size in experiments.SIZES:
        units = c3.units(size)
        assert {u.config["strength"] for u in units} == {stored["chosen_strength"]}
        # the calibration's key is no unit's
        assert stored["seed"] not in {u.factors["seed"] for u in units}
    assert stored["seed"] == c3.CALIBRATION_SEED
    best = {s: max(v.values()) for s, v in stored["hmean_at_0db"].items()}
    assert best[str(stored["chosen_strength"])] == stored["best_hmean_at_0db"]
    middle = sum(stored["target"]) / 2
    assert stored["best_hmean_at_0db"] == min(best.values(), key=lambda h: abs(h - middle))


def test_sizes():
    for size in experiments.SIZES:
        units = c3.units(size)
        assert {u.factors["method"] for u in units} == set(c3.METHODS)
        # equal optimiser steps for every method
        assert len({c3.detector_config(u.config).steps for u in units}) == 1
    standard = c3.units("standard")
    assert len({u.factors["seed"] for u in standard}) >= 20
    assert len(c3.units("smoke")) == len(c3.METHODS) * 2


def test_the_criteria_are_complete():
    assert list(c3.CRITERIA) == ["C3.a", "C3.b", "C3.c", "C3.d"]
    for spec in c3.CRITERIA.values():
        assert set(spec) == {"statement", "comparisons", "delta", "delta_reason", "criterion"}
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        for terms in spec["comparisons"].values():
            assert sum(w for w, _, _ in terms) == 0  # a contrast: chance cancels
            assert all(m in c3.METHODS and c in c3.SNRS for _, m, c in terms)
    compared = {m for spec in c3.CRITERIA.values() for terms in spec["comparisons"].values()
                for _, m, _ in terms}
    assert compared == set(c3.METHODS)


def test_fast_hmean_is_group_metrics():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(12, 60))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        machine = rng.integers(0, 3, n)
        machine[:6] = [0, 0, 1, 1, 2, 2]
        y[:6] = [0, 1, 0, 1, 0, 1]
        s = np.round(rng.normal(size=n) + 0.7 * y, 1 if trial % 2 else 6)  # ties half the time
        want = evaluation.group_metrics(y, s, machine)["hmean"]
        assert c3_verdicts._hmean(y, s, machine) == pytest.approx(want, abs=1e-12)


def test_fast_hmean_of_many_rows_is_group_metrics_row_by_row():
    rng = np.random.default_rng(1)
    machine = np.repeat([0, 1, 2], 10)
    y = np.tile(np.r_[np.zeros(6, int), np.ones(4, int)], 3)
    # Bootstrap-like rows: repeated clips make ties in every row.
    rows = rng.integers(0, 10, size=(8, 30)) + 10 * machine
    s = np.round(rng.normal(size=30) + y, 2)[rows]
    yy = y[rows]
    want = [evaluation.group_metrics(yy[r], s[r], machine)["hmean"] for r in range(8)]
    assert c3_verdicts._hmean(yy, s, machine) == pytest.approx(want, abs=1e-12)


def _hand_made_table(effect: float, *, seeds: int = 6, clips: int = 40, noise: float = 1.0):
    """A table where (iii) separates anomalies by ``effect`` more than every other method, in
    every SNR; the other methods are pure noise."""
    rng = np.random.default_rng(int(1000 * effect) % 997)
    columns = {name: [] for name in ("method", "snr", "seed", "clip", "label", "machine",
                                     "score", "unit", "loss_settling")}
    for seed in range(seeds):
        labels = np.tile([0, 1], clips // 2)
        machine = np.repeat(["m0", "m1"], clips // 2)
        for method in c3.METHODS:
            for snr in c3.SNRS:
                shift = effect if method == "subcluster-adacos" else 0.0
                columns["score"].append(rng.normal(size=clips) * noise + shift * labels)
                for name, value in (("method", method), ("snr", snr), ("seed", seed),
                                    ("unit", f"method={method},seed={seed}"),
                                    ("loss_settling", 0.0)):
                    columns[name].append(np.full(clips, value))
                columns["clip"].append(np.arange(clips))
                columns["label"].append(labels)
                columns["machine"].append(machine)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


@pytest.mark.parametrize(("effect", "verdicts"), [
    (3.0, {"C3.a": "SUPPORTED", "C3.c": "SUPPORTED", "C3.d": "SUPPORTED"}),
    (-3.0, {"C3.a": "CONTRADICTED", "C3.c": "CONTRADICTED", "C3.d": "CONTRADICTED"}),
    (0.0, {"C3.a": "CONTRADICTED", "C3.c": "CONTRADICTED", "C3.d": "CONTRADICTED"}),
])
def test_analyse_verdicts_on_a_known_table(effect, verdicts):
    table = _hand_made_table(effect, seeds=8, clips=240)
    results = {r.id: r for r in c3_verdicts.analyse(table, n_resamples=100)}
    assert {k: results[k].verdict for k in verdicts} == verdicts
    if effect == 0.0:  # no part can be above 0; the verdict comes from the excluded parts
        parts = [p.decision for r in results.values() for p in r.parts]
        assert all(d.verdict != "SUPPORTED" for d in parts)
        assert any("absent" in d.reading for d in parts)
        return
    # the same advantage at every SNR: no growth, an effect of 0.03 is excluded
    assert results["C3.b"].verdict == "CONTRADICTED"
    if effect < 0:
        assert all("reversed" in p.decision.reading for p in results["C3.a"].parts)


def test_analyse_is_inconclusive_on_a_small_noisy_table():
    table = _hand_made_table(0.3, seeds=3, clips=12)
    results = c3_verdicts.analyse(table, n_resamples=100)
    assert {r.verdict for r in results} == {"INCONCLUSIVE"}
    assert all(r.detectable for r in results)


def test_growth_is_supported_when_the_advantage_grows_as_the_snr_falls():
    table = _hand_made_table(0.0, seeds=8, clips=240)
    rows = (table["method"] == "subcluster-adacos") & (table["snr"] == "0")
    table["score"][rows] += 3.0 * table["label"][rows]
    growth = {r.id: r for r in c3_verdicts.analyse(table, n_resamples=100)}["C3.b"]
    assert growth.verdict == "SUPPORTED"


def test_two_committed_standard_units_recomputed_match_their_records():
    """CI's audit of the evidence: two units of the committed standard records, chosen from
    the commit, are recomputed and compared, bit for bit on the records' CPU type and XLA
    flags, else within the spread of the seeds (``experiments.audit``)."""
    results = experiments.audit("c3", "standard", units=2,
                                results_dir=Path(__file__).resolve().parents[1] / "results")
    assert len(results) == 2
    assert all(r.passed for r in results), [(r.unit, r.rule, r.detail) for r in results]


def test_without_the_noise_recordings_the_run_stops_before_any_unit(tmp_path, monkeypatch,
                                                                      capsys):
    from asdtheory.repro import cli

    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))  # no noise/ folder here
    code = cli.main(["experiment", "run", "c3", "--size", "smoke", "--results",
                     str(tmp_path / "results"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "lacks them; set ASDTHEORY_DATA" in err and "doing_the_dishes" in err
    assert not list((tmp_path / "results").rglob("provenance.json"))  # nothing computed

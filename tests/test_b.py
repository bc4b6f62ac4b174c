"""Experiment ``b`` (B1-B3): declaration, the records of a smoke run, the tie to ``c3``,
the pre-registered criteria and every verdict path of ``repro.b``."""

import dataclasses

import jax
import numpy as np
import pytest

from asdtheory import experiments
from asdtheory.evaluation import PairedDifference
from asdtheory.experiments import b, c3
from asdtheory.repro import b as b_verdicts
from asdtheory.repro import claims


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """The smoke size computed by the runner (one process per unit): the results folder."""
    results = tmp_path_factory.mktemp("results")
    summary = experiments.run("b", "smoke", jobs=2, results_dir=results, progress=False)
    assert not summary.failed
    return results


@pytest.fixture(scope="module")
def smoke(smoke_results):
    return b_verdicts.load("smoke", results_dir=smoke_results)


def test_smoke_table_has_the_whole_grid(smoke):
    table, spread = smoke
    assert set(table["arm"].tolist()) == set(b.ARMS)
    assert set(table["snr"].tolist()) == set(b.SNRS)
    assert set(table["seed"].tolist()) == {0, 1}
    for column in ("score", "twin_score", "kmeans_score", "twin_kmeans_score", "compactness",
                   "twin_compactness", "level_score", "loss_settling"):
        assert np.all(np.isfinite(table[column])), column
    # every arm is scored on the same clips: the level detector, which needs no training,
    # is the same in every arm of a seed and SNR
    one = (table["seed"] == 0) & (table["snr"] == "0")
    levels = [table["level_score"][one & (table["arm"] == a)] for a in b.ARMS]
    assert all(np.array_equal(levels[0], other) for other in levels[1:])
    # training happened: every arm's trained scores differ from its untrained twin's
    for arm in b.ARMS:
        rows = one & (table["arm"] == arm)
        assert not np.array_equal(table["score"][rows], table["twin_score"][rows]), arm
    # the heads' centres: one spread per seed and SNR; fixed centres do not move
    assert set(spread) == {(a, n) for a in b.ARMS for n in ("trained", "twin")}
    assert all(v.shape == (2, len(b.SNRS)) for v in spread.values())
    for arm, settings in b.ARMS.items():
        same = np.array_equal(spread[arm, "trained"], spread[arm, "twin"])
        assert same != settings["trainable_centres"], arm


def test_the_task_sets_the_classes(smoke_results):
    """The machine-task arms learn one class per machine (M sub-centres each), the others
    c3's machine x attribute classes."""
    folder = experiments.records.size_folder(smoke_results, "b", "smoke")
    spec = b.SIZES["smoke"]
    for arm, settings in b.ARMS.items():
        centres = experiments.load_record(folder / f"arm={arm},seed=0").arrays["centres"]
        classes = spec["machines"] * (spec["attributes"] if settings["task"] == "attribute"
                                      else 1)
        assert centres.shape[:3] == (len(b.SNRS), classes, settings["num_subclusters"]), arm


def test_the_stored_embeddings_give_the_scores(smoke_results, smoke):
    """The recorded embeddings are the ones the back-ends scored: kNN-1 recomputed from
    them (float16) gives the recorded scores."""
    table, _ = smoke
    folder = experiments.records.size_folder(smoke_results, "b", "smoke")
    unit = "arm=sc-adacos.m16.machine-task,seed=1"
    arrays = experiments.load_record(folder / unit).arrays
    spec = b.SIZES["smoke"]
    n_train = spec["machines"] * spec["attributes"] * spec["train"]
    assert arrays["train_embedding"].shape[:2] == (len(b.SNRS), n_train)
    assert arrays["train_class"].tolist() == np.repeat(np.arange(spec["machines"]),
                                                       spec["attributes"] * spec["train"]).tolist()
    train_machine = np.repeat(np.arange(spec["machines"]), spec["attributes"] * spec["train"])
    for j, snr in enumerate(b.SNRS):
        rows = (table["unit"] == unit) & (table["snr"] == snr)
        machine = np.char.lstrip(table["machine"][rows].astype(str), "machine").astype(int)
        z, train_z = (np.asarray(arrays[k][j], np.float64) for k in ("embedding",
                                                                     "train_embedding"))
        assert z.shape[0] == rows.sum()
        for m in range(spec["machines"]):
            t = train_z[train_machine == m]
            t /= np.linalg.norm(t, axis=1, keepdims=True)
            x = z[machine == m] / np.linalg.norm(z[machine == m], axis=1, keepdims=True)
            knn = 1 - (x @ t.T).max(axis=1)
            np.testing.assert_allclose(knn, table["score"][rows][machine == m], atol=2e-3)


def test_analyse_on_smoke_records(smoke):
    table, _ = smoke
    results = b_verdicts.analyse(table, n_resamples=100)
    assert [r.id for r in results] == list(b.CRITERIA)
    for result in results:
        assert result.verdict in claims.VERDICTS
        assert len(result.parts) == len(b.CRITERIA[result.id]["comparisons"])
    readings = b_verdicts.readings(table, n_resamples=100)
    comparisons = sum(len(s["comparisons"]) for s in b.CRITERIA.values())
    assert len(readings) == comparisons * len(b.SNRS) * 2
    rows = b_verdicts.hmean_table(table)
    assert len(rows) == len(b.ARMS) * len(b.SNRS) * len(b_verdicts.DETECTORS)
    assert all(v.shape == (2,) for v in rows.values())
    compact = b_verdicts.compactness_table(table)
    assert all(v.shape == (2,) and np.all((v >= 0) & (v <= 4)) for v in compact.values())
    refs = b_verdicts.versus_references(table, n_resamples=100, snrs=("0",))
    assert len(refs) == len(b.ARMS) * 2
    # six steps in two epochs cannot settle: the check must say so
    assert len(b_verdicts.unsettled(table)) == len(b.ARMS) * len(b.SNRS) * 2


def test_the_fixed_centre_arm_is_c3s_subcluster_adacos(smoke):
    """Seed s of ``b`` holds the clips of seed s of ``c3``, and arm ``sc-adacos.m4.fixed``
    is c3's method (iii): its k-means scores are c3's scores, clip for clip."""
    table, _ = smoke
    config = next(u for u in b.units("smoke") if u.factors["arm"] == "sc-adacos.m4.fixed"
                  and u.factors["seed"] == 0).config
    c3_config = next(u for u in c3.units("smoke") if u.factors["method"] ==
                     "subcluster-adacos").config
    assert all(config[k] == c3_config[k] for k in c3_config if k not in ("seed", "machines"))
    data_key, noise_key, detector_key = jax.random.split(jax.random.key(0), 3)
    sounds, is_train = c3._sounds(config, data_key)
    want = c3._condition(config, sounds, is_train, "0", noise_key, detector_key)
    rows = (table["arm"] == "sc-adacos.m4.fixed") & (table["seed"] == 0) & (table["snr"] == "0")
    np.testing.assert_allclose(table["kmeans_score"][rows], want["score"], rtol=1e-6)
    np.testing.assert_allclose(table["twin_kmeans_score"][rows], want["twin_score"], rtol=1e-6)
    np.testing.assert_array_equal(table["level_score"][rows], want["level_score"])


def test_units_are_deterministic():
    unit = next(u for u in b.units("smoke") if u.factors["arm"] == "sc-adacos.m4.trainable")
    first, second = (b.compute(unit.config, jax.random.key(0)) for _ in range(2))
    np.testing.assert_array_equal(first.scores, second.scores)
    for name in ("twin_score", "kmeans_score", "compactness"):
        np.testing.assert_array_equal(first.clips[name], second.clips[name])
    np.testing.assert_array_equal(first.arrays["centres"], second.arrays["centres"])


def test_sizes():
    for size in experiments.SIZES:
        units = b.units(size)
        assert [u.id for u in units] == [f"arm={a},seed={s}" for a in b.ARMS
                                         for s in range(b.SIZES[size]["seeds"])]
        # equal optimiser steps, data and network for every arm; the decisive back-end kNN-1
        assert len({b.detector_config(u.config).steps for u in units}) == 1
        assert {u.config["knn_k"] for u in units} == {1}
        for u in units:
            assert {k: u.config[k] for k in b.ARMS[u.factors["arm"]]} == b.ARMS[u.factors["arm"]]
            config = b.detector_config(u.config)
            assert config.trainable_centres == u.config["trainable_centres"]
            assert config.num_subclusters == u.config["num_subclusters"]
            assert u.config["strength"] == c3.STRENGTH
            c3_config = c3.units(size)[0].config
            same = [k for k in c3.SIZES[size] if k != "seeds"
                    and not (size == "smoke" and k == "machines")]
            assert all(u.config[k] == c3_config[k] for k in same)
    assert len(b.units("standard")) == len(b.ARMS) * b.SIZES["standard"]["seeds"]
    assert b.SIZES["standard"]["seeds"] >= 10


def test_the_cost_was_measured():
    """The estimate in the declaration is the measured mean CPU time of a unit times the
    standard units, and it fits the budget of ~0.6 CPU-core-hours."""
    assert set(b.COST["measured"]) <= {u.id for u in b.units("standard")}
    assert len(b.COST["cpu_seconds"]) == len(b.COST["measured"]) == len(b.ARMS)
    hours = np.mean(b.COST["cpu_seconds"]) * len(b.units("standard")) / 3600
    assert hours == pytest.approx(b.COST["standard_cpu_hours"], abs=0.005)
    assert hours <= 0.6


def test_the_criteria_are_complete():
    assert list(b.CRITERIA) == ["B1", "B2", "B3"]
    for spec in b.CRITERIA.values():
        assert set(spec) == {"statement", "comparisons", "delta", "delta_reason", "criterion"}
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        assert "delta" in spec["statement"]  # the claim is "an effect of at least delta"
        for terms in spec["comparisons"].values():
            assert sum(w for w, _, _ in terms) == 0  # a contrast: chance cancels
            assert all(a in b.ARMS and c == b.DECISIVE_SNR for _, a, c in terms)
            tasks = {b.ARMS[a]["task"] for _, a, _ in terms}
            assert len(tasks) == 1  # one task per comparison
    compared = {a for spec in b.CRITERIA.values() for terms in spec["comparisons"].values()
                for _, a, _ in terms}
    assert compared == set(b.ARMS)


def _table(effect: float, *, seeds: int = 8, clips: int = 240, noise: float = 0.3):
    """A table where, in every comparison, the arm the claim favours separates anomalies by
    ``effect`` more than its rival (at every SNR, by both back-ends); every other arm is pure
    noise: a clip's score shared by the arms (the clip) plus ``noise`` of the arm's own, as
    trained systems scoring the same clips pair."""
    rng = np.random.default_rng(int(1000 * abs(effect)) % 997 + (effect < 0))
    favoured = {terms[0][1] for spec in b.CRITERIA.values()
                for terms in spec["comparisons"].values()}
    columns = {name: [] for name in ("arm", "snr", "seed", "clip", "label", "machine",
                                     "score", "kmeans_score", "unit", "loss_settling")}
    for seed in range(seeds):
        labels = np.tile([0, 1], clips // 2)
        machine = np.repeat(["m0", "m1"], clips // 2)
        shared = rng.normal(size=clips)
        for arm in b.ARMS:
            for snr in b.SNRS:
                shift = effect if arm in favoured else 0.0
                for column in ("score", "kmeans_score"):
                    columns[column].append(shared + rng.normal(size=clips) * noise
                                           + shift * labels)
                for name, value in (("arm", arm), ("snr", snr), ("seed", seed),
                                    ("unit", f"arm={arm},seed={seed}"),
                                    ("loss_settling", 0.0)):
                    columns[name].append(np.full(clips, value))
                columns["clip"].append(np.arange(clips))
                columns["label"].append(labels)
                columns["machine"].append(machine)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def test_analyse_supports_a_large_effect():
    results = b_verdicts.analyse(_table(3.0), n_resamples=100)
    assert {r.id: r.verdict for r in results} == {k: claims.SUPPORTED for k in b.CRITERIA}
    assert all(b_verdicts.equivalence(p.interval, delta=r.delta) is None
               for r in results for p in r.parts)
    readings = b_verdicts.readings(_table(3.0), n_resamples=100)
    assert all(v.low > 0 for v in readings.values())


@pytest.mark.parametrize(("effect", "reading"), [(0.0, "absent"), (-3.0, "reversed")])
def test_analyse_does_not_support_without_the_effect(effect, reading):
    results = b_verdicts.analyse(_table(effect), n_resamples=100)
    assert {r.verdict for r in results} == {claims.CONTRADICTED}
    parts = [(p, r.delta) for r in results for p in r.parts]
    assert all(reading in p.decision.reading for p, _ in parts)
    # no effect on a large table: equivalent within delta; a reversed one is not
    equivalent = [b_verdicts.equivalence(p.interval, delta=d) for p, d in parts]
    assert all(e is not None for e in equivalent) == (effect == 0.0)


def test_analyse_is_inconclusive_on_a_small_noisy_table():
    results = b_verdicts.analyse(_table(0.3, seeds=3, clips=12, noise=3.0), n_resamples=100)
    assert {r.verdict for r in results} == {claims.INCONCLUSIVE}
    assert all(r.detectable for r in results)


def test_equivalence():
    def interval(low, high):
        return PairedDifference((low + high) / 2, low, high, 0.95, 1000)

    assert b_verdicts.equivalence(interval(-0.01, 0.015), delta=0.02) == \
        "equivalent within 0.020 hmean"
    assert b_verdicts.equivalence(interval(-0.025, 0.01), delta=0.02) is None
    assert b_verdicts.equivalence(interval(-0.01, 0.02), delta=0.02) is None
    with pytest.raises(ValueError, match="delta must be > 0"):
        b_verdicts.equivalence(interval(0, 0), delta=0.0)


def test_centre_spread():
    rng = np.random.default_rng(0)
    assert abs(b_verdicts.centre_spread(rng.normal(size=(12, 4, 256)))) < 0.02
    simplex = np.eye(4) - 0.25  # 4 class means of a regular simplex, centred
    assert b_verdicts.centre_spread(simplex[:, None]) == pytest.approx(-1 / 3)


def test_without_the_noise_recordings_the_run_stops_before_any_unit(tmp_path, monkeypatch,
                                                                      capsys):
    from asdtheory.repro import cli

    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))  # no noise/ folder here
    code = cli.main(["experiment", "run", "b", "--size", "smoke", "--results",
                     str(tmp_path / "results"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "experiment b" in err and "doing_the_dishes" in err
    assert not list((tmp_path / "results").rglob("provenance.json"))  # nothing computed


def test_report_names_each_equivalence_in_the_claim_line(capsys):
    def part(name, low, high):
        interval = PairedDifference((low + high) / 2, low, high, 0.95, 1000)
        return claims.Part(name, interval, claims.decide(interval, delta=0.02, unit="AUC"))

    parts = (part("a", -0.01, 0.015), part("b", -0.03, 0.01))
    result = claims.ClaimResult("B9", "A equals B.", claims.CONTRADICTED, None, parts, 0.02,
                                "AUC")
    record = b_verdicts.report(result, notebook="07_beyond_the_paper")
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["B9: A equals B.", record.line]
    assert record.summary == result.summary + "; a: equivalent within 0.020 AUC"
    assert record.figures["equivalent"] is False  # b's interval reaches below -delta
    assert record.figures["parts"]["b"] == [-0.01, -0.03, 0.01]
    whole = b_verdicts.report(dataclasses.replace(result, parts=parts[:1]), notebook="07")
    assert whole.figures["equivalent"] is True

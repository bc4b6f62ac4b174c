"""The C4 experiment: declaration, one real unit end to end, the criteria, the batched official
score against the evaluator, and every verdict path of the analysis."""

import jax
import numpy as np
import pytest

from asdtheory import evaluation
from asdtheory.data import dcase
from asdtheory.experiments import c4
from asdtheory.repro import _ranking, claims
from asdtheory.repro import c4 as c4_verdicts

SHARED = dcase.data_root()
needs_data = pytest.mark.skipif(
    not (SHARED / "mimii" / "fan").is_dir() or not (SHARED / "dcase2020t2").is_dir(),
    reason="the real recordings of ../shared/data (set ASDTHEORY_DATA)")


def test_units_cover_every_variant_fold_and_seed():
    for size in c4.SIZES:
        units = c4.units(size)
        spec = c4.SIZES[size]
        assert len(units) == len(c4.VARIANTS) * spec["folds"] * spec["seeds"]
        assert {(u.factors["method"], u.factors["task"]) for u in units} == set(c4.VARIANTS)
    standard = c4.units("standard")
    rivals = {("subcluster-adacos", "joint"), ("deep-svdd", "joint"), ("autoencoder", "joint")}
    for unit in standard:
        variant = (unit.factors["method"], unit.factors["task"])
        assert unit.config["snrs"] == (["clean", "6", "0", "-6"] if variant in rivals
                                       else ["clean", "0"])
    # every SNR a criterion names is trained by the variants it compares
    for spec in c4.CRITERIA.values():
        for terms in spec["comparisons"].values():
            for _, method, task, snr in terms:
                unit = next(u for u in standard if (u.factors["method"], u.factors["task"])
                            == (method, task))
                assert snr in unit.config["snrs"]
    # one budget for the two-branch methods, whatever the method
    budgets = {c4.detector_config(u.config).steps for u in standard
               if u.factors["method"] != "autoencoder"}
    assert budgets == {c4.SIZES["standard"]["steps"]}


def test_the_criteria_are_complete():
    assert list(c4.CRITERIA) == ["C4.a", "C4.b", "C4.b.growth", "C4.c", "C4.d", "C4.e"]
    for spec in c4.CRITERIA.values():
        assert spec["delta"] > 0 and spec["delta_reason"] and spec["criterion"]
        for terms in spec["comparisons"].values():
            assert sum(w for w, *_ in terms) == 0  # a contrast: what the terms share cancels
            assert all((m, t) in c4.VARIANTS for _, m, t, _ in terms)


def _clips(rng, n_normal=(20, 20), n_anomalous=(50, 50)):
    domain = np.r_[np.repeat(["source", "target"], n_normal),
                   np.repeat(["source", "target"], n_anomalous)]
    label = np.r_[np.zeros(sum(n_normal), int), np.ones(sum(n_anomalous), int)]
    return domain, label


def test_batched_official_score_is_the_evaluators():
    rng = np.random.default_rng(0)
    domain, label = _clips(rng)
    fan_label = np.r_[np.zeros(10, int), np.ones(20, int)]
    for trial in range(5):
        decimals = 1 if trial % 2 else 6  # ties half the time
        valve = np.round(rng.normal(size=label.size) + 0.5 * label, decimals)
        fan = np.round(rng.normal(size=fan_label.size) + fan_label, decimals)
        rows = evaluation.dcase_table(machine="valve", section=0, domain=domain,
                                      is_anomaly=label, scores=valve)
        assert _ranking.official_score(label, valve, np.full(label.size, "valve"),
                                       domain)[0] == pytest.approx(
            evaluation.official_score(rows), abs=1e-12)
        # both machines: the harmonic mean of the valve's three values and the fan's two
        values = [v for r in rows for v in r.official_values()]
        values += [evaluation.auc(fan_label, fan), evaluation.pauc(fan_label, fan)]
        machine = np.r_[np.full(label.size, "valve"), np.full(fan_label.size, "fan")]
        both = _ranking.official_score(np.r_[label, fan_label], np.r_[valve, fan], machine,
                                       np.r_[domain, np.full(fan_label.size, "source")])
        assert both[0] == pytest.approx(len(values) / np.sum(1 / np.asarray(values)),
                                        abs=1e-12)
        fan_rows = evaluation.dcase_table(machine="fan", section=0, domain="source",
                                          is_anomaly=fan_label, scores=fan, rules="2020")
        assert both[0] == pytest.approx(evaluation.official_score(rows + fan_rows), abs=1e-12)


def _hand_made_table(effect: float, *, replicates=((0, 0), (0, 1), (1, 0), (1, 1))):
    """A c4-shaped table where the reference system separates anomalies by ``effect`` more
    than every other variant, at every SNR; the others score noise."""
    rng = np.random.default_rng(int(100 * effect) + 1)
    domain, label = _clips(rng, (10, 10), (25, 25))
    columns = {name: [] for name in ("method", "task", "fold", "seed", "snr", "clip", "file",
                                     "label", "machine", "domain", "score", "twin_score",
                                     "level_score", "loss_settling", "unit")}
    for method, task in c4.VARIANTS:
        for fold, seed in replicates:
            for snr in ("clean", "6", "0", "-6"):
                shift = effect if (method, task) == ("subcluster-adacos", "joint") else 0.0
                n = label.size
                for name, values in (
                        ("method", [method] * n), ("task", [task] * n), ("fold", [fold] * n),
                        ("seed", [seed] * n), ("snr", [snr] * n), ("clip", range(n)),
                        ("file", [f"c{i}_snr_{snr}.wav" for i in range(n)]),
                        ("label", label), ("machine", ["valve"] * n), ("domain", domain),
                        ("score", rng.normal(size=n) + shift * label),
                        ("twin_score", rng.normal(size=n)), ("level_score", rng.normal(size=n)),
                        ("loss_settling", [0.01] * n),
                        ("unit", [f"method={method},task={task},fold={fold},seed={seed}"] * n)):
                    columns[name].extend(values)
    return {name: np.asarray(values) for name, values in columns.items()}


def test_a_large_effect_is_supported_and_none_is_not():
    strong = {r.id: r for r in c4_verdicts.analyse(_hand_made_table(3.0), n_resamples=200)}
    assert strong["C4.a"].verdict == claims.SUPPORTED
    assert strong["C4.c"].verdict == claims.SUPPORTED
    # the growth contrast is ~0 when the effect is the same at every SNR
    assert strong["C4.b.growth"].verdict != claims.SUPPORTED
    null = {r.id: r for r in c4_verdicts.analyse(_hand_made_table(0.0), n_resamples=200)}
    assert all(r.verdict != claims.SUPPORTED for r in null.values())
    assert null["C4.a"].parts[0].interval.low < 0 < null["C4.a"].parts[0].interval.high


def test_the_reproduction_gate_withholds_every_verdict_below_the_published_level():
    strong, null = _hand_made_table(3.0), _hand_made_table(0.0)
    passed, score = c4_verdicts.reproduction_gate(strong)
    assert passed and score > c4_verdicts.REPRODUCTION_GATE
    results = c4_verdicts.analyse(strong, n_resamples=100)
    assert c4_verdicts.gated(results, strong) == results
    passed, score = c4_verdicts.reproduction_gate(null)  # AUCs ~0.5
    assert not passed and score < c4_verdicts.REPRODUCTION_GATE
    withheld = c4_verdicts.gated(c4_verdicts.analyse(null, n_resamples=100), null)
    assert {r.verdict for r in withheld} == {claims.INCONCLUSIVE}
    assert all("reproduction gate" in r.detectable for r in withheld)


def test_score_table_and_references_hold_every_variant():
    table = _hand_made_table(1.0)
    scores = c4_verdicts.score_table(table)
    assert len(scores) == len(c4.VARIANTS) * 4 * 3
    assert all(v.shape == (4,) for v in scores.values())
    gap = c4_verdicts.versus_references(table, n_resamples=100)
    assert gap["subcluster-adacos", "joint", "clean", "twin"].estimate > 0.1
    assert c4_verdicts.unsettled(table) == []


@needs_data
def test_a_smoke_unit_trains_and_scores_every_machine_at_hand():
    unit = next(u for u in c4.units("smoke") if u.factors["method"] == "autoencoder")
    c4.preflight("smoke")
    record = c4.compute(unit.config, jax.random.key(0))
    snrs = unit.config["snrs"]
    # the valve's 140 test clips and the fan's 30, at every SNR
    assert record.scores.shape == (len(snrs) * 170,)
    assert set(record.clips["machine"].tolist()) == {"valve", "fan"}
    assert record.arrays["loss_curve"].shape[0] == len(snrs)
    # the test embeddings of the system and its twin, one row per scored clip (C5.d's input)
    for name in ("embedding", "twin_embedding"):
        assert record.arrays[name].shape[0] == record.scores.shape[0]
        assert np.all(np.isfinite(record.arrays[name]))
    assert not np.array_equal(record.arrays["embedding"], record.arrays["twin_embedding"])
    for column in ("twin_score", "level_score", "loss_settling"):
        assert np.all(np.isfinite(record.clips[column]))
    # file names unique within machine and section (the record's submission files need it)
    keys = list(zip(record.clips["machine"], record.clips["file"], strict=True))
    assert len(set(keys)) == len(keys)


def test_preflight_names_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="valve"):
        c4.preflight("standard")


@pytest.mark.filterwarnings("ignore:n_clusters=16 exceeds the source training clips")
def test_the_full_size_path_runs_on_a_generated_dcase_2023_development_set(tmp_path,
                                                                          monkeypatch):
    """The full size's data (the official split of all seven machine types, the joint task
    and the valve alone) at the smoke size's budget, on synthetic clips in the DCASE layout."""
    from asdtheory.data.fixture import write_dcase2023_dataset

    write_dcase2023_dataset(tmp_path, key=jax.random.key(3), machines=dcase.DEV_MACHINES_2023,
                            train_source=6, train_target=2, test_normal=2, test_anomaly=2,
                            seconds=1.0, noise=c4.NOISES, noise_seconds=5.0)
    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path))
    smoke = next(u for u in c4.units("smoke") if u.factors["method"] == "subcluster-adacos")
    config = {**smoke.config, "data": c4.SIZES["full"]["data"]}
    assert {u.config["data"] for u in c4.units("full")} == {config["data"]}
    c4.preflight("full")
    record = c4.compute(config, jax.random.key(0))
    # every machine type's 8 test clips (2 per domain and label), at every SNR
    assert record.scores.shape == (len(config["snrs"]) * 7 * 8,)
    assert set(record.clips["machine"].tolist()) == set(dcase.DEV_MACHINES_2023)
    assert np.all(np.isfinite(record.scores))
    valve = c4.split({**config, "task": "valve"})
    assert {c.machine for c in valve.train + valve.test} == {"valve"}

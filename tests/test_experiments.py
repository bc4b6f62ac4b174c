"""Experiments as declarations, their records, the runner, the audit and the command line.

The toy experiment (asdtheory.experiments.toy) runs at smoke size in seconds: four units, each in
its own pinned process, writing real DCASE score files.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from asdtheory import experiments
from asdtheory.experiments import core, records, runner, toy
from asdtheory.experiments.core import Experiment, Unit, config_hash, grid
from asdtheory.repro.cli import main

SMOKE_UNITS = [u.id for u in toy.units("smoke")]
REPO = Path(__file__).resolve().parents[1]


def _unit_folder(results, unit_id, size="smoke"):
    return Path(results) / "toy" / size / unit_id


def _deterministic_provenance(folder):
    provenance = json.loads((Path(folder) / "provenance.json").read_text())
    return {k: v for k, v in provenance.items() if k not in records.TIMING_FIELDS}


def _edit_score(folder, *, rehash: bool):
    """Changes the first stored score of the fan file; with ``rehash`` also its hash in the
    provenance (a record that another library version would have written)."""
    path = Path(folder) / "anomaly_score_fan_section_00_test.csv"
    lines = path.read_text().splitlines()
    file, score = lines[0].rsplit(",", 1)
    lines[0] = f"{file},{float(score) + 0.5!r}"
    path.write_text("\n".join(lines) + "\n")
    if rehash:
        provenance_path = Path(folder) / "provenance.json"
        provenance = json.loads(provenance_path.read_text())
        provenance["files"][path.name] = records._sha256(path)
        provenance_path.write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted smoke run of the toy experiment, two jobs."""
    results = tmp_path_factory.mktemp("reference")
    summary = experiments.run("toy", "smoke", jobs=2, results_dir=results, progress=False)
    assert summary.failed == {} and sorted(summary.computed) == sorted(SMOKE_UNITS)
    return results


@pytest.fixture
def copy_of_reference(reference, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(reference, results)
    return results


# ---------------------------------------------------------------------------- declarations

def test_units_ids_and_config_hashes():
    units = grid(seeds=2, settings={"clips": 8}, method=("adacos", "arcface"), snr=(0, -6))
    assert [u.id for u in units][:3] == ["method=adacos,snr=0,seed=0",
                                         "method=adacos,snr=0,seed=1",
                                         "method=adacos,snr=-6,seed=0"]
    config = units[0].config
    assert config == {"clips": 8, "method": "adacos", "snr": 0, "seed": 0}
    reordered = dict(reversed(list(config.items())))
    assert config_hash(config, version="1") == config_hash(reordered, version="1")
    assert config_hash(config, version="1") != config_hash(config, version="2")
    assert config_hash(config, version="1") != config_hash({**config, "clips": 9}, version="1")


@pytest.mark.parametrize("factors, settings, match", [
    ({"method": "a"}, {}, "integer seed"),
    ({"method": "a/b", "seed": 0}, {}, "folder name"),
    ({"method": "a", "seed": 0}, {"method": "b"}, "both factors and settings"),
    ({"method": "a", "seed": 0}, {"x": float("nan")}, "NaN|JSON|Out of range"),
])
def test_bad_units_are_refused(factors, settings, match):
    with pytest.raises(ValueError, match=match):
        Unit(factors, settings)


def test_registry_names_the_known_experiments():
    assert "toy" in experiments.names() and experiments.get("toy").name == "toy"
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'; choose one of .*toy"):
        experiments.get("nope")
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        experiments.get("toy").declared("huge")


# ---------------------------------------------------------------------------- records

def _toy_record(unit):
    return toy.compute(unit.config, jax.random.key(unit.config["seed"]))


def test_record_round_trip(tmp_path):
    experiment, unit = experiments.get("toy"), toy.units("smoke")[0]
    record = _toy_record(unit)
    folder = _unit_folder(tmp_path, unit.id)
    records.write_record(folder, record, experiment=experiment, unit=unit, size="smoke",
                         environment={"cpu_model": "test"}, wall_seconds=1.0, cpu_seconds=1.0)
    assert sorted(p.name for p in folder.iterdir()) == [
        "anomaly_score_fan_section_00_test.csv", "anomaly_score_valve_section_00_test.csv",
        "arrays.npz", "clips.csv", "provenance.json"]
    # The DCASE submission format: no header, "<file name>,<score>".
    first = (folder / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()[0]
    assert first.startswith("section_00_source_test_normal_0000_toy.wav,")
    stored = records.load_record(folder)
    assert np.array_equal(stored.scores, np.asarray(record.scores, np.float64))
    assert stored.scores.dtype == np.float64
    for name, values in record.clips.items():
        expected = np.asarray(values)
        if name == "section":
            expected = np.asarray([f"{s:02d}" for s in expected])
        assert np.array_equal(stored.clips[name], expected), name
    assert stored.arrays.keys() == record.arrays.keys()
    for name, values in record.arrays.items():
        assert np.array_equal(stored.arrays[name], values) and \
            stored.arrays[name].dtype == values.dtype
    assert stored.provenance["config_hash"] == experiment.hash(unit)
    assert stored.provenance["steps"] == 20 and stored.provenance["final_loss"] > 0
    # The same arrays give the same bytes (fixed zip timestamps): records compare by bytes.
    again = tmp_path / "again" / unit.id
    records.write_record(again, record, experiment=experiment, unit=unit, size="smoke",
                         environment={"cpu_model": "test"}, wall_seconds=2.0, cpu_seconds=2.0)
    for name in ("arrays.npz", "clips.csv", "anomaly_score_valve_section_00_test.csv"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()


def test_write_is_atomic(tmp_path, monkeypatch):
    experiment, unit = experiments.get("toy"), toy.units("smoke")[0]
    record = _toy_record(unit)
    folder = _unit_folder(tmp_path, unit.id)
    write = dict(experiment=experiment, unit=unit, size="smoke", environment={},
                 wall_seconds=1.0, cpu_seconds=1.0)
    records.write_record(folder, record, **write)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(records, "_write_npz", crash)
    changed = type(record)(clips=record.clips, scores=np.asarray(record.scores) + 1.0)
    with pytest.raises(OSError, match="disk full"):
        records.write_record(folder, changed, **write)
    # The old record is whole; the half-written one sits in a dot folder a run clears.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1
    assert [p.name for p in records.unit_folders(tmp_path, "toy", "smoke")] == [unit.id]
    runner._clean_leftovers(folder.parent)
    assert [p.name for p in folder.parent.iterdir()] == [unit.id]


def test_load_table_is_one_row_per_unit_and_clip(reference):
    table = experiments.load_table("toy", "smoke", results_dir=reference)
    clips = 2 * len(toy.MACHINES) * len(toy.DOMAINS) * 8  # normal and anomalous
    assert list(table) == ["unit", "method", "seed", "file", "machine", "section", "domain",
                           "label", "anomaly_type", "score"]
    assert {len(column) for column in table.values()} == {len(SMOKE_UNITS) * clips}
    assert sorted(set(table["unit"].tolist())) == sorted(SMOKE_UNITS)
    assert table["seed"].dtype.kind == "i" and table["score"].dtype == np.float64
    rows = table["unit"] == "method=trained,seed=1"
    stored = records.load_record(_unit_folder(reference, "method=trained,seed=1"))
    assert np.array_equal(table["score"][rows], stored.scores)
    # Each unit ran in its own process pinned to one CPU, with the one-thread XLA flags.
    assert stored.provenance["cpus"] == 1
    assert "intra_op_parallelism_threads=1" in stored.provenance["xla_flags"]
    manifest = records.read_manifest(reference, "toy", "smoke")
    assert sorted(manifest["units"]) == sorted(SMOKE_UNITS)
    assert manifest["total_bytes"] == sum(u["bytes"] for u in manifest["units"].values()) > 0


# ---------------------------------------------------------------------------- the runner

def test_every_stored_standard_record_matches_its_declaration():
    """CI's staleness check on the committed records (results/ of this repository)."""
    for name in experiments.names():
        experiments.check_records(name, "standard", results_dir=REPO / "results")


def test_a_run_is_idempotent_and_status_is_complete(copy_of_reference):
    before = {p: p.stat().st_mtime_ns for p in copy_of_reference.rglob("*.csv")}
    summary = experiments.run("toy", "smoke", results_dir=copy_of_reference, progress=False)
    assert summary.computed == [] and summary.failed == {}
    assert {p: p.stat().st_mtime_ns for p in copy_of_reference.rglob("*.csv")} == before
    state = experiments.status("toy", "smoke", results_dir=copy_of_reference)
    assert state.ids(runner.PRESENT) == SMOKE_UNITS and state.seconds_left == 0.0


def test_killed_run_resumes_to_identical_records(reference, tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "asdtheory.repro.cli", "experiment", "run", "toy",
               "--size", "smoke", "--jobs", "1", "--no-progress", "--results", str(results)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not records.unit_folders(results, "toy", "smoke"):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no record appeared"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and the worker it started
        process.wait()
    done = [p.name for p in records.unit_folders(results, "toy", "smoke")]
    assert 1 <= len(done) < len(SMOKE_UNITS)
    state = experiments.status("toy", "smoke", results_dir=results)
    assert state.ids(runner.PRESENT) == done and state.seconds_left > 0

    summary = experiments.run("toy", "smoke", results_dir=results, progress=False)
    assert sorted(summary.computed) == sorted(set(SMOKE_UNITS) - set(done))
    assert summary.cpu_seconds > 0
    assert not [p for p in (results / "toy" / "smoke").iterdir() if p.name.startswith(".tmp")]
    for unit in SMOKE_UNITS:
        ours, theirs = _unit_folder(results, unit), _unit_folder(reference, unit)
        names = sorted(p.name for p in ours.iterdir())
        assert names == sorted(p.name for p in theirs.iterdir())
        for name in names:
            if name != "provenance.json":
                assert (ours / name).read_bytes() == (theirs / name).read_bytes(), (unit, name)
        assert _deterministic_provenance(ours) == _deterministic_provenance(theirs)


def test_a_failing_unit_is_reported_and_the_others_are_kept(tmp_path, monkeypatch):
    module = tmp_path / "modules" / "failing_experiment.py"
    module.parent.mkdir()
    module.write_text(
        "from asdtheory.experiments import toy\n"
        "from asdtheory.experiments.core import Experiment, register\n\n"
        "def compute(config, key):\n"
        "    if config['seed'] == 1:\n"
        "        raise RuntimeError('seed 1 diverged')\n"
        "    return toy.compute(config, key)\n\n"
        "register(Experiment(name='failing', version='1', compute=compute,\n"
        "                    units=lambda size: toy.units('smoke')[:2]))\n")
    monkeypatch.syspath_prepend(str(module.parent))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(module.parent),
                                                      os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setitem(core._REGISTRY, "failing", None)
    import failing_experiment  # noqa: F401  (registers it here too)

    # The test process may be pinned to one CPU (conftest); give the runner every CPU so that
    # the workers' own pinning is what the provenance shows.
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count()))
    try:
        summary = experiments.run("failing", "smoke", jobs=2, results_dir=tmp_path / "results",
                                  progress=False)
    finally:
        os.sched_setaffinity(0, pinned)
    assert summary.computed == ["method=trained,seed=0"]
    assert list(summary.failed) == ["method=trained,seed=1"]
    assert "RuntimeError: seed 1 diverged" in summary.failed["method=trained,seed=1"]
    assert "Traceback" in summary.failed["method=trained,seed=1"]
    assert "1 failed: method=trained,seed=1" in summary.report()
    state = experiments.status("failing", "smoke", results_dir=tmp_path / "results")
    assert state.states == {"method=trained,seed=0": "present", "method=trained,seed=1": "missing"}
    stored = records.load_record(tmp_path / "results" / "failing" / "smoke" /
                                 "method=trained,seed=0")
    assert stored.provenance["cpus"] == 1


def _changed_toy(monkeypatch, **change):
    declared = experiments.get("toy")

    def units(size):
        return [Unit(u.factors, {**u.settings, **change}) for u in declared.units(size)]

    monkeypatch.setitem(core._REGISTRY, "toy", Experiment(
        name="toy", version=declared.version, units=units, compute=declared.compute))


def test_changing_a_declared_setting_makes_records_stale(copy_of_reference, monkeypatch):
    assert experiments.check_records("toy", "smoke", results_dir=copy_of_reference) == 4
    _changed_toy(monkeypatch, steps=21)
    message = (r"the record of unit method=trained,seed=0 of experiment toy \(smoke\) is stale"
               r".*`asdtheory experiment run toy --size smoke`")
    with pytest.raises(experiments.StaleRecordError, match=message):
        experiments.check_records("toy", "smoke", results_dir=copy_of_reference)
    state = experiments.status("toy", "smoke", results_dir=copy_of_reference)
    assert state.ids(runner.STALE) == SMOKE_UNITS
    with pytest.raises(ValueError, match=r"is stale.*asdtheory experiment run toy --size smoke"):
        experiments.load_table("toy", "smoke", results_dir=copy_of_reference)


def test_an_edited_score_is_caught_and_named(copy_of_reference, capsys):
    folder = _unit_folder(copy_of_reference, "method=untrained,seed=1")
    edited = _edit_score(folder, rehash=False)
    expected = (rf"{edited}: its sha256 differs.*`asdtheory experiment run toy --size smoke "
                r"--replace-corrupt`")
    with pytest.raises(experiments.CorruptRecordError, match=expected):
        experiments.load_record(folder)
    with pytest.raises(experiments.CorruptRecordError, match=expected):
        experiments.check_records("toy", "smoke", results_dir=copy_of_reference)
    with pytest.raises(experiments.CorruptRecordError, match=expected):
        experiments.load_table("toy", "smoke", results_dir=copy_of_reference)
    state = experiments.status("toy", "smoke", results_dir=copy_of_reference)
    assert state.ids(runner.CORRUPT) == ["method=untrained,seed=1"]
    # The command line refuses before any work, then recomputes when asked to.
    assert main(["experiment", "run", "toy", "--size", "smoke", "--no-progress",
                 "--results", str(copy_of_reference)]) == 2
    assert "sha256 differs" in capsys.readouterr().err
    summary = experiments.run("toy", "smoke", results_dir=copy_of_reference,
                              replace_corrupt=True, progress=False)
    assert summary.computed == ["method=untrained,seed=1"]
    experiments.load_record(folder)


def test_a_removed_or_added_file_is_corrupt(copy_of_reference):
    folder = _unit_folder(copy_of_reference, "method=trained,seed=0")
    (folder / "notes.txt").write_text("mine\n")
    with pytest.raises(experiments.CorruptRecordError, match=r"notes\.txt: a file the record"):
        experiments.load_record(folder)
    (folder / "notes.txt").unlink()
    (folder / "arrays.npz").unlink()
    with pytest.raises(experiments.CorruptRecordError, match=r"arrays\.npz: missing"):
        experiments.load_record(folder)


# ---------------------------------------------------------------------------- the audit

def test_audit_on_the_same_cpu_is_exact_and_catches_changed_scores(copy_of_reference):
    results = experiments.audit("toy", "smoke", units=2, results_dir=copy_of_reference,
                                select=0)
    assert len(results) == 2 and all(r.passed and r.rule == "exact" for r in results)
    assert all(r.detail == "identical" for r in results)
    # A record as another library would have written it: consistent hashes, other scores.
    changed = results[0].unit
    _edit_score(_unit_folder(copy_of_reference, changed), rehash=True)
    again = {r.unit: r for r in experiments.audit("toy", "smoke", units=2, select=0,
                                                  results_dir=copy_of_reference)}
    assert not again[changed].passed
    assert again[changed].detail == "differ: scores (1 of 64 clips)"
    assert all(r.passed for u, r in again.items() if u != changed)


def test_the_exact_audit_takes_nan_as_a_value():
    from types import SimpleNamespace

    curve = np.array([1.0, np.inf, np.nan])
    stored = SimpleNamespace(arrays={"loss": curve, "name": np.array(["a"])},
                             scores=np.zeros(2))
    same = SimpleNamespace(arrays={"loss": curve.copy(), "name": np.array(["a"])},
                           scores=np.zeros(2))
    assert runner._exact("u", stored, same).passed
    moved = SimpleNamespace(arrays={"loss": np.array([1.0, np.inf, 2.0]),
                                    "name": np.array(["a"])}, scores=np.zeros(2))
    assert runner._exact("u", stored, moved).detail == "differ: loss"


def test_audit_selection_follows_the_seed():
    ids = [f"unit{i}" for i in range(10)]
    picks = {tuple(runner.audit_selection(ids, units=3, select=select)) for select in range(20)}
    assert all(len(set(p)) == 3 and list(p) == sorted(p) for p in picks) and len(picks) > 5
    assert runner.audit_selection(ids, units=3, select=7) == \
        runner.audit_selection(ids, units=3, select=7)
    assert runner.audit_selection(ids, units=20, select=0) == ids
    assert runner.audit_seed("ad785cbe62e194060c670e48d929ae74d3eab0e4") == 0xad785cbe62e19406
    assert runner.audit_seed(None) == 0


def test_audit_on_another_cpu_uses_the_seed_spread(copy_of_reference):
    for folder in records.unit_folders(copy_of_reference, "toy", "smoke"):
        path = folder / "provenance.json"  # not among the hashed files: it holds the hashes
        provenance = json.loads(path.read_text())
        provenance["cpu_model"] = "Another CPU (GenuineIntel family 6 model 85, AVX2)"
        path.write_text(json.dumps(provenance))
    results = experiments.audit("toy", "smoke", units=1, results_dir=copy_of_reference,
                                select=0)
    assert [r.rule for r in results] == ["seed spread"] and results[0].passed
    assert "seeds' range" in results[0].detail


def test_seed_spread_rule():
    # Range [0.6, 0.8] widened by half its width on each side: [0.5, 0.9].
    assert runner.seed_spread_rule(0.51, [0.6, 0.7, 0.8])[0]
    assert runner.seed_spread_rule(0.89, [0.6, 0.8])[0]
    assert not runner.seed_spread_rule(0.49, [0.6, 0.8])[0]
    assert not runner.seed_spread_rule(0.91, [0.6, 0.8])[0]
    passed, detail = runner.seed_spread_rule(0.7, [0.7])
    assert not passed and "fewer than 2 seeds" in detail


# ---------------------------------------------------------------------------- command line

@pytest.mark.parametrize("argv, message", [
    (["experiment", "run", "nope", "--size", "smoke"], "unknown experiment 'nope'"),
    (["experiment", "run", "toy", "--size", "smoke", "--jobs", "0"], "jobs must be an integer"),
    (["experiment", "status", "nope"], "unknown experiment 'nope'"),
    (["experiment", "audit", "toy", "--units", "0"], "units must be an integer"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    assert main([*argv, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no work done


def test_cli_unknown_size_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "run", "toy", "--size", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_cli_refuses_records_of_another_library_version(copy_of_reference, capsys):
    manifest = copy_of_reference / "toy" / "smoke" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "library_version": "0.0.1"}))
    before = sorted(p.name for p in copy_of_reference.rglob("*"))
    for argv in (["run", "toy", "--size", "smoke"], ["status", "toy", "--size", "smoke"]):
        assert main(["experiment", *argv, "--results", str(copy_of_reference)]) == 2
        err = capsys.readouterr().err
        assert "holds records of asdtheory 0.0.1" in err and "Traceback" not in err
    assert sorted(p.name for p in copy_of_reference.rglob("*")) == before


def test_cli_status_and_audit(copy_of_reference, capsys):
    assert main(["experiment", "status", "toy", "--size", "smoke",
                 "--results", str(copy_of_reference)]) == 0
    assert "toy (smoke): 4 units: 4 present, 0 missing, 0 stale, 0 corrupt" in \
        capsys.readouterr().out
    assert main(["experiment", "audit", "toy", "--size", "smoke", "--units", "1",
                 "--results", str(copy_of_reference)]) == 0
    assert "(exact): identical" in capsys.readouterr().out

"""Full mode exercised on a generated DCASE-2023-layout dataset: ``asdtheory run --machines
all --protocol full`` for each method (one system over every machine type), its checks before
training, and notebook 04's full-mode path."""

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from asdtheory import detect, evaluation
from asdtheory.data.fixture import write_dcase2023_dataset
from asdtheory.repro import cli

REPO = Path(__file__).resolve().parents[1]
MACHINES = ("fan", "gearbox", "valve")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 machine types x (16 source + 2 target training clips, 20 test clips), 10 s each."""
    return write_dcase2023_dataset(tmp_path_factory.mktemp("dcase"), key=jax.random.key(0),
                                   machines=MACHINES)


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started although the call is invalid")

    monkeypatch.setattr(detect.train, "fit", fail)


def _run(capsys, *args):
    # The log-mel CNN system unless a test names one: it trains in seconds on the fixture.
    system = () if "--system" in args else ("--system", "logmel-cnn")
    code = cli.main(["run", "--protocol", "full", "--no-progress", *system, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("method", ["subcluster-adacos", "deep-svdd", "autoencoder"])
def test_one_system_over_all_machines_prints_every_section_and_the_official_score(
        dataset, tmp_path, capsys, method):
    out = tmp_path / "result.json"
    code, printed, err = _run(capsys, "--data", str(dataset), "--machines", "all", "--method",
                              method, "--epochs", "1", "--json", str(out))
    assert code == 0, err
    for machine in MACHINES:
        assert re.search(rf"^{machine}\s+00\s+[01]\.\d{{4}}\s+[01]\.\d{{4}}\s+[01]\.\d{{4}}\s+5/5",
                         printed, re.MULTILINE), printed
    summary = json.loads(out.read_text())
    assert summary["machines"] == list(MACHINES)
    assert [(r["machine"], r["section"]) for r in summary["rows"]] == [(m, "00") for m in MACHINES]
    rows = [evaluation.SectionScores(**r) for r in summary["rows"]]
    assert summary["official_score"] == pytest.approx(evaluation.official_score(rows),
                                                      abs=1e-12)
    assert f"official score (DCASE 2023 rules, harmonic mean of 9 values): " \
           f"{summary['official_score']:.4f}" in printed
    assert len(summary["clips"]) == 60
    if method == "subcluster-adacos":
        # one joint task: (machine, section, attribute, domain) over the three machine types
        assert "12 auxiliary classes" in printed and "3 machine type(s)" in printed
        assert len(summary["classes"]) == 12


def test_the_reference_system_runs_on_all_machines(dataset, capsys):
    code, printed, err = _run(capsys, "--data", str(dataset), "--machines", "fan,valve",
                              "--system", "reference", "--method", "subcluster-adacos",
                              "--epochs", "1", "--batch-size", "16")
    assert code == 0, err
    assert "(reference system) on fan, valve" in printed
    assert "8 auxiliary classes" in printed
    assert re.search(r"^valve\s+00\s", printed, re.MULTILINE)


def test_bad_calls_fail_before_training_naming_the_folder(dataset, tmp_path, capsys,
                                                          no_training):
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "fan,toaster")
    assert code == 2 and "not available for machine 'toaster'" in err
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "bearing")
    assert code == 2 and str(Path("raw") / "bearing") in err
    code, _, err = _run(capsys, "--data", str(tmp_path), "--machines", "all")
    assert code == 2 and "no DCASE 2023 development machine folder" in err
    partial = tmp_path / "partial"
    shutil.copytree(dataset / "dcase2023t2", partial / "dcase2023t2")
    shutil.rmtree(partial / "dcase2023t2" / "dev_data" / "raw" / "gearbox" / "train")
    code, _, err = _run(capsys, "--data", str(partial), "--machines", "all")
    assert code == 2 and str(Path("gearbox") / "train") in err
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "all", "--system",
                        "reference", "--batch-size", "64")
    assert code == 2 and "--batch-size 64 exceeds the 54 training clips" in err
    short = write_dcase2023_dataset(tmp_path / "short", key=jax.random.key(2), seconds=1.0,
                                    machines=("fan",), noise=())
    code, _, err = _run(capsys, "--data", str(short), "--machines", "fan")
    assert code == 2 and "lasts 1.00 s, less than the 10 s" in err


def test_two_processes_train_as_one(dataset, tmp_path, capsys):
    # The multi-host path on one machine: two processes joined by jax.distributed (each with
    # one CPU device, the batches split over both) train, score and report exactly as one
    # process does; process 0 alone prints and writes the JSON; orbax writes the checkpoint once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["run", "--protocol", "full", "--no-progress", "--system", "logmel-cnn", "--data",
            str(dataset), "--machines", "fan", "--epochs", "2", "--batch-size", "8", "--seed",
            "3"]
    outputs = [tmp_path / f"process{i}.json" for i in range(2)]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "asdtheory.repro.cli", *args, "--coordinator",
         f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i), "--json",
         str(outputs[i]), "--checkpoint", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=600) for p in processes]
    for p, (_, err) in zip(processes, results, strict=True):
        assert p.returncode == 0, err
    assert "official score" in results[0][0] and "official score" not in results[1][0]
    assert not outputs[1].exists() and any((tmp_path / "run").iterdir())
    single = tmp_path / "single.json"
    assert cli.main([*args, "--json", str(single)]) == 0, capsys.readouterr().err
    joint, alone = (json.loads(p.read_text()) for p in (outputs[0], single))
    assert joint["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    assert [c["score"] for c in joint["clips"]] == pytest.approx(
        [c["score"] for c in alone["clips"]], rel=1e-4, abs=1e-6)
    assert joint["official_score"] == pytest.approx(alone["official_score"], abs=1e-12)


def test_incomplete_multi_host_flags_fail_before_anything_runs(dataset, capsys, no_training):
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "fan", "--coordinator",
                        "127.0.0.1:1234")
    assert code == 2 and "go together" in err
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "fan", "--coordinator",
                        "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2")
    assert code == 2 and "--process-id must lie in 0 .. 1" in err
    code, _, err = _run(capsys, "--data", str(dataset), "--machines", "fan", "--coordinator",
                        "localhost", "--num-processes", "2", "--process-id", "0")
    assert code == 2 and "HOST:PORT" in err

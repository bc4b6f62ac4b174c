"""The command line: `evaluate` on hand-computed cases, `run` + `evaluate` reproducing the
same table, `data info` and `run` checking every clip before any work, no traceback for a
user error, help for every option."""

import argparse
import re
import shutil

import jax
import numpy as np
import pytest
import soundfile as sf

from asdtheory import audio, detect
from asdtheory.data import dcase
from asdtheory.data.fixture import write_dcase2023_dataset
from asdtheory.repro import cli

# valve section 00: source normals n0 n1, target normal t0, anomalies a0 (source), a1 (target)
CLIPS = {
    "section_00_source_test_normal_0000_pat_00.wav": 0.1,
    "section_00_source_test_normal_0001_pat_01.wav": 0.5,
    "section_00_target_test_normal_0000_pat_02.wav": 0.3,
    "section_00_source_test_anomaly_0000_pat_00.wav": 0.4,
    "section_00_target_test_anomaly_0000_pat_03.wav": 0.6,
}


def write_system(folder, machine_scores):
    folder.mkdir(parents=True)
    for machine, scores in machine_scores.items():
        (folder / f"anomaly_score_{machine}_section_00_test.csv").write_text(
            "".join(f"{name},{score}\n" for name, score in scores.items()))
    return folder


@pytest.fixture
def truth(tmp_path):
    for machine in ("fan", "valve"):
        (tmp_path / "truth" / machine / "test").mkdir(parents=True)
        for name in CLIPS:
            (tmp_path / "truth" / machine / "test" / name).touch()
    return tmp_path / "truth"


def test_evaluate_follows_the_official_rules_on_a_hand_computed_case(tmp_path, truth, capsys):
    # valve, by hand:
    #   AUC source: source normals {0.1, 0.5} vs ALL anomalies {0.4, 0.6}: 3 of 4 pairs = 0.75
    #   AUC target: target normal {0.3} vs all anomalies: 2 of 2 = 1
    #   pAUC (all clips, FPR <= 0.1): ROC (0, 0) -> (0, 1/2) -> (1/3, 1/2) ..., area up to
    #   FPR 0.1 = 0.05; McClish: (1 + (0.05 - 0.005) / (0.1 - 0.005)) / 2 = 0.736842
    # fan: perfect scores (anomalies 10, 11), every value 1.
    # Official score: harmonic mean of the FLAT list of the six values
    #   6 / (1/0.75 + 1 + 1/0.736842 + 3) = 0.896797
    # (the mean of the two sections' harmonic means would be 0.906452).
    fan = dict(CLIPS)
    fan.update({n: 10.0 + i for i, n in enumerate(n for n in CLIPS if "anomaly" in n)})
    system = write_system(tmp_path / "a", {"valve": CLIPS, "fan": fan})
    assert cli.main(["evaluate", str(system), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"valve\s+00\s+0\.7500\s+1\.0000\s+0\.7368\s+2/1\s+1/1", out)
    assert re.search(r"fan\s+00\s+1\.0000\s+1\.0000\s+1\.0000", out)
    assert "harmonic mean of 6 values): 0.8968" in out
    assert "paired" not in out


def test_evaluate_compares_systems_pairwise(tmp_path, truth, capsys):
    # System b moves valve's source normal 0.5 below every anomaly: b is perfect (official
    # score 1), so a - b = 0.896797 - 1 = -0.1032 on the full data.
    fan = {n: (10.0 if "anomaly" in n else 0.0) for n in CLIPS}
    better = dict(CLIPS, **{"section_00_source_test_normal_0001_pat_01.wav": 0.2})
    a = write_system(tmp_path / "a", {"valve": CLIPS, "fan": fan})
    b = write_system(tmp_path / "b", {"valve": better, "fan": fan})
    assert cli.main(["evaluate", str(a), str(b), "--truth", str(truth), "--resamples",
                     "200"]) == 0
    out = capsys.readouterr().out
    assert "harmonic mean of 6 values): 1.0000" in out
    line = re.search(rf"{re.escape(str(a))} - {re.escape(str(b))}: (\S+) \[(\S+), (\S+)\]",
                     out)
    estimate, low, high = map(float, line.groups())
    assert estimate == -0.1032 and low <= estimate <= high <= 0.0
    assert cli.main(["evaluate", str(a), str(b), "--truth", str(truth), "--resamples",
                     "5"]) == 2
    captured = capsys.readouterr()
    assert "--resamples must be an integer >= 100" in captured.err
    assert captured.out == ""  # checked before any table is printed


def test_evaluate_rejects_a_bad_folder_with_file_and_line(tmp_path, truth, capsys):
    bad = dict(CLIPS, **{"section_00_source_test_normal_0001_pat_01.wav": "high"})
    system = write_system(tmp_path / "a", {"valve": bad, "fan": CLIPS})
    assert cli.main(["evaluate", str(system), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asdtheory: error: 1 problem(s)")
    assert "anomaly_score_valve_section_00_test.csv:2: score 'high'" in err
    assert "Traceback" not in err


def test_run_output_evaluates_to_the_same_table_and_a_saved_system_scores_the_same(
        tmp_path, capsys):
    root = write_dcase2023_dataset(tmp_path / "data", key=jax.random.key(0),
                                   machines=("fan", "valve"), seconds=4.0)
    result, saved = tmp_path / "r.json", tmp_path / "system"
    assert cli.main(["run", "--data", str(root), "--machines", "fan,valve", "--protocol",
                     "full", "--method", "autoencoder", "--epochs", "1", "--seconds", "4",
                     "--no-progress",
                     "--json", str(result), "--save", str(saved)]) == 0
    printed = capsys.readouterr().out
    folder = tmp_path / "r"  # beside --json, named after it
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{kind}_{machine}_section_00_test.csv" for kind in ("anomaly_score", "decision_result")
        for machine in ("fan", "valve")]
    decisions = (folder / "decision_result_fan_section_00_test.csv").read_text().split()
    assert len(decisions) == 20 and {d.rsplit(",", 1)[1] for d in decisions} <= {"0", "1"}
    assert cli.main(["evaluate", str(folder), "--truth", str(root)]) == 0
    table = lambda text: [line for line in text.splitlines()
                          if line.startswith(("machine ", "fan ", "valve ", "official score"))]
    assert table(capsys.readouterr().out) == table(printed) and len(table(printed)) == 4
    # The saved system scores the same test clips to the same files, decisions included.
    assert cli.main(["score", "--model", str(saved), "--data", str(root), "--output",
                     str(tmp_path / "again")]) == 0
    for path in folder.iterdir():
        again = (tmp_path / "again" / path.name).read_text().splitlines()
        ours = path.read_text().splitlines()
        assert [r.split(",")[0] for r in again] == [r.split(",")[0] for r in ours]
        np.testing.assert_allclose([float(r.split(",")[1]) for r in again],
                                   [float(r.split(",")[1]) for r in ours], rtol=1e-5)
    assert cli.main(["run", "--data", str(root), "--save", str(saved)]) == 2
    assert f"--save {saved} exists and is not empty" in capsys.readouterr().err
    # An operating-system error (here --output names an existing file) is one line too.
    blocked = folder / "anomaly_score_fan_section_00_test.csv"
    assert cli.main(["score", "--model", str(saved), "--data", str(root), "--output",
                     str(blocked)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asdtheory: error: ") and str(blocked) in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.fixture
def bad_clips(tmp_path):
    """Valve test clips that `run` cannot use (44.1 kHz, stereo, 5 s, a foreign name) beside
    good ones, in the layout of a data root."""
    test = tmp_path / "dcase2023t2" / "dev_data" / "raw" / "valve" / "test"
    test.mkdir(parents=True)
    good = np.zeros(160000, np.float32)
    names = {"rate": "section_00_source_test_normal_0000_pat_00.wav",
             "stereo": "section_00_source_test_normal_0001_pat_00.wav",
             "short": "section_00_target_test_normal_0000_pat_02.wav"}
    sf.write(test / names["rate"], np.zeros(441000, np.float32), 44100)
    sf.write(test / names["stereo"], np.zeros((160000, 2), np.float32), 16000)
    sf.write(test / names["short"], good[:80000], 16000)
    sf.write(test / "recording 7.wav", good, 16000)
    sf.write(test / "section_00_source_test_anomaly_0000_pat_00.wav", good, 16000)
    return tmp_path, names


def test_data_info_reports_every_clip_run_would_reject(bad_clips, capsys):
    root, names = bad_clips
    assert cli.main(["data", "info", str(root)]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "would reject 4 file(s):\n" in err and "cannot be used" not in err
    assert f"{names['rate']}: sample rate 44100 Hz, not 16000 Hz" in err
    assert f"{names['stereo']}: 2 channels, not 1 (mono)" in err
    assert f"{names['short']}: lasts 5.00 s, less than the 10 s every clip is cut to" in err
    assert "recording 7.wav: not a DCASE clip name" in err
    assert "pass a smaller --seconds" in err
    assert "total: 4 clips (valve: 4)" in captured.out
    # Cut to 5 s the short clip fits; the others still do not.
    assert cli.main(["data", "info", str(root), "--seconds", "5"]) == 1
    assert "lasts" not in capsys.readouterr().err
    # Cut to 20 s every clip is too short: 7 problems in 5 files (a file counts once).
    assert cli.main(["data", "info", str(root), "--seconds", "20"]) == 1
    err = capsys.readouterr().err
    assert "would reject 5 file(s):\n" in err and err.count(": lasts 10.00 s") == 3


def test_run_checks_every_clip_before_training_and_names_flags(bad_clips, capsys,
                                                               monkeypatch):
    root, names = bad_clips
    (root / "dcase2023t2" / "dev_data" / "raw" / "valve" / "test" / "recording 7.wav").unlink()
    monkeypatch.setattr(detect.train, "fit", lambda *a, **k: pytest.fail("training started"))
    train = root / "dcase2023t2" / "dev_data" / "raw" / "valve" / "train"
    train.mkdir()
    sf.write(train / "section_00_source_train_normal_0000_pat_00.wav",
             np.zeros(160000, np.float32), 16000)
    assert cli.main(["run", "--data", str(root), "--protocol", "full", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in names.values())  # every bad file at once
    assert "pass a smaller --seconds" in err and "RunConfig" not in err
    assert "resample=True" not in err and "Traceback" not in err


def test_user_errors_end_in_one_line_without_traceback(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "01_first.py").write_text("")
    cases = [
        (["verify", "--notebooks", "99", "--notebook-dir", str(notebooks)],
         "--notebooks 99: no such notebook"),
        (["verify", "--notebook-dir", str(tmp_path / "elsewhere")],
         "run `asdtheory verify` from the repository root or pass --notebook-dir"),
        (["evaluate", str(tmp_path / "none"), "--truth", str(tmp_path / "nowhere")],
         "SYSTEM_DIR "),
        (["evaluate", str(tmp_path), "--truth", str(tmp_path / "nowhere")], "--truth "),
        (["data", "info", str(tmp_path / "nowhere")], "folder not found"),
        (["verify", "--readme", str(tmp_path / "nowhere.md")], "--readme "),
        (["verify", "--readme", str(notebooks / "01_first.py")], "no claims table"),
        (["run", "--data", str(tmp_path / "nowhere")], "--data "),
        (["run", "--data", str(tmp_path), "--snr", "3"], "--noise and --snr go together"),
        (["run", "--data", str(tmp_path), "--machines", ","], "--machines is empty"),
        (["run", "--data", str(tmp_path), "--resume"], "--resume needs --checkpoint DIR"),
        (["score", "--model", str(tmp_path), "--data", str(tmp_path / "nowhere"), "--output",
          str(tmp_path / "out")], "--data "),
    ]
    for argv, message in cases:
        assert cli.main(argv) in (1, 2), argv
        err = capsys.readouterr().err
        assert "error: " in err and message in err, (argv, err)
        assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "--seconds", "0"], ["run", "--seconds", "nan"], ["run", "--epochs", "0"],
    ["run", "--batch-size", "-1"], ["run", "--seed", "-1"], ["run", "--seed", "1.5"],
    ["run", "--noise", "x", "--snr", "inf"], ["run", "--num-processes", "0"],
    ["data", "info", "--seconds", "0"], ["data", "info", "--channel", "-1"]])
def test_bad_numbers_are_rejected_by_flag_before_any_work(tmp_path, capsys, argv):
    # Without the check, --seconds 0 trained on silence and named Python's `seconds`.
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv[:2], str(tmp_path), *argv[2:]] if argv[0] == "data"
                 else [*argv, "--data", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    flag = next(a for a in argv if a.startswith("--") and a != "--noise")
    assert f"argument {flag}: " in err and "Traceback" not in err, err


def _actions(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_has_help():
    found = list(_actions(cli.build_parser(), "asdtheory"))
    assert len(found) > 40  # the walk reaches the subcommands' options
    missing = [f"{path} {action.option_strings or action.dest}" for path, action in found
               if not (action.help or "").strip()]
    assert missing == []


def test_evaluate_scores_a_section_without_anomalies_as_na(tmp_path, truth, capsys):
    # pump holds normal clips only: n/a with a warning; the official score is valve's alone
    # (by hand above: 3 / (1/0.75 + 1 + 1/0.736842) = 0.812903), fan as well as valve scored.
    pump = {n: s for n, s in CLIPS.items() if "normal" in n}
    (truth / "pump" / "test").mkdir(parents=True)
    for name in pump:
        (truth / "pump" / "test" / name).touch()
    perfect = {n: (10.0 if "anomaly" in n else 0.0) for n in CLIPS}
    a = write_system(tmp_path / "a", {"valve": CLIPS, "fan": perfect, "pump": pump})
    b = write_system(tmp_path / "b", {"valve": CLIPS, "fan": perfect, "pump": pump})
    assert cli.main(["evaluate", str(a), str(b), "--truth", str(truth), "--resamples",
                     "100"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"pump\s+00\s+n/a\s+n/a\s+n/a\s+2/1\s+0/0", captured.out)
    assert "harmonic mean of 6 values of the 2 scorable of 3 sections): 0.8968" in captured.out
    assert "- " in captured.out.splitlines()[-1]  # the comparison ran on the rest
    assert ("asdtheory: warning: machine 'pump', section '00' is scored n/a: is_anomaly "
            "contains only normal (0) labels") in captured.err
    assert captured.err.count("warning:") == 1, captured.err  # not once per system


def test_run_scores_a_section_without_anomalies_as_na_and_the_rest(tmp_path, capsys):
    # fan's test split holds normal clips only: the run goes on, fan is n/a with ONE warning
    # (not one per table computed), the official score is valve's three values.
    root = write_dcase2023_dataset(tmp_path / "data", key=jax.random.key(0),
                                   machines=("fan", "valve"), seconds=4.0)
    for path in (root / "dcase2023t2" / "dev_data" / "raw" / "fan" / "test").glob("*anomaly*"):
        path.unlink()
    assert cli.main(["run", "--data", str(root), "--machines", "fan,valve", "--protocol",
                     "full", "--method", "autoencoder", "--epochs", "1", "--seconds", "4",
                     "--no-progress", "--output", str(tmp_path / "scores")]) == 0
    captured = capsys.readouterr()
    assert re.search(r"fan\s+00\s+n/a\s+n/a\s+n/a\s+5/5\s+0/0", captured.out)
    assert re.search(r"valve\s+00(\s+[01]\.\d{4}){3}\s+5/5\s+5/5", captured.out)
    assert "harmonic mean of 3 values of the 1 scorable of 2 sections): " in captured.out
    assert ("asdtheory: warning: machine 'fan', section '00' is scored n/a: is_anomaly "
            "contains only normal (0) labels") in captured.err
    assert captured.err.count("warning:") == 1, captured.err
    assert (tmp_path / "scores" / "anomaly_score_fan_section_00_test.csv").is_file()


def test_evaluate_on_the_mini_protocol_takes_its_140_test_clips(shared_data, tmp_path, capsys):
    from asdtheory.data.submission import truth_clips, write_submission

    truth = truth_clips(shared_data, protocol="mini")
    scores = np.array([float(c.is_anomaly) for c in truth])  # a perfect system
    write_submission(tmp_path / "mini", truth, scores)
    assert cli.main(["evaluate", str(tmp_path / "mini"), "--truth", str(shared_data),
                     "--protocol", "mini"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"valve\s+00\s+1\.0000\s+1\.0000\s+1\.0000\s+20/20\s+50/50", out)
    # Against every labelled test clip of the data root, the 60 training clips are missing.
    assert cli.main(["evaluate", str(tmp_path / "mini"), "--truth", str(shared_data)]) == 2
    assert "no score for 60 of the 200 test clips" in capsys.readouterr().err


def test_run_errors_name_flags_not_python_arguments(shared_data, capsys, monkeypatch):
    monkeypatch.setattr(detect.train, "fit", lambda *a, **k: pytest.fail("training started"))
    assert cli.main(["run", "--data", str(shared_data), "--machines", "fan", "--protocol",
                     "mini"]) == 2
    err = capsys.readouterr().err
    assert "pass --protocol full" in err and "protocol='full'" not in err
    assert cli.main(["run", "--data", str(shared_data), "--protocol", "mini", "--system",
                     "reference", "--batch-size", "64", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size 64 exceeds the 60 training clips" in err
    assert "pass a smaller --batch-size" in err and "batch_size" not in err


def test_library_advice_on_audio_files_reads_as_command_line_steps(tmp_path):
    # The library's own messages, translated: a stale translation table fails here.
    sf.write(tmp_path / "rate.wav", np.zeros(4410, np.float32), 44100)
    sf.write(tmp_path / "stereo.wav", np.zeros((1600, 2), np.float32), 16000)
    for name in ("rate.wav", "stereo.wav"):
        with pytest.raises(ValueError) as raised:
            audio.load(tmp_path / name)
        message = cli.in_flags(str(raised.value))
        assert "`sox in.wav" in message and "=" not in message, message


class _ClosedPipe:
    """A stdout whose reader has gone (`asdtheory ... | head`)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_a_closed_pipe_is_no_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    argv = ["experiment", "status", "c1", "--size", "smoke", "--results", str(tmp_path)]
    assert cli.main(argv) == 141
    assert capsys.readouterr().err == ""


@pytest.fixture
def mimii_originals(tmp_path):
    """A MIMII folder of 8-channel recordings (the layout of the public archives): fan id_00
    and id_02, each four normal and two abnormal clips of 3 s."""
    rng = np.random.default_rng(0)
    for machine_id in ("id_00", "id_02"):
        for label, count in (("normal", 4), ("abnormal", 2)):
            folder = tmp_path / "mimii" / "fan" / machine_id / label
            folder.mkdir(parents=True)
            for index in range(count):
                sf.write(folder / f"{index:08d}.wav",
                         0.1 * rng.standard_normal((48000, 8)).astype(np.float32), 16000)
    return tmp_path


def test_run_on_mimii_originals_needs_a_channel_before_training(mimii_originals, capsys,
                                                                monkeypatch):
    monkeypatch.setattr(detect.train, "fit", lambda *a, **k: pytest.fail("training started"))
    assert cli.main(["run", "--protocol", "mimii", "--data", str(mimii_originals),
                     "--seconds", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "hold several channels" in err and "with --channel N (0 to 7), e.g. --channel 0" in err
    assert "channel=" not in err and "Traceback" not in err
    # one clip at another sample rate: named, still before training
    odd = mimii_originals / "mimii" / "fan" / "id_00" / "normal" / "00000001.wav"
    sf.write(odd, np.zeros((44100, 8), np.float32), 44100)
    assert cli.main(["run", "--protocol", "mimii", "--data", str(mimii_originals),
                     "--channel", "3", "--seconds", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "00000001.wav" in err and "44100" in err
    # the channel choice is refused where no MIMII recording is read
    assert cli.main(["run", "--protocol", "mini", "--channel", "0", "--data",
                     str(mimii_originals)]) == 2
    assert "protocol 'mini' reads none" in capsys.readouterr().err


def test_run_on_mimii_originals_trains_on_the_chosen_channel(mimii_originals, tmp_path, capsys,
                                                             monkeypatch):
    scores = tmp_path / "scores"
    assert cli.main(["run", "--protocol", "mimii", "--data", str(mimii_originals),
                     "--channel", "3", "--seconds", "3", "--system", "logmel-cnn",
                     "--epochs", "1", "--batch-size", "2", "--no-progress", "--output",
                     str(scores)]) == 0
    captured = capsys.readouterr()
    # fold 0: normal clips 0-1 train; 2-3 and both abnormal clips test; MIMII: 2020 rules
    for section in ("00", "02"):
        assert re.search(rf"^fan\s+{section}\s+\d\.\d{{4}}\s+\d\.\d{{4}}\s+2/0\s+2/0$",
                         captured.out, re.MULTILINE)
    assert "official score (DCASE 2020 rules, arithmetic mean of 4 values)" in captured.out
    # MIMII names repeat in normal/ and abnormal/: the files use the DCASE 2020 names
    rows = (scores / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == [
        "anomaly_id_00_00000000.wav", "anomaly_id_00_00000001.wav",
        "normal_id_00_00000002.wav", "normal_id_00_00000003.wav"]
    # a k-means centre per training clip scores them all 0: no threshold, said, no file
    assert "no decision_result file for machine 'fan' section 00" in captured.err
    assert not list(scores.glob("decision_result_*"))
    # 1-s clips are too short for one example of the log-mel CNN: the fix is a flag
    assert cli.main(["run", "--protocol", "mimii", "--data", str(mimii_originals),
                     "--channel", "3", "--seconds", "1", "--system", "logmel-cnn",
                     "--no-progress"]) == 2
    assert "pass a larger --seconds" in capsys.readouterr().err
    # one machine ID: one class, no auxiliary task; said before any training
    shutil.rmtree(mimii_originals / "mimii" / "fan" / "id_02")
    monkeypatch.setattr(detect.train, "fit", lambda *a, **k: pytest.fail("training started"))
    assert cli.main(["run", "--protocol", "mimii", "--data", str(mimii_originals),
                     "--channel", "3", "--seconds", "3", "--fold", "1", "--machines", "fan",
                     "--system", "logmel-cnn", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "needs at least 2 classes" in err and "mimii fan fold 1 of 2" in err


@pytest.mark.skipif(not (dcase.data_root() / "mimii" / "fan").is_dir()
                    or not (dcase.data_root() / "dcase2020t2").is_dir(),
                    reason="the real recordings of ../shared/data (set ASDTHEORY_DATA)")
def test_run_on_the_machines_at_hand_pools_three_datasets_in_one_table(capsys):
    assert cli.main(["run", "--protocol", "at-hand", "--fold", "1", "--seconds", "3",
                     "--system", "logmel-cnn", "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on valve, slider, fan (at-hand protocol" in out
    # valve under the DCASE 2023 rules, fan under 2020's; slider only trains (no row)
    assert re.search(r"^valve\s+00\s+(\d\.\d{4}\s+){3}20/20\s+50/50$", out, re.MULTILINE)
    assert re.search(r"^fan\s+00\s+(\d\.\d{4}\s+){2}10/0\s+20/0$", out, re.MULTILINE)
    assert not re.search(r"^slider\s", out, re.MULTILINE)
    assert "official score (pooled: DCASE 2020 and 2023 rules, harmonic mean of 5 values)" in out

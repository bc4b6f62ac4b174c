"""DCASE submission files: names and rows as the DCASE 2023 baseline writes them, the gamma
decision threshold, exact round trips, and a reader that rejects every malformed folder with
the file and line."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from asdtheory.data import dcase
from asdtheory.data.submission import (
    decision_threshold,
    read_scores,
    submission_name,
    truth_clips,
    write_submission,
)

NAMES = [  # one section's test clips: 2 source normals, 1 target normal, 2 anomalies
    "section_00_source_test_normal_0000_pat_00.wav",
    "section_00_source_test_normal_0001_pat_01.wav",
    "section_00_target_test_normal_0000_pat_02.wav",
    "section_00_source_test_anomaly_0000_pat_00.wav",
    "section_00_target_test_anomaly_0000_pat_03.wav",
]


def make_truth(root: Path, machines=("valve",), touch=True) -> list[dcase.ClipInfo]:
    """Empty files under <root>/<machine>/test/: the ground truth is in the names alone."""
    for machine in machines:
        folder = root / machine / "test"
        folder.mkdir(parents=True, exist_ok=True)
        for name in NAMES:
            (folder / name).touch()
    return truth_clips(root)


def test_file_names_and_rows_are_the_baseline_format(tmp_path):
    truth = make_truth(tmp_path / "data")
    scores = np.array([0.5, 0.25, 1.5, 2.0, 3.0])
    order = np.argsort([c.path.name for c in truth])
    written = write_submission(tmp_path / "out", truth, scores)
    assert [p.name for p in written] == ["anomaly_score_valve_section_00_test.csv"]
    lines = written[0].read_text().splitlines()
    # No header; '<file name>,<score>' sorted by file name.
    assert lines == [f"{truth[i].path.name},{float(scores[i])!r}" for i in order]
    assert submission_name("decision_result", "ToyCar", 3) == \
        "decision_result_ToyCar_section_03_test.csv"


def test_scores_round_trip_exactly(tmp_path):
    truth = make_truth(tmp_path / "data", machines=("fan", "valve"))
    scores = np.array([0.1 + 0.2, 1e-300, -7.25, 1 / 3, 2.0**60] * 2)
    write_submission(tmp_path / "out", truth, scores)
    np.testing.assert_array_equal(read_scores(tmp_path / "out", truth), scores)


def test_decision_threshold_is_the_gamma_90th_percentile():
    # Naive reference: for many draws of a known gamma distribution the fitted 90th
    # percentile approaches the true one (shape 2, location 1, scale 0.5).
    draws = stats.gamma.rvs(2.0, loc=1.0, scale=0.5, size=20000,
                            random_state=np.random.default_rng(0))
    want = stats.gamma.ppf(0.9, 2.0, loc=1.0, scale=0.5)
    assert decision_threshold(draws) == pytest.approx(want, rel=0.01)
    # Between the 85th and 95th percentiles of the sample itself, so not the mean or median.
    assert np.quantile(draws, 0.85) < decision_threshold(draws) < np.quantile(draws, 0.95)
    with pytest.raises(ValueError, match="same anomaly score"):
        decision_threshold([1.0, 1.0, 1.0])


def test_decisions_compare_each_score_with_its_sections_threshold(tmp_path):
    truth = make_truth(tmp_path / "data", machines=("fan", "valve"))
    train = [dcase.parse_filename(tmp_path / machine / "train" /
                                  f"section_00_source_train_normal_{i:04d}_pat_00.wav")
             for machine in ("fan", "valve") for i in range(6)]
    # valve's training scores lie ten times higher than fan's: one threshold each.
    train_scores = np.r_[[1.0, 1.2, 0.9, 1.1, 1.4, 1.0], 10 * np.array([1.0, 1.2, 0.9, 1.1,
                                                                       1.4, 1.0])]
    scores = np.r_[[0.5, 1.3, 2.0, 5.0, 30.0], [0.5, 1.3, 2.0, 5.0, 30.0]]
    out = tmp_path / "out"
    write_submission(out, truth, scores, train_clips=train, train_scores=train_scores)
    for machine, section_scores in (("fan", train_scores[:6]), ("valve", train_scores[6:])):
        threshold = decision_threshold(section_scores)
        given = {c.path.name: s for c, s in zip(truth, scores, strict=True)
                 if c.machine == machine}
        rows = (out / f"decision_result_{machine}_section_00_test.csv").read_text().split()
        assert rows == [f"{name},{int(given[name] > threshold)}" for name in sorted(given)]
    decided = (out / "decision_result_valve_section_00_test.csv").read_text()
    assert decided.count(",1") == 1  # only 30 exceeds valve's threshold (~ 13)


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda lines: lines[:2] + lines[3:],
     r"anomaly_score_valve_section_00_test\.csv: no score for 1 of the 5 test clips: "
     r"section_00_source_test_normal_0001_pat_01\.wav; add a row"),
    (lambda lines: [*lines, lines[1]],
     r"anomaly_score_valve_section_00_test\.csv:6: clip section_00_source_test_normal_0000_"
     r"pat_00\.wav already scored on line 2; keep one row per clip"),
    (lambda lines: [*lines[:2], lines[2].split(",")[0] + ",abc", *lines[3:]],
     r"anomaly_score_valve_section_00_test\.csv:3: score 'abc' of section_00_source_test_"
     r"normal_0001_pat_01\.wav is not a number; write the anomaly score as a decimal number"),
    (lambda lines: [*lines[:3], lines[3].split(",")[0] + ",nan", *lines[4:]],
     r"_test\.csv:4: score 'nan' of .* is not finite"),
    (lambda lines: [*lines[:4], lines[4] + ",1"],
     r"_test\.csv:5: expected two fields"),
    (lambda lines: [*lines, "section_00_source_test_normal_0099_pat_00.wav,1.0"],
     r"_test\.csv:6: section_00_source_test_normal_0099_pat_00\.wav is not a test clip of this "
     r"machine and section"),
])
def test_reader_rejects_a_bad_row_naming_file_line_and_fix(tmp_path, corrupt, message):
    truth = make_truth(tmp_path / "data")
    out = tmp_path / "out"
    path, = write_submission(out, truth, np.arange(5.0))
    path.write_text("\n".join(corrupt(path.read_text().splitlines())) + "\n")
    with pytest.raises(ValueError, match=message):
        read_scores(out, truth)


def test_reader_rejects_unknown_and_missing_files_and_reports_all_at_once(tmp_path):
    truth = make_truth(tmp_path / "data", machines=("fan", "valve"))
    out = tmp_path / "out"
    write_submission(out, truth, np.arange(10.0))
    (out / "anomaly_score_fan_section_00_test.csv").rename(
        out / "anomaly_score_pump_section_00_test.csv")
    (out / "anomaly_score_valve_section_00_test.csv").write_text("x.wav,1\n")
    (out / "decision_result_fan_section_00_test.csv").write_text("ignored")  # not read
    with pytest.raises(ValueError) as raised:
        read_scores(out, truth)
    text = str(raised.value)
    assert text.startswith(f"4 problem(s) with the score files in {out}")
    assert "anomaly_score_pump_section_00_test.csv: scores machine 'pump' section 00, which " \
           "the ground truth does not hold (it holds fan section 00, valve section 00)" in text
    assert "anomaly_score_fan_section_00_test.csv: missing; the ground truth has 5 test clips " \
           "of machine 'fan' section 00" in text
    assert "anomaly_score_valve_section_00_test.csv:1: x.wav is not a test clip" in text
    assert "anomaly_score_valve_section_00_test.csv: no score for 5 of the 5" in text


def test_truth_is_the_labelled_test_clips_of_the_named_folders(tmp_path):
    root = tmp_path / "dcase2023t2" / "dev_data" / "raw"
    make_truth(root, machines=("fan", "valve"))
    (root / "valve" / "train").mkdir()
    (root / "valve" / "train" / "section_00_source_train_normal_0000_pat_00.wav").touch()
    (root / "valve" / "test" / "section_00_0000.wav").touch()  # evaluation clip: no label
    (root / "noise.wav").touch()
    # A DCASE 2020 test clip (its domain "source" is not in its name) is no 2021-2024 truth.
    (root / "valve" / "test" / "anomaly_id_00_00000000.wav").touch()
    truth = truth_clips(tmp_path)
    assert [(c.machine, c.path.name) for c in truth] == \
        [(m, n) for m in ("fan", "valve") for n in sorted(NAMES)]
    assert truth_clips(root / "valve" / "test") == truth[5:]
    copy = tmp_path / "copy" / "valve" / "test"
    copy.mkdir(parents=True)
    (copy / NAMES[0]).touch()
    with pytest.raises(ValueError, match="holds clip section_00_source_test_normal_0000_pat_00"
                                         r"\.wav of machine 'valve' twice"):
        truth_clips(tmp_path)
    with pytest.raises(ValueError, match="no labelled DCASE test clips"):
        truth_clips(root / "valve" / "train")

"""The claim line, the JSON record and the number formatting."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asdtheory.evaluation import PairedDifference
from asdtheory.repro import claims
from asdtheory.repro.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    claim,
    fmt,
    fmt_e,
    fmt_interval,
    from_interval,
    load_records,
    records,
)


@pytest.fixture
def claims_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_DIR_ENV, str(tmp_path / "claims"))
    return tmp_path / "claims"


def test_claim_prints_the_exact_line_and_writes_the_record(claims_dir, capsys):
    figures = {"violations": np.int64(0), "n": 100000, "max_gap": jnp.float32(0.1234567891),
               "per_loss": {"arcface": np.float64(2 / 3)}, "curve": np.array([0.5, 0.25]),
               "ok": np.bool_(True)}
    record = claim("C1.a", SUPPORTED, "violations 0 of 100000 random configurations",
                   statement="Angular margin losses bound the compactness loss.",
                   figures=figures, notebook="01_compactness")
    assert capsys.readouterr().out == (
        "CLAIM C1.a SUPPORTED | violations 0 of 100000 random configurations\n")
    on_disk = json.loads((claims_dir / "C1.a.json").read_text())
    assert on_disk == {
        "id": "C1.a",
        "verdict": "SUPPORTED",
        "statement": "Angular margin losses bound the compactness loss.",
        "summary": "violations 0 of 100000 random configurations",
        "figures": {"violations": 0, "n": 100000, "max_gap": 0.123457,
                    "per_loss": {"arcface": 0.666667}, "curve": [0.5, 0.25], "ok": True},
        "notebook": "01_compactness",
    }
    assert load_records(claims_dir) == [record]
    assert record.verdict == SUPPORTED and record in records()


def test_three_verdicts_and_repeated_ids(claims_dir, capsys):
    claim("C3.x", SUPPORTED, "first", statement="s")
    second = claim("C3.x", CONTRADICTED, "AUC 0.512 vs 0.730", statement="s")
    third = claim("C3.y", INCONCLUSIVE, "diff 0.01 [-0.03, 0.05]", statement="s",
                  detectable="0.040 AUC")
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["CLAIM C3.x CONTRADICTED | AUC 0.512 vs 0.730",
                          "CLAIM C3.y INCONCLUSIVE | diff 0.01 [-0.03, 0.05]; detectable effect "
                          "0.040 AUC"]
    assert [r for r in records() if r.id == "C3.x"] == [second]
    assert load_records(claims_dir) == [second, third]


def test_no_file_without_the_environment_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(claims.CLAIMS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    claim("C9.z", CONTRADICTED, "n/a", statement="s")
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().out == "CLAIM C9.z CONTRADICTED | n/a\n"


@pytest.mark.parametrize(
    ("low", "high", "verdict", "detectable"),
    [(0.001, 0.2, SUPPORTED, None), (-0.2, -0.001, CONTRADICTED, None),
     (-0.02, 0.04, INCONCLUSIVE, "0.030 AUC"), (0.0, 0.1, INCONCLUSIVE, "0.050 AUC"),
     (-0.1, 0.0, INCONCLUSIVE, "0.050 AUC")],
)
def test_from_interval(low, high, verdict, detectable):
    diff = PairedDifference(estimate=(low + high) / 2, low=low, high=high, level=0.95,
                            n_resamples=1000)
    assert from_interval(diff, unit="AUC") == (verdict, detectable)


@pytest.mark.parametrize(
    ("low", "high", "verdict", "detectable"),
    [(0.002, 0.222, INCONCLUSIVE, "0.155 AUC"), (0.046, 0.2, SUPPORTED, None),
     (-0.2, -0.044, INCONCLUSIVE, "0.123 AUC"), (-0.2, -0.046, CONTRADICTED, None)],
)
def test_from_interval_must_clear_the_rounding_resolution(low, high, verdict, detectable):
    # C5.d on AMD Zen 4: [0.002, 0.222], on an Intel Xeon [-0.029, 0.200]; the lower end moved
    # by more than it cleared 0, so the verdict belongs to the rounding, not to the data.
    diff = PairedDifference(estimate=(low + high) / 2, low=low, high=high, level=0.95,
                            n_resamples=1000)
    assert from_interval(diff, unit="AUC", resolution=0.045) == (verdict, detectable)


def test_from_interval_and_fmt_interval_bad_input():
    with pytest.raises(ValueError, match="low <= high"):
        from_interval(PairedDifference(0.0, 0.1, -0.1, 0.95, 100), unit="AUC")
    with pytest.raises(ValueError, match="unit must be a non-empty string"):
        from_interval(PairedDifference(0.0, -0.1, 0.1, 0.95, 100), unit="")
    for resolution in (-0.01, float("nan")):
        with pytest.raises(ValueError, match="resolution must be a measured move"):
            from_interval(PairedDifference(0.0, -0.1, 0.1, 0.95, 100), unit="AUC",
                          resolution=resolution)
    assert fmt_interval(PairedDifference(-0.00004, -0.0301, 0.0299, 0.95, 100)) == \
        "0.000 [-0.030, 0.030]"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("C 1", SUPPORTED, "x"), {}, "claim_id must look like"),
        (("C1.a/../x", SUPPORTED, "x"), {}, "claim_id must look like"),
        (("C1.a", True, "x"), {}, "verdict must be one of"),
        (("C1.a", "NOT SUPPORTED", "x"), {}, "verdict must be one of"),
        (("C1.a", INCONCLUSIVE, "x"), {}, "must state the smallest effect"),
        (("C1.a", SUPPORTED, "x"), {"detectable": "0.1 AUC"}, "must state the smallest effect"),
        (("C1.a", INCONCLUSIVE, "x"), {"detectable": ""}, "detectable must be a non-empty"),
        (("C1.a", SUPPORTED, ""), {}, "summary must be a non-empty string"),
        (("C1.a", SUPPORTED, "two\nlines"), {}, "summary must be a single line"),
        (("C1.a", SUPPORTED, "x"), {"statement": None}, "statement must be a non-empty string"),
        (("C1.a", SUPPORTED, "x"), {"figures": [1, 2]}, "figures must be a dict"),
        (("C1.a", SUPPORTED, "x"), {"figures": {"auc": float("nan")}},
         r"figures\['auc'\] is nan"),
        (("C1.a", SUPPORTED, "x"), {"figures": {"a": {"b": [1.0, np.inf]}}},
         r"figures\['a'\]\['b'\]\[1\] is inf"),
        (("C1.a", SUPPORTED, "x"), {"figures": {1: 2.0}}, "non-string key"),
        (("C1.a", SUPPORTED, "x"), {"figures": {"f": object()}}, "which JSON cannot hold"),
    ],
)
def test_bad_claims_are_rejected(args, kwargs, match, claims_dir):
    kwargs = {"statement": "s"} | kwargs
    with pytest.raises(ValueError, match=match):
        claim(*args, **kwargs)
    assert not claims_dir.exists()


def test_load_records_rejects_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_records(tmp_path / "missing")
    (tmp_path / "C1.a.json").write_text('{"id": "C1.a"}')
    with pytest.raises(ValueError, match="is not a claim record"):
        load_records(tmp_path)
    record = dict(id="C1.b", verdict="MAYBE", statement="s", summary="x", figures={},
                  notebook=None)
    (tmp_path / "C1.a.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="has verdict 'MAYBE'"):
        load_records(tmp_path)


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [(-0.0001, 3, "0.000"), (-0.0, 2, "0.00"), (-0.0006, 3, "-0.001"), (2 / 3, 3, "0.667"),
     (np.float32(1.5), 1, "1.5"), (jnp.asarray(0.25), 2, "0.25"), (7, 0, "7"),
     (123.456, 1, "123.5"), (float("nan"), 3, "nan")],
)
def test_fmt(x, digits, expected):
    assert fmt(x, digits) == expected


@given(st.floats(-1e6, 1e6), st.integers(0, 6))
def test_fmt_rounds_like_round_and_never_prints_negative_zero(x, digits):
    text = fmt(x, digits)
    assert float(text) == pytest.approx(round(x, digits), abs=10.0 ** -digits)
    assert not (text.startswith("-") and float(text) == 0)
    assert len(text.split(".")[1]) == digits if digits else "." not in text


@pytest.mark.parametrize(("x", "digits"), [("0.5", 3), (np.ones(2), 3), (True, 3), (1.0, -1),
                                           (1.0, 2.0)])
def test_fmt_bad_input(x, digits):
    with pytest.raises(ValueError, match="must be"):
        fmt(x, digits)


@pytest.mark.parametrize(
    ("x", "digits", "below", "expected"),
    [(8.33e-16, 2, 1e-12, "< 1e-12"), (-7.49e-15, 2, 1e-12, "< 1e-12"),
     (2e-12, 1, 1e-12, "2.0e-12"), (0.0, 1, 0.0, "0.0e+00"), (-3.1e-6, 1, 1e-5, "< 1e-05"),
     (np.float32(0.5), 2, 1e-3, "5.00e-01")],
)
def test_fmt_e_reports_values_below_the_noise_floor_as_a_bound(x, digits, below, expected):
    assert fmt_e(x, digits, below=below) == expected


@pytest.mark.parametrize(("x", "digits", "below"), [("1", 1, 0.0), (1.0, -1, 0.0), (1.0, 1, -1.0),
                                                    (1.0, 1, float("nan"))])
def test_fmt_e_bad_input(x, digits, below):
    with pytest.raises(ValueError, match="must be"):
        fmt_e(x, digits, below=below)


def test_all_of_combines_parts_honestly():
    from asdtheory.repro.claims import all_of
    s, c, i = (SUPPORTED, None), (CONTRADICTED, None), (INCONCLUSIVE, "0.1 AUC")
    assert all_of(s, s) == s
    assert all_of(s, c, i) == c
    assert all_of(s, i, (INCONCLUSIVE, "0.2 AUC")) == (INCONCLUSIVE, "0.1 AUC; 0.2 AUC")
    with pytest.raises(ValueError, match="at least one"):
        all_of()
    with pytest.raises(ValueError, match="each part must be"):
        all_of((INCONCLUSIVE, None))

"""The claim line, the JSON record and the number formatting."""

import json

import jax
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
    WITHHELD,
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


def test_report_prints_the_statement_then_the_claim_line(claims_dir, capsys):
    criteria = {"C9.r": {"statement": "A beats B.", "delta": 0.02,
                         "comparisons": {"A - B": None, "A - C": None}}}
    intervals = iter([PairedDifference(0.05, 0.03, 0.07, 0.95, 10),
                      PairedDifference(0.0, -0.01, 0.01, 0.95, 10)])
    (result,) = claims.judge(criteria, lambda spec, terms, key: next(intervals), seed=0,
                             unit="AUC")
    record = claims.report(result, notebook="09_demo")
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["C9.r: A beats B.", f"CLAIM C9.r CONTRADICTED | {result.summary}"]
    assert record.figures == {"A - B": [0.05, 0.03, 0.07], "A - C": [0.0, -0.01, 0.01],
                              "delta": 0.02}
    # a gate applied after judging replaces the verdict, and its detectable effect is shown
    capped = claims.report(result, notebook="09_demo",
                           verdict=(INCONCLUSIVE, "settled runs"))
    assert capped.verdict == INCONCLUSIVE and capped.summary.endswith(
        "; detectable effect settled runs")


def test_report_together_combines_results_judged_against_their_own_deltas(claims_dir, capsys):
    criteria = {"C9.d purity": {"statement": "A is purer.", "delta": 0.05,
                                "comparisons": {"A - B": None}},
                "C9.d AUC": {"statement": "A detects.", "delta": 0.03,
                             "comparisons": {"A - C": None}}}
    intervals = iter([PairedDifference(0.08, 0.06, 0.10, 0.95, 10),
                      PairedDifference(0.01, -0.02, 0.04, 0.95, 10)])
    results = claims.judge(criteria, lambda spec, terms, key: next(intervals), seed=0,
                           unit="x")
    record = claims.report_together("C9.d", results, statement="A wins.", notebook="09_demo")
    out = capsys.readouterr().out.splitlines()
    assert out[-4:-1] == ["C9.d: A wins.", "  C9.d purity: SUPPORTED",
                          "  C9.d AUC: INCONCLUSIVE"]
    assert record.verdict == INCONCLUSIVE and "detectable effect" in record.summary
    assert record.summary.startswith(f"C9.d purity SUPPORTED: {results[0].summary}; ")
    assert record.figures == {"C9.d purity": {"A - B": [0.08, 0.06, 0.1], "delta": 0.05},
                              "C9.d AUC": {"A - C": [0.01, -0.02, 0.04], "delta": 0.03}}


def test_show_criteria_states_each_claim_and_a_shared_reason_once(capsys):
    spec = {"statement": "A beats B.", "comparisons": {"A - B": None}, "criterion": "t",
            "delta": 0.03, "delta_reason": "one tenth of the headroom"}
    claims.show_criteria({"C9.a": spec, "C9.b": spec | {"statement": "A beats C."}},
                         unit="hmean")
    out = capsys.readouterr().out
    assert "C9.a: A beats B.\n  comparisons: A - B\n  criterion: t\n" in out
    assert out.count("one tenth of the headroom") == 1
    assert out.endswith("why 0.030 hmean: one tenth of the headroom.\n")
    claims.show_criteria({"C9.a": spec | {"unit": "AUC"}, "C9.b": spec | {"delta_reason": "x"}})
    out = capsys.readouterr().out
    assert "0.030 AUC, because one tenth of the headroom." in out and "why" not in out
    per_measure = {k: v for k, v in spec.items() if k != "delta"} | {
        "deltas": {"purity": 0.05, "AUC": 0.03}}
    claims.show_criteria({"C9.d": per_measure})
    assert "smallest effect of interest: 0.050 purity, 0.030 AUC, because one tenth" in (
        capsys.readouterr().out)


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
    # a part not judged: the whole is not judged either, unless another part contradicts it
    w = (WITHHELD, None)
    assert all_of(s, w) == all_of(w, i) == all_of(w) == w
    assert all_of(w, c) == c
    with pytest.raises(ValueError, match="each part must be"):
        all_of((WITHHELD, "0.1 AUC"))


def test_any_of_needs_one_supported_part_and_every_part_to_contradict():
    from asdtheory.repro.claims import any_of
    s, c, i = (SUPPORTED, None), (CONTRADICTED, None), (INCONCLUSIVE, "0.1 AUC")
    assert any_of(c, s) == s
    assert any_of(c, i, s) == s
    assert any_of(c, c) == c
    assert any_of(c, i, (INCONCLUSIVE, "0.2 AUC")) == (INCONCLUSIVE, "0.1 AUC; 0.2 AUC")
    with pytest.raises(ValueError, match="at least one"):
        any_of()
    with pytest.raises(ValueError, match="each part must be"):
        any_of((SUPPORTED, "0.1 AUC"))
    w = (WITHHELD, None)
    assert any_of(w, s) == s
    assert any_of(w, c) == any_of(w, i) == w


def test_a_withheld_claim_states_its_reason_and_nothing_else(claims_dir, capsys):
    from asdtheory.repro.claims import ClaimResult, report
    result = ClaimResult("C9.w", "A beats B.", WITHHELD, None, (), 0.02, "AUC",
                         reason="A detects the anomaly with mean AUC 0.55 < 0.80")
    record = report(result, notebook="06_rise")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "CLAIM C9.w WITHHELD | no verdict: A detects the anomaly with mean AUC 0.55 < 0.80")
    assert load_records(claims_dir) == [record]
    with pytest.raises(ValueError, match="a WITHHELD claim has a reason"):
        ClaimResult("C9.w", "A beats B.", WITHHELD, None, (), 0.02, "AUC")
    with pytest.raises(ValueError, match="a WITHHELD claim has a reason"):
        ClaimResult("C9.w", "A beats B.", SUPPORTED, None, (), 0.02, "AUC", reason="r")


# ---------------------------------------------------------------------------- decide


@pytest.mark.parametrize("low, high, verdict, detectable, reading", [
    (0.03, 0.09, SUPPORTED, None, "above 0"),
    (0.001, 0.015, SUPPORTED, None, "above 0; real but small: below 0.020 AUC"),
    (-0.01, 0.015, CONTRADICTED, None,
     "an effect of 0.020 AUC is excluded; absent (the interval holds 0)"),
    (-0.09, -0.01, CONTRADICTED, None,
     "an effect of 0.020 AUC is excluded; reversed (the interval lies below 0)"),
    (-0.01, 0.05, INCONCLUSIVE, "0.060 AUC", "holds 0 and 0.020 AUC"),
    (0.0, 0.02, INCONCLUSIVE, "0.020 AUC", "holds 0 and 0.020 AUC"),  # ends count as held
])
def test_decide_has_one_branch_per_reading(low, high, verdict, detectable, reading):
    decision = claims.decide(PairedDifference((low + high) / 2, low, high, 0.95, 1000),
                             delta=0.02, unit="AUC")
    assert (decision.verdict, decision.detectable, decision.reading) == \
        (verdict, detectable, reading)
    assert decision.part == (verdict, detectable)


@given(st.floats(-1, 1), st.floats(0, 1), st.floats(1e-3, 1))
def test_decide_never_leaves_an_interval_narrower_than_delta_undecided(low, width, delta):
    decision = claims.decide(PairedDifference(low, low, low + width, 0.95, 1000), delta=delta,
                             unit="AUC")
    if width < delta:
        assert decision.verdict != INCONCLUSIVE
    if decision.verdict == INCONCLUSIVE:
        assert float(decision.detectable.split()[0]) == pytest.approx(width, abs=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": 0.0}, "delta"), ({"delta": -0.1}, "delta"), ({"delta": 0.02, "unit": ""}, "unit"),
])
def test_decide_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        claims.decide(PairedDifference(0.0, -0.1, 0.1, 0.95, 1000), **{"unit": "AUC", **kwargs})
    with pytest.raises(ValueError, match="low <= high"):
        claims.decide(PairedDifference(0.0, 0.1, -0.1, 0.95, 1000), delta=0.02, unit="AUC")


# ---------------------------------------------------------------------------- bootstrap


def _naive_hierarchical_bootstrap(values, statistic, strata, key, n_resamples, level):
    """The two-level resampling written out clip by clip, from the same random draws."""
    k_seeds, k_clips = jax.random.split(key)
    num_seeds, most = len(values), max(len(v) for v in values)
    seeds = np.asarray(jax.random.randint(k_seeds, (n_resamples, num_seeds), 0, num_seeds))
    uniform = np.asarray(jax.random.uniform(k_clips, (n_resamples, num_seeds, most)),
                         np.float64)
    averages = []
    for b in range(n_resamples):
        total = 0.0
        for j in range(num_seeds):
            seed = seeds[b, j]
            drawn = []
            for p in range(len(values[seed])):
                members = [i for i in range(len(values[seed]))
                           if strata[seed][i] == strata[seed][p]]
                drawn.append(members[min(int(uniform[b, j, p] * len(members)),
                                         len(members) - 1)])
            total += statistic(values[seed][drawn])
        averages.append(total / num_seeds)
    return np.quantile(averages, [(1 - level) / 2, (1 + level) / 2])


def test_hierarchical_bootstrap_matches_a_naive_reference():
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(n, 2)) for n in (7, 9, 8)]  # seeds with different clip counts
    strata = [rng.integers(0, 2, size=len(v)) for v in values]

    def statistic(v):
        return float(np.mean(v[:, 0]) - np.median(v[:, 1]))

    key = jax.random.key(3)
    result = claims.hierarchical_bootstrap(values, statistic, key=key, n_resamples=100,
                                           strata_per_seed=strata)
    low, high = _naive_hierarchical_bootstrap(values, statistic, strata, key, 100, 0.95)
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    assert result.estimate == pytest.approx(np.mean([statistic(v) for v in values]))
    assert result.low < result.estimate < result.high


def test_vectorized_statistic_gives_the_same_interval():
    rng = np.random.default_rng(2)
    values = [rng.normal(size=(n, 2)) for n in (7, 9, 8, 6)]
    strata = [rng.integers(0, 3, size=len(v)) for v in values]
    key = jax.random.key(5)
    one_by_one = claims.hierarchical_bootstrap(
        values, lambda v: float(np.mean(v[:, 0]) - np.median(v[:, 1])), key=key,
        n_resamples=200, strata_per_seed=strata)
    stacked = claims.hierarchical_bootstrap(
        values, lambda v: np.mean(v[..., 0], axis=-1) - np.median(v[..., 1], axis=-1),
        key=key, n_resamples=200, strata_per_seed=strata, vectorized=True)
    assert (stacked.estimate, stacked.low, stacked.high) == pytest.approx(
        (one_by_one.estimate, one_by_one.low, one_by_one.high), abs=1e-12)


def test_hierarchical_bootstrap_covers_both_levels():
    rng = np.random.default_rng(1)
    # Clip noise only, one seed: the interval of a mean is about mean +- 1.96 sd / sqrt(n).
    clips = rng.normal(size=(400, 1))
    one = claims.hierarchical_bootstrap([clips], lambda v: float(v.mean()),
                                        key=jax.random.key(0), n_resamples=1000)
    half = 1.96 * clips.std() / np.sqrt(400)
    assert (one.high - one.low) / 2 == pytest.approx(half, rel=0.15)
    # Seed noise only (constant clips within each seed): the interval of the seeds' mean.
    seed_means = rng.normal(size=10)
    constant = [np.full((5, 1), m) for m in seed_means]
    seeds = claims.hierarchical_bootstrap(constant, lambda v: float(v.mean()),
                                          key=jax.random.key(0), n_resamples=1000)
    assert (seeds.high - seeds.low) / 2 == pytest.approx(
        1.96 * seed_means.std() / np.sqrt(10), rel=0.25)


def _auc(labels, scores):
    """Mann-Whitney AUC (no ties in these scores): fast enough to call per resample."""
    ranks = np.argsort(np.argsort(scores)) + 1
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_paired_difference_over_seeds_and_strata_keep_both_classes():
    from asdtheory.evaluation import auc

    rng = np.random.default_rng(2)
    labels = [np.r_[np.zeros(30, int), np.ones(3, int)] for _ in range(4)]
    better = [y * 1.5 + rng.normal(size=y.size) for y in labels]
    worse = [y * 0.2 + rng.normal(size=y.size) for y in labels]
    # Few anomalies: without strata some resamples would hold none and AUC would fail.
    diff = claims.paired_difference_over_seeds(better, worse, labels=labels, metric=_auc,
                                               key=jax.random.key(0), n_resamples=300)
    assert _auc(labels[0], better[0]) == pytest.approx(auc(labels[0], better[0]))
    expected = np.mean([auc(y, a) - auc(y, b)
                        for y, a, b in zip(labels, better, worse, strict=True)])
    assert diff.estimate == pytest.approx(expected)
    assert diff.low <= diff.estimate <= diff.high
    swapped = claims.paired_difference_over_seeds(worse, better, labels=labels, metric=_auc,
                                                  key=jax.random.key(0), n_resamples=300)
    assert (swapped.low, swapped.high) == pytest.approx((-diff.high, -diff.low))
    with pytest.raises(ValueError, match="one array per seed"):
        claims.paired_difference_over_seeds(better, worse[:2], labels=labels, metric=auc,
                                            key=jax.random.key(0))

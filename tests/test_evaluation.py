"""AUC, pAUC and the DCASE tables against naive references and hand-computed cases."""

import itertools
import sys

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from asdtheory import evaluation as ev
from asdtheory.data.dcase import valve_mini_protocol

EPS = sys.float_info.epsilon


# ----------------------------------------------------------------------- naive references


def naive_auc(y, s):
    """P(anomaly scores higher than normal), ties 1/2, by counting all pairs."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(float(a > b) + 0.5 * float(a == b) for a in pos for b in neg)
    return wins / (pos.size * neg.size)


def naive_pauc(y, s, p):
    """ROC points at every distinct threshold, area up to FPR p (cutting the segment that
    crosses p by linear interpolation), then McClish's standardisation."""
    pos, neg = s[y == 1], s[y == 0]
    points = [(0.0, 0.0)] + [(np.mean(neg >= t), np.mean(pos >= t)) for t in np.unique(s)[::-1]]
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= p:
            break
        if x1 > p:
            y1 = y0 + (y1 - y0) * (p - x0) / (x1 - x0)
            x1 = p
        area += (x1 - x0) * (y0 + y1) / 2
    return 0.5 * (1 + (area - p * p / 2) / (p - p * p / 2))


def naive_hmean(values):
    values = np.maximum(np.asarray(values, float), EPS)
    return len(values) / np.sum(1 / values)


@st.composite
def binary_problem(draw, tied=False):
    n = draw(st.integers(4, 40))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    y[:2] = [0, 1]  # both classes present
    if tied:  # few distinct values: heavy ties, also between normals and anomalies
        s = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 3).map(float)))
    else:
        s = draw(hnp.arrays(np.float64, n, elements=st.floats(-1e3, 1e3, width=32)))
    return y, s


# ------------------------------------------------------------------------------ auc, pauc


@settings(max_examples=150, deadline=None)
@given(binary_problem(tied=False) | binary_problem(tied=True),
       st.sampled_from([0.05, 0.1, 0.3, 1.0]))
def test_auc_pauc_match_naive_references_and_sklearn(problem, max_fpr):
    y, s = problem
    assert ev.auc(y, s) == pytest.approx(naive_auc(y, s), abs=1e-12)
    got = ev.pauc(y, s, max_fpr=max_fpr)
    assert got == pytest.approx(naive_pauc(y, s, max_fpr), abs=1e-12)
    assert got == pytest.approx(roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12)


def test_pauc_matches_sklearn_on_large_random_and_tied_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    for s in (rng.normal(size=2000) + y, rng.integers(0, 5, 2000).astype(float)):
        assert ev.pauc(y, s) == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)
        assert ev.pauc(y, s) == pytest.approx(naive_pauc(y, s, 0.1), abs=1e-12)


def test_hand_computed_auc_and_pauc():
    # 10 normals at 0..9; anomalies at 9.5 (above all) and 8.5 (above 9 of 10 normals).
    y = np.r_[np.zeros(10), 1, 1]
    s = np.r_[np.arange(10.0), 9.5, 8.5]
    assert ev.auc(y, s) == pytest.approx(19 / 20, abs=1e-15)
    # ROC (0, 0) -> (0, 1/2) -> (0.1, 1/2) -> (0.1, 1): A_0.1 = 0.05, A_0.05 = 0.025.
    assert ev.pauc(y, s, max_fpr=0.1) == pytest.approx(0.5 * (1 + 0.045 / 0.095), abs=1e-15)
    assert ev.pauc(y, s, max_fpr=0.05) == pytest.approx(29 / 39, abs=1e-15)
    # A tie at 9 between one anomaly and the top normal: diagonal (0, 0) -> (0.1, 1/2).
    s_tied = np.r_[np.arange(10.0), 9.0, 8.5]
    area = 0.5 * 0.05 * 0.25
    expected = 0.5 * (1 + (area - 0.05**2 / 2) / (0.05 - 0.05**2 / 2))
    assert ev.pauc(y, s_tied, max_fpr=0.05) == pytest.approx(expected, abs=1e-15)
    # Random scorer 0.5, perfect 1, reversed 0 for the plain AUC.
    assert ev.pauc(y, np.zeros(12)) == pytest.approx(0.5, abs=1e-15)
    assert ev.pauc(y, y) == 1.0
    assert ev.auc(y, -y) == 0.0


@settings(max_examples=50, deadline=None)
@given(binary_problem(tied=True))
def test_auc_invariances(problem):
    y, s = problem
    # Strictly increasing maps and permutations of clips change nothing; negation flips AUC.
    assert ev.auc(y, np.exp(s / 10) * 3 - 1) == pytest.approx(ev.auc(y, s), abs=1e-12)
    assert ev.pauc(y, 2 * s + 5) == pytest.approx(ev.pauc(y, s), abs=1e-12)
    perm = np.random.default_rng(len(y)).permutation(len(y))
    assert ev.pauc(y[perm], s[perm]) == pytest.approx(ev.pauc(y, s), abs=1e-12)
    assert ev.auc(y, -s) == pytest.approx(1 - ev.auc(y, s), abs=1e-12)
    assert ev.pauc(y, s, max_fpr=1.0) == pytest.approx(ev.auc(y, s), abs=1e-12)


@pytest.mark.parametrize(
    ("y", "s", "kwargs", "match"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], {}, "y_true must be binary"),
        ([0, 0, 0], [0.1, 0.2, 0.3], {}, "y_true contains only normal"),
        ([1, 1], [0.1, 0.2], {}, "y_true contains only anomalous"),
        ([0, 1], [0.1, np.nan], {}, "scores contains 1 non-finite"),
        ([0, 1, 1], [0.1, 0.2], {}, "scores has 2 entries but the labels have 3"),
        ([], [], {}, "y_true is empty"),
        ([[0, 1]], [[0.1, 0.2]], {}, "y_true must be a 1-D"),
        (["a", "b"], [0.1, 0.2], {}, "y_true must hold 0"),
        ([0, 1], ["x", "y"], {}, "scores must be real"),
        ([0, 1], [0.1, 0.2], {"max_fpr": 0.0}, "max_fpr must lie in"),
        ([0, 1], [0.1, 0.2], {"max_fpr": 1.5}, "max_fpr must lie in"),
        ([0, 1], [0.1, 0.2], {"max_fpr": [0.1]}, "max_fpr must be a real scalar"),
        ([0, 1], [0.1, 0.2], {"max_fpr": "0.1"}, "max_fpr must be a real scalar"),
    ],
)
def test_bad_input_names_the_argument(y, s, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ev.pauc(np.asarray(y), np.asarray(s), **kwargs)


# -------------------------------------------------------------------------- DCASE tables

# One section: source normals 0.1, 0.2; target normals 0.3, 0.4; a source anomaly 0.35 and
# a target anomaly 0.5.
HAND = dict(machine="valve", section=0,
            domain=["source", "source", "target", "target", "source", "target"],
            is_anomaly=[0, 0, 0, 0, 1, 1], scores=[0.1, 0.2, 0.3, 0.4, 0.35, 0.5])


def test_official_score_hand_computed_2023_rules():
    (row,) = ev.dcase_table(**HAND)
    # AUC_source: normals {0.1, 0.2} vs all anomalies {0.35, 0.5}: 4/4.
    # AUC_target: normals {0.3, 0.4} vs all anomalies: 0.35 beats 0.3 only -> 3/4.
    # pAUC (4 normals, FPR 0.1 < one false alarm): TPR 1/2 on [0, 0.1] -> 14/19.
    assert (row.machine, row.section, row.rules) == ("valve", "00", "2023")
    assert (row.auc_source, row.auc_target) == (1.0, 0.75)
    assert row.pauc == pytest.approx(14 / 19, abs=1e-15)
    assert (row.n_source_normal, row.n_source_anomaly, row.n_target_normal,
            row.n_target_anomaly) == (2, 1, 2, 1)
    # Harmonic mean 3 / (1 + 4/3 + 19/14) = 126/155.
    assert ev.official_score([row]) == pytest.approx(126 / 155, abs=1e-15)
    for year in ("2022", "2024"):
        assert ev.dcase_table(**HAND, rules=year)[0].official_values() == row.official_values()


def test_official_score_hand_computed_2020_and_2021_rules():
    (row21,) = ev.dcase_table(**HAND, rules="2021")
    # Each domain alone: its normals vs its own anomaly, perfectly separated.
    assert row21.official_values() == [1.0, 1.0, 1.0, 1.0]
    assert ev.official_score([row21]) == 1.0
    (row20,) = ev.dcase_table(**HAND, rules="2020")
    assert row20.auc_source is None and row20.pauc_source is None
    # All 4 normals vs both anomalies: 0.35 beats 3, 0.5 beats 4 -> 7/8; pAUC 14/19.
    assert row20.auc == 0.875
    assert ev.official_score([row20]) == pytest.approx((0.875 + 14 / 19) / 2, abs=1e-15)


def test_format_table_hand_computed():
    text = ev.format_table(ev.dcase_table(**HAND))
    assert text.splitlines() == [
        "machine  section  AUC source  AUC target    pAUC  normals s/t  anomalies s/t",
        "valve    00           1.0000      0.7500  0.7368          2/2            1/1",
        "official score (DCASE 2023 rules, harmonic mean of 3 values): 0.8129",
    ]


def random_dcase_data(rng, *, n_per_group=6, machines=("fan", "valve"), sections=("00", "01")):
    """Machines x sections, each with source/target x normal/anomalous groups."""
    machine, section, domain, y = [], [], [], []
    for m in machines:
        for sec in sections:
            for dom in ("source", "target"):
                for label in (0, 1):
                    n = n_per_group + int(rng.integers(0, 4))
                    machine += [m] * n
                    section += [sec] * n
                    domain += [dom] * n
                    y += [label] * n
    y = np.array(y)
    scores = np.round(rng.normal(size=y.size) + y, 1)  # rounding makes ties
    perm = rng.permutation(y.size)
    return dict(machine=np.array(machine)[perm], section=np.array(section)[perm],
                domain=np.array(domain)[perm], is_anomaly=y[perm], scores=scores[perm])


@pytest.mark.parametrize("rules", ["2020", "2021", "2023"])
def test_dcase_table_matches_naive_per_section_computation(rules):
    data = random_dcase_data(np.random.default_rng(1))
    rows = ev.dcase_table(**data, rules=rules)
    assert [(r.machine, r.section) for r in rows] == [
        ("fan", "00"), ("fan", "01"), ("valve", "00"), ("valve", "01")]
    flat = []
    for row in rows:
        sec = (data["machine"] == row.machine) & (data["section"] == row.section)
        y, s, dom = data["is_anomaly"][sec], data["scores"][sec], data["domain"][sec]
        assert row.auc == pytest.approx(naive_auc(y, s), abs=1e-12)
        assert row.pauc == pytest.approx(naive_pauc(y, s, 0.1), abs=1e-12)
        assert row.n_target_anomaly == np.sum((dom == "target") & (y == 1))
        values = [naive_auc(y, s), naive_pauc(y, s, 0.1)]
        if rules != "2020":
            values = []
            for d in ("source", "target"):
                mask = (dom == d) if rules == "2021" else (dom == d) | (y == 1)
                assert getattr(row, f"auc_{d}") == pytest.approx(
                    naive_auc(y[mask], s[mask]), abs=1e-12)
                values.append(naive_auc(y[mask], s[mask]))
                if rules == "2021":
                    values.append(naive_pauc(y[mask], s[mask], 0.1))
            if rules == "2023":
                values.append(naive_pauc(y, s, 0.1))
        assert sorted(row.official_values()) == pytest.approx(sorted(values), abs=1e-12)
        flat += values
    expected = np.mean(flat) if rules == "2020" else naive_hmean(flat)
    assert ev.official_score(rows) == pytest.approx(expected, abs=1e-12)
    # Clip order does not matter.
    perm = np.random.default_rng(2).permutation(len(data["scores"]))
    shuffled = ev.dcase_table(**{k: v[perm] for k, v in data.items()}, rules=rules)
    assert shuffled == rows


def test_official_score_floors_at_machine_epsilon():
    data = dict(HAND, scores=[0.5, 0.6, 0.0, 0.05, 0.3, 0.2])
    (row,) = ev.dcase_table(**data)
    assert row.auc_source == 0.0  # both anomalies below both source normals
    values = row.official_values()
    assert ev.official_score([row]) == pytest.approx(naive_hmean(values), rel=1e-12)
    assert 0 < ev.official_score([row]) < 10 * EPS


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(domain=["source"] * 5 + ["tgt"]), r"domain entries must be 'source' or 'target'"),
        (dict(domain=["source"] * 6), "no target normal clips"),
        (dict(is_anomaly=[0, 0, 0, 0, 0, 2]), "is_anomaly must be binary"),
        (dict(is_anomaly=[0] * 6), "is_anomaly contains only normal .* section '00'"),
        (dict(scores=[0.1] * 5), "scores has 5 entries"),
        (dict(scores=[0.1] * 5 + [np.inf]), "scores contains 1 non-finite"),
        (dict(machine=["valve"] * 5), r"machine must be a scalar or have shape \(6,\)"),
        (dict(rules=2023), "rules must be one of"),
        (dict(max_fpr=-0.1), "max_fpr must lie in"),
    ],
)
def test_dcase_table_bad_input(change, match):
    with pytest.raises(ValueError, match=match):
        ev.dcase_table(**(HAND | change))


def test_2021_rules_need_anomalies_in_each_domain():
    data = HAND | dict(domain=["source", "source", "target", "target", "source", "source"])
    ev.dcase_table(**data)  # fine under 2023 rules: AUC_target uses all anomalies
    with pytest.raises(ValueError, match="no target anomalous clips"):
        ev.dcase_table(**data, rules="2021")


def test_official_score_rejects_mixed_or_empty_rows():
    rows = ev.dcase_table(**HAND) + ev.dcase_table(**HAND, rules="2021")
    with pytest.raises(ValueError, match="mix the rules"):
        ev.official_score(rows)
    with pytest.raises(ValueError, match="mix the rules"):
        ev.official_score(ev.dcase_table(**HAND, rules="2020") + ev.dcase_table(**HAND,
                                                                               rules="2021"))


def test_sections_without_domains_pool_with_the_2023_rules_as_a_harmonic_mean():
    (valve,) = ev.dcase_table(**HAND)  # 1, 3/4 and pAUC, hand-computed above
    (fan,) = ev.dcase_table(**(HAND | {"machine": "fan", "domain": "source"}), rules="2020")
    values = [valve.auc_source, valve.auc_target, valve.pauc, fan.auc, fan.pauc]
    assert ev.official_score([valve, fan]) == pytest.approx(
        len(values) / sum(1 / v for v in values), rel=1e-12)
    text = ev.format_table([valve, fan])
    assert "AUC source" in text and "\nmachine  section     AUC    pAUC" in text
    assert text.splitlines()[-1].startswith(
        "official score (pooled: DCASE 2020 and 2023 rules, harmonic mean of 5 values): ")
    with pytest.raises(ValueError, match="non-empty list of SectionScores"):
        ev.official_score([])


# ---------------------------------------------------------------------------- intervals


def test_jackknife_matches_naive_leave_one_out():
    data = random_dcase_data(np.random.default_rng(3), n_per_group=3, sections=("00",))
    ci = ev.confidence_interval(**data, method="jackknife", level=0.9)
    full = ev.official_score(ev.dcase_table(**data))
    n = len(data["scores"])
    loo = np.array([ev.official_score(ev.dcase_table(**{k: np.delete(v, i)
                                                        for k, v in data.items()}))
                    for i in range(n)])
    pseudo = n * full - (n - 1) * loo
    se = np.std(pseudo, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.95, n - 1) * se
    assert (ci.estimate, ci.n_resamples, ci.method) == (full, n, "jackknife")
    assert ci.low == pytest.approx(full - half, abs=1e-12)
    assert ci.high == pytest.approx(full + half, abs=1e-12)


def test_bootstrap_is_reproducible_and_nested_in_level():
    data = random_dcase_data(np.random.default_rng(4), machines=("fan",), sections=("00",))
    kw = dict(data, n_resamples=40, key=jax.random.key(0))
    ci95 = ev.confidence_interval(**kw)
    assert ci95 == ev.confidence_interval(**kw)
    ci50 = ev.confidence_interval(**kw, level=0.5)
    assert ci95.low < ci50.low <= ci50.high < ci95.high
    assert ci95.low < ci95.estimate < ci95.high
    other = ev.confidence_interval(**(kw | dict(key=jax.random.key(1))))
    assert (other.low, other.high) != (ci95.low, ci95.high)


def test_bootstrap_keeps_every_stratum_so_scores_stay_defined():
    # One clip per (domain, label) group except one more source normal: an unstratified
    # bootstrap would often draw no target normal and fail; the stratified one cannot.
    data = HAND | dict(domain=["source", "source", "target", "source", "source", "target"])
    ci = ev.confidence_interval(**data, n_resamples=20, key=jax.random.key(0))
    assert 0 < ci.low <= ci.high <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="bootstrap"), "key: the bootstrap needs a JAX PRNG key"),
        (dict(method="bootstrap", key=0), "key: the bootstrap needs a JAX PRNG key"),
        (dict(method="bootstrap", key=jax.random.key(0), n_resamples=1), "n_resamples must"),
        (dict(method="jackknife", key=jax.random.key(0)), "the jackknife is deterministic"),
        (dict(method="jackknife", rules="2021"), "fewer than 2 source anomalous clips"),
        (dict(method="bayes"), "method must be 'bootstrap' or 'jackknife'"),
        (dict(method="jackknife", level=1.0), "level must be a probability"),
    ],
)
def test_confidence_interval_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ev.confidence_interval(**HAND, **kwargs)


def test_valve_mini_protocol_table_counts(shared_data):
    # The real clip names through the data index: counts of the DESIGN.md "valve mini"
    # protocol (AUC_source on 20 source normals + all 100 anomalies, likewise target).
    test = valve_mini_protocol(shared_data).test
    scores = np.array([c.index for c in test], dtype=float)
    (row,) = ev.dcase_table(machine=[c.machine for c in test], section=[c.section for c in test],
                            domain=[c.domain for c in test],
                            is_anomaly=[c.is_anomaly for c in test], scores=scores)
    assert (row.machine, row.section) == ("valve", "00")
    assert (row.n_source_normal, row.n_target_normal) == (20, 20)
    assert (row.n_source_anomaly, row.n_target_anomaly) == (50, 50)
    y = np.array([c.is_anomaly for c in test])
    source = np.array([c.domain == "source" for c in test])
    mask = source | y
    assert row.auc_source == pytest.approx(naive_auc(y[mask], scores[mask]), abs=1e-12)


def test_group_metrics_is_the_mean_of_per_group_sklearn_values():
    rng = np.random.default_rng(0)
    groups = np.repeat([3, 7, 9], 40)
    y = np.tile(np.r_[np.zeros(30, bool), np.ones(10, bool)], 3)
    scores = rng.normal(size=120) + y * np.repeat([0.5, 1.0, 2.0], 40)
    # A group-dependent offset changes pooled metrics but not per-group ones.
    shifted = scores + np.repeat([0.0, 10.0, -5.0], 40)
    got = ev.group_metrics(y, shifted, groups)
    aucs = [roc_auc_score(y[groups == g], scores[groups == g]) for g in (3, 7, 9)]
    paucs = [roc_auc_score(y[groups == g], scores[groups == g], max_fpr=0.1) for g in (3, 7, 9)]
    assert got["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert got["pauc"] == pytest.approx(np.mean(paucs), abs=1e-12)
    a, p = np.mean(aucs), np.mean(paucs)
    assert got["hmean"] == pytest.approx(2 * a * p / (a + p), abs=1e-12)
    one = ev.group_metrics(y[:40], scores[:40])
    assert one["auc"] == pytest.approx(aucs[0], abs=1e-12)


def test_group_metrics_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="groups must hold one group id per score"):
        ev.group_metrics([0, 1], [0.1, 0.2], [0, 0, 0])
    with pytest.raises(ValueError, match="scores has 2 entries but the labels have 3"):
        ev.group_metrics([0, 1, 1], [0.1, 0.2], [0, 0])


@given(st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_harmonic_mean_lies_between_min_and_mean(a, b):
    h = ev.harmonic_mean(a, b)
    assert min(a, b) - 1e-12 <= h <= (a + b) / 2 + 1e-12
    assert ev.harmonic_mean(a, a) == pytest.approx(a)


# ------------------------------------------------------------------- paired differences

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.1, 0.3, 1.0]))
def test_resampled_auc_and_pauc_equal_sklearn_on_the_materialised_clips(seed, max_fpr):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(30, int), np.ones(12, int)]
    scores = np.round(rng.normal(size=42) + y, 1)  # rounding makes ties
    counts = rng.integers(0, 3, size=(4, 42)).astype(float)
    counts[:, [0, -1]] = 1  # both classes stay present
    got_auc, got_pauc = ev._weighted_areas(y, scores, counts, max_fpr)
    for row, a, p in zip(counts.astype(int), got_auc, got_pauc, strict=True):
        yy, ss = np.repeat(y, row), np.repeat(scores, row)
        assert a == pytest.approx(roc_auc_score(yy, ss), abs=1e-12)
        assert p == pytest.approx(roc_auc_score(yy, ss, max_fpr=max_fpr), abs=1e-12)


def _two_detectors(rng, separation):
    y = np.tile(np.r_[np.zeros(40, int), np.ones(20, int)], 2)
    groups = np.repeat([0, 1], 60)
    a = rng.normal(size=(3, 120)) + separation * y
    b = rng.normal(size=(3, 120)) + 0.3 * y
    return y, groups, a, b


def test_paired_difference_estimate_is_the_mean_per_seed_difference():
    y, groups, a, b = _two_detectors(np.random.default_rng(1), 1.0)
    got = ev.paired_difference(a, b, is_anomaly=y, groups=groups, key=jax.random.key(0),
                               n_resamples=200)
    want = np.mean([ev.group_metrics(y, a[s], groups)["hmean"]
                    - ev.group_metrics(y, b[s], groups)["hmean"] for s in range(3)])
    assert got.estimate == pytest.approx(want, abs=1e-12)
    assert got.low < got.estimate < got.high
    domain = np.where(np.arange(120) % 3, "source", "target")
    got = ev.paired_difference(a, b, is_anomaly=y, metric="official", machine="valve",
                               section=groups, domain=domain, key=jax.random.key(0),
                               n_resamples=200)
    want = np.mean([ev.official_score(ev.dcase_table(machine="valve", section=groups,
                                                     domain=domain, is_anomaly=y, scores=s))
                    for s in a - 0]) - np.mean([ev.official_score(ev.dcase_table(
                        machine="valve", section=groups, domain=domain, is_anomaly=y, scores=s))
                        for s in b])
    assert got.estimate == pytest.approx(want, abs=1e-12)


def test_paired_difference_decides_only_what_the_clips_can_tell():
    rng = np.random.default_rng(2)
    y, groups, a, b = _two_detectors(rng, 2.5)
    clear = ev.paired_difference(a, b, is_anomaly=y, groups=groups, key=jax.random.key(0))
    assert clear.low > 0.2
    # The same detector twice: every resample differs by exactly 0.
    same = ev.paired_difference(a, a, is_anomaly=y, groups=groups, key=jax.random.key(0))
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    # Two equally good detectors: the interval holds 0 and its width reflects the clips.
    _, _, c, d = _two_detectors(rng, 0.3)
    tie = ev.paired_difference(c, d, is_anomaly=y, groups=groups, key=jax.random.key(0))
    assert tie.low < 0 < tie.high and 0.02 < tie.high - tie.low < 0.5


def test_paired_difference_pairs_the_clips():
    # b = a plus clip-level noise shared by nothing: pairing removes the clip effect that both
    # share, so the paired interval is narrower than the sum of two unpaired intervals.
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(80, int), np.ones(40, int)]
    shared = rng.normal(size=120) + 0.8 * y
    a = shared + 0.1 * rng.normal(size=120)
    b = shared + 0.1 * rng.normal(size=120)
    paired = ev.paired_difference(a, b, is_anomaly=y, key=jax.random.key(0))
    alone = ev.paired_difference(a, np.zeros(120) + np.arange(120) % 2, is_anomaly=y,
                                 key=jax.random.key(0))
    assert paired.high - paired.low < 0.25 * (alone.high - alone.low)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"metric": "f1"}, "metric must be one of"),
     ({"metric": "official"}, "needs machine, section and domain"),
     ({"machine": "valve"}, "are for metric='official'"),
     ({"n_resamples": 10}, "n_resamples must be an integer >= 100"),
     ({"level": 1.0}, "level must be a probability"),
     ({"key": 0}, "needs a JAX PRNG key"),
     ({"groups": [0, 1]}, "groups must hold one group id per clip"),
     ({"scores_b": np.zeros((2, 6))}, "must come from the same seeds and clips"),
     ({"scores_a": np.zeros((1, 1, 6))}, "must have shape"),
     ({"is_anomaly": [0, 0, 0, 0, 0, 0]}, "contains only normal")],
)
def test_paired_difference_bad_input(kwargs, match):
    args = {"scores_a": np.arange(6.0), "scores_b": np.arange(6.0)[::-1],
            "is_anomaly": [0, 0, 0, 1, 1, 1], "key": jax.random.key(0)} | kwargs
    with pytest.raises(ValueError, match=match):
        ev.paired_difference(args.pop("scores_a"), args.pop("scores_b"), **args)


def test_paired_contrast_of_differences_across_conditions():
    y, groups, a, b = _two_detectors(np.random.default_rng(4), 1.0)
    rng = np.random.default_rng(5)
    a_noisy, b_noisy = a + 5 * rng.normal(size=a.shape), b + 0.1 * rng.normal(size=b.shape)
    got = ev.paired_contrast([a_noisy, b_noisy, a, b], [1, -1, -1, 1], is_anomaly=y,
                             groups=groups, key=jax.random.key(0), n_resamples=300)
    h = lambda s: np.mean([ev.group_metrics(y, r, groups)["hmean"] for r in s])
    assert got.estimate == pytest.approx(h(a_noisy) - h(b_noisy) - h(a) + h(b), abs=1e-12)
    assert got.high < 0  # noise took a's lead away
    with pytest.raises(ValueError, match="weights must be 2 finite numbers"):
        ev.paired_contrast([a, b], [1.0], is_anomaly=y, key=jax.random.key(0))


def test_unscorable_sections_are_na_on_request_and_an_error_by_default():
    # Section 01 has no anomalous clip: strict by default; "n/a" keeps the rest of the table
    # and the official score of the scorable section (hand-computed: AUC source 1/2 (a 0.4 vs
    # source normals 0.3, 0.5), AUC target 1 (vs 0.1), pAUC on all: the top score is a
    # normal, so no TPR up to FPR 1/3: McClish of area 0 -> (1 - 0.005/0.095)/2 = 0.473684).
    clips = dict(machine="fan", section=[0, 0, 0, 0, 1, 1],
                 domain=["source", "source", "target", "source", "source", "target"],
                 is_anomaly=[0, 0, 0, 1, 0, 0], scores=[0.3, 0.5, 0.1, 0.4, 0.2, 0.9])
    with pytest.raises(ValueError, match="only normal \\(0\\) labels for machine 'fan', "
                                         "section '01'"):
        ev.dcase_table(**clips)
    with pytest.warns(UserWarning, match="section '01' is scored n/a"):
        rows = ev.dcase_table(**clips, unscorable="n/a")
    assert [r.section for r in rows] == ["00", "01"]
    assert rows[1].auc_source is None and rows[1].n_source_normal == 1
    assert (rows[0].auc_source, rows[0].auc_target) == (0.5, 1.0)
    assert rows[0].pauc == pytest.approx(0.473684, abs=1e-6)
    assert ev.official_score(rows) == pytest.approx(3 / (2 + 1 + 1 / 0.473684), abs=1e-6)
    assert "n/a" in ev.format_table(rows).splitlines()[2]
    with pytest.raises(ValueError, match="no section of the table can be scored"):
        ev.official_score(rows[1:])

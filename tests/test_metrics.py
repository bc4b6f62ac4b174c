"""Embedding-space diagnostics against hand-computed cases and naive NumPy references."""

import itertools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asdtheory.geometry import simplex_centres
from asdtheory.metrics import (
    angle_statistics,
    effective_rank,
    embedding_spread,
    mean_compactness,
    neural_collapse,
    num_distinct,
)


def unit(v):
    return np.asarray(v, np.float64) / np.linalg.norm(v, axis=-1, keepdims=True)


def angle(a, b):
    return np.degrees(np.arccos(np.clip(unit(a) @ unit(b), -1, 1)))


def on_circle(degrees):
    rad = np.radians(np.asarray(degrees, np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=-1)


# ------------------------------------------------------------------------- compactness


def test_mean_compactness_matches_naive_and_jits():
    rng = np.random.default_rng(0)
    x, c, y = rng.normal(size=(12, 5)), rng.normal(size=(3, 5)), rng.integers(0, 3, 12)
    expected = np.mean([np.sum((unit(xi) - unit(c[yi])) ** 2) for xi, yi in zip(x, y, strict=True)])
    assert float(mean_compactness(x, c, y)) == pytest.approx(expected, abs=1e-6)
    assert float(jax.jit(mean_compactness)(x, c, y)) == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------------------------- angles


def test_angle_statistics_hand_computed():
    centres = on_circle([0, 90])
    x = on_circle([10, 20, 80, 100]) * np.array([[1.0], [2.0], [0.5], [3.0]])
    stats = angle_statistics(x, centres, np.array([0, 0, 1, 1]))
    expected = {
        "mean_angle_to_own_centre": 12.5,  # 10, 20, 10, 10
        "median_angle_to_own_centre": 10.0,
        "mean_angle_to_nearest_other_centre": 82.5,  # 80, 70, 80, 100
        "mean_intra_class_angle": 15.0,  # pairs (10, 20) and (80, 100)
        "mean_angle_between_class_means": 75.0,  # means at 15 and 90 degrees
    }
    assert stats.keys() == expected.keys()
    assert all(isinstance(v, float) for v in stats.values())
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, abs=1e-4), key


def test_angle_statistics_resolves_tiny_angles_to_the_own_centre():
    # 1e-3 degrees: cos = 1 - 1.5e-10 rounds to 1 in float32, arccos would give 0.
    centres = on_circle([0, 120, 240])
    stats = angle_statistics(on_circle([1e-3, -1e-3, 120.0]), centres, np.array([0, 0, 1]))
    assert stats["mean_angle_to_own_centre"] == pytest.approx(2e-3 / 3, rel=1e-3)


def test_angle_statistics_matches_naive_with_subcentres():
    rng = np.random.default_rng(1)
    x, c, y = rng.normal(size=(15, 6)), rng.normal(size=(3, 2, 6)), np.repeat([0, 1, 2], 5)
    own = [min(angle(xi, cm) for cm in c[yi]) for xi, yi in zip(x, y, strict=True)]
    other = [min(angle(xi, cm) for k in range(3) if k != yi for cm in c[k])
             for xi, yi in zip(x, y, strict=True)]
    intra = [angle(x[i], x[j]) for i, j in itertools.combinations(range(15), 2) if y[i] == y[j]]
    means = [unit(x[y == k]).mean(axis=0) for k in range(3)]
    between = [angle(means[i], means[j]) for i, j in itertools.combinations(range(3), 2)]
    stats = angle_statistics(x, c, y)
    assert stats["mean_angle_to_own_centre"] == pytest.approx(np.mean(own), abs=1e-3)
    assert stats["median_angle_to_own_centre"] == pytest.approx(np.median(own), abs=1e-3)
    assert stats["mean_angle_to_nearest_other_centre"] == pytest.approx(np.mean(other), abs=1e-3)
    assert stats["mean_intra_class_angle"] == pytest.approx(np.mean(intra), abs=1e-3)
    assert stats["mean_angle_between_class_means"] == pytest.approx(np.mean(between), abs=1e-3)


@pytest.mark.parametrize(
    ("x", "c", "y", "match"),
    [
        (on_circle([0, 1]), on_circle([0]), [0, 0], "at least 2 classes"),
        (on_circle([0, 1]), on_circle([0, 90]), [0, 1], "at least one class with two"),
        (on_circle([0, 1]), on_circle([0, 90]), [0, 0], "at least one class with two"),
        (on_circle([0, 1]), on_circle([0, 90]), [0, 2], r"labels must lie in \[0, 1\]"),
        (on_circle([0, 1]), np.ones((2, 3)), [0, 1], "centres have dimension 3"),
    ],
)
def test_angle_statistics_bad_input(x, c, y, match):
    with pytest.raises(ValueError, match=match):
        angle_statistics(x, c, np.asarray(y))


# ------------------------------------------------------------------ rank and collapse


def with_singular_values(s, shape, seed):
    """A (B, D) matrix U diag(s) V^T with random orthonormal U, V."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(shape[0], len(s))))
    v, _ = np.linalg.qr(rng.normal(size=(shape[1], len(s))))
    return (u * np.asarray(s, float)) @ v.T


@pytest.mark.parametrize(
    ("s", "expected"),
    [([1, 1, 1], 3.0), ([5.0], 1.0), ([3, 1], np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))),
     ([2, 2, 1e-9], 2.0)],
)
def test_effective_rank_of_known_spectra(s, expected):
    x = with_singular_values(s, (10, 8), seed=len(s))
    assert float(effective_rank(x, center=False)) == pytest.approx(expected, rel=1e-5)


def test_effective_rank_of_collapsed_embeddings_is_zero():
    row = np.random.default_rng(2).normal(size=16).astype(np.float32)
    collapsed = jnp.tile(jnp.asarray(row) * 3.7, (32, 1))  # identical up to rounding
    assert float(effective_rank(collapsed)) == 0.0
    assert float(effective_rank(collapsed, center=False)) == pytest.approx(1.0, abs=1e-5)
    assert float(embedding_spread(collapsed)) == pytest.approx(0.0, abs=1e-5)
    assert float(effective_rank(np.zeros((4, 3)), center=False)) == 0.0


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float64, (6, 4), elements=st.floats(-10, 10)), st.floats(0.1, 10.0))
def test_effective_rank_invariances(x, scale):
    # Rotation, positive scaling and (with centring) translation leave it unchanged -- for
    # spectra well above float32 rounding of the translated matrix.
    assume(np.linalg.svd(x - x.mean(axis=0), compute_uv=False).min() > 1e-2)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    base = float(effective_rank(x))
    assert 1.0 <= base <= 4.0 + 1e-5
    moved = scale * x @ q + np.arange(4.0)
    assert float(effective_rank(moved)) == pytest.approx(base, rel=1e-3)


def test_effective_rank_jits():
    x = with_singular_values([2, 1, 1], (6, 5), seed=4)
    assert float(jax.jit(effective_rank)(x)) == pytest.approx(float(effective_rank(x)), rel=1e-6)


def test_embedding_spread_matches_naive():
    x = np.random.default_rng(5).normal(size=(9, 3))
    mean = x.mean(axis=0)
    expected = np.sqrt(np.mean([np.sum((xi - mean) ** 2) for xi in x]))
    assert float(embedding_spread(x)) == pytest.approx(expected, rel=1e-6)
    assert float(jax.jit(embedding_spread)(x)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("values", "rtol", "expected"),
    [([1.0, 1.0 + 1e-9, 2.0, 3.0], 1e-6, 3), ([1.0, 1.0 + 1e-5, 2.0], 1e-6, 3),
     ([[0.5, 0.5], [0.5, 0.5]], 1e-6, 1), ([0.0, 0.0], 1e-6, 1), ([-1.0, 1.0], 0.0, 2),
     (np.linspace(0, 1, 101), 1e-6, 101), (np.linspace(0, 1, 101), 0.02, 1)],
)
def test_num_distinct(values, rtol, expected):
    assert num_distinct(np.asarray(values), rtol=rtol) == expected


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (effective_rank, (np.ones(3),), "embeddings must have 2 dimensions"),
        (embedding_spread, (np.full((2, 2), np.nan),), "embeddings contains 4 non-finite"),
        (num_distinct, ([],), "values is empty"),
        (num_distinct, ([1.0, np.inf],), "values contains 1 non-finite"),
    ],
)
def test_collapse_indicators_bad_input(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


# ---------------------------------------------------------------------- neural collapse


def naive_neural_collapse(h, y, w):
    """Papyan et al.'s definitions, one sample and one class pair at a time (float64)."""
    classes = range(w.shape[0])
    mu_g = h.mean(axis=0)
    mu = np.array([h[y == c].mean(axis=0) for c in classes])
    sigma_w = sum(np.outer(h[i] - mu[y[i]], h[i] - mu[y[i]]) for i in range(len(h))) / len(h)
    sigma_b = sum(np.outer(mu[c] - mu_g, mu[c] - mu_g) for c in classes) / len(mu)
    eigval, eigvec = np.linalg.eigh(sigma_b)
    keep = eigval > 1e-10 * eigval.max()  # the C - 1 non-zero directions
    pinv_b = (eigvec[:, keep] / eigval[keep]) @ eigvec[:, keep].T
    norms = [np.linalg.norm(mu[c] - mu_g) for c in classes]
    pairs = [(a, b) for a in classes for b in classes if a != b]
    cosines = [unit(mu[a] - mu_g) @ unit(mu[b] - mu_g) for a, b in pairs]
    m = mu - mu_g
    nearest = [np.argmin([np.linalg.norm(hi - mu[c]) for c in classes]) for hi in h]
    predicted = [np.argmax([unit(hi) @ unit(w[c]) for c in classes]) for hi in h]
    return {
        "nc1": np.trace(sigma_w @ pinv_b) / len(mu),
        "nc2_equinorm": np.std(norms) / np.mean(norms),
        "nc2_equiangularity": np.mean([abs(c + 1 / (len(mu) - 1)) for c in cosines]),
        "nc3": np.sum((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2),
        "nc4": np.mean(np.array(nearest) != np.array(predicted)),
    }


def test_neural_collapse_matches_naive_reference():
    rng = np.random.default_rng(6)
    y = np.repeat(np.arange(4), 6)
    h = rng.normal(size=(24, 7)) + 2 * rng.normal(size=(4, 7))[y]
    w = rng.normal(size=(4, 7))
    got = neural_collapse(h, y, w)
    expected = naive_neural_collapse(h, y, w)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert isinstance(got[key], float)
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert 0 < got["nc4"] < 1  # random classifier: some but not all decisions differ


def test_neural_collapse_is_zero_for_a_collapsed_simplex():
    # Features at a scaled, shifted simplex ETF, classifier the simplex itself: all four 0.
    w = np.asarray(simplex_centres(5, 8), np.float64)
    y = np.tile(np.arange(5), 3)
    h = 4.0 * w[y] + np.linspace(-1, 1, 8)
    got = neural_collapse(h, y, w)
    for key in ("nc1", "nc2_equinorm", "nc2_equiangularity", "nc3", "nc4"):
        assert got[key] == pytest.approx(0.0, abs=1e-5), key


def test_neural_collapse_nc4_counts_disagreements():
    # Class means at 0 and 4 on the x-axis; the classifier says class 1 for every x > 0, so
    # only the sample at 1 (nearest mean: class 0) disagrees.
    w = np.array([[-1.0, 0.0], [1.0, 0.0]])
    h = np.array([[-1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    assert neural_collapse(h, y, w)["nc4"] == 0.25


@pytest.mark.parametrize(
    ("h", "y", "w", "match"),
    [
        (np.ones((4, 2)), [0, 0, 1, 1], np.eye(2), "class mean coincides with the global mean"),
        (np.eye(2), [0, 0], np.eye(2), r"no embeddings of class\(es\) \[1\]"),
        (np.eye(2), [0, 1], np.eye(2)[:1], "at least 2 classes"),
        (np.eye(2), [0, 1], np.ones((2, 3)), "classifier has dimension 3"),
        (np.eye(2), [0, 1], np.array([[1.0, 0.0], [0.0, 0.0]]), r"classifier rows \[1\] are zero"),
        (np.eye(2), [0.5, 0.5], np.eye(2), "neural_collapse takes integer class indices"),
    ],
)
def test_neural_collapse_bad_input(h, y, w, match):
    with pytest.raises(ValueError, match=match):
        neural_collapse(h, np.asarray(y), w)


# ------------------------------------------------------- class structure, per-clip measures

from asdtheory.metrics import (  # noqa: E402
    knn_purity,
    noise_invariance,
    own_class_share,
    paired_mean_contrast,
)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_purity_matches_scikit_learn_neighbours(metric):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    nn = NearestNeighbors(n_neighbors=4, metric=metric).fit(x)
    idx = nn.kneighbors(x, return_distance=False)[:, 1:]
    np.testing.assert_allclose(knn_purity(x, y, k=3, metric=metric),
                               np.mean(y[idx] == y[:, None], axis=1))


def test_knn_purity_hand_computed():
    x = np.array([[0.0], [0.1], [5.0], [5.2]])
    np.testing.assert_allclose(knn_purity(x, np.array([0, 0, 1, 0]), k=1), [1, 1, 0, 0])
    with pytest.raises(ValueError, match="k \\+ 1"):
        knn_purity(x, np.zeros(4), k=4)


def test_noise_invariance_hand_computed_and_scale_free():
    # Two classes with means at -1 and +1 (between spread 1); clip 0 moves by +-0.5.
    z = np.array([[[-1.5], [-0.5]], [[-1.0], [-1.0]], [[1.0], [1.0]], [[1.0], [1.0]]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(noise_invariance(z, y), [0.25, 0, 0, 0])
    np.testing.assert_allclose(noise_invariance(7.0 * z, y), [0.25, 0, 0, 0])
    with pytest.raises(ValueError, match="two classes"):
        noise_invariance(z, np.zeros(4))


def test_paired_mean_contrast_estimate_and_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 1.0, (2, 400)), rng.normal(0.0, 1.0, (2, 400))
    diff = paired_mean_contrast([a, b], [1, -1], key=jax.random.key(0))
    assert diff.estimate == pytest.approx(np.mean(a - b))
    se = np.std(a - b) / np.sqrt(a.size)  # clips and seeds resampled: roughly this spread
    assert diff.low < diff.estimate < diff.high
    assert (diff.high - diff.low) / 2 == pytest.approx(1.96 * se, rel=0.35)
    # A constant difference has a degenerate interval at its value.
    same = paired_mean_contrast([a + 0.5, a], [1, -1], key=jax.random.key(0))
    assert same.low == pytest.approx(0.5) and same.high == pytest.approx(0.5)


def test_paired_mean_contrast_stratifies_by_group():
    # Values 0 in group 0 and 1 in group 1: within strata every resample has mean 0.5.
    v = np.r_[np.zeros(10), np.ones(10)]
    strat = paired_mean_contrast([v], [1.0], key=jax.random.key(0), groups=np.r_[[0] * 10,
                                                                              [1] * 10])
    assert strat.low == pytest.approx(0.5) and strat.high == pytest.approx(0.5)
    free = paired_mean_contrast([v], [1.0], key=jax.random.key(0))
    assert free.high - free.low > 0.2


def test_own_class_share_matches_a_per_clip_reference():
    rng = np.random.default_rng(3)
    train_labels = np.repeat(np.arange(3), 5)
    offsets = rng.normal(size=(3, 4)) * 2.0
    train = rng.normal(size=(15, 6, 4)) + offsets[train_labels][:, None]
    test_labels = rng.integers(0, 3, size=20)
    test = rng.normal(size=(20, 6, 4)) + offsets[test_labels][:, None]
    means = [train[train_labels == k].mean(axis=(0, 1)) for k in range(3)]
    nearest = [int(np.argmin([np.linalg.norm(t.mean(axis=0) - m) for m in means]))
               for t in test]
    want = np.mean([n == y for n, y in zip(nearest, test_labels, strict=True)])
    assert own_class_share(train, train_labels, test, test_labels) == want
    # Labels are class ids, not positions: relabelling both sides changes nothing.
    assert own_class_share(train, train_labels + 7, test, test_labels + 7) == want
    with pytest.raises(ValueError, match=r"test labels \[3\] have no training items"):
        own_class_share(train, train_labels, test, np.full(20, 3))
    with pytest.raises(ValueError, match="same F"):
        own_class_share(train, train_labels, test[..., :3], test_labels)

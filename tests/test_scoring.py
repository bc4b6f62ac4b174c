"""Anomaly-score back-ends against naive per-sample NumPy references."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory import scoring
from asdtheory.scoring import (
    kmeans_centres,
    knn_score,
    level_score,
    nearest_centre_score,
    reconstruction_error,
)


def unit(v):
    return v / np.linalg.norm(v)


def naive_cos_distances(x, centres):
    """1 - cos(x, c) for one embedding x against every centre, in float64."""
    return np.array([1.0 - unit(x) @ unit(c) for c in centres])


def test_nearest_centre_score_matches_naive():
    rng = np.random.default_rng(0)
    x, centres = rng.normal(size=(20, 8)), rng.normal(size=(5, 8))
    expected = [naive_cos_distances(xi, centres).min() for xi in x]
    got = nearest_centre_score(x, centres)
    assert got.shape == (20,)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # Sub-centres (N, M, D): all N M of them count; JAX and NumPy input give the same output.
    sub = centres[:4].reshape(2, 2, 8)
    np.testing.assert_array_equal(nearest_centre_score(jnp.asarray(x), jnp.asarray(sub)),
                                  nearest_centre_score(x, centres[:4]))


def test_nearest_centre_score_edges():
    c = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    x = np.array([[3.0, 0.0, 0.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(nearest_centre_score(x, c), [0.0, 1 + np.sqrt(0.5), 1.0],
                               atol=1e-6)
    np.testing.assert_allclose(nearest_centre_score(-c[:1], c[:1]), [2.0], atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (6, 4), elements=st.floats(-10, 10)).filter(
    lambda a: np.all(np.linalg.norm(a, axis=1) > 1e-2)), st.floats(0.01, 100.0))
def test_nearest_centre_score_is_scale_invariant(x, scale):
    centres = np.eye(4)[:3] + 0.1
    np.testing.assert_allclose(nearest_centre_score(scale * x, 7 * centres),
                               nearest_centre_score(x, centres), atol=2e-6)


def blobs(rng, directions, n_per_blob, spread=0.01):
    return np.concatenate([d + spread * rng.normal(size=(n_per_blob, d.size)) for d in directions])


def test_kmeans_centres_find_separated_clusters_and_append_targets():
    rng = np.random.default_rng(1)
    directions = np.eye(6)[:3] * np.array([[1.0], [5.0], [0.2]])  # norms must not matter
    source = blobs(rng, directions, 20)
    target = rng.normal(size=(4, 6))
    centres = kmeans_centres(source, n_clusters=3, seed=0, target_embeddings=target)
    assert isinstance(centres, np.ndarray) and centres.shape == (7, 6)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-6)
    # Every true direction is matched by one k-means centre.
    cos = centres[:3] @ np.eye(6)[:3].T
    assert sorted(np.argmax(cos, axis=1).tolist()) == [0, 1, 2]
    assert np.all(cos.max(axis=1) > 0.999)
    np.testing.assert_allclose(centres[3:], target / np.linalg.norm(target, axis=1,
                                                                      keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(centres, kmeans_centres(source, n_clusters=3, seed=0,
                                                          target_embeddings=target))
    # A target clip scores 0 against its own centre; a source clip close to 0.
    scores = nearest_centre_score(np.r_[target, source[:1]], centres)
    np.testing.assert_allclose(scores[:4], 0.0, atol=1e-6)
    assert scores[4] < 1e-3


def test_kmeans_centres_bad_input():
    x = np.random.default_rng(2).normal(size=(5, 3))
    with pytest.raises(ValueError, match="n_clusters=6 exceeds the 5 source training"):
        kmeans_centres(x, n_clusters=6, seed=0)
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        kmeans_centres(x, n_clusters=0, seed=0)
    with pytest.raises(ValueError, match="target_embeddings have dimension 4"):
        kmeans_centres(x, n_clusters=2, seed=0, target_embeddings=np.ones((2, 4)))
    with pytest.raises(ValueError, match="seed must be an integer"):
        kmeans_centres(x, n_clusters=2, seed=0.5)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_score_matches_naive(k):
    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    expected = [np.sort(naive_cos_distances(x, train))[:k].mean() for x in test]
    np.testing.assert_allclose(knn_score(train, test, k=k), expected, atol=1e-6)
    np.testing.assert_allclose(knn_score(train, train, k=1), 0.0, atol=1e-6)


def test_knn_score_bad_input():
    train = np.ones((3, 2))
    with pytest.raises(ValueError, match="k=4 exceeds the 3 training embeddings"):
        knn_score(train, train, k=4)
    with pytest.raises(ValueError, match="test_embeddings have dimension 3"):
        knn_score(train, np.ones((2, 3)))
    with pytest.raises(ValueError, match="train_embeddings contains 1 non-finite"):
        knn_score(np.array([[1.0, np.nan]]), train)


def test_reconstruction_error_matches_naive():
    rng = np.random.default_rng(4)
    x, x_hat = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 5))
    expected = [np.mean((a - b) ** 2) for a, b in zip(x, x_hat, strict=True)]
    np.testing.assert_allclose(reconstruction_error(x, x_hat), expected, rtol=1e-6)
    np.testing.assert_allclose(reconstruction_error(x[:, 0, 0], x_hat[:, 0, 0]),
                               (x[:, 0, 0] - x_hat[:, 0, 0]) ** 2, rtol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "reconstructions", "match"),
    [
        (np.ones((2, 3)), np.ones((2, 4)), "must have the same shape"),
        (np.ones((0, 3)), np.ones((0, 3)), "inputs is empty"),
        (np.ones((2, 3)), np.full((2, 3), np.inf), "reconstructions contains 6 non-finite"),
    ],
)
def test_reconstruction_error_bad_input(inputs, reconstructions, match):
    with pytest.raises(ValueError, match=match):
        reconstruction_error(inputs, reconstructions)


@pytest.mark.parametrize(
    ("embeddings", "centres", "match"),
    [
        (np.ones((2, 3)), np.ones((4, 2)), "centres have dimension 2"),
        (np.ones(3), np.ones((4, 3)), "embeddings must have 2 dimensions"),
        (np.ones((2, 3)), np.ones(3), "centres must have 2 or 3 dimensions"),
        (np.ones((2, 3)), np.ones((0, 3)), "centres is empty"),
    ],
)
def test_nearest_centre_score_bad_input(embeddings, centres, match):
    with pytest.raises(ValueError, match=match):
        nearest_centre_score(embeddings, centres)


def test_level_score_is_the_level_distance_in_training_standard_deviations():
    rng = np.random.default_rng(0)
    gains = np.array([1.0, 1.1, 0.9, 1.05, 10.0, 0.1])
    train = rng.normal(size=(6, 800)) * gains[:, None]
    groups = np.array([0, 0, 0, 1, 1, 1])
    test = rng.normal(size=(4, 400)) * np.array([1.0, 3.0, 1.0, 3.0])[:, None]
    test_groups = np.array([0, 0, 1, 1])
    got = level_score(train, test, train_groups=groups, test_groups=test_groups)
    level = lambda x: 10 * np.log10(np.mean(x**2, axis=1))
    for i, g in enumerate(test_groups):
        ref = level(train[groups == g])
        assert got[i] == pytest.approx(abs(level(test[i:i + 1])[0] - ref.mean())
                                       / ref.std(ddof=1), rel=1e-5)  # float32 input
    assert got[1] > got[0]  # 3x louder than its group's normal level


@pytest.mark.parametrize(
    ("train", "test", "kwargs", "match"),
    [(np.ones((3, 4)), np.zeros((1, 4)), {}, "1 silent clip"),
     (np.ones(4), np.ones((1, 4)), {}, r"must be \(clips, samples\)"),
     (np.ones((3, 4)), np.ones((1, 4)), {"train_groups": [0, 0, 0]}, "or neither"),
     (np.ones((3, 4)), np.ones((1, 4)), {"train_groups": [0, 0, 1], "test_groups": [1]},
      "group 1 has 1 training clip"),
     (np.ones((3, 4)), np.ones((1, 4)), {"train_groups": [0, 0], "test_groups": [0]},
      "must have shapes")],
)
def test_level_score_bad_input(train, test, kwargs, match):
    with pytest.raises(ValueError, match=match):
        level_score(train, test, **kwargs)


def test_nearest_subspace_score_matches_naive_projection():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 5))
    bases = np.stack([np.linalg.qr(rng.normal(size=(5, 2)))[0].T for _ in range(3)])  # (3, 2, 5)
    want = [1.0 - max(unit(xi) @ unit(b.T @ (b @ xi)) for b in bases) for xi in x]
    np.testing.assert_allclose(scoring.nearest_subspace_score(x, bases), want, atol=1e-6)


def test_backends_are_jit_compatible():
    rng = np.random.default_rng(5)
    x, centres = rng.normal(size=(7, 4)), rng.normal(size=(3, 4))
    for fn, args in ((scoring.nearest_centre_score, (x, centres)),
                     (lambda a, b: scoring.knn_score(a, b, k=2), (centres, x)),
                     (scoring.reconstruction_error, (x, centres[:1].repeat(7, 0)))):
        np.testing.assert_allclose(jax.jit(fn)(*args), fn(*args), rtol=1e-6, atol=1e-7)

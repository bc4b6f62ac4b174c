import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory.geometry import (
    angles,
    cosine_matrix,
    l2_normalize,
    random_centres,
    safe_norm,
    simplex_centres,
)


def test_l2_normalize_matches_numpy_and_keeps_zero_vectors():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1e-3, 2e-3]])
    want = np.array([[0.6, 0.8], [0.0, 0.0], np.array([-1.0, 2.0]) / math.sqrt(5)])
    np.testing.assert_allclose(l2_normalize(x), want, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_normalize_and_norm_gradients_finite_at_zero(dtype):
    zero = jnp.zeros(4, dtype)
    for fn in (lambda v: jnp.sum(l2_normalize(v)), lambda v: safe_norm(v)):
        g = jax.grad(lambda v, fn=fn: fn(v).astype(jnp.float32))(zero)
        assert np.all(np.isfinite(np.asarray(g, np.float32)))


def test_angles_exact_away_from_the_poles_and_finite_gradient_at_them():
    c = jnp.array([-0.5, 0.0, 0.3, 0.9])
    np.testing.assert_allclose(angles(c), np.arccos(np.asarray(c)), rtol=1e-6)
    for pole in (1.0, -1.0):
        assert np.isfinite(float(jax.grad(lambda t: angles(t))(jnp.float32(pole))))
    assert float(angles(jnp.float32(1.0))) < 2e-3
    assert float(angles(jnp.float32(-1.0))) > math.pi - 2e-3


def test_cosine_matrix_shapes_and_values():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    c = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 3))
    cos = cosine_matrix(x, c)
    assert cos.shape == (5, 4, 2)
    xn = np.asarray(x) / np.linalg.norm(x, axis=1, keepdims=True)
    cn = np.asarray(c) / np.linalg.norm(c, axis=2, keepdims=True)
    np.testing.assert_allclose(cos, np.einsum("bd,nmd->bnm", xn, cn), rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), extra=st.integers(0, 5))
def test_simplex_centres_are_an_equiangular_tight_frame(n, extra):
    c = np.asarray(simplex_centres(n, n - 1 + extra), np.float64)
    gram = c @ c.T
    np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-5)
    off = gram[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (n - 1), atol=1e-5)
    np.testing.assert_allclose(c.sum(axis=0), 0.0, atol=1e-5)


def test_simplex_needs_enough_dimensions():
    with pytest.raises(ValueError, match="dim >= 4"):
        simplex_centres(5, 3)


def test_random_centres_are_unit_and_deterministic():
    a = random_centres(jax.random.PRNGKey(3), 6, 8, num_subcentres=2)
    b = random_centres(jax.random.PRNGKey(3), 6, 8, num_subcentres=2)
    assert a.shape == (6, 2, 8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        random_centres(jax.random.PRNGKey(0), 0, 3)

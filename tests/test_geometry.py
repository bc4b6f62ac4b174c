"""Geometry helpers on the unit sphere. Few compilations: the data are NumPy draws, the
half-precision gradients and the simplex shapes each go through one jitted program."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


DTYPES = (jnp.float32, jnp.float16, jnp.bfloat16)


@jax.jit
def _gradients_at_zero():
    """{(dtype, function): gradient at the zero vector} for every dtype, in one program."""
    out = {}
    for dtype in DTYPES:
        zero = jnp.zeros(4, dtype)
        for name, fn in (("l2_normalize", lambda v: jnp.sum(l2_normalize(v))),
                         ("safe_norm", lambda v: safe_norm(v))):
            out[jnp.dtype(dtype).name, name] = jax.grad(
                lambda v, fn=fn: fn(v).astype(jnp.float32))(zero)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_and_norm_gradients_finite_at_zero(dtype):
    grads = _gradients_at_zero()
    for name in ("l2_normalize", "safe_norm"):
        g = grads[jnp.dtype(dtype).name, name]
        assert g.dtype == dtype and g.shape == (4,), name
        assert np.all(np.isfinite(np.asarray(g, np.float32))), name


def test_angles_exact_away_from_the_poles_and_finite_gradient_at_them():
    c = jnp.array([-0.5, 0.0, 0.3, 0.9])
    np.testing.assert_allclose(angles(c), np.arccos(np.asarray(c)), rtol=1e-6)
    for pole in (1.0, -1.0):
        assert np.isfinite(float(jax.grad(lambda t: angles(t))(jnp.float32(pole))))
    assert float(angles(jnp.float32(1.0))) < 2e-3
    assert float(angles(jnp.float32(-1.0))) > math.pi - 2e-3


def test_cosine_matrix_shapes_and_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    c = rng.normal(size=(4, 2, 3)).astype(np.float32)
    cos = cosine_matrix(x, c)
    assert cos.shape == (5, 4, 2)
    xn = np.asarray(x) / np.linalg.norm(x, axis=1, keepdims=True)
    cn = np.asarray(c) / np.linalg.norm(c, axis=2, keepdims=True)
    np.testing.assert_allclose(cos, np.einsum("bd,nmd->bnm", xn, cn), rtol=1e-5, atol=1e-6)


# (num_classes, extra dimensions): every N in 2..12 and every extra in 0..5 (dim = N - 1 + extra),
# the tight dim = N - 1 at both ends of the range. A shape is static, so each one is a compiled
# program of its own: all of them are built in one jitted call.
SIMPLEX_SHAPES = ((2, 0), (2, 5), (3, 1), (4, 0), (5, 3), (6, 5), (7, 0), (8, 2), (9, 4),
                  (10, 1), (11, 5), (12, 0), (12, 5))


@functools.cache
def _simplices():
    build = jax.jit(lambda: [simplex_centres(n, n - 1 + extra) for n, extra in SIMPLEX_SHAPES])
    return dict(zip(SIMPLEX_SHAPES, build(), strict=True))


@pytest.mark.parametrize(("n", "extra"), SIMPLEX_SHAPES)
def test_simplex_centres_are_an_equiangular_tight_frame(n, extra):
    c = np.asarray(_simplices()[n, extra], np.float64)
    assert c.shape == (n, n - 1 + extra)
    gram = c @ c.T
    np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-5)
    off = gram[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (n - 1), atol=1e-5)
    np.testing.assert_allclose(c.sum(axis=0), 0.0, atol=1e-5)


def test_simplex_needs_enough_dimensions():
    with pytest.raises(ValueError, match="dim >= 4"):
        simplex_centres(5, 3)


def test_random_centres_are_unit_and_deterministic():
    sample = jax.jit(lambda key: random_centres(key, 6, 8, num_subcentres=2))
    a = sample(jax.random.PRNGKey(3))
    b = sample(jax.random.PRNGKey(3))
    assert a.shape == (6, 2, 8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        random_centres(jax.random.PRNGKey(0), 0, 3)

"""Geometry on the unit sphere with gradients that stay finite everywhere.

* :func:`l2_normalize` maps the zero vector to zero with a finite (zero-free) gradient,
* :func:`cosine_matrix` gives cos(theta) between embeddings and class centres,
* :func:`angles` clips before ``arccos`` so that d theta / d cos stays finite at cos = +-1,
* :func:`random_centres` and :func:`simplex_centres` make unit-norm class centres.

All functions are pure and ``jax.jit``-able.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asdtheory._validation import check_scalar, compute_dtype

__all__ = [
    "angles",
    "cosine_matrix",
    "l2_normalize",
    "random_centres",
    "safe_norm",
    "simplex_centres",
]


def _eps(dtype) -> float:
    # Below float32's tiny and well above its subnormal range; squared it stays representable.
    return float(jnp.finfo(dtype).eps) ** 2 if dtype == jnp.float64 else 1e-12


def safe_norm(x: jax.Array, *, axis: int = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm with a finite gradient at the zero vector (where it returns ~0).

    ``sqrt(max(sum x^2, eps^2))``: the gradient of ``max`` selects the constant below eps^2,
    so d||x||/dx = 0 there instead of 0/0.
    """
    dtype = compute_dtype(x)
    x = x.astype(dtype)
    eps = _eps(dtype)
    squared = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    return jnp.sqrt(jnp.maximum(squared, eps * eps))


def l2_normalize(x: jax.Array, *, axis: int = -1) -> jax.Array:
    """x / ||x|| along ``axis``; the zero vector maps to the zero vector with zero gradient.

    A vector with norm below 1e-12 counts as zero. The division uses the double-``where``
    pattern (a safe denominator of 1 in the unused branch) so that no inf or NaN reaches the
    gradient -- also not in half precision, where 1/eps would overflow. Computed in at least
    float32 and returned in that precision.

    >>> l2_normalize(jnp.array([3.0, 4.0]))
    Array([0.6, 0.8], dtype=float32)
    """
    x = x.astype(compute_dtype(x))
    norm = safe_norm(x, axis=axis, keepdims=True)
    nonzero = norm > _eps(x.dtype)
    return jnp.where(nonzero, x / jnp.where(nonzero, norm, 1.0), 0.0)


def cosine_matrix(embeddings: jax.Array, centres: jax.Array) -> jax.Array:
    """cos(theta) between every embedding and every centre.

    Args:
      embeddings: (B, D).
      centres: (..., D), e.g. (N, D) class centres or (N, M, D) sub-centres.

    Returns:
      (B, ...) cosines in [-1, 1] (0 for zero vectors).
    """
    x = l2_normalize(embeddings)
    c = l2_normalize(centres.reshape(-1, centres.shape[-1]))
    cos = jnp.clip(x @ c.T, -1.0, 1.0)  # one plain (B, D) x (D, K) matmul
    return cos.reshape(x.shape[:-1] + centres.shape[:-1])


def _arccos_margin(dtype) -> float:
    # 4 ulps below 1: arccos'(1 - d) = 1/sqrt(2d - d^2) is ~1.4e3 in float32, finite.
    return 4 * float(jnp.finfo(dtype).eps)


def angles(cosines: jax.Array) -> jax.Array:
    """theta = arccos(cos) with cos clipped to [-1 + d, 1 - d] so gradients stay finite.

    d is 4 ulps of the compute dtype (4.8e-7 in float32), so theta is accurate to ~1e-3 rad
    within d of +-1 and exact elsewhere. The gradient is zero for |cos| > 1 - d, finite always.
    """
    dtype = compute_dtype(cosines)
    d = _arccos_margin(dtype)
    return jnp.arccos(jnp.clip(cosines.astype(dtype), -1.0 + d, 1.0 - d))


def random_centres(key: jax.Array, num_classes: int, dim: int, *, num_subcentres: int | None = None,
                   dtype=jnp.float32) -> jax.Array:
    """Class centres drawn uniformly on the unit sphere S^(dim-1).

    Returns (num_classes, dim), or (num_classes, num_subcentres, dim) when ``num_subcentres``
    is given.
    """
    check_scalar(num_classes, "num_classes", low=1, integer=True)
    check_scalar(dim, "dim", low=1, integer=True)
    shape = (num_classes, dim) if num_subcentres is None else (num_classes, num_subcentres, dim)
    if num_subcentres is not None:
        check_scalar(num_subcentres, "num_subcentres", low=1, integer=True)
    return l2_normalize(jax.random.normal(key, shape, dtype=dtype)).astype(dtype)


def simplex_centres(num_classes: int, dim: int, *, dtype=jnp.float32) -> jax.Array:
    """The regular simplex (simplex equiangular tight frame): N unit vectors in R^dim with
    pairwise cosine -1/(N-1) and sum zero. Needs dim >= N - 1.

    Built from the centred standard basis of R^N, then rotated into R^dim by an orthonormal
    basis of the (N-1)-dimensional subspace it spans (deterministic).
    """
    check_scalar(num_classes, "num_classes", low=2, integer=True)
    check_scalar(dim, "dim", low=1, integer=True)
    n = int(num_classes)
    if dim < n - 1:
        raise ValueError(
            f"a simplex of {n} centres needs dim >= {n - 1}, got dim={dim}; "
            "use random_centres for more classes than dimensions."
        )
    centred = jnp.eye(n, dtype=jnp.float64 if jax.config.x64_enabled else jnp.float32)
    centred = centred - 1.0 / n
    # Orthonormal basis of the centred subspace (rank n - 1) from the SVD: coordinates there.
    u, s, _ = jnp.linalg.svd(centred, full_matrices=False)
    coords = u[:, : n - 1] * s[: n - 1]
    centres = jnp.zeros((n, dim), coords.dtype).at[:, : n - 1].set(coords)
    return l2_normalize(centres).astype(dtype)

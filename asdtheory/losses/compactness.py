"""The compactness loss (Deep SVDD) and compactness with respect to class centres.

Deep SVDD (Ruff et al., ICML 2018) maps normal data into a hypersphere around a centre c:

* one-class:      L_i = ||phi(x_i) - c||^2                       (mean over i = the objective)
* soft-boundary:  L_i = R^2 + (1/nu) max(0, ||phi(x_i) - c||^2 - R^2)

(weight decay is left to the optimiser). c is the mean of an initial forward pass with
entries |c_j| < eps pushed to +-eps, then kept fixed (:func:`deep_svdd_centre`).

Compactness w.r.t. class centres, the quantity that angular margin losses also minimise
(Wilkinghoff & Kurth, TASLP 2024), is the squared chord between the normalised embedding and
its class centre, ||x~ - c_y~||^2 = 2 - 2 cos(theta_y) (nearest sub-centre for (N, M, D)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asdtheory._validation import as_float_array, check_scalar
from asdtheory.losses._core import class_cosines

__all__ = ["compactness", "deep_svdd", "deep_svdd_centre", "soft_boundary_radius"]


def deep_svdd(embeddings, centre, *, radius=None, nu=None) -> jax.Array:
    """Deep SVDD loss per example (one-class, or soft-boundary when ``radius`` is given).

    Args:
      embeddings: (B, D) network outputs phi(x).
      centre: (D,) hypersphere centre c.
      radius: soft-boundary radius R (not squared); requires ``nu``.
      nu: soft-boundary trade-off in (0, 1].

    Returns:
      (B,) ||phi(x) - c||^2, or R^2 + max(0, ||phi(x) - c||^2 - R^2) / nu.

    Reference: L. Ruff et al., "Deep one-class classification", ICML 2018.
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    centre = as_float_array(centre, "centre", ndim=1)
    if centre.shape[0] != embeddings.shape[1]:
        raise ValueError(
            f"centre has dimension {centre.shape[0]} but embeddings have dimension "
            f"{embeddings.shape[1]}."
        )
    sq_dist = jnp.sum((embeddings - centre) ** 2, axis=-1)
    if radius is None:
        if nu is not None:
            raise ValueError("nu is only used by the soft-boundary loss: pass radius as well.")
        return sq_dist
    if nu is None:
        raise ValueError("the soft-boundary loss needs nu in (0, 1] together with radius.")
    check_scalar(nu, "nu", low=1e-12, high=1.0)
    check_scalar(radius, "radius", low=0.0)
    r2 = radius**2
    return r2 + jnp.maximum(sq_dist - r2, 0.0) / nu


def deep_svdd_centre(initial_embeddings, *, eps: float = 0.1) -> jax.Array:
    """Ruff et al.'s centre: mean of an initial forward pass, entries with |c_j| < eps set
    to +-eps (sign of c_j, + for 0), so that a zero-weight network cannot hit it trivially."""
    x = as_float_array(initial_embeddings, "initial_embeddings", ndim=2)
    check_scalar(eps, "eps", low=0.0)
    c = jnp.mean(x, axis=0)
    sign = jnp.where(c < 0, -1.0, 1.0)
    return jnp.where(jnp.abs(c) < eps, sign * eps, c)


def soft_boundary_radius(squared_distances, *, nu) -> float:
    """R = the (1 - nu)-quantile of the distances ||phi(x) - c|| (Ruff et al.'s update)."""
    check_scalar(nu, "nu", low=1e-12, high=1.0)
    d = np.sqrt(np.asarray(as_float_array(squared_distances, "squared_distances", ndim=1)))
    return float(np.quantile(d, 1.0 - nu))


def compactness(embeddings, centres, labels) -> jax.Array:
    """Per-example compactness w.r.t. the class centre: ||x~ - c_y~||^2 = 2 - 2 cos(theta_y).

    Args:
      embeddings: (B, D).
      centres: (N, D) class centres, or (N, M, D) sub-centres (the nearest one of the class
        counts).
      labels: (B,) integer class labels.

    Returns:
      (B,) values in [0, 4].
    """
    centres = jnp.asarray(centres)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="compactness",
                                   allow_soft=False, subcentres=centres.ndim == 3)
    if cos.ndim == 3:
        cos = jnp.max(cos, axis=-1)
    target = jnp.take_along_axis(cos, labels[:, None], axis=-1)[:, 0]
    return 2.0 - 2.0 * target

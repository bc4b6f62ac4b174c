"""Bounds linking angular margin losses to the compactness loss, and random configurations
to check them on.

Notation (Wilkinghoff & Kurth, TASLP 2024; our reconstruction -- only the abstract is public):
embedding x, x~ = x / ||x||, unit class centres c_1..c_N, cos theta_k = <x~, c_k>, scale s,
target logit f(theta_y) (cos theta_y for the normalised softmax / AdaCos, cos theta_y - m for
CosFace, cos(theta_y + m) for ArcFace). The per-example loss is

    L = log(1 + sum_{k != y} exp(s (cos theta_k - f(theta_y)))).

*Chord identity.* ||x~ - c_y||^2 = 2 - 2 cos theta_y: the compactness of x w.r.t. its centre.

*General bound* (:func:`compactness_bound`). Every non-target logit is at least b (b = -1 for
cosines to centres, b = 0 for AdaProj's subspace cosines), so

    L >= log(1 + (N - 1) exp(-s (f(theta_y) - b)))
    <=>  f(theta_y) >= a(L) := b + (1/s) log((N - 1) / (e^L - 1)),

and since f is decreasing, theta_y <= f^{-1}(a(L)) and the compactness is at most
g(L) = 2 - 2 cos f^{-1}(a(L)), an increasing function of L. For f = cos (no margin)
g(L) = 2 - 2 a(L) = 4 - (2/s) log((N - 1) / (e^L - 1)) when b = -1. Any target logit with
f(theta) <= cos theta (ArcFace, CosFace with m >= 0, SphereFace) also satisfies the no-margin
bound, which is then valid but looser.

*Simplex bound* (:func:`simplex_compactness_bound`). If the centres sum to zero,
sum_{k != y} cos theta_k = -cos theta_y, and Jensen's inequality (exp is convex) gives
e^L - 1 >= (N - 1) exp(-s N cos theta_y / (N - 1)) for f <= cos, hence

    ||x~ - c_y||^2 <= 2 - (2 (N - 1) / (s N)) log((N - 1) / (e^L - 1)),

with equality for N = 2 and no margin (Jensen on a single term).

*Constant embeddings* (:func:`constant_embedding_bound`). If every input has the same
embedding, the softmax class distribution q is the same for all inputs and the mean loss is
-sum_k pi_k log q_k = H(pi) + KL(pi || q) >= H(pi), the entropy of the class prior (log N for
balanced classes); a margin only lowers the target probability, so the bound holds for every
f <= cos and for sub-cluster AdaCos (whose class probabilities are again one distribution).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asdtheory import losses
from asdtheory._validation import as_float_array, check_scalar, is_traced
from asdtheory.geometry import l2_normalize, simplex_centres
from asdtheory.losses import arcface_target_logit

__all__ = [
    "CHUNK_FLOATS",
    "COMPACTNESS",
    "FAMILIES",
    "Configurations",
    "check_bound",
    "compactness_bound",
    "constant_embedding_bound",
    "loss_lower_bound",
    "map_configurations",
    "orthogonal_minimiser_angle",
    "random_configurations",
    "sample_families",
    "simplex_compactness_bound",
    "simplex_loss_lower_bound",
    "target_logit_lower_bound",
]

TargetLogit = Literal["cosine", "cosface", "arcface"]


def _check_array(value, name: str, *, low: float) -> jax.Array:
    """A hyper-parameter given per configuration (scalar or array), checked when concrete."""
    value = jnp.asarray(value)
    if not is_traced(value):
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)) or np.any(arr < low):
            raise ValueError(f"{name} must be finite and >= {low}, got values in "
                             f"[{arr.min():.4g}, {arr.max():.4g}].")
    return value


def _log_expm1(x: jax.Array) -> jax.Array:
    """log(e^x - 1) without overflow for large x and with expm1's accuracy for small x."""
    large = x > 1.0
    return jnp.where(large, x + jnp.log1p(-jnp.exp(-jnp.where(large, x, 1.0))),
                     jnp.log(jnp.expm1(jnp.where(large, 1.0, x))))


def target_logit_lower_bound(loss, *, num_classes, scale, min_logit=-1.0) -> jax.Array:
    """a(L) = b + (1/s) log((N - 1) / (e^L - 1)): the smallest target logit f(theta_y)
    compatible with a per-example loss L when every non-target logit is >= b.

    Args:
      loss: per-example losses L > 0 (any shape).
      num_classes: N >= 2 (scalar or broadcastable array).
      scale: s > 0 (scalar or broadcastable array).
      min_logit: b, the smallest possible non-target cosine (-1 for centres, 0 for AdaProj).
    """
    loss = as_float_array(loss, "loss")
    num_classes = _check_array(num_classes, "num_classes", low=2)
    scale = _check_array(scale, "scale", low=1e-12)
    return min_logit + (jnp.log(num_classes - 1.0) - _log_expm1(loss)) / scale


def _max_target_angle(a: jax.Array, margin, target_logit: TargetLogit) -> jax.Array:
    """sup {theta in [0, pi] : f(theta) >= a} for a decreasing target-logit function f."""
    if target_logit == "cosine":
        return jnp.arccos(jnp.clip(a, -1.0, 1.0))
    if target_logit == "cosface":
        return jnp.arccos(jnp.clip(a + margin, -1.0, 1.0))
    # ArcFace: f = cos(theta + m) on [0, pi - m], cos(theta) - m sin(m) beyond (the fallback of
    # asdtheory.losses.arcface_target_logit); take the largest admissible angle of each branch.
    first = jnp.clip(jnp.arccos(jnp.clip(a, -1.0, 1.0)) - margin, 0.0, math.pi - margin)
    second = jnp.arccos(jnp.clip(a + margin * jnp.sin(margin), -1.0, 1.0))
    return jnp.maximum(first, jnp.where(second > math.pi - margin, second, 0.0))


def _target_logit(cosines, margin, target_logit: TargetLogit) -> jax.Array:
    if target_logit == "cosine":
        return cosines
    if target_logit == "cosface":
        return cosines - margin
    return arcface_target_logit(cosines, margin=margin)


def _check_target_logit(target_logit) -> None:
    if target_logit not in ("cosine", "cosface", "arcface"):
        raise ValueError(
            f"target_logit must be 'cosine', 'cosface' or 'arcface', got {target_logit!r}."
        )


def loss_lower_bound(compactness, *, num_classes, scale, margin=0.0,
                     target_logit: TargetLogit = "cosine", min_logit=-1.0) -> jax.Array:
    """l(c) = log(1 + (N - 1) exp(-s (f(theta_y) - b))), cos theta_y = 1 - c / 2: the smallest
    per-example loss at compactness c; ``l`` is increasing and :func:`compactness_bound` is its
    inverse, so ``L >= l(c)`` and ``c <= g(L)`` are the same statement.

    Arguments as in :func:`compactness_bound`; ``compactness`` holds values in [0, 4].
    """
    _check_target_logit(target_logit)
    compactness = as_float_array(compactness, "compactness")
    num_classes = _check_array(num_classes, "num_classes", low=2)
    scale = _check_array(scale, "scale", low=1e-12)
    margin = _check_array(margin, "margin", low=0.0)
    f = _target_logit(jnp.clip(1.0 - compactness / 2.0, -1.0, 1.0), margin, target_logit)
    return jax.nn.softplus(jnp.log(num_classes - 1.0) - scale * (f - min_logit))


def compactness_bound(loss, *, num_classes, scale, margin=0.0,
                      target_logit: TargetLogit = "cosine", min_logit=-1.0) -> jax.Array:
    """g(L): the largest compactness ||x~ - c_y||^2 compatible with a per-example loss L.

    g(L) = 2 - 2 cos theta_max, theta_max = sup {theta : f(theta) >= a(L)} with a(L) from
    :func:`target_logit_lower_bound`; for ``target_logit="cosine"`` and b = -1 this is
    g(L) = 4 - (2/s) log((N - 1) / (e^L - 1)). Clipped to [0, 4], the range of the compactness.

    Args:
      loss: per-example losses.
      num_classes: N >= 2; scale: s > 0; margin: m >= 0 (scalars or broadcastable arrays).
      target_logit: ``"cosine"`` (normalised softmax, AdaCos, sub-cluster AdaCos w.r.t. the
        nearest sub-centre, AdaProj; valid for every f <= cos), ``"cosface"`` (cos - m) or
        ``"arcface"`` (cos(theta + m) with the monotone fallback beyond pi - m).
      min_logit: b, the smallest possible non-target logit (-1, or 0 for AdaProj).
    """
    _check_target_logit(target_logit)
    margin = _check_array(margin, "margin", low=0.0)
    a = target_logit_lower_bound(loss, num_classes=num_classes, scale=scale,
                                 min_logit=min_logit)
    theta = _max_target_angle(a, margin, target_logit)
    return jnp.clip(4.0 * jnp.sin(theta / 2.0) ** 2, 0.0, 4.0)  # = 2 - 2 cos theta, accurately


def simplex_compactness_bound(loss, *, num_classes, scale) -> jax.Array:
    """Bound for centres summing to zero (e.g. the regular simplex), any f <= cos:

    ||x~ - c_y||^2 <= 2 - (2 (N - 1) / (s N)) log((N - 1) / (e^L - 1)),

    tight for N = 2 without margin. Clipped to [0, 4].
    """
    loss = as_float_array(loss, "loss")
    num_classes = _check_array(num_classes, "num_classes", low=2)
    scale = _check_array(scale, "scale", low=1e-12)
    log_ratio = jnp.log(num_classes - 1.0) - _log_expm1(loss)
    bound = 2.0 - 2.0 * (num_classes - 1.0) / (scale * num_classes) * log_ratio
    return jnp.clip(bound, 0.0, 4.0)


def simplex_loss_lower_bound(compactness, *, num_classes, scale) -> jax.Array:
    """l(c) = log(1 + (N - 1) exp(-s N cos theta_y / (N - 1))), cos theta_y = 1 - c / 2: the
    smallest loss at compactness c when the centres sum to zero (any f <= cos); the inverse of
    :func:`simplex_compactness_bound`."""
    compactness = as_float_array(compactness, "compactness")
    num_classes = _check_array(num_classes, "num_classes", low=2)
    scale = _check_array(scale, "scale", low=1e-12)
    cos = jnp.clip(1.0 - compactness / 2.0, -1.0, 1.0)
    return jax.nn.softplus(jnp.log(num_classes - 1.0)
                           - scale * num_classes * cos / (num_classes - 1.0))


def constant_embedding_bound(class_prior) -> float | np.ndarray:
    """H(pi) = -sum_k pi_k log pi_k: the smallest mean loss of any constant embedding.

    Args:
      class_prior: (N,) class frequencies or counts, or (..., N) for many priors at once
        (each row is normalised here).

    Returns:
      A float for one prior, else an array of shape (...,).
    """
    prior = np.asarray(class_prior, dtype=np.float64)
    if prior.ndim < 1 or prior.shape[-1] == 0:
        raise ValueError(f"class_prior must have shape (..., N) with N >= 1, got {prior.shape}.")
    totals = prior.sum(axis=-1, keepdims=True)
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or np.any(totals <= 0):
        raise ValueError("class_prior must be finite and non-negative with a positive sum per "
                         "row (frequencies or counts per class).")
    p = prior / totals
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return float(entropy) if entropy.ndim == 0 else entropy


class Configurations(NamedTuple):
    """A batch of K random single-example configurations, zero-padded to a common dimension.

    Zero padding preserves norms and inner products, so a configuration of dimension D is
    exactly represented in R^max_dim.
    """

    embeddings: jax.Array  # (K, 1, max_dim): one embedding per configuration (a batch of 1)
    centres: jax.Array  # (K, N, max_dim), or (K, N, M, max_dim) with sub-centres
    labels: jax.Array  # (K, 1) int32
    scale: jax.Array  # (K,)
    margin: jax.Array  # (K,)
    dim: jax.Array  # (K,) int32, the dimension D actually used


def _log_uniform(key, shape, low, high):
    return jnp.exp(jax.random.uniform(key, shape, minval=math.log(low), maxval=math.log(high)))


def random_configurations(key: jax.Array, num_configs: int, *, num_classes: int,
                          max_dim: int = 256, min_dim: int = 2,
                          num_subcentres: int | None = None,
                          scale_range: tuple[float, float] = (1.0, 64.0),
                          margin_range: tuple[float, float] = (0.0, 0.8),
                          centres: Literal["random", "simplex"] = "random") -> Configurations:
    """Random (embedding, centres, label, s, m) configurations that cover the whole range of
    compactness values and come close to the bounds.

    Per configuration: D uniform in [min_dim, max_dim] (at least N - 1 for the simplex),
    s log-uniform in ``scale_range``, m uniform in ``margin_range``, label y uniform. The
    embedding is x~ = cos(phi) t + sin(phi) u with phi uniform in [0, pi], t the (first
    sub-)centre of class y and u a random unit vector orthogonal to t, so 2 - 2 cos theta_y
    spreads over [0, 4]. ``centres="random"``: the non-target centres are
    normalise(sigma g - x~) with g standard normal and sigma log-uniform in [0.01, 100] --
    from nearly antipodal to x~ (where the bounds are nearly tight) to uniform on the sphere;
    the target class's other sub-centres are uniform. Taking ``centres[:, :, 0]`` of a
    sub-centre batch gives a valid batch for the single-centre losses.
    ``centres="simplex"``: the regular simplex of :func:`~asdtheory.geometry.simplex_centres`
    (no sub-centres).
    """
    check_scalar(num_configs, "num_configs", low=1, integer=True)
    check_scalar(num_classes, "num_classes", low=2, integer=True)
    check_scalar(max_dim, "max_dim", low=2, integer=True)
    if centres not in ("random", "simplex"):
        raise ValueError(f"centres must be 'random' or 'simplex', got {centres!r}.")
    if centres == "simplex" and num_subcentres is not None:
        raise ValueError("simplex centres have no sub-centres: leave num_subcentres=None.")
    low_dim = max(min_dim, num_classes - 1) if centres == "simplex" else min_dim
    if not 2 <= low_dim <= max_dim:
        raise ValueError(f"need 2 <= min_dim (and N - 1 for a simplex) <= max_dim; got "
                         f"min_dim={min_dim}, num_classes={num_classes}, max_dim={max_dim}.")
    for name, (lo, hi), floor in (("scale_range", scale_range, 1e-12),
                                  ("margin_range", margin_range, 0.0)):
        if not floor <= lo <= hi:
            raise ValueError(f"{name} must be (low, high) with {floor} <= low <= high, "
                             f"got {(lo, hi)}.")
    k, n, m = int(num_configs), int(num_classes), num_subcentres or 1
    keys = jax.random.split(key, 8)
    dim = jax.random.randint(keys[0], (k,), low_dim, max_dim + 1)
    mask = (jnp.arange(max_dim) < dim[:, None]).astype(jnp.float32)  # (K, max_dim)
    scale = _log_uniform(keys[1], (k,), *scale_range)
    margin = jax.random.uniform(keys[2], (k,), minval=margin_range[0], maxval=margin_range[1])
    labels = jax.random.randint(keys[3], (k,), 0, n)

    if centres == "simplex":
        grid = jnp.broadcast_to(simplex_centres(n, max_dim), (k, n, max_dim))
        target = jnp.take_along_axis(grid, labels[:, None, None], axis=1)[:, 0]
    else:
        sub = mask[:, None, None] * jax.random.normal(keys[4], (k, n, m, max_dim))
        grid = l2_normalize(sub)
        target = grid[jnp.arange(k), labels, 0]

    u = mask * jax.random.normal(keys[5], (k, max_dim))
    u = l2_normalize(u - jnp.sum(u * target, -1, keepdims=True) * target)
    phi = jax.random.uniform(keys[6], (k, 1), maxval=math.pi)
    x = jnp.cos(phi) * target + jnp.sin(phi) * u

    if centres == "random":
        # The normals drawn for the non-target centres serve again as their noise g.
        sigma = _log_uniform(keys[7], (k, 1, 1, 1), 0.01, 100.0)
        near_antipode = l2_normalize(sigma * sub - x[:, None, None, :])
        is_target = (jnp.arange(n) == labels[:, None])[:, :, None, None]
        grid = jnp.where(is_target, grid, near_antipode)
        if num_subcentres is None:
            grid = grid[:, :, 0]
    return Configurations(x[:, None, :], grid, labels[:, None].astype(jnp.int32), scale,
                          margin, dim.astype(jnp.int32))


CHUNK_FLOATS = 2**22  # centre coordinates per chunk of map_configurations' default chunks


def map_configurations(fn: Callable[[Configurations], dict], key: jax.Array, num_configs: int,
                       *, chunk_size: int | None = None,
                       **sampler_kwargs) -> dict[str, np.ndarray]:
    """Applies ``fn`` (jit-compiled once) to ``num_configs`` random configurations drawn in
    chunks of ``chunk_size`` (memory stays bounded) and concatenates its outputs.

    Args:
      fn: maps a :class:`Configurations` chunk to a dict of (chunk,) arrays.
      key: chunk i uses ``jax.random.fold_in(key, i)``.
      num_configs: total; must be a multiple of ``chunk_size`` (one compiled shape).
      chunk_size: configurations per chunk; None: the largest divisor of ``num_configs``
        whose centres (chunk x N x M x max_dim coordinates, M the sub-centres or 1) hold at
        most :data:`CHUNK_FLOATS` floats.
      sampler_kwargs: passed to :func:`random_configurations`.
    """
    if chunk_size is None:
        check_scalar(num_configs, "num_configs", low=1, integer=True)
        per_config = (sampler_kwargs["num_classes"] * (sampler_kwargs.get("num_subcentres") or 1)
                      * sampler_kwargs.get("max_dim", 256))
        chunk_size = max(1, min(int(num_configs), CHUNK_FLOATS // per_config))
        while num_configs % chunk_size:
            chunk_size -= 1
    check_scalar(chunk_size, "chunk_size", low=1, integer=True)
    if num_configs % chunk_size:
        raise ValueError(f"num_configs={num_configs} must be a multiple of chunk_size="
                         f"{chunk_size} so that every chunk has the same shape.")

    @jax.jit
    def run(chunk_key):
        return fn(random_configurations(chunk_key, chunk_size, **sampler_kwargs))

    outputs = [run(jax.random.fold_in(key, i)) for i in range(num_configs // chunk_size)]
    return {name: np.concatenate([np.asarray(o[name]) for o in outputs]) for name in outputs[0]}


def check_bound(loss, compactness, *, num_classes, scale, margin=0.0,
                target_logit: TargetLogit = "cosine", min_logit=-1.0, simplex: bool = False,
                tolerance: float = 16.0, near: float = 0.01) -> dict:
    """Checks computed losses against the smallest loss the bound allows at their compactness.

    deficit = (l(c) - L) / (eps s), l = :func:`loss_lower_bound` (or
    :func:`simplex_loss_lower_bound` with ``simplex=True``), eps the float32 machine epsilon:
    how far below the bound a loss lies, in units of the rounding of a float32 logit.

    Args:
      loss, compactness: (n,) per-configuration loss L and compactness c.
      num_classes, scale, margin: scalars or (n,) arrays, as for :func:`loss_lower_bound`.
      target_logit, min_logit: the family's target logit and smallest non-target logit b.
      simplex: use the bound for centres summing to zero (no margin).
      tolerance: deficits above it count as violations (rounding stays far below).
      near: a loss within ``near`` of its bound counts as near tight.

    Returns:
      {"configs", "violations" (deficit > tolerance), "strict" (deficit > 0),
      "max_deficit", "near_tight_share" (share with L - l(c) < near)}.
    """
    loss, compactness = np.asarray(loss), np.asarray(compactness)
    if loss.ndim != 1 or loss.shape != compactness.shape:
        raise ValueError(f"loss and compactness must be (n,) arrays of one shape, got "
                         f"{loss.shape} and {compactness.shape}.")
    if simplex:
        ell = simplex_loss_lower_bound(compactness, num_classes=num_classes, scale=scale)
    else:
        ell = loss_lower_bound(compactness, num_classes=num_classes, scale=scale, margin=margin,
                               target_logit=target_logit, min_logit=min_logit)
    ell = np.asarray(ell)
    # In the inputs' precision: the deficit measures float32 rounding.
    deficit = (ell - loss) / (float(np.finfo(np.float32).eps) * np.asarray(scale))
    return {"configs": loss.size, "violations": int(np.sum(deficit > tolerance)),
            "strict": int(np.sum(deficit > 0)), "max_deficit": float(deficit.max()),
            "near_tight_share": float(np.mean(loss - ell < near))}


def orthogonal_minimiser_angle(num_classes: int) -> float:
    """The angle (radians) between the minimiser of the margin-free softmax loss and its own
    centre when the N centres are orthonormal: arccos sqrt((N - 1) / N), for every scale s.

    With orthonormal centres the loss log(1 + sum_{k != y} exp(s (cos theta_k - cos theta_y)))
    is, by convexity of exp, smallest when every non-target cosine takes one value b, and then
    when a - b is largest (a = cos theta_y) subject to a^2 + (N - 1) b^2 <= 1: by Lagrange,
    b = -a / (N - 1) and a = sqrt((N - 1) / N). The same holds for CosFace (cos - m has the same
    argmax). The minimiser is off-centre: it moves away from the other centres.
    """
    check_scalar(num_classes, "num_classes", low=2, integer=True)
    return math.acos(math.sqrt((num_classes - 1) / num_classes))


# ---------------------------------------------------------------- the loss families checked

# name -> (per-example loss of one configuration, (x (1, D), centres (N, M, D), labels (1,),
# s, m) -> (1,); the compactness it bounds, a key of COMPACTNESS; the target logit f and the
# least non-target logit b of compactness_bound). The single-centre losses take each class's
# first sub-centre; SphereFace's margin is its usual integer 4, not the drawn m.
FAMILIES: dict[str, tuple[Callable, str, TargetLogit, float]] = {
    "normalized softmax / AdaCos": (
        lambda x, c, y, s, m: losses.normalized_softmax(x, c[:, 0], y, scale=s),
        "centre", "cosine", -1.0),
    "CosFace": (lambda x, c, y, s, m: losses.cosface(x, c[:, 0], y, scale=s, margin=m),
                "centre", "cosface", -1.0),
    "ArcFace": (lambda x, c, y, s, m: losses.arcface(x, c[:, 0], y, scale=s, margin=m),
                "centre", "arcface", -1.0),
    "SphereFace (m=4)": (
        lambda x, c, y, s, m: losses.sphereface(x, c[:, 0], y, scale=s, margin=4),
        "centre", "cosine", -1.0),
    "sub-center ArcFace": (
        lambda x, c, y, s, m: losses.subcenter_arcface(x, c, y, scale=s, margin=m),
        "sub-centre", "arcface", -1.0),
    "sub-cluster AdaCos": (lambda x, c, y, s, m: losses.subcluster_adacos(x, c, y, scale=s),
                           "sub-centre", "cosine", -1.0),
    "AdaProj": (lambda x, c, y, s, m: losses.adaproj(x, c, y, scale=s),
                "subspace", "cosine", 0.0),
}
# compactness kind -> (x, centres (N, M, D), labels) -> (1,): to the class's first centre, to
# its nearest sub-centre, and AdaProj's 2 - 2 cos of the angle to the class subspace.
COMPACTNESS: dict[str, Callable] = {
    "centre": lambda x, c, y: losses.compactness(x, c[:, 0], y),
    "sub-centre": lambda x, c, y: losses.compactness(x, c, y),
    "subspace": lambda x, c, y: 2.0 - 2.0 * losses.subspace_cosines(x, c)[:, y[0]],
}


def _family_values(cfg: Configurations, *, simplex: bool) -> dict:
    """Every family's loss and every compactness of a chunk of configurations (one vmap), and
    the chunk's s and m; ``simplex``: the single-centre families on simplex centres (N, D)."""

    def one(x, c, y, s, m):
        if simplex:
            return {name: fn(x, c[:, None], y, s, m)[0]
                    for name, (fn, kind, *_) in FAMILIES.items() if kind == "centre"
                    } | {"centre": losses.compactness(x, c, y)[0]}
        return ({name: fn(x, c, y, s, m)[0] for name, (fn, *_) in FAMILIES.items()}
                | {kind: fn(x, c, y)[0] for kind, fn in COMPACTNESS.items()})

    out = jax.vmap(one)(cfg.embeddings, cfg.centres, cfg.labels, cfg.scale, cfg.margin)
    return out | {"scale": cfg.scale, "margin": cfg.margin}


def sample_families(key: jax.Array, counts: Mapping[int, int], *, fold: bool = True,
                    **sampler_kwargs) -> dict[str, np.ndarray]:
    """Every family's loss and compactness on random configurations: ``counts[N]`` of them
    with N classes for each N (a different N is a different array shape), drawn by
    :func:`map_configurations` from ``jax.random.fold_in(key, N)`` (from ``key`` itself when
    ``fold`` is False), concatenated.

    Args:
      counts: {N: number of configurations}.
      sampler_kwargs: passed to :func:`random_configurations`; ``centres="simplex"`` gives
        the single-centre families on the regular simplex.

    Returns:
      {family name or compactness kind: (K,)} with "scale", "margin" and "N" per
      configuration.

    >>> out = sample_families(jax.random.key(0), {2: 4, 4: 4}, num_subcentres=2, max_dim=8)
    >>> sorted(out)[:3], out["N"].tolist()
    (['AdaProj', 'ArcFace', 'CosFace'], [2, 2, 2, 2, 4, 4, 4, 4])
    """
    evaluate = functools.partial(_family_values,
                                 simplex=sampler_kwargs.get("centres") == "simplex")
    parts = [map_configurations(evaluate, jax.random.fold_in(key, n) if fold else key, count,
                                num_classes=n, **sampler_kwargs) | {"N": np.full(count, n)}
             for n, count in counts.items()]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

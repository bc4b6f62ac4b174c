"""AdaCos and sub-cluster AdaCos: margin-free cosine softmax losses with an adaptive scale.

The scale is explicit state: the losses take ``scale=`` and the pure ``*_scale`` functions
return the next scale from a batch. A training step that follows the original layers does::

    scale = adacos_scale(x, centres, y, scale=scale)   # from this batch, with the old scale
    loss = adacos(x, centres, y, scale=scale).mean()   # this batch's loss with the new scale

AdaCos (Zhang et al., CVPR 2019): fixed scale s = sqrt(2) ln(N - 1); dynamic update

    s <- ln(B_avg) / cos(min(pi/4, theta_med)),
    B_avg = 1/B sum_i sum_{k != y_i} e^{s cos theta_ik},   theta_med = median_i theta_{i y_i},

computed here in log-sum-exp form so that large s cannot overflow.

Sub-cluster AdaCos (Wilkinghoff, IJCNN 2021): N classes x M sub-centres, the class probability
is the sum of the softmax over all N M logits taken over the class's M sub-centres, and
s0 = sqrt(2) ln(N M - 1). The scale update comes in two variants:

* ``"faithful"`` (default): AdaCos applied to the sub-centres -- B_avg sums e^{s cos} over the
  sub-centres of the non-target classes, theta_med is the median angle to the *nearest* target
  sub-centre.
* ``"code"``: as in the author's public implementation -- B_avg sums over *all* N M
  sub-centres (target terms included) and theta_med is the median of the *sum* of the M
  target sub-centre angles times the number of non-zero labels (1, or 2 under mixup); for
  M > 1 that sum exceeds pi/4, so the cap is always active.

Soft (mixup) labels y_i in the simplex: B_i weights every class k by (1 - y_ik) and the
target angle is sum_k y_ik theta_ik; both reduce to the formulas above for one-hot labels.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

from asdtheory._validation import check_scalar
from asdtheory.geometry import angles
from asdtheory.losses._core import check_scale, class_cosines, label_weights, softmax_cross_entropy
from asdtheory.losses.margin import normalized_softmax

__all__ = [
    "adacos",
    "adacos_fixed_scale",
    "adacos_scale",
    "adacos_scale_from_cosines",
    "subcluster_adacos",
    "subcluster_adacos_scale",
]


def adacos_fixed_scale(num_classes: int, num_subclusters: int = 1) -> float:
    """sqrt(2) ln(N M - 1): AdaCos's fixed scale and sub-cluster AdaCos's initial scale.

    Needs N M >= 3 (for N M = 2 the formula gives 0, a scale that cannot learn).
    """
    check_scalar(num_classes, "num_classes", low=1, integer=True)
    check_scalar(num_subclusters, "num_subclusters", low=1, integer=True)
    total = int(num_classes) * int(num_subclusters)
    if total < 3:
        raise ValueError(
            f"the AdaCos fixed scale sqrt(2) ln(N M - 1) needs N M >= 3 logits, got N M = {total}"
            " (it would be 0 or undefined); pass an explicit scale instead."
        )
    return math.sqrt(2.0) * math.log(total - 1)


def adacos(embeddings, centres, labels, *, scale) -> jax.Array:
    """AdaCos loss: softmax cross-entropy of s cos(theta), no margin, per example.

    Identical to :func:`~asdtheory.losses.normalized_softmax`; AdaCos is the choice of s
    (:func:`adacos_fixed_scale` or the dynamic :func:`adacos_scale`).

    Reference: X. Zhang et al., "AdaCos: Adaptively scaling cosine logits for effectively
    learning deep face representations", CVPR 2019.
    """
    return normalized_softmax(embeddings, centres, labels, scale=scale)


def adacos_scale_from_cosines(cosines, weights, *, scale) -> jax.Array:
    """Dynamic AdaCos scale from a (B, N) cosine matrix and a (B, N) label distribution.

    Shared by :func:`adacos_scale` and AdaProj (whose logits are cosines to subspaces).
    Returns a scalar, with no gradient flowing into it.
    """
    cosines = jax.lax.stop_gradient(cosines)
    # ln B_i = ln sum_k (1 - y_ik) e^{s cos_ik}; ln B_avg = logsumexp_i ln B_i - ln B.
    log_b = jax.nn.logsumexp(scale * cosines, axis=-1, b=1.0 - weights)
    target_angles = jnp.sum(weights * angles(cosines), axis=-1)
    return _scale_update(log_b, target_angles)


def adacos_scale(embeddings, centres, labels, *, scale) -> jax.Array:
    """Next AdaCos scale s <- ln(B_avg) / cos(min(pi/4, theta_med)) from one batch.

    Args:
      embeddings: (B, D); centres: (N, D); labels: (B,) integers or (B, N) soft labels.
      scale: the current scale s used inside B_avg.

    Returns:
      The new scale, a float32 scalar (``stop_gradient`` applied).
    """
    check_scale(scale)
    cos, labels, is_soft = class_cosines(embeddings, centres, labels, loss="adacos",
                                         allow_soft=True)
    _check_enough_classes(cos.shape[-1], 2, "adacos_scale")
    weights = label_weights(labels, is_soft, cos.shape[-1], cos.dtype)
    return adacos_scale_from_cosines(cos, weights, scale=scale)


def subcluster_adacos(embeddings, centres, labels, *, scale) -> jax.Array:
    """Sub-cluster AdaCos loss, per example.

    p(n | x) = sum_m e^{s cos theta_nm} / sum_{n', m'} e^{s cos theta_n'm'},
    L = -sum_n y_n log p(n | x),

    for centres (N, M, D), integer labels (B,) or soft (mixup) labels (B, N).

    Reference: K. Wilkinghoff, "Sub-cluster AdaCos: Learning representations for anomalous
    sound detection", IJCNN 2021.
    """
    check_scale(scale)
    cos, labels, is_soft = class_cosines(embeddings, centres, labels, loss="subcluster_adacos",
                                         allow_soft=True, subcentres=True)
    # log p(n | x) = logsumexp_m(s cos_nm) - logsumexp_{n', m'}(s cos_n'm').
    logits = scale * cos
    if is_soft:
        return softmax_cross_entropy(jax.nn.logsumexp(logits, axis=-1), labels, True)
    # Integer labels need only the target class's M logits besides the flat log-sum-exp;
    # per-class reductions over the short M axis would cost more than the matmul.
    total = jax.nn.logsumexp(logits.reshape(logits.shape[0], -1), axis=-1)
    target = jnp.take_along_axis(logits, labels[:, None, None], axis=1)[:, 0]
    return total - jax.nn.logsumexp(target, axis=-1)


def subcluster_adacos_scale(embeddings, centres, labels, *, scale,
                            variant: Literal["faithful", "code"] = "faithful") -> jax.Array:
    """Next sub-cluster AdaCos scale from one batch; see the module docstring for variants.

    Args:
      embeddings: (B, D); centres: (N, M, D); labels: (B,) integers or (B, N) soft labels.
      scale: the current scale.
      variant: ``"faithful"`` (AdaCos on sub-centres, default) or ``"code"`` (the author's
        public implementation). Report which one a result used.
    """
    check_scale(scale)
    if variant not in ("faithful", "code"):
        raise ValueError(f"variant must be 'faithful' or 'code', got {variant!r}.")
    cos, labels, is_soft = class_cosines(embeddings, centres, labels, loss="subcluster_adacos",
                                         allow_soft=True, subcentres=True)
    n = cos.shape[1]
    cos = jax.lax.stop_gradient(cos)
    weights = label_weights(labels, is_soft, n, cos.dtype)
    theta = angles(cos)  # (B, N, M)
    if variant == "faithful":
        _check_enough_classes(n, 2, "subcluster_adacos_scale")
        non_target = jnp.broadcast_to((1.0 - weights)[:, :, None], cos.shape)
        log_b = jax.nn.logsumexp(scale * cos, axis=(1, 2), b=non_target)
        target_angles = jnp.sum(weights * jnp.min(theta, axis=-1), axis=-1)
    else:
        log_b = jax.nn.logsumexp(scale * cos, axis=(1, 2))
        num_labels = jnp.sum(weights > 0, axis=-1).astype(cos.dtype)
        target_angles = num_labels * jnp.sum(weights * jnp.sum(theta, axis=-1), axis=-1)
    return _scale_update(log_b, target_angles)


def _scale_update(log_b: jax.Array, target_angles: jax.Array) -> jax.Array:
    log_b_avg = jax.nn.logsumexp(log_b) - jnp.log(log_b.shape[0])
    theta_med = jnp.median(target_angles)
    return jax.lax.stop_gradient(log_b_avg / jnp.cos(jnp.minimum(math.pi / 4, theta_med)))


def _check_enough_classes(num_classes: int, minimum: int, name: str) -> None:
    if num_classes < minimum:
        raise ValueError(
            f"{name} needs at least {minimum} classes (non-target terms), got {num_classes}."
        )

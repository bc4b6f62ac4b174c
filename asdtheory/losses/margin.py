"""Normalised-softmax losses with an angular or cosine margin on the target class.

Every loss here is a softmax cross-entropy over scaled cosine logits,

    L(x, y) = -log( e^{s f(theta_y)} / (e^{s f(theta_y)} + sum_{k != y} e^{s cos theta_k}) ),

with cos(theta_k) = <x/||x||, c_k/||c_k||> and a *target-logit function* f:

=====================  =====================================================================
loss                   f(theta)
=====================  =====================================================================
normalized_softmax     cos(theta)                               (NormFace, Wang et al. 2017)
arcface                cos(theta + m)                           (Deng et al., CVPR 2019)
cosface                cos(theta) - m                           (Wang et al., CVPR 2018)
sphereface             (-1)^k cos(m theta) - 2k, k = floor(m theta / pi)  (Liu et al. 2017)
subcenter_arcface      arcface with cos(theta_k) = max over the class's sub-centres
                                                                (Deng et al., ECCV 2020)
=====================  =====================================================================

All functions take embeddings (B, D), class centres as rows (N, D) (sub-centres (N, M, D)),
integer labels (B,) and keyword-only hyper-parameters, and return per-example losses (B,);
take the mean yourself. Embeddings and centres need not be normalised. Inputs in half
precision are computed in float32 and the loss is returned in float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from asdtheory._validation import as_float_array, check_labels, check_scalar
from asdtheory.geometry import angles
from asdtheory.losses._core import (
    check_scale,
    class_cosines,
    softmax_cross_entropy,
    with_target_logit,
)

__all__ = [
    "arcface",
    "arcface_target_logit",
    "cosface",
    "normalized_softmax",
    "softmax",
    "sphereface",
    "sphereface_target_logit",
    "subcenter_arcface",
]


def normalized_softmax(embeddings, centres, labels, *, scale) -> jax.Array:
    """Normalised softmax (NormFace) loss: cross-entropy of s cos(theta).

    L = -sum_k y_k log softmax(s cos theta)_k; accepts integer labels (B,) or soft (mixup)
    labels (B, N).

    Reference: F. Wang et al., "NormFace: L2 hypersphere embedding for face verification",
    ACM MM 2017.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1.0, 0.0]]); c = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(normalized_softmax(x, c, jnp.array([0]), scale=1.0)[0])  # log(1 + e^-1)
    0.31326...
    """
    check_scale(scale)
    cos, labels, is_soft = class_cosines(embeddings, centres, labels, loss="normalized_softmax",
                                         allow_soft=True)
    return softmax_cross_entropy(scale * cos, labels, is_soft)


def softmax(embeddings, weights, labels, *, bias) -> jax.Array:
    """Plain softmax cross-entropy of unnormalised logits x W_k + b_k: a linear classifier.

    L = -sum_k y_k log softmax(x W^T + b)_k with the weights W (N, D) as rows and a bias
    b (N,); neither embeddings nor weights are normalised, so the loss can fall by growing
    ||x|| instead of by moving angles -- the control that separates the angular margin
    losses' normalisation from learning the same labels. Integer (B,) or soft (B, N) labels.

    Reference: the softmax classifier of textbook classification (e.g. Bishop, Pattern
    Recognition and Machine Learning, 2006, sec. 4.3.4).

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[2.0, 0.0]]); w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(softmax(x, w, jnp.array([0]), bias=jnp.zeros(2))[0])  # log(1 + e^-2)
    0.12692...
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    weights = as_float_array(weights, "weights", ndim=2)
    bias = as_float_array(bias, "bias", ndim=1)
    if weights.shape[-1] != embeddings.shape[-1] or bias.shape != weights.shape[:1]:
        raise ValueError(f"weights (N, D) and bias (N,) must match embeddings (B, D); got "
                         f"{weights.shape}, {bias.shape} and {embeddings.shape}.")
    labels, is_soft = check_labels(labels, batch=embeddings.shape[0],
                                   num_classes=weights.shape[0], allow_soft=True, loss="softmax")
    return softmax_cross_entropy(embeddings @ weights.T + bias, labels, is_soft)


def arcface_target_logit(target_cosines: jax.Array, *, margin) -> jax.Array:
    """ArcFace's f: cos(theta + m) where theta + m <= pi, else cos(theta) - m sin(m).

    The fallback (Deng et al.'s reference code) keeps f decreasing in theta beyond pi - m,
    where cos(theta + m) would increase again; at theta = pi - m, f jumps down from -1 to
    -(cos m + m sin m). ``angles`` clips before arccos, so the gradient is finite at
    theta = 0 and theta = pi, and both branches are finite (no NaN through ``jnp.where``).
    """
    theta = angles(target_cosines)
    in_range = theta + margin <= math.pi
    return jnp.where(in_range, jnp.cos(theta + margin), target_cosines - margin * jnp.sin(margin))


def arcface(embeddings, centres, labels, *, scale, margin=0.5) -> jax.Array:
    """ArcFace (additive angular margin) loss, per example.

    L = -log( e^{s cos(theta_y + m)} / (e^{s cos(theta_y + m)} + sum_{k != y} e^{s cos theta_k}) )

    with the monotone fallback of :func:`arcface_target_logit` where theta_y + m > pi.

    Reference: J. Deng, J. Guo, N. Xue, S. Zafeiriou, "ArcFace: Additive angular margin loss
    for deep face recognition", CVPR 2019.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1.0, 0.0]]); c = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(arcface(x, c, jnp.array([0]), scale=1.0, margin=0.0)[0])  # = normalized_softmax
    0.31326...
    """
    check_scale(scale)
    check_scalar(margin, "margin", low=0.0, high=math.pi)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="arcface", allow_soft=False)
    return _margin_cross_entropy(cos, labels, scale,
                                 lambda t: arcface_target_logit(t, margin=margin))


def cosface(embeddings, centres, labels, *, scale, margin=0.35) -> jax.Array:
    """CosFace (additive cosine margin, large margin cosine loss), per example.

    L = -log( e^{s (cos theta_y - m)} / (e^{s (cos theta_y - m)} + sum_{k != y} e^{s cos theta_k}) )

    Reference: H. Wang et al., "CosFace: Large margin cosine loss for deep face recognition",
    CVPR 2018.
    """
    check_scale(scale)
    check_scalar(margin, "margin", low=0.0)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="cosface", allow_soft=False)
    return _margin_cross_entropy(cos, labels, scale, lambda t: t - margin)


def sphereface_target_logit(target_cosines: jax.Array, *, margin: int) -> jax.Array:
    """SphereFace's psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi/m, (k+1) pi/m].

    psi is continuous and decreasing on [0, pi], psi(0) = 1, psi(pi) = -(2m - 1).
    """
    theta = angles(target_cosines)
    k = jnp.clip(jnp.floor(margin * theta / math.pi), 0, margin - 1)
    sign = 1.0 - 2.0 * jnp.mod(k, 2)
    return sign * jnp.cos(margin * theta) - 2.0 * k


def sphereface(embeddings, centres, labels, *, scale, margin: int = 4) -> jax.Array:
    """SphereFace (multiplicative angular margin, A-Softmax) on normalised embeddings.

    L = -log( e^{s psi(theta_y)} / (e^{s psi(theta_y)} + sum_{k != y} e^{s cos theta_k}) ),
    psi(theta) = (-1)^k cos(m theta) - 2k, theta in [k pi/m, (k+1) pi/m], integer m >= 1.

    The original scales logits by ||x|| and anneals psi with cos theta; like the other losses
    here we use a fixed scale s on normalised embeddings and no annealing.

    Reference: W. Liu et al., "SphereFace: Deep hypersphere embedding for face recognition",
    CVPR 2017.
    """
    check_scale(scale)
    check_scalar(margin, "margin", low=1, integer=True)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="sphereface",
                                   allow_soft=False)
    m = int(margin)
    return _margin_cross_entropy(cos, labels, scale,
                                 lambda t: sphereface_target_logit(t, margin=m))


def subcenter_arcface(embeddings, centres, labels, *, scale, margin=0.5) -> jax.Array:
    """Sub-center ArcFace: ArcFace on the nearest sub-centre of every class.

    cos(theta_k) = max_m <x~, c_{k,m}~> for centres (N, M, D); then as :func:`arcface`.

    Reference: J. Deng et al., "Sub-center ArcFace: Boosting face recognition by large-scale
    noisy web faces", ECCV 2020.
    """
    check_scale(scale)
    check_scalar(margin, "margin", low=0.0, high=math.pi)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="subcenter_arcface",
                                   allow_soft=False, subcentres=True)
    return _margin_cross_entropy(jnp.max(cos, axis=-1), labels, scale,
                                 lambda t: arcface_target_logit(t, margin=margin))


def _margin_cross_entropy(cos, labels, scale, target_fn) -> jax.Array:
    return softmax_cross_entropy(scale * with_target_logit(cos, labels, target_fn), labels, False)

"""Shared pieces of the softmax-based angular losses: input checks, cosines, cross-entropy."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asdtheory._validation import as_float_array, check_labels, check_scalar
from asdtheory.geometry import cosine_matrix


def class_cosines(embeddings, centres, labels, *, loss: str, allow_soft: bool,
                  subcentres: bool = False):
    """Validates the inputs of a loss and returns ``(cosines, labels, is_soft)``.

    ``centres`` has shape (N, D), or (N, M, D) when ``subcentres`` is true; cosines have shape
    (B, N) or (B, N, M).
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    centres = as_float_array(centres, "centres", ndim=3 if subcentres else 2)
    if centres.shape[-1] != embeddings.shape[-1]:
        raise ValueError(
            f"centres have dimension {centres.shape[-1]} but embeddings have dimension "
            f"{embeddings.shape[-1]}; both must be (..., D) with the same D."
        )
    labels, is_soft = check_labels(labels, batch=embeddings.shape[0],
                                   num_classes=centres.shape[0], allow_soft=allow_soft, loss=loss)
    return cosine_matrix(embeddings, centres), labels, is_soft


def label_weights(labels, is_soft: bool, num_classes: int, dtype) -> jax.Array:
    """(B, N) label distribution: the soft labels, or one-hot of the integer labels."""
    if is_soft:
        return labels.astype(dtype)
    return jax.nn.one_hot(labels, num_classes, dtype=dtype)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, is_soft: bool) -> jax.Array:
    """Per-example -sum_k y_k log softmax(logits)_k.

    ``labels`` are integer classes (B,) -- then this is logsumexp(logits) - logits_y, a gather
    instead of a (B, N) one-hot product -- or a (B, N) label distribution when ``is_soft``.
    """
    if not is_soft:
        target = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
        return jax.nn.logsumexp(logits, axis=-1) - target
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    # 0 * log p must be 0 even when log p underflows to -inf for a non-target class.
    return -jnp.sum(jnp.where(labels > 0, labels * log_probs, 0.0), axis=-1)


def with_target_logit(cosines: jax.Array, labels: jax.Array, target_fn) -> jax.Array:
    """Replaces cos(theta_y) by ``target_fn(cos(theta_y))`` in each row; other entries stay.

    ``target_fn`` is evaluated on the B target cosines only, not on the whole (B, N) matrix.
    """
    target_cos = jnp.take_along_axis(cosines, labels[:, None], axis=-1)[:, 0]
    one_hot = jax.nn.one_hot(labels, cosines.shape[-1], dtype=cosines.dtype)
    return cosines + one_hot * (target_fn(target_cos) - target_cos)[:, None]


def check_scale(scale) -> None:
    check_scalar(scale, "scale", low=0.0)

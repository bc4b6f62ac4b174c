"""AdaProj: angular margin loss with class-specific subspaces instead of class centres.

Each class n owns M fixed vectors spanning a subspace S_n of R^D. The logit of class n is the
cosine between the normalised embedding x~ and its orthogonal projection P_n x~ onto S_n,

    cos(x~, P_n x~) = <x~, P_n x~> / ||P_n x~|| = ||P_n x~|| = ||Q_n^T x~||,

with Q_n an orthonormal basis of S_n (from a QR decomposition of the given vectors, so any
spanning set works). The loss is the softmax cross-entropy of s cos over the N classes, with
the AdaCos scale (:func:`adaproj_scale`). For M = 1 it is AdaCos with centres up to the sign:
cos(x~, P x~) = |<x~, c>|.

Reference: K. Wilkinghoff, "AdaProj: Adaptively scaled angular margin subspace projections for
anomalous sound detection with auxiliary classification tasks", DCASE Workshop 2024.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asdtheory._validation import as_float_array, check_labels
from asdtheory.geometry import l2_normalize, random_centres, safe_norm
from asdtheory.losses._core import check_scale, label_weights, softmax_cross_entropy
from asdtheory.losses.adacos import adacos_scale_from_cosines

__all__ = ["adaproj", "adaproj_scale", "random_subspaces", "subspace_cosines"]


def random_subspaces(key: jax.Array, num_classes: int, subspace_dim: int, dim: int,
                     dtype=jnp.float32) -> jax.Array:
    """(N, M, D) random unit vectors: M spanning vectors of a random subspace per class."""
    return random_centres(key, num_classes, dim, num_subcentres=subspace_dim, dtype=dtype)


def subspace_cosines(embeddings, subspaces) -> jax.Array:
    """(B, N) cosines between each x~ and its projection onto each class subspace.

    Args:
      embeddings: (B, D).
      subspaces: (N, M, D), M spanning vectors per class (M <= D; orthonormalised here).
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    subspaces = as_float_array(subspaces, "subspaces", ndim=3)
    _, m, d = subspaces.shape
    if d != embeddings.shape[-1]:
        raise ValueError(
            f"subspaces have dimension {d} but embeddings have dimension {embeddings.shape[-1]}."
        )
    if m > d:
        raise ValueError(f"a subspace of R^{d} has at most {d} basis vectors, got M = {m}.")
    basis, _ = jnp.linalg.qr(jnp.swapaxes(subspaces.astype(jnp.float32), 1, 2))  # (N, D, M)
    coefficients = jnp.einsum("bd,ndm->bnm", l2_normalize(embeddings), basis)
    return jnp.clip(safe_norm(coefficients, axis=-1), 0.0, 1.0)


def adaproj(embeddings, subspaces, labels, *, scale) -> jax.Array:
    """AdaProj loss per example: -sum_n y_n log softmax(s ||Q_n^T x~||)_n.

    Args:
      embeddings: (B, D); subspaces: (N, M, D); labels: (B,) integers or (B, N) soft labels.
      scale: the softmax scale s (see :func:`adaproj_scale`).
    """
    check_scale(scale)
    cos, labels, is_soft = _cosines_and_labels(embeddings, subspaces, labels)
    return softmax_cross_entropy(scale * cos, labels, is_soft)


def adaproj_scale(embeddings, subspaces, labels, *, scale) -> jax.Array:
    """Next AdaCos scale computed on the subspace cosines (see ``asdtheory.losses.adacos``)."""
    check_scale(scale)
    cos, labels, is_soft = _cosines_and_labels(embeddings, subspaces, labels)
    if cos.shape[-1] < 2:
        raise ValueError("adaproj_scale needs at least 2 classes (non-target terms).")
    weights = label_weights(labels, is_soft, cos.shape[1], cos.dtype)
    return adacos_scale_from_cosines(cos, weights, scale=scale)


def _cosines_and_labels(embeddings, subspaces, labels):
    cos = subspace_cosines(embeddings, subspaces)
    labels, is_soft = check_labels(labels, batch=cos.shape[0], num_classes=cos.shape[1],
                                   allow_soft=True, loss="adaproj")
    return cos, labels, is_soft



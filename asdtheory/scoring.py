"""Anomaly-score back-ends: higher = more anomalous. NumPy or JAX arrays in, NumPy out.

* :func:`nearest_centre_score` -- cosine distance to the nearest class (sub-)centre, the
  score of an angular margin model used as it is,
* :func:`kmeans_centres` -- the back-end of Wilkinghoff's public DCASE systems: k-means
  centres of the normalised source-domain training embeddings plus every target-domain
  training embedding as a centre of its own; score test clips with
  :func:`nearest_centre_score` against them,
* :func:`knn_score` -- mean cosine distance to the k nearest training embeddings,
* :func:`reconstruction_error` -- per-example mean squared error (autoencoder baseline).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.cluster import KMeans

from asdtheory._validation import as_float_array, check_scalar
from asdtheory.geometry import cosine_matrix, l2_normalize

__all__ = ["kmeans_centres", "knn_score", "nearest_centre_score", "reconstruction_error"]


def _same_dim(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{name_a} have dimension {a.shape[-1]} but {name_b} have dimension "
                         f"{b.shape[-1]}; both must be (..., D) with the same D.")


def _count(value, name: str, *, low: int = 1) -> int:
    check_scalar(value, name, low=low, integer=True)
    return int(value)


def nearest_centre_score(embeddings, centres) -> np.ndarray:
    """Cosine distance to the nearest centre: 1 - max_k cos(x, c_k), in [0, 2].

    Args:
      embeddings: (B, D) test embeddings.
      centres: (K, D) centres, or (N, M, D) class sub-centres (all N M of them count).

    Returns:
      (B,) anomaly scores.
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    centres = as_float_array(centres, "centres", ndim=(2, 3))
    _same_dim(centres, embeddings, "centres", "embeddings")
    cos = cosine_matrix(embeddings, centres.reshape(-1, centres.shape[-1]))
    return np.asarray(1.0 - jnp.max(cos, axis=-1))


def kmeans_centres(train_embeddings, *, n_clusters: int, seed: int,
                   target_embeddings=None) -> np.ndarray:
    """Centres for :func:`nearest_centre_score`: k-means on the source-domain training data,
    target-domain training samples appended as centres of their own.

    The embeddings are L2-normalised, k-means (scikit-learn, k-means++ initialisation,
    ``n_init=10``, ``random_state=seed``) clusters the source ones into ``n_clusters``
    centres, and those centres are normalised again. With few target-domain training clips
    (DCASE 2022-2024 give ~10 per section), each of them becomes an extra centre, so target
    normals are scored by their distance to the nearest target clip -- the back-end of
    K. Wilkinghoff's public DCASE 2022/2023 systems ("Design choices for learning
    embeddings from auxiliary tasks for domain generalization in anomalous sound
    detection", ICASSP 2023). Fit one set of centres per section.

    Args:
      train_embeddings: (n, D) source-domain training embeddings, n >= n_clusters.
      n_clusters: number of k-means centres, 1 <= n_clusters <= n.
      seed: random state of k-means (an int; scikit-learn has no JAX keys).
      target_embeddings: optional (T, D) target-domain training embeddings.

    Returns:
      (n_clusters + T, D) unit-norm centres (float32).
    """
    source = as_float_array(train_embeddings, "train_embeddings", ndim=2)
    n_clusters = _count(n_clusters, "n_clusters")
    _count(seed, "seed", low=0)
    if n_clusters > source.shape[0]:
        raise ValueError(
            f"n_clusters={n_clusters} exceeds the {source.shape[0]} source training embeddings;"
            f" k-means needs at least one sample per centre, use n_clusters <= "
            f"{source.shape[0]}."
        )
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=int(seed))
    kmeans.fit(np.asarray(l2_normalize(source), dtype=np.float64))
    centres = l2_normalize(jnp.asarray(kmeans.cluster_centers_, dtype=source.dtype))
    if target_embeddings is not None:
        target = as_float_array(target_embeddings, "target_embeddings", ndim=2)
        _same_dim(target, source, "target_embeddings", "train_embeddings")
        centres = jnp.concatenate([centres, l2_normalize(target).astype(centres.dtype)])
    return np.asarray(centres)


def knn_score(train_embeddings, test_embeddings, *, k: int = 1) -> np.ndarray:
    """Mean cosine distance 1 - cos(x, t) over the k nearest (most similar) training
    embeddings t of each test embedding x.

    Args:
      train_embeddings: (n, D) normal training embeddings, n >= k.
      test_embeddings: (B, D).
      k: number of neighbours.

    Returns:
      (B,) anomaly scores in [0, 2].
    """
    train = as_float_array(train_embeddings, "train_embeddings", ndim=2)
    test = as_float_array(test_embeddings, "test_embeddings", ndim=2)
    _same_dim(test, train, "test_embeddings", "train_embeddings")
    k = _count(k, "k")
    if k > train.shape[0]:
        raise ValueError(f"k={k} exceeds the {train.shape[0]} training embeddings; use "
                         f"k <= {train.shape[0]}.")
    nearest_cos, _ = jax.lax.top_k(cosine_matrix(test, train), k)
    return np.asarray(jnp.mean(1.0 - nearest_cos, axis=-1))


def reconstruction_error(inputs, reconstructions) -> np.ndarray:
    """Per-example mean squared error over all non-batch axes, mean((x - x^)^2).

    Args:
      inputs: (B, ...) e.g. (B, frames, mels) log-mel patches.
      reconstructions: same shape as ``inputs``.

    Returns:
      (B,) anomaly scores.
    """
    inputs = as_float_array(inputs, "inputs")
    reconstructions = as_float_array(reconstructions, "reconstructions")
    if inputs.ndim == 0 or inputs.shape != reconstructions.shape:
        raise ValueError(f"inputs and reconstructions must have the same shape (B, ...), got "
                         f"{tuple(inputs.shape)} and {tuple(reconstructions.shape)}.")
    axes = tuple(range(1, inputs.ndim))
    return np.asarray(jnp.mean((inputs - reconstructions) ** 2, axis=axes))

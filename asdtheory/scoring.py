"""Anomaly-score back-ends: higher = more anomalous. NumPy or JAX arrays in, JAX arrays out;
each is jit-able (shape checks are static; value checks run on concrete arrays only) and is
the one implementation that ``detect.Detector``, the notebooks and the tests use.

* :func:`nearest_centre_score` -- cosine distance to the nearest class (sub-)centre, the
  score of an angular margin model used as it is,
* :func:`nearest_subspace_score` -- the same for AdaProj's class subspaces,
* :func:`kmeans_centres` -- the back-end of Wilkinghoff's public DCASE systems: k-means
  centres of the normalised source-domain training embeddings plus every target-domain
  training embedding as a centre of its own; score test clips with
  :func:`nearest_centre_score` against them,
* :func:`knn_score` -- mean cosine distance to the k nearest training embeddings,
* :func:`reconstruction_error` -- per-example mean squared error (autoencoder baseline),
* :func:`level_score` -- no model at all: how far a clip's level lies from the normal
  training clips' level. A reference row for every comparison of detectors: it shows what
  the trivial cue "the clip is louder or quieter than usual" achieves on the data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.cluster import KMeans

from asdtheory._validation import as_float_array, check_scalar
from asdtheory.geometry import cosine_matrix, l2_normalize
from asdtheory.losses import subspace_cosines

__all__ = ["kmeans_centres", "knn_score", "level_score", "nearest_centre_score",
           "nearest_subspace_score", "reconstruction_error"]


def _same_dim(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{name_a} have dimension {a.shape[-1]} but {name_b} have dimension "
                         f"{b.shape[-1]}; both must be (..., D) with the same D.")


def _count(value, name: str, *, low: int = 1) -> int:
    check_scalar(value, name, low=low, integer=True)
    return int(value)


def nearest_centre_score(embeddings, centres) -> jax.Array:
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
    return 1.0 - jnp.max(cos, axis=-1)


def nearest_subspace_score(embeddings, subspaces) -> jax.Array:
    """AdaProj's score: 1 - max_k cos(x, P_k x), the cosine distance to the projection onto
    the nearest class subspace (``losses.subspace_cosines``), in [0, 1].

    Args:
      embeddings: (B, D) test embeddings.
      subspaces: (N, M, D) orthonormal bases of the N class subspaces.

    Returns:
      (B,) anomaly scores.
    """
    embeddings = as_float_array(embeddings, "embeddings", ndim=2)
    subspaces = as_float_array(subspaces, "subspaces", ndim=3)
    _same_dim(subspaces, embeddings, "subspaces", "embeddings")
    return 1.0 - jnp.max(subspace_cosines(embeddings, subspaces), axis=-1)


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


def knn_score(train_embeddings, test_embeddings, *, k: int = 1,
              leave_one_out: bool = False) -> jax.Array:
    """Mean cosine distance 1 - cos(x, t) over the k nearest (most similar) training
    embeddings t of each test embedding x.

    Args:
      train_embeddings: (n, D) normal training embeddings, n >= k.
      test_embeddings: (B, D).
      k: number of neighbours.
      leave_one_out: the test embeddings are the training embeddings themselves (B = n):
        each leaves itself out of its neighbours (in-sample, every clip would be its own
        nearest neighbour at distance 0); needs n > k.

    Returns:
      (B,) anomaly scores in [0, 2].
    """
    train = as_float_array(train_embeddings, "train_embeddings", ndim=2)
    test = as_float_array(test_embeddings, "test_embeddings", ndim=2)
    _same_dim(test, train, "test_embeddings", "train_embeddings")
    k = _count(k, "k")
    available = train.shape[0] - int(leave_one_out)
    if k > available:
        raise ValueError(f"k={k} exceeds the {available} training embeddings available; use "
                         f"k <= {available}.")
    cos = cosine_matrix(test, train)
    if leave_one_out:
        if test.shape != train.shape:
            raise ValueError("leave_one_out scores the training embeddings themselves: pass "
                             f"the same (n, D) array twice, got {test.shape} and {train.shape}.")
        cos = jnp.where(jnp.eye(train.shape[0], dtype=bool), -jnp.inf, cos)
    nearest_cos, _ = jax.lax.top_k(cos, k)
    return jnp.mean(1.0 - nearest_cos, axis=-1)


def reconstruction_error(inputs, reconstructions) -> jax.Array:
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
    return jnp.mean((inputs - reconstructions) ** 2, axis=axes)


def _levels_db(waveforms, name: str) -> np.ndarray:
    x = np.asarray(as_float_array(waveforms, name), np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be (clips, samples) waveforms, got shape {x.shape}.")
    power = np.mean(x**2, axis=1)
    if np.any(power == 0):
        raise ValueError(f"{name} holds {int(np.sum(power == 0))} silent clip(s); a level in "
                         "dB is undefined for them.")
    return 10.0 * np.log10(power)


def level_score(train_waveforms, test_waveforms, *, train_groups=None,
                test_groups=None) -> np.ndarray:
    """|L(x) - mean L(train)| / std L(train), L = 10 log10(mean x^2): the clip level's distance
    from the normal training level of its group, in standard deviations.

    The trivial detector every comparison should show beside the trained ones: when it scores
    well, the data let "louder or quieter than usual" pass for anomaly detection.

    Args:
      train_waveforms: (n, T) normal training clips.
      test_waveforms: (m, T') clips to score.
      train_groups, test_groups: optional (n,), (m,) group ids (e.g. machine or section);
        each test clip is compared with its own group's training clips.

    Returns:
      (m,) float64 scores.

    >>> level_score(np.ones((2, 4)) * [[1.0], [1.2]], np.ones((1, 4)) * 2.0).round(2)
    array([4.67])
    """
    train, test = _levels_db(train_waveforms, "train_waveforms"), _levels_db(test_waveforms,
                                                                            "test_waveforms")
    if (train_groups is None) != (test_groups is None):
        raise ValueError("pass both train_groups and test_groups, or neither.")
    tr_g = np.zeros(train.size, int) if train_groups is None else np.asarray(train_groups)
    te_g = np.zeros(test.size, int) if test_groups is None else np.asarray(test_groups)
    if tr_g.shape != train.shape or te_g.shape != test.shape:
        raise ValueError(f"train_groups/test_groups must have shapes {train.shape} and "
                         f"{test.shape} (one id per clip), got {tr_g.shape} and {te_g.shape}.")
    scores = np.empty(test.size)
    for g in np.unique(te_g):
        ref = train[tr_g == g]
        if ref.size < 2:
            raise ValueError(f"group {g} has {ref.size} training clip(s); the level score "
                             "needs at least 2 to estimate the normal level's spread.")
        spread = max(float(np.std(ref, ddof=1)), 1e-3)  # 1e-3 dB: identical levels
        scores[te_g == g] = np.abs(test[te_g == g] - ref.mean()) / spread
    return scores

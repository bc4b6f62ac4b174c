"""Diagnostics of an embedding space: compactness, angles, rank, collapse, neural collapse.

* :func:`mean_compactness` -- mean ||x~ - c_y||^2, the quantity angular margin losses also
  minimise (Wilkinghoff & Kurth, TASLP 2024),
* :func:`angle_statistics` -- angles to the own and to the nearest other class centre,
  within classes and between class means (degrees),
* :func:`effective_rank`, :func:`embedding_spread`, :func:`num_distinct` -- indicators of
  trivial (collapsed) solutions,
* :func:`neural_collapse` -- NC1-NC4 of Papyan, Han & Donoho, PNAS 2020.

:func:`mean_compactness`, :func:`effective_rank` and :func:`embedding_spread` are pure jnp
and ``jax.jit``-able (value checks are skipped on tracers, see :mod:`asdtheory.losses`); the
functions that return dicts or counts need concrete arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asdtheory._validation import as_float_array, check_labels, check_scalar, compute_dtype
from asdtheory.geometry import l2_normalize
from asdtheory.losses import compactness
from asdtheory.losses._core import class_cosines

__all__ = [
    "angle_statistics",
    "effective_rank",
    "embedding_spread",
    "mean_compactness",
    "neural_collapse",
    "num_distinct",
]


def mean_compactness(embeddings, centres, labels) -> jax.Array:
    """Mean over the batch of :func:`asdtheory.losses.compactness`, 2 - 2 cos(theta_y).

    Centres (N, D), or (N, M, D) sub-centres (the nearest one of the class counts).
    """
    return jnp.mean(compactness(embeddings, centres, labels))


def _degrees(cos: jax.Array) -> jax.Array:
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


def _pairwise_mean_angle(unit: jax.Array, pair_mask: np.ndarray) -> float:
    """Mean angle (degrees) over the pairs (i, j) of rows of ``unit`` where the mask is set."""
    return float(jnp.mean(_degrees(unit @ unit.T)[pair_mask]))


def angle_statistics(embeddings, centres, labels) -> dict[str, float]:
    """Angles (degrees) between embeddings and class centres and among embeddings.

    Keys:
      ``mean_angle_to_own_centre``, ``median_angle_to_own_centre`` -- theta_y (nearest
        sub-centre of the class for (N, M, D) centres),
      ``mean_angle_to_nearest_other_centre`` -- min over the other classes' (sub-)centres,
      ``mean_intra_class_angle`` -- over all pairs of embeddings with the same label,
      ``mean_angle_between_class_means`` -- over all pairs of classes present in ``labels``,
        between the means of their normalised embeddings.

    The angle to the own centre is 2 atan2(||x~ - c||, ||x~ + c||), exact also near 0
    (where arccos of a float32 cosine cannot resolve angles below ~0.03 degrees); the other
    angles are arccos of cosines, resolved to ~0.03 degrees in float32.

    Args:
      embeddings: (B, D).
      centres: (N, D) class centres or (N, M, D) sub-centres, N >= 2.
      labels: (B,) integer labels; at least one class with two embeddings and two distinct
        classes.
    """
    centres = jnp.asarray(centres)
    cos, labels, _ = class_cosines(embeddings, centres, labels, loss="angle_statistics",
                                   allow_soft=False, subcentres=centres.ndim == 3)
    num_classes = cos.shape[1]
    if num_classes < 2:
        raise ValueError("centres must hold at least 2 classes: the nearest other centre is "
                         "undefined for one.")
    rows = jnp.arange(cos.shape[0])
    unit_centres = l2_normalize(centres.astype(cos.dtype))
    if cos.ndim == 3:  # (B, N, M): nearest sub-centre of each class
        own_sub = jnp.argmax(cos[rows, labels], axis=-1)
        own_centre = unit_centres[labels, own_sub]
        cos = jnp.max(cos, axis=-1)
    else:
        own_centre = unit_centres[labels]
    x = l2_normalize(jnp.asarray(embeddings).astype(cos.dtype))
    own = jnp.degrees(2.0 * jnp.arctan2(jnp.linalg.norm(x - own_centre, axis=-1),
                                        jnp.linalg.norm(x + own_centre, axis=-1)))
    others = jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -jnp.inf, cos)

    y = np.asarray(labels)
    same = (y[:, None] == y[None, :]) & np.triu(np.ones((y.size, y.size), bool), k=1)
    present = np.unique(y)
    if not same.any() or present.size < 2:
        raise ValueError(
            "labels must contain at least one class with two embeddings and at least two "
            f"classes (got {y.size} labels in {present.size} class(es)); the intra- and "
            "inter-class angles are undefined otherwise."
        )
    means = l2_normalize(jnp.stack([jnp.mean(x[y == k], axis=0) for k in present]))
    return {
        "mean_angle_to_own_centre": float(jnp.mean(own)),
        "median_angle_to_own_centre": float(jnp.median(own)),
        "mean_angle_to_nearest_other_centre": float(jnp.mean(_degrees(jnp.max(others, -1)))),
        "mean_intra_class_angle": _pairwise_mean_angle(x, same),
        "mean_angle_between_class_means": _pairwise_mean_angle(
            means, np.triu(np.ones((present.size, present.size), bool), k=1)),
    }


def effective_rank(embeddings, *, center: bool = True) -> jax.Array:
    """Effective rank exp(H(p)), p_k = s_k / sum_j s_j the normalised singular values of the
    (B, D) embedding matrix (centred over the batch when ``center``), H the Shannon entropy.

    Between 1 and min(B, D) for a non-zero matrix; 0 when every singular value is below
    max(B, D) * eps * ||X||_F (||X||_F of the uncentred matrix) -- the centred matrix of
    embeddings that agree up to rounding, i.e. a collapsed representation, counts as 0
    instead of as the rank of its rounding noise.

    Reference: O. Roy and M. Vetterli, "The effective rank: a measure of effective
    dimensionality", EUSIPCO 2007.
    """
    x = as_float_array(embeddings, "embeddings", ndim=2)
    x = x.astype(compute_dtype(x))
    tol = max(x.shape) * jnp.finfo(x.dtype).eps * jnp.linalg.norm(x)
    if center:
        x = x - jnp.mean(x, axis=0)
    s = jnp.linalg.svd(x, compute_uv=False)
    s = jnp.where(s > tol, s, 0.0)
    total = jnp.sum(s)
    p = s / jnp.where(total > 0, total, 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.where(total > 0, jnp.exp(entropy), 0.0)


def embedding_spread(embeddings) -> jax.Array:
    """Root mean squared distance to the mean embedding, sqrt(mean_i ||x_i - mean_j x_j||^2).

    0 for a trivial solution that maps every input to the same point.
    """
    x = as_float_array(embeddings, "embeddings", ndim=2)
    x = x.astype(compute_dtype(x))
    return jnp.sqrt(jnp.mean(jnp.sum((x - jnp.mean(x, axis=0)) ** 2, axis=-1)))


def num_distinct(values, *, rtol: float = 1e-6) -> int:
    """Number of distinct values up to a relative tolerance (a collapsed model gives 1).

    Sorted values are split wherever two neighbours differ by more than
    rtol * max|values|; values of any shape are flattened.
    """
    as_float_array(values, "values")
    check_scalar(rtol, "rtol", low=0.0)
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    return 1 + int(np.count_nonzero(np.diff(v) > rtol * np.max(np.abs(v))))


def neural_collapse(embeddings, labels, classifier) -> dict[str, float]:
    """Neural-collapse statistics NC1-NC4 (Papyan, Han & Donoho, "Prevalence of neural
    collapse during the terminal phase of deep learning training", PNAS 117(40), 2020).

    With features h_i (the rows of ``embeddings``), class means mu_c, global mean mu_G,
    M = [mu_c - mu_G]_c (C, D), Sigma_W = mean_i (h_i - mu_y_i)(h_i - mu_y_i)^T and
    Sigma_B = mean_c (mu_c - mu_G)(mu_c - mu_G)^T:

    * ``nc1`` = tr(Sigma_W Sigma_B^+) / C -- within-class variability (-> 0),
    * ``nc2_equinorm`` = std_c ||mu_c - mu_G|| / mean_c ||mu_c - mu_G|| (-> 0),
    * ``nc2_equiangularity`` = mean over c != c' of |cos(mu_c - mu_G, mu_c' - mu_G) + 1/(C-1)|
      (-> 0 for a simplex equiangular tight frame),
    * ``nc3`` = || W / ||W||_F - M / ||M||_F ||_F^2 -- self-duality of classifier and means,
    * ``nc4`` = fraction of samples whose nearest class mean (Euclidean) is not the argmax of
      the classifier's cosine logits cos(h, w_c) (-> 0).

    Pass the features the classifier sees (e.g. the L2-normalised embeddings of an angular
    margin model); statistics are computed in float64.

    Args:
      embeddings: (B, D).
      labels: (B,) integer labels; every class of ``classifier`` must occur.
      classifier: (C, D) class weights / centres, C >= 2.
    """
    h = as_float_array(embeddings, "embeddings", ndim=2)
    w = as_float_array(classifier, "classifier", ndim=2)
    if w.shape[1] != h.shape[1]:
        raise ValueError(f"classifier has dimension {w.shape[1]} but embeddings have dimension "
                         f"{h.shape[1]}; both must be (..., D) with the same D.")
    num_classes = w.shape[0]
    if num_classes < 2:
        raise ValueError("classifier must have at least 2 classes (rows) for NC1-NC4.")
    labels, _ = check_labels(labels, batch=h.shape[0], num_classes=num_classes,
                             allow_soft=False, loss="neural_collapse")
    y = np.asarray(labels)
    counts = np.bincount(y, minlength=num_classes)
    if np.any(counts == 0):
        raise ValueError(f"labels contain no embeddings of class(es) "
                         f"{np.flatnonzero(counts == 0).tolist()}; every class of classifier "
                         "needs at least one for its class mean.")
    h = np.asarray(h, np.float64)
    w = np.asarray(w, np.float64)
    w_norms = np.linalg.norm(w, axis=1)
    if np.any(w_norms == 0):
        raise ValueError(f"classifier rows {np.flatnonzero(w_norms == 0).tolist()} are zero; "
                         "cosine logits need non-zero class weights.")
    means = np.stack([h[y == c].mean(axis=0) for c in range(num_classes)])
    m = means - h.mean(axis=0)
    norms = np.linalg.norm(m, axis=1)
    scale = np.sqrt(np.mean(np.sum(h**2, axis=1)))
    if np.min(norms) <= 1e-12 * scale or scale == 0:
        raise ValueError(
            "embeddings: a class mean coincides with the global mean (zero between-class "
            "scatter), so NC1-NC3 are undefined; the representation has collapsed (see "
            "embedding_spread)."
        )
    within = h - means[y]
    sigma_w = within.T @ within / h.shape[0]
    sigma_b = m.T @ m / num_classes
    # Sigma_B has rank <= C - 1: cut its null space at the array-API default D * eps.
    nc1 = np.trace(sigma_w @ np.linalg.pinv(sigma_b, hermitian=True, rtol=None)) / num_classes

    unit_m = m / norms[:, None]
    cos = unit_m @ unit_m.T
    off_diagonal = ~np.eye(num_classes, dtype=bool)
    equiangularity = np.mean(np.abs(cos[off_diagonal] + 1.0 / (num_classes - 1)))
    nc3 = np.sum((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2)

    nearest_mean = np.argmin(((h[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    # argmax_c cos(h, w_c) = argmax_c <h, w_c> / ||w_c||: the norm of h does not matter.
    classified = np.argmax(h @ (w / w_norms[:, None]).T, axis=1)
    return {
        "nc1": float(nc1),
        "nc2_equinorm": float(np.std(norms) / np.mean(norms)),
        "nc2_equiangularity": float(equiangularity),
        "nc3": float(nc3),
        "nc4": float(np.mean(nearest_mean != classified)),
    }

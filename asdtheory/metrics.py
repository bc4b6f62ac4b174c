"""Diagnostics of an embedding space: compactness, angles, rank, collapse, neural collapse.

* :func:`mean_compactness` -- mean ||x~ - c_y||^2, the quantity angular margin losses also
  minimise (Wilkinghoff & Kurth, TASLP 2024),
* :func:`angle_statistics` -- angles to the own and to the nearest other class centre,
  within classes and between class means (degrees),
* :func:`effective_rank`, :func:`embedding_spread`, :func:`num_distinct` -- indicators of
  trivial (collapsed) solutions,
* :func:`neural_collapse` -- NC1-NC4 of Papyan, Han & Donoho, PNAS 2020,
* :func:`knn_purity`, :func:`noise_invariance` -- class structure of an embedding space,
  per clip; :func:`own_class_share`, whether test clips resemble their own class's training
  clips (e.g. that train and test come from the same machines); and
  :func:`paired_mean_contrast`, a paired bootstrap interval of per-clip measures over clips
  and seeds.

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
    "knn_purity",
    "mean_compactness",
    "neural_collapse",
    "noise_invariance",
    "num_distinct",
    "own_class_share",
    "paired_mean_contrast",
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


# ------------------------------------------------------------- class structure, per clip


def _distances(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        u = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-300)
        return 1.0 - u @ u.T
    if metric == "euclidean":
        sq = np.sum(x**2, axis=1)
        return np.sqrt(np.maximum(sq[:, None] + sq[None] - 2.0 * x @ x.T, 0.0))
    raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}.")


def knn_purity(embeddings, labels, *, k: int = 5, metric: str = "euclidean") -> np.ndarray:
    """Per embedding, the fraction of its k nearest other embeddings with the same label.

    purity_i = |{j in N_k(i) : y_j = y_i}| / k, N_k(i) the k nearest j != i under ``metric``
    ("euclidean" or "cosine" = 1 - cos); ties broken by index. Chance for C balanced classes
    of n each is (n - 1) / (C n - 1).

    Returns:
      (B,) float64 in [0, 1].
    """
    x = np.asarray(as_float_array(embeddings, "embeddings", ndim=2), np.float64)
    y = np.asarray(labels)
    check_scalar(k, "k", low=1, integer=True)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}.")
    if k >= x.shape[0]:
        raise ValueError(f"k={k} needs at least k + 1 embeddings, got {x.shape[0]}.")
    d = _distances(x, metric)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.mean(y[neighbours] == y[:, None], axis=1)


def noise_invariance(embeddings, labels, *, metric: str = "euclidean") -> np.ndarray:
    """Spread of one clip's embeddings under different noise, relative to the class spread.

    For embeddings z_cs of clip c under noise segment s (s = 1..S, the same clean clip each
    time), clip mean zbar_c, class means mu_k of the zbar_c and mu their mean:

        r_c = mean_s ||z_cs - zbar_c||^2 / (mean_k ||mu_k - mu||^2),

    within-clip (noise) variance over between-class variance: 0 for embeddings that ignore
    the noise, large for embeddings the noise moves as far as a change of class would.
    Invariant to a global scale of the embeddings, so systems with different norms compare.
    ``metric="cosine"`` normalises every embedding first (the geometry of an angular model).

    Args:
      embeddings: (C, S, D), S >= 2.
      labels: (C,) class of each clip; at least two classes.

    Returns:
      (C,) float64 ratios r_c.
    """
    z = np.asarray(as_float_array(embeddings, "embeddings", ndim=3), np.float64)
    y = np.asarray(labels)
    if y.shape != (z.shape[0],) or z.shape[1] < 2:
        raise ValueError(f"embeddings must be (clips, segments >= 2, D) and labels (clips,), "
                         f"got {z.shape} and {y.shape}.")
    if metric == "cosine":
        z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-300)
    elif metric != "euclidean":
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}.")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError("labels must hold at least two classes (a between-class spread).")
    zbar = z.mean(axis=1)
    within = np.mean(np.sum((z - zbar[:, None]) ** 2, axis=-1), axis=1)
    mu = np.stack([zbar[y == k].mean(axis=0) for k in classes])
    between = np.mean(np.sum((mu - mu.mean(axis=0)) ** 2, axis=-1))
    if not between > 0:
        raise ValueError("the class means coincide (zero between-class spread).")
    return within / between


def own_class_share(train, train_labels, test, test_labels) -> float:
    """Share of test items whose nearest training class mean (Euclidean) is their own class.

    share = mean_j [argmin_k ||v_j - mu_k|| = y_j], mu_k the mean of class k's training
    items; chance is about 1 / (number of classes). With items = time-averaged spectra
    ((n, T, F) inputs are averaged over every axis between the first and the last) it checks
    that test clips come from the machines the training clips come from: clips of other
    machines with the same labels land near chance.

    Args:
      train: (n, ..., F) training items; train_labels: (n,) class ids.
      test: (m, ..., F) test items; test_labels: (m,) class ids among the training classes.
    """
    train = np.asarray(as_float_array(train, "train"), np.float64)
    test = np.asarray(as_float_array(test, "test"), np.float64)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train.ndim < 2 or test.ndim < 2 or train.shape[-1] != test.shape[-1]:
        raise ValueError(f"train and test must be (n, ..., F) arrays with the same F, got "
                         f"shapes {train.shape} and {test.shape}.")
    if train_labels.shape != train.shape[:1] or test_labels.shape != test.shape[:1]:
        raise ValueError(f"labels must hold one class per item: {train_labels.shape} for "
                         f"{train.shape[0]} training and {test_labels.shape} for "
                         f"{test.shape[0]} test items.")
    classes = np.unique(train_labels)
    unknown = sorted(set(np.unique(test_labels).tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(f"test labels {unknown} have no training items.")
    train = train.reshape(train.shape[0], -1, train.shape[-1]).mean(axis=1)
    test = test.reshape(test.shape[0], -1, test.shape[-1]).mean(axis=1)
    means = np.stack([train[train_labels == k].mean(axis=0) for k in classes])
    nearest = classes[np.linalg.norm(test[:, None] - means[None], axis=-1).argmin(axis=1)]
    return float(np.mean(nearest == test_labels))


def paired_mean_contrast(values, weights, *, key: jax.Array, groups=None,
                         n_resamples: int = 1000, level: float = 0.95):
    """sum_k w_k mean_clips(values_k), averaged over seeds, with a paired bootstrap interval
    over clips and seeds: for per-clip measures (purity, saliency shares), what
    ``evaluation.paired_contrast`` is for AUCs.

    Each resample draws clips with replacement within every group (the same clips for every
    term and seed: clip i of every seed must be the same kind of clip) and seeds with
    replacement; the interval is the percentile interval of the resampled contrasts.

    Args:
      values: K arrays of (clips,) or (seeds, clips), all the same shape.
      weights: K weights, e.g. (1, -1) for a difference.
      key: PRNG key of the resampling.
      groups: optional (clips,) strata.

    Returns:
      ``evaluation.PairedDifference``.
    """
    from asdtheory.evaluation import PairedDifference

    terms = [np.asarray(v, np.float64) for v in values]
    terms = [t[None] if t.ndim == 1 else t for t in terms]
    w = np.asarray(weights, np.float64)
    if not terms or w.shape != (len(terms),) or len({t.shape for t in terms}) != 1 \
            or terms[0].ndim != 2:
        raise ValueError("values must be K arrays of one shape (clips,) or (seeds, clips) and "
                         "weights K numbers.")
    if not all(np.isfinite(t).all() for t in terms):
        raise ValueError("values hold NaN or infinite entries.")
    check_scalar(n_resamples, "n_resamples", low=100, integer=True)
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    contrast = sum(wk * t for wk, t in zip(w, terms, strict=True))  # (seeds, clips)
    num_seeds, n = contrast.shape
    group = np.zeros(n, int) if groups is None else np.asarray(groups)
    if group.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {group.shape}.")
    k_clips, k_seeds = jax.random.split(key)
    counts = np.zeros((n_resamples, n))
    rows = np.arange(n_resamples)[:, None]
    for i, g in enumerate(np.unique(group)):
        members = np.flatnonzero(group == g)
        draw = np.asarray(jax.random.randint(jax.random.fold_in(k_clips, i),
                                             (n_resamples, members.size), 0, members.size))
        np.add.at(counts, (rows, members[draw]), 1.0)
    per_seed = counts @ contrast.T / n  # (resamples, seeds)
    seeds = np.asarray(jax.random.randint(k_seeds, (n_resamples, num_seeds), 0, num_seeds))
    resampled = np.mean(per_seed[rows, seeds], axis=1)
    low, high = np.quantile(resampled, [(1.0 - level) / 2, (1.0 + level) / 2])
    return PairedDifference(estimate=float(contrast.mean()), low=float(low), high=float(high),
                            level=float(level), n_resamples=int(n_resamples))

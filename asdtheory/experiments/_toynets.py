"""What the experiments ``c1`` and ``c2`` share: synthetic labelled clusters on the sphere, a
small MLP embedder with its loss head, and the per-sample readings of a trained head.

The data (``data.synthetic.sphere_mixture``) are fresh for every seed; the network is
``models.MLPEmbedder`` and the head ``models.make_head``, trained by ``train.fit``. Nothing here
decides a claim; the two experiments' modules hold the declarations and criteria.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import models
from asdtheory.data.synthetic import sphere_mixture
from asdtheory.geometry import l2_normalize

__all__ = ["NUM_SUBCLUSTERS", "class_compactness", "clusters", "head_options", "key_seed",
           "network", "predicted_class", "spread"]

# The sub-centres per class (sub-cluster AdaCos) and subspace dimension (AdaProj).
NUM_SUBCLUSTERS = 4


def clusters(key, *, classes: int, dim: int, per_class: int, concentration: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): ``classes`` labelled clusters of ``per_class`` unit vectors in R^dim."""
    x, y, _ = sphere_mixture(key, num_classes=classes, dim=dim, samples_per_class=per_class,
                             concentration=concentration)
    return np.asarray(x), np.asarray(y)


def head_options(method: str, options: dict | None = None) -> dict:
    """``models.make_head`` keyword options of an angular method: M sub-centres for
    sub-cluster AdaCos and AdaProj, plus the unit's own ``options`` (e.g. scale, margin)."""
    extra = {"num_subclusters": NUM_SUBCLUSTERS} if method in ("subcluster-adacos",
                                                               "adaproj") else {}
    return {**extra, **(options or {})}


def class_compactness(head: nnx.Module, z, num_classes: int) -> np.ndarray:
    """(B, N): ``head.compactness`` of every embedding w.r.t. every class k, 2 - 2 cos to the
    nearest sub-centre of k (AdaProj: to k's subspace)."""
    z = jnp.asarray(z)
    return np.stack([np.asarray(head.compactness(z, jnp.full(z.shape[0], k, jnp.int32)))
                     for k in range(num_classes)], axis=1)


def predicted_class(head: nnx.Module, z, num_classes: int) -> np.ndarray:
    """(B,) the class whose (sub-)centre or subspace is nearest in angle: the head's own
    classification of the embeddings."""
    return np.argmin(class_compactness(head, z, num_classes), axis=1)


def spread(z, *, normalise: bool) -> float:
    """sqrt(mean_i ||z_i - mean_j z_j||^2) in float64, of the unit vectors z_i / ||z_i|| when
    ``normalise`` (the geometry an angular head sees), else of the raw embeddings."""
    z = np.asarray(l2_normalize(jnp.asarray(z)) if normalise else z, np.float64)
    return float(np.sqrt(np.mean(np.sum((z - z.mean(axis=0)) ** 2, axis=1))))


def network(*, dim: int, embed_dim: int, hidden, use_bias: bool, activation: str,
            seed: int) -> models.MLPEmbedder:
    """The MLP embedder initialised from ``nnx.Rngs(seed)``: the same seed, the same weights."""
    return models.MLPEmbedder(dim, embed_dim, hidden=tuple(hidden), use_bias=use_bias,
                              activation=activation, rngs=nnx.Rngs(seed))


def key_seed(key) -> int:
    """An integer seed for ``nnx.Rngs`` drawn from a JAX key."""
    return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))

"""Angular margin losses and the compactness loss, as pure per-example JAX functions.

Signature convention (optax style): ``loss(embeddings, centres, labels, *, hyper-parameters)``
returns a (B,) array of per-example losses; centres are rows, (N, D) or (N, M, D).

What is checked: shapes and dtypes always (they are static under ``jax.jit``); label ranges,
soft-label rows, finiteness only on eager calls with concrete arrays -- inside ``jit``,
``grad`` or ``vmap`` those value checks are skipped, so validate data once outside.
"""

from asdtheory.losses.adacos import (
    adacos,
    adacos_fixed_scale,
    adacos_scale,
    adacos_scale_from_cosines,
    subcluster_adacos,
    subcluster_adacos_scale,
)
from asdtheory.losses.adaproj import adaproj, adaproj_scale, random_subspaces, subspace_cosines
from asdtheory.losses.compactness import (
    compactness,
    deep_svdd,
    deep_svdd_centre,
    soft_boundary_radius,
)
from asdtheory.losses.margin import (
    arcface,
    arcface_target_logit,
    cosface,
    normalized_softmax,
    softmax,
    sphereface,
    sphereface_target_logit,
    subcenter_arcface,
)

__all__ = [
    "adacos",
    "adacos_fixed_scale",
    "adacos_scale",
    "adacos_scale_from_cosines",
    "adaproj",
    "adaproj_scale",
    "arcface",
    "arcface_target_logit",
    "compactness",
    "cosface",
    "deep_svdd",
    "deep_svdd_centre",
    "normalized_softmax",
    "random_subspaces",
    "soft_boundary_radius",
    "softmax",
    "sphereface",
    "sphereface_target_logit",
    "subcenter_arcface",
    "subcluster_adacos",
    "subcluster_adacos_scale",
    "subspace_cosines",
]

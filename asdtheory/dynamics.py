"""Training dynamics (notebook 07, "beyond the paper").

* :func:`scale_trajectory` -- the sub-cluster AdaCos scale s_t over thousands of gradient
  steps on free embeddings ("unconstrained features"), for the faithful and the public-code
  scale update (``losses.subcluster_adacos_scale``); fast because the whole run is one
  ``jax.lax.scan``.
* :func:`neural_collapse_callback` -- a ``train.fit`` callback recording NC1-NC4
  (``metrics.neural_collapse``) of the normalised embeddings against the head's centres.
* :func:`free_embedding_run` -- gradient descent on free embeddings for one loss, with
  :data:`FREE_LOSSES` (the losses notebook 01 runs, C1.b), :func:`free_centres` and
  :func:`angle_degrees`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from asdtheory import losses, metrics, train
from asdtheory._validation import check_scalar
from asdtheory.geometry import angles, l2_normalize, random_centres, simplex_centres

__all__ = ["FREE_LOSSES", "angle_degrees", "blow_up_step", "free_centres",
           "free_embedding_run", "neural_collapse_callback", "scale_trajectory"]


@functools.partial(jax.jit, static_argnames=("steps", "learning_rate", "variant"))
def _scale_scan(x0, centres, labels, scale0, *, steps: int, learning_rate: float,
                variant: str):
    tx = optax.adam(learning_rate)

    def step(carry, _):
        x, scale, opt_state = carry
        # As in the original layer: the new scale from this batch and the old scale, then
        # the loss of this batch with the new scale.
        scale = losses.subcluster_adacos_scale(x, centres, labels, scale=scale,
                                               variant=variant)
        loss, grad = jax.value_and_grad(
            lambda x: jnp.mean(losses.subcluster_adacos(x, centres, labels, scale=scale)))(x)
        updates, opt_state = tx.update(grad, opt_state, x)
        cos = jnp.einsum("bd,nmd->bnm", l2_normalize(x), centres)
        own = jnp.max(cos[jnp.arange(x.shape[0]), labels], axis=-1)
        other = jnp.max(jnp.where(jax.nn.one_hot(labels, cos.shape[1], dtype=bool)[:, :, None],
                                  -jnp.inf, cos), axis=(1, 2))
        record = {"scale": scale, "loss": loss,
                  "median_target_angle": jnp.degrees(jnp.median(angles(own))),
                  "mean_max_other_cos": jnp.mean(other)}
        return (optax.apply_updates(x, updates), scale, opt_state), record

    _, records = jax.lax.scan(step, (x0, scale0, tx.init(x0)), length=steps)
    return records


def scale_trajectory(key: jax.Array, *, num_classes: int, num_subclusters: int, dim: int,
                     samples_per_class: int, steps: int, learning_rate: float = 1e-2,
                     variant: Literal["faithful", "code"] = "faithful") -> dict[str, np.ndarray]:
    """The sub-cluster AdaCos scale over ``steps`` Adam steps on free embeddings.

    Setting: B = N * ``samples_per_class`` embeddings x_i in R^D, drawn uniformly on the
    sphere, are themselves the parameters; N x M sub-centres are fixed random unit vectors
    (``geometry.random_centres``); the labels are balanced. Every step is one full batch:

        s_t = U(x_{t-1}, s_{t-1}),  x_t = Adam step on mean_i L(x_{t-1}; s_t),

    with U = ``losses.subcluster_adacos_scale(variant=...)``, L = ``losses.subcluster_adacos``
    and s_0 = sqrt(2) ln(N M - 1) (``losses.adacos_fixed_scale``). For M = 1 and the faithful
    variant this is AdaCos (Zhang et al., CVPR 2019).

    Nothing is clipped: once s_t overflows float32 it is inf and the later records are
    inf / NaN, which is the point of the experiment.

    Args:
      key: PRNG key for the centres and the initial embeddings.
      num_classes, num_subclusters, dim: N, M, D (N >= 2, N M >= 3).
      samples_per_class: embeddings per class.
      steps: number of steps T.
      learning_rate: Adam step size.
      variant: "faithful" or "code" scale update (see ``asdtheory.losses.adacos``).

    Returns:
      dict of (T,) float arrays: "scale" (s_t), "loss" (mean loss at step t, with s_t),
      "median_target_angle" (degrees, to the nearest own sub-centre, before step t's update)
      and "mean_max_other_cos" (mean over the batch of the largest cosine to a sub-centre of
      another class).
    """
    for name, value in (("num_classes", num_classes), ("num_subclusters", num_subclusters),
                        ("dim", dim), ("samples_per_class", samples_per_class),
                        ("steps", steps)):
        check_scalar(value, name, low=1, integer=True)
    check_scalar(num_classes, "num_classes", low=2, integer=True)
    check_scalar(learning_rate, "learning_rate", low=0.0)
    if variant not in ("faithful", "code"):
        raise ValueError(f"variant must be 'faithful' or 'code', got {variant!r}.")
    scale0 = losses.adacos_fixed_scale(num_classes, num_subclusters)
    key_centres, key_x = jax.random.split(key)
    centres = random_centres(key_centres, num_classes, dim, num_subcentres=num_subclusters)
    labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), samples_per_class)
    x0 = l2_normalize(jax.random.normal(key_x, (labels.size, dim)))
    records = _scale_scan(x0, centres, labels, jnp.float32(scale0), steps=int(steps),
                          learning_rate=float(learning_rate), variant=variant)
    return {name: np.asarray(value, np.float64) for name, value in records.items()}


def neural_collapse_callback(inputs, labels, *, batch_size: int = 256
                             ) -> Callable[[nnx.Module, nnx.Module], dict[str, float]]:
    """``train.fit`` callback: NC1-NC4 (``metrics.neural_collapse``) after every epoch.

    The features are the L2-normalised embeddings of ``inputs`` (what the cosine logits of
    an angular head see) and the classifier is the head's (N, D) class centres; the keys
    are those of ``metrics.neural_collapse`` ("nc1", "nc2_equinorm", "nc2_equiangularity",
    "nc3", "nc4").
    """
    labels = np.asarray(labels)

    def callback(model, head):
        centres = np.asarray(head.centres[...])
        if centres.ndim != 2:
            raise ValueError("neural_collapse_callback needs one centre per class, (N, D); "
                             f"the head has centres of shape {centres.shape}.")
        z = l2_normalize(jnp.asarray(train.embed(model, inputs, batch_size=batch_size)))
        return metrics.neural_collapse(z, labels, centres)

    return callback


@functools.partial(jax.jit, static_argnames=("loss_fn", "compactness_fn", "steps",
                                             "learning_rate", "trajectory"))
def _free_scan(x0, centres, labels, scale, *, loss_fn, compactness_fn, steps: int,
               learning_rate: float, trajectory: bool):
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

    def step(carry, _):
        x, state = carry
        loss, grad = jax.value_and_grad(
            lambda z: jnp.mean(loss_fn(z, centres, labels, scale)))(x)
        updates, state = tx.update(grad, state, x)
        record = (loss, jnp.mean(compactness_fn(x, centres, labels))) if trajectory else None
        return (optax.apply_updates(x, updates), state), record

    (x, _), records = jax.lax.scan(step, (x0, tx.init(x0)), length=steps)
    return x, records


def free_embedding_run(loss_fn: Callable, compactness_fn: Callable, x0, centres, labels, *,
                       scale: float, steps: int, learning_rate: float = 0.05,
                       trajectory: bool = True) -> dict[str, np.ndarray]:
    """Adam on free embeddings ("unconstrained features") with a cosine-decayed step size.

    x_0 = ``x0``; step t minimises mean_i loss_fn(x, centres, labels, scale) by one Adam step
    with step size lr * (1 + cos(pi t / T)) / 2, so that the run settles at the end (a constant
    step size leaves Adam oscillating at a distance ~lr from the minimiser). The whole run is
    one ``jax.lax.scan``; it computes in the dtype of ``x0`` (float64 under
    ``jax.enable_x64``, where large scales do not saturate the loss as float32 does).

    Args:
      loss_fn, compactness_fn: ``(x, centres, labels, scale) -> (B,)`` per-example loss and
        ``(x, centres, labels) -> (B,)`` compactness (hashable: module-level functions or
        ``functools.partial`` of them; they are static arguments of the compiled scan).
      x0: (B, D) initial embeddings; centres, labels: as ``loss_fn`` takes them.
      scale: the (fixed) scale s; steps: T; learning_rate: the initial step size.
      trajectory: record the mean loss and compactness at every step. Without it the run
        computes only the steps (the same final embeddings bit for bit; an ArcFace step in
        about half the time): for reference runs whose end point is all that counts.

    Returns:
      dict: "x" (B, D) final embeddings, "final_loss" and "final_compactness" (B,)
      per-example values at the final embeddings and, with ``trajectory``, "loss" and
      "compactness" (T,) mean values before each step.
    """
    check_scalar(steps, "steps", low=1, integer=True)
    check_scalar(learning_rate, "learning_rate", low=0.0)
    x0 = jnp.asarray(x0)
    x, records = _free_scan(x0, jnp.asarray(centres, x0.dtype), jnp.asarray(labels),
                            jnp.asarray(scale, x0.dtype), loss_fn=loss_fn,
                            compactness_fn=compactness_fn, steps=int(steps),
                            learning_rate=float(learning_rate), trajectory=bool(trajectory))
    run = {"x": np.asarray(x), "final_loss": np.asarray(loss_fn(x, centres, labels, scale)),
           "final_compactness": np.asarray(compactness_fn(x, centres, labels))}
    if trajectory:
        run |= {"loss": np.asarray(records[0]), "compactness": np.asarray(records[1])}
    return run


# Module-level so that each is one static argument of the compiled scan (hashable).
def _normalized_softmax(x, c, y, s):
    return losses.normalized_softmax(x, c, y, scale=s)


def _cosface(x, c, y, s):
    return losses.cosface(x, c, y, scale=s, margin=0.35)


def _arcface(x, c, y, s):
    return losses.arcface(x, c, y, scale=s, margin=0.5)


def _sphereface(x, c, y, s):
    return losses.sphereface(x, c, y, scale=s, margin=4)


def _subcenter_arcface(x, c, y, s):
    return losses.subcenter_arcface(x, c, y, scale=s, margin=0.5)


def _subcluster_adacos(x, c, y, s):
    return losses.subcluster_adacos(x, c, y, scale=s)


def _adaproj(x, c, y, s):
    return losses.adaproj(x, c, y, scale=s)


def _subspace_compactness(x, c, y):
    return 2.0 - 2.0 * jnp.take_along_axis(losses.subspace_cosines(x, c), y[:, None], 1)[:, 0]


_CENTRE_KINDS = ("simplex", "orthonormal", "random")
# name -> (loss (x, centres, labels, s) -> (B,), compactness (x, centres, labels) -> (B,),
# the centre kinds of :func:`free_centres` it runs with, whether the minimiser's angle has the
# closed form bounds.orthogonal_minimiser_angle for orthonormal centres (margin-free logits)).
FREE_LOSSES: dict[str, tuple[Callable, Callable, tuple[str, ...], bool]] = {
    "normalized softmax": (_normalized_softmax, losses.compactness, _CENTRE_KINDS, True),
    "CosFace (m=0.35)": (_cosface, losses.compactness, _CENTRE_KINDS, True),
    "ArcFace (m=0.5)": (_arcface, losses.compactness, _CENTRE_KINDS, False),
    "SphereFace (m=4)": (_sphereface, losses.compactness, _CENTRE_KINDS, False),
    "sub-center ArcFace": (_subcenter_arcface, losses.compactness, ("random sub",), False),
    "sub-cluster AdaCos (fixed s)": (_subcluster_adacos, losses.compactness, ("random sub",),
                                     False),
    "AdaProj (fixed s)": (_adaproj, _subspace_compactness, ("random sub",), False),
}


def free_centres(kind: str, key: jax.Array, num_classes: int, dim: int, *,
                 num_subcentres: int = 4) -> jax.Array:
    """Class centres for :func:`free_embedding_run`: "simplex" (the regular simplex, (N, D)),
    "orthonormal" (N random orthonormal rows), "random" (uniform on the sphere, (N, D)) or
    "random sub" (``num_subcentres`` uniform sub-centres per class, (N, M, D)).

    >>> free_centres("orthonormal", jax.random.key(0), 3, 8).shape
    (3, 8)
    """
    if kind == "simplex":
        return simplex_centres(num_classes, dim)
    if kind == "orthonormal":
        return jnp.linalg.qr(jax.random.normal(key, (dim, num_classes)))[0].T
    if kind in ("random", "random sub"):
        return random_centres(key, num_classes, dim,
                              num_subcentres=num_subcentres if kind == "random sub" else None)
    raise ValueError(f"kind must be 'simplex', 'orthonormal', 'random' or 'random sub', "
                     f"got {kind!r}.")


def angle_degrees(compactness) -> np.ndarray:
    """The angle theta (degrees) of a compactness ||x~ - c||^2 = 2 - 2 cos theta.

    >>> angle_degrees([0.0, 2.0, 4.0]).round(6).tolist()
    [0.0, 90.0, 180.0]
    """
    return np.degrees(np.arccos(np.clip(1.0 - np.asarray(compactness) / 2.0, -1.0, 1.0)))


def blow_up_step(scale, initial_scale: float, *, factor: float = 1000.0) -> int | None:
    """The first step at which a scale trajectory (:func:`scale_trajectory`'s "scale")
    exceeds ``factor`` times ``initial_scale`` or stops being finite; None if it never does.

    >>> blow_up_step(np.array([1.0, 2.0, 5e3, np.inf]), 1.0), blow_up_step(np.ones(3), 1.0)
    (2, None)
    """
    scale = np.asarray(scale)
    bad = np.flatnonzero(~np.isfinite(scale) | (scale > factor * initial_scale))
    return None if bad.size == 0 else int(bad[0])

"""Training dynamics and small detection runs on feature vectors (notebook 07, "beyond the
paper").

* :func:`scale_trajectory` -- the sub-cluster AdaCos scale s_t over thousands of gradient
  steps on free embeddings ("unconstrained features"), for the faithful and the public-code
  scale update (``losses.subcluster_adacos_scale``); fast because the whole run is one
  ``jax.lax.scan``.
* :func:`neural_collapse_callback` -- a ``train.fit`` callback recording NC1-NC4
  (``metrics.neural_collapse``) of the normalised embeddings against the head's centres.
* :func:`detect_vectors` -- an angular margin embedder (``models.MLPEmbedder`` + an
  ``models.AngularHead`` with fixed or trainable centres) trained on feature vectors, with
  the k-means cosine-distance back-end of ``scoring``: a detection run small enough to repeat
  for several seeds and settings in a notebook.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from asdtheory import losses, metrics, models, scoring, train
from asdtheory._validation import check_clip_labels, check_scalar, check_target_mask
from asdtheory.geometry import angles, l2_normalize, random_centres

__all__ = ["VectorDetection", "detect_vectors", "neural_collapse_callback", "scale_trajectory"]


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


@dataclasses.dataclass
class VectorDetection:
    """What :func:`detect_vectors` returns.

    Attributes:
      scores: (m,) anomaly scores of the test clips (higher = more anomalous).
      train_embeddings, test_embeddings: (n, D) / (m, D) clip embeddings (mean of the
        normalised example embeddings of a clip).
      model, head: the trained ``MLPEmbedder`` and ``AngularHead``.
      history: ``train.History`` of the training run.
    """

    scores: np.ndarray
    train_embeddings: np.ndarray
    test_embeddings: np.ndarray
    model: nnx.Module
    head: nnx.Module
    history: train.History


def _clip_embeddings(model, examples: np.ndarray) -> np.ndarray:
    n, k = examples.shape[:2]
    z = train.embed(model, examples.reshape(n * k, -1))
    return np.asarray(l2_normalize(jnp.asarray(z))).reshape(n, k, -1).mean(axis=1)


def detect_vectors(train_examples, train_labels, test_examples, *, key: jax.Array,
                   config: train.TrainConfig, method: str = "adacos",
                   num_subclusters: int = 1, trainable_centres: bool = False,
                   embed_dim: int = 32, hidden: Sequence[int] = (128, 128),
                   n_clusters: int = 4, train_is_target=None) -> VectorDetection:
    """Trains an angular margin MLP embedder on feature vectors and scores the test clips.

    Every clip contributes k examples (feature vectors, e.g. stacked log-mel frames, or
    k = 1 for vector data). Training: ``train.fit`` of ``models.MLPEmbedder(F, embed_dim,
    hidden=hidden)`` with ``models.make_head(method, trainable_centres=...)`` on all examples,
    each labelled with its clip's auxiliary class. Score of a test clip with embedding e
    (the mean of its normalised example embeddings): 1 - max_j cos(e, mu_j) over
    ``n_clusters`` k-means centres mu_j of the training clip embeddings, plus every
    target-domain training clip as a centre of its own (``scoring.kmeans_centres``;
    Wilkinghoff's back-end).

    Args:
      train_examples: (n, k, F) examples of the normal training clips.
      train_labels: (n,) integer auxiliary classes 0..N-1 of the training clips.
      test_examples: (m, k, F).
      key: PRNG key for the initialisation and training.
      config: ``train.TrainConfig``.
      method: an angular method of ``models.ANGULAR_METHODS``.
      num_subclusters: M for "subcluster-adacos" and "adaproj".
      trainable_centres: learn the class centres (not for "adaproj").
      embed_dim, hidden: embedder sizes.
      n_clusters: k-means centres of the back-end.
      train_is_target: optional (n,) bool, True for target-domain training clips.

    Returns:
      :class:`VectorDetection`.
    """
    train_examples = np.asarray(train_examples, np.float32)
    test_examples = np.asarray(test_examples, np.float32)
    if train_examples.ndim != 3 or test_examples.ndim != 3 \
            or train_examples.shape[2] != test_examples.shape[2]:
        raise ValueError(f"train_examples and test_examples must be (clips, k, F) with the same "
                         f"F, got shapes {train_examples.shape} and {test_examples.shape}.")
    if method not in models.ANGULAR_METHODS:
        raise ValueError(f"method must be one of {models.ANGULAR_METHODS}, got {method!r}.")
    n, k, features = train_examples.shape
    labels = check_clip_labels(train_labels, n)
    is_target = check_target_mask(train_is_target, n, "train_is_target")
    init_key, train_key = jax.random.split(key)
    rngs = nnx.Rngs(init_key)
    model = models.MLPEmbedder(features, embed_dim, hidden=hidden, rngs=rngs)
    extra = ({"num_subclusters": num_subclusters}
             if method in ("subcluster-adacos", "adaproj") else {})
    head = models.make_head(method, embed_dim=embed_dim, num_classes=int(labels.max()) + 1,
                            trainable_centres=trainable_centres, rngs=rngs, **extra)
    history = train.fit(model, head, train_examples.reshape(n * k, features),
                        np.repeat(labels, k).astype(np.int32), config=config, key=train_key)
    train_z = _clip_embeddings(model, train_examples)
    test_z = _clip_embeddings(model, test_examples)
    centres = scoring.kmeans_centres(train_z[~is_target], n_clusters=n_clusters, seed=0,
                                     target_embeddings=train_z[is_target] if is_target.any()
                                     else None)
    return VectorDetection(scores=scoring.nearest_centre_score(test_z, centres),
                           train_embeddings=train_z, test_embeddings=test_z, model=model,
                           head=head, history=history)


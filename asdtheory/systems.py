"""A trained anomalous sound detection system as one object: embeddings and a jittable score.

``experiments.detect`` and ``pipeline.run`` train a system and return its scores; the
embedding-space and saliency notebooks also need the trained system itself -- clip
embeddings for t-SNE, and the anomaly score as a function of the whole log-mel spectrogram
for RISE (``explain.rise``). :func:`fit_system` trains with the stages of those modules and
returns a :class:`System`::

    system = fit_system(train_mels, train_labels, config=DetectConfig(method="deep-svdd"),
                        key=jax.random.key(0))
    z = system.embed(test_mels)                       # (n, D) clip embeddings
    s = system.score(test_mels)                       # (n,) anomaly scores
    saliency = explain.rise(system.score_fn, test_mels[0], key)

Stages (as in ``experiments.detect``): log-mel spectrograms in dB, standardised by the mean
and standard deviation of all training values; CNN windows of ``window_frames`` frames every
``window_hop`` frames labelled with the clip's auxiliary class (or, for the autoencoder,
vectors of ``context_frames`` stacked frames at every frame); ``train.fit``. Scores, higher =
more anomalous:

* angular methods -- clip embedding e = mean of the unit-normalised window embeddings;
  score = 1 - max_k cos(e, c_k) over ``n_clusters`` k-means centres of the training clips
  (plus every target-domain training clip as a centre; ``scoring.kmeans_centres``),
* deep-svdd -- e = mean window embedding; score = mean over windows of ||phi(x) - c||^2,
* autoencoder -- e = mean bottleneck code; score = mean squared reconstruction error of the
  standardised stacked-frame vectors.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import models, scoring, train
from asdtheory._validation import check_clip_labels, check_target_mask
from asdtheory.experiments import DetectConfig
from asdtheory.geometry import l2_normalize

__all__ = ["System", "fit_system"]

_SUBCLUSTER = ("subcluster-adacos", "adaproj")


def _windows(x: jax.Array, size: int, hop: int) -> jax.Array:
    """(B, T, F) -> (B, k, size, F): windows starting every ``hop`` frames, k = 1 + (T -
    size) // hop (as ``audio.segment``)."""
    starts = range(0, x.shape[1] - size + 1, hop)
    return jnp.stack([x[:, s:s + size] for s in starts], axis=1)


@functools.partial(jax.jit, static_argnames=("graphdef", "method", "config"))
def _outputs(graphdef, state, mean, std, mels, *, method: str, config: DetectConfig):
    """(B, T, F) dB log-mels -> clip embeddings (B, D) and per-clip scores (B,) (NaN for
    the angular methods, whose score needs the back-end centres)."""
    model, head = nnx.merge(graphdef, state)
    x = (mels - mean) / std
    if method == "autoencoder":
        v = _windows(x, config.context_frames, 1)
        v = v.reshape(*v.shape[:2], -1)
        flat = v.reshape(-1, v.shape[-1])
        errors = jnp.mean((model(flat) - flat) ** 2, axis=-1).reshape(v.shape[:2])
        return model.embed(flat).reshape(*v.shape[:2], -1).mean(axis=1), errors.mean(axis=1)
    w = _windows(x, config.window_frames, config.window_hop)
    z = model.embed(w.reshape(-1, *w.shape[2:])).reshape(*w.shape[:2], -1)
    if method == "deep-svdd":
        return z.mean(axis=1), head(z.reshape(-1, z.shape[-1])).reshape(w.shape[:2]).mean(1)
    return l2_normalize(z).mean(axis=1), jnp.full(z.shape[0], jnp.nan)


@dataclasses.dataclass
class System:
    """A trained system (see the module docstring); build it with :func:`fit_system`.

    Attributes:
      config: the ``experiments.DetectConfig`` it was trained with.
      model, head: the trained network and loss head.
      mean, std: standardisation of the dB log-mel inputs (training statistics).
      centres: (K, D) unit-norm back-end centres of the angular methods, else None.
      history: training history.
    """

    config: DetectConfig
    model: nnx.Module
    head: nnx.Module
    mean: float
    std: float
    centres: np.ndarray | None
    history: train.History

    def _state(self):
        graphdef, state = nnx.split((self.model, self.head))
        return graphdef, nnx.as_pure(state), jnp.float32(self.mean), jnp.float32(self.std)

    def _batched(self, mels, batch_size: int):
        mels = np.asarray(mels, np.float32)
        if mels.ndim != 3:
            raise ValueError(f"mels must be (clips, frames, n_mels) dB log-mel spectrograms, "
                             f"got shape {mels.shape}.")
        state = self._state()
        n, size = len(mels), min(batch_size, len(mels))
        # The last chunk is padded to the common size: one compilation for the whole pass.
        padded = np.concatenate([mels, np.repeat(mels[-1:], -n % size, axis=0)])
        parts = [_outputs(*state, padded[i:i + size], method=self.config.base_method,
                          config=self.config) for i in range(0, n, size)]
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[:n] for j in range(2))

    def embed(self, mels, *, batch_size: int = 64) -> np.ndarray:
        """(n, frames, n_mels) dB log-mels -> (n, D) clip embeddings."""
        return self._batched(mels, batch_size)[0]

    def score(self, mels, *, batch_size: int = 64) -> np.ndarray:
        """(n, frames, n_mels) dB log-mels -> (n,) anomaly scores (higher = more anomalous)."""
        z, scores = self._batched(mels, batch_size)
        if self.centres is None:
            return scores
        return scoring.nearest_centre_score(z, self.centres)

    @property
    def score_fn(self) -> Callable[[jax.Array], jax.Array]:
        """The anomaly score as a jitted JAX function (B, frames, n_mels) -> (B,), e.g. for
        ``explain.rise``; equals :meth:`score`."""
        state = self._state()
        method, config = self.config.base_method, self.config
        centres = None if self.centres is None else jnp.asarray(self.centres)

        @jax.jit
        def fn(mels):
            z, scores = _outputs(*state, mels, method=method, config=config)
            if centres is None:
                return scores
            return 1.0 - jnp.max(l2_normalize(z) @ centres.T, axis=-1)

        return fn


def fit_system(train_mels, train_labels, *, config: DetectConfig, key: jax.Array,
               target=None) -> System:
    """Trains one system on normal clips (stages in the module docstring).

    Args:
      train_mels: (n, frames, n_mels) dB log-mel spectrograms of normal training clips.
      train_labels: (n,) integer auxiliary classes 0..N-1 (used by the angular methods;
        permuted at random for a ``+random-labels`` method).
      config: ``experiments.DetectConfig``; ``n_clusters`` k-means centres (angular only).
      key: PRNG key for initialisation, training and the label permutation.
      target: optional (n,) bool, True for target-domain training clips: those become
        back-end centres of their own, k-means runs on the others (DCASE 2022-2024 style).

    Returns:
      :class:`System`.
    """
    mels = np.asarray(train_mels, np.float32)
    if mels.ndim != 3:
        raise ValueError(f"train_mels must be (clips, frames, n_mels), got shape {mels.shape}.")
    n = mels.shape[0]
    labels = check_clip_labels(train_labels, n)
    target = check_target_mask(target, n, "target")
    method = config.base_method
    init_key, train_key, label_key = jax.random.split(key, 3)
    if config.random_labels:
        labels = np.asarray(jax.random.permutation(label_key, labels))
    mean, std = float(mels.mean()), float(mels.std())
    x = (mels - mean) / std
    rngs = nnx.Rngs(init_key)
    if method == "autoencoder":
        v = np.asarray(_windows(jnp.asarray(x), config.context_frames, 1))
        examples = v.reshape(-1, v.shape[2] * v.shape[3])
        model, head = models.Autoencoder(examples.shape[-1], rngs=rngs), models.ReconstructionHead()
        example_labels = None
    else:
        w = np.asarray(_windows(jnp.asarray(x), config.window_frames, config.window_hop))
        examples = w.reshape(-1, *w.shape[2:])
        model = models.CNNEmbedder(mels.shape[-1], config.embed_dim, channels=config.channels,
                                   use_bias=method != "deep-svdd", rngs=rngs)
        extra = {"num_subclusters": config.num_subclusters} if method in _SUBCLUSTER else {}
        head = models.make_head(method, embed_dim=config.embed_dim,
                                num_classes=int(labels.max()) + 1, rngs=rngs, **extra)
        example_labels = (np.repeat(labels, w.shape[1]).astype(np.int32)
                          if method in models.ANGULAR_METHODS else None)
    history = train.fit(model, head, examples, example_labels, config=config.train_config(),
                        key=train_key)
    system = System(config=config, model=model, head=head, mean=mean, std=std, centres=None,
                    history=history)
    if method in models.ANGULAR_METHODS:
        z = system.embed(mels)
        system.centres = scoring.kmeans_centres(
            z[~target], n_clusters=config.n_clusters, seed=0,
            target_embeddings=z[target] if target.any() else None)
    return system

"""One anomalous sound detector: trained on normal clips, it embeds and scores clips.

Every notebook, the command line and the tests train detectors through :class:`Detector`;
``asdtheory.detect.dcase.run`` wraps it for DCASE folders and :func:`compare` for grids of
methods and seeds::

    config = DetectorConfig(method="subcluster-adacos", n_clusters=4)
    detector = Detector.fit(train_mels, train_labels, config=config, key=jax.random.key(0),
                            groups=train_sections, is_target=train_is_target)
    scores = detector.score(test_mels, groups=test_sections)     # (m,) higher = anomalous
    z = detector.embed(test_mels)                                # (m, D) clip embeddings
    saliency = explain.rise(detector.score_fn(group=0), test_mels[0], key)

Stages:

1. **Inputs**: (n, frames, F) arrays, e.g. dB log-mel spectrograms (:func:`log_mels`), or
   feature vectors as (n, 1, F); for the two-branch embedder raw waveforms (n, T)
   (``DetectorConfig.input_kind``; :func:`features` computes the right one from waveforms).
   Standardised by the mean and standard deviation of all training values.
2. **Examples** (:func:`examples`): windows of ``window_frames`` frames every
   ``window_hop`` frames (``audio.segment`` on the frame axis), as (frames, F) images for
   the CNN embedder and flattened for the MLP embedder; for the autoencoder, vectors of
   ``context_frames`` stacked frames at every frame (the DCASE baseline's input); for the
   two-branch embedder the whole clip (``detect.embedders``). Each example carries its
   clip's auxiliary class (methods that learn labels).
3. **Training**: ``train.fit`` of the embedder (no bias terms for a method without them,
   Deep SVDD, Ruff et al.'s remedy; the two-branch network has none for any method, and
   no batch-norm offsets for Deep SVDD) or the autoencoder, with the method's head
   (``models.make_head``); batch-norm statistics recomputed on the training examples at
   the end (``train.recompute_batch_stats``). ``DetectorConfig.twin`` is the same system
   without training, its untrained twin.
4. **Clip embeddings and scores** (higher = more anomalous; ``scoring``), one jitted pass,
   by the back-end (the method's first by default):

   * class-centre methods: e = mean of the unit-normalised example embeddings of the clip;
     back-end "kmeans" (default, K. Wilkinghoff's DCASE systems): 1 - max cos(e, c) over
     ``n_clusters`` k-means centres of the group's source-domain training embeddings plus
     every target-domain training embedding of the group (``scoring.kmeans_centres``, seeded
     from the training key), fitted per group (section or machine); "nearest-centre": to the
     nearest class (sub-)centre of the head (AdaProj: nearest subspace); "knn": mean cosine
     distance to the ``knn_k`` nearest training clips of the group;
   * "distance" (deep-svdd): e = mean example embedding; score = mean of ||phi(x) - c||^2;
   * "reconstruction" (autoencoder): e = mean bottleneck code; score = mean squared
     reconstruction error.

Method names are those of ``asdtheory.methods``; a labelled method + ``methods.RANDOM_LABELS``
(e.g. "subcluster-adacos+random-labels") is the same method trained on a meaningless task:
the clip labels permuted at random (same class sizes, no relation to the sound).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import audio, evaluation, methods, models, scoring, train
from asdtheory._validation import check_clip_labels, check_scalar
from asdtheory.detect import embedders
from asdtheory.geometry import l2_normalize

__all__ = [
    "BASELINE_AUTOENCODER",
    "Detector",
    "DetectorConfig",
    "build_network",
    "compare",
    "embedders",
    "examples",
    "features",
    "log_mels",
    "waveform_score_fn",
]


# The DCASE 2023 Task 2 baseline autoencoder (Dohi et al. 2023; nttcslab's
# dcase2023_task2_baseline_ae): 128 log-mel bands, 5 stacked frames, 4 x 128 dense layers and
# an 8-d bottleneck (models.Autoencoder), batch 256 frame vectors, no penalty, no mixup.
BASELINE_AUTOENCODER = {"n_mels": 128, "context_frames": 5, "batch_size": 256,
                        "weight_decay": 0.0, "mixup_alpha": 0.0}


@dataclasses.dataclass(frozen=True)
class DetectorConfig(train.TrainConfig):
    """Everything a :class:`Detector` depends on apart from the data and the key; validated
    on construction. A ``train.TrainConfig`` (epochs, batch_size, learning_rate,
    weight_decay, mixup_alpha, progress, steps: its fields and defaults) plus the settings
    below. Named systems (``detect.systems``) derive theirs from it.

    Attributes:
      method: a name of ``asdtheory.methods``, or a labelled one + ``methods.RANDOM_LABELS``.
      embedder: the network and its settings, an ``embedders.CNN``, ``embedders.MLP`` or
        ``embedders.TwoBranch`` (the reconstruction method always uses
        ``models.Autoencoder`` on stacked log-mel frames).
      n_mels: log-mel bands of the front-end when the detector's inputs are computed from
        waveforms (:func:`features`) for a log-mel embedder or the autoencoder.
      window_frames, window_hop: examples; context_frames: autoencoder frame stacking.
      embed_dim: embedding size D.
      num_subclusters: M, sub-centres per class of sub-cluster AdaCos (the subspace
        dimension of AdaProj); unused by methods without sub-centres.
      trainable_centres: learn the class centres (default: fixed random, as Wilkinghoff).
      scale_variant: sub-cluster AdaCos scale update, "faithful" (the paper's formula) or
        "code" (the author's public implementation); see ``asdtheory.losses.adacos``.
      backend, n_clusters, knn_k: score back-end (one of the method's ``backends``, None:
        its default) and its parameters.

    Every epoch is ceil(examples / batch_size) steps; the autoencoder sees one example per
    frame, the embedders one per window (``TrainConfig.steps`` compares methods at equal
    optimiser steps).
    """

    method: str = "subcluster-adacos"
    embedder: embedders.CNN | embedders.MLP | embedders.TwoBranch = embedders.DEFAULT
    n_mels: int = 64
    window_frames: int = 32
    window_hop: int = 16
    context_frames: int = 5
    embed_dim: int = 32
    num_subclusters: int = 4
    trainable_centres: bool = False
    scale_variant: str = "faithful"
    backend: str | None = None
    n_clusters: int = 4
    knn_k: int = 1

    def __post_init__(self):
        super().__post_init__()
        method, _ = methods.parse(self.method)
        if not isinstance(self.embedder, tuple(embedders.EMBEDDERS.values())):
            known = ", ".join(f"embedders.{c.__name__}" for c in embedders.EMBEDDERS.values())
            raise ValueError(f"embedder must be a configuration ({known}), got "
                             f"{self.embedder!r}.")
        if self.scale_variant not in ("faithful", "code"):
            raise ValueError(f"scale_variant must be 'faithful' or 'code', got "
                             f"{self.scale_variant!r}.")
        if self.backend is not None and self.backend not in method.backends:
            raise ValueError(f"backend {self.backend!r} does not apply to {method.name}; "
                             f"choose one of {method.backends}.")
        if self.trainable_centres and not method.trainable_centres:
            raise ValueError(f"{method.name} keeps fixed random centres; trainable_centres "
                             "must be False.")
        for name in ("n_mels", "window_frames", "window_hop", "context_frames", "embed_dim",
                     "num_subclusters", "n_clusters", "knn_k"):
            check_scalar(getattr(self, name), name, low=1, integer=True)
        if self.input_kind == "waveform":
            self.embedder.check_embed_dim(self.embed_dim)

    @property
    def spec(self) -> methods.Method:
        """The method's registry entry (``asdtheory.methods``)."""
        return methods.parse(self.method)[0]

    @property
    def random_labels(self) -> bool:
        return methods.parse(self.method)[1]

    @property
    def reconstructs(self) -> bool:
        """Whether the network is the autoencoder (the reconstruction method)."""
        return self.spec.head == "reconstruction"

    @property
    def input_kind(self) -> str:
        """"waveform" ((n, T) raw clips, the two-branch embedder) or "log-mel" ((n, frames,
        F) arrays, every other embedder and the autoencoder)."""
        return "log-mel" if self.reconstructs else self.embedder.input_kind

    @property
    def score_backend(self) -> str:
        return self.backend or self.spec.backends[0]

    @classmethod
    def tiny(cls, **overrides) -> DetectorConfig:
        """A small network trained for two epochs: for tests and examples."""
        return cls(**{"embed_dim": 8, "embedder": embedders.CNN(channels=(4, 8)),
                      "n_clusters": 2, "epochs": 2, "batch_size": 8, "learning_rate": 1e-2,
                      "progress": False, **overrides})

    def with_method(self, method: str) -> DetectorConfig:
        """This configuration trained with ``method``, changing only what the method needs:
        a method without soft labels trains without mixup; the reconstruction method is the
        DCASE 2023 baseline autoencoder with that baseline's own front-end and training
        (:data:`BASELINE_AUTOENCODER`). The one place these rules live: systems and
        :func:`compare` apply them."""
        config = dataclasses.replace(self, method=method)
        if config.reconstructs:
            return dataclasses.replace(config, **BASELINE_AUTOENCODER)
        if not config.spec.soft_labels:
            return dataclasses.replace(config, mixup_alpha=0.0)
        return config

    def twin(self) -> DetectorConfig:
        """The configuration of this system's *untrained twin*: the same network, back-end
        and training, no optimiser step (``steps=0``). ``Detector.fit`` with it and the
        trained system's key scores the initialisation exactly as the trained network is
        scored (batch-norm statistics and a Deep SVDD centre computed alike): what training
        adds is the difference to it."""
        return dataclasses.replace(self, steps=0)

    def to_dict(self) -> dict:
        """JSON-able fields; the embedder as {"name": ..., its settings}. Inverse:
        :meth:`from_dict`."""
        fields = dataclasses.asdict(self)
        fields["embedder"] = {"name": self.embedder.name, **fields["embedder"]}
        return fields

    @classmethod
    def from_dict(cls, fields: dict) -> DetectorConfig:
        """The configuration :meth:`to_dict` wrote (lists read back as tuples)."""
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        settings = dict(fields.pop("embedder"))
        kind = embedders.EMBEDDERS[settings.pop("name")]
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        return cls(embedder=kind(**settings), **fields)

    def train_config(self) -> train.TrainConfig:
        """The training part, as ``train.fit`` takes it."""
        return train.TrainConfig(**{field.name: getattr(self, field.name)
                                    for field in dataclasses.fields(train.TrainConfig)})


@functools.cache
def _log_mel_fn(sample_rate: int, n_mels: int):
    return jax.jit(lambda x: jnp.swapaxes(
        audio.log_mel(x, sample_rate=sample_rate, n_mels=n_mels), -1, -2))


def log_mels(waveforms, *, sample_rate: int = 16000, n_mels: int = 32,
             chunk_size: int = 64) -> np.ndarray:
    """(n, T) waveforms -> (n, frames, n_mels) log-mel spectrograms in dB
    (``audio.log_mel``: n_fft 1024, hop 512), the detector's input, computed ``chunk_size``
    clips at a time (the last chunk padded, so that one compiled program serves all).
    """
    waveforms = np.asarray(waveforms, np.float32)
    if waveforms.ndim != 2 or waveforms.shape[0] == 0:
        raise ValueError(f"waveforms must be a non-empty (clips, samples) array, got shape "
                         f"{waveforms.shape}.")
    check_scalar(chunk_size, "chunk_size", low=1, integer=True)
    fn = _log_mel_fn(int(sample_rate), int(n_mels))
    size = min(chunk_size, len(waveforms))
    padded = np.concatenate([waveforms, np.zeros((-len(waveforms) % size, waveforms.shape[1]),
                                                 np.float32)])
    return np.concatenate([np.asarray(fn(padded[i:i + size]))
                           for i in range(0, len(padded), size)])[:len(waveforms)]


def waveform_score_fn(detector: Detector, group=None, *, sample_rate: int = 16000
                      ) -> Callable[[jax.Array], jax.Array]:
    """The anomaly score of one group's clips as a jitted JAX function of the *waveforms*,
    (B, samples) -> (B,): :meth:`Detector.score_fn` after the detector's front-end
    (:func:`features`), e.g. for
    ``explain.rise_waveform``, which compares systems with different front-ends on one
    time-frequency plane. Equals ``detector.score(features(waveforms, ...), groups=...)``."""
    score = detector.score_fn(group)
    if detector.config.input_kind == "waveform":
        return score
    front_end = _log_mel_fn(int(sample_rate), detector.config.n_mels)
    return jax.jit(lambda waveforms: score(front_end(waveforms)))


def features(waveforms, config: DetectorConfig, *, sample_rate: int = 16000) -> np.ndarray:
    """(n, T) waveforms -> the detector's input for ``config`` (``config.input_kind``): the
    waveforms themselves (float32) for the two-branch embedder, else :func:`log_mels` with
    ``config.n_mels`` bands."""
    if config.input_kind == "waveform":
        waveforms = np.asarray(waveforms, np.float32)
        if waveforms.ndim != 2 or waveforms.shape[0] == 0:
            raise ValueError(f"waveforms must be a non-empty (clips, samples) array, got "
                             f"shape {waveforms.shape}.")
        return waveforms
    return log_mels(waveforms, sample_rate=sample_rate, n_mels=config.n_mels)


def examples(inputs, config: DetectorConfig):
    """Standardised inputs -> (n, k, ...) examples per clip (stage 2 of the module
    docstring); NumPy in, NumPy out; JAX in, JAX out (used inside jit)."""
    if config.input_kind == "waveform":
        return inputs[:, None, :]  # one example per clip: the whole waveform
    stacked = config.reconstructs
    size, hop = ((config.context_frames, 1) if stacked
                 else (config.window_frames, config.window_hop))
    # segment cuts the last axis: (n, F, T) -> (n, F, k, size) -> (n, k, size, F)
    windows = audio.segment(inputs.swapaxes(1, 2), window=size, hop=hop).transpose(0, 2, 3, 1)
    if stacked or config.embedder.flatten:
        return windows.reshape(*windows.shape[:2], -1)
    return windows


def build_network(config: DetectorConfig, num_classes: int, example_shape, key: jax.Array):
    """The untrained network and loss head of ``config`` for ``num_classes`` auxiliary
    classes and examples of ``example_shape``: the one place a configuration becomes a
    network (``Detector.fit``, ``detect.store`` and the benchmarks call it)."""
    rngs = nnx.Rngs(key)
    method = config.spec
    if config.reconstructs:
        return models.Autoencoder(example_shape[-1], rngs=rngs), models.ReconstructionHead()
    model = config.embedder.build(example_shape, config.embed_dim, bias=method.bias, rngs=rngs)
    options = {"num_subclusters": config.num_subclusters} if method.has_subcentres else {}
    if method.scale_variants:
        options["variant"] = config.scale_variant
    head = models.make_head(method.name, embed_dim=config.embed_dim, num_classes=num_classes,
                            trainable_centres=config.trainable_centres, rngs=rngs, **options)
    return model, head


@functools.partial(jax.jit, static_argnames=("graphdef", "config"))
def _clip_outputs(graphdef, state, mean, std, inputs, *, config: DetectorConfig):
    """(B, ...) inputs -> clip embeddings (B, D) and per-clip scores (B,) (NaN for the
    methods with class centres, whose scores need the fitted back-end)."""
    model, head = nnx.merge(graphdef, state)
    x = examples((inputs - mean) / std, config)
    flat = x.reshape(-1, *x.shape[2:])
    z = model.embed(flat).reshape(*x.shape[:2], -1)
    backend = config.score_backend
    if backend == "reconstruction":
        errors = scoring.reconstruction_error(flat, model(flat)).reshape(x.shape[:2])
        return z.mean(axis=1), errors.mean(axis=1)
    if backend == "distance":
        return z.mean(axis=1), head(z.reshape(-1, z.shape[-1])).reshape(x.shape[:2]).mean(1)
    return l2_normalize(z).mean(axis=1), jnp.full(z.shape[0], jnp.nan)


def _centre_backend_score(z, backend: str, centres, neighbours, knn_k: int,
                          subspaces: bool):
    """Scores of (B, D) clip embeddings for one group by a back-end fitted on class-centre
    embeddings (used by score and score_fn)."""
    if backend == "knn":
        return scoring.knn_score(neighbours, z, k=knn_k)
    if subspaces:
        return scoring.nearest_subspace_score(z, centres)
    return scoring.nearest_centre_score(z, centres)


def _groups(groups, n: int, name: str) -> np.ndarray:
    groups = np.zeros(n, np.int64) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"{name} must hold one group id per clip, shape ({n},); got shape "
                         f"{groups.shape}.")
    return groups


def _check_inputs(inputs, name: str, config: DetectorConfig) -> np.ndarray:
    inputs = np.asarray(inputs, np.float32)
    if config.input_kind == "waveform":
        if inputs.ndim != 2 or inputs.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty (clips, samples) array of waveforms "
                             f"for the two-branch embedder; got shape {inputs.shape}.")
        if not np.isfinite(inputs).all():
            raise ValueError(f"{name} holds NaN or infinite values.")
        return inputs
    if inputs.ndim != 3 or inputs.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (clips, frames, features) array, e.g. "
                         f"log-mel spectrograms or vectors as (clips, 1, features); got shape "
                         f"{inputs.shape}.")
    size = config.context_frames if config.reconstructs else config.window_frames
    if inputs.shape[1] < size:
        raise ValueError(f"{name} have {inputs.shape[1]} frames, fewer than the {size} of one "
                         "example; lower window_frames (context_frames for the autoencoder).")
    if not np.isfinite(inputs).all():
        raise ValueError(f"{name} holds NaN or infinite values.")
    return inputs


def _kmeans_seed(key: jax.Array) -> int:
    return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))


@dataclasses.dataclass
class Detector:
    """A trained detector (stages in the module docstring); build it with :meth:`fit`.

    Attributes:
      config: its :class:`DetectorConfig`.
      model, head: the trained network and loss head.
      mean, std: standardisation of the inputs (training statistics).
      centres: {group: (K, D) unit-norm back-end centres} of the "kmeans" back-end (the head's
        centres under "nearest-centre"; empty for the other back-ends and methods).
      train_embeddings, train_groups: clip embeddings and groups of the training clips.
      history: ``train.History`` of the training run.
    """

    config: DetectorConfig
    model: nnx.Module
    head: nnx.Module
    mean: float
    std: float
    centres: dict
    train_embeddings: np.ndarray
    train_groups: np.ndarray
    history: train.History

    @classmethod
    def fit(cls, inputs, labels=None, *, config: DetectorConfig, key: jax.Array,
            groups=None, is_target=None, checkpoint: str | Path | None = None) -> Detector:
        """Trains a detector on normal training clips.

        Args:
          inputs: (n, frames, F) training inputs (stage 1 of the module docstring).
          labels: (n,) integer auxiliary classes 0..N-1 (needed by the angular methods,
            ignored by deep-svdd and the autoencoder; permuted for a random-label method).
          config: :class:`DetectorConfig`.
          key: PRNG key for initialisation, training, the label permutation and k-means.
          groups: optional (n,) group ids (section or machine): one back-end per group.
          is_target: optional (n,) bool, True for target-domain training clips (each is a
            back-end centre of its own; k-means runs on the group's source clips).
          checkpoint: optional folder of the training state, written after every epoch
            (``train.save_checkpoint``); when it holds one, training continues from it
            (``train.fit``): an interrupted run resumed with the same arguments ends where
            the uninterrupted run ends.

        Raises:
          ValueError: bad shapes, NaN inputs, labels missing or out of range, a group
            without source clips or with fewer clips than ``knn_k`` -- all before training.
        """
        inputs = _check_inputs(inputs, "inputs", config)
        n = inputs.shape[0]
        method = config.spec
        angular = method.uses_labels
        if angular:
            if labels is None:
                raise ValueError(f"{method.name} learns an auxiliary task: pass labels, one "
                                 "integer class per training clip.")
            labels = check_clip_labels(labels, n, "labels")
        groups = _groups(groups, n, "groups")
        is_target = np.zeros(n, bool) if is_target is None else np.asarray(is_target)
        if is_target.shape != (n,) or is_target.dtype != np.bool_:
            raise ValueError(f"is_target must be a ({n},) bool array, got shape "
                             f"{is_target.shape}, dtype {is_target.dtype}.")
        if angular:
            _check_backend_data(config, groups, is_target)
        init_key, train_key, label_key, kmeans_key = jax.random.split(key, 4)
        if config.random_labels:
            labels = np.asarray(jax.random.permutation(label_key, labels))

        mean, std = float(inputs.mean()), float(inputs.std())
        if not std > 0:
            raise ValueError("inputs are constant: there is nothing to learn from them.")
        x = examples((inputs - np.float32(mean)) / np.float32(std), config)
        k = x.shape[1]
        model, head = build_network(config, int(labels.max()) + 1 if angular else 1, x.shape[2:],
                             init_key)
        history = train.fit(model, head, x.reshape(n * k, *x.shape[2:]),
                            np.repeat(labels, k).astype(np.int32) if angular else None,
                            config=config.train_config(), key=train_key,
                            checkpoint=checkpoint)
        detector = cls(config=config, model=model, head=head, mean=mean, std=std, centres={},
                       train_embeddings=np.zeros((0, 0), np.float32), train_groups=groups,
                       history=history)
        detector.train_embeddings = detector._outputs(inputs)[0]
        if angular:
            detector.centres = detector._fit_backend(groups, is_target, _kmeans_seed(kmeans_key))
        return detector

    def _fit_backend(self, groups, is_target, seed: int) -> dict:
        backend = self.config.score_backend
        if backend == "nearest-centre":
            return {g: np.asarray(self.head.centres[...]) for g in np.unique(groups).tolist()}
        if backend == "knn":
            return {}
        z, centres = self.train_embeddings, {}
        for group in np.unique(groups).tolist():
            source = (groups == group) & ~is_target
            target = (groups == group) & is_target
            centres[group] = scoring.kmeans_centres(
                z[source], n_clusters=min(self.config.n_clusters, int(source.sum())),
                seed=seed, target_embeddings=z[target] if target.any() else None)
        return centres

    def _state(self):
        graphdef, state = nnx.split((self.model, self.head))
        return graphdef, nnx.as_pure(state), jnp.float32(self.mean), jnp.float32(self.std)

    def _outputs(self, inputs, batch_size: int = 64):
        inputs = _check_inputs(inputs, "inputs", self.config)
        state = self._state()
        n, size = len(inputs), min(batch_size, len(inputs))
        # The last batch is padded to the common size: one compilation for the whole pass.
        padded = np.concatenate([inputs, np.repeat(inputs[-1:], -n % size, axis=0)])
        parts = [_clip_outputs(*state, padded[i:i + size], config=self.config)
                 for i in range(0, n, size)]
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[:n] for j in range(2))

    def embed(self, inputs, *, batch_size: int = 64) -> np.ndarray:
        """(m, ...) inputs -> (m, D) clip embeddings (stage 4 of the module docstring)."""
        return self._outputs(inputs, batch_size)[0]

    def score(self, inputs, *, groups=None, batch_size: int = 64) -> np.ndarray:
        """(m, ...) inputs -> (m,) float64 anomaly scores (higher = more anomalous); ``groups``
        (m,) names each clip's training group (default: the single training group)."""
        return self.embed_and_score(inputs, groups=groups, batch_size=batch_size)[1]

    def embed_and_score(self, inputs, *, groups=None, batch_size: int = 64
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`embed` and :meth:`score` from one pass of the network over ``inputs``."""
        z, scores = self._outputs(inputs, batch_size)
        if not self.config.spec.uses_labels:
            return z, scores.astype(np.float64)
        groups = self._test_groups(groups, len(z))
        scores = np.zeros(len(z))
        for group in np.unique(groups):
            rows = groups == group
            scores[rows] = np.asarray(self._group_score(group.item())(jnp.asarray(z[rows])))
        return z, scores

    def training_scores(self, inputs, *, batch_size: int = 64) -> np.ndarray:
        """(n,) anomaly scores of the training clips ``inputs`` (those :meth:`fit` saw, in
        its order), e.g. for a decision threshold: scored as test clips of their groups,
        except that under the "knn" back-end each clip leaves itself out of its neighbours
        (in-sample it would be its own nearest neighbour, at distance 0)."""
        if len(inputs) != len(self.train_groups):
            raise ValueError(f"inputs must be the {len(self.train_groups)} training clips, got "
                             f"{len(inputs)}.")
        if self.config.score_backend != "knn":
            return self.score(inputs, groups=self.train_groups, batch_size=batch_size)
        scores = np.zeros(len(self.train_embeddings))
        for group in np.unique(self.train_groups):
            rows = self.train_groups == group
            z = jnp.asarray(self.train_embeddings[rows])
            scores[rows] = np.asarray(scoring.knn_score(z, z, k=self.config.knn_k,
                                                        leave_one_out=True))
        return scores

    def _test_groups(self, groups, m: int) -> np.ndarray:
        trained = np.unique(self.train_groups)
        if groups is None:
            if len(trained) > 1:
                raise ValueError(f"the detector was trained on groups {trained.tolist()}: "
                                 "pass groups=, one per clip.")
            return np.full(m, trained[0])
        groups = _groups(groups, m, "groups")
        unknown = sorted(set(groups.tolist()) - set(trained.tolist()))
        if unknown:
            raise ValueError(f"groups {unknown} have no training clips (trained: "
                             f"{trained.tolist()}).")
        return groups

    def _group_score(self, group) -> Callable[[jax.Array], jax.Array]:
        config = self.config
        backend = config.score_backend
        centres = None if backend == "knn" else jnp.asarray(self.centres[group])
        neighbours = (jnp.asarray(self.train_embeddings[self.train_groups == group])
                      if backend == "knn" else None)
        subspaces = backend == "nearest-centre" and config.spec.centres == "subspaces"
        return functools.partial(_centre_backend_score, backend=backend, centres=centres,
                                 neighbours=neighbours, knn_k=config.knn_k, subspaces=subspaces)

    def score_fn(self, group=None) -> Callable[[jax.Array], jax.Array]:
        """The anomaly score of one group's clips as a jitted JAX function of the whole input,
        (B, ...) -> (B,), e.g. for ``explain.rise``; equals :meth:`score`."""
        graphdef, state, mean, std = self._state()
        config = self.config
        angular = config.spec.uses_labels
        backend = None
        if angular:
            group = self._test_groups(None if group is None else [group], 1)[0].item()
            backend = self._group_score(group)

        @jax.jit
        def fn(inputs):
            z, scores = _clip_outputs(graphdef, state, mean, std, inputs, config=config)
            return backend(z) if angular else scores

        return fn


def _check_backend_data(config: DetectorConfig, groups, is_target) -> None:
    """Back-end checks on the training split, before any training."""
    backend = config.score_backend
    small = []
    for group in np.unique(groups).tolist():
        members = groups == group
        n_source = int((members & ~is_target).sum())
        if backend == "kmeans" and n_source == 0:
            raise ValueError(f"group {group!r} has no source-domain training clips; the "
                             "k-means back-end clusters them.")
        if backend == "kmeans" and n_source < config.n_clusters:
            small.append(f"{group!r}: {n_source}")
        if backend == "knn" and members.sum() < config.knn_k:
            raise ValueError(f"knn_k={config.knn_k} exceeds the {int(members.sum())} "
                             f"training clips of group {group!r}; lower knn_k.")
    if small:
        warnings.warn(f"n_clusters={config.n_clusters} exceeds the source training clips of "
                      f"group(s) {', '.join(small)}: each of those uses one centre per clip.",
                      stacklevel=3)


def compare(train_inputs, train_labels, test_inputs, test_is_anomaly, *,
            methods: Sequence[str], seeds: Sequence[int],
            config: DetectorConfig = DetectorConfig(), train_groups=None, test_groups=None,
            train_is_target=None) -> dict[str, np.ndarray]:
    """:class:`Detector` for every method and seed on the same data and split.

    Seed s gives method m the key ``fold_in(key(s), index of m)``; each method trains with
    ``config.with_method(m)``. Metrics per group (``evaluation.group_metrics``).

    Returns:
      {"auc", "pauc", "hmean"}: (len(methods), len(seeds)) arrays, and "scores":
      (len(methods), len(seeds), m) anomaly scores of the test clips (for paired statistics).
    """
    if not methods or not seeds:
        raise ValueError("methods and seeds must be non-empty sequences.")
    for seed in seeds:
        check_scalar(seed, "seed", low=0, integer=True)
    configs = [config.with_method(method) for method in methods]
    test_inputs = _check_inputs(test_inputs, "test_inputs", config)
    test_groups = _groups(test_groups, len(test_inputs), "test_groups")
    out = {name: np.zeros((len(methods), len(seeds))) for name in ("auc", "pauc", "hmean")}
    out["scores"] = np.zeros((len(methods), len(seeds), len(test_inputs)))
    for i, method_config in enumerate(configs):
        for j, seed in enumerate(seeds):
            detector = Detector.fit(train_inputs, train_labels, config=method_config,
                                    key=jax.random.fold_in(jax.random.key(seed), i),
                                    groups=train_groups, is_target=train_is_target)
            scores = detector.score(test_inputs, groups=test_groups)
            out["scores"][i, j] = scores
            for name, value in evaluation.group_metrics(test_is_anomaly, scores,
                                                        test_groups).items():
                out[name][i, j] = value
    return out


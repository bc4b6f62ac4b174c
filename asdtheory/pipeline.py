"""The end-to-end anomalous sound detection pipeline (``asdtheory run`` calls it).

``run(PipelineConfig(...)) -> Result``: dataset split -> features -> train -> embed ->
anomaly scores -> DCASE table and official score, in one call::

    result = run(PipelineConfig(data="../shared/data", method="subcluster-adacos", seed=0))
    print(result.table)              # official-rules table + official score
    result.test_embeddings, result.test_scores, result.test_clips   # for plots

Steps (clips are read as stored, 16 kHz mono):

1. **Split**: protocol "mini" is ``data.dcase.valve_mini_protocol`` (valve only; 60 train,
   140 test clips); "full" is ``data.dcase.official_split`` of the machine.
2. **Noise** (optional): every clip, training and test, gets the named real background
   recording (``audio.load_noise``) added at ``snr`` dB, at a random offset per clip.
3. **Features**: ``audio.log_mel`` (n_fft 1024, hop 512, ``n_mels`` bands: 313 frames of
   10 s), standardised by the mean and standard deviation of all training log-mel values.
4. **Examples**: for the CNN methods, windows of ``window_frames`` consecutive frames
   starting every ``window_hop`` frames (``audio.segment`` on the frame axis; 64 / 32 gives
   8 windows of ~2 s per 10 s clip, 480 training windows in the mini protocol), each
   labelled with its clip's auxiliary class = (section, attribute) combination. For the
   autoencoder, vectors of ``context_frames`` (5) stacked consecutive frames at every frame
   (the DCASE baseline's input).
5. **Training**: ``train.fit`` of a :class:`models.CNNEmbedder` (angular methods and Deep
   SVDD; Deep SVDD with Ruff et al.'s remedies: no bias terms, ReLU, centre fixed after an
   initial forward pass) or a :class:`models.Autoencoder`.
6. **Scores** (higher = more anomalous):

   * angular methods -- clip embedding = mean of the normalised window embeddings; back-end
     "kmeans" (default): cosine distance to the nearest of ``n_clusters`` k-means centres of
     the source-domain training clips plus every target-domain training clip
     (``scoring.kmeans_centres``, Wilkinghoff's DCASE systems), fitted per section;
     "nearest-centre": to the nearest class (sub-)centre of the head; "knn": mean cosine
     distance to the ``knn_k`` nearest training clips;
   * deep-svdd -- "distance": mean over the clip's windows of ||phi(x) - c||^2;
   * autoencoder -- "reconstruction": mean squared reconstruction error over the clip's
     vectors (``scoring.reconstruction_error``).

7. **Evaluation**: ``evaluation.dcase_table`` (official DCASE 2023 rules) and
   ``evaluation.official_score``.

The data are DCASE 2023 Task 2 recordings (MIMII DG; CC BY 4.0): see the data README for
the attribution that must accompany any use.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import audio, evaluation, losses, models, scoring, train
from asdtheory._validation import check_scalar
from asdtheory.data import dcase
from asdtheory.geometry import l2_normalize

__all__ = ["BACKENDS", "PROTOCOLS", "PipelineConfig", "Result", "run"]

PROTOCOLS = {"mini": ("valve",), "full": dcase.DEV_MACHINES_2023}
# Back-ends per method; the first is the default.
BACKENDS = {
    **{m: ("kmeans", "nearest-centre", "knn") for m in models.ANGULAR_METHODS},
    "deep-svdd": ("distance",),
    "autoencoder": ("reconstruction",),
}
SUBCLUSTER_METHODS = ("subcluster-adacos", "adaproj")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a :func:`run` depends on; validated on construction.

    Attributes:
      data: dataset root holding ``dcase2023t2/`` and ``noise/`` (None: ``dcase.data_root``);
        the ``dcase2023t2`` folder itself is accepted too.
      machine: DCASE 2023 development machine type.
      protocol: "mini" (valve only, ci mode) or "full" (official train/test split).
      method: one of ``models.METHODS``.
      noise, snr: name of a recording in ``<data>/noise`` and the SNR in dB (both or neither).
      seed: seeds model initialisation, training, noise offsets and k-means.
      n_mels, window_frames, window_hop, context_frames: features (see the module docstring).
      embed_dim, channels: CNN embedding size and channels per residual stage.
      num_subclusters: sub-centres per class (subcluster-adacos) / subspace dimension
        (adaproj); unused by the other methods.
      scale_variant: sub-cluster AdaCos scale update, "faithful" (the paper's formula) or
        "code" (the author's public implementation); see ``asdtheory.losses.adacos``.
      epochs, batch_size, learning_rate, weight_decay, mixup_alpha: training
        (``train.TrainConfig``);
        batch_size None means 32 windows for the CNN methods and 256 stacked-frame vectors
        for the autoencoder (which has ~40 times more, smaller examples per clip).
      backend: anomaly-score back-end (``BACKENDS[method]``; None: the method's default).
      n_clusters, knn_k: parameters of the "kmeans" and "knn" back-ends.
      progress: tqdm progress bar during training.
    """

    data: str | Path | None = None
    machine: str = "valve"
    protocol: str = "mini"
    method: str = "subcluster-adacos"
    noise: str | None = None
    snr: float | None = None
    seed: int = 0
    n_mels: int = 64
    window_frames: int = 64
    window_hop: int = 32
    context_frames: int = 5
    embed_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 64)
    num_subclusters: int = 4
    scale_variant: str = "faithful"
    epochs: int = 20
    batch_size: int | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    mixup_alpha: float = 0.0
    backend: str | None = None
    n_clusters: int = 16
    knn_k: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got "
                             f"{self.protocol!r}.")
        if self.machine not in PROTOCOLS[self.protocol]:
            raise ValueError(f"protocol {self.protocol!r} is not available for machine "
                             f"{self.machine!r}; it covers {', '.join(PROTOCOLS[self.protocol])}"
                             + (" (use protocol='full' for the other machines)."
                                if self.protocol == "mini" else "."))
        if self.method not in models.METHODS:
            raise ValueError(f"method must be one of {models.METHODS}, got {self.method!r}.")
        if (self.noise is None) != (self.snr is None):
            raise ValueError("noise and snr go together: pass both (a recording name and an "
                             "SNR in dB) or neither.")
        if self.snr is not None:
            check_scalar(self.snr, "snr")
        if self.scale_variant not in ("faithful", "code"):
            raise ValueError(f"scale_variant must be 'faithful' or 'code', got "
                             f"{self.scale_variant!r}.")
        if self.backend is not None and self.backend not in BACKENDS[self.method]:
            raise ValueError(f"backend {self.backend!r} does not apply to {self.method}; "
                             f"choose one of {BACKENDS[self.method]}.")
        for name in ("n_mels", "window_frames", "window_hop", "context_frames", "embed_dim",
                     "num_subclusters", "n_clusters", "knn_k"):
            check_scalar(getattr(self, name), name, low=1, integer=True)
        check_scalar(self.seed, "seed", low=0, integer=True)
        self.train_config()  # validates epochs, batch_size, learning_rate, mixup_alpha

    @property
    def score_backend(self) -> str:
        return self.backend or BACKENDS[self.method][0]

    def train_config(self) -> train.TrainConfig:
        batch_size = self.batch_size or (256 if self.method == "autoencoder" else 32)
        return train.TrainConfig(epochs=self.epochs, batch_size=batch_size,
                                 learning_rate=self.learning_rate,
                                 weight_decay=self.weight_decay, mixup_alpha=self.mixup_alpha,
                                 progress=self.progress)


@dataclasses.dataclass
class Result:
    """What :func:`run` returns.

    Attributes:
      config: the configuration.
      rows: ``evaluation.SectionScores`` per (machine, section), official 2023 rules.
      official_score: harmonic mean of all AUC_source, AUC_target, pAUC values.
      table: ``evaluation.format_table(rows)``.
      history: training ``train.History`` (per-epoch loss).
      test_clips: ``dcase.ClipInfo`` of the test clips, in the order of the arrays below.
      test_scores: (n,) anomaly scores.
      test_embeddings: (n, D) clip embeddings (mean window embedding; the bottleneck code
        for the autoencoder).
      train_clips, train_embeddings: the same for the training clips.
      model, head: the trained network and loss head.
    """

    config: PipelineConfig
    rows: list
    official_score: float
    table: str
    history: train.History
    test_clips: list
    test_scores: np.ndarray
    test_embeddings: np.ndarray
    train_clips: list
    train_embeddings: np.ndarray
    model: nnx.Module
    head: nnx.Module

    def to_json(self) -> dict:
        """JSON-serialisable summary: config, official score, table rows, per-clip scores."""
        config = {k: (str(v) if isinstance(v, Path) else v)
                  for k, v in dataclasses.asdict(self.config).items()}
        return {
            "config": config,
            "official_score": self.official_score,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "loss": self.history.get("loss", []),
            "clips": [{"file": c.path.name, "domain": c.domain, "label": c.label,
                       "score": float(s)} for c, s in zip(self.test_clips, self.test_scores,
                                                          strict=True)],
        }


def _data_root(config: PipelineConfig) -> Path | None:
    """The dataset root; a path to the ``dcase2023t2`` folder itself means its parent."""
    if config.data is None:
        return None
    root = Path(config.data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {config.data} does not exist; pass the folder "
                                "holding dcase2023t2/ (e.g. ../shared/data).")
    if root.name == "dcase2023t2" and not (root / "dcase2023t2").exists():
        return root.parent
    return root


def _split(config: PipelineConfig, root: Path | None) -> dcase.Split:
    if config.protocol == "mini":
        return dcase.valve_mini_protocol(root)
    return dcase.official_split(root, config.machine)


@functools.partial(jax.jit, static_argnames="n_mels")
def _log_mel_frames(waveforms: jax.Array, *, n_mels: int) -> jax.Array:
    return jnp.swapaxes(audio.log_mel(waveforms, n_mels=n_mels), -1, -2)


def _log_mels(waveforms: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """(n, T) -> (n, frames, n_mels) log-mel spectrograms, computed in chunks of 16 clips
    (the last chunk padded, so that one compiled program serves every run)."""
    chunks = []
    for start in range(0, len(waveforms), 16):
        chunk = waveforms[start:start + 16]
        padded = np.concatenate([chunk, np.zeros((16 - len(chunk), *chunk.shape[1:]),
                                                 chunk.dtype)])
        chunks.append(np.asarray(_log_mel_frames(padded, n_mels=config.n_mels))[:len(chunk)])
    return np.concatenate(chunks)


def _features(clips: Sequence[dcase.ClipInfo], n_train: int, config: PipelineConfig,
              key: jax.Array, noise: np.ndarray | None) -> np.ndarray:
    waves = np.stack([audio.load(c.path) for c in clips])
    if noise is not None:
        waves = np.asarray(audio.mix_at_snr(waves, noise, config.snr, key=key))
    mels = _log_mels(waves, config)
    mean, std = mels[:n_train].mean(), mels[:n_train].std()
    return (mels - mean) / std


def _examples(mels: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """(n, frames, mels) -> (n, k, ...) examples per clip: CNN windows (k, window_frames,
    mels), or autoencoder vectors (k, context_frames * mels) of stacked frames."""
    stacked = config.method == "autoencoder"
    size, hop = (config.context_frames, 1) if stacked else (config.window_frames,
                                                           config.window_hop)
    # segment cuts the last axis: (n, mels, frames) -> (n, mels, k, size) -> (n, k, size, mels)
    windows = np.transpose(audio.segment(np.swapaxes(mels, 1, 2), window=size, hop=hop),
                           (0, 2, 3, 1))
    return windows.reshape(*windows.shape[:2], -1) if stacked else windows


def _build(config: PipelineConfig, num_classes: int, example_shape: tuple[int, ...],
           key: jax.Array) -> tuple[nnx.Module, nnx.Module]:
    rngs = nnx.Rngs(key)
    if config.method == "autoencoder":
        return models.Autoencoder(example_shape[-1], rngs=rngs), models.ReconstructionHead()
    model = models.CNNEmbedder(config.n_mels, config.embed_dim, channels=config.channels,
                               use_bias=config.method != "deep-svdd", rngs=rngs)
    extra = ({"num_subclusters": config.num_subclusters}
             if config.method in SUBCLUSTER_METHODS else {})
    if config.method == "subcluster-adacos":
        extra["variant"] = config.scale_variant
    head = models.make_head(config.method, embed_dim=config.embed_dim,
                            num_classes=num_classes, rngs=rngs, **extra)
    return model, head


def _clip_outputs(model, head, examples: np.ndarray, config: PipelineConfig):
    """Per-clip embeddings (n, D) and, for Deep SVDD and the autoencoder, scores (n,)."""
    n, k = examples.shape[:2]
    flat = examples.reshape(n * k, *examples.shape[2:])
    z = train.embed(model, flat)
    if config.method == "autoencoder":
        errors = scoring.reconstruction_error(flat, train.reconstruct(model, flat))
        return z.reshape(n, k, -1).mean(axis=1), errors.reshape(n, k).mean(axis=1)
    if config.method == "deep-svdd":
        distances = np.asarray(head(jnp.asarray(z)))
        return z.reshape(n, k, -1).mean(axis=1), distances.reshape(n, k).mean(axis=1)
    return np.asarray(l2_normalize(jnp.asarray(z))).reshape(n, k, -1).mean(axis=1), None


def _angular_scores(config, head, train_clips, train_z, test_clips, test_z) -> np.ndarray:
    backend = config.score_backend
    if backend == "nearest-centre":
        if config.method == "adaproj":
            cos = losses.subspace_cosines(test_z, head.centres[...])
            return np.asarray(1.0 - jnp.max(cos, axis=-1))
        return scoring.nearest_centre_score(test_z, head.centres[...])
    scores = np.zeros(len(test_clips))
    for section in sorted({c.section for c in test_clips}):
        in_train = np.array([c.section == section for c in train_clips])
        in_test = np.array([c.section == section for c in test_clips])
        if backend == "knn":
            scores[in_test] = scoring.knn_score(train_z[in_train], test_z[in_test],
                                                k=config.knn_k)
            continue
        source = np.array([c.domain == "source" for c in train_clips]) & in_train
        target = np.array([c.domain == "target" for c in train_clips]) & in_train
        centres = scoring.kmeans_centres(train_z[source], n_clusters=config.n_clusters,
                                         seed=config.seed,
                                         target_embeddings=train_z[target] if target.any()
                                         else None)
        scores[in_test] = scoring.nearest_centre_score(test_z[in_test], centres)
    return scores


def _check_split(split: dcase.Split, config: PipelineConfig) -> None:
    """Data-dependent checks that must fail before any training."""
    train_sections = {c.section for c in split.train}
    missing = sorted({c.section for c in split.test} - train_sections)
    if missing:
        raise ValueError(f"test sections {missing} have no training clips in {split.name}.")
    for section in sorted(train_sections):
        members = [c for c in split.train if c.section == section]
        n_source = sum(c.domain == "source" for c in members)
        if config.score_backend == "kmeans" and n_source < config.n_clusters:
            raise ValueError(f"n_clusters={config.n_clusters} exceeds the {n_source} source "
                             f"training clips of section {section:02d}; lower n_clusters.")
        if config.score_backend == "knn" and len(members) < config.knn_k:
            raise ValueError(f"knn_k={config.knn_k} exceeds the {len(members)} training clips "
                             f"of section {section:02d}.")


def run(config: PipelineConfig) -> Result:
    """Runs the pipeline of the module docstring for one configuration.

    Raises FileNotFoundError (missing data root, clips or noise recording) and ValueError
    (protocol, back-end or split problems) before any feature extraction or training.
    """
    root = _data_root(config)
    split = _split(config, root)
    _check_split(split, config)
    noise = None if config.noise is None else audio.load_noise(config.noise, root)
    noise_key, init_key, train_key = jax.random.split(jax.random.key(config.seed), 3)

    clips = split.train + split.test
    n_train = len(split.train)
    examples = _examples(_features(clips, n_train, config, noise_key, noise), config)
    classes = sorted({(c.section, c.attribute_key) for c in split.train})
    clip_labels = np.array([classes.index((c.section, c.attribute_key)) for c in split.train])
    k = examples.shape[1]
    train_x = examples[:n_train].reshape(n_train * k, *examples.shape[2:])
    train_y = np.repeat(clip_labels, k).astype(np.int32)

    model, head = _build(config, len(classes), examples.shape[2:], init_key)
    labels = train_y if config.method in models.ANGULAR_METHODS else None
    history = train.fit(model, head, train_x, labels, config=config.train_config(),
                        key=train_key)

    train_z, _ = _clip_outputs(model, head, examples[:n_train], config)
    test_z, test_scores = _clip_outputs(model, head, examples[n_train:], config)
    if test_scores is None:
        test_scores = _angular_scores(config, head, split.train, train_z, split.test, test_z)
    rows = evaluation.dcase_table(
        machine=[c.machine for c in split.test], section=[c.section for c in split.test],
        domain=[c.domain for c in split.test], is_anomaly=[c.is_anomaly for c in split.test],
        scores=test_scores)
    return Result(config=config, rows=rows, official_score=evaluation.official_score(rows),
                  table=evaluation.format_table(rows), history=history, test_clips=split.test,
                  test_scores=test_scores, test_embeddings=test_z, train_clips=split.train,
                  train_embeddings=train_z, model=model, head=head)

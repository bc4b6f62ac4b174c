"""Multi-method, multi-seed, multi-condition detection experiments on in-memory clips.

:func:`detect` runs one anomalous sound detection system on in-memory clips -- log-mel
features (:func:`log_mels`) -> examples -> ``train.fit`` -> embeddings -> anomaly scores --
with the stages of ``asdtheory.pipeline`` (which reads DCASE folders), so that synthetic
clips (``data.synthetic.machine_sounds``) go through the methods real recordings go through.
:func:`group_metrics` turns scores into AUC, pAUC and their harmonic mean, :func:`compare`
runs a (method x seed) grid on one data set, :func:`margin_over_rivals` is the decision
statistic of the notebooks' "method A is best" tests and :func:`plot_vs_condition` draws a
metric against the conditions with the spread over seeds::

    runs = [compare(*data(snr), methods=METHODS, seeds=(0, 1, 2))  # data: log-mels, labels
            for snr in (None, 10, 5, 0, -5, -10)]                   # SNR in dB, None = clean
    hmean = np.stack([r["hmean"] for r in runs], axis=1)   # (methods, conditions, seeds)
    margin, spread = margin_over_rivals(hmean, best=METHODS.index("subcluster-adacos"))

Methods: the names of ``models.METHODS`` plus :data:`RANDOM_LABELS` ("<method>+random-labels"),
the angular method trained on a meaningless auxiliary task: the clip labels are permuted at
random (same class sizes, no relation to the sound).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import audio, evaluation, models, scoring, train
from asdtheory._validation import check_scalar
from asdtheory.geometry import l2_normalize

__all__ = [
    "RANDOM_LABELS",
    "DetectConfig",
    "compare",
    "detect",
    "group_metrics",
    "harmonic_mean",
    "log_mels",
    "margin_over_rivals",
    "plot_vs_condition",
]

RANDOM_LABELS = "+random-labels"
_SUBCLUSTER = ("subcluster-adacos", "adaproj")


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """Hyper-parameters of :func:`detect` (the meaning of each is that of
    ``pipeline.PipelineConfig``; defaults are smaller, for clips of about a second).

    Attributes:
      method: a name of ``models.METHODS``, or an angular one + :data:`RANDOM_LABELS`.
      window_frames, window_hop, context_frames: examples cut from the log-mel features
        (:func:`log_mels`), which are standardised by the mean and standard deviation of all
        training values.
      embed_dim, channels: CNN embedder.
      num_subclusters: sub-centres per class of sub-cluster AdaCos / AdaProj.
      n_clusters: k-means centres per group for the angular methods' scores.
      epochs, batch_size, learning_rate: training (``train.TrainConfig``).
      autoencoder_batch_size: batch size of the autoencoder, which sees one example per
        frame instead of one per window (the DCASE 2020-2023 baselines used 512).
    """

    method: str = "subcluster-adacos"
    window_frames: int = 32
    window_hop: int = 16
    context_frames: int = 5
    embed_dim: int = 32
    channels: tuple[int, ...] = (8, 16, 32)
    num_subclusters: int = 4
    n_clusters: int = 4
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    autoencoder_batch_size: int = 256

    def __post_init__(self):
        base = self.base_method
        if base not in models.METHODS or (self.random_labels
                                          and base not in models.ANGULAR_METHODS):
            raise ValueError(
                f"method must be one of {models.METHODS} or an angular method + "
                f"'{RANDOM_LABELS}' (e.g. 'subcluster-adacos{RANDOM_LABELS}'), got "
                f"{self.method!r}.")
        for name in ("window_frames", "window_hop", "context_frames",
                     "embed_dim", "num_subclusters", "n_clusters"):
            check_scalar(getattr(self, name), name, low=1, integer=True)
        self.train_config()

    @property
    def random_labels(self) -> bool:
        return self.method.endswith(RANDOM_LABELS)

    @property
    def base_method(self) -> str:
        return self.method.removesuffix(RANDOM_LABELS)

    def train_config(self) -> train.TrainConfig:
        batch_size = (self.autoencoder_batch_size if self.base_method == "autoencoder"
                      else self.batch_size)
        return train.TrainConfig(epochs=self.epochs, batch_size=batch_size,
                                 learning_rate=self.learning_rate, progress=False)


@functools.cache
def _log_mel_fn(sample_rate: int, n_mels: int):
    return jax.jit(lambda x: jnp.swapaxes(
        audio.log_mel(x, sample_rate=sample_rate, n_mels=n_mels), -1, -2))


def log_mels(waveforms, *, sample_rate: int = 16000, n_mels: int = 32,
             chunk_size: int = 64) -> np.ndarray:
    """(n, T) waveforms -> (n, frames, n_mels) log-mel spectrograms in dB
    (``audio.log_mel``: n_fft 1024, hop 512), computed in chunks of ``chunk_size`` clips.

    Compute them once per data set and pass them to :func:`detect` / :func:`compare`.
    """
    waveforms = np.asarray(waveforms, np.float32)
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (clips, samples), got shape {waveforms.shape}.")
    check_scalar(chunk_size, "chunk_size", low=1, integer=True)
    fn = _log_mel_fn(int(sample_rate), int(n_mels))
    return np.concatenate([np.asarray(fn(waveforms[i:i + chunk_size]))
                           for i in range(0, len(waveforms), chunk_size)])


def _examples(mels: np.ndarray, config: DetectConfig) -> np.ndarray:
    """(n, frames, mels) -> (n, k, window_frames, mels) CNN windows, or for the autoencoder
    (n, k, context_frames * mels) vectors of stacked frames at every frame."""
    stacked = config.base_method == "autoencoder"
    size, hop = (config.context_frames, 1) if stacked else (config.window_frames,
                                                           config.window_hop)
    windows = np.transpose(audio.segment(np.swapaxes(mels, 1, 2), window=size, hop=hop),
                           (0, 2, 3, 1))
    return windows.reshape(*windows.shape[:2], -1) if stacked else windows


def _build(config: DetectConfig, num_classes: int, example_shape, key):
    n_mels = example_shape[-1]
    rngs = nnx.Rngs(key)
    method = config.base_method
    if method == "autoencoder":
        return models.Autoencoder(example_shape[-1], rngs=rngs), models.ReconstructionHead()
    model = models.CNNEmbedder(n_mels, config.embed_dim, channels=config.channels,
                               use_bias=method != "deep-svdd", rngs=rngs)
    extra = {"num_subclusters": config.num_subclusters} if method in _SUBCLUSTER else {}
    head = models.make_head(method, embed_dim=config.embed_dim, num_classes=num_classes,
                            rngs=rngs, **extra)
    return model, head


def _check_groups(groups, n: int, name: str) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"{name} must hold one group id per clip, shape ({n},); got shape "
                         f"{groups.shape}.")
    return groups


def detect(train_mels, train_labels, train_groups, test_mels, test_groups, *,
           config: DetectConfig, key: jax.Array) -> np.ndarray:
    """Trains one system on normal clips and returns anomaly scores of the test clips.

    Stages (as in ``asdtheory.pipeline``): log-mel features (:func:`log_mels`) standardised
    by the mean and standard deviation of all training values; CNN windows labelled with
    their clip's auxiliary class (or stacked-frame vectors for the autoencoder);
    ``train.fit``; scores, higher = more anomalous:

    * angular methods: clip embedding e = mean of the unit-normalised window embeddings;
      score = 1 - max_k cos(e, c_k) over ``n_clusters`` k-means centres of the training clip
      embeddings of the test clip's group (``scoring.kmeans_centres``);
    * deep-svdd: mean over the clip's windows of ||phi(x) - c||^2;
    * autoencoder: mean squared reconstruction error over the clip's vectors.

    Args:
      train_mels: (n, frames, n_mels) log-mel spectrograms of the normal training clips.
      train_labels: (n,) integer auxiliary classes 0..N-1 (ignored by deep-svdd and the
        autoencoder; permuted at random for a ``+random-labels`` method).
      train_groups, test_groups: (n,) / (m,) group ids (machine or section): the k-means
        centres of the angular scores are fitted per group.
      test_mels: (m, frames, n_mels) those of the test clips.
      config: :class:`DetectConfig`.
      key: PRNG key for initialisation, training and the label permutation.

    Returns:
      (m,) float64 anomaly scores.
    """
    train_mels = np.asarray(train_mels, np.float32)
    test_mels = np.asarray(test_mels, np.float32)
    if train_mels.ndim != 3 or train_mels.shape[1:] != test_mels.shape[1:]:
        raise ValueError(f"train_mels and test_mels must be (clips, frames, n_mels) with the "
                         f"same frames and n_mels, got shapes {train_mels.shape} and "
                         f"{test_mels.shape}.")
    n = train_mels.shape[0]
    labels = np.asarray(train_labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"train_labels must be ({n},) non-negative integer classes, one per "
                         f"training clip; got shape {labels.shape}, dtype {labels.dtype}.")
    train_groups = _check_groups(train_groups, n, "train_groups")
    test_groups = _check_groups(test_groups, test_mels.shape[0], "test_groups")
    missing = sorted(set(test_groups.tolist()) - set(train_groups.tolist()))
    if missing:
        raise ValueError(f"test_groups {missing} have no training clips.")
    init_key, train_key, label_key = jax.random.split(key, 3)
    if config.random_labels:
        labels = np.asarray(jax.random.permutation(label_key, labels))

    mels = np.concatenate([train_mels, test_mels])
    mels = (mels - train_mels.mean()) / train_mels.std()
    examples = _examples(mels, config)
    k = examples.shape[1]
    method = config.base_method
    model, head = _build(config, int(labels.max()) + 1, examples.shape[2:], init_key)
    train.fit(model, head, examples[:n].reshape(n * k, *examples.shape[2:]),
              np.repeat(labels, k).astype(np.int32) if method in models.ANGULAR_METHODS
              else None, config=config.train_config(), key=train_key)

    flat = examples.reshape(-1, *examples.shape[2:])
    z = train.embed(model, flat)
    if method == "autoencoder":
        errors = scoring.reconstruction_error(flat, train.reconstruct(model, flat))
        return errors.reshape(-1, k).mean(axis=1)[n:].astype(np.float64)
    if method == "deep-svdd":
        return np.asarray(head(jnp.asarray(z))).reshape(-1, k).mean(axis=1)[n:].astype(
            np.float64)
    clip_z = np.asarray(l2_normalize(jnp.asarray(z))).reshape(-1, k, z.shape[-1]).mean(axis=1)
    train_z, test_z = clip_z[:n], clip_z[n:]
    scores = np.zeros(test_z.shape[0])
    for group in np.unique(test_groups):
        centres = scoring.kmeans_centres(train_z[train_groups == group],
                                         n_clusters=config.n_clusters, seed=0)
        scores[test_groups == group] = scoring.nearest_centre_score(
            test_z[test_groups == group], centres)
    return scores


def harmonic_mean(a, b):
    """2 a b / (a + b), elementwise (the DCASE way of combining AUC and pAUC)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 2.0 * a * b / (a + b)


def group_metrics(is_anomaly, scores, groups, *, max_fpr: float = 0.1) -> dict[str, float]:
    """AUC and pAUC (``evaluation.auc`` / ``evaluation.pauc``, McClish-standardised) within
    each group, averaged arithmetically over the groups, and hmean = their harmonic mean.

    Scoring each group separately (like DCASE sections) keeps a method from being judged
    on how its score scales compare across machines.
    """
    is_anomaly = np.asarray(is_anomaly)
    scores = np.asarray(scores, np.float64)
    groups = _check_groups(groups, scores.shape[0], "groups")
    if is_anomaly.shape != scores.shape:
        raise ValueError(f"is_anomaly must have the shape of scores {scores.shape}, got "
                         f"{is_anomaly.shape}.")
    per_group = [(evaluation.auc(is_anomaly[groups == g], scores[groups == g]),
                  evaluation.pauc(is_anomaly[groups == g], scores[groups == g],
                                  max_fpr=max_fpr))
                 for g in np.unique(groups)]
    auc, pauc = np.mean(per_group, axis=0)
    return {"auc": float(auc), "pauc": float(pauc), "hmean": float(harmonic_mean(auc, pauc))}


def compare(train_mels, train_labels, train_groups, test_mels, test_groups,
            test_is_anomaly, *, methods: Sequence[str], seeds: Sequence[int],
            config: DetectConfig = DetectConfig()) -> dict[str, np.ndarray]:
    """:func:`detect` for every method and seed on the same data and split.

    Seed s gives method m the key ``fold_in(key(s), index of m)``; ``config.method`` is
    replaced by each entry of ``methods``.

    Returns:
      {"auc", "pauc", "hmean"}: (len(methods), len(seeds)) arrays of :func:`group_metrics`.
    """
    if not methods or not seeds:
        raise ValueError("methods and seeds must be non-empty sequences.")
    out = {name: np.zeros((len(methods), len(seeds))) for name in ("auc", "pauc", "hmean")}
    for i, method in enumerate(methods):
        method_config = dataclasses.replace(config, method=method)
        for j, seed in enumerate(seeds):
            check_scalar(seed, "seed", low=0, integer=True)
            scores = detect(train_mels, train_labels, train_groups, test_mels,
                            test_groups, config=method_config,
                            key=jax.random.fold_in(jax.random.key(seed), i))
            for name, value in group_metrics(test_is_anomaly, scores, test_groups).items():
                out[name][i, j] = value
    return out


def margin_over_rivals(values, *, best: int) -> tuple[np.ndarray, np.ndarray]:
    """How far method ``best`` is ahead of its strongest rival, per condition.

    With values[m, c, s] (method, condition, seed) and means mu[m, c] over seeds:
    margin[c] = mu[best, c] - max_{m != best} mu[m, c], and spread[c] = the larger of the
    sample standard deviations over seeds (ddof = 1) of ``best`` and of that rival r(c).
    "best by more than the seed spread" at condition c means margin[c] > spread[c].

    Returns:
      margin (C,), spread (C,).
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 3 or values.shape[0] < 2 or values.shape[2] < 2:
        raise ValueError(f"values must be (methods >= 2, conditions, seeds >= 2), got shape "
                         f"{values.shape}.")
    if isinstance(best, bool) or not 0 <= int(best) < values.shape[0]:
        raise ValueError(f"best must index a method in 0..{values.shape[0] - 1}, got {best!r}.")
    mean, std = values.mean(axis=2), values.std(axis=2, ddof=1)
    rivals = np.delete(np.arange(values.shape[0]), best)
    rival = rivals[np.argmax(mean[rivals], axis=0)]
    cols = np.arange(values.shape[1])
    margin = mean[best] - mean[rival, cols]
    spread = np.maximum(std[best], std[rival, cols])
    return margin, spread


def plot_vs_condition(ax, values, *, conditions: Sequence[str], methods: Sequence[str],
                      ylabel: str):
    """Mean over seeds (line) and the minimum-maximum range over seeds (band) of
    values[m, c, s] for each method m against the conditions c, on a matplotlib Axes."""
    values = np.asarray(values, np.float64)
    if values.shape[:2] != (len(methods), len(conditions)):
        raise ValueError(f"values must be (methods, conditions, seeds) = ({len(methods)}, "
                         f"{len(conditions)}, S), got shape {values.shape}.")
    x = np.arange(len(conditions))
    for name, v in zip(methods, values, strict=True):
        (line,) = ax.plot(x, v.mean(axis=-1), marker="o", label=name)
        ax.fill_between(x, v.min(axis=-1), v.max(axis=-1), color=line.get_color(), alpha=0.2)
    ax.set_xticks(x, list(conditions))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax

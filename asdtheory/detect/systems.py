"""The registry of named systems: a network, its front-end, its training and its back-end,
each defined once; every caller (``asdtheory run``, the experiments, the notebooks) looks
them up here::

    >>> from asdtheory.detect import systems
    >>> config = systems.get("reference").config("deep-svdd", width=0.5)
    >>> config.embed_dim, config.mixup_alpha, config.embedder.name
    (128, 0.0, 'two-branch')

A system's detector is trained with any method of ``asdtheory.methods``; the method changes
only what it must (``DetectorConfig.with_method``): a method without soft labels trains
without mixup, and the reconstruction method is the DCASE 2023 baseline autoencoder with
that baseline's own front-end and training.
"""

from __future__ import annotations

import dataclasses

from asdtheory._registry import lookup
from asdtheory._validation import check_scalar
from asdtheory.detect import DetectorConfig, embedders

__all__ = ["DEFAULT", "SYSTEMS", "System", "get", "names"]

@dataclasses.dataclass(frozen=True)
class System:
    """A named system.

    Attributes:
      name: the registry name (``--system`` on the command line).
      summary: one line for help texts.
      detector: its :class:`~asdtheory.detect.DetectorConfig` with its own method.
      small_data_batch_size: the batch used with the valve mini protocol (60 training
        clips), where the system's own batch would exceed the training set.
      small_data_epochs: the epochs of the mini protocol: a budget at which the training
        loss has settled there (``train.settling``), where the system's own epochs, meant for
        thousands of clips, are a few dozen steps.
    """

    name: str
    summary: str
    detector: DetectorConfig
    small_data_batch_size: int | None = None
    small_data_epochs: int | None = None

    def config(self, method: str | None = None, *, width: float = 1.0,
               small_data: bool = False) -> DetectorConfig:
        """The detector configuration of this system trained with ``method`` (default: the
        system's own), its network ``width`` times as wide (channels, hidden units and the
        embedding dimension scaled and rounded; ``width=0.5`` is the CPU-sized network), with
        ``small_data`` the batch of :attr:`small_data_batch_size` and the epochs of
        :attr:`small_data_epochs` (not for the reconstruction method, whose examples are the
        frames: thousands even in the mini protocol)."""
        check_scalar(width, "width", low=0.0)
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}.")
        config = self.detector.with_method(method or self.detector.method)
        if width != 1.0:
            two_branch = isinstance(config.embedder, embedders.TwoBranch)
            multiple = 2 if two_branch else 1  # the two branches split the embedding evenly
            config = dataclasses.replace(
                config, embedder=config.embedder.scaled(width),
                embed_dim=max(multiple, multiple * round(config.embed_dim * width / multiple)))
        if small_data and not config.reconstructs:
            small = {"batch_size": self.small_data_batch_size, "epochs": self.small_data_epochs}
            config = dataclasses.replace(config, **{name: value for name, value in small.items()
                                                    if value is not None})
        return config


SYSTEMS: dict[str, System] = {s.name: s for s in (
    # Our re-implementation of K. Wilkinghoff's public DCASE 2022/2023 system (e.g.
    # github.com/wilkinghoff/icassp2023): models.TwoBranchEmbedder on raw 10-s waveforms (two
    # 128-d branch embeddings), sub-cluster AdaCos with 16 fixed random sub-centres per class,
    # mixup on waveforms (soft labels), Adam with batch 64 for 10 epochs, L2 penalty on the
    # weights, k-means back-end with 16 means per section. Keras' l2(1e-5) adds 1e-5 ||w||^2
    # to the loss, whose gradient 2e-5 w is weight_decay=2e-5 here (train.TrainConfig).
    # Deviations: the penalty also covers the batch norms' scales and offsets (the author:
    # kernels only); the waveforms are standardised by the training mean and standard
    # deviation (a global scale, which the network's first linear layers and batch norms
    # absorb); one model per seed (the author averages an ensemble of 5; average scores of
    # several seeds for that).
    # Mini protocol (60 clips, batch 32: 2 steps per epoch): 60 epochs. Measured on seed 0
    # over 150 epochs: the loss falls from 1.36 to a plateau of ~0.66 from epoch ~50 on, and
    # train.settling is below train.SETTLED_BELOW for every budget of 52 epochs or more
    # (0.023 at 60); the system's own 10 epochs are 20 steps, far from settled.
    System("reference", "K. Wilkinghoff's two-branch network on raw waveforms, sub-cluster "
           "AdaCos, k-means back-end (the paper's systems)",
           DetectorConfig(method="subcluster-adacos", embedder=embedders.TwoBranch(),
                          embed_dim=256, num_subclusters=16, n_clusters=16, epochs=10,
                          batch_size=64, learning_rate=1e-3, weight_decay=2e-5,
                          mixup_alpha=1.0),
           small_data_batch_size=32, small_data_epochs=60),
    # A residual CNN on ~2-s log-mel windows (8 windows of 64 frames every 32 frames per 10-s
    # clip), 16 k-means centres per section: small and fast, far below the reference.
    System("logmel-cnn", "a small residual CNN on log-mel windows (fast, weak)",
           DetectorConfig(embedder=embedders.CNN(channels=(16, 32, 64)), window_frames=64,
                          window_hop=32, embed_dim=64, n_clusters=16, epochs=20)),
)}
DEFAULT = "reference"


def names() -> tuple[str, ...]:
    return tuple(SYSTEMS)


def get(name: str) -> System:
    """The :class:`System` called ``name``; unknown names raise with the known ones."""
    return lookup(SYSTEMS, name, "system")

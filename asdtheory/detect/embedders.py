"""The detector's embedding networks as configurations: each owns its settings, its input and
how its examples are cut; ``DetectorConfig.embedder`` holds one of them.

======================  ============================  =====================================
embedder                input of a clip               examples (stage 2 of ``detect``)
======================  ============================  =====================================
:class:`CNN`            (frames, F) log-mel           windows as (frames, F) images
:class:`MLP`            (frames, F) log-mel/features  windows flattened to vectors
:class:`TwoBranch`      (T,) raw waveform             the whole clip
======================  ============================  =====================================

The reconstruction method (the DCASE baseline autoencoder) brings its own network,
``models.Autoencoder`` on stacked frames, whatever the embedder says.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from flax import nnx

from asdtheory import models
from asdtheory._validation import check_scalar

__all__ = ["CNN", "EMBEDDERS", "MLP", "TwoBranch"]


def _widths(values, name: str) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must name at least one width.")
    for value in values:
        check_scalar(value, name, low=1, integer=True)
    return values


def _scaled(n: int, width: float, multiple: int = 1) -> int:
    return max(multiple, multiple * round(n * width / multiple))


@dataclasses.dataclass(frozen=True)
class CNN:
    """``models.CNNEmbedder``: a small residual CNN on log-mel windows.

    Attributes:
      channels: channels of each residual stage.
    """

    name: ClassVar[str] = "cnn"
    input_kind: ClassVar[str] = "log-mel"
    flatten: ClassVar[bool] = False
    channels: tuple[int, ...] = (8, 16, 32)

    def __post_init__(self):
        object.__setattr__(self, "channels", _widths(self.channels, "channels"))

    def check_embed_dim(self, embed_dim: int) -> None:
        del embed_dim

    def build(self, example_shape, embed_dim: int, *, bias: bool, rngs: nnx.Rngs):
        return models.CNNEmbedder(example_shape[-1], embed_dim, channels=self.channels,
                                  use_bias=bias, rngs=rngs)

    def scaled(self, width: float) -> CNN:
        return CNN(channels=tuple(_scaled(c, width) for c in self.channels))


@dataclasses.dataclass(frozen=True)
class MLP:
    """``models.MLPEmbedder`` on flattened windows (feature vectors: windows of one frame).

    Attributes:
      hidden: widths of the hidden layers.
    """

    name: ClassVar[str] = "mlp"
    input_kind: ClassVar[str] = "log-mel"
    flatten: ClassVar[bool] = True
    hidden: tuple[int, ...] = (128, 128)

    def __post_init__(self):
        object.__setattr__(self, "hidden", _widths(self.hidden, "hidden"))

    def check_embed_dim(self, embed_dim: int) -> None:
        del embed_dim

    def build(self, example_shape, embed_dim: int, *, bias: bool, rngs: nnx.Rngs):
        return models.MLPEmbedder(example_shape[-1], embed_dim, hidden=self.hidden,
                                  use_bias=bias, rngs=rngs)

    def scaled(self, width: float) -> MLP:
        return MLP(hidden=tuple(_scaled(h, width) for h in self.hidden))


@dataclasses.dataclass(frozen=True)
class TwoBranch:
    """``models.TwoBranchEmbedder``, K. Wilkinghoff's network on raw waveforms: a spectrum
    branch and a spectrogram branch, D / 2 embedding dimensions each, no bias terms (the
    one-class method also drops the batch-norm offsets).

    Attributes:
      channels: stem and stage channels of the spectrogram branch's residual CNN.
      spectrum_channels, dense: conv channels and dense units of the spectrum branch.
    """

    name: ClassVar[str] = "two-branch"
    input_kind: ClassVar[str] = "waveform"
    flatten: ClassVar[bool] = False
    channels: tuple[int, ...] = (16, 16, 32, 64, 128)
    spectrum_channels: int = 128
    dense: int = 128

    def __post_init__(self):
        object.__setattr__(self, "channels", _widths(self.channels, "channels"))
        if len(self.channels) < 2:
            raise ValueError(f"channels=(stem, stage, ...) needs at least one stage, got "
                             f"{self.channels}.")
        check_scalar(self.spectrum_channels, "spectrum_channels", low=1, integer=True)
        check_scalar(self.dense, "dense", low=1, integer=True)

    def check_embed_dim(self, embed_dim: int) -> None:
        if embed_dim % 2:
            raise ValueError(f"the two-branch embedder needs an even embed_dim (D / 2 per "
                             f"branch), got {embed_dim}.")

    def build(self, example_shape, embed_dim: int, *, bias: bool, rngs: nnx.Rngs):
        return models.TwoBranchEmbedder(example_shape[-1], embed_dim // 2,
                                        channels=self.channels,
                                        spectrum_channels=self.spectrum_channels,
                                        dense=self.dense, use_bias=False, norm_offset=bias,
                                        rngs=rngs)

    def scaled(self, width: float) -> TwoBranch:
        return TwoBranch(channels=tuple(_scaled(c, width) for c in self.channels),
                         spectrum_channels=_scaled(self.spectrum_channels, width),
                         dense=_scaled(self.dense, width))


EMBEDDERS = {cls.name: cls for cls in (CNN, MLP, TwoBranch)}
DEFAULT = CNN()

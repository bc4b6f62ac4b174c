"""Embedding networks and loss heads in ``flax.nnx``.

Networks (every one has ``embed(x) -> (B, D)``; ``model(x)`` is what its loss head consumes):

* :class:`MLPEmbedder` -- fully connected embedder for vector inputs (B, F).
* :class:`CNNEmbedder` -- small residual CNN on log-mel windows (B, T, n_mels).
* :class:`Autoencoder` -- DCASE-baseline-style dense autoencoder on stacked log-mel frames;
  ``model(x)`` is the reconstruction, ``embed(x)`` the bottleneck code.
* :class:`TwoBranchEmbedder` -- K. Wilkinghoff's DCASE 2022/2023 network on raw waveforms
  (B, T): a spectrum branch and a spectrogram branch with batch normalisation.

Every network has the switches the trivial-solution experiments need: ``use_bias`` (all
layers), ``activation`` ("relu", "sigmoid", "tanh"; the two-branch network is ReLU only) and
the embedding size. Networks with batch normalisation are built in evaluation mode (running
statistics); ``train.fit`` trains them in training mode (batch statistics) and leaves them in
evaluation mode with the running statistics recomputed on the training inputs
(``train.recompute_batch_stats``).

Loss heads own the state of an objective and return per-example losses from
``head(outputs, labels, inputs)`` (``outputs = model(inputs)``):

* :class:`AngularHead` -- "normalized-softmax", "arcface", "cosface", "adacos",
  "subcluster-adacos", "adaproj": class centres (or AdaProj subspaces), fixed or trainable,
  and the softmax scale, fixed or AdaCos-adaptive (updated on every training batch from the
  batch itself, with the old scale, before the loss is taken -- as the original layers do).
* :class:`DeepSVDDHead` -- Deep SVDD (Ruff et al., ICML 2018) with the centre c set from an
  initial forward pass (:meth:`DeepSVDDHead.set_centre`, done by ``train.fit`` in the mode
  the scores use) and then fixed, or trainable (the collapse-prone variant).
* :class:`ReconstructionHead` -- mean squared reconstruction error of the autoencoder.

:func:`make_head` builds the head of a method of ``asdtheory.methods``. Trainable state is
``nnx.Param``; fixed centres are :class:`Constant` and the scale is :class:`Scale`, so
``nnx.Optimizer(..., wrt=nnx.Param)`` / ``train.fit`` never move them by gradient descent.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import kernels, losses, methods
from asdtheory._validation import check_scalar
from asdtheory.geometry import random_centres

__all__ = [
    "ACTIVATIONS",
    "AngularHead",
    "Autoencoder",
    "CNNEmbedder",
    "Constant",
    "DeepSVDDHead",
    "MLPEmbedder",
    "ReconstructionHead",
    "Scale",
    "TwoBranchEmbedder",
    "make_head",
]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
}

# Scale of the fixed-scale losses when none is given (CosFace's s = 30, Wang et al. 2018).
DEFAULT_FIXED_SCALE = 30.0


KERNEL_INIT = kernels.lecun_normal


class Constant(nnx.Variable):
    """A fixed array owned by a head (class centres, subspaces, Deep SVDD centre)."""


class Scale(nnx.Variable):
    """The softmax scale s of an angular head (updated by the AdaCos rule, not by gradients)."""


def _activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.")
    return ACTIVATIONS[name]


def _check_dim(value, name: str) -> int:
    check_scalar(value, name, low=1, integer=True)
    return int(value)


class MLPEmbedder(nnx.Module):
    """Fully connected embedder: Linear -> act -> ... -> Linear (no activation on the output).

    Args:
      in_dim: input features F; embed_dim: output dimension D.
      hidden: widths of the hidden layers (``()`` gives a linear map).
      use_bias: bias terms in every layer (Ruff et al. remove them against trivial solutions).
      activation: "relu", "sigmoid" or "tanh" (bounded activations allow trivial solutions).
      rngs: ``nnx.Rngs`` for the initialisation.
    """

    convolutional = False

    def __init__(self, in_dim: int, embed_dim: int, *, hidden: Sequence[int] = (64, 64),
                 use_bias: bool = True, activation: str = "relu", rngs: nnx.Rngs):
        dims = [_check_dim(in_dim, "in_dim"), *(_check_dim(h, "hidden") for h in hidden),
                _check_dim(embed_dim, "embed_dim")]
        self.activation = _activation(activation)
        self.layers = nnx.List([nnx.Linear(a, b, use_bias=use_bias,
                                           kernel_init=KERNEL_INIT, rngs=rngs)
                                for a, b in itertools.pairwise(dims)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def embed(self, x: jax.Array) -> jax.Array:
        """(B, F) -> (B, D) embeddings (same as calling the model)."""
        return self(x)


class _ResidualBlock(nnx.Module):
    """act(conv3x3(act(conv3x3_s(x))) + shortcut(x)), shortcut a strided 1x1 conv if needed."""

    def __init__(self, c_in: int, c_out: int, *, stride: int, use_bias: bool,
                 activation: Callable, rngs: nnx.Rngs):
        self.activation = activation
        conv = functools.partial(nnx.Conv, use_bias=use_bias, kernel_init=KERNEL_INIT,
                                 rngs=rngs)
        self.conv1 = conv(c_in, c_out, (3, 3), strides=stride)
        self.conv2 = conv(c_out, c_out, (3, 3))
        self.shortcut = (conv(c_in, c_out, (1, 1), strides=stride)
                         if stride != 1 or c_in != c_out else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv2(self.activation(self.conv1(x)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.activation(h + skip)


class CNNEmbedder(nnx.Module):
    """Small residual CNN embedder for log-mel windows (B, T, n_mels) -> (B, D).

    Architecture: a 3x3 stride-2 stem conv to ``channels[0]``, then one residual block per
    entry of ``channels`` (the first at stride 1, the others at stride 2 in time and
    frequency), mean pooling over time (any T works), flattening of the remaining
    frequency bins x channels and a linear layer to ``embed_dim``. No normalisation layers:
    ``use_bias=False`` then really leaves the network without any additive constant.

    Args:
      n_mels: number of mel bands of the input (fixes the size of the last layer).
      embed_dim: D.
      channels: channels per residual stage.
      use_bias, activation: as in :class:`MLPEmbedder`, for every layer.
      rngs: ``nnx.Rngs``.
    """

    convolutional = True  # train.compiled_loop_default: a CPU runs its steps one call each

    def __init__(self, n_mels: int, embed_dim: int = 128, *,
                 channels: Sequence[int] = (16, 32, 64), use_bias: bool = True,
                 activation: str = "relu", rngs: nnx.Rngs):
        n_mels = _check_dim(n_mels, "n_mels")
        channels = [_check_dim(c, "channels") for c in channels]
        if not channels:
            raise ValueError("channels must name at least one residual stage, got ().")
        act = _activation(activation)
        self.activation = act
        self.stem = nnx.Conv(1, channels[0], (3, 3), strides=2, use_bias=use_bias,
                             kernel_init=KERNEL_INIT, rngs=rngs)
        ins = [channels[0], *channels[:-1]]
        self.blocks = nnx.List([
            _ResidualBlock(c_in, c_out, stride=1 if i == 0 else 2, use_bias=use_bias,
                           activation=act, rngs=rngs)
            for i, (c_in, c_out) in enumerate(zip(ins, channels, strict=True))
        ])
        freq = n_mels
        for _ in range(len(channels)):  # stem + strided blocks, SAME padding: ceil(F / 2)
            freq = -(-freq // 2)
        self.n_mels = n_mels
        self.out = nnx.Linear(freq * channels[-1], _check_dim(embed_dim, "embed_dim"),
                              use_bias=use_bias, kernel_init=KERNEL_INIT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"CNNEmbedder expects log-mel windows (B, T, {self.n_mels}), got "
                             f"shape {tuple(x.shape)}.")
        h = self.activation(self.stem(x[..., None]))
        for block in self.blocks:
            h = block(h)
        h = jnp.mean(h, axis=1)  # (B, F', C): pool over time
        return self.out(h.reshape(h.shape[0], -1))

    def embed(self, x: jax.Array) -> jax.Array:
        """(B, T, n_mels) -> (B, D) embeddings (same as calling the model)."""
        return self(x)


class Autoencoder(nnx.Module):
    """Dense autoencoder in the style of the DCASE 2020-2023 Task 2 baseline.

    The baseline reconstructs vectors of 5 stacked log-mel frames (5 x 128 = 640 values)
    through 4 dense layers of 128 units, an 8-unit bottleneck and 4 dense layers of 128
    units; the anomaly score of a clip is the mean squared reconstruction error of its
    vectors. Here encoder and decoder are :class:`MLPEmbedder` s (no batch normalisation).

    ``model(x)`` returns the reconstruction (B, F); ``embed(x)`` the bottleneck code (B, K).
    """

    convolutional = False

    def __init__(self, in_dim: int, *, hidden: Sequence[int] = (128, 128, 128, 128),
                 bottleneck: int = 8, use_bias: bool = True, activation: str = "relu",
                 rngs: nnx.Rngs):
        hidden = tuple(hidden)
        self.encoder = MLPEmbedder(in_dim, bottleneck, hidden=hidden, use_bias=use_bias,
                                   activation=activation, rngs=rngs)
        self.decoder = MLPEmbedder(bottleneck, in_dim, hidden=hidden[::-1], use_bias=use_bias,
                                   activation=activation, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decoder(self.embed(x))

    def embed(self, x: jax.Array) -> jax.Array:
        """(B, F) -> (B, K) bottleneck codes."""
        return self.encoder(x)


class _BranchNorms:
    """Factories shared by the layers of :class:`TwoBranchEmbedder`."""

    def __init__(self, *, use_bias: bool, norm_offset: bool, rngs: nnx.Rngs):
        init = kernels.glorot_uniform  # Keras' default, as in the author's code
        self.conv = functools.partial(nnx.Conv, use_bias=use_bias, kernel_init=init,
                                      padding="SAME", rngs=rngs)
        self.dense = functools.partial(nnx.Linear, use_bias=use_bias, kernel_init=init,
                                       rngs=rngs)
        # Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3); built in
        # evaluation mode.
        self.norm = functools.partial(nnx.BatchNorm, use_running_average=True, momentum=0.99,
                                      epsilon=1e-3, use_bias=norm_offset, rngs=rngs)


class _SpectrogramStage(nnx.Module):
    """One stage (two residual units) of the spectrogram branch, in the author's order.

    ``first_stage`` is the author's second block (no downsampling; its first unit has no
    batch normalisation on the residual path and applies ReLU before the norm in the
    second); the other stages downsample by 2 (strided conv on the residual path, 2x2 max
    pooling + 1x1 conv on the shortcut) and use norm -> ReLU.
    """

    def __init__(self, c_in: int, c_out: int, *, first_stage: bool, layers: _BranchNorms):
        conv, norm = layers.conv, layers.norm
        self.first_stage = first_stage
        self.norm_in = norm(c_in)
        self.conv1 = conv(c_in, c_out, (3, 3), strides=1 if first_stage else 2)
        self.norm1 = None if first_stage else norm(c_out)
        self.conv2 = conv(c_out, c_out, (3, 3))
        self.shortcut = None if first_stage else conv(c_in, c_out, (1, 1))
        self.norm_mid = norm(c_out)
        self.conv3 = conv(c_out, c_out, (3, 3))
        self.norm3 = norm(c_out)
        self.conv4 = conv(c_out, c_out, (3, 3))

    def __call__(self, x: jax.Array) -> jax.Array:
        relu = jax.nn.relu
        if self.first_stage:
            h = self.conv2(relu(self.conv1(relu(x))))
            x = self.norm_mid(self.norm_in(x) + h)
            return x + self.conv4(self.norm3(relu(self.conv3(relu(x)))))
        x = self.norm_in(x)
        h = self.conv2(relu(self.norm1(self.conv1(relu(x)))))
        x = self.norm_mid(self.shortcut(kernels.max_pool2d(x, 2, 2, same=True)) + h)
        return x + self.conv4(relu(self.norm3(self.conv3(relu(x)))))


class TwoBranchEmbedder(nnx.Module):
    """K. Wilkinghoff's two-branch embedder of raw waveforms (B, T) -> (B, 2 * embed_dim).

    Our re-implementation of the network of the author's public DCASE 2022/2023 systems
    (e.g. github.com/wilkinghoff/icassp2023), written from its description:

    * **spectrum branch**: |FFT| of the whole clip (the first T / 2 bins); three strided 1-D
      convolutions (``spectrum_channels`` filters; kernel 256 stride 64, kernel 64 stride
      32, kernel 16 stride 4; ReLU); flattened; four dense layers of ``dense`` units with
      batch norm and ReLU; a linear layer to ``embed_dim``.
    * **spectrogram branch**: STFT magnitude (n_fft 1024, hop 512, no padding, all 513 bins:
      the author's layer takes f_min/f_max arguments but does not apply them), its temporal
      mean subtracted per bin, batch norm per bin; a 7x7 stride-2 conv with norm, ReLU and
      3x3 stride-2 max pooling; four residual stages of ``channels[1:]`` channels (the
      first without downsampling, the others halving time and frequency; see
      :class:`_SpectrogramStage`); max over the remaining frames (the author's 10x1 pooling
      for 10-s clips); flattened; batch norm; a linear layer to ``embed_dim``.
    * the two embeddings concatenated.

    Args:
      num_samples: T, samples per clip (fixes the flattened sizes; 160 000 for 10 s at
        16 kHz).
      embed_dim: embedding size of each branch (the output has twice as many).
      channels: stem and stage channels of the spectrogram branch (author: 16, 16, 32, 64,
        128); spectrum_channels, dense: widths of the spectrum branch (author: 128, 128).
      use_bias: bias terms in the conv and dense layers (author: none).
      norm_offset: the batch norms' learnt offsets (author: yes; Deep SVDD: no, as Ruff et
        al.'s networks, so that the network has no additive constant to learn).
      rngs: ``nnx.Rngs``.
    """

    N_FFT, HOP = 1024, 512

    convolutional = True  # train.compiled_loop_default: a CPU runs its steps one call each

    def __init__(self, num_samples: int = 160_000, embed_dim: int = 128, *,
                 channels: Sequence[int] = (16, 16, 32, 64, 128), spectrum_channels: int = 128,
                 dense: int = 128, use_bias: bool = False, norm_offset: bool = True,
                 rngs: nnx.Rngs):
        num_samples = _check_dim(num_samples, "num_samples")
        embed_dim = _check_dim(embed_dim, "embed_dim")
        channels = [_check_dim(c, "channels") for c in channels]
        spectrum_channels = _check_dim(spectrum_channels, "spectrum_channels")
        dense = _check_dim(dense, "dense")
        if len(channels) < 2:
            raise ValueError(f"channels needs the stem and at least one stage, got {channels}.")
        frames = 1 + (num_samples - self.N_FFT) // self.HOP
        # stem conv (stride 2) then 3x3/2 pooling without padding leave (s - 3) // 2 + 1 rows
        after_stem = [(-(-n // 2) - 3) // 2 + 1 for n in (frames, self.N_FFT // 2 + 1)]
        if num_samples < 256 * 16 or min(after_stem) < 1:
            raise ValueError(f"num_samples={num_samples} is too short for the two-branch "
                             "network; it needs clips of at least 0.4 s at 16 kHz.")
        layers = _BranchNorms(use_bias=use_bias, norm_offset=norm_offset, rngs=rngs)
        conv, norm, linear = layers.conv, layers.norm, layers.dense
        self.num_samples = num_samples

        self.spectrum_convs = nnx.List([
            conv(c_in, spectrum_channels, (kernel,), strides=stride)
            for c_in, kernel, stride in ((1, 256, 64), (spectrum_channels, 64, 32),
                                         (spectrum_channels, 16, 4))])
        length = num_samples // 2
        for stride in (64, 32, 4):
            length = -(-length // stride)
        widths = [length * spectrum_channels, dense, dense, dense, dense]
        self.spectrum_dense = nnx.List([linear(a, b) for a, b in itertools.pairwise(widths)])
        self.spectrum_norms = nnx.List([norm(dense) for _ in range(4)])
        self.spectrum_out = linear(dense, embed_dim)

        bins = self.N_FFT // 2 + 1
        self.bin_norm = norm(bins)
        self.stem = conv(1, channels[0], (7, 7), strides=2)
        self.stem_norm = norm(channels[0])
        self.stages = nnx.List([
            _SpectrogramStage(c_in, c_out, first_stage=i == 0, layers=layers)
            for i, (c_in, c_out) in enumerate(itertools.pairwise(channels))])
        freq = after_stem[1]
        for _ in channels[2:]:
            freq = -(-freq // 2)
        self.flat_norm = norm(freq * channels[-1])
        self.spectrogram_out = linear(freq * channels[-1], embed_dim)

    def spectrum_branch(self, x: jax.Array) -> jax.Array:
        """The spectrum branch alone: waveforms (B, T) -> (B, embed_dim), the first half of
        the embedding (the class docstring describes its layers)."""
        h = jnp.abs(jnp.fft.rfft(x, axis=-1))[:, : self.num_samples // 2, None]
        first, *rest = self.spectrum_convs
        h = jax.nn.relu(first(h))  # c_in = 1: XLA's convolution is the faster one here
        for layer in rest:
            stride = layer.strides if isinstance(layer.strides, int) else layer.strides[0]
            h = kernels.conv1d_same(h, layer.kernel[...], stride)
            h = jax.nn.relu(h if layer.bias is None else h + layer.bias[...])
        h = h.reshape(h.shape[0], -1)
        for layer, norm in zip(self.spectrum_dense, self.spectrum_norms, strict=True):
            h = jax.nn.relu(norm(layer(h)))
        return self.spectrum_out(h)

    def spectrogram_branch(self, x: jax.Array) -> jax.Array:
        """The spectrogram branch alone: waveforms (B, T) -> (B, embed_dim), the second half
        of the embedding."""
        idx = np.arange(0, self.num_samples - self.N_FFT + 1, self.HOP)[:, None] + np.arange(
            self.N_FFT)
        window = np.asarray(np.hanning(self.N_FFT + 1)[:-1], np.float32)  # periodic Hann
        h = jnp.abs(jnp.fft.rfft(x[:, idx] * window, axis=-1))  # (B, frames, bins)
        h = h - jnp.mean(h, axis=1, keepdims=True)
        h = self.bin_norm(h)[..., None]
        h = kernels.conv2d_same(h, self.stem.kernel[...], 2)
        h = h if self.stem.bias is None else h + self.stem.bias[...]
        h = kernels.max_pool2d(jax.nn.relu(self.stem_norm(h)), 3, 2, same=False)
        for stage in self.stages:
            h = stage(h)
        h = jnp.max(h, axis=1)
        return self.spectrogram_out(self.flat_norm(h.reshape(h.shape[0], -1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 2 or x.shape[-1] != self.num_samples:
            raise ValueError(f"TwoBranchEmbedder expects waveforms (B, {self.num_samples}), "
                             f"got shape {tuple(x.shape)}.")
        return jnp.concatenate([self.spectrum_branch(x), self.spectrogram_branch(x)], -1)

    def embed(self, x: jax.Array) -> jax.Array:
        """(B, T) -> (B, 2 * embed_dim) embeddings (same as calling the model)."""
        return self(x)


def _fixed_or_param(value: jax.Array, trainable: bool) -> nnx.Variable:
    return nnx.Param(value) if trainable else Constant(value)


class AngularHead(nnx.Module):
    """Class centres + scale of an angular margin loss; ``head(x, labels, inputs)`` -> (B,).

    =====================  ==================  ========================  ======================
    method                 loss (losses.*)     centres                   scale
    =====================  ==================  ========================  ======================
    normalized-softmax     normalized_softmax  (N, D)                    fixed (30)
    arcface                arcface             (N, D)                    fixed (30), margin 0.5
    cosface                cosface             (N, D)                    fixed (30), margin 0.35
    adacos                 adacos              (N, D)                    adaptive
    subcluster-adacos      subcluster_adacos   (N, M, D) sub-centres     adaptive
    adaproj                adaproj             (N, M, D) subspace basis  adaptive
    class-compactness      compactness         (N, D) fixed              none (pull only)
    softmax                softmax             (N, D) learned weights    none (x W^T + b)
    =====================  ==================  ========================  ======================

    Adaptive scales start at ``adacos_fixed_scale(N, M)`` = sqrt(2) ln(N M - 1) and are
    updated on every call with ``update_scale=True`` (what ``train.fit`` does) by the AdaCos
    rule of ``asdtheory.losses.adacos`` before the loss is computed. Centres are random unit
    vectors (``geometry.random_centres``), fixed (:class:`Constant`, Wilkinghoff's choice) or
    trainable (``nnx.Param``); AdaProj subspaces are always fixed.

    Args:
      method: a method of ``asdtheory.methods`` with class centres (``methods.LABELLED``).
      num_classes: N (auxiliary classes); embed_dim: D.
      num_subclusters: M for "subcluster-adacos" (sub-centres) and "adaproj" (subspace
        dimension); must be 1 for the other methods.
      trainable_centres: learn the centres by gradient descent.
      scale: the fixed scale, or the initial scale of an adaptive method.
      adaptive_scale: use the AdaCos update (default: true for adacos, subcluster-adacos and
        adaproj, false otherwise).
      margin: ArcFace/CosFace margin m (default: the loss's default).
      variant: "faithful" or "code" sub-cluster AdaCos scale update (see losses.adacos).
      rngs: ``nnx.Rngs`` (its ``params`` stream draws the centres).
    """

    needs_initial_pass = False

    def __init__(self, method: str, num_classes: int, embed_dim: int, *,
                 num_subclusters: int = 1, trainable_centres: bool = False,
                 scale: float | None = None, adaptive_scale: bool | None = None,
                 margin: float | None = None,
                 variant: Literal["faithful", "code"] = "faithful", rngs: nnx.Rngs):
        spec = methods.get(method)
        if spec.head != "centres":
            raise ValueError(f"method must be one with class centres "
                             f"({', '.join(methods.LABELLED)}), got {method!r}.")
        num_classes = _check_dim(num_classes, "num_classes")
        embed_dim = _check_dim(embed_dim, "embed_dim")
        num_subclusters = _check_dim(num_subclusters, "num_subclusters")
        if num_subclusters != 1 and not spec.has_subcentres:
            raise ValueError(f"num_subclusters applies to methods with sub-centres or "
                             f"subspaces only; {method} has one centre per class (got "
                             f"{num_subclusters}).")
        if margin is not None and not spec.margin:
            raise ValueError(f"margin applies to arcface and cosface only, not {method}.")
        if trainable_centres and not spec.trainable_centres:
            raise ValueError(f"{method} keeps fixed random centres; trainable_centres must be "
                             "False.")
        if variant not in ("faithful", "code"):
            raise ValueError(f"variant must be 'faithful' or 'code', got {variant!r}.")
        if adaptive_scale is None:
            adaptive_scale = spec.adaptive_scale
        if adaptive_scale and not spec.adaptive_scale:
            raise ValueError(f"{method} has no AdaCos scale update; pass adaptive_scale=False.")
        if scale is None:
            scale = (losses.adacos_fixed_scale(num_classes, num_subclusters) if adaptive_scale
                     else DEFAULT_FIXED_SCALE)
        check_scalar(scale, "scale", low=0.0)
        centres = random_centres(rngs.params(), num_classes, embed_dim,
                                 num_subcentres=num_subclusters if spec.has_subcentres else None)
        self.method = method
        self.num_classes = num_classes
        self.adaptive_scale = bool(adaptive_scale)
        self.margin = margin
        self.variant = variant
        self.supports_soft_labels = spec.soft_labels
        # A linear classifier's weights are learned whatever trainable_centres says: fixed
        # weights would leave the plain softmax control only its bias to learn.
        self.centres = _fixed_or_param(centres, trainable_centres or spec.linear)
        if spec.linear:
            self.bias = nnx.Param(jnp.zeros((num_classes,), jnp.float32))
        self.scale = Scale(jnp.asarray(scale, jnp.float32))

    @property
    def spec(self) -> methods.Method:
        return methods.get(self.method)

    def _loss(self, embeddings, labels, scale):
        if self.spec.linear:  # unnormalised logits x W^T + b: no scale
            return self.spec.loss(embeddings, self.centres[...], labels, bias=self.bias[...])
        options = {} if self.margin is None else {"margin": self.margin}
        return self.spec.loss(embeddings, self.centres[...], labels, scale=scale, **options)

    def next_scale(self, embeddings: jax.Array, labels: jax.Array) -> jax.Array:
        """The AdaCos scale update from one batch (no gradient flows into it)."""
        update = self.spec.scale_update
        options = {"variant": self.variant} if self.spec.scale_variants else {}
        return update(embeddings, self.centres[...], labels, scale=self.scale[...], **options)

    def __call__(self, embeddings: jax.Array, labels: jax.Array, inputs=None, *,
                 update_scale: bool = True) -> jax.Array:
        """Per-example loss (B,) of embeddings (B, D) with integer (B,) or soft (B, N) labels.

        With an adaptive scale and ``update_scale`` the scale is first updated from this
        batch. ``inputs`` is unused (uniform head signature).
        """
        del inputs
        if self.adaptive_scale and update_scale:
            self.scale[...] = self.next_scale(embeddings, labels)
        return self._loss(embeddings, labels, self.scale[...])

    def loss_at_scale(self, embeddings: jax.Array, labels: jax.Array, *,
                      scale: float) -> jax.Array:
        """Per-example loss (B,) at the given scale, leaving the head's scale untouched: the
        same objective at every point of a training run even when the scale adapts."""
        return self._loss(embeddings, labels, jnp.asarray(scale, jnp.float32))

    def compactness(self, embeddings: jax.Array, labels: jax.Array) -> jax.Array:
        """Per-example compactness 2 - 2 cos(theta_y) w.r.t. the own class centre (nearest
        sub-centre), or for AdaProj w.r.t. the own class subspace."""
        if self.spec.centres == "subspaces":
            cos = losses.subspace_cosines(embeddings, self.centres[...])
            return 2.0 - 2.0 * jnp.take_along_axis(cos, labels[:, None], axis=-1)[:, 0]
        return losses.compactness(embeddings, self.centres[...], labels)


class DeepSVDDHead(nnx.Module):
    """Deep SVDD one-class objective ||phi(x) - c||^2 (Ruff et al., ICML 2018).

    c starts unset; :meth:`set_centre` sets it from an initial forward pass with
    ``losses.deep_svdd_centre`` (mean, entries with |c_j| < eps pushed to +-eps).
    ``train.fit`` does this before the first step when ``needs_initial_pass`` is true, on
    the embeddings in evaluation mode with batch-norm statistics recomputed for the
    untrained network: the mode the trained network's scores use (``train.fit``).
    With ``trainable_centre`` c is an ``nnx.Param`` (from the same initial value) and is
    optimised jointly with the network -- the variant that admits the trivial solution.
    Labels are ignored.
    """

    supports_soft_labels = False

    def __init__(self, embed_dim: int, *, trainable_centre: bool = False, eps: float = 0.1):
        check_scalar(eps, "eps", low=0.0)
        self.eps = float(eps)
        self.centre = _fixed_or_param(jnp.zeros((_check_dim(embed_dim, "embed_dim"),)),
                                      trainable_centre)
        self.centre_set = Constant(jnp.array(False))  # state, so checkpoints carry it

    @property
    def needs_initial_pass(self) -> bool:
        """True until :meth:`set_centre` has run."""
        return not bool(self.centre_set[...])

    def set_centre(self, initial_embeddings: jax.Array) -> None:
        """c <- deep_svdd_centre(initial_embeddings, eps=eps); marks the head initialised."""
        centre = losses.deep_svdd_centre(initial_embeddings, eps=self.eps)
        if centre.shape != self.centre.shape:
            raise ValueError(f"initial_embeddings have dimension {centre.shape[0]}, the head "
                             f"was built for {self.centre.shape[0]}.")
        self.centre[...] = centre
        self.centre_set[...] = jnp.array(True)

    def __call__(self, embeddings: jax.Array, labels=None, inputs=None) -> jax.Array:
        del labels, inputs
        return losses.deep_svdd(embeddings, self.centre[...])

    def compactness(self, embeddings: jax.Array, labels=None) -> jax.Array:
        """The Deep SVDD loss itself, ||phi(x) - c||^2."""
        return self(embeddings)


class ReconstructionHead(nnx.Module):
    """Mean squared reconstruction error per example over all non-batch axes."""

    supports_soft_labels = False
    needs_initial_pass = False

    def __call__(self, reconstructions: jax.Array, labels, inputs: jax.Array) -> jax.Array:
        del labels
        if reconstructions.shape != inputs.shape:
            raise ValueError(f"reconstructions {tuple(reconstructions.shape)} and inputs "
                             f"{tuple(inputs.shape)} must have the same shape.")
        axes = tuple(range(1, inputs.ndim))
        return jnp.mean((reconstructions - inputs) ** 2, axis=axes)


def make_head(method: str, *, embed_dim: int, num_classes: int = 1, rngs: nnx.Rngs,
              trainable_centres: bool = False, **kwargs) -> nnx.Module:
    """The loss head of a method of ``asdtheory.methods`` (its ``head`` field).

    "centres" methods give an :class:`AngularHead` (``kwargs``: num_subclusters, scale,
    adaptive_scale, margin, variant); "one-class" a :class:`DeepSVDDHead` (``kwargs``: eps;
    ``trainable_centres`` is its trainable-centre switch); "reconstruction" a
    :class:`ReconstructionHead` (``embed_dim`` and ``num_classes`` unused).
    """
    head = methods.get(method).head
    if head == "centres":
        return AngularHead(method, num_classes, embed_dim, trainable_centres=trainable_centres,
                           rngs=rngs, **kwargs)
    if head == "one-class":
        return DeepSVDDHead(embed_dim, trainable_centre=trainable_centres, **kwargs)
    if kwargs:
        raise ValueError(f"the {method} head takes no options, got {sorted(kwargs)}.")
    return ReconstructionHead()

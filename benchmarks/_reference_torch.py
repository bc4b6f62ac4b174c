"""The reference two-branch system in PyTorch, for the benchmarks that measure the library's
JAX version beside it (``bench_reference.py``, ``profile_reference.py``).

``TorchTwoBranch`` is ``models.TwoBranchEmbedder`` layer for layer: the same layers and order,
TF/flax 'SAME' padding (the odd element of strided convs through ``F.pad``), batch norm
momentum 0.01 (= flax's 0.99) and epsilon 1e-3, the same flattening order and module names,
so that :func:`copy_weights` loads the JAX weights and the outputs agree to float32 rounding
in both modes (``tests/test_bench_reference.py``). ``TorchSubclusterAdaCos`` and
:func:`trainer` are the head and training step of the reference system.

Imports torch: the scripts load this module through ``_reference_setup.require_torch``, which
says how to install it when it is missing.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from asdtheory import kernels, models

N_FFT, HOP = models.TwoBranchEmbedder.N_FFT, models.TwoBranchEmbedder.HOP


# --- the network ----------------------------------------------------------------------------

class SameConv(nn.Module):
    """Conv1d/Conv2d without bias and with TF/flax 'SAME' padding. The symmetric part of
    the padding is the convolution's own; only the odd element of a strided conv (on the
    high side) goes through F.pad."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1):
        super().__init__()
        self.kernel = (kernel,) if isinstance(kernel, int) else tuple(kernel)
        self.stride = ((stride,) * len(self.kernel) if isinstance(stride, int)
                       else tuple(stride))
        self.weight = nn.Parameter(torch.empty(c_out, c_in, *self.kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # torch's default; copied over
        self._conv = F.conv1d if len(self.kernel) == 1 else F.conv2d
        self._pads: dict = {}

    def _padding(self, spatial: tuple[int, ...]):
        if spatial not in self._pads:
            pads = [kernels.same_padding(n, k, s)
                    for n, k, s in zip(spatial, self.kernel, self.stride, strict=True)]
            sym = tuple(min(lo, hi) for lo, hi in pads)
            extra = []  # F.pad order: last axis first, (low, high) each
            for (lo, hi), m in zip(reversed(pads), reversed(sym), strict=True):
                extra += [lo - m, hi - m]
            self._pads[spatial] = sym, (tuple(extra) if any(extra) else None)
        return self._pads[spatial]

    def forward(self, x):
        sym, extra = self._padding(tuple(x.shape[2:]))
        if extra is not None:
            x = F.pad(x, extra)
        return self._conv(x, self.weight, None, self.stride, sym)


def batch_norm(dim: int, features: int) -> nn.Module:
    """Keras/flax batch norm (momentum 0.99 -> torch momentum 0.01, epsilon 1e-3)."""
    return (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(features, eps=1e-3, momentum=0.01)


class TorchStage(nn.Module):
    """A residual stage of models.TwoBranchEmbedder's spectrogram branch in PyTorch (NCHW;
    H = frames, W = bins)."""

    def __init__(self, c_in: int, c_out: int, *, first_stage: bool):
        super().__init__()
        self.first_stage = first_stage
        self.norm_in = batch_norm(2, c_in)
        self.conv1 = SameConv(c_in, c_out, (3, 3), 1 if first_stage else 2)
        self.norm1 = None if first_stage else batch_norm(2, c_out)
        self.conv2 = SameConv(c_out, c_out, (3, 3))
        self.shortcut = None if first_stage else SameConv(c_in, c_out, (1, 1))
        self.norm_mid = batch_norm(2, c_out)
        self.conv3 = SameConv(c_out, c_out, (3, 3))
        self.norm3 = batch_norm(2, c_out)
        self.conv4 = SameConv(c_out, c_out, (3, 3))

    def forward(self, x):
        relu = F.relu
        if self.first_stage:
            h = self.conv2(relu(self.conv1(relu(x))))
            x = self.norm_mid(self.norm_in(x) + h)
            return x + self.conv4(self.norm3(relu(self.conv3(relu(x)))))
        x = self.norm_in(x)
        h = self.conv2(relu(self.norm1(self.conv1(relu(x)))))
        # 2x2/2 max pooling with 'SAME' padding: the one padding row/column (if any) is on
        # the high side, which is what ceil_mode does.
        pooled = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.norm_mid(self.shortcut(pooled) + h)
        return x + self.conv4(relu(self.norm3(self.conv3(relu(x)))))


class TorchTwoBranch(nn.Module):
    """models.TwoBranchEmbedder (defaults: no conv/dense biases, batch-norm offsets) in
    PyTorch, with the same module names so that the weights can be copied over."""

    def __init__(self, num_samples: int = 160_000, embed_dim: int = 128, *,
                 channels=(16, 16, 32, 64, 128), spectrum_channels: int = 128,
                 dense: int = 128):
        super().__init__()
        self.num_samples = num_samples
        self.spectrum_convs = nn.ModuleList([
            SameConv(c_in, spectrum_channels, kernel, stride)
            for c_in, kernel, stride in ((1, 256, 64), (spectrum_channels, 64, 32),
                                         (spectrum_channels, 16, 4))])
        length = num_samples // 2
        for stride in (64, 32, 4):
            length = -(-length // stride)
        widths = [length * spectrum_channels, dense, dense, dense, dense]
        self.spectrum_dense = nn.ModuleList([nn.Linear(a, b, bias=False)
                                             for a, b in itertools.pairwise(widths)])
        self.spectrum_norms = nn.ModuleList([batch_norm(1, dense) for _ in range(4)])
        self.spectrum_out = nn.Linear(dense, embed_dim, bias=False)

        self.bin_norm = batch_norm(1, N_FFT // 2 + 1)
        self.stem = SameConv(1, channels[0], (7, 7), 2)
        self.stem_norm = batch_norm(2, channels[0])
        self.stages = nn.ModuleList([
            TorchStage(c_in, c_out, first_stage=i == 0)
            for i, (c_in, c_out) in enumerate(itertools.pairwise(channels))])
        freq = (-(-(N_FFT // 2 + 1) // 2) - 3) // 2 + 1  # bins after the stem and pooling
        for _ in channels[2:]:
            freq = -(-freq // 2)
        self.flat_norm = batch_norm(1, freq * channels[-1])
        self.spectrogram_out = nn.Linear(freq * channels[-1], embed_dim, bias=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)

    def spectrum_branch(self, x):
        h = torch.fft.rfft(x, dim=-1).abs()[:, None, : self.num_samples // 2]  # (B, 1, T/2)
        for layer in self.spectrum_convs:
            h = F.relu(layer(h))
        h = h.transpose(1, 2).flatten(1)  # position-major, channel-minor, as flax
        for layer, norm in zip(self.spectrum_dense, self.spectrum_norms, strict=True):
            h = F.relu(norm(layer(h)))
        return self.spectrum_out(h)

    def spectrogram_branch(self, x):
        spec = torch.stft(x, N_FFT, HOP, window=self.window, center=False,
                          return_complex=True).abs()  # (B, bins, frames)
        spec = spec - spec.mean(dim=-1, keepdim=True)
        h = self.bin_norm(spec).transpose(1, 2)[:, None]  # (B, 1, frames, bins)
        h = F.max_pool2d(F.relu(self.stem_norm(self.stem(h))), 3, 2)
        for stage in self.stages:
            h = stage(h)
        h = h.amax(dim=2).transpose(1, 2).flatten(1)  # max over frames; bin-major as flax
        return self.spectrogram_out(self.flat_norm(h))

    def forward(self, x):
        return torch.cat([self.spectrum_branch(x), self.spectrogram_branch(x)], dim=-1)


def copy_weights(torch_model: nn.Module, jax_model: nnx.Module) -> None:
    """Loads the parameters and batch statistics of a models.TwoBranchEmbedder into its
    PyTorch twin (same names; kernels transposed to PyTorch's layouts)."""
    names = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
             "var": "running_var"}
    target = {**dict(torch_model.named_parameters()), **dict(torch_model.named_buffers())}
    done = set()
    for path, value in nnx.to_flat_state(nnx.state(jax_model)):
        if path[-1] not in names:
            continue
        name = ".".join(map(str, (*path[:-1], names[path[-1]])))
        array = np.asarray(value.get_value() if hasattr(value, "get_value") else value[...])
        if path[-1] == "kernel":  # flax (..., in, out) -> torch (out, in, ...)
            array = np.moveaxis(array, (-1, -2), (0, 1)) if array.ndim > 2 else array.T
        if target[name].shape != array.shape:
            raise ValueError(f"{name}: torch {tuple(target[name].shape)} vs {array.shape}")
        with torch.no_grad():
            target[name].copy_(torch.from_numpy(np.array(array)))
        done.add(name)
    missing = {n for n in target if n != "window" and not n.endswith("num_batches_tracked")}
    if missing - done:
        raise ValueError(f"not copied: {sorted(missing - done)}")


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# --- the head and the training step -------------------------------------------------------

class TorchSubclusterAdaCos(nn.Module):
    """losses.subcluster_adacos with the "faithful" scale update of models.AngularHead, for
    soft (mixup) labels: fixed unit sub-centres (N, M, D), scale updated from every batch
    (no gradient) before the loss, as the JAX head does."""

    def __init__(self, centres: np.ndarray, scale: float):
        super().__init__()
        self.register_buffer("centres", torch.from_numpy(np.array(centres, np.float32)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, z, y):
        n, m, d = self.centres.shape
        c = F.normalize(self.centres.reshape(n * m, d), dim=-1)
        cos = (F.normalize(z, dim=-1) @ c.T).clamp(-1, 1).reshape(-1, n, m)
        with torch.no_grad():
            margin = 4 * float(np.finfo(np.float32).eps)
            theta = torch.arccos(cos.clamp(-1 + margin, 1 - margin))
            log_b = torch.logsumexp(self.scale * cos + torch.log1p(-y)[:, :, None], dim=(1, 2))
            target = (y * theta.amin(dim=-1)).sum(-1)
            log_b_avg = torch.logsumexp(log_b, 0) - math.log(len(log_b))
            self.scale.copy_(log_b_avg / torch.cos(torch.clamp(torch.quantile(target, 0.5),
                                                               max=math.pi / 4)))
        class_logits = torch.logsumexp(self.scale * cos, dim=-1)
        return -(y * F.log_softmax(class_logits, dim=-1)).sum(-1)


def trainer(model: nn.Module, head: nn.Module, inputs: torch.Tensor,
                  labels: torch.Tensor, *, batch: int, config, device):
    """A PyTorch training step that does what train.fit's does: gather the batch from the
    host arrays, move it to the device, mixup (Beta(a, a) per clip, a random permutation),
    forward in training mode, sub-cluster AdaCos, backward, Adam with coupled L2
    (``weight_decay``, as train.TrainConfig). Returns step(i) -> loss."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                           weight_decay=config.weight_decay)
    beta = torch.distributions.Beta(torch.tensor(config.mixup_alpha),
                                    torch.tensor(config.mixup_alpha))
    num_classes = head.centres.shape[0]
    n = len(inputs)
    order = torch.randperm(n)

    def step(i: int) -> float:
        idx = order[(torch.arange(batch) + i * batch) % n]
        x = inputs[idx].to(device, non_blocking=True)
        y = F.one_hot(labels[idx].to(device), num_classes).float()
        lam = beta.sample((batch,)).to(device)
        perm = torch.randperm(batch, device=device)
        x = lam[:, None] * x + (1 - lam[:, None]) * x[perm]
        y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
        loss = head(model(x), y).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


# --- threads and device --------------------------------------------------------------------

def sync(device) -> None:
    """Waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def setup_device():
    """Threads and device: PyTorch on as many threads as this process has cores (XLA uses
    them all by default); on a GPU host both frameworks run on the accelerator (JAX by
    default, train.fit shards the batch over all devices), with TF32 allowed in PyTorch as
    XLA's default precision does on the GPU."""
    threads = kernels.usable_cpus()
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device, threads

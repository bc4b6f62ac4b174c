"""Training throughput of the reference two-branch network: JAX (asdtheory) vs PyTorch.

What is timed, side by side in one process, interleaved (the machine may be shared):

* **JAX**: the call users make -- ``train.fit(model, head, x, y, config=TrainConfig(steps=k))``
  on the model and head that ``Detector.fit`` builds for the ``reference`` system
  (``detect.build_network``: ``models.TwoBranchEmbedder`` defaults, sub-cluster AdaCos with 16 fixed
  sub-centres per class, mixup alpha 1, Adam lr 1e-3 with coupled L2 2e-5) on ``k`` batches
  of random 10-s waveforms (160 000 samples); wall time / k after a first call that compiles
  (reported separately). The step is ``train._train_step`` (its ``lru_cache`` must hit and
  no XLA compilation of it may happen in the timed calls; both are checked). The host work
  of every step (gathering the batch rows from the NumPy array, placing them on the
  device) is part of it and reported on its own.
* **PyTorch**: ``TorchTwoBranch``, the same network (same layers and order, TF/flax 'SAME'
  padding -- the odd element of strided convs through ``F.pad`` --, batch norm momentum 0.01
  = flax's 0.99, epsilon 1e-3, same flattening order; the JAX weights are copied in and the
  outputs agree to float32 rounding in both modes), the same head (sub-cluster AdaCos,
  "faithful" adaptive scale, the same centres), the same mixup, Adam(weight_decay=2e-5);
  one step = batch gather + mixup + forward + loss + backward + Adam, median over steps,
  ``torch.set_num_threads(cores)``.
* **Peak**: a float32 2048^3 matmul in each framework; the work of one training step is
  counted from the layer shapes (:func:`step_flops`), so each side's share of the CPU's
  matmul throughput is reported.
* ``--diagnose``: forward and forward + backward of each branch, of every conv layer and
  max pooling (the library's ``kernels.strided_conv1d`` and ``kernels.sliced_max_pool2d`` beside
  XLA's convolution and ``nnx.max_pool``, which compute the same function more slowly on
  the CPU) and of the front ends, JAX vs PyTorch.

On a GPU host both run on the accelerator (JAX by default; PyTorch on ``cuda`` with TF32
allowed, as XLA's default precision there).

    pip install -c constraints.txt -e ".[dev,bench]"
    python benchmarks/bench_reference.py             # writes benchmarks/results/reference.json
    python benchmarks/bench_reference.py --diagnose  # adds per-part / per-layer tables to it
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from asdtheory import detect, kernels, models, train
from asdtheory.detect import systems
from asdtheory.repro import bench

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "reference.json"
SAMPLES = 160_000  # 10 s at 16 kHz
NUM_CLASSES = 32  # auxiliary classes of the head (their number hardly changes the cost)
REFERENCE = systems.get("reference").config()
BATCHES = (32, 64)  # the mini protocol's batch and the reference system's
FIT_STEPS = 3  # optimiser steps per timed train.fit call
REPEATS = {32: 3, 64: 2}  # timed train.fit calls per batch size (keeps the run < 5 min)
TORCH_STEPS_PER_ROUND = 3  # PyTorch steps after each of them
N_FFT, HOP = models.TwoBranchEmbedder.N_FFT, models.TwoBranchEmbedder.HOP


# --- the network in PyTorch --------------------------------------------------------------

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
    """models._SpectrogramStage in PyTorch (NCHW; H = frames, W = bins)."""

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

    def __init__(self, num_samples: int = SAMPLES, embed_dim: int = 128, *,
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


# --- the PyTorch training step ------------------------------------------------------------

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


def torch_trainer(model: nn.Module, head: nn.Module, inputs: torch.Tensor,
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


def torch_sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- the JAX side: the library's own path ---------------------------------------------------

def reference_config(batch: int):
    """The reference system at this batch size (64 = the full protocol, 32 = the mini one)."""
    return dataclasses.replace(REFERENCE, batch_size=batch, progress=False)


def build_jax(batch: int, seed: int = 0):
    """Model and head exactly as Detector.fit builds them (detect.build_network) for raw 10-s
    waveforms and NUM_CLASSES auxiliary classes."""
    config = reference_config(batch)
    model, head = detect.build_network(config, NUM_CLASSES, (SAMPLES,), jax.random.key(seed))
    return config, model, head


def param_count_jax(model: nnx.Module) -> int:
    return int(sum(np.size(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))))


def param_count_torch(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def fit_seconds(model, head, inputs, labels, config, steps: int, seed: int) -> float:
    """Wall time of one train.fit call of ``steps`` optimiser steps (one partial epoch when
    ``inputs`` holds ``steps`` batches); fit ends with a host sync (the epoch's loss)."""
    tc = dataclasses.replace(config.train_config(), steps=steps)
    start = time.perf_counter()
    train.fit(model, head, inputs, labels, config=tc, key=jax.random.key(seed))
    return time.perf_counter() - start


def host_batch_seconds(inputs: np.ndarray, batch: int, repeats: int = 5) -> float:
    """The host work of every train.fit step: gather the batch rows (inputs and labels) from
    the NumPy arrays and place them on the device(s) (the jitted step places the NumPy rows
    as its call starts; timed here on their own)."""
    devices = jax.devices()
    mesh = jax.make_mesh((len(devices),), ("data",), (jax.sharding.AxisType.Auto,),
                         devices=devices)
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    order = np.random.default_rng(0).permutation(len(inputs))
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        idx = order[(np.arange(batch) + i * batch) % len(inputs)]
        rows = train._batch_rows(sharded, inputs[idx], np.zeros(batch, np.int32))
        jax.block_until_ready(jax.device_put(rows, sharded))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# --- work and peak ------------------------------------------------------------------------

def step_flops(torch_model: nn.Module, num_samples: int = SAMPLES) -> dict:
    """FLOPs per clip of one training step, counted from the layer shapes (forward hooks on
    every conv and dense layer of a 1-clip training-mode pass): forward 2 MACs-worth, backward
    2 more for the weight gradient and 2 more for the input gradient -- except where the
    layer's input needs no gradient (the first conv of each branch sees the waveform's
    spectra), which XLA and autograd both skip. FFTs (forward only: the input needs no
    gradient) counted as 2.5 N log2 N per real FFT."""
    macs, first = [], []

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, SameConv):
            per_out = module.weight[0].numel()  # c_in x kernel
        else:
            per_out = module.in_features
        macs.append(output[0].numel() * per_out)
        first.append(not x.requires_grad)

    handles = [m.register_forward_hook(hook) for m in torch_model.modules()
               if isinstance(m, SameConv | nn.Linear)]
    was_training = torch_model.training
    torch_model.train()
    try:
        torch_model(torch.zeros(2, num_samples))  # batch 2 for the batch norms; per clip below
    finally:
        for h in handles:
            h.remove()
        torch_model.train(was_training)
    fwd = 2 * sum(macs)
    bwd = sum(2 * m * (1 if f else 2) for m, f in zip(macs, first, strict=True))
    frames = 1 + (num_samples - N_FFT) // HOP
    fft = 2.5 * num_samples * math.log2(num_samples) + frames * 2.5 * N_FFT * math.log2(N_FFT)
    return {"forward_gflop_per_clip": fwd / 1e9, "backward_gflop_per_clip": bwd / 1e9,
            "train_gflop_per_clip": (fwd + bwd) / 1e9,
            "naive_3x_forward_gflop_per_clip": 3 * fwd / 1e9,
            "fft_gflop_per_clip": fft / 1e9, "layers_counted": len(macs)}


def matmul_gflops(device, n: int = 2048, rounds: int = 3, repeats: int = 5) -> dict:
    """Best float32 n x n x n matmul throughput of each framework, the two interleaved in
    ``rounds`` rounds of ``repeats`` products each (the machine is shared)."""
    a = jax.device_put(np.ones((n, n), np.float32))
    mm = jax.jit(lambda m: m @ m)
    mm(a).block_until_ready()
    b = torch.ones(n, n, device=device)

    def torch_mm():
        torch.mm(b, b)
        torch_sync(device)

    torch_mm()
    t_jax, t_torch = [], []
    for _ in range(rounds):
        t_jax.append(best([lambda: mm(a).block_until_ready()] * repeats))
        t_torch.append(best([torch_mm] * repeats))
    return {"jax": 2 * n**3 / min(t_jax) / 1e9, "torch": 2 * n**3 / min(t_torch) / 1e9, "n": n}


def best(fns) -> float:
    times = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class CompileLog:
    """Counts XLA compilations (jax.monitoring's backend-compile events) and their time."""

    def __init__(self):
        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self.events.append((str(kwargs.get("fun_name", "?")), duration))

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> tuple[list[str], float]:
        """Names of the functions compiled since ``mark`` and the total compile time."""
        new = self.events[mark:]
        return [name for name, _ in new], sum(d for _, d in new)


BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


# --- measurements -------------------------------------------------------------------------

def random_data(batches: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batches * batch, SAMPLES)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batches * batch).astype(np.int32)
    return x, y


def check_equivalence(seed: int = 0) -> dict:
    """The JAX network and its PyTorch twin with copied weights on 4 random clips: largest
    output difference in evaluation mode (running statistics) and in training mode (batch
    statistics, which also checks every batch norm's axes)."""
    model = models.TwoBranchEmbedder(rngs=nnx.Rngs(seed))
    twin = TorchTwoBranch()
    copy_weights(twin, model)
    # 4 clips: with batch statistics over only 2, the dense layers' variances are tiny and
    # float32 rounding differences get amplified
    x = np.random.default_rng(seed).normal(size=(4, SAMPLES)).astype(np.float32)
    out = {}
    for mode in ("eval", "train"):
        getattr(model, mode)()
        twin.train(mode == "train")
        z = np.asarray(model(jnp.asarray(x)))
        with torch.no_grad():
            zt = twin(torch.from_numpy(x)).numpy()
        out[f"max_abs_diff_{mode}"] = float(np.abs(z - zt).max())
        out[f"max_abs_output_{mode}"] = float(np.abs(z).max())
    out["output_shape"] = list(z.shape)
    return out


def measure_batch(batch: int, *, steps: int, repeats: int, torch_steps: int, device,
                  log: CompileLog) -> dict:
    """One batch size: warm-up of both, then ``repeats`` rounds of [one train.fit call of
    ``steps`` steps, ``torch_steps`` PyTorch steps], interleaved so that a busy moment of
    the shared machine hurts both alike."""
    config, model, head = build_jax(batch)
    twin = TorchTwoBranch().to(device)
    copy_weights(twin, model)  # the same initial weights (not needed for the timing)
    twin_head = TorchSubclusterAdaCos(np.asarray(head.centres[...]),
                                      float(head.scale[...])).to(device)
    x, y = random_data(steps, batch)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    if device.type == "cuda":
        inputs, labels = inputs.pin_memory(), labels.pin_memory()

    cache0, mark = train._train_step.cache_info(), log.mark()
    # The first call compiles the step (and the epoch's small helpers for this data size).
    first = fit_seconds(model, head, x, y, config, 1, seed=0)
    warm_compiles, warm_compile_s = log.since(mark)
    cache1 = train._train_step.cache_info()
    step = torch_trainer(twin, twin_head, inputs, labels, batch=batch,
                         config=config.train_config(), device=device)
    start = time.perf_counter()
    step(0)
    torch_sync(device)
    torch_first = time.perf_counter() - start

    jax_times, torch_times, mark = [], [], log.mark()
    for r in range(repeats):
        jax_times.append(fit_seconds(model, head, x, y, config, steps, seed=r + 1) / steps)
        for i in range(torch_steps):
            start = time.perf_counter()
            step(1 + r * torch_steps + i)
            torch_sync(device)
            torch_times.append(time.perf_counter() - start)
    timed_compiles, _ = log.since(mark)
    cache2 = train._train_step.cache_info()
    t_jax, t_torch = float(np.median(jax_times)), float(np.median(torch_times))
    return {
        "batch": batch,
        "jax_step_s": t_jax, "torch_step_s": t_torch,
        "jax_clips_per_s": batch / t_jax, "torch_clips_per_s": batch / t_torch,
        "ratio_jax_over_torch": t_torch / t_jax,
        "jax_step_s_per_call": jax_times, "torch_step_s_all": torch_times,
        "jax_fit_calls": repeats, "jax_steps_per_fit_call": steps,
        "jax_first_fit_call_s": first,
        "jax_compile_s_estimate": first - t_jax,
        "jax_xla_compiled_in_warmup": warm_compiles,
        "jax_xla_compile_s_in_warmup": warm_compile_s,
        # e.g. the stack of the losses of a longer epoch; the step itself must not appear
        "jax_xla_compiled_in_timed_calls": timed_compiles,
        "train_step_cache": {"warmup_call": {"hits": cache1.hits - cache0.hits,
                                             "misses": cache1.misses - cache0.misses},
                             "timed_calls": {"hits": cache2.hits - cache1.hits,
                                             "misses": cache2.misses - cache1.misses}},
        "jax_host_batch_s": host_batch_seconds(x, batch),
        "torch_first_step_s": torch_first,
    }


# --- where the JAX step time goes (python benchmarks/bench_reference.py --diagnose) ----------

def _jax_branch_fns(model: nnx.Module, part: str):
    """Jitted forward and gradient (w.r.t. the parameters) of sum(out^2) of one part of the
    network in training mode (batch statistics)."""
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.as_pure(params), nnx.as_pure(rest)
    model.eval()

    def loss(params, x):
        net = nnx.merge(graphdef, params, rest)
        return jnp.sum(getattr(net, part)(x) ** 2)

    fwd, grad = jax.jit(loss), jax.jit(jax.grad(loss))
    return (lambda x: fwd(params, x).block_until_ready(),
            lambda x: jax.block_until_ready(grad(params, x)))


# name, input spatial shape, c_in, c_out, kernel, stride, input needs a gradient
CONV_LAYERS = [
    ("spectrum conv 1 (k256/64)", (80000,), 1, 128, (256,), (64,), False),
    ("spectrum conv 2 (k64/32)", (1250,), 128, 128, (64,), (32,), True),
    ("spectrum conv 3 (k16/4)", (40,), 128, 128, (16,), (4,), True),
    ("stem 7x7/2", (311, 513), 1, 16, (7, 7), (2, 2), True),  # bin_norm lies before it
    ("stage 1 conv 3x3 (x4)", (77, 128), 16, 16, (3, 3), (1, 1), True),
    ("stage 2 conv1 3x3/2", (77, 128), 16, 32, (3, 3), (2, 2), True),
    ("stage 2 conv 3x3 (x3)", (39, 64), 32, 32, (3, 3), (1, 1), True),
    ("stage 3 conv1 3x3/2", (39, 64), 32, 64, (3, 3), (2, 2), True),
    ("stage 3 conv 3x3 (x3)", (20, 32), 64, 64, (3, 3), (1, 1), True),
    ("stage 4 conv1 3x3/2", (20, 32), 64, 128, (3, 3), (2, 2), True),
    ("stage 4 conv 3x3 (x3)", (10, 16), 128, 128, (3, 3), (1, 1), True),
]


def _xla_conv(x, w, stride):
    """What nnx.Conv does: channels-last 'SAME' convolution."""
    spec = ("NWC", "WIO", "NWC") if x.ndim == 3 else ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(x, w, stride, "SAME", dimension_numbers=spec)


def _xla_conv_nchw(x, w, stride):
    """The same convolution laid out channels-first (transposes in and out)."""
    y = jax.lax.conv_general_dilated(jnp.moveaxis(x, -1, 1), jnp.transpose(w, (3, 2, 0, 1)),
                                     stride, "SAME",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return jnp.moveaxis(y, 1, -1)


def _conv_table(batch: int, device) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for name, spatial, c_in, c_out, kernel, stride, input_grad in CONV_LAYERS:
        x = rng.normal(size=(batch, *spatial, c_in)).astype(np.float32)
        w = (rng.normal(size=(*kernel, c_in, c_out)) / math.sqrt(c_in * math.prod(kernel))
             ).astype(np.float32)
        xj, wj = jnp.asarray(x), jnp.asarray(w)
        impls = {"jax_xla_conv": _xla_conv}
        if len(kernel) == 1:
            impls["jax_library_strided_conv1d"] = lambda x, w, s: kernels.strided_conv1d(x, w,
                                                                                      s[0])
        else:
            impls["jax_xla_conv_nchw"] = _xla_conv_nchw
            if stride != (1, 1):
                impls["jax_library_strided_conv2d"] = lambda x, w, s: kernels.strided_conv2d(
                    x, w, s[0])
        row = {"layer": name, "batch": batch}
        ref = None
        for label, impl in impls.items():
            def f(x, w, impl=impl, stride=stride):
                return impl(x, w, stride)
            out = jax.jit(f)(xj, wj)
            ref = out if ref is None else ref
            if not np.allclose(out, ref, rtol=1e-3, atol=1e-3):
                raise AssertionError(f"{name}: {label} differs")
            cot = jnp.ones_like(out)
            fwd = jax.jit(f)
            both = jax.jit(jax.grad(lambda x, w, f=f, cot=cot: jnp.sum(f(x, w) * cot),
                                    argnums=(0, 1) if input_grad else (1,)))
            row[f"{label}_fwd_ms"] = 1e3 * bench.median_seconds(
                lambda fwd=fwd, xj=xj, wj=wj: fwd(xj, wj).block_until_ready(), 3)
            row[f"{label}_fwd_bwd_ms"] = 1e3 * bench.median_seconds(
                lambda both=both, xj=xj, wj=wj: jax.block_until_ready(both(xj, wj)), 3)
        conv = SameConv(c_in, c_out, kernel, stride).to(device)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.moveaxis(w, (-1, -2), (0, 1)).copy()))
        xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).to(device).requires_grad_(input_grad)

        def torch_fwd(conv=conv, xt=xt):
            with torch.no_grad():
                conv(xt)
            torch_sync(device)

        def torch_both(conv=conv, xt=xt):
            conv.zero_grad(set_to_none=True)
            xt.grad = None
            conv(xt).sum().backward()
            torch_sync(device)

        if not np.allclose(np.moveaxis(conv(xt).detach().cpu().numpy(), 1, -1), ref,
                           rtol=1e-3, atol=1e-3):
            raise AssertionError(f"{name}: torch differs")
        rows.append(_with_torch_times(row, torch_fwd, torch_both))
    return rows


def _with_torch_times(row: dict, torch_fwd, torch_both) -> dict:
    """``row`` with PyTorch's forward and forward + backward times, printed as one line."""
    row["torch_fwd_ms"] = 1e3 * bench.median_seconds(torch_fwd, 3)
    row["torch_fwd_bwd_ms"] = 1e3 * bench.median_seconds(torch_both, 3)
    print("  " + "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else str(v)
                           for k, v in row.items()), flush=True)
    return row


def _pool_table(batch: int, device) -> list[dict]:
    rng = np.random.default_rng(0)
    cases = [("3x3/2 VALID after the stem", (156, 257, 16), 3, False),
             ("2x2/2 SAME, stage 2 shortcut", (77, 128, 16), 2, True),
             ("2x2/2 SAME, stage 3 shortcut", (39, 64, 32), 2, True),
             ("2x2/2 SAME, stage 4 shortcut", (20, 32, 64), 2, True)]
    rows = []
    for name, shape, window, same in cases:
        x = rng.normal(size=(batch, *shape)).astype(np.float32)
        xj = jnp.asarray(x)
        impls = {"jax_nnx_max_pool": lambda x, w=window, s=same: nnx.max_pool(
                     x, (w, w), strides=(2, 2), padding="SAME" if s else "VALID"),
                 "jax_library_max_pool2d": lambda x, w=window, s=same: kernels.sliced_max_pool2d(
                     x, w, 2, same=s)}
        row = {"pool": name, "batch": batch}
        ref = None
        for label, f in impls.items():
            out = jax.jit(f)(xj)
            ref = out if ref is None else ref
            if not np.array_equal(out, ref):
                raise AssertionError(f"{name}: {label} differs")
            cot = jnp.asarray(rng.normal(size=out.shape).astype(np.float32))
            fwd = jax.jit(f)
            both = jax.jit(jax.grad(lambda x, f=f, cot=cot: jnp.sum(f(x) * cot)))
            row[f"{label}_fwd_ms"] = 1e3 * bench.median_seconds(
                lambda fwd=fwd, xj=xj: fwd(xj).block_until_ready(), 3)
            row[f"{label}_fwd_bwd_ms"] = 1e3 * bench.median_seconds(
                lambda both=both, xj=xj: both(xj).block_until_ready(), 3)
        xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).to(device).requires_grad_(True)

        def pool(t, w=window, s=same):
            return F.max_pool2d(t, w, 2, ceil_mode=s)

        def torch_both(xt=xt, pool=pool):
            xt.grad = None
            pool(xt).sum().backward()
            torch_sync(device)

        def torch_fwd(xt=xt, pool=pool):
            with torch.no_grad():
                pool(xt)
            torch_sync(device)

        rows.append(_with_torch_times(row, torch_fwd, torch_both))
    return rows


def _front_end_table(batch: int, device) -> dict:
    """Forward-only front ends (the waveform needs no gradient)."""
    x = np.random.default_rng(0).normal(size=(batch, SAMPLES)).astype(np.float32)
    xj, xt = jnp.asarray(x), torch.from_numpy(x).to(device)
    frames = 1 + (SAMPLES - N_FFT) // HOP
    idx = np.arange(0, SAMPLES - N_FFT + 1, HOP)[:, None] + np.arange(N_FFT)
    window = np.asarray(np.hanning(N_FFT + 1)[:-1], np.float32)

    def framed(x):  # hop = n_fft / 2: two half-frame reshapes side by side, no gather
        halves = x[:, :(frames + 1) * HOP].reshape(x.shape[0], frames + 1, HOP)
        return jnp.concatenate([halves[:, :-1], halves[:, 1:]], axis=-1)

    fns = {"jax_stft_gather_ms": lambda x: jnp.abs(jnp.fft.rfft(x[:, idx] * window, axis=-1)),
           "jax_stft_reshape_frames_ms": lambda x: jnp.abs(jnp.fft.rfft(framed(x) * window,
                                                                        axis=-1)),
           "jax_rfft_160000_ms": lambda x: jnp.abs(jnp.fft.rfft(x, axis=-1))}
    out = {"batch": batch}
    for name, f in fns.items():
        jf = jax.jit(f)
        out[name] = 1e3 * bench.median_seconds(lambda jf=jf: jf(xj).block_until_ready(), 5)
    win = torch.hann_window(N_FFT, periodic=True, device=device)

    def torch_stft():
        torch.stft(xt, N_FFT, HOP, window=win, center=False, return_complex=True).abs()
        torch_sync(device)

    def torch_rfft():
        torch.fft.rfft(xt).abs()
        torch_sync(device)

    out["torch_stft_ms"] = 1e3 * bench.median_seconds(torch_stft, 5)
    out["torch_rfft_160000_ms"] = 1e3 * bench.median_seconds(torch_rfft, 5)
    print("  " + "  ".join(f"{k}={v:.1f}" for k, v in out.items()), flush=True)
    return out


def diagnose(batch: int = 32) -> dict:
    """Forward and forward + backward of the whole network and of each branch, the conv
    layers one by one, the poolings and the front ends, JAX vs PyTorch, at ``batch``.
    Stored under "diagnostics" in the result file."""
    device, threads = setup()
    model = models.TwoBranchEmbedder(rngs=nnx.Rngs(0))
    twin = TorchTwoBranch().to(device)
    copy_weights(twin, model)
    twin.train()
    x = np.random.default_rng(0).normal(size=(batch, SAMPLES)).astype(np.float32)
    xj, xt = jnp.asarray(x), torch.from_numpy(x).to(device)
    parts = []
    print(f"network parts, batch {batch}, training mode (ms):", flush=True)
    for part, torch_part in (("_spectrum_branch", "spectrum_branch"),
                             ("_spectrogram_branch", "spectrogram_branch"),
                             ("__call__", "forward")):
        fwd, both = _jax_branch_fns(model, part)

        def torch_fwd(p=torch_part):
            with torch.no_grad():
                getattr(twin, p)(xt)
            torch_sync(device)

        def torch_both(p=torch_part):
            twin.zero_grad(set_to_none=True)
            (getattr(twin, p)(xt) ** 2).sum().backward()
            torch_sync(device)

        row = {"part": torch_part, "batch": batch,
               "jax_fwd_ms": 1e3 * bench.median_seconds(
                   lambda fwd=fwd: jax.block_until_ready(fwd(xj)), 3),
               "jax_fwd_bwd_ms": 1e3 * bench.median_seconds(
                   lambda both=both: jax.block_until_ready(both(xj)), 3),
               "torch_fwd_ms": 1e3 * bench.median_seconds(torch_fwd, 3),
               "torch_fwd_bwd_ms": 1e3 * bench.median_seconds(torch_both, 3)}
        parts.append(row)
        print(f"  {torch_part:20s} JAX fwd {row['jax_fwd_ms']:7.1f} fwd+bwd "
              f"{row['jax_fwd_bwd_ms']:7.1f} | PyTorch fwd {row['torch_fwd_ms']:7.1f} fwd+bwd "
              f"{row['torch_fwd_bwd_ms']:7.1f}", flush=True)
    print("conv layers (ms):", flush=True)
    convs = _conv_table(batch, device)
    print("max pooling (ms):", flush=True)
    pools = _pool_table(batch, device)
    print("front ends, forward only (ms):", flush=True)
    front = _front_end_table(batch, device)
    diagnostics = {"parts": parts, "conv_layers": convs, "max_pools": pools,
                   "front_ends": front, "torch_threads": threads,
                   "load_average_1min": os.getloadavg()[0]}
    stored = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    stored["diagnostics"] = diagnostics
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(stored, indent=2) + "\n")
    print(f"wrote diagnostics to {RESULT}")
    return diagnostics


# --- the benchmark --------------------------------------------------------------------------

def setup():
    """Threads and device: PyTorch on as many threads as this process has cores (XLA uses
    them all by default); on a GPU host both frameworks run on the accelerator (JAX by
    default, train.fit shards the batch over all devices), with TF32 allowed in PyTorch as
    XLA's default precision does on the GPU."""
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device, threads


def main() -> dict:
    start_all = time.perf_counter()
    device, threads = setup()
    log = CompileLog()
    load_before = os.getloadavg()[0]
    _, model, _ = build_jax(BATCHES[0])
    twin = TorchTwoBranch()
    counts = {"jax_nnx_params_of_model": param_count_jax(model),
              "torch_parameters": param_count_torch(twin)}
    if counts["jax_nnx_params_of_model"] != counts["torch_parameters"]:
        raise AssertionError(f"parameter counts differ: {counts}")
    equivalence = check_equivalence()
    flops = step_flops(twin)
    peak = matmul_gflops(device)
    del model, twin
    print(f"parameters: JAX {counts['jax_nnx_params_of_model']:,}, PyTorch "
          f"{counts['torch_parameters']:,}; outputs {equivalence['output_shape']}, max |JAX - "
          f"PyTorch| {equivalence['max_abs_diff_train']:.1e} (training mode), "
          f"{equivalence['max_abs_diff_eval']:.1e} (evaluation mode)", flush=True)
    print(f"work per clip: {flops['train_gflop_per_clip']:.2f} GFLOP per training step "
          f"(forward {flops['forward_gflop_per_clip']:.2f}), FFTs "
          f"{flops['fft_gflop_per_clip'] * 1e3:.0f} MFLOP; {peak['n']}^3 matmul: JAX "
          f"{peak['jax']:.0f} GFLOP/s, PyTorch {peak['torch']:.0f} GFLOP/s "
          f"({threads} threads)", flush=True)
    best_peak = max(peak["jax"], peak["torch"])

    batches = []
    for batch in BATCHES:
        r = measure_batch(batch, steps=FIT_STEPS, repeats=REPEATS.get(batch, 2),
                          torch_steps=TORCH_STEPS_PER_ROUND, device=device, log=log)
        for side in ("jax", "torch"):
            achieved = flops["train_gflop_per_clip"] * r[f"{side}_clips_per_s"]
            r[f"{side}_gflops_achieved"] = achieved
            r[f"{side}_share_of_own_matmul_peak"] = achieved / peak[side]
            r[f"{side}_share_of_best_matmul_peak"] = achieved / best_peak
        batches.append(r)
        print(f"batch {batch}: JAX train.fit {r['jax_clips_per_s']:.1f} clips/s "
              f"({r['jax_step_s']:.2f} s/step, host batch gather {r['jax_host_batch_s'] * 1e3:.0f}"
              f" ms of it), PyTorch {r['torch_clips_per_s']:.1f} clips/s "
              f"({r['torch_step_s']:.2f} s/step) -> JAX/PyTorch x{r['ratio_jax_over_torch']:.2f} "
              f"(target >= 1.5); share of matmul peak JAX "
              f"{r['jax_share_of_own_matmul_peak']:.0%}, PyTorch "
              f"{r['torch_share_of_own_matmul_peak']:.0%}; first fit call "
              f"{r['jax_first_fit_call_s']:.1f} s ({r['jax_xla_compile_s_in_warmup']:.1f} s XLA "
              f"compilation); timed calls: step-cache hits/misses "
              f"{r['train_step_cache']['timed_calls']['hits']}/"
              f"{r['train_step_cache']['timed_calls']['misses']}, compiled "
              f"{r['jax_xla_compiled_in_timed_calls']}", flush=True)
        if ("step" in r["jax_xla_compiled_in_timed_calls"]
                or r["train_step_cache"]["timed_calls"]["misses"]):
            raise AssertionError("the timed train.fit calls recompiled the step")

    result = {
        "benchmark": "two-branch reference network: training step, JAX vs PyTorch",
        "setup": {
            "network": "models.TwoBranchEmbedder defaults = the reference system (channels "
                       "16/16/32/64/128, spectrum 128/128, 2 x 128-d embedding), built by "
                       "detect.build_network; PyTorch twin TorchTwoBranch with the same weights",
            "head": f"sub-cluster AdaCos, {NUM_CLASSES} classes x "
                    f"{REFERENCE.num_subclusters} fixed random sub-centres, adaptive "
                    "scale ('faithful' update), identical centres in both",
            "step": "mixup (alpha 1) on device, forward in training mode, loss, backward, "
                    "Adam lr 1e-3 with coupled L2 2e-5 on every parameter",
            "input": f"random float32 waveforms, {SAMPLES} samples (10 s at 16 kHz)",
            "jax_timed_call": f"train.fit(model, head, x, y, TrainConfig(steps={FIT_STEPS}))"
                              f" on {FIT_STEPS} batches of data (one partial epoch), wall "
                              "time / steps, after a first call that compiles; median over "
                              "calls",
            "torch_timed_call": "one step (batch gather from the host tensor, mixup, "
                                "forward, backward, Adam), median over steps",
            "interleaved": f"{REPEATS} (per batch size) rounds of [one JAX fit call, "
                           f"{TORCH_STEPS_PER_ROUND} PyTorch steps]",
        },
        "machine": {"processor": platform.processor() or platform.machine(),
                    "platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch_threads": threads, "jax_devices": [str(d) for d in jax.devices()],
                    "torch_device": str(device), "xla_flags": os.environ.get("XLA_FLAGS"),
                    "load_average_1min_before": load_before,
                    "load_average_1min_after": os.getloadavg()[0]},
        "versions": {"jax": jax.__version__, "flax": importlib_version("flax"),
                     "optax": importlib_version("optax"), "torch": torch.__version__},
        "parameters": counts,
        "equivalence_with_copied_weights": equivalence,
        "flops": flops,
        "matmul_gflops": peak,
        "batches": batches,
        "wall_s": time.perf_counter() - start_all,
    }
    if RESULT.exists():  # keep the --diagnose tables of an earlier run
        old = json.loads(RESULT.read_text())
        if "diagnostics" in old:
            result["diagnostics"] = old["diagnostics"]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULT} ({result['wall_s']:.0f} s)")
    return {**result, "rows": [
        {"case": f"two-branch training step, batch {r['batch']}, train.fit "
                 f"({r['jax_clips_per_s']:.1f} vs {r['torch_clips_per_s']:.1f} clips/s)",
         "reference": f"PyTorch {torch.__version__}, same network and step",
         "ratio": round(r["ratio_jax_over_torch"], 2)} for r in batches]}


def importlib_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    diagnose() if "--diagnose" in sys.argv else main()

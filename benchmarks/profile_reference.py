"""Where the reference two-branch network's training step spends its time, JAX vs PyTorch.

The benchmark itself (the whole step through ``train.fit``, side by side with PyTorch) is
``bench_reference.py``; this script takes the step apart, at batch 32 of 10-s clips, each
piece timed forward and forward + backward (median of 3 after a warm-up):

* **parts**: the whole network and each branch (``models.TwoBranchEmbedder.spectrum_branch``,
  ``.spectrogram_branch``) in training mode (batch statistics), the gradient w.r.t. the
  parameters of sum(output^2); the PyTorch twin (``_reference_torch.TorchTwoBranch``) with
  the same weights.
* **conv layers**: every conv layer's shape of the network, as XLA's channels-last
  convolution (what ``nnx.Conv`` does), laid out channels-first, and as the library's CPU
  kernels (``kernels.strided_conv1d``, ``kernels.strided_conv2d``), which compute the same
  function (checked); beside PyTorch's ``SameConv``.
* **max pooling**: ``nnx.max_pool`` beside ``kernels.sliced_max_pool2d`` (equal outputs
  checked) and PyTorch's ``max_pool2d``.
* **front ends** (forward only: the waveform needs no gradient): the STFT by gathered frames
  and by two half-frame reshapes, the 160 000-point rFFT, and PyTorch's.

    pip install -c constraints.txt -e ".[dev,bench]"
    python benchmarks/profile_reference.py   # writes benchmarks/results/reference_profile.json
    python benchmarks/profile_reference.py --quick     # 1-s clips, batch 2: checks that it runs
    python benchmarks/profile_reference.py --jax-only  # the JAX columns alone, no PyTorch
                                                       # needed (printed, not written)
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import kernels, models
from asdtheory.repro import bench

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared _reference_*.py
import _reference_setup as shared

BATCH, QUICK_BATCH = 32, 2
N_FFT, HOP = models.TwoBranchEmbedder.N_FFT, models.TwoBranchEmbedder.HOP
PARTS = {"spectrum_branch": "spectrum_branch", "spectrogram_branch": "spectrogram_branch",
         "__call__": "forward"}  # JAX method -> PyTorch method


def ms(fn, repeats: int = 3) -> float:
    """Median milliseconds of ``fn`` (which blocks until its result is ready)."""
    return 1e3 * bench.median_seconds(fn, repeats)


def report(row: dict) -> dict:
    print("  " + "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)
    return row


def jax_ms(label: str, forward, loss, args: tuple, argnums) -> dict:
    """``{label}_fwd_ms`` and ``{label}_fwd_bwd_ms``: jitted ``forward(*args)`` and the
    gradient of ``loss(*args)`` w.r.t. ``args[argnums]``."""
    fwd, grad = jax.jit(forward), jax.jit(jax.grad(loss, argnums=argnums))
    return {f"{label}_fwd_ms": ms(lambda: jax.block_until_ready(fwd(*args))),
            f"{label}_fwd_bwd_ms": ms(lambda: jax.block_until_ready(grad(*args)))}


def torch_ms(ref, device, forward, zero_grad, *, square: bool = False) -> dict:
    """``torch_fwd_ms`` (``forward()`` without autograd) and ``torch_fwd_bwd_ms``
    (``zero_grad()``, then the backward pass of the sum of the output, or of its squares)."""
    import torch

    def fwd():
        with torch.no_grad():
            forward()
        ref.sync(device)

    def both():
        zero_grad()
        out = forward()
        (out**2 if square else out).sum().backward()
        ref.sync(device)

    return {"torch_fwd_ms": ms(fwd), "torch_fwd_bwd_ms": ms(both)}


def to_torch(device, x: np.ndarray, *, grad: bool = False):
    """Channels-last (B, ..., C) NumPy -> channels-first torch tensor on ``device``."""
    import torch

    return torch.from_numpy(np.moveaxis(x, -1, 1).copy()).to(device).requires_grad_(grad)


# --- the shapes of the reference network ---------------------------------------------------

def layers(samples: int) -> tuple[list[tuple], list[tuple]]:
    """The conv layers and max poolings of the reference network for clips of ``samples``
    samples: (name, input spatial shape, c_in, c_out, kernel, stride, the input needs a
    gradient) and (name, input shape (H, W, C), window, 'SAME' padding)."""
    embedder = shared.REFERENCE.embedder
    channels, width = embedder.channels, embedder.spectrum_channels
    convs, pools = [], []
    length = samples // 2  # |rFFT| bins the spectrum branch keeps
    for i, (c_in, kernel, stride) in enumerate(((1, 256, 64), (width, 64, 32), (width, 16, 4))):
        convs.append((f"spectrum conv {i + 1} (k{kernel}/{stride})", (length,), c_in, width,
                      (kernel,), (stride,), i > 0))
        length = -(-length // stride)
    spectrogram = (1 + (samples - N_FFT) // HOP, N_FFT // 2 + 1)  # frames, bins
    convs.append(("stem 7x7/2", spectrogram, 1, channels[0], (7, 7), (2, 2), True))
    stem = tuple(-(-n // 2) for n in spectrogram)
    pools.append(("3x3/2 VALID after the stem", (*stem, channels[0]), 3, False))
    shape = tuple((n - 3) // 2 + 1 for n in stem)
    convs.append(("stage 1 conv 3x3 (x4)", shape, channels[0], channels[1], (3, 3), (1, 1),
                  True))
    for stage, (c_in, c_out) in enumerate(itertools.pairwise(channels[1:]), start=2):
        pools.append((f"2x2/2 SAME, stage {stage} shortcut", (*shape, c_in), 2, True))
        convs.append((f"stage {stage} conv1 3x3/2", shape, c_in, c_out, (3, 3), (2, 2), True))
        shape = tuple(-(-n // 2) for n in shape)
        convs.append((f"stage {stage} conv 3x3 (x3)", shape, c_out, c_out, (3, 3), (1, 1),
                      True))
    return convs, pools


# --- the tables ------------------------------------------------------------------------------

def parts_table(ref, device, batch: int, samples: int) -> list[dict]:
    """The whole network and each branch in training mode: sum(output^2) and its gradient
    w.r.t. the parameters."""
    _, model, _ = shared.reference_network(batch, samples)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.as_pure(params), nnx.as_pure(rest)
    model.eval()
    x = shared.random_clips(batch, samples)
    xj = jnp.asarray(x)
    if ref is not None:
        import torch

        twin = ref.TorchTwoBranch(samples).to(device)
        ref.copy_weights(twin, model)
        twin.train()
        xt = torch.from_numpy(x).to(device)
    rows = []
    for part, torch_part in PARTS.items():
        def forward(params, x, part=part):
            return getattr(nnx.merge(graphdef, params, rest), part)(x)

        def loss(params, x, forward=forward):
            return jnp.sum(forward(params, x) ** 2)

        row = {"part": torch_part, "batch": batch,
               **jax_ms("jax", forward, loss, (params, xj), 0)}
        if ref is not None:
            row.update(torch_ms(ref, device, lambda p=torch_part: getattr(twin, p)(xt),
                                lambda: twin.zero_grad(set_to_none=True), square=True))
        rows.append(report(row))
    return rows


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


def conv_table(ref, device, batch: int, samples: int) -> list[dict]:
    """Every conv layer: XLA's convolution, channels-first, the library's kernel (outputs
    checked equal), PyTorch's."""
    rng = np.random.default_rng(0)
    rows = []
    for name, spatial, c_in, c_out, kernel, stride, input_grad in layers(samples)[0]:
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
        first = None
        for label, impl in impls.items():
            def f(x, w, impl=impl, stride=stride):
                return impl(x, w, stride)
            out = jax.jit(f)(xj, wj)
            first = out if first is None else first
            if not np.allclose(out, first, rtol=1e-3, atol=1e-3):
                raise AssertionError(f"{name}: {label} differs")
            row.update(jax_ms(label, f, lambda x, w, f=f: jnp.sum(f(x, w)), (xj, wj),
                              (0, 1) if input_grad else (1,)))
        if ref is not None:
            import torch

            conv = ref.SameConv(c_in, c_out, kernel, stride).to(device)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.moveaxis(w, (-1, -2), (0, 1)).copy()))
            xt = to_torch(device, x, grad=input_grad)
            if not np.allclose(np.moveaxis(conv(xt).detach().cpu().numpy(), 1, -1), first,
                               rtol=1e-3, atol=1e-3):
                raise AssertionError(f"{name}: torch differs")

            def zero(conv=conv, xt=xt):
                conv.zero_grad(set_to_none=True)
                xt.grad = None

            row.update(torch_ms(ref, device, lambda conv=conv, xt=xt: conv(xt), zero))
        rows.append(report(row))
    return rows


def pool_table(ref, device, batch: int, samples: int) -> list[dict]:
    """Every max pooling: nnx.max_pool, the library's kernel (outputs checked equal),
    PyTorch's max_pool2d (ceil_mode for 'SAME': its one padding row/column is on the high
    side)."""
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, window, same in layers(samples)[1]:
        x = rng.normal(size=(batch, *shape)).astype(np.float32)
        xj = jnp.asarray(x)
        impls = {"jax_nnx_max_pool": lambda x, w=window, s=same: nnx.max_pool(
                     x, (w, w), strides=(2, 2), padding="SAME" if s else "VALID"),
                 "jax_library_max_pool2d": lambda x, w=window, s=same: kernels.sliced_max_pool2d(
                     x, w, 2, same=s)}
        row = {"pool": name, "batch": batch}
        first = None
        for label, f in impls.items():
            out = jax.jit(f)(xj)
            first = out if first is None else first
            if not np.array_equal(out, first):
                raise AssertionError(f"{name}: {label} differs")
            cot = jnp.asarray(rng.normal(size=out.shape).astype(np.float32))
            row.update(jax_ms(label, f, lambda x, f=f, cot=cot: jnp.sum(f(x) * cot), (xj,), 0))
        if ref is not None:
            import torch.nn.functional as F

            xt = to_torch(device, x, grad=True)

            def zero(xt=xt):
                xt.grad = None

            row.update(torch_ms(ref, device, lambda xt=xt, w=window, s=same: F.max_pool2d(
                xt, w, 2, ceil_mode=s), zero))
        rows.append(report(row))
    return rows


def front_end_table(ref, device, batch: int, samples: int) -> dict:
    """Forward-only front ends (the waveform needs no gradient)."""
    x = shared.random_clips(batch, samples)
    xj = jnp.asarray(x)
    frames = 1 + (samples - N_FFT) // HOP
    idx = np.arange(0, samples - N_FFT + 1, HOP)[:, None] + np.arange(N_FFT)
    window = np.asarray(np.hanning(N_FFT + 1)[:-1], np.float32)

    def framed(x):  # hop = n_fft / 2: two half-frame reshapes side by side, no gather
        halves = x[:, :(frames + 1) * HOP].reshape(x.shape[0], frames + 1, HOP)
        return jnp.concatenate([halves[:, :-1], halves[:, 1:]], axis=-1)

    fns = {"jax_stft_gather_ms": lambda x: jnp.abs(jnp.fft.rfft(x[:, idx] * window, axis=-1)),
           "jax_stft_reshape_frames_ms": lambda x: jnp.abs(jnp.fft.rfft(framed(x) * window,
                                                                        axis=-1)),
           f"jax_rfft_{samples}_ms": lambda x: jnp.abs(jnp.fft.rfft(x, axis=-1))}
    out = {"batch": batch}
    for name, f in fns.items():
        jf = jax.jit(f)
        out[name] = ms(lambda jf=jf: jf(xj).block_until_ready(), 5)
    if ref is not None:
        import torch

        xt = torch.from_numpy(x).to(device)
        win = torch.hann_window(N_FFT, periodic=True, device=device)

        def torch_stft():
            torch.stft(xt, N_FFT, HOP, window=win, center=False, return_complex=True).abs()
            ref.sync(device)

        def torch_rfft():
            torch.fft.rfft(xt).abs()
            ref.sync(device)

        out["torch_stft_ms"] = ms(torch_stft, 5)
        out[f"torch_rfft_{samples}_ms"] = ms(torch_rfft, 5)
    return report(out)


def main(quick: bool = False, jax_only: bool = False) -> dict:
    ref = None if jax_only else shared.require_torch(
        "profile_reference.py", "; or run it with --jax-only")  # before any work
    batch, samples = (QUICK_BATCH, shared.QUICK_SAMPLES) if quick else (BATCH, shared.SAMPLES)
    start = time.perf_counter()
    device, threads = (None, None) if ref is None else ref.setup_device()
    machine = shared.machine()
    print(f"network parts, batch {batch}, training mode (ms):", flush=True)
    parts = parts_table(ref, device, batch, samples)
    print("conv layers (ms):", flush=True)
    convs = conv_table(ref, device, batch, samples)
    print("max pooling (ms):", flush=True)
    pools = pool_table(ref, device, batch, samples)
    print("front ends, forward only (ms):", flush=True)
    front = front_end_table(ref, device, batch, samples)
    result = {"benchmark": "two-branch reference network, part by part: JAX vs PyTorch",
              "batch": batch, "samples": samples,
              "parts": parts, "conv_layers": convs, "max_pools": pools, "front_ends": front,
              "torch_threads": threads, "torch_device": None if device is None else str(device),
              "machine": {**machine, "load_average_1min_after": os.getloadavg()[0]},
              "versions": shared.versions(*(() if ref is None else ("torch",))),
              "wall_s": time.perf_counter() - start}
    skip = "--quick" if quick else "--jax-only" if jax_only else None
    shared.write("reference_profile.json", result, skip=skip)
    print(f"({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    shared.run(main, __doc__, jax_only="the JAX columns alone (no PyTorch needed); printed, "
                                       "not written")

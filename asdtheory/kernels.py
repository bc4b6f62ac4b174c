"""Faster equivalents of XLA operations for the CPU, selected at one point per platform.

The science modules (``models``, ``audio``) call the functions of the first group; each
decides here, by :func:`use_cpu_kernels`, whether the CPU-tuned version or XLA's own
operation runs. Every CPU-tuned version computes the same function and is tested equal to
the plain XLA version (``tests/test_kernels.py``); ``benchmarks/`` measures what each saves.

Selected per platform:

* :func:`conv1d_same`, :func:`conv2d_same` -- strided 'SAME' convolutions; on the CPU as
  reshape + matmul (1-D) and space-to-depth (2-D), whose gradients XLA's CPU backend runs
  1.5-6x faster than its own strided convolution;
* :func:`max_pool2d` -- max pooling; on the CPU as maxima of strided slices, whose gradient
  (elementwise selects) runs 3-10x faster than XLA's select-and-scatter;
* :func:`split_over_cpus` -- a batched host computation split into one part per usable CPU,
  each in its own thread: XLA's CPU runtime runs one call's work on one core (``audio.log_mel``).

The same on every platform (they change compilation time, not results):

* :func:`lecun_normal`, :func:`glorot_uniform` -- initialisers drawn as a flat vector and
  reshaped, the numbers of ``nnx.initializers`` bit for bit; XLA compiles JAX's threefry
  sampler for a 4-d shape in seconds on the CPU, a flat one in a fraction of that.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["conv1d_same", "conv2d_same", "glorot_uniform", "lecun_normal", "max_pool2d",
           "same_padding", "split_over_cpus", "strided_conv1d", "strided_conv2d",
           "use_cpu_kernels"]


def use_cpu_kernels() -> bool:
    """The one switch: True when the default backend is the CPU (decided at trace time, so
    that importing the library initialises no backend before ``jax.distributed``)."""
    return jax.default_backend() == "cpu"


def conv1d_same(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """1-D 'SAME' convolution (B, L, C) * (k, C, O) -> (B, ceil(L / stride), O), as
    ``nnx.Conv(..., strides=stride, padding="SAME")`` computes it."""
    if use_cpu_kernels() and kernel.shape[0] % stride == 0:
        return strided_conv1d(x, kernel, stride)
    return jax.lax.conv_general_dilated(x, kernel, (stride,), "SAME",
                                        dimension_numbers=("NWC", "WIO", "NWC"))


def conv2d_same(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """2-D 'SAME' convolution (B, H, W, C_in) * (kh, kw, C_in, O) with a square stride."""
    if use_cpu_kernels():
        return strided_conv2d(x, kernel, stride)
    return _xla_conv2d(x, kernel, stride)


def max_pool2d(x: jax.Array, window: int, stride: int, *, same: bool) -> jax.Array:
    """``nnx.max_pool`` over (B, H, W, C) with a square window (padding "SAME" if ``same``
    else "VALID")."""
    if use_cpu_kernels():
        return sliced_max_pool2d(x, window, stride, same=same)
    return nnx.max_pool(x, (window, window), strides=(stride, stride),
                        padding="SAME" if same else "VALID")


# ------------------------------------------------------------------- the CPU versions

def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/flax 'SAME' padding (low, high) of one axis: ceil(size / stride) outputs, the odd
    padding element on the high side."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def strided_conv1d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """1-D 'SAME' convolution (B, L, C) * (k, C, O) -> (B, ceil(L / stride), O) for a kernel
    length k that is a multiple of the stride, as reshape + one matmul.

    The padded signal is cut into blocks of ``stride`` samples; k / stride neighbouring
    blocks side by side form each output's window. Same function as ``nnx.Conv(...,
    padding="SAME")``; on the CPU its gradient is ~6x faster than XLA's strided convolution
    for the spectrum branch's second layer (``benchmarks/profile_reference.py``).
    """
    k = kernel.shape[0]
    blocks_per_window, rem = divmod(k, stride)
    if rem:
        raise ValueError(f"kernel length {k} is not a multiple of the stride {stride}.")
    out = -(-x.shape[1] // stride)
    low, _ = same_padding(x.shape[1], k, stride)
    total = (out + blocks_per_window - 1) * stride  # 'SAME' padding rounded up to blocks
    x = jnp.pad(x, ((0, 0), (low, total - x.shape[1] - low), (0, 0)))
    blocks = x.reshape(x.shape[0], out + blocks_per_window - 1, stride * x.shape[2])
    windows = jnp.concatenate([blocks[:, j:j + out] for j in range(blocks_per_window)], -1)
    return windows @ kernel.reshape(k * kernel.shape[1], kernel.shape[2])


def _space_to_depth_conv2d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """'SAME' stride-s convolution as a stride-1 'VALID' convolution of s x s blocks: the
    padded input's blocks become s * s * C_in channels, the kernel (zero-padded to a
    multiple of s) is cut the same way."""
    (kh, kw), c_in, c_out = kernel.shape[:2], kernel.shape[2], kernel.shape[3]
    qh, qw = -(-kh // stride), -(-kw // stride)
    pads = []
    for size, q, k in ((x.shape[1], qh, kh), (x.shape[2], qw, kw)):
        out = -(-size // stride)
        low, _ = same_padding(size, k, stride)
        pads.append((low, stride * (out - 1 + q) - size - low))
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    b, h, w = x.shape[:3]
    x = x.reshape(b, h // stride, stride, w // stride, stride, c_in)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // stride, w // stride, -1)
    kernel = jnp.pad(kernel, ((0, qh * stride - kh), (0, qw * stride - kw), (0, 0), (0, 0)))
    kernel = kernel.reshape(qh, stride, qw, stride, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
    return jax.lax.conv_general_dilated(x, kernel.reshape(qh, qw, -1, c_out), (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _xla_conv2d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def strided_conv2d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """2-D 'SAME' convolution (B, H, W, C_in) * (kh, kw, C_in, O) with a square stride.

    Same function as ``nnx.Conv(..., strides=stride, padding="SAME")``, computed the way
    XLA runs fastest on the CPU for each part: the output and the input gradient through
    space-to-depth (a stride-1 convolution over stride^2 * C_in channels), the kernel
    gradient through XLA's strided convolution. For the two-branch network's 7x7 stride-2
    stem this halves the layer's forward + backward time
    (``benchmarks/profile_reference.py``).
    """
    return _space_to_depth_conv2d(x, kernel, stride)


def _strided_conv2d_fwd(x, kernel, stride):
    return _space_to_depth_conv2d(x, kernel, stride), (x, kernel)


def _strided_conv2d_bwd(stride, residuals, g):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _space_to_depth_conv2d(x, kernel, stride), x)
    _, kernel_vjp = jax.vjp(lambda k: _xla_conv2d(x, k, stride), kernel)
    return input_vjp(g)[0], kernel_vjp(g)[0]


strided_conv2d.defvjp(_strided_conv2d_fwd, _strided_conv2d_bwd)


def sliced_max_pool2d(x: jax.Array, window: int, stride: int, *, same: bool) -> jax.Array:
    """``nnx.max_pool`` over (B, H, W, C) with a square window, as maxima of strided slices,
    first along the rows, then along the columns (padding "SAME" if ``same`` else "VALID").

    Same function; on the CPU its gradient (elementwise selects) is 3-10x faster than XLA's
    select-and-scatter (``benchmarks/profile_reference.py``).
    """
    if same:
        pads = [same_padding(n, window, stride) for n in x.shape[1:3]]
        x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    for axis in (1, 2):  # separable: rows, then columns
        n = (x.shape[axis] - window) // stride + 1
        parts = [jax.lax.slice_in_dim(x, i, i + (n - 1) * stride + 1, stride, axis)
                 for i in range(window)]
        x = functools.reduce(jnp.maximum, parts)
    return x


def lecun_normal(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """LeCun normal initialisation: N(0, 1 / fan_in), fan_in = prod(shape[:-1]) (inputs x
    receptive field for a conv kernel (kh, kw, c_in, c_out)).

    Drawn as a flat vector and reshaped: the XLA CPU compilation of JAX's (partitionable)
    threefry sampler takes seconds for every 4-d shape, but well under a second in 1-d.
    """
    fan_in = math.prod(shape[:-1])
    flat = jax.random.normal(key, (math.prod(shape),), dtype) / math.sqrt(fan_in)
    return flat.reshape(shape)


def glorot_uniform(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """Glorot (Xavier) uniform initialisation, Keras' default: U(-a, a) with
    a = sqrt(6 / (fan_in + fan_out)), fan_in = prod(shape[:-1]), fan_out = shape[-1] x the
    receptive field (prod(shape[:-2])).

    The same numbers, bit for bit, as ``nnx.initializers.glorot_uniform()``, drawn as a flat
    vector and reshaped for the reason given in :func:`lecun_normal` (1-2 s of compilation
    per 4-d kernel shape on one CPU core, ~0.2 s flat).
    """
    receptive_field = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
    variance = jnp.array(1.0 / ((fan_in + fan_out) / 2), dtype=dtype)
    flat = jax.random.uniform(key, (math.prod(shape),), dtype, -1) * jnp.sqrt(3 * variance)
    return flat.reshape(shape)


# ------------------------------------------------------------ host work over the CPUs

_ALIGNMENT = 64  # bytes: XLA's CPU client takes such host buffers without copying them
_STAGING_BYTES = 1 << 27  # largest host input whose staging buffer log_mel keeps for reuse
_staging_lock = threading.Lock()
_staging: list[np.ndarray] = []  # reusable uint8 buffers not in use, one per usable CPU at most


@contextlib.contextmanager
def _staged(host: np.ndarray):
    """A float32 device array holding the values of the NumPy array ``host``, valid inside
    the ``with`` block only.

    The values are copied once into a 64-byte aligned host buffer, which ``device_put`` hands
    to XLA without a second copy (``jnp.asarray`` of 41 MB takes a slow path, 30-80 ms). The
    buffers of inputs up to _STAGING_BYTES are kept and reused: a fresh one costs a page fault
    per 4 KB on its first write, as long as the copy itself. A buffer in use (another thread
    inside the block) is never shared.
    """
    nbytes = host.size * 4
    reuse = nbytes <= _STAGING_BYTES
    with _staging_lock:
        fitting = [i for i, b in enumerate(_staging) if b.size >= nbytes + _ALIGNMENT]
        raw = _staging.pop(min(fitting, key=lambda i: _staging[i].size)) if (
            reuse and fitting) else None
    if raw is None:
        raw = np.empty(nbytes + _ALIGNMENT, np.uint8)
    try:
        start = -raw.ctypes.data % _ALIGNMENT
        buffer = raw[start:start + nbytes].view(np.float32).reshape(host.shape)
        np.copyto(buffer, host, casting="unsafe")
        yield jax.device_put(buffer)
    finally:
        if reuse:
            with _staging_lock:
                if len(_staging) < usable_cpus():
                    _staging.append(raw)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def in_one_call(kernel: Callable, x) -> jax.Array:
    """``kernel(flat, first, count=)`` over all clips of ``x`` (..., T) in one call."""
    if x.ndim < 2:
        return kernel(x, 0, count=1)
    flat = x.reshape(-1, x.shape[-1])
    out = kernel(flat, 0, count=flat.shape[0])
    return out.reshape(*x.shape[:-1], *out.shape[-2:])


def split_over_cpus(kernel: Callable, x, *, min_clips_per_part: int) -> jax.Array:
    """:func:`in_one_call` of the NumPy or device array ``x``, with the clips split into one
    contiguous part per usable CPU (parts of at least ``min_clips_per_part`` clips), each
    part (staged, if on the host, and) computed by ``kernel(flat, first, count=)`` in its
    own thread: XLA's CPU runtime runs one call's work one chunk after another, while calls
    from several threads run side by side. On other platforms, one call. ``kernel`` must
    give each clip a result that does not depend on the other clips of its call: then the
    result is the same bit for bit."""
    host = isinstance(x, np.ndarray)
    device = jax.devices()[0] if host else next(iter(x.devices()))
    flat = x.reshape(-1, x.shape[-1]) if x.ndim >= 2 else x[None]  # (clips, T)
    clips = flat.shape[0]
    parts = 1 if device.platform != "cpu" else min(usable_cpus(),
                                                   clips // max(1, min_clips_per_part))

    def part(first: int, stop: int) -> jax.Array:
        if not host:
            return kernel(flat, first, count=stop - first).block_until_ready()
        with _staged(flat[first:stop]) as staged:
            return kernel(staged, 0, count=stop - first).block_until_ready()

    if parts < 2:
        if not host:
            return in_one_call(kernel, x)
        with _staged(x) as staged:
            return in_one_call(kernel, staged).block_until_ready()
    bounds = [clips * k // parts for k in range(parts + 1)]
    with ThreadPoolExecutor(parts) as pool:
        out = jnp.concatenate(list(pool.map(part, bounds[:-1], bounds[1:])))
    return out.reshape(*x.shape[:-1], *out.shape[-2:])

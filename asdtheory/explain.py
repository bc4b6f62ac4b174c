"""RISE saliency maps of an anomaly score over a log-mel spectrogram (:func:`rise`) or, for a
detector that listens to waveforms, over the clip's STFT (:func:`rise_waveform`).

RISE (Randomized Input Sampling for Explanation; V. Petsiuk, A. Das and K. Saenko, "RISE:
Randomized input sampling for explanation of black-box models", BMVC 2018) explains a black-box
score f by probing it with randomly masked copies of the input I:

    S(t, k) = 1 / (N p) * sum_i f(I (.) M_i) M_i(t, k),

where M_1..M_N are smooth random masks with mean p (the keep probability). S(t, k) estimates
E[f(I (.) M) | time-frequency bin (t, k) kept]: bins whose presence raises the score get a high
saliency. The masks follow the paper exactly, with a coarse (grid_t, grid_f) grid over time x
frequency in place of its s x s grid: a binary grid of (grid_t + 1, grid_f + 1) cells, each
kept with probability p, is bilinearly upsampled to (grid + 1) cells of size
C = ceil((T, F) / grid) and cropped to (T, F) at a random offset in [0, C) per axis, so that
the mask edges do not always fall on the same bins.

Masking a *log*-mel spectrogram. Multiplying log-mel values by zero would set masked bins to
0 dB -- an arbitrary level, loud or quiet depending on the front-end's reference -- not to
silence. Here a masked-out bin is filled with a ``baseline`` value instead:

    I (.) M := baseline + M (I - baseline),

which for binary M keeps the bin or replaces it by the baseline, and in between interpolates
in the log domain (i.e. scales the power spectrogram geometrically towards the baseline power).
The default baseline is the clip's minimum log-mel value: a masked region sounds as quiet as
the quietest bin of the clip, i.e. the energy there is removed. Pass the clip's mean (a
"grey" fill, as for images) or any (T, F) reference, e.g. a mean normal spectrogram, instead.

``centre=True`` subtracts the mean score over the masks, f_bar, before weighting:
S_c = S - f_bar * mean_i(M_i) / p, which estimates Cov(f, M(t, k)) / p: positive where keeping
a bin raises the score above its average, negative where it lowers it, ~0 where it does not
matter. :func:`region_share` measures how much of the positive saliency falls into a region,
e.g. the bins where the machine signal dominates the noise (:func:`dominance_mask`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from asdtheory import audio
from asdtheory._validation import as_float_array, broadcasts_to, check_scalar

__all__ = ["dominance_mask", "region_share", "rise", "rise_masks", "rise_waveform"]


def _grid(grid, shape: tuple[int, int]) -> tuple[int, int]:
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        grid = (grid, grid)
    if not (isinstance(grid, tuple | list) and len(grid) == 2):
        raise ValueError(f"grid must be an int or a pair (grid_t, grid_f), got {grid!r}.")
    for g, n, axis in zip(grid, shape, ("time", "frequency"), strict=True):
        check_scalar(g, "grid", low=1, integer=True)
        if g > n:
            raise ValueError(f"grid has {g} cells along {axis} but the spectrogram has only {n} "
                             f"bins there; use at most {n} cells.")
    return int(grid[0]), int(grid[1])


def _check_keep_prob(keep_prob) -> float:
    check_scalar(keep_prob, "keep_prob", low=0.0, high=1.0)
    if keep_prob == 0:
        raise ValueError("keep_prob must be > 0 (a mask that keeps nothing explains nothing); "
                         "the paper uses 0.5.")
    return float(keep_prob)


def _upsampling_matrix(n_coarse: int, factor: int) -> np.ndarray:
    """(n_coarse * factor, n_coarse) linear interpolation weights: half-pixel centres, values
    held constant beyond the first and last coarse centre -- ``jax.image.resize(...,
    "linear")`` (and skimage's order-1 resize used by the RISE authors) along one axis."""
    u = (np.arange(n_coarse * factor) + 0.5) / factor - 0.5
    u = np.clip(u, 0, n_coarse - 1)
    lo = np.floor(u).astype(int)
    hi = np.minimum(lo + 1, n_coarse - 1)
    w = u - lo
    matrix = np.zeros((u.size, n_coarse))
    np.add.at(matrix, (np.arange(u.size), lo), 1 - w)
    np.add.at(matrix, (np.arange(u.size), hi), w)
    return matrix.astype(np.float32)


@functools.partial(jax.jit, static_argnames=("shape", "grid"))
def _masks(keys: jax.Array, keep_prob, *, shape: tuple[int, int],
           grid: tuple[int, int]) -> jax.Array:
    cells = tuple(math.ceil(n / g) for n, g in zip(shape, grid, strict=True))
    # Separable bilinear upsampling as two small matrix products; the random shift crops rows
    # of the matrices instead of the upsampled image.
    up_t, up_f = (jnp.asarray(_upsampling_matrix(g + 1, c)) for g, c in
                  zip(grid, cells, strict=True))

    n_coarse = (grid[0] + 1) * (grid[1] + 1)

    def one(key):
        # One uniform draw for the cells and both offsets: a single threefry call compiles
        # several times faster than bernoulli + 2 x randint.
        u = jax.random.uniform(key, (n_coarse + 2,))
        coarse = (u[:n_coarse] < keep_prob).astype(jnp.float32).reshape(grid[0] + 1, -1)
        offsets = jnp.floor(u[n_coarse:] * jnp.array(cells)).astype(jnp.int32)
        rows = jax.lax.dynamic_slice_in_dim(up_t, offsets[0], shape[0])
        cols = jax.lax.dynamic_slice_in_dim(up_f, offsets[1], shape[1])
        return rows @ coarse @ cols.T

    return jax.vmap(one)(keys)


def rise_masks(key: jax.Array, n_masks: int, *, shape: tuple[int, int], grid=(8, 8),
               keep_prob: float = 0.5) -> jax.Array:
    """The RISE masks: (n_masks, T, F) values in [0, 1] with expectation ``keep_prob``.

    Mask i depends only on ``key`` and i (it is drawn from ``jax.random.split(key,
    n_masks)[i]``), so :func:`rise` with the same key uses exactly these masks whatever its
    ``batch_size``.

    Args:
      key: PRNG key.
      n_masks: number of masks N >= 1.
      shape: (T, F) of the spectrogram.
      grid: coarse grid (grid_t, grid_f), or an int for both; 1 <= grid <= shape per axis.
      keep_prob: probability p in (0, 1] that a coarse cell is kept.
    """
    check_scalar(n_masks, "n_masks", low=1, integer=True)
    if not (isinstance(shape, tuple | list) and len(shape) == 2):
        raise ValueError(f"shape must be a pair (T, F), got {shape!r}.")
    for n in shape:
        check_scalar(n, "shape", low=1, integer=True)
    shape = (int(shape[0]), int(shape[1]))
    keys = jax.random.split(key, int(n_masks))
    return _masks(keys, _check_keep_prob(keep_prob), shape=shape, grid=_grid(grid, shape))


@jax.jit
def _blend(spectrogram, baseline, masks):
    return baseline + masks * (spectrogram - baseline)


@jax.jit
def _accumulate(sums, masks, scores, valid):
    weighted, mask_sum, score_sum = sums
    scores = jnp.where(valid, scores, 0.0)
    masks = masks * valid[:, None, None]
    return (weighted + jnp.tensordot(scores, masks, axes=1), mask_sum + masks.sum(axis=0),
            score_sum + scores.sum())


def rise(score_fn: Callable[[jax.Array], jax.Array], spectrogram, key: jax.Array, *,
         n_masks: int = 2000, grid=(8, 8), keep_prob: float = 0.5, baseline=None,
         batch_size: int = 100, centre: bool = False) -> jax.Array:
    """RISE saliency of ``score_fn`` for one log-mel spectrogram (see the module docstring).

    S = sum_i f(I (.) M_i) M_i / (N p), with I (.) M = baseline + M (I - baseline); with
    ``centre=True``, S - f_bar sum_i M_i / (N p), f_bar the mean score over the masks.

    ``score_fn`` is called on batches of ``batch_size`` masked spectrograms, always of the same
    shape (the last batch is padded and the padding ignored), so a jitted ``score_fn`` compiles
    once and memory stays bounded by one batch; pass ``jax.jit(f)`` for speed. Any callable
    works, also one that returns NumPy (e.g. a NumPy scoring back-end).

    Args:
      score_fn: maps (B, T, F) spectrograms to (B,) anomaly scores (higher = more anomalous),
        e.g. a trained embedding network followed by its back-end.
      spectrogram: (T, F) log-mel spectrogram (time x frequency).
      key: PRNG key; the masks are those of :func:`rise_masks` with the same key.
      n_masks: number of masks N (the paper uses 4000-8000 for images).
      grid: coarse grid (grid_t, grid_f) or an int for both.
      keep_prob: keep probability p in (0, 1].
      baseline: fill value of masked-out bins: None (the clip's minimum), a scalar or an
        array broadcastable to (T, F).
      batch_size: masks per call of ``score_fn``.
      centre: subtract the mean score (see the module docstring).

    Returns:
      (T, F) float32 saliency map.
    """
    spectrogram = as_float_array(spectrogram, "spectrogram", ndim=2).astype(jnp.float32)
    check_scalar(batch_size, "batch_size", low=1, integer=True)
    check_scalar(n_masks, "n_masks", low=1, integer=True)
    keep_prob = _check_keep_prob(keep_prob)
    shape = tuple(spectrogram.shape)
    grid = _grid(grid, shape)
    if baseline is None:
        baseline = jnp.min(spectrogram)
    baseline = as_float_array(baseline, "baseline").astype(jnp.float32)
    if not broadcasts_to(baseline.shape, shape):
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the "
                         f"spectrogram's shape {shape}; pass a scalar or a (T, F) array.")

    n_masks, batch_size = int(n_masks), min(int(batch_size), int(n_masks))
    n_batches = -(-n_masks // batch_size)
    # Keys for the padded total: key i (< n_masks) is the same as in rise_masks(key, n_masks).
    keys = jax.random.split(key, n_masks)
    keys = jnp.concatenate([keys, keys[: n_batches * batch_size - n_masks]])
    zeros = jnp.zeros(shape, jnp.float32)
    sums = (zeros, zeros, jnp.zeros((), jnp.float32))
    for b in range(n_batches):
        masks = _masks(keys[b * batch_size:(b + 1) * batch_size], keep_prob, shape=shape,
                       grid=grid)
        scores = jnp.asarray(score_fn(_blend(spectrogram, baseline, masks)))
        if scores.shape != (batch_size,):
            raise ValueError(f"score_fn must map ({batch_size}, {shape[0]}, {shape[1]}) inputs "
                             f"to ({batch_size},) scores, got shape {tuple(scores.shape)}.")
        valid = jnp.arange(b * batch_size, (b + 1) * batch_size) < n_masks
        sums = _accumulate(sums, masks, scores.astype(jnp.float32), valid)
    weighted, mask_sum, score_sum = sums
    if not bool(jnp.isfinite(score_sum)):
        raise ValueError("score_fn returned non-finite scores on masked inputs.")
    if centre:
        weighted = weighted - (score_sum / n_masks) * mask_sum
    return weighted / (n_masks * keep_prob)


def rise_waveform(score_fn: Callable[[jax.Array], jax.Array], waveform, key: jax.Array, *,
                  n_fft: int = 1024, hop_length: int = 512, amin: float = 1e-5, baseline=None,
                  **rise_kwargs) -> tuple[jax.Array, jax.Array]:
    """RISE for a detector that listens to waveforms: masks over the clip's STFT.

    The clip's STFT X = |X| e^{i phi} (``audio.stft``) gives the log-magnitude spectrogram
    I = 20 log10(max(|X|, amin)) in dB; each masked copy I (.) M (as in :func:`rise`, filled
    with ``baseline`` where masked out) is turned back into a waveform with the clip's own
    phase, ``audio.istft(10^((I (.) M) / 20) e^{i phi})``, and scored by ``score_fn``. So the
    maps live on the same time-frequency plane as for a spectrogram model, and a system on
    raw waveforms (e.g. the two-branch network of ``models.TwoBranchEmbedder``) or on any
    front-end of its own can be compared with one on log-mels.

    Args:
      score_fn: maps (B, samples) waveforms to (B,) anomaly scores, jax-traceable (it is
        jitted together with the resynthesis), e.g. ``Detector.score_fn()`` for a
        waveform-input detector.
      waveform: (samples,) clip.
      key: PRNG key of the masks.
      n_fft, hop_length: STFT of the masking plane.
      amin: amplitude floor of the dB values.
      baseline: fill value in dB of masked-out bins (see :func:`rise`; None: the clip's
        minimum), e.g. the mean log-magnitude of normal training clips.
      **rise_kwargs: n_masks, grid, keep_prob, batch_size, centre of :func:`rise`.

    Returns:
      (saliency, log_magnitude): two (frames, 1 + n_fft // 2) float32 arrays.
    """
    waveform = as_float_array(waveform, "waveform", ndim=1).astype(jnp.float32)
    check_scalar(amin, "amin", low=0.0)
    if amin <= 0:
        raise ValueError(f"amin must be > 0, got {amin}.")
    spectrum = audio.stft(waveform, n_fft=n_fft, hop_length=hop_length).T  # (frames, bins)
    magnitude = jnp.abs(spectrum)
    phase = jnp.where(magnitude > 0, spectrum / jnp.where(magnitude > 0, magnitude, 1.0), 1.0)
    log_magnitude = 20.0 * jnp.log10(jnp.maximum(magnitude, amin))
    length = waveform.shape[0]

    @jax.jit
    def masked_score(log_magnitudes):
        masked = (10.0 ** (log_magnitudes / 20.0)) * phase
        waves = audio.istft(jnp.swapaxes(masked, -1, -2), hop_length=hop_length,
                            n_fft=n_fft, length=length)
        return score_fn(waves)

    saliency = rise(masked_score, log_magnitude, key, baseline=baseline, **rise_kwargs)
    return saliency, log_magnitude


def region_share(saliency, region) -> float:
    """Share of the positive saliency that falls inside ``region``.

    share = sum_{(t,k) in region} max(S, 0) / sum_{(t,k)} max(S, 0), in [0, 1]; meaningful for
    a centred map (``rise(..., centre=True)``), whose positive part marks the bins that raise
    the score. A map that ignores the region gets about the region's area fraction.

    Args:
      saliency: (T, F) saliency map.
      region: (T, F) boolean array, True inside the region.
    """
    saliency = np.asarray(as_float_array(saliency, "saliency", ndim=2), np.float64)
    region = np.asarray(region)
    if region.dtype != np.bool_ or region.shape != saliency.shape:
        raise ValueError(f"region must be a boolean array of the saliency's shape "
                         f"{saliency.shape}, got dtype {region.dtype} and shape {region.shape}.")
    positive = np.maximum(saliency, 0.0)
    total = positive.sum()
    if total == 0:
        raise ValueError("saliency has no positive values; region_share is undefined (did "
                         "score_fn ignore its input?).")
    return float(positive[region].sum() / total)


def dominance_mask(target, noise, *, margin_db: float = 0.0) -> np.ndarray:
    """Time-frequency bins where the target (machine) signal dominates the noise.

    For a mixture synthesised as target + noise, with log-mel spectrograms (dB) of the two
    parts computed separately by the same front-end: mask = target > noise + margin_db.

    Args:
      target, noise: (..., T, F) log-mel spectrograms in dB of the same shape.
      margin_db: how many dB the target must exceed the noise by.

    Returns:
      boolean array of the inputs' shape.
    """
    target = np.asarray(as_float_array(target, "target"))
    noise = np.asarray(as_float_array(noise, "noise"))
    if target.shape != noise.shape or target.ndim < 2:
        raise ValueError(f"target and noise must be (..., T, F) spectrograms of one shape, got "
                         f"{target.shape} and {noise.shape}.")
    check_scalar(margin_db, "margin_db")
    return target > noise + float(margin_db)

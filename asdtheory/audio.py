"""Audio front-end: loading, SNR mixing, segmenting, STFT and log-mel spectrograms in JAX.

* :func:`load` reads a file as float32 mono at a required sample rate, refusing silently
  ambiguous cases (several channels, another sample rate, truncated files).
* :func:`mix_at_snr` adds noise scaled to a signal-to-noise ratio relative to the clip or to a
  fixed, label-free reference level, looping or cropping it.
* :func:`segment` cuts waveforms into fixed windows.
* :func:`stft`, :func:`istft` and :func:`log_mel` are pure, batched and ``jax.jit``-able;
  with the same parameters they reproduce ``librosa.stft``, ``librosa.istft`` and
  ``librosa.feature.melspectrogram`` followed by
  ``librosa.power_to_db(ref=1.0, amin=1e-10)`` (librosa's defaults: periodic Hann window,
  ``center=True`` with zero (``"constant"``) padding, Slaney mel scale and Slaney area
  normalisation of the filters).
"""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import soundfile as sf

from asdtheory import kernels
from asdtheory._validation import as_float_array, broadcasts_to, check_scalar, is_traced

__all__ = [
    "istft",
    "load",
    "log_mel",
    "mel_filterbank",
    "mix_at_snr",
    "power_to_db",
    "segment",
    "stft",
]


# ----------------------------------------------------------------------------- loading


def _check_wav_complete(path: Path) -> None:
    """Raises when a RIFF/WAVE file holds fewer bytes than its ``data`` chunk declares.

    libsndfile reads a truncated WAV file without complaint and returns the samples that are
    there, which would silently give a shorter clip.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size != 0xFFFFFFFF and available < chunk_size:
                    raise ValueError(
                        f"audio file {path} is truncated: its data chunk declares {chunk_size} "
                        f"bytes but only {available} are present; download or copy it again."
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def load(path, *, sample_rate: int = 16000, channel: int | None = None, mix: str | None = None,
         resample: bool = False) -> np.ndarray:
    """Reads an audio file as a float32 mono waveform in [-1, 1].

    Args:
      path: file readable by libsndfile (WAV, FLAC, OGG, ...).
      sample_rate: the rate the caller works at. A file at another rate is an error unless
        ``resample=True``, which resamples with a polyphase filter (``scipy.signal``).
      channel: index of the channel to keep from a multi-channel file.
      mix: ``"mean"`` averages all channels instead. A multi-channel file needs exactly one of
        ``channel`` and ``mix``; a mono file needs neither.
      resample: allow resampling to ``sample_rate``.

    Returns:
      float32 array of shape (num_samples,).
    """
    path = Path(path)
    check_scalar(sample_rate, "sample_rate", low=1, integer=True)
    if mix not in (None, "mean"):
        raise ValueError(f"mix must be None or 'mean', got {mix!r}.")
    if channel is not None and mix is not None:
        raise ValueError("pass either channel= or mix='mean', not both.")
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    _check_wav_complete(path)
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except sf.SoundFileError as err:
        raise ValueError(f"cannot decode audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} holds no samples.")
    num_channels = data.shape[1]
    if channel is not None:
        if (isinstance(channel, bool) or not isinstance(channel, int | np.integer)
                or not 0 <= channel < num_channels):
            raise ValueError(
                f"channel must be an integer in [0, {num_channels - 1}] for {path} "
                f"({num_channels} channel(s)), got {channel!r}."
            )
        wave = data[:, channel]
    elif mix == "mean":
        wave = data.mean(axis=1, dtype=np.float32)
    elif num_channels == 1:
        wave = data[:, 0]
    else:
        raise ValueError(
            f"{path} has {num_channels} channels; choose one with channel=0..{num_channels - 1} "
            "or average them with mix='mean'."
        )
    if file_rate != sample_rate:
        if not resample:
            raise ValueError(
                f"{path} is sampled at {file_rate} Hz, not sample_rate={sample_rate} Hz; pass "
                "resample=True to resample it or sample_rate= the file's rate."
            )
        from scipy.signal import resample_poly

        g = math.gcd(int(file_rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, file_rate // g).astype(np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32)


# ------------------------------------------------------------------- mixing, segmenting


def mix_at_snr(signal, noise, snr_db, *, key: jax.Array | None = None,
               reference_power=None) -> jax.Array:
    """``signal + g * noise`` with g chosen so that 10 log10(P_ref / P_(g noise)) = snr_db.

    Powers are mean squares over time, per waveform. By default P_ref = P_signal, the clip's
    own power: then the noise level follows the clip, and a louder clip (e.g. an anomalous
    one whose anomaly adds energy) gets louder noise -- a label-dependent cue. With
    ``reference_power``, P_ref is that fixed level instead, the same whatever the clip holds:
    pass a label-free reference such as the mean power of the normal training clips, so the
    added noise has power reference_power / 10^(snr_db / 10) for every clip.

    The noise is looped (tiled) when shorter than the signal and cropped when longer,
    starting at a random offset drawn from ``key`` (offset 0 without a key), one offset per
    waveform of a batch.

    Args:
      signal: (..., T) waveforms.
      noise: (L,) noise waveform.
      snr_db: scalar or array broadcastable to ``signal.shape[:-1]``.
      key: PRNG key for the offsets.
      reference_power: None (SNR relative to each clip's own power) or a positive, finite
        scalar or array broadcastable to ``signal.shape[:-1]`` (mean-square level the SNR
        is relative to).

    Returns:
      (..., T) float32 mixture.

    Raises:
      ValueError: a silent signal (without ``reference_power``) or silent noise stretch, a
        non-positive or non-finite ``reference_power``, or one that does not broadcast.
    """
    signal = as_float_array(signal, "signal")
    noise = as_float_array(noise, "noise", ndim=1)
    snr_db = jnp.asarray(snr_db, dtype=jnp.float32)
    if signal.ndim == 0:
        raise ValueError("signal must have a time axis, got a scalar.")
    batch = signal.shape[:-1]
    if reference_power is not None:
        reference_power = jnp.asarray(reference_power, dtype=jnp.float32)
        if not broadcasts_to(reference_power.shape, batch):
            raise ValueError(f"reference_power of shape {reference_power.shape} does not "
                             f"broadcast to the {batch} waveforms of signal.")
        if not is_traced(reference_power):
            ref = np.asarray(reference_power)
            if not np.all(np.isfinite(ref) & (ref > 0)):
                raise ValueError("reference_power must be positive and finite (a mean-square "
                                 f"level, e.g. of the normal training clips), got {ref}.")
    length = noise.shape[0]
    offsets = (jnp.zeros(batch, jnp.int32) if key is None
               else jax.random.randint(key, batch, 0, length))
    idx = (offsets[..., None] + jnp.arange(signal.shape[-1])) % length
    noise = noise[idx]
    p_signal = jnp.mean(signal**2, axis=-1) if reference_power is None else reference_power
    p_noise = jnp.mean(noise**2, axis=-1)
    if not is_traced(p_signal, p_noise, snr_db):
        if reference_power is None and bool(jnp.any(p_signal == 0)):
            raise ValueError("signal is silent (zero power); an SNR is undefined for it (pass "
                             "reference_power= to set the noise level from a reference).")
        if bool(jnp.any(p_noise == 0)):
            raise ValueError("noise is silent over the mixed stretch (zero power); pass a "
                             "noise recording with content.")
    gain = jnp.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (signal + gain[..., None] * noise).astype(jnp.float32)


def segment(waveform, *, window: int, hop: int):
    """Cuts (..., T) waveforms into (..., n_windows, window) frames starting every ``hop``
    samples; n_windows = 1 + (T - window) // hop (a trailing remainder is dropped)."""
    check_scalar(window, "window", low=1, integer=True)
    check_scalar(hop, "hop", low=1, integer=True)
    length = waveform.shape[-1]
    if length < window:
        raise ValueError(f"waveform has {length} samples, fewer than window={window}; pass a "
                         "smaller window or a longer waveform.")
    n = 1 + (length - window) // hop
    idx = np.arange(n)[:, None] * hop + np.arange(window)
    return waveform[..., idx]


# ----------------------------------------------------------------------- spectrograms


_CHUNK_SAMPLES = 3 << 18  # windowed-frame samples per chunk of log_mel (3 MB in float32)
def _frames_cover(length: int, n_fft: int, hop_length: int) -> bool:
    """Whether every sample of a clip of ``length`` samples lies in some centred frame (then
    a NaN or inf sample makes the whole frame's spectrum, hence the log-mel output,
    non-finite)."""
    return hop_length <= n_fft and length % hop_length <= n_fft - n_fft // 2


def _hann(n: int) -> np.ndarray:
    # Periodic Hann window, scipy.signal.get_window("hann", n) as used by librosa.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def _window(n_fft: int, win_length: int) -> np.ndarray:
    """The Hann window of ``win_length`` samples zero-padded to ``n_fft`` in the middle."""
    window = np.zeros(n_fft, np.float32)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = _hann(win_length)
    return window


def _spectrum(waveforms, n_fft: int, hop_length: int, win_length: int | None,
              center: bool) -> jax.Array:
    """The STFT of :func:`stft` in frame-major layout (..., frames, 1 + n_fft // 2)."""
    check_scalar(n_fft, "n_fft", low=2, integer=True)
    check_scalar(hop_length, "hop_length", low=1, integer=True)
    win_length = n_fft if win_length is None else win_length
    check_scalar(win_length, "win_length", low=1, high=n_fft, integer=True)
    x = as_float_array(waveforms, "waveforms").astype(jnp.float32)
    pad = n_fft // 2 if center else 0
    length = x.shape[-1] if x.ndim else 0
    if length == 0 or length + 2 * pad < n_fft:
        raise ValueError(f"waveforms need at least n_fft={n_fft} samples (after centring), "
                         f"got shape {tuple(np.shape(waveforms))}.")
    window = _window(n_fft, win_length)
    # Frame t holds samples t * hop_length - pad + n of the zero-padded signal. One gather with
    # the padding as a mask, fused with the window, writes the frames in a single pass (no
    # padded copy, no concatenation of shifted slices).
    n_frames = 1 + (length + 2 * pad - n_fft) // hop_length
    idx = np.arange(n_frames)[:, None] * hop_length + np.arange(n_fft) - pad
    inside = (idx >= 0) & (idx < length)
    frames = jnp.where(inside, x[..., np.clip(idx, 0, length - 1)], 0.0) * window
    return jnp.fft.rfft(frames, axis=-1)


def stft(waveforms, *, n_fft: int, hop_length: int, win_length: int | None = None,
         center: bool = True) -> jax.Array:
    """Short-time Fourier transform with a periodic Hann window, as ``librosa.stft``.

    X[..., f, t] = sum_n w[n] x[n + t * hop_length] exp(-2 pi i f n / n_fft), with the
    window of ``win_length`` samples zero-padded to ``n_fft`` in the middle and, when
    ``center``, the signal zero-padded by n_fft // 2 on both sides (librosa's default
    ``pad_mode="constant"``).

    Returns:
      complex64 array (..., 1 + n_fft // 2, frames).
    """
    return jnp.swapaxes(_spectrum(waveforms, n_fft, hop_length, win_length, center), -1, -2)


def istft(spectrum, *, hop_length: int, length: int, n_fft: int | None = None,
          win_length: int | None = None, center: bool = True) -> jax.Array:
    """Inverse of :func:`stft` by weighted overlap-add, as ``librosa.istft``.

    y[n] = sum_t w[n - t h] x_t[n - t h] / sum_t w[n - t h]^2, with x_t the inverse real FFT
    of frame t and w the analysis window (Griffin and Lim 1984's least-squares estimate);
    samples covered by no window weight (sum below float32's tiny) are 0. For any
    ``waveforms`` with ``length`` samples and a window whose overlap-added square is non-zero
    everywhere (e.g. Hann with ``hop_length <= n_fft // 2``),
    ``istft(stft(waveforms, ...), length=...)`` returns ``waveforms`` up to rounding.

    Args:
      spectrum: complex (..., 1 + n_fft // 2, frames) array, as :func:`stft` returns.
      hop_length, win_length, center: as given to :func:`stft`.
      length: number of samples of the output (the signal is cut or zero-padded to it).
      n_fft: FFT size (default ``2 * (bins - 1)``).

    Returns:
      float32 (..., length) waveforms.
    """
    spectrum = jnp.asarray(spectrum)
    if spectrum.ndim < 2 or not jnp.issubdtype(spectrum.dtype, jnp.complexfloating):
        raise ValueError(f"spectrum must be a complex (..., bins, frames) array, got dtype "
                         f"{spectrum.dtype} and shape {tuple(spectrum.shape)}.")
    bins, n_frames = spectrum.shape[-2:]
    n_fft = 2 * (bins - 1) if n_fft is None else n_fft
    check_scalar(n_fft, "n_fft", low=2, integer=True)
    if bins != 1 + n_fft // 2:
        raise ValueError(f"spectrum has {bins} frequency bins; n_fft={n_fft} needs "
                         f"{1 + n_fft // 2}.")
    check_scalar(hop_length, "hop_length", low=1, integer=True)
    check_scalar(length, "length", low=1, integer=True)
    win_length = n_fft if win_length is None else win_length
    check_scalar(win_length, "win_length", low=1, high=n_fft, integer=True)
    window = _window(n_fft, win_length)
    frames = jnp.fft.irfft(jnp.swapaxes(spectrum.astype(jnp.complex64), -1, -2), n=n_fft,
                           axis=-1) * window  # (..., frames, n_fft)
    total = n_fft + hop_length * (n_frames - 1)
    positions = (np.arange(n_frames)[:, None] * hop_length + np.arange(n_fft)).ravel()
    signal = jnp.zeros((*frames.shape[:-2], total), jnp.float32).at[..., positions].add(
        frames.reshape(*frames.shape[:-2], -1))
    weight = np.zeros(total, np.float64)
    np.add.at(weight, positions, np.tile(window.astype(np.float64) ** 2, n_frames))
    covered = weight > np.finfo(np.float32).tiny
    signal = signal * np.where(covered, 1.0 / np.where(covered, weight, 1.0), 0.0).astype(
        np.float32)
    pad = n_fft // 2 if center else 0
    signal = signal[..., pad : pad + length]
    missing = length - signal.shape[-1]
    if missing > 0:
        signal = jnp.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, missing)])
    return signal


def _hz_to_mel(f):
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above.
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)),
                    (200.0 / 3) * m)


@functools.lru_cache(maxsize=32)
def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters (n_mels, 1 + n_fft // 2), as ``librosa.filters.mel`` defaults.

    Centres are equally spaced on the Slaney mel scale between fmin and fmax (default
    sample_rate / 2); each triangle is scaled by 2 / (f_(m+2) - f_m) so that it has unit area
    (Slaney normalisation). Built once in NumPy per parameter set and cached (read-only).
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2 = {sample_rate / 2}, got "
                         f"fmin={fmin}, fmax={fmax}.")
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=32)
def _mel_bands(*, sample_rate, n_fft, n_mels, fmin, fmax, filters_per_band=16):
    """The filterbank split into bands of consecutive filters, each with the bin range it
    touches: [(lo, hi, weights (hi - lo, filters))].

    A mel filter covers a few FFT bins only (each bin feeds at most two filters), so the dense
    projection does ~n_mels / 2 times more multiply-adds than needed; per-band products
    restricted to their bin range skip most of the zeros.
    """
    mel = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                         fmax=fmax)
    bands = []
    for start in range(0, n_mels, filters_per_band):
        block = mel[start : start + filters_per_band]
        nonzero = np.flatnonzero(block.any(axis=0))
        lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 1)
        bands.append((lo, hi, np.ascontiguousarray(block[:, lo:hi].T)))
    return tuple(bands)


def power_to_db(spec, *, amin: float = 1e-10, top_db: float | None = None) -> jax.Array:
    """10 log10(max(amin, S)) with ``ref=1.0``, as ``librosa.power_to_db``.

    With ``top_db``, values are floored at (max - top_db), the maximum taken per spectrogram
    over the last two axes (librosa takes it over the whole array it is given, which is the
    same for a single spectrogram).
    """
    check_scalar(amin, "amin", low=np.finfo(np.float32).tiny)
    db = 10.0 * jnp.log10(jnp.maximum(amin, spec))
    if top_db is None:
        return db
    check_scalar(top_db, "top_db", low=0.0)
    return jnp.maximum(db, jnp.max(db, axis=(-2, -1), keepdims=True) - top_db)


def log_mel(waveforms, *, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 512,
            n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None, power: float = 2.0,
            top_db: float | None = None) -> jax.Array:
    """Log-mel spectrogram in dB of (..., T) waveforms -> (..., n_mels, frames).

    S = 10 log10(max(1e-10, M |STFT(x)|^power)) with M the mel filterbank of
    :func:`mel_filterbank` and the STFT of :func:`stft` (periodic Hann, centred, zero padding);
    frames = 1 + T // hop_length. Equals ``librosa.power_to_db(librosa.feature.melspectrogram(
    y=x, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin,
    fmax=fmax, power=power), ref=1.0, amin=1e-10, top_db=top_db)`` up to float32 rounding.
    Pure and ``jax.jit``-able (all keyword arguments static). Called on a NumPy or device
    array on the CPU, the clips are split into one part per CPU the process may use, computed
    in parallel threads (``kernels.split_over_cpus``; the same result bit for bit).
    """
    check_scalar(sample_rate, "sample_rate", low=1, integer=True)
    check_scalar(n_fft, "n_fft", low=2, integer=True)
    check_scalar(hop_length, "hop_length", low=1, integer=True)
    check_scalar(n_mels, "n_mels", low=1, integer=True)
    check_scalar(power, "power", low=np.finfo(np.float32).tiny)
    check_scalar(fmin, "fmin", low=0.0)
    if top_db is not None:
        check_scalar(top_db, "top_db", low=0.0)
    kernel = functools.partial(
        _log_mel, sample_rate=int(sample_rate), n_fft=int(n_fft), hop_length=int(hop_length),
        n_mels=int(n_mels), fmin=float(fmin), fmax=None if fmax is None else float(fmax),
        power=float(power), top_db=None if top_db is None else float(top_db),
        chunk_samples=_CHUNK_SAMPLES)
    host = isinstance(waveforms, np.ndarray) and waveforms.dtype.kind in "fiub"
    device = isinstance(waveforms, jax.Array) and not is_traced(waveforms) and jnp.issubdtype(
        waveforms.dtype, jnp.floating)
    if not (host or device) or waveforms.size == 0 or not _frames_cover(
            waveforms.shape[-1] if waveforms.ndim else 0, int(n_fft), int(hop_length)):
        # Traced, other types, or samples outside every frame: the checks on the input itself.
        return kernels.in_one_call(kernel, as_float_array(waveforms, "waveforms"))
    # A NaN or inf sample makes its frames' log-mel values non-finite, so the finiteness of
    # the input is checked on the 4x smaller output (one pass over the input saved), and the
    # input counted only when that fails (finite input can still overflow to inf).
    out = kernels.split_over_cpus(kernel, waveforms, min_clips_per_part=_clips_per_chunk(
        waveforms.shape[-1], int(hop_length), int(n_fft), _CHUNK_SAMPLES))
    # The output is in dB, |values| <= 400, so its float32 sum overflows for no batch size
    # that fits in memory: the sum is finite exactly when every value is.
    if not np.isfinite(np.sum(np.asarray(out))):
        values = np.asarray(waveforms, np.float32)
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise ValueError(f"waveforms contains {bad} non-finite value(s) (NaN or inf).")
    return out


def _clips_per_chunk(length: int, hop_length: int, n_fft: int, chunk_samples: int) -> int:
    return max(1, chunk_samples // ((1 + length // hop_length) * n_fft))


@functools.partial(jax.jit, static_argnames=("sample_rate", "n_fft", "hop_length", "n_mels",
                                             "fmin", "fmax", "power", "top_db",
                                             "chunk_samples", "count"))
def _log_mel(x, start, *, sample_rate, n_fft, hop_length, n_mels, fmin, fmax, power, top_db,
             chunk_samples, count):
    """The log-mel spectrograms of clips start .. start + count - 1 of ``x`` (clips, T), or
    of the single clip ``x`` (T,) (then start = 0, count = 1)."""
    bands = _mel_bands(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                       fmax=fmax)

    def one(x):
        spec = _spectrum(x, n_fft, hop_length, None, True)
        spec = spec.real**2 + spec.imag**2
        if power != 2.0:
            spec = spec ** (power / 2.0)
        mel = jnp.concatenate([spec[..., lo:hi] @ w for lo, hi, w in bands], axis=-1)
        return power_to_db(jnp.swapaxes(mel, -1, -2), top_db=top_db)

    if x.ndim < 2:
        return one(x)
    # A few clips at a time: the frames, spectra and mel energies of a chunk stay in the CPU
    # caches. Chunks are sliced straight from the input and written in place; the last chunk
    # is shifted back to end at the last clip (recomputing a few clips), so nothing is padded
    # or concatenated. A clip's result does not depend on its chunk.
    per_chunk = _clips_per_chunk(x.shape[-1], hop_length, n_fft, chunk_samples)
    if count < per_chunk:
        return one(jax.lax.dynamic_slice_in_dim(x, start, count))

    def step(i, out):
        offset = jnp.minimum(i * per_chunk, count - per_chunk)
        piece = one(jax.lax.dynamic_slice_in_dim(x, start + offset, per_chunk))
        return jax.lax.dynamic_update_slice_in_dim(out, piece, offset, axis=0)

    shape = jax.eval_shape(one, x[:1]).shape[1:]
    return jax.lax.fori_loop(0, -(-count // per_chunk), step,
                             jnp.empty((count, *shape), jnp.float32))

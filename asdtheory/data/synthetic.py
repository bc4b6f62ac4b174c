"""Synthetic data with a known ground truth.

* :func:`sphere_mixture` -- labelled clusters on the unit sphere (theory notebooks).
* :func:`machine_sounds` -- machine-like sounds whose identity (machine id, attribute) lives
  in a harmonic signature, with subtle anomalies of known type and strength (added energy, or
  a changed fundamental, modulation rate or harmonic profile) and interfering noise at a
  chosen SNR (notebooks on noisy anomalous sound detection).

Everything is deterministic given the PRNG key.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from asdtheory._validation import check_scalar
from asdtheory.audio import mix_at_snr
from asdtheory.geometry import l2_normalize, random_centres

__all__ = ["ANOMALY_TYPES", "MachineSounds", "machine_sounds", "pink_noise", "sphere_mixture"]


def sphere_mixture(key: jax.Array, *, num_classes: int, dim: int, samples_per_class: int,
                   concentration: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Labelled von Mises-Fisher-like clusters on the unit sphere S^(dim-1).

    Centres c_k are uniform on the sphere; a sample of class k is x = (c_k + g / sqrt(kappa)) /
    ||c_k + g / sqrt(kappa)|| with g ~ N(0, I) and kappa = ``concentration``. For large kappa
    this approximates the von Mises-Fisher density ~ exp(kappa <x, c_k>) (tangential spread
    1 / sqrt(kappa) per dimension); small kappa approaches the uniform distribution.

    Returns:
      x (num_classes * samples_per_class, dim) float32 unit vectors, y int32 labels (grouped
      by class: samples_per_class zeros, then ones, ...), centres (num_classes, dim).
    """
    check_scalar(samples_per_class, "samples_per_class", low=1, integer=True)
    check_scalar(concentration, "concentration", low=np.finfo(np.float32).tiny)
    return _sphere_mixture(key, int(num_classes), int(dim), int(samples_per_class),
                           jnp.float32(concentration))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sphere_mixture(key, num_classes, dim, samples_per_class, concentration):
    key_centres, key_noise = jax.random.split(key)
    centres = random_centres(key_centres, num_classes, dim)
    y = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), samples_per_class)
    noise = jax.random.normal(key_noise, (y.size, dim))
    return l2_normalize(centres[y] + noise / jnp.sqrt(concentration)), y, centres


# Additive anomalies (energy added to the machine's sound) first, then anomalies that change
# what identifies the machine (its fundamental, modulation rates, harmonic profile).
ANOMALY_TYPES = ("none", "harmonic", "line", "clicks", "pitch", "modulation", "profile")

# Signature ranges: machine fundamentals 80-450 Hz with 8 harmonics (below 4 kHz), attribute
# modulation in the range of rotating machinery and valves.
_NUM_HARMONICS = 8
_TARGET_RMS = 0.05
_CLICK_RATE = 4.0  # clicks per second in a "clicks" anomaly
_CLICK_LENGTH = 0.004  # seconds
# Identity anomalies at strength s: f0 x (1 +- 0.03 s); AM and FM rates x (1 + 0.5 s)^(+-1);
# harmonic k x exp(+-0.1 s (k - (K + 1) / 2)), renormalised to the normal level.
_PITCH_SHIFT = 0.03
_RATE_FACTOR = 0.5
_PROFILE_TILT = 0.1
_NOISE_BANK = 60  # seconds of synthetic noise that clips crop at random offsets


@dataclass(frozen=True)
class MachineSounds:
    """Clips of :func:`machine_sounds`, ordered by (machine, attribute, clip).

    Attributes:
      waveforms: (n, T) float32.
      machine, attribute: (n,) int32 ids.
      label: (n,) int32 class id of the auxiliary task, machine * num_attributes + attribute.
      is_anomaly: (n,) bool.
      anomaly_type: (n,) int32 index into ``ANOMALY_TYPES`` (0 = "none").
      sample_rate: Hz.
    """

    waveforms: np.ndarray
    machine: np.ndarray
    attribute: np.ndarray
    label: np.ndarray
    is_anomaly: np.ndarray
    anomaly_type: np.ndarray
    sample_rate: int


@functools.partial(jax.jit, static_argnums=(1, 2))
def _class_signatures(key, num_machines, num_attributes):
    """Per (machine, attribute) signature parameters, each of shape (M, A[, K])."""
    km, ka = jax.random.split(key)
    km = jax.random.split(km, 3)
    f0 = 80.0 * 2.0 ** jax.random.uniform(km[0], (num_machines, 1), maxval=2.5)
    decay = jax.random.uniform(km[1], (num_machines, 1, 1), minval=0.1, maxval=0.5)
    k = jnp.arange(1, _NUM_HARMONICS + 1)
    profile = jnp.exp(-decay * k) * jax.random.uniform(km[2], (num_machines, 1, _NUM_HARMONICS),
                                                       minval=0.3, maxval=1.0)
    ka = jax.random.split(ka, 6)
    shape = (num_machines, num_attributes)
    tilt = jax.random.uniform(ka[0], (*shape, 1), minval=-0.15, maxval=0.15)
    return dict(
        f0=f0 * (1.0 + jax.random.uniform(ka[1], shape, minval=-0.03, maxval=0.03)),
        amplitudes=profile * jnp.exp(tilt * k),
        am_rate=jax.random.uniform(ka[2], shape, minval=2.0, maxval=12.0),
        am_depth=jax.random.uniform(ka[3], shape, minval=0.1, maxval=0.5),
        fm_rate=jax.random.uniform(ka[4], shape, minval=0.5, maxval=3.0),
        fm_depth=jax.random.uniform(ka[5], shape, minval=0.002, maxval=0.01),
    )


def _clip_draws(key, anomaly_type, duration):
    """Per-clip randomness: natural variation (incl. level), anomaly placement, noise key."""
    # Two draws per clip (one normal, one uniform vector) keep the compiled program small.
    key_normal, key_uniform, noise_key = jax.random.split(key, 3)
    num_clicks = int(np.ceil(_CLICK_RATE * duration))
    g = jax.random.normal(key_normal, (2 + _NUM_HARMONICS,))
    u = jax.random.uniform(key_uniform, (4 + 2 * num_clicks,))
    return dict(
        f0_jitter=1.0 + 0.005 * g[0],
        level_z=g[1],  # standard normal; the clip gain is 10^(level_spread_db * z / 20)
        amp_jitter=1.0 + 0.05 * g[2:],
        phases=2 * jnp.pi * u[:3],
        harmonic=1 + jnp.floor(u[3] * (_NUM_HARMONICS - 2)).astype(jnp.int32),  # 1..K-2
        click_times=duration * u[4 : 4 + num_clicks],
        click_signs=jnp.where(u[4 + num_clicks :] < 0.5, -1.0, 1.0),
        noise_key=noise_key,
        anomaly_type=anomaly_type,
        # Up or down for the identity anomalies; from a key of its own, so that the draws
        # above (and the clips of the other types) do not depend on it.
        direction=jnp.where(jax.random.bernoulli(jax.random.fold_in(key, 1)), 1.0, -1.0),
    )


def _click_kernel(sample_rate):
    # One click: a 4 ms exponentially decaying 3 kHz burst, peak ~1.
    t = np.arange(int(_CLICK_LENGTH * sample_rate)) / sample_rate
    return (np.exp(-t / (_CLICK_LENGTH / 5)) * np.sin(2 * np.pi * 3000.0 * t + 0.5 * np.pi)
            ).astype(np.float32)


def pink_noise(key: jax.Array, num_samples: int, *, sample_rate: int = 16000) -> np.ndarray:
    """(num_samples,) float32 Gaussian noise with power ~ 1/f above 20 Hz (flat below), unit
    variance: stationary noise, the bank :func:`machine_sounds` mixes with
    ``noise="synthetic"`` (there ``num_samples`` = 60 s)."""
    check_scalar(num_samples, "num_samples", low=2, integer=True)
    check_scalar(sample_rate, "sample_rate", low=1, integer=True)
    return np.asarray(_pink_noise(key, int(num_samples), int(sample_rate)))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _pink_noise(key, num_samples, sample_rate):
    """Gaussian noise with power ~ 1/f above 20 Hz, unit variance."""
    freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    shaped = jnp.fft.rfft(jax.random.normal(key, (num_samples,))) / np.sqrt(
        np.maximum(freqs, 20.0))
    pink = jnp.fft.irfft(shaped, n=num_samples)
    return pink / jnp.std(pink)


def _synthesise(sig, draws, noise, *, num_samples, sample_rate, strength, snr_db,
                level_spread_db):
    """Waveforms (B, T) for a batch of clips given their class signatures and draws."""
    ph = draws["phases"]
    kind = draws["anomaly_type"]
    sign = draws["direction"][:, None]
    pitch = jnp.where((kind == 4)[:, None], 1.0 + sign * _PITCH_SHIFT * strength, 1.0)
    f0 = (sig["f0"] * draws["f0_jitter"])[:, None] * pitch
    rate = jnp.where((kind == 5)[:, None], (1.0 + _RATE_FACTOR * strength) ** sign, 1.0)
    k = jnp.arange(1, _NUM_HARMONICS + 1)
    tilt = jnp.where((kind == 6)[:, None],
                     jnp.exp(sign * _PROFILE_TILT * strength * (k - (_NUM_HARMONICS + 1) / 2)),
                     1.0)
    # The profile tilt comes before the level normalisation below: a change of timbre only.
    amps = sig["amplitudes"] * draws["amp_jitter"] * tilt
    amps = jnp.where(k * f0 * 1.02 < sample_rate / 2, amps, 0.0)  # no aliased harmonics
    am_depth = sig["am_depth"][:, None]
    # RMS of the normal signal: harmonics are orthogonal, the AM envelope has mean square
    # 1 + d^2 / 2.
    rms = jnp.sqrt(jnp.sum(amps**2, axis=-1, keepdims=True) / 2 * (1 + am_depth**2 / 2))
    boosted = draws["harmonic"][:, None] + 1
    amps = amps * jnp.where((kind == 1)[:, None] & (k == boosted), 1.0 + 2.0 * strength, 1.0)

    t = jnp.arange(num_samples) / sample_rate
    fm_rate = sig["fm_rate"][:, None] * rate
    phase = (2 * jnp.pi * f0 * t + ph[:, :1] + sig["fm_depth"][:, None] * f0 / fm_rate
             * jnp.sin(2 * jnp.pi * fm_rate * t + ph[:, 1:2]))
    envelope = 1.0 + am_depth * jnp.sin(2 * jnp.pi * sig["am_rate"][:, None] * rate * t
                                        + ph[:, 2:3])
    # On the half phase theta = phi / 2, harmonic k is sin(2k theta) and the "line" anomaly
    # (half-way between harmonics h and h + 1) is sin((2h + 1) theta). All orders come from
    # the Chebyshev recurrence sin(n theta) = 2 cos(theta) sin((n-1) theta) - sin((n-2)
    # theta): two transcendental calls per sample instead of one per component.
    orders = jnp.arange(1, 2 * _NUM_HARMONICS + 1)
    line_amp = jnp.where(kind == 2, 0.25 * strength, 0.0)[:, None] * amps.max(-1, keepdims=True)
    coeffs = (jnp.zeros((f0.shape[0], orders.size)).at[:, 1::2].set(amps)
              + jnp.where(orders == 2 * boosted + 1, line_amp, 0.0))
    two_cos = 2.0 * jnp.cos(phase / 2)
    prev, cur = jnp.zeros_like(phase), jnp.sin(phase / 2)
    tone = coeffs[:, :1] * cur
    for n in range(1, orders.size):
        prev, cur = cur, two_cos * cur - prev
        tone += coeffs[:, n : n + 1] * cur
    target = envelope * tone * (_TARGET_RMS / rms)

    kernel = _click_kernel(sample_rate)
    starts = jnp.round(draws["click_times"] * sample_rate).astype(jnp.int32)
    click_amp = jnp.where(kind == 3, 4.0 * _TARGET_RMS * strength, 0.0)[:, None]
    rows = jnp.arange(starts.shape[0])[:, None, None]
    target = target.at[rows, starts[:, :, None] + np.arange(kernel.size)].add(
        (click_amp * draws["click_signs"])[:, :, None] * kernel, mode="drop")
    # Natural level variation of the whole clip (normal or anomalous alike).
    target = target * (10.0 ** (level_spread_db * draws["level_z"] / 20.0))[:, None]
    if snr_db is None:
        return target
    # Noise relative to the nominal normal level, which does not know the clip's label.
    return jax.vmap(lambda x, kk: mix_at_snr(x, noise, snr_db, key=kk,
                                             reference_power=_TARGET_RMS**2))(
        target, draws["noise_key"])


@functools.partial(jax.jit, static_argnames=("num_samples", "sample_rate", "duration"))
def _chunk(sig, machine, attribute, keys, kinds, noise, strength, snr_db, level_spread_db, *,
           num_samples, sample_rate, duration):
    """One chunk of clips: per-clip draws, class signatures and synthesis in one program."""
    draws = jax.vmap(_clip_draws, in_axes=(0, 0, None))(keys, kinds, duration)
    return _synthesise({name: value[machine, attribute] for name, value in sig.items()}, draws,
                       noise, num_samples=num_samples, sample_rate=sample_rate,
                       strength=strength, snr_db=snr_db, level_spread_db=level_spread_db)


def machine_sounds(key: jax.Array, *, num_machines: int, num_attributes: int,
                   clips_per_class: int, duration: float = 1.0, sample_rate: int = 16000,
                   anomaly_fraction: float = 0.0,
                   anomaly_types: tuple[str, ...] = ("harmonic", "line", "clicks"),
                   anomaly_strength: float = 1.0, snr_db: float | None = None,
                   noise: str | np.ndarray = "synthetic", level_spread_db: float = 3.0,
                   machine_key: jax.Array | None = None,
                   chunk_size: int = 1024) -> MachineSounds:
    """Synthetic machine sounds with a known identity, anomaly and noise level.

    Each machine m has a fundamental f0_m in [80, 450] Hz and a harmonic profile
    a_mk = u_mk exp(-d_m k) (k = 1..8); attribute a of machine m shifts f0 by up to 3 %, tilts
    the profile by exp(t_ma k) and sets an amplitude modulation (2-12 Hz, depth 0.1-0.5) and a
    frequency modulation (0.5-3 Hz, depth 0.2-1 % of f0). These class signatures are drawn
    from ``machine_key`` (default: a key derived from ``key``). A clean clip is

        x(t) = 10^(sigma z / 20) [g (1 + d_am sin(2 pi r_am t + p2)) sum_k a_k sin(k phi(t))
                                   + anomaly(t)],
        phi(t) = 2 pi f0 t + (d_fm f0 / r_fm) sin(2 pi r_fm t + p1) + p0,

    with natural variation per clip (f0 jitter 0.5 %, harmonic amplitudes 5 %, random phases),
    g setting the RMS of the normal tone to 0.05 and a per-clip level gain 10^(sigma z / 20),
    z ~ N(0, 1), sigma = ``level_spread_db``: the level of the whole clip (normal or
    anomalous alike) varies with a standard deviation of sigma dB, so that loudness alone
    does not identify anomalous clips. Anomalies (strength s = ``anomaly_strength``):
    ``"harmonic"`` multiplies one random harmonic h (2..7) by 1 + 2 s; ``"line"`` adds a
    component of amplitude 0.25 s max_k a_k at (h + 1/2) f0, half-way between two harmonics
    (modulated like them); ``"clicks"`` adds
    4 impulsive clicks per second (4 ms decaying 3 kHz bursts, peak ~0.2 s). These three add
    energy to the clip. Three more change what identifies the machine and keep the level
    (the normal tone's RMS), each in a direction e = +-1 drawn per clip: ``"pitch"`` shifts
    the fundamental, f0 -> f0 (1 + 0.03 e s) (attributes of one machine differ by up to
    +-3 %); ``"modulation"`` changes both modulation rates, r_am -> r_am q^e and r_fm -> r_fm
    q^e with q = 1 + 0.5 s (the FM deviation d_fm f0 stays); ``"profile"`` tilts the
    harmonic profile, a_k -> a_k exp(0.1 e s (k - 4.5)), before g normalises the tone's RMS
    (a change of timbre, not of level). The last round(anomaly_fraction * clips_per_class)
    clips of each class are anomalous, their types cycling through ``anomaly_types`` (default:
    the three additive types; pass e.g. ``ANOMALY_TYPES[1:]`` for all six).

    With ``snr_db``, every clip becomes x(t) + n(t) with noise of power
    P_n = 0.05^2 / 10^(snr_db / 10): the SNR is relative to the nominal normal level 0.05^2,
    which does not depend on the clip's label or level (``asdtheory.audio.mix_at_snr`` with
    ``reference_power=0.05**2``). The noise comes from a random offset per clip of either a
    real recording (1-D array at ``sample_rate``, looped when short) or, with
    ``"synthetic"``, a 60-second bank of pink noise (power ~ 1/f above 20 Hz) drawn from
    ``key``.

    Everything per clip (natural variation, level, anomaly placement, noise bank and offsets)
    is drawn from ``key``. Calls with the same ``machine_key`` and different ``key`` s give
    the same machines and independent clips, e.g. training and test clips of one set of
    machines::

        machines = jax.random.key(0)
        train = machine_sounds(jax.random.key(1), machine_key=machines, num_machines=3,
                               num_attributes=2, clips_per_class=50, snr_db=0.0)
        test = machine_sounds(jax.random.key(2), machine_key=machines, num_machines=3,
                              num_attributes=2, clips_per_class=20, anomaly_fraction=0.5,
                              snr_db=0.0)

    (two calls with different keys and no ``machine_key`` give different machines).

    **A clip with and without its anomaly.** Every draw of a clip (natural variation, level,
    phases, anomaly placement and direction, noise offset) comes from its own key, split from
    ``key`` by its position, whatever its anomaly type; at strength 0 every anomaly formula
    above is the identity. So the same call with ``anomaly_strength=0.0`` renders every clip
    without its anomaly, the same clip otherwise (with the same noise when ``snr_db`` is set):
    each anomalous clip's normal twin, bit for bit the clip a normal label would have given
    it, and the normal clips unchanged (so does ``anomaly_fraction=0.0``, which also relabels
    every clip normal)::

        kw = dict(num_machines=2, num_attributes=3, clips_per_class=10, anomaly_fraction=0.5)
        sounds = machine_sounds(key, **kw)
        twins = machine_sounds(key, **kw, anomaly_strength=0.0).waveforms
        anomaly = sounds.waveforms - twins   # 0 for the normal clips

    The synthesis is vectorised in JAX over clips and time, in chunks of ``chunk_size`` clips
    (a memory bound; results do not depend on it).

    Returns:
      :class:`MachineSounds`.
    """
    for name, value in (("num_machines", num_machines), ("num_attributes", num_attributes),
                        ("clips_per_class", clips_per_class), ("chunk_size", chunk_size)):
        check_scalar(value, name, low=1, integer=True)
    check_scalar(sample_rate, "sample_rate", low=8000, integer=True)
    check_scalar(duration, "duration", low=1.0 / sample_rate)
    check_scalar(anomaly_fraction, "anomaly_fraction", low=0.0, high=1.0)
    check_scalar(anomaly_strength, "anomaly_strength", low=0.0)
    check_scalar(level_spread_db, "level_spread_db", low=0.0)
    unknown = [t for t in anomaly_types if t not in ANOMALY_TYPES[1:]]
    if unknown or not anomaly_types:
        raise ValueError(f"anomaly_types must be a non-empty tuple of {ANOMALY_TYPES[1:]}, got "
                         f"{anomaly_types!r}.")
    if snr_db is not None:
        check_scalar(snr_db, "snr_db")
    if isinstance(noise, str):
        if noise != "synthetic":
            raise ValueError(f"noise must be 'synthetic' or a 1-D waveform, got {noise!r}.")
    else:
        noise = np.asarray(noise, dtype=np.float32)
        if noise.ndim != 1 or noise.size == 0 or not np.any(noise):
            raise ValueError(f"noise must be a non-silent 1-D waveform, got shape {noise.shape}.")

    num_classes = num_machines * num_attributes
    n = num_classes * clips_per_class
    machine = np.repeat(np.arange(num_machines, dtype=np.int32), num_attributes * clips_per_class)
    attribute = np.tile(np.repeat(np.arange(num_attributes, dtype=np.int32), clips_per_class),
                        num_machines)
    num_anomalous = round(anomaly_fraction * clips_per_class)
    within = np.arange(clips_per_class) - (clips_per_class - num_anomalous)
    codes = np.array([ANOMALY_TYPES.index(t) for t in anomaly_types], np.int32)
    per_class = np.where(within >= 0, codes[np.maximum(within, 0) % codes.size], 0)
    anomaly_type = np.tile(per_class, num_classes).astype(np.int32)

    key_sig, key_clips = jax.random.split(key)
    if machine_key is not None:
        key_sig = machine_key
    sig = _class_signatures(key_sig, num_machines, num_attributes)
    num_samples = round(duration * sample_rate)
    if snr_db is None:
        noise = None
    elif isinstance(noise, str):
        noise = _pink_noise(jax.random.fold_in(key, 2), _NOISE_BANK * sample_rate, sample_rate)
    clip_keys = jax.random.split(key_clips, n)
    out = np.empty((n, num_samples), np.float32)
    size = min(chunk_size, n)
    for start in range(0, n, size):
        # The last chunk is padded to the same size so that only one program is compiled.
        idx = np.minimum(np.arange(start, start + size), n - 1)
        waves = _chunk(sig, machine[idx], attribute[idx], clip_keys[idx], anomaly_type[idx],
                       noise, jnp.float32(anomaly_strength),
                       None if snr_db is None else jnp.float32(snr_db),
                       jnp.float32(level_spread_db), num_samples=num_samples,
                       sample_rate=int(sample_rate), duration=float(duration))
        stop = min(start + size, n)
        out[start:stop] = np.asarray(waves)[: stop - start]
    return MachineSounds(waveforms=out, machine=machine, attribute=attribute,
                         label=machine * num_attributes + attribute,
                         is_anomaly=anomaly_type > 0, anomaly_type=anomaly_type,
                         sample_rate=int(sample_rate))

"""Synthetic sphere mixtures and machine sounds: structure, SNR, anomaly types, determinism."""

import functools

import jax
import numpy as np
import pytest

from asdtheory.audio import log_mel
from asdtheory.data import synthetic


def test_sphere_mixture_structure_and_concentration():
    x, y, centres = synthetic.sphere_mixture(jax.random.key(0), num_classes=5, dim=16,
                                             samples_per_class=400, concentration=200.0)
    x, y, centres = map(np.asarray, (x, y, centres))
    assert x.shape == (2000, 16) and centres.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(y, np.repeat(np.arange(5), 400))
    cos_own = np.sum(x * centres[y], axis=1)
    # von Mises-Fisher with large kappa: E[cos] ~ 1 - (D - 1) / (2 kappa) = 0.9625.
    assert abs(cos_own.mean() - (1 - 15 / 400)) < 0.005
    assert np.all(np.argmax(x @ centres.T, axis=1) == y)
    x2, _, _ = synthetic.sphere_mixture(jax.random.key(0), num_classes=5, dim=16,
                                        samples_per_class=400, concentration=200.0)
    np.testing.assert_array_equal(x, np.asarray(x2))
    with pytest.raises(ValueError, match="concentration must be >="):
        synthetic.sphere_mixture(jax.random.key(0), num_classes=2, dim=3, samples_per_class=2,
                                 concentration=0.0)


SMALL = dict(num_machines=2, num_attributes=3, clips_per_class=6, anomaly_fraction=0.5,
             chunk_size=7)


@pytest.fixture(scope="module")
def clean():
    return synthetic.machine_sounds(jax.random.key(3), **SMALL)


def test_machine_sounds_layout_and_determinism(clean):
    assert clean.waveforms.shape == (36, 16000) and clean.waveforms.dtype == np.float32
    np.testing.assert_array_equal(clean.machine, np.repeat([0, 1], 18))
    np.testing.assert_array_equal(clean.attribute, np.tile(np.repeat([0, 1, 2], 6), 2))
    np.testing.assert_array_equal(clean.label, np.repeat(np.arange(6), 6))
    # round(0.5 * 6) = 3 anomalous clips per class, the last three, types in the given order.
    np.testing.assert_array_equal(clean.anomaly_type, np.tile([0, 0, 0, 1, 2, 3], 6))
    np.testing.assert_array_equal(clean.is_anomaly, clean.anomaly_type > 0)
    again = synthetic.machine_sounds(jax.random.key(3), **{**SMALL, "chunk_size": 1024})
    np.testing.assert_array_equal(clean.waveforms, again.waveforms)
    other = synthetic.machine_sounds(jax.random.key(4), **SMALL)
    assert not np.allclose(clean.waveforms, other.waveforms)


def test_normal_clips_have_the_target_level_and_class_specific_spectra(clean):
    steady = synthetic.machine_sounds(jax.random.key(3), **SMALL, level_spread_db=0.0)
    normal = ~clean.is_anomaly
    rms = np.sqrt(np.mean(steady.waveforms[normal] ** 2, axis=1))
    np.testing.assert_allclose(rms, 0.05, rtol=0.1)
    # The level gain multiplies the whole clip: the same clip up to one factor per clip.
    gain = (np.sum(clean.waveforms * steady.waveforms, axis=1)
            / np.sum(steady.waveforms**2, axis=1))
    np.testing.assert_allclose(clean.waveforms, gain[:, None] * steady.waveforms, atol=1e-6)
    labels = clean.label[normal]
    # Normal clips share their machine's signature: the nearest other clip in mean log-mel
    # space (level removed: mean over bands subtracted) belongs to the same machine.
    feats = np.asarray(jax.jit(functools.partial(log_mel, n_mels=64))(
        clean.waveforms[normal])).mean(axis=-1)
    feats -= feats.mean(axis=1, keepdims=True)
    dist = np.linalg.norm(feats[:, None] - feats[None], axis=-1) + np.diag(np.full(len(feats),
                                                                                   np.inf))
    nearest = np.argmin(dist, axis=1)
    np.testing.assert_array_equal(labels[nearest] // 3, labels // 3)


def test_clip_levels_vary_by_level_spread_db():
    # 300 normal clips (50 per class) in chunks of 7: the compiled program of the fixture.
    many = {**SMALL, "clips_per_class": 50, "anomaly_fraction": 0.0}
    for spread in (3.0, 6.0):
        sounds = synthetic.machine_sounds(jax.random.key(5), **many, level_spread_db=spread)
        level_db = 20 * np.log10(np.sqrt(np.mean(sounds.waveforms**2, axis=1)) / 0.05)
        assert abs(level_db.std(ddof=1) / spread - 1) < 0.3
        assert abs(level_db.mean()) < 3 * spread / np.sqrt(level_db.size)  # nominal 0.05
    steady = synthetic.machine_sounds(jax.random.key(5), **many, level_spread_db=0.0)
    level_db = 20 * np.log10(np.sqrt(np.mean(steady.waveforms**2, axis=1)) / 0.05)
    assert level_db.std(ddof=1) < 0.3
    with pytest.raises(ValueError, match="level_spread_db"):
        synthetic.machine_sounds(jax.random.key(0), **SMALL, level_spread_db=-1.0)


def _fundamentals(sounds):
    """Per class of the normal clips: the lowest peak of the mean magnitude spectrum that
    reaches 20 % of its maximum (the fundamental; 1 Hz bins for 1-s clips)."""
    normal = ~sounds.is_anomaly
    spectra = np.abs(np.fft.rfft(sounds.waveforms[normal], axis=1))
    labels = sounds.label[normal]
    out = []
    for c in np.unique(labels):
        mean = np.convolve(spectra[labels == c].mean(axis=0), np.ones(5) / 5, mode="same")
        first = np.flatnonzero(mean > 0.2 * mean.max())[0]
        out.append(first + np.argmax(mean[first:first + 20]))
    return np.array(out, np.float64)


def test_same_machine_key_gives_the_same_machines_and_independent_clips():
    machines = jax.random.key(8)
    train = synthetic.machine_sounds(jax.random.key(108), machine_key=machines, **SMALL)
    test = synthetic.machine_sounds(jax.random.key(208), machine_key=machines, **SMALL)
    f_train, f_test = _fundamentals(train), _fundamentals(test)
    # f0 ranges over 80-450 Hz between machines; within a class the clips jitter by 0.5 %.
    np.testing.assert_allclose(f_test, f_train, rtol=0.025)
    # ... but the clips are new draws (phases, jitter, level, anomalies).
    unit = [w / np.linalg.norm(w, axis=1, keepdims=True) for w in (train.waveforms,
                                                                  test.waveforms)]
    assert np.abs(np.sum(unit[0] * unit[1], axis=1)).mean() < 0.3
    # Without machine_key two keys give two different sets of machines.
    other = synthetic.machine_sounds(jax.random.key(208), **SMALL)
    assert np.abs(_fundamentals(other) / f_train - 1).max() > 0.1


def test_anomaly_types_change_the_signal_as_documented(clean):
    silent = synthetic.machine_sounds(jax.random.key(3), **SMALL, anomaly_strength=0.0)
    normal = clean.anomaly_type == 0
    np.testing.assert_array_equal(silent.waveforms[normal], clean.waveforms[normal])
    for i in np.flatnonzero(~normal):
        base, diff = silent.waveforms[i], clean.waveforms[i] - silent.waveforms[i]
        assert np.sqrt(np.mean(diff**2)) > 1e-3
        kind = synthetic.ANOMALY_TYPES[clean.anomaly_type[i]]
        if kind == "clicks":
            # 4 clicks per second, each 4 ms (64 samples): sparse in time.
            assert np.count_nonzero(np.abs(diff) > 1e-6) <= 4 * 64
            continue
        spec_base = np.abs(np.fft.rfft(base))
        peak = np.argmax(np.abs(np.fft.rfft(diff)))
        near = spec_base[max(peak - 3, 0) : peak + 4].max() / spec_base.max()
        if kind == "harmonic":  # an existing harmonic grows
            assert near > 0.02
        else:  # "line": a new component between harmonics
            assert near < 0.01


def test_default_clips_are_those_of_the_three_additive_types_as_before(clean):
    # The identity anomalies came later: the default clips (types harmonic, line, clicks) are
    # the ones they were before, to float32 rounding (numbers recorded before the change).
    w = clean.waveforms.astype(np.float64)
    np.testing.assert_allclose([w.sum(), np.abs(w).sum(), (w**2).sum()],
                               [7.9871140589006, 23561.675898398647, 1825.2600273926284],
                               rtol=1e-5)
    np.testing.assert_allclose(w[5, 1000:1003], [-0.08294131, -0.08467889, -0.08599458],
                               atol=1e-6)
    np.testing.assert_allclose(w[-1, 8000:8003], [-0.0365579, -0.04331735, -0.05074666],
                               atol=1e-6)
    # Normal clips do not depend on the anomaly types drawn for the other clips.
    every = synthetic.machine_sounds(jax.random.key(3), **SMALL,
                                     anomaly_types=synthetic.ANOMALY_TYPES[1:])
    normal = ~clean.is_anomaly
    np.testing.assert_array_equal(every.waveforms[normal], clean.waveforms[normal])
    np.testing.assert_array_equal(every.is_anomaly, clean.is_anomaly)
    # 3 anomalous clips per class: the first three of the six types.
    np.testing.assert_array_equal(every.anomaly_type, clean.anomaly_type)


def _peak_frequency(x, low, high, rate):
    """Frequency of the largest peak of |rfft(hann x)| in [low, high] Hz, interpolated on a
    parabola through the log magnitudes of the peak bin and its neighbours."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    band = np.flatnonzero((freqs >= low) & (freqs <= high))
    i = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[i - 1 : i + 2])
    return freqs[i] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0])


IDENTITY = dict(num_machines=2, num_attributes=3, clips_per_class=8, anomaly_fraction=0.75,
                chunk_size=16, duration=4.0, anomaly_types=("pitch", "modulation", "profile"))


@pytest.fixture(scope="module")
def identity_pair():
    """4-s clips with the identity anomalies at strength 1, and the same clips at strength 0
    (the same draws: the normal version of each anomalous clip)."""
    return (synthetic.machine_sounds(jax.random.key(11), **IDENTITY),
            synthetic.machine_sounds(jax.random.key(11), **IDENTITY, anomaly_strength=0.0))


def test_identity_anomalies_change_pitch_modulation_and_profile_as_documented(identity_pair):
    from scipy.signal import hilbert

    anomalous, base = identity_pair
    sr = anomalous.sample_rate
    normal = ~anomalous.is_anomaly
    np.testing.assert_array_equal(anomalous.waveforms[normal], base.waveforms[normal])
    np.testing.assert_array_equal(anomalous.anomaly_type,
                                  np.tile([0, 0, 4, 5, 6, 4, 5, 6], 6))
    directions = {"pitch": [], "modulation": [], "profile": []}
    for i in np.flatnonzero(~normal):
        kind = synthetic.ANOMALY_TYPES[anomalous.anomaly_type[i]]
        a = anomalous.waveforms[i].astype(np.float64)
        b = base.waveforms[i].astype(np.float64)
        # No identity anomaly changes the level (the normal tone's RMS), within 1 %.
        assert abs(np.sqrt(np.mean(a**2) / np.mean(b**2)) - 1) < 0.01
        spec_b = np.abs(np.fft.rfft(b * np.hanning(b.size)))
        strongest = np.argmax(spec_b) * sr / b.size  # the base clip's strongest harmonic
        if kind == "pitch":  # every partial moves by the factor 1 +- 0.03
            ratio = (_peak_frequency(a, 0.9 * strongest, 1.1 * strongest, sr)
                     / _peak_frequency(b, 0.9 * strongest, 1.1 * strongest, sr))
            e = np.sign(ratio - 1)
            assert abs(ratio - (1 + 0.03 * e)) < 0.002
        elif kind == "modulation":  # the AM rate (of the Hilbert envelope) x 1.5^(+-1)
            env_a, env_b = np.abs(hilbert(a)), np.abs(hilbert(b))
            ratio = (_peak_frequency(env_a - env_a.mean(), 1.0, 30.0, sr)
                     / _peak_frequency(env_b - env_b.mean(), 1.0, 30.0, sr))
            e = np.sign(ratio - 1)
            assert abs(ratio / 1.5**e - 1) < 0.02
            # ... and the FM rate: the instantaneous frequency of the strongest harmonic.
            rates = []
            for x in (a, b):
                spec = np.fft.rfft(x)
                freqs = np.fft.rfftfreq(x.size, 1.0 / sr)
                spec[np.abs(freqs - strongest) > 0.4 * strongest / round(strongest / 80)] = 0
                spec[np.abs(freqs - strongest) > 40] = 0
                inst = np.diff(np.unwrap(np.angle(hilbert(np.fft.irfft(spec, n=x.size)))))
                inst = inst[sr // 4 : -sr // 4]  # away from the band-pass edges in time
                rates.append(_peak_frequency(inst - inst.mean(), 0.3, 6.0, sr))
            assert abs(rates[0] / rates[1] / 1.5**e - 1) < 0.1
        else:  # "profile": log amplitude ratio of harmonic k linear in k, slope +- 0.1
            f0 = _peak_frequency(b, 75, 470, sr)
            k = np.arange(1, 9)
            k = k[k * f0 * 1.02 < sr / 2]
            spec_a = np.abs(np.fft.rfft(a * np.hanning(a.size)))
            bins = np.round(k * f0 * a.size / sr).astype(int)
            amp = [[spec[j - 20 : j + 21].max() for j in bins] for spec in (spec_a, spec_b)]
            slope, _ = np.polyfit(k, np.log(np.divide(*amp)), 1)
            e = np.sign(slope)
            assert abs(slope - 0.1 * e) < 0.01
        directions[kind].append(e)
    # Up and down both occur (a direction per clip).
    for kind, signs in directions.items():
        assert len(signs) == 12 and {-1.0, 1.0} <= set(signs), (kind, signs)


@pytest.mark.parametrize("noise", ["synthetic", "real"])
def test_noise_is_mixed_at_the_requested_snr_of_the_nominal_level(clean, shared_data, noise):
    from asdtheory.data.dcase import load_noise

    # 60 s of the real recording: the length of the synthetic noise bank, so both cases share
    # one compiled program.
    source = load_noise("running_tap", shared_data)[: 60 * 16000] if noise == "real" else noise
    noisy = synthetic.machine_sounds(jax.random.key(3), **SMALL, snr_db=-5.0, noise=source)
    added = noisy.waveforms - clean.waveforms
    power = np.mean(added.astype(np.float64) ** 2, axis=1)
    # Relative to the nominal normal level 0.05^2, whatever the clip's label or level: the
    # noise does not tell anomalous clips (louder, for most anomaly types) from normal ones.
    np.testing.assert_allclose(power, 0.05**2 / 10 ** (-5.0 / 10), rtol=1e-3)
    assert np.mean(clean.waveforms[clean.is_anomaly] ** 2) > np.mean(
        clean.waveforms[~clean.is_anomaly] ** 2)
    # Each clip gets its own stretch of noise.
    unit = added / np.linalg.norm(added, axis=1, keepdims=True)
    assert np.abs(unit @ unit.T - np.eye(len(unit))).max() < 0.5


def test_strength_zero_renders_every_clip_without_its_anomaly():
    """The documented way to render a clip with and without its anomaly from one key (C5's
    displacement by the anomaly needs it): at strength 0 each anomalous clip is, bit for bit,
    the normal clip its draws give, and the normal clips are unchanged, with or without
    noise."""
    kw = dict(num_machines=2, num_attributes=2, clips_per_class=8, anomaly_fraction=0.75,
              anomaly_types=synthetic.ANOMALY_TYPES[1:], anomaly_strength=4.0, chunk_size=16)
    for extra in ({}, {"snr_db": 0.0}):
        sounds = synthetic.machine_sounds(jax.random.key(21), **kw, **extra)
        twins = synthetic.machine_sounds(jax.random.key(21), **{**kw, **extra,
                                                                "anomaly_strength": 0.0})
        relabelled = synthetic.machine_sounds(jax.random.key(21), **{**kw, **extra,
                                                                     "anomaly_fraction": 0.0})
        assert not relabelled.is_anomaly.any()
        np.testing.assert_array_equal(twins.waveforms, relabelled.waveforms)
        np.testing.assert_array_equal(twins.is_anomaly, sounds.is_anomaly)
        normal = ~sounds.is_anomaly
        np.testing.assert_array_equal(twins.waveforms[normal], sounds.waveforms[normal])
        change = np.sqrt(np.mean((sounds.waveforms - twins.waveforms) ** 2, axis=1))
        assert np.all(change[sounds.is_anomaly] > 1e-3)
        # every one of the six types occurs among the anomalous clips
        assert set(sounds.anomaly_type[sounds.is_anomaly].tolist()) == set(range(1, 7))


def test_pink_noise_is_stationary_one_over_f_noise_of_unit_variance():
    x = synthetic.pink_noise(jax.random.key(0), 8 * 16000)
    assert x.shape == (8 * 16000,) and x.dtype == np.float32
    assert abs(float(np.std(x)) - 1.0) < 1e-5
    np.testing.assert_array_equal(x, synthetic.pink_noise(jax.random.key(0), 8 * 16000))
    # the power per octave band is flat for 1/f noise (power density ~ 1/f)
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    bands = [spec[(freqs >= f) & (freqs < 2 * f)].sum() for f in (125, 250, 500, 1000, 2000)]
    assert max(bands) / min(bands) < 1.3
    # stationary: the power of each second is the same within sampling error
    per_second = np.mean(x.reshape(8, -1) ** 2, axis=1)
    assert per_second.max() / per_second.min() < 1.5


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(anomaly_types=("hum",)), r"anomaly_types must be a non-empty tuple of \('harmonic'"),
        (dict(noise="white", snr_db=0.0), "noise must be 'synthetic' or a 1-D waveform"),
        (dict(noise=np.zeros((2, 100)), snr_db=0.0), r"non-silent 1-D waveform, got shape \(2, "),
        (dict(anomaly_fraction=1.5), "anomaly_fraction must be <= 1.0"),
        (dict(sample_rate=4000), "sample_rate must be >= 8000"),
        (dict(level_spread_db=float("nan")), "level_spread_db"),
    ],
)
def test_machine_sounds_input_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.machine_sounds(jax.random.key(0), num_machines=1, num_attributes=1,
                                 clips_per_class=1, **kwargs)

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


@pytest.mark.parametrize("noise", ["synthetic", "real"])
def test_noise_is_mixed_at_the_requested_snr_of_the_nominal_level(clean, shared_data, noise):
    from asdtheory.audio import load_noise

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

"""Audio front-end: loading checks, SNR mixing, segmenting, STFT / log-mel against librosa."""

import functools
from concurrent.futures import ThreadPoolExecutor

import jax
import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory import audio, kernels
from asdtheory.data import dcase

VALVE = "dcase2023t2/dev_data/raw/valve/test"


@pytest.fixture(scope="module")
def clips(shared_data):
    names = [
        "section_00_source_test_normal_0002_pat_00.wav",
        "section_00_target_test_anomaly_0044_pat_03.wav",
        "section_00_target_test_normal_0001_pat_02.wav",
    ]
    return np.stack([audio.load(shared_data / VALVE / n) for n in names])


def _librosa_log_mel(y, *, sample_rate, n_fft, hop_length, n_mels, fmin, fmax, power, top_db):
    spec = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                          n_mels=n_mels, fmin=fmin, fmax=fmax, power=power)
    return librosa.power_to_db(spec, ref=1.0, amin=1e-10, top_db=top_db)


def _assert_close_in_dynamic_range(actual, expected, rtol=1e-4):
    # The acceptance criterion: max deviation relative to the dB dynamic range of the reference.
    assert actual.shape == expected.shape
    span = float(expected.max() - expected.min())
    assert span > 10.0  # a real clip spans tens of dB; guards against comparing constants
    err = float(np.max(np.abs(actual - expected)))
    assert err <= rtol * span, f"max error {err:.3g} dB over a {span:.1f} dB range"


# --------------------------------------------------------------------------- log-mel / STFT


@pytest.mark.parametrize(
    "params",
    [
        dict(sample_rate=16000, n_fft=1024, hop_length=512, n_mels=128, fmin=0.0, fmax=None,
             power=2.0, top_db=None),
        # hop not dividing n_fft (gather framing), band limits, magnitude mel, top_db floor.
        dict(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40, fmin=50.0, fmax=7000.0,
             power=1.0, top_db=60.0),
    ],
)
def test_log_mel_matches_librosa_on_real_clips(clips, params):
    expected = np.stack([_librosa_log_mel(c, **params) for c in clips])
    actual = np.asarray(audio.log_mel(clips, **params))
    _assert_close_in_dynamic_range(actual, expected)


def test_log_mel_jit_batch_shapes(clips):
    short = clips[:, :16000]
    f = jax.jit(functools.partial(audio.log_mel, n_fft=512, hop_length=256, n_mels=32))
    batched = np.asarray(f(short.reshape(3, 1, -1)))
    assert batched.shape == (3, 1, 32, 1 + 16000 // 256)
    single = np.stack([np.asarray(audio.log_mel(c, n_fft=512, hop_length=256, n_mels=32))
                       for c in short])
    np.testing.assert_allclose(batched[:, 0], single, atol=1e-3)


@pytest.mark.parametrize("clips_per_chunk", [1, 2])
def test_log_mel_chunking_gives_the_per_clip_result(clips, clips_per_chunk, monkeypatch):
    # Large batches are processed a few clips at a time: 1 clip per chunk gives three chunks;
    # with 2 per chunk the last chunk overlaps the first.
    short = clips[:, :16000]
    monkeypatch.setattr(audio, "_CHUNK_SAMPLES", clips_per_chunk * 63 * 512)
    chunked = np.asarray(audio.log_mel(short.reshape(3, 1, -1), n_fft=512, hop_length=256,
                                       n_mels=32, top_db=30.0))
    whole = np.stack([np.asarray(audio.log_mel(c, n_fft=512, hop_length=256, n_mels=32,
                                               top_db=30.0)) for c in short])
    np.testing.assert_allclose(chunked[:, 0], whole, atol=1e-3)


@pytest.mark.parametrize("cpus", [2, 3])
def test_log_mel_split_over_cpus_equals_the_single_call_bit_for_bit(clips, cpus, monkeypatch):
    # One contiguous part of whole chunks per usable CPU, each in its own thread: 7 clips of
    # 1 chunk each make parts of 3 + 4 clips (2 CPUs) or 2 + 2 + 3 (3 CPUs).
    waves = np.concatenate([clips[:, :16000], clips[:, 16000:32000], clips[:1, 32000:48000]])
    params = dict(n_fft=512, hop_length=256, n_mels=32)
    monkeypatch.setattr(audio, "_CHUNK_SAMPLES", 63 * 512)
    monkeypatch.setattr(kernels, "usable_cpus", lambda: 1)
    single = np.asarray(audio.log_mel(waves, **params))
    monkeypatch.setattr(kernels, "usable_cpus", lambda: cpus)
    counts, kernel = [], audio._log_mel

    def counting_kernel(x, start, **kwargs):
        counts.append(kwargs["count"])
        return kernel(x, start, **kwargs)

    monkeypatch.setattr(audio, "_log_mel", counting_kernel)
    for x in (waves, jax.device_put(waves), waves.reshape(7, 1, -1)):
        counts.clear()
        np.testing.assert_array_equal(np.asarray(audio.log_mel(x, **params)).reshape(
            single.shape), single)
        assert sorted(counts) == ([3, 4] if cpus == 2 else [2, 2, 3])


def test_top_db_floors_each_clip_separately(clips):
    quiet_and_loud = np.stack([clips[0] * 1e-3, clips[0]])
    out = np.asarray(audio.log_mel(quiet_and_loud, top_db=20.0))
    for spec in out:
        assert spec.min() >= spec.max() - 20.0 - 1e-4
    # The quiet clip is floored relative to its own maximum, 60 dB below the loud one.
    np.testing.assert_allclose(out[0].max(), out[1].max() - 60.0, atol=1e-2)


@pytest.mark.parametrize("win_length,center", [(None, True), (300, False)])
def test_stft_matches_librosa(clips, win_length, center):
    y = clips[1, :8000]
    expected = librosa.stft(y, n_fft=512, hop_length=128, win_length=win_length, center=center)
    actual = np.asarray(audio.stft(y, n_fft=512, hop_length=128, win_length=win_length,
                                   center=center))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("win_length,center", [(None, True), (300, False)])
def test_istft_matches_librosa_on_an_arbitrary_spectrum(win_length, center):
    # A spectrum that is no STFT of any signal: the overlap-add and its normalisation decide.
    rng = np.random.default_rng(8)
    spectrum = (rng.normal(size=(2, 257, 40)) + 1j * rng.normal(size=(2, 257, 40))).astype(
        np.complex64)
    expected = librosa.istft(spectrum, hop_length=128, win_length=win_length, center=center,
                             length=5000)
    actual = np.asarray(audio.istft(spectrum, hop_length=128, win_length=win_length,
                                    center=center, length=5000))
    assert actual.shape == expected.shape == (2, 5000)
    np.testing.assert_allclose(actual, expected, atol=1e-5 * np.abs(expected).max())


def test_istft_inverts_stft(clips):
    y = clips[:2, :16000]
    spectrum = audio.stft(y, n_fft=1024, hop_length=512)
    back = np.asarray(audio.istft(spectrum, hop_length=512, length=16000))
    np.testing.assert_allclose(back, y, atol=1e-5 * np.abs(y).max())


def test_istft_input_errors():
    with pytest.raises(ValueError, match="complex"):
        audio.istft(np.zeros((257, 10), np.float32), hop_length=128, length=100)
    with pytest.raises(ValueError, match="n_fft=1024 needs 513"):
        audio.istft(np.zeros((257, 10), np.complex64), hop_length=128, length=100, n_fft=1024)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax",
                         [(16000, 1024, 128, 0.0, None), (22050, 2048, 64, 20.0, 8000.0),
                          (16000, 256, 16, 300.0, 4000.0)])
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax):
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    actual = audio.mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)
    assert not actual.flags.writeable


def test_spectrogram_input_errors():
    with pytest.raises(ValueError, match="at least n_fft=1024 samples"):
        audio.stft(np.zeros(100, np.float32), n_fft=1024, hop_length=256, center=False)
    with pytest.raises(ValueError, match="fmin < fmax"):
        audio.log_mel(np.zeros(4000, np.float32), fmin=9000.0)
    with pytest.raises(ValueError, match="waveforms contains 1 non-finite"):
        audio.log_mel(np.array([np.nan] + [0.0] * 4000, np.float32))


# ------------------------------------------------------------------------------- loading


def test_load_real_clip_matches_pcm_samples(shared_data):
    path = shared_data / VALVE / "section_00_source_test_normal_0002_pat_00.wav"
    pcm, rate = sf.read(path, dtype="int16")
    wave = audio.load(path)
    assert rate == 16000 and wave.dtype == np.float32 and wave.shape == (160000,)
    np.testing.assert_array_equal(wave, pcm.astype(np.float32) / 32768.0)


@pytest.fixture
def stereo(tmp_path):
    t = np.arange(8000) / 8000.0
    data = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.ones_like(t)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, data, 8000, subtype="FLOAT")
    return path, data.astype(np.float32)


def test_load_multichannel_requires_a_choice(stereo):
    path, data = stereo
    with pytest.raises(ValueError, match=r"has 2 channels; choose one with channel=0..1 or "
                                         r"average them with mix='mean'"):
        audio.load(path, sample_rate=8000)
    np.testing.assert_array_equal(audio.load(path, sample_rate=8000, channel=1), data[:, 1])
    np.testing.assert_allclose(audio.load(path, sample_rate=8000, mix="mean"), data.mean(axis=1),
                               atol=1e-7)
    with pytest.raises(ValueError, match=r"channel must be an integer in \[0, 1\]"):
        audio.load(path, sample_rate=8000, channel=2)
    with pytest.raises(ValueError, match="not both"):
        audio.load(path, sample_rate=8000, channel=0, mix="mean")
    with pytest.raises(ValueError, match="mix must be None or 'mean'"):
        audio.load(path, sample_rate=8000, mix="sum")


def test_load_sample_rate_mismatch_and_resampling(stereo):
    path, _ = stereo
    with pytest.raises(ValueError, match="sampled at 8000 Hz, not sample_rate=16000 Hz; pass "
                                         "resample=True"):
        audio.load(path, channel=0)
    up = audio.load(path, channel=0, resample=True)
    assert up.shape == (16000,) and up.dtype == np.float32
    t = np.arange(16000) / 16000.0
    # Away from the edges (filter transients) the 440 Hz tone is reproduced at the new rate.
    np.testing.assert_allclose(up[500:-500], 0.5 * np.sin(2 * np.pi * 440 * t)[500:-500],
                               atol=5e-3)


def test_load_corrupt_truncated_and_missing_files(tmp_path, shared_data):
    good = (shared_data / VALVE / "section_00_source_test_normal_0002_pat_00.wav").read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"truncated\.wav is truncated: its data chunk declares "
                                         r"320000 bytes"):
        audio.load(truncated)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all" * 8)
    with pytest.raises(ValueError, match=r"cannot decode audio file .*corrupt\.wav"):
        audio.load(corrupt)
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        audio.load(tmp_path / "missing.wav")


def test_load_noise(shared_data):
    tap = dcase.load_noise("running_tap", shared_data)
    assert tap.dtype == np.float32 and 60 * 16000 < tap.size < 62 * 16000
    with pytest.raises(FileNotFoundError, match=r"'rain' not found .*available: \['doing_the_"):
        dcase.load_noise("rain", shared_data)


# ------------------------------------------------------------------- mixing, segmenting


def _naive_mix(signal, noise, snr_db, offset):
    stretch = np.array([noise[(offset + t) % len(noise)] for t in range(len(signal))])
    gain = np.sqrt(np.mean(signal**2) / np.mean(stretch**2) / 10 ** (snr_db / 10))
    return signal + gain * stretch


@settings(max_examples=15, deadline=None)
@given(snr_db=st.floats(-20, 30), seed=st.integers(0, 2**31 - 1))
def test_mix_at_snr_hits_the_snr_and_matches_naive_looping(snr_db, seed):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal(500).astype(np.float32)
    noise = rng.standard_normal(137).astype(np.float32)  # shorter: must loop
    key = jax.random.key(seed)
    mixed = np.asarray(audio.mix_at_snr(signal, noise, snr_db, key=key))
    offset = int(jax.random.randint(key, (), 0, 137))
    np.testing.assert_allclose(mixed, _naive_mix(signal, noise, snr_db, offset), rtol=1e-4,
                               atol=1e-4)
    added = mixed - signal
    measured = 10 * np.log10(np.mean(signal**2) / np.mean(added**2))
    assert abs(measured - snr_db) < 1e-3


def test_mix_at_snr_batch_crops_long_noise_with_per_clip_offsets(shared_data):
    noise = dcase.load_noise("exercise_bike", shared_data)
    signal = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)
    key = jax.random.key(1)
    mixed = np.asarray(audio.mix_at_snr(signal, noise, np.array([0.0, 5.0, -5.0]), key=key))
    offsets = np.asarray(jax.random.randint(key, (3,), 0, noise.size))
    assert len(set(offsets.tolist())) == 3
    for i, snr in enumerate([0.0, 5.0, -5.0]):
        np.testing.assert_allclose(mixed[i], _naive_mix(signal[i], noise, snr, offsets[i]),
                                   rtol=1e-4, atol=1e-5)
    no_key = np.asarray(audio.mix_at_snr(signal[0], noise, 0.0))
    np.testing.assert_allclose(no_key, _naive_mix(signal[0], noise, 0.0, 0), rtol=1e-4, atol=1e-5)


def test_mix_at_snr_with_a_reference_power_gives_loud_and_quiet_clips_the_same_noise():
    rng = np.random.default_rng(7)
    quiet = 0.05 * rng.standard_normal(500)
    loud = quiet + 0.15 * np.sin(np.arange(500) / 3.0)  # an "anomaly" that adds energy
    signal = np.stack([quiet, loud]).astype(np.float32)
    noise = rng.standard_normal(137).astype(np.float32)
    key = jax.random.key(2)
    offsets = np.asarray(jax.random.randint(key, (2,), 0, 137))
    for snr_db in (-5.0, 10.0):
        mixed = np.asarray(audio.mix_at_snr(signal, noise, snr_db, key=key,
                                            reference_power=0.05**2))
        added = (mixed - signal).astype(np.float64)
        np.testing.assert_allclose(np.mean(added**2, axis=1), 0.05**2 / 10 ** (snr_db / 10),
                                   rtol=1e-4)
        for i in range(2):  # naive: the reference power in place of the clip's own power
            stretch = np.array([noise[(offsets[i] + t) % 137] for t in range(500)], np.float64)
            gain = np.sqrt(0.05**2 / np.mean(stretch**2) / 10 ** (snr_db / 10))
            np.testing.assert_allclose(mixed[i], signal[i] + gain * stretch, rtol=1e-4,
                                       atol=1e-5)
    # Per-clip references broadcast over the batch; a silent clip is fine with a reference.
    per_clip = np.asarray(audio.mix_at_snr(np.zeros((2, 500), np.float32), noise, 0.0,
                                           key=key, reference_power=np.array([1.0, 4.0])))
    np.testing.assert_allclose(np.mean(per_clip.astype(np.float64) ** 2, axis=1), [1.0, 4.0],
                               rtol=1e-4)
    # The default (SNR relative to each clip) gives the loud clip louder noise.
    default = np.asarray(audio.mix_at_snr(signal, noise, 0.0, key=key)) - signal
    power = np.mean(default.astype(np.float64) ** 2, axis=1)
    assert power[1] > 5 * power[0]


@pytest.mark.parametrize(("reference", "match"), [
    (0.0, "positive and finite"), (-1.0, "positive and finite"),
    (float("nan"), "positive and finite"), (float("inf"), "positive and finite"),
    (np.array([1.0, 0.0, 1.0]), "positive and finite"),
    (np.ones(2), r"shape \(2,\) does not broadcast to the \(3,\) waveforms"),
    (np.ones((3, 1)), r"does not broadcast"),
])
def test_mix_at_snr_rejects_bad_reference_powers(reference, match):
    with pytest.raises(ValueError, match=match):
        audio.mix_at_snr(np.ones((3, 10), np.float32), np.ones(10, np.float32), 0.0,
                         reference_power=reference)


def test_mix_at_snr_rejects_silence():
    with pytest.raises(ValueError, match="signal is silent"):
        audio.mix_at_snr(np.zeros(10, np.float32), np.ones(10, np.float32), 0.0)
    with pytest.raises(ValueError, match="noise is silent"):
        audio.mix_at_snr(np.ones(10, np.float32), np.zeros(10, np.float32), 0.0)


@settings(max_examples=30, deadline=None)
@given(length=st.integers(5, 60), window=st.integers(1, 5), hop=st.integers(1, 7))
def test_segment_matches_naive_windows(length, window, hop):
    x = np.arange(2 * length, dtype=np.float32).reshape(2, length)
    expected = np.array([[row[s : s + window] for s in range(0, length - window + 1, hop)]
                         for row in x])
    np.testing.assert_array_equal(audio.segment(x, window=window, hop=hop), expected)


def test_segment_errors():
    with pytest.raises(ValueError, match="has 10 samples, fewer than window=16"):
        audio.segment(np.zeros(10), window=16, hop=4)
    with pytest.raises(ValueError, match="hop must be >= 1"):
        audio.segment(np.zeros(10), window=4, hop=0)


def test_log_mel_of_a_numpy_array_equals_the_device_call_and_owns_its_input():
    rng = np.random.default_rng(5)
    # A 64-byte aligned buffer: the kind XLA's CPU client would share rather than copy.
    raw = np.empty(3 * 8000 * 4 + 64, np.uint8)
    start = -raw.ctypes.data % 64
    waves = raw[start:start + 3 * 8000 * 4].view(np.float32).reshape(3, 8000)
    waves[:] = rng.normal(size=(3, 8000))
    device = np.asarray(audio.log_mel(jax.device_put(waves.copy()), n_mels=16))
    host = audio.log_mel(waves, n_mels=16)
    waves[:] = 0.0  # the caller may reuse its buffer at once: the result must not change
    np.testing.assert_array_equal(np.asarray(host), device)
    as_float64 = audio.log_mel(rng.normal(size=(3, 8000)), n_mels=16)
    assert as_float64.dtype == np.float32


@pytest.mark.parametrize(("n_fft", "hop_length"), [(512, 256), (256, 256), (256, 1000)])
def test_log_mel_reports_a_non_finite_sample_wherever_it_is(n_fft, hop_length):
    # Covered samples are checked through the output, others (hop > n_fft) on the input.
    waves = np.random.default_rng(6).normal(size=(2, 4000)).astype(np.float32)
    for position in (0, 1, hop_length, 3999):
        for value in (np.nan, np.inf, -np.inf):
            bad = waves.copy()
            bad[1, position] = value
            for waveforms in (bad, jax.device_put(bad), bad.astype(np.float64)):
                with pytest.raises(ValueError, match=r"contains 1 non-finite value"):
                    audio.log_mel(waveforms, n_fft=n_fft, hop_length=hop_length, n_mels=16)


def test_log_mel_results_do_not_share_the_reused_staging_buffer():
    rng = np.random.default_rng(7)
    first, second = (rng.normal(size=(4, 8000)).astype(np.float32) for _ in range(2))
    expected = [np.asarray(audio.log_mel(jax.device_put(w), n_mels=16)) for w in (first, second)]
    result = audio.log_mel(first, n_mels=16)
    audio.log_mel(second, n_mels=16)
    np.testing.assert_array_equal(np.asarray(result), expected[0])
    with ThreadPoolExecutor(4) as pool:  # concurrent callers never share a buffer
        results = list(pool.map(lambda w: np.asarray(audio.log_mel(w, n_mels=16)),
                                [first, second] * 4))
    for i, got in enumerate(results):
        np.testing.assert_array_equal(got, expected[i % 2])

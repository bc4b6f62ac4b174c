"""RISE: against a naive per-mask reference, on scores with known support, mask statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdtheory.explain import _upsampling_matrix, region_share, rise, rise_masks, rise_waveform

SHAPE = (32, 24)
BOX = (slice(8, 16), slice(12, 20))


def box_region(shape=SHAPE, box=BOX):
    region = np.zeros(shape, bool)
    region[box] = True
    return region


def box_energy(x):
    """A score that depends only on the box: the mean value there."""
    return x[:, BOX[0], BOX[1]].mean(axis=(1, 2))


def naive_rise(score_fn, spectrogram, masks, keep_prob, baseline, centre):
    """sum_i f(I (.) M_i) M_i / (N p), one mask at a time, in float64."""
    masks = np.asarray(masks, np.float64)
    scores = np.array([float(score_fn(jnp.asarray(baseline + m * (spectrogram - baseline))[None])
                             [0]) for m in masks])
    if centre:
        scores = scores - scores.mean()
    return np.einsum("i,itf->tf", scores, masks) / (len(masks) * keep_prob)


@pytest.mark.parametrize("centre", [False, True])
def test_rise_matches_naive_reference(centre):
    rng = np.random.default_rng(0)
    spec = rng.normal(size=SHAPE).astype(np.float32)
    weights = rng.normal(size=SHAPE)
    score_fn = lambda x: jnp.tensordot(jnp.tanh(x), weights, axes=2)
    key = jax.random.key(3)
    # 37 masks in batches of 10: the last batch is padded; the padding must not count.
    got = rise(score_fn, spec, key, n_masks=37, grid=(4, 3), keep_prob=0.3, batch_size=10,
               centre=centre)
    masks = rise_masks(key, 37, shape=SHAPE, grid=(4, 3), keep_prob=0.3)
    expected = naive_rise(score_fn, spec, masks, 0.3, spec.min(), centre)
    assert got.shape == SHAPE and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_saliency_concentrates_on_the_only_region_the_score_depends_on():
    spec = np.ones(SHAPE, np.float32)
    sal = rise(box_energy, spec, jax.random.key(0), n_masks=2000, grid=(8, 6), keep_prob=0.5,
               baseline=0.0, centre=True)
    # The box covers 1/12 of the bins. The masks are correlated over one coarse cell (4 x 4
    # bins), which spreads positive saliency into a one-cell halo around the box; beyond it
    # only Monte Carlo noise remains.
    halo = np.zeros(SHAPE, bool)
    halo[4:20, 8:24] = True
    assert region_share(sal, box_region()) > 0.45
    assert region_share(sal, halo) > 0.85
    assert box_region()[np.unravel_index(np.argmax(sal), SHAPE)]
    assert np.abs(np.asarray(sal)[~halo]).max() < 0.15 * float(sal.max())


def test_uncentred_saliency_is_conditional_mean_score():
    """Far from the box, M(t, k) is independent of the score: S ~ E[f] = p (mean kept value)."""
    spec = np.ones(SHAPE, np.float32)
    sal = np.asarray(rise(box_energy, spec, jax.random.key(1), n_masks=1000, grid=(8, 6),
                          keep_prob=0.5, baseline=0.0))
    far = np.ones(SHAPE, bool)
    far[4:20, 8:24] = False  # more than one coarse cell away from the box
    np.testing.assert_allclose(sal[far].mean(), 0.5, atol=0.03)
    # In the box, keeping a bin also keeps part of what f measures: E[f | kept] > E[f].
    assert sal[box_region()].mean() > sal[far].mean() + 0.04


@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.8])
def test_mask_mean_matches_keep_probability(keep_prob):
    n = 2000
    masks = np.asarray(rise_masks(jax.random.key(0), n, shape=SHAPE, grid=(5, 4),
                                  keep_prob=keep_prob))
    assert masks.min() >= 0 and masks.max() <= 1
    # Each bin's mask value is a convex combination of Bernoulli(p) cells: mean p, variance
    # at most p (1 - p).
    se = np.sqrt(keep_prob * (1 - keep_prob) / n)
    assert abs(masks.mean() - keep_prob) < 4 * se
    assert np.abs(masks.mean(axis=0) - keep_prob).max() < 5 * se


def test_random_shift_makes_mask_variance_uniform():
    """Without the shift, var M(t, k) would be p (1 - p) on the coarse-grid nodes and down to
    p (1 - p) / 4 between them; with a uniform shift every interior bin sees every phase. (The
    first and last cell are the resized image's clamped edge, as in the paper.)"""
    masks = np.asarray(rise_masks(jax.random.key(0), 2000, shape=SHAPE, grid=(5, 4)))
    var = masks.var(axis=0)[7:-7, 6:-6]  # cells of 7 x 6 bins
    assert var.max() / var.min() < 1.2


@pytest.mark.parametrize("n_coarse, factor", [(2, 1), (5, 4), (9, 7)])
def test_upsampling_matches_jax_image_resize(n_coarse, factor):
    coarse = np.random.default_rng(0).random((n_coarse, 3)).astype(np.float32)
    expected = jax.image.resize(coarse, (n_coarse * factor, 3), method="linear")
    np.testing.assert_allclose(_upsampling_matrix(n_coarse, factor) @ coarse, expected,
                               atol=1e-6)


def test_masks_are_binary_on_a_one_bin_grid_and_smooth_otherwise():
    # grid == shape: cells of one bin, bilinear upsampling by 1 keeps the binary values.
    binary = np.asarray(rise_masks(jax.random.key(0), 50, shape=(6, 5), grid=(6, 5)))
    assert set(np.unique(binary)) <= {0.0, 1.0}
    smooth = np.asarray(rise_masks(jax.random.key(0), 50, shape=SHAPE, grid=(4, 4)))
    assert np.abs(np.diff(smooth, axis=1)).max() <= 1 / 8 + 1e-6  # cells of 8 time bins


def test_deterministic_from_key_and_independent_of_batch_size():
    rng = np.random.default_rng(1)
    spec = rng.normal(size=SHAPE).astype(np.float32)
    score_fn = jax.jit(lambda x: jnp.sum(x[:, :10] ** 2, axis=(1, 2)))
    kwargs = dict(n_masks=60, grid=4, keep_prob=0.5)
    a = rise(score_fn, spec, jax.random.key(7), batch_size=60, **kwargs)
    b = rise(score_fn, spec, jax.random.key(7), batch_size=60, **kwargs)
    c = rise(score_fn, spec, jax.random.key(7), batch_size=7, **kwargs)
    d = rise(score_fn, spec, jax.random.key(8), batch_size=60, **kwargs)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(a) - np.asarray(d)).max() > 1e-2


def test_numpy_score_function_and_baseline_array():
    spec = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) / 100
    base = np.full(SHAPE, -1.0, np.float32)
    score_fn = lambda x: np.asarray(x).max(axis=(1, 2))
    got = rise(score_fn, spec, jax.random.key(0), n_masks=20, grid=4, baseline=base,
               batch_size=8)
    masks = rise_masks(jax.random.key(0), 20, shape=SHAPE, grid=4)
    np.testing.assert_allclose(got, naive_rise(score_fn, spec, masks, 0.5, base, False),
                               rtol=1e-4, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.floats(-5, 5), st.floats(0.1, 10))
def test_saliency_is_affine_equivariant_in_the_score(shift, scale):
    """f -> a f + b gives S -> a S + b mean(M)/p; centred saliency just scales by a."""
    spec = np.linspace(0, 1, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    f = lambda x: jnp.mean(x[:, :, :6], axis=(1, 2))
    key = jax.random.key(2)
    kw = dict(n_masks=16, grid=4, batch_size=16, centre=True)
    base = rise(f, spec, key, **kw)
    moved = rise(lambda x: scale * f(x) + shift, spec, key, **kw)
    np.testing.assert_allclose(moved, scale * base, atol=1e-4 * (1 + abs(shift) + scale))


def test_region_share():
    sal = np.array([[1.0, -2.0], [3.0, 0.0]])
    region = np.array([[True, True], [False, False]])
    assert region_share(sal, region) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="boolean"):
        region_share(sal, region.astype(int))
    with pytest.raises(ValueError, match="no positive"):
        region_share(-np.abs(sal), region)


def test_bad_input_errors():
    spec = np.zeros(SHAPE, np.float32)
    f = lambda x: x.sum(axis=(1, 2))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="spectrogram must have 2"):
        rise(f, np.zeros((2, *SHAPE)), key)
    with pytest.raises(ValueError, match="keep_prob must be > 0"):
        rise(f, spec, key, keep_prob=0.0)
    with pytest.raises(ValueError, match="keep_prob must be <= 1"):
        rise(f, spec, key, keep_prob=1.5)
    with pytest.raises(ValueError, match="grid has 40 cells along time"):
        rise(f, spec, key, grid=(40, 4))
    with pytest.raises(ValueError, match="grid must be an int or a pair"):
        rise(f, spec, key, grid=(4, 4, 4))
    with pytest.raises(ValueError, match="n_masks must be >= 1"):
        rise(f, spec, key, n_masks=0)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        rise(f, spec, key, batch_size=2.5)
    with pytest.raises(ValueError, match="baseline of shape"):
        rise(f, spec, key, baseline=np.zeros(5))
    with pytest.raises(ValueError, match=r"to \(10,\) scores, got shape \(10, 1\)"):
        rise(lambda x: x.sum(axis=2)[:, :1], spec, key, n_masks=10, batch_size=10)
    with pytest.raises(ValueError, match="non-finite"):
        rise(lambda x: x.sum(axis=(1, 2)) / 0.0, spec, key, n_masks=10, batch_size=10)
    with pytest.raises(ValueError, match="non-finite"):
        rise(f, np.full(SHAPE, np.nan), key)
    with pytest.raises(ValueError, match="shape must be a pair"):
        rise_masks(key, 4, shape=(4,))


def test_dominance_mask_marks_bins_where_the_target_is_louder():
    from asdtheory.explain import dominance_mask

    target = np.array([[10.0, -5.0], [0.0, 3.0]])
    noise = np.array([[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(dominance_mask(target, noise), [[True, False], [False, True]])
    np.testing.assert_array_equal(dominance_mask(target, noise, margin_db=5.0),
                                  [[True, False], [False, False]])
    with pytest.raises(ValueError, match="one shape"):
        dominance_mask(target, noise[:1])


def test_rise_waveform_with_every_bin_kept_scores_the_clip_itself():
    # keep_prob 1: every mask keeps every bin, the resynthesis returns the clip, and the
    # uncentred saliency is f(clip) everywhere.
    wave = np.random.default_rng(9).normal(size=4096).astype(np.float32)
    weights = np.random.default_rng(10).normal(size=4096).astype(np.float32)
    score_fn = lambda w: jnp.tanh(w) @ weights
    sal, log_magnitude = rise_waveform(score_fn, wave, jax.random.key(0), n_fft=256,
                                       hop_length=64, n_masks=4, grid=4, keep_prob=1.0)
    assert sal.shape == log_magnitude.shape == (1 + 4096 // 64, 129)
    np.testing.assert_allclose(sal, float(score_fn(wave)), rtol=1e-3)


def test_rise_waveform_finds_the_tone_the_score_listens_to():
    # A 2 kHz tone in 0.25-0.5 s of 1 s of white noise; the score is the waveform's energy
    # near 2 kHz in that time span. Its positive saliency lies in that box of the STFT plane.
    sr, n_fft, hop = 8000, 256, 128
    t = np.arange(sr) / sr
    rng = np.random.default_rng(11)
    wave = (0.3 * rng.normal(size=sr) + np.sin(2 * np.pi * 2000 * t) * ((t >= 0.25) & (t < 0.5))
            ).astype(np.float32)
    freqs = np.fft.rfftfreq(2000, 1 / sr)
    band = jnp.asarray((freqs > 1800) & (freqs < 2200))

    def score_fn(waves):
        return jnp.sum(jnp.abs(jnp.fft.rfft(waves[:, 2000:4000], axis=-1)) ** 2 * band, axis=-1)

    sal, _ = rise_waveform(score_fn, wave, jax.random.key(1), n_fft=n_fft, hop_length=hop,
                           n_masks=500, grid=(16, 8), keep_prob=0.5, centre=True)
    frames = np.arange(sal.shape[0]) * hop / sr
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    box = ((frames >= 0.25) & (frames < 0.5))[:, None] & ((bins > 1700) & (bins < 2300))[None]
    assert box.mean() < 0.04
    assert region_share(sal, box) > 0.3, region_share(sal, box)

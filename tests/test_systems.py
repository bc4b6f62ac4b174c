"""Trained systems: the jitted score function equals the batched score and the back-ends."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asdtheory import scoring, train
from asdtheory.experiments import DetectConfig
from asdtheory.systems import _windows, fit_system

TINY = dict(window_frames=8, window_hop=4, embed_dim=4, channels=(4,), n_clusters=2,
            epochs=1, batch_size=8, autoencoder_batch_size=16)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 8)
    mels = rng.normal(size=(16, 12, 6)).astype(np.float32) + 3 * labels[:, None, None] - 40
    test = rng.normal(size=(5, 12, 6)).astype(np.float32) - 40
    return mels, labels, test


def test_windows_match_audio_segment_layout():
    x = jnp.arange(2 * 10 * 3, dtype=jnp.float32).reshape(2, 10, 3)
    w = np.asarray(_windows(x, 4, 3))
    assert w.shape == (2, 3, 4, 3)
    for i, start in enumerate((0, 3, 6)):
        np.testing.assert_array_equal(w[:, i], np.asarray(x)[:, start:start + 4])


@pytest.mark.parametrize("method", ["subcluster-adacos", "deep-svdd", "autoencoder"])
def test_score_fn_equals_score_and_backend(data, method):
    mels, labels, test = data
    target = np.arange(16) % 8 == 0
    system = fit_system(mels, labels, config=DetectConfig(method=method, **TINY),
                        key=jax.random.key(0), target=target)
    scores = system.score(test, batch_size=2)  # padded last batch
    np.testing.assert_allclose(np.asarray(system.score_fn(jnp.asarray(test))), scores,
                               rtol=1e-5, atol=1e-6)
    z = system.embed(test)
    x = (test - mels.mean()) / mels.std()
    if method == "autoencoder":
        assert z.shape == (5, 8)
        v = np.stack([x[:, s:s + 5].reshape(5, -1) for s in range(8)], axis=1)
        recon = train.reconstruct(system.model, v.reshape(-1, v.shape[-1]))
        expected = ((recon - v.reshape(-1, v.shape[-1])) ** 2).mean(-1).reshape(5, 8).mean(1)
    elif method == "deep-svdd":
        assert system.centres is None
        w = np.stack([x[:, s:s + 8] for s in (0, 4)], axis=1).reshape(10, 8, 6)
        phi = train.embed(system.model, w)
        expected = ((phi - np.asarray(system.head.centre[...])) ** 2).sum(-1).reshape(5, 2)
        expected = expected.mean(1)
    else:
        # Two k-means centres of the 14 source clips + the 2 target clips as their own.
        assert system.centres.shape == (4, 4)
        np.testing.assert_allclose(system.centres[2:],
                                   z_unit(system.embed(mels)[target]), atol=1e-5)
        expected = scoring.nearest_centre_score(z, system.centres)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def z_unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def test_bad_input(data):
    mels, labels, _ = data
    config = DetectConfig(method="deep-svdd", **TINY)
    with pytest.raises(ValueError, match="train_mels must be"):
        fit_system(mels[0], labels, config=config, key=jax.random.key(0))
    with pytest.raises(ValueError, match="train_labels must be"):
        fit_system(mels, labels[:3], config=config, key=jax.random.key(0))
    with pytest.raises(ValueError, match="target must be"):
        fit_system(mels, labels, config=config, key=jax.random.key(0),
                   target=np.ones(16, bool))

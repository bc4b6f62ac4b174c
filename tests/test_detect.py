"""The one detector: examples are slices of the input, scores equal naive recomputations of
every back-end, the jitted score function equals the batched score, the random-label control
is an exact permutation, checks come before training, compare fills its grid."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from asdtheory import audio, detect, evaluation, methods, scoring, train
from asdtheory.data.synthetic import machine_sounds
from asdtheory.detect import Detector, DetectorConfig, embedders

TINY = DetectorConfig.tiny(window_frames=8, window_hop=4, embed_dim=4,
                           embedder=embedders.CNN(channels=(4,)),
                           num_subclusters=2, epochs=1, batch_size=8)


@pytest.fixture(scope="module")
def data():
    """16 training clips of 2 classes (12 frames x 6 bands), 5 test clips."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 8)
    inputs = rng.normal(size=(16, 12, 6)).astype(np.float32) + 3 * labels[:, None, None] - 40
    test = rng.normal(size=(5, 12, 6)).astype(np.float32) - 40
    return inputs, labels, test


@pytest.fixture
def no_training(monkeypatch):
    """Makes any call of train.fit fail the test: checks must come before training."""

    def fail(*args, **kwargs):
        raise AssertionError("training started although the input is invalid")

    monkeypatch.setattr(detect.train, "fit", fail)


def unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


# ------------------------------------------------------------------------- examples


def test_windows_and_stacked_frames_are_slices_of_the_input():
    x = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3)  # (n, frames, F)
    windows = detect.examples(x, DetectorConfig(window_frames=4, window_hop=3))
    assert windows.shape == (2, 3, 4, 3)  # 1 + (10 - 4) // 3 windows
    flat = detect.examples(x, DetectorConfig(window_frames=4, window_hop=3,
                                             embedder=embedders.MLP()))
    stacked = detect.examples(x, DetectorConfig(method="autoencoder", context_frames=5))
    assert flat.shape == (2, 3, 12) and stacked.shape == (2, 6, 15)
    for i in range(2):
        for k in range(3):
            np.testing.assert_array_equal(windows[i, k], x[i, 3 * k:3 * k + 4])
            np.testing.assert_array_equal(flat[i, k], x[i, 3 * k:3 * k + 4].ravel())
        for k in range(6):
            np.testing.assert_array_equal(stacked[i, k], x[i, k:k + 5].ravel())
    # The same function inside jit (the scoring pass) gives the same examples.
    np.testing.assert_array_equal(np.asarray(jax.jit(
        lambda v: detect.examples(v, DetectorConfig(window_frames=4, window_hop=3)))(x)),
        windows)


def test_log_mels_equals_audio_log_mel_with_frames_first():
    x = np.asarray(jax.random.normal(jax.random.key(1), (5, 4000))) * 0.1
    got = detect.log_mels(x, n_mels=16, chunk_size=2)  # padded last chunk
    want = np.swapaxes(np.asarray(audio.log_mel(x, n_mels=16)), -1, -2)
    assert got.shape == (5, want.shape[1], 16)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="clips, samples"):
        detect.log_mels(np.zeros(4000))


# ------------------------------------------------------------------------- scores


def test_scores_equal_naive_recomputations(data):
    inputs, labels, test = data
    target = np.arange(16) % 8 == 0
    x = (test - inputs.mean()) / inputs.std()
    for method in ("subcluster-adacos", "deep-svdd", "autoencoder"):
        det = Detector.fit(inputs, labels, config=dataclasses.replace(TINY, method=method),
                           key=jax.random.key(0), is_target=target)
        scores = det.score(test, batch_size=2)  # padded last batch
        z = det.embed(test)
        if method == "autoencoder":
            v = np.stack([x[:, s:s + 5].reshape(5, -1) for s in range(8)], axis=1)
            recon = train.reconstruct(det.model, v.reshape(-1, v.shape[-1]))
            want = ((recon - v.reshape(-1, v.shape[-1])) ** 2).mean(-1).reshape(5, 8).mean(1)
        elif method == "deep-svdd":
            assert det.centres == {}
            w = np.stack([x[:, s:s + 8] for s in (0, 4)], axis=1).reshape(10, 8, 6)
            phi = train.embed(det.model, w)
            want = ((phi - np.asarray(det.head.centre[...])) ** 2).sum(-1).reshape(5, 2).mean(1)
        else:
            # Two k-means centres of the 14 source clips + the 2 target clips as their own.
            centres = det.centres[0]
            assert centres.shape == (4, 4)
            np.testing.assert_allclose(centres[2:], unit(det.train_embeddings[target]),
                                       atol=1e-5)
            want = scoring.nearest_centre_score(z, centres)
        np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-5, err_msg=method)
        np.testing.assert_allclose(np.asarray(det.score_fn()(jnp.asarray(test))), scores,
                                   rtol=1e-5, atol=1e-6, err_msg=method)


@pytest.mark.parametrize("backend", ["knn", "nearest-centre"])
def test_other_backends_equal_their_scoring_functions(data, backend):
    inputs, labels, test = data
    groups = np.arange(16) % 2
    config = dataclasses.replace(TINY, backend=backend, knn_k=3)
    det = Detector.fit(inputs, labels, config=config, key=jax.random.key(1), groups=groups)
    test_groups = np.array([0, 1, 1, 0, 1])
    scores = det.score(test, groups=test_groups)
    z = det.embed(test)
    for g in (0, 1):
        rows = test_groups == g
        if backend == "knn":
            want = scoring.knn_score(det.train_embeddings[groups == g], z[rows], k=3)
        else:
            want = scoring.nearest_centre_score(z[rows], det.head.centres[...])
        np.testing.assert_allclose(scores[rows], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(det.score_fn(g)(jnp.asarray(test[rows]))),
                                   scores[rows], rtol=1e-5, atol=1e-6)


def test_kmeans_backend_is_fitted_per_group(data):
    inputs, labels, test = data
    groups = np.repeat([3, 7], 8)
    det = Detector.fit(inputs, labels, config=TINY, key=jax.random.key(2), groups=groups)
    assert sorted(det.centres) == [3, 7]
    test_groups = np.array([3, 7, 7, 3, 3])
    scores = det.score(test, groups=test_groups)
    z = det.embed(test)
    for g in (3, 7):
        rows = test_groups == g
        np.testing.assert_allclose(scores[rows],
                                   scoring.nearest_centre_score(z[rows], det.centres[g]),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"groups \[5\] have no training clips"):
        det.score(test, groups=np.full(5, 5))
    with pytest.raises(ValueError, match="pass groups="):
        det.score(test)


def test_too_few_source_clips_for_kmeans_warns_before_training(data, no_training):
    inputs, labels, _ = data
    with pytest.warns(UserWarning, match=r"n_clusters=9 exceeds .* group\(s\) 0: 8, 1: 8"), \
            pytest.raises(AssertionError, match="training started"):
        Detector.fit(inputs, labels, config=dataclasses.replace(TINY, n_clusters=9),
                     key=jax.random.key(0), groups=np.arange(16) % 2)


def test_a_group_with_fewer_source_clips_uses_one_centre_per_clip(data):
    inputs, labels, _ = data
    with pytest.warns(UserWarning, match="one centre per clip"):
        det = Detector.fit(inputs, labels, config=dataclasses.replace(TINY, n_clusters=9),
                           key=jax.random.key(0), groups=np.arange(16) % 2)
    assert det.centres[0].shape == det.centres[1].shape == (8, 4)


# ------------------------------------------------------------------------- training


def test_random_label_control_is_the_same_run_on_permuted_labels(data):
    inputs, labels, test = data
    key = jax.random.key(3)
    control = Detector.fit(inputs, labels, key=key, config=dataclasses.replace(
        TINY, method="subcluster-adacos" + methods.RANDOM_LABELS)).score(test)
    permuted = np.asarray(jax.random.permutation(jax.random.split(key, 4)[2], labels))
    assert not np.array_equal(permuted, labels)
    same = Detector.fit(inputs, permuted, config=TINY, key=key).score(test)
    true = Detector.fit(inputs, labels, config=TINY, key=key).score(test)
    np.testing.assert_array_equal(control, same)
    assert not np.allclose(control, true)


def test_steps_reach_training_through_the_detector_config(data):
    inputs, labels, _ = data
    config = dataclasses.replace(TINY, steps=6, weight_decay=1e-3)
    assert config.train_config() == train.TrainConfig(
        epochs=1, batch_size=8, learning_rate=1e-2, weight_decay=1e-3, progress=False, steps=6)
    # 16 clips x 2 windows = 32 examples in batches of 8: 4 steps per epoch, 6 = 4 + 2.
    det = Detector.fit(inputs, labels, config=config, key=jax.random.key(0))
    assert len(det.history["loss"]) == 2


@pytest.mark.parametrize("trainable", [False, True])
def test_mlp_detector_separates_obvious_anomalies(trainable):
    rng = np.random.default_rng(1)
    means = rng.normal(size=(4, 8)) * 3

    def clips(labels, shift=0.0):  # (n, 2 frames, 8 features)
        return (means[labels][:, None] + shift + rng.normal(size=(labels.size, 2, 8)) * 0.3
                ).astype(np.float32)

    train_labels = np.repeat(np.arange(4), 8)
    test_labels = np.repeat(np.arange(4), 4)
    test = np.concatenate([clips(test_labels), clips(test_labels, shift=6.0)])
    config = DetectorConfig.tiny(method="adacos", embedder=embedders.MLP(hidden=(16,)),
                                 window_frames=1, window_hop=1, embed_dim=6, n_clusters=4,
                                 epochs=20, trainable_centres=trainable)
    det = Detector.fit(clips(train_labels), train_labels, config=config, key=jax.random.key(0))
    assert det.train_embeddings.shape == (32, 6)
    assert evaluation.auc(np.repeat([0, 1], 16), det.score(test)) > 0.9
    assert isinstance(det.head.centres, nnx.Param) == trainable
    rngs = nnx.Rngs(jax.random.split(jax.random.key(0), 4)[0])  # as Detector.fit draws them
    detect.models.MLPEmbedder(8, 6, hidden=(16,), rngs=rngs)
    initial = detect.models.make_head("adacos", embed_dim=6, num_classes=4, rngs=rngs)
    # Trainable centres move during training; fixed ones keep their initial value.
    assert (not np.allclose(det.head.centres[...], initial.centres[...])) == trainable


def test_two_branch_detector_trains_on_waveforms_and_scores_in_evaluation_mode():
    sounds = machine_sounds(jax.random.key(0), num_machines=2, num_attributes=2,
                            clips_per_class=6, duration=0.5, anomaly_fraction=0.25)
    normal = ~sounds.is_anomaly
    config = DetectorConfig.tiny(
        embedder=embedders.TwoBranch(channels=(2, 2, 4), spectrum_channels=4, dense=8),
        embed_dim=8, num_subclusters=2, mixup_alpha=1.0)
    assert config.input_kind == "waveform"
    assert dataclasses.replace(config, method="autoencoder").input_kind == "log-mel"
    waves = detect.features(sounds.waveforms, config)
    np.testing.assert_array_equal(waves, sounds.waveforms)
    det = Detector.fit(waves[normal], sounds.label[normal], config=config,
                       key=jax.random.key(1))
    assert det.model.bin_norm.use_running_average  # left in evaluation mode
    test = waves[~normal][:4]
    z, scores = det.embed_and_score(test)
    assert z.shape == (4, 8) and np.all(np.isfinite(scores))
    # Evaluation mode: a clip's score does not depend on the clips batched with it.
    np.testing.assert_allclose(det.score(test[1:2]), scores[1:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(det.score_fn()(jnp.asarray(test))), scores,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(detect.waveform_score_fn(det)(jnp.asarray(test))),
                               scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="clips, samples"):
        det.score(test[:, None, :])


def test_waveform_score_fn_of_a_log_mel_detector_includes_its_front_end():
    sounds = machine_sounds(jax.random.key(2), num_machines=1, num_attributes=2,
                            clips_per_class=8, duration=0.5, anomaly_fraction=0.25)
    normal = ~sounds.is_anomaly
    config = dataclasses.replace(TINY, window_frames=16, window_hop=16, n_mels=12)
    mels = detect.features(sounds.waveforms, config)
    assert mels.shape[-1] == 12
    det = Detector.fit(mels[normal], sounds.label[normal], config=config, key=jax.random.key(3))
    fn = detect.waveform_score_fn(det)
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(sounds.waveforms))), det.score(mels),
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "cnn"}, "unknown method 'cnn'"),
    ({"method": "deep-svdd+random-labels"}, "learns no labels"),
    ({"embedder": "two-branch"}, "embedder must be a configuration"),
    ({"method": "deep-svdd", "backend": "kmeans"}, "does not apply to deep-svdd"),
    ({"scale_variant": "paper"}, "scale_variant"),
    ({"method": "adaproj", "trainable_centres": True}, "keeps fixed random centres"),
    ({"method": "class-compactness", "trainable_centres": True}, "keeps fixed random centres"),
    ({"window_hop": 0}, "window_hop"),
    ({"epochs": 0}, "epochs"),
    ({"steps": -1}, "steps"),
    ({"embedder": embedders.TwoBranch(), "embed_dim": 7}, "even embed_dim"),
    ({"embedder": embedders.TwoBranch(), "method": "autoencoder", "embed_dim": 7}, None),
])
def test_bad_configs_fail_on_construction(kwargs, match):
    if match is None:  # the autoencoder ignores the embedder, so its embed_dim is free
        DetectorConfig(**kwargs)
        return
    with pytest.raises(ValueError, match=match):
        DetectorConfig(**kwargs)


@pytest.mark.parametrize(("embedder", "match"), [
    (lambda: embedders.TwoBranch(channels=(8,)), "at least one stage"),
    (lambda: embedders.CNN(channels=()), "at least one width"),
    (lambda: embedders.MLP(hidden=(0,)), "hidden"),
])
def test_bad_embedder_settings_fail_on_construction(embedder, match):
    with pytest.raises(ValueError, match=match):
        embedder()


@pytest.mark.parametrize(("change", "match"), [
    (lambda x, y: (x[0], y, {}), "clips, frames, features"),
    (lambda x, y: (x[:, :4], y, {}), "fewer than the 8 of one example"),
    (lambda x, y: (np.where(np.arange(6) == 2, np.nan, x), y, {}), "NaN"),
    (lambda x, y: (x, y[:3], {}), "labels must be"),
    (lambda x, y: (x, y.astype(float), {}), "labels must be"),
    (lambda x, y: (x, None, {}), "pass labels"),
    (lambda x, y: (x, y, {"groups": np.zeros(3)}), "one group id per clip"),
    (lambda x, y: (x, y, {"is_target": np.ones(16)}), "bool array"),
    (lambda x, y: (x, y, {"is_target": np.ones(16, bool)}), "no source-domain"),
])
def test_bad_training_data_fails_before_training(data, no_training, change, match):
    inputs, labels, _ = data
    x, y, extra = change(inputs, labels)
    with pytest.raises(ValueError, match=match):
        Detector.fit(x, y, config=TINY, key=jax.random.key(0), **extra)


# ------------------------------------------------------------------------- grids


def test_compare_fills_the_grid_with_detector_results():
    sounds = machine_sounds(jax.random.key(0), num_machines=2, num_attributes=2,
                            clips_per_class=8, duration=0.5, anomaly_fraction=0.25)
    mels = detect.log_mels(sounds.waveforms, n_mels=16)
    train_rows = (np.arange(sounds.label.size) % 8) < 4
    args = dict(train_groups=sounds.machine[train_rows], test_groups=sounds.machine[~train_rows])
    config = DetectorConfig.tiny(window_frames=8, window_hop=8,
                                 embedder=embedders.CNN(channels=(4,)))
    names, seeds = ("deep-svdd", "subcluster-adacos"), (0, 4)
    out = detect.compare(mels[train_rows], sounds.label[train_rows], mels[~train_rows],
                         sounds.is_anomaly[~train_rows], methods=names, seeds=seeds,
                         config=config, **args)
    assert set(out) == {"auc", "pauc", "hmean", "scores"}
    for i, method in enumerate(names):
        for j, seed in enumerate(seeds):
            det = Detector.fit(mels[train_rows], sounds.label[train_rows],
                               config=config.with_method(method),
                               key=jax.random.fold_in(jax.random.key(seed), i),
                               groups=args["train_groups"])
            scores = det.score(mels[~train_rows], groups=args["test_groups"])
            np.testing.assert_array_equal(out["scores"][i, j], scores)
            want = evaluation.group_metrics(sounds.is_anomaly[~train_rows], scores,
                                            args["test_groups"])
            for name in ("auc", "pauc", "hmean"):
                assert out[name][i, j] == pytest.approx(want[name], abs=1e-12)


@pytest.mark.parametrize("name", [*methods.names(),
                                  *(m + methods.RANDOM_LABELS for m in methods.LABELLED)])
def test_every_registered_method_trains_and_scores_through_one_call(data, name):
    """Each registry entry is a working detector: the same Detector.fit call trains it and
    every back-end it lists scores the test clips."""
    inputs, _, test = data
    labels = np.arange(16) % 4  # AdaCos's fixed scale needs at least 3 classes
    method, _ = methods.parse(name)
    for backend in method.backends:
        config = dataclasses.replace(TINY, method=name, backend=backend, knn_k=2)
        det = Detector.fit(inputs, labels, config=config, key=jax.random.key(5))
        z, scores = det.embed_and_score(test)
        assert z.shape[0] == scores.shape[0] == 5, (name, backend)
        assert np.all(np.isfinite(scores)) and np.all(np.isfinite(det.history["loss"]))
        assert np.ptp(scores) > 0, (name, backend)  # a constant score detects nothing
        np.testing.assert_allclose(np.asarray(det.score_fn()(jnp.asarray(test))), scores,
                                   rtol=1e-5, atol=1e-6, err_msg=f"{name} {backend}")


def test_training_scores_leave_each_clip_out_of_its_own_knn_neighbours(data):
    inputs, labels, _ = data
    groups = np.arange(16) % 2
    det = Detector.fit(inputs, labels, config=dataclasses.replace(TINY, backend="knn"),
                       key=jax.random.key(1), groups=groups)
    got = det.training_scores(inputs)
    z = unit(det.train_embeddings)
    for i in range(16):  # naive: the nearest other training clip of the same group
        others = [j for j in range(16) if j != i and groups[j] == groups[i]]
        assert got[i] == pytest.approx(1 - max(z[i] @ z[j] for j in others), abs=1e-5)
    assert np.all(got > 0)
    kmeans = Detector.fit(inputs, labels, config=TINY, key=jax.random.key(1), groups=groups)
    np.testing.assert_array_equal(kmeans.training_scores(inputs),
                                  kmeans.score(inputs, groups=groups))

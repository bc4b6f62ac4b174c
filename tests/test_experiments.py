"""Tests of asdtheory.experiments: metrics and the decision statistic against naive loops,
the random-label control as an exact permutation, the end-to-end runner on tiny clips."""

import dataclasses

import jax
import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from asdtheory import audio, experiments
from asdtheory.data.synthetic import machine_sounds

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TINY = experiments.DetectConfig(window_frames=8, window_hop=8, embed_dim=8, channels=(4,),
                                num_subclusters=2, n_clusters=2, epochs=2, batch_size=8,
                                autoencoder_batch_size=64)


@pytest.fixture(scope="module")
def tiny_data():
    """2 machines x 2 attributes, 8 clips per class (the last 2 anomalous), 0.5 s each."""
    data = machine_sounds(jax.random.key(0), num_machines=2, num_attributes=2,
                          clips_per_class=8, duration=0.5, anomaly_fraction=0.25)
    mels = experiments.log_mels(data.waveforms, n_mels=16)
    train = (np.arange(data.label.size) % 8) < 4
    return dict(train_mels=mels[train], train_labels=data.label[train],
                train_groups=data.machine[train], test_mels=mels[~train],
                test_groups=data.machine[~train], test_is_anomaly=data.is_anomaly[~train])


def _detect(data, config, key, labels=None):
    return experiments.detect(data["train_mels"], data["train_labels"] if labels is None
                              else labels, data["train_groups"], data["test_mels"],
                              data["test_groups"], config=config, key=key)


# ------------------------------------------------------------------------- metrics


def naive_margin(values, best):
    margin, spread = [], []
    for c in range(values.shape[1]):
        means = [values[m, c].mean() for m in range(values.shape[0])]
        rival = max((m for m in range(values.shape[0]) if m != best), key=lambda m: means[m])
        margin.append(means[best] - means[rival])
        spread.append(max(np.std(values[best, c], ddof=1), np.std(values[rival, c], ddof=1)))
    return np.array(margin), np.array(spread)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 5), st.integers(1, 6), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_margin_over_rivals_matches_naive_loop(methods, conditions, seeds, seed):
    values = np.random.default_rng(seed).uniform(0.4, 1.0, (methods, conditions, seeds))
    best = seed % methods
    margin, spread = experiments.margin_over_rivals(values, best=best)
    want_margin, want_spread = naive_margin(values, best)
    np.testing.assert_allclose(margin, want_margin, rtol=1e-12)
    np.testing.assert_allclose(spread, want_spread, rtol=1e-12)


def test_margin_over_rivals_hand_case():
    # best = method 0: ahead of method 2 by 0.1 at condition 0, behind method 1 by 0.2 at 1.
    values = np.array([[[0.8, 0.8], [0.5, 0.5]],
                       [[0.6, 0.6], [0.6, 0.8]],
                       [[0.7, 0.7], [0.4, 0.4]]])
    margin, spread = experiments.margin_over_rivals(values, best=0)
    np.testing.assert_allclose(margin, [0.1, -0.2])
    np.testing.assert_allclose(spread, [0.0, np.std([0.6, 0.8], ddof=1)])


@pytest.mark.parametrize("values, best, match", [
    (np.zeros((1, 3, 3)), 0, "methods >= 2"),
    (np.zeros((2, 3, 1)), 0, "seeds >= 2"),
    (np.zeros((2, 3)), 0, "shape"),
    (np.zeros((2, 3, 3)), 2, "best must index"),
    (np.zeros((2, 3, 3)), True, "best must index"),
])
def test_margin_over_rivals_rejects_bad_input(values, best, match):
    with pytest.raises(ValueError, match=match):
        experiments.margin_over_rivals(values, best=best)


def test_group_metrics_is_the_mean_of_per_group_sklearn_values():
    rng = np.random.default_rng(0)
    groups = np.repeat([3, 7, 9], 40)
    y = np.tile(np.r_[np.zeros(30, bool), np.ones(10, bool)], 3)
    scores = rng.normal(size=120) + y * np.repeat([0.5, 1.0, 2.0], 40)
    # A group-dependent offset changes pooled metrics but not per-group ones.
    shifted = scores + np.repeat([0.0, 10.0, -5.0], 40)
    got = experiments.group_metrics(y, shifted, groups)
    aucs = [roc_auc_score(y[groups == g], scores[groups == g]) for g in (3, 7, 9)]
    paucs = [roc_auc_score(y[groups == g], scores[groups == g], max_fpr=0.1) for g in (3, 7, 9)]
    assert got["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert got["pauc"] == pytest.approx(np.mean(paucs), abs=1e-12)
    a, p = np.mean(aucs), np.mean(paucs)
    assert got["hmean"] == pytest.approx(2 * a * p / (a + p), abs=1e-12)


def test_group_metrics_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="groups"):
        experiments.group_metrics([0, 1], [0.1, 0.2], [0, 0, 0])
    with pytest.raises(ValueError, match="is_anomaly"):
        experiments.group_metrics([0, 1, 1], [0.1, 0.2], [0, 0])


@given(st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_harmonic_mean_lies_between_min_and_mean(a, b):
    h = experiments.harmonic_mean(a, b)
    assert min(a, b) - 1e-12 <= h <= (a + b) / 2 + 1e-12
    assert experiments.harmonic_mean(a, a) == pytest.approx(a)


def test_log_mels_equals_audio_log_mel_with_frames_first():
    x = np.asarray(jax.random.normal(jax.random.key(1), (5, 4000))) * 0.1
    got = experiments.log_mels(x, n_mels=16, chunk_size=2)
    want = np.swapaxes(np.asarray(audio.log_mel(x, n_mels=16)), -1, -2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_log_mels_rejects_a_single_waveform():
    with pytest.raises(ValueError, match="clips, samples"):
        experiments.log_mels(np.zeros(4000))


# ------------------------------------------------------------------------- runner


def test_random_label_control_is_the_same_run_on_permuted_labels(tiny_data):
    key = jax.random.key(3)
    control = _detect(tiny_data, dataclasses.replace(
        TINY, method="subcluster-adacos" + experiments.RANDOM_LABELS), key)
    permuted = np.asarray(jax.random.permutation(jax.random.split(key, 3)[2],
                                                 tiny_data["train_labels"]))
    assert not np.array_equal(permuted, tiny_data["train_labels"])
    same = _detect(tiny_data, TINY, key, labels=permuted)
    true = _detect(tiny_data, TINY, key)
    np.testing.assert_array_equal(control, same)
    assert control.shape == (tiny_data["test_mels"].shape[0],)
    assert np.all(np.isfinite(control)) and np.all((control >= -1e-6) & (control <= 2 + 1e-6))
    assert not np.allclose(control, true)


def test_compare_fills_the_grid_with_detect_results(tiny_data):
    methods, seeds = ("autoencoder", "deep-svdd"), (0, 4)
    out = experiments.compare(*[tiny_data[k] for k in ("train_mels", "train_labels",
                                                       "train_groups", "test_mels",
                                                       "test_groups", "test_is_anomaly")],
                              methods=methods, seeds=seeds, config=TINY)
    assert set(out) == {"auc", "pauc", "hmean"}
    for i, method in enumerate(methods):
        for j, seed in enumerate(seeds):
            scores = _detect(tiny_data, dataclasses.replace(TINY, method=method),
                             jax.random.fold_in(jax.random.key(seed), i))
            want = experiments.group_metrics(tiny_data["test_is_anomaly"], scores,
                                             tiny_data["test_groups"])
            for name in out:
                assert out[name][i, j] == pytest.approx(want[name], abs=1e-12)


@pytest.mark.parametrize("method", ["cnn", "deep-svdd+random-labels", "autoencoder+x"])
def test_detect_config_rejects_unknown_methods(method):
    with pytest.raises(ValueError, match="method must be one of"):
        experiments.DetectConfig(method=method)


def test_detect_rejects_bad_labels_groups_and_shapes(tiny_data):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="train_labels"):
        _detect(tiny_data, TINY, key, labels=tiny_data["train_labels"][:-1])
    with pytest.raises(ValueError, match="train_labels"):
        _detect(tiny_data, TINY, key, labels=tiny_data["train_labels"].astype(float))
    with pytest.raises(ValueError, match=r"test_groups \[5\]"):
        experiments.detect(tiny_data["train_mels"], tiny_data["train_labels"],
                           tiny_data["train_groups"], tiny_data["test_mels"],
                           np.full(tiny_data["test_mels"].shape[0], 5), config=TINY, key=key)
    with pytest.raises(ValueError, match="same frames and n_mels"):
        experiments.detect(tiny_data["train_mels"], tiny_data["train_labels"],
                           tiny_data["train_groups"], tiny_data["test_mels"][..., :8],
                           tiny_data["test_groups"], config=TINY, key=key)


def test_plot_vs_condition_draws_the_seed_means():
    values = np.random.default_rng(0).uniform(size=(2, 3, 4))
    fig, ax = plt.subplots()
    experiments.plot_vs_condition(ax, values, conditions=["clean", "0", "-5"],
                                  methods=["a", "b"], ylabel="AUC")
    for line, v in zip(ax.get_lines(), values, strict=True):
        np.testing.assert_allclose(line.get_ydata(), v.mean(axis=-1))
    with pytest.raises(ValueError, match="methods, conditions, seeds"):
        experiments.plot_vs_condition(ax, values, conditions=["clean"], methods=["a", "b"],
                                      ylabel="AUC")
    plt.close(fig)

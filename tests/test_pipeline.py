import json

import numpy as np
import pytest

from asdtheory import evaluation, pipeline
from asdtheory.repro import cli

# Small enough to train in seconds on the real valve clips.
TINY = {"n_mels": 16, "window_frames": 32, "window_hop": 64, "embed_dim": 8,
        "channels": (4, 8), "num_subclusters": 2, "epochs": 1, "batch_size": 16,
        "n_clusters": 4, "progress": False}


@pytest.fixture
def no_training(monkeypatch):
    """Makes any call of train.fit fail the test: checks must come before training."""

    def fail(*args, **kwargs):
        raise AssertionError("training started although the configuration is invalid")

    monkeypatch.setattr(pipeline.train, "fit", fail)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "svm"}, "method must be one of"),
    ({"protocol": "mini", "machine": "fan"}, "not available for machine 'fan'"),
    ({"protocol": "tiny"}, "protocol must be one of"),
    ({"machine": "toaster", "protocol": "full"}, "not available for machine 'toaster'"),
    ({"noise": "cat"}, "noise and snr go together"),
    ({"method": "deep-svdd", "backend": "kmeans"}, "does not apply to deep-svdd"),
    ({"epochs": 0}, "epochs"),
    ({"window_hop": 0}, "window_hop"),
    ({"scale_variant": "paper"}, "scale_variant"),
])
def test_bad_configs_fail_on_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipeline.PipelineConfig(**kwargs)


def test_missing_data_root_fails_before_training(tmp_path, no_training):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pipeline.run(pipeline.PipelineConfig(data=tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="dcase2023t2"):
        pipeline.run(pipeline.PipelineConfig(data=tmp_path))  # exists, but holds no data


def test_data_dependent_problems_fail_before_training(shared_data, no_training):
    with pytest.raises(ValueError, match="n_clusters=31 exceeds the 30 source"):
        pipeline.run(pipeline.PipelineConfig(data=shared_data, n_clusters=31))
    with pytest.raises(FileNotFoundError, match="noise recording 'traffic' not found"):
        pipeline.run(pipeline.PipelineConfig(data=shared_data, noise="traffic", snr=0.0))


def test_windows_and_stacked_frames_are_slices_of_the_spectrogram():
    mels = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3)  # (n, frames, mels)
    cnn = pipeline.PipelineConfig(window_frames=4, window_hop=3)
    windows = pipeline._examples(mels, cnn)
    assert windows.shape == (2, 3, 4, 3)  # 1 + (10 - 4) // 3 windows
    for i in range(2):
        for k in range(3):
            np.testing.assert_array_equal(windows[i, k], mels[i, 3 * k:3 * k + 4])
    ae = pipeline.PipelineConfig(method="autoencoder", context_frames=5)
    vectors = pipeline._examples(mels, ae)
    assert vectors.shape == (2, 6, 15)
    np.testing.assert_array_equal(vectors[1, 2], mels[1, 2:7].ravel())


@pytest.mark.parametrize(("method", "backend"), [("subcluster-adacos", "kmeans"),
                                                 ("adaproj", "nearest-centre"),
                                                 ("deep-svdd", None)])
def test_end_to_end_on_the_valve_mini_protocol(shared_data, method, backend):
    config = pipeline.PipelineConfig(data=shared_data, method=method, backend=backend, **TINY)
    result = pipeline.run(config)
    clips = result.test_clips
    assert len(clips) == 140 and len(result.train_clips) == 60
    assert result.test_scores.shape == (140,)
    assert result.test_embeddings.shape == (140, 8)
    assert np.all(np.isfinite(result.test_scores))
    # The table is the official evaluation of exactly these scores.
    rows = evaluation.dcase_table(machine="valve", section=0,
                                  domain=[c.domain for c in clips],
                                  is_anomaly=[c.is_anomaly for c in clips],
                                  scores=result.test_scores)
    assert result.rows == rows
    assert result.official_score == evaluation.official_score(rows)
    assert (rows[0].n_source_normal, rows[0].n_target_normal) == (20, 20)
    assert len(result.history["loss"]) == 1
    summary = json.loads(json.dumps(result.to_json()))
    assert summary["official_score"] == result.official_score
    assert len(summary["clips"]) == 140


def test_command_prints_the_table_and_writes_json(shared_data, tmp_path, capsys):
    out = tmp_path / "result.json"
    # The dcase2023t2 folder itself is accepted as --data (the form the issue uses).
    code = cli.main(["run", "--data", str(shared_data / "dcase2023t2"), "--machine", "valve",
                     "--protocol", "mini", "--method", "autoencoder", "--noise", "running_tap",
                     "--snr", "0", "--seed", "1", "--epochs", "1", "--no-progress",
                     "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "AUC source" in printed and "official score" in printed
    assert "running_tap at 0 dB" in printed
    summary = json.loads(out.read_text())
    assert f"{summary['official_score']:.4f}" in printed
    assert summary["config"]["noise"] == "running_tap"


def test_command_reports_bad_configs(shared_data, capsys, no_training):
    code = cli.main(["run", "--data", str(shared_data), "--machine", "fan", "--protocol",
                     "mini", "--seed", "0"])
    assert code == 2
    assert "not available for machine 'fan'" in capsys.readouterr().err

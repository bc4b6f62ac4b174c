"""The detector on the DCASE folder layout: checks before training, the official table of
exactly the detector's scores, the ``asdtheory run`` command."""

import dataclasses
import json

import numpy as np
import pytest

import asdtheory.detect.dcase as run_module
from asdtheory import audio, detect, evaluation, train
from asdtheory.data import dcase
from asdtheory.detect import embedders, systems
from asdtheory.detect.dcase import RunConfig, run
from asdtheory.repro import cli

# Small enough to train in seconds on the real valve clips.
TINY = dataclasses.replace(systems.get("logmel-cnn").config(), window_frames=32, window_hop=64,
                           embed_dim=8, embedder=embedders.CNN(channels=(4, 8)), n_mels=16,
                           num_subclusters=2, epochs=1, batch_size=16, n_clusters=4,
                           progress=False)


@pytest.fixture
def no_training(monkeypatch):
    """Makes any call of train.fit fail the test: checks must come before training."""

    def fail(*args, **kwargs):
        raise AssertionError("training started although the configuration is invalid")

    monkeypatch.setattr(detect.train, "fit", fail)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"protocol": "mini", "machines": ("fan",)}, "not available for machine 'fan'"),
    ({"protocol": "tiny"}, "protocol must be one of"),
    ({"machines": ("fan", "toaster"), "protocol": "full"}, "not available for machine 'toaster'"),
    ({"machines": "fan"}, r"write machines=\('fan',\)"),
    ({"machines": ()}, "machines is empty"),
    ({"noise": "cat"}, "noise and snr go together"),
    ({"seed": -1}, "seed"),
    ({"seconds": 0.0}, "seconds must be > 0"),
    ({"detector": "subcluster-adacos"}, "detector must be a DetectorConfig"),
])
def test_bad_configs_fail_on_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**kwargs)


def test_missing_data_root_fails_before_training(tmp_path, no_training):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(RunConfig(data=tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="dcase2023t2"):
        run(RunConfig(data=tmp_path))  # exists, but holds no data


def test_data_dependent_problems_are_reported_before_training(shared_data, no_training):
    with pytest.warns(UserWarning, match="n_clusters=31 exceeds the source training clips "
                      "of group"), pytest.raises(AssertionError, match="training started"):
        run(RunConfig(data=shared_data, detector=dataclasses.replace(TINY, n_clusters=31)))
    with pytest.raises(FileNotFoundError, match="noise recording 'traffic' not found"):
        run(RunConfig(data=shared_data, noise="traffic", snr=0.0))


@pytest.mark.parametrize(("method", "backend"), [("subcluster-adacos", "kmeans"),
                                                 ("adaproj", "nearest-centre"),
                                                 ("deep-svdd", None)])
def test_end_to_end_on_the_valve_mini_protocol(shared_data, method, backend):
    config = RunConfig(data=shared_data,
                       detector=dataclasses.replace(TINY, method=method, backend=backend))
    result = run(config)
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
    if backend == "kmeans":  # 4 k-means centres of the 30 source clips + the 30 target clips
        assert result.detector.centres["valve section 00"].shape == (34, 8)
    summary = json.loads(json.dumps(result.to_json()))
    assert summary["official_score"] == result.official_score
    assert summary["level_official_score"] == result.level_official_score
    # The untrained twin: the same clips scored by the initialisation, its own table.
    assert result.twin_scores.shape == (140,) and np.all(np.isfinite(result.twin_scores))
    assert not np.allclose(result.twin_scores, result.test_scores)
    assert result.twin_official_score == evaluation.official_score(evaluation.dcase_table(
        machine="valve", section=0, domain=[c.domain for c in clips],
        is_anomaly=[c.is_anomaly for c in clips], scores=result.twin_scores))
    assert summary["config"]["detector"]["method"] == method
    assert len(summary["clips"]) == 140


def test_noise_level_is_set_from_the_normal_training_clips(shared_data, monkeypatch):
    # Every clip, training or test, normal or anomalous, gets noise of the same power: the
    # SNR is relative to the mean power of the normal training clips, not to the clip.
    captured = {}

    def stop(waves, *args, **kwargs):
        captured["waves"] = np.asarray(waves)
        raise KeyboardInterrupt  # the mixture is all this test needs

    monkeypatch.setattr(run_module, "features", stop)
    with pytest.raises(KeyboardInterrupt):
        run(RunConfig(data=shared_data, noise="running_tap", snr=-5.0, detector=TINY))
    split = dcase.valve_mini_protocol(shared_data)
    clean = np.stack([audio.load(c.path) for c in split.train + split.test]).astype(np.float64)
    reference = np.mean([np.mean(clean[i] ** 2) for i, c in enumerate(split.train)
                         if not c.is_anomaly])  # naive: mean power of the normal train clips
    added = np.mean((captured["waves"] - clean) ** 2, axis=1)
    np.testing.assert_allclose(added, reference / 10 ** (-5.0 / 10), rtol=1e-3)
    own = np.mean(clean**2, axis=1)
    # The clip levels spread by far more than the tolerance (~15 % here): noise scaled to
    # each clip's own power would not pass.
    assert own.max() > 1.05 * own.min()


def test_level_reference_scores_the_same_clips_without_a_model(shared_data):
    # The reference row: a clip's level against the normal training clips' level, on the
    # waveforms the detector saw; naive recomputation from the files.
    result = run(RunConfig(data=shared_data, detector=TINY))
    level = lambda clips: np.array([10 * np.log10(np.mean(audio.load(c.path).astype(
        np.float64) ** 2)) for c in clips])
    train = level([c for c in result.train_clips if not c.is_anomaly])
    want = np.abs(level(result.test_clips) - train.mean()) / train.std(ddof=1)
    np.testing.assert_allclose(result.level_scores, want, rtol=1e-5)
    rows = evaluation.dcase_table(machine="valve", section=0,
                                  domain=[c.domain for c in result.test_clips],
                                  is_anomaly=[c.is_anomaly for c in result.test_clips],
                                  scores=want)
    assert result.level_official_score == pytest.approx(evaluation.official_score(rows),
                                                        abs=1e-6)


def test_command_prints_the_table_and_writes_json(shared_data, tmp_path, capsys):
    out = tmp_path / "result.json"
    # The dcase2023t2 folder itself is accepted as --data (the form the issue uses).
    code = cli.main(["run", "--data", str(shared_data / "dcase2023t2"), "--machines", "valve",
                     "--protocol", "mini", "--method", "autoencoder", "--noise", "running_tap",
                     "--snr", "0", "--seed", "1", "--epochs", "2", "--no-progress",
                     "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "AUC source" in printed and "official score" in printed
    assert "running_tap at 0 dB" in printed
    summary = json.loads(out.read_text())
    assert f"{summary['official_score']:.4f}" in printed
    # Beside the trained system: its untrained twin, the level detector, the loss's settling.
    lines = printed.splitlines()
    twin = next(line for line in lines if line.startswith("untrained twin"))
    assert twin.endswith(f"official score {summary['twin_official_score']:.4f}")
    level = next(line for line in lines if line.startswith("reference without a model"))
    assert level.endswith(f"official score {summary['level_official_score']:.4f}")
    assert summary["twin_official_score"] != summary["official_score"]
    assert summary["loss_settling"] == train.settling(summary["loss"])
    loss = next(line for line in lines if line.startswith("training loss"))
    assert "over 2 epoch(s)" in loss
    assert f"by {summary['loss_settling']:.3f} of its range" in loss
    assert summary["config"]["noise"] == "running_tap"


def test_command_reports_bad_configs(shared_data, capsys, no_training):
    code = cli.main(["run", "--data", str(shared_data), "--machines", "fan", "--protocol",
                     "mini", "--seed", "0"])
    assert code == 2
    assert "not available for machine 'fan'" in capsys.readouterr().err


def test_interrupted_run_resumed_from_its_checkpoint_equals_an_uninterrupted_run(
        shared_data, tmp_path, monkeypatch):
    config = RunConfig(data=shared_data, detector=dataclasses.replace(TINY, epochs=3))
    whole = run(config)
    checkpoint = tmp_path / "run"
    save = detect.train.save_checkpoint

    def save_then_stop(path, *args, epoch, **kwargs):
        save(path, *args, epoch=epoch, **kwargs)
        if epoch == 2:
            raise KeyboardInterrupt  # killed right after the second epoch's checkpoint

    monkeypatch.setattr(detect.train, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(config, checkpoint=checkpoint)
    monkeypatch.setattr(detect.train, "save_checkpoint", save)
    resumed = run(config, checkpoint=checkpoint)
    assert resumed.history["loss"] == whole.history["loss"]
    np.testing.assert_array_equal(resumed.test_scores, whole.test_scores)


def test_command_resumes_only_when_asked(shared_data, tmp_path, capsys):
    checkpoint = tmp_path / "run"
    args = ["run", "--data", str(shared_data), "--method", "autoencoder", "--epochs", "1",
            "--no-progress", "--checkpoint", str(checkpoint)]
    assert cli.main([*args, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert cli.main(args) == 0 and any(checkpoint.iterdir())
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main([*args, "--resume"]) == 0


def test_system_width_scales_the_reference_network():
    reference = systems.get("reference")
    half = reference.config("subcluster-adacos", small_data=True, width=0.5)
    assert half.embedder == embedders.TwoBranch(channels=(8, 8, 16, 32, 64),
                                                spectrum_channels=64, dense=64)
    assert half.embed_dim == 128 and half.batch_size == 32
    full = reference.config(small_data=True)
    assert dataclasses.replace(half, embedder=full.embedder, embed_dim=full.embed_dim) == full
    assert reference.config("deep-svdd", width=0.3).embed_dim % 2 == 0
    with pytest.raises(ValueError, match="width must be > 0"):
        reference.config("deep-svdd", width=0.0)


def test_systems_change_only_what_a_method_needs():
    reference = systems.get("reference")
    own = reference.config()
    assert own == reference.detector and own.method == "subcluster-adacos"
    # No soft labels, no mixup; everything else is the system's.
    svdd = reference.config("deep-svdd")
    assert svdd.mixup_alpha == 0.0
    assert dataclasses.replace(svdd, method=own.method, mixup_alpha=own.mixup_alpha) == own
    # The reconstruction method is the DCASE 2023 baseline autoencoder with its front-end.
    baseline = reference.config("autoencoder", small_data=True)
    assert (baseline.n_mels, baseline.batch_size, baseline.weight_decay) == (128, 256, 0.0)
    # The mini protocol's budget: its own batch and epochs, except for the autoencoder.
    small = reference.config(small_data=True)
    assert (small.batch_size, small.epochs) == (32, reference.small_data_epochs)
    assert baseline.epochs == reference.detector.epochs
    assert baseline.input_kind == "log-mel"
    with pytest.raises(ValueError, match=r"unknown system 'small'.*reference"):
        systems.get("small")


def test_the_reference_system_is_the_default_everywhere():
    assert RunConfig().detector == systems.get("reference").config(small_data=True)
    parser = cli.build_parser()
    run_parser = parser._subparsers._group_actions[0].choices["run"]
    assert run_parser.get_default("system") == "reference"

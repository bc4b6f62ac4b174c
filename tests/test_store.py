"""A saved system (detect.store) scores exactly as the trained one: network variables,
standardisation, back-end centres and neighbours, decision thresholds all come back."""

import types

import jax
import numpy as np
import pytest

from asdtheory import detect
from asdtheory.data import dcase
from asdtheory.data.submission import decision_threshold
from asdtheory.detect.dcase import RunConfig
from asdtheory.detect.store import load_system, save_system

SECONDS, N_MELS = 1.0, 16  # 1-s clips: 32 log-mel frames, one 32-frame window


def trained(backend: str):
    """A tiny detector fitted on random log-mels of two sections, as run() returns it."""
    rng = np.random.default_rng(0)
    train_clips = [dcase.parse_filename(f"/d/{m}/train/section_00_source_train_normal_"
                                        f"{i:04d}_pat_0{i % 2}.wav")
                   for m in ("fan", "valve") for i in range(8)]
    classes = sorted({(c.machine, c.section, c.attribute_key, c.domain) for c in train_clips})
    labels = [classes.index((c.machine, c.section, c.attribute_key, c.domain))
              for c in train_clips]
    groups = [f"{c.machine} section 00" for c in train_clips]
    config = detect.DetectorConfig.tiny(method="subcluster-adacos", backend=backend,
                                        window_frames=32, num_subclusters=2, n_mels=N_MELS)
    inputs = rng.normal(size=(16, 32, N_MELS)).astype(np.float32)
    detector = detect.Detector.fit(inputs, labels, config=config, key=jax.random.key(0),
                                   groups=groups)
    result = types.SimpleNamespace(
        detector=detector, classes=classes, train_clips=train_clips,
        train_scores=detector.training_scores(inputs),
        config=RunConfig(seconds=SECONDS, detector=config))
    return result, groups


@pytest.mark.parametrize("backend", ["kmeans", "knn"])
def test_loaded_system_scores_exactly_as_the_trained_one(tmp_path, backend):
    result, groups = trained(backend)
    save_system(tmp_path / "system", result)
    loaded = load_system(tmp_path / "system")
    new = np.random.default_rng(1).normal(size=(6, 32, N_MELS)).astype(np.float32) * 3
    new_groups = ["fan section 00"] * 3 + ["valve section 00"] * 3
    np.testing.assert_array_equal(loaded.detector.score(new, groups=new_groups),
                                  result.detector.score(new, groups=new_groups))
    assert loaded.detector.config == result.detector.config
    assert (loaded.detector.config.n_mels, loaded.seconds) == (N_MELS, SECONDS)
    fan = [s for s, g in zip(result.train_scores, groups, strict=True) if g.startswith("fan")]
    assert loaded.thresholds[("fan", 0)] == decision_threshold(fan)
    with pytest.raises(ValueError, match="exists and is not empty"):
        save_system(tmp_path / "system", result)


def test_loading_what_is_not_a_saved_system_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run \.\.\. --save DIR"):
        load_system(tmp_path)

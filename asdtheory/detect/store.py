"""A trained DCASE system kept on disk and loaded back to score new clips
(``asdtheory run --save DIR``, ``asdtheory score --model DIR``).

A folder holds everything scoring needs and nothing of the training data:

* ``network/``: the variables of the network and its loss head (``nnx.state`` as a pure
  dict), written by ``orbax.checkpoint.StandardCheckpointer`` (Flax's checkpointing guide);
* ``system.json``: the :class:`~asdtheory.detect.DetectorConfig` (its front-end included),
  the clip length ``seconds`` and sample rate, the input standardisation (mean, std), the
  network's shape arguments (number of auxiliary classes, example shape), the (machine,
  section) groups and each group's DCASE decision threshold
  (``data.submission.decision_threshold``);
* ``backend.npz``: the score back-end: k-means centres per group, and the training clips'
  embeddings and groups (the "knn" back-end's neighbours).

The network is rebuilt through ``detect.build_network``, the one place that maps a
configuration to a network, and its variables are then replaced by the stored ones, so a
loaded system scores as the trained one did (up to float rounding of a different batch
composition). Clips are scored as ``detect.dcase.run`` scores them: read as stored (16 kHz
mono; headers checked first, ``data.audit``), cut to the first ``seconds``, no noise added.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from asdtheory import audio, detect, train
from asdtheory.data import audit, dcase
from asdtheory.data.submission import decision_threshold

__all__ = ["SavedSystem", "load_system", "save_system", "score_clips"]

FORMAT = 1  # bumped when the folder's contents change meaning
SAMPLE_RATE = 16000


@dataclasses.dataclass
class SavedSystem:
    """A loaded system: the :class:`~asdtheory.detect.Detector`, its front-end and the
    DCASE decision threshold of each (machine, section) it was trained on."""

    detector: detect.Detector
    seconds: float
    thresholds: dict[tuple[str, int], float]


def _group(machine: str, section: int) -> str:
    # The group names of detect.dcase.run's back-ends.
    return f"{machine} section {section:02d}"


def _example_shape(config: detect.DetectorConfig, seconds: float) -> tuple:
    """The shape of one network example for clips of ``seconds``, as
    ``detect.build_network`` takes it."""
    inputs = detect.features(np.zeros((1, round(seconds * SAMPLE_RATE)), np.float32), config)
    return tuple(detect.examples(inputs, config).shape[2:])


def save_system(folder, result) -> Path:
    """Writes the trained system of a ``detect.dcase.run`` ``result`` to ``folder`` (a new or
    empty folder) and returns it."""
    folder = Path(folder).expanduser().absolute()  # orbax needs an absolute path
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} exists and is not empty; pass a new folder to keep "
                              "the trained system in.")
    folder.mkdir(parents=True, exist_ok=True)
    detector = result.detector
    thresholds = []
    for machine, section in sorted({(c.machine, c.section) for c in result.train_clips}):
        normal = [s for c, s in zip(result.train_clips, result.train_scores, strict=True)
                  if (c.machine, c.section) == (machine, section) and not c.is_anomaly]
        thresholds.append({"machine": machine, "section": section,
                           "threshold": decision_threshold(normal)})
    config = result.config
    angular = detector.config.spec.uses_labels
    info = {
        "format": FORMAT,
        "detector": detector.config.to_dict(),
        "num_classes": len(result.classes) if angular else 1,
        "example_shape": list(_example_shape(detector.config, config.seconds)),
        "seconds": config.seconds, "sample_rate": SAMPLE_RATE,
        "mean": detector.mean, "std": detector.std,
        "thresholds": thresholds,
        "classes": [list(c) for c in result.classes],
        "loss": list(detector.history.get("loss", [])),
    }
    (folder / "system.json").write_text(json.dumps(info, indent=2) + "\n")
    np.savez(folder / "backend.npz", train_embeddings=detector.train_embeddings,
             train_groups=np.asarray(detector.train_groups, dtype=str),
             **{f"centres/{group}": np.asarray(c) for group, c in detector.centres.items()})
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder / "network",
                      nnx.to_pure_dict(nnx.state((detector.model, detector.head))))
    checkpointer.wait_until_finished()
    return folder


def load_system(folder) -> SavedSystem:
    """The system :func:`save_system` wrote to ``folder``."""
    folder = Path(folder).expanduser().absolute()
    if not (folder / "system.json").is_file():
        raise FileNotFoundError(f"{folder} holds no saved system (system.json); write one "
                                "with `asdtheory run ... --save DIR`.")
    info = json.loads((folder / "system.json").read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{folder}: saved in format {info.get('format')!r}, this version "
                         f"reads format {FORMAT}; train and save the system again.")
    config = detect.DetectorConfig.from_dict(info["detector"])
    model, head = detect.build_network(config, info["num_classes"], tuple(info["example_shape"]),
                                jax.random.key(0))
    state = nnx.state((model, head))
    restored = ocp.StandardCheckpointer().restore(folder / "network",
                                                  nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, restored)
    nnx.update((model, head), state)
    with np.load(folder / "backend.npz") as backend:
        centres = {name.removeprefix("centres/"): backend[name] for name in backend.files
                   if name.startswith("centres/")}
        detector = detect.Detector(
            config=config, model=model, head=head, mean=info["mean"], std=info["std"],
            centres=centres, train_embeddings=backend["train_embeddings"],
            train_groups=backend["train_groups"], history=train.History(loss=info["loss"]))
    thresholds = {(t["machine"], t["section"]): t["threshold"] for t in info["thresholds"]}
    return SavedSystem(detector=detector, seconds=info["seconds"],
                       thresholds=thresholds)


def score_clips(system: SavedSystem, clips: Sequence[dcase.ClipInfo]) -> np.ndarray:
    """Anomaly scores of ``clips`` (machine and section from their paths and names) under a
    loaded system; every clip's header is checked first (``data.audit.ClipProblems``)."""
    trained = sorted(_group(*key) for key in system.thresholds)
    groups = [_group(c.machine, c.section) for c in clips]
    unknown = sorted(set(groups) - set(trained))
    if unknown:
        raise ValueError(f"the system was trained on {trained}; it cannot score the clips of "
                         f"{unknown} (their back-end was never fitted).")
    problems = audit.clip_problems(clips, seconds=system.seconds)
    if problems:
        raise audit.ClipProblems(problems)
    length = round(system.seconds * SAMPLE_RATE)
    waves = np.stack([audio.load(c.path, sample_rate=SAMPLE_RATE, channel=c.channel)[:length]
                      for c in clips])
    inputs = detect.features(waves, system.detector.config)
    return system.detector.score(inputs, groups=groups)

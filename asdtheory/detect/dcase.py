"""The detector on a DCASE folder: split -> features -> :class:`~asdtheory.detect.Detector` ->
official table (``asdtheory run`` calls it).

``run(RunConfig(...)) -> Result``::

    result = run(RunConfig(data="../shared/data", detector=DCASE_DETECTOR, seed=0))
    print(result.table)              # official-rules table + official score
    result.test_embeddings, result.test_scores, result.test_clips   # for plots

Steps (clips are read as stored, 16 kHz mono):

1. **Split**: protocol "mini" is ``data.dcase.valve_mini_protocol`` (valve only; 60 train,
   140 test clips); "full" is ``data.dcase.official_split`` of the machine.
2. **Noise** (optional): every clip, training and test, gets the named real background
   recording (``audio.load_noise``) added at a random offset per clip, scaled to ``snr`` dB
   relative to one label-free reference level: the mean power (mean square) of the run's
   normal training clips (``audio.mix_at_snr(..., reference_power=...)``). Every clip thus
   gets noise of the same power, whatever its own level -- never set from an anomalous
   clip's own power, which would make the noise level a cue to the label.
3. **Features**: ``detect.log_mels`` (n_fft 1024, hop 512, ``n_mels`` bands: 313 frames of
   10 s).
4. **Detector**: ``Detector.fit`` on the training clips, each labelled with its auxiliary
   class = (section, attribute) combination, grouped by section, with the target-domain
   training clips marked (the k-means back-end makes each a centre of its own);
   :data:`DCASE_DETECTOR` holds the defaults for 10-s clips (8 windows of 64 frames, ~2 s,
   every 32 frames; 16 k-means centres per section).
5. **Evaluation**: ``evaluation.dcase_table`` (official DCASE 2023 rules) and
   ``evaluation.official_score``; beside it the same table for the model-free reference
   ``scoring.level_score`` (how far each clip's level lies from its section's normal training
   level) on the same waveforms: what the trivial cue "louder or quieter than usual" achieves.

The data are DCASE 2023 Task 2 recordings (MIMII DG; CC BY 4.0): see the data README for
the attribution that must accompany any use.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from asdtheory import audio, evaluation, scoring, train
from asdtheory._validation import check_scalar
from asdtheory.data import dcase
from asdtheory.detect import Detector, DetectorConfig, log_mels

__all__ = ["DCASE_DETECTOR", "PROTOCOLS", "Result", "RunConfig", "run"]

PROTOCOLS = {"mini": ("valve",), "full": dcase.DEV_MACHINES_2023}
DCASE_DETECTOR = DetectorConfig(window_frames=64, window_hop=32, embed_dim=64,
                                channels=(16, 32, 64), n_clusters=16, epochs=20, progress=True)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a :func:`run` depends on; validated on construction.

    Attributes:
      data: dataset root holding ``dcase2023t2/`` and ``noise/`` (None: ``dcase.data_root``);
        the ``dcase2023t2`` folder itself is accepted too.
      machine: DCASE 2023 development machine type.
      protocol: "mini" (valve only, ci mode) or "full" (official train/test split).
      noise, snr: name of a recording in ``<data>/noise`` and the SNR in dB (both or neither),
        relative to the mean power of the normal training clips (module docstring, step 2).
      seed: seeds the detector (initialisation, training, k-means) and the noise offsets.
      n_mels: log-mel bands.
      detector: the :class:`~asdtheory.detect.DetectorConfig` (default :data:`DCASE_DETECTOR`).
    """

    data: str | Path | None = None
    machine: str = "valve"
    protocol: str = "mini"
    noise: str | None = None
    snr: float | None = None
    seed: int = 0
    n_mels: int = 64
    detector: DetectorConfig = DCASE_DETECTOR

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got "
                             f"{self.protocol!r}.")
        if self.machine not in PROTOCOLS[self.protocol]:
            raise ValueError(f"protocol {self.protocol!r} is not available for machine "
                             f"{self.machine!r}; it covers {', '.join(PROTOCOLS[self.protocol])}"
                             + (" (use protocol='full' for the other machines)."
                                if self.protocol == "mini" else "."))
        if (self.noise is None) != (self.snr is None):
            raise ValueError("noise and snr go together: pass both (a recording name and an "
                             "SNR in dB) or neither.")
        if self.snr is not None:
            check_scalar(self.snr, "snr")
        check_scalar(self.seed, "seed", low=0, integer=True)
        check_scalar(self.n_mels, "n_mels", low=1, integer=True)
        if not isinstance(self.detector, DetectorConfig):
            raise ValueError(f"detector must be a DetectorConfig, got {self.detector!r}.")


@dataclasses.dataclass
class Result:
    """What :func:`run` returns.

    Attributes:
      config: the configuration.
      rows: ``evaluation.SectionScores`` per (machine, section), official 2023 rules.
      official_score: harmonic mean of all AUC_source, AUC_target, pAUC values.
      table: ``evaluation.format_table(rows)``.
      detector: the trained :class:`~asdtheory.detect.Detector`.
      test_clips: ``dcase.ClipInfo`` of the test clips, in the order of the arrays below.
      test_scores: (n,) anomaly scores.
      test_embeddings: (n, D) clip embeddings.
      train_clips, train_embeddings: the same for the training clips.
      level_scores: (n,) scores of the model-free reference ``scoring.level_score`` on the
        same test waveforms (step 5), and level_official_score their official score.
    """

    config: RunConfig
    rows: list
    official_score: float
    table: str
    detector: Detector
    test_clips: list
    test_scores: np.ndarray
    test_embeddings: np.ndarray
    train_clips: list
    train_embeddings: np.ndarray
    level_scores: np.ndarray
    level_official_score: float

    @property
    def history(self) -> train.History:
        return self.detector.history

    def to_json(self) -> dict:
        """JSON-serialisable summary: config, official score, table rows, per-clip scores."""
        config = {k: (str(v) if isinstance(v, Path) else v)
                  for k, v in dataclasses.asdict(self.config).items()}
        return {
            "config": config,
            "official_score": self.official_score,
            "level_official_score": self.level_official_score,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "loss": self.history.get("loss", []),
            "clips": [{"file": c.path.name, "domain": c.domain, "label": c.label,
                       "score": float(s)} for c, s in zip(self.test_clips, self.test_scores,
                                                          strict=True)],
        }


def _data_root(config: RunConfig) -> Path | None:
    """The dataset root; a path to the ``dcase2023t2`` folder itself means its parent."""
    if config.data is None:
        return None
    root = Path(config.data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {config.data} does not exist; pass the folder "
                                "holding dcase2023t2/ (e.g. ../shared/data).")
    if root.name == "dcase2023t2" and not (root / "dcase2023t2").exists():
        return root.parent
    return root


def _split(config: RunConfig, root: Path | None) -> dcase.Split:
    if config.protocol == "mini":
        return dcase.valve_mini_protocol(root)
    return dcase.official_split(root, config.machine)


def run(config: RunConfig, *, checkpoint: str | Path | None = None) -> Result:
    """Runs the steps of the module docstring for one configuration.

    ``checkpoint``: optional ``.npz`` path of the training state, written after every epoch;
    when it exists, training continues from it (see ``Detector.fit``).

    With ``config.noise``, the SNR of every clip (training and test) is relative to the mean
    power of this run's normal training clips, not to the clip's own power (step 2).

    Raises FileNotFoundError (missing data root, clips or noise recording) and ValueError
    (protocol or split problems, e.g. a test section without training clips) before any
    feature extraction or training.
    """
    root = _data_root(config)
    split = _split(config, root)
    missing = sorted({c.section for c in split.test} - {c.section for c in split.train})
    if missing:
        raise ValueError(f"test sections {missing} have no training clips in {split.name}.")
    noise = None if config.noise is None else audio.load_noise(config.noise, root)
    noise_key, detector_key = jax.random.split(jax.random.key(config.seed))

    clips = split.train + split.test
    waves = np.stack([audio.load(c.path) for c in clips])
    if noise is not None:
        normal_train = np.array([not c.is_anomaly for c in split.train])
        reference = float(np.mean(np.mean(
            waves[:len(split.train)][normal_train].astype(np.float64) ** 2, axis=-1)))
        waves = np.asarray(audio.mix_at_snr(waves, noise, config.snr, key=noise_key,
                                            reference_power=reference))
    mels = log_mels(waves, n_mels=config.n_mels)
    n_train = len(split.train)
    classes = sorted({(c.section, c.attribute_key) for c in split.train})
    detector = Detector.fit(
        mels[:n_train], [classes.index((c.section, c.attribute_key)) for c in split.train],
        config=config.detector, key=detector_key,
        groups=[c.section for c in split.train],
        is_target=np.array([c.domain == "target" for c in split.train]), checkpoint=checkpoint)
    test_groups = [c.section for c in split.test]
    test_embeddings, test_scores = detector.embed_and_score(mels[n_train:], groups=test_groups)
    normal_train = [i for i, c in enumerate(split.train) if not c.is_anomaly]
    level_scores = scoring.level_score(
        waves[normal_train], waves[n_train:],
        train_groups=[split.train[i].section for i in normal_train], test_groups=test_groups)
    table_of = lambda scores: evaluation.dcase_table(
        machine=[c.machine for c in split.test], section=test_groups,
        domain=[c.domain for c in split.test], is_anomaly=[c.is_anomaly for c in split.test],
        scores=scores)
    rows = table_of(test_scores)
    return Result(config=config, rows=rows, official_score=evaluation.official_score(rows),
                  table=evaluation.format_table(rows), detector=detector,
                  test_clips=split.test, test_scores=test_scores,
                  test_embeddings=test_embeddings, train_clips=split.train,
                  train_embeddings=detector.train_embeddings, level_scores=level_scores,
                  level_official_score=evaluation.official_score(table_of(level_scores)))

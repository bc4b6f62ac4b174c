"""The detector on a DCASE folder: split -> features -> :class:`~asdtheory.detect.Detector` ->
official table (``asdtheory run`` calls it).

``run(RunConfig(...)) -> Result``::

    result = run(RunConfig(data="../shared/data",
                           detector=systems.get("reference").config(small_data=True)))
    print(result.table)              # official-rules table + official score
    result.test_embeddings, result.test_scores, result.test_clips   # for plots

Steps (clips are read as stored, 16 kHz, mono or the channel their ``ClipInfo`` names):

1. **Split**: protocol "mini" is ``data.dcase.valve_mini_protocol`` (valve only; 60 train,
   140 test clips); "full" is ``data.dcase.official_split`` of every machine of
   ``machines`` ("all": every DCASE 2023 development machine present); "at-hand" is
   ``data.dcase.machines_at_hand`` (the real recordings of ../shared/data: the valve mini
   protocol, the DCASE 2020 slider's training clips, the MIMII fan protocol); "mimii" is
   ``data.dcase.mimii_protocol`` of every MIMII machine of ``machines``. The clips of all
   machines are pooled: **one** detector is trained on the training clips of all of them
   (the joint auxiliary task of K. Wilkinghoff's DCASE systems).
2. **Noise** (optional): every clip, training and test, gets the named real background
   recording (``dcase.load_noise``) added at a random offset per clip, scaled to ``snr`` dB
   relative to one label-free reference level per machine: the mean power (mean square) of
   that machine's normal training clips (``audio.mix_at_snr(..., reference_power=...)``).
   Every clip of a machine thus gets noise of the same power, whatever its own level --
   never set from an anomalous clip's own power, which would make the noise level a cue to
   the label.
3. **Features** (``detect.features``): the waveforms themselves for the two-branch network
   of the "reference" system; ``detect.log_mels`` (n_fft 1024, hop 512, the detector's
   ``n_mels`` bands: 313 frames of 10 s) for the log-mel CNN and the autoencoder.
4. **Detector**: ``Detector.fit`` on the training clips, each labelled with its auxiliary
   class = (machine, section, attribute, domain) combination, grouped by (machine, section)
   for the back-end, with the target-domain training clips marked (the k-means back-end
   makes each a centre of its own). ``detect.systems`` gives the detector of a named
   system.
5. **Evaluation**: ``evaluation.dcase_table`` (official DCASE 2023 rules, the 2020 rules
   for MIMII and DCASE 2020 clips, which have no domains: one row per machine and section;
   a section whose test clips are all normal or all anomalous is n/a, with a warning) and
   ``evaluation.official_score`` over the scorable rows (a table pooling both rules: the
   harmonic mean of every value); beside it two
   reference rows on the same clips: the detector's untrained twin
   (``DetectorConfig.twin``: the same network, back-end and key, no optimiser step), what
   the architecture and back-end achieve before training, and the model-free
   ``scoring.level_score`` (how far each clip's level lies from its section's normal
   training level), what the trivial cue "louder or quieter than usual" achieves.

The data are DCASE 2023 Task 2 recordings (MIMII DG; CC BY 4.0): see the data README for
the attribution that must accompany any use.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import numpy as np

from asdtheory import audio, evaluation, scoring, train
from asdtheory._validation import check_scalar
from asdtheory.data import audit, dcase, submission
from asdtheory.detect import Detector, DetectorConfig, features, systems, waveform_score_fn

__all__ = ["PROTOCOLS", "Result", "RunConfig", "clip_class", "clip_group", "dcase_rows",
           "load_clips", "run"]

PROTOCOLS = {"mini": ("valve",), "full": dcase.DEV_MACHINES_2023, "at-hand": dcase.AT_HAND,
             "mimii": dcase.MIMII_MACHINES}
# The protocols that cut cross-validation folds, and those that read MIMII recordings.
FOLDED = {"mini": dcase.VALVE_MINI_FOLDS, "at-hand": dcase.VALVE_MINI_FOLDS, "mimii": 2}
MIMII_PROTOCOLS = ("at-hand", "mimii")
# The default system with the batch of the default (mini) protocol.
DEFAULT_DETECTOR = systems.get(systems.DEFAULT).config(small_data=True)
MIX_CHUNK = 256  # clips mixed with noise at a time


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a :func:`run` depends on; validated on construction.

    Attributes:
      data: dataset root holding ``dcase2023t2/`` and ``noise/`` (None: ``dcase.data_root``);
        the ``dcase2023t2`` folder itself is accepted too.
      machines: machine types trained on together (one detector), a sequence of names or
        "all": the mini protocol has valve only; "full" every DCASE 2023 development machine
        present under the data root; "at-hand" valve, slider and fan; "mimii" every MIMII
        machine folder present.
      protocol: "mini" (valve only, ci mode), "full" (official train/test split), "at-hand"
        (the real recordings at hand) or "mimii" (MIMII, 2-fold cross-validation).
      fold: the cross-validation fold of the mini, at-hand and mimii protocols (0 or 1).
      channel: the channel kept from multi-channel MIMII recordings (the public archives hold
        8); None for mono files. Only for the at-hand and mimii protocols.
      noise, snr: name of a recording in ``<data>/noise`` and the SNR in dB (both or neither),
        relative to the mean power of each machine's normal training clips (module
        docstring, step 2).
      seed: seeds the detector (initialisation, training, k-means) and the noise offsets.
      seconds: every clip is cut to its first ``seconds`` (as the author's systems do; DCASE
        2023 clips last 10 s or more); a shorter clip is an error.
      detector: the :class:`~asdtheory.detect.DetectorConfig` (default: the reference
        system's, ``detect.systems``, with the mini protocol's batch).
    """

    data: str | Path | None = None
    machines: str | tuple[str, ...] = ("valve",)
    protocol: str = "mini"
    fold: int = 0
    channel: int | None = None
    noise: str | None = None
    snr: float | None = None
    seed: int = 0
    seconds: float = 10.0
    detector: DetectorConfig = DEFAULT_DETECTOR

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got "
                             f"{self.protocol!r}.")
        if isinstance(self.machines, str) and self.machines != "all":
            raise ValueError(f"machines must be a sequence of machine names or 'all', got the "
                             f"string {self.machines!r}; write machines=({self.machines!r},).")
        if self.machines != "all":
            object.__setattr__(self, "machines", tuple(dict.fromkeys(self.machines)))
            if not self.machines:
                raise ValueError("machines is empty: name at least one machine, or 'all'.")
            for machine in self.machines:
                if machine not in PROTOCOLS[self.protocol]:
                    raise ValueError(
                        f"protocol {self.protocol!r} is not available for machine {machine!r};"
                        f" it covers {', '.join(PROTOCOLS[self.protocol])}"
                        + (" (use protocol='full' for the other machines)."
                           if self.protocol == "mini" else "."))
        check_scalar(self.fold, "fold", low=0, integer=True)
        if self.fold >= FOLDED.get(self.protocol, 1):
            raise ValueError(f"fold={self.fold}, but protocol {self.protocol!r} "
                             + (f"has folds 0 to {FOLDED[self.protocol] - 1}."
                                if self.protocol in FOLDED else "has no folds (fold=0)."))
        if self.channel is not None:
            if self.protocol not in MIMII_PROTOCOLS:
                raise ValueError(f"channel={self.channel} chooses a channel of MIMII "
                                 f"recordings; protocol {self.protocol!r} reads none (its "
                                 "clips are mono).")
            check_scalar(self.channel, "channel", low=0, integer=True)
        if (self.noise is None) != (self.snr is None):
            raise ValueError("noise and snr go together: pass both (a recording name and an "
                             "SNR in dB) or neither.")
        if self.snr is not None:
            check_scalar(self.snr, "snr")
        check_scalar(self.seed, "seed", low=0, integer=True)
        check_scalar(self.seconds, "seconds", low=0.0)
        if not self.seconds > 0:
            raise ValueError(f"seconds must be > 0 (the length every clip is cut to), got "
                             f"{self.seconds}.")
        if not isinstance(self.detector, DetectorConfig):
            raise ValueError(f"detector must be a DetectorConfig, got {self.detector!r}.")


@dataclasses.dataclass
class Result:
    """What :func:`run` returns.

    Attributes:
      config: the configuration.
      machines: the machine types of the run (resolved from ``config.machines``).
      classes: the auxiliary classes, (machine, section, attribute, domain) per class index.
      rows: ``evaluation.SectionScores`` per (machine, section), official 2023 rules.
      official_score: harmonic mean of all AUC_source, AUC_target, pAUC values.
      table: ``evaluation.format_table(rows)``.
      detector: the trained :class:`~asdtheory.detect.Detector`.
      test_clips: ``dcase.ClipInfo`` of the test clips, in the order of the arrays below.
      test_scores: (n,) anomaly scores.
      test_embeddings: (n, D) clip embeddings.
      train_clips, train_embeddings: the same for the training clips.
      train_scores: (n_train,) anomaly scores of the training clips
        (``Detector.training_scores``: in-sample, their embeddings shaped the back-end; the
        kNN back-end leaves each clip out of its own neighbours); the DCASE decision
        threshold is fitted to them (``data.submission.decision_threshold``).
      level_scores: (n,) scores of the model-free reference ``scoring.level_score`` on the
        same test waveforms (step 5), and level_official_score their official score.
      twin_scores: (n,) scores of the untrained twin (step 5), and twin_official_score
        their official score.
    """

    config: RunConfig
    machines: tuple
    classes: list
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
    twin_scores: np.ndarray
    twin_official_score: float
    train_scores: np.ndarray | None = None

    def waveform_score_fn(self, group=None):
        """``detect.waveform_score_fn`` of the trained detector with this run's front-end."""
        return waveform_score_fn(self.detector, group)

    @property
    def history(self) -> train.History:
        return self.detector.history

    @property
    def settling(self) -> float | None:
        """``train.settling`` of the training loss (settled below ``train.SETTLED_BELOW``);
        None for fewer than two epochs."""
        loss = self.history.get("loss", [])
        return train.settling(loss) if len(loss) >= 2 else None

    @property
    def class_summary(self) -> str:
        """How many auxiliary classes and from which fields, e.g. for the command line."""
        count = lambda i: len({c[i] for c in self.classes})
        return (f"{len(self.classes)} auxiliary classes: (machine, section, attribute, domain) "
                f"combinations of the training clips ({count(0)} machine type(s), "
                f"{len({c[:2] for c in self.classes})} (machine, section) pairs, {count(2)} "
                "attribute values)")

    def to_json(self) -> dict:
        """JSON-serialisable summary: config, official score, table rows, per-clip scores."""
        config = {k: (str(v) if isinstance(v, Path) else v)
                  for k, v in dataclasses.asdict(self.config).items()}
        return {
            "config": config,
            "official_score": self.official_score,
            "level_official_score": self.level_official_score,
            "twin_official_score": self.twin_official_score,
            "machines": list(self.machines),
            "classes": [list(c) for c in self.classes],
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "loss": self.history.get("loss", []),
            "loss_settling": self.settling,
            "clips": [{"machine": c.machine, "section": c.section, "file": submission.clip_name(c),
                       "domain": c.domain, "label": c.label, "score": float(s)}
                      for c, s in zip(self.test_clips, self.test_scores, strict=True)],
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


def _machines(config: RunConfig, root: Path | None) -> tuple[str, ...]:
    if config.machines != "all":
        return config.machines
    if config.protocol in ("mini", "at-hand"):
        return PROTOCOLS[config.protocol]
    if config.protocol == "mimii":
        base = dcase.data_root(root) / "mimii"
        present = tuple(m for m in dcase.MIMII_MACHINES if (base / m).is_dir())
        if not present:
            raise FileNotFoundError(f"machines='all' found no MIMII machine folder under "
                                    f"{base} ({', '.join(dcase.MIMII_MACHINES)}).")
        return present
    raw = dcase.data_root(root) / "dcase2023t2" / "dev_data" / "raw"
    present = tuple(m for m in dcase.DEV_MACHINES_2023 if (raw / m).is_dir())
    if not present:
        raise FileNotFoundError(f"machines='all' found no DCASE 2023 development machine "
                                f"folder under {raw}; fetch some with `asdtheory data fetch "
                                "--machine all`.")
    return present


def _split(config: RunConfig, root: Path | None, machines) -> dcase.Split:
    if config.protocol == "mini":
        return dcase.valve_mini_protocol(root, fold=config.fold)
    if config.protocol == "at-hand":
        return dcase.machines_at_hand(root, machines=machines, fold=config.fold,
                                      channel=config.channel)
    if config.protocol == "mimii":
        return dcase.combine(*(dcase.mimii_protocol(root, machine=m, folds=FOLDED["mimii"],
                                                    fold=config.fold, channel=config.channel)
                               for m in machines))
    splits = [dcase.official_split(root, machine) for machine in machines]
    return dcase.Split(name=f"dcase2023 dev_data {'+'.join(machines)} official",
                       train=[c for s in splits for c in s.train],
                       test=[c for s in splits for c in s.test])


def load_clips(clips, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """(clips, seconds x sample_rate) float32 waveforms of ``data.dcase.ClipInfo`` s, each cut
    to its first ``seconds`` (its ``channel`` kept from a multi-channel file); a shorter clip
    is an error."""
    length = round(seconds * sample_rate)
    waves = np.zeros((len(clips), length), np.float32)
    for row, clip in enumerate(clips):
        wave = audio.load(clip.path, sample_rate=sample_rate, channel=clip.channel)
        if len(wave) < length:
            raise ValueError(f"{clip.path} lasts {len(wave) / sample_rate:.2f} s, less than "
                             f"the {seconds:g} s every clip is cut to; lower RunConfig.seconds.")
        waves[row] = wave[:length]
    return waves


def clip_group(clip) -> str:
    """The back-end group of a clip: its machine and section (one k-means per group)."""
    return f"{clip.machine} section {clip.section:02d}"


def clip_class(clip) -> tuple:
    """The auxiliary class of a clip in the author's joint task: machine, section, attribute
    combination and domain."""
    return (clip.machine, clip.section, clip.attribute_key, clip.domain)


def dcase_rows(clips, scores) -> list[evaluation.SectionScores]:
    """The official table of test ``clips`` and their ``scores``: the DCASE 2023 rules for
    clips named with domains, the 2020 rules (AUC, pAUC) for MIMII and DCASE 2020 clips; a
    section that cannot be scored is n/a with a warning."""
    scores = np.asarray(scores)
    rows = []
    for rules, dated in (("2023", False), ("2020", True)):
        keep = [i for i, c in enumerate(clips) if (c.year_format in ("mimii", 2020)) == dated]
        if keep:
            mine = [clips[i] for i in keep]
            rows += evaluation.dcase_table(
                machine=[c.machine for c in mine], section=[c.section for c in mine],
                domain=[c.domain for c in mine], is_anomaly=[c.is_anomaly for c in mine],
                scores=scores[keep], rules=rules, unscorable="n/a")
    return rows


def run(config: RunConfig, *, checkpoint: str | Path | None = None) -> Result:
    """Runs the steps of the module docstring for one configuration.

    ``checkpoint``: optional folder of the training state, written after every epoch; when it
    holds one, training continues from it (see ``Detector.fit``).

    With ``config.noise``, the SNR of every clip (training and test) is relative to the mean
    power of its machine's normal training clips, not to the clip's own power (step 2).

    Raises FileNotFoundError (missing data root, machine folders, clips or noise recording)
    and ValueError (protocol or split problems, e.g. a test section without training clips,
    a training set smaller than the batch; ``data.audit.ClipProblems`` listing every clip
    whose header shows a sample rate other than 16 kHz, several channels and none chosen, or
    fewer than ``config.seconds``) before any feature extraction or training.
    """
    root = _data_root(config)
    machines = _machines(config, root)
    split = _split(config, root, machines)
    if not split.test:
        raise ValueError(f"{split.name} has no test clips: add a machine that has some "
                         f"(machines {', '.join(machines)}).")
    missing = sorted({clip_group(c) for c in split.test} - {clip_group(c) for c in split.train})
    if missing:
        raise ValueError(f"test sections {missing} have no training clips in {split.name}.")
    problems = audit.clip_problems(split.train + split.test, seconds=config.seconds)
    if problems:
        raise audit.ClipProblems(problems)
    classes = sorted({clip_class(c) for c in split.train})
    if config.detector.spec.uses_labels and len(classes) < 2:
        raise ValueError(
            f"the auxiliary task of {config.detector.method} needs at least 2 classes, but the "
            f"training clips of {split.name} form one ({', '.join(map(str, classes))}); add "
            "machines or machine IDs, or choose a method without labels (deep-svdd, "
            "autoencoder).")
    batch_size = config.detector.batch_size
    if config.detector.input_kind == "waveform" and batch_size > len(split.train):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(split.train)} training "
                         f"clips of {split.name}; lower it (systems.get(name).config(..., "
                         "small_data=True) does).")
    noise = None if config.noise is None else dcase.load_noise(config.noise, root)
    noise_key, detector_key = jax.random.split(jax.random.key(config.seed))

    clips = split.train + split.test
    waves = load_clips(clips, config.seconds)
    n_train = len(split.train)
    if noise is not None:
        power = np.mean(waves[:n_train].astype(np.float64) ** 2, axis=-1)
        reference = {m: float(np.mean(power[[c.machine == m and not c.is_anomaly
                                             for c in split.train]])) for m in machines}
        levels = np.array([reference[c.machine] for c in clips])
        # In chunks of clips (chunk i draws its offsets from fold_in(key, i)): the mixture of
        # a full-mode dataset at once would need several copies of all its waveforms.
        for i, start in enumerate(range(0, len(clips), MIX_CHUNK)):
            rows = slice(start, start + MIX_CHUNK)
            waves[rows] = np.asarray(audio.mix_at_snr(
                waves[rows], noise, config.snr, key=jax.random.fold_in(noise_key, i),
                reference_power=levels[rows]))
    inputs = features(waves, config.detector)
    fit = functools.partial(
        Detector.fit, inputs[:n_train], [classes.index(clip_class(c)) for c in split.train],
        key=detector_key, groups=[clip_group(c) for c in split.train],
        is_target=np.array([c.domain == "target" for c in split.train]))
    detector = fit(config=config.detector, checkpoint=checkpoint)
    test_groups = [clip_group(c) for c in split.test]
    test_embeddings, test_scores = detector.embed_and_score(inputs[n_train:],
                                                            groups=test_groups)
    twin_scores = fit(config=config.detector.twin()).score(inputs[n_train:],
                                                           groups=test_groups)
    train_scores = detector.training_scores(inputs[:n_train])
    normal_train = [i for i, c in enumerate(split.train) if not c.is_anomaly]
    level_scores = scoring.level_score(
        waves[normal_train], waves[n_train:],
        train_groups=[clip_group(split.train[i]) for i in normal_train], test_groups=test_groups)
    table_of = functools.partial(dcase_rows, split.test)
    rows = table_of(test_scores)
    return Result(config=config, machines=machines, classes=classes, rows=rows,
                  official_score=evaluation.official_score(rows),
                  table=evaluation.format_table(rows), detector=detector,
                  test_clips=split.test, test_scores=test_scores,
                  test_embeddings=test_embeddings, train_clips=split.train,
                  train_embeddings=detector.train_embeddings, level_scores=level_scores,
                  level_official_score=evaluation.official_score(table_of(level_scores)),
                  twin_scores=twin_scores,
                  twin_official_score=evaluation.official_score(table_of(twin_scores)),
                  train_scores=train_scores)

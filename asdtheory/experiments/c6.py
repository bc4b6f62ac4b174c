"""``c6``: what the anomaly score listens to, RISE saliency maps on synthetic machine sounds
in real noise (claims C6.a-C6.e).

Reference: K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643;
RISE: V. Petsiuk, A. Das and K. Saenko, "RISE: Randomized input sampling for explanation of
black-box models", BMVC 2018. DESIGN.md, claims catalogue C6; issue 35 (item 1).

**Data** (notebook 06's set-up, with the real noise recordings). Every seed draws fresh
machines (``data.synthetic.machine_sounds``: :data:`MACHINES` machines x :data:`ATTRIBUTES`
attributes, the six classes of the auxiliary task, 1-s clips at 16 kHz) and, from the same
machines, ``train`` normal training clips, ``test_normal`` normal test clips and, of each
anomaly kind of :data:`ANOMALIES`, ``test_anomalous`` anomalous test clips per class:

- ``tone``: notebook 06's whine, a normal clip plus a tone at :data:`TONE_HZ` from 0.40 to
  0.70 s (10-ms raised-cosine ramps, random phase) with an RMS of ``tone_db`` dB relative to
  the machine's normal tone (RMS 0.05) while it sounds: energy foreign to the machine, in a
  fixed **box** (:func:`box_mask`);
- ``harmonic``: ``machine_sounds``' "harmonic" anomaly at ``harmonic_strength``: one harmonic
  of the machine (2 to 7, per clip) multiplied by 1 + 2 s over the whole clip: a change of the
  machine's own sound, the kind an auxiliary task about the machine's identity is argued to
  make audible to the detector.

The four real background recordings (``c3.NOISES``, each at unit RMS, concatenated) are added
to every clip at a random offset per clip at ``snr`` dB relative to the mean power of the
machine's normal training clips: a label-free level per machine, as in c3. What is known per
test clip, and recorded:

- its **machine-dominated** bins (``dominant``): ``explain.dominance_mask(log-mel of the
  machine signal, log-mel of the noise)``, the machine signal being the clean clip with its
  anomaly (the anomaly is the machine's fault); the other bins are **noise-dominated**;
- for an anomalous clip, its **anomaly region** (``anomaly_region``): the bins where the
  anomaly raises the log-mel of the *mixture* by at least :data:`ANOMALY_DB` dB (the power
  of the bin at least doubles: the anomaly is audible there above machine and noise). Each
  anomalous clip is rendered with and without its anomaly from one key with the same noise,
  so the region is exact. For the tone it lies inside or next to the box.

Features: 32-band log-mel spectrograms (n_fft 1024, hop 512: 32 frames x 32 bands per clip),
one window per clip; every method reads the same spectrograms, so that the maps of all
methods live on one plane.

**Units.** method x seed, methods :data:`METHODS`: sub-cluster AdaCos on the auxiliary task
(the angular margin model the claim is about), Deep SVDD (one-class) and the DCASE baseline
autoencoder (generative), as notebook 06 compares them. Each unit trains its method with
``detect.Detector.fit`` (notebook 06's CNN on whole clips; the k-means back-end with one
centre per class for the angular method) for the size's optimiser steps (``steps``; the
autoencoder's ``autoencoder_steps`` on its batches of 256 stacked-frame vectors), records the
loss curve and its settling statistic (``train.settling``), and records for every test clip
the trained detector's score, its untrained twin's (``steps=0``: same architecture,
back-end and key) and the model-free level detector's (``scoring.level_score``), and the two
scores of the deletion test. For every anomalous test clip (the **explained** clips, column
``map``) it records two centred RISE maps of the anomaly score (``explain.rise``,
``n_masks`` masks on an 8 x 8 grid, keep probability 0.5; one mask key per seed, so that
every method, clip and fill of a seed sees the same masks), one per **fill** of the
masked-out bins:

- ``class``: the mean normal training spectrogram of the clip's own class (machine,
  attribute): a masked copy stays a sound of the clip's class, so that only what the clip
  holds beyond its class's normal sound moves the score;
- ``average``: the mean normal training spectrogram over all classes (notebook 06's fill):
  a masked copy moves towards the average of all classes, which a class-centre score already
  finds far from every centre (issue 35).

and a third map, of the **untrained twin's** score with the class-conditional fill
(``saliency_twin_class``): what the architecture and back-end listen to before training, the
reference beside every trained map.

Maps are stored divided by their largest magnitude, as float16 (``saliency_class``,
``saliency_average``, ``saliency_twin_class``: (maps, frames, bands)), with that magnitude in
float32 (``saliency_scale_<map>``): shares are ratios that do not need
the scale, and float16 moves a share by less than 1e-3.

**Deletion test.** Per test clip, with X its log-mel, D its machine-dominated bins and N' the
log-mel of an independent stretch of the same noise recordings at the same level: the score
of X with the bins of D replaced by N' (the machine deleted: ``deleted_machine``) and with
the bins outside D replaced by N' (the noise deleted, i.e. exchanged for other noise:
``deleted_noise``). A score that listens to the machine moves more in the first.

**Sizes.** ``standard`` = 20 seeds x 3 methods, 100 training clips per class (600), 10
normal and 8 + 8 anomalous test clips per class (156 test clips, 96 maps per fill), 1500
optimiser steps of batch 32 (3000 of the autoencoder's batches of 256), 2000 masks per map
with three maps per explained clip (class fill, average fill, the twin's class fill):
4 971 CPU-s in all on a Zen 4 core (37-96 CPU-s a unit), ~0.6 MB of records per unit
(37 MB). ``full`` = 40
seeds, 200 training and 40 normal + 40 + 40 anomalous test clips per class, twice the steps
and masks, for a GPU.

**Decision.** :data:`CRITERIA` (pre-registered) are decided by ``asdtheory.repro.c6.analyse``
on paired ``claims.hierarchical_bootstrap`` intervals over seeds and explained clips, behind
the gate :data:`GATE_AUC`, per anomaly kind.

**Difficulty.** The tone keeps notebook 06's level (-6 dB): it is the set-up whose maps
notebook 06 showed, and on the calibration key no level from -6 to +18 dB lets sub-cluster
AdaCos detect it (``c6_calibration.json`` records every method's AUC at each level), so its
comparisons are expected to be withheld by the gate and the tone clips to show the old
measure on the old set-up. The harmonic anomaly's strength was fixed before the standard run
on its own key (:func:`calibrate`): the smallest strength of the grid at which every method
detects it with AUC >= :data:`CALIBRATION_TARGET`, else the strength with the largest
smallest AUC (the grid's largest, 16, where sub-cluster AdaCos, the weakest detector here,
stays just below the target).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import numpy as np

from asdtheory import audio, detect, explain, scoring, train
from asdtheory.data import dcase
from asdtheory.data.synthetic import machine_sounds
from asdtheory.detect import embedders
from asdtheory.experiments.c3 import NOISES, noise_bank
from asdtheory.experiments.core import Experiment, Record, Unit, register

__all__ = ["ANOMALIES", "ANOMALY_DB", "ATTRIBUTES", "BOX_HZ", "BOX_SECONDS", "CALIBRATION",
           "CALIBRATION_FILE", "CALIBRATION_SEED", "CALIBRATION_TARGET", "CRITERIA", "FILLS",
           "GATE_AUC", "MACHINES", "MEASURES", "METHODS", "OVERALL", "REGIONS", "REPORTED",
           "SIZES", "TONE_HZ", "TWIN_FILL", "box_mask", "calibrate", "compute",
           "detector_config", "draw", "inputs", "preflight", "tone_burst", "units"]

# The angular margin model first, then its one-class and generative rivals.
METHODS = ("subcluster-adacos", "deep-svdd", "autoencoder")
LABELS = {"subcluster-adacos": "sub-cluster AdaCos", "deep-svdd": "Deep SVDD",
          "autoencoder": "autoencoder"}
ANOMALIES = ("tone", "harmonic")
FILLS = ("class", "average")
TWIN_FILL = "class"  # the untrained twin is explained with the fill the criteria decide with
MEASURES = ("positive", "negative", "absolute")
REGIONS = ("machine", "anomaly", "box")
MACHINES, ATTRIBUTES = 3, 2
SAMPLE_RATE, N_MELS, HOP = 16000, 32, 512
BOX_SECONDS, BOX_HZ, TONE_HZ = (0.40, 0.70), (1450.0, 1800.0), 1600.0
TONE_DB = -6.0  # notebook 06's whine: RMS 0.025 against the machine's normal 0.05
NORMAL_RMS = 0.05  # the RMS of a machine's normal tone (data.synthetic.machine_sounds)
ANOMALY_DB = 3.0
GRID, KEEP_PROB = (8, 8), 0.5

CALIBRATION_FILE = Path(__file__).with_name("c6_calibration.json")
CALIBRATION = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.is_file() else None
HARMONIC_STRENGTH = None if CALIBRATION is None else CALIBRATION["chosen_harmonic_strength"]

_COMMON = {"duration": 1.0, "snr": 0.0, "tone_db": TONE_DB,
           "harmonic_strength": HARMONIC_STRENGTH, "n_mels": N_MELS, "embed_dim": 32,
           "channels": [8, 16, 32], "num_subclusters": 4,
           "n_clusters": MACHINES * ATTRIBUTES, "learning_rate": 1e-3, "batch_size": 32,
           "grid": list(GRID), "keep_prob": KEEP_PROB, "noises": list(NOISES)}
# smoke: the whole grid's code path in seconds; standard: the size that decides on this
# machine (2 CPU cores); full: more seeds, clips and masks, for a GPU. Clip counts are per
# class (6 classes), ``test_anomalous`` per anomaly kind.
SIZES = {
    "smoke": {"seeds": 2, "train": 6, "test_normal": 2, "test_anomalous": 1, "steps": 8,
              "autoencoder_steps": 8, "n_masks": 40, "rise_batch": 20},
    "standard": {"seeds": 20, "train": 100, "test_normal": 10, "test_anomalous": 8,
                 "steps": 1500, "autoencoder_steps": 3000, "n_masks": 2000,
                 "rise_batch": 250},
    "full": {"seeds": 40, "train": 200, "test_normal": 40, "test_anomalous": 40,
             "steps": 3000, "autoencoder_steps": 6000, "n_masks": 4000, "rise_batch": 500},
}


def detector_config(config: Mapping) -> detect.DetectorConfig:
    """The unit's detector: notebook 06's CNN on whole 1-s log-mel clips (one window per
    clip), trained for the size's steps; the autoencoder keeps the DCASE baseline's network
    and training (``with_method``) but reads the same 32-band spectrograms as the others."""
    base = detect.DetectorConfig(
        method=config["method"], embedder=embedders.CNN(channels=tuple(config["channels"])),
        n_mels=config["n_mels"], window_frames=_frames(config), window_hop=1,
        embed_dim=config["embed_dim"], num_subclusters=config["num_subclusters"],
        n_clusters=config["n_clusters"], batch_size=config["batch_size"],
        learning_rate=config["learning_rate"], steps=config["steps"],
        progress=False).with_method(config["method"])
    if base.reconstructs:
        return dataclasses.replace(base, n_mels=config["n_mels"],
                                   steps=config["autoencoder_steps"])
    return base


def units(size: str) -> list[Unit]:
    """method x seed; each unit's settings hold its whole detector configuration, so that a
    change of the library's defaults makes the stored records stale, not silently different."""
    spec = dict(SIZES[size])
    seeds = spec.pop("seeds")
    settings = {**_COMMON, **spec}
    return [Unit({"method": method, "seed": seed},
                 {**settings, "detector": detector_config({**settings, "method": method})
                  .to_dict()})
            for method in METHODS for seed in range(seeds)]


def _frames(config: Mapping) -> int:
    return 1 + round(config["duration"] * SAMPLE_RATE) // HOP


def box_mask(frames: int = 32, n_mels: int = N_MELS) -> np.ndarray:
    """(frames, n_mels) bool: the bins whose frame centre time lies in :data:`BOX_SECONDS`
    and whose mel band's centre frequency (its filter's peak) lies in :data:`BOX_HZ`
    (notebook 06's box)."""
    times = np.arange(frames) * HOP / SAMPLE_RATE
    filters = np.asarray(audio.mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=1024,
                                              n_mels=n_mels))
    centres = np.fft.rfftfreq(1024, 1 / SAMPLE_RATE)[np.argmax(filters, axis=1)]
    return np.outer((times >= BOX_SECONDS[0]) & (times <= BOX_SECONDS[1]),
                    (centres >= BOX_HZ[0]) & (centres <= BOX_HZ[1]))


def tone_burst(key, n_clips: int, *, rms: float, duration: float = 1.0) -> np.ndarray:
    """(n, samples) tone at :data:`TONE_HZ` with a random phase per clip, RMS ``rms`` inside
    :data:`BOX_SECONDS` (10-ms raised-cosine ramps), zero elsewhere (notebook 06's whine)."""
    t = np.arange(round(duration * SAMPLE_RATE)) / SAMPLE_RATE
    phase = np.asarray(jax.random.uniform(key, (n_clips, 1), maxval=2 * np.pi))
    ramp = np.clip(np.minimum(t - BOX_SECONDS[0], BOX_SECONDS[1] - t) / 0.01, 0, 1)
    envelope = np.sin(0.5 * np.pi * ramp) ** 2
    return (np.sqrt(2) * rms * envelope * np.sin(2 * np.pi * TONE_HZ * t + phase)
            ).astype(np.float32)


def _noise(shape, reference, config: Mapping, key) -> np.ndarray:
    """The real noise alone, at ``snr`` dB below ``reference`` (one level per clip), from a
    random offset per clip of the concatenated recordings."""
    return np.asarray(audio.mix_at_snr(np.zeros(shape, np.float32),
                                       noise_bank(tuple(config["noises"])),
                                       float(config["snr"]), key=key,
                                       reference_power=reference))


def draw(config: Mapping, key) -> dict:
    """One seed's clips, the same for every method of the seed: the training waveforms (their
    machine signal and the mixture), and for the test clips (normal, then ``tone``, then
    ``harmonic``, each ordered by class) the machine signal with its anomaly, the same signal
    without it, the noise and a second, independent noise stretch at the same level (the
    deletion's fill), with their classes, machines and anomaly kinds."""
    keys = jax.random.split(key, 8)
    k_machines, k_train, k_normal, k_tone, k_harmonic, k_burst, k_noise, k_other = keys
    common = {"num_machines": MACHINES, "num_attributes": ATTRIBUTES,
              "duration": config["duration"], "sample_rate": SAMPLE_RATE,
              "machine_key": k_machines}
    per_class = config["test_anomalous"]
    train_sounds = machine_sounds(k_train, clips_per_class=config["train"], **common)
    normal = machine_sounds(k_normal, clips_per_class=config["test_normal"], **common)
    tone_clips = machine_sounds(k_tone, clips_per_class=per_class, **common)
    tone = tone_burst(k_burst, tone_clips.label.size,
                      rms=NORMAL_RMS * 10 ** (config["tone_db"] / 20),
                      duration=config["duration"])
    # One key, with and without the anomaly: the same clips but for the boosted harmonic.
    harmonic = machine_sounds(k_harmonic, clips_per_class=per_class, anomaly_fraction=1.0,
                              anomaly_types=("harmonic",),
                              anomaly_strength=config["harmonic_strength"], **common)
    harmonic_without = machine_sounds(k_harmonic, clips_per_class=per_class, **common)
    parts = (normal, tone_clips, harmonic)
    n_train = train_sounds.label.size
    machine = np.concatenate([train_sounds.machine, *(p.machine for p in parts)])
    power = np.mean(train_sounds.waveforms.astype(np.float64) ** 2, axis=1)
    reference = np.array([power[train_sounds.machine == m].mean() for m in range(MACHINES)])
    signal = np.concatenate([train_sounds.waveforms, normal.waveforms,
                             tone_clips.waveforms + tone, harmonic.waveforms])
    without = np.concatenate([normal.waveforms, tone_clips.waveforms,
                              harmonic_without.waveforms])
    noise = _noise(signal.shape, reference[machine], config, k_noise)
    test = slice(n_train, None)
    return {"train_signal": signal[:n_train], "train_waves": signal[:n_train] + noise[:n_train],
            "train_label": train_sounds.label, "train_machine": train_sounds.machine,
            "signal": signal[test], "without": without, "noise": noise[test],
            "other_noise": _noise(without.shape, reference[machine[test]], config, k_other),
            "label": np.concatenate([p.label for p in parts]), "machine": machine[test],
            "attribute": np.concatenate([p.attribute for p in parts]),
            "anomaly": np.repeat(["none", *ANOMALIES], [p.label.size for p in parts])}


def _mels(waves, config: Mapping) -> np.ndarray:
    return detect.log_mels(waves, sample_rate=SAMPLE_RATE, n_mels=config["n_mels"])


def _normalised(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each map divided by its largest magnitude (float16) and that magnitude (float32)."""
    scale = np.max(np.abs(maps), axis=(1, 2)).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0)[:, None, None]
    return (maps / safe).astype(np.float16), scale


def _inputs(config: Mapping, d: Mapping) -> dict:
    """The log-mels every method reads (training clips, test mixtures, the independent noise
    of the deletion test) and the test clips' machine-dominated bins and anomaly regions."""
    mixed = _mels(d["signal"] + d["noise"], config)
    return {"train": _mels(d["train_waves"], config), "test": mixed,
            "dominant": explain.dominance_mask(_mels(d["signal"], config),
                                               _mels(d["noise"], config)),
            "anomaly_region": mixed - _mels(d["without"] + d["noise"], config) >= ANOMALY_DB,
            "other": _mels(d["other_noise"], config)}


def _fit(config: Mapping, train_mels, labels, key, *, steps: int | None = None):
    method_config = detect.DetectorConfig.from_dict(config["detector"])
    if steps is not None:
        method_config = dataclasses.replace(method_config, steps=steps)
    return detect.Detector.fit(train_mels, labels, config=method_config, key=key)


def compute(config: dict, key) -> Record:
    """One unit: one method on one seed's clips (see the module docstring). The clips, the
    detector's key and the masks' key come from the seed alone, so the methods of a seed see
    the same clips and masks and pair clip by clip."""
    data_key, detector_key, mask_key = jax.random.split(key, 3)
    d = draw(config, data_key)
    x = _inputs(config, d)
    detector = _fit(config, x["train"], d["train_label"], detector_key)
    twin = _fit(config, x["train"], d["train_label"], detector_key, steps=0)
    curve = np.asarray(detector.history["loss"], np.float64)

    explained = np.flatnonzero(d["anomaly"] != "none")
    average = x["train"].mean(axis=0)
    own = {c: x["train"][d["train_label"] == c].mean(axis=0)
           for c in np.unique(d["train_label"]).tolist()}
    rise, twin_rise = (functools.partial(
        explain.rise, system.score_fn(), key=mask_key, n_masks=config["n_masks"],
        grid=tuple(config["grid"]), keep_prob=config["keep_prob"],
        batch_size=config["rise_batch"], centre=True) for system in (detector, twin))
    fills = {"class": lambda i: own[int(d["label"][i])], "average": lambda i: average}
    maps = {fill: np.stack([np.asarray(rise(x["test"][i], baseline=fills[fill](i)))
                            for i in explained]) for fill in FILLS}
    maps[f"twin_{TWIN_FILL}"] = np.stack([
        np.asarray(twin_rise(x["test"][i], baseline=fills[TWIN_FILL](i))) for i in explained])
    arrays = {"loss_curve": curve, "dominant": x["dominant"],
              "anomaly_region": x["anomaly_region"][explained],
              "box": box_mask(*x["test"].shape[1:])}
    for fill, stack in maps.items():
        arrays[f"saliency_{fill}"], arrays[f"saliency_scale_{fill}"] = _normalised(stack)

    n = d["label"].size
    map_index = np.full(n, -1)
    map_index[explained] = np.arange(explained.size)
    is_anomaly = d["anomaly"] != "none"
    files = [f"section_00_source_test_{'anomaly' if y else 'normal'}_{i:04d}_{kind}_machine_"
             f"{m}_attribute_{a}.wav" for i, (y, kind, m, a) in enumerate(zip(
                 is_anomaly, d["anomaly"], d["machine"], d["attribute"], strict=True))]
    dominant, other, mixed = x["dominant"], x["other"], x["test"]
    clips = {"file": np.asarray(files),
             "machine": np.char.add("machine", d["machine"].astype(str)),
             "section": np.zeros(n, int), "domain": np.full(n, "source"),
             "label": is_anomaly.astype(int), "anomaly": d["anomaly"],
             "attribute": d["attribute"], "class": d["label"], "clip": np.arange(n),
             "map": map_index, "twin_score": twin.score(mixed),
             "level_score": scoring.level_score(d["train_waves"], d["signal"] + d["noise"],
                                                train_groups=d["train_machine"],
                                                test_groups=d["machine"]),
             "deleted_machine": detector.score(np.where(dominant, other, mixed)),
             "deleted_noise": detector.score(np.where(dominant, mixed, other)),
             "machine_area": dominant.mean(axis=(1, 2)),
             # A unit-level number on every row, so that the table alone shows it.
             "loss_settling": np.full(n, train.settling(curve))}
    return Record(clips=clips, scores=detector.score(mixed), arrays=arrays,
                  steps=detector.config.steps, final_loss=float(curve[-1]))


def inputs(config: Mapping, seed: int) -> dict:
    """What the units of ``seed`` read, redrawn from the seed's key as :func:`compute` draws
    it: log-mels of the training clips (``train``), of the test mixtures in the records' clip
    order (``test``) and of the deletion's other noise (``other``), and the test clips'
    machine-dominated bins (``dominant``) and anomaly regions (``anomaly_region``). The records
    keep the maps and regions, not the spectrograms they explain (for figures)."""
    data_key = jax.random.split(jax.random.key(seed), 3)[0]
    return _inputs(config, draw(config, data_key))


def preflight(size: str) -> None:
    """Every unit reads the real noise recordings: check they are at hand before any work."""
    del size
    dcase.require_noises(NOISES, needed_by="experiment c6")


# The calibration's own key: jax.random.key(CALIBRATION_SEED), never a unit's seed (every
# size's seeds are 0 .. seeds - 1, far below it; a test checks).
CALIBRATION_SEED = 999_983
CALIBRATION_TARGET = 0.9  # AUC; the gate is 0.8 of the mean over seeds: a margin for them
# harmonic x 3, 5, 9, 17, 33; 16 was added after a first calibration on the grid up to 8 fell
# back to 8 with sub-cluster AdaCos at AUC 0.85 on the calibration key, near the gate.
CALIBRATION_STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0)
CALIBRATION_TONE_DB = (-6.0, 0.0, 6.0, 12.0, 18.0)  # recorded, not chosen


def calibrate(strengths: Sequence[float] = CALIBRATION_STRENGTHS,
              tone_db: Sequence[float] = CALIBRATION_TONE_DB, *, size: str = "standard",
              seed: int = CALIBRATION_SEED, methods: Sequence[str] = METHODS) -> dict:
    """Every method's AUC on each anomaly kind and level, on the calibration key with
    ``size``'s clips and steps, and the chosen harmonic strength: the smallest at which every
    method reaches :data:`CALIBRATION_TARGET` (else the one with the largest smallest AUC).
    The tone levels are recorded only (the tone keeps notebook 06's -6 dB). The training
    clips do not depend on the anomalies, so each method trains once. Run once, before the
    standard run; its result is ``c6_calibration.json`` (``python -m
    asdtheory.experiments.c6``)."""
    from asdtheory import evaluation

    data_key, detector_key, _ = jax.random.split(jax.random.key(seed), 3)
    # (A draw for a tone level renders harmonic clips too, unused: at the grid's first
    # strength.)
    base = {**_COMMON, **{k: v for k, v in SIZES[size].items() if k != "seeds"},
            "harmonic_strength": float(strengths[0])}
    levels = {("harmonic", float(s)): {"harmonic_strength": float(s)} for s in strengths}
    levels |= {("tone", float(db)): {"tone_db": float(db)} for db in tone_db}
    draws = {level: draw({**base, **over}, data_key) for level, over in levels.items()}
    first = next(iter(draws.values()))
    train_mels = _mels(first["train_waves"], base)
    aucs = {kind: {str(v): {} for k, v in levels if k == kind} for kind in ANOMALIES}
    for method in methods:
        config = {**base, "method": method}
        config["detector"] = detector_config(config).to_dict()
        detector = _fit(config, train_mels, first["train_label"], detector_key)
        for (kind, value), d in draws.items():
            rows = np.isin(d["anomaly"], ("none", kind))
            scores = detector.score(_mels((d["signal"] + d["noise"])[rows], base))
            aucs[kind][str(value)][method] = evaluation.auc(
                (d["anomaly"][rows] != "none").astype(int), scores)
    worst = {level: min(by_method.values()) for level, by_method in aucs["harmonic"].items()}
    passing = [level for level in worst if worst[level] >= CALIBRATION_TARGET]
    chosen = min(passing, key=float) if passing else max(worst, key=worst.get)
    return {"chosen_harmonic_strength": float(chosen), "smallest_auc": worst[chosen],
            "target": CALIBRATION_TARGET, "seed": seed, "size": size, "snr": base["snr"],
            "tone_db": TONE_DB, "auc": aucs}


# ----------------------------------------------------------------------------- the claims

# A comparison is a weighted sum of per-map statistics (weight, source, statistic, anomaly)
# over the same explained clips (those of one anomaly kind) of the same seeds; the claim
# predicts it positive. ``source`` is a method or "chance"; ``statistic`` is
# "<measure>/<region>/<fill>" (a saliency share, ``asdtheory.repro.c6``) or "deletion" (the
# machine's share of the deletion effect). The chance level of a share is its region's area
# fraction in the clip (a map blind to the region gets about that); of the deletion share it
# is 1/2 (the two deletions move the score equally).
GATE_AUC = 0.8
GATE_REASON = ("a map explains how a score detects the anomaly only if the score detects it: "
               "a method whose mean AUC over seeds on the explained anomaly kind (its clips "
               "against the normal test clips, the unit's own scores) is below 0.8 gets no "
               "verdict on that kind; every comparison that involves it there is withheld, "
               "not decided, and the claim's verdict covers the other comparisons (DESIGN, "
               "C6: 'AUC >= 0.8, pre-stated; otherwise no verdict')")
DELTA_SHARE = 0.05
DELTA_SHARE_REASON = (
    "a share is the fraction of a map's mass on a region (0 to 1) and a map blind to the "
    "region gets the region's area fraction; 0.05 is one twentieth of the map's mass moved "
    "onto the region: at the machine-dominated bins' area (~0.2 at 0 dB in these noises) a "
    "quarter more saliency per machine-dominated bin than per average bin, at the anomaly "
    "region's (~0.01-0.08) at least half again its area share, about the least difference "
    "one sees between two maps; the mask cells of 4 frames x 4 bands blur every map across a "
    "region's border, which pulls share differences towards 0, so a smaller effect is below "
    "what RISE at this grid resolves")
DELTA_DELETION = 0.1
DELTA_DELETION_REASON = (
    "the machine's share of the deletion effect, |d_machine| / (|d_machine| + |d_noise|), is "
    "1/2 when deleting the machine and deleting the noise move the score equally; 0.6 (a "
    "difference of 0.1) means deleting the machine moves it 1.5 times as much, the least "
    "asymmetry at which the score can be said to depend more on one part of the clip than "
    "on the other; the same size for the difference between two methods' shares")
_A = "subcluster-adacos"
_RIVALS = {"Deep SVDD": "deep-svdd", "autoencoder": "autoencoder"}
_COMBINE = ("each interval by claims.decide; SUPPORTED iff all decided ones are, "
            "CONTRADICTED if any is (claims.all_of); the class-conditional fill decides, the "
            "class-averaged one is reported beside it (module docstring: with the "
            "class-averaged fill every masked copy moves towards an average of all classes, "
            "far from every class centre, so the map of a class-centre score mixes that "
            "distance with what the clip holds)")


def _comparisons(statistic: str, chance: str = "chance") -> dict:
    """Sub-cluster AdaCos against chance and against each rival, on each anomaly kind."""
    out = {}
    for kind in ANOMALIES:
        out[f"{kind}: sub-cluster AdaCos - {chance}"] = (
            (1.0, _A, statistic, kind), (-1.0, "chance", statistic, kind))
        for name, rival in _RIVALS.items():
            out[f"{kind}: sub-cluster AdaCos - {name}"] = (
                (1.0, _A, statistic, kind), (-1.0, rival, statistic, kind))
    return out


CRITERIA = {
    "C6.a": {
        "statement": "Under real background noise at 0 dB the anomaly score of sub-cluster "
                     "AdaCos on the auxiliary task listens to the machine: the absolute RISE "
                     "saliency of its score (class-conditional fill) puts more of its mass on "
                     "the bins where the machine signal dominates the noise than their area "
                     "share (chance), and more than the maps of Deep SVDD and of the "
                     "autoencoder do.",
        "comparisons": _comparisons("absolute/machine/class"),
        "delta": DELTA_SHARE, "delta_reason": DELTA_SHARE_REASON,
        "why": "|S| counts every bin whose presence moves the score, up or down: what the "
               "score listens to. The positive part alone (notebook 06's old measure) drops "
               "the bins that lower a distance-to-normal score, i.e. those that make the clip "
               "sound normal, and a score that listens to the machine reacts to the "
               "machine's normal sound as much as to its fault.",
        "criterion": _COMBINE,
    },
    "C6.b": {
        "statement": "The bins that raise sub-cluster AdaCos's anomaly score (positive RISE "
                     "saliency, class-conditional fill) lie on the machine-dominated bins "
                     "more than chance and more than for Deep SVDD and the autoencoder.",
        "comparisons": _comparisons("positive/machine/class"),
        "delta": DELTA_SHARE, "delta_reason": DELTA_SHARE_REASON,
        "why": "the anomaly evidence of a score that listens to the machine comes from the "
               "machine's sound (the anomaly is part of the machine signal): notebook 06's "
               "old criterion, decided with the fill that keeps a masked copy in the clip's "
               "class.",
        "criterion": _COMBINE,
    },
    "C6.c": {
        "statement": "The bins that lower sub-cluster AdaCos's anomaly score (negative RISE "
                     "saliency, class-conditional fill) lie on the machine-dominated bins "
                     "more than chance and more than for Deep SVDD and the autoencoder.",
        "comparisons": _comparisons("negative/machine/class"),
        "delta": DELTA_SHARE, "delta_reason": DELTA_SHARE_REASON,
        "why": "the normality evidence of a score that listens to the machine is the "
               "machine's normal sound; a score distracted by the noise finds it in the noise.",
        "criterion": _COMBINE,
    },
    "C6.d": {
        "statement": "The positive RISE saliency of sub-cluster AdaCos's anomaly score "
                     "(class-conditional fill) falls on the anomaly (the bins where it is "
                     "audible in the clip) more than the anomaly region's area share and more "
                     "than that of Deep SVDD and of the autoencoder.",
        "comparisons": _comparisons("positive/anomaly/class"),
        "delta": DELTA_SHARE, "delta_reason": DELTA_SHARE_REASON,
        "why": "a score that detects the anomaly because it listens to the machine rises on "
               "the machine's fault; where a map puts the score's rise is what the paper's "
               "maps show a reader. The region is where the anomaly raises the clip's power "
               "by >= 3 dB (for the tone it lies in notebook 06's box, whose share is "
               "reported beside).",
        "criterion": _COMBINE,
    },
    "C6.e": {
        "statement": "Deleting the machine-dominated bins (replacing them by an independent "
                     "stretch of the same noise at the same level) changes sub-cluster AdaCos's "
                     "anomaly score more than deleting the noise-dominated bins the same way, "
                     "and its machine share of the deletion effect is larger than that of Deep "
                     "SVDD and of the autoencoder.",
        "comparisons": _comparisons("deletion", chance="even (1/2)"),
        "delta": DELTA_DELETION, "delta_reason": DELTA_DELETION_REASON,
        "why": "the same question without RISE's masks and fills: the score of a detector "
               "that listens to the machine moves when the machine is taken out and stays "
               "when the noise is exchanged for other noise; per clip the share "
               "|d_machine| / (|d_machine| + |d_noise|) (1/2 when both are 0) is scale-free, "
               "so methods with different score units compare.",
        "criterion": "each interval by claims.decide; SUPPORTED iff all decided ones are, "
                     "CONTRADICTED if any is (claims.all_of)",
    },
}
for _spec in CRITERIA.values():
    _spec.update(gate_auc=GATE_AUC, gate_reason=GATE_REASON)

# The claim of the abstract as a whole (README: C6): the score listens to the machine, by
# RISE (C6.a) and without RISE's masks and fills (C6.e); C6.b-C6.d say which way and where,
# and are reported beside it.
OVERALL = {
    "id": "C6",
    "parts": ("C6.a", "C6.e"),
    "statement": "Under real background noise the anomaly score of sub-cluster AdaCos on the "
                 "auxiliary task listens to the machine rather than to the noise, more than "
                 "chance and more than the scores of Deep SVDD and of the autoencoder do: by "
                 "its RISE saliency (C6.a) and by deleting the machine or the noise (C6.e).",
    "criterion": "claims.all_of of the parts' verdicts",
}

# Reported beside the verdicts, with intervals, not decided: every method's positive,
# negative and absolute share minus chance on every region under both fills and on both
# anomaly kinds (notebook 06's box on the tone clips only: it is the tone's box), and
# notebook 06's old measure (positive share, class-averaged fill) on the same records. The
# negative and absolute shares on the anomaly region have no direction the claims predict.
_REPORTED_REGIONS = {"tone": REGIONS, "harmonic": ("machine", "anomaly")}
REPORTED = {
    "shares vs chance": {
        f"{kind}: {LABELS[m]} {measure}/{region}/{fill}": (
            (1.0, m, f"{measure}/{region}/{fill}", kind),
            (-1.0, "chance", f"{measure}/{region}/{fill}", kind))
        for kind in ANOMALIES for fill in FILLS for region in _REPORTED_REGIONS[kind]
        for measure in MEASURES for m in METHODS},
    "trained - twin": {
        f"{kind}: {LABELS[m]} {measure}/{region}/{TWIN_FILL}": (
            (1.0, m, f"{measure}/{region}/{TWIN_FILL}", kind),
            (-1.0, f"{m} twin", f"{measure}/{region}/{TWIN_FILL}", kind))
        for kind in ANOMALIES for region in _REPORTED_REGIONS[kind] for measure in MEASURES
        for m in METHODS},
    "old measure": {
        f"{kind}: {LABELS[m]} positive/{region}/average": (
            (1.0, m, f"positive/{region}/average", kind),
            (-1.0, "chance", f"positive/{region}/average", kind))
        for kind in ANOMALIES for region in _REPORTED_REGIONS[kind] for m in METHODS},
}


register(Experiment(name="c6", version="1", units=units, compute=compute, preflight=preflight,
                    description="C6: what the anomaly score listens to, RISE on synthetic "
                                "machine sounds in real noise"))

if __name__ == "__main__":
    result = calibrate()
    CALIBRATION_FILE.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))

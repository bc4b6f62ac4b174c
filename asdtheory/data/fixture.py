"""A small synthetic dataset in the DCASE 2023 Task 2 development layout, written to disk.

:func:`write_dcase2023_dataset` renders clips of :func:`asdtheory.data.synthetic.machine_sounds`
as 16-bit PCM mono WAV files under the folders and names that :mod:`asdtheory.data.dcase` and
:mod:`asdtheory.audio` read::

    <root>/dcase2023t2/dev_data/raw/<machine>/train/section_00_source_train_normal_0000_<attrs>.wav
    <root>/dcase2023t2/dev_data/raw/<machine>/test/section_00_target_test_anomaly_0003_<attrs>.wav
    <root>/noise/<name>.wav

(``<attrs>``: the clip's attribute string, e.g. ``pat_00`` or ``m-n_W``)

so that ``dcase.official_split(root, machine)``, ``dcase.load_noise(name, root)`` and
``asdtheory.detect.dcase.run(RunConfig(data=root, protocol="full", ...))`` run on it without
the real recordings: for tests, examples and trying the pipeline out. With
``machines=("valve",), test_normal=50, test_anomaly=50`` the valve test folder also has the
shape ``dcase.valve_mini_protocol`` needs (25 normal clips per attribute, 100 anomalies).

What it holds, per machine type and section (the DCASE 2023 design scaled down):

* two source-domain and two target-domain attribute values per machine type, written in the
  official ``key_value`` style (:data:`ATTRIBUTES`; ``pat_00`` .. ``pat_03`` as in the real
  valve data, the other values are illustrative). The clips of a domain are spread evenly
  over its values, in a shuffled index order (as in the real data);
* training clips: normal only, ``train_source`` source-domain and ``train_target``
  target-domain clips (DCASE 2023: 990 and 10);
* test clips: ``test_normal`` normal and ``test_anomaly`` anomalous clips in each domain
  (DCASE 2023: 50 each);
* background recordings ``noise/<name>.wav``: pink noise (power ~ 1/f above 20 Hz).

Every (machine type, section) is one synthetic machine of its own (its own ``machine_key``;
the attribute values are the attributes of :func:`~asdtheory.data.synthetic.machine_sounds`,
so the target domain is a shifted condition of the same machine), and its training and test
clips are independent clips of that one machine. A machine's clips do not depend on which
other machine types or sections are written, only on ``key``, the machine type, the section
and the counts. Everything is synthetic: no recordings are copied, so the files carry no
licence obligations.

Example::

    import jax
    from asdtheory.data import dcase
    from asdtheory.data.fixture import write_dcase2023_dataset

    root = write_dcase2023_dataset("/tmp/asd-fixture", key=jax.random.key(0))
    split = dcase.official_split(root, "fan")   # 18 training clips, 20 test clips
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import jax
import numpy as np
import soundfile as sf

from asdtheory._validation import check_scalar
from asdtheory.data.dcase import DEV_MACHINES_2023, ClipInfo
from asdtheory.data.synthetic import ANOMALY_TYPES, machine_sounds

__all__ = ["ATTRIBUTES", "write_dcase2023_dataset"]

# (source values, target values) per machine type, in the key_value style of the DCASE 2023
# names. Valve's are the real ones; the others are illustrative values of the official keys.
ATTRIBUTES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType({
    "bearing": (("vel_6_loc_A", "vel_10_loc_A"), ("vel_14_loc_B", "vel_18_loc_B")),
    "fan": (("m-n_W", "m-n_X"), ("m-n_Y", "m-n_Z")),
    "gearbox": (("volt_1.0_wt_30", "volt_1.5_wt_30"), ("volt_2.0_wt_50", "volt_2.5_wt_50")),
    "slider": (("vel_300_ac_0.02", "vel_400_ac_0.02"), ("vel_600_ac_0.06", "vel_700_ac_0.06")),
    "ToyCar": (("car_A1_spd_28V_mic_1_noise_1", "car_A2_spd_28V_mic_1_noise_1"),
               ("car_C1_spd_31V_mic_1_noise_1", "car_C2_spd_31V_mic_1_noise_1")),
    "ToyTrain": (("car_A1_spd_6_mic_1_noise_1", "car_A2_spd_6_mic_1_noise_1"),
                 ("car_C1_spd_8_mic_1_noise_1", "car_C2_spd_8_mic_1_noise_1")),
    "valve": (("pat_00", "pat_01"), ("pat_02", "pat_03")),
})

_NOISE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NOISE_STD = 0.1  # standard deviation of the written noise (peaks stay well inside 16 bits)
_CHUNK = 32  # clips synthesised at a time (a memory bound; the clips do not depend on it)
# fold_in tags of the independent streams drawn from ``key``.
_MACHINES, _CLIPS, _ORDER, _NOISE = range(4)


def _check_key(key) -> None:
    typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype,
                                                                  jax.dtypes.prng_key)
    legacy = (isinstance(key, jax.Array) and key.dtype == np.uint32 and key.shape == (2,))
    if not ((typed and key.shape == ()) or legacy):
        raise ValueError(f"key must be a single JAX PRNG key, e.g. jax.random.key(0), got "
                         f"{key!r}.")


def _check_names(values, name: str, allowed: Sequence[str] | None = None) -> tuple:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of names, got the string {values!r}; write "
                         f"{name}=({values!r},).")
    values = tuple(values)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} holds duplicates: {values!r}.")
    if allowed is not None:
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise ValueError(f"{name} must be a non-empty list of DCASE 2023 development "
                             f"machine types {DEV_MACHINES_2023}, got {values!r}.")
    return values


def _spread(count: int, values: tuple[str, ...]) -> list[str]:
    """``count`` attribute values, as evenly as possible (the first values get one more)."""
    per, extra = divmod(count, len(values))
    return [v for i, v in enumerate(values) for _ in range(per + (i < extra))]


def _to_pcm16(wave: np.ndarray, what: str) -> np.ndarray:
    peak = float(np.max(np.abs(wave)))
    if peak > 1.0:
        raise ValueError(f"{what} peaks at {peak:.2f}, beyond the 16-bit range [-1, 1]; lower "
                         "anomaly_strength or level_spread_db.")
    return np.round(wave * 32767.0).astype(np.int16)


def _write(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    sf.write(path, _to_pcm16(wave, str(path.name)), sample_rate, subtype="PCM_16", format="WAV")


def _pink_noise(key, num_samples: int, sample_rate: int) -> np.ndarray:
    """Gaussian noise with power ~ 1/f above 20 Hz, standard deviation _NOISE_STD."""
    white = np.asarray(jax.random.normal(key, (num_samples,)), np.float64)
    freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.maximum(freqs, 20.0)), n=num_samples)
    pink -= pink.mean()
    return (_NOISE_STD * pink / pink.std()).astype(np.float32)


def write_dcase2023_dataset(
    root, *, key: jax.Array, machines: Sequence[str] = ("fan", "gearbox", "valve"),
    sections: Sequence[int] = (0,), train_source: int = 16, train_target: int = 2,
    test_normal: int = 5, test_anomaly: int = 5, seconds: float = 10.0,
    sample_rate: int = 16000, anomaly_types: tuple[str, ...] = ("harmonic", "line", "clicks"),
    anomaly_strength: float = 1.0, level_spread_db: float = 3.0,
    noise: Sequence[str] = ("doing_the_dishes",), noise_seconds: float = 30.0,
    overwrite: bool = False,
) -> Path:
    """Writes a small synthetic DCASE 2023 Task 2 development dataset under ``root``.

    Layout, attributes and the synthetic machines: see the module docstring. Per machine type
    and section: ``train_source`` + ``train_target`` normal training clips, and in each domain
    ``test_normal`` normal + ``test_anomaly`` anomalous test clips, spread evenly over the
    domain's two attribute values (:data:`ATTRIBUTES`). Clip indices count from 0000 within
    each (section, domain, split, label) group. File names are ``ClipInfo(...).filename``, so
    ``dcase.parse_filename`` reads back exactly the fields written. The defaults give, per
    machine type, 16 source + 2 target training clips (8 and 1 per attribute value: enough
    source clips for the 16 k-means centres of the systems of ``detect.systems``) and 20 test
    clips; the three default machine types take ~37 MB and ~6 s on one CPU core (mostly
    compiling the synthesis, once per process, clip length and count).

    Args:
      root: dataset root (created if needed); ``dcase2023t2/`` and ``noise/`` go below it.
      key: JAX PRNG key; the files are a deterministic function of it and the arguments.
      machines: machine types, a subset of ``dcase.DEV_MACHINES_2023``.
      sections: section numbers 0..99 (DCASE 2023 development data: section 00 only).
      train_source, train_target: normal training clips per section in each domain (>= 1).
      test_normal, test_anomaly: normal and anomalous test clips per section and domain.
      seconds, sample_rate: clip length and rate (DCASE 2023: 10 s at 16 kHz).
      anomaly_types, anomaly_strength, level_spread_db: passed to ``machine_sounds`` (its
        anomaly types, their strength, and the per-clip level spread in dB); the anomalous
        clips of each attribute value cycle through ``anomaly_types``.
      noise: names of background recordings to write as ``noise/<name>.wav`` (pink noise;
        ``()`` for none), e.g. the default ``"doing_the_dishes"`` for
        ``RunConfig(noise="doing_the_dishes", snr=...)``.
      noise_seconds: length of each noise recording.
      overwrite: replace existing data: the WAV files in ``<machine>/train`` and
        ``<machine>/test`` of the machine types written, and noise files of the same names.
        Without it an existing non-empty machine folder or noise file is an error.

    Returns:
      ``Path(root)``, to pass to ``dcase.official_split`` / ``RunConfig(data=...)``.

    Raises:
      ValueError: bad arguments, existing data without ``overwrite=True``, or a clip that
        would exceed the 16-bit range. Every check on arguments and existing files runs
        before anything is written.
    """
    _check_key(key)
    machines = _check_names(machines, "machines", DEV_MACHINES_2023)
    sections = _check_names(sections, "sections")
    if not sections or not all(isinstance(s, int | np.integer) and not isinstance(s, bool)
                               and 0 <= s <= 99 for s in sections):
        raise ValueError(f"sections must be a non-empty list of integers in 0..99, got "
                         f"{sections!r}.")
    counts = dict(train_source=train_source, train_target=train_target,
                  test_normal=test_normal, test_anomaly=test_anomaly)
    for name, value in counts.items():
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        check_scalar(value, name, low=1, integer=True)
    check_scalar(sample_rate, "sample_rate", low=8000, integer=True)
    check_scalar(seconds, "seconds", low=1.0 / sample_rate)
    check_scalar(noise_seconds, "noise_seconds", low=1.0 / sample_rate)
    anomaly_types = tuple(anomaly_types)
    if not anomaly_types or any(t not in ANOMALY_TYPES[1:] for t in anomaly_types):
        raise ValueError(f"anomaly_types must be a non-empty tuple of {ANOMALY_TYPES[1:]}, got "
                         f"{anomaly_types!r}.")
    check_scalar(anomaly_strength, "anomaly_strength", low=0.0)
    check_scalar(level_spread_db, "level_spread_db", low=0.0)
    noise = tuple(n.removesuffix(".wav") if isinstance(n, str) else n
                  for n in _check_names(noise or (), "noise"))
    bad = [n for n in noise if not (isinstance(n, str) and _NOISE_NAME.fullmatch(n))]
    if bad or len(set(noise)) != len(noise):
        raise ValueError(f"noise must be file names without folders (letters, digits, '_', "
                         f"'-', '.'), each once, e.g. ('doing_the_dishes',); got {noise!r}.")

    root = Path(root).expanduser()
    raw = root / "dcase2023t2" / "dev_data" / "raw"
    targets = [raw / m for m in machines] + [root / "noise" / f"{n}.wav" for n in noise]
    folders = [root, raw, *targets[: len(machines)], root / "noise"]
    folders += [raw / m / s for m in machines for s in ("train", "test")]
    for path in folders:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a folder.")
    for path in targets[len(machines):]:
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a noise recording; remove it.")
    occupied = [p for p in targets if p.is_file() or (p.is_dir() and any(p.iterdir()))]
    if occupied and not overwrite:
        raise ValueError(f"refusing to write over existing data: {', '.join(map(str, occupied))}"
                         "; pass overwrite=True to replace it, or choose an empty root.")

    for machine in machines:
        folders = {s: raw / machine / s for s in ("train", "test")}
        for folder in folders.values():
            for old in folder.glob("*.wav"):  # only with overwrite=True (checked above)
                old.unlink()
            folder.mkdir(parents=True, exist_ok=True)
        for section in sections:
            _write_section(folders, machine, int(section), key=key, counts=counts,
                           seconds=float(seconds), sample_rate=int(sample_rate),
                           anomaly_types=anomaly_types, anomaly_strength=anomaly_strength,
                           level_spread_db=level_spread_db)
    if noise:
        (root / "noise").mkdir(parents=True, exist_ok=True)
    num_samples = round(noise_seconds * sample_rate)
    for name in noise:
        # The name, not its position, picks the recording: ("a", "b") and ("b",) share "b".
        name_key = jax.random.fold_in(jax.random.fold_in(key, _NOISE),
                                      zlib.crc32(name.encode()) & 0x7FFFFFFF)
        _write(root / "noise" / f"{name}.wav",
               _pink_noise(name_key, num_samples, int(sample_rate)), int(sample_rate))
    return root


def _write_section(folders: dict[str, Path], machine: str, section: int, *, key, counts,
                   seconds, sample_rate, anomaly_types, anomaly_strength,
                   level_spread_db) -> None:
    """Synthesises and writes the clips of one machine type and section (one machine)."""
    source, target = ATTRIBUTES[machine]
    values = source + target
    # Per attribute value: normal training clips, normal test clips, anomalous test clips.
    groups = [("train", "source", "normal", _spread(counts["train_source"], source)),
              ("train", "target", "normal", _spread(counts["train_target"], target)),
              ("test", "source", "normal", _spread(counts["test_normal"], source)),
              ("test", "target", "normal", _spread(counts["test_normal"], target)),
              ("test", "source", "anomaly", _spread(counts["test_anomaly"], source)),
              ("test", "target", "anomaly", _spread(counts["test_anomaly"], target))]
    normals = max(sum(g[3].count(v) for g in groups if g[2] == "normal") for v in values)
    anomalies = max(sum(g[3].count(v) for g in groups if g[2] == "anomaly") for v in values)
    per_class = normals + anomalies

    # One machine per (type, section), identified by its name so that it does not depend on
    # the other machine types or sections asked for.
    tag = (DEV_MACHINES_2023.index(machine), section)
    stream = lambda which: jax.random.fold_in(jax.random.fold_in(
        jax.random.fold_in(key, which), tag[0]), tag[1])
    sounds = machine_sounds(stream(_CLIPS), machine_key=stream(_MACHINES), num_machines=1,
                            num_attributes=len(values), clips_per_class=per_class,
                            duration=seconds, sample_rate=sample_rate,
                            anomaly_fraction=anomalies / per_class, anomaly_types=anomaly_types,
                            anomaly_strength=anomaly_strength, level_spread_db=level_spread_db,
                            chunk_size=_CHUNK)
    is_anomaly = sounds.is_anomaly.reshape(len(values), per_class)
    if not (is_anomaly[:, normals:].all() and not is_anomaly[:, :normals].any()):
        raise RuntimeError("machine_sounds did not place the anomalous clips last in each class.")
    waves = sounds.waveforms.reshape(len(values), per_class, -1)

    # Clips are taken in order from each attribute value's normal and anomalous clips.
    taken = {(v, label): 0 for v in values for label in ("normal", "anomaly")}
    order_key = stream(_ORDER)
    for number, (split, domain, label, attrs) in enumerate(groups):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(order_key, number),
                                                  len(attrs)))
        for index, position in enumerate(order.tolist()):
            attr = attrs[position]
            start = 0 if label == "normal" else normals
            wave = waves[values.index(attr), start + taken[attr, label]]
            taken[attr, label] += 1
            parts = attr.split("_")
            info = ClipInfo(path=folders[split], machine=machine, section=section,
                            domain=domain, split=split, label=label, index=index,
                            attributes=dict(zip(parts[::2], parts[1::2], strict=True)),
                            attribute_string=attr)
            _write(folders[split] / info.filename, wave, sample_rate)

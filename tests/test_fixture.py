"""The synthetic DCASE 2023 layout of data.fixture: names, splits, audio format, determinism."""

from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile as sf

from asdtheory import audio
from asdtheory.data import dcase
from asdtheory.data.fixture import ATTRIBUTES, write_dcase2023_dataset

MACHINES = ("fan", "gearbox", "valve")
SHORT = 0.25  # seconds: for the tests in which the clip length does not matter


def _raw(root: Path) -> Path:
    return root / "dcase2023t2" / "dev_data" / "raw"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory) -> Path:
    """The default dataset (10-s clips, three machine types, one noise recording)."""
    root = tmp_path_factory.mktemp("default")
    assert write_dcase2023_dataset(root, key=jax.random.key(0)) == root
    return root


@pytest.fixture(scope="module")
def short_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("short")
    write_dcase2023_dataset(root, key=jax.random.key(1), seconds=SHORT)
    return root


def test_file_names_parse_back_to_the_fields_written(default_root):
    paths = sorted(_raw(default_root).rglob("*.wav"))
    assert len(paths) == 3 * 38
    indices = {}
    for path in paths:
        info = dcase.parse_filename(path)
        assert info.filename == path.name
        assert info.machine == path.parent.parent.name in MACHINES
        assert info.split == path.parent.name
        assert info.section == 0
        source, target = ATTRIBUTES[info.machine]
        assert info.attribute_string in (source if info.domain == "source" else target)
        parts = info.attribute_string.split("_")
        assert dict(info.attributes) == dict(zip(parts[::2], parts[1::2], strict=True))
        assert info.attributes  # never noAttribute
        group = (info.machine, info.domain, info.split, info.label)
        indices.setdefault(group, []).append(info.index)
    for group, found in indices.items():  # numbered 0000.. within each group
        assert sorted(found) == list(range(len(found))), group
    # The attribute values are not in blocks of consecutive indices (as in the real data).
    train = sorted(_raw(default_root).glob("valve/train/*source*"))
    attrs = [dcase.parse_filename(p).attribute_string for p in train]
    assert attrs != sorted(attrs)


@pytest.mark.parametrize("machine", MACHINES)
def test_official_split_has_the_dcase_2023_design(default_root, machine):
    split = dcase.official_split(default_root, machine)
    (s0, s1), (t0, t1) = ATTRIBUTES[machine]
    train = Counter((c.domain, c.label, c.attribute_key) for c in split.train)
    assert train == {("source", "normal", s0): 8, ("source", "normal", s1): 8,
                     ("target", "normal", t0): 1, ("target", "normal", t1): 1}
    test = Counter((c.domain, c.label, c.attribute_key) for c in split.test)
    assert test == {(domain, label, a): n for domain, (a0, a1) in
                    (("source", (s0, s1)), ("target", (t0, t1)))
                    for label in ("normal", "anomaly") for a, n in ((a0, 3), (a1, 2))}
    assert {c.split for c in split.train} == {"train"}
    assert {c.split for c in split.test} == {"test"}
    assert {c.machine for c in split.train + split.test} == {machine}
    # Auxiliary classes (section, attribute) of the detector: four, in both domains.
    assert len({(c.section, c.attribute_key) for c in split.train}) == 4


def test_clips_and_noise_are_16_bit_mono_16_khz_of_the_asked_length(default_root, short_root):
    for root, seconds in ((default_root, 10.0), (short_root, SHORT)):
        for path in sorted(_raw(root).rglob("*.wav")):
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype, info.format) == (
                16000, 1, "PCM_16", "WAV")
            wave = audio.load(path)
            assert wave.shape == (round(seconds * 16000),) and wave.dtype == np.float32
            assert 0.01 < np.sqrt(np.mean(wave**2)) < 0.5  # machine-sound level, not silence
            assert np.allclose(wave * 32768, np.round(wave * 32768))  # 16-bit values
    noise = dcase.load_noise("doing_the_dishes", default_root)
    assert noise.shape == (30 * 16000,)
    assert sf.info(default_root / "noise" / "doing_the_dishes.wav").subtype == "PCM_16"
    assert 0.05 < noise.std() < 0.2
    # Pink: more power below 1 kHz than above 4 kHz per hertz.
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(noise.size, 1 / 16000)
    assert power[(freqs > 50) & (freqs < 1000)].mean() > 4 * power[freqs > 4000].mean()


def test_the_anomalous_test_clips_and_only_they_hold_anomalies(tmp_path):
    """With clicks as the only anomaly type, every anomaly file has a click (a jump of the
    second difference far above the smooth tone's) and no normal file has one."""
    root = write_dcase2023_dataset(tmp_path, key=jax.random.key(5), seconds=SHORT,
                                   anomaly_types=("clicks",), noise=())
    for machine in MACHINES:
        split = dcase.official_split(root, machine)
        for clip in split.train + split.test:
            wave = audio.load(clip.path)
            jump = np.abs(np.diff(wave, 2)).max() / wave.std()
            assert (jump > 4.5) == clip.is_anomaly, (clip.path.name, jump)


def _mean_spectrum(paths) -> np.ndarray:
    spectrum = np.mean([np.abs(np.fft.rfft(audio.load(p))) for p in paths], axis=0)
    return spectrum / np.linalg.norm(spectrum)


def test_each_machine_type_is_its_own_machine_in_train_and_test(short_root):
    raw = _raw(short_root)
    train = {m: _mean_spectrum(sorted(raw.glob(f"{m}/train/*_source_*"))) for m in MACHINES}
    test = {m: _mean_spectrum(sorted(raw.glob(f"{m}/test/*_source_test_normal_*")))
            for m in MACHINES}
    for m in MACHINES:
        same = float(train[m] @ test[m])
        others = [float(train[m] @ test[o]) for o in MACHINES if o != m]
        assert same > 0.9 and same > max(others) + 0.3, (m, same, others)


def test_same_key_gives_the_same_bytes_another_key_other_audio(tmp_path, short_root):
    again = write_dcase2023_dataset(tmp_path / "again", key=jax.random.key(1), seconds=SHORT)
    first, second = _files(short_root), _files(again)
    assert len(first) == 3 * 38 + 1 and first == second
    other = _files(write_dcase2023_dataset(tmp_path / "other", key=jax.random.key(2),
                                           seconds=SHORT))
    assert len(other) == len(first)
    # No clip (nor the noise) of the other key equals, or is close to, one of the first.
    clips = lambda root, files: np.stack([audio.load(root / name)[:400] for name in files])
    a, b = clips(short_root, first), clips(tmp_path / "other", other)
    distance = np.abs(a[:, None] - b[None]).max(axis=-1)
    assert distance.min() > 0.01


def test_a_machine_does_not_depend_on_the_other_machines_written(tmp_path, short_root):
    alone = write_dcase2023_dataset(tmp_path, key=jax.random.key(1), machines=("valve",),
                                    seconds=SHORT, noise=())
    files = _files(alone)
    assert files and all(name.startswith("dcase2023t2/dev_data/raw/valve/") for name in files)
    assert files == {k: v for k, v in _files(short_root).items() if "/valve/" in k}
    assert not (alone / "noise").exists()


def test_counts_sections_and_noise_names_are_honoured(tmp_path):
    root = write_dcase2023_dataset(tmp_path, key=jax.random.key(3), machines=("ToyCar",),
                                   sections=(0, 2), train_source=12, train_target=1,
                                   test_normal=2, test_anomaly=1, seconds=SHORT,
                                   noise=("running_tap.wav", "cat"), noise_seconds=1.0)
    split = dcase.official_split(root, "ToyCar")
    count = lambda clips: Counter((c.section, c.domain, c.label) for c in clips)
    assert count(split.train) == {(s, d, "normal"): n for s in (0, 2)
                                  for d, n in (("source", 12), ("target", 1))}
    assert count(split.test) == {(s, d, label): n for s in (0, 2) for d in ("source", "target")
                                 for label, n in (("normal", 2), ("anomaly", 1))}
    assert sorted(p.name for p in (root / "noise").iterdir()) == ["cat.wav", "running_tap.wav"]
    assert dcase.load_noise("cat", root).shape == (16000,)
    # Sections are different machines.
    raw = _raw(root) / "ToyCar" / "train"
    s0 = _mean_spectrum(sorted(raw.glob("section_00_source_*")))
    s2 = _mean_spectrum(sorted(raw.glob("section_02_source_*")))
    assert float(s0 @ s2) < 0.8


def test_the_valve_mini_protocol_runs_on_a_large_enough_valve_fixture(tmp_path):
    root = write_dcase2023_dataset(tmp_path, key=jax.random.key(4), machines=("valve",),
                                   test_normal=50, test_anomaly=50, seconds=SHORT, noise=())
    split = dcase.valve_mini_protocol(root)
    assert (len(split.train), len(split.test)) == (60, 140)


BAD_ARGUMENTS = {
    "unknown-machine": ({"machines": ("fan", "drill")},
                        r"DCASE 2023 development machine types \('bearing'"),
    "no-machines": ({"machines": ()}, "non-empty"),
    "machines-string": ({"machines": "fan"}, r"write machines=\('fan',\)"),
    "duplicate-machines": ({"machines": ("fan", "fan")}, "duplicates"),
    "section-100": ({"sections": (100,)}, "0..99"),
    "no-sections": ({"sections": ()}, "0..99"),
    "train_source-0": ({"train_source": 0}, "train_source must be >= 1"),
    "train_target-0": ({"train_target": 0}, "train_target must be >= 1"),
    "test_normal-0": ({"test_normal": 0}, "test_normal must be >= 1"),
    "test_anomaly-0": ({"test_anomaly": 0}, "test_anomaly must be >= 1"),
    "count-not-integer": ({"test_anomaly": 1.5}, "must be an integer"),
    "count-bool": ({"train_source": True}, "train_source must be an integer >= 1"),
    "seconds-0": ({"seconds": 0.0}, "seconds must be >="),
    "anomaly-type-none": ({"anomaly_types": ("none",)}, "anomaly_types"),
    "noise-path": ({"noise": ("../escape",)}, "without folders"),
    "key-int": ({"key": 0}, r"jax.random.key\(0\)"),
    "key-batch": ({"key": jax.random.split(jax.random.key(0))}, "single JAX PRNG key"),
}


@pytest.mark.parametrize("kwargs,match", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, match):
    kwargs = {"key": jax.random.key(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        write_dcase2023_dataset(tmp_path / "root", **kwargs)
    assert not (tmp_path / "root").exists()


def test_existing_data_is_refused_unless_overwrite(tmp_path):
    stale = _raw(tmp_path) / "fan" / "train" / "section_00_source_train_normal_0099_m-n_W.wav"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    kwargs = dict(key=jax.random.key(1), machines=("valve", "fan"), seconds=SHORT)
    with pytest.raises(ValueError, match=r"refusing to write over .*fan.*overwrite=True"):
        write_dcase2023_dataset(tmp_path, **kwargs)
    assert not (_raw(tmp_path) / "valve").exists() and not (tmp_path / "noise").exists()
    # An existing noise recording of the same name is kept too.
    noise = tmp_path / "other" / "noise" / "doing_the_dishes.wav"
    noise.parent.mkdir(parents=True)
    noise.write_bytes(b"real recording")
    with pytest.raises(ValueError, match=r"noise/doing_the_dishes\.wav"):
        write_dcase2023_dataset(tmp_path / "other", **kwargs)
    assert noise.read_bytes() == b"real recording"
    assert not (tmp_path / "other" / "dcase2023t2").exists()
    # overwrite=True replaces the machine's clips: the stale one is gone.
    write_dcase2023_dataset(tmp_path, **kwargs, overwrite=True)
    assert not stale.exists()
    assert len(dcase.official_split(tmp_path, "fan").train) == 18

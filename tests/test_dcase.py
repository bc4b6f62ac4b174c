"""DCASE file names, dataset index, data root and the valve mini protocol."""

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asdtheory.data import dcase

VALVE = Path("dcase2023t2/dev_data/raw/valve/test")


# ------------------------------------------------------------------------------ file names


def test_every_shared_clip_round_trips(shared_data):
    paths = sorted((shared_data / VALVE).glob("*.wav"))
    assert len(paths) == 200
    for path in paths:
        info = dcase.parse_filename(path)
        assert info.filename == path.name
        assert (info.machine, info.split, info.section) == ("valve", "test", 0)
        assert info.attributes == {"pat": info.attribute_key[4:]}
        assert f"_{info.domain}_test_{info.label}_{info.index:04d}_" in path.name


@pytest.mark.parametrize(
    "name,fields",
    [
        ("normal_id_00_00000000.wav",
         dict(section=0, domain="source", split=None, label="normal", index=0, attributes={})),
        ("anomaly_id_02_00000010.wav",
         dict(section=2, domain="source", split="test", label="anomaly", index=10,
              attributes={})),
        ("section_00_source_train_normal_0000_pat_00.wav",
         dict(section=0, domain="source", split="train", label="normal", index=0,
              attributes={"pat": "00"})),
        ("section_00_target_test_anomaly_0044_pat_03.wav",
         dict(section=0, domain="target", split="test", label="anomaly", index=44,
              attributes={"pat": "03"})),
        ("section_01_source_train_normal_0123_m-n_X.wav",
         dict(section=1, domain="source", split="train", label="normal", index=123,
              attributes={"m-n": "X"})),
        ("section_00_target_train_normal_0007_vel_9_loc_A.wav",
         dict(section=0, domain="target", split="train", label="normal", index=7,
              attributes={"vel": "9", "loc": "A"})),
        ("section_03_source_test_normal_0099_car_C2_spd_34V_mic_1.wav",
         dict(section=3, domain="source", split="test", label="normal", index=99,
              attributes={"car": "C2", "spd": "34V", "mic": "1"})),
        ("section_00_source_train_normal_0000_noAttribute.wav",
         dict(section=0, domain="source", split="train", label="normal", index=0,
              attributes={})),
        ("section_02_source_test_anomaly_0012.wav",
         dict(section=2, domain="source", split="test", label="anomaly", index=12,
              attributes={})),
        ("section_00_0042.wav",
         dict(section=0, domain=None, split="test", label=None, index=42, attributes={})),
    ],
)
def test_example_names(name, fields):
    info = dcase.parse_filename(name)
    assert {k: getattr(info, k) for k in fields} == fields
    assert info.machine is None
    assert info.filename == name


def test_attribute_key_and_read_only_record():
    info = dcase.parse_filename("section_00_source_train_normal_0000_vel_9_loc_A.wav")
    assert info.attribute_key == "vel_9_loc_A"
    assert dcase.parse_filename("section_00_source_train_normal_0000_noAttribute.wav"
                                ).attribute_key == "noAttribute"
    assert dcase.parse_filename("normal_id_04_00000001.wav").attribute_key == "noAttribute"
    with pytest.raises(TypeError):
        info.attributes["vel"] = "1"
    with pytest.raises(AttributeError):
        info.index = 3
    assert hash(info) == hash(dcase.parse_filename(info.filename))


def test_folders_give_machine_and_split():
    info = dcase.parse_filename(Path("data/fan/train/normal_id_00_00000000.wav"))
    assert (info.machine, info.split, info.section) == ("fan", "train", 0)
    assert dcase.parse_filename("fan/train/normal_id_00_00000000.wav",
                                machine="pump").machine == "pump"


@pytest.mark.parametrize(
    "name",
    ["section_00_source_train_normal_000_pat_00.wav",  # 3-digit index
     "section_00_middle_train_normal_0000_pat_00.wav",  # unknown domain
     "section_00_source_train_normal_0000_pat_00.flac",
     "normal_id_0_00000000.wav",
     "clip.wav"],
)
def test_unknown_names_are_rejected_with_the_patterns(name):
    with pytest.raises(ValueError) as err:
        dcase.parse_filename(name)
    message = str(err.value)
    assert f"{name!r} is not a DCASE Task 2 clip name" in message
    assert "section_<NN>_<source|target>_<train|test>_<normal|anomaly>_<NNNN>" in message
    assert "normal|anomaly_id_<NN>_<NNNNNNNN>.wav" in message


def test_malformed_attributes_are_rejected():
    with pytest.raises(ValueError, match=r"cannot parse the attributes 'pat_00_loc' of "
                                         r"'section_00_source_train_normal_0000_pat_00_loc.wav'"):
        dcase.parse_filename("section_00_source_train_normal_0000_pat_00_loc.wav")


_token = st.text(alphabet="abcXYZ019-.", min_size=1, max_size=4).filter(
    lambda t: t != "noAttribute")


@given(section=st.integers(0, 99), domain=st.sampled_from(["source", "target"]),
       split=st.sampled_from(["train", "test"]), label=st.sampled_from(["normal", "anomaly"]),
       index=st.integers(0, 9999), pairs=st.lists(st.tuples(_token, _token), max_size=3,
                                                  unique_by=lambda p: p[0]))
def test_section_names_round_trip(section, domain, split, label, index, pairs):
    tail = "".join(f"_{k}_{v}" for k, v in pairs)
    name = f"section_{section:02d}_{domain}_{split}_{label}_{index:04d}{tail}.wav"
    info = dcase.parse_filename(name)
    assert (info.section, info.domain, info.split, info.label, info.index) == (
        section, domain, split, label, index)
    assert dict(info.attributes) == dict(pairs)
    assert info.filename == name


# ----------------------------------------------------------------------------- data root


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ASDTHEORY_DATA", str(tmp_path / "env"))
    assert dcase.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert dcase.data_root() == tmp_path / "env"
    monkeypatch.delenv("ASDTHEORY_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert dcase.data_root() == tmp_path / "cache" / "asdtheory"  # Linux, as in CI
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dcase.data_root() == tmp_path / "home" / ".cache" / "asdtheory"


# ------------------------------------------------------------------------- index, splits


def test_index_dataset_on_shared_data(shared_data):
    clips = dcase.index_dataset(shared_data)
    assert len(clips) == 200
    assert {(c.machine, c.split) for c in clips} == {("valve", "test")}
    assert [c.path.name for c in clips] == sorted(p.name for p in (shared_data / VALVE).iterdir())


def test_index_folder_strict_or_skipping(shared_data):
    # The DCASE 2023 valve test clips, the DCASE 2020 slider training clips (2020 names) and
    # the MIMII fan clips (00000000.wav in id_00/<label>/); the noise recordings are none.
    clips = dcase.index_folder(shared_data, skip_unknown=True)
    counts = Counter((c.machine, c.split, c.year_format) for c in clips)
    assert counts == {("valve", "test", 2021): 200, ("slider", "train", 2020): 75,
                      ("fan", None, "mimii"): 40}
    with pytest.raises(ValueError, match=r"'\w+\.wav' is not a DCASE Task 2 clip"):
        dcase.index_folder(shared_data)


def test_index_dataset_errors_say_what_to_fetch(shared_data, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"machine 'fan'.*asdtheory data fetch --year 2023 "
                                                r"--machine fan.*dev_fan\.zip"):
        dcase.index_dataset(shared_data, machines=["fan"])
    with pytest.raises(FileNotFoundError, match=r"no DCASE 2023 dev_data folder at .*--machine "
                                                r"<machine>"):
        dcase.index_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"machines must be a list of names.*\['valve'\]"):
        dcase.index_dataset(shared_data, machines="valve")
    with pytest.raises(ValueError, match="year must be one of"):
        dcase.index_dataset(shared_data, year=2019)
    with pytest.raises(ValueError, match="dataset must be one of"):
        dcase.index_dataset(shared_data, dataset="dev")


def _touch_layout(root: Path, files: dict[str, list[str]]) -> None:
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).touch()


def test_official_split(tmp_path):
    raw = "dcase2023t2/dev_data/raw/fan"
    train = [f"section_00_source_train_normal_{i:04d}_m-n_W.wav" for i in range(3)]
    test = ["section_00_target_test_anomaly_0000_m-n_X.wav"]
    _touch_layout(tmp_path, {f"{raw}/train": train, f"{raw}/test": test})
    split = dcase.official_split(tmp_path, "fan")
    assert [c.path.name for c in split.train] == train
    assert [c.path.name for c in split.test] == test
    assert split.name == "dcase2023 dev_data fan official"
    (tmp_path / raw / "test" / test[0]).unlink()
    (tmp_path / raw / "test").rmdir()
    with pytest.raises(FileNotFoundError, match=r"'fan' has no test clips .*dev_fan\.zip"):
        dcase.official_split(tmp_path, "fan")


def test_dcase2020_layout_puts_the_machine_id_in_the_section(shared_data, tmp_path):
    clips = dcase.index_dataset(shared_data, year=2020)
    assert [c.path.name for c in clips] == [f"normal_id_00_{i:08d}.wav" for i in range(75)]
    assert {(c.machine, c.section, c.domain, c.split, c.label, c.year_format)
            for c in clips} == {("slider", 0, "source", "train", "normal", 2020)}
    raw = "dcase2020t2/dev_data/raw/fan"
    _touch_layout(tmp_path, {f"{raw}/train": ["normal_id_02_00000000.wav"],
                             f"{raw}/test": ["anomaly_id_02_00000003.wav",
                                             "normal_id_04_00000001.wav"]})
    split = dcase.official_split(tmp_path, "fan", year=2020)
    assert split.name == "dcase2020 dev_data fan official"
    assert [(c.section, c.domain, c.split, c.label) for c in split.train + split.test] == [
        (2, "source", "train", "normal"), (2, "source", "test", "anomaly"),
        (4, "source", "test", "normal")]
    assert dcase.training_split(tmp_path, "fan", year=2020).train == split.train


def test_training_split_of_the_shared_slider_clips(shared_data):
    split = dcase.training_split(shared_data, "slider", year=2020)
    assert split.name == "dcase2020 dev_data slider train only"
    assert split.test == [] and len(split.train) == 75
    assert split.train == dcase.index_dataset(shared_data, year=2020, machines=["slider"])
    with pytest.raises(FileNotFoundError, match=r"DCASE 2023 dev_data machine 'valve' has no "
                                                r"train clips under .*valve/train; download"):
        dcase.training_split(shared_data, "valve")


def test_valve_mini_protocol_matches_a_naive_reading_of_design(shared_data):
    split = dcase.valve_mini_protocol(shared_data)
    assert dcase.valve_mini_protocol(shared_data, fold=0) == split  # existing results use it
    assert split.name == "valve mini"
    names = sorted(os.listdir(shared_data / VALVE))
    expected_train = []
    for pat in ("00", "01", "02", "03"):
        mine = [n for n in names if "_normal_" in n and n.endswith(f"pat_{pat}.wav")]
        mine.sort(key=lambda n: int(re.search(r"_(\d{4})_", n).group(1)))
        assert len(mine) == 25
        expected_train += mine[:15]
    assert [c.path.name for c in split.train] == expected_train
    assert sorted(c.path.name for c in split.test) == sorted(set(names) - set(expected_train))
    test = split.test
    assert len(split.train) == 60 and len(test) == 140
    assert sum(c.label == "anomaly" for c in test) == 100
    assert sum(c.label == "normal" and c.domain == "source" for c in test) == 20
    assert sum(c.label == "normal" and c.domain == "target" for c in test) == 20
    assert {c.attribute_key for c in split.train} == {"pat_00", "pat_01", "pat_02", "pat_03"}


def test_valve_mini_fold_1_tests_other_normals_with_the_same_counts(shared_data):
    first, second = (dcase.valve_mini_protocol(shared_data, fold=k) for k in (0, 1))
    assert second.name == "valve mini fold 1"
    assert (len(second.train), len(second.test)) == (60, 140)
    normals = lambda clips: {c.path.name for c in clips if c.label == "normal"}
    assert not normals(first.test) & normals(second.test)
    assert {c.path.name for c in first.test if c.is_anomaly} == \
        {c.path.name for c in second.test if c.is_anomaly}
    for key in ("pat_00", "pat_01", "pat_02", "pat_03"):
        ordered = sorted((c for c in first.train + first.test
                          if c.label == "normal" and c.attribute_key == key),
                         key=lambda c: c.index)
        mine = [c for c in second.train if c.attribute_key == key]
        assert mine == ordered[:5] + ordered[15:]
        assert sorted(normals(c for c in second.test if c.attribute_key == key)) == \
            sorted(c.path.name for c in ordered[5:15])
    assert sum(c.domain == "target" and c.label == "normal" for c in second.test) == 20
    for fold, message in ((2, "fold must be 0 to 1"), (-1, "fold must be an integer >= 0"),
                          (True, "fold must be an integer")):
        with pytest.raises(ValueError, match=message):
            dcase.valve_mini_protocol(shared_data, fold=fold)


def test_valve_mini_protocol_rejects_incomplete_data(shared_data, tmp_path):
    folder = tmp_path / VALVE
    folder.mkdir(parents=True)
    for path in sorted((shared_data / VALVE).glob("*.wav"))[:150]:
        (folder / path.name).symlink_to(path)
    with pytest.raises(ValueError, match=r"needs the 200 section-00 test clips of dev_valve\.zip"):
        dcase.valve_mini_protocol(tmp_path)

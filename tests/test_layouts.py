"""The MIMII layout and its channels, and mixed sample rates: every real machine at hand is
read, and a folder that a run could not use stops before any training."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdtheory import audio
from asdtheory.data import audit, dcase
from asdtheory.detect import dcase as detect_dcase
from asdtheory.repro import cli

FAN = Path("mimii/fan/id_00")
VALVE = Path("dcase2023t2/dev_data/raw/valve/test")


def write_mimii(root: Path, *, machine="fan", machine_id="00", normal=4, abnormal=2,
                channels=1, rates=None, seconds=0.1) -> Path:
    """Noise clips ``<root>/mimii/<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav``; each
    channel holds its own number plus noise, so that a channel can be recognised.
    ``rates``: {(label, index): sample rate} for clips off 16 kHz."""
    rng = np.random.default_rng(0)
    for label, count in (("normal", normal), ("abnormal", abnormal)):
        folder = root / "mimii" / machine / f"id_{machine_id}" / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rate = (rates or {}).get((label, index), 16000)
            frames = round(seconds * rate)
            data = 0.01 * rng.standard_normal((frames, channels)) + 0.1 * np.arange(channels)
            sf.write(folder / f"{index:08d}.wav", data.astype(np.float32), rate,
                     subtype="FLOAT")
    return root


# ---------------------------------------------------------------------------- MIMII names


def test_mimii_paths_give_machine_id_and_label():
    info = dcase.parse_filename("data/mimii/pump/id_06/abnormal/00000012.wav")
    assert (info.machine, info.section, info.domain, info.split, info.label, info.index,
            info.year_format, info.channel) == ("pump", 6, "source", None, "anomaly", 12,
                                                "mimii", None)
    assert info.filename == "00000012.wav"
    assert dcase.parse_filename("id_00/normal/00000000.wav").machine is None
    for name in ("00000000.wav", "fan/id_0/normal/00000000.wav",
                 "fan/id_00/broken/00000000.wav", "fan/id_00/normal/0000000.wav"):
        with pytest.raises(ValueError, match=r"<machine>/id_<NN>/<normal\|abnormal>/"):
            dcase.parse_filename(name)


# ------------------------------------------------------------------- the real fan clips


def test_index_mimii_reads_the_shared_fan_clips(shared_data):
    clips = dcase.index_mimii(shared_data)
    assert len(clips) == 40
    assert {(c.machine, c.section, c.domain, c.split, c.channel) for c in clips} == {
        ("fan", 0, "source", None, None)}
    for label, folder in (("anomaly", "abnormal"), ("normal", "normal")):
        mine = [c for c in clips if c.label == label]
        assert [c.path for c in mine] == [shared_data / FAN / folder / f"{i:08d}.wav"
                                          for i in range(20)]
    # The shared clips are channel 0 of the 8-channel originals, stored mono.
    chosen = dcase.index_mimii(shared_data, machines=["fan"], channel=0)
    assert {c.channel for c in chosen} == {0}
    np.testing.assert_array_equal(audio.load(chosen[0].path, channel=chosen[0].channel),
                                  audio.load(clips[0].path))
    with pytest.raises(ValueError, match=r"channel=1, but 40 of the 40 MIMII clips .* have no "
                                         r"channel 1, e\.g\. .*00000000\.wav \(mono: channel 0 "
                                         r"only\); pass a channel they have"):
        dcase.index_mimii(shared_data, channel=1)
    assert audit.clip_problems(chosen, seconds=10.0) == []


# --------------------------------------------------------------------------- channels


def test_multichannel_mimii_stops_without_a_channel_and_names_the_option(tmp_path, capsys):
    root = write_mimii(tmp_path, channels=8)
    with pytest.raises(ValueError, match=r"6 of the 6 MIMII clips under .* hold several "
                                         r"channels, e\.g\. .*id_00/abnormal/00000000\.wav \(8 "
                                         r"channels.*choose the one to keep with channel= \(0 "
                                         r"to 7\)"):
        dcase.index_mimii(root)
    for bad in (-1, 1.0, True, "0"):
        with pytest.raises(ValueError, match="channel must be None or a channel number"):
            dcase.index_mimii(root, channel=bad)
    with pytest.raises(ValueError, match=r"channel=8, .*\(8 channels: 0 to 7\)"):
        dcase.index_mimii(root, channel=8)
    clips = dcase.index_mimii(root, channel=3)
    assert {c.channel for c in clips} == {3}
    # The loaders keep the chosen channel, and the check before a run accepts it.
    data, _ = sf.read(clips[0].path, dtype="float32")
    np.testing.assert_array_equal(detect_dcase.load_clips(clips[:1], 0.1)[0], data[:, 3])
    assert audit.clip_problems(clips, seconds=0.1) == []
    # Without a choice, the check names the channel problem of every file.
    unchosen = dcase.index_folder(root)
    problems = audit.clip_problems(unchosen, seconds=0.1)
    assert [(p.path, p.kind, p.reason) for p in problems] == [
        (c.path, "channel", "8 channels and none chosen") for c in unchosen]
    assert "choose the channel to keep with channel=" in str(audit.ClipProblems(problems))
    # The command line reports them with its flag, and accepts the folder with it.
    assert cli.main(["data", "info", str(root), "--seconds", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "id_00/normal/00000003.wav: 8 channels and none chosen" in err
    assert "pass --channel N, the microphone to keep" in err
    assert cli.main(["data", "info", str(root), "--seconds", "0.1", "--channel", "7"]) == 0
    assert cli.main(["data", "info", str(root), "--seconds", "0.1", "--channel", "8"]) == 1
    assert "8 channel(s), no channel 8" in capsys.readouterr().err


def test_index_mimii_errors_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no MIMII folder at .*mimii; unpack the MIMII "
                                                r"archives"):
        dcase.index_mimii(tmp_path)
    root = write_mimii(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no id_<NN>/normal/ or id_<NN>/abnormal/ "
                                                r"folder for MIMII machine 'pump'"):
        dcase.index_mimii(root, machines=["pump"])
    with pytest.raises(ValueError, match=r"write machines=\['fan'\]"):
        dcase.index_mimii(root, machines="fan")
    (root / FAN / "normal" / "copy of 00000000.wav").touch()
    (root / FAN / "abnormal" / "7.wav").touch()
    with pytest.raises(ValueError, match=r"2 file\(s\) without a MIMII clip name: .*7\.wav, "
                                         r".*copy of 00000000\.wav; expected <NNNNNNNN>\.wav"):
        dcase.index_mimii(root)
    problems = audit.folder_problems(root, seconds=0.1)
    assert [(p.path.name, p.kind, p.reason) for p in problems] == [
        ("7.wav", "name", "not a MIMII clip name (8 digits)"),
        ("copy of 00000000.wav", "name", "not a MIMII clip name (8 digits)")]


# ------------------------------------------------------------------- mixed sample rates


def test_a_folder_mixing_sample_rates_stops_and_names_the_files(tmp_path):
    root = write_mimii(tmp_path, rates={("normal", 1): 44100, ("abnormal", 0): 8000})
    with pytest.raises(ValueError) as raised:
        dcase.index_mimii(root)
    message = str(raised.value)
    assert message.startswith(f"the MIMII clips under {root / 'mimii'} mix sample rates (1 at "
                              "8000 Hz, 4 at 16000 Hz, 1 at 44100 Hz); not at 16000 Hz: ")
    assert f"{root / FAN / 'abnormal' / '00000000.wav'} (8000 Hz)" in message
    assert f"{root / FAN / 'normal' / '00000001.wav'} (44100 Hz)" in message
    assert "00000002.wav" not in message and "Resample them to one rate" in message
    # The check before a run names them as well, one problem per file.
    problems = audit.folder_problems(root, seconds=0.1)
    assert sorted((p.path.relative_to(root / FAN).as_posix(), p.kind) for p in problems) == [
        ("abnormal/00000000.wav", "sample_rate"), ("normal/00000001.wav", "sample_rate")]


# ------------------------------------------------------------------------------ protocols


def test_fan_protocol_folds_on_the_shared_clips(shared_data):
    folds = [dcase.mimii_protocol(shared_data, machine="fan", fold=k) for k in (0, 1)]
    assert [s.name for s in folds] == ["mimii fan fold 0 of 2", "mimii fan fold 1 of 2"]
    abnormal = {shared_data / FAN / "abnormal" / f"{i:08d}.wav" for i in range(20)}
    normal = [shared_data / FAN / "normal" / f"{i:08d}.wav" for i in range(20)]
    assert [c.path for c in folds[0].train] == normal[:10]
    assert [c.path for c in folds[1].train] == normal[10:]
    tested = []
    for split in folds:
        paths = {c.path for c in split.test}
        assert not paths & {c.path for c in split.train}
        assert abnormal <= paths and len(paths) == 30
        assert all(not c.is_anomaly for c in split.train)
        tested.append(paths - abnormal)
    assert not tested[0] & tested[1] and tested[0] | tested[1] == set(normal)
    assert dcase.mimii_protocol(shared_data) == folds[0]


def test_mimii_folds_cover_every_normal_clip_once_per_machine_id(tmp_path):
    root = write_mimii(tmp_path, normal=7, abnormal=2)
    write_mimii(root, machine_id="02", normal=3, abnormal=1)
    splits = [dcase.mimii_protocol(root, folds=3, fold=k) for k in range(3)]
    for section, count in ((0, 7), (2, 3)):
        held = [sorted(c.index for c in s.test if c.section == section and not c.is_anomaly)
                for s in splits]
        assert sorted(i for block in held for i in block) == list(range(count))
        assert held[0] == list(range(count - len(held[0]), count))  # the last block first
        for split, block in zip(splits, held, strict=True):
            assert {c.index for c in split.train if c.section == section} == \
                set(range(count)) - set(block)
            assert sum(c.is_anomaly and c.section == section for c in split.test) == (
                2 if section == 0 else 1)
    assert [len(b) for b in ([c for c in s.test if c.section == 0 and not c.is_anomaly]
                             for s in splits)] == [2, 2, 3]
    for kwargs, message in ((dict(folds=1), "folds must be an integer >= 2"),
                            (dict(fold=2), "fold must be 0 to 1"),
                            (dict(folds=4), r"needs at least 4 normal clips .* fan id_02 has 3 "
                                            "normal and 1 abnormal clips")):
        with pytest.raises(ValueError, match=message):
            dcase.mimii_protocol(root, **kwargs)


def test_mimii_protocol_on_multichannel_recordings_needs_a_channel(tmp_path):
    root = write_mimii(tmp_path, channels=8)
    with pytest.raises(ValueError, match=r"choose the one to keep with channel="):
        dcase.mimii_protocol(root)
    split = dcase.mimii_protocol(root, channel=5)
    assert {c.channel for c in split.train + split.test} == {5}


# ------------------------------------------------------------------ several datasets in one


def test_combine_pools_every_real_machine_at_hand(shared_data):
    parts = (dcase.valve_mini_protocol(shared_data),
             dcase.training_split(shared_data, "slider", year=2020),
             dcase.mimii_protocol(shared_data, machine="fan", channel=0))
    split = dcase.combine(*parts)
    assert split.name == ("valve mini + dcase2020 dev_data slider train only + mimii fan fold 0 "
                          "of 2")
    assert split.train == parts[0].train + parts[1].train + parts[2].train
    assert split.test == parts[0].test + parts[2].test
    assert Counter((c.machine, c.year_format) for c in split.train) == {
        ("valve", 2021): 60, ("slider", 2020): 75, ("fan", "mimii"): 10}
    assert Counter(c.machine for c in split.test) == {"valve": 140, "fan": 30}
    # What a run checks before training: every clip fits (16 kHz, mono or channel 0, 10 s).
    assert audit.clip_problems(split.train + split.test, seconds=10.0) == []
    assert dcase.combine(parts[0], name="valve").name == "valve"


def test_combine_rejects_a_clip_twice_and_two_datasets_as_one_machine(shared_data, tmp_path):
    valve = dcase.valve_mini_protocol(shared_data)
    with pytest.raises(ValueError, match=r"^200 clip\(s\) come twice \(same machine, section, "
                                         r"label and file name\): [^;]*/section_00_source_test_"
                                         r"normal_0002_pat_00\.wav; .* and 180 more\. Combine "
                                         "splits of different clips"):
        dcase.combine(valve, valve)
    copy = tmp_path / "copy" / VALVE
    copy.mkdir(parents=True)
    for clip in valve.train + valve.test:  # a second copy of the data
        (copy / clip.path.name).symlink_to(clip.path)
    with pytest.raises(ValueError, match=r"^200 clip\(s\) come twice .*: \S*/dcase2023t2/dev_"
                                         r"data/raw/valve/test/(\S*) and \S*/copy/\S*/\1; "):
        dcase.combine(valve, dcase.valve_mini_protocol(tmp_path / "copy"))
    # Two folds of a protocol hold the same clips (fold 1 tests clips fold 0 trains on).
    with pytest.raises(ValueError, match=r"^200 clip\(s\) come twice"):
        dcase.combine(valve, dcase.valve_mini_protocol(shared_data, fold=1))
    # MIMII's file names repeat across label folders and machine IDs: not twice.
    root = write_mimii(tmp_path, normal=2, abnormal=2)
    write_mimii(root, machine_id="02", normal=2, abnormal=2)
    fan = dcase.mimii_protocol(root)
    assert len(dcase.combine(fan).test) == 6
    raw = root / "dcase2023t2" / "dev_data" / "raw" / "fan"
    for part in ("train", "test"):
        (raw / part).mkdir(parents=True)
        sf.write(raw / part / f"section_00_source_{part}_normal_0000_m-n_W.wav",
                 np.zeros(1600, np.float32), 16000)
    with pytest.raises(ValueError, match=r"from two datasets: fan 00 \(DCASE 2021-2024, "
                                         r"MIMII\)\. They are different machines"):
        dcase.combine(dcase.official_split(root, "fan"), fan)
    with pytest.raises(ValueError, match="combine takes one or more Split"):
        dcase.combine()
    with pytest.raises(ValueError, match=r"got \['list'\]"):
        dcase.combine(valve.train)


def test_combined_datasets_mixing_sample_rates_stop_and_name_the_files(tmp_path):
    root = write_mimii(tmp_path)
    train = root / "dcase2020t2" / "dev_data" / "raw" / "slider" / "train"
    train.mkdir(parents=True)
    for index, rate in enumerate((44100, 44100, 16000)):
        sf.write(train / f"normal_id_00_{index:08d}.wav", np.zeros(rate // 10, np.float32), rate)
    parts = dcase.mimii_protocol(root), dcase.training_split(root, "slider", year=2020)
    with pytest.raises(ValueError) as raised:
        dcase.combine(*parts)
    message = str(raised.value)
    assert message.startswith("the clips of mimii fan fold 0 of 2 + dcase2020 dev_data slider "
                              "train only mix sample rates (7 at 16000 Hz, 2 at 44100 Hz); "
                              "not at 16000 Hz: ")
    assert f"{train / 'normal_id_00_00000000.wav'} (44100 Hz), " \
           f"{train / 'normal_id_00_00000001.wav'} (44100 Hz). Resample" in message
    (train / "normal_id_00_00000002.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"1 file\(s\) cannot be read as audio: .*"
                                         r"normal_id_00_00000002\.wav"):
        dcase.combine(*parts)

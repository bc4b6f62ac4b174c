"""DCASE Task 2 (anomalous sound detection) and MIMII datasets: file names, folder layouts,
splits.

Layouts: DCASE, as unpacked by ``asdtheory data fetch``, and MIMII (:func:`index_mimii`)::

    <data root>/dcase<year>t2/<dev_data|eval_data>/raw/<machine>/<train|test>/<clip>.wav
    <data root>/mimii/<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav

File names (:func:`parse_filename`):

* 2020: ``normal_id_00_00000000.wav``, ``anomaly_id_02_00000010.wav`` (machine ID, 8-digit
  index; the split comes from the folder), e.g. the DCASE 2020 development layout
  ``<data root>/dcase2020t2/dev_data/raw/slider/train/normal_id_00_00000000.wav``.
* 2021-2024: ``section_00_source_train_normal_0000_<attributes>.wav`` with attributes
  ``key_value`` pairs (``pat_00``, ``vel_9_loc_A``, ``car_C2_spd_34V_mic_1``, ``m-n_X``) or
  ``noAttribute``, or none (2021).
* Evaluation test clips, whose labels are hidden: ``section_00_0000.wav``.
* MIMII: ``00000000.wav`` (8-digit index) in a ``<machine>/id_<NN>/<normal|abnormal>/``
  folder; machine type, machine ID and label come from the folders.

DCASE 2020 and MIMII have no sections, domains or attributes; their clips carry a machine ID,
and the DCASE 2020 evaluation scores each machine ID on its own. Their :class:`ClipInfo` puts
the machine ID in ``section`` (two digits in tables) and "source" in ``domain``, so that a
table (``evaluation.dcase_table``, one row per machine type and section) has one row per
machine ID; score such rows with ``rules="2020"`` (the 2022-2024 rules need target-domain
normal clips).

Splits (:class:`Split`: which clips train, which test): :func:`official_split` (a machine's
train/ and test/ folders), :func:`training_split` (its train/ folder alone, for a machine whose
test clips are not at hand), :func:`valve_mini_protocol` and :func:`mimii_protocol`
(cross-validation folds on clips without a usable split); :func:`combine` pools splits of
several datasets and data roots for one run.

The DCASE 2021-2024 data (MIMII DG, ToyADMOS2) are CC BY 4.0, the DCASE 2020 and MIMII data
CC BY-SA 4.0; see the data README for the attribution that must accompany any use.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import soundfile as sf

from asdtheory import audio

__all__ = [
    "AT_HAND",
    "CONVENTIONS",
    "DEV_MACHINES_2023",
    "MIMII_MACHINES",
    "ClipInfo",
    "Split",
    "combine",
    "data_root",
    "in_clip_folder",
    "index_dataset",
    "index_folder",
    "index_mimii",
    "machines_at_hand",
    "mimii_protocol",
    "official_split",
    "parse_filename",
    "require_noises",
    "training_split",
    "valve_mini_protocol",
]

DEV_MACHINES_2023 = ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")
YEARS = (2020, 2021, 2022, 2023, 2024)
DATASETS = ("dev_data", "eval_data")
NO_ATTRIBUTE = "noAttribute"
# MIMII's label folders and the labels they stand for.
MIMII_LABELS = MappingProxyType({"normal": "normal", "abnormal": "anomaly"})
MIMII_MACHINES = ("fan", "pump", "slider", "valve")


def data_root(root=None) -> Path:
    """Where datasets live: ``root`` if given, else ``$ASDTHEORY_DATA``, else a per-user cache
    directory (``$XDG_CACHE_HOME/asdtheory`` or ``~/.cache/asdtheory``; ``%LOCALAPPDATA%``
    on Windows, ``~/Library/Caches`` on macOS). The folder need not exist yet."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("ASDTHEORY_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "asdtheory"


def require_noises(names, root=None, *, needed_by: str) -> None:
    """Raises FileNotFoundError, naming ``ASDTHEORY_DATA`` and the folder, unless every real
    background recording of ``names`` is in ``<data root>/noise``: the check an experiment
    that mixes them into every clip runs before any work (``needed_by`` says which)."""
    folder = data_root(root) / "noise"
    missing = [n for n in names if not (folder / f"{n}.wav").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{needed_by} mixes the real noise recordings {', '.join(missing)} into every "
            f"clip, and {folder} lacks them; set ASDTHEORY_DATA to the folder that holds "
            "noise/ (e.g. ../shared/data).")


def load_noise(name: str, root=None, *, sample_rate: int = 16000) -> np.ndarray:
    """Loads a real background recording ``<data root>/noise/<name>.wav`` (see
    :func:`data_root`), e.g. ``"running_tap"``."""
    folder = data_root(root) / "noise"
    path = folder / (name if name.endswith(".wav") else f"{name}.wav")
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"noise recording {name!r} not found in {folder}; available: {available or 'none'}."
        )
    return audio.load(path, sample_rate=sample_rate)


@dataclass(frozen=True)
class ClipInfo:
    """What a DCASE or MIMII clip's path says about it.

    Attributes:
      path: the path (or bare name) that was parsed.
      machine: machine type from the folder (``<machine>/<split>/<file>``,
        ``<machine>/id_<NN>/<label>/<file>``) or the argument, else None.
      section: section number (2021-2024) or machine ID (2020, MIMII).
      domain: "source" or "target"; "source" for 2020 and MIMII clips, which have no domains
        (see the module docstring); None for evaluation test clips.
      split: "train" or "test"; from the name, else the parent folder; None for a bare 2020
        name and for MIMII clips (MIMII has no split; a protocol assigns one).
      label: "normal" or "anomaly"; None for evaluation test clips (labels hidden). MIMII's
        folder ``abnormal`` reads "anomaly".
      index: clip number within its group.
      attributes: read-only mapping of the attribute pairs, e.g. {"pat": "00"}; empty for
        ``noAttribute`` and names without attributes.
      attribute_string: the attribute part of the name exactly as written ("" when absent).
      year_format: naming convention, 2020, 2021 (the section names of 2021-2024) or "mimii".
      channel: the channel of a multi-channel file that loaders keep
        (``audio.load(clip.path, channel=clip.channel)``); None: the file must be mono.
        Chosen with :func:`index_mimii`; a parsed name has None.
    """

    path: Path
    machine: str | None
    section: int
    domain: Literal["source", "target"] | None
    split: Literal["train", "test"] | None
    label: Literal["normal", "anomaly"] | None
    index: int
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    attribute_string: str = ""
    year_format: Literal[2020, 2021, "mimii"] = 2021
    channel: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    @property
    def attribute_key(self) -> str:
        """Stable class name of the attribute combination, e.g. "pat_00" or "noAttribute"
        (also for names without attributes)."""
        return self.attribute_string or NO_ATTRIBUTE

    @property
    def is_anomaly(self) -> bool:
        return self.label == "anomaly"

    @property
    def filename(self) -> str:
        """The file name these fields describe (``parse_filename`` inverts it exactly; a
        MIMII name together with its ``<machine>/id_<NN>/<label>/`` folders)."""
        if self.year_format == "mimii":
            return f"{self.index:08d}.wav"
        if self.year_format == 2020:
            return f"{self.label}_id_{self.section:02d}_{self.index:08d}.wav"
        if self.label is None:
            return f"section_{self.section:02d}_{self.index:04d}.wav"
        tail = f"_{self.attribute_string}" if self.attribute_string else ""
        return (f"section_{self.section:02d}_{self.domain}_{self.split}_{self.label}_"
                f"{self.index:04d}{tail}.wav")


_PATTERN_2020 = re.compile(r"(?P<label>normal|anomaly)_id_(?P<section>\d{2})_(?P<index>\d{8})")
_PATTERN_SECTION = re.compile(
    r"section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
    r"(?P<label>normal|anomaly)_(?P<index>\d{4})(?:_(?P<attributes>.+))?"
)
_PATTERN_EVAL_TEST = re.compile(r"section_(?P<section>\d{2})_(?P<index>\d{4})")
_PATTERN_MIMII = re.compile(r"(?P<index>\d{8})")
_PATTERN_MIMII_ID = re.compile(r"id_(?P<section>\d{2})")
_EXPECTED = (
    "normal|anomaly_id_<NN>_<NNNNNNNN>.wav (2020), "
    "section_<NN>_<source|target>_<train|test>_<normal|anomaly>_<NNNN>[_<attributes>].wav "
    "(2021-2024), section_<NN>_<NNNN>.wav (evaluation test clips) or "
    "<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav (MIMII)"
)


def _parse_attributes(text: str, name: str) -> dict[str, str]:
    if text in ("", NO_ATTRIBUTE):
        return {}
    parts = text.split("_")
    if len(parts) % 2 or not all(parts):
        raise ValueError(
            f"cannot parse the attributes {text!r} of {name!r}: expected key_value pairs such "
            f"as 'pat_00' or 'vel_9_loc_A', or {NO_ATTRIBUTE!r}."
        )
    return dict(zip(parts[::2], parts[1::2], strict=True))


def in_clip_folder(path) -> bool:
    """Whether the file ``path`` lies where clips are read from: a DCASE ``train/`` or
    ``test/`` folder, or a MIMII label folder ``id_<NN>/<normal|abnormal>/``."""
    path = Path(path)
    return path.parent.name in ("train", "test") or (
        path.parent.name in MIMII_LABELS
        and _PATTERN_MIMII_ID.fullmatch(path.parent.parent.name) is not None)


def parse_filename(name, *, machine: str | None = None) -> ClipInfo:
    """Parses a DCASE Task 2 clip name (2020-2024 conventions) or a MIMII clip path (see the
    module docstring).

    ``name`` may be a bare file name or a path; from a path ``.../<machine>/<train|test>/<file>``
    the machine and the split are read off the folders. A MIMII clip needs its folders,
    ``.../<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav``: they give the machine, the
    machine ID and the label. ``machine=`` overrides the folder.
    Raises ValueError quoting the name and the expected patterns when it matches none.
    """
    path = Path(name)
    stem = path.name[:-4] if path.name.endswith(".wav") else None
    parent = path.parent.name
    folder_split = parent if parent in ("train", "test") else None
    if machine is None and folder_split and path.parent.parent.name:
        machine = path.parent.parent.name
    mimii_id = _PATTERN_MIMII_ID.fullmatch(path.parent.parent.name)
    if (stem is not None and parent in MIMII_LABELS and mimii_id
            and _PATTERN_MIMII.fullmatch(stem)):
        return ClipInfo(path=path, machine=machine or path.parent.parent.parent.name or None,
                        section=int(mimii_id["section"]), domain="source", split=None,
                        label=MIMII_LABELS[parent], index=int(stem), year_format="mimii")
    fields = None
    if stem is not None:
        if m := _PATTERN_2020.fullmatch(stem):
            split = folder_split or ("test" if m["label"] == "anomaly" else None)
            fields = dict(domain="source", split=split, label=m["label"], year_format=2020)
        elif m := _PATTERN_SECTION.fullmatch(stem):
            text = m["attributes"] or ""
            fields = dict(domain=m["domain"], split=m["split"], label=m["label"],
                          attributes=_parse_attributes(text, path.name), attribute_string=text)
        elif m := _PATTERN_EVAL_TEST.fullmatch(stem):
            fields = dict(domain=None, split="test", label=None)
    if fields is None:
        raise ValueError(f"{path.name!r} is not a DCASE Task 2 clip name; expected {_EXPECTED}.")
    return ClipInfo(path=path, machine=machine, section=int(m["section"]), index=int(m["index"]),
                    **fields)


def index_folder(folder, *, skip_unknown: bool = False) -> list[ClipInfo]:
    """Every ``*.wav`` clip below ``folder`` (recursively), parsed, sorted by path.

    A file whose name is not a DCASE clip name or MIMII clip path raises ValueError, or is
    left out with ``skip_unknown=True`` (e.g. the background recordings beside the datasets).
    Reads no file: MIMII clips get ``channel=None`` (:func:`index_mimii` chooses a channel and
    checks the files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    clips = []
    for path in sorted(folder.rglob("*.wav")):
        try:
            clips.append(parse_filename(path))
        except ValueError:
            if not skip_unknown:
                raise
    return clips


def _fetch_hint(year: int, dataset: str, machine: str | None) -> str:
    if year == 2023 and dataset == "dev_data":
        which = machine or "<machine>"
        return (f"download it with `asdtheory data fetch --year 2023 --machine {which}` "
                f"(archive dev_{which}.zip of https://zenodo.org/record/7882613)")
    return f"unpack the DCASE {year} Task 2 {dataset} archives there"


def _parse_folders(folders, machine: str, clips: list, unnamed: list) -> None:
    """Appends the parsed ``*.wav`` clips of ``folders`` to ``clips`` and the paths whose names
    do not parse to ``unnamed`` (reported all at once by the caller)."""
    for folder in folders:
        for path in sorted(folder.glob("*.wav")):
            try:
                clips.append(parse_filename(path, machine=machine))
            except ValueError:
                unnamed.append(path)


def index_dataset(root=None, *, year: int = 2023, machines: Sequence[str] | None = None,
                  dataset: str = "dev_data") -> list[ClipInfo]:
    """All clips of ``<root>/dcase<year>t2/<dataset>/raw/<machine>/<train|test>/``.

    ``root`` is resolved by :func:`data_root`. ``machines=None`` takes every machine folder
    present. A machine needs at least one of its train/test folders. Clips are sorted by
    machine, split and file name.
    """
    if year not in YEARS:
        raise ValueError(f"year must be one of {YEARS}, got {year!r}.")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")
    if isinstance(machines, str):
        raise ValueError(f"machines must be a list of names, got the string {machines!r}; "
                         f"write machines=[{machines!r}].")
    raw = data_root(root) / f"dcase{year}t2" / dataset / "raw"
    if machines is None:
        if not raw.is_dir():
            raise FileNotFoundError(f"no DCASE {year} {dataset} folder at {raw}; "
                                    f"{_fetch_hint(year, dataset, None)}.")
        machines = sorted(p.name for p in raw.iterdir() if p.is_dir())
    clips, unnamed = [], []
    for machine in machines:
        splits = [raw / machine / s for s in ("train", "test") if (raw / machine / s).is_dir()]
        if not splits:
            raise FileNotFoundError(f"no train/ or test/ folder for machine {machine!r} under "
                                    f"{raw / machine}; {_fetch_hint(year, dataset, machine)}.")
        _parse_folders(splits, machine, clips, unnamed)
    if unnamed:
        # All at once: renaming files one failed run at a time wastes the user's time.
        raise ValueError(f"{len(unnamed)} file(s) without a DCASE clip name: "
                         + ", ".join(map(str, unnamed)) + f"; expected {_EXPECTED}. Rename "
                         "them or move them out of the train/ and test/ folders.")
    return clips


def _headers(paths: Sequence[Path]) -> list:
    """``soundfile.info`` of every file (headers only); ValueError naming every unreadable
    file."""
    infos, unreadable = [], []
    for path in paths:
        try:
            infos.append(sf.info(str(path)))
        except (RuntimeError, sf.LibsndfileError) as err:
            unreadable.append(f"{path} ({err})")
    if unreadable:
        raise ValueError(f"{len(unreadable)} file(s) cannot be read as audio: "
                         + "; ".join(unreadable) + ". Replace or remove them.")
    return infos


MAX_NAMED = 20  # files an error message names; beyond, it counts them


def _check_one_sample_rate(paths: Sequence[Path], rates: Sequence[int], what: str) -> None:
    """ValueError naming the files whose rate is not the most common one, when ``rates``
    (one per path) hold more than one value."""
    by_rate: dict[int, list[Path]] = {}
    for path, rate in zip(paths, rates, strict=True):
        by_rate.setdefault(int(rate), []).append(path)
    if len(by_rate) < 2:
        return
    common = max(sorted(by_rate), key=lambda r: len(by_rate[r]))
    odd = [f"{p} ({rate} Hz)" for rate in sorted(by_rate) if rate != common
           for p in by_rate[rate]]
    more = (f" and {len(odd) - MAX_NAMED} more (`asdtheory data info` lists every file)"
            if len(odd) > MAX_NAMED else "")
    counts = ", ".join(f"{len(by_rate[r])} at {r} Hz" for r in sorted(by_rate))
    raise ValueError(
        f"{what} mix sample rates ({counts}); not at {common} Hz: "
        + ", ".join(odd[:MAX_NAMED]) + more + ". Resample them to one rate (DCASE and MIMII "
        "clips are 16 kHz) or leave them out.")


def _check_channel(channel) -> None:
    if channel is not None and (isinstance(channel, bool)
                                or not isinstance(channel, int | np.integer) or channel < 0):
        raise ValueError(f"channel must be None or a channel number 0, 1, ..., got "
                         f"{channel!r}.")


def index_mimii(root=None, *, machines: Sequence[str] | None = None,
                channel: int | None = None) -> list[ClipInfo]:
    """All clips of ``<root>/mimii/<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav``.

    ``root`` is resolved by :func:`data_root`; ``machines=None`` takes every machine folder
    present. Each :class:`ClipInfo` has the machine type, the machine ID as ``section``,
    ``domain="source"`` (MIMII has no domains), the label of its folder (``abnormal``:
    "anomaly"), ``split=None`` (MIMII has no train/test split: :func:`mimii_protocol` makes
    one) and ``channel``. Sorted by machine, machine ID, label folder (abnormal, normal) and
    file name.

    The public MIMII archives hold 8-channel recordings (a circular microphone array); a run
    keeps one channel, and which one is the caller's choice: ``channel`` (0, 1, ...) is kept in
    every ClipInfo, and loaders read it (``audio.load(clip.path, channel=clip.channel)``).
    Mono files need no choice (the shared fan clips are channel 0 of the originals).

    Reads every file's header (no samples) and raises ValueError, before anything trains, when
    a file has several channels and ``channel`` is None (naming ``channel=`` and a file), when
    a file lacks ``channel`` (e.g. ``channel=1`` on a mono file), when the clips mix sample
    rates (naming the files off the most common rate), when a header cannot be read or when a
    ``.wav`` file in a label folder has no 8-digit MIMII name. Raises FileNotFoundError when
    ``<root>/mimii`` or a machine's label folders are missing.
    """
    _check_channel(channel)
    if isinstance(machines, str):
        raise ValueError(f"machines must be a list of names, got the string {machines!r}; "
                         f"write machines=[{machines!r}].")
    base = data_root(root) / "mimii"
    hint = ("unpack the MIMII archives (<machine>/id_<NN>/<normal|abnormal>/*.wav, "
            "https://zenodo.org/record/3384388) there")
    if machines is None:
        if not base.is_dir():
            raise FileNotFoundError(f"no MIMII folder at {base}; {hint}.")
        machines = sorted(p.name for p in base.iterdir() if p.is_dir())
    clips, unnamed = [], []
    for machine in machines:
        folders = sorted(f for f in (base / machine).glob("id_*/*")
                         if f.is_dir() and f.name in MIMII_LABELS
                         and _PATTERN_MIMII_ID.fullmatch(f.parent.name))
        if not folders:
            raise FileNotFoundError(f"no id_<NN>/normal/ or id_<NN>/abnormal/ folder for MIMII "
                                    f"machine {machine!r} under {base / machine}; {hint}.")
        _parse_folders(folders, machine, clips, unnamed)
    if unnamed:
        raise ValueError(f"{len(unnamed)} file(s) without a MIMII clip name: "
                         + ", ".join(map(str, unnamed)) + "; expected <NNNNNNNN>.wav (8 "
                         "digits). Rename them or move them out of the normal/ and abnormal/ "
                         "folders.")
    infos = _headers([c.path for c in clips])
    if channel is None:
        several = [(c, i) for c, i in zip(clips, infos, strict=True) if i.channels > 1]
        if several:
            clip, info = several[0]
            raise ValueError(
                f"{len(several)} of the {len(clips)} MIMII clips under {base} hold several "
                f"channels, e.g. {clip.path} ({info.channels} channels: the microphones of "
                f"the array); choose the one to keep with channel= (0 to "
                f"{info.channels - 1}), e.g. channel=0.")
    else:
        lacking = [(c, i) for c, i in zip(clips, infos, strict=True) if i.channels <= channel]
        if lacking:
            clip, info = lacking[0]
            raise ValueError(
                f"channel={channel}, but {len(lacking)} of the {len(clips)} MIMII clips under "
                f"{base} have no channel {channel}, e.g. {clip.path} ("
                + ("mono: channel 0 only" if info.channels == 1
                   else f"{info.channels} channels: 0 to {info.channels - 1}")
                + "); pass a channel they have (channel=0 or None for mono files such as the "
                "shared fan clips, channel 0 of the originals).")
    _check_one_sample_rate([c.path for c in clips], [i.samplerate for i in infos],
                           f"the MIMII clips under {base}")
    return [replace(c, channel=channel) for c in clips]


@dataclass(frozen=True)
class Split:
    """A train/test split of clips; ``name`` says which protocol made it. The clips may come
    from several datasets (:func:`combine`)."""

    name: str
    train: list[ClipInfo]
    test: list[ClipInfo]


def official_split(root, machine: str, *, year: int = 2023,
                   dataset: str = "dev_data") -> Split:
    """The official split of one machine: train = its train/ folder, test = its test/ folder.

    Used in full mode; ``root`` is resolved by :func:`data_root` (None for the default).
    Raises FileNotFoundError (with the archive to fetch) when either folder is missing.
    """
    clips = index_dataset(root, year=year, machines=[machine], dataset=dataset)
    train, test = (_part(clips, part, root, machine, year, dataset) for part in ("train", "test"))
    return Split(name=f"dcase{year} {dataset} {machine} official", train=train, test=test)


def _part(clips, part: str, root, machine: str, year: int, dataset: str) -> list[ClipInfo]:
    found = [c for c in clips if c.split == part]
    if not found:
        raise FileNotFoundError(
            f"DCASE {year} {dataset} machine {machine!r} has no {part} clips under "
            f"{data_root(root) / f'dcase{year}t2' / dataset / 'raw' / machine / part}; "
            f"{_fetch_hint(year, dataset, machine)}."
        )
    return found


def training_split(root, machine: str, *, year: int = 2023,
                   dataset: str = "dev_data") -> Split:
    """The training clips of one DCASE machine and no test clips, for a machine that only
    trains: e.g. the DCASE 2020 slider clips at hand, ``training_split(root, "slider",
    year=2020)`` (the 75 normal clips of machine ID 00; their test clips are not at hand).

    Pooled with other splits (:func:`combine`), its clips add their classes to the training (a
    detector's auxiliary task) and no row to the table. ``root`` is resolved by
    :func:`data_root`. Raises FileNotFoundError (with what to fetch) when the machine has no
    training clips.
    """
    clips = index_dataset(root, year=year, machines=[machine], dataset=dataset)
    return Split(name=f"dcase{year} {dataset} {machine} train only",
                 train=_part(clips, "train", root, machine, year, dataset), test=[])


def _check_fold(fold, folds) -> None:
    for value, name, low in ((folds, "folds", 2), (fold, "fold", 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if fold >= folds:
        raise ValueError(f"fold must be 0 to {folds - 1} (one of the {folds} folds), got "
                         f"{fold!r}.")


VALVE_MINI_TRAIN_PER_ATTRIBUTE = 15
VALVE_MINI_NORMALS_PER_ATTRIBUTE = 25
# Disjoint blocks of test normals per attribute: two blocks of 10 fit in 25 clips.
VALVE_MINI_FOLDS = VALVE_MINI_NORMALS_PER_ATTRIBUTE // (
    VALVE_MINI_NORMALS_PER_ATTRIBUTE - VALVE_MINI_TRAIN_PER_ATTRIBUTE)


def valve_mini_protocol(root=None, *, fold: int = 0) -> Split:
    """The "valve mini" protocol (ci mode) on the 200 DCASE 2023 valve development test clips.

    Input: ``<root>/dcase2023t2/dev_data/raw/valve/test/`` (section 00; 50 clips each of
    source/target x normal/anomaly; attributes pat_00, pat_01 (source), pat_02, pat_03
    (target), 25 normal clips each). For each attribute its 25 normal clips are sorted by file
    index; the first 15 are training clips (60 in all, 4 attribute classes, both domains), the
    last 10 are test clips (40 normal test clips). All 100 anomalous clips are test clips. The
    split depends on file names only, so it is identical on every machine and for anyone who
    downloads ``dev_valve.zip``. Evaluate with the official rules: AUC source on 20 source
    normals + 100 anomalies, AUC target on 20 target normals + 100 anomalies, pAUC on all 140.

    Cross-validation: ``fold=0`` (the default) is the split above. ``fold=1`` tests the 10
    normal clips before those of fold 0 (positions 5-14 of each attribute's index order) and
    trains on the other 15 (positions 0-4 and 15-24): the same counts and evaluation, test
    normals disjoint from fold 0's. Two disjoint blocks of 10 fit in 25 clips, so positions
    0-4 train in both folds (:data:`VALVE_MINI_FOLDS`).

    Returns:
      Split(name="valve mini" (fold 0) or "valve mini fold 1", train=60 clips, test=140
      clips), each list sorted by attribute then index (train) and by file name (test).
    """
    _check_fold(fold, VALVE_MINI_FOLDS)
    clips = [c for c in index_dataset(root, year=2023, machines=["valve"])
             if c.split == "test" and c.section == 0]
    normals: dict[str, list[ClipInfo]] = {}
    for c in clips:
        if c.label == "normal":
            normals.setdefault(c.attribute_key, []).append(c)
    counts = {k: len(v) for k, v in sorted(normals.items())}
    anomalies = [c for c in clips if c.label == "anomaly"]
    if (len(counts) != 4 or set(counts.values()) != {VALVE_MINI_NORMALS_PER_ATTRIBUTE}
            or len(anomalies) != 100):
        raise ValueError(
            "the valve mini protocol needs the 200 section-00 test clips of dev_valve.zip (25 "
            f"normal clips for each of 4 attributes, 100 anomalies); found normals {counts} and "
            f"{len(anomalies)} anomalies under {data_root(root)}."
        )
    held_out = VALVE_MINI_NORMALS_PER_ATTRIBUTE - VALVE_MINI_TRAIN_PER_ATTRIBUTE
    stop = VALVE_MINI_NORMALS_PER_ATTRIBUTE - fold * held_out
    train, test = [], []
    for key in sorted(normals):
        ordered = sorted(normals[key], key=lambda c: c.index)
        train += ordered[:stop - held_out] + ordered[stop:]
        test += ordered[stop - held_out:stop]
    test = sorted(test + anomalies, key=lambda c: c.path.name)
    return Split(name="valve mini" + (f" fold {fold}" if fold else ""), train=train, test=test)


def mimii_protocol(root=None, *, machine: str = "fan", folds: int = 2, fold: int = 0,
                   channel: int | None = None) -> Split:
    """Cross-validation folds on the clips of one MIMII machine type (MIMII has no train/test
    split).

    Input: :func:`index_mimii` ``(root, machines=[machine], channel=channel)``, every machine
    ID present. For each machine ID on its own, the normal clips sorted by file index are cut
    into ``folds`` consecutive blocks (sizes differ by one at most, the larger first); fold
    ``k`` tests the ``k``-th block counted from the end and trains on the other normal clips.
    Every abnormal clip is a test clip, in every fold. The test normals of the folds are thus
    disjoint and hold every normal clip once; fold 0 trains on the first clips, as
    :func:`valve_mini_protocol` does. The split depends on file names only.

    The shared fan clips (machine ID 00, 20 normal and 20 abnormal clips) with ``folds=2``:
    fold 0 trains on the normal clips 00000000-00000009 and tests 00000010-00000019 and the 20
    abnormal clips (10 train, 30 test); fold 1 trains on 00000010-00000019 and tests
    00000000-00000009 and the 20 abnormal clips.

    MIMII has no domains (every clip is "source"): evaluate with
    ``evaluation.dcase_table(..., rules="2020")``, one row (AUC, pAUC) per machine ID.

    Returns:
      Split(name="mimii <machine> fold <k> of <folds>", train, test), each sorted by path.

    Raises ValueError when ``folds`` is not an integer >= 2 or ``fold`` not one of 0 to
    ``folds - 1``, when a machine ID has fewer normal clips than folds or no abnormal clip,
    and in the cases of :func:`index_mimii` (several channels and no ``channel``, mixed
    sample rates, ...).
    """
    _check_fold(fold, folds)
    clips = index_mimii(root, machines=[machine], channel=channel)
    train, test = [], []
    for section in sorted({c.section for c in clips}):
        mine = [c for c in clips if c.section == section]
        normals = sorted((c for c in mine if c.label == "normal"), key=lambda c: c.index)
        anomalies = [c for c in mine if c.label == "anomaly"]
        if len(normals) < folds or not anomalies:
            raise ValueError(
                f"the MIMII protocol with {folds} folds needs at least {folds} normal clips and "
                f"one abnormal clip per machine ID; {machine} id_{section:02d} has "
                f"{len(normals)} normal and {len(anomalies)} abnormal clips under "
                f"{data_root(root) / 'mimii' / machine / f'id_{section:02d}'}.")
        held = set(np.array_split(np.arange(len(normals)), folds)[folds - 1 - fold].tolist())
        train += [c for i, c in enumerate(normals) if i not in held]
        test += [c for i, c in enumerate(normals) if i in held] + anomalies
    return Split(name=f"mimii {machine} fold {fold} of {folds}",
                 train=sorted(train, key=lambda c: c.path),
                 test=sorted(test, key=lambda c: c.path))


CONVENTIONS = MappingProxyType({2020: "DCASE 2020", 2021: "DCASE 2021-2024", "mimii": "MIMII"})
# The real recordings of ../shared/data and what each contributes to a joint task.
AT_HAND = ("valve", "slider", "fan")


def machines_at_hand(root=None, *, machines: Sequence[str] = AT_HAND, fold: int = 0,
                     channel: int | None = None) -> Split:
    """The real recordings at hand, one split for a joint task over their machine types
    (:func:`combine`): the DCASE 2023 valve under :func:`valve_mini_protocol` (fold ``fold``),
    the DCASE 2020 slider's training clips (training only, :func:`training_split`) and the
    MIMII fan under :func:`mimii_protocol` (2 folds, fold ``fold``, ``channel``), in that
    order; ``machines`` takes a subset. ``root`` is resolved by :func:`data_root`.

    Raises ValueError for a machine not in :data:`AT_HAND`, a fold outside the valve's and
    the fan's folds, and in the cases of the protocols and of :func:`combine`.
    """
    if isinstance(machines, str):
        raise ValueError(f"machines must be a list of names, got the string {machines!r}; "
                         f"write machines=[{machines!r}].")
    unknown = [m for m in machines if m not in AT_HAND]
    if unknown or not machines:
        raise ValueError(f"machines at hand are {', '.join(AT_HAND)}; got {list(machines)}.")
    _check_fold(fold, VALVE_MINI_FOLDS)
    parts = {"valve": lambda: valve_mini_protocol(root, fold=fold),
             "slider": lambda: training_split(root, "slider", year=2020),
             "fan": lambda: mimii_protocol(root, machine="fan", folds=VALVE_MINI_FOLDS,
                                           fold=fold, channel=channel)}
    return combine(*(parts[m]() for m in AT_HAND if m in machines),
                   name=f"machines at hand, fold {fold}")


def combine(*splits: Split, name: str | None = None) -> Split:
    """One split of the clips of several, e.g. of several datasets in one run::

        split = combine(valve_mini_protocol(root), training_split(root, "slider", year=2020),
                        mimii_protocol(root, machine="fan"))

    The training clips and the test clips are concatenated in argument order; ``name``
    defaults to the splits' names joined by " + ". Raises ValueError, reading no more than
    the files' headers, when

    * a clip comes twice: clips are told apart by machine type, section (machine ID), label
      and file name -- for DCASE names the file name alone says the rest, MIMII's file names
      repeat in every label folder and machine ID. The same clip from two data roots, or
      training in one split and testing in another, is named;
    * a machine type and section come from two naming conventions (:data:`CONVENTIONS`):
      e.g. DCASE 2023 fan section 00 and MIMII fan ID 00 are different recordings that a
      detector's classes and the table would pool as one machine; give one of them another
      machine name first (``dataclasses.replace(clip, machine="fan-mimii")``). Clips of two
      DCASE years with the same convention cannot be told apart this way;
    * the clips mix sample rates (the files off the most common rate are named), or a
      header cannot be read.
    """
    if not splits or not all(isinstance(s, Split) for s in splits):
        raise ValueError("combine takes one or more Split, e.g. combine(valve_mini_protocol("
                         f"root), mimii_protocol(root)); got {[type(s).__name__ for s in splits]}.")
    clips = [c for s in splits for c in s.train + s.test]
    seen: dict[tuple, Path] = {}
    twice = []
    for clip in clips:
        key = (clip.machine, clip.section, clip.label, clip.path.name)
        if key in seen:
            twice.append(str(clip.path) if clip.path == seen[key]
                         else f"{seen[key]} and {clip.path}")
        else:
            seen[key] = clip.path
    if twice:
        more = f" and {len(twice) - MAX_NAMED} more" if len(twice) > MAX_NAMED else ""
        raise ValueError(
            f"{len(twice)} clip(s) come twice (same machine, section, label and file name): "
            + "; ".join(twice[:MAX_NAMED]) + more + ". Combine splits of different clips: one "
            "copy of each dataset, and a clip either trains or tests.")
    conventions: dict[tuple, set] = {}
    for clip in clips:
        conventions.setdefault((clip.machine, clip.section), set()).add(clip.year_format)
    mixed = [f"{machine} {section:02d} ("
             + ", ".join(CONVENTIONS[v] for v in sorted(found, key=str)) + ")"
             for (machine, section), found in conventions.items() if len(found) > 1]
    if mixed:
        raise ValueError(
            "machine type and section from two datasets: " + "; ".join(mixed) + ". They are "
            "different machines that would be pooled as one; give the clips of one dataset "
            "another machine name first, e.g. dataclasses.replace(clip, machine='fan-mimii').")
    paths = [c.path for c in clips]
    _check_one_sample_rate(paths, [i.samplerate for i in _headers(paths)],
                           "the clips of " + " + ".join(s.name for s in splits))
    return Split(name=name or " + ".join(s.name for s in splits),
                 train=[c for s in splits for c in s.train],
                 test=[c for s in splits for c in s.test])


def summary(clips: list[ClipInfo]) -> str:
    """A table of clip counts per machine, section, split, domain and label, with the
    attribute keys of each group and their counts (split "-" for MIMII clips, which have
    none; "?" where a 2020 name's folder does not say)."""
    groups: dict[tuple, Counter] = {}
    for c in clips:
        split = c.split or ("-" if c.year_format == "mimii" else "?")  # MIMII has no split
        key = (c.machine or "?", f"{c.section:02d}", split, c.domain or "-",
               c.label or "unlabelled")
        groups.setdefault(key, Counter())[c.attribute_key] += 1
    header = ("machine", "section", "split", "domain", "label", "clips", "attributes")
    rows = [header]
    for key in sorted(groups):
        attrs = ", ".join(f"{a} ({n})" for a, n in sorted(groups[key].items()))
        rows.append((*key, str(sum(groups[key].values())), attrs))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    per_machine = Counter(c.machine or "?" for c in clips)
    total = ", ".join(f"{m}: {n}" for m, n in sorted(per_machine.items()))
    return "\n".join([*lines, f"total: {len(clips)} clips ({total})"])

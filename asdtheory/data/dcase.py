"""DCASE Task 2 (anomalous sound detection) datasets: file names, folder layout, splits.

Layout, as unpacked by ``asdtheory data fetch``::

    <data root>/dcase<year>t2/<dev_data|eval_data>/raw/<machine>/<train|test>/<clip>.wav

File names (:func:`parse_filename`):

* 2020: ``normal_id_00_00000000.wav``, ``anomaly_id_02_00000010.wav`` (machine ID, 8-digit
  index; the split comes from the folder), e.g. the DCASE 2020 development layout
  ``<data root>/dcase2020t2/dev_data/raw/slider/train/normal_id_00_00000000.wav``.
* 2021-2024: ``section_00_source_train_normal_0000_<attributes>.wav`` with attributes
  ``key_value`` pairs (``pat_00``, ``vel_9_loc_A``, ``car_C2_spd_34V_mic_1``, ``m-n_X``) or
  ``noAttribute``, or none (2021).
* Evaluation test clips, whose labels are hidden: ``section_00_0000.wav``.

DCASE 2020 has no sections, domains or attributes; its clips carry a machine ID, and the
DCASE 2020 evaluation scores each machine ID on its own. A 2020 :class:`ClipInfo` therefore
puts the machine ID in ``section`` (two digits in tables) and "source" in ``domain``, so that a
table (``evaluation.dcase_table``, one row per machine type and section) has one row per
machine ID; score such rows with ``rules="2020"`` (the 2022-2024 rules need target-domain
normal clips).

The data come from the DCASE challenge (MIMII DG, ToyADMOS2; CC BY 4.0); see the data README.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np

from asdtheory import audio

__all__ = [
    "DEV_MACHINES_2023",
    "ClipInfo",
    "Split",
    "data_root",
    "index_dataset",
    "index_folder",
    "official_split",
    "parse_filename",
    "valve_mini_protocol",
]

DEV_MACHINES_2023 = ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")
YEARS = (2020, 2021, 2022, 2023, 2024)
DATASETS = ("dev_data", "eval_data")
NO_ATTRIBUTE = "noAttribute"


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
    """What a DCASE clip's path says about it.

    Attributes:
      path: the path (or bare name) that was parsed.
      machine: machine type from the folder (``<machine>/<split>/<file>``) or the argument,
        else None.
      section: section number (2021-2024) or machine ID (2020).
      domain: "source" or "target"; "source" for 2020 names, which have no domains (see the
        module docstring); None for evaluation test clips.
      split: "train" or "test"; from the name, else the parent folder; None for a bare 2020
        name.
      label: "normal" or "anomaly"; None for evaluation test clips (labels hidden).
      index: clip number within its group.
      attributes: read-only mapping of the attribute pairs, e.g. {"pat": "00"}; empty for
        ``noAttribute`` and names without attributes.
      attribute_string: the attribute part of the name exactly as written ("" when absent).
      year_format: naming convention, 2020 or 2021 (the section names of 2021-2024).
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
    year_format: Literal[2020, 2021] = 2021

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
        """The file name these fields describe (``parse_filename`` inverts it exactly)."""
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
_EXPECTED = (
    "normal|anomaly_id_<NN>_<NNNNNNNN>.wav (2020), "
    "section_<NN>_<source|target>_<train|test>_<normal|anomaly>_<NNNN>[_<attributes>].wav "
    "(2021-2024) or section_<NN>_<NNNN>.wav (evaluation test clips)"
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


def parse_filename(name, *, machine: str | None = None) -> ClipInfo:
    """Parses a DCASE Task 2 clip name (2020-2024 conventions, see the module docstring).

    ``name`` may be a bare file name or a path; from a path ``.../<machine>/<train|test>/<file>``
    the machine and the split are read off the folders. ``machine=`` overrides the folder.
    Raises ValueError quoting the name and the expected patterns when it matches none.
    """
    path = Path(name)
    stem = path.name[:-4] if path.name.endswith(".wav") else None
    parent = path.parent.name
    folder_split = parent if parent in ("train", "test") else None
    if machine is None and folder_split and path.parent.parent.name:
        machine = path.parent.parent.name
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

    A file whose name is not a DCASE clip name raises ValueError, or is left out with
    ``skip_unknown=True`` (e.g. the background recordings beside the datasets).
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
        for folder in splits:
            for path in sorted(folder.glob("*.wav")):
                try:
                    clips.append(parse_filename(path, machine=machine))
                except ValueError:
                    unnamed.append(path)
    if unnamed:
        # All at once: renaming files one failed run at a time wastes the user's time.
        raise ValueError(f"{len(unnamed)} file(s) without a DCASE clip name: "
                         + ", ".join(map(str, unnamed)) + f"; expected {_EXPECTED}. Rename "
                         "them or move them out of the train/ and test/ folders.")
    return clips


@dataclass(frozen=True)
class Split:
    """A train/test split of clips; ``name`` says which protocol made it."""

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
    train = [c for c in clips if c.split == "train"]
    test = [c for c in clips if c.split == "test"]
    for part, found in (("train", train), ("test", test)):
        if not found:
            raise FileNotFoundError(
                f"DCASE {year} {dataset} machine {machine!r} has no {part} clips under "
                f"{data_root(root) / f'dcase{year}t2' / dataset / 'raw' / machine / part}; "
                f"{_fetch_hint(year, dataset, machine)}."
            )
    return Split(name=f"dcase{year} {dataset} {machine} official", train=train, test=test)


VALVE_MINI_TRAIN_PER_ATTRIBUTE = 15


def valve_mini_protocol(root=None) -> Split:
    """The "valve mini" protocol (ci mode) on the 200 DCASE 2023 valve development test clips.

    Input: ``<root>/dcase2023t2/dev_data/raw/valve/test/`` (section 00; 50 clips each of
    source/target x normal/anomaly; attributes pat_00, pat_01 (source), pat_02, pat_03
    (target), 25 normal clips each). For each attribute its 25 normal clips are sorted by file
    index; the first 15 are training clips (60 in all, 4 attribute classes, both domains), the
    last 10 are test clips (40 normal test clips). All 100 anomalous clips are test clips. The
    split depends on file names only, so it is identical on every machine and for anyone who
    downloads ``dev_valve.zip``. Evaluate with the official rules: AUC source on 20 source
    normals + 100 anomalies, AUC target on 20 target normals + 100 anomalies, pAUC on all 140.

    Returns:
      Split(name="valve mini", train=60 clips, test=140 clips), each list sorted by attribute
      then index (train) and by file name (test).
    """
    clips = [c for c in index_dataset(root, year=2023, machines=["valve"])
             if c.split == "test" and c.section == 0]
    normals: dict[str, list[ClipInfo]] = {}
    for c in clips:
        if c.label == "normal":
            normals.setdefault(c.attribute_key, []).append(c)
    counts = {k: len(v) for k, v in sorted(normals.items())}
    anomalies = [c for c in clips if c.label == "anomaly"]
    if len(counts) != 4 or set(counts.values()) != {25} or len(anomalies) != 100:
        raise ValueError(
            "the valve mini protocol needs the 200 section-00 test clips of dev_valve.zip (25 "
            f"normal clips for each of 4 attributes, 100 anomalies); found normals {counts} and "
            f"{len(anomalies)} anomalies under {data_root(root)}."
        )
    train, test = [], []
    for key in sorted(normals):
        ordered = sorted(normals[key], key=lambda c: c.index)
        train += ordered[:VALVE_MINI_TRAIN_PER_ATTRIBUTE]
        test += ordered[VALVE_MINI_TRAIN_PER_ATTRIBUTE:]
    test = sorted(test + anomalies, key=lambda c: c.path.name)
    return Split(name="valve mini", train=train, test=test)


def summary(clips: list[ClipInfo]) -> str:
    """A table of clip counts per machine, section, split, domain and label, with the
    attribute keys of each group and their counts."""
    groups: dict[tuple, Counter] = {}
    for c in clips:
        key = (c.machine or "?", f"{c.section:02d}", c.split or "?", c.domain or "-",
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

"""Checks of audio files before anything loads them: what ``asdtheory run`` would reject.

A run reads every clip as stored (16 kHz, mono or the one channel its ``ClipInfo`` names, cut
to its first ``seconds``) and fails on
the first file that does not fit; training may already have cost minutes by then, or it fails
after the features of thousands of clips were computed. :func:`clip_problems` reads only the
WAV headers (``soundfile.info``: no samples are decoded), so every bad file of a dataset is
found in about a second and reported at once (:class:`ClipProblems`).

The advice differs with the caller: a library user lowers ``RunConfig.seconds``, a user of
the command line passes ``--seconds``. The problems carry a ``kind``; the caller renders them
with its own advice per kind (:func:`describe`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import soundfile as sf

from asdtheory.data import dcase

__all__ = ["LIBRARY_FIXES", "ClipProblem", "ClipProblems", "clip_problems", "describe",
           "folder_problems"]

SAMPLE_RATE = 16000
KINDS = ("unreadable", "sample_rate", "channels", "channel", "length", "name")
# Advice for callers of the library (asdtheory.detect.dcase.run).
LIBRARY_FIXES = {
    "unreadable": "replace or remove the file",
    "sample_rate": "resample the recordings to 16 kHz (DCASE Task 2 clips are 16 kHz)",
    "channels": "keep one channel (DCASE Task 2 clips are mono)",
    "channel": "choose the channel to keep with channel= (dcase.index_mimii): one the file "
               "has, 0 for a mono file",
    "length": "lower RunConfig.seconds or remove the short clips",
    "name": "rename the file to a DCASE clip name or MIMII clip path "
            "(dcase.parse_filename) or move it out of the dataset",
}


@dataclasses.dataclass(frozen=True)
class ClipProblem:
    """Why the file at ``path`` cannot be used; ``kind`` is one of :data:`KINDS`."""

    path: Path
    kind: str
    reason: str


def describe(problems: Sequence[ClipProblem], fixes: Mapping[str, str]) -> str:
    """One line per problem, then one line of advice per kind of problem found."""
    lines = [f"{len({p.path for p in problems})} file(s) cannot be used:"]
    lines += [f"  {p.path}: {p.reason}" for p in problems]
    for kind in KINDS:
        count = sum(p.kind == kind for p in problems)
        if count:
            lines.append(f"fix ({count} file(s), {kind.replace('_', ' ')}): {fixes[kind]}.")
    return "\n".join(lines)


class ClipProblems(ValueError):
    """Raised with every :class:`ClipProblem` of a dataset at once; ``problems`` holds them
    (a caller may render them with its own advice, :func:`describe`)."""

    def __init__(self, problems: Sequence[ClipProblem], fixes: Mapping[str, str] = LIBRARY_FIXES):
        self.problems = list(problems)
        super().__init__(describe(self.problems, fixes))


def clip_problems(paths: Iterable[Path | dcase.ClipInfo], *, seconds: float,
                  sample_rate: int = SAMPLE_RATE) -> list[ClipProblem]:
    """The problems of each file in ``paths`` that a run cutting every clip to its first
    ``seconds`` at ``sample_rate`` Hz, mono, would hit; empty when every file fits. Reads the
    headers only.

    ``paths`` may hold :class:`~asdtheory.data.dcase.ClipInfo` records: a multi-channel file
    is then fine when its ``channel`` names one of its channels (kind "channel" when it does
    not, or when a MIMII recording has several channels and none is chosen)."""
    problems = []
    for item in paths:
        clip = item if isinstance(item, dcase.ClipInfo) else None
        path = Path(item if clip is None else clip.path)
        channel = None if clip is None else clip.channel
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError) as err:
            problems.append(ClipProblem(path, "unreadable", f"cannot be read as audio ({err})"))
            continue
        if info.samplerate != sample_rate:
            problems.append(ClipProblem(path, "sample_rate", f"sample rate {info.samplerate} "
                                        f"Hz, not {sample_rate} Hz"))
        if channel is not None and not 0 <= channel < info.channels:
            problems.append(ClipProblem(path, "channel", f"{info.channels} channel(s), no "
                                        f"channel {channel}"))
        elif channel is None and info.channels != 1:
            if clip is not None and clip.year_format == "mimii":
                problems.append(ClipProblem(path, "channel",
                                            f"{info.channels} channels and none chosen"))
            else:
                problems.append(ClipProblem(path, "channels",
                                            f"{info.channels} channels, not 1 (mono)"))
        if info.frames < round(seconds * info.samplerate):
            problems.append(ClipProblem(path, "length", f"lasts {info.frames / info.samplerate:.2f}"
                                        f" s, less than the {seconds:g} s every clip is cut to"))
    return problems


def folder_problems(folder, *, seconds: float, sample_rate: int = SAMPLE_RATE,
                    channel: int | None = None) -> list[ClipProblem]:
    """:func:`clip_problems` of every ``*.wav`` below ``folder`` that is a DCASE or MIMII clip
    (``dcase.parse_filename``), the MIMII clips read at ``channel``, and a "name" problem for
    every other ``*.wav`` inside a ``train/``, ``test/`` or MIMII ``normal/`` or ``abnormal/``
    folder (where clips are read from; background recordings elsewhere are fine)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    problems, clips = [], []
    for path in sorted(folder.rglob("*.wav")):
        try:
            clip = dcase.parse_filename(path)
        except ValueError:
            if dcase.in_clip_folder(path):
                problems.append(ClipProblem(path, "name", "not a DCASE clip name"
                                            if path.parent.name in ("train", "test")
                                            else "not a MIMII clip name (8 digits)"))
            continue
        if clip.year_format == "mimii":
            clip = dataclasses.replace(clip, channel=channel)
        clips.append(clip)
    return problems + clip_problems(clips, seconds=seconds, sample_rate=sample_rate)

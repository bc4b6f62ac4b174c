"""Records on disk: one folder per unit, written atomically, verified when read.

``<results>/<experiment>/<size>/<unit id>/`` holds

- ``anomaly_score_<machine>_section_<ss>_test.csv``: one per machine and section, rows
  ``<file name>,<score>`` without a header, as the DCASE 2023 task 2 evaluator reads a
  submission; scores in Python's shortest round-trip notation, so they read back bit for bit;
- ``clips.csv``: the clip metadata (file, machine, section, domain, label and the experiment's
  own columns), with a header, in the order ``compute`` returned the clips;
- ``arrays.npz``: the other arrays the claim needs, compressed, with fixed zip timestamps so
  that the same arrays give the same bytes;
- ``provenance.json``: the unit config and its hash, the experiment version, the library
  version and git commit, the versions of jax, jaxlib, flax, optax and numpy, platform, device,
  CPU model and the number of CPUs the worker could use, XLA flags, wall and CPU seconds,
  optimiser steps, final loss, and the sha256 of every other file of the record
  (:func:`load_record` checks them).

``<results>/<experiment>/<size>/manifest.json`` lists the present records (id, config hash,
bytes) and the library version that wrote them.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

from asdtheory import __version__
from asdtheory.experiments.core import CLIP_COLUMNS, Experiment, Record, Unit

__all__ = ["FORMAT", "CorruptRecordError", "ResultsFolderError", "StoredRecord",
           "check_results_folder", "load_record", "load_table", "provenance_environment",
           "read_manifest", "records_bytes", "results_root", "unsettled_runs", "write_manifest",
           "write_record"]

FORMAT = 1  # the layout of a record folder; a change makes old folders unreadable on purpose
PROVENANCE = "provenance.json"
CLIPS = "clips.csv"
ARRAYS = "arrays.npz"
MANIFEST = "manifest.json"
# Provenance fields that differ between two runs of the same unit on the same machine.
TIMING_FIELDS = ("wall_seconds", "cpu_seconds")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class CorruptRecordError(ValueError):
    """A stored record whose files do not match their hashes (edited, truncated, damaged)."""


class ResultsFolderError(ValueError):
    """A results folder that this library cannot use (another version or layout)."""


def results_root(results_dir=None) -> Path:
    """``results_dir``, else ``$ASDTHEORY_RESULTS``, else ``./results``."""
    return Path(results_dir or os.environ.get("ASDTHEORY_RESULTS", "results"))


def score_file(machine: str, section: str) -> str:
    return f"anomaly_score_{machine}_section_{section}_test.csv"


def recompute_command(name: str, size: str, *, replace_corrupt: bool = False) -> str:
    return (f"asdtheory experiment run {name} --size {size}"
            + (" --replace-corrupt" if replace_corrupt else ""))


# ---------------------------------------------------------------------------- writing

def _column_kind(values: np.ndarray, name: str) -> str:
    if values.dtype.kind in "iu":
        return "int"
    if values.dtype.kind == "f":
        return "float"
    if values.dtype.kind in "US":
        return "str"
    raise ValueError(f"clip column {name!r} has dtype {values.dtype}; use int, float or str.")


def _checked_clips(record: Record) -> tuple[dict[str, np.ndarray], np.ndarray]:
    missing = [c for c in CLIP_COLUMNS if c not in record.clips]
    if missing:
        raise ValueError(f"the record's clips lack the columns {missing}.")
    clips = {name: np.asarray(values) for name, values in record.clips.items()}
    clips["section"] = np.asarray([f"{int(s):02d}" for s in clips["section"]])
    n = clips["file"].shape[0]
    scores = np.asarray(record.scores, np.float64)
    if scores.shape != (n,) or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be {n} finite numbers (one per clip), got shape "
                         f"{scores.shape}.")
    for name, values in clips.items():
        if values.shape != (n,):
            raise ValueError(f"clip column {name!r} has shape {values.shape}, expected ({n},).")
    if not set(np.unique(clips["label"]).tolist()) <= {0, 1}:
        raise ValueError("label must be 0 (normal) or 1 (anomalous).")
    if not set(clips["domain"].tolist()) <= {"source", "target"}:
        raise ValueError("domain must be 'source' or 'target'.")
    keys = list(zip(clips["machine"].tolist(), clips["section"].tolist(),
                    clips["file"].tolist(), strict=True))
    if len(set(keys)) != n or any("," in f or "\n" in f for f in clips["file"].tolist()):
        raise ValueError("file names must be unique within a machine and section, without "
                         "commas or line breaks.")
    return clips, scores


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez_compressed, but with fixed zip timestamps: equal arrays, equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(arrays[name]), allow_pickle=False)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", newline="") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> tuple[str | None, bool | None]:
    """This library's git commit and whether tracked files differ from it (None outside git)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    return commit, bool(_git("status", "--porcelain", "--untracked-files=no"))


def provenance_environment() -> dict:
    """Where and with what a record is computed: versions, commit, device, CPU, XLA flags."""
    import jax

    from asdtheory._platform import cpu_count, cpu_signature

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    commit, dirty = git_commit()
    device = jax.devices()[0]
    return {
        "library_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": {p: version(p) for p in ("jax", "jaxlib", "flax", "optax", "numpy")},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": f"{device.platform}:{device.device_kind}",
        "cpu_model": cpu_signature(),
        # XLA sizes its thread pool by the CPUs a process may use, so the count is part of
        # what decides the rounding; a pinned worker has 1.
        "cpus": cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def write_record(folder: Path, record: Record, *, experiment: Experiment, unit: Unit,
                 size: str, environment: Mapping, wall_seconds: float,
                 cpu_seconds: float) -> Path:
    """Writes ``record`` to ``folder`` atomically: the files go to a temporary folder beside
    it, are fsynced, and the folder is renamed into place, so a reader (or a run killed midway)
    sees the whole record or none of it. A record already there is replaced."""
    clips, scores = _checked_clips(record)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    groups: dict[str, list[str]] = {}
    for i, (machine, section) in enumerate(zip(clips["machine"].tolist(),
                                               clips["section"].tolist(), strict=True)):
        groups.setdefault(score_file(machine, section), []).append(
            f"{clips['file'][i]},{float(scores[i])!r}\n")
    for name, rows in groups.items():
        _write_text(tmp / name, "".join(rows))
    kinds = {name: _column_kind(values, name) for name, values in clips.items()}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(clips))
    columns = [[repr(float(v)) if kinds[name] == "float" else str(v) for v in values.tolist()]
               for name, values in clips.items()]
    writer.writerows(zip(*columns, strict=True))
    _write_text(tmp / CLIPS, text.getvalue())
    _write_npz(tmp / ARRAYS, record.arrays)
    with open(tmp / ARRAYS, "rb") as written:
        os.fsync(written.fileno())
    files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
    final_loss = None if record.final_loss is None else float(record.final_loss)
    provenance = {
        "format": FORMAT,
        "experiment": experiment.name,
        "experiment_version": experiment.version,
        "size": size,
        "unit": unit.id,
        "config": unit.config,
        "config_hash": experiment.hash(unit),
        **environment,
        "steps": int(record.steps),
        "final_loss": final_loss,
        "wall_seconds": round(wall_seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "clip_columns": kinds,
        "files": files,
    }
    _write_text(tmp / PROVENANCE, json.dumps(provenance, indent=1, sort_keys=True) + "\n")
    _fsync_dir(tmp)
    old = folder.parent / f".old-{folder.name}-{os.getpid()}"
    if folder.exists():
        os.replace(folder, old)  # a folder cannot be replaced by rename while it holds files
    os.replace(tmp, folder)
    _fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)
    return folder


# ---------------------------------------------------------------------------- reading

@dataclasses.dataclass(frozen=True)
class StoredRecord:
    """A verified record: its provenance, clip columns (in the stored order) and arrays."""

    path: Path
    provenance: dict
    clips: dict[str, np.ndarray]
    scores: np.ndarray
    arrays: dict[str, np.ndarray]


def _corrupt(path: Path, what: str, provenance: Mapping | None) -> CorruptRecordError:
    record = path.parent
    name = (provenance or {}).get("experiment", record.parent.parent.name)
    size = (provenance or {}).get("size", record.parent.name)
    return CorruptRecordError(
        f"{path}: {what}. The record is corrupt (edited by hand or damaged); recompute it "
        f"with `{recompute_command(name, size, replace_corrupt=True)}`.")


def read_provenance(folder: Path) -> dict:
    path = Path(folder) / PROVENANCE
    try:
        provenance = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise _corrupt(path, f"unreadable ({err})", None) from err
    if not isinstance(provenance, dict) or provenance.get("format") != FORMAT \
            or not isinstance(provenance.get("files"), dict):
        raise _corrupt(path, f"not a record of format {FORMAT}", None)
    return provenance


def verify_record(folder: Path) -> dict:
    """The provenance of the record in ``folder`` after checking every file's sha256."""
    folder = Path(folder)
    provenance = read_provenance(folder)
    files = provenance["files"]
    present = {p.name for p in folder.iterdir()} - {PROVENANCE}
    for name in sorted(present | set(files)):
        path = folder / name
        if name not in files:
            raise _corrupt(path, "a file the record does not list", provenance)
        if name not in present:
            raise _corrupt(path, "missing", provenance)
        if _sha256(path) != files[name]:
            raise _corrupt(path, "its sha256 differs from the one in provenance.json",
                           provenance)
    return provenance


def load_record(folder) -> StoredRecord:
    """Reads and verifies one record; a file that does not match its hash is a
    :class:`CorruptRecordError` naming the file and the command that recomputes it."""
    folder = Path(folder)
    provenance = verify_record(folder)
    kinds = provenance["clip_columns"]
    with open(folder / CLIPS, newline="") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    types = {"int": np.int64, "float": np.float64, "str": str}
    clips = {name: np.asarray([row[j] for row in body], dtype=types[kinds[name]])
             for j, name in enumerate(header)}
    stored = {}
    for name in provenance["files"]:
        if name.startswith("anomaly_score_"):
            for line in (folder / name).read_text().splitlines():
                file, score = line.rsplit(",", 1)
                stored[(name, file)] = float(score)
    scores = np.asarray([stored[(score_file(m, s), f)] for m, s, f in zip(
        clips["machine"].tolist(), clips["section"].tolist(), clips["file"].tolist(),
        strict=True)])
    with np.load(folder / ARRAYS, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return StoredRecord(folder, provenance, clips, scores, arrays)


# ---------------------------------------------------------------------------- the folder

def size_folder(results_dir, name: str, size: str) -> Path:
    return results_root(results_dir) / name / size


def unit_folders(results_dir, name: str, size: str) -> list[Path]:
    """The record folders present (temporary folders of an interrupted run excluded)."""
    folder = size_folder(results_dir, name, size)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_manifest(results_dir, name: str, size: str) -> dict | None:
    path = size_folder(results_dir, name, size) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ResultsFolderError(f"{path} is not valid JSON ({err}).") from err


def check_results_folder(results_dir, name: str, size: str) -> None:
    """Refuses a results folder written by another library version or record layout."""
    manifest = read_manifest(results_dir, name, size)
    if manifest is None:
        return
    found = (manifest.get("library_version"), manifest.get("format"))
    if found != (__version__, FORMAT):
        folder = size_folder(results_dir, name, size)
        raise ResultsFolderError(
            f"{folder} holds records of asdtheory {found[0]} (record format {found[1]}), this "
            f"is asdtheory {__version__} (format {FORMAT}): point --results at another folder, "
            f"or move {folder} away and run `{recompute_command(name, size)}`.")


def records_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def write_manifest(results_dir, name: str, size: str) -> dict:
    """Rewrites the manifest from the record folders present (atomically)."""
    folder = size_folder(results_dir, name, size)
    units = {}
    for unit in unit_folders(results_dir, name, size):
        try:
            provenance = json.loads((unit / PROVENANCE).read_text())
        except (OSError, json.JSONDecodeError):
            continue  # corrupt: status and load_record report it
        units[unit.name] = {"config_hash": provenance.get("config_hash"),
                            "bytes": records_bytes(unit)}
    manifest = {"experiment": name, "size": size, "library_version": __version__,
                "format": FORMAT, "units": units,
                "total_bytes": sum(u["bytes"] for u in units.values())}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MANIFEST}.{os.getpid()}"
    _write_text(tmp, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return manifest


def load_table(name: str, size: str, *, results_dir=None) -> dict[str, np.ndarray]:
    """One tidy table of an experiment at ``size``: a dict of equal-length NumPy columns with
    one row per (unit, clip): ``unit`` (its id), the unit's factors, the clip metadata and
    ``score``. Every declared unit must be present, fresh and intact; otherwise the error
    names the command that computes it. What notebooks read."""
    from asdtheory.experiments.core import get

    experiment = get(name)
    check_results_folder(results_dir, name, size)
    units = experiment.declared(size)
    parts = []
    for unit in units:
        folder = size_folder(results_dir, name, size) / unit.id
        if not folder.is_dir():
            raise FileNotFoundError(f"no record of unit {unit.id} in {folder.parent}; compute "
                                    f"it with `{recompute_command(name, size)}`.")
        stored = load_record(folder)
        if stored.provenance["config_hash"] != experiment.hash(unit):
            raise ValueError(f"the record of unit {unit.id} is stale (its config differs from "
                             f"the declaration); recompute it with "
                             f"`{recompute_command(name, size)}`.")
        clash = set(unit.factors) & (set(stored.clips) | {"unit", "score"})
        if clash:
            raise ValueError(f"unit factors {sorted(clash)} clash with clip columns.")
        parts.append({**stored.clips, "score": stored.scores})
    if not parts:
        return {}
    if len({tuple(p) for p in parts}) != 1:
        raise ValueError(f"the units of {name} ({size}) have different columns.")
    counts = [p["score"].size for p in parts]
    # One array per factor over all units, so that mixed values (snr "clean" and 0) become one
    # column of strings instead of failing to concatenate.
    factors = {key: np.repeat(np.asarray([u.factors[key] for u in units]), counts)
               for key in units[0].factors}
    return {"unit": np.repeat(np.asarray([u.id for u in units]), counts), **factors,
            **{column: np.concatenate([p[column] for p in parts]) for column in parts[0]}}


def unsettled_runs(table: Mapping[str, np.ndarray], condition: str | None = "snr"
                   ) -> list[tuple]:
    """(unit, condition, settling) of every training run of a table (:func:`load_table`) whose
    loss had not settled: its ``loss_settling`` column (``train.settling`` of the run's loss
    curve, one value per unit and ``condition``) is not below ``train.SETTLED_BELOW``.
    ``condition=None``: one training per unit, (unit, settling) pairs."""
    from asdtheory.train import SETTLED_BELOW

    conditions = table[condition].tolist() if condition else [None] * len(table["unit"])
    runs = sorted({(u, c, float(v)) for u, c, v in zip(
        table["unit"].tolist(), conditions, table["loss_settling"].tolist(), strict=True)},
        key=lambda run: (run[0], str(run[1]), run[2]))
    late = [run for run in runs if not run[2] < SETTLED_BELOW]
    return late if condition else [(u, v) for u, _, v in late]

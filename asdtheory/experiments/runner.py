"""The runner: compute what is missing or stale, say what exists, audit a sample.

:func:`run` starts one process per unit (:mod:`asdtheory.experiments._worker`), job ``j`` pinned
to the ``j``-th CPU this process may use, so that a unit is bit-reproducible on the same CPU
type. Each worker writes its record atomically, so a run that is killed leaves whole records
and the next run computes only the rest. :func:`status` classifies every declared unit,
:func:`check_records` is the staleness test of CI, :func:`audit` recomputes a few units and
compares them with their records.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asdtheory.experiments import records
from asdtheory.experiments.core import Experiment, Unit, check_size, get
from asdtheory.experiments.records import (
    CorruptRecordError,
    check_results_folder,
    recompute_command,
    size_folder,
)

__all__ = ["PRESENT", "STATES", "AuditResult", "RunSummary", "StaleRecordError", "Status",
           "audit", "check_records", "run", "status"]

PRESENT, MISSING, STALE, CORRUPT = "present", "missing", "stale", "corrupt"
STATES = (PRESENT, MISSING, STALE, CORRUPT)
# The cross-CPU audit's tolerance: a recomputed unit's metric may lie outside the range of its
# seeds by this fraction of the range on either side.
SPREAD_WIDENING = 0.5
_LISTED = 8  # unit ids a status line names before it counts the rest
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class StaleRecordError(ValueError):
    """A stored record whose config hash differs from its declared unit's."""


def _unit_state(experiment: Experiment, unit: Unit, folder: Path) -> str:
    if not folder.is_dir():
        return MISSING
    try:
        provenance = records.verify_record(folder)
    except CorruptRecordError:
        return CORRUPT
    return PRESENT if provenance["config_hash"] == experiment.hash(unit) else STALE


@dataclasses.dataclass(frozen=True)
class Status:
    """Every declared unit's state, the records' bytes and the time left (None: unknown)."""

    name: str
    size: str
    states: dict[str, str]
    total_bytes: int
    seconds_left: float | None

    def ids(self, state: str) -> list[str]:
        return [unit for unit, s in self.states.items() if s == state]

    def report(self) -> str:
        counts = ", ".join(f"{len(self.ids(s))} {s}" for s in STATES)
        left = ("unknown" if self.seconds_left is None else
                f"{self.seconds_left:.0f} CPU-s ({self.seconds_left / 3600:.2f} CPU-hours)")
        lines = [f"{self.name} ({self.size}): {len(self.states)} units: {counts}; "
                 f"{self.total_bytes / 1e6:.2f} MB; time to complete: {left}"]
        for state in (MISSING, STALE, CORRUPT):
            ids = self.ids(state)
            shown = ", ".join(ids[:_LISTED]) + (f" and {len(ids) - _LISTED} more"
                                                if len(ids) > _LISTED else "")
            lines += [f"  {state}: {shown}"] if ids else []
        return "\n".join(lines)


def status(name: str, size: str, *, results_dir=None) -> Status:
    """The state of every declared unit of ``name`` at ``size`` (:data:`STATES`) and the time
    to compute the rest, in CPU-seconds, from the mean CPU time of the present records (a
    unit runs on one CPU; their wall times also hold whatever else the machine was doing)."""
    experiment = get(name)
    check_results_folder(results_dir, name, size)
    folder = size_folder(results_dir, name, size)
    units = experiment.declared(size)
    states = {unit.id: _unit_state(experiment, unit, folder / unit.id) for unit in units}
    spent = [records.read_provenance(folder / u)["cpu_seconds"]
             for u, s in states.items() if s == PRESENT]
    todo = sum(s != PRESENT for s in states.values())
    left = 0.0 if not todo else (float(np.mean(spent)) * todo if spent else None)
    total = sum(records.records_bytes(folder / u) for u, s in states.items() if s != MISSING)
    return Status(name, size, states, total, left)


def check_records(name: str, size: str = "standard", *, results_dir=None) -> int:
    """CI's staleness check: every declared unit whose record is present has the declared
    config hash and intact files. Returns how many records were checked.

    Raises:
      StaleRecordError: naming the unit and ``asdtheory experiment run NAME --size SIZE``.
      CorruptRecordError: naming the file and the command that recomputes it.
    """
    experiment = get(name)
    check_results_folder(results_dir, name, size)
    folder = size_folder(results_dir, name, size)
    checked = 0
    for unit in experiment.declared(size):
        if not (folder / unit.id).is_dir():
            continue
        provenance = records.verify_record(folder / unit.id)
        if provenance["config_hash"] != experiment.hash(unit):
            raise StaleRecordError(
                f"the record of unit {unit.id} of experiment {name} ({size}) is stale: its "
                f"config hash {provenance['config_hash'][:12]} differs from the declared "
                f"{experiment.hash(unit)[:12]}; recompute it with "
                f"`{recompute_command(name, size)}`.")
        checked += 1
    return checked


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a run did: units computed, failures (id -> traceback), CPU and wall seconds."""

    computed: list[str]
    failed: dict[str, str]
    cpu_seconds: float
    wall_seconds: float

    def report(self) -> str:
        text = (f"computed {len(self.computed)} unit(s) in {self.wall_seconds:.1f} s wall, "
                f"{self.cpu_seconds:.1f} CPU-s ({self.cpu_seconds / 3600:.3f} CPU-hours)")
        if self.failed:
            text += f"; {len(self.failed)} failed: {', '.join(self.failed)}"
        return text


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]


def _compute(experiment: Experiment, size: str, units: list[Unit], *, results_dir,
             jobs: int, progress: bool) -> tuple[list[str], dict[str, str]]:
    """Computes ``units`` in worker processes, at most ``jobs`` at a time (job j on CPU j);
    returns the ids done and the failures with their worker's output."""
    from tqdm.auto import tqdm

    cpus = _cpus()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [_PACKAGE_PARENT, *filter(None, [os.environ.get("PYTHONPATH")])])}
    module = experiment.compute.__module__
    waiting, running = list(units), {}
    done, failed = [], {}
    bar = tqdm(total=len(units), desc=f"{experiment.name} {size}", unit="unit",
               disable=not progress)
    try:
        while waiting or running:
            free = [j for j in range(jobs) if j not in running]
            while waiting and free:
                j, unit = free.pop(0), waiting.pop(0)
                log = tempfile.TemporaryFile("w+")
                command = [sys.executable, "-m", "asdtheory.experiments._worker", module,
                           experiment.name, size, unit.id, str(records.results_root(
                               results_dir)), str(cpus[j % len(cpus)])]
                running[j] = (unit, log, subprocess.Popen(command, stdout=log, stderr=log,
                                                          env=env))
            time.sleep(0.05)
            for j, (unit, log, process) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[j]
                if process.returncode == 0:
                    done.append(unit.id)
                else:
                    log.seek(0)
                    failed[unit.id] = log.read()
                    bar.write(f"unit {unit.id} failed (exit {process.returncode}):\n"
                              f"{failed[unit.id]}")
                log.close()
                records.write_manifest(results_dir, experiment.name, size)
                bar.update()
    finally:
        for _, log, process in running.values():  # interrupted: end the workers we started
            process.kill()
            process.wait()
            log.close()
        bar.close()
    return done, failed


def _clean_leftovers(folder: Path) -> None:
    """Temporary folders of a killed run (never renamed into place)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_dir() and path.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(path, ignore_errors=True)


def run(name: str, size: str, *, jobs: int = 1, results_dir=None, replace_corrupt: bool = False,
        progress: bool = True) -> RunSummary:
    """Computes the missing and stale units of ``name`` at ``size``, ``jobs`` at a time.

    Everything is checked before any work: the experiment and size exist, ``jobs >= 1``, the
    results folder comes from this library version, no record is corrupt (unless
    ``replace_corrupt``: then corrupt records are recomputed), the experiment's ``preflight``
    passes (e.g. its data are at hand). A unit that fails is reported with its traceback; the
    others go on and its record stays absent.
    """
    experiment = get(name)
    check_size(size)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}.")
    before = status(name, size, results_dir=results_dir)
    corrupt = before.ids(CORRUPT)
    if corrupt and not replace_corrupt:
        records.verify_record(size_folder(results_dir, name, size) / corrupt[0])  # the message
    _clean_leftovers(size_folder(results_dir, name, size))
    todo = [u for u in experiment.declared(size) if before.states[u.id] != PRESENT]
    if todo and experiment.preflight is not None:
        experiment.preflight(size)
    start = time.perf_counter()
    done, failed = _compute(experiment, size, todo, results_dir=results_dir, jobs=jobs,
                            progress=progress)
    records.write_manifest(results_dir, name, size)
    folder = size_folder(results_dir, name, size)
    cpu = sum(records.read_provenance(folder / unit)["cpu_seconds"] for unit in done)
    return RunSummary(done, failed, cpu, time.perf_counter() - start)


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """One recomputed unit: the rule applied ("exact" or "seed spread"), pass or fail, why."""

    unit: str
    rule: str
    passed: bool
    detail: str


def audit_seed(commit: str | None) -> int:
    """The selection seed: the first 16 hex digits of the commit (0 outside git)."""
    return int(commit[:16], 16) if commit else 0


def _metric(experiment: Experiment, stored: records.StoredRecord) -> float:
    return float(experiment.metric({**stored.clips, "score": stored.scores}))


def audit(name: str, size: str = "standard", *, units: int, results_dir=None,
          select: int | None = None, progress: bool = False) -> list[AuditResult]:
    """Recomputes ``units`` present records, chosen by a generator seeded with ``select``
    (default: :func:`audit_seed` of this commit, so each commit audits other units), and
    compares them with the stored ones.

    The rule: when the record's CPU model (with its vector extension) and XLA flags equal this
    machine's, the recomputed scores and arrays must equal the stored ones bit for bit. Else
    (another CPU type rounds differently, and a trained network moves with its rounding as with
    its seed) the unit's summary metric (``experiment.metric``) must lie within the range of
    the stored metrics of the seeds that share the unit's other factors, widened on each side
    by :data:`SPREAD_WIDENING` times that range; with fewer than two such seeds the unit fails
    as undecidable.
    """
    experiment = get(name)
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"units must be an integer >= 1, got {units!r}.")
    check_records(name, size, results_dir=results_dir)
    folder = size_folder(results_dir, name, size)
    present = [u for u in experiment.declared(size) if (folder / u.id).is_dir()]
    if not present:
        raise FileNotFoundError(f"no records of {name} ({size}) to audit; compute them with "
                                f"`{recompute_command(name, size)}`.")
    if select is None:
        select = audit_seed(records.git_commit()[0])
    if experiment.preflight is not None:
        experiment.preflight(size)
    picked = set(audit_selection([u.id for u in present], units=units, select=select))
    chosen = [u for u in present if u.id in picked]
    with tempfile.TemporaryDirectory(prefix="asdtheory-audit-") as scratch:
        _, failed = _compute(experiment, size, chosen, results_dir=scratch, jobs=1,
                             progress=progress)
        results = []
        for unit in chosen:
            if unit.id in failed:
                results.append(AuditResult(unit.id, "exact", False,
                                           f"recomputation failed:\n{failed[unit.id]}"))
                continue
            stored = records.load_record(folder / unit.id)
            fresh = records.load_record(size_folder(scratch, name, size) / unit.id)
            same_cpu = all(stored.provenance[k] == fresh.provenance[k]
                           for k in ("cpu_model", "xla_flags"))
            if same_cpu:
                results.append(_exact(unit.id, stored, fresh))
            else:
                results.append(_within_spread(experiment, unit, present, folder, fresh))
    return results


def _same(a, b) -> bool:
    """Equal shapes and values, NaN equal to NaN: a record may hold NaN (a loss that diverged),
    and the same computation gives it again."""
    a, b = np.asarray(a), np.asarray(b)
    floats = np.issubdtype(a.dtype, np.inexact) and np.issubdtype(b.dtype, np.inexact)
    return bool(np.array_equal(a, b, equal_nan=floats))


def _exact(unit: str, stored, fresh) -> AuditResult:
    differ = [k for k in sorted(set(stored.arrays) | set(fresh.arrays))
              if k not in stored.arrays or k not in fresh.arrays
              or not _same(stored.arrays[k], fresh.arrays[k])]
    if not _same(stored.scores, fresh.scores):
        changed = int(np.sum(stored.scores != fresh.scores))
        differ.insert(0, f"scores ({changed} of {stored.scores.size} clips)")
    detail = "identical" if not differ else f"differ: {', '.join(differ)}"
    return AuditResult(unit, "exact", not differ, detail)


def audit_selection(unit_ids: list[str], *, units: int, select: int) -> list[str]:
    """``units`` of ``unit_ids`` (all when fewer), drawn without replacement by a generator
    seeded with ``select``, in their given order."""
    rng = np.random.default_rng(select)
    picked = rng.choice(len(unit_ids), min(units, len(unit_ids)), replace=False)
    return [unit_ids[i] for i in sorted(picked)]


def seed_spread_rule(value: float, seed_values: list[float]) -> tuple[bool, str]:
    """Whether ``value`` lies within the range of ``seed_values`` widened on each side by
    :data:`SPREAD_WIDENING` times its width (undecidable, so failed, with fewer than 2)."""
    if len(seed_values) < 2:
        return False, f"metric {value:.4f}; fewer than 2 seeds to give a spread"
    low, high = min(seed_values), max(seed_values)
    margin = SPREAD_WIDENING * (high - low)
    return (low - margin <= value <= high + margin,
            f"metric {value:.4f}, seeds' range [{low:.4f}, {high:.4f}] widened by "
            f"{SPREAD_WIDENING:g} x its width")


def _within_spread(experiment: Experiment, unit: Unit, present: list[Unit], folder: Path,
                   fresh) -> AuditResult:
    others = {k: v for k, v in unit.factors.items() if k != "seed"}
    siblings = [u for u in present
                if {k: v for k, v in u.factors.items() if k != "seed"} == others]
    stored = [_metric(experiment, records.load_record(folder / u.id)) for u in siblings]
    passed, detail = seed_spread_rule(_metric(experiment, fresh), stored)
    return AuditResult(unit.id, "seed spread", passed, detail)

"""Experiments as data: units, records of their outputs, and the registry of experiments.

An :class:`Experiment` names a grid of :class:`Unit` s (method x condition x seed [x fold]) for
each of three sizes that share one declaration (:data:`SIZES`), and one pure function
``compute(config, key) -> Record`` that trains and evaluates one unit. The runner
(:mod:`asdtheory.experiments.runner`) calls ``compute`` with ``jax.random.key(config["seed"])``,
so a unit's output is a function of its config alone, and the config's hash
(:func:`config_hash`) tells whether a stored record still belongs to the declaration.

>>> units = grid(seeds=2, settings={"clips": 8}, method=("a", "b"))
>>> [u.id for u in units]
['method=a,seed=0', 'method=a,seed=1', 'method=b,seed=0', 'method=b,seed=1']
>>> units[1].config
{'clips': 8, 'method': 'a', 'seed': 1}
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asdtheory._registry import lookup

__all__ = ["CLIP_COLUMNS", "SIZES", "Experiment", "Record", "Unit", "config_hash", "get",
           "grid", "names", "register"]

SIZES = ("smoke", "standard", "full")
# The clip metadata every record carries, as the DCASE evaluator and the tables need it.
CLIP_COLUMNS = ("file", "machine", "section", "domain", "label")
# Unit ids name folders: letters, digits and the separators of "key=value,key=value" only.
_ID_VALUE = re.compile(r"[A-Za-z0-9._+-]+")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _canonical(value) -> str:
    """JSON with sorted keys and no spaces: one text per config, whatever the dict order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: Mapping, *, version: str) -> str:
    """sha256 of the canonical JSON of ``config`` together with the experiment ``version``:
    a record whose stored hash differs was computed from another declaration (stale)."""
    return hashlib.sha256(_canonical({"config": config, "version": version}).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Unit:
    """One training + evaluation: ``factors`` (the grid coordinates, which make the id and the
    table's unit columns, including ``seed``) and ``settings`` (what the unit shares with its
    neighbours: clips, steps, ...). ``config`` is both, JSON-able."""

    factors: Mapping
    settings: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        seed = self.factors.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"a unit's factors need an integer seed >= 0 (the PRNG key is "
                             f"jax.random.key(seed)), got {dict(self.factors)!r}.")
        for key, value in self.factors.items():
            if not (_NAME.fullmatch(key) and _ID_VALUE.fullmatch(str(value))
                    and isinstance(value, (str, int, float))):
                raise ValueError(f"factor {key}={value!r}: names are lower_case and values "
                                 "strings or numbers of letters, digits, '.', '_', '+', '-' "
                                 "(they make a folder name).")
        overlap = set(self.factors) & set(self.settings)
        if overlap:
            raise ValueError(f"{sorted(overlap)} are both factors and settings of one unit.")
        _canonical(self.config)  # fails early on what JSON cannot hold

    @property
    def id(self) -> str:
        """``key=value,...`` in declaration order, e.g. ``method=adacos,snr=0,seed=3``."""
        return ",".join(f"{key}={value}" for key, value in self.factors.items())

    @property
    def config(self) -> dict:
        return {**self.settings, **self.factors}


def grid(*, seeds: int | Sequence[int], settings: Mapping | None = None,
         **factors: Sequence) -> list[Unit]:
    """Every combination of ``factors`` (in the order given, seed last) with ``seeds`` (a count,
    meaning 0 .. seeds - 1, or the seeds themselves), each with the same ``settings``."""
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    axes = {**{key: tuple(values) for key, values in factors.items()}, "seed": tuple(seeds)}
    return [Unit(dict(zip(axes, combo, strict=True)), dict(settings or {}))
            for combo in itertools.product(*axes.values())]


@dataclasses.dataclass(frozen=True)
class Record:
    """What ``compute`` returns for one unit.

    Attributes:
      clips: per-clip metadata columns of equal length: :data:`CLIP_COLUMNS` (file name as the
        DCASE evaluator knows it, machine, two-digit section, domain "source"/"target", label
        0 normal / 1 anomalous) and any experiment-specific ones (int, float or str arrays).
      scores: (clips,) anomaly scores, larger = more anomalous.
      arrays: whatever else the claim needs (embeddings, curves, the untrained twin's scores).
      steps: optimiser steps taken (0 for an untrained system).
      final_loss: the training loss at the end, or None without training.
    """

    clips: Mapping[str, np.ndarray]
    scores: np.ndarray
    arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    steps: int = 0
    final_loss: float | None = None


def _auc(columns: Mapping[str, np.ndarray]) -> float:
    from asdtheory.evaluation import auc

    return auc(columns["label"], columns["score"])


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One claim group's experiment, as data.

    Attributes:
      name: registry name, also the results folder (lower_case).
      version: bump it when ``compute`` changes what it returns for the same config: every
        record's hash changes with it, so every record becomes stale.
      units: ``units(size) -> list[Unit]`` for each of :data:`SIZES`.
      compute: ``compute(config, key) -> Record``; pure: the same config and key give the same
        record (bit for bit on the same CPU type, pinned to one core). Define it at the top
        level of the module that registers the experiment: each worker process imports that
        module (``compute.__module__``) to find the experiment.
      metric: one unit's summary number from its table (columns of :func:`load_table` for that
        unit), used by the cross-CPU audit; default: AUC over all clips.
      description: one line for ``asdtheory experiment status``.
      preflight: optional ``preflight(size)`` run before any unit is computed or audited,
        raising a clear error for what every unit would fail on (e.g. missing data).
    """

    name: str
    version: str
    units: Callable[[str], list[Unit]]
    compute: Callable[[dict, object], Record]
    metric: Callable[[Mapping[str, np.ndarray]], float] = _auc
    description: str = ""
    preflight: Callable[[str], None] | None = None

    def declared(self, size: str) -> list[Unit]:
        """The units of ``size``, checked: a known size, unique ids."""
        check_size(size)
        units = list(self.units(size))
        ids = [unit.id for unit in units]
        if len(set(ids)) != len(ids):
            raise ValueError(f"experiment {self.name!r} declares repeated unit ids at size "
                             f"{size!r}.")
        return units

    def hash(self, unit: Unit) -> str:
        return config_hash(unit.config, version=self.version)


_REGISTRY: dict[str, Experiment] = {}


def check_size(size: str) -> str:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; the sizes are {', '.join(SIZES)}.")
    return size


def register(experiment: Experiment) -> Experiment:
    """Adds ``experiment`` to the registry (a repeated name replaces the earlier one)."""
    if not _NAME.fullmatch(experiment.name):
        raise ValueError(f"experiment names are lower_case, got {experiment.name!r}.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The registered experiment ``name``; an unknown name lists the known ones."""
    return lookup(_REGISTRY, name, "experiment")


def names() -> list[str]:
    return sorted(_REGISTRY)

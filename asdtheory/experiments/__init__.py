"""Experiments as declarations, their records on disk, and the runner.

Each claim group's experiment is data (:class:`Experiment`): a grid of units for the sizes
``smoke``, ``standard`` and ``full``, and a pure ``compute(config, key) -> Record``. The runner
computes the missing and stale units, one process per unit pinned to one CPU, and writes each
record atomically under ``results/<experiment>/<size>/<unit id>/``; notebooks read one tidy
table per experiment (:func:`load_table`). The README ("Experiments and their records")
describes the commands.
"""

from asdtheory.experiments import (  # noqa: F401  (register the experiments)
    b,
    bdyn,
    bvalve,
    c1,
    c2,
    c3,
    c4,
    c5,
    c6,
    toy,
)
from asdtheory.experiments.core import (
    SIZES,
    Experiment,
    Record,
    Unit,
    config_hash,
    get,
    grid,
    names,
    register,
)
from asdtheory.experiments.records import (
    CorruptRecordError,
    ResultsFolderError,
    load_record,
    load_table,
)
from asdtheory.experiments.runner import (
    AuditResult,
    RunSummary,
    StaleRecordError,
    Status,
    audit,
    check_records,
    run,
    status,
)

__all__ = ["SIZES", "AuditResult", "CorruptRecordError", "Experiment", "Record",
           "ResultsFolderError", "RunSummary", "StaleRecordError", "Status", "Unit", "audit",
           "check_records", "config_hash", "get", "grid", "load_record", "load_table", "names",
           "register", "run", "status"]

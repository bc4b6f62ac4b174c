"""One unit in its own process: ``python -m asdtheory.experiments._worker MODULE NAME SIZE UNIT
RESULTS CPU``.

The process pins itself to CPU ``CPU`` and sets the XLA flags of the notebooks (one thread)
before JAX is imported, so a unit's numbers depend on its config and the CPU type only, not on
what else runs. It imports ``MODULE`` (which registers the experiment), computes the unit and
writes its record atomically; a failure leaves no record and exits with the traceback on
stderr.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time

import numpy as np


def compute_unit(experiment, unit, *, size: str, folder) -> None:
    """Runs ``experiment.compute`` on ``unit`` and writes the record to ``folder``."""
    import jax

    from asdtheory.experiments.records import provenance_environment, write_record

    environment = provenance_environment()
    wall, cpu = time.perf_counter(), time.process_time()
    record = experiment.compute(unit.config, jax.random.key(unit.config["seed"]))
    # JAX dispatches asynchronously: the clock stops once the numbers exist.
    record = dataclasses.replace(record, scores=np.asarray(record.scores),
                                 arrays={k: np.asarray(v) for k, v in record.arrays.items()})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    write_record(folder, record, experiment=experiment, unit=unit, size=size,
                 environment=environment, wall_seconds=wall, cpu_seconds=cpu)


def main(argv: list[str]) -> int:
    module, name, size, unit_id, results, cpu = argv
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu)})
    from asdtheory._platform import xla_flags

    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS"))
    importlib.import_module(module)
    from asdtheory.experiments.core import get
    from asdtheory.experiments.records import size_folder

    experiment = get(name)
    unit = next((u for u in experiment.declared(size) if u.id == unit_id), None)
    if unit is None:
        raise ValueError(f"experiment {name!r} declares no unit {unit_id!r} at size {size!r}.")
    compute_unit(experiment, unit, size=size, folder=size_folder(results, name, size) / unit_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

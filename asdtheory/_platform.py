"""The process settings that decide a computation's rounding: XLA flags, CPU type, CPU count.

Shared by the notebook runner (:mod:`asdtheory.repro.notebook_run`) and the experiment runner
(:mod:`asdtheory.experiments.runner`): a notebook's stored outputs and a unit's record both
reproduce bit for bit only on the same CPU type, with the same CPU count and flags.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["XLA_FLAGS", "cpu_count", "cpu_signature", "xla_flags"]

XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def xla_flags(extra: str | None = None) -> str:
    """:data:`XLA_FLAGS` plus the flags of ``extra`` it does not already hold (e.g. a
    developer's ``--xla_cpu_max_isa=SSE4_2``, which makes XLA round like an older CPU).

    >>> xla_flags("--xla_cpu_max_isa=SSE4_2")
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 --xla_cpu_max_isa=SSE4_2'
    """
    flags = XLA_FLAGS.split()
    return " ".join(flags + [f for f in (extra or "").split() if f not in flags])


def cpu_signature() -> str:
    """The CPU type whose rounding an executed notebook's numbers carry: model name, vendor,
    family, model and the widest vector extension, from ``/proc/cpuinfo`` (elsewhere
    ``platform.processor()``). XLA picks its kernels by these, so stored outputs reproduce bit
    for bit only on the same type."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    info = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
    info = {key.strip(): value.strip() for key, value in info.items()}
    flags = set(info.get("flags", "").split())
    vector = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                            ("avx", "AVX")) if flag in flags), "no AVX")
    return (f"{info.get('model name', platform.machine())} ({info.get('vendor_id', '?')} "
            f"family {info.get('cpu family', '?')} model {info.get('model', '?')}, {vector})")


def cpu_count() -> int:
    """How many CPUs this process may run on (its affinity): the size of XLA's intra-op thread
    pool, by which it splits matmuls and convolutions, so part of what decides the rounding."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

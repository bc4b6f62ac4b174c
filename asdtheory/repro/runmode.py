"""The run mode of notebooks and commands: ``ci`` (small, minutes on 2 CPU cores, what the
stored notebook outputs show) or ``full`` (the real protocol). Set with ``ASDTHEORY_MODE``.

``ASDTHEORY_BUDGET`` ("name=value,...", e.g. "seeds=1,steps=2") overrides the size parameters
a notebook reads through :func:`budget`: for smoke runs of a mode's code path (the tests run
notebook 04 in full mode on a generated dataset that way), never for a result.
"""

from __future__ import annotations

import os
from typing import Literal

MODES = ("ci", "full")


def run_mode() -> Literal["ci", "full"]:
    """The mode from ``ASDTHEORY_MODE`` (default ``ci``); anything else is an error."""
    mode = os.environ.get("ASDTHEORY_MODE", "ci").strip().lower()
    if mode not in MODES:
        raise ValueError(f"ASDTHEORY_MODE must be one of {MODES}, got {mode!r}.")
    return mode  # type: ignore[return-value]


def budget(**defaults: int) -> dict[str, int]:
    """A notebook's size parameters: ``defaults``, each replaced by its value in
    ``ASDTHEORY_BUDGET`` when set there (integers >= 0). A name that ``defaults`` does not
    have, or a malformed entry, is an error."""
    sizes = dict(defaults)
    text = os.environ.get("ASDTHEORY_BUDGET", "").strip()
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep or name not in sizes or not value.strip().isdigit():
            raise ValueError(f"ASDTHEORY_BUDGET entry {entry!r}: expected name=integer with a "
                             f"name from {sorted(sizes)}.")
        sizes[name] = int(value)
    return sizes

"""The run mode of notebooks and commands: ``ci`` (small, minutes on 2 CPU cores, what the
stored notebook outputs show) or ``full`` (the real protocol). Set with ``ASDTHEORY_MODE``.
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

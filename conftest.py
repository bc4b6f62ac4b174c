"""Test-session settings shared by the unit tests and the nbval notebook runs.

Validated runs use ci mode and single-threaded XLA on the CPU, so that the stored notebook
outputs are reproducible; the notebook kernels started by nbval inherit this environment.
The matplotlib backend is left alone: kernels must keep their inline backend, or figure
outputs would go missing and nbval would report a mismatch.
"""

import os
from pathlib import Path

from asdtheory.notebook_run import XLA_FLAGS, cpu_signature, stored_cpu

# The recordings for tests and ci-mode notebooks sit beside the repository unless
# ASDTHEORY_DATA says otherwise (tests/conftest.py turns a missing folder into an error).
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
os.environ.setdefault("ASDTHEORY_DATA", str(SHARED_DATA))
os.environ.setdefault("ASDTHEORY_MODE", "ci")
os.environ.setdefault("XLA_FLAGS", XLA_FLAGS)


def _notebook_cpus() -> tuple[set[str], str]:
    """The CPU types recorded in the stored notebooks, and this machine's."""
    notebooks = sorted((Path(__file__).resolve().parent / "notebooks").glob("*.ipynb"))
    return {stored_cpu(p) or "unknown" for p in notebooks}, cpu_signature()


def pytest_report_header(config):
    stored, here = _notebook_cpus()
    return f"stored notebook outputs made on: {'; '.join(sorted(stored))}; this CPU: {here}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    failed = terminalreporter.stats.get("failed", [])
    if not any(".ipynb::" in report.nodeid for report in failed):
        return
    stored, here = _notebook_cpus()
    if stored != {here}:
        terminalreporter.section("notebook outputs and the CPU type")
        terminalreporter.write_line(
            f"The stored notebook outputs were made on {'; '.join(sorted(stored))}, this "
            f"machine is {here}. XLA rounds differently on another CPU type, so changed "
            "numbers in the notebooks are expected here: regenerate them on this machine "
            "(python -m asdtheory.notebook_run notebooks/NN_name.py) or compare the verdicts "
            "of `asdtheory verify` (notebooks/README.md).")

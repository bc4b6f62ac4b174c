"""Test-session settings shared by the unit tests and the nbval notebook runs.

Validated runs use ci mode, the XLA flags of ``notebook_run`` and one CPU per kernel, so that the
stored notebook outputs are reproducible (on the CPU type that stored them; notebooks/README.md);
the notebook kernels started by nbval inherit this environment. Each test process is pinned to
one CPU (worker ``gwN`` of ``pytest -n`` to the N-th): its kernels inherit the pin, and two
workers no longer compete for the same cores.
Flags already in XLA_FLAGS are kept (``XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 pytest`` checks the
notebooks as another CPU type would; notebooks/README.md). How the re-executed outputs are
compared with the stored ones is the plugin ``asdtheory.repro.notebook_check`` (pyproject.toml).
The matplotlib backend is left alone: kernels must keep their inline backend, or figure
outputs would go missing and nbval would report a mismatch.

The session shares one JAX persistent compilation cache, in a fresh temporary folder, among
the xdist workers, the processes tests start and the notebook kernels (unless
JAX_COMPILATION_CACHE_DIR is set already): they compile many of the same programs (the
two-branch network's initialisers, the log-mel kernels, the training steps of notebooks 04 and
06). A cached executable is the compiled one, so no output changes. Fresh per session because
XLA compiles for the host CPU and the CPU type may differ next time.
"""

import os
import shutil
import tempfile
from pathlib import Path

from asdtheory.repro.notebook_run import pin_to_one_cpu, xla_flags

# The recordings for tests and ci-mode notebooks sit beside the repository unless
# ASDTHEORY_DATA says otherwise (tests/conftest.py turns a missing folder into an error).
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
os.environ.setdefault("ASDTHEORY_DATA", str(SHARED_DATA))
os.environ.setdefault("ASDTHEORY_MODE", "ci")
os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS"))
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # xdist workers inherit the controller's
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE = tempfile.mkdtemp(
        prefix="asdtheory-jax-cache-")
    # A size limit makes JAX lock the folder (filelock) around each read and write, so that no
    # process reads an entry another one is still writing.
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))
else:
    _SESSION_CACHE = None


# The longest files first (each notebook takes minutes on one core), so that the two workers
# of the README's `pytest -n 2 --dist loadfile` finish together: xdist hands each worker the next
# file of the collection when it runs short of work, and a notebook of several minutes
# started last would leave the other worker idle for its whole run. A stale order costs
# only time.
LONGEST_FIRST = ("notebooks/04_", "notebooks/01_", "notebooks/06_", "notebooks/05_",
                 "notebooks/02_", "notebooks/03_", "tests/test_full_mode.py", "notebooks/07_")


def _rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)),
                len(LONGEST_FIRST))


# --doctest-modules runs the library's docstring examples; the notebooks' jupytext sources are
# programs, not modules with doctests (nbval runs the notebooks from their .ipynb files).
collect_ignore_glob = ["notebooks/*.py", "benchmarks/*.py"]


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: cells keep their order


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        # xdist would otherwise reorder the files by their number of tests, which puts the
        # notebooks (a dozen cells of minutes in all) last.
        config.option.loadscopereorder = False
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        pin_to_one_cpu(int(worker.removeprefix("gw")))
    elif not getattr(config.option, "numprocesses", None):
        pin_to_one_cpu()  # no xdist; an xdist controller is left alone: its workers inherit it


def pytest_unconfigure(config):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)

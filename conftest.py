"""Test-session settings shared by the unit tests and the nbval notebook runs.

Validated runs use ci mode and single-threaded XLA on the CPU, so that the stored notebook
outputs are reproducible; the notebook kernels started by nbval inherit this environment.
The matplotlib backend is left alone: kernels must keep their inline backend, or figure
outputs would go missing and nbval would report a mismatch.
"""

import os
from pathlib import Path

# The recordings for tests and ci-mode notebooks sit beside the repository unless
# ASDTHEORY_DATA says otherwise (tests/conftest.py turns a missing folder into an error).
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
os.environ.setdefault("ASDTHEORY_DATA", str(SHARED_DATA))
os.environ.setdefault("ASDTHEORY_MODE", "ci")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

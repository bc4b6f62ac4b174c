"""Execute a notebook's jupytext source from a clean kernel, as CI and ``asdtheory verify`` do.

The source of truth is ``notebooks/NN_name.py`` (jupytext ``py:percent``). This module
converts it to a notebook, runs it in a fresh Jupyter kernel with

* ``ASDTHEORY_MODE`` set to the run mode (``ci`` for the stored outputs),
* ``XLA_FLAGS`` that turn off Eigen's multi-threading, plus any flag of the caller's
  ``XLA_FLAGS`` (see :func:`xla_flags`),
* in ci mode, one CPU (:func:`pin_to_one_cpu`). The XLA flags do not make XLA
  single-threaded: in jax 0.10 its CPU runtime runs matmuls and convolutions (YNNPACK, Eigen)
  on an intra-op pool with one thread per CPU the process may use, and splits the work by that
  count (notebook 05 moved by up to 0.03 between one and two CPUs). On one CPU the stored
  numbers no longer depend on how many cores the machine has, and two notebooks run side by
  side without competing for cores. Full mode keeps every CPU (and whatever accelerator JAX
  sees): its outputs are not compared with stored ones, and its data pipeline needs the cores,

and writes the executed ``.ipynb`` (by default beside the source, which is how the committed
outputs are produced), recording in its metadata the CPU type it ran on
(:func:`cpu_signature`), the number of CPUs it ran on (:func:`cpu_count`) and the XLA flags:
the numbers reproduce bit for bit only on the same type with the same count and flags
(:mod:`asdtheory.repro.notebook_check` compares them exactly there, and at each cell's declared
tolerance elsewhere). From the repository root::

    python -m asdtheory.repro.notebook_run notebooks/01_compactness.py [--mode ci] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from asdtheory._platform import XLA_FLAGS, cpu_count, cpu_signature, xla_flags
from asdtheory.repro.runmode import MODES

__all__ = ["XLA_FLAGS", "NotebookFailed", "cpu_count", "cpu_signature", "execute_notebook",
           "kernel_cpus", "kernel_environment", "pin_to_one_cpu", "read_source", "render_html",
           "stored_cpu", "xla_flags"]

KERNEL_NAME = "python3"


class NotebookFailed(RuntimeError):
    """A notebook raised in a cell, timed out or lost its kernel; the message names the cell."""


def kernel_environment(mode: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the kernel: this process's, plus the run mode, :func:`xla_flags` of
    this process's ``XLA_FLAGS`` and ``env`` (which wins)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    return {**os.environ, "ASDTHEORY_MODE": mode,
            "XLA_FLAGS": xla_flags(os.environ.get("XLA_FLAGS")), **(env or {})}


def pin_to_one_cpu(index: int = 0) -> set[int] | None:
    """Restricts the calling thread, and every thread and process it starts from now on (a
    notebook kernel, XLA's thread pools), to one CPU: the ``index``-th (modulo their number)
    of the CPUs it may use now. pytest-xdist worker ``gwN`` takes ``index=N``, so that two
    workers run on two different cores.

    Returns:
      The CPUs the thread could use before (restore them with ``os.sched_setaffinity(0,
      before)``), or None where the affinity cannot be set (not Linux); then XLA uses every
      CPU and the numbers carry that count (:func:`kernel_cpus`).
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}.")
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(before)[index % len(before)]})
    return before


def kernel_cpus() -> int:
    """How many CPUs a ci-mode notebook kernel started by :func:`execute_notebook` or the test
    command runs on: one where :func:`pin_to_one_cpu` can pin it, else all of them."""
    return 1 if hasattr(os, "sched_setaffinity") else cpu_count()


def stored_cpu(ipynb_path: str | os.PathLike) -> str | None:
    """The :func:`cpu_signature` recorded in an executed notebook's metadata (None if
    absent)."""
    import nbformat

    notebook = nbformat.read(Path(ipynb_path), as_version=4)
    return notebook.metadata.get("asdtheory", {}).get("cpu")


def read_source(py_path: str | os.PathLike):
    """The notebook (an ``nbformat`` node) of a jupytext ``py:percent`` source."""
    import jupytext

    py_path = Path(py_path)
    if py_path.suffix != ".py" or not py_path.is_file():
        raise FileNotFoundError(
            f"{py_path} is not an existing .py file: pass the jupytext source "
            "notebooks/NN_name.py (the .ipynb is generated from it)."
        )
    notebook = jupytext.read(py_path, fmt="py:percent")
    # Stable cell ids (jupytext draws random ones), so that re-executing a notebook changes
    # only what its cells print.
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
    return notebook


def execute_notebook(py_path: str | os.PathLike, *, mode: str = "ci",
                     output: str | os.PathLike | None = None, timeout: int = 1800,
                     env: Mapping[str, str] | None = None) -> Path:
    """Executes the jupytext source ``py_path`` in a fresh kernel (on one CPU in ci mode,
    :func:`pin_to_one_cpu`) and writes the result.

    Args:
      py_path: ``notebooks/NN_name.py``.
      mode: ``"ci"`` or ``"full"``, passed as ``ASDTHEORY_MODE``.
      output: the executed ``.ipynb``; default: beside the source, same stem.
      timeout: seconds allowed per cell.
      env: extra environment variables for the kernel.

    Returns:
      The path of the executed notebook. It is written even when a cell fails (with the
      outputs up to the failure), and then :class:`NotebookFailed` is raised.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    py_path = Path(py_path)
    kernel_env = kernel_environment(mode, env)
    notebook = read_source(py_path)
    output = Path(output) if output is not None else py_path.with_suffix(".ipynb")
    error = None
    # Unix sockets in a private temporary folder: the kernel is local, and over TCP it would
    # warn that the traffic is unencrypted.
    with tempfile.TemporaryDirectory(prefix="asdtheory-kernel-") as sockets:
        transport = Config({"KernelManager": {"transport": "ipc",
                                              "ip": os.path.join(sockets, "kernel")}})
        client = NotebookClient(
            notebook, config=transport, timeout=timeout, kernel_name=KERNEL_NAME,
            record_timing=False,
            resources={"metadata": {"path": str(py_path.resolve().parent)}},
        )
        before = pin_to_one_cpu() if mode == "ci" else None
        kernel_cpu_count = cpu_count()
        try:
            client.execute(env=kernel_env)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
            error = err
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)
    notebook.metadata["asdtheory"] = {"cpu": cpu_signature(), "cpus": kernel_cpu_count,
                                      "xla_flags": kernel_env["XLA_FLAGS"]}
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, output)
    if error is not None:
        raise NotebookFailed(f"{py_path.name}, {_failed_cell(notebook)}: "
                             f"{type(error).__name__}: {_first_line(error)}") from error
    return output


def _failed_cell(notebook) -> str:
    """'code cell k' of the last executed code cell (the failing one)."""
    code = [c for c in notebook.cells if c.cell_type == "code"]
    executed = [i for i, c in enumerate(code) if c.get("execution_count") is not None]
    return f"code cell {executed[-1] + 1} of {len(code)}" if executed else "kernel start-up"


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else repr(error)


def render_html(ipynb_path: str | os.PathLike, html_path: str | os.PathLike) -> Path:
    """Renders an executed notebook to a standalone HTML page (nbconvert)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(ipynb_path, as_version=4))
    html_path = Path(html_path)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asdtheory.repro.notebook_run",
        description="Execute a jupytext notebook source from a clean kernel and write the "
        "executed .ipynb beside it.",
    )
    parser.add_argument("sources", nargs="+", type=Path, help="notebooks/NN_name.py files")
    parser.add_argument("--mode", choices=MODES, default="ci")
    parser.add_argument("--output", type=Path,
                        help="executed notebook (only with a single source; default: beside it)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.output is not None and len(args.sources) > 1:
        parser.error("--output needs exactly one source")
    status = 0
    for source in args.sources:
        try:
            written = execute_notebook(source, mode=args.mode, output=args.output,
                                       timeout=args.timeout)
            print(f"executed {source} -> {written}")
        except NotebookFailed as err:
            print(f"FAILED {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

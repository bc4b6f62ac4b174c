"""``asdtheory verify``: execute the notebooks from clean kernels and write the claims report.

For every selected ``notebooks/NN_name.py`` (jupytext source of truth) the command

1. executes it in a fresh kernel in the chosen mode, with single-threaded XLA, writing the
   executed notebook and an HTML rendering into the output directory (the committed
   ``.ipynb`` files are left alone),
2. collects the CLAIM records the notebook wrote into ``<output>/claims/``,

then writes ``<output>/claims.md``: claim id, statement, verdict, key figures, notebook.
The exit status is non-zero when a notebook fails to execute (the failing cell is named); a
NOT SUPPORTED verdict is a result, not a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from asdtheory import claims
from asdtheory.runmode import MODES

DEFAULT_OUTPUT = Path("results")


def find_notebooks(notebook_dir: Path, selection: Sequence[str] | None = None) -> list[Path]:
    """The ``NN_name.py`` sources in ``notebook_dir``, optionally only the numbers given."""
    if not notebook_dir.is_dir():
        raise FileNotFoundError(
            f"notebook directory {notebook_dir} not found: run `asdtheory verify` from the "
            "repository root or pass --notebook-dir."
        )
    sources = sorted(p for p in notebook_dir.glob("*.py") if re.match(r"\d\d_", p.name))
    if not selection:
        return sources
    by_number = {p.name[:2]: p for p in sources}
    unknown = [s for s in selection if s not in by_number]
    if unknown:
        raise ValueError(
            f"--notebooks {','.join(unknown)}: no such notebook in {notebook_dir}; "
            f"available: {','.join(sorted(by_number)) or 'none'}."
        )
    return [by_number[s] for s in selection]


def claims_report(records: Sequence[claims.ClaimRecord]) -> str:
    """The Markdown claims table (one row per claim, sorted by id)."""
    lines = [
        "# Claims report",
        "",
        "| claim | statement | verdict | key figures | notebook |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in sorted(records, key=lambda r: _claim_sort_key(r.id)):
        cells = [r.id, r.statement, f"**{r.verdict}**", r.summary, r.notebook or ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    supported = sum(r.supported for r in records)
    lines += ["", f"{supported} of {len(records)} claims supported."]
    return "\n".join(lines) + "\n"


def _claim_sort_key(claim_id: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", claim_id)]


def verify(notebooks: Sequence[Path], *, output: Path, mode: str, timeout: int = 3600) -> int:
    """Executes ``notebooks`` and writes the report; returns the process exit status."""
    from tqdm.auto import tqdm

    from asdtheory.notebook_run import NotebookFailed, execute_notebook, render_html

    claims_dir = output / "claims"
    claims_dir.mkdir(parents=True, exist_ok=True)
    for stale in claims_dir.glob("*.json"):
        stale.unlink()
    failures = []
    bar = tqdm(notebooks, desc="notebooks", unit="nb", file=sys.stderr)
    for source in bar:
        bar.set_postfix_str(source.stem)
        executed = output / f"{source.stem}.ipynb"
        try:
            execute_notebook(source, mode=mode, output=executed, timeout=timeout,
                             env={claims.CLAIMS_DIR_ENV: str(claims_dir.resolve())})
        except NotebookFailed as err:
            failures.append(f"{source.name}: {err}")
            tqdm.write(f"FAILED {source.name}: {err}", file=sys.stderr)
        if executed.exists():
            render_html(executed, executed.with_suffix(".html"))
    records = claims.load_records(claims_dir)
    report = output / "claims.md"
    report.write_text(claims_report(records))
    print(claims_report(records))
    print(f"report: {report}")
    if failures:
        print(f"{len(failures)} notebook(s) failed to execute:\n  " + "\n  ".join(failures),
              file=sys.stderr)
        return 1
    return 0


def _command(args: argparse.Namespace) -> int:
    selection = [s.strip() for s in args.notebooks.split(",")] if args.notebooks else None
    notebooks = find_notebooks(Path(args.notebook_dir), selection)
    if not notebooks:
        print(f"no notebooks found in {args.notebook_dir}", file=sys.stderr)
        return 1
    os.environ["ASDTHEORY_MODE"] = args.mode
    return verify(notebooks, output=Path(args.output), mode=args.mode, timeout=args.timeout)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="execute the notebooks and write the claims report",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--mode", choices=MODES, default=os.environ.get("ASDTHEORY_MODE", "ci"),
                        help="ci: minutes on a CPU (what the stored outputs show); full: the "
                        "real protocol (default: $ASDTHEORY_MODE or ci)")
    parser.add_argument("--notebooks", metavar="NN,NN",
                        help="comma-separated notebook numbers, e.g. 01,02 (default: all)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="directory for claims.md, executed notebooks and HTML "
                        "(default: results/)")
    parser.add_argument("--notebook-dir", default="notebooks",
                        help="where the NN_name.py sources are (default: ./notebooks)")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds allowed per cell (default: 3600)")
    parser.set_defaults(func=_command)

"""``asdtheory verify``: execute the notebooks from clean kernels and write the claims report.

Before running anything the command checks that the real recordings the selected notebooks
need (:data:`REAL_DATA`) are under the data root; a missing DCASE archive is fetched (with a
progress bar), and when that is impossible it stops and says which archive to get and where
to unpack it. Then, for every selected ``notebooks/NN_name.py`` (jupytext source of truth), it

1. executes it in a fresh kernel in the chosen mode (:mod:`~asdtheory.repro.notebook_run`),
   writing the executed notebook and an HTML rendering into the output directory (the committed
   ``.ipynb`` files are left alone),
2. collects the CLAIM records the notebook wrote into ``<output>/claims/``,

then writes ``<output>/claims.md``: claim id, statement, verdict, key figures, notebook.
The exit status is non-zero when a notebook fails to execute (the failing cell is named); a
CONTRADICTED or INCONCLUSIVE verdict is a result, not a failure.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from asdtheory.repro import claims

DEFAULT_OUTPUT = Path("results")
# The real recordings each notebook reads (tests/test_verify.py checks this against the
# sources): "dcase" = the DCASE 2023 development data (valve in ci mode, every machine in full
# mode), "noise" = the background recordings of <data root>/noise.
REAL_DATA: dict[str, frozenset[str]] = {
    "03": frozenset({"noise"}),
    "04": frozenset({"dcase", "noise"}),
    "05": frozenset({"dcase"}),
    "06": frozenset({"dcase"}),
    "07": frozenset({"dcase"}),
}
NOISE_SOURCE = (
    "the four 16 kHz recordings doing_the_dishes, dude_miaowing, exercise_bike and "
    "running_tap (.wav) of the _background_noise_ folder of the Speech Commands dataset "
    "(P. Warden 2018, CC BY 4.0)"
)


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


def missing_data(notebooks: Sequence[Path], *, mode: str, root: Path,
                 fetch: bool = True) -> list[str]:
    """Problems with the real recordings ``notebooks`` need, after fetching what can be.

    Returns one message per missing item (empty when everything is there).
    """
    from asdtheory.data.dcase import DEV_MACHINES_2023
    from asdtheory.data.download import archive_url
    from asdtheory.data.download import fetch as fetch_archive

    needs = set().union(*(REAL_DATA.get(nb.name[:2], frozenset()) for nb in notebooks))
    problems = []
    machines = () if "dcase" not in needs else DEV_MACHINES_2023 if mode == "full" else ("valve",)
    for machine in machines:
        folder = root / "dcase2023t2" / "dev_data" / "raw" / machine
        needed = ("train", "test") if mode == "full" else ("test",)
        if all((folder / split).is_dir() for split in needed):
            continue
        if fetch:
            try:
                fetch_archive(machine, root=root)
                continue
            except OSError as err:
                reason = f"download failed ({err})"
        else:
            reason = "not present"
        problems.append(
            f"DCASE 2023 Task 2 development data for {machine!r}: {reason}. Get "
            f"{archive_url(machine)} and unzip it so that {folder}/test/ (and train/) exist, "
            f"or run `asdtheory data fetch --year 2023 --machine {machine} --root {root}`."
        )
    noise = root / "noise"
    if "noise" in needs and (not noise.is_dir() or not any(noise.glob("*.wav"))):
        problems.append(f"background recordings missing: put {NOISE_SOURCE} into {noise}/.")
    return problems


def claims_report(records: Sequence[claims.ClaimRecord], *, run: str | None = None) -> str:
    """The Markdown claims table (one row per claim, sorted by id), under an optional line
    ``run`` saying how the notebooks were run."""
    lines = ["# Claims report", ""] + ([run, ""] if run else []) + [
        "| claim | statement | verdict | key figures | notebook |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in sorted(records, key=lambda r: _claim_sort_key(r.id)):
        cells = [r.id, r.statement, f"**{r.verdict}**", r.summary, r.notebook or ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", verdict_counts(r.verdict for r in records) + "."]
    return "\n".join(lines) + "\n"


def verdict_counts(verdicts) -> str:
    """"n claims: a SUPPORTED, b CONTRADICTED, c INCONCLUSIVE" for a list of verdicts."""
    verdicts = list(verdicts)
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in claims.VERDICTS)
    return f"{len(verdicts)} claims: {counts}"


README_BEGIN = "<!-- claims-table"
README_END = "<!-- end claims-table -->"


def stored_claims(notebook_dir: Path) -> list[tuple[str, str, str, str]]:
    """(id, verdict, summary, notebook) of every claim record shown in the committed
    ``.ipynb`` outputs of ``notebook_dir`` -- what a reader of the notebooks sees."""
    import nbformat

    found = []
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                record = out.get("data", {}).get(claims.CLAIM_MIME)
                if record:
                    found.append((record["id"], record["verdict"], record["summary"],
                                  path.stem))
    return sorted(found, key=lambda row: _claim_sort_key(row[0]))


def readme_claims_table(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """The README's Markdown table of the stored verdicts."""
    lines = ["| claim | verdict | figures | notebook |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in (i, f"**{v}**", f, nb)) + " |"
              for i, v, f, nb in rows]
    return "\n".join([*lines, "", verdict_counts(v for _, v, _, _ in rows) + "."])


def update_readme(readme: Path, notebook_dir: Path) -> None:
    """Rewrites the claims table between the README's claims-table markers."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no claims table (the markers {README_BEGIN} ... -->"
                         f" and {README_END}); pass the repository's README.md.")
    begin = text.index(README_BEGIN)
    begin = text.index("\n", begin) + 1
    end = text.index(README_END)
    table = readme_claims_table(stored_claims(notebook_dir))
    readme.write_text(text[:begin] + table + "\n" + text[end:])


def _claim_sort_key(claim_id: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", claim_id)]


def verify(notebooks: Sequence[Path], *, output: Path, mode: str, data: Path | None = None,
           timeout: int = 3600) -> int:
    """Executes ``notebooks`` and writes the report; returns the process exit status.

    ``data`` becomes the notebooks' ``ASDTHEORY_DATA`` (default: inherited).
    """
    from tqdm import tqdm

    from asdtheory.repro.notebook_run import (
        NotebookFailed,
        cpu_signature,
        execute_notebook,
        render_html,
    )

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
            env = {claims.CLAIMS_DIR_ENV: str(claims_dir.resolve())}
            if data is not None:
                env["ASDTHEORY_DATA"] = str(Path(data).resolve())
            execute_notebook(source, mode=mode, output=executed, timeout=timeout, env=env)
        except NotebookFailed as err:
            failures.append(f"{source.name}: {err}")
            tqdm.write(f"FAILED {source.name}: {err}", file=sys.stderr)
        if executed.exists():
            render_html(executed, executed.with_suffix(".html"))
    records = claims.load_records(claims_dir)
    report = output / "claims.md"
    text = claims_report(records, run=f"{mode} mode, {len(notebooks)} notebook(s), on "
                                      f"{cpu_signature()}.")
    report.write_text(text)
    print(text)
    print(f"report: {report}")
    if failures:
        print(f"{len(failures)} notebook(s) failed to execute:\n  " + "\n  ".join(failures),
              file=sys.stderr)
        return 1
    return 0

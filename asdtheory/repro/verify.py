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

``asdtheory verify --readme README.md`` executes nothing: it rewrites the README's generated
blocks -- the findings per argument of the paper (:data:`ARGUMENTS`) and the claims table --
from the claim records stored in the committed ``.ipynb`` outputs (:func:`update_readme`).
"""

from __future__ import annotations

import dataclasses
import os
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
    """"n claims: a SUPPORTED, b CONTRADICTED, c INCONCLUSIVE" for a list of verdicts, and
    ", d WITHHELD" when some claims were not judged."""
    verdicts = list(verdicts)
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in claims.OUTCOMES
                       if v != claims.WITHHELD or v in verdicts)
    return f"{len(verdicts)} claims: {counts}"


README_BEGIN = "<!-- claims-table"
README_END = "<!-- end claims-table -->"
FINDINGS_BEGIN = "<!-- findings"
FINDINGS_END = "<!-- end findings -->"
# The claims table shows a claim's deciding figures up to about this many characters (the
# detectable effect of an INCONCLUSIVE verdict always); the notebook holds the rest.
FIGURES_WIDTH = 300
DETECTABLE = "; detectable effect "  # how claims.claim appends it to a summary


@dataclasses.dataclass(frozen=True)
class Argument:
    """One of the paper's arguments in the README's findings: a title and its groups of claims,
    each ``(families, what the claims test)``. A family is a claim id up to its first "." ("C3"
    holds C3, C3.a, ...). The words are written by hand and hold no result and no verdict: the
    verdicts beside them are generated from the stored notebooks."""

    title: str
    groups: tuple[tuple[tuple[str, ...], str], ...]


ARGUMENTS = (
    Argument("(1) Angular margin losses minimise the compactness loss of one-class models", (
        (("C1",), "whether the loss bounds the compactness (C1.a), whether gradient descent on "
         "free embeddings reaches the loss minimiser (C1.b), and whether trained networks grow "
         "more compact as their loss falls (C1.c)"),
    )),
    Argument("(2) Unlike the compactness loss, they exclude trivial solutions", (
        (("C2",), "whether a Deep SVDD network can output a constant (C2.a.1) and does so in "
         "training (C2.a.2), whether angular margin losses keep the same networks from "
         "collapsing (C2.b), and whether they give no learning signal with a single class "
         "(C2.c)"),
    )),
    Argument("(3) A related auxiliary task makes the embeddings suitable for detecting "
             "anomalous sounds in noise", (
        (("C3",), "on synthetic machine sounds in real noise, sub-cluster AdaCos against Deep "
         "SVDD and the autoencoder (C3.a), its advantage as the noise grows (C3.b), real "
         "against random labels (C3.c), and the margin loss against other uses of the same "
         "labels (C3.d)"),
        (("C4",), "the author's system trained on the real recordings at hand (valve and fan "
         "tested, slider a related machine of the joint task) against Deep SVDD and the "
         "autoencoder, clean (C4.a) and in real noise (C4.b), whether its advantage grows "
         "with the noise (C4.b.growth), the joint task against one machine's (C4.c), real "
         "against permuted labels (C4.d) and the margin loss against the pull to class "
         "centres (C4.e), by the official DCASE score"),
        (("C5",), "in the embedding space, how far noise moves an embedding relative to its "
         "anomaly (C5.a), class structure against the pull to class centres with the same "
         "labels (C5.b), anomaly separation by each model's own score and by the distance to "
         "the nearest centre (C5.c), and the valve attributes (C5.d)"),
        (("C6",), "where the anomaly score listens: by RISE saliency on the bins where "
         "the machine dominates the noise, either way (C6.a), where it raises (C6.b) and "
         "lowers (C6.c) the score, on the anomaly itself (C6.d), and by deleting the machine "
         "or the noise (C6.e)"),
    )),
    Argument("Beyond the paper", (
        (("B1", "B2", "B3", "B4", "B5"), "trainable against fixed class centres (B1; on the "
         "real valve recordings B1.valve), the number of sub-clusters (B2), AdaProj against "
         "sub-cluster AdaCos (B3, B3.valve), neural collapse (B4), and the AdaCos scale over "
         "long training (B5)"),
    )),
)


def stored_claims(notebook_dir: Path) -> list[claims.ClaimRecord]:
    """The claim records shown in the committed ``.ipynb`` outputs of ``notebook_dir`` -- what
    a reader of the notebooks sees -- sorted by id; ``notebook`` is the notebook's name."""
    import nbformat

    found = []
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                record = out.get("data", {}).get(claims.CLAIM_MIME)
                if record:
                    found.append(claims.ClaimRecord(
                        id=record["id"], verdict=record["verdict"],
                        statement=record["statement"], summary=record["summary"],
                        figures=record.get("figures") or {}, notebook=path.stem))
    return sorted(found, key=lambda r: _claim_sort_key(r.id))


def _family(claim_id: str) -> str:
    return claim_id.split(".")[0]


def _link(record: claims.ClaimRecord, notebooks: str, text: str | None = None) -> str:
    return f"[{text or record.notebook}]({notebooks}/{record.notebook}.ipynb)"


def readme_findings(records: Sequence[claims.ClaimRecord], *,
                    notebooks: str = "notebooks") -> str:
    """The README's findings: per argument of :data:`ARGUMENTS` its verdict counts, then per
    group of claims the verdicts of ``records`` (an aggregate claim such as C3 first, its parts
    in brackets), a link to the notebook (``notebooks`` is the folder's path from the README)
    and what the claims test. Raises ``ValueError`` when a record belongs to no argument or a
    group has no record."""
    placed = {f for a in ARGUMENTS for families, _ in a.groups for f in families}
    unplaced = sorted({r.id for r in records if _family(r.id) not in placed}, key=_claim_sort_key)
    if unplaced:
        raise ValueError(f"claims {', '.join(unplaced)} belong to no argument of the README's "
                         "findings: add their family to asdtheory.repro.verify.ARGUMENTS.")
    lines = []
    for argument in ARGUMENTS:
        mine = [r for r in records
                if any(_family(r.id) in families for families, _ in argument.groups)]
        lines += [f"**{argument.title}.** {verdict_counts(r.verdict for r in mine)}.", ""]
        for families, tests in argument.groups:
            group = [r for r in records if _family(r.id) in families]
            if not group:
                raise ValueError(f"no stored claim of {', '.join(families)}: remove them from "
                                 "asdtheory.repro.verify.ARGUMENTS or execute their notebook.")
            verdicts = []
            for family in families:
                members = [r for r in group if _family(r.id) == family]
                whole = [r for r in members if r.id == family]
                parts = ", ".join(f"{r.id} **{r.verdict}**" for r in members if r.id != family)
                if whole:
                    verdicts.append(f"{family} **{whole[0].verdict}**"
                                    + (f" ({parts})" if parts else ""))
                elif parts:
                    verdicts.append(parts)
            stems = sorted({r.notebook for r in group})
            links = ", ".join(
                _link(next(r for r in group if r.notebook == s), notebooks, f"notebook {s[:2]}")
                for s in stems)
            lines.append(f"- {', '.join(verdicts)}: {tests} ({links}).")
        lines.append("")
    lines.append(verdict_counts(r.verdict for r in records) + ".")
    return "\n".join(lines)


def shorten(text: str, width: int = FIGURES_WIDTH) -> str:
    """``text`` cut to at most ``width`` characters (plus " …") at the last "; ", else ", ",
    else " " outside brackets and parentheses, so that no interval is cut in two."""
    if len(text) <= width:
        return text
    depth, cuts = 0, {"; ": [], ", ": [], " ": []}
    for i, char in enumerate(text[:width + 1]):
        depth += (char in "([") - (char in ")]")
        if depth == 0:
            for sep in cuts:
                if text.startswith(sep, i):
                    cuts[sep].append(i)
    for sep, at in cuts.items():
        at = [i for i in at if i > width // 3]
        if at:
            return text[:at[-1]] + sep.rstrip() + " …"
    return text[:width] + " …"


def readme_claims_table(records: Sequence[claims.ClaimRecord], *,
                        notebooks: str = "notebooks") -> str:
    """The README's Markdown table of the stored verdicts: claim, statement, verdict, the
    deciding figures (shortened by :func:`shorten`, keeping the detectable effect), a link to
    the notebook."""
    lines = ["| claim | statement | verdict | deciding figures | notebook |",
             "| --- | --- | --- | --- | --- |"]
    for r in records:
        head, sep, tail = r.summary.partition(DETECTABLE)
        figures = shorten(head, max(FIGURES_WIDTH - len(sep + tail), FIGURES_WIDTH // 3))
        cells = [c.replace("|", "\\|") for c in (r.id, r.statement, f"**{r.verdict}**",
                                                  figures + sep + tail)]
        lines.append("| " + " | ".join(
            [*cells, _link(r, notebooks, r.notebook[:2])]) + " |")
    return "\n".join([*lines, "", verdict_counts(r.verdict for r in records) + "."])


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"the README has no claims table (no block between {begin!r} ... "
                         f"and {end!r}); pass the repository's README.md.")
    start = text.index("\n", text.index(begin)) + 1
    return text[:start] + body.strip("\n") + "\n" + text[text.index(end):]


def readme_text(text: str, records: Sequence[claims.ClaimRecord], *,
                notebooks: str = "notebooks") -> str:
    """``text`` (a README) with its findings and claims-table blocks generated from
    ``records``; ``notebooks`` is the notebook folder's path from the README."""
    text = _replace_block(text, FINDINGS_BEGIN, FINDINGS_END,
                          readme_findings(records, notebooks=notebooks))
    return _replace_block(text, README_BEGIN, README_END,
                          readme_claims_table(records, notebooks=notebooks))


def update_readme(readme: Path, notebook_dir: Path) -> None:
    """Rewrites the README's findings and claims table from the stored notebook outputs."""
    notebooks = Path(os.path.relpath(notebook_dir.resolve(), readme.resolve().parent))
    readme.write_text(readme_text(readme.read_text(), stored_claims(notebook_dir),
                                  notebooks=notebooks.as_posix()))


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

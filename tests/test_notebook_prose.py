"""The notebooks' prose argues; the printed outputs carry the results.

A number typed into a markdown cell goes stale the moment the notebook is re-executed on
another machine or with another budget, and nothing checks it against the output above it.
So the markdown of a notebook may hold no decimal number outside LaTeX formulas, except a
short per-notebook allowlist of *settings* (fixed before the run, never measured), each with
its reason; a discussion that needs a result points at the printed output ("the table
above", "the CLAIM line"). The markdown also holds no lab diary: no dates, no CPU models, no
project history. History phrases are allowed only in a paragraph labelled
``**Criterion change ...**`` (or ``**Design change ...**``), the disclosure that a
pre-registered criterion or the data design was changed before the stored run, and why.

Integers (counts, sizes, seeds, "1 107"-style grouped numbers) are not checked.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))

# Phrases (exact text, LaTeX already removed) whose decimals are settings, not results.
# "*" applies to every notebook. Keep this short: each entry needs a reason.
SETTINGS: dict[str, dict[str, str]] = {
    "*": {
        "arXiv:2309.15643": "the paper's arXiv identifier, not a number",
        "CC BY 4.0": "the name of a licence",
        "Attribution 4.0 International": "the name of a licence",
        "max FPR 0.1": "the pAUC's false-positive-rate limit, fixed by the DCASE metric",
    },
    "01": {
        "within 0.01 of the bound": "C1.a's near-tight threshold, the column the table reports",
    },
    "04": {
        "CC BY-SA 4.0": "the name of a licence (the slider and fan recordings)",
    },
    "03": {
        "about 0.75–0.8 harmonic mean at 0 dB": "the calibration target of the anomaly "
        "strength, fixed before the run",
    },
}

DECIMAL = re.compile(r"(?<![\w.])\d*\.\d+")
DATE = re.compile(r"\b(?:19|20)\d\d-[01]\d\b")
CPU = re.compile(r"\b(?:Zen\b|EPYC|Xeon|AVX|Ryzen|Intel\b|AMD\b|Skylake|Threadripper)")
HISTORY = re.compile(
    r"\b(?:(?:earlier|previous|old|older|first|next|last) "
    r"(?:versions?|sessions?|stored runs?|runs?|tables?|checks?|ci runs?)"
    r"|(?:this|an?) (?:version|session)\b"
    r"|until (?:this|an earlier|then)\b"
    r"|(?:was|were) replaced|measured afterwards)",
    re.IGNORECASE)
CRITERION_CHANGE = re.compile(r"^\*{1,2}(?:Criterion|Design) change\b")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.DOTALL)


def _blank(match: re.Match) -> str:
    """The matched text as spaces, newlines kept, so that line numbers survive."""
    return re.sub(r"[^\n]", " ", match.group(0))


def markdown_cells(source: Path) -> list[tuple[int, list[str]]]:
    """(first line number, lines without the ``# `` prefix) of each markdown cell."""
    cells, current = [], None
    for number, line in enumerate(source.read_text().splitlines(), 1):
        if line.startswith("# %%"):
            current = (number + 1, []) if "[markdown]" in line else None
            if current:
                cells.append(current)
        elif current is not None:
            current[1].append(re.sub(r"^# ?", "", line))
    return cells


def prose_problems(source: Path) -> list[str]:
    """Every typed decimal, date, CPU name and history phrase in the notebook's markdown."""
    notebook = source.name[:2]
    allowed = SETTINGS["*"] | SETTINGS.get(notebook, {})
    problems = []
    for first, lines in markdown_cells(source):
        text = MATH.sub(_blank, "\n".join(lines))
        for phrase in allowed:  # a phrase may be wrapped over two lines
            text = re.sub(r"\s+".join(map(re.escape, phrase.split())), _blank, text)
        in_criterion_change = False
        for offset, (line, shown) in enumerate(zip(text.split("\n"), lines, strict=True)):
            if not line.strip():
                in_criterion_change = False
                continue
            if CRITERION_CHANGE.match(line):
                in_criterion_change = True
            found = [("decimal", m.group(0)) for m in DECIMAL.finditer(line)]
            found += [("date", m.group(0)) for m in DATE.finditer(line)]
            found += [("CPU", m.group(0)) for m in CPU.finditer(line)]
            if not in_criterion_change:
                found += [("history", m.group(0)) for m in HISTORY.finditer(line)]
            problems += [f"{source.name}:{first + offset}: {kind} {what!r} in: {shown.strip()}"
                         for kind, what in found]
    return problems


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_markdown_holds_no_typed_results_and_no_lab_diary(source):
    problems = prose_problems(source)
    assert not problems, (
        f"{len(problems)} typed result(s) or lab-diary line(s) in the markdown of "
        f"{source.name}; point at the printed output instead, or add a setting to SETTINGS "
        "with its reason:\n" + "\n".join(problems))


def test_every_allowed_setting_is_used():
    """A stale allowlist entry would silently permit the number again later."""
    for notebook, phrases in SETTINGS.items():
        if notebook == "*":
            continue
        (source,) = (REPO / "notebooks").glob(f"{notebook}_*.py")
        prose = "\n".join("\n".join(lines) for _, lines in markdown_cells(source))
        prose = " ".join(MATH.sub("", prose).split())
        unused = [p for p in phrases if p not in prose]
        assert not unused, f"SETTINGS[{notebook!r}] entries no longer in the notebook: {unused}"


def test_the_check_catches_what_it_should(tmp_path):
    source = tmp_path / "99_example.py"
    source.write_text(
        "# %% [markdown]\n"
        "# AdaCos scores 0.736 against 0.638 (max FPR 0.1); the formula $s=0.5$ is fine,\n"
        "# measured on 2026-12-05 on an AMD Zen 4; an earlier version used 1 107 clips.\n"
        "#\n"
        "# **Criterion change.** The old criterion was replaced after the earlier run.\n"
        "\n"
        "# %%\n"
        "x = 0.25  # code is not prose\n")
    kinds = [p.split(": ")[1].split(" ")[0] for p in prose_problems(source)]
    assert sorted(kinds) == ["CPU", "CPU", "date", "decimal", "decimal", "history"]

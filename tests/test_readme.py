"""The README's generated blocks -- the findings per argument and the claims table -- show
exactly the verdicts stored in the executed notebooks."""

import re
import shutil
from pathlib import Path

import pytest

from asdtheory.repro import claims
from asdtheory.repro.verify import (
    ARGUMENTS,
    FINDINGS_BEGIN,
    FINDINGS_END,
    README_BEGIN,
    README_END,
    readme_text,
    shorten,
    stored_claims,
    update_readme,
)

REPO = Path(__file__).resolve().parents[1]
STALE = "README is stale: run `asdtheory verify --readme README.md`"


@pytest.fixture(scope="module")
def records():
    return stored_claims(REPO / "notebooks")


def test_regenerating_the_readme_from_the_stored_notebooks_reproduces_it(records):
    text = (REPO / "README.md").read_text()
    for marker in (FINDINGS_BEGIN, FINDINGS_END, README_BEGIN, README_END):
        assert text.count(marker) == 1, marker
    assert readme_text(text, records) == text, STALE


def test_a_changed_verdict_in_a_stored_notebook_makes_the_readme_stale(tmp_path, records):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks, ignore=shutil.ignore_patterns("*.py"))
    path = notebooks / "03_auxiliary_tasks_in_noise.ipynb"
    stored = path.read_text()
    assert stored.count('"verdict": "SUPPORTED"') >= 1
    path.write_text(stored.replace('"verdict": "SUPPORTED"', '"verdict": "CONTRADICTED"', 1))
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    update_readme(readme, notebooks)
    changed = readme.read_text()
    assert changed != (REPO / "README.md").read_text()
    assert readme_text(changed, records) != changed
    assert "C3.b **CONTRADICTED**" in changed.split(FINDINGS_END)[0]
    # the argument's own counts, on its title line, move with the verdict
    counts = [re.search(r"(\d+) SUPPORTED, (\d+) CONTRADICTED", next(
        line for line in text.splitlines() if line.startswith(f"**{ARGUMENTS[2].title}.**")))
        for text in ((REPO / "README.md").read_text(), changed)]
    (s0, c0), (s1, c1) = ((int(m[1]), int(m[2])) for m in counts)
    assert (s1, c1) == (s0 - 1, c0 + 1)
    assert "| C3.b |" in changed and "(notebooks/03_auxiliary_tasks_in_noise.ipynb)" in changed


def test_every_stored_claim_id_appears_once_and_in_one_argument(records):
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)), ids
    families = [f for a in ARGUMENTS for group, _ in a.groups for f in group]
    assert len(families) == len(set(families)), families
    assert {i.split(".")[0] for i in ids} == set(families)


def test_the_hand_written_words_of_the_findings_hold_no_verdict_and_no_number():
    for argument in ARGUMENTS:
        for _, words in argument.groups:
            for text in (argument.title, words):
                bare = re.sub(r"\b[BC]\d(\.[a-z](\.\d)?)?\b", "", text)
                assert not re.search(r"\d", bare.replace("(1)", "").replace("(2)", "")
                                     .replace("(3)", "")), text
                assert not any(v in text.upper() for v in claims.OUTCOMES), text


def test_shorten_cuts_outside_intervals_and_keeps_short_text():
    assert shorten("short") == "short"
    text = "a - b: 0.033 [0.008, 0.057] hmean (above 0); c - d: -0.020 [-0.044, -0.004]"
    cut = shorten(text, width=50)
    assert cut == "a - b: 0.033 [0.008, 0.057] hmean (above 0); …"
    assert len(shorten("x " * 200, width=160)) <= 162

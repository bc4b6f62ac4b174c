"""The README's claims table shows exactly the verdicts stored in the executed notebooks."""

from pathlib import Path

from asdtheory.repro.verify import README_BEGIN, README_END, readme_claims_table, stored_claims

REPO = Path(__file__).resolve().parents[1]


def test_readme_claims_table_matches_the_stored_notebook_outputs():
    text = (REPO / "README.md").read_text()
    block = text[text.index("\n", text.index(README_BEGIN)) + 1:text.index(README_END)]
    want = readme_claims_table(stored_claims(REPO / "notebooks"))
    assert block.strip() == want.strip(), (
        "README claims table is stale: run `asdtheory verify --readme README.md`"
    )


def test_every_stored_claim_id_appears_once():
    ids = [row[0] for row in stored_claims(REPO / "notebooks")]
    assert len(ids) == len(set(ids)), ids

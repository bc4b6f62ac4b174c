"""`asdtheory verify` end to end on two tiny notebooks: one that makes claims, one that fails."""

import textwrap

import pytest

from asdtheory import claims
from asdtheory.cli import main
from asdtheory.verify import claims_report, find_notebooks

GOOD = textwrap.dedent('''\
    # %% [markdown]
    # A notebook that checks two claims.

    # %%
    from asdtheory.claims import claim
    claim("T1.a", True, "violations 0 of 10", statement="a holds", notebook="01_good")
    claim("T1.b", False, "gap 0.1 < spread 0.2", statement="b holds", notebook="01_good")
''')
BROKEN = textwrap.dedent('''\
    # %%
    x = 1

    # %%
    raise RuntimeError("deliberately broken")
''')


@pytest.fixture
def notebook_dir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_good.py").write_text(GOOD)
    (folder / "02_broken.py").write_text(BROKEN)
    return folder


def test_verify_writes_the_claims_report_and_html(notebook_dir, tmp_path, capsys):
    out = tmp_path / "results"
    status = main(["verify", "--notebooks", "01", "--notebook-dir", str(notebook_dir),
                   "--output", str(out)])
    assert status == 0
    report = (out / "claims.md").read_text()
    assert "| T1.a | a holds | **SUPPORTED** | violations 0 of 10 | 01_good |" in report
    assert "| T1.b | b holds | **NOT SUPPORTED** | gap 0.1 < spread 0.2 | 01_good |" in report
    assert "1 of 2 claims supported." in report
    assert (out / "01_good.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert not (notebook_dir / "01_good.ipynb").exists()  # sources and stored outputs untouched


def test_verify_fails_and_names_the_cell(notebook_dir, tmp_path, capsys):
    status = main(["verify", "--notebooks", "01,02", "--notebook-dir", str(notebook_dir),
                   "--output", str(tmp_path / "results")])
    assert status == 1
    err = capsys.readouterr().err
    assert "02_broken.py" in err
    assert "cell 2" in err
    assert "deliberately broken" in err


def test_unknown_notebook_number_is_an_error(notebook_dir):
    with pytest.raises(ValueError, match="--notebooks 07: no such notebook"):
        find_notebooks(notebook_dir, ["07"])


def test_report_escapes_pipes_and_sorts_ids_numerically():
    recs = [claims.ClaimRecord(id=i, verdict="SUPPORTED", statement="s", summary="a | b",
                               figures={}, notebook=None) for i in ("C10", "C2", "C1.b")]
    table = claims_report(recs)
    assert table.index("| C1.b ") < table.index("| C2 ") < table.index("| C10 ")
    assert "a \\| b" in table

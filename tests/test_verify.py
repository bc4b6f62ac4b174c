"""`asdtheory verify` end to end on two tiny notebooks: one that makes claims, one that fails."""

import re
import textwrap
from pathlib import Path

import pytest

from asdtheory.repro import claims
from asdtheory.repro.cli import main
from asdtheory.repro.verify import REAL_DATA, claims_report, find_notebooks, missing_data

REPO = Path(__file__).resolve().parents[1]

GOOD = textwrap.dedent('''\
    # %% [markdown]
    # A notebook that checks two claims.

    # %%
    from asdtheory.repro.claims import claim
    claim("T1.a", "SUPPORTED", "violations 0 of 10", statement="a holds", notebook="01_good")
    claim("T1.b", "INCONCLUSIVE", "gap 0.1 [-0.1, 0.3]", statement="b holds",
          detectable="0.2 AUC", notebook="01_good")
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
    assert ("| T1.b | b holds | **INCONCLUSIVE** | gap 0.1 [-0.1, 0.3]; detectable effect 0.2 "
            "AUC | 01_good |") in report
    assert "2 claims: 1 SUPPORTED, 0 CONTRADICTED, 1 INCONCLUSIVE." in report
    assert "ci mode, 1 notebook(s), on " in report  # and the CPU type the numbers come from
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


def test_missing_recordings_are_named_with_the_archive_to_get(tmp_path):
    notebooks = [tmp_path / "04_real.py"]
    problems = missing_data(notebooks, mode="ci", root=tmp_path, fetch=False)
    assert len(problems) == 2
    assert "dev_valve.zip" in problems[0]
    assert str(tmp_path / "dcase2023t2" / "dev_data" / "raw" / "valve") in problems[0]
    assert "asdtheory data fetch --year 2023 --machine valve" in problems[0]
    assert "Speech Commands" in problems[1]
    full = missing_data(notebooks, mode="full", root=tmp_path, fetch=False)
    assert len(full) == 8  # seven development machines and the noise


def test_the_shared_recordings_satisfy_ci_mode(shared_data):
    assert missing_data([Path("04_real.py")], mode="ci", root=shared_data, fetch=False) == []


def test_synthetic_only_notebooks_need_no_recordings(tmp_path):
    assert missing_data([tmp_path / "01_x.py"], mode="full", root=tmp_path, fetch=False) == []


def test_verify_stops_before_running_when_data_is_missing(notebook_dir, tmp_path, capsys):
    (notebook_dir / "04_real.py").write_text(GOOD)
    status = main(["verify", "--notebooks", "04", "--notebook-dir", str(notebook_dir),
                   "--output", str(tmp_path / "out"), "--data", str(tmp_path / "empty"),
                   "--no-fetch"])
    assert status == 1
    assert "Not running" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "loaders"), [
    ("dcase", r"valve_mini_protocol|official_split|index_dataset"),
    ("noise", r"load_noise"),
])
def test_real_data_list_matches_the_notebook_sources(kind, loaders):
    sources = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
    readers = {p.name[:2] for p in sources if re.search(loaders, p.read_text())}
    declared = {nb for nb, kinds in REAL_DATA.items() if kind in kinds}
    assert readers <= declared, f"notebooks reading {kind} data: {sorted(readers - declared)}"


def test_verdict_counts_name_withheld_claims_only_when_there_are_some():
    from asdtheory.repro.verify import verdict_counts
    assert verdict_counts(["SUPPORTED", "CONTRADICTED"]) == (
        "2 claims: 1 SUPPORTED, 1 CONTRADICTED, 0 INCONCLUSIVE")
    assert verdict_counts(["SUPPORTED", "WITHHELD", "WITHHELD"]) == (
        "3 claims: 1 SUPPORTED, 0 CONTRADICTED, 0 INCONCLUSIVE, 2 WITHHELD")

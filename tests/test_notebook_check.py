"""The comparison of re-executed notebooks with their stored outputs
(asdtheory.repro.notebook_check): exact on the rounding that stored them, at each cell's
declared tolerance elsewhere; a changed verdict, a figure moved beyond its tolerance or a
changed count fails and is named."""

import copy
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asdtheory.repro import notebook_check, notebook_run
from asdtheory.repro.claims import CLAIM_MIME
from asdtheory.repro.notebook_check import EXACT, Tolerance, cell_tolerance, compare_text

REPO = Path(__file__).resolve().parents[1]
STORED = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_numbers_are_split_from_names_and_layout():
    pieces, numbers = notebook_check.split_numbers("C1.a  f0 640x480 |  -0.50  1e-3 of 12\n")
    assert numbers == ["-0.50", "1e-3", "12"]
    assert pieces == ["C1.a f0 640x480 | ", " ", " of ", ""]


def test_a_tolerance_needs_known_keys_and_a_reason():
    assert cell_tolerance("x = 1") == EXACT
    declared = cell_tolerance("  # tolerance: abs=0.02 rel=0.1 counts=2; measured 0.008\nf()")
    assert declared == Tolerance(abs=0.02, rel=0.1, counts=2, reason="measured 0.008")
    for bad, match in [("# tolerance: abs=0.02", "no reason"),
                       ("# tolerance: abs=0.02 ;  ", "no reason"),
                       ("# tolerance: tol=0.02; why", "expected abs, rel, counts"),
                       ("# tolerance: abs=-1; why", ">= 0"),
                       ("# tolerance: counts=0.5; why", "not a int"),
                       ("# tolerance: abs=1; a\n# tolerance: abs=2; b", "one tolerance")]:
        with pytest.raises(ValueError, match=match):
            cell_tolerance(bad)


@given(stored=st.floats(-10, 10), move=st.floats(-1, 1), bound=st.floats(0, 1))
def test_a_decimal_passes_exactly_when_it_moved_by_at_most_the_bound(stored, move, bound):
    tolerance = Tolerance(abs=bound, reason="test")
    new = stored + move
    allowed = tolerance.allows(stored, new, integer=False)
    if abs(new - stored) <= bound * (1 - 1e-6):
        assert allowed
    if abs(new - stored) > bound * (1 + 1e-6):
        assert not allowed


def test_text_is_compared_exactly_and_numbers_at_the_tolerance():
    stored = "C4.a clean   0.476 vs 0.452 (3 seeds)\nCLAIM C4.a SUPPORTED | margin 0.024"
    within = "C4.a clean 0.460   vs 0.452 (3 seeds)\nCLAIM C4.a SUPPORTED | margin 0.008"
    tolerance = Tolerance(abs=0.02, reason="test")
    assert compare_text(stored, within, tolerance) == []
    assert compare_text(stored, within, EXACT)  # the same change, compared exactly, fails
    flipped = within.replace("SUPPORTED", "CONTRADICTED")
    [problem] = compare_text(stored, flipped, tolerance)
    assert "text differs" in problem and "CONTRADICTED" in problem
    [problem] = compare_text(stored, within.replace("0.460", "0.500"), tolerance)
    assert problem.startswith("number 0.476 -> 0.500") and "C4.a clean" in problem
    [problem] = compare_text(stored, within.replace("3 seeds", "4 seeds"), tolerance)
    assert problem.startswith("count 3 -> 4")


def _claim_cells(path: Path):
    """(code-cell tolerance, outputs) of every cell of a stored notebook showing a claim."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    return [(cell_tolerance(c.source), c.outputs) for c in cells
            if any(CLAIM_MIME in o.get("data", {}) for o in c.outputs)]


def _record(outputs) -> dict:
    return next(o["data"][CLAIM_MIME] for o in outputs if CLAIM_MIME in o.get("data", {}))


def _figure(figures: dict, integer: bool, prefix: tuple = ()):
    """(key path, value) of the first figure, nested dicts searched, that is an integer (or a
    decimal)."""
    for name, value in figures.items():
        if isinstance(value, dict):
            found = _figure(value, integer, (*prefix, name))
            if found:
                return found
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and isinstance(value, int) == integer:
            return (*prefix, name), value
    return None


def _flip_verdict(record: dict) -> None:
    record["verdict"] = "CONTRADICTED" if record["verdict"] == "SUPPORTED" else "SUPPORTED"


def _set_figure(record: dict, *, path: tuple, value) -> None:
    figures = record["figures"]
    for key in path[:-1]:
        figures = figures[key]
    figures[path[-1]] = value


def _problems_after(edit, stored: list, tolerance: Tolerance, notebook: str) -> list[str]:
    """The comparison of a cell's stored outputs with a copy whose claim record ``edit``
    changed, as in a tolerant (another CPU) run."""
    edited = copy.deepcopy(stored)
    edit(_record(edited))
    return notebook_check.compare_outputs(edited, stored, tolerance, notebook=notebook,
                                          figure_rel_floor=notebook_check.FIGURE_REL_FLOOR)


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.stem)
def test_edited_copies_of_the_stored_claims_fail_naming_notebook_claim_and_figure(path):
    cells = _claim_cells(path)
    assert cells, f"{path.name} shows no claim record"
    edited_figures = 0
    for tolerance, outputs in cells:
        stored = json.loads(json.dumps(outputs))
        record = _record(stored)
        where = f"{path.stem}, claim {record['id']}"
        [problem] = _problems_after(_flip_verdict, stored, tolerance, path.stem)
        assert problem.startswith(f"{where}: verdict")

        decimal = _figure(record["figures"], integer=False)
        if decimal:
            keys, value = decimal
            beyond = value + 2 * (tolerance.abs + tolerance.rel * abs(value)) \
                + 1e-3 * (1 + abs(value))
            [problem] = _problems_after(partial(_set_figure, path=keys, value=beyond),
                                        stored, tolerance, path.stem)
            name = ".".join(keys)
            assert problem.startswith(f"{where}, figure {name}: {beyond} -> {value} beyond")
            edited_figures += 1
        count = _figure(record["figures"], integer=True)
        if count and tolerance.counts == 0:
            keys, value = count
            [problem] = _problems_after(partial(_set_figure, path=keys, value=value + 1),
                                        stored, tolerance, path.stem)
            name = ".".join(keys)
            assert problem.startswith(f"{where}, figure {name}: {value + 1} -> {value} beyond")
            edited_figures += 1
    assert edited_figures, f"{path.name}: no claim figure was edited"


TINY = """# %%
from asdtheory.repro.claims import claim

# %%
# tolerance: abs=0.01; test tolerance
claim("T1", "SUPPORTED", "auc 0.500", statement="A test claim.", figures={"auc": 0.5, "n": 3},
      notebook="01_tiny")

# %%
# tolerance: abs=0.01; test tolerance
print("AUC 0.500 of 3 clips")

# %%
print("violations 0 of 1100")

# %%
# tolerance: abs=0.01; test tolerance
claim("T2", "CONTRADICTED", "margin -0.100", statement="Another.", notebook="01_tiny")
"""


def _edit_stored(path: Path, *, other_cpu: bool) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    _record(code[1].outputs)["figures"]["auc"] = 0.52             # beyond abs 0.01
    code[2].outputs[0]["text"] = "AUC 0.505 of 3 clips\n"          # within abs 0.01
    code[3].outputs[0]["text"] = "violations 1 of 1100\n"          # a count, exact
    _record(code[4].outputs)["verdict"] = "SUPPORTED"               # a verdict
    if other_cpu:
        notebook.metadata["asdtheory"]["cpu"] = "Another CPU (family 0 model 0, AVX2)"
    nbformat.write(notebook, path)


def _nbval(path: Path) -> subprocess.CompletedProcess:
    # The flags execute_notebook recorded: ours plus the developer's.
    env = {**os.environ, "XLA_FLAGS": notebook_run.xla_flags(os.environ.get("XLA_FLAGS"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "asdtheory.repro.notebook_check", "--nbval",
         "-p", "no:cacheprovider", "-q", "-rA", path.name],
        cwd=path.parent, env=env, capture_output=True, text=True, timeout=300)


def test_nbval_reports_each_edit_and_is_exact_on_the_stored_rounding(tmp_path):
    source = tmp_path / "01_tiny.py"
    source.write_text(TINY)
    executed = notebook_run.execute_notebook(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # keep this repository's options away

    _edit_stored(executed, other_cpu=True)
    run = _nbval(executed)
    report = run.stdout
    assert "compared at tolerance abs 0.01 (test tolerance)" in report
    assert "01_tiny, claim T1, figure auc: 0.52 -> 0.5 beyond tolerance abs 0.01" in report
    assert "count 1 -> 0 beyond exact in: violations 1 of 1100" in report
    assert "01_tiny, claim T2: verdict 'SUPPORTED' -> 'CONTRADICTED'" in report
    assert "PASSED 01_tiny.ipynb::Cell 2" in report, report   # 0.505 is within 0.01
    assert "3 failed, 2 passed" in report.splitlines()[-1], report

    executed = notebook_run.execute_notebook(source)  # the same CPU and flags: exact
    _edit_stored(executed, other_cpu=False)
    report = _nbval(executed).stdout
    assert "compared exactly (same CPU type, CPU count and XLA flags as the stored run)" \
        in report
    assert "FAILED 01_tiny.ipynb::Cell 2" in report, report  # 0.505 != 0.500
    assert "PASSED 01_tiny.ipynb::Cell 0" in report


def test_exact_only_on_the_stored_cpu_type_count_and_flags(tmp_path):
    # XLA splits matmuls and convolutions over one thread per CPU, so the count is part of
    # the rounding (notebook 05 moved by 0.03 between one and two cores); kernels run on one.
    here = {"cpu": notebook_run.cpu_signature(), "cpus": notebook_run.kernel_cpus(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}
    cases = {"same": here, "more_cpus": {**here, "cpus": here["cpus"] + 1},
             "unrecorded": {k: v for k, v in here.items() if k != "cpus"}}
    read = {}
    for name, meta in cases.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["asdtheory"] = meta
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        read[name] = notebook_check.rounding_of_notebook(str(tmp_path / f"{name}.ipynb"))
    assert read["same"] == notebook_check.this_rounding()
    assert read["more_cpus"] != notebook_check.this_rounding()
    assert f", {notebook_check.CPUS_BEFORE_RECORDED} CPUs" in read["unrecorded"]


def test_cell_moves_measure_numbers_however_the_kernel_cut_its_prints(tmp_path):
    def executed(name, chunks):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("print(...)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=t) for t in chunks])]
        nbformat.write(notebook, tmp_path / name)
        return tmp_path / name

    stored = executed("stored.ipynb", ["AUC 0.785\nline 0.716", "\n", "clicks 12.5\n"])
    rerun = executed("rerun.ipynb", ["AUC 0.782\n", "line 0.725\nclicks 12.0\n"])
    (move,) = notebook_check.cell_moves(stored, [rerun])
    assert move.text == []
    assert move.abs == pytest.approx(0.009) and move.rel == pytest.approx(0.04)


def test_images_are_left_out_before_the_sanitisers_run():
    # nbval's sanitiser regexes take quadratic time on a long base64 string (a 100 kB PNG
    # took minutes per cell), so images must never reach them.
    seen = []
    output = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": "iVBORw0KGgo" * 1000, "text/plain": "<Figure size 2 Axes>"}}
    kept = notebook_check._sanitized(output, lambda value: seen.append(value) or value)
    assert seen == ["<Figure size 2 Axes>"]
    assert kept == {"data": {"text/plain": "<Figure size 2 Axes>"}}

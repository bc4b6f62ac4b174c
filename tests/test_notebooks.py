"""The notebooks: paired sources, clean executed outputs, one CLAIM line per claim, and the
machinery that executes them (asdtheory.repro.notebook_run) and sanitises them for nbval."""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

from asdtheory.repro import claims, notebook_run
from asdtheory.repro.claims import CLAIM_MIME

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
SANITIZE = REPO / "tests" / "nbval_sanitize.cfg"
CLAIM_LINE = re.compile(rf"^CLAIM (\S+) ({'|'.join(claims.OUTCOMES)}) \| \S", re.MULTILINE)


def _cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def _stored(source: Path):
    ipynb = source.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.fail(f"{ipynb.name} is missing: run `python -m asdtheory.repro.notebook_run "
                    f"notebooks/{source.name}` and commit the executed notebook.")
    return nbformat.read(ipynb, as_version=4)


def _text_outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_there_are_notebooks():
    assert {p.name for p in SOURCES} >= {"01_compactness.py", "02_trivial_solutions.py"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_and_notebook_hold_the_same_cells(source):
    from_source = jupytext.read(source, fmt="py:percent")
    assert _cells(_stored(source)) == _cells(from_source), (
        f"{source.name} and its .ipynb differ: re-execute with `python -m "
        f"asdtheory.repro.notebook_run notebooks/{source.name}`."
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_was_executed_in_order_without_errors(source):
    code = [c for c in _stored(source).cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "stored outputs must come from one run from a clean kernel, cells in order")
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{source.name} stored an error: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_claim_has_exactly_one_verdict_line(source):
    text = _text_outputs(_stored(source))
    claimed = [m.group(1) for m in CLAIM_LINE.finditer(text)]
    code = source.read_text()
    claim_calls = re.findall(r'^(?:\w+ = )?claim\(\s*"([^"]+)"', code, re.MULTILINE)
    # A call in a loop over results (claim(result.id, ...)) or through claims.report(result)
    # names its ids at run time.
    looped = (re.findall(r'^\s+(?:\w+ = )?claim\(\s*[^"\s]', code, re.MULTILINE)
              or re.findall(r'\breport\(', code))
    assert claimed, f"{source.name} prints no CLAIM line"
    # The summary table at the end repeats each claim once, without the "CLAIM" prefix.
    assert sorted(claimed) == sorted(set(claimed)), f"duplicate CLAIM lines: {claimed}"
    if looped:
        assert set(claim_calls) < set(claimed)
    else:
        assert sorted(claimed) == sorted(claim_calls)
    # Each line is shown with its record, which the notebook checks compare figure by figure.
    shown = [o.data for c in _stored(source).cells for o in c.get("outputs", [])
             if CLAIM_MIME in o.get("data", {})]
    assert sorted(d[CLAIM_MIME]["id"] for d in shown) == sorted(claimed)
    for data in shown:
        assert data["text/plain"] == f"CLAIM {data[CLAIM_MIME]['id']} " \
            f"{data[CLAIM_MIME]['verdict']} | {data[CLAIM_MIME]['summary']}"


def test_sanitizers_parse_and_leave_claims_and_numbers_alone():
    patterns = get_sanitize_patterns(SANITIZE.read_text())
    assert len(patterns) >= 3

    def sanitize(text):
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    kept = ["CLAIM C1.a SUPPORTED | violations 0 of 1100000 pairs; deficit 3.86 eps*s",
            "normalized softmax   10   32    16        1.989 ->    0.0846        16.7    0.994",
            "control (no bias, fixed c, ReLU)    1.139e-01 -> 7.151e-04   6.3e-03   0.799"]
    for line in kept:
        assert sanitize(line) == line
    assert sanitize("train:  40%|####      | 12/30 [00:03<00:04,  4.1epoch/s, loss=0.12]") \
        == "train:  TQDM-PROGRESS"
    assert sanitize("<Foo object at 0x7f3a2c1d9e80>") == "<Foo object at 0xADDRESS>"
    assert sanitize("/x/site-packages/jax/_src/a.py:12: UserWarning: slow") \
        == "FILE:LINE: UserWarning: slow"


def _write_source(path: Path, cells: list[str]) -> Path:
    path.write_text("".join(f"# %%\n{cell}\n\n" for cell in cells))
    return path


def _on_every_cpu(run):
    """``run()`` in a thread allowed on every CPU of the machine (the test processes are pinned
    to one): {"allowed": its CPUs, "result": what ``run`` returned, "after": its CPUs after};
    an exception of ``run`` is raised here."""
    outcome = {}

    def thread():
        try:
            os.sched_setaffinity(0, range(os.cpu_count()))
        except OSError:  # a container that allows fewer CPUs than the machine has
            pass
        outcome["allowed"] = os.sched_getaffinity(0)
        try:
            outcome["result"] = run()
        except BaseException as err:  # re-raised in the calling thread
            outcome["error"] = err
        outcome["after"] = os.sched_getaffinity(0)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome


needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                    reason="CPU affinity is a Linux interface")


@needs_affinity
@pytest.mark.parametrize("mode", ["ci", "full"])
def test_execute_notebook_runs_a_clean_kernel_with_mode_flags_and_cpus(tmp_path, mode):
    # ci mode on one CPU (the stored outputs' rounding must not depend on the core count);
    # full mode keeps every CPU the caller has, for its data pipeline and accelerators.
    source = _write_source(tmp_path / "01_probe.py", [
        "import os",
        'print(os.environ["ASDTHEORY_MODE"], "|", os.environ["XLA_FLAGS"], "|", '
        'os.environ["PROBE"], "|", os.path.basename(os.getcwd()), "|", '
        'len(os.sched_getaffinity(0)))',
    ])
    outcome = _on_every_cpu(
        lambda: notebook_run.execute_notebook(source, mode=mode, env={"PROBE": "yes"}))
    written = outcome["result"]
    assert written == tmp_path / "01_probe.ipynb"
    outputs = nbformat.read(written, as_version=4).cells[1].outputs
    flags = notebook_run.xla_flags(os.environ.get("XLA_FLAGS"))
    assert flags.startswith(notebook_run.XLA_FLAGS)
    cpus = 1 if mode == "ci" else len(outcome["allowed"])
    assert outputs[0].text.strip() == f"{mode} | {flags} | yes | {tmp_path.name} | {cpus}"
    assert outcome["after"] == outcome["allowed"]  # the caller gets its CPUs back
    # CPU type, count and flags are recorded: stored numbers reproduce bit for bit only there.
    assert notebook_run.stored_cpu(written) == notebook_run.cpu_signature()
    assert nbformat.read(written, as_version=4).metadata.asdtheory.xla_flags == flags
    assert nbformat.read(written, as_version=4).metadata.asdtheory.cpus == cpus
    if mode == "ci":
        assert cpus == notebook_run.kernel_cpus()


@needs_affinity
def test_pin_to_one_cpu_pins_the_thread_and_the_processes_it_starts():
    probe = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]

    def pin_second():
        before = notebook_run.pin_to_one_cpu(1)
        return before, os.sched_getaffinity(0), subprocess.run(
            probe, capture_output=True, text=True, check=True).stdout.strip()

    outcome = _on_every_cpu(pin_second)
    before, pinned, child = outcome["result"]
    assert before == outcome["allowed"]
    expected = sorted(before)[1 % len(before)]
    assert pinned == {expected} and child == f"[{expected}]"
    with pytest.raises(ValueError, match="index must be >= 0"):
        notebook_run.pin_to_one_cpu(-1)


def test_a_developers_xla_flags_are_kept_beside_ours(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=SSE4_2 --xla_cpu_multi_thread_eigen=false")
    assert notebook_run.kernel_environment("ci")["XLA_FLAGS"] == (
        f"{notebook_run.XLA_FLAGS} --xla_cpu_max_isa=SSE4_2")


def test_execute_notebook_shuts_its_kernel_down(tmp_path):
    source = _write_source(tmp_path / "01_pid.py", ["import os", "print(os.getpid())"])
    written = notebook_run.execute_notebook(source)
    pid = int(nbformat.read(written, as_version=4).cells[1].outputs[0].text)
    with pytest.raises(ProcessLookupError):  # signal 0 only asks whether the process exists
        os.kill(pid, 0)


def test_cpu_signature_names_the_vector_extension_and_stored_notebooks_carry_it():
    signature = notebook_run.cpu_signature()
    if Path("/proc/cpuinfo").exists():
        assert re.search(r"family \S+ model \S+, (AVX-512|AVX2|AVX|no AVX)\)$", signature)
    for ipynb in (source.with_suffix(".ipynb") for source in SOURCES):
        assert notebook_run.stored_cpu(ipynb), f"{ipynb.name} has no recorded CPU type"


def test_execute_notebook_names_the_failing_cell_and_keeps_partial_outputs(tmp_path):
    source = _write_source(tmp_path / "02_broken.py",
                           ['print("before")', 'raise ValueError("broken on purpose")', "1"])
    output = tmp_path / "out" / "broken.ipynb"
    with pytest.raises(notebook_run.NotebookFailed, match=r"code cell 2 of 3.*broken on purpose"):
        notebook_run.execute_notebook(source, output=output)
    cells = nbformat.read(output, as_version=4).cells
    assert cells[0].outputs[0].text == "before\n"
    assert cells[2].execution_count is None


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        notebook_run.kernel_environment("fast")
    with pytest.raises(FileNotFoundError, match="jupytext source"):
        notebook_run.execute_notebook(tmp_path / "missing.py")
    with pytest.raises(FileNotFoundError, match="jupytext source"):
        notebook_run.read_source(tmp_path)


# A training call in a notebook would decide a claim on one run made at reading time; the
# trainings behind verdicts are experiments with committed records (results/).
TRAINING_CALL = re.compile(r"\btrain\.fit\(|\bscale_trajectory\(|\bexperiments\.run\(")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_notebook_trains_what_a_verdict_rests_on(source):
    found = TRAINING_CALL.findall(source.read_text())
    assert not found, f"{source.name} trains in the notebook: {found}"


def test_the_notebooks_define_few_functions():
    # an argument reads as calls of the library; helpers belong there, tested
    defs = {s.stem: len(re.findall(r"^def ", s.read_text(), re.MULTILINE)) for s in SOURCES}
    assert sum(defs.values()) <= 10, defs

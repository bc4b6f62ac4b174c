"""`asdtheory bench` collects the rows of every script into one ratio table; the scripts that
measure against PyTorch stop at once, naming the install command, when it is missing."""

import json
import runpy
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from asdtheory.repro.bench import ratio_table, run_benchmarks
from asdtheory.repro.cli import main

SCRIPT = textwrap.dedent('''\
    def main():
        return {"benchmark": "toy", "rows": [
            {"case": "fast", "reference": "numpy", "ratio": 4.0, "ours_ms": 1.0},
            {"case": "slow", "reference": "numpy", "ratio": 0.5},
        ]}
''')


def test_bench_prints_one_table_and_writes_json(tmp_path, capsys):
    (tmp_path / "bench_toy.py").write_text(SCRIPT)
    out = tmp_path / "bench.json"
    assert main(["bench", "--benchmark-dir", str(tmp_path), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "toy        fast  numpy      4.00x" in printed
    assert "toy        slow  numpy      0.50x" in printed
    assert json.loads(out.read_text())[0]["rows"][0]["ours_ms"] == 1.0


def test_a_row_without_a_ratio_is_an_error(tmp_path):
    (tmp_path / "bench_bad.py").write_text(
        "def main():\n    return {'rows': [{'case': 'x', 'reference': 'y'}]}\n")
    with pytest.raises(ValueError, match=r"bench_bad.py: a row lacks \['ratio'\]"):
        run_benchmarks([tmp_path / "bench_bad.py"])


def test_ratio_table_header():
    table = ratio_table([{"script": "bench_a.py", "rows": [
        {"case": "c", "reference": "r", "ratio": 2}]}])
    assert table.splitlines()[0].split() == ["benchmark", "case", "reference", "ratio"]


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["bench_reference.py", "profile_reference.py"])
def test_reference_scripts_without_torch_stop_first_with_the_install_command(script,
                                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scripts add benchmarks/ to it
    script_main = runpy.run_path(str(ROOT / "benchmarks" / script), run_name="bench")["main"]
    with pytest.raises(ModuleNotFoundError, match=r'pip install -c constraints.txt -e '
                                                  r'"\.\[bench\]"'):
        script_main(quick=True)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("torch") for d in extras["optional-dependencies"]["bench"])

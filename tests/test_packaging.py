"""The install paths stay in agreement: pyproject extras, environment.yml, README, CI."""

import re
import shlex
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _names(requirements):
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_dev_extra_is_notebooks_plus_test_plus_ruff():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert _names(extras["dev"]) == _names(extras["notebooks"]) | _names(extras["test"]) | {"ruff"}


def test_environment_yml_installs_the_same_extras_and_python():
    text = (REPO / "environment.yml").read_text()
    python = re.search(r"-\s*python=(\d+)\.(\d+)", text)
    assert python, "environment.yml must pin python=X.Y"
    minimum = re.search(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, minimum.groups()))
    pip_lines = re.findall(r"^\s+-\s+(-[ec].*)$", text, flags=re.M)
    assert "-c constraints.txt" in pip_lines
    assert "-e .[dev]" in pip_lines


def _readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_has_exactly_two_setup_to_result_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "asdtheory verify" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    def words(line):
        return [w for w in shlex.split(line) if w != "--quiet"]

    ci_steps = [words(line) for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    for step in _readme_commands()[1].split(" && "):
        assert words(step) in ci_steps, f".ci/run does not run the README step {step!r}"


def test_every_constraint_is_pinned():
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^\s]*", line), line


def _imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_science_modules_import_no_tooling():
    science = [p for p in (REPO / "asdtheory").rglob("*.py") if "repro" not in p.parts]
    assert len(science) > 10
    for path in science:
        tooling = sorted(n for n in _imports(path)
                         if n == "argparse" or n.startswith("asdtheory.repro"))
        assert not tooling, f"{path.relative_to(REPO)} imports {tooling}: tooling belongs in " \
            "asdtheory/repro"


def test_the_command_is_the_repro_cli():
    assert PYPROJECT["project"]["scripts"] == {"asdtheory": "asdtheory.repro.cli:main"}

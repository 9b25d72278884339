"""The project's packaging: pyproject and environment.yml agree; the README's quickstart; CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(_split(r) for r in requirements)


def _conda_requirements() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: dict[str, str] = {}
    pip: list[str] = []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip += entry["pip"]
        else:
            name, spec = _split(entry)
            conda[name] = spec
    return conda, pip


def test_environment_yml_has_the_same_dependencies_as_pyproject() -> None:
    conda, pip = _conda_requirements()
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in _pyproject_requirements().items()}
    expected["pip"] = ""
    python_spec = conda.pop("python")
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python_spec == requires_python
    assert conda == expected
    assert pip == ["--no-deps", "-e ."], "environment.yml installs the course itself, without deps"


def test_readme_quickstart_is_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["make course", "make test"]


def test_ci_runs_the_readme_test_command_in_a_fresh_environment() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "rm -rf .venv" in script and "make test" in script
    makefile = (ROOT / "Makefile").read_text()
    assert "status -eq 5" in makefile, "pytest's exit code 5 (no tests) must fail the run"


def test_import_is_light() -> None:
    code = (
        "import sys, mtl_course, mtl_course.device, mtl_course.models, mtl_course.linear; "
        "heavy = [m for m in ('seaborn', 'ipywidgets', 'sklearn', 'matplotlib.pyplot') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

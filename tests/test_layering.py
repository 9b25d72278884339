"""The package's layers hold: no module imports from a layer above its own, and no cycles.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are
checked by import-linter. The second test shows that the check can fail: it
copies the package, adds one upward import, and expects the contract to break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the repository's contracts on the ``mtl_course`` found in ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("layering")
    shutil.copytree(ROOT / "mtl_course", parent / "mtl_course", ignore=shutil.ignore_patterns("__pycache__"))
    return parent


def test_the_package_keeps_its_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "data/_upward.py",
            "from mtl_course.train import fit\n",
            "mtl_course.data is not allowed to import mtl_course.train",
        ),
        (
            "models/_upward.py",
            "import mtl_course.widgets\n",
            "mtl_course.models is not allowed to import mtl_course.widgets",
        ),
        ("grading/_upward.py", "from mtl_course import device\n", "grading is a sealed annex"),
    ],
)
def test_an_upward_import_breaks_the_contract(package_copy: Path, module: str, line: str, broken: str) -> None:
    path = package_copy / "mtl_course" / module
    path.write_text(line)
    try:
        result = lint_imports(package_copy)
    finally:
        path.unlink()
    assert result.returncode != 0
    assert broken in result.stdout.replace("\n", " ").replace("  ", " ") or broken in result.stdout, result.stdout

"""The Makefile's install recipe: pip arguments in TORCH_SPEC, reinstall when they change, the Python check.

The recipes run for real with a stand-in interpreter that records its arguments (no pip, no network).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$@" >> "{log}"
if [ "$1" = "-c" ]; then exec {python} "$@"; fi
exit 0
"""


def make(tmp_path: Path, *args: str, version_ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``make -C ROOT ARGS`` with VENV in ``tmp_path`` and a stand-in python and mtl-course that log calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    real = sys.executable if version_ok else f"{sys.executable} -c 'import sys; sys.exit(1)' #"
    for name in ("python", "mtl-course"):
        script = bin_dir / name
        script.write_text(FAKE_PYTHON.format(log=tmp_path / "calls.log", python=real))
        script.chmod(0o755)
    variables = [f"VENV={tmp_path / 'venv'}", f"BIN={bin_dir}", f"PYTHON={bin_dir / 'python'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *variables, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def pip_installs(tmp_path: Path) -> list[list[str]]:
    lines = (tmp_path / "calls.log").read_text().splitlines()
    return [shlex.split(line)[3:] for line in lines if line.startswith("-m pip install") and "--upgrade" not in line]


def test_torch_spec_passes_separate_pip_arguments(tmp_path: Path) -> None:
    spec = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    result = make(tmp_path, "setup", f"TORCH_SPEC={spec}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pip_installs(tmp_path)[0] == ["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert pip_installs(tmp_path)[1] == ["-e", "."]  # the student install has no test/site/browser extras


def test_setup_is_idempotent_and_reinstalls_when_the_spec_changes(tmp_path: Path) -> None:
    assert make(tmp_path, "setup", "TORCH_SPEC=torch==2.13.0").returncode == 0
    assert make(tmp_path, "-q", "setup", "TORCH_SPEC=torch==2.13.0").returncode == 0  # up to date
    assert make(tmp_path, "-q", "setup", "TORCH_SPEC=torch==2.12.0").returncode != 0  # out of date
    assert make(tmp_path, "setup", "TORCH_SPEC=torch==2.12.0").returncode == 0
    assert [args[0] for args in pip_installs(tmp_path) if args[0].startswith("torch")] == [
        "torch==2.13.0",
        "torch==2.12.0",
    ]


def test_setup_dev_adds_the_extras(tmp_path: Path) -> None:
    assert make(tmp_path, "setup-dev").returncode == 0
    assert pip_installs(tmp_path)[-1] == ["-e", ".[test,site,browser]"]


def test_an_old_python_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = make(tmp_path, "setup", version_ok=False)
    assert result.returncode != 0
    assert "needs Python >= 3.10" in result.stderr and "PYTHON=python3.11" in result.stderr

"""The mtl-course command: doctor reports, and fails clearly when torch is missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from mtl_course.cli import main

BLOCK_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch'")
            return None

    sys.meta_path.insert(0, BlockTorch())
    from mtl_course.cli import main
    sys.exit(main(["doctor"]))
    """
)


def test_doctor_reports_versions_device_and_notebooks(capsys) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device:" in out and "course notebooks:" in out
    assert "OK" in out


def test_doctor_fails_clearly_when_torch_is_missing() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "torch          MISSING" in result.stdout
    assert "ERROR: missing or broken: torch" in result.stdout
    assert "Traceback" not in result.stderr

"""The mtl-course command: doctor reports, and fails clearly when torch is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

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


# -- ordinary mistakes: one line that says what was wrong, exit code 1 ------------------
def _error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_execute_a_missing_file(capsys, tmp_path) -> None:
    assert "no such file" in _error_line(capsys, ["execute", str(tmp_path / "missing.ipynb")])


def test_execute_a_file_that_is_not_a_notebook(capsys, tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a notebook (expected a .ipynb file)" in _error_line(capsys, ["execute", str(text)])


def test_execute_a_broken_notebook(capsys, tmp_path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": ')
    assert "not a readable notebook" in _error_line(capsys, ["execute", str(broken)])


def test_execute_a_read_only_notebook(capsys, tmp_path) -> None:
    import nbformat

    path = tmp_path / "ro.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    path.chmod(0o444)
    try:
        if os.access(path, os.W_OK):  # root ignores file modes
            pytest.skip("running as root: a read-only file is still writable")
        assert "read-only" in _error_line(capsys, ["execute", str(path)])
    finally:
        path.chmod(0o644)


def test_release_without_a_solutions_folder(capsys, tmp_path) -> None:
    err = _error_line(capsys, ["release", "--solutions", str(tmp_path / "nope"), "--exercises", str(tmp_path)])
    assert "--solutions" in err and "no such folder" in err


def test_release_into_a_file(capsys, tmp_path) -> None:
    target = tmp_path / "exercises"
    target.write_text("a file")
    err = _error_line(capsys, ["release", "--exercises", str(target)])
    assert "--exercises" in err and "not a folder" in err


def test_release_from_an_empty_folder(capsys, tmp_path) -> None:
    (tmp_path / "solutions").mkdir()
    err = _error_line(capsys, ["release", "--solutions", str(tmp_path / "solutions"), "--exercises", str(tmp_path)])
    assert "no solution notebooks" in err


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_numeric_options_reject_values_that_make_no_sense(capsys, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["execute", "--timeout", value])
    assert exit_info.value.code == 2
    assert "--timeout" in capsys.readouterr().err


def test_version_and_help_describe_the_tool(capsys) -> None:
    from mtl_course import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"mtl-course {__version__}"
    for command in ("doctor", "execute", "release", "grade"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "example: mtl-course" in text and "``" not in text and ":func:" not in text, command

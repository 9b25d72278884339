"""The grading system without kernels: sheet format, release, check helpers, gradebook, sandbox."""

from __future__ import annotations

import copy
import json
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from mtl_course.cli import main
from mtl_course.grading import checks
from mtl_course.grading.format import BEGIN_SOLUTION, SheetFormatError, cell_role, parse_sheet
from mtl_course.grading.grade import Instructor, find_submissions, graded_notebook, suspicious_names
from mtl_course.grading.gradebook import CheckResult, SubmissionResult, gradebook_csv, write_results
from mtl_course.grading.release import release, release_notebook
from mtl_course.grading.sandbox import Limits, run_limited
from mtl_course.notebooks import course_root

ROOT = course_root()
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _solution(name: str = "01_lasso_inductive_bias.ipynb") -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / name, as_version=4)


# -- the sheets -------------------------------------------------------------------
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_solution_follows_the_sheet_format(path: Path) -> None:
    sheet = parse_sheet(nbformat.read(path, as_version=4), path.stem)
    assert len(sheet.exercises) >= 2 and any(c.hidden for c in sheet.checks)
    for exercise in sheet.exercises:
        assert any(not c.hidden for c in sheet.checks if c.exercise == exercise), f"{exercise} has no visible check"


def test_exercises_are_up_to_date(tmp_path: Path) -> None:
    release(ROOT / "solutions", tmp_path)
    expected = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    committed = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert committed == expected, "exercises/ and solutions/ hold different sheets: run `mtl-course release`"
    for name in expected:
        assert (ROOT / "exercises" / name).read_text() == (tmp_path / name).read_text(), (
            f"exercises/{name} is out of date with solutions/{name}: run `mtl-course release`"
        )


def test_cli_release_and_grade_errors(tmp_path: Path, capsys) -> None:
    assert main(["release", "--exercises", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in SOLUTIONS]
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no such submission" in capsys.readouterr().err


def test_release_stubs_answers_drops_hidden_checks_and_outputs() -> None:
    nb = _solution()
    released = release_notebook(nb, "sheet")
    assert nb == _solution(), "release modified its input"
    text = nbformat.writes(released)
    assert "BEGIN SOLUTION" not in text and "np.maximum(np.abs(z) - t" not in text
    assert not any(cell_role(c).get("hidden") for c in released.cells)
    code = [c for c in released.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    stub = next(c.source for c in code if cell_role(c).get("answer") == "ex1.1")
    assert stub.startswith('def soft_threshold(z, t):\n    """') and 'raise NotImplementedError("ex1.1' in stub


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda nb: nb.cells[4].metadata["mtl_course"].update(points=0), "positive integer"),
        (lambda nb: nb.cells[7].metadata.update(mtl_course={"answer": "ex1.1"}), "more than one cell"),
        (lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source.replace(BEGIN_SOLUTION, "")), "needs one"),
        (lambda nb: setattr(nb.cells[4], "outputs", []), "PASS 2/2"),
        (
            lambda nb: setattr(
                nb.cells[4], "source", nb.cells[4].source.replace("from mtl_course", "import mtl_course")
            ),
            "imports",
        ),
    ],
)
def test_sheet_format_errors_say_what_is_wrong(damage, message: str) -> None:
    nb = copy.deepcopy(_solution())
    damage(nb)
    with pytest.raises(SheetFormatError, match=message):
        parse_sheet(nb, "sheet")


# -- check helpers ----------------------------------------------------------------
def test_checks_report_what_was_expected_and_catch_student_errors(capsys, tmp_path: Path) -> None:
    def broken(x):
        raise ZeroDivisionError("oops")

    with checks.check("ex9.1", "shape", points=1) as c:
        c.close([1.0, 2.0], [1.0, 2.0, 3.0], what="f([1, 2, 3])")
    with checks.check("ex9.2", "crash", points=2) as c:
        c.close(broken(1), 1.0, what="broken(1)")
    checks.record_verdicts_to(str(tmp_path / "record"), "nonce-1")
    try:
        with checks.check("ex9.3", "stub", points=3) as c:
            raise NotImplementedError("ex9.3: replace this line")
    finally:
        checks._RECORD = None
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["ex9.1 shape: FAIL 0/1", "  f([1, 2, 3]): expected shape (3,), got shape (2,)"]
    assert out[2:4] == ["ex9.2 crash: FAIL 0/2", "  your code raised ZeroDivisionError: oops"]
    assert out[4] == "ex9.3 stub: FAIL 0/3" and "not implemented yet" in out[5]
    entry = json.loads((tmp_path / "record").read_text())
    assert entry["nonce"] == "nonce-1" and entry["verdict"] == "FAIL" and entry["points"] == 3


# -- submissions and graded notebooks ----------------------------------------------
def test_student_ids_come_from_the_file_or_folder_name(tmp_path: Path) -> None:
    for path in ("alice/01_sheet.ipynb", "bob.ipynb", "c a/rol/x.ipynb", ".ipynb_checkpoints/x.ipynb"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    with pytest.raises(ValueError, match="pass --solution"):
        find_submissions([tmp_path], ["01_sheet"])
    found = find_submissions([tmp_path], ["01_sheet"], solution="01_sheet")
    assert [(s.student, s.sheet) for s in found] == [("bob", "01_sheet"), ("alice", "01_sheet")]
    (tmp_path / "bob.ipynb").unlink()
    assert [s.student for s in find_submissions([tmp_path], ["01_sheet"])] == ["alice"]


def test_graded_notebook_takes_only_answer_cells_from_the_student(tmp_path: Path) -> None:
    instructor = Instructor.load(ROOT / "solutions" / "01_lasso_inductive_bias.ipynb")
    student = copy.deepcopy(instructor.nb)
    student.cells[3].source = "soft_threshold = lambda z, t: z  # builtins"
    student.cells[4].source = "print('ex1.1 soft_threshold against the piecewise formula: PASS 2/2')"
    del student.cells[7]  # the answer of ex1.2
    student.cells.insert(0, nbformat.v4.new_code_cell("extra = 1"))
    nb, flags, used = graded_notebook(instructor, student, tmp_path / "record")
    assert nb.cells[3].source == "soft_threshold = lambda z, t: z  # builtins"
    assert "checks.record_verdicts_to(" in nb.cells[4].source and "print('ex1.1" not in nb.cells[4].source
    assert "raise NotImplementedError" in nb.cells[7].source and flags == ["missing-answer:ex1.2"]
    assert len(nb.cells) == len(instructor.nb.cells) and suspicious_names(used) == ["builtins"]


# -- gradebook and sandbox ------------------------------------------------------------
def test_gradebook_has_one_row_per_student_and_is_replaced_atomically(tmp_path: Path) -> None:
    results = [
        SubmissionResult(s, "01_x", Path(f"{s}.ipynb"), status, [CheckResult("ex1.1", "a", 2, earned, False, "why")])
        for s, status, earned in [("zoe", "ok", 2), ("al", "timeout", 0)]
    ]
    (tmp_path / "gradebook.csv").write_text("forged\n")
    write_results(results, tmp_path)
    assert (tmp_path / "gradebook.csv").read_text() == gradebook_csv(results)
    assert gradebook_csv(results).splitlines() == [
        "student,sheet,status,ex1.1,total,max,flags,seconds",
        "al,01_x,timeout,0,0,2,,0.0",
        "zoe,01_x,ok,2,2,2,,0.0",
    ]
    assert "why" in (tmp_path / "feedback" / "al" / "01_x.md").read_text()
    assert not list(tmp_path.glob(".*.tmp"))


ESCAPE = textwrap.dedent(
    """
    import subprocess, sys, time
    # a child in a session of its own, like the Jupyter kernel: killing the group misses it
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    open("child.pid", "w").write(str(child.pid))
    time.sleep(300)
    """
)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_sandbox_kills_the_whole_tree_on_timeout_and_limits_memory(tmp_path: Path) -> None:
    start = time.monotonic()
    outcome = run_limited([sys.executable, "-c", ESCAPE], tmp_path, Limits(timeout_s=3))
    assert outcome.timed_out and time.monotonic() - start < 20
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child), "the child in its own session survived the timeout"
    outcome = run_limited([sys.executable, "-c", "x = bytearray(3 * 2**30)"], tmp_path, Limits(memory_bytes=2**30))
    assert outcome.returncode != 0 and "MemoryError" in outcome.output

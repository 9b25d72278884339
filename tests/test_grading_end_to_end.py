"""``mtl-course grade`` end to end: exact scores, and broken or hostile submissions in one run.

Each submission is built from the solution or the released sheet by replacing
answer cells. Every grading run starts Jupyter kernels, so the two tests
share this file (one xdist worker) and each grades all its submissions in one
``mtl-course grade`` command.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mtl_course.cli import main
from mtl_course.grading.format import answer_id, cell_role
from mtl_course.notebooks import course_root

ROOT = course_root()
SHEET = "01_lasso_inductive_bias"
SOLUTION = ROOT / "solutions" / f"{SHEET}.ipynb"
EXERCISE = ROOT / "exercises" / f"{SHEET}.ipynb"


def _with_answers(base: Path, **answers: str) -> nbformat.NotebookNode:
    """``base`` with the sources of some answer cells replaced (keys: ``ex1_1`` for answer ``ex1.1``)."""
    nb = nbformat.read(base, as_version=4)
    for key, source in answers.items():
        cell = next(c for c in nb.cells if answer_id(c) == key.replace("_", "."))
        cell.source = textwrap.dedent(source).strip()
    return nb


def _solution_answer(answer: str) -> str:
    nb = nbformat.read(SOLUTION, as_version=4)
    return next(c.source for c in nb.cells if answer_id(c) == answer)


def _write(folder: Path, student: str, nb: nbformat.NotebookNode | bytes) -> Path:
    path = folder / student / f"{SHEET}.ipynb"
    path.parent.mkdir(parents=True)
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        nbformat.write(nb, path)
    return path


def _snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _grade(submissions: Path, out: Path, *options: str) -> pd.DataFrame:
    """Grade through the command line, as the README says; check that no submission changed."""
    before = _snapshot(submissions)
    limits = ["--timeout", "150", "--cell-timeout", "20", "--memory-mb", "2048", "--jobs", "2"]
    assert main(["grade", str(submissions), "--out", str(out), *limits, *options]) == 0
    assert _snapshot(submissions) == before, "grading modified a submission"
    return pd.read_csv(out / "gradebook.csv", index_col="student", keep_default_na=False)


@pytest.mark.slow
def test_solution_full_marks_exercise_zero_partials_exact(tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    wrong_alpha = "def lasso_alpha_max(X, y):\n    return float(np.max(np.abs(X.T @ y)))  # forgot the 1/n"
    wrong_first = _solution_answer("ex1.3").replace("int(np.argmax(", "int(np.argmin(")
    _write(subs, "solution", nbformat.read(SOLUTION, as_version=4))
    _write(subs, "released", nbformat.read(EXERCISE, as_version=4))
    _write(subs, "only_1_1", _with_answers(EXERCISE, ex1_1=_solution_answer("ex1.1")))
    _write(subs, "wrong_1_2", _with_answers(SOLUTION, ex1_2=wrong_alpha))
    _write(subs, "wrong_first", _with_answers(SOLUTION, ex1_3=wrong_first))
    book = _grade(subs, tmp_path / "out")
    expected = {  # student: (ex1.1, ex1.2, ex1.3, total)
        "solution": (3, 3, 3, 9),
        "released": (0, 0, 0, 0),
        "only_1_1": (3, 0, 0, 3),
        "wrong_1_2": (3, 0, 3, 6),
        "wrong_first": (3, 3, 1, 7),
    }
    got = {s: tuple(int(book.loc[s, c]) for c in ("ex1.1", "ex1.2", "ex1.3", "total")) for s in expected}
    assert got == expected
    assert set(book["status"]) == {"ok"} and set(book["max"]) == {9}
    feedback = (tmp_path / "out" / "feedback" / "wrong_1_2" / f"{SHEET}.md").read_text()
    assert "**FAIL** ex1.2 lasso_alpha_max brackets the all-zero lasso on diabetes: 0/2" in feedback
    assert "at 1.001 times that value the lasso is still" not in feedback  # too large, not too small
    assert "at 0.999 times that value the lasso is still all zero: too large" in feedback


FAKE_CHECKS = """
    import contextlib
    import mtl_course.grading.checks as checks

    class Fake(contextlib.AbstractContextManager):
        def __init__(self, exercise, name, points):
            self.line = f"{exercise} {name}: PASS {points}/{points}"
        def __getattr__(self, name):
            return lambda *args, **kwargs: None
        def __exit__(self, *exc):
            print(self.line)
            return True

    checks.check = Fake
    checks.Check = Fake
"""
PATCH_PRINT = """
    import builtins
    real_print = builtins.print

    def forged_print(*args, **kwargs):
        text = " ".join(map(str, args))
        if ": FAIL 0/" in text:
            first = text.splitlines()[0]
            points = first.rsplit("/", 1)[1]
            text = first.replace(f"FAIL 0/{points}", f"PASS {points}/{points}")
        real_print(text, **kwargs)

    builtins.print = forged_print
"""
PATCH_STDOUT = """
    import sys

    class Forger:
        def __init__(self, stream):
            self.stream = stream
        def write(self, text):
            if ": FAIL 0/" in text:  # print() writes the verdict and its message, then "\\n"
                first = text.splitlines()[0]
                points = first.rsplit("/", 1)[1]
                text = first.replace(f"FAIL 0/{points}", f"PASS {points}/{points}")
            return self.stream.write(text)
        def __getattr__(self, name):
            return getattr(self.stream, name)

    sys.stdout = Forger(sys.stdout)
"""
PRINT_EXPECTED = """
    print("ex1.1 soft_threshold against the piecewise formula: PASS 2/2")
    print("ex1.1 soft_threshold minimises the 1-D lasso: PASS 1/1")
"""
WRITE_FILES = """
    import glob, json, os, pathlib
    out = pathlib.Path({out!r})
    (out / "feedback" / "good").mkdir(parents=True, exist_ok=True)
    (out / "gradebook.csv").write_text("student,total\\nwriter,999\\n")
    (out / "feedback" / "good" / "{sheet}.md").write_text("you failed")
    pathlib.Path({solution!r}).write_text("{{}}")
    for name in glob.glob("*.ipynb"):
        os.chmod(name, 0o644)
        pathlib.Path(name).write_text("{{}}")
    with open("verdicts.jsonl", "a") as record:
        for _ in range(6):
            record.write(json.dumps({{"nonce": "0" * 32, "verdict": "PASS", "earned": 2, "points": 2}}) + "\\n")
"""


@pytest.mark.slow
def test_broken_and_hostile_submissions_only_hurt_themselves(tmp_path: Path) -> None:
    subs, out = tmp_path / "submissions", tmp_path / "out"
    solution_copy = tmp_path / "instructor" / f"{SHEET}.ipynb"  # a file the "writer" overwrites
    solution_copy.parent.mkdir()
    solution_copy.write_bytes(SOLUTION.read_bytes())
    good = SOLUTION.read_bytes()
    reordered = nbformat.read(SOLUTION, as_version=4)
    reordered.cells = [c for c in reordered.cells if answer_id(c) != "ex1.3"][::-1]
    reordered.cells.insert(2, nbformat.v4.new_code_cell('raise RuntimeError("an extra cell")'))
    next(c for c in reordered.cells if "check" in cell_role(c)).source = 'print("an edited check cell: PASS")'
    cheater = _with_answers(EXERCISE, ex1_1=PRINT_EXPECTED)
    for cell in cheater.cells:
        if "check" in cell_role(cell):
            cell.source = "# NBVAL_CHECK_OUTPUT\nprint('ex1.1 soft_threshold against the piecewise formula: PASS 2/2')"
    cases = {  # student: (submission, status, total)
        "good": (good, "ok", 9),
        "loop": (_with_answers(SOLUTION, ex1_2="while True:\n    pass"), "timeout", 6),
        "deaf_loop": (
            _with_answers(
                SOLUTION,
                ex1_3="""
            import signal, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            while True:
                time.sleep(0.01)
        """,
            ),
            "timeout",
            6,
        ),
        "memory_bomb": (
            _with_answers(SOLUTION, ex1_1="blocks = [bytearray(10**8) for _ in range(10**3)]"),
            "memory",
            6,
        ),
        "exit": (_with_answers(SOLUTION, ex1_2="import os\nos._exit(1)"), "crashed", 3),
        "kill9": (
            _with_answers(SOLUTION, ex1_3="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
            "crashed",
            6,
        ),
        "truncated": (good[: len(good) // 2], "malformed", 0),
        "garbage": (b"\x00\xff not a notebook", "malformed", 0),
        "reordered": (reordered, "ok", 6),
        "huge_output": (
            _with_answers(SOLUTION, ex1_1=_solution_answer("ex1.1") + '\nprint("x" * 20_000_000)'),
            "ok",
            9,
        ),
        "exception": (_with_answers(SOLUTION, ex1_2='raise RuntimeError("boom")'), "ok", 6),
        "patch_checks": (_with_answers(EXERCISE, ex1_1=FAKE_CHECKS), "ok", 0),
        "patch_print": (_with_answers(EXERCISE, ex1_1=PATCH_PRINT), "ok", 0),
        "patch_stdout": (_with_answers(EXERCISE, ex1_1=PATCH_STDOUT), "ok", 0),
        "cheater": (cheater, "ok", 0),
        "writer": (
            _with_answers(EXERCISE, ex1_1=WRITE_FILES.format(out=str(out), sheet=SHEET, solution=str(solution_copy))),
            "ok",
            0,
        ),
    }
    for student, (submission, _, _) in cases.items():
        path = subs / f"{student}.ipynb"
        path.parent.mkdir(exist_ok=True)
        if isinstance(submission, bytes):
            path.write_bytes(submission)
        else:
            nbformat.write(submission, path)
    book = _grade(subs, out, "--solution", str(solution_copy))
    got = {s: (book.loc[s, "status"], int(book.loc[s, "total"])) for s in cases}
    assert got == {s: (status, total) for s, (_, status, total) in cases.items()}
    flags = book["flags"].to_dict()
    assert "missing-answer:ex1.3" in flags["reordered"]
    assert "suspicious:mtl_course.grading" in flags["patch_checks"]
    assert "unrecorded-pass:ex1.1" in flags["patch_print"] and "suspicious:builtins" in flags["patch_print"]
    assert "unrecorded-pass:ex1.1" in flags["patch_stdout"] and "suspicious:sys.stdout" in flags["patch_stdout"]
    assert "grader-files-modified" in flags["writer"]
    assert "unrecorded-pass" not in flags["good"]
    assert "boom" in (out / "feedback" / "exception" / f"{SHEET}.md").read_text()
    assert "**Score: 9 / 9**" in (out / "feedback" / "good" / f"{SHEET}.md").read_text()
    assert solution_copy.read_text() == "{}"  # the writer did write; the grader had read it before

"""Every exercise sheet grades as intended: its solution earns full marks, its released sheet nothing.

For each sheet in ``solutions/`` two submissions are graded: the instructor's
notebook itself (every answer and check as the sheet stores it) and the
released ``exercises/`` sheet (every answer a stub that raises
``NotImplementedError``). Grading starts a Jupyter kernel per submission, so
all of them go through **one** ``mtl-course grade`` run (module-scoped fixture)
and the parametrised tests read its gradebook and feedback.

Sheet 01 is left out: ``test_grading_end_to_end.py`` grades it with exact
partial scores and broken or hostile submissions. The expected points come
from the sheet format (:func:`parse_sheet` on the instructor's notebook), not
from the gradebook, so a check that silently stopped counting fails here. The
run itself also refuses a solution that fails its own checks, or a check that
records no value for the grader to compare.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mtl_course.cli import main
from mtl_course.grading.format import Sheet, parse_sheet
from mtl_course.notebooks import course_root

ROOT = course_root()
#: Sheets whose grading is covered elsewhere (``test_grading_end_to_end.py``).
COVERED = {"01_lasso_inductive_bias"}
SHEETS = [p.stem for p in sorted((ROOT / "solutions").glob("*.ipynb")) if p.stem not in COVERED]
#: Generous time limits: the machine running the tests may be busy.
LIMITS = ["--timeout", "180", "--cell-timeout", "60", "--jobs", "2"]
SUBMISSIONS = {"solution": "solutions", "released": "exercises"}  # student -> folder the notebook comes from


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """Grade every sheet's solution and released sheet in one run; the gradebook and the output folder."""
    subs = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("graded")
    for student, folder in SUBMISSIONS.items():
        (subs / student).mkdir()
        for sheet in SHEETS:
            shutil.copyfile(ROOT / folder / f"{sheet}.ipynb", subs / student / f"{sheet}.ipynb")
    assert main(["grade", str(subs), "--out", str(out), *LIMITS]) == 0
    book = pd.read_csv(out / "gradebook.csv", keep_default_na=False, dtype={"flags": str})
    return book.set_index(["student", "sheet"]), out


def _sheet(name: str) -> Sheet:
    return parse_sheet(nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4), name)


def _points(sheet: str) -> dict[str, int]:
    """Exercise id -> the points of its checks, hidden ones included, from the instructor's notebook."""
    parsed = _sheet(sheet)
    return {exercise: parsed.max_points(exercise) for exercise in parsed.exercises}


def _row(book: pd.DataFrame, student: str, sheet: str) -> pd.Series:
    assert (student, sheet) in book.index, f"the gradebook has no row for {student}/{sheet}.ipynb"
    return book.loc[(student, sheet)]


@pytest.mark.slow
@pytest.mark.parametrize("sheet", SHEETS)
def test_solution_earns_full_marks(graded: tuple[pd.DataFrame, Path], sheet: str) -> None:
    book, out = graded
    row, points = _row(book, "solution", sheet), _points(sheet)
    feedback = (out / "feedback" / "solution" / f"{sheet}.md").read_text()
    assert row["status"] == "ok", f"{sheet}: the solution's run ended with status {row['status']!r}\n{feedback}"
    got = {exercise: int(row[exercise]) for exercise in points}
    assert got == points, f"{sheet}: the solution earned {got}, the checks are worth {points}\n{feedback}"
    assert int(row["total"]) == int(row["max"]) == sum(points.values())
    assert row["flags"] == "", f"{sheet}: the solution was flagged {row['flags']!r}"
    total = sum(points.values())
    assert f"**Score: {total} / {total}**" in feedback


@pytest.mark.slow
@pytest.mark.parametrize("sheet", SHEETS)
def test_released_sheet_earns_nothing(graded: tuple[pd.DataFrame, Path], sheet: str) -> None:
    book, out = graded
    row, points = _row(book, "released", sheet), _points(sheet)
    feedback = (out / "feedback" / "released" / f"{sheet}.md").read_text()
    assert row["status"] == "ok", f"{sheet}: the released sheet's run ended with status {row['status']!r}\n{feedback}"
    got = {exercise: int(row[exercise]) for exercise in points}
    assert got == dict.fromkeys(points, 0), f"{sheet}: the unsolved sheet earned {got}\n{feedback}"
    assert int(row["total"]) == 0 and int(row["max"]) == sum(points.values())
    assert row["flags"] == "", f"{sheet}: the released sheet was flagged {row['flags']!r}"
    # every check, hidden ones included, fails with a message a student can act on
    assert feedback.count("**FAIL**") == len(_sheet(sheet).checks), feedback
    assert "not implemented yet" in feedback, feedback

"""The cell format of an exercise sheet (``solutions/NN_slug.ipynb``).

A sheet is an ordinary executed notebook in which two kinds of code cells
carry a ``"mtl_course"`` entry in their cell metadata:

**Answer cells** — ``{"answer": "ex1.1"}`` (an id unique in the sheet; an
exercise with several answer cells names them ``ex1.1a``, ``ex1.1b``, ...). The
solution code sits between two marker lines::

    def soft_threshold(z, t):
        \"\"\"The docstring stays in the released sheet.\"\"\"
        ### BEGIN SOLUTION
        return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)
        ### END SOLUTION

``mtl-course release`` keeps the lines outside the markers and replaces the
fenced lines by a stub at the indentation of ``### BEGIN SOLUTION`` (see
:func:`stub_source`). When grading, the whole source of an answer cell comes
from the student's cell with the same answer id.

**Check cells** — ``{"check": "ex1.1", "points": 2}``, plus ``"hidden": true``
for a check that only the instructor's notebook has. A check cell starts with
``# NBVAL_CHECK_OUTPUT`` and records the student's values through
:func:`mtl_course.grading.checks.check` (see that module for how they are
compared); its stored output must start with the passing verdict
``ex1.1 <name>: PASS 2/2`` with the points of its metadata. The pair
``(exercise, name)`` is unique in a sheet. A hidden check names no expected
value: the grader compares with the instructor's own run.

Every other cell (prompts, set-up code, plots) is the instructor's and is
never taken from a submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: The key of the cell metadata that marks answer and check cells.
METADATA_KEY = "mtl_course"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
#: A verdict line printed by :class:`mtl_course.grading.checks.Check`.
VERDICT = re.compile(r"^(?P<exercise>\S+) (?P<name>.+): (?P<verdict>PASS|FAIL) (?P<earned>\d+)/(?P<points>\d+)$")


class SheetFormatError(ValueError):
    """An instructor's notebook does not follow the sheet format."""


@dataclass(frozen=True)
class AnswerCell:
    """An answer cell: its position in the instructor's notebook and its answer id."""

    index: int
    answer: str


@dataclass(frozen=True)
class CheckCell:
    """A check cell: position, exercise id, points, visibility and the name its verdict prints."""

    index: int
    exercise: str
    points: int
    hidden: bool
    name: str


@dataclass(frozen=True)
class Sheet:
    """The graded structure of one exercise sheet."""

    name: str
    answers: tuple[AnswerCell, ...]
    checks: tuple[CheckCell, ...]

    @property
    def exercises(self) -> list[str]:
        """Exercise ids in the order of their first check."""
        return list(dict.fromkeys(c.exercise for c in self.checks))

    def answers_of(self, exercise: str) -> list[str]:
        """The answer ids of ``exercise``: its own id, or its id with a letter (``ex6.1a``, ``ex6.1b``).

        >>> answers = (AnswerCell(0, "ex6.1a"), AnswerCell(1, "ex6.1b"), AnswerCell(2, "ex6.10"))
        >>> Sheet("s", answers, ()).answers_of("ex6.1")
        ['ex6.1a', 'ex6.1b']
        """
        own = re.compile(re.escape(exercise) + "[a-z]*")
        return [a.answer for a in self.answers if own.fullmatch(a.answer)]

    def max_points(self, exercise: str | None = None) -> int:
        """The points of one exercise, or of the whole sheet."""
        return sum(c.points for c in self.checks if exercise in (None, c.exercise))


def cell_role(cell: Any) -> dict:
    """The ``mtl_course`` metadata of a cell (empty for ordinary cells)."""
    role = cell.get("metadata", {}).get(METADATA_KEY, {})
    return role if isinstance(role, dict) else {}


def answer_id(cell: Any) -> str | None:
    """The answer id of a code cell, or ``None`` when it is not an answer cell."""
    answer = cell_role(cell).get("answer")
    return answer if cell.get("cell_type") == "code" and isinstance(answer, str) else None


def parse_sheet(nb: Any, name: str) -> Sheet:
    """Validate an executed instructor notebook and return its answer and check cells."""
    answers: list[AnswerCell] = []
    checks: list[CheckCell] = []
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        where = f"{name}: cell {index}"
        if "answer" in role:
            answers.append(_parse_answer(cell, role, where, index))
        elif "check" in role:
            checks.append(_parse_check(cell, role, where, index))
    ids = [a.answer for a in answers]
    duplicates = sorted({a for a in ids if ids.count(a) > 1})
    if duplicates:
        raise SheetFormatError(f"{name}: answer ids {duplicates} are used by more than one cell")
    names = [(c.exercise, c.name) for c in checks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SheetFormatError(f"{name}: checks {repeated} share an exercise id and a name; name each check once")
    if not checks:
        raise SheetFormatError(f"{name}: no check cells (metadata {{'{METADATA_KEY}': {{'check': ...}}}})")
    return Sheet(name, tuple(answers), tuple(checks))


def _parse_answer(cell: Any, role: dict, where: str, index: int) -> AnswerCell:
    if cell.cell_type != "code" or not isinstance(role["answer"], str) or not role["answer"]:
        raise SheetFormatError(f"{where}: an answer cell must be a code cell with a non-empty string id")
    lines = [line.strip() for line in cell.source.splitlines()]
    if lines.count(BEGIN_SOLUTION) != 1 or lines.count(END_SOLUTION) != 1:
        raise SheetFormatError(
            f"{where}: answer {role['answer']!r} needs one {BEGIN_SOLUTION!r} and one {END_SOLUTION!r}"
        )
    if lines.index(BEGIN_SOLUTION) > lines.index(END_SOLUTION):
        raise SheetFormatError(f"{where}: {END_SOLUTION!r} comes before {BEGIN_SOLUTION!r}")
    return AnswerCell(index, role["answer"])


def _parse_check(cell: Any, role: dict, where: str, index: int) -> CheckCell:
    exercise, points, hidden = role["check"], role.get("points"), role.get("hidden", False)
    if cell.cell_type != "code" or not isinstance(exercise, str) or not exercise:
        raise SheetFormatError(f"{where}: a check cell must be a code cell with a non-empty exercise id")
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise SheetFormatError(f"{where}: check {exercise!r} needs a positive integer 'points', got {points!r}")
    if not isinstance(hidden, bool):
        raise SheetFormatError(f"{where}: 'hidden' must be true or false, got {hidden!r}")
    lines = cell.source.splitlines()
    if not lines or lines[0].strip() != CHECK_MARKER:
        raise SheetFormatError(f"{where}: a check cell starts with the line {CHECK_MARKER!r}")
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    verdicts = [m for m in map(VERDICT.match, text.splitlines()) if m]
    verdict = verdicts[0] if len(verdicts) == 1 else None
    expected = f"PASS {points}/{points}"
    if verdict is None or verdict["exercise"] != exercise or verdict[0].rsplit(": ", 1)[1] != expected:
        raise SheetFormatError(
            f"{where}: the stored output of check {exercise!r} must have one verdict line "
            f"'{exercise} <name>: {expected}', "
            f"got {text.strip()[:200]!r}; run `mtl-course execute` on the solution"
        )
    return CheckCell(index, exercise, points, hidden, verdicts[0]["name"])


def stub_source(source: str, answer: str) -> str:
    """The released source of an answer cell: the fenced solution replaced by a stub.

    >>> print(stub_source("def f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION", "ex0.1"))
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError("ex0.1: replace this line with your answer")
    """
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            indent = line[: len(line) - len(line.lstrip())]
            out += [
                f"{indent}# YOUR CODE HERE",
                f'{indent}raise NotImplementedError("{answer}: replace this line with your answer")',
            ]
            inside = True
        elif line.strip() == END_SOLUTION:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)

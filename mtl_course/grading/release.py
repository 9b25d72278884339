"""``mtl-course release``: write the students' sheets in ``exercises/`` from ``solutions/``.

A released sheet is the solution notebook with

- the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` replaced by
  a stub that raises ``NotImplementedError`` (the lines around the markers,
  such as a function's signature and docstring, stay);
- the hidden check cells removed;
- every output cleared and every execution count reset, so that the student
  starts from a clean sheet (the check cells print their verdicts when run);
- notebook metadata reduced to the kernel and language.

The output depends only on the solution notebook (same cell ids, sorted JSON
keys), so ``exercises/`` can be committed and diffed, and a test fails when it
drifts from ``solutions/``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from mtl_course.grading.format import answer_id, cell_role, parse_sheet, stub_source

#: The notebook metadata a released sheet keeps.
KEPT_METADATA = ("kernelspec", "language_info")


def release_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student's version of a solution notebook (the input is not modified)."""
    parse_sheet(nb, name)  # refuse a notebook that does not follow the format
    released = copy.deepcopy(nb)
    released.metadata = {k: nb.metadata[k] for k in KEPT_METADATA if k in nb.metadata}
    cells = []
    for cell in released.cells:
        if cell_role(cell).get("hidden"):
            continue
        answer = answer_id(cell)
        if answer is not None:
            cell.source = stub_source(cell.source, answer)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cells.append(cell)
    released.cells = cells
    return released


def released_text(solution: Path) -> str:
    """The released sheet of ``solution`` as the exact text written to ``exercises/``."""
    nb = nbformat.read(solution, as_version=4)
    return nbformat.writes(release_notebook(nb, solution.name)) + "\n"


def release(solutions: Path, exercises: Path) -> list[Path]:
    """Write ``exercises/NN_slug.ipynb`` for every ``solutions/NN_slug.ipynb``; return the paths written."""
    sheets = sorted(Path(solutions).glob("*.ipynb"))
    if not sheets:
        raise FileNotFoundError(f"no solution notebooks (*.ipynb) in {solutions}")
    Path(exercises).mkdir(parents=True, exist_ok=True)
    written = []
    for solution in sheets:
        target = Path(exercises) / solution.name
        target.write_text(released_text(solution), encoding="utf-8")
        written.append(target)
    return written

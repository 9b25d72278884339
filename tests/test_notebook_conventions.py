"""Conventions every stored notebook follows (COURSE_DESIGN §4).

nbval checks that a notebook still produces its stored outputs; these tests
check that the stored outputs are trustworthy in the first place: the
notebook was executed top to bottom, in order, without errors, it checks at
least one claim with ``# NBVAL_CHECK_OUTPUT``, and it stays small.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest

from mtl_course.notebooks import course_notebooks, course_root

MAX_BYTES = 2 * 1024 * 1024
NOTEBOOKS = course_notebooks()
LECTURES = [p for p in NOTEBOOKS if p.parent.name == "lectures"]
ids = [str(p.relative_to(course_root())) for p in NOTEBOOKS]


def _code_cells(path: Path) -> list:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_every_code_cell_was_executed_in_order(path: Path) -> None:
    counts = [c.execution_count for c in _code_cells(path)]
    not_run = [i for i, n in enumerate(counts) if n is None]
    assert not not_run, f"{path.name}: code cells {not_run} were never executed; run `mtl-course execute {path.name}`"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..{len(counts)}: "
        "the notebook was run out of order; restart the kernel and run all"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_stored_errors(path: Path) -> None:
    for i, cell in enumerate(_code_cells(path)):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{path.name}: cell {i} stores an error: {output.get('ename')}"
            if output.output_type == "stream" and output.name == "stderr":
                assert "Traceback" not in output.text, f"{path.name}: cell {i} prints a traceback"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_checks_at_least_one_claim(path: Path) -> None:
    checked = [c for c in _code_cells(path) if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, f"{path.name} has no `# NBVAL_CHECK_OUTPUT` cell, so nbval --nbval-lax checks nothing"
    assert all(c.get("outputs") for c in checked), f"{path.name}: a checked cell stores no output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_small(path: Path) -> None:
    size = path.stat().st_size
    assert size <= MAX_BYTES, f"{path.name} is {size / 2**20:.2f} MiB; the limit is 2 MiB (lower figure dpi?)"


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_lecture_has_the_template_sections(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    for heading in ("learning goals", "check your understanding", "summary", "references"):
        assert heading in markdown, f"{path.name} lacks a '{heading}' section (COURSE_DESIGN §4)"
    setup = [c for c in _code_cells(path) if "setup_lecture(" in c.source]
    assert len(setup) == 1, f"{path.name}: expected one set-up cell calling mtl_course.setup_lecture()"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


FACES = ("data", "experiments", "widgets", "models", "weighting")


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_lecture_imports_from_the_public_faces(path: Path) -> None:
    """``from mtl_course.data import make_shapes``, not ``from mtl_course.data.shapes import make_shapes``."""
    deep = [
        line.strip()
        for cell in _code_cells(path)
        for line in cell.source.splitlines()
        if any(line.lstrip().startswith(f"from mtl_course.{face}.") for face in FACES)
    ]
    assert not deep, f"{path.name} imports past the package's public faces: {deep}"


def test_the_course_map_and_the_readme_list_every_lecture() -> None:
    """A0's "Map of the course" and the README's lecture table link every lecture notebook that exists."""
    welcome = nbformat.read(course_root() / "lectures" / "00_welcome.ipynb", as_version=4)
    course_map = next(c.source for c in welcome.cells if c.cell_type == "markdown" and "Map of the course" in c.source)
    readme = (course_root() / "README.md").read_text(encoding="utf-8")
    for lecture in LECTURES:
        if lecture.name != "00_welcome.ipynb":
            assert f"]({lecture.name})" in course_map, f"A0's course map does not link {lecture.name}"
        assert f"](lectures/{lecture.name})" in readme, f"the README's lecture table does not link {lecture.name}"


_GETSOURCE = re.compile(r"inspect\.getsource\(")


def _import_namespace(path: Path) -> dict:
    """The names a notebook's import statements bind (only the imports run: no training, no figures)."""
    namespace: dict = {}
    for cell in _code_cells(path):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # an IPython magic; imports never live in those cells
            continue
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


SHOWS_SOURCE = [p for p in NOTEBOOKS if any(_GETSOURCE.search(c.source) for c in _code_cells(p))]


@pytest.mark.parametrize("path", SHOWS_SOURCE, ids=[p.name for p in SHOWS_SOURCE])
def test_printed_package_source_is_the_current_source(path: Path) -> None:
    """A cell that prints the package's code with ``inspect.getsource`` stores today's code, not last month's.

    nbval (``--nbval-lax``) does not compare such cells, so an edit to the package would leave a lecture showing
    code the package no longer has. Each such cell runs again here, with only the notebook's imports defined,
    and must print what it stores; a cell that needs other state (a ``NameError``) is skipped, and every
    notebook must rerun at least one.
    """
    imports = _import_namespace(path)
    rerun = 0
    for i, cell in enumerate(_code_cells(path)):
        if not _GETSOURCE.search(cell.source):
            continue
        printed = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                exec(cell.source, dict(imports))
        except NameError:
            continue
        rerun += 1
        assert output.getvalue() == printed, (
            f"{path.name}: cell {i} prints package source that has changed since the notebook was executed; "
            f"run `mtl-course execute {path.relative_to(course_root())}`"
        )
    assert rerun, f"{path.name}: no cell that prints source could be rerun from the notebook's imports alone"

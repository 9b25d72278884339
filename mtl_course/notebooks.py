"""Find, execute and time the course notebooks (used by the CLI and the benchmarks).

Notebooks are executed top to bottom with nbclient in a fresh kernel of the
current environment, with their outputs (and widget state) stored in place,
so that nbval, GitHub and the website show what the code really printed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

#: The folders that hold executed notebooks, relative to the course root.
NOTEBOOK_DIRS = ("lectures", "solutions")


def course_root() -> Path:
    """The course checkout that holds ``lectures/`` (the parent of the package)."""
    return Path(__file__).resolve().parent.parent


def course_notebooks(root: Path | None = None, dirs: tuple[str, ...] = NOTEBOOK_DIRS) -> list[Path]:
    """Every executed notebook of the course, sorted by folder and name."""
    root = course_root() if root is None else root
    return [p for d in dirs for p in sorted((root / d).glob("*.ipynb"))]


@dataclass(frozen=True)
class ExecutionResult:
    path: Path
    seconds: float


def execute_notebook(
    path: Path, timeout: float = 600, kernel_name: str = "python3", cwd: Path | None = None
) -> ExecutionResult:
    """Execute ``path`` in place in the current environment and return its wall time.

    The kernel starts in ``cwd`` (default: the notebook's folder) with this
    process's environment, so ``MTL_COURSE_BUDGET`` and ``MTL_COURSE_DEVICE``
    pass through.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd or path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute(env=dict(os.environ))
    seconds = time.perf_counter() - start
    if not _has_widget_state(nb):
        nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return ExecutionResult(path, seconds)


def _has_widget_state(nb) -> bool:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return bool(state.get("state"))

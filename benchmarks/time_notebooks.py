"""Time every course notebook in the default (quick) mode and print a table.

Each notebook is executed top to bottom in a fresh kernel on a scratch copy
(the stored notebook is not touched), ``--repeat`` times; the table gives the
median wall time, the median CPU time of the kernel (user + system, which a
busy machine does not inflate) and the budget verdict on the CPU time
(COURSE_DESIGN §6: ≤ 60 s each, median ≤ 30 s).

    python benchmarks/time_notebooks.py [NOTEBOOK ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
from pathlib import Path

from mtl_course.notebooks import course_notebooks, course_root, execute_notebook

BUDGET_EACH_S = 60.0
BUDGET_MEDIAN_S = 30.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_notebook(path: Path, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and kernel CPU times of ``repeat`` executions of a scratch copy of ``path``.

    The kernel is a child process that has exited (and was waited for) when
    the execution returns, so its CPU time is in ``RUSAGE_CHILDREN``.
    """
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        for _ in range(repeat):
            shutil.copy(path, copy)
            before = _children_cpu()
            # the copy must find the data and package paths next to the original
            walls.append(execute_notebook(copy, cwd=path.parent).seconds)
            cpus.append(_children_cpu() - before)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    notebooks = args.notebooks or course_notebooks()
    root = course_root()
    print(f"budget mode: {os.environ.get('MTL_COURSE_BUDGET', 'quick')}, cores: {os.cpu_count()}\n")
    print("| notebook | wall s (median) | CPU s (median) | runs | within 60 s |")
    print("| --- | ---: | ---: | ---: | :---: |")
    medians = []
    for path in notebooks:
        walls, cpus = time_notebook(path.resolve(), args.repeat)
        wall, median = statistics.median(walls), statistics.median(cpus)
        medians.append(median)
        name = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        verdict = "yes" if median <= BUDGET_EACH_S else "NO"
        print(f"| {name} | {wall:.1f} | {median:.1f} | {len(walls)} | {verdict} |", flush=True)
    if medians:
        overall = statistics.median(medians)
        verdict = "yes" if overall <= BUDGET_MEDIAN_S else "NO"
        print(f"\nmedian notebook: {overall:.1f} CPU s (budget {BUDGET_MEDIAN_S:.0f} s: {verdict})", end="")
        print(f"; total {sum(medians):.1f} CPU s")


if __name__ == "__main__":
    main()

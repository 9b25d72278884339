"""Time every course notebook in the default (quick) mode and print a table.

Each notebook is executed top to bottom in a fresh kernel on a scratch copy
(the stored notebook is not touched), ``--repeat`` times; the table gives the
median and the budget verdict (COURSE_DESIGN §6: ≤ 60 s each, median ≤ 30 s).

    python benchmarks/time_notebooks.py [NOTEBOOK ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from mtl_course.notebooks import course_notebooks, course_root, execute_notebook

BUDGET_EACH_S = 60.0
BUDGET_MEDIAN_S = 30.0


def time_notebook(path: Path, repeat: int) -> list[float]:
    """Wall times of ``repeat`` executions of a scratch copy of ``path``."""
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        for _ in range(repeat):
            shutil.copy(path, copy)
            # the copy must find the data and package paths next to the original
            times.append(execute_notebook(copy, cwd=path.parent).seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    notebooks = args.notebooks or course_notebooks()
    root = course_root()
    print(f"budget mode: {os.environ.get('MTL_COURSE_BUDGET', 'quick')}, cores: {os.cpu_count()}\n")
    print("| notebook | median s | runs | within 60 s |")
    print("| --- | ---: | ---: | :---: |")
    medians = []
    for path in notebooks:
        times = time_notebook(path.resolve(), args.repeat)
        median = statistics.median(times)
        medians.append(median)
        name = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        print(f"| {name} | {median:.1f} | {len(times)} | {'yes' if median <= BUDGET_EACH_S else 'NO'} |", flush=True)
    if medians:
        overall = statistics.median(medians)
        verdict = "yes" if overall <= BUDGET_MEDIAN_S else "NO"
        print(f"\nmedian notebook: {overall:.1f} s (budget {BUDGET_MEDIAN_S:.0f} s: {verdict})", end="")
        print(f"; total {sum(medians):.1f} s")


if __name__ == "__main__":
    main()

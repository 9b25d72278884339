"""Time ``mtl-course grade`` on 30 submissions (good, partial, broken) and print a table.

The submissions are built from ``solutions/`` and ``exercises/`` of sheet A1:
10 full solutions, 10 with one answer wrong, 5 released (unsolved) sheets,
3 whose code raises, and 2 malformed files. They are graded in one run with
``--jobs`` workers (default 2), as an instructor would on a 2-core laptop,
each in its bubblewrap sandbox, after the one reference run of the
instructor's notebook. It prints the wall time and the CPU seconds of the
grader and of every process it started (a shared machine inflates the wall
time, not the CPU seconds).

    python benchmarks/bench_grading.py [--jobs 2] [--n 30] [--no-sandbox]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from mtl_course.grading.format import answer_id
from mtl_course.grading.grade import grade
from mtl_course.notebooks import course_root

SHEET = "01_lasso_inductive_bias"
KINDS = ("good", "partial", "released", "raises", "malformed")
MIX = (10, 10, 5, 3, 2)  # out of 30


def _submission(kind: str, root: Path) -> bytes:
    solution = root / "solutions" / f"{SHEET}.ipynb"
    if kind == "good":
        return solution.read_bytes()
    if kind == "released":
        return (root / "exercises" / f"{SHEET}.ipynb").read_bytes()
    if kind == "malformed":
        return solution.read_bytes()[:1000]
    nb = nbformat.read(solution, as_version=4)
    cell = next(c for c in nb.cells if answer_id(c) == "ex1.2")
    cell.source = "def lasso_alpha_max(X, y):\n    return 1.0" if kind == "partial" else 'raise ValueError("oops")'
    return nbformat.writes(nb).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--n", type=int, default=30, help="number of submissions (the mix is scaled)")
    parser.add_argument("--no-sandbox", action="store_true", help="grade without bubblewrap")
    args = parser.parse_args()
    root = course_root()
    counts = [round(m * args.n / sum(MIX)) for m in MIX]
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        kinds = {}
        for kind, count in zip(KINDS, counts, strict=True):
            for i in range(count):
                student = f"{kind}{i:02d}"
                path = subs / student / f"{SHEET}.ipynb"
                path.parent.mkdir(parents=True)
                path.write_bytes(_submission(kind, root))
                kinds[student] = kind
        start, cpu = time.perf_counter(), _cpu_seconds()
        results = grade(
            [subs],
            Path(tmp) / "out",
            solutions=root / "solutions",
            jobs=args.jobs,
            sandboxed=not args.no_sandbox,
            log=lambda line: None,
        )
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    print(f"cores: {os.cpu_count()}, jobs: {args.jobs}, submissions: {len(results)}\n")
    print("| kind | n | median s per submission | scores | statuses |")
    print("| --- | ---: | ---: | --- | --- |")
    for kind in KINDS:
        mine = [r for r in results if kinds[r.student] == kind]
        scores = sorted({f"{r.score()}/{r.max_points()}" for r in mine})
        statuses = sorted({r.status for r in mine})
        median = statistics.median(r.seconds for r in mine)
        print(f"| {kind} | {len(mine)} | {median:.1f} | {', '.join(scores)} | {', '.join(statuses)} |")
    print(f"\nwall time: {wall:.1f} s for {len(results)} submissions ({wall / len(results):.2f} s each)")
    runs = sum(r.cpu_seconds for r in results)  # bwrap's PID namespace hides its processes from getrusage
    total = cpu if args.no_sandbox else cpu + runs
    print(f"CPU time: {total:.1f} s (the grader and what it waited for: {cpu:.1f} s; the runs as seen in /proc:")
    print(f"{runs:.1f} s, without the reference run); load average {os.getloadavg()[0]:.1f}")


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its waited-for descendants."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()

"""The ``mtl-course`` command.

``mtl-course doctor``
    Checks the installation: versions, device, GPU, where the notebooks are.
``mtl-course execute [NOTEBOOK ...]``
    Executes notebooks top to bottom in place (default: every lecture and
    solution) and prints how long each took.
``mtl-course release``
    Writes the students' sheets ``exercises/`` from ``solutions/``.
``mtl-course grade SUBMISSION ... --out DIR``
    Grades submitted notebooks (files or folders) into ``DIR/gradebook.csv``
    and ``DIR/feedback/<student>/<sheet>.md``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

#: (import name, distribution name) of every required runtime dependency.
REQUIRED = (
    ("torch", "torch"),
    ("numpy", "numpy"),
    ("pandas", "pandas"),
    ("matplotlib", "matplotlib"),
    ("seaborn", "seaborn"),
    ("ipywidgets", "ipywidgets"),
    ("jupyterlab", "jupyterlab"),
    ("tqdm", "tqdm"),
    ("sklearn", "scikit-learn"),
)
#: Optional dependencies: tests, the website, browser tests.
OPTIONAL = (
    ("pytest", "pytest"),
    ("nbval", "nbval"),
    ("jupyter_book", "jupyter-book"),
    ("playwright", "playwright"),
)


def _version(module: str, dist: str) -> str | None:
    """The installed version of ``dist`` if ``module`` imports, else ``None``."""
    try:
        importlib.import_module(module)
    except Exception:  # a broken install is as bad as a missing one
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def doctor(out: TextIO | None = None) -> int:
    """Print what the course needs and what this machine has; 0 when all is well."""
    out = sys.stdout if out is None else out
    from mtl_course import __version__
    from mtl_course.notebooks import course_notebooks, course_root

    print(f"mtl-course {__version__} on Python {platform.python_version()} ({sys.executable})", file=out)
    missing = []
    for module, dist in REQUIRED:
        version = _version(module, dist)
        print(f"  {dist:<14} {version or 'MISSING'}", file=out)
        if version is None:
            missing.append(dist)
    for module, dist in OPTIONAL:
        print(f"  {dist:<14} {_version(module, dist) or 'not installed (optional)'}", file=out)
    if "torch" not in missing:
        import torch

        from mtl_course.device import get_device

        try:
            device = get_device()
        except RuntimeError as error:
            print(f"device: {error}", file=out)
            missing.append("the requested device")
        else:
            print(f"device: {device}", file=out)
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                print(f"  cuda:{i} {props.name}, {props.total_memory / 2**30:.1f} GiB", file=out)
        else:
            print(f"  CUDA: not available (torch {torch.__version__})", file=out)
    root = course_root()
    notebooks = course_notebooks(root)
    print(f"course notebooks: {len(notebooks)} under {root}", file=out)
    if missing:
        print(
            f"ERROR: missing or broken: {', '.join(missing)}. "
            "Run `make setup` in the course folder (or `pip install -e .`) to install them.",
            file=out,
        )
        return 1
    print("OK: everything the course needs is installed.", file=out)
    return 0


def execute(paths: Sequence[str], timeout: int) -> int:
    """Execute notebooks in place and print a table of their run times."""
    from mtl_course.notebooks import course_notebooks, execute_notebook

    notebooks = [Path(p) for p in paths] or course_notebooks()
    if not notebooks:
        print("no notebooks found", file=sys.stderr)
        return 1
    print("| notebook | seconds |\n| --- | ---: |")
    for path in notebooks:
        result = execute_notebook(path, timeout=timeout)
        print(f"| {path} | {result.seconds:.1f} |", flush=True)
    return 0


def release(solutions: str | None, exercises: str | None) -> int:
    """Write the released sheets and list them."""
    from mtl_course.grading.release import release as release_sheets
    from mtl_course.notebooks import course_root

    root = course_root()
    for path in release_sheets(Path(solutions or root / "solutions"), Path(exercises or root / "exercises")):
        print(f"released {path}")
    return 0


def grade(args: argparse.Namespace) -> int:
    """Grade submissions, print a summary and where the gradebook is."""
    from mtl_course.grading.grade import GradingError
    from mtl_course.grading.grade import grade as grade_submissions
    from mtl_course.grading.sandbox import Limits, SandboxUnavailable
    from mtl_course.grading.summary import read_roster, write_summary
    from mtl_course.notebooks import course_root

    limits = Limits(timeout_s=args.timeout, cell_timeout_s=args.cell_timeout, memory_bytes=args.memory_mb * 2**20)
    try:
        if args.roster:
            read_roster(Path(args.roster))  # a broken roster stops the run before anyone is graded
        results = grade_submissions(
            [Path(p) for p in args.submissions],
            Path(args.out),
            solutions=Path(args.solutions or course_root() / "solutions"),
            solution=Path(args.solution) if args.solution else None,
            jobs=args.jobs,
            limits=limits,
            sandboxed=not args.no_sandbox,
            only=args.regrade,
        )
    except (GradingError, SandboxUnavailable, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not args.regrade:  # a regrade keeps the summary of the whole class
        print(write_summary(results, Path(args.out), roster=Path(args.roster) if args.roster else None))
    statuses = sorted({r.status for r in results})
    counts = ", ".join(f"{sum(r.status == s for r in results)} {s}" for s in statuses)
    noun = "submission" if len(results) == 1 else "submissions"
    print(f"graded {len(results)} {noun} ({counts}); gradebook: {Path(args.out) / 'gradebook.csv'}")
    return 0


def _positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` greater than zero."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-course", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the installation, the device and the notebooks")
    run = commands.add_parser("execute", help="execute notebooks in place (default: all)")
    run.add_argument("notebooks", nargs="*", help="notebooks to execute (default: lectures and solutions)")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    rel = commands.add_parser("release", help="write exercises/ from solutions/")
    rel.add_argument("--solutions", help="folder of solution notebooks (default: the course's solutions/)")
    rel.add_argument("--exercises", help="folder to write the sheets to (default: the course's exercises/)")
    grd = commands.add_parser("grade", help="grade submissions into a gradebook and feedback files")
    grd.add_argument(
        "submissions", nargs="+", help="notebooks, or folders of <student>.ipynb or <student>/<sheet>.ipynb"
    )
    grd.add_argument("--out", required=True, help="folder for gradebook.csv and feedback/")
    grd.add_argument("--solution", help="the instructor notebook every submission answers (default: by file name)")
    grd.add_argument("--solutions", help="folder of instructor notebooks (default: the course's solutions/)")
    grd.add_argument("--jobs", type=_positive(int), default=2, help="submissions graded in parallel (default 2)")
    grd.add_argument("--timeout", type=_positive(float), default=120, help="seconds per submission (default 120)")
    grd.add_argument("--cell-timeout", type=_positive(float), default=60, help="seconds per cell (default 60)")
    grd.add_argument(
        "--memory-mb",
        type=_positive(int),
        default=2048,
        help="memory of a submission's processes in MiB (default 2048)",
    )
    grd.add_argument("--roster", help="CSV with a column 'student' (and 'name'): report who is missing or unknown")
    grd.add_argument("--regrade", metavar="STUDENT", help="grade only this student id; other gradebook rows stay")
    grd.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run students' code without bubblewrap (unsafe: only where the grader itself runs in a container)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        return doctor()
    if args.command == "execute":
        return execute(args.notebooks, args.timeout)
    if args.command == "release":
        return release(args.solutions, args.exercises)
    if args.command == "grade":
        return grade(args)
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects unknown ones


if __name__ == "__main__":
    sys.exit(main())

"""The ``mtl-course`` command: check the installation, run the notebooks, release and grade exercise sheets.

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

An ordinary mistake (a missing file, a file that is not a notebook, a folder
that cannot be written) ends with one line that says what was wrong and exit
code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
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


class UsageError(Exception):
    """An ordinary mistake on the command line: reported in one line, exit code 1."""


def _notebook_paths(paths: Sequence[str]) -> list[Path]:
    """The notebooks to execute, each checked to be a readable ``.ipynb`` file that parses as a notebook."""
    import nbformat

    from mtl_course.notebooks import course_notebooks

    notebooks = [Path(p) for p in paths] or course_notebooks()
    if not notebooks:
        raise UsageError("no notebooks found (the course's lectures/ and solutions/ are empty)")
    for path in notebooks:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if path.suffix != ".ipynb":
            raise UsageError(f"{path}: not a notebook (expected a .ipynb file)")
        try:
            nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises several kinds for a file that is not JSON or not a notebook
            raise UsageError(f"{path}: not a readable notebook ({type(error).__name__})") from None
        if not os.access(path, os.W_OK):
            raise UsageError(f"{path}: cannot write the executed notebook back (the file is read-only)")
    return notebooks


def execute(paths: Sequence[str], timeout: float) -> int:
    """Execute notebooks in place and print a table of their run times."""
    from mtl_course.notebooks import execute_notebook

    notebooks = _notebook_paths(paths)
    print("| notebook | seconds |\n| --- | ---: |")
    for path in notebooks:
        result = execute_notebook(path, timeout=timeout)
        print(f"| {path} | {result.seconds:.1f} |", flush=True)
    return 0


def release(solutions: str | None, exercises: str | None) -> int:
    """Write the released sheets and list them."""
    from mtl_course.grading.format import SheetFormatError
    from mtl_course.grading.release import release as release_sheets
    from mtl_course.notebooks import course_root

    root = course_root()
    source, target = Path(solutions or root / "solutions"), Path(exercises or root / "exercises")
    if not source.is_dir():
        raise UsageError(f"--solutions {source}: no such folder")
    if target.exists() and not target.is_dir():
        raise UsageError(f"--exercises {target}: not a folder")
    writable = target if target.exists() else target.parent
    if not os.access(writable, os.W_OK):
        raise UsageError(f"--exercises {target}: cannot write there")
    try:
        written = release_sheets(source, target)
    except (FileNotFoundError, SheetFormatError) as error:
        raise UsageError(str(error)) from None
    for path in written:
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


def _command(commands: argparse._SubParsersAction, name: str, summary: str, details: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` says what it reads, what it writes, and gives an example."""
    return commands.add_parser(
        name, help=summary, description=f"{summary}.\n\n{details}", formatter_class=argparse.RawDescriptionHelpFormatter
    )


def build_parser() -> argparse.ArgumentParser:
    from mtl_course import __version__

    parser = argparse.ArgumentParser(
        prog="mtl-course",
        description=__doc__.split("\n")[0].replace("``", ""),
        epilog="Run `mtl-course COMMAND --help` for what a command reads, writes and an example.",
    )
    parser.add_argument("--version", action="version", version=f"mtl-course {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        commands,
        "doctor",
        "check the installation, the device and the notebooks",
        "Reads the installed packages and the course folder; writes nothing.\n"
        "Exits 1 when something the course needs is missing.\n\nexample: mtl-course doctor",
    )
    run = _command(
        commands,
        "execute",
        "execute notebooks top to bottom in place and print their run times",
        "Reads each notebook and OVERWRITES it with its fresh outputs (default: every lecture and solution).\n\n"
        "example: mtl-course execute lectures/01_lasso_inductive_bias.ipynb",
    )
    run.add_argument("notebooks", nargs="*", help="notebooks to execute (default: lectures and solutions)")
    run.add_argument("--timeout", type=_positive(float), default=600, help="seconds per cell (default 600)")
    rel = _command(
        commands,
        "release",
        "write the students' sheets exercises/ from solutions/",
        "Reads solutions/NN_slug.ipynb and OVERWRITES exercises/NN_slug.ipynb with the solution code stubbed,\n"
        "the hidden checks removed and the outputs cleared.\n\nexample: mtl-course release",
    )
    rel.add_argument("--solutions", help="folder of solution notebooks (default: the course's solutions/)")
    rel.add_argument("--exercises", help="folder to write the sheets to (default: the course's exercises/)")
    grd = _command(
        commands,
        "grade",
        "grade submitted notebooks into a gradebook and feedback files",
        "Reads the submissions (never modifies them) and the instructor's solutions/; writes\n"
        "OUT/gradebook.csv, OUT/feedback/<student>/<sheet>.md and a per-exercise summary.\n"
        "Each submission runs in a bubblewrap sandbox.\n\n"
        "example: mtl-course grade submissions/ --out gradebook/",
    )
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
    commands = {
        "doctor": lambda: doctor(),
        "execute": lambda: execute(args.notebooks, args.timeout),
        "release": lambda: release(args.solutions, args.exercises),
        "grade": lambda: grade(args),
    }
    try:
        return commands[args.command]()
    except UsageError as error:
        print(f"mtl-course {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

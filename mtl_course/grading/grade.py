"""``mtl-course grade``: run submissions with nbval in a sandbox and compare their values outside it.

**Which files.** A SUBMISSION argument is a notebook or a folder. A folder is
searched one level deep: ``DIR/<student>/<sheet>.ipynb`` (a folder per
student, files named like the sheet) and ``DIR/<student>.ipynb`` (the sheet
given with ``--solution``). Everything else found there (a stray
``Untitled.ipynb``, a dot-folder, a symbolic link, an unreadable file) is
reported and skipped. Student ids keep only ``[A-Za-z0-9._-]``, start with a
letter or digit and have at most :data:`MAX_ID` characters; two names that
become the same id get a suffix (``-2``) and the flag ``id-collision``.

**What runs.** Before any submission, the grader checks that ``--out`` is a
writable folder outside the submissions, that the sandbox works
(:func:`~mtl_course.grading.sandbox.check_sandbox`), and runs each
instructor's notebook once the same way: its record of values is the
reference. For each submission it builds a notebook from the *instructor's*
notebook in which only the answer cells come from the student, matched by
their answer id (a missing answer cell is the released stub, flag
``missing-answer``; of duplicated ones the first counts, flag
``duplicate-answer``); every other cell, the check cells included, is the
instructor's, and no stored output is left in it. nbval runs it in a
bubblewrap sandbox (:mod:`~mtl_course.grading.sandbox`), and the check cells
append the student's values as plain JSON to a file
(:mod:`~mtl_course.grading.checks`).

**Scoring** happens here, in the grader's process, which never runs student
code: each value is decoded as plain data and compared, by the instructor's
kind of comparison and tolerance, with the instructor's expected value
(:func:`~mtl_course.grading.checks.compare`). A check earns its points when
every one of its comparisons matches. The status (``ok``, ``timeout``,
``memory``, ``crashed``) is what the grader saw: the wall clock, the memory of
the run's processes, the exit of the kernel process; nothing the student's
code prints decides a status or a point.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mtl_course.grading import checks
from mtl_course.grading.format import Sheet, answer_id, parse_sheet, stub_source
from mtl_course.grading.gradebook import (
    CheckResult,
    SubmissionResult,
    plain_words,
    write_results,
)
from mtl_course.grading.sandbox import Limits, RunOutcome, check_sandbox, run_limited

GRADED_NAME = "graded.ipynb"
VALUES_NAME = "values.jsonl"
#: The most of a run's values file and nbval report the grader reads (bytes).
MAX_VALUES, MAX_REPORT = 32 * 2**20, 8 * 2**20
#: The longest student id.
MAX_ID = 64
_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
#: ANSI colour codes, raw or as pytest's JUnit report escapes them (``#x1B[31m``).
_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*[A-Za-z]")
_EXCEPTION = re.compile(r"^(?:E\s+)?([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Interrupt|Exit))\b", re.MULTILINE)


class GradingError(ValueError):
    """Grading cannot start: a wrong option, an unusable folder, a solution that fails its own checks."""


@dataclass(frozen=True)
class Submission:
    """One notebook to grade: whose, for which sheet, where, and what its name raised."""

    student: str
    sheet: str
    path: Path
    flags: tuple[str, ...] = ()


# -- finding submissions --------------------------------------------------------
def student_id(name: str) -> str:
    """A safe id: ``[A-Za-z0-9._-]``, starting with a letter or digit, at most :data:`MAX_ID` characters.

    >>> student_id("=HYPERLINK(x)"), student_id("-2-3"), student_id("ana\\x1b[31m")
    ('HYPERLINK_x_', '2-3', 'ana__31m')
    """
    cleaned = _ID_CHARACTERS.sub("_", name).lstrip("._-")[:MAX_ID]
    return cleaned or "unnamed"


def find_submissions(
    paths: Sequence[Path], sheets: Sequence[str], solution: str | None = None
) -> tuple[list[Submission], list[str]]:
    """The submissions under ``paths`` (files or folders), and one line per file skipped and why.

    ``sheets`` are the known sheet names (file stems of ``solutions/``);
    ``solution`` is the sheet every submission answers, when given.
    """
    known = {solution} if solution else set(sheets)
    found: list[tuple[str, str, Path]] = []
    skipped: list[str] = []
    for root in map(Path, paths):
        if root.is_symlink():
            skipped.append(f"{root}: a symbolic link, not followed")
        elif root.is_dir():
            for path in _candidates(root, skipped):
                named = _whose(path, root, known, solution)
                if named is None:
                    skipped.append(_why_unnamed(path, root, known))
                else:
                    found.append((*named, path))
        elif root.is_file():
            named = _whose(root, root.parent, known, solution)
            if named is None:
                skipped.append(f"{root}: not named like a sheet; pass --solution")
            else:
                found.append((*named, root))
        else:
            raise GradingError(f"no such submission: {root}")
    submissions: list[Submission] = []
    taken: dict[tuple[str, str], Path] = {}
    for name, sheet, path in found:
        student, flags = student_id(name), ()
        if student != name:
            flags = ("renamed",)
        if (student, sheet) in taken:
            k = 2
            while (f"{student}-{k}", sheet) in taken:
                k += 1
            student, flags = f"{student}-{k}", (*flags, "id-collision")
        taken[student, sheet] = path
        submissions.append(Submission(student, sheet, path, flags))
    return submissions, skipped


def _candidates(root: Path, skipped: list[str]) -> list[Path]:
    """``root/*.ipynb`` and ``root/*/*.ipynb``, reporting hidden entries, links and unreadable files."""
    files = []
    for entry in sorted(root.iterdir()):
        inner = sorted(entry.iterdir()) if entry.is_dir() and not entry.is_symlink() and _readable(entry) else [entry]
        for path in inner:
            if path.suffix != ".ipynb" and not path.name.startswith("."):
                continue
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                skipped.append(f"{path}: a hidden file or folder")
            elif path.is_symlink() or entry.is_symlink():
                skipped.append(f"{path}: a symbolic link, not followed")
            elif not path.is_file() or not _readable(path):
                skipped.append(f"{path}: not a readable file")
            else:
                files.append(path)
    return files


def _why_unnamed(path: Path, root: Path, known: set[str]) -> str:
    """Why ``path``, found in the folder ``root``, answers no sheet."""
    if path.parent == root:  # DIR/<student>.ipynb: the sheet comes from --solution
        return f"{path}: a notebook directly in {root} is DIR/<student>.ipynb; pass --solution"
    return f"{path}: not named like a sheet ({', '.join(sorted(known))})"


def _readable(path: Path) -> bool:
    return os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0))


def _whose(path: Path, root: Path, known: set[str], solution: str | None) -> tuple[str, str] | None:
    """``(student name, sheet)`` of a file, or ``None`` when it answers no known sheet."""
    if path.stem in known and path.parent != root:
        return path.parent.name, path.stem
    if solution and path.parent == root:
        return path.stem, solution
    return None


def check_out(out: Path, paths: Sequence[Path]) -> None:
    """Refuse an ``--out`` that is a file, not writable, or inside a submission folder (or holding one)."""
    out = Path(out).resolve()
    for path in map(Path, paths):
        folder = path.resolve() if path.is_dir() else path.resolve().parent
        if out == folder or folder in out.parents or out in folder.parents:
            raise GradingError(f"--out {out} overlaps the submissions in {folder}: choose a folder outside them")
    if out.exists() and not out.is_dir():
        raise GradingError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise GradingError(f"--out {out} is not writable: {error.strerror or error}") from None


# -- building and running the graded notebook -----------------------------------------
@dataclass(frozen=True)
class NotebookRun:
    """What one nbval run left: the grader's observations, nbval's report and the values recorded."""

    outcome: RunOutcome
    report: dict[int, tuple[str, str, float]] | None  #: code cell number -> (outcome, message, seconds); untrusted
    values: dict[tuple, dict]  #: (exercise, name, what, n) -> entry, and (exercise, name) -> error entry


def graded_notebook(
    instructor_nb: nbformat.NotebookNode, sheet: Sheet, student_nb: nbformat.NotebookNode
) -> tuple[nbformat.NotebookNode, list[str]]:
    """The instructor's notebook, without outputs, with the student's answer cells; also the flags."""
    answers: dict[str, str] = {}
    flags: list[str] = []
    for cell in student_nb.cells:
        aid = answer_id(cell)
        if aid is None:
            continue
        if aid in answers:
            flags.append("duplicate-answer")
        else:
            answers[aid] = cell.source
    nb = copy.deepcopy(instructor_nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for answer in sheet.answers:
        cell = nb.cells[answer.index]
        if answer.answer in answers:
            cell.source = answers[answer.answer]
        else:
            cell.source = stub_source(cell.source, answer.answer)
            flags.append(f"missing-answer:{answer.answer}")
    return nb, list(dict.fromkeys(flags))


def run_notebook(nb: nbformat.NotebookNode, limits: Limits, sandboxed: bool, label: str) -> NotebookRun:
    """Run ``nb`` with nbval under ``limits`` in a fresh scratch folder; read what it left, then delete it."""
    scratch = Path(tempfile.mkdtemp(prefix=f"mtl-grade-{label[:40]}-"))
    try:
        notebook = scratch / GRADED_NAME
        nbformat.write(nb, notebook)
        notebook.chmod(stat.S_IRUSR)
        (scratch / "pytest.ini").write_text("[pytest]\n")
        (scratch / VALUES_NAME).touch()
        cmd = [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mtl_course.grading.nbval_plugin"),
            *("--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={limits.cell_timeout_s:g}"),
            *("--junitxml=junit.xml", GRADED_NAME),
        ]
        outcome = run_limited(cmd, scratch, limits, _environment(scratch), sandboxed=sandboxed)
        return NotebookRun(outcome, _read_report(scratch / "junit.xml"), read_values(scratch / VALUES_NAME))
    finally:
        shutil.rmtree(scratch, onerror=_make_writable_and_retry)


def _environment(scratch: Path) -> dict[str, str]:
    """The run's environment: this one without pytest's or startup hooks, private homes, one thread."""
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    package_root = str(Path(checks.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([package_root, *env.get("PYTHONPATH", "").split(os.pathsep)]))
    home = "/tmp"
    env.update(
        HOME=home,
        MPLCONFIGDIR=f"{home}/matplotlib",
        JUPYTER_RUNTIME_DIR=f"{home}/jupyter",
        IPYTHONDIR=f"{home}/ipython",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
        **{checks.VALUES_ENV: str(scratch.resolve() / VALUES_NAME)},
    )
    return env


def _read_report(path: Path) -> dict[int, tuple[str, str, float]] | None:
    """``{code cell number: (outcome, message, seconds)}`` from nbval's JUnit report; ``None`` without one."""
    try:
        if path.stat().st_size > MAX_REPORT:
            return None
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cells: dict[int, tuple[str, str, float]] = {}
    for case in root.iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        outcome, message = "passed", ""
        for kind in ("failure", "error"):
            element = case.find(kind)
            if element is not None:
                outcome, message = "failed", f"{element.get('message', '')}\n{element.text or ''}"
        try:
            seconds = float(case.get("time", "0"))
        except ValueError:
            seconds = 0.0
        cells[int(match.group(1))] = (outcome, message, seconds)
    return cells


def read_values(path: Path) -> dict[tuple, dict]:
    """The values a run recorded (the first of each key counts); malformed lines are ignored."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_VALUES)
    except OSError:
        return {}
    values: dict[tuple, dict] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("exercise", "name")):
            continue
        if isinstance(entry.get("error"), str):
            values.setdefault((entry["exercise"], entry["name"]), entry)
        elif isinstance(entry.get("what"), str) and type(entry.get("n")) is int:
            values.setdefault((entry["exercise"], entry["name"], entry["what"], entry["n"]), entry)
    return values


# -- the instructor's reference --------------------------------------------------------
@dataclass(frozen=True)
class Instructor:
    """The instructor's notebook of one sheet and the reference its own run recorded."""

    path: Path
    nb: nbformat.NotebookNode
    sheet: Sheet
    reference: dict[tuple[str, str], list[dict]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Instructor:
        """Read and validate the notebook (no run yet)."""
        path = Path(path)
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as error:
            raise GradingError(f"cannot read the instructor's notebook {path}: {error}") from None
        return cls(path, nb, parse_sheet(nb, path.stem))

    def with_reference(self, limits: Limits, sandboxed: bool) -> Instructor:
        """Run the instructor's own notebook; refuse one whose values do not pass its own checks."""
        nb, _ = graded_notebook(self.nb, self.sheet, self.nb)
        run = run_notebook(nb, limits, sandboxed, f"reference-{self.path.stem}")
        reference: dict[tuple[str, str], list[dict]] = {}
        for key, entry in run.values.items():
            if len(key) == 4:
                reference.setdefault(key[:2], []).append(entry)
        for check in self.sheet.checks:
            key = (check.exercise, check.name)
            where = f"{self.path.name}: check {check.exercise} {check.name!r}"
            if key in run.values:
                raise GradingError(f"{where} raised {run.values[key]['error']} in the instructor's own run")
            entries = reference.get(key, [])
            if not any(e["kind"] != "true" for e in entries):
                raise GradingError(
                    f"{where} recorded no value to compare (a check of booleans alone is decided in the student's "
                    f"kernel); the run said:\n{run.outcome.output[-1500:]}"
                )
            for entry in entries:
                message = _compare(entry, entry["got"])
                if message:
                    raise GradingError(f"{where}: the solution fails its own check: {message}")
        return Instructor(self.path, self.nb, self.sheet, reference)


def _compare(spec: dict, got: object, student_message: object = None) -> str:
    """The instructor's ``spec`` applied to the student's encoded value ``got``, in this process."""
    expected = spec["expected"] if spec.get("expected") is not None else spec["got"]
    options = {k: spec[k] for k in ("rtol", "atol", "min_moved", "message") if k in spec}
    if spec["kind"] == "true" and isinstance(student_message, str):
        options["message"] = student_message[: checks.MAX_MESSAGE]  # the student's own numbers, for their feedback
    try:
        value = checks.decode(got)
    except checks.NotPlainData as error:
        return f"{spec['what']}: your value could not be read as plain data ({error})"
    return checks.compare(spec["kind"], value, checks.decode(expected), spec["what"], **options)


# -- scoring -----------------------------------------------------------------------
def score(instructor: Instructor, run: NotebookRun, limits: Limits) -> tuple[list[CheckResult], list[str]]:
    """Every check's result from the run's values (compared here), and notes about failed answer cells."""
    code_number = {i: n for n, i in enumerate(i for i, c in enumerate(instructor.nb.cells) if c.cell_type == "code")}
    failed_answers: dict[str, str] = {}
    for answer in instructor.sheet.answers:
        outcome = (run.report or {}).get(code_number[answer.index], ("not run", "", 0.0))
        if outcome[0] == "failed":
            failed_answers[answer.answer] = _answer_failure(answer.answer, outcome, limits)
    results = []
    for check in instructor.sheet.checks:
        key = (check.exercise, check.name)
        failures = [failed_answers[a] for a in instructor.sheet.answers_of(check.exercise) if a in failed_answers]
        if not failures and key in run.values:
            error = run.values[key]
            failures.append(checks.exception_message(str(error["error"]), str(error.get("detail", ""))))
        for spec in instructor.reference[key]:
            entry = run.values.get((*key, spec["what"], spec["n"]))
            if entry is None:
                if not failures:
                    failures.append(f"{spec['what']}: no value was recorded (the check did not get this far)")
                continue
            message = _compare(spec, entry.get("got"), entry.get("message"))
            if message:
                failures.append(message)
        text = "" if not failures else checks.verdict_text(check.exercise, check.name, check.points, failures)
        message = "\n".join(line.removeprefix("  ") for line in text.splitlines()[1:])
        earned = 0 if failures else check.points
        results.append(CheckResult(check.exercise, check.name, check.points, earned, check.hidden, message))
    notes = [failed_answers[a] for a in failed_answers]
    return results, notes


def _answer_failure(answer: str, outcome: tuple[str, str, float], limits: Limits) -> str:
    """Plain words for an answer cell that did not run to its end (from nbval's report: wording only)."""
    _, message, seconds = outcome
    if seconds >= 0.95 * limits.cell_timeout_s:
        return (
            f"your answer cell for {answer} ran past the limit of {limits.cell_timeout_s:g} s per cell and was stopped"
        )
    found = _EXCEPTION.findall(_ANSI.sub("", message))
    kind = found[-1].rsplit(".", 1)[-1] if found else "an error"
    return f"your answer cell for {answer} raised {kind}, so the check could not use it"


def status_of(outcome: RunOutcome, report: dict | None) -> str:
    """The status from what the grader observed: the wall clock, the memory, the processes' exits."""
    if outcome.timed_out:
        return "timeout"
    if outcome.out_of_memory:
        return "memory"
    if outcome.kernel_status is not None or outcome.returncode not in (0, 1) or report is None:
        return "crashed"
    return "ok"


def grade_submission(
    submission: Submission, instructor: Instructor, limits: Limits, sandboxed: bool = True
) -> SubmissionResult:
    """Grade one submission in its own sandboxed run; never modifies the submission."""
    start = time.monotonic()
    try:
        student_nb = read_notebook(submission.path)
    except Exception as error:  # any way of not being a notebook
        result = unrun(submission, instructor, "malformed", "your file could not be read as a notebook")
        result.notes.append(f"the file is not a notebook ({type(error).__name__})")
        return result
    nb, flags = graded_notebook(instructor.nb, instructor.sheet, student_nb)
    run = run_notebook(nb, limits, sandboxed, submission.student)
    results, notes = score(instructor, run, limits)
    status = status_of(run.outcome, run.report)
    if status != "ok":
        notes.insert(0, plain_words(status, limits, run.outcome))
    result = SubmissionResult(
        submission.student, submission.sheet, submission.path, status, results, [*submission.flags, *flags], notes
    )
    if not sandboxed:
        result.flags.append("unsandboxed")
    result.seconds, result.cpu_seconds = time.monotonic() - start, run.outcome.cpu_seconds
    return result


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Parse a submission without writing to it; reject anything without a list of cells."""
    nb = nbformat.reads(Path(path).read_text(encoding="utf-8"), as_version=4)
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and isinstance(c.get("source"), str) for c in cells):
        raise ValueError("the notebook has no list of cells with text sources")
    return nb


def unrun(submission: Submission, instructor: Instructor, status: str, message: str) -> SubmissionResult:
    """A result whose notebook did not run: every check earns nothing, with ``message``."""
    results = [CheckResult(c.exercise, c.name, c.points, 0, c.hidden, message) for c in instructor.sheet.checks]
    return SubmissionResult(submission.student, submission.sheet, submission.path, status, results, [*submission.flags])


def _make_writable_and_retry(function: Callable, path: str, _excinfo: object) -> None:
    os.chmod(path, stat.S_IRWXU)
    function(path)


# -- the whole run --------------------------------------------------------------
def grade(
    paths: Sequence[Path],
    out: Path,
    *,
    solutions: Path,
    solution: Path | None = None,
    jobs: int = 2,
    limits: Limits | None = None,
    sandboxed: bool = True,
    only: str | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[SubmissionResult]:
    """Grade every submission under ``paths``; write ``out/gradebook.csv`` and ``out/feedback/``.

    ``solutions`` is the folder of instructor notebooks, matched to submissions by
    file name; ``solution`` (a notebook) overrides it for every submission;
    ``only`` grades one student id (``--regrade``) and keeps the other rows of an
    existing gradebook. Everything is validated before the first submission runs.
    """
    limits = limits or Limits()
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, got {jobs}")
    folder = Path(solutions)
    if solution is None and not folder.is_dir():
        raise GradingError(f"no solutions folder {folder}")
    sheets = {Path(solution).stem: Path(solution)} if solution else {p.stem: p for p in sorted(folder.glob("*.ipynb"))}
    submissions, skipped = find_submissions(paths, list(sheets), Path(solution).stem if solution else None)
    check_out(out, paths)
    for line in skipped:
        log(f"skipped {_terminal(line)}")
    if only is not None:
        submissions = [s for s in submissions if s.student == only]
        if not submissions:
            raise GradingError(f"--regrade {only!r}: no submission of that student id")
    if not submissions:
        why = f" ({len(skipped)} notebook(s) skipped, each for the reason above)" if skipped else ""
        raise GradingError(f"no submissions to grade under {', '.join(map(str, paths))}{why}")
    if sandboxed:
        with tempfile.TemporaryDirectory(prefix="mtl-grade-probe-") as probe:
            check_sandbox(Path(probe))
    else:
        log("WARNING: --no-sandbox: students' code runs unconfined, with this user's rights")
    instructors = {name: Instructor.load(sheets[name]) for name in sorted({s.sheet for s in submissions})}
    instructors = {name: i.with_reference(limits, sandboxed) for name, i in instructors.items()}
    warning = "" if sandboxed else "  UNSANDBOXED"

    def run(submission: Submission) -> SubmissionResult:
        instructor = instructors[submission.sheet]
        try:
            result = grade_submission(submission, instructor, limits, sandboxed)
        except Exception as error:  # a grader bug must not lose the other students' grades
            result = unrun(submission, instructor, "grader-error", f"the grader failed: {type(error).__name__}")
            result.notes.append(f"{type(error).__name__}: {error}")
        log(
            f"{submission.student:>20} {submission.sheet}: {result.status:<9} {result.score()}/{result.max_points()}"
            f"  {result.seconds:5.1f} s  {_terminal(';'.join(result.flags))}{warning}"
        )
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, submissions))
    write_results(results, Path(out), keep_others=only is not None)
    return results


def _terminal(text: str) -> str:
    """Text safe for a terminal: control characters and escapes shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)[:300]

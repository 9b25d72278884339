"""``mtl-course grade``: run submissions with nbval against the instructor's notebook and score them.

**Which files.** A SUBMISSION argument is a notebook or a folder. A folder is
searched one level deep: ``DIR/<student>/<sheet>.ipynb`` (a folder per
student, files named like the sheet) and ``DIR/<student>.ipynb``. A file named
like a sheet (``01_lasso_inductive_bias.ipynb``) belongs to the student named
by its folder; any other file name *is* the student id, and the sheet must then
be given with ``--solution``. Student ids keep only ``[A-Za-z0-9._-]``.

**What runs.** For each submission the grader builds a notebook from the
*instructor's* notebook in which only the answer cells come from the student,
matched by their answer id in the cell metadata (not by position):

- a missing answer cell is replaced by the released stub (flag ``missing-answer``);
- of duplicated answer cells the first counts (flag ``duplicate-answer``);
- every other student cell (extra cells, edited check cells, markdown) is
  ignored; the check cells, hidden ones included, are the instructor's.

Each check cell gets a pristine copy of :mod:`mtl_course.grading.checks`
(its source, read once by the grader, is executed inside the cell instead of
importing the possibly monkey-patched module) and a one-time nonce, delivered
out of band by :mod:`mtl_course.grading.nbval_plugin`. The check appends its
verdict with that nonce to a record file. nbval runs the notebook in a scratch
folder under :mod:`mtl_course.grading.sandbox` limits.

**Scoring.** A check earns its points when both (1) nbval passes its cell,
that is the cell printed exactly the instructor's stored ``PASS`` verdict, and
(2) the record holds a ``PASS`` verdict carrying that cell's nonce. (When the
run had to be killed there is no nbval report, and (2) alone decides for the
checks that ran.) A printed ``PASS`` without a recorded one is flagged
``unrecorded-pass``: someone forged the printed verdict.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mtl_course.grading import checks as checks_module
from mtl_course.grading.format import CHECKS_IMPORT, Sheet, answer_id, parse_sheet, stub_source
from mtl_course.grading.gradebook import CheckResult, SubmissionResult, write_results
from mtl_course.grading.nbval_plugin import KERNEL_DIED
from mtl_course.grading.sandbox import Limits, RunOutcome, run_limited

#: Answer code mentioning one of these is flagged ``suspicious`` for manual review.
SUSPICIOUS = (
    "mtl_course.grading",
    "builtins",
    "sys.modules",
    "os.environ",
    "sys.stdout",
    "sys.stderr",
    "settrace",
    "setprofile",
    "addaudithook",
    "input_transformers",
    "get_ipython",
    "ctypes",
    "gc.get_objects",
    "importlib",
    "__import__",
    "meta_path",
    "/proc",
    "verdicts",
)
#: The record file of the checks' verdicts, in the scratch folder.
RECORD_NAME = "verdicts.jsonl"
GRADED_NAME = "graded.ipynb"
#: The most of the verdict record the grader reads (bytes).
MAX_RECORD = 1 << 20
#: ANSI colour codes, raw or as pytest's JUnit report escapes them (``#x1B[31m``).
_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*[A-Za-z]")
_STUDENT_ID = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Submission:
    """One notebook to grade: whose, for which sheet, where."""

    student: str
    sheet: str
    path: Path


@dataclass(frozen=True)
class Instructor:
    """The instructor's notebook of one sheet, read once, before any submission runs."""

    path: Path
    nb: nbformat.NotebookNode
    sheet: Sheet
    checks_source: str

    @classmethod
    def load(cls, path: Path) -> Instructor:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        source = Path(checks_module.__file__).read_text(encoding="utf-8")
        return cls(path, nb, parse_sheet(nb, path.stem), source)


# -- finding submissions --------------------------------------------------------
def find_submissions(paths: Sequence[Path], sheets: Sequence[str], solution: str | None = None) -> list[Submission]:
    """The submissions under ``paths`` (files or folders), with their student ids and sheets.

    ``sheets`` are the known sheet names (file stems of ``solutions/``);
    ``solution`` is the sheet every submission answers, when given.
    """
    known = {solution} if solution else set(sheets)
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.ipynb")) + sorted(path.glob("*/*.ipynb"))
            files += [f for f in found if not any(part.startswith(".") for part in f.relative_to(path).parts)]
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such submission: {path}")
    submissions, seen = [], {}
    for f in files:
        if f.stem in known:
            student, sheet = f.parent.resolve().name, f.stem
        elif solution:
            student, sheet = f.stem, solution
        else:
            raise ValueError(
                f"cannot tell which sheet {f} answers: name it <student>/<sheet>.ipynb "
                f"with a sheet from {sorted(known)}, or pass --solution"
            )
        student = _STUDENT_ID.sub("_", student).lstrip(".") or "unnamed"
        if (student, sheet) in seen:
            raise ValueError(f"two submissions of {student} for {sheet}: {seen[student, sheet]} and {f}")
        seen[student, sheet] = f
        submissions.append(Submission(student, sheet, f))
    return submissions


# -- building the graded notebook -----------------------------------------------
def nonce_placeholder(k: int) -> str:
    """The text in check cell ``k`` that the plugin replaces with the cell's nonce."""
    return f"@@MTL_COURSE_NONCE_{k}@@"


def pristine_check_source(source: str, checks_source: str, record: Path, placeholder: str) -> str:
    """A check cell's source with its ``checks`` import replaced by a pristine, recording copy."""
    prologue = [
        "import types as _mtl_types",
        "checks = _mtl_types.ModuleType('mtl_course.grading.checks')",
        f"exec(compile({checks_source!r}, 'mtl_course/grading/checks.py (pristine copy)', 'exec'), checks.__dict__)",
        f"checks.record_verdicts_to({str(record)!r}, {placeholder!r})",
        "del _mtl_types",
    ]
    lines = source.splitlines()
    at = lines.index(CHECKS_IMPORT)
    return "\n".join(lines[:at] + prologue + lines[at + 1 :])


def graded_notebook(
    instructor: Instructor, student_nb: nbformat.NotebookNode, record: Path
) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    """The instructor's notebook with the student's answer cells; also the flags and answer sources used."""
    answers: dict[str, str] = {}
    flags: list[str] = []
    for cell in student_nb.cells:
        aid = answer_id(cell)
        if aid is None:
            continue
        if aid in answers:
            flags.append(f"duplicate-answer:{aid}")
        else:
            answers[aid] = cell.source
    nb = copy.deepcopy(instructor.nb)
    nb.metadata.pop("widgets", None)
    used = []
    for answer in instructor.sheet.answers:
        cell = nb.cells[answer.index]
        if answer.answer in answers:
            cell.source = answers[answer.answer]
            used.append(cell.source)
        else:
            cell.source = stub_source(cell.source, answer.answer)
            flags.append(f"missing-answer:{answer.answer}")
    for k, check in enumerate(instructor.sheet.checks):
        cell = nb.cells[check.index]
        cell.source = pristine_check_source(cell.source, instructor.checks_source, record, nonce_placeholder(k))
    return nb, flags, used


def suspicious_names(sources: Sequence[str]) -> list[str]:
    """The :data:`SUSPICIOUS` names that occur in the student's answer code."""
    text = "\n".join(sources)
    return [name for name in SUSPICIOUS if name in text]


# -- running and scoring ----------------------------------------------------------
def grade_submission(submission: Submission, instructor: Instructor, limits: Limits) -> SubmissionResult:
    """Grade one submission in its own scratch folder and process; never modifies the submission."""
    start = time.monotonic()
    try:
        student_nb = _read_notebook(submission.path)
    except Exception as error:  # any way of not being a notebook
        result = _unrun(
            submission, instructor, "malformed", f"not a readable notebook: {type(error).__name__}: {error}"
        )
        result.notes.append(f"the file could not be read as a notebook ({type(error).__name__}: {str(error)[:300]})")
        return result
    scratch = Path(tempfile.mkdtemp(prefix=f"mtl-grade-{submission.student}-"))
    try:
        record = scratch / RECORD_NAME
        record.touch()
        nb, flags, used = graded_notebook(instructor, student_nb, record)
        flags += [f"suspicious:{name}" for name in suspicious_names(used)]
        notebook = scratch / GRADED_NAME
        nbformat.write(nb, notebook)
        notebook.chmod(stat.S_IRUSR)
        (scratch / "pytest.ini").write_text("[pytest]\n")
        nonces = {nonce_placeholder(k): secrets.token_hex(16) for k in range(len(instructor.sheet.checks))}
        outcome = _run_nbval(scratch, nonces, limits)
        junit = _read_junit(scratch / "junit.xml")
        records = _read_records(record)
    finally:
        shutil.rmtree(scratch, onerror=_make_writable_and_retry)
    result = _score(submission, instructor, nb, nonces, junit, records, outcome)
    result.flags = flags + result.flags
    result.seconds = time.monotonic() - start
    return result


def _read_notebook(path: Path) -> nbformat.NotebookNode:
    """Parse a submission without writing to it; reject anything without a list of cells."""
    nb = nbformat.reads(Path(path).read_text(encoding="utf-8"), as_version=4)
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and isinstance(c.get("source"), str) for c in cells):
        raise ValueError("the notebook has no list of cells with text sources")
    return nb


def _run_nbval(scratch: Path, nonces: dict[str, str], limits: Limits) -> RunOutcome:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        json.dump(nonces, pipe)  # a few hundred bytes: fits in the pipe's buffer
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "mtl_course.grading.nbval_plugin",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={limits.cell_timeout_s:g}",
        f"--mtl-nonce-fd={read_end}",
        "--junitxml=junit.xml",
        GRADED_NAME,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONSTARTUP"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    try:
        return run_limited(cmd, scratch, limits, env=env, pass_fds=(read_end,))
    finally:
        os.close(read_end)


def _read_junit(path: Path) -> dict[int, tuple[str, str]] | None:
    """``{code cell number: (outcome, message)}`` from nbval's JUnit report; ``None`` without one."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cells: dict[int, tuple[str, str]] = {}
    for case in root.iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = "skipped" if kind == "skipped" else "failed"
                message = _ANSI.sub("", f"{element.get('message', '')}\n{element.text or ''}").strip()
        cells[int(match.group(1))] = (outcome, message)
    return cells


def _read_records(path: Path) -> dict[str, dict]:
    """The verdicts in the record, by nonce (a FAIL wins over a PASS with the same nonce)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD)
    except OSError:
        return {}
    records: dict[str, dict] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("nonce"), str):
            if records.get(entry["nonce"], {}).get("verdict") != "FAIL":
                records[entry["nonce"]] = entry
    return records


def _score(
    submission: Submission,
    instructor: Instructor,
    nb: nbformat.NotebookNode,
    nonces: dict[str, str],
    junit: dict[int, tuple[str, str]] | None,
    records: dict[str, dict],
    outcome: RunOutcome,
) -> SubmissionResult:
    code_number = {i: n for n, i in enumerate(i for i, c in enumerate(nb.cells) if c.cell_type == "code")}
    results, flags, notes = [], [], []
    for k, check in enumerate(instructor.sheet.checks):
        record = records.get(nonces[nonce_placeholder(k)], {})
        cell_outcome, cell_message = (junit or {}).get(code_number[check.index], ("not run", ""))
        recorded_pass = record.get("verdict") == "PASS" and record.get("earned") == check.points
        nbval_pass = cell_outcome == "passed" or junit is None
        if recorded_pass and nbval_pass:
            message = ""
        elif record.get("verdict") == "FAIL":
            message = str(record.get("message", ""))
        elif recorded_pass:
            message = (
                "the check passed, but the cell's output differs from the instructor's: did your code print "
                f"something while the check ran?\n{_last_lines(cell_message, 15)}"
            )
        else:
            message = f"the check did not finish: {_last_lines(cell_message, 6) or 'the run stopped before it'}"
        if cell_outcome == "passed" and not recorded_pass:
            flags.append(f"unrecorded-pass:{check.exercise}")
            message += (
                "\n(the cell printed a PASS verdict that the grader's record does not confirm: flagged for review)"
            )
        earned = check.points if recorded_pass and nbval_pass else 0
        results.append(CheckResult(check.exercise, check.name, check.points, earned, check.hidden, message))
    for answer in instructor.sheet.answers:
        cell_outcome, cell_message = (junit or {}).get(code_number[answer.index], ("not run", ""))
        if cell_outcome == "failed":
            notes.append(f"answer cell {answer.answer} failed: {_last_lines(cell_message, 1)}")
    status = _status(
        outcome, junit, [m for _, m in (junit or {}).values()] + [str(r.get("message")) for r in records.values()]
    )
    if junit is None and not outcome.timed_out:
        notes.append(
            f"nbval wrote no report (exit code {outcome.returncode}); its output ends:\n{_last_lines(outcome.output, 8)}"
        )
    return SubmissionResult(
        submission.student, submission.sheet, submission.path, status, results, list(dict.fromkeys(flags)), notes
    )


def _status(outcome: RunOutcome, junit: dict | None, messages: list[str]) -> str:
    text = "\n".join(messages)
    if outcome.timed_out or "Timeout of" in text:
        return "timeout"
    if "MemoryError" in text or "MemoryError" in outcome.output:
        return "memory"
    if junit is None or KERNEL_DIED in text or "Kernel dead" in text:
        return "crashed"
    return "ok"


def _last_lines(text: str, n: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def _unrun(submission: Submission, instructor: Instructor, status: str, message: str) -> SubmissionResult:
    checks = [CheckResult(c.exercise, c.name, c.points, 0, c.hidden, message) for c in instructor.sheet.checks]
    return SubmissionResult(submission.student, submission.sheet, submission.path, status, checks)


def _make_writable_and_retry(function: Callable, path: str, _excinfo: object) -> None:
    os.chmod(path, stat.S_IRWXU)
    function(path)


# -- the whole run --------------------------------------------------------------
def fingerprint(paths: Sequence[Path]) -> str:
    """A hash of the files the grading depends on (to notice a submission that wrote to them)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.exists() else b"<missing>"))
    return digest.hexdigest()


def grade(
    paths: Sequence[Path],
    out: Path,
    *,
    solutions: Path,
    solution: Path | None = None,
    jobs: int = 2,
    limits: Limits = Limits(),
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[SubmissionResult]:
    """Grade every submission under ``paths``; write ``out/gradebook.csv`` and ``out/feedback/``.

    ``solutions`` is the folder of instructor notebooks, matched to submissions by
    file name; ``solution`` (a notebook) overrides it for every submission.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    sheets = (
        {solution.stem: Path(solution)} if solution else {p.stem: p for p in sorted(Path(solutions).glob("*.ipynb"))}
    )
    submissions = find_submissions(paths, list(sheets), solution.stem if solution else None)
    if not submissions:
        raise FileNotFoundError(f"no submissions (*.ipynb) under {', '.join(map(str, paths))}")
    instructors = {name: Instructor.load(sheets[name]) for name in sorted({s.sheet for s in submissions})}
    watched = [i.path.resolve() for i in instructors.values()] + sorted(
        Path(checks_module.__file__).parent.glob("*.py")
    )

    def run(submission: Submission) -> SubmissionResult:
        before = fingerprint(watched)  # a change while this one ran flags it (and any run beside it)
        try:
            result = grade_submission(submission, instructors[submission.sheet], limits)
        except Exception as error:  # a grader bug must not lose the other students' grades
            result = _unrun(
                submission, instructors[submission.sheet], "grader-error", f"{type(error).__name__}: {error}"
            )
        if fingerprint(watched) != before:
            result.flags.append("grader-files-modified")
        log(
            f"{submission.student:>20} {submission.sheet}: {result.status:<9} {result.score()}/{result.max_points()}"
            f"  {result.seconds:5.1f} s  {';'.join(result.flags)}"
        )
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, submissions))
    write_results(results, Path(out))
    return results

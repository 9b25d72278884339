"""Grading results: the gradebook CSV and one markdown feedback file per student and sheet.

Both are written by the grader's own process after the runs, each file
atomically (a temporary file in the same folder, then :func:`os.replace`),
so a crash or a submission never leaves a half-written gradebook.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Every status a graded submission can have, and what it means.
STATUSES = {
    "ok": "ran to the end within the limits",
    "timeout": "the whole run exceeded its time limit and was stopped",
    "memory": "the run used more memory than allowed and was stopped",
    "crashed": "the Python process running the notebook stopped before the end",
    "malformed": "the file is not a readable notebook; nothing was run",
    "grader-error": "the grader itself failed on this submission; grade it by hand and report the bug",
}
#: The longest message a feedback file quotes for one check (characters).
MAX_FEEDBACK_MESSAGE = 1500
#: The longest flags cell of the gradebook (characters).
MAX_FLAGS = 300


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check cell for one submission."""

    exercise: str
    name: str
    points: int
    earned: int
    hidden: bool
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.earned == self.points


@dataclass
class SubmissionResult:
    """Everything the gradebook and the feedback say about one submission."""

    student: str
    sheet: str
    path: Path
    status: str
    checks: list[CheckResult]
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  #: CPU time of the run's processes (not in the gradebook; for benchmarks)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {sorted(STATUSES)}")

    @property
    def exercises(self) -> list[str]:
        return list(dict.fromkeys(c.exercise for c in self.checks))

    def score(self, exercise: str | None = None) -> int:
        """Points earned in one exercise, or in the whole sheet."""
        return sum(c.earned for c in self.checks if exercise in (None, c.exercise))

    def max_points(self, exercise: str | None = None) -> int:
        return sum(c.points for c in self.checks if exercise in (None, c.exercise))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plain_words(status: str, limits: Any, outcome: Any) -> str:
    """What happened to a run, for the student, in plain words."""
    if status == "timeout":
        return (
            f"Your notebook ran past the time limit of {limits.timeout_s:g} s for the whole sheet and was stopped; "
            "the checks that had not run earned nothing. Look for an endless loop or a much slower computation."
        )
    if status == "memory":
        return (
            f"Your notebook used more than {limits.memory_bytes / 2**20:.0f} MiB of memory and was stopped; "
            "the checks that had not run earned nothing. Look for a very large array or a list that keeps growing."
        )
    if outcome.kernel_status is not None:  # a wait status: the signal in the low bits, else the exit code
        signal, code = outcome.kernel_status & 0x7F, outcome.kernel_status >> 8
        how = f"the kernel ended with signal {signal}" if signal else f"the kernel exited with code {code}"
    else:
        code = outcome.returncode
        how = f"nbval ended with signal {-code}" if code < 0 else f"nbval exited with code {code}"
    return (
        "The Python process running your notebook stopped before the end (it crashed, called exit, was killed, "
        f"or ignored an interrupt at the time limit per cell; {how}); the checks after that point earned nothing."
    )


def csv_cell(text: str, limit: int = 200) -> str:
    r"""Untrusted text for a spreadsheet cell: printable, bounded, never read as a formula.

    >>> csv_cell("=HYPERLINK(1)"), csv_cell("a\nb\x1b[31m"), csv_cell("-2-3")
    ("'=HYPERLINK(1)", 'a?b?[31m', "'-2-3")
    """
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _flags_cell(flags: Sequence[str]) -> str:
    """Distinct flags with counts, at most :data:`MAX_FLAGS` characters."""
    counts = Counter(flags)
    return csv_cell(";".join(f if n == 1 else f"{f}(x{n})" for f, n in counts.items()), MAX_FLAGS)


def gradebook_csv(results: Sequence[SubmissionResult]) -> str:
    """One row per student and sheet: status, points per exercise, total, maximum, flags."""
    exercises = list(dict.fromkeys(e for r in results for e in r.exercises))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "sheet", "status", *exercises, "total", "max", "flags", "seconds"])
    for r in sorted(results, key=lambda r: (r.sheet, r.student)):
        points = [r.score(e) if e in r.exercises else "" for e in exercises]
        writer.writerow(
            [
                csv_cell(r.student),
                csv_cell(r.sheet),
                r.status,
                *points,
                r.score(),
                r.max_points(),
                _flags_cell(r.flags),
                f"{r.seconds:.1f}",
            ]
        )
    return out.getvalue()


def feedback_markdown(result: SubmissionResult) -> str:
    """The feedback a student gets for one sheet: score, status, every check and why it failed."""
    lines = [
        f"# {_escape(result.sheet)}: feedback for {_escape(result.student)}",
        "",
        f"**Score: {result.score()} / {result.max_points()}**. Status: `{result.status}` ({STATUSES[result.status]}).",
        "",
        "| exercise | points |",
        "| --- | ---: |",
    ]
    lines += [f"| {_escape(e)} | {result.score(e)} / {result.max_points(e)} |" for e in result.exercises]
    if result.notes:
        lines += ["", "## What happened", ""] + [f"- {_escape(_bounded(note))}" for note in result.notes]
    lines += ["", "## Checks", ""]
    for check in result.checks:
        mark = "PASS" if check.passed else "FAIL"
        hidden = " (hidden check)" if check.hidden else ""
        lines.append(f"- **{mark}** {check.exercise} {check.name}{hidden}: {check.earned}/{check.points}")
        if check.message:
            quoted = _bounded(check.message).replace("`", "'")
            lines += ["", "  ```text", *[f"  {_printable(line)}" for line in quoted.splitlines()], "  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_FEEDBACK_MESSAGE else text[: MAX_FEEDBACK_MESSAGE - 15] + "\n[... truncated]"


def _escape(text: str) -> str:
    """Untrusted text for markdown outside a code block: printable, every markup character escaped."""
    return re.sub(r"([\\`*_{}\[\]<>#|~!])", r"\\\1", _printable(text))


def write_results(results: Sequence[SubmissionResult], out: Path, keep_others: bool = False) -> Path:
    """Write ``out/feedback/<student>/<sheet>.md`` for each result, then ``out/gradebook.csv``; return the latter.

    With ``keep_others`` (a regrade), the rows of other students in an existing gradebook stay as they are.
    """
    out = Path(out)
    for result in results:
        atomic_write_text(out / "feedback" / result.student / f"{result.sheet}.md", feedback_markdown(result))
    gradebook = out / "gradebook.csv"
    text = gradebook_csv(results)
    if keep_others and gradebook.exists():
        text = _merge(gradebook.read_text(encoding="utf-8"), text)
    atomic_write_text(gradebook, text)
    return gradebook


def _merge(old: str, new: str) -> str:
    """``old`` gradebook rows with the rows of ``new`` (same student and sheet) replaced or added."""
    old_rows, new_rows = list(csv.reader(io.StringIO(old))), list(csv.reader(io.StringIO(new)))
    if not old_rows or old_rows[0] != new_rows[0]:
        return new
    replaced = {(row[0], row[1]) for row in new_rows[1:]}
    rows = [row for row in old_rows[1:] if (row[0], row[1]) not in replaced] + new_rows[1:]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(new_rows[0])
    writer.writerows(sorted(rows, key=lambda row: (row[1], row[0])))
    return out.getvalue()

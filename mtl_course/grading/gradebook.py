"""Grading results: the gradebook CSV and one markdown feedback file per student and sheet.

Both are written by the grader's own process after the runs, each file
atomically (a temporary file in the same folder, then :func:`os.replace`),
so a crash or a submission never leaves a half-written gradebook.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Every status a graded submission can have, and what it means.
STATUSES = {
    "ok": "ran to the end within the limits",
    "timeout": "a cell or the whole run exceeded its time limit and was stopped",
    "memory": "the code exceeded the memory limit (MemoryError)",
    "crashed": "the kernel died (os._exit, a segfault, a signal) before the end",
    "malformed": "the file is not a readable notebook; nothing was run",
    "grader-error": "the grader itself failed on this submission; grade it by hand and report the bug",
}
#: The longest message a feedback file quotes for one check (characters).
MAX_FEEDBACK_MESSAGE = 1500


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


def gradebook_csv(results: Sequence[SubmissionResult]) -> str:
    """One row per student and sheet: status, points per exercise, total, maximum, flags."""
    exercises = list(dict.fromkeys(e for r in results for e in r.exercises))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "sheet", "status", *exercises, "total", "max", "flags", "seconds"])
    for r in sorted(results, key=lambda r: (r.sheet, r.student)):
        points = [r.score(e) if e in r.exercises else "" for e in exercises]
        writer.writerow(
            [r.student, r.sheet, r.status, *points, r.score(), r.max_points(), ";".join(r.flags), f"{r.seconds:.1f}"]
        )
    return out.getvalue()


def feedback_markdown(result: SubmissionResult) -> str:
    """The feedback a student gets for one sheet: score, status, every check and why it failed."""
    lines = [
        f"# {result.sheet}: feedback for {result.student}",
        "",
        f"**Score: {result.score()} / {result.max_points()}**. Status: `{result.status}` ({STATUSES[result.status]}).",
        "",
        "| exercise | points |",
        "| --- | ---: |",
    ]
    lines += [f"| {e} | {result.score(e)} / {result.max_points(e)} |" for e in result.exercises]
    lines += ["", "## Checks", ""]
    for check in result.checks:
        mark = "PASS" if check.passed else "FAIL"
        hidden = " (hidden check)" if check.hidden else ""
        lines.append(f"- **{mark}** {check.exercise} {check.name}{hidden}: {check.earned}/{check.points}")
        if check.message:
            lines += ["", "  ```text", *[f"  {line}" for line in _quote(check.message).splitlines()], "  ```", ""]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {_quote(note)}" for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def _quote(text: str) -> str:
    """Student-influenced text, shortened and unable to close a code fence."""
    text = text.replace("```", "'''")
    return text if len(text) <= MAX_FEEDBACK_MESSAGE else text[: MAX_FEEDBACK_MESSAGE - 15] + "\n[... truncated]"


def write_results(results: Sequence[SubmissionResult], out: Path) -> Path:
    """Write ``out/feedback/<student>/<sheet>.md`` for each result, then ``out/gradebook.csv``; return the latter."""
    out = Path(out)
    for result in results:
        atomic_write_text(out / "feedback" / result.student / f"{result.sheet}.md", feedback_markdown(result))
    gradebook = out / "gradebook.csv"
    atomic_write_text(gradebook, gradebook_csv(results))
    return gradebook

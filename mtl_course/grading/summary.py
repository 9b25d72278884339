"""The instructor's summary after a grading run: points per exercise, a figure, and the roster.

:func:`write_summary` returns a short text for the terminal (per exercise:
mean, how many earned full, partial and no points; statuses; the roster's
missing and unknown students) and saves ``summary.png`` beside the gradebook:
one histogram of points per exercise (seaborn).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mtl_course.grading.gradebook import SubmissionResult, atomic_write_text, csv_cell

FIGURE_NAME = "summary.png"


def exercise_table(results: Sequence[SubmissionResult]) -> list[tuple[str, str, int, float, int, int, int, int]]:
    """Rows ``(sheet, exercise, n, mean, max, full, partial, none)`` of the graded submissions.

    >>> from mtl_course.grading.gradebook import CheckResult
    >>> r = [SubmissionResult("a", "s", Path("a"), "ok", [CheckResult("e1", "c", 2, p, False)]) for p in (0, 2, 2)]
    >>> exercise_table(r)
    [('s', 'e1', 3, 1.3333333333333333, 2, 2, 0, 1)]
    """
    rows = []
    for sheet in sorted({r.sheet for r in results}):
        graded = [r for r in results if r.sheet == sheet]
        for exercise in dict.fromkeys(e for r in graded for e in r.exercises):
            scores = [r.score(exercise) for r in graded]
            top = graded[0].max_points(exercise)
            full, none = sum(s == top for s in scores), sum(s == 0 for s in scores)
            rows.append(
                (sheet, exercise, len(scores), sum(scores) / len(scores), top, full, len(scores) - full - none, none)
            )
    return rows


def read_roster(path: Path) -> dict[str, str]:
    """Student id -> name from a CSV with a ``student`` column (and optionally ``name``)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "student" not in (reader.fieldnames or []):
            raise ValueError(f"roster {path} has no 'student' column; its columns are {reader.fieldnames}")
        return {row["student"].strip(): (row.get("name") or "").strip() for row in reader if row["student"].strip()}


def write_summary(results: Sequence[SubmissionResult], out: Path, roster: Path | None = None) -> str:
    """Save the figure and ``summary.txt`` in ``out``; return the text."""
    lines = [
        "| sheet | exercise | n | mean | max | full | partial | none |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    table = exercise_table(results)
    lines += [f"| {s} | {e} | {n} | {m:.2f} | {t} | {f} | {p} | {z} |" for s, e, n, m, t, f, p, z in table]
    statuses = Counter(r.status for r in results)
    lines.append("statuses: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    if roster is not None:
        listed, graded = read_roster(roster), {r.student for r in results}
        missing = sorted(set(listed) - graded)
        unknown = sorted(graded - set(listed))
        lines.append(f"roster: {len(listed)} students; no submission from {len(missing)}: {', '.join(missing) or '-'}")
        lines.append(f"submissions not on the roster ({len(unknown)}): {', '.join(map(csv_cell, unknown)) or '-'}")
    if table:
        _figure(results, Path(out) / FIGURE_NAME)
        lines.append(f"figure: {Path(out) / FIGURE_NAME}")
    text = "\n".join(lines)
    atomic_write_text(Path(out) / "summary.txt", text + "\n")
    return text


def _figure(results: Sequence[SubmissionResult], path: Path) -> None:
    """One bar chart of how many submissions earned each number of points, per exercise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    several = len({r.sheet for r in results}) > 1
    data = pd.DataFrame(
        [(f"{r.sheet[:2]} {e}" if several else e, r.score(e)) for r in results for e in r.exercises],
        columns=["exercise", "points"],
    )
    grid = sns.catplot(
        data=data, x="points", col="exercise", kind="count", col_wrap=4, height=2.2, color="#0072B2", sharex=False
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("points earned", "submissions")
    grid.figure.suptitle("Points per exercise", y=1.03)
    grid.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(grid.figure)

"""Repository-wide pytest hooks: a per-notebook timing table in the test output.

nbval turns each notebook cell into a test item; this hook adds up the
seconds of every item per notebook file, so that a slow notebook is visible
at the end of ``make test`` (the budget is 60 s per notebook on 2 cores).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

NOTEBOOK_BUDGET_S = 60.0
_notebook_seconds: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _notebook_seconds:
        return
    tr = terminalreporter
    tr.section("notebook run times (nbval, this run)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "  OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else ""
        tr.write_line(f"{seconds:7.1f} s  {path}{flag}")

"""Repository-wide pytest hooks: a per-notebook timing table, and a plain list of what was skipped and why.

nbval turns each notebook cell into a test item; a hook adds up the seconds
of every item per notebook file, so that a slow notebook is visible at the end
of ``make test`` (the budget is 60 s per notebook on 2 cores). Tests that need
something this machine lacks (chromium for the browser tests, a GPU) skip with
a reason; the summary names them so that a green run never hides them.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

NOTEBOOK_BUDGET_S = 60.0
_notebook_seconds: defaultdict[str, float] = defaultdict(float)
_skipped: defaultdict[str, list[str]] = defaultdict(list)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        _skipped[reason].append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    tr = terminalreporter
    if _skipped:
        tr.section("skipped tests, by reason")
        for reason, nodeids in sorted(_skipped.items()):
            tr.write_line(f"{len(nodeids):4d} skipped: {reason}")
            for nodeid in nodeids[:5]:
                tr.write_line(f"       {nodeid}")
            if len(nodeids) > 5:
                tr.write_line(f"       ... and {len(nodeids) - 5} more")
    if not _notebook_seconds:
        return
    tr.section("notebook run times (nbval, this run)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "  OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else ""
        tr.write_line(f"{seconds:7.1f} s  {path}{flag}")

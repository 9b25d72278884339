"""A pytest plugin that ``mtl-course grade`` loads into nbval's pytest process (``-p``).

It does two things nbval 0.11 does not:

1. **Nonces arrive out of band.** The graded notebook on disk holds
   placeholders where each check cell passes its one-time nonce to the
   verdict record. The grader writes ``{placeholder: nonce}`` as JSON into a
   pipe whose read end this process inherits (``--mtl-nonce-fd``); the plugin
   reads it once, at collection, and substitutes the nonces into the cells'
   sources. The Jupyter kernel does not inherit the pipe (it is started with
   ``close_fds``), and the nonces are on no disk, in no environment variable
   and on no command line, so the student's code cannot know a nonce before
   the check cell that carries it runs.
2. **A dead kernel fails fast.** nbval waits the whole cell timeout for the
   reply of a kernel that has died (``os._exit``, a segfault, SIGKILL). The
   plugin makes it poll and fail the cell with ``RuntimeError: kernel died``
   as soon as the kernel process is gone.
"""

from __future__ import annotations

import json
import os
import time
from queue import Empty
from typing import Any

import pytest

#: The message of a cell during which the kernel died.
KERNEL_DIED = "kernel died"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--mtl-nonce-fd", type=int, default=None, help="read the check cells' nonces (JSON) from this fd")


def pytest_configure(config: pytest.Config) -> None:
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _await_reply_or_death


def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    fd = config.getoption("mtl_nonce_fd")
    if fd is None:
        return
    with os.fdopen(fd, "r", encoding="utf-8") as pipe:
        nonces: dict[str, str] = json.load(pipe)
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None:
            continue
        for placeholder, nonce in nonces.items():
            if placeholder in cell.source:
                cell.source = cell.source.replace(placeholder, nonce)


def _await_reply_or_death(self: Any, msg_id: str, timeout: float | None = None) -> None:
    """nbval's ``RunningKernel.await_reply``, polling once a second whether the kernel still lives."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        try:
            msg = self.get_message(stream="shell", timeout=max(wait, 0.0))
        except Empty:
            if not self.is_alive():
                raise RuntimeError(f"{KERNEL_DIED} (it crashed, ran out of memory or was killed)") from None
            if deadline is not None and time.monotonic() >= deadline:
                raise
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["content"]["status"] == "aborted":
                raise RuntimeError("Kernel aborted execution request")
            return

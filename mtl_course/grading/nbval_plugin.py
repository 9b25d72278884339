"""A pytest plugin that ``mtl-course grade`` loads into nbval's pytest process (``-p``).

**A dead kernel fails fast.** nbval 0.11 waits the whole cell timeout for the
reply of a kernel that has died (``os._exit``, a segfault, SIGKILL). The
plugin makes it poll and fail the cell with ``RuntimeError: kernel died`` as
soon as the kernel process is gone. **The kernel ends cleanly**: at the end
nbval asks it to shut down instead of killing it, so that its exit status
tells the grader whether it crashed. (This process runs in the sandbox beside
the student's kernel, so what it reports is for the feedback only; the grader
takes statuses and verdicts from its own observations.)
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

import pytest

#: The message of a cell during which the kernel died.
KERNEL_DIED = "kernel died"


def pytest_configure(config: pytest.Config) -> None:
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _await_reply_or_death
    RunningKernel.stop = _stop_gracefully


def _stop_gracefully(self: Any) -> None:
    """nbval's ``RunningKernel.stop``, asking the kernel to exit instead of killing it.

    The grader watches the kernel's exit status: 0 after this request, an error
    code or a signal when the student's code crashed or killed it.
    """
    self.kc.stop_channels()
    self.km.shutdown_kernel(now=False)
    del self.km


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

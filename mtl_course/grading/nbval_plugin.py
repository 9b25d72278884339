"""A pytest plugin that ``mtl-course grade`` loads into nbval's pytest process (``-p``).

**A dead kernel fails fast.** nbval 0.11 waits the whole cell timeout for the
reply of a kernel that has died (``os._exit``, a segfault, SIGKILL). The
plugin makes it poll and fail the cell with ``RuntimeError: kernel died`` as
soon as the kernel process is gone. **The kernel ends cleanly**: at the end
nbval asks it to shut down instead of killing it (unless it ignored the
interrupt at a cell's time limit), so that its exit status tells the grader
whether it crashed. (This process runs in the sandbox beside
the student's kernel, so what it reports is for the feedback only; the grader
takes statuses and verdicts from its own observations.)
"""

from __future__ import annotations

import os
import signal
import time
from queue import Empty
from typing import Any

import pytest

#: How long a kernel may take to exit after nbval asks it to (jupyter_client then sends SIGTERM).
SHUTDOWN_WAIT_S = 20.0
#: The message of a cell during which the kernel died.
KERNEL_DIED = "kernel died"


def pytest_configure(config: pytest.Config) -> None:
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _await_reply_or_death
    RunningKernel.stop = _stop_gracefully
    RunningKernel.is_alive = _alive_without_reaping


def _kernel_process(self: Any) -> Any:
    """The kernel's ``subprocess.Popen``, where jupyter_client's local provisioner has one."""
    return getattr(getattr(getattr(self, "km", None), "provisioner", None), "process", None)


def _alive_without_reaping(self: Any) -> bool:
    """Whether the kernel still runs, asked with ``WNOWAIT``: a dead kernel stays a zombie until the end.

    So its exit status remains visible in ``/proc`` for the grader until nbval shuts down.
    """
    if not hasattr(self, "km"):
        return False
    process = _kernel_process(self)
    if process is None:
        return self.km.is_alive()
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:  # already reaped
        return False


def _stop_gracefully(self: Any) -> None:
    """nbval's ``RunningKernel.stop``, asking the kernel to exit instead of killing it.

    The grader watches the kernel's exit status: 0 after this request, an error
    code or a signal when the student's code crashed or killed it. A kernel
    still busy with a cell that ran past its time limit (it ignored the
    interrupt) is killed, so that such a run always ends the same way.
    """
    self.kc.stop_channels()
    overran, process = getattr(self, "cell_overran", False), _kernel_process(self)
    if overran and process is not None and _alive_without_reaping(self):
        process.send_signal(signal.SIGKILL)
        time.sleep(1.0)  # killed, not yet reaped: the grader sees how it ended
    self.km.shutdown_wait_time = SHUTDOWN_WAIT_S  # a busy machine: give the kernel time to exit by itself
    self.km.shutdown_kernel(now=overran)
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
                self.cell_overran = True
                raise
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            self.cell_overran = False
            if msg["content"]["status"] == "aborted":
                raise RuntimeError("Kernel aborted execution request")
            return

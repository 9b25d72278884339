"""Run one grading command with a wall-time and a memory limit, then kill everything it started.

:func:`run_limited` starts the command in a new session through this
module's launcher (``python -m mtl_course.grading.sandbox``), which sets the
resource limits and then ``exec``\\ s the command, so the limits hold for the
command and for every process it starts (the Jupyter kernel included):

- ``RLIMIT_AS``: the memory (address space) of each process; an allocation
  beyond it raises ``MemoryError`` in the kernel;
- ``RLIMIT_CPU``: CPU seconds, a backstop for a busy loop in a process that
  escaped the wall-time kill;
- ``RLIMIT_FSIZE``: the largest file a process may write.

Every process inherits an environment variable with a fresh token; when the
command ends or its wall time runs out, every process of this user that
carries the token is killed (Linux ``/proc``), as is the command's process
group. (The Jupyter kernel runs in a session of its own, so killing the
process group alone would leave it running.)
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The environment variable that tags every process of one run.
MARKER_ENV = "MTL_COURSE_GRADING_RUN"
#: How much of the command's output :class:`RunOutcome` keeps (characters).
OUTPUT_TAIL = 4000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's run."""

    timeout_s: float = 120.0  #: wall time of the whole run (kernel start included)
    cell_timeout_s: float = 60.0  #: wall time of one cell before the kernel is interrupted
    memory_bytes: int = 2 * 2**30  #: address space of each process
    file_bytes: int = 256 * 2**20  #: largest file a process may write

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cell_timeout_s", "memory_bytes", "file_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class RunOutcome:
    """How a limited run ended: exit code (negative: killed by that signal), whether it timed out, its output."""

    returncode: int
    timed_out: bool
    seconds: float
    output: str


def run_limited(
    cmd: Sequence[str],
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> RunOutcome:
    """Run ``cmd`` in ``cwd`` under ``limits``; its stdout and stderr go to ``cwd/run.log``."""
    token = secrets.token_hex(16)
    env = {**(os.environ if env is None else env), MARKER_ENV: token}
    cpu_s = int(limits.timeout_s) + 10
    launcher = [sys.executable, "-m", __name__, str(limits.memory_bytes), str(cpu_s), str(limits.file_bytes), "--"]
    log_path = Path(cwd) / "run.log"
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*launcher, *cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        try:
            proc.wait(timeout=limits.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_run(token, proc.pid)
            proc.wait()
    seconds = time.monotonic() - start
    output = log_path.read_bytes()[-OUTPUT_TAIL:].decode("utf-8", "replace")
    return RunOutcome(proc.returncode, timed_out, seconds, output)


def kill_run(token: str, pgid: int) -> None:
    """SIGKILL the process group ``pgid`` and every process whose environment carries ``token``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    needle = f"{MARKER_ENV}={token}".encode()
    for pid in _marked_pids(needle):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _marked_pids(needle: bytes) -> list[int]:
    """The processes (readable by this user) whose initial environment contains ``needle``."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _launch(argv: Sequence[str]) -> None:
    """``MEMORY CPU_SECONDS FILE_BYTES -- CMD...``: set the limits, then become ``CMD``."""
    memory, cpu, fsize, separator, *cmd = argv
    if separator != "--" or not cmd:
        raise SystemExit("usage: python -m mtl_course.grading.sandbox MEMORY CPU_SECONDS FILE_BYTES -- CMD...")
    resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize), int(fsize)))
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _launch(sys.argv[1:])

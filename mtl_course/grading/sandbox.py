"""Run one submission's nbval process in an OS sandbox, with limits the grader observes from outside.

**The sandbox** is `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``), started per submission (:func:`sandbox_command`). Inside it:

- only the interpreter, the installed packages (``sys.prefix``,
  ``sys.base_prefix``), ``/usr``, ``/etc`` and the ``mtl_course`` package
  itself are visible, all read-only: the course's ``solutions/``, its git
  history, other submissions, the gradebook and the home folder are not there;
- the scratch folder of this submission is the one writable folder, beside a
  private, empty ``/tmp``;
- new user, PID, network, IPC and UTS namespaces (``--unshare-all``): no
  network (nbval and its kernel are both inside, so they still talk over the
  sandbox's own loopback), and the sandbox's first process is PID 1 of its
  namespace, so every process started inside dies when the run ends or is
  killed (``--die-with-parent``), detached children included.

**The limits** are set by this module's launcher (``python -m
mtl_course.grading.sandbox``), which ``exec``\\ s the command: ``RLIMIT_AS`` (a
backstop on the address space), ``RLIMIT_CPU`` and ``RLIMIT_FSIZE``. The
grader itself watches the wall clock and the resident memory of every process
of the run (``/proc``) and kills the run when either limit is passed; that
observation, not any text the run prints, gives the status.

Without ``bwrap`` (macOS, a container without user namespaces) the grader
refuses to run unless told otherwise (``--no-sandbox``); then the command runs
with the same limits, and the processes it started are found by an
environment token and killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import site
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The environment variable that tags every process of one unsandboxed run.
MARKER_ENV = "MTL_COURSE_GRADING_RUN"
#: How often the grader looks at a run's memory (seconds).
POLL_S = 0.25
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: Wait statuses of a kernel that ended normally: exit code 0, or jupyter_client's SIGTERM after a slow shutdown.
CLEAN_EXITS = (0, signal.SIGTERM)
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: System folders every sandbox sees read-only (those that exist on this machine).
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class SandboxUnavailable(RuntimeError):
    """``bwrap`` is missing or cannot create its namespaces here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's run."""

    timeout_s: float = 120.0  #: wall time of the whole run (kernel start included)
    cell_timeout_s: float = 60.0  #: wall time of one cell before the kernel is interrupted
    memory_bytes: int = 2 * 2**30  #: resident memory of all the run's processes together
    file_bytes: int = 256 * 2**20  #: largest file a process may write

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cell_timeout_s", "memory_bytes", "file_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)}")

    @property
    def address_space_bytes(self) -> int:
        """The ``RLIMIT_AS`` backstop: PyTorch reserves far more address space than it uses."""
        return 2 * self.memory_bytes + 4 * 2**30


@dataclass(frozen=True)
class RunOutcome:
    """How a limited run ended, as the grader saw it."""

    returncode: int  #: exit code; negative: killed by that signal
    timed_out: bool  #: the grader stopped it at the wall-time limit
    out_of_memory: bool  #: the grader stopped it at the memory limit
    kernel_status: int | None  #: the wait status of a Jupyter kernel that exited with an error or a signal
    cpu_seconds: float  #: CPU time of the run's processes, as the grader saw it
    seconds: float
    output: str  #: the end of its output (untrusted: for the instructor's notes only)


# -- the sandbox --------------------------------------------------------------------
def readable_paths() -> list[Path]:
    """What a sandbox sees read-only besides the system: the interpreter, the packages, ``mtl_course``."""
    package = Path(__file__).resolve().parents[1]
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package}
    paths.update(Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()])
    return sorted(p for p in paths if p.exists())


def sandbox_command(cmd: Sequence[str], scratch: Path) -> list[str]:
    """``cmd`` wrapped in ``bwrap``: read-only system and packages, ``scratch`` writable, no network."""
    wrap = [shutil.which("bwrap") or "bwrap"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            wrap += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            wrap += ["--ro-bind", path, path]
    # the private /tmp first: a course or virtual environment that lives under /tmp is bound on top of it
    wrap += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in readable_paths():
        wrap += ["--ro-bind", str(path), str(path)]
    scratch = str(Path(scratch).resolve())
    wrap += ["--bind", scratch, scratch]
    wrap += ["--unshare-all", "--die-with-parent", "--new-session", "--chdir", scratch, "--"]
    return wrap + list(cmd)


def check_sandbox(scratch: Path) -> None:
    """Raise :class:`SandboxUnavailable` unless a sandboxed Python runs here and cannot see outside."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed: install it (Debian: apt-get install bubblewrap), grade in a "
            "container (README, 'Grading'), or pass --no-sandbox to run students' code unconfined"
        )
    outside = Path(__file__).resolve().parents[2]
    probe = f"import os, sys; sys.exit(0 if not os.path.exists({str(outside / 'solutions')!r}) else 3)"
    cmd = sandbox_command([sys.executable, "-c", probe], scratch)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxUnavailable(f"bubblewrap does not start: {error}") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot build the sandbox here ({detail}); pass --no-sandbox to override")


# -- running under limits ---------------------------------------------------------------
def run_limited(
    cmd: Sequence[str], cwd: Path, limits: Limits, env: Mapping[str, str], *, sandboxed: bool = True
) -> RunOutcome:
    """Run ``cmd`` in ``cwd`` under ``limits`` (in a sandbox unless told not to); output to ``cwd/run.log``."""
    token = secrets.token_hex(16)
    env = {**env, MARKER_ENV: token}
    launcher = [
        sys.executable,
        "-m",
        __name__,
        str(limits.address_space_bytes),
        str(int(limits.timeout_s) + 10),
        str(limits.file_bytes),
        "--",
    ]
    full = sandbox_command([*launcher, *cmd], cwd) if sandboxed else [*launcher, *cmd]
    log_path = Path(cwd) / "run.log"
    start = time.monotonic()
    timed_out = out_of_memory = False
    watch = _Watch()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            full,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while proc.poll() is None:
                if time.monotonic() - start > limits.timeout_s:
                    timed_out = True
                    break
                if watch.resident_bytes(proc.pid) > limits.memory_bytes:
                    out_of_memory = True
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=POLL_S)
        finally:
            kill_run(token, proc.pid)
            proc.wait()
    seconds = time.monotonic() - start
    with open(log_path, "rb") as log:
        log.seek(max(0, log_path.stat().st_size - 4000))
        output = log.read().decode("utf-8", "replace")
    return RunOutcome(
        proc.returncode, timed_out, out_of_memory, watch.kernel_status, watch.cpu_seconds, seconds, output
    )


def _children() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, for every process visible in ``/proc``."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux ``/proc``; just ``pid`` elsewhere)."""
    if not os.path.isdir("/proc"):
        return [pid]
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += tree.get(current, [])
    return found


class _Watch:
    """What the grader sees of a run in ``/proc``: its memory, its CPU time, and how its kernels ended."""

    def __init__(self) -> None:
        self.kernels: set[int] = set()
        self.kernel_status: int | None = None
        self.cpu_ticks: dict[int, int] = {}  #: user + system clock ticks of each process, when last seen

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of the run's processes (up to the last look at each: a few percent short)."""
        return sum(self.cpu_ticks.values()) / TICKS

    def resident_bytes(self, pid: int) -> int:
        """The resident memory of ``pid`` and its descendants; notes a kernel that exited with an error."""
        total = 0
        for child in descendants(pid):
            try:
                with open(f"/proc/{child}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                if fields[0] == b"Z":  # exited, not yet reaped: its exit status is field 52
                    if child in self.kernels and int(fields[49]) not in CLEAN_EXITS:
                        self.kernel_status = int(fields[49])
                    continue
                if child not in self.kernels:
                    with open(f"/proc/{child}/cmdline", "rb") as f:
                        if b"ipykernel" in f.read():
                            self.kernels.add(child)
                self.cpu_ticks[child] = int(fields[11]) + int(fields[12])
                total += int(fields[21]) * PAGE
            except (OSError, ValueError, IndexError):
                continue
        return total


def kill_run(token: str, pgid: int) -> None:
    """SIGKILL the process group ``pgid``, its descendants, and every process whose environment carries ``token``."""
    victims = set(descendants(pgid))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    victims.update(_marked_pids(f"{MARKER_ENV}={token}".encode()))
    for pid in victims - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _marked_pids(needle: bytes) -> list[int]:
    """The processes (readable by this user) whose initial environment contains ``needle``."""
    if not os.path.isdir("/proc"):
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or another user's process
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _launch(argv: Sequence[str]) -> None:
    """``ADDRESS_SPACE CPU_SECONDS FILE_BYTES -- CMD...``: set the limits, then become ``CMD``."""
    memory, cpu, fsize, separator, *cmd = argv
    if separator != "--" or not cmd:
        raise SystemExit("usage: python -m mtl_course.grading.sandbox ADDRESS_SPACE CPU_SECONDS FILE_BYTES -- CMD...")
    resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize), int(fsize)))
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _launch(sys.argv[1:])

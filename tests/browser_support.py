"""Helpers for the real-browser tests: Debian's chromium and a private JupyterLab server.

``JupyterLabServer`` starts ``python -m jupyterlab`` (the interpreter running
the tests, so the notebook kernel is this virtual environment's python and
imports ``mtl_course``) on ``127.0.0.1``, on a port the OS picks, with a random
token and every per-user Jupyter folder (config, data, runtime, settings,
workspaces, IPython profile) in a temporary directory, so neither the user's
configuration nor their open tabs are read or written. Everything JupyterLab
4 would fetch from the internet at start is switched off: the news feed
(``LabApp.news_url = None``), the update check
(``NeverCheckForUpdate``), the extension manager's PyPI queries
(``extension_manager = "readonly"``), and the front end's "fetch news?"
prompt (user setting ``fetchNews = "false"``). The language-server
auto-detection of jupyter-lsp is off too (it spawns subprocesses at start).

The server is stopped by its PID: SIGTERM, wait, SIGKILL on timeout, then any
process left in its session (a kernel it did not shut down) is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip (fail under CI, ``CI=true``) when chromium or python playwright is missing."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "python playwright is not installed (pip install -e '.[browser]')"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must install it (.ci/run does: apt-get install chromium)")
    pytest.skip(reason)


#: Server-side configuration: nothing is fetched from the internet.
SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "LanguageServerManager": {"autodetect": False},
}

#: JupyterLab user settings: no news prompt, no update check, no toasts over the notebook.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class JupyterLabServer:
    """A private JupyterLab on ``127.0.0.1`` (see the module docstring); ``stop()`` always works."""

    def __init__(self, root_dir: Path, home: Path, startup_timeout_s: float = 120.0) -> None:
        self.root_dir = Path(root_dir)
        self.home = Path(home)
        self.token = secrets.token_hex(24)
        self.log_path = self.home / "jupyterlab.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.startup_timeout_s = startup_timeout_s
        self._log_file = None

    # -- start --------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        dirs = {name: self.home / name for name in ("config", "data", "runtime", "ipython")}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG, indent=1))
        settings = dirs["config"] / "lab" / "user-settings"
        for relative, values in USER_SETTINGS.items():
            (settings / relative).parent.mkdir(parents=True, exist_ok=True)
            (settings / relative).write_text(json.dumps(values, indent=1))
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["config"] / "lab" / "workspaces"),
            IPYTHONDIR=str(dirs["ipython"]),
            PYTHONUNBUFFERED="1",
        )
        env.pop("JUPYTER_PATH", None)  # only this interpreter's kernelspec and lab extensions
        env.pop("JUPYTER_TOKEN", None)
        # One BLAS/OpenMP thread for the kernel on a shared 2-core machine (make test sets these too).
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("MKL_NUM_THREADS", "1")
        return env

    def start(self) -> JupyterLabServer:
        env = self._environment()
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",  # the OS picks a free port; read back from the runtime file
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=self.root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kernels can be cleaned up with it
        )
        return self

    def wait_until_ready(self) -> None:
        """Wait for ``jpserver-<pid>.json`` (the port) and for ``GET /api/status`` to answer."""
        assert self.process is not None
        runtime_file = self.home / "runtime" / f"jpserver-{self.process.pid}.json"
        deadline = time.monotonic() + self.startup_timeout_s
        last_error = "no runtime file yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode} while starting; "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            if self.port is None and runtime_file.exists():
                try:
                    self.port = int(json.loads(runtime_file.read_text())["port"])
                except (ValueError, KeyError) as error:  # half-written file
                    last_error = repr(error)
            if self.port is not None:
                try:
                    with urllib.request.urlopen(self.api_url("status"), timeout=5) as response:
                        status = json.loads(response.read())
                    if "started" in status:
                        return
                except (urllib.error.URLError, OSError, ValueError) as error:
                    last_error = repr(error)
            time.sleep(0.25)
        raise RuntimeError(
            f"JupyterLab did not answer GET /api/status within {self.startup_timeout_s:.0f} s "
            f"({last_error}); log: {self.log_path}\n{self.log_tail()}"
        )

    # -- use ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self.port is not None, "the server is not ready"
        return f"http://127.0.0.1:{self.port}"

    def api_url(self, path: str) -> str:
        return f"{self.base_url}/api/{path}?token={self.token}"

    def api(self, path: str) -> object:
        with urllib.request.urlopen(self.api_url(path), timeout=10) as response:
            return json.loads(response.read())

    def lab_url(self, notebook: str) -> str:
        """The URL a user opens: JupyterLab with ``notebook`` (relative to ``root_dir``)."""
        return f"{self.base_url}/lab/tree/{notebook}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- stop ---------------------------------------------------------------------
    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the server by PID, wait, SIGKILL on timeout; then kill what is left of its session."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout_s)
            # Kernels live in the server's session (process group = its PID): none may outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

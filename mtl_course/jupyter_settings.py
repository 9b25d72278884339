"""JupyterLab settings for the course, written into the virtual environment by ``make setup``.

* widget state is saved with the notebook, so a saved, reopened lecture shows
  its explorers instead of "Error displaying widget: model not found";
* no news pop-up and no update check (the course works offline, and the
  pop-up covers part of the explorers' figures);
* the extension manager is read-only (nothing is installed from a running course).

Run ``python -m mtl_course.jupyter_settings`` to (re)write them for the
current environment; settings a user changes in JupyterLab still win.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: JupyterLab's default settings for the course (``share/jupyter/lab/settings/overrides.json``).
LAB_OVERRIDES = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
#: JupyterLab's server configuration (``etc/jupyter/jupyter_lab_config.json``).
SERVER_CONFIG = {"LabApp": {"extension_manager": "readonly"}}


def write_settings(prefix: Path | str = sys.prefix) -> list[Path]:
    """Write the lab overrides and the server configuration under ``prefix``; return the files written.

    Other keys already in those files are kept; the course's keys are set.
    """
    prefix = Path(prefix)
    files = {
        prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json": LAB_OVERRIDES,
        prefix / "etc" / "jupyter" / "jupyter_lab_config.json": SERVER_CONFIG,
    }
    for path, settings in files.items():
        current = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(current, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(current).__name__}")
        for section, values in settings.items():
            current[section] = {**current.get(section, {}), **values}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2) + "\n")
    return list(files)


if __name__ == "__main__":
    for written in write_settings():
        print(f"wrote {written}")

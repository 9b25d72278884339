"""The course's JupyterLab settings: written where JupyterLab reads them, and read by a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mtl_course.jupyter_settings import LAB_OVERRIDES, write_settings


def test_settings_are_written_and_keep_other_overrides(tmp_path: Path) -> None:
    overrides = tmp_path / "share/jupyter/lab/settings/overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    write_settings(tmp_path)
    written = json.loads(overrides.read_text())
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert written["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}
    assert written["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    server = json.loads((tmp_path / "etc/jupyter/jupyter_lab_config.json").read_text())
    assert server == {"LabApp": {"extension_manager": "readonly"}}


def test_the_setting_names_exist_in_the_installed_jupyterlab() -> None:
    schemas = Path(sys.prefix) / "share" / "jupyter"
    for plugin, values in LAB_OVERRIDES.items():
        package, name = plugin.split(":")
        found = list(schemas.glob(f"**/schemas/{package}/{name}.json"))
        assert found, f"no schema for {plugin} under {schemas}"
        properties = json.loads(found[0].read_text())["properties"]
        assert set(values) <= set(properties), (plugin, sorted(properties))


def test_a_jupyterlab_server_started_with_the_settings_is_readonly(tmp_path: Path) -> None:
    write_settings(tmp_path)
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(tmp_path / "etc" / "jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0", "--allow-root"]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "Extension Manager is" in line or not line:
                break
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert any("Extension Manager is 'readonly'" in line for line in lines), "".join(lines)

"""Re-executing a lecture on the same machine reproduces every printed output, not only the checked ones.

With threads and seeds fixed by :func:`mtl_course.setup_lecture`, nothing a
lecture prints may depend on the run: the two fastest lectures are executed
again and every text output (streams, ``text/plain`` results and displays,
``text/html`` tables) is compared with the stored one. Figures are not
compared (PNG bytes depend on the renderer), nor widget views (their model ids
are new in every kernel).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
FASTEST = ["01_lasso_inductive_bias.ipynb", "02_why_mtl_works.ipynb"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def text_outputs(nb: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """``(cell index, kind, text)`` of every text output; widget views and images are left out.

    A cell's stream output is one text per stream (the kernel may split one print run into several outputs).
    """
    found = []
    for index, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        for stream in ("stdout", "stderr"):
            text = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == stream)
            if text:
                found.append((index, stream, text))
        for output in outputs:
            if output.output_type in ("execute_result", "display_data"):
                data = output.get("data", {})
                if WIDGET_VIEW in data:
                    continue
                for mime in ("text/plain", "text/html"):
                    if mime in data:
                        found.append((index, mime, data[mime]))
            elif output.output_type == "error":
                found.append((index, "error", output.ename))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", FASTEST)
def test_re_execution_reproduces_every_printed_output(name: str) -> None:
    path = REPO / "lectures" / name
    stored = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("MTL_COURSE_BUDGET", "MTL_COURSE_DEVICE")}
    NotebookClient(
        fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute(env=env)
    before, after = text_outputs(stored), text_outputs(fresh)
    assert [(i, kind) for i, kind, _ in after] == [(i, kind) for i, kind, _ in before], f"{name}: other outputs"
    changed = [(i, kind, a, b) for (i, kind, a), (_, _, b) in zip(before, after, strict=True) if a != b]
    assert not changed, f"{name}: {len(changed)} output(s) changed on re-execution, e.g. cell {changed[0][0]}:\n" + (
        f"--- stored\n{changed[0][2][:800]}\n--- now\n{changed[0][3][:800]}"
    )

"""A real-browser test: JupyterLab runs a lecture, a person moves a widget slider with the keyboard.

This is what a student does after ``make course``: open the lecture in
JupyterLab, wait for the kernel, *Run → Run All Cells*, scroll to the
explorer widget, move a slider and watch the numbers and the figure follow.

How it works:

1. A private JupyterLab (``tests/browser_support.py``) starts on 127.0.0.1, on
   a port the OS picks, with a random token, its config/data/runtime folders
   in a temporary directory and nothing fetched from the internet. Its root is
   a temporary folder holding a *copy* of the lecture with every output and
   the stored widget state removed (so every widget and figure on the page
   comes from this session's kernel, and the repository's notebook is never
   touched), plus one appended cell that prints the kernel's ``sys.prefix``
   and where ``mtl_course`` was imported from.
2. Debian's chromium (``/usr/bin/chromium``, driven by Python playwright; no
   ``playwright install``) opens ``/lab/tree/<lecture>``; every request that
   would leave 127.0.0.1 is aborted and recorded.
3. The test waits for the status bar's ``Python 3 (ipykernel) | Idle`` (the
   toolbar's indicator turns idle before the kernel is connected), clicks
   *Run → Run All Cells* and waits until every code cell has an execution
   number (a run that stops at an error fails at once, with the error).
4. It scrolls to the explorer widget and checks that every slider readout
   and the summary line are what the lecture's text promises after Run All
   (A6: the tuner in its reset state, λ = (1, 1); a cell that moves a
   displayed slider from code can leave it elsewhere). Then it focuses a
   slider handle and presses
   ArrowRight ×3, then End, then Home + PageUp ×2. After each step the slider
   readout, the summary line (``<code>`` in the widget) and the figure (the
   ``src`` of the widget's ``<img>``) must all change.

Screenshots (``before``/``after``, and ``failure`` when it fails) go to
``_build/screenshots/`` (ignored by git). The server is stopped by PID in a
finalizer, also when the test fails; its log path is in every failure message.

The lecture: ``lectures/06_loss_weighting.ipynb`` (``LossWeightTuner``),
falling back to ``lectures/01_lasso_inductive_bias.ipynb`` (``LassoExplorer``)
while 06 does not exist (with a warning); ``MTL_COURSE_BROWSER_LECTURE=<path>``
picks another one. The chosen notebook is in the test's id.

Without chromium the test skips, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, JupyterLabServer, require_chromium

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"

#: Seconds for Run All on a loaded 2-core machine (06 takes about a minute on a quiet one).
RUN_ALL_TIMEOUT_S = 360
#: Seconds for the kernel to start and connect (status bar ``Idle``).
KERNEL_IDLE_TIMEOUT_S = 120
#: Seconds for one slider move to reach the kernel and come back as a new summary and figure.
WIDGET_UPDATE_TIMEOUT_S = 30
#: Default playwright timeout for page loads, clicks and selectors.
TIMEOUT_MS = 60_000

KERNEL_CHECK_MARKER = "BROWSER-TEST-KERNEL-CHECK"


@dataclass(frozen=True)
class WidgetLecture:
    """A lecture with an explorer widget: its notebook and the label of the slider to move."""

    path: str  # relative to the repository
    slider_label: str | None  # regex matched against the slider's description; None: the first slider
    #: What the lecture's text promises the widget shows after Run All: the value each slider's readout
    #: shows, by label, and the start of the summary line (empty: not checked).
    readouts_after_run_all: tuple[tuple[str, float], ...] = ()
    summary_after_run_all: str = ""

    @property
    def stem(self) -> str:
        return Path(self.path).stem


# LossWeightTuner: "λ t0", "λ t1"; A6 promises the reset state λ = (1, 1) after Run All (its checks use another tuner)
PREFERRED = WidgetLecture(
    "lectures/06_loss_weighting.ipynb",
    r"^λ\s",
    readouts_after_run_all=(("λ t0", 1.0), ("λ t1", 1.0)),
    summary_after_run_all="λ = (t0: 1, t1: 1) →",
)
# LassoExplorer: A1 sets log₁₀ α = −1 in the cell that displays it
FALLBACK = WidgetLecture(
    "lectures/01_lasso_inductive_bias.ipynb",
    r"^log₁₀ α$",
    readouts_after_run_all=(("log₁₀ α", -1.0),),
    summary_after_run_all="α = 0.0981",
)


def widget_lecture() -> WidgetLecture:
    """The lecture this run uses (see the module docstring)."""
    override = os.environ.get("MTL_COURSE_BROWSER_LECTURE")
    if override:
        known = {lecture.path: lecture for lecture in (PREFERRED, FALLBACK)}
        return known.get(override, WidgetLecture(override, None))
    if (REPO / PREFERRED.path).exists():
        return PREFERRED
    warnings.warn(
        f"{PREFERRED.path} does not exist yet: the JupyterLab browser test uses {FALLBACK.path} instead",
        stacklevel=1,
    )
    return FALLBACK


LECTURE = widget_lecture()


# -- fixtures -------------------------------------------------------------------------
@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> JupyterLabServer:
    """A private JupyterLab whose root is an empty temporary folder; stopped by PID in a finalizer."""
    require_chromium()
    root = tmp_path / "course"
    root.mkdir()
    server = JupyterLabServer(root_dir=root, home=tmp_path / "jupyter")
    request.addfinalizer(server.stop)  # registered before start: a failed start is cleaned up too
    server.start()
    server.wait_until_ready()
    return server


@pytest.fixture
def browser() -> Iterator[object]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# -- the notebook copy ------------------------------------------------------------------
def copy_without_outputs(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` with no outputs, execution counts or widget state; append the kernel check.

    Returns the number of code cells in the copy.
    """
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import sys\nimport mtl_course\nprint('{KERNEL_CHECK_MARKER}', sys.prefix, mtl_course.__file__, sep='\\n')"
        )
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return sum(cell.cell_type == "code" for cell in nb.cells)


# -- page helpers -----------------------------------------------------------------------
KERNEL_STATUS = ".jp-StatusBar-TextItem[title^='Change kernel']"

# Returns null while Run All is in progress, else {state: "done" | "stopped", ...}.
RUN_ALL_STATE_JS = f"""
(expected) => {{
  const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
    .map(e => e.textContent.trim());
  const status = document.querySelector("{KERNEL_STATUS}");
  const kernel = status ? status.textContent.trim() : '';
  const numbered = prompts.filter(p => /^\\[\\d+\\]:?$/.test(p)).length;
  const running = prompts.filter(p => p.includes('*')).length;
  const idle = /\\|\\s*Idle$/.test(kernel);
  const summary = {{prompts: prompts.length, numbered, running, kernel}};
  if (prompts.length === expected && numbered === expected && idle) return {{state: 'done', ...summary}};
  // started (something ran) but nothing runs or waits any more: Run All stopped at an error
  if (numbered > 0 && running === 0 && idle) return {{state: 'stopped', ...summary}};
  return null;
}}
"""

ERROR_OUTPUTS_JS = """
() => Array.from(document.querySelectorAll(
    '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"],' +
    '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'))
  .map(e => e.textContent)
  .filter(t => /Traceback|Error:/.test(t))
  .map(t => t.slice(-1500))
"""

# The widget's current readout, slider position, summary and figure (shared by the predicates below).
READ_WIDGET_JS = """
function readWidget(root, sliderIndex) {
  const slider = root.querySelectorAll('.widget-slider')[sliderIndex];
  const handle = slider.querySelector('.noUi-handle');
  const img = root.querySelector('img.widget-image, .widget-output img');
  const code = root.querySelector('.widget-html-content code');
  return {
    label: slider.querySelector('.widget-label').textContent.trim(),
    readout: slider.querySelector('.widget-readout').textContent.trim(),
    valuenow: parseFloat(handle.getAttribute('aria-valuenow')),
    valuemin: parseFloat(handle.getAttribute('aria-valuemin')),
    valuemax: parseFloat(handle.getAttribute('aria-valuemax')),
    summary: code ? code.textContent.trim() : null,
    img: img ? (img.getAttribute('src') || '') : null,
    imgLoaded: img ? (img.complete && img.naturalWidth > 0) : false,
    focused: document.activeElement === handle,
  };
}
"""

WIDGET_STATE_JS = f"([root, i]) => {{ {READ_WIDGET_JS}; return readWidget(root, i); }}"

# Every slider's label and readout in the widget, and its summary line.
ALL_READOUTS_JS = """(root) => ({
  readouts: Array.from(root.querySelectorAll('.widget-slider')).map(s => [
    s.querySelector('.widget-label').textContent.trim(), s.querySelector('.widget-readout').textContent.trim()]),
  summary: (root.querySelector('.widget-html-content code') || {textContent: ''}).textContent.trim(),
})"""

# True once the readout, the summary and the figure all differ from ``before`` (and the figure loaded).
CHANGED_JS = f"""([root, i, before]) => {{ {READ_WIDGET_JS};
  const now = readWidget(root, i);
  return now.readout !== before.readout && now.summary !== null && now.summary !== before.summary
    && now.img !== null && now.img !== before.img && now.imgLoaded;
}}"""

# True once the kernel is Idle and the widget has not changed for ``ms`` milliseconds: no update in flight.
SETTLED_JS = f"""([root, i, ms]) => {{ {READ_WIDGET_JS};
  const status = document.querySelector("{KERNEL_STATUS}");
  const key = JSON.stringify(readWidget(root, i)) + (status ? status.textContent.trim() : '');
  const idle = !!status && /\\|\\s*Idle$/.test(status.textContent.trim());
  const now = performance.now();
  if (!window.__mtlSettle || window.__mtlSettle.key !== key || !idle) {{
    window.__mtlSettle = {{key, since: now}};
    return false;
  }}
  return now - window.__mtlSettle.since >= ms;
}}"""

#: Milliseconds the widget must stay unchanged (kernel Idle) to count as settled.
SETTLE_MS = 1000


def _number(readout: str | None) -> float | None:
    """The number a slider readout shows ("1.00", "−1.00", "1e+03"), or None."""
    try:
        return float((readout or "").replace("−", "-"))
    except ValueError:
        return None


def _short(state: dict) -> dict:
    """A widget state for messages: the image source shortened."""
    return {**state, "img": (state.get("img") or "")[:60] + "…"}


class Session:
    """The browser page on the private JupyterLab, with diagnostics for failure messages."""

    def __init__(self, browser: object, lab: JupyterLabServer, lecture: WidgetLecture) -> None:
        self.lab, self.lecture = lab, lecture
        self.leaked: list[str] = []
        self.page_errors: list[str] = []
        self.timings: dict[str, float] = {}
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]

        def route(request_route: object) -> None:
            url = request_route.request.url  # type: ignore[attr-defined]
            if url.startswith((lab.base_url + "/", "data:", "blob:")):
                request_route.continue_()  # type: ignore[attr-defined]
            else:
                self.leaked.append(url)
                request_route.abort()  # type: ignore[attr-defined]

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def screenshot(self, kind: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"jupyterlab-{self.lecture.stem}-{kind}.png"
        self.page.screenshot(path=str(path))
        return path

    def keep_server_log(self) -> Path:
        """Copy the server log next to the screenshots (pytest deletes old temporary folders)."""
        target = SCREENSHOTS / f"jupyterlab-{self.lecture.stem}-server.log"
        try:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.lab.log_path, target)
        except OSError:
            return self.lab.log_path
        return target

    def log_console_badge(self) -> str:
        """The status bar's log-console count: kernel outputs JupyterLab could not route to a cell ("" if none)."""
        item = self.page.locator(".jp-LogConsoleStatusItem")
        if not item.count() or "lm-mod-hidden" in (item.get_attribute("class") or ""):
            return ""
        return (item.text_content() or "").strip()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; on any failure, save a screenshot and name it and the server log in the message."""
        start = time.monotonic()
        try:
            yield
        except Exception as error:
            try:
                shot = str(self.screenshot("failure"))
            except Exception as shot_error:
                shot = f"(none: {shot_error!r})"
            log = self.keep_server_log()
            raise AssertionError(
                f"JupyterLab browser test, step '{name}' on {self.lecture.path} failed: {error}\n"
                f"  screenshot: {shot}\n  server log: {log}\n"
                f"  JavaScript errors: {self.page_errors}\n  blocked requests: {self.leaked}\n"
                f"  server log tail:\n{self.lab.log_tail(15)}"
            ) from error
        finally:
            self.timings[name] = round(time.monotonic() - start, 1)

    def close(self) -> None:
        self.context.close()


# -- the test -----------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("lecture", [LECTURE], ids=lambda lecture: lecture.stem)
def test_widget_responds_to_keyboard_in_jupyterlab(
    lab: JupyterLabServer, browser: object, lecture: WidgetLecture, record_property
) -> None:
    source = REPO / lecture.path
    assert source.is_file(), f"{lecture.path} does not exist"
    relative = f"lectures/{source.name}"  # the copy keeps the folder, for relative paths in the lecture
    n_code_cells = copy_without_outputs(source, lab.root_dir / relative)
    print(f"JupyterLab browser test on {lecture.path} ({n_code_cells} code cells, outputs stripped); "
          f"server {lab.base_url}, log {lab.log_path}")  # fmt: skip

    session = Session(browser, lab, lecture)
    page = session.page
    try:
        with session.step("open the notebook"):
            page.goto(lab.lab_url(relative), wait_until="domcontentloaded")
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for()

        with session.step("wait for the kernel (status bar Idle)"):
            status = page.locator(KERNEL_STATUS)
            try:
                status.filter(has_text=re.compile(r"\|\s*Idle$")).wait_for(timeout=KERNEL_IDLE_TIMEOUT_S * 1000)
            except Exception as error:
                shown = status.all_inner_texts()
                raise AssertionError(f"the status bar never showed the kernel Idle (it shows {shown})") from error
            kernel_text = status.inner_text()
            assert kernel_text.startswith("Python 3 (ipykernel)"), (
                f"JupyterLab started the kernel {kernel_text!r}, not this environment's 'Python 3 (ipykernel)'"
            )
            sessions = lab.api("sessions")
            assert [s["kernel"]["name"] for s in sessions] == ["python3"], f"kernel sessions: {sessions}"

        with session.step("Run → Run All Cells"):
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
            result = page.wait_for_function(
                RUN_ALL_STATE_JS, arg=n_code_cells, polling=500, timeout=RUN_ALL_TIMEOUT_S * 1000
            ).json_value()
            errors = page.evaluate(ERROR_OUTPUTS_JS)
            assert result["state"] == "done" and not errors, (
                f"Run All did not finish cleanly ({result}); error outputs: {errors}"
            )

        with session.step("check the kernel's python"):
            check = page.locator(".jp-OutputArea-output", has_text=KERNEL_CHECK_MARKER)
            lines = (check.text_content() or "").strip().splitlines()
            assert len(lines) == 3, f"kernel check printed {lines}"
            kernel_prefix, mtl_course_file = lines[1].strip(), lines[2].strip()
            assert Path(kernel_prefix).resolve() == Path(sys.prefix).resolve(), (
                f"the notebook kernel runs in {kernel_prefix}, not in the test's environment {sys.prefix}"
            )
            print(f"kernel: {kernel_text}; sys.prefix {kernel_prefix}; mtl_course from {mtl_course_file}")

        def settle(message: str) -> None:
            """Wait until the kernel is Idle and the widget stays unchanged (no slider update in flight)."""
            try:
                page.wait_for_function(
                    SETTLED_JS, arg=[root, index, SETTLE_MS], polling=100, timeout=WIDGET_UPDATE_TIMEOUT_S * 1000
                )
            except Exception as error:
                raise AssertionError(f"{message}: {_short(page.evaluate(WIDGET_STATE_JS, [root, index]))}") from error

        with session.step("find the widget"):
            slider_filter = page.locator(".widget-slider")
            if lecture.slider_label:
                slider_filter = slider_filter.filter(
                    has=page.locator(".widget-label", has_text=re.compile(lecture.slider_label))
                )
            widget = (
                page.locator(".jp-OutputArea-output")
                .filter(has=page.locator(":scope > .widget-vbox"))
                .filter(has=slider_filter)
                .filter(has=page.locator(".widget-html-content code"))
                .filter(has=page.locator("img.widget-image, .widget-output img"))
                .first
            )
            widget.wait_for(state="attached")
            widget.scroll_into_view_if_needed()
            sliders = widget.locator(".widget-slider")
            # textContent, not innerText: with JupyterLab's content-visibility windowing, innerText is ""
            # for parts of a cell the browser has not rendered yet
            labels = [(label or "").strip() for label in sliders.locator(".widget-label").all_text_contents()]
            wanted = re.compile(lecture.slider_label or "")
            index = next((i for i, label in enumerate(labels) if wanted.search(label)), None)
            assert index is not None, f"no slider labelled /{lecture.slider_label}/ in the widget (labels: {labels})"
            root = widget.locator(":scope > .widget-vbox").element_handle()
            handle = sliders.nth(index).locator(".noUi-handle")
            handle.scroll_into_view_if_needed()
            settle(f"after Run All, the widget kept changing or the kernel stayed busy for {WIDGET_UPDATE_TIMEOUT_S} s")
            before = page.evaluate(WIDGET_STATE_JS, [root, index])
            print(f"widget sliders {labels}; moving {labels[index]!r}")
            assert before["summary"] and before["img"] and before["imgLoaded"], (
                f"the widget is incomplete: {_short(before)}"
            )
            session.screenshot("before")

        with session.step("the widget shows what the text promises after Run All"):
            shown = page.evaluate(ALL_READOUTS_JS, root)
            shown_readouts = dict(shown["readouts"])
            for label, promised in lecture.readouts_after_run_all:
                shown_value = _number(shown_readouts.get(label))
                assert shown_value is not None and math.isclose(shown_value, promised, rel_tol=1e-3), (
                    f"after Run All, slider {label!r} reads {shown_readouts.get(label)!r}; the lecture's text promises "
                    f"{promised!r} (all readouts: {shown_readouts}; summary: {shown['summary']!r})"
                )
            assert shown["summary"].startswith(lecture.summary_after_run_all), (
                f"after Run All the summary is {shown['summary']!r}; the text promises one starting with "
                f"{lecture.summary_after_run_all!r}"
            )
            print(f"after Run All: readouts {shown_readouts}; summary {shown['summary']!r}")

        def move(keys: list[str]) -> dict:
            previous = page.evaluate(WIDGET_STATE_JS, [root, index])
            handle.focus()
            assert page.evaluate(WIDGET_STATE_JS, [root, index])["focused"], "the slider handle did not take focus"
            for key in keys:
                page.keyboard.press(key)
            try:
                page.wait_for_function(
                    CHANGED_JS, arg=[root, index, previous], polling=100, timeout=WIDGET_UPDATE_TIMEOUT_S * 1000
                )
            except Exception as error:
                now = page.evaluate(WIDGET_STATE_JS, [root, index])
                unchanged = [k for k in ("readout", "summary", "img") if now[k] == previous[k]]
                raise AssertionError(
                    f"after pressing {keys} on slider {labels[index]!r}, {unchanged} did not change within "
                    f"{WIDGET_UPDATE_TIMEOUT_S} s; before {_short(previous)}, now {_short(now)}"
                ) from error
            settle(f"after pressing {keys}, the widget kept changing or the kernel stayed busy")
            return page.evaluate(WIDGET_STATE_JS, [root, index])

        with session.step("ArrowRight ×3"):
            after_arrows = move(["ArrowRight"] * 3)
            assert after_arrows["valuenow"] > before["valuenow"], (
                f"ArrowRight did not raise the slider: {_short(before)} → {_short(after_arrows)}"
            )
        with session.step("End"):
            at_end = move(["End"])
            assert at_end["valuenow"] == pytest.approx(at_end["valuemax"], abs=1e-6), (
                f"End did not reach the maximum: {_short(at_end)}"
            )
        with session.step("Home, PageUp ×2"):
            paged = move(["Home", "PageUp", "PageUp"])
            assert paged["valuemin"] < paged["valuenow"] < paged["valuemax"], f"Home + PageUp ×2 gave {_short(paged)}"
            session.screenshot("after")

        with session.step("no errors and no network"):
            errors = page.evaluate(ERROR_OUTPUTS_JS)
            assert not errors, f"error outputs after moving the slider: {errors}"
            assert not session.page_errors, f"JavaScript errors on the page: {session.page_errors}"
            assert not session.leaked, f"JupyterLab tried to reach the network: {session.leaked}"

        badge = session.log_console_badge()
        if badge:  # reported, not failed: see the note in the test's output
            print(
                f"note: the status bar's log console shows {badge} message(s): kernel output JupyterLab could "
                "not route to a cell (open it with View → Show Log Console)"
            )
        readouts = [s["readout"] for s in (before, after_arrows, at_end, paged)]
        print(f"slider {labels[index]!r} readouts: {' → '.join(readouts)}")
        print(f"summaries: {before['summary']!r} → {paged['summary']!r}")
        print(f"screenshots: {SCREENSHOTS}/jupyterlab-{lecture.stem}-{{before,after}}.png")
        print(f"timings (s): {session.timings}")
        record_property("lecture", lecture.path)
        record_property("timings_s", session.timings)
    finally:
        session.close()

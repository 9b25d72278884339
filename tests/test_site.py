"""The course website: it builds with -W from the stored outputs and opens offline.

One module-scoped build of the real course (``site/build.py``, the command
behind ``make site``) into a temporary folder; then headless chromium (Debian's
``/usr/bin/chromium`` driven by Python playwright, no ``playwright install``)
opens the landing page, a lecture and an exercise sheet with every request
that would leave the machine aborted and recorded, and checks that the maths
is typeset, a figure is shown, the widget is drawn from its stored state and
nothing was fetched from the network. Screenshots go to
``_build/screenshots/`` (ignored by git).

Without chromium the browser tests skip, except under CI (``CI=true``),
where they fail: CI installs chromium (``.ci/run``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "site" / "build.py"
SCREENSHOTS = REPO / "_build" / "screenshots"
WIDGET_LECTURE = "01_lasso_inductive_bias"
TIMEOUT_MS = 30_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# 1x1 transparent PNG
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def run_build(root: Path, build_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--root", str(root), "--build-dir", str(build_dir), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        env={k: v for k, v in os.environ.items() if k != "EXECUTE"},
    )


def _tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def _notebooks(folder: str) -> list[Path]:
    return sorted((REPO / folder).glob("*.ipynb"))


def _widget_state(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}) or {}


# -- the build -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course website built from the stored outputs (what ``make site`` does)."""
    build_dir = tmp_path_factory.mktemp("site")
    result = run_build(REPO, build_dir)
    assert result.returncode == 0, f"make site failed:\n{_tail(result)}"
    return build_dir / "html"


def test_site_has_every_lecture_exercise_and_module_and_no_solutions(site: Path) -> None:
    assert (site / "index.html").is_file()
    for folder in ("lectures", "exercises"):
        for nb in _notebooks(folder):
            assert (site / folder / f"{nb.stem}.html").is_file(), f"no page for {folder}/{nb.name}"
    assert not (site / "solutions").exists(), "solutions/ must never be published"
    assert not (site / "_sources" / "solutions").exists(), "solutions/ must never be published"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for module in ("mtl_course.device", "mtl_course.widgets"):
        assert (site / "api" / f"{module}.html").is_file(), f"no API page for {module}"
        assert f"{module}.html" in api
    landing = (site / "index.html").read_text(encoding="utf-8")
    for nb in _notebooks("lectures"):
        assert f"lectures/{nb.stem}.html" in landing, f"the landing page does not link {nb.name}"
    landing_text = " ".join(re.sub(r"<[^>]+>", " ", landing).split())
    assert "make course" in landing_text and "make test" in landing_text


def _notebook(cells: list[dict], widgets: dict | None = None) -> dict:
    metadata: dict = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    if widgets is not None:
        metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": widgets}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


def _widget_output(model_id: str, summary: str) -> dict:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id},
            "image/png": TINY_PNG,
            "text/plain": summary,
        },
    }


def _code(outputs: list[dict], source: str = "explorer", tags: list[str] | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "id": f"c{abs(hash((source, len(outputs)))) % 10**8}",
        "metadata": {"tags": tags or []},
        "source": source,
        "outputs": outputs,
    }


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "id": f"m{abs(hash(text)) % 10**8}", "metadata": {}, "source": text}


def test_widget_without_stored_state_shows_its_png_and_figures_get_alt_text(tmp_path: Path) -> None:
    root = tmp_path / "course"
    (root / "lectures").mkdir(parents=True)
    state = {"aaaa0000aaaa0000": {"model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
                                  "model_name": "FloatSliderModel", "state": {"value": 0.5}}}  # fmt: skip
    with_state = _notebook(
        [_markdown("# With state\n\nMaths $a^2$."), _code([_widget_output("aaaa0000aaaa0000", "slope a = 0.50")])],
        widgets=state,
    )
    without_state = _notebook(
        [
            _markdown("# Without state"),
            _markdown("The figure below shows the slope of the line."),
            _code([_widget_output("bbbb1111bbbb1111", "<Figure size 700x320 with 1 Axes>")]),
        ]
    )
    (root / "lectures" / "00_with.ipynb").write_text(json.dumps(with_state), encoding="utf-8")
    (root / "lectures" / "01_without.ipynb").write_text(json.dumps(without_state), encoding="utf-8")
    result = run_build(root, tmp_path / "build", "--no-api")
    assert result.returncode == 0, _tail(result)
    html = tmp_path / "build" / "html" / "lectures"
    page_with = (html / "00_with.html").read_text(encoding="utf-8")
    page_without = (html / "01_without.html").read_text(encoding="utf-8")
    # with stored state: the widget view, the state and the vendored manager
    assert WIDGET_VIEW in page_with and WIDGET_STATE in page_with
    assert "_static/vendor/jupyter-widgets/embed.js" in page_with
    assert "cdn.jsdelivr" not in page_with and "cdnjs" not in page_with
    # without: the PNG, with the surrounding sentence as its alt text
    assert WIDGET_VIEW not in page_without
    assert re.search(r'<img alt="The figure below shows the slope of the line\."', page_without), page_without[-3000:]


def test_stored_error_output_fails_the_build(tmp_path: Path) -> None:
    root = tmp_path / "course"
    (root / "lectures").mkdir(parents=True)
    error = {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": ["ValueError: boom"]}
    nb = _notebook([_markdown("# Broken"), _code([error], source="raise ValueError('boom')")])
    (root / "lectures" / "00_broken.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    result = run_build(root, tmp_path / "build", "--no-api")
    assert result.returncode != 0
    assert "stored error output" in result.stdout + result.stderr


# -- the browser -------------------------------------------------------------------------
def _no_browser(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must install it (.ci/run does: apt-get install chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _no_browser(f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("python playwright is not installed (pip install -e '.[browser]')")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """``python -m http.server -d _build/html``, on a free port of 127.0.0.1."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class OpenPage:
    """A page opened with every request that would leave the machine aborted and recorded."""

    def __init__(self, browser: object, url: str, allowed_prefix: str) -> None:
        self.leaked: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]

        def route(request_route: object) -> None:
            request_url = request_route.request.url  # type: ignore[attr-defined]
            if request_url.startswith(("file://", "data:", "blob:", allowed_prefix)):
                request_route.continue_()  # type: ignore[attr-defined]
            else:
                self.leaked.append(request_url)
                request_route.abort()  # type: ignore[attr-defined]

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.goto(url, wait_until="load", timeout=TIMEOUT_MS)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()

    def assert_offline_and_clean(self) -> None:
        self.page.wait_for_timeout(500)  # let late requests (fonts, lazy scripts) show up
        assert not self.leaked, f"requests left the machine: {self.leaked}"
        assert not self.errors, f"JavaScript errors or console errors on the page: {self.errors}"

    def assert_maths_typeset(self) -> int:
        self.page.wait_for_selector("mjx-container", timeout=TIMEOUT_MS, state="attached")
        self.page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.math')).every(e => e.querySelector('mjx-container'))",
            timeout=TIMEOUT_MS,
        )
        assert self.page.locator("mjx-merror").count() == 0, "MathJax reports a TeX error on the page"
        return self.page.locator("mjx-container").count()

    def images(self) -> list[dict]:
        return self.page.evaluate(
            """() => Array.from(document.images).map(img => ({
                src: img.getAttribute('src') || '', alt: img.getAttribute('alt') || '',
                width: img.naturalWidth, inWidget: !!img.closest('.jupyter-widgets'),
                inOutput: !!img.closest('.cell_output')}))"""
        )


def _url(site: Path, server: str, relative: str, scheme: str) -> tuple[str, str]:
    if scheme == "file":
        return (site / relative).as_uri(), "file://"
    return f"{server}/{relative}", server + "/"


@pytest.mark.browser
def test_landing_page_opens_offline(site: Path, server: str, browser: object) -> None:
    url, allowed = _url(site, server, "index.html", "file")
    opened = OpenPage(browser, url, allowed)
    try:
        page = opened.page
        assert "Multi-task learning" in page.locator("h1").first.inner_text()
        nav = page.eval_on_selector_all("nav a[href]", "links => links.map(a => a.getAttribute('href'))")
        for nb in _notebooks("lectures"):
            assert any(href.endswith(f"lectures/{nb.stem}.html") for href in nav), f"{nb.name} is not in the navigation"
        assert any(href.endswith("api/index.html") for href in nav), "the API reference is not in the navigation"
        assert page.get_by_text("Syllabus").count() > 0
        opened.screenshot("landing")
        opened.assert_offline_and_clean()
    finally:
        opened.close()


def _widget_lecture() -> Path:
    preferred = REPO / "lectures" / f"{WIDGET_LECTURE}.ipynb"
    if preferred.exists():
        return preferred
    for nb in _notebooks("lectures"):
        if _widget_state(nb):
            return nb
    pytest.skip(f"no lecture with stored widget state yet (expected lectures/{WIDGET_LECTURE}.ipynb)")


def _stored_slider_values(nb: Path) -> list[tuple[float, float]]:
    """(value, tolerance) of every slider in the stored state.

    The slider view snaps its value to ``min + k * step``, and the readout
    rounds it, so a readout is right within one step.
    """
    values = []
    for model in _widget_state(nb).values():
        if model.get("model_name") in ("FloatSliderModel", "IntSliderModel"):
            state = model.get("state", {})
            if isinstance(state.get("value"), (int, float)):
                values.append((float(state["value"]), abs(float(state.get("step") or 1.0)) + 0.01))
    return values


def _readout_number(text: str) -> float | None:
    try:
        return float(text.replace("\u2212", "-").strip())  # d3-format writes a Unicode minus
    except ValueError:
        return None


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["file", "http"])
def test_lecture_shows_maths_figure_and_widget_offline(site: Path, server: str, browser: object, scheme: str) -> None:
    lecture = _widget_lecture()
    url, allowed = _url(site, server, f"lectures/{lecture.stem}.html", scheme)
    opened = OpenPage(browser, url, allowed)
    try:
        page = opened.page
        assert opened.assert_maths_typeset() > 0
        # the widget, drawn by the vendored html-manager from the stored state
        page.wait_for_selector(".jupyter-widgets", timeout=TIMEOUT_MS)
        assert page.locator(".jupyter-widgets").count() > 0
        if _widget_state(lecture) and any(
            m.get("model_name", "").endswith("SliderModel") for m in _widget_state(lecture).values()
        ):
            page.wait_for_selector(".widget-slider", timeout=TIMEOUT_MS)
            stored = _stored_slider_values(lecture)
            if stored:
                texts = page.eval_on_selector_all(".widget-readout", "els => els.map(e => e.textContent.trim())")
                shown = [x for x in map(_readout_number, texts) if x is not None]
                assert any(abs(x - value) <= tol for x in shown for value, tol in stored), (
                    f"slider readouts {texts} do not show the stored values {stored}"
                )
        # a figure: an output image that loaded, with a real alt text
        page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=TIMEOUT_MS)
        images = opened.images()
        broken = [img["src"][:80] for img in images if img["width"] == 0]
        assert not broken, f"images that did not load: {broken}"
        figures = [img for img in images if img["inOutput"] and img["width"] > 0]
        assert figures, "no figure is shown on the lecture page"
        if any(img["inWidget"] for img in figures):  # widgets-support.js labels them once drawn
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.jupyter-widgets img')).every(i => i.alt)",
                timeout=TIMEOUT_MS,
            )
            images = opened.images()
            figures = [img for img in images if img["inOutput"] and img["width"] > 0]
        for img in figures:
            assert img["alt"] and not img["alt"].endswith(".png"), f"figure without alt text: {img['src'][:80]}"
        if page.locator(".jupyter-widgets").count():
            note = page.locator(".mtl-widget-static-note").first
            assert note.is_visible() and "running kernel" in note.inner_text(), "a stored explorer lacks its note"
        opened.screenshot(f"lecture-{lecture.stem}-{scheme}")
        opened.assert_offline_and_clean()
    finally:
        opened.close()


@pytest.mark.browser
def test_exercise_sheet_opens_offline(site: Path, server: str, browser: object) -> None:
    sheets = _notebooks("exercises")
    if not sheets:
        pytest.skip("exercises/ has no sheet yet (they are generated from solutions/ by `mtl-course release`)")
    sheet = sheets[0]
    url, allowed = _url(site, server, f"exercises/{sheet.stem}.html", "http")
    opened = OpenPage(browser, url, allowed)
    try:
        page = opened.page
        assert page.locator("article h1").count() > 0
        assert page.locator(".cell").count() > 0, "the sheet shows no code cells"
        if page.locator(".math").count():
            opened.assert_maths_typeset()
        opened.screenshot(f"exercise-{sheet.stem}")
        opened.assert_offline_and_clean()
    finally:
        opened.close()


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["file", "http"])
def test_search_shows_excerpts_offline(site: Path, server: str, browser: object, scheme: str) -> None:
    """Every hit gets an excerpt, also from file:// where the browser refuses fetch() (offline_search.py)."""
    url, allowed = _url(site, server, "search.html", scheme)
    opened = OpenPage(browser, url + "?q=cross-stitch", allowed)
    try:
        page = opened.page
        page.wait_for_selector("#search-results li", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results li p.context').length > 0", timeout=TIMEOUT_MS
        )
        excerpts = page.eval_on_selector_all("#search-results li p.context", "ps => ps.map(p => p.textContent)")
        assert any("cross-stitch" in text.lower() for text in excerpts), f"no excerpt names the query: {excerpts[:3]}"
        opened.assert_offline_and_clean()
    finally:
        opened.close()

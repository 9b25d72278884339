"""Sphinx extension of the course website: widget fallbacks, figure alt text, stored errors.

* **Widget or picture.** The course's explorers emit the live widget, a PNG
  of the current figure and a text summary side by side. myst-nb renders the
  widget view first when it is in the output (the right choice when the
  notebook stored the widget state: the page's widget manager draws the
  widget from it). Where the notebook has no stored state for that widget,
  the view would be an empty box, so this extension drops it from the output
  and the PNG (or the next representation) is shown instead.
* **Alt text.** A figure from a notebook output gets an ``alt`` text: the
  cell's own ``mystnb: image: alt`` metadata when set, else the ``Alt text:
  ...`` sentence of the markdown next to the cell (the lectures' convention),
  else the output's ``text/plain`` when it says something (an explorer's
  summary), else the paragraph next to the cell that describes the figure.
  A widget's figure (drawn in the browser) gets the same text through
  ``_static/widgets-support.js``.
* **Plain-text formulas in docstrings.** The package's docstrings write
  formulas as indented plain text after a line ending in ``:``; reST would
  read that as a block quote (and ``|x|`` or ``*`` in it as markup). Such a
  block becomes a literal block, so it renders as written.
* **Docstring warnings are reported, not fatal.** A warning raised while
  parsing a docstring of the package is listed at the end of the build and
  does not fail it (``MTL_SITE_STRICT_DOCSTRINGS=1`` makes it fatal again);
  every other warning stays an error under ``-W``.
* **Stored errors.** A notebook page whose stored outputs contain an error
  fails the build (a warning under ``-W``), unless the cell is tagged
  ``raises-exception``.
"""

from __future__ import annotations

import json
import logging as pylogging
import os
import re
import sys
from html import escape as html_escape
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: Shown under every stored widget: on a static page its controls move, but nothing recomputes the figure.
STATIC_WIDGET_NOTE = (
    '<p class="mtl-widget-static-note">A stored copy of an explorer: the controls move, but the figure and '
    "its summary stay as the notebook was saved; they need a running kernel. Open the notebook in JupyterLab "
    "(<code>make course</code>) to explore.</p>"
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_MODEL_ID = re.compile(r'model_id\\?"\s*:\s*\\?"([^"\\]+)')
_UNINFORMATIVE = re.compile(r"^\s*(?:<(?:Figure|matplotlib|IPython|Axes)\b|$)")
_DESCRIBES = re.compile(
    r"\b(figure|plot|panel|curve|chart|histogram|heat ?map|image|axis|axes|shows?|bars?|lines?|scatter)\b", re.I
)
ALT_MAX_CHARS = 400


def _stored_widget_models(env: Any, docname: str) -> set[str]:
    """The model ids of the widget state stored in the notebook of ``docname``."""
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        js_files = NbMetadataCollector.get_js_files(env, docname)
    except Exception:  # not a notebook page
        return set()
    entry = js_files.get("ipywidgets_state")
    if not entry:
        return set()
    body = entry[1].get("body", "")
    try:
        return set(json.loads(body).get("state", {}))
    except ValueError:
        return set(re.findall(r'"([0-9a-f]{16,})"\s*:\s*\{', body))


def _text(node: nodes.Node) -> str:
    return " ".join(node.astext().split())


def _first_sentences(text: str, limit: int = ALT_MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("; "))
    return (cut[: end + 1] if end > limit // 3 else cut.rstrip() + "…").strip()


def _cell_of(node: nodes.Node) -> nodes.Element | None:
    while node is not None:
        if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code":
            return node
        node = node.parent
    return None


def _neighbour_paragraphs(cell: nodes.Element, step: int, reach: int = 4) -> list[str]:
    """The text of the paragraphs next to ``cell`` (after it for step=+1, before for -1)."""
    parent = cell.parent
    if parent is None:
        return []
    index = parent.index(cell)
    found: list[str] = []
    i = index + step
    while 0 <= i < len(parent.children) and len(found) < reach:
        sibling = parent.children[i]
        if isinstance(sibling, nodes.container) and sibling.get("nb_element") == "cell_code":
            break
        if isinstance(sibling, (nodes.paragraph, nodes.bullet_list, nodes.enumerated_list)):
            found.append(_text(sibling))
        elif isinstance(sibling, nodes.section) and step > 0:
            break
        i += step
    return found  # nearest first in both directions


_ALT_MARKER = re.compile(r"\balt[- ]text\b[^:]*:\s*(.+)", re.I | re.S)


def figure_alt_text(cell: nodes.Element | None, plain_text: str) -> str:
    """An alt text for a figure output of ``cell`` (see the module docstring).

    In order: a neighbouring paragraph that says ``Alt text: ...`` (the
    lectures' convention), the output's own informative ``text/plain`` (an
    explorer's summary), a neighbouring paragraph that describes a figure,
    the paragraph just before the cell.
    """
    after = _neighbour_paragraphs(cell, +1) if cell is not None else []
    before = _neighbour_paragraphs(cell, -1) if cell is not None else []
    for text in before[:2] + after[:2]:
        marked = _ALT_MARKER.search(text)
        if marked:
            return _first_sentences(marked.group(1).strip(" *_"))
    if plain_text and not _UNINFORMATIVE.match(plain_text):
        return _first_sentences(" ".join(plain_text.split()))
    for text in after[:1] + before[:2] + after[1:]:
        if _DESCRIBES.search(text):
            return _first_sentences(text)
    if before:
        return _first_sentences(before[0])
    return "Figure produced by the code cell above."


class PlainProblematic(SphinxPostTransform):
    """Show markup that did not parse as its text (no link to a message that is not shown).

    Outside docstrings every such problem already failed the build under -W;
    a docstring's problem is reported and its text shown as written.
    """

    default_priority = 5

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(nodes.problematic)):
            node.replace_self(nodes.inline(node.rawsource, node.astext()))


class WidgetFallbackAndAltText(SphinxPostTransform):
    """Runs before myst-nb's ``SelectMimeType`` (priority 4) picks one output per bundle."""

    default_priority = 3

    def run(self, **kwargs: Any) -> None:
        docname = self.env.docname
        stored = None
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            by_type = {child.get("mime_type"): child for child in bundle.children if isinstance(child, nodes.container)}
            view = by_type.get(WIDGET_VIEW)
            if view is not None and len(by_type) > 1:
                if stored is None:
                    stored = _stored_widget_models(self.env, docname)
                ids = _MODEL_ID.findall(view.astext())
                if not ids or not set(ids) <= stored:
                    bundle.remove(view)
                    LOGGER.info(f"{docname}: widget without stored state; showing its static fallback")
            plain = by_type.get("text/plain")
            plain_text = plain.astext() if plain is not None else ""
            cell = _cell_of(bundle)
            if WIDGET_VIEW in [c.get("mime_type") for c in bundle.children]:
                # the widget manager draws the figure as an <img> without alt text;
                # site/_static/widgets-support.js copies this label onto it
                alt = html_escape(figure_alt_text(cell, plain_text), quote=True)
                label = f'<span class="mtl-widget-alt" hidden data-alt="{alt}"></span>' + STATIC_WIDGET_NOTE
                by_type[WIDGET_VIEW] += nodes.raw("", label, format="html")
            for mime, child in by_type.items():
                if not (mime or "").startswith("image/"):
                    continue
                for image in child.findall(nodes.image):
                    if not image.get("alt"):
                        image["alt"] = figure_alt_text(cell, plain_text)


def check_stored_errors(app: Sphinx, doctree: nodes.document) -> None:
    """Warn (an error under -W) for every stored error output of a notebook page."""
    for node in doctree.findall(nodes.literal_block):
        if "traceback" not in node.get("classes", []):
            continue
        cell = _cell_of(node)
        tags = (cell.get("cell_metadata") or {}).get("tags", []) if cell is not None else []
        if "raises-exception" in tags:
            continue
        first = node.astext().strip().splitlines()[-1:] or [""]
        LOGGER.warning(
            f"stored error output in a notebook cell: {first[0][:200]} "
            "(re-run the notebook, or tag the cell 'raises-exception' if the error is the point)",
            location=node,
            type="mtl_site",
            subtype="stored_error",
        )


_FIELD_OR_DIRECTIVE = re.compile(r"^\s*(?:\.\.\s|:[^:]+:|>>>|[-*+]\s)")


def literal_formula_blocks(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Turn ``text:`` + blank line + indented block into a literal block (``text::``)."""
    for i in range(len(lines) - 2):
        line = lines[i]
        if not line.rstrip().endswith(":") or line.rstrip().endswith("::") or _FIELD_OR_DIRECTIVE.match(line):
            continue
        if lines[i + 1].strip():
            continue
        nxt = next((ln for ln in lines[i + 2 :] if ln.strip()), "")
        indent = len(line) - len(line.lstrip())
        if nxt and len(nxt) - len(nxt.lstrip()) > indent:
            lines[i] = line.rstrip() + ":"


class _DocstringWarnings(pylogging.Filter):
    """Keep warnings located in a docstring out of the -W count; list them at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def filter(self, record: pylogging.LogRecord) -> bool:
        location = str(getattr(record, "location", "") or "")
        if ":docstring of " not in location or os.environ.get("MTL_SITE_STRICT_DOCSTRINGS") == "1":
            return True
        try:
            message = record.msg % record.args if record.args else record.msg
        except (TypeError, ValueError):
            message = record.msg
        self.records.append(f"{location}: {message}")
        return False


def report_docstring_warnings(app: Sphinx, exception: Exception | None) -> None:
    records = [record for f in _installed_filters for record in f.records]
    if records:
        # straight to stderr: `sphinx-build -q` hides info messages, and a warning would count under -W
        unique = list(dict.fromkeys(records))
        sys.stderr.write(
            f"\n{len(unique)} docstring problem(s) in the package (rendered as plain text; not fatal):\n  "
            + "\n  ".join(unique)
            + "\n"
        )


_installed_filters: list[_DocstringWarnings] = []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_post_transform(WidgetFallbackAndAltText)
    app.add_post_transform(PlainProblematic)
    app.connect("doctree-read", check_stored_errors)
    app.connect("autodoc-process-docstring", literal_formula_blocks, priority=600)  # after napoleon
    docstring_filter = _DocstringWarnings()
    for handler in pylogging.getLogger("sphinx").handlers:
        if type(handler).__name__ == "WarningStreamHandler":
            handler.filters.insert(0, docstring_filter)
    _installed_filters.append(docstring_filter)
    app.connect("build-finished", report_docstring_warnings)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

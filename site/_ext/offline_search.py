"""Search excerpts on a copy of the site opened from disk (``file://``).

Sphinx's search page shows an excerpt under each hit by fetching the hit's
page (``searchtools.js``, ``_displayItem``). A browser refuses ``fetch()`` on
``file://`` addresses, so a reader who opens the site from a folder, offline,
gets the list of pages without excerpts. This extension keeps the text of
every page, as a small HTML skeleton with the sections and their ids (what
``Search.htmlToText`` reads: the ``[role="main"]`` element and the section an
anchor names), in ``_static/search-pages.js``; ``_static/offline-search.js``
answers the search page's ``fetch()`` from it when the page was opened from
``file://``. Served over http, the script does nothing. Both files load on
the search page only.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: The file the build writes into ``_static/`` of the output.
PAGES_SCRIPT = "search-pages.js"
#: Text kept per page: enough for the excerpts of a long lecture, small enough for the search page to load fast.
MAX_CHARS_PER_PAGE = 60_000


def _plain_text(node: nodes.Node) -> str:
    """The readable text of ``node``: raw HTML (a widget's script) and images contribute nothing."""
    texts = [t.astext() for t in node.findall(nodes.Text) if not isinstance(t.parent, (nodes.raw, nodes.image))]
    return " ".join(" ".join(texts).split())


def section_skeleton(section: nodes.Element) -> str:
    """``section`` as ``<section id=…><h2>title</h2><p>text</p>…</section>``, nested as in the page."""
    parts = []
    for child in section.children:
        if isinstance(child, nodes.section):
            parts.append(section_skeleton(child))
        elif isinstance(child, nodes.title):
            parts.append(f"<h2>{escape(child.astext())}</h2>")
        elif not isinstance(child, (nodes.raw, nodes.image, nodes.comment, nodes.target)):
            text = _plain_text(child)
            if text:
                parts.append(f"<p>{escape(text)}</p>")
    ids = section.get("ids") or []
    opening = f'<section id="{escape(ids[0], quote=True)}">' if ids else "<section>"
    return opening + "".join(parts) + "</section>"


def page_skeleton(doctree: nodes.document) -> str:
    """The whole page as ``<div role="main">…</div>``, its text cut at :data:`MAX_CHARS_PER_PAGE`."""
    body = []
    budget = MAX_CHARS_PER_PAGE
    for child in doctree.children:
        html = section_skeleton(child) if isinstance(child, nodes.section) else f"<p>{escape(_plain_text(child))}</p>"
        body.append(html[:budget])
        budget -= len(html)
        if budget <= 0:
            break
    return '<div role="main">' + "".join(body) + "</div>"


def _pages(env: BuildEnvironment) -> dict[str, str]:
    """The skeletons by output file name, kept in the (pickled) environment so that an incremental build has all."""
    if not hasattr(env, "mtl_search_pages"):
        env.mtl_search_pages = {}  # type: ignore[attr-defined]
    return env.mtl_search_pages  # type: ignore[attr-defined]


def collect_page(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    _pages(app.env)[docname + app.builder.out_suffix] = page_skeleton(doctree)


def forget_page(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _pages(env).pop(docname + app.builder.out_suffix, None)


def add_scripts_to_search_page(app: Sphinx, pagename: str, *args: Any) -> None:
    if pagename == "search":
        app.add_js_file(PAGES_SCRIPT)
        app.add_js_file("offline-search.js")


def write_pages(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    pages = _pages(app.env)
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(pages, ensure_ascii=False, sort_keys=True)
    (static / PAGES_SCRIPT).write_text(f"window.MTL_SEARCH_PAGES = {payload};\n", encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("env-purge-doc", forget_page)
    app.connect("doctree-resolved", collect_page)
    app.connect("html-page-context", add_scripts_to_search_page)
    app.connect("build-finished", write_pages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}

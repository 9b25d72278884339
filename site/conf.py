"""Sphinx configuration of the course website (plain Sphinx + myst-nb + sphinx-book-theme).

Do not run Sphinx on this folder directly: ``make site`` (``site/build.py``)
first writes the source tree (landing page, table of contents, API pages,
links to ``lectures/`` and ``exercises/``) into ``_build/site_src`` and then
calls ``sphinx-build -c site -W`` on it.

Everything the pages load is served from ``_static``: MathJax and the
ipywidgets HTML manager are vendored under ``site/_static/vendor`` (see the
README there), and every option that would fetch from a CDN or an analytics
service is off. ``site/build.py`` checks the built pages for external loads
and broken internal links.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))  # autodoc imports the checkout's mtl_course

project = "mtl-course"
author = "mtl-course developers"
copyright = "mtl-course developers, MIT licence"
try:
    from mtl_course import __version__ as release
except Exception:  # pragma: no cover - the API pages then fail loudly instead
    release = ""
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "sphinx_design",
    "mtl_site",  # site/_ext/mtl_site.py: widget fallback, stored-error check
    "offline_search",  # site/_ext/offline_search.py: search excerpts when the site is opened from file://
]

# Pages: the landing page, the API pages, and the notebooks at the top of
# lectures/ and exercises/ (site/build.py links those folders in). Other files
# there (a README, data, notebooks in subfolders) are not pages of their own.
exclude_patterns = [
    "**/.ipynb_checkpoints",
    "solutions/**",
    "**/_build/**",
    *(f"{folder}/{pattern}" for folder in ("lectures", "exercises") for pattern in ("*/**", "*.md", "*.rst", "*.txt")),
]
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_js_files = ["widgets-support.js"]  # MathJax 3 for widget labels; alt text for widget figures

# -- notebooks (myst-nb) ------------------------------------------------------
# Pages show the outputs stored in the notebooks; `make site EXECUTE=1` runs
# them first (in memory; the files in lectures/ are never written).
nb_execution_mode = "force" if os.environ.get("MTL_SITE_EXECUTE") == "1" else "off"
nb_execution_timeout = 600
nb_execution_raise_on_error = False  # a failing cell is a warning with its traceback; -W fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# The widget manager comes from our own static files, never from a CDN. The
# standalone `embed.js` bundle renders every built-in ipywidget (controls,
# layout, output) by itself: it needs no require.js and has no loader that
# could fetch third-party widget code from the network.
nb_ipywidgets_js = {"vendor/jupyter-widgets/embed.js": {}}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "html_image"]
myst_heading_anchors = 3
highlight_language = "python3"
# A notebook without kernel metadata (an exercise sheet that was never run)
# names no lexer; its cells are highlighted as Python (highlight_language).
suppress_warnings = ["myst-nb.lexer"]

# -- maths -------------------------------------------------------------------
mathjax_path = "vendor/mathjax/tex-chtml-full.js"  # relative to _static/

# -- API reference --------------------------------------------------------------
autosummary_generate = False  # site/build.py writes one page per module
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Methods that only override a library method (torch's ``forward`` and friends)
# would otherwise inherit its docstring, with cross-references into the torch
# docs that do not exist here.
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
add_module_names = False

# -- HTML ----------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "Multi-task learning — a runnable course"
html_last_updated_fmt = None
html_copy_source = True
html_show_sourcelink = False
# pydata-sphinx-theme reads the colour mode from here; unset, its script logs "Got invalid theme mode" on every page
html_context = {"default_mode": "auto"}
html_theme_options = {
    # nothing here may point at a remote asset: no analytics, no launch
    # buttons (Binder/Colab/Thebe), no remote logo, no version switcher.
    "use_download_button": True,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "launch_buttons": {},
    "show_toc_level": 2,
    "home_page_in_toc": False,
    "navigation_with_keys": False,
    "analytics": {},
    "show_version_warning_banner": False,
    "navbar_persistent": [],  # the sidebar has the search field; no second one in a header bar
}

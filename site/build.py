#!/usr/bin/env python
"""Build the course website: ``make site`` (or ``python site/build.py``).

1. Writes the Sphinx source tree into ``<build-dir>/site_src``: the landing
   page (``site/index.md`` with the syllabus and the tables of contents filled
   in from the notebooks that exist), links to ``lectures/`` and
   ``exercises/`` (never ``solutions/``), and one API page per module of
   ``mtl_course`` (found with :mod:`pkgutil`, so new modules appear by
   themselves).
2. Runs ``sphinx-build -W --keep-going`` with ``site/conf.py``: any warning (a
   broken cross-reference, a notebook that fails under ``--execute``, a stored
   error output, a docstring that does not parse) fails the build. By default
   the pages show the outputs stored in the notebooks; ``--execute`` (``make
   site EXECUTE=1``) runs every notebook first, in memory.
3. Checks the built pages: every relative ``href``/``src`` (and ``#anchor``)
   must exist, and no page or stylesheet may load anything from the network
   (scripts, styles, images, fonts, iframes) - the site must open offline.

The HTML lands in ``<build-dir>/html`` (default ``_build/html``); open
``_build/html/index.html`` or serve it with ``python -m http.server -d
_build/html``.
"""

from __future__ import annotations

import argparse
import html
import html.parser
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mtl_course.ledger import Claim, collect_claims, render_page, section_anchor

SITE = Path(__file__).resolve().parent
REPO = SITE.parent
PACKAGE = "mtl_course"

#: The notebook folders the site publishes, with their part of the navigation.
#: ``solutions/`` is deliberately absent: it holds the instructor's answers.
PUBLISHED_DIRS = ("lectures", "exercises")

#: Lectures ``00``-``06`` are Part A of the syllabus (A0-A6); higher numbers
#: are Part B, one notebook per reviewed paper.
PART_A_LAST = 6

#: Part A as the syllabus plans it; a lecture that exists takes its title from
#: its notebook, one that does not yet exist is listed as in preparation.
PART_A_PLAN = {
    0: "Welcome: from single-task to multi-task learning",
    1: "Machine learning as loss + penalty: the lasso's inductive bias",
    2: "Why does multi-task learning work?",
    3: "Hard versus soft parameter sharing",
    4: "Cross-stitch networks",
    5: "Sluice networks",
    6: "Losses and their weights",
}

SYLLABUS_MARKER = "<!-- SYLLABUS -->"
#: The page "What reproduces" (the ledger of the lectures' claims); a copy is kept in site/ for GitHub readers.
REPRODUCES = "reproduces"


# -- the notebooks -------------------------------------------------------------
@dataclass(frozen=True)
class Notebook:
    folder: str  # "lectures" or "exercises"
    path: Path
    number: int | None  # the NN_ prefix
    title: str

    @property
    def docname(self) -> str:
        return f"{self.folder}/{self.path.stem}"

    @property
    def link(self) -> str:
        return f"{self.folder}/{self.path.name}"


_PREFIX = re.compile(r"^(\d+)_")


def notebook_title(path: Path) -> str:
    """The first level-1 heading of the notebook's markdown, else its file name."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        cells = []
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        for line in source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem.split("_", 1)[-1].replace("_", " ").capitalize()


def find_notebooks(root: Path, folder: str) -> list[Notebook]:
    """The notebooks of ``root/folder``, ordered by their ``NN_`` prefix, then by name."""
    found = []
    for path in (root / folder).glob("*.ipynb"):
        match = _PREFIX.match(path.name)
        number = int(match.group(1)) if match else None
        found.append(Notebook(folder, path, number, notebook_title(path)))
    return sorted(found, key=lambda nb: (nb.number is None, nb.number or 0, nb.path.name))


# -- the source tree ---------------------------------------------------------------
_LABEL = re.compile(r"^[AB]\d+\s*[·.:—–-]\s*")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table_title(nb: Notebook) -> str:
    """The title without its leading label ("A1 · ..."): the table has a column for that."""
    return _md_escape(_LABEL.sub("", nb.title))


def syllabus_markdown(lectures: list[Notebook], exercises: list[Notebook]) -> str:
    """The landing page's syllabus: Part A as planned, then every other lecture and sheet."""
    by_number = {nb.number: nb for nb in lectures}
    sheets: dict[int | None, list[Notebook]] = {}
    for sheet in exercises:
        sheets.setdefault(sheet.number, []).append(sheet)

    def sheet_links(number: int | None) -> str:
        return ", ".join(f"[{_md_escape(s.title)}]({s.link})" for s in sheets.get(number, [])) or "—"

    lines = ["### Part A — foundations", "", "| | lecture | exercise sheet |", "| --- | --- | --- |"]
    for number, planned in PART_A_PLAN.items():
        nb = by_number.get(number)
        lecture = f"[{_table_title(nb)}]({nb.link})" if nb else f"{planned} *(in preparation)*"
        lines.append(f"| A{number} | {lecture} | {sheet_links(number)} |")
    extra_a = [
        nb for nb in lectures if nb.number is not None and nb.number <= PART_A_LAST and nb.number not in PART_A_PLAN
    ]
    for nb in extra_a:
        lines.append(f"| A{nb.number} | [{_table_title(nb)}]({nb.link}) | {sheet_links(nb.number)} |")
    part_b = [nb for nb in lectures if nb.number is None or nb.number > PART_A_LAST]
    lines += ["", "### Part B — the reviewed papers", ""]
    if part_b:
        lines += ["| | lecture | exercise sheet |", "| --- | --- | --- |"]
        for nb in part_b:
            label = f"{nb.number:02d}" if nb.number is not None else ""
            lines.append(f"| {label} | [{_table_title(nb)}]({nb.link}) | {sheet_links(nb.number)} |")
    else:
        lines.append("One notebook per reviewed paper, *in preparation*.")
    lecture_numbers = {nb.number for nb in lectures}
    orphans = [s for s in exercises if s.number not in lecture_numbers]
    if orphans:
        lines += [
            "",
            "Further exercise sheets: " + ", ".join(f"[{_md_escape(s.title)}]({s.link})" for s in orphans) + ".",
        ]
    return "\n".join(lines) + "\n"


def toctree(caption: str, entries: list[str]) -> str:
    if not entries:
        return ""
    body = "\n".join(entries)
    return f"\n```{{toctree}}\n:caption: {caption}\n:hidden:\n:maxdepth: 1\n\n{body}\n```\n"


def landing_page(lectures: list[Notebook], exercises: list[Notebook]) -> str:
    template = (SITE / "index.md").read_text(encoding="utf-8")
    if SYLLABUS_MARKER not in template:
        raise SystemExit(f"site/index.md has lost its {SYLLABUS_MARKER} marker")
    text = template.replace(SYLLABUS_MARKER, syllabus_markdown(lectures, exercises))
    part_a = [nb.docname for nb in lectures if nb.number is not None and nb.number <= PART_A_LAST]
    part_b = [nb.docname for nb in lectures if nb.number is None or nb.number > PART_A_LAST]
    text += toctree("Part A — foundations", part_a)
    text += toctree("Part B — the reviewed papers", part_b)
    text += toctree("Exercises", [nb.docname for nb in exercises])
    text += toctree("Reference", [REPRODUCES, "api/index"])
    return text


def _site_link(path: Path, claim: Claim) -> str:
    """A link from a claim to its section of the rendered notebook (checked by :func:`check_site`)."""
    href = f"{path.parent.name}/{path.stem}.html#{section_anchor(claim.statement.section)}"
    return f'<a href="{href}">{html.escape(claim.statement.claim)}</a>'


def reproduces_pages(lectures: list[Notebook]) -> tuple[str, str]:
    """The page "What reproduces" for the site (links to the rendered sections) and for GitHub (to the notebooks)."""
    claims = collect_claims([nb.path for nb in lectures])
    return render_page(claims, _site_link), render_page(claims)


def package_modules(package_dir: Path = REPO / PACKAGE) -> dict[str, bool]:
    """Every public module of the package in ``package_dir``: name -> is a package (the package first)."""
    names = {PACKAGE: True}
    for info in pkgutil.walk_packages([str(package_dir)], prefix=f"{PACKAGE}.", onerror=lambda name: None):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names[info.name] = info.ispkg
    return dict(sorted(names.items(), key=lambda item: (item[0] != PACKAGE, item[0])))


def _autosummary(names: list[str]) -> str:
    return ".. autosummary::\n\n" + "".join(f"   {name}\n" for name in names)


def api_pages(modules: dict[str, bool]) -> dict[str, str]:
    """The reST of the API reference: ``index`` and one page per module."""
    pages = {}
    for name, ispkg in modules.items():
        title = f"``{name}``"
        text = f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n   :members:\n   :show-inheritance:\n"
        if ispkg:
            # a package page documents what the package itself defines; what it
            # re-exports from its modules is documented once, on their pages
            children = [m for m in modules if m.startswith(name + ".") and "." not in m[len(name) + 1 :]]
            text += "   :ignore-module-all:\n"
            if children:
                # automodule made `name` the current module: name the children relative to it
                text += "\n.. rubric:: Modules\n\n" + _autosummary([m[len(name) + 1 :] for m in children])
        pages[name] = text
    title = "API reference"
    pages["index"] = (
        f"{title}\n{'=' * len(title)}\n\n"
        f"The :mod:`{PACKAGE}` package, generated from its docstrings. Every formula a lecture\n"
        "derives lives here once; the docstrings name the papers.\n\n"
        + _autosummary(list(modules))
        + "\n.. toctree::\n   :hidden:\n\n"
        # short plain titles in the navigation: `models.cross_stitch`, not `mtl_course.models.cross_stitch`
        + "".join(f"   {name.removeprefix(PACKAGE + '.')} <{name}>\n" for name in modules)
    )
    return pages


def _link_or_copy(target: Path, link: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError:  # no symlinks (some Windows set-ups): copy instead
        shutil.copytree(target, link, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))


def write_source_tree(
    root: Path, src: Path, api: bool = True
) -> tuple[list[Notebook], list[Notebook], dict[str, bool]]:
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    found = {folder: find_notebooks(root, folder) for folder in PUBLISHED_DIRS}
    for folder, notebooks in found.items():
        if notebooks:
            _link_or_copy((root / folder).resolve(), src / folder)
    modules = package_modules() if api else {}
    (src / "api").mkdir()
    pages = api_pages(modules) if api else {"index": "API reference\n=============\n\nNot built (``--no-api``).\n"}
    for name, text in pages.items():
        (src / "api" / f"{name}.rst").write_text(text, encoding="utf-8")
    (src / "index.md").write_text(landing_page(found["lectures"], found["exercises"]), encoding="utf-8")
    (src / f"{REPRODUCES}.md").write_text(reproduces_pages(found["lectures"])[0], encoding="utf-8")
    return found["lectures"], found["exercises"], modules


def update_ledger_page(root: Path = REPO) -> Path:
    """Rewrite the GitHub copy of "What reproduces" (``site/reproduces.md``) from the lectures' stored outputs."""
    path = SITE / f"{REPRODUCES}.md"
    path.write_text(reproduces_pages(find_notebooks(root, "lectures"))[1], encoding="utf-8")
    return path


# -- checks of the built pages -----------------------------------------------------
_LOADING_ATTRS = {
    # tag: attributes whose URL the browser fetches by itself when the page opens
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


class _PageParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, bool]] = []  # (tag.attr, url, loads by itself)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        for key in ("id", "name"):
            if key in values and (key == "id" or tag == "a"):
                self.ids.add(values[key])
        for attr in _LOADING_ATTRS.get(tag, ()):
            if attr in values:
                for url in values[attr].split(",") if attr == "srcset" else [values[attr]]:
                    url = url.strip().split(" ")[0]
                    if url:
                        self.links.append((f"{tag}.{attr}", url, True))
        if tag == "link" and "href" in values:
            rel = values.get("rel", "").lower()
            loads = any(
                r in rel.split() for r in ("stylesheet", "preload", "icon", "modulepreload", "prefetch", "manifest")
            )
            self.links.append(("link.href", values["href"], loads))
        if tag == "a" and "href" in values:
            self.links.append(("a.href", values["href"], False))


def check_site(html_dir: Path) -> list[str]:
    """Broken internal links and network loads in the built site (empty when all is well)."""
    problems: list[str] = []
    # the theme's jinja macro files under _static are templates, not pages
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts)
    parsed: dict[Path, _PageParser] = {}
    for page in pages:
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        parsed[page.resolve()] = parser
    for page, parser in parsed.items():
        rel_page = page.relative_to(html_dir.resolve())
        for where, url, loads in parser.links:
            if url.startswith(("data:", "javascript:", "mailto:", "blob:")):
                continue
            if _EXTERNAL.match(url):
                if loads:
                    problems.append(f"{rel_page}: <{where}> loads {url} from the network")
                continue
            parts = urlsplit(url)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{rel_page}: <{where}> {url} -> missing {target}")
                continue
            in_page = parts.fragment and target.suffix == ".html" and target in parsed
            if in_page and unquote(parts.fragment) not in parsed[target].ids:
                problems.append(f"{rel_page}: <{where}> {url} -> no #{parts.fragment} in {target.name}")
    return problems + _css_network_loads(html_dir)


def _css_network_loads(html_dir: Path) -> list[str]:
    """Stylesheets that would load something from the network (fonts, images)."""
    problems = []
    for css in sorted(html_dir.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in _CSS_URL.findall(text):
            if _EXTERNAL.match(url) and not url.startswith("data:"):
                problems.append(f"{css.relative_to(html_dir)}: loads {url} from the network")
    return problems


# -- main ------------------------------------------------------------------------------
def build(
    root: Path, build_dir: Path, execute: bool = False, jobs: str = "1", check: bool = True, api: bool = True
) -> Path:
    """Build the site of the course at ``root`` into ``build_dir/html``; raise SystemExit on failure."""
    start = time.perf_counter()
    src, html_dir, doctrees = build_dir / "site_src", build_dir / "html", build_dir / "doctrees"
    lectures, exercises, modules = write_source_tree(root, src, api=api)
    print(
        f"site: {len(lectures)} lecture(s), {len(exercises)} exercise sheet(s), "
        f"{len(modules)} module(s); {'executing' if execute else 'stored outputs'}",
        flush=True,
    )
    if html_dir.exists():
        shutil.rmtree(html_dir)
    env = dict(os.environ, MTL_SITE_EXECUTE="1" if execute else "0", PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [
        sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-a", "-q",
        "-j", jobs, "-c", str(SITE), "-d", str(doctrees), str(src), str(html_dir),
    ]  # fmt: skip
    result = subprocess.run(cmd, env=env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(f"site: sphinx-build failed (exit {result.returncode}); every warning above is an error")
    if check:
        problems = check_site(html_dir)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(f"site: {len(problems)} broken link(s) or network load(s) in the built pages")
    checked = "; links checked, nothing loads from the network" if check else " (not checked: --no-check)"
    print(f"site: built {html_dir / 'index.html'} in {time.perf_counter() - start:.0f} s{checked}")
    return html_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=REPO, help="the course checkout (default: this repository)")
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where to build (default: ROOT/_build); the HTML goes to BUILD_DIR/html",
    )
    parser.add_argument(
        "--execute",
        action="store_true",
        default=os.environ.get("EXECUTE", "") not in ("", "0"),
        help="execute every notebook before rendering it (default: show the stored outputs; env EXECUTE=1)",
    )
    parser.add_argument("-j", "--jobs", default="1", help="Sphinx worker processes (default 1)")
    parser.add_argument(
        "--no-api", action="store_true", help="skip the API reference (a quick build of the notebooks only)"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the link and offline checks of the built pages")
    parser.add_argument(
        "--update-ledger-page", action="store_true", help="also rewrite site/reproduces.md (what `make site` does)"
    )
    args = parser.parse_args(argv)
    if args.update_ledger_page:
        print(f"site: wrote {update_ledger_page(args.root.resolve())}")
    root = args.root.resolve()
    build_dir = (args.build_dir or root / "_build").resolve()
    build(root, build_dir, execute=args.execute, jobs=args.jobs, check=not args.no_check, api=not args.no_api)
    return 0


if __name__ == "__main__":
    sys.exit(main())

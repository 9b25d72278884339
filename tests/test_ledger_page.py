"""Every lecture records the claims it tests, and the page "What reproduces" is up to date with the notebooks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mtl_course.ledger import collect_claims

REPO = Path(__file__).resolve().parents[1]
LECTURES = sorted((REPO / "lectures").glob("*.ipynb"))


def site_build():
    """``site/build.py`` as a module (it is a script, not part of the package)."""
    if "site_build" not in sys.modules:
        spec = importlib.util.spec_from_file_location("site_build", REPO / "site" / "build.py")
        sys.modules["site_build"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["site_build"])
    return sys.modules["site_build"]


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_every_lecture_records_its_claims(path: Path) -> None:
    claims = collect_claims([path])[path]
    assert claims, f"{path.name} records no claim for the ledger (mtl_course.ledger; issue: 'What reproduces')"
    number = path.name[:2]
    assert all(c.statement.lecture in (f"A{int(number)}", f"B{int(number) - 10}") for c in claims), path.name


def test_the_page_is_up_to_date_with_the_notebooks() -> None:
    build = site_build()
    expected = build.reproduces_pages(build.find_notebooks(REPO, "lectures"))[1]
    committed = (REPO / "site" / "reproduces.md").read_text(encoding="utf-8")
    assert committed == expected, (
        "site/reproduces.md is out of date: run `make site` (or site/build.py --update-ledger-page)"
    )

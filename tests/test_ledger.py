"""The ledger's verdict rules against an independent computation, its stable text, and its path through a notebook."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mtl_course.ledger import (
    MIME_TYPE,
    Claim,
    Statement,
    check_claim,
    collect_claims,
    effect_claim,
    equivalence_claim,
    render_page,
    section_anchor,
    untestable_claim,
)

STATEMENT = Statement("A9", "A section", "course", "A claim.")


def expected_effect_verdict(effects: list[float]) -> str:
    """The rule written out with the statistics module: mean > 0, and mean >= 2 standard errors for 'reproduces'."""
    mean = statistics.fmean(effects)
    se = statistics.stdev(effects) / math.sqrt(len(effects))
    if mean <= 0:
        return "does not reproduce"
    return "reproduces" if se == 0 or mean >= 2 * se else "partly"


@pytest.mark.parametrize(
    "effects",
    [[0.1, 0.1, 0.1], [0.3, 0.2, 0.25, 0.28], [0.3, -0.2, 0.1], [1.0, -0.9, 0.1, 0.05], [-0.1, -0.2, 0.0], [0.0, 0.0]],
)
def test_effect_verdicts_follow_the_rule(effects: list[float]) -> None:
    claim = effect_claim(STATEMENT, effects=effects, metric="m")
    assert claim.verdict == expected_effect_verdict(effects)
    assert claim.measurement.wins == sum(e > 0 for e in effects)
    assert claim.measurement.mean == pytest.approx(statistics.fmean(effects))
    assert claim.measurement.sd == pytest.approx(statistics.stdev(effects))


def test_effect_verdict_at_the_two_standard_error_boundary() -> None:
    # mean 1, sd s, n 4: se = s / 2; exactly 2 se when s = 1
    just_in = [1 + 1.0 * z for z in (-1.5, -0.5, 0.5, 1.5)]
    scale = 1 / statistics.stdev(just_in)
    inside = [1 + (x - 1) * scale * 0.999 for x in just_in]
    outside = [1 + (x - 1) * scale * 1.001 for x in just_in]
    assert effect_claim(STATEMENT, effects=inside, metric="m").verdict == "reproduces"
    assert effect_claim(STATEMENT, effects=outside, metric="m").verdict == "partly"


@pytest.mark.parametrize(
    ("differences", "margin", "verdict"),
    [
        ([0.01, -0.01, 0.0], 0.05, "reproduces"),
        ([0.04, -0.03, 0.02], 0.05, "partly"),
        ([0.2, 0.3, 0.25], 0.05, "does not reproduce"),
    ],
)
def test_equivalence_verdicts(differences: list[float], margin: float, verdict: str) -> None:
    mean = statistics.fmean(differences)
    bound = abs(mean) + 2 * statistics.stdev(differences) / math.sqrt(len(differences))
    expected = "reproduces" if bound <= margin else ("partly" if abs(mean) <= margin else "does not reproduce")
    assert expected == verdict
    assert equivalence_claim(STATEMENT, differences=differences, metric="m", margin=margin).verdict == verdict


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="at least 2 seeds"):
        effect_claim(STATEMENT, effects=[0.1], metric="m")
    with pytest.raises(ValueError, match="finite"):
        effect_claim(STATEMENT, effects=[0.1, math.nan], metric="m")
    with pytest.raises(ValueError, match="margin"):
        equivalence_claim(STATEMENT, differences=[0.1, 0.2], metric="m", margin=0)
    with pytest.raises(ValueError, match="verification tag"):
        Statement("A9", "s", "Someone 2020", "c", paper="41.2 %")
    with pytest.raises(ValueError, match="non-empty claim"):
        Statement("A9", "s", "course", " ")
    with pytest.raises(TypeError, match="bool"):
        check_claim(STATEMENT, holds=1, evidence="e")
    assert untestable_claim(STATEMENT, why="the paper's data are not public").verdict == "not testable offline"


def test_anchor_is_the_id_sphinx_gives_the_heading() -> None:
    from docutils.nodes import make_id

    for title in [
        "2. The shuffle test",
        "Cross-stitch α: learning rate × 10³",
        "Hard vs. soft (λ = 0.1)",
        "A0 · Welcome",
    ]:
        assert section_anchor(title) == make_id(title)


def test_a_record_survives_a_notebook_and_renders_on_the_page(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from mtl_course.ledger import Statement, effect_claim\n"
            "claim = Statement('A9', 'The test section', 'Someone 2020, Table 1', 'X beats Y.', "
            "paper='3 points better', tag='checked')\n"
            "effect_claim(claim, effects=[0.2, 0.3, 0.25], metric='error, Y - X')"
        )
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    path = tmp_path / "lectures" / "99_test.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    output = nb.cells[0].outputs[0]
    assert output["data"]["text/plain"].startswith("[A9] Someone 2020, Table 1: X beats Y.")
    (claim,) = collect_claims([path])[path]
    assert claim == Claim.from_json(json.loads(json.dumps(output["metadata"][MIME_TYPE])))
    assert list(output["data"]) == ["text/plain"]  # nothing the site's renderer would not know
    assert claim.verdict == "reproduces" and claim.measurement.mean == 0.25
    page = render_page({path: [claim]})
    assert "[X beats Y.](../lectures/99_test.ipynb#the-test-section)" in page and "**reproduces**" in page
    assert "In all: 1 reproduces, 0 partly, 0 does not reproduce, 0 not testable offline." in page


def test_a_pipe_in_a_claim_or_reason_does_not_split_the_table_row() -> None:
    statement = Statement("A9", "Pipes", "course", "|d_min| stays below 0.01.")
    claim = equivalence_claim(statement, [0.001, -0.002, 0.0], "a difference", margin=0.1)
    assert "|mean|" in claim.reason
    page = render_page({Path("lectures/09_pipes.ipynb"): [claim]})
    row = next(line for line in page.splitlines() if line.startswith("| [") and "d_min" in line)
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 7, cells  # the empty ends and five cells

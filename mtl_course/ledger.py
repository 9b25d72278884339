r"""The course's ledger of what reproduces: one record per measured claim, with a computed verdict.

Each lecture states the claims it tests (a paper's, or the course's own) as a
:class:`Statement` *before* the run, and records each one with the code that
measured it. A record holds the source
(paper and table or section, or "course"), the claim in one sentence, the
paper's number where it gives one with its verification tag from the syllabus
(``checked``, ``abstract``, ``unchecked``), the course's measurement (mean ±
sd over :math:`n` seeds), and a verdict **computed from the measurement**:

* :func:`effect_claim` -- "X is better than Y": the per-seed effects
  :math:`d_s` are signed so that a positive value supports the claim. With
  :math:`\bar d` their mean and :math:`\mathrm{se} = s_d / \sqrt{n}` its
  standard error, the claim *reproduces* when :math:`\bar d > 0` and
  :math:`\bar d \ge 2\,\mathrm{se}`, reproduces *partly* when
  :math:`\bar d > 0` but within two standard errors of zero (the direction
  holds on average, the size is within seed-to-seed noise), and *does not
  reproduce* when :math:`\bar d \le 0`.
* :func:`equivalence_claim` -- "X is as good as Y" within a stated margin
  :math:`m`: *reproduces* when :math:`|\bar d| + 2\,\mathrm{se} \le m`,
  *partly* when only :math:`|\bar d| \le m`, else *does not reproduce*.
* :func:`check_claim` -- a deterministic fact (an identity, a printed
  equation checked numerically): reproduces or does not.
* :func:`untestable_claim` -- not testable offline (the paper's data or scale
  is out of reach), with the reason.

A displayed record prints in a stable text form (for a ``# NBVAL_CHECK_OUTPUT``
cell) and carries a JSON copy in its output's metadata (under
:data:`MIME_TYPE`), from which ``make site`` builds the page "What reproduces"
(:func:`collect_claims`, :func:`render_page`).

>>> shuffle_test = Statement("A2", "The shuffle test", "Caruana 1997, Section 3.1",
...                          "Extra tasks help the main task only when their labels match the inputs.")
>>> c = effect_claim(shuffle_test, effects=[0.12, 0.08, 0.10], metric="test MSE, shuffled - MTL")
>>> c.verdict
'reproduces'
>>> print(c)  # doctest: +NORMALIZE_WHITESPACE
[A2] Caruana 1997, Section 3.1: Extra tasks help the main task only when their labels match the inputs.
  measured: test MSE, shuffled - MTL = +0.10 ± 0.02 over 3 seeds (3/3 in the claimed direction)
  verdict: reproduces (the mean effect is 8.7 standard errors above zero)
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mtl_course.stats import sample_sd

Verdict = Literal["reproduces", "partly", "does not reproduce", "not testable offline"]
Tag = Literal["checked", "abstract", "unchecked"]
#: The key under which a record's JSON travels in the metadata of a notebook output.
MIME_TYPE = "application/vnd.mtl-course.claim+json"
VERDICTS: tuple[Verdict, ...] = ("reproduces", "partly", "does not reproduce", "not testable offline")
#: How many standard errors above zero an effect must be to count as reproduced.
STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class Measurement:
    """What the course measured: ``mean ± sd`` of ``metric`` over ``n`` seeds; ``wins``: seeds for the claim."""

    metric: str
    mean: float
    sd: float
    n: int
    wins: int | None = None
    digits: int = 2

    def __str__(self) -> str:
        text = f"{self.metric} = {self.mean:+.{self.digits}f} ± {self.sd:.{self.digits}f} over {self.n} seeds"
        if self.wins is not None:
            text += f" ({self.wins}/{self.n} in the claimed direction)"
        return text


@dataclass(frozen=True)
class Statement:
    """What is claimed, stated before the run: where (``lecture``, ``section``), by whom (``source``), and
    the paper's number with its verification tag from the syllabus, where the paper gives one."""

    lecture: str
    section: str
    source: str
    claim: str
    paper: str | None = None
    tag: Tag | None = None

    def __post_init__(self) -> None:
        if self.tag is not None and self.tag not in ("checked", "abstract", "unchecked"):
            raise ValueError(f"tag must be 'checked', 'abstract' or 'unchecked', got {self.tag!r}")
        if self.paper is not None and self.tag is None:
            raise ValueError(f"the paper's number {self.paper!r} needs its verification tag from SYLLABUS.md")
        for name in ("lecture", "section", "source", "claim"):
            if not getattr(self, name).strip():
                raise ValueError(f"a statement needs a non-empty {name}")


@dataclass(frozen=True)
class Claim:
    """One record of the ledger: a :class:`Statement`, the measurement, and the verdict computed from it.

    Build it with :func:`effect_claim`, :func:`equivalence_claim`, :func:`check_claim` or
    :func:`untestable_claim`.
    """

    statement: Statement
    verdict: Verdict
    reason: str
    measurement: Measurement | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def __str__(self) -> str:
        s = self.statement
        lines = [f"[{s.lecture}] {s.source}: {s.claim}"]
        if s.paper is not None:
            lines.append(f"  paper: {s.paper} [{s.tag}]")
        if self.measurement is not None:
            lines.append(f"  measured: {self.measurement}")
        lines.append(f"  verdict: {self.verdict} ({self.reason})")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with the numbers rounded as printed (stable across machines)."""
        data = asdict(self)
        if self.measurement is not None:
            digits = self.measurement.digits
            data["measurement"]["mean"] = round(self.measurement.mean, digits)
            data["measurement"]["sd"] = round(self.measurement.sd, digits)
        return data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stable text as the output (compared by nbval), the JSON in the output's metadata (read by the site)."""
        return {"text/plain": str(self)}, {MIME_TYPE: self.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claim:
        measurement = data.get("measurement")
        return cls(
            Statement(**data["statement"]),
            data["verdict"],
            data["reason"],
            Measurement(**measurement) if measurement else None,
        )


def _effects(values: Sequence[float], what: str) -> np.ndarray:
    effects = np.asarray(values, dtype=float).reshape(-1)
    if effects.size < 2:
        raise ValueError(f"{what} needs the values of at least 2 seeds, got {effects.size}")
    if not np.isfinite(effects).all():
        raise ValueError(f"{what} needs finite values, got {effects.tolist()}")
    return effects


def _standard_errors(mean: float, effects: np.ndarray) -> float:
    """How many standard errors the mean effect lies above zero (``inf`` for identical positive effects)."""
    se = sample_sd(effects) / math.sqrt(effects.size)
    if se > 0:
        return mean / se
    return math.inf if mean > 0 else 0.0


def _first_verdict(statement: Statement, measurement: Measurement, *rules: tuple[bool, Verdict, str]) -> Claim:
    """The claim with the verdict and reason of the first rule whose condition holds."""
    verdict, reason = next((verdict, reason) for holds, verdict, reason in rules if holds)
    return Claim(statement, verdict, reason, measurement)


def effect_claim(statement: Statement, effects: Sequence[float], metric: str, digits: int = 2) -> Claim:
    """A directional claim from per-seed ``effects`` (positive supports it); the rule is in the module docstring.

    >>> mtl_helps = Statement("A0", "s", "course", "MTL is more accurate than STL.")
    >>> effect_claim(mtl_helps, [0.3, -0.1, 0.1], "accuracy, MTL - STL").verdict
    'partly'
    >>> effect_claim(mtl_helps, [-0.3, 0.1, -0.1], "accuracy, MTL - STL").verdict
    'does not reproduce'
    """
    d = _effects(effects, f"effect_claim({statement.claim!r})")
    mean = float(d.mean())
    z = _standard_errors(mean, d)
    measurement = Measurement(metric, mean, sample_sd(d), d.size, int((d > 0).sum()), digits)
    return _first_verdict(
        statement,
        measurement,
        (mean <= 0, "does not reproduce", "the mean effect is not in the claimed direction"),
        (z >= STANDARD_ERRORS, "reproduces", f"the mean effect is {z:.1f} standard errors above zero"),
        (True, "partly", f"the direction holds on average, but only {z:.1f} standard errors above zero: seed noise"),
    )


def equivalence_claim(
    statement: Statement, differences: Sequence[float], metric: str, margin: float, digits: int = 2
) -> Claim:
    """An "as good as" claim: per-seed ``differences`` must stay within ``±margin`` (rule in the module docstring).

    >>> as_good = Statement("A0", "s", "course", "MTL segments as well as STL.")
    >>> equivalence_claim(as_good, [0.01, -0.01, 0.0], "Dice, MTL - STL", margin=0.05).verdict
    'reproduces'
    """
    if not (margin > 0 and math.isfinite(margin)):
        raise ValueError(f"the equivalence margin must be positive and finite, got {margin}")
    d = _effects(differences, f"equivalence_claim({statement.claim!r})")
    mean, sd = float(d.mean()), sample_sd(d)
    bound = abs(mean) + STANDARD_ERRORS * sd / math.sqrt(d.size)
    measurement = Measurement(metric, mean, sd, d.size, None, digits)
    return _first_verdict(
        statement,
        measurement,
        (bound <= margin, "reproduces", f"|mean| + 2 se = {bound:.{digits}f} is within the margin ±{margin:g}"),
        (
            abs(mean) <= margin,
            "partly",
            f"the mean is within ±{margin:g}, but |mean| + 2 se = {bound:.{digits}f} is not",
        ),
        (True, "does not reproduce", f"the mean difference is outside the margin ±{margin:g}"),
    )


def check_claim(statement: Statement, holds: bool, evidence: str) -> Claim:
    """A deterministic fact, checked once (e.g. a printed equation against autograd); ``evidence`` says how.

    >>> eq3 = Statement("A4", "s", "Misra et al. 2016, Eq. 3", "Eq. 3 is the gradient of the loss for alpha.")
    >>> check_claim(eq3, False, "max |difference| to autograd 0.41").verdict
    'does not reproduce'
    """
    if not isinstance(holds, bool | np.bool_):
        raise TypeError(f"holds must be a bool, got {type(holds).__name__}")
    verdict: Verdict = "reproduces" if holds else "does not reproduce"
    return Claim(statement, verdict, evidence)


def untestable_claim(statement: Statement, why: str) -> Claim:
    """A claim the course cannot test offline, and why (the data, the scale)."""
    return Claim(statement, "not testable offline", why)


# -- the page "What reproduces" ----------------------------------------------------------
def collect_claims(notebooks: Iterable[Path]) -> dict[Path, list[Claim]]:
    """Every record stored in the outputs of ``notebooks`` (in cell order), by notebook."""
    found: dict[Path, list[Claim]] = {}
    for path in notebooks:
        cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
        claims = [
            Claim.from_json(output["metadata"][MIME_TYPE])
            for cell in cells
            for output in cell.get("outputs", [])
            if MIME_TYPE in output.get("metadata", {})
        ]
        found[Path(path)] = claims
    return found


def section_anchor(section: str) -> str:
    """The HTML id Sphinx gives a section heading: docutils' ``make_id`` (ASCII, lower case, hyphens).

    >>> section_anchor("2. The shuffle test (Caruana, §3.1)")
    'the-shuffle-test-caruana-3-1'
    """
    text = unicodedata.normalize("NFKD", section).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", " ".join(text.lower().split()))
    return re.sub(r"^[-0-9]+|-+$", "", text)


def notebook_link(path: Path, claim: Claim) -> str:
    """A Markdown link from the claim to its notebook (GitHub shows notebooks; it ignores the anchor).

    >>> notebook_link(Path("lectures/02_x.ipynb"), untestable_claim(Statement("A2", "The test", "course", "C."), "w"))
    '[C.](../lectures/02_x.ipynb#the-test)'
    """
    s = claim.statement
    return f"[{s.claim}](../{path.parent.name}/{path.name}#{section_anchor(s.section)})"


def table_cell(text: str) -> str:
    r"""``text`` for a cell of a Markdown table: a ``|`` (as in ``|mean|``) would end the cell, so it is escaped.

    >>> table_cell("|mean| + 2 se = 0.02")
    '\\|mean\\| + 2 se = 0.02'
    """
    return text.replace("|", "\\|")


def render_page(claims: dict[Path, list[Claim]], link: Callable[[Path, Claim], str] = notebook_link) -> str:
    """The Markdown page "What reproduces": one table per lecture, each claim linked to its section by ``link``."""
    lines = [
        "# What reproduces",
        "",
        "Every claim the lectures test, with the course's measurement and a verdict computed from it",
        "(the rule is in `mtl_course/ledger.py`: *reproduces* needs the mean effect at least two standard",
        "errors above zero over the seeds; *partly* is the right direction within seed noise). Papers'",
        "numbers carry their verification tag: **checked** in the full text or official code, **abstract**",
        "from an abstract only, **unchecked** from secondary sources. This page is generated from the",
        "executed notebooks; `make site` rebuilds it.",
        "",
    ]
    counts = {v: sum(c.verdict == v for cs in claims.values() for c in cs) for v in VERDICTS}
    lines.append("In all: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    for path, records in claims.items():
        if not records:
            continue
        lines += ["", f"## {records[0].statement.lecture}: {path.stem}", ""]
        lines += ["| claim | source | paper | measured | verdict |", "| --- | --- | --- | --- | --- |"]
        for c in records:
            s = c.statement
            paper = f"{s.paper} [{s.tag}]" if s.paper else "—"
            measured = str(c.measurement) if c.measurement else "—"
            cells = [link(path, c), s.source, paper, measured, f"**{c.verdict}**: {c.reason}"]
            lines.append("| " + " | ".join(table_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"

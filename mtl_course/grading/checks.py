"""The check cells of exercise sheets: they record the student's values; verdicts are made elsewhere.

A check cell calls the student's code on some inputs and hands each result to
an expectation of a :class:`Check`::

    # NBVAL_CHECK_OUTPUT
    from mtl_course.grading import checks

    with checks.check("ex1.1", "soft_threshold", points=2) as c:
        c.close(soft_threshold(3.0, 1.0), 2.0, what="soft_threshold(3.0, 1.0)")

**In the student's own run** (self-checking), each expectation that names an
expected value compares it at once, every failing comparison is listed and
the cell prints one verdict line: ``ex1.1 soft_threshold: PASS 2/2``. An
exception from the student's code (``NotImplementedError`` from an unsolved
stub included) ends the block and is reported; a check cell never fails with
a traceback.

**When grading**, nothing the student's kernel says is a verdict. The grader
sets :data:`VALUES_ENV` to a file, and every expectation appends the
student's value to it as plain JSON (:func:`encode`: numbers, arrays,
strings, booleans; never an object). The grader first runs the *instructor's*
notebook the same way, so its record holds, for each expectation, the kind of
comparison, the tolerances and the expected value (the reference that the
check cell computed, or, where the cell names none, the solution's own
value). It then compares the student's values with the instructor's in its
own process with :func:`compare`, which never ran student code. Hidden check
cells therefore name no expected value: what they compute in the student's
kernel is only the student's answer on inputs the student never saw.

>>> with check("ex0.1", "addition", points=1) as c:
...     c.equal(1 + 1, 2, what="1 + 1")
ex0.1 addition: PASS 1/1
>>> with check("ex0.2", "division", points=2) as c:
...     c.close(1 / 3, 0.3, what="1 / 3")
...     c.close(2 / 3, 0.6, what="2 / 3")
ex0.2 division: FAIL 0/2
  1 / 3: expected 0.3, got 0.3333 (largest difference 0.0333)
  2 / 3: expected 0.6, got 0.6667 (largest difference 0.0667)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import numpy as np

#: The environment variable that names the file the grader collects values from.
VALUES_ENV = "MTL_COURSE_VALUES"
#: The default relative and absolute tolerance of :meth:`Check.close`.
RTOL, ATOL = 1e-6, 1e-9
#: The longest failure message (characters) and the most failures listed per check.
MAX_MESSAGE, MAX_FAILURES = 600, 8
#: The largest array (elements) and the longest string or list a value may have.
MAX_ELEMENTS, MAX_TEXT = 1_000_000, 10_000
#: Kinds of expectation, each compared by :func:`compare`.
KINDS = ("close", "equal", "true", "permutation")


class NotPlainData(ValueError):
    """A value that cannot travel as plain data (numbers, arrays, strings, booleans, lists of them)."""


# -- plain data ----------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A tensor as a detached CPU tensor (NumPy cannot read one that tracks gradients)."""
    detach = getattr(value, "detach", None)
    return detach().cpu() if callable(detach) else value


def encode(value: Any) -> dict:
    """``value`` as a JSON-ready dict of plain data, tagged with its type; unreadable objects as their type name.

    >>> encode(2), encode([1.5, 2.0])["shape"], encode({"b", "a"})
    ({'type': 'int', 'value': 2}, [2], {'type': 'set', 'items': ['a', 'b']})
    """
    if isinstance(value, (bool, np.bool_)):
        return {"type": "bool", "value": bool(value)}
    if isinstance(value, (int, np.integer)) and type(value) in (int, np.int64, np.int32, np.intp):
        return {"type": "int", "value": int(value)}
    if isinstance(value, str):
        return {"type": "str", "value": str.__str__(value)[:MAX_TEXT]}
    if isinstance(value, (set, frozenset)) and all(type(v) is str for v in value):
        return {"type": "set", "items": sorted(value)[:MAX_TEXT]}
    if isinstance(value, (list, tuple)) and value and all(type(v) is str for v in value):
        return {"type": "list", "items": list(value)[:MAX_TEXT]}
    try:
        array = np.array(_plain(value), dtype=float)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        return {"type": "object", "name": type(value).__name__[:100]}
    if array.size > MAX_ELEMENTS:
        return {"type": "object", "name": f"array of {array.size} elements"}
    return {"type": "array", "shape": list(array.shape), "data": array.ravel().tolist()}


def decode(data: Any) -> Any:
    """A value from :func:`encode` as a Python or NumPy value; :class:`NotPlainData` for anything else."""
    if not isinstance(data, dict):
        raise NotPlainData(f"not a tagged value: {type(data).__name__}")
    kind = data.get("type")
    if kind in ("bool", "int", "str"):
        value = data.get("value")
        if type(value) is not {"bool": bool, "int": int, "str": str}[kind]:
            raise NotPlainData(f"a {kind} that is not one")
        return value
    if kind in ("set", "list"):
        items = data.get("items")
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise NotPlainData(f"a {kind} of non-strings")
        return set(items) if kind == "set" else list(items)
    if kind == "array":
        shape, flat = data.get("shape"), data.get("data")
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape) and isinstance(flat, list)):
            raise NotPlainData("an array without a shape or data")
        if len(flat) != math.prod(shape) or not all(type(v) in (int, float) for v in flat):
            raise NotPlainData("an array whose data do not fit its shape")
        return np.array(flat, dtype=float).reshape(shape)
    if kind == "object":
        return data
    raise NotPlainData(f"unknown value type {kind!r}")


def _short(value: Any) -> str:
    """A compact, deterministic rendering of a value for a failure message."""
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, threshold=12, edgeitems=3, separator=", ")
    if isinstance(value, dict) and value.get("type") == "object":
        return f"an object of type {value['name']}"
    text = repr(sorted(value) if isinstance(value, set) else value)
    return text if len(text) <= 200 else text[:197] + "..."


# -- comparisons: one home, used by the student's self-check and by the grader ------------
def compare(kind: str, got: Any, expected: Any, what: str, **options: Any) -> str:
    """Compare decoded values by ``kind``; the failure message, or ``""`` when they match.

    ``close``: numbers of the same shape, finite, within ``rtol`` and ``atol``
    (``numpy.allclose``); ``equal``: the same plain value and type; ``true``: the
    boolean ``True`` (else ``message``); ``permutation``: ``got``
    holds the rows of ``expected`` in another order, with at least ``min_moved``
    rows moved.
    """
    if kind == "close":
        return _compare_close(got, expected, what, options.get("rtol", RTOL), options.get("atol", ATOL))
    if kind == "equal":
        same_type = isinstance(got, np.ndarray) == isinstance(expected, np.ndarray) and (
            isinstance(got, np.ndarray) or type(got) is type(expected)
        )
        if same_type and (np.array_equal(got, expected) if isinstance(got, np.ndarray) else got == expected):
            return ""
        return f"{what}: expected {_short(expected)}, got {_short(got)}"
    if kind == "true":
        return "" if got is True else options.get("message", what)
    if kind == "permutation":
        return _compare_permutation(got, expected, what, options.get("min_moved", 1))
    raise ValueError(f"unknown kind of comparison {kind!r}; expected one of {KINDS}")


def _compare_close(got: Any, expected: Any, what: str, rtol: float, atol: float) -> str:
    expected = np.asarray(expected, dtype=float)
    if not isinstance(got, np.ndarray):
        return f"{what}: expected numbers of shape {expected.shape}, got {_short(got)}"
    if got.shape != expected.shape:
        return f"{what}: expected shape {expected.shape}, got shape {got.shape}"
    if not np.isfinite(got).all():
        return f"{what}: got non-finite values {_short(got)}"
    if np.allclose(got, expected, rtol=rtol, atol=atol):
        return ""
    largest = float(np.max(np.abs(got - expected)))
    message = f"{what}: expected {_short(expected)}, got {_short(got)} (largest difference {largest:.3g})"
    return message + _hint(got, expected)


def _hint(got: np.ndarray, expected: np.ndarray) -> str:
    """A likely mistake: every value off by one factor (a mean for a sum, a missing 1/n, a sign)."""
    nonzero = np.abs(expected) > 1e-12
    if nonzero.sum() < 2 or np.any(np.abs(got[~nonzero]) > 1e-9):
        return ""
    ratios = got[nonzero] / expected[nonzero]
    factor = float(np.median(ratios))
    if abs(factor) < 1e-12 or not np.allclose(ratios, factor, rtol=1e-6) or np.isclose(factor, 1.0):
        return ""
    return f"; every value is {factor:.4g} times the expected one (a mean for a sum, a missing factor, a sign?)"


def _compare_permutation(got: Any, rows: Any, what: str, min_moved: int) -> str:
    rows = np.asarray(rows, dtype=float)
    if not isinstance(got, np.ndarray) or got.shape != rows.shape:
        return f"{what}: expected an array of shape {rows.shape}, got {_short(got)}"
    flat, reference = got.reshape(len(got), -1), rows.reshape(len(rows), -1)
    if not np.array_equal(flat[np.lexsort(flat.T[::-1])], reference[np.lexsort(reference.T[::-1])]):
        return f"{what}: the rows are not the original rows in another order (values changed or rows split)"
    moved = int(np.sum(np.any(flat != reference, axis=1)))
    if moved < min_moved:
        return f"{what}: only {moved} of {len(rows)} rows moved; expected a random order (at least {min_moved} moved)"
    return ""


# -- the check cell's context manager ----------------------------------------------------
class Check:
    """A context manager that records the values of its block and prints one self-check verdict line."""

    def __init__(self, exercise: str, name: str, points: int) -> None:
        if not isinstance(points, int) or points < 1:
            raise ValueError(f"points must be a positive integer, got {points!r}")
        self.exercise, self.name, self.points = exercise, name, points
        self.failures: list[str] = []
        self._seen: dict[str, int] = {}
        self._trues = 0
        self._unchecked = 0
        self._warnings = warnings.catch_warnings()

    # -- expectations -----------------------------------------------------------
    def close(self, got: Any, expected: Any = None, what: str = "", *, rtol: float = RTOL, atol: float = ATOL) -> None:
        """Expect numbers close to ``expected`` (the solution's value when ``None``), of the same shape."""
        self._expect("close", got, expected, what, rtol=rtol, atol=atol)

    def equal(self, got: Any, expected: Any = None, what: str = "") -> None:
        """Expect exactly ``expected`` (the solution's value when ``None``): an int, a bool, a string, strings."""
        self._expect("equal", got, expected, what)

    def true(self, condition: Any, message: str) -> None:
        """Expect ``condition`` to hold; ``message`` says what it means when it does not.

        A condition is decided in the student's kernel, so it is a hint for the
        student, never enough alone: a check needs at least one value that the
        grader compares (:meth:`close`, :meth:`equal`, :meth:`permutation`).
        The n-th condition of a check is matched with the n-th of the solution's.
        """
        self._trues += 1
        holds = condition is True or (isinstance(condition, np.bool_) and bool(condition))
        self._expect("true", holds, True, f"condition {self._trues}", message=str(message)[:MAX_MESSAGE])

    def permutation(self, got: Any, rows: Any, what: str, *, min_moved: int = 1) -> None:
        """Expect the rows of ``rows`` in another order, with at least ``min_moved`` rows moved."""
        self._expect("permutation", got, rows, what, min_moved=min_moved)

    def _expect(self, kind: str, got: Any, expected: Any, what: str, **options: Any) -> None:
        occurrence = self._seen[what] = self._seen.get(what, 0) + 1
        got_data = encode(got)
        expected_data = None if expected is None else encode(expected)
        _record(
            {
                "exercise": self.exercise,
                "name": self.name,
                "what": what,
                "n": occurrence,
                "kind": kind,
                "got": got_data,
                "expected": expected_data,
                **options,
            }
        )
        if expected_data is None:
            self._unchecked += 1
            return
        message = compare(kind, decode(got_data), decode(expected_data), what, **options)
        if message:
            self.failures.append(message)

    # -- the verdict ------------------------------------------------------------
    def __enter__(self) -> Check:
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self._warnings.__exit__(exc_type, exc, tb)
        if exc_type is not None and not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt (a time limit), SystemExit: not the student's answer to judge
        if exc_type is not None:
            error = exception_message(exc_type.__name__, str(exc))
            _record({"exercise": self.exercise, "name": self.name, "error": exc_type.__name__, "detail": str(exc)})
            self.failures.append(error)
        text = verdict_text(self.exercise, self.name, self.points, self.failures)
        if self._unchecked and not self.failures:
            text += f"\n  (when grading, {self._unchecked} more value(s) are compared with the solution's)"
        print(text)
        return True


def exception_message(type_name: str, detail: str) -> str:
    """What to tell a student whose code raised ``type_name`` during a check."""
    if type_name == "NotImplementedError":
        return f"not implemented yet: your answer still raises NotImplementedError ({detail})"
    return f"your code raised {type_name}: {detail}"


def verdict_text(exercise: str, name: str, points: int, failures: list[str]) -> str:
    """The verdict line, then every failure (at most :data:`MAX_FAILURES`, each shortened), indented."""
    earned = 0 if failures else points
    lines = [f"{exercise} {name}: {'FAIL' if failures else 'PASS'} {earned}/{points}"]
    for message in failures[:MAX_FAILURES]:
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        lines += [f"  {line}" for line in message.splitlines()]
    if len(failures) > MAX_FAILURES:
        lines.append(f"  ... and {len(failures) - MAX_FAILURES} more failing comparisons")
    return "\n".join(lines)


def _record(entry: dict) -> None:
    """Append ``entry`` as one JSON line to the grader's file, when grading."""
    path = os.environ.get(VALUES_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


# -- helpers the sheets' check cells share ---------------------------------------------
def scalar(c: Check, value: Any, what: str) -> float:
    """A one-element tensor as a float; a hint (:meth:`Check.true`) when ``what`` returned something else."""
    is_scalar = callable(getattr(value, "detach", None)) and callable(getattr(value, "numel", None))
    c.true(
        is_scalar and value.numel() == 1,
        f"{what} should return a scalar torch.Tensor, got {type(value).__name__} {getattr(value, 'shape', '')}",
    )
    return float(value.detach())


def seeded_columns(count: int, seed: int, make: Any) -> list:
    """``count`` modules from ``make()`` in double precision, parameters drawn from one seeded generator."""
    import torch  # only the sheets that use torch pay for it

    generator = torch.Generator().manual_seed(seed)
    columns = [make().double() for _ in range(count)]
    with torch.no_grad():
        for column in columns:
            for p in column.parameters():
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    return columns


def check(exercise: str, name: str, points: int) -> Check:
    """A check of ``exercise`` worth ``points``; use it as ``with check(...) as c:``."""
    return Check(exercise, name, points)

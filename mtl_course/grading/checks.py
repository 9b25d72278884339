"""Helpers for the check cells of exercise sheets.

A check cell tests one exercise and prints one deterministic verdict line,
followed, on failure, by what was tested, what was expected and what came
back::

    # NBVAL_CHECK_OUTPUT
    from mtl_course.grading import checks

    with checks.check("ex1.1", "soft_threshold", points=2) as c:
        c.close(soft_threshold(3.0, 1.0), 2.0, what="soft_threshold(3.0, 1.0)")

prints ``ex1.1 soft_threshold: PASS 2/2``. The first failed expectation ends
the block; an exception raised by the student's code (``NotImplementedError``
from an unsolved stub included) is caught and reported, so a check cell never
fails with a traceback. Warnings inside the block are silenced, so that a
student's harmless ``RuntimeWarning`` does not change the checked output.

When grading, ``mtl-course grade`` does not import this module in the
student's kernel: it executes a pristine copy of this file's source inside
each check cell and calls :func:`record_verdicts_to` with a one-time nonce,
so every verdict is also appended to a file that the grader reads. This module
therefore needs only the standard library and NumPy, and it keeps no state
other than that record.

>>> with check("ex0.1", "addition", points=1) as c:
...     c.equal(1 + 1, 2, what="1 + 1")
ex0.1 addition: PASS 1/1
>>> with check("ex0.2", "division", points=2) as c:
...     c.close(1 / 3, 0.3, what="1 / 3")
ex0.2 division: FAIL 0/2
  1 / 3: expected 0.3, got 0.3333 (largest difference 0.0333)
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

#: ``(path, nonce)`` of the grader's verdict record; ``None`` outside grading.
_RECORD: tuple[str, str] | None = None

#: The longest failure message a verdict carries (characters).
MAX_MESSAGE = 2000


def record_verdicts_to(path: str, nonce: str) -> None:
    """Also append each verdict, tagged with ``nonce``, as a JSON line to ``path`` (used by the grader)."""
    global _RECORD
    _RECORD = (path, nonce)


class CheckFailed(Exception):
    """An expectation of a check was not met; the message says which and why."""


def _short(value: Any) -> str:
    """A compact, deterministic rendering of a value for a failure message."""
    if isinstance(value, (np.ndarray, float)):
        return np.array2string(np.asarray(value), precision=4, threshold=12, edgeitems=3, separator=", ")
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _plain(value: Any) -> Any:
    """A tensor as a detached CPU tensor (NumPy cannot read one that tracks gradients)."""
    detach = getattr(value, "detach", None)
    return detach().cpu() if callable(detach) else value


class Check:
    """A context manager that turns the expectations in its block into one verdict line."""

    def __init__(self, exercise: str, name: str, points: int) -> None:
        if not isinstance(points, int) or points < 1:
            raise ValueError(f"points must be a positive integer, got {points!r}")
        self.exercise = exercise
        self.name = name
        self.points = points
        self._warnings = warnings.catch_warnings()

    # -- expectations -----------------------------------------------------------
    def fail(self, message: str) -> None:
        """Fail the check with ``message``."""
        raise CheckFailed(message)

    def true(self, condition: Any, message: str) -> None:
        """Expect ``condition`` to be true; ``message`` says what it means when it is not."""
        if not bool(condition):
            self.fail(message)

    def equal(self, got: Any, expected: Any, what: str) -> None:
        """Expect ``got == expected`` exactly (numbers, strings, sets, lists)."""
        if not (type(got) is type(expected) or _both_numbers(got, expected)) or got != expected:
            self.fail(f"{what}: expected {_short(expected)}, got {_short(got)}")

    def close(self, got: Any, expected: Any, what: str, *, rtol: float = 1e-6, atol: float = 1e-9) -> None:
        """Expect ``got`` to be numerically close to ``expected`` and of the same shape."""
        expected = np.asarray(_plain(expected), dtype=float)
        try:
            got_array = np.asarray(_plain(got), dtype=float)
        except (TypeError, ValueError, RuntimeError):
            self.fail(f"{what}: expected numbers of shape {expected.shape}, got {_short(got)}")
        if got_array.shape != expected.shape:
            self.fail(f"{what}: expected shape {expected.shape}, got shape {got_array.shape}")
        if not np.isfinite(got_array).all():
            self.fail(f"{what}: got non-finite values {_short(got_array)}")
        if not np.allclose(got_array, expected, rtol=rtol, atol=atol):
            largest = float(np.max(np.abs(got_array - expected)))
            self.fail(
                f"{what}: expected {_short(expected)}, got {_short(got_array)} (largest difference {largest:.3g})"
            )

    # -- the verdict ------------------------------------------------------------
    def __enter__(self) -> Check:
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self._warnings.__exit__(exc_type, exc, tb)
        if exc_type is None:
            message = ""
        elif issubclass(exc_type, CheckFailed):
            message = str(exc)
        elif issubclass(exc_type, NotImplementedError):
            message = f"not implemented yet: your answer still raises NotImplementedError ({exc})"
        elif issubclass(exc_type, Exception):
            message = f"your code raised {exc_type.__name__}: {exc}"
        else:  # KeyboardInterrupt (a time limit), SystemExit: not the student's answer to judge
            return False
        self._report(message)
        return True

    def _report(self, message: str) -> None:
        passed = not message
        earned = self.points if passed else 0
        verdict = "PASS" if passed else "FAIL"
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        lines = [f"{self.exercise} {self.name}: {verdict} {earned}/{self.points}"]
        lines += [f"  {line}" for line in message.splitlines()]
        print("\n".join(lines))
        if _RECORD is not None:
            path, nonce = _RECORD
            entry = {
                "nonce": nonce,
                "exercise": self.exercise,
                "verdict": verdict,
                "earned": earned,
                "points": self.points,
                "message": message,
            }
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(entry) + "\n").encode())
            finally:
                os.close(fd)


def _both_numbers(a: Any, b: Any) -> bool:
    number = (int, float, np.integer, np.floating)
    return isinstance(a, number) and isinstance(b, number) and not isinstance(a, bool) and not isinstance(b, bool)


def check(exercise: str, name: str, points: int) -> Check:
    """A check of ``exercise`` worth ``points``; use it as ``with check(...) as c:``."""
    return Check(exercise, name, points)

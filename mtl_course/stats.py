r"""Statistics over seeds: mean ± sd, and paired comparisons with a baseline.

Every lecture reports small effects the same way: the mean and the sample
standard deviation over seeds, and, because conditions trained on the same
seed share their data and initial weights, the *paired* change against a
baseline of the same seed: how many seeds it wins, and the mean relative
change

.. math::

    \Delta = \frac{1}{S} \sum_{s=1}^{S} \frac{v_{c,s} - v_{b,s}}{v_{b,s}},

with :math:`v_{c,s}` the value of condition :math:`c` on seed :math:`s` and
:math:`b` the baseline.

>>> import pandas as pd
>>> df = pd.DataFrame({"condition": ["STL", "MTL"] * 2, "seed": [0, 0, 1, 1], "test": [1.0, 0.8, 2.0, 1.6]})
>>> report(df, "test").loc["MTL"].tolist()
['1.20 ± 0.57', '2/2', '-20% ± 0%']
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def sample_sd(values: Sequence[float] | np.ndarray) -> float:
    """The sample standard deviation (``ddof=1``); ``NaN`` for fewer than two values.

    >>> sample_sd([1.0, 2.0, 3.0]), sample_sd([4.0])
    (1.0, nan)
    """
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if values.size > 1 else math.nan


def mean_sd(values: Sequence[float] | np.ndarray, digits: int = 2) -> str:
    """``"mean ± sd"`` with ``digits`` decimals (sample sd over the values, e.g. over seeds).

    >>> mean_sd([1.0, 2.0, 3.0])
    '2.00 ± 1.00'
    >>> mean_sd([0.5], digits=1)
    '0.5 ± nan'
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("mean_sd needs at least one value, got none")
    return f"{values.mean():.{digits}f} ± {sample_sd(values):.{digits}f}"


def percent(value: float, digits: int = 0) -> str:
    """A signed percentage, ``"+12%"``, ``"-3%"``, with ``"0%"`` for a change that rounds to zero.

    >>> percent(0.123), percent(-0.031), percent(-0.001)
    ('+12%', '-3%', '0%')
    """
    text = f"{100 * value:+.{digits}f}%"
    return "0%" if float(text[:-1]) == 0 else text


def change_sd(change: float, sd: float) -> str:
    """A paired relative change and its sd over seeds, both in per cent: ``"+12% ± 20%"``.

    >>> change_sd(0.123, 0.2), change_sd(-0.001, 0.444)
    ('+12% ± 20%', '0% ± 44%')
    """
    return f"{percent(change)} ± {100 * sd:.0f}%"


def mean_sd_table(
    frame: pd.DataFrame, columns: Sequence[str], by: str | Sequence[str], digits: int = 2
) -> pd.DataFrame:
    """One row per group of ``by``, one ``"mean ± sd"`` cell per column (sd over the group's rows).

    >>> df = pd.DataFrame({"method": ["a", "a", "b", "b"], "err": [1.0, 3.0, 2.0, 2.0]})
    >>> mean_sd_table(df, ["err"], by="method", digits=1)["err"].tolist()
    ['2.0 ± 1.4', '2.0 ± 0.0']
    """
    missing = [c for c in [*columns, *([by] if isinstance(by, str) else by)] if c not in frame.columns]
    if missing:
        raise KeyError(f"mean_sd_table: no column(s) {missing}; the table has {list(frame.columns)}")
    groups = frame.groupby(by if isinstance(by, str) else list(by), sort=False)
    return pd.DataFrame({c: groups[c].apply(lambda v: mean_sd(v, digits)) for c in columns})


def summarize(
    frame: pd.DataFrame,
    metric: str,
    baseline: str = "STL",
    *,
    condition: str = "condition",
    pair_on: Sequence[str] = ("seed",),
    by: Sequence[str] = (),
    higher_is_better: bool = False,
) -> pd.DataFrame:
    """Mean ± sd of ``metric`` per condition (and per ``by`` group), paired with the ``baseline`` condition.

    Rows are paired with the baseline's row that has the same ``pair_on``
    values (the seed) and the same ``by`` values (e.g. a relatedness or a
    sample size). The result has one row per (``by``..., condition) with the
    columns ``mean``, ``sd`` (sample sd), ``n``, ``wins`` (pairs in which the
    condition beats the baseline), ``rel_change`` (the mean relative change
    :math:`\\Delta` of the module docstring; negative is better for errors) and
    ``rel_sd`` (its sample sd over the pairs).

    >>> df = pd.DataFrame({"condition": ["STL", "MTL"] * 2, "seed": [0, 0, 1, 1], "err": [1.0, 0.8, 2.0, 2.2]})
    >>> row = summarize(df, "err").loc["MTL"]
    >>> float(row["mean"]), int(row["wins"]), round(float(row["rel_change"]), 3)
    (1.5, 1, -0.05)
    """
    keys = [*by, *pair_on]
    missing = [c for c in [metric, condition, *keys] if c not in frame.columns]
    if missing:
        raise KeyError(f"summarize: no column(s) {missing}; the table has {list(frame.columns)}")
    base_rows = frame[frame[condition] == baseline]
    if base_rows.empty:
        known = list(dict.fromkeys(frame[condition]))
        raise ValueError(f"summarize: no row of the baseline condition {baseline!r}; the conditions are {known}")
    base = base_rows.set_index(keys)[metric]
    rows = []
    group_by = [*by, condition]
    for key, group in frame.groupby(group_by, sort=False):
        values = group[metric].to_numpy(dtype=float)
        reference = base.reindex(group.set_index(keys).index).to_numpy(dtype=float)
        better = values > reference if higher_is_better else values < reference
        relative = (values - reference) / reference
        row = dict(zip(group_by, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(
            mean=float(values.mean()),
            sd=sample_sd(values),
            n=len(values),
            wins=int(better.sum()),
            rel_change=float(relative.mean()),
            rel_sd=sample_sd(relative),
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index(group_by)


def report(
    frame: pd.DataFrame,
    metric: str,
    baseline: str = "STL",
    *,
    condition: str = "condition",
    pair_on: Sequence[str] = ("seed",),
    by: Sequence[str] = (),
    higher_is_better: bool = False,
    digits: int = 2,
) -> pd.DataFrame:
    """:func:`summarize` as a readable table: ``mean ± sd``, pairs that beat the baseline, the paired change.

    >>> acc = [0.8, 0.9, 0.7, 0.6, 0.9, 0.9]
    >>> df = pd.DataFrame({"condition": ["STL", "MTL"] * 3, "seed": [0, 0, 1, 1, 2, 2], "acc": acc})
    >>> report(df, "acc", higher_is_better=True).loc["MTL"].tolist()
    ['0.80 ± 0.17', '1/3', '-1% ± 13%']
    """
    table = summarize(
        frame, metric, baseline, condition=condition, pair_on=pair_on, by=by, higher_is_better=higher_is_better
    )
    out = pd.DataFrame(index=table.index)
    out[f"{metric} (mean ± sd)"] = [
        f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(table["mean"], table["sd"], strict=True)
    ]
    out[f"beats {baseline}"] = [f"{w}/{n}" for w, n in zip(table["wins"], table["n"], strict=True)]
    out[f"change vs {baseline}"] = [change_sd(r, s) for r, s in zip(table["rel_change"], table["rel_sd"], strict=True)]
    return out

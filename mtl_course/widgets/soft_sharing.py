r"""The soft-sharing explorer of lecture A3: move the penalty, watch the task networks merge.

Soft parameter sharing trains one column per task and adds
:math:`\lambda\,\Omega_{\ell_2} = \lambda \sum_{i<j}\lVert\theta_i - \theta_j\rVert_2^2`
to the loss (Duong et al., ACL 2015; see :mod:`mtl_course.models.soft_sharing`).
:math:`\lambda = 0` is single-task learning; a large :math:`\lambda` ties the
columns, which is hard sharing.

:class:`SoftSharingExplorer` shows, for a penalty strength chosen on a
log-scale slider (and, when the sweep has several, a task relatedness
:math:`\rho`), the relative distance between the task columns
(:func:`mtl_course.experiments.sharing.column_distance`) and each task's
validation error, next to single-task learning (:math:`\lambda = 0`) and
hard sharing. Nothing is trained on a slider move: the explorer reads a
precomputed sweep (:func:`mtl_course.experiments.sharing.sharing_sweep`),
averages it over seeds once, and interpolates linearly in
:math:`\log_{10}\lambda` between the trained strengths.

The slider's left end, one decade below the smallest trained
:math:`\lambda`, stands for :math:`\lambda = 0`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mtl_course.plots import PALETTE, task_colors
from mtl_course.widgets.base import Explorer

_HARD_COLOR = "#000000"


@dataclass(frozen=True)
class SoftSharingState:
    """What the view shows for one slider position.

    ``lam`` is 0 at the slider's left end; ``distance`` is the mean relative
    column distance over seeds; ``error``, ``stl`` and ``hard`` map each task
    to its mean validation (or test) MSE at ``lam``, for single-task learning
    and for hard sharing (``hard`` is empty when the sweep has no hard arm).
    """

    rho: float
    x: float
    lam: float
    distance: float
    error: dict[str, float]
    stl: dict[str, float]
    hard: dict[str, float]
    message: str


@dataclass(frozen=True)
class _Curves:
    """One relatedness level of the sweep, averaged over seeds, on the slider's axis."""

    x: np.ndarray  # slider positions: x[0] stands for lam = 0, then log10 of the trained lams
    lams: np.ndarray
    distance: np.ndarray
    error: dict[str, np.ndarray]
    hard: dict[str, float]
    seeds: int


class SoftSharingExplorer(Explorer):
    """Log-λ slider (and relatedness buttons) → distance between the task columns and each task's error.

    ``summary`` is the ``summary`` of a
    :func:`~mtl_course.experiments.sharing.sharing_sweep` (or its
    :class:`~mtl_course.experiments.engine.ExperimentResult` itself), with
    single-task runs (``lam = 0``), at least two soft-sharing strengths and,
    optionally, hard sharing, all at one training-set size.
    ``metric`` is ``"val"`` (validation MSE, the default) or ``"test"``.

    >>> from mtl_course.experiments.sharing import sharing_sweep
    >>> result = sharing_sweep(rhos=[1.0], n_train=8, lams=[0, 0.01, 1.0], seeds=[0], steps=20)
    >>> explorer = SoftSharingExplorer(result)
    >>> explorer.set(log10_lam=explorer.x_min).state.lam
    0.0
    >>> "single-task" in explorer.summary
    True
    """

    figsize = (8.4, 3.3)

    def __init__(self, summary: pd.DataFrame, metric: str = "val") -> None:
        summary = getattr(summary, "summary", summary)
        if metric not in ("val", "test"):
            raise ValueError(f"metric must be 'val' or 'test', got {metric!r}")
        missing = [c for c in ("method", "lam", "rho", "seed", "distance") if c not in summary.columns]
        if missing:
            raise ValueError(f"the sweep summary lacks the columns {missing}; pass sharing_sweep(...).summary")
        if "n_train" in summary.columns and summary["n_train"].nunique() > 1:
            raise ValueError(
                f"the sweep mixes training-set sizes {sorted(summary['n_train'].unique())}; select one, "
                "e.g. summary[summary.n_train == 32]"
            )
        prefix = f"{metric}_"
        self.tasks = [c[len(prefix) :] for c in summary.columns if c.startswith(prefix)]
        if not self.tasks:
            raise ValueError(f"the sweep summary has no per-task columns {prefix}<task>")
        self.metric = metric
        self.curves: dict[float, _Curves] = {}
        for rho, group in summary.groupby("rho"):
            self.curves[float(rho)] = self._curves(group, float(rho))
        first = next(iter(self.curves.values()))
        self.x_min, self.x_max = float(first.x[0]), float(first.x[-1])
        self.colors = task_colors(self.tasks)
        rhos = sorted(self.curves, reverse=True)
        slider = W.FloatSlider(
            value=float(np.round(np.median(first.x[1:]), 2)),
            min=self.x_min,
            max=self.x_max,
            step=0.05,
            description="log₁₀ λ",
            readout_format=".2f",
            continuous_update=True,
            layout=W.Layout(width="420px"),
        )
        controls: dict[str, W.ValueWidget] = {"log10_lam": slider}
        if len(rhos) > 1:
            controls["rho"] = W.ToggleButtons(
                options=[(f"ρ = {r:g}", r) for r in rhos],
                value=rhos[0],
                description="relatedness",
                style={"button_width": "64px"},
            )
        self._single_rho = rhos[0]
        super().__init__(controls, title="Soft sharing: move λ, watch the task networks merge")

    def _curves(self, group: pd.DataFrame, rho: float) -> _Curves:
        stl = group[(group["method"] == "stl") | ((group["method"] == "soft") & (group["lam"] == 0))]
        soft = group[(group["method"] == "soft") & (group["lam"] > 0)]
        hard = group[group["method"] == "hard"]
        lams = np.sort(soft["lam"].unique())
        if stl.empty or len(lams) < 2:
            raise ValueError(
                f"relatedness {rho:g}: the explorer needs single-task arms (lam = 0) and at least two positive "
                f"penalty strengths; got {len(stl)} single-task rows and strengths {lams.tolist()}"
            )
        if not np.all(np.isfinite(lams)):
            raise ValueError(f"penalty strengths must be finite, got {lams.tolist()}")
        columns = [f"{self.metric}_{t}" for t in self.tasks]
        by_lam = soft.groupby("lam")[[*columns, "distance"]].mean().loc[lams]
        stl_mean = stl[[*columns, "distance"]].mean()
        logs = np.log10(lams)
        x = np.concatenate([[logs[0] - 1.0], logs])
        table = pd.concat([stl_mean.to_frame().T, by_lam], ignore_index=True)
        if table.isna().to_numpy().any():
            raise ValueError(f"relatedness {rho:g}: the sweep has missing (NaN) errors or distances")
        error = {t: table[c].to_numpy(float) for t, c in zip(self.tasks, columns, strict=True)}
        hard_error = (
            {t: float(hard[c].mean()) for t, c in zip(self.tasks, columns, strict=True)} if not hard.empty else {}
        )
        return _Curves(
            x,
            np.concatenate([[0.0], lams]),
            table["distance"].to_numpy(float),
            error,
            hard_error,
            int(group["seed"].nunique()),
        )

    # -- the explorer ---------------------------------------------------------------
    def compute(self, log10_lam: float, rho: float | None = None) -> SoftSharingState:
        """Interpolate the seed means at ``log10_lam`` (clipped to the slider); the left end is λ = 0."""
        rho = self._single_rho if rho is None else min(self.curves, key=lambda r: abs(r - float(rho)))
        c = self.curves[rho]
        x = float(np.clip(log10_lam, c.x[0], c.x[-1])) if math.isfinite(log10_lam) else float(c.x[0])
        at_zero = x <= c.x[0] + 1e-9
        lam = 0.0 if at_zero else 10.0**x
        distance = float(np.interp(x, c.x, c.distance))
        error = {t: float(np.interp(x, c.x, c.error[t])) for t in self.tasks}
        stl = {t: float(c.error[t][0]) for t in self.tasks}
        if at_zero:
            message = (
                "λ = 0: no penalty, the task networks train independently: this is single-task learning "
                "(their distance stays that of two random initialisations)"
            )
        elif x >= c.x[-1] - 1e-9:
            message = (
                f"largest λ of the sweep: the columns are nearly tied (distance {distance:.2f}), "
                "close to hard sharing of the whole column"
            )
        elif x < c.x[1]:
            message = f"below the smallest trained λ ({c.lams[1]:g}): interpolated towards single-task learning"
        else:
            message = ""
        return SoftSharingState(rho, x, lam, distance, error, stl, dict(c.hard), message)

    def draw(self, state: SoftSharingState, fig: plt.Figure) -> str:
        c = self.curves[state.rho]
        ax_d, ax_e = fig.subplots(1, 2)
        ax_d.plot(c.x[1:], c.distance[1:], "o-", color=PALETTE[0], ms=4, label="soft sharing")
        ax_d.plot(c.x[:2], c.distance[:2], ":", color=PALETTE[0])
        ax_d.plot(c.x[0], c.distance[0], "s", color=PALETTE[0], ms=6, label="λ = 0 (STL)")
        if c.hard:
            ax_d.axhline(0.0, color=_HARD_COLOR, ls="--", lw=1, label="hard sharing (tied)")
        (distance_mark,) = ax_d.plot(state.x, state.distance, "o", color="k", ms=8, mfc="none", mew=2)
        error_marks = {}
        ax_d.set(
            xlabel="penalty strength λ (log scale)",
            ylabel="relative distance (1 = independent)",
            title="Distance between the task columns",
            ylim=(-0.05, 1.1),
        )
        ax_d.legend(loc="lower left", fontsize=7)
        for t in self.tasks:
            color = self.colors[t]
            ax_e.plot(c.x[1:], c.error[t][1:], "o-", color=color, ms=4, label=f"task {t}")
            ax_e.plot(c.x[:2], c.error[t][:2], ":", color=color)
            ax_e.plot(c.x[0], c.error[t][0], "s", color=color, ms=6)
            if c.hard:
                ax_e.axhline(c.hard[t], color=color, ls="--", lw=1)
            (error_marks[t],) = ax_e.plot(state.x, state.error[t], "o", color="k", ms=8, mfc="none", mew=2)
        name = "validation" if self.metric == "val" else "test"
        ax_e.set(
            xlabel="penalty strength λ (log scale)",
            ylabel=f"{name} MSE (target variance 1)",
            title=f"{name.capitalize()} error (dashed: hard sharing)",
        )
        ax_e.legend(loc="best", fontsize=7)
        ticks = [c.x[0], *range(math.ceil(c.x[1]), math.floor(c.x[-1]) + 1)]
        labels = ["0", *[f"{10.0**k:g}" for k in ticks[1:]]]
        lines = []
        for ax in (ax_d, ax_e):
            lines.append(ax.axvline(state.x, color="0.5", lw=0.8))
            ax.set_xlim(c.x[0] - 0.2, c.x[-1] + 0.2)
            ax.set_xticks(ticks, labels)
        fig.suptitle(f"Relatedness ρ = {state.rho:g}, mean over {c.seeds} seed(s)", fontsize=10)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.83, wspace=0.28)
        self._drawn_rho = state.rho
        self._marks = (distance_mark, error_marks, lines)
        self.moving_artists = [*lines, distance_mark, *error_marks.values()]
        return self._summary(state)

    def move(self, state: SoftSharingState) -> str | None:
        """A λ move shifts only the current-λ marks; a new ρ redraws the curves."""
        if state.rho != self._drawn_rho:
            return None
        distance_mark, error_marks, lines = self._marks
        for line in lines:
            line.set_xdata([state.x, state.x])
        distance_mark.set_data([state.x], [state.distance])
        for t, mark in error_marks.items():
            mark.set_data([state.x], [state.error[t]])
        return self._summary(state)

    def _summary(self, state: SoftSharingState) -> str:
        name = "validation" if self.metric == "val" else "test"
        errors = ", ".join(f"{t} {state.error[t]:.3f}" for t in self.tasks)
        stl = "/".join(f"{state.stl[t]:.3f}" for t in self.tasks)
        text = (
            f"ρ = {state.rho:g}, λ = {state.lam:.3g}: relative distance between the task columns "
            f"{state.distance:.2f}; {name} MSE {errors} (STL {stl}"
        )
        if state.hard:
            text += ", hard " + "/".join(f"{state.hard[t]:.3f}" for t in self.tasks)
        text += ")"
        return f"{text}. {state.message}." if state.message else text

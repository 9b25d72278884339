r"""The loss-weight tuner of lecture A6: move the :math:`\lambda_i`, watch the point move along the Pareto front.

A multi-task objective :math:`L_{\text{total}}(w) = \sum_i \lambda_i L_i(w)` has, for
every choice of weights, a minimiser :math:`w^\star(\lambda)`; its task losses
:math:`(L_1(w^\star), \dots, L_T(w^\star))` trace the Pareto front as the
weights move. :class:`LossWeightTuner` shows this for tasks with quadratic
losses (:class:`~mtl_course.data.toy_regression.QuadraticTasks`), for which

.. math:: w^\star(\lambda) = \Big(\sum_i \lambda_i A_i\Big)^{-1} \sum_i \lambda_i A_i c_i

is a :math:`d \times d` linear solve: a slider move costs microseconds of
arithmetic, and the view (the front with the current point, the parameter
plane with each task's loss contours, and per-task validation errors)
updates in well under 100 ms. One log-scale slider per task sets
:math:`\lambda_i \in [10^{-3}, 10^{3}]`; a check box switches a task off
(:math:`\lambda_i = 0`). *Reset* returns to :math:`\lambda = 1`.

*Retrain with fit* checks the closed form against real training: it calls the
retrain function the tuner was given (the view holds no training recipe; the
lecture passes :func:`mtl_course.experiments.loss_weighting.make_fit_retrainer`,
which trains the shared linear model with :func:`mtl_course.train.fit` and the
fixed weights), shows its progress, and marks where training ended (a cross)
next to the closed-form point.

Extreme inputs are reported in the summary, never raised: every task off
(all weights zero: every :math:`w` is optimal), a single task, equal weights
of any size (only ratios move the optimum), extreme ratios (practically
single-task training), a weight that is not a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from mtl_course.data.toy_regression import QuadraticTasks, TrainVal
from mtl_course.plots import PALETTE
from mtl_course.widgets.base import Explorer

#: ``retrain(weights, progress) -> w``: train with these weights, report ``progress(done, total)``.
Retrain = Callable[[Mapping[str, float], Callable[[int, int], None]], np.ndarray]

#: Weight ratios beyond this count as "practically single-task".
EXTREME_RATIO = 1e4


@dataclass(frozen=True)
class TunerState:
    """What the view shows for one setting of the controls.

    ``weights`` are the effective weights (0 for a task switched off);
    ``w`` the minimiser of the weighted loss (``None`` when every weight is
    zero); ``losses`` / ``val_losses`` the task losses there; ``retrained``
    the parameters :meth:`LossWeightTuner.retrain` found for exactly these
    weights, if it ran.
    """

    weights: dict[str, float]
    active: tuple[str, ...]
    w: np.ndarray | None
    losses: np.ndarray | None
    val_losses: np.ndarray | None
    retrained: np.ndarray | None
    message: str


class LossWeightTuner(Explorer):
    """Log-scale weight sliders → the weighted optimum on the Pareto front (closed form).

    ``train`` gives the task losses the weights trade off; ``val`` (same
    tasks and parameter space, optional) the per-task validation errors
    shown on the right. ``retrain`` (optional, see :data:`Retrain`) enables
    the *Retrain with fit* button; :meth:`from_regressions` builds everything
    from :func:`~mtl_course.data.toy_regression.make_conflicting_regressions`.

    >>> from mtl_course.data.toy_regression import make_conflicting_regressions
    >>> tuner = LossWeightTuner.from_regressions(make_conflicting_regressions(seed=0))
    >>> a = tuner.set(lam_t0=1.0, lam_t1=1.0).state.losses
    >>> b = tuner.set(lam_t0=10.0).state.losses
    >>> bool(b[0] < a[0] and b[1] > a[1])  # more weight on t0: t0's loss falls, t1's rises
    True
    >>> "all weights are zero" in tuner.set(use_t0=False, use_t1=False).summary.lower()
    True
    """

    figsize = (10.5, 3.3)

    def __init__(
        self,
        train: QuadraticTasks,
        val: QuadraticTasks | None = None,
        *,
        retrain: Retrain | None = None,
        log10_range: tuple[float, float] = (-3.0, 3.0),
        loss_label: str = "training loss",
        val_label: str = "validation MSE",
        title: str = "Loss weights: move λ, watch the optimum move along the Pareto front",
    ) -> None:
        for name in train.names:
            if not name.isidentifier():
                raise ValueError(f"task names must be Python identifiers to name the controls, got {name!r}")
        if val is not None and (val.names != train.names or val.dim != train.dim):
            raise ValueError(
                f"val must have the tasks {list(train.names)} and dimension {train.dim}, "
                f"got {list(val.names)} and {val.dim}"
            )
        lo, hi = log10_range
        if not lo < 0 < hi:
            raise ValueError(f"log10_range must contain 0 (λ = 1), got {log10_range}")
        self.problem, self.val = train, val
        self.names = tuple(train.names)
        self.log10_range = (float(lo), float(hi))
        self.loss_label, self.val_label = loss_label, val_label
        self._retrain_fn = retrain
        self._retrained: tuple[tuple[float, ...], np.ndarray] | None = None
        self._precompute()

        controls: dict[str, W.ValueWidget] = {}
        for task in self.names:
            controls[f"lam_{task}"] = W.FloatLogSlider(
                value=1.0,
                base=10,
                min=lo,
                max=hi,
                step=0.05,
                description=f"λ {task}",
                readout_format=".3g",
                continuous_update=True,
                layout=W.Layout(width="360px"),
            )
            controls[f"use_{task}"] = W.Checkbox(
                value=True, description=f"use {task}", indent=False, layout=W.Layout(width="110px")
            )
        self.reset_button = W.Button(description="Reset (λ = 1)", icon="undo")
        self.retrain_button = W.Button(
            description="Retrain with fit",
            icon="play",
            disabled=retrain is None,
            tooltip="train the model with these weights (mtl_course.train.fit) and mark where it ends",
        )
        self.progress = W.IntProgress(value=0, min=0, max=1, description="fit", layout=W.Layout(width="260px"))
        super().__init__(controls, title=title)
        self.reset_button.on_click(lambda _: self.reset())
        self.retrain_button.on_click(lambda _: self.retrain())
        rows = [W.HBox([controls[f"lam_{t}"], controls[f"use_{t}"]]) for t in self.names]
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        self.widget = W.VBox(
            [
                *header,
                *rows,
                W.HBox([self.reset_button, self.retrain_button, self.progress]),
                self.summary_label,
                self.image,
            ]
        )

    # -- construction helpers ---------------------------------------------------------
    @classmethod
    def from_regressions(cls, pair: TrainVal, retrain: Retrain | None = None, **kwargs: Any) -> LossWeightTuner:
        """A tuner for :func:`~mtl_course.data.toy_regression.make_conflicting_regressions` data.

        The front comes from the training split (the scaled losses), the
        validation errors from the validation split (unscaled MSE per task).
        ``retrain`` enables *Retrain with fit*; the lecture passes
        :func:`mtl_course.experiments.loss_weighting.make_fit_retrainer`, which
        trains the shared linear model with :func:`mtl_course.train.fit`.
        """
        train = QuadraticTasks.from_least_squares(pair.train)
        val = QuadraticTasks.from_least_squares(pair.val, loss_scales=[1.0] * train.n_tasks)
        kwargs.setdefault("loss_label", "training loss")
        kwargs.setdefault("val_label", "validation MSE")
        return cls(train, val, retrain=retrain, **kwargs)

    def _precompute(self) -> None:
        q = self.problem
        T = q.n_tasks
        self.optima_losses = q.optima()  # (T, T)
        self.equal_w = q.weighted_optimum(np.ones(T))
        self.equal_losses = q.losses(self.equal_w)
        lo, hi = self.log10_range
        if T == 2:
            span = max(abs(lo), abs(hi)) * 2
            ratios = np.logspace(-span, span, 161)
            weights = np.stack([ratios / (1 + ratios), 1 / (1 + ratios)], axis=1)
        elif T > 2:
            rng = np.random.default_rng(0)
            weights = 10 ** rng.uniform(lo, hi, size=(400, T))
        else:
            weights = np.ones((1, 1))
        self.sweep_w = np.stack([q.weighted_optimum(w) for w in weights])
        self.sweep_losses = q.losses(self.sweep_w)
        finite = self.sweep_losses[np.all(np.isfinite(self.sweep_losses), axis=1)]
        spread = finite.max(axis=0) / np.maximum(finite.min(axis=0), 1e-300)
        self.log_axes = bool(np.max(q.minima.max() / np.maximum(q.minima.min(), 1e-300)) > 30 or spread.max() > 1e3)
        # what single-task training of each task reaches on the validation data
        self.best_val = None if self.val is None else np.array([self.val.losses(c)[i] for i, c in enumerate(q.centers)])
        self.contours: list[list[np.ndarray]] = []
        if q.dim == 2:
            pts = np.vstack([q.centers, self.sweep_w])
            centre = pts.mean(axis=0)
            half = max(np.ptp(pts, axis=0).max() * 0.75, 0.5)
            self.plane_limits = (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)
            g = np.linspace(-1.0, 1.0, 60)
            X, Y = np.meshgrid(centre[0] + half * g, centre[1] + half * g)
            Z = q.losses(np.stack([X, Y], axis=-1))  # (60, 60, T)
            ax = Figure().add_subplot()
            for i in range(T):
                excess = Z[..., i] - q.minima[i]
                levels = np.quantile(excess, [0.03, 0.12, 0.3, 0.6])
                cs = ax.contour(X, Y, excess, levels=np.unique(levels))
                self.contours.append([seg for segs in cs.allsegs for seg in segs])

    # -- the explorer contract ------------------------------------------------------------
    def compute(self, **values: float) -> TunerState:
        notes = []
        weights: dict[str, float] = {}
        for task in self.names:
            lam = float(values.get(f"lam_{task}", 1.0))
            use = bool(values.get(f"use_{task}", True))
            if not math.isfinite(lam) or lam < 0:
                notes.append(f"λ {task} = {lam} is not a valid weight, so {task} is treated as switched off")
                use = False
            weights[task] = lam if use else 0.0
        active = tuple(t for t in self.names if weights[t] > 0)
        T = len(self.names)
        if not active:
            notes.insert(
                0,
                "all weights are zero (every task switched off): L_total ≡ 0, so every parameter "
                "vector is optimal and there is no point to show; switch a task back on",
            )
            return TunerState(weights, active, None, None, None, None, "; ".join(notes))
        lam = np.array([weights[t] for t in self.names])
        w = self.problem.weighted_optimum(lam)
        losses = self.problem.losses(w)
        val_losses = None if self.val is None else self.val.losses(w)
        values_active = np.array([weights[t] for t in active])
        if T == 1:
            notes.insert(
                0,
                "a single task: its weight only rescales the loss (and, with plain SGD, the step "
                "size); the optimum does not move",
            )
        elif len(active) == 1:
            notes.insert(
                0,
                f"only {active[0]} has a weight: this is single-task training of {active[0]}; the "
                "other tasks get whatever its optimum gives them",
            )
        else:
            ratio = values_active.max() / values_active.min()
            if ratio <= 1 + 1e-9 and not math.isclose(values_active[0], 1.0, rel_tol=1e-6):
                notes.insert(
                    0,
                    f"all weights equal {values_active[0]:.3g}: only ratios move the optimum, so this "
                    f"is the point of λ = 1, but L_total and its gradient are {values_active[0]:.3g}× "
                    "larger (with plain SGD, so is the step)",
                )
            elif ratio >= EXTREME_RATIO:
                top = active[int(np.argmax(values_active))]
                notes.insert(0, f"weight ratio {ratio:.0e}: practically single-task training of {top}")
        retrained = None
        if self._retrained is not None and self._retrained[0] == tuple(lam):
            retrained = self._retrained[1]
        return TunerState(weights, active, w, losses, val_losses, retrained, "; ".join(notes))

    def draw(self, state: TunerState, fig: Figure) -> str:
        """Build the three panels on ``fig`` (static parts once), then show ``state``."""
        q = self.problem
        colors = [PALETTE[i % len(PALETTE)] for i in range(q.n_tasks)]
        ax_front, ax_plane, ax_val = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.15, 1.0, 0.85]})
        fig.subplots_adjust(left=0.07, right=0.975, bottom=0.17, top=0.86, wspace=0.42)
        self._artists: dict[str, Any] = {}
        self._build_front(ax_front)
        if q.dim == 2:
            self._build_plane(ax_plane, colors)
        else:
            ax_plane.set_axis_off()
            ax_plane.text(
                0.5,
                0.5,
                f"parameter space has {q.dim} dimensions:\nno plane to draw",
                ha="center",
                va="center",
                transform=ax_plane.transAxes,
            )
        self._build_metrics(ax_val, colors)
        self.moving_artists = self._dynamic()
        return self._refresh(state)

    def move(self, state: TunerState) -> str:
        """A slider move redraws only the markers and bars (see :meth:`Explorer.move`)."""
        return self._refresh(state)

    def _dynamic(self) -> list[Any]:
        a = self._artists
        moving = [a[k] for k in ("front_point", "front_fit", "plane_point", "plane_fit", "no_model") if k in a]
        return moving + list(a["bars"]) + [a["best_marks"]]

    # -- drawing ---------------------------------------------------------------------------
    def _build_front(self, ax: plt.Axes) -> None:
        q = self.problem
        a = self._artists
        if q.n_tasks == 1:
            ax.axhline(q.minima[0], color=PALETTE[0], lw=1.5)
            (a["front_point"],) = ax.plot([], [], "o", color="k")
            (a["front_fit"],) = ax.plot([], [], "x", color=PALETTE[4], ms=10, mew=2)
            ax.set(
                xticks=[], xlim=(0, 1), ylabel=f"L {self.names[0]} ({self.loss_label})", title="One task: no trade-off"
            )
            self._front_axes = (0, None)
            return
        i, j = 0, 1
        L = self.sweep_losses
        if q.n_tasks == 2:
            ax.plot(L[:, 0], L[:, 1], color="0.45", lw=1.6, label="Pareto front")
            title = "Pareto front of the task losses"
        else:
            ax.plot(L[:, i], L[:, j], ".", color="0.7", ms=3, label="optima of random λ")
            title = f"Trade-off, {self.names[i]} vs {self.names[j]} (projection)"
        ax.plot(
            self.optima_losses[:, i], self.optima_losses[:, j], "*", color=PALETTE[2], ms=9, label="single-task optima"
        )
        ax.plot(self.equal_losses[i], self.equal_losses[j], "o", mfc="none", mec=PALETTE[3], ms=8, label="λ = 1")
        (a["front_point"],) = ax.plot([], [], "o", color="k", ms=6, label="current λ")
        (a["front_fit"],) = ax.plot([], [], "x", color=PALETTE[4], ms=10, mew=2, label="retrained (fit)")
        if self.log_axes:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set(
            xlabel=f"L {self.names[i]} ({self.loss_label})",
            ylabel=f"L {self.names[j]} ({self.loss_label})",
            title=title,
        )
        ax.legend(fontsize=9, loc="upper right", handlelength=1.2, borderaxespad=0.2)
        self._front_axes = (i, j)

    def _build_plane(self, ax: plt.Axes, colors: list[str]) -> None:
        q = self.problem
        a = self._artists
        for k, segments in enumerate(self.contours):
            ax.add_collection(LineCollection(segments, colors=colors[k], linewidths=0.8, alpha=0.8))
        if q.n_tasks == 2:
            ax.plot(self.sweep_w[:, 0], self.sweep_w[:, 1], color="0.45", lw=1.6)
        for k, c in enumerate(q.centers):
            ax.plot(c[0], c[1], "*", color=colors[k], ms=10, mec="k", mew=0.5)
            ax.annotate(self.names[k], c, textcoords="offset points", xytext=(5, 4), fontsize=9, color=colors[k])
        (a["plane_point"],) = ax.plot([], [], "o", color="k", ms=6)
        (a["plane_fit"],) = ax.plot([], [], "x", color=PALETTE[4], ms=10, mew=2)
        x0, x1, y0, y1 = self.plane_limits
        ax.set(
            xlim=(x0, x1),
            ylim=(y0, y1),
            xlabel="w₁ (shared parameter)",
            ylabel="w₂ (shared parameter)",
            title="Parameter plane: contours per task",
        )
        ax.set_aspect("equal", adjustable="box")

    def _build_metrics(self, ax: plt.Axes, colors: list[str]) -> None:
        a = self._artists
        label = self.val_label if self.val is not None else self.loss_label
        best = self.best_val if self.val is not None else self.problem.minima
        y = np.arange(len(self.names))
        a["bars"] = ax.barh(y, np.zeros(len(y)), color=colors, height=0.6)
        (a["best_marks"],) = ax.plot(best, y, "|", color="k", ms=16, mew=2)
        a["no_model"] = ax.text(
            0.5, 0.5, "no model:\nall weights are zero", ha="center", va="center", transform=ax.transAxes, visible=False
        )
        worst = self.sweep_losses if self.val is None else self.val.losses(self.sweep_w)
        finite = worst[np.all(np.isfinite(worst), axis=1)]
        high = float(np.max(finite)) if finite.size else 1.0
        if self.log_axes:
            ax.set_xscale("log")
            ax.set_xlim(float(np.min(best)) / 2, high * 2)
        else:
            ax.set_xlim(0, high * 1.08)
        ax.set(
            yticks=y,
            yticklabels=self.names,
            xlabel=f"{label} (task units²)",
            title=f"{label[:1].upper()}{label[1:]} (| single-task)",
        )
        ax.set_ylim(len(y) - 0.4, -0.6)

    def _refresh(self, state: TunerState) -> str:
        """Move the dynamic artists to ``state`` and return the summary."""
        a = self._artists
        i, j = self._front_axes
        if state.losses is None:
            for name in ("front_point", "front_fit", "plane_point", "plane_fit"):
                if name in a:
                    a[name].set_data([], [])
            for bar in a["bars"]:
                bar.set_width(0.0)
            a["no_model"].set_visible(True)
            return self._summary(state)
        y_value = state.losses[j] if j is not None else state.losses[0]
        x_value = state.losses[i] if j is not None else 0.5
        a["front_point"].set_data([x_value], [y_value])
        if "plane_point" in a:
            a["plane_point"].set_data([state.w[0]], [state.w[1]])
        if state.retrained is not None:
            fitted = self.problem.losses(state.retrained)
            a["front_fit"].set_data([fitted[i] if j is not None else 0.5], [fitted[j] if j is not None else fitted[0]])
            if "plane_fit" in a:
                a["plane_fit"].set_data([state.retrained[0]], [state.retrained[1]])
        else:
            a["front_fit"].set_data([], [])
            if "plane_fit" in a:
                a["plane_fit"].set_data([], [])
        current = state.val_losses if self.val is not None else state.losses
        for bar, value in zip(a["bars"], current, strict=True):
            bar.set_width(float(value))
        a["no_model"].set_visible(False)
        return self._summary(state)

    # -- text -------------------------------------------------------------------------------
    def _summary(self, state: TunerState) -> str:
        lam = ", ".join(f"{t}: {_fmt(state.weights[t])}" for t in self.names)
        if state.w is None:
            return f"λ = ({lam}). {_capital(state.message)}."
        losses = ", ".join(f"{t} {_fmt(v)}" for t, v in zip(self.names, state.losses, strict=True))
        text = f"λ = ({lam}) → {self.loss_label}: {losses}"
        if state.val_losses is not None:
            text += (
                "; "
                + self.val_label
                + ": "
                + ", ".join(f"{t} {_fmt(v)}" for t, v in zip(self.names, state.val_losses, strict=True))
            )
        if state.retrained is not None:
            gap = float(np.linalg.norm(state.retrained - state.w))
            text += f"; retrained with fit: ‖w_fit − w*‖ = {gap:.1e}"
        return f"{text}. {_capital(state.message)}." if state.message else text

    # -- buttons ----------------------------------------------------------------------------
    def reset(self) -> LossWeightTuner:
        """Every weight back to 1 and every task on (the *Reset* button)."""
        values: dict[str, float | bool] = {}
        for task in self.names:
            values[f"lam_{task}"] = 1.0
            values[f"use_{task}"] = True
        return self.set(**values)

    def retrain(self) -> LossWeightTuner:
        """Train with the current weights (the *Retrain with fit* button) and mark where training ends."""
        state = self.compute(**self.values)
        if self._retrain_fn is None:
            self.summary_label.value = "<code>no retraining function was given to this tuner</code>"
            return self
        if state.w is None:
            self.update()
            return self
        lam = tuple(state.weights[t] for t in self.names)

        def progress(done: int, total: int) -> None:
            self.progress.max = max(total, 1)
            self.progress.value = min(done, total)

        self.retrain_button.disabled = True
        try:
            w = np.asarray(self._retrain_fn(dict(state.weights), progress), dtype=float)
        finally:
            self.retrain_button.disabled = False
        self._retrained = (lam, w)
        self.update()
        return self


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]

r"""The λ explorer of lecture A1: move the penalty, watch the lasso select features.

:class:`LassoExplorer` precomputes one lasso path (:func:`mtl_course.linear.lasso_path`)
on a training set when it is built; a slider move only looks up the nearest
``alpha`` on that path and redraws (well under 100 ms). The view shows the
coefficient path with the current ``alpha`` marked, which features are
selected, and the validation error along the path.

The slider is :math:`\log_{10}\alpha` in scikit-learn's scaling
(:math:`\frac{1}{2n}\|y - X\beta\|^2 + \alpha\|\beta\|_1`); the summary also
gives the lecture's :math:`\lambda = 2n\alpha`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from mtl_course.data.tasks import MultiTaskData
from mtl_course.linear import LassoPath, alpha_max, lambda_from_alpha, lasso_path
from mtl_course.plots import PALETTE
from mtl_course.widgets.base import Explorer

#: Line colours: the course palette without its pale yellow, plus black (Wong 2011).
LINE_COLORS: tuple[str, ...] = tuple(c for c in PALETTE if c != "#ece133") + ("#000000",)


@dataclass(frozen=True)
class LassoState:
    """What the view shows for one slider position (index ``k`` on the precomputed path)."""

    k: int
    alpha: float
    coef: np.ndarray
    selected: tuple[str, ...]
    val_mse: float
    message: str


class LassoExplorer(Explorer):
    """Log-α slider → coefficient path, selected features and validation error.

    ``X_train`` (n, p) and ``y_train`` (n,) fit the path; ``X_val`` and
    ``y_val`` score it. ``n_alphas`` values are log-spaced from
    :func:`~mtl_course.linear.alpha_max` down to ``eps * alpha_max``.
    :meth:`from_data` reads all of it from two data sets of
    :mod:`mtl_course.data.linear_tasks`.

    >>> from mtl_course.data.linear_tasks import load_diabetes_tasks, random_split
    >>> train, val = random_split(load_diabetes_tasks(), 300, seed=0)
    >>> explorer = LassoExplorer.from_data(train, val)
    >>> explorer.set(log10_alpha=explorer.log10_alpha_max).state.selected
    ()
    >>> explorer.set(log10_alpha=0.0).state.selected
    ('bmi', 'bp', 's5')
    """

    figsize = (8.0, 3.2)

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        feature_names: Sequence[str],
        n_alphas: int = 50,
        eps: float = 1e-3,
        tol: float = 1e-8,
    ) -> None:
        y_train, y_val = np.asarray(y_train, dtype=float), np.asarray(y_val, dtype=float)
        if y_train.ndim != 1 or y_val.ndim != 1:
            raise ValueError(f"need one task: y_train and y_val of shape (n,), got {y_train.shape} and {y_val.shape}")
        if len(feature_names) != np.shape(X_train)[1]:
            raise ValueError(f"{len(feature_names)} feature names for X_train of shape {np.shape(X_train)}")
        self.feature_names = tuple(feature_names)
        self.n_train = len(y_train)
        self.alpha_max = alpha_max(X_train, y_train)
        self.path: LassoPath = lasso_path(X_train, y_train, n_alphas=n_alphas, eps=eps, tol=tol)
        self.val_mse = np.mean((self.path.predict(X_val) - y_val) ** 2, axis=1)
        self.log_alphas = np.log10(self.path.alphas)
        self.log10_alpha_max = float(self.log_alphas[0])
        slider = W.FloatSlider(
            value=float(np.median(self.log_alphas)),
            min=float(self.log_alphas[-1]),
            max=self.log10_alpha_max,
            step=float((self.log_alphas[0] - self.log_alphas[-1]) / (n_alphas - 1)),
            description="log₁₀ α",
            readout_format=".2f",
            continuous_update=True,
            layout=W.Layout(width="480px"),
        )
        super().__init__({"log10_alpha": slider}, title="The lasso path: move α, watch features leave the model")

    @classmethod
    def from_data(
        cls, train: MultiTaskData, val: MultiTaskData, task: str | None = None, **kwargs: Any
    ) -> LassoExplorer:
        """An explorer for ``task`` (default: the only task) of a training and a validation set.

        Both are :class:`~mtl_course.data.tasks.MultiTaskData` with inputs
        ``x`` (n, p) and ``info["feature_names"]``, as the generators of
        :mod:`mtl_course.data.linear_tasks` make them.
        """
        if task is None:
            if len(train.tasks) != 1:
                raise ValueError(f"name the task to explore: the data have the tasks {list(train.tasks)}")
            (task,) = train.tasks
        names = train.info["feature_names"]
        return cls(train.x, train.targets[task], val.x, val.targets[task], names, **kwargs)

    def compute(self, log10_alpha: float) -> LassoState:
        """Look up the path at the grid ``alpha`` nearest to ``10 ** log10_alpha``."""
        k = int(np.argmin(np.abs(self.log_alphas - log10_alpha)))
        coef = self.path.coefs[k]
        selected = tuple(name for name, c in zip(self.feature_names, coef, strict=True) if c != 0)
        if not selected:
            message = (
                f"α ≥ α_max = ‖Xᵀy‖∞/n = {self.alpha_max:.3g}: all coefficients are zero, "
                "the model predicts the training mean"
            )
        elif k == len(self.log_alphas) - 1:
            message = "smallest α on the grid: the fit is close to least squares"
        else:
            message = ""
        return LassoState(k, float(self.path.alphas[k]), coef, selected, float(self.val_mse[k]), message)

    def draw(self, state: LassoState, fig: plt.Figure) -> str:
        ax_path, ax_val = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        label_y = _spread(self.path.coefs[-1], min_gap=0.045 * np.ptp(self.path.coefs))
        self._lines = []
        for j, name in enumerate(self.feature_names):
            color = LINE_COLORS[j % len(LINE_COLORS)]
            (line,) = ax_path.plot(self.log_alphas, self.path.coefs[:, j], color=color)
            self._lines.append(line)
            ax_path.text(self.log_alphas[-1] - 0.05, label_y[j], name, ha="right", va="center", fontsize=9, color=color)
        self._marker = ax_path.axvline(np.log10(state.alpha), color="k", ls="--", lw=1)
        ax_path.axhline(0, color="0.6", lw=0.6)
        ax_path.set(xlabel="log₁₀ α (penalty strength)", ylabel="coefficient βⱼ (units of y)")
        ax_path.set_xlim(self.log_alphas[-1] - 0.45, self.log_alphas[0] + 0.05)
        self._title = ax_path.title
        best = int(np.argmin(self.val_mse))
        ax_val.plot(self.log_alphas, self.val_mse, color=PALETTE[0])
        ax_val.plot(self.log_alphas[best], self.val_mse[best], "*", color=PALETTE[2], ms=10, label="best on validation")
        (self._dot,) = ax_val.plot(np.log10(state.alpha), state.val_mse, "o", color="k", label="current α")
        ax_val.set(xlabel="log₁₀ α (penalty strength)", ylabel="validation MSE (units of y²)", title="Validation error")
        ax_val.legend(loc="upper left", fontsize=9)
        fig.subplots_adjust(
            left=0.11, right=0.98, bottom=0.16, top=0.9, wspace=0.34
        )  # fixed: tight_layout costs ~40 ms
        self.moving_artists = [*self._lines, self._marker, self._dot, self._title]
        return self.move(state)

    def move(self, state: LassoState) -> str:
        """A slider move changes only the current-α marks, the selected paths' weight and the title."""
        for j, line in enumerate(self._lines):
            active = state.coef[j] != 0
            line.set_linewidth(1.8 if active else 1.0)
            line.set_alpha(1.0 if active else 0.35)
        x = np.log10(state.alpha)
        self._marker.set_xdata([x, x])
        self._dot.set_data([x], [state.val_mse])
        self._title.set_text(f"Coefficient path: {len(state.selected)} of {len(self.feature_names)} selected")
        return self._summary(state)

    def _summary(self, state: LassoState) -> str:
        lam = lambda_from_alpha(state.alpha, self.n_train)
        names = ", ".join(state.selected) if state.selected else "none"
        text = (
            f"α = {state.alpha:.3g} (λ = 2nα = {lam:.3g}): {len(state.selected)} of "
            f"{len(self.feature_names)} features selected ({names}); validation MSE {state.val_mse:.1f}"
        )
        return f"{text}. {state.message}." if state.message else text


def _spread(values: np.ndarray, min_gap: float) -> np.ndarray:
    """Label positions near ``values``, pushed apart (in sorted order) to at least ``min_gap``."""
    order = np.argsort(values)
    placed = values[order].astype(float)
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + min_gap)
    placed -= (placed - values[order]).mean()  # re-centre the block of labels
    out = np.empty_like(placed)
    out[order] = placed
    return out

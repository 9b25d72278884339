"""CAGrad: conflict-averse gradient descent.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021, arXiv 2110.14048. With ``g_0`` the average gradient,
the update maximises the worst task improvement in a ball around ``g_0``:

    max_d min_i g_i . d    s.t.  ||d - g_0|| <= c ||g_0||.

Its dual (Section 3) is a problem over the simplex,

    min_w  F(w) = g_w . g_0 + c ||g_0|| ||g_w||,   g_w = sum_i w_i g_i,

and the update is ``d = g_0 + (c ||g_0|| / ||g_w||) g_w``, divided by
``1 + c^2`` (the official code's default ``rescale=1``). As in the official
code the dual is solved with SciPy's SLSQP from ``w = 1/T``; ``d`` is on the
scale of the *average* task gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting, Target


def cagrad_dual(w: np.ndarray, gram: np.ndarray, c: float) -> float:
    """``F(w) = g_w . g_0 + c ||g_0|| ||g_w||`` computed from the Gram matrix."""
    n = gram.shape[0]
    g0_norm = np.sqrt(gram.sum()) / n
    return float(w @ gram @ np.full(n, 1.0 / n) + c * g0_norm * np.sqrt(max(w @ gram @ w, 0.0)))


def cagrad_coefficients(w: torch.Tensor, gram: torch.Tensor, c: float, rescale: bool = True) -> torch.Tensor:
    """Coefficients of ``d = (g_0 + c ||g_0|| / ||g_w|| g_w) / (1 + c^2)`` for the dual solution ``w``.

    >>> cagrad_coefficients(torch.tensor([0.5, 0.5]), torch.eye(2), c=0.0).tolist()
    [0.5, 0.5]
    """
    n = gram.shape[0]
    g0_norm = gram.sum().sqrt() / n
    gw_norm = (w @ gram @ w).clamp_min(0).sqrt()
    coefficients = torch.full((n,), 1.0 / n, dtype=gram.dtype) + c * g0_norm / (gw_norm + 1e-12) * w
    return coefficients / (1.0 + c**2) if rescale else coefficients


@register("cagrad")
class CAGrad(GradientWeighting):
    """CAGrad with radius ``c`` (default 0.5; ``c = 0`` is plain averaging)."""

    def __init__(
        self, tasks: Sequence[str], c: float = 0.5, rescale: bool = True, *, on: Target = "parameters"
    ) -> None:
        super().__init__(tasks, on=on)
        if c < 0:
            raise ValueError(f"CAGrad's c must be non-negative, got {c}")
        self.c = float(c)
        self.rescale = rescale

    def solve_dual(self, gram: torch.Tensor) -> torch.Tensor:
        """``argmin_{w in simplex} F(w)`` with SciPy's SLSQP, as in the official code."""
        from scipy.optimize import minimize

        a = gram.numpy()
        n = a.shape[0]
        result = minimize(
            cagrad_dual,
            np.full(n, 1.0 / n),
            args=(a, self.c),
            bounds=[(0.0, 1.0)] * n,
            constraints=({"type": "eq", "fun": lambda w: 1.0 - w.sum()},),
        )
        return torch.from_numpy(result.x).to(gram.dtype)

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return cagrad_coefficients(self.solve_dual(gram), gram, self.c, self.rescale)

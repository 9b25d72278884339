"""CAGrad: conflict-averse gradient descent.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021, arXiv 2110.14048, Section 3 and the official code
(github.com/Cranial-XIX/CAGrad). :func:`cagrad_dual` is the dual objective,
:func:`cagrad_coefficients` the update, :class:`CAGrad` the method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting, Target


def cagrad_dual(w: np.ndarray, gram: np.ndarray, c: float) -> float:
    r"""The dual objective of CAGrad (Liu et al., NeurIPS 2021, arXiv 2110.14048, Section 3).

    CAGrad looks for the update that maximises the worst task's improvement
    in a ball around the average gradient :math:`g_0 = \frac1T \sum_i g_i`,

    .. math:: \max_d \min_i\, g_i \cdot d \quad \text{s.t.} \quad \|d - g_0\| \le c\,\|g_0\| .

    Its dual is a problem over the simplex of weights :math:`w`,

    .. math:: \min_w F(w) = g_w \cdot g_0 + c\,\|g_0\|\,\|g_w\|, \qquad g_w = \sum_i w_i g_i,

    computed here from the Gram matrix :math:`G` alone
    (:math:`g_w \cdot g_0 = w^\top G \mathbf 1 / T`, :math:`\|g_w\|^2 = w^\top G w`).

    >>> cagrad_dual(np.array([1.0, 0.0]), np.eye(2), c=0.0)  # g_w = g_1, g_0 = (g_1 + g_2)/2
    0.5
    """
    n = gram.shape[0]
    g0_norm = np.sqrt(gram.sum()) / n
    return float(w @ gram @ np.full(n, 1.0 / n) + c * g0_norm * np.sqrt(max(w @ gram @ w, 0.0)))


def cagrad_coefficients(w: torch.Tensor, gram: torch.Tensor, c: float, rescale: bool = True) -> torch.Tensor:
    r"""Coefficients of the CAGrad update for the dual solution :math:`w` (:func:`cagrad_dual`).

    .. math:: d = \frac{1}{1 + c^2}\Big(g_0 + \frac{c\,\|g_0\|}{\|g_w\|}\, g_w\Big)

    (Liu et al., NeurIPS 2021, arXiv 2110.14048). The division by
    :math:`1 + c^2` is the official code's default ``rescale=1``;
    ``rescale=False`` leaves it out (the paper's :math:`d`). Either way
    :math:`d` is on the scale of the *average* task gradient.

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
    r"""CAGrad (Liu et al., NeurIPS 2021, arXiv 2110.14048) with radius ``c`` (default 0.5; 0 is plain averaging).

    Solves the dual :func:`cagrad_dual` with SciPy's SLSQP from
    :math:`w = 1/T`, as the official code does, and applies the update of
    :func:`cagrad_coefficients`.
    """

    def __init__(
        self, tasks: Sequence[str], c: float = 0.5, rescale: bool = True, *, on: Target = "parameters"
    ) -> None:
        super().__init__(tasks, on=on)
        if c < 0:
            raise ValueError(f"CAGrad's c must be non-negative, got {c}")
        self.c = float(c)
        self.rescale = rescale

    def solve_dual(self, gram: torch.Tensor) -> torch.Tensor:
        r""":math:`\arg\min_{w \in \Delta} F(w)` on the simplex :math:`\Delta`, by SLSQP as in the official code."""
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

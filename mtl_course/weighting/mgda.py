"""MGDA and MGDA-UB: the min-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018, arXiv 1810.04650. The common descent direction is

    min_{alpha in simplex} || sum_t alpha_t g_t ||^2                  (eq. 3)

* Two tasks (Algorithm 1), with ``alpha`` weighting ``g_1``:
  ``alpha = clip_[0,1]( (g_2 - g_1)^T g_2 / ||g_1 - g_2||^2 )``.
* ``T > 2`` (Algorithm 2): Frank--Wolfe; each step moves towards the vertex
  ``e_t`` with ``t = argmin_r (G alpha)_r`` by the exact two-element line
  search of Algorithm 1 (start: see :func:`min_norm_element`).
* MGDA-UB (Section 3.3) solves the same problem for the gradients with
  respect to the shared representation ``z`` instead of the shared weights.

Gradient normalisation (``normalization``) follows the official code
(github.com/isl-org/MultiObjectiveOptimization, ``gradient_normalizers``),
where it is marked "optional and not included in the paper": the solver sees
``g_t / n_t`` with ``n_t`` = 1 (``'none'``, the default and the paper),
``||g_t||`` (``'l2'``), ``L_t`` (``'loss'``) or ``L_t ||g_t||`` (``'loss+'``),
and, as in that code, the resulting ``alpha`` then weights the *unnormalised*
losses (the update is ``sum_t alpha_t g_t``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting

Normalization = Literal["none", "l2", "loss", "loss+"]
NORMALIZATIONS: tuple[str, ...] = ("none", "l2", "loss", "loss+")


def min_norm_two(v11: float, v12: float, v22: float) -> float:
    """``argmin_{gamma in [0,1]} ||gamma a + (1 - gamma) b||^2`` from ``a.a``, ``a.b``, ``b.b``.

    The closed form ``clip((b - a).b / ||a - b||^2, 0, 1)`` of Algorithm 1;
    for ``a == b`` every ``gamma`` is optimal and 0.5 is returned.

    >>> min_norm_two(1.0, 0.0, 1.0)  # orthogonal unit vectors: the midpoint
    0.5
    >>> min_norm_two(1.0, 2.0, 4.0)  # b = 2a: all weight on a
    1.0
    """
    denominator = v11 - 2.0 * v12 + v22
    if denominator <= 1e-12 * max(v11, v22, 1e-30):
        return 0.5
    return min(max((v22 - v12) / denominator, 0.0), 1.0)


def _best_pair(gram: torch.Tensor) -> torch.Tensor:
    """The min-norm point over all edges ``[e_i, e_j]`` of the simplex (two-task closed forms)."""
    n = gram.shape[0]
    best, best_value = None, float("inf")
    for i in range(n):
        for j in range(i + 1, n):
            gamma = min_norm_two(float(gram[i, i]), float(gram[i, j]), float(gram[j, j]))
            value = gamma**2 * gram[i, i] + 2 * gamma * (1 - gamma) * gram[i, j] + (1 - gamma) ** 2 * gram[j, j]
            if value < best_value:
                best = torch.zeros(n, dtype=gram.dtype)
                best[i], best[j] = gamma, 1.0 - gamma
                best_value = float(value)
    return best


def min_norm_element(
    gram: torch.Tensor, max_iter: int = 250, tol: float = 1e-6, init: Literal["pair", "uniform"] = "pair"
) -> torch.Tensor:
    """Weights ``alpha`` on the simplex minimising ``alpha^T G alpha`` for a Gram matrix ``G``.

    Closed form for two tasks, Frank--Wolfe (Algorithm 2) for more. The
    paper starts Frank--Wolfe at ``alpha = 1/T`` (``init="uniform"``); the
    official code, and the default here, at the best two-task solution
    (``init="pair"``). Frank--Wolfe removes weight from a vertex only
    at rate ``O(1/k)``, so from ``1/T`` a task that should get weight 0 keeps
    about ``1/k`` after ``k`` iterations; starting from a pair avoids most of that.

    >>> g = torch.tensor([[1.0, 0.0], [0.0, 4.0]])  # g_1 = e_1, g_2 = 2 e_2
    >>> [round(a, 4) for a in min_norm_element(g).tolist()]
    [0.8, 0.2]
    """
    n = gram.shape[0]
    if n == 1:
        return torch.ones(1, dtype=gram.dtype)
    if n == 2:
        gamma = min_norm_two(float(gram[0, 0]), float(gram[0, 1]), float(gram[1, 1]))
        return torch.tensor([gamma, 1.0 - gamma], dtype=gram.dtype)
    if init not in ("pair", "uniform"):
        raise ValueError(f"init must be 'pair' or 'uniform', got {init!r}")
    alpha = _best_pair(gram) if init == "pair" else torch.full((n,), 1.0 / n, dtype=gram.dtype)
    for _ in range(max_iter):
        g_alpha = gram @ alpha
        t = int(torch.argmin(g_alpha))
        gamma = min_norm_two(float(gram[t, t]), float(g_alpha[t]), float(alpha @ g_alpha))
        vertex = torch.zeros_like(alpha)
        vertex[t] = 1.0
        step = gamma * (vertex - alpha)
        alpha = alpha + step
        if float(step.abs().sum()) < tol:
            break
    return alpha


def gradient_normalizers(gram: torch.Tensor, losses: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """The ``n_t`` of the official code's ``gradient_normalizers``.

    >>> gradient_normalizers(torch.diag(torch.tensor([4.0, 9.0])), torch.tensor([2.0, 0.5]), "loss+").tolist()
    [4.0, 1.5]
    """
    norms = gram.diagonal().sqrt()
    if normalization == "none":
        return torch.ones_like(losses)
    if normalization == "l2":
        return norms
    if normalization == "loss":
        return losses
    if normalization == "loss+":
        return losses * norms
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


@register("mgda")
class MGDA(GradientWeighting):
    """MGDA with the Frank--Wolfe min-norm solver on the shared parameters (or on ``z``).

    >>> MGDA(["a", "b"]).combine(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), torch.ones(2)).tolist()
    [0.5, 0.5]
    """

    def __init__(
        self,
        tasks: Sequence[str],
        normalization: Normalization = "none",
        max_iter: int = 250,
        *,
        on: Literal["parameters", "representation"] = "parameters",
    ) -> None:
        super().__init__(tasks, on=on)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.normalization = normalization
        self.max_iter = max_iter

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        n = gradient_normalizers(gram, losses, self.normalization)
        return min_norm_element(gram / torch.outer(n, n), max_iter=self.max_iter)


@register("mgda_ub")
def mgda_ub(tasks: Sequence[str], normalization: Normalization = "none", max_iter: int = 250) -> MGDA:
    """MGDA-UB: MGDA on the gradients with respect to the shared representation ``z``."""
    return MGDA(tasks, normalization, max_iter, on="representation")

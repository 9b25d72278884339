"""MGDA and MGDA-UB: the min-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018, arXiv 1810.04650. :func:`min_norm_two` is the two-task closed
form (Algorithm 1), :func:`min_norm_element` the general solver (Algorithm 2),
:class:`MGDA` the method on the shared parameters and :func:`mgda_ub` the one
on the shared representation (Section 3.3).

Gradient normalisation (``normalization``) follows the official code
(github.com/isl-org/MultiObjectiveOptimization, ``gradient_normalizers``),
where it is marked "optional and not included in the paper": see
:func:`gradient_normalizers`.
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
    r"""The min-norm point of the segment between two vectors :math:`a` and :math:`b` (Algorithm 1).

    From :math:`v_{11} = a \cdot a`, :math:`v_{12} = a \cdot b` and :math:`v_{22} = b \cdot b`,

    .. math::

        \gamma^\star = \arg\min_{\gamma \in [0, 1]} \big\|\gamma a + (1 - \gamma) b\big\|^2
        = \Big[\frac{(b - a) \cdot b}{\|a - b\|^2}\Big]_{0}^{1}

    (clipped to :math:`[0, 1]`; Sener & Koltun, NeurIPS 2018, arXiv
    1810.04650, Algorithm 1). For :math:`a = b` every :math:`\gamma` is
    optimal and 0.5 is returned.

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
    r"""Weights :math:`\alpha` on the simplex with the least :math:`\alpha^\top G \alpha` for a Gram matrix :math:`G`.

    The common descent direction of MGDA (Sener & Koltun, NeurIPS 2018,
    arXiv 1810.04650, Eq. 3) is the min-norm point of the convex hull of the
    task gradients,

    .. math::

        \min_{\alpha} \Big\|\sum_{t=1}^{T} \alpha_t g_t\Big\|^2 = \alpha^\top G \alpha
        \quad \text{s.t.} \quad \sum_t \alpha_t = 1,\ \alpha_t \ge 0 .

    Closed form (:func:`min_norm_two`) for two tasks; for more, Frank--Wolfe
    (Algorithm 2): each step moves towards the vertex :math:`e_t` with
    :math:`t = \arg\min_r (G\alpha)_r` by the exact line search of
    Algorithm 1. The
    paper starts Frank--Wolfe at :math:`\alpha = 1/T` (``init="uniform"``); the
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
    r"""The :math:`n_t` of the official code's ``gradient_normalizers`` (not part of the paper).

    The solver sees :math:`g_t / n_t` with :math:`n_t = 1` (``"none"``, the
    default and the paper), :math:`\|g_t\|` (``"l2"``), :math:`L_t` (``"loss"``)
    or :math:`L_t \|g_t\|` (``"loss+"``); as in that code, the resulting
    :math:`\alpha` then weights the *unnormalised* gradients (the update is
    :math:`\sum_t \alpha_t g_t`).

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
    r"""MGDA (Sener & Koltun, NeurIPS 2018, arXiv 1810.04650): the update :math:`\sum_t \alpha_t g_t`.

    :math:`\alpha` is the min-norm solution of :func:`min_norm_element` for
    the (optionally normalised, :func:`gradient_normalizers`) gradients of
    the shared parameters, or of the shared representation :math:`z`.

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
    r"""MGDA-UB (Sener & Koltun, NeurIPS 2018, Section 3.3): MGDA on the gradients :math:`\nabla_z L_t`.

    The gradients are taken with respect to the shared representation
    :math:`z` instead of the shared weights: one backward pass per task
    through the heads only, and the min-norm problem of an upper bound of
    the original one.
    """
    return MGDA(tasks, normalization, max_iter, on="representation")

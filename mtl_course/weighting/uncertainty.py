r"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018, arXiv 1705.07115).

Each task has a learnable noise scale :math:`\sigma_i`; a task whose loss is
large is read as noisy and weighted down. :func:`uncertainty_objective` is
the objective with :math:`s_i = \log\sigma_i^2`, :func:`uncertainty_weights`
the effective loss weights, :class:`UncertaintyWeighting` the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from mtl_course.weighting.base import LossWeighting, register

Kind = Literal["regression", "classification"]

#: The factor :math:`c` in front of :math:`e^{-s} L` for each kind of likelihood.
LIKELIHOOD_FACTOR: dict[str, float] = {"regression": 0.5, "classification": 1.0}


def uncertainty_weights(log_var: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    r"""The effective loss weights :math:`c_i e^{-s_i}` of :func:`uncertainty_objective`.

    :math:`c_i = 1/2` for a regression task and 1 for a classification task
    (:data:`LIKELIHOOD_FACTOR`).

    >>> uncertainty_weights(torch.log(torch.tensor([2.0, 2.0])), torch.tensor([0.5, 1.0])).tolist()
    [0.25, 0.5]
    """
    return factors * torch.exp(-log_var)


def uncertainty_objective(losses: torch.Tensor, log_var: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    r"""The uncertainty-weighted objective in :math:`s_i = \log\sigma_i^2`.

    Kendall, Gal & Cipolla (CVPR 2018, arXiv 1705.07115) derive from a
    Gaussian likelihood for regression (their Eq. 7) and a softmax likelihood
    with temperature :math:`\sigma^2` for classification (Eq. 10, an
    approximation)

    .. math::

        \frac{1}{2\sigma_i^2} L_i + \log\sigma_i \quad\text{(regression)}, \qquad
        \frac{1}{\sigma_i^2} L_i + \log\sigma_i \quad\text{(classification)} .

    Learning :math:`s_i = \log\sigma_i^2` instead of :math:`\sigma_i` keeps it
    unconstrained and avoids a division by zero (as the paper does in practice), so
    with :math:`c_i = 1/2` (regression) or 1 (classification)

    .. math:: L(s) = \sum_i c_i\, e^{-s_i} L_i + \tfrac12 s_i .

    Setting :math:`\partial L/\partial s_i = 0` gives the optimum
    :math:`\sigma_i^2 = 2 c_i L_i`: :math:`L_i` for regression and
    :math:`2 L_i` for classification, so a task's weight falls as its loss grows.

    >>> s = torch.zeros(2); L = torch.tensor([1.0, 2.0]); c = torch.tensor([0.5, 1.0])
    >>> float(uncertainty_objective(L, s, c))  # 0.5*1 + 1*2
    2.5
    """
    return (uncertainty_weights(log_var, factors) * losses).sum() + 0.5 * log_var.sum()


@register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    r"""Uncertainty weighting with one learnable :math:`s_i = \log\sigma_i^2` per task.

    Back-propagates :func:`uncertainty_objective`,
    :math:`\sum_i c_i e^{-s_i} L_i + \tfrac12 s_i` (Kendall, Gal & Cipolla,
    CVPR 2018, arXiv 1705.07115, Eqs. 7 and 10), into the network and the
    :math:`s_i`; the reported weights are :math:`c_i e^{-s_i}`.

    ``kinds`` maps each task to ``"regression"`` or ``"classification"``;
    tasks it does not name are regression tasks (the paper's eq. 7 for all).
    The ``s`` are parameters of this module: give ``method.parameters()`` to
    the optimiser (:func:`mtl_course.train.fit` does).

    >>> uw = UncertaintyWeighting(["depth", "seg"], kinds={"seg": "classification"})
    >>> uw.backward({"depth": torch.tensor(1.0), "seg": torch.tensor(1.0)}).tolist()
    [0.5, 1.0]
    """

    def __init__(
        self, tasks: Sequence[str], kinds: Mapping[str, Kind] | None = None, init_log_var: float = 0.0
    ) -> None:
        super().__init__(tasks)
        kinds = dict(kinds or {})
        unknown = [t for t in kinds if t not in self.tasks]
        if unknown:
            raise KeyError(f"kinds names tasks {unknown} that are not among {self.tasks}")
        for task, kind in kinds.items():
            if kind not in LIKELIHOOD_FACTOR:
                raise ValueError(f"task {task!r}: kind must be one of {sorted(LIKELIHOOD_FACTOR)}, got {kind!r}")
        self.kinds: dict[str, str] = {t: kinds.get(t, "regression") for t in self.tasks}
        self.log_var = nn.Parameter(torch.full((len(self.tasks),), float(init_log_var)))
        self.register_buffer("factors", torch.tensor([LIKELIHOOD_FACTOR[self.kinds[t]] for t in self.tasks]))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        idx = self.active_index
        return uncertainty_weights(self.log_var[idx], self.factors[idx])

    def _backward(self, losses, model, representation, grad_scale):
        idx = self.active_index
        objective = uncertainty_objective(losses, self.log_var[idx], self.factors[idx])
        self._scaled(objective, grad_scale).backward()
        return self.weights(losses)

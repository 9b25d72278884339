"""Homoscedastic uncertainty weighting.

Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses
for Scene Geometry and Semantics", CVPR 2018, arXiv 1705.07115.

Each task has a learnable noise scale ``sigma_i``. With the paper's
likelihoods the objective is (eq. 7 and its classification variant, eq. 10)

    regression:      L = 1 / (2 sigma^2) * L_i + log sigma
    classification:  L = 1 / sigma^2     * L_i + log sigma

and, learning ``s = log sigma^2`` for numerical stability,

    regression:      1/2 exp(-s) L_i + s / 2
    classification:      exp(-s) L_i + s / 2.

Setting the derivative in ``s`` to zero gives the optimum
``sigma^2 = L_i`` (regression) and ``sigma^2 = 2 L_i`` (classification):
a task's weight falls as its loss grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from mtl_course.weighting.base import LossWeighting, register

Kind = Literal["regression", "classification"]

#: The factor in front of ``exp(-s) * L`` for each kind of likelihood.
LIKELIHOOD_FACTOR: dict[str, float] = {"regression": 0.5, "classification": 1.0}


def uncertainty_weights(log_var: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """The effective loss weights ``c_i exp(-s_i)``, ``c_i`` = 1/2 (regression) or 1 (classification)."""
    return factors * torch.exp(-log_var)


def uncertainty_objective(losses: torch.Tensor, log_var: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``sum_i c_i exp(-s_i) L_i + s_i / 2``.

    >>> s = torch.zeros(2); L = torch.tensor([1.0, 2.0]); c = torch.tensor([0.5, 1.0])
    >>> float(uncertainty_objective(L, s, c))  # 0.5*1 + 1*2
    2.5
    """
    return (uncertainty_weights(log_var, factors) * losses).sum() + 0.5 * log_var.sum()


@register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Uncertainty weighting with one learnable ``s_i = log sigma_i^2`` per task.

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

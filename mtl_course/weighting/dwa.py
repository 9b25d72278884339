"""Dynamic weight average (DWA).

Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019, arXiv 1803.10704, eq. (7):

    lambda_k(t) = K exp(w_k(t-1) / T) / sum_i exp(w_i(t-1) / T),
    w_k(t-1)    = L_k(t-1) / L_k(t-2),

with ``L_k`` the epoch-average *training* loss of task ``k``, ``K`` the
number of tasks, temperature ``T = 2`` and ``lambda_k = 1`` for the first two
epochs. DWA reacts to how fast each loss falls, not to its scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mtl_course.weighting.base import LossWeighting, register


def dwa_weights(previous: torch.Tensor, before_previous: torch.Tensor, temperature: float) -> torch.Tensor:
    """``K softmax(w / T)`` with ``w = L(t-1) / L(t-2)`` (eq. 7).

    >>> dwa_weights(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), 2.0).tolist()
    [1.0, 1.0]
    """
    rates = previous / before_previous
    return previous.shape[0] * torch.softmax(rates / temperature, dim=0)


@register("dwa")
class DynamicWeightAverage(LossWeighting):
    """DWA: weights from the ratio of the last two epoch-average training losses.

    Call :meth:`on_epoch_end` with the epoch's mean training losses
    (:func:`mtl_course.train.fit` does); until two epochs are recorded every
    weight is 1.

    >>> dwa = DynamicWeightAverage(["a", "b"])
    >>> dwa.on_epoch_end({"a": 1.0, "b": 1.0}); dwa.on_epoch_end({"a": 0.5, "b": 1.0})
    >>> [round(x, 4) for x in dwa.lambdas.tolist()]  # b's loss stalls, so b gains weight
    [0.8756, 1.1244]
    """

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"the DWA temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.history: list[dict[str, float]] = []
        self.register_buffer("lambdas", torch.ones(len(self.tasks)))

    def on_epoch_end(self, epoch_mean_losses: Mapping[str, float]) -> None:
        missing = [t for t in self.active if t not in epoch_mean_losses]
        if missing:
            raise KeyError(f"DWA needs the epoch-average loss of every active task {self.active}; missing {missing}")
        self.history = [*self.history[-1:], {t: float(epoch_mean_losses[t]) for t in self.active}]
        if len(self.history) == 2:
            before_previous, previous = ([h[t] for t in self.active] for h in self.history)
            weights = dwa_weights(torch.tensor(previous), torch.tensor(before_previous), self.temperature)
            self.lambdas[self.active_index] = weights.to(self.lambdas)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return self.lambdas[self.active_index].to(losses.dtype)

r"""Dynamic weight average (DWA; Liu, Johns & Davison, CVPR 2019, arXiv 1803.10704).

DWA weights each task by how slowly its training loss fell over the last two
epochs (:func:`dwa_weights`), not by the loss's scale;
:class:`DynamicWeightAverage` keeps the epoch averages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mtl_course.weighting.base import LossWeighting, register


def dwa_weights(previous: torch.Tensor, before_previous: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""The DWA weights of Liu, Johns & Davison (CVPR 2019, arXiv 1803.10704, Eq. 7),

    .. math::

        \lambda_k(t) = \frac{K \exp\big(w_k(t-1)/T\big)}{\sum_i \exp\big(w_i(t-1)/T\big)},
        \qquad w_k(t-1) = \frac{L_k(t-1)}{L_k(t-2)},

    with :math:`L_k` the epoch-average training loss of task :math:`k`
    (``previous`` is :math:`L(t-1)`, ``before_previous`` :math:`L(t-2)`),
    :math:`K` the number of tasks and the temperature :math:`T` (2 in the
    paper). The weights sum to :math:`K`; rescaling a task's losses leaves
    them unchanged.

    >>> dwa_weights(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), 2.0).tolist()
    [1.0, 1.0]
    """
    rates = previous / before_previous
    return previous.shape[0] * torch.softmax(rates / temperature, dim=0)


@register("dwa")
class DynamicWeightAverage(LossWeighting):
    r"""DWA: :math:`L = \sum_k \lambda_k(t) L_k` with the weights :math:`\lambda_k(t)` of :func:`dwa_weights`.

    Call :meth:`on_epoch_end` with the epoch's mean training losses
    (:func:`mtl_course.train.fit` does); until two epochs are recorded every
    weight is 1, as in the paper (:math:`w_k(t) = 1` for :math:`t = 1, 2`).

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

r"""Static and random scalarisations: :math:`L = \sum_i w_i L_i` with weights that do not learn.

* :class:`EqualWeighting` -- every weight 1 (the "uniform scaling" baseline);
* :class:`FixedWeighting` -- hand-set weights, e.g. HyperFace's (Ranjan et al.);
* :class:`RandomLossWeighting` -- random weights drawn every step (Lin et al.).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence

import torch

from mtl_course.models.base import MultiTaskModel
from mtl_course.weighting.base import LossWeighting, register


@register("equal")
class EqualWeighting(LossWeighting):
    r"""Equal weighting: every task has weight 1,

    .. math:: L = \sum_{i=1}^{T} L_i .

    The "uniform scaling" baseline of the papers (e.g. Sener & Koltun,
    NeurIPS 2018, arXiv 1810.04650, Table 2).

    >>> p = torch.nn.Parameter(torch.tensor(1.0))
    >>> EqualWeighting(["a", "b"]).backward({"a": 2 * p, "b": 3 * p}).tolist()
    [1.0, 1.0]
    >>> p.grad.item()
    5.0
    """

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__(tasks)
        self.register_buffer("ones", torch.ones(len(self.tasks)), persistent=False)  # the weights, built once

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(losses)

    def backward(
        self,
        losses: Mapping[str, torch.Tensor],
        model: MultiTaskModel | None = None,
        *,
        representation: torch.Tensor | None = None,
        grad_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`WeightingMethod.backward` for weights that are all 1: back-propagates the plain sum of the losses.

        The same gradient, bit for bit, as the base class's ``(1 * stack(losses)).sum()``, without the stacking,
        the multiplication and their autograd nodes (every step of the course's default method pays for them).
        While every task is active, the weights it returns are the same tensor at every step: read it, do not
        write to it.
        """
        self._check_losses(losses)
        total = functools.reduce(operator.add, map(losses.__getitem__, self.active))  # sum() would add a 0 first
        self._scaled(total, grad_scale).backward()
        if len(self.active) == len(self.tasks):
            return self.ones  # no new tensor on the course's most common step
        return self._every_task(self.ones[: len(self.active)])


@register("fixed")
class FixedWeighting(LossWeighting):
    r"""Hand-set weights :math:`\lambda_i`, fixed during training,

    .. math:: L = \sum_{i=1}^{T} \lambda_i L_i ,

    e.g. HyperFace's :math:`\lambda_D = 1, \lambda_L = 5, \lambda_V = 0.5,
    \lambda_P = 5, \lambda_G = 2` for detection, landmarks, visibility, pose
    and gender (Ranjan, Patel & Chellappa, "HyperFace", IEEE TPAMI 2019,
    arXiv 1603.01249, as printed on the slides).

    ``weights`` must name exactly the tasks; a missing or unknown task is an
    error rather than a silent default.

    >>> FixedWeighting(["a", "b"], weights={"a": 1.0})
    Traceback (most recent call last):
    ...
    KeyError: "fixed weights must cover exactly the tasks ['a', 'b']; missing ['b'], unexpected []"
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float]) -> None:
        super().__init__(tasks)
        if not isinstance(weights, Mapping):
            raise TypeError(f"fixed weights must be a mapping {{task: weight}}, got {type(weights).__name__}")
        missing = [t for t in self.tasks if t not in weights]
        extra = [t for t in weights if t not in self.tasks]
        if missing or extra:
            raise KeyError(
                f"fixed weights must cover exactly the tasks {self.tasks}; missing {missing}, unexpected {extra}"
            )
        self.register_buffer("lambdas", torch.tensor([float(weights[t]) for t in self.tasks]))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return self.lambdas[self.active_index].to(losses.dtype)


@register("rlw")
class RandomLossWeighting(LossWeighting):
    r"""Random loss weighting (RLW): new random weights at every step,

    .. math:: w = \operatorname{softmax}(\tilde\lambda), \qquad \tilde\lambda \sim \mathcal N(0, I_T),
              \qquad L = \sum_{i=1}^{T} w_i L_i .

    Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting:
    A Litmus Test for Multi-Task Learning", TMLR 2022, arXiv 2111.10603 (the
    standard normal is one of the distributions :math:`p(\tilde\lambda)` the
    paper studies).

    ``seed`` seeds the method's own generator, so a run is reproducible
    without touching the global random state.

    >>> rlw = RandomLossWeighting(["a", "b", "c"], seed=0)
    >>> w = rlw.weights(torch.zeros(3))
    >>> round(float(w.sum()), 6), bool((w > 0).all())
    (1.0, True)
    """

    def __init__(self, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks)
        self.generator = torch.Generator().manual_seed(seed)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        draw = torch.randn(losses.shape[0], generator=self.generator)
        return torch.softmax(draw, dim=0).to(device=losses.device, dtype=losses.dtype)

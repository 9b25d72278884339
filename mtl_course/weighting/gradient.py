r"""Shared machinery of the gradient methods: per-task gradients, Gram matrix, combination.

Every gradient method of the course (MGDA, PCGrad, CAGrad, IMTL-G) writes
its update as a linear combination of the per-task gradients :math:`g_i` of
the shared part,

.. math:: d = \sum_{i=1}^{T} c_i\, g_i, \qquad c = c(G, L), \quad G_{ij} = g_i \cdot g_j,

with coefficients that depend only on the Gram matrix :math:`G` (and, for
some, on the losses :math:`L`). A subclass therefore implements one function,
:meth:`GradientWeighting.combine`, from :math:`(G, L)` to :math:`c`; this
module computes the :math:`g_i` and writes :math:`d`.

The shared part is either the shared parameters (``on="parameters"``) or the
shared representation :math:`z` = ``model.encode(x)`` (``on="representation"``,
MGDA-UB's upper bound of Sener & Koltun, NeurIPS 2018, arXiv 1810.04650,
Section 3.3): then the :math:`g_i` are :math:`\nabla_z L_i` and :math:`d` is
back-propagated through the encoder once.

Task-specific parameters receive the sum of the unweighted task-loss
gradients, :math:`\sum_t \nabla L_t`. In hard sharing a head influences only its
own task, so it receives :math:`\nabla L_t` alone; in cross-stitch and sluice
networks a task's column also feeds the other tasks through the mixing
units, and keeps those cross-task terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from mtl_course.weighting.base import WeightingMethod

Target = Literal["parameters", "representation"]


def _accumulate(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
    for p, g in zip(params, grads, strict=True):
        if g is not None:
            p.grad = g if p.grad is None else p.grad + g


class GradientWeighting(WeightingMethod):
    """Base class of the methods that combine per-task gradients.

    Subclasses implement :meth:`combine`. The Gram matrix and losses arrive
    on the CPU in float64 (the solvers are tiny and sequential); the
    coefficients go back to the gradients' device.
    """

    needs_model = True

    def __init__(self, tasks: Sequence[str], *, on: Target = "parameters") -> None:
        super().__init__(tasks)
        if on not in ("parameters", "representation"):
            raise ValueError(f"on must be 'parameters' or 'representation', got {on!r}")
        self.on = on
        self.requires_representation = on == "representation"

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        r"""Coefficients :math:`c` of the update :math:`d = \sum_i c_i g_i` from the Gram matrix and the losses."""
        raise NotImplementedError

    def task_gradients(self, losses, model, representation, grad_scale) -> torch.Tensor:
        r"""The matrix of flattened per-task gradients :math:`[g_1; \dots; g_T]` of the shared part.

        As a side effect every task-specific parameter's ``.grad`` receives
        the gradient of every task loss it influences (see the module docstring).
        """
        shared = (
            [representation]
            if self.requires_representation
            else [p for p in model.shared_parameters() if p.requires_grad]
        )
        heads = [p for task in model.tasks for p in model.task_parameters(task) if p.requires_grad]
        rows = []
        last = len(self.active) - 1
        for i, loss in enumerate(losses):
            grads = torch.autograd.grad(
                self._scaled(loss, grad_scale),
                shared + heads,
                retain_graph=self.requires_representation or i < last,
                allow_unused=True,
            )
            _accumulate(heads, grads[len(shared) :])
            pieces = [
                (torch.zeros_like(s) if g is None else g).reshape(-1)
                for s, g in zip(shared, grads[: len(shared)], strict=True)
            ]
            rows.append(torch.cat(pieces) if pieces else loss.new_zeros(0))
        return torch.stack(rows)

    def _backward(self, losses, model, representation, grad_scale):
        jacobian = self.task_gradients(losses, model, representation, grad_scale)
        if jacobian.shape[1] == 0:
            # nothing is shared (single-task baselines): every task already has its gradient
            return torch.ones(len(self.active), dtype=jacobian.dtype, device=jacobian.device)
        gram = (jacobian @ jacobian.T).double().cpu()
        if torch.isfinite(gram).all():
            coefficients = self.combine(gram, losses.detach().double().cpu())
        elif grad_scale is not None:
            # an fp16 overflow: write the (non-finite) sum so that GradScaler skips this step
            coefficients = torch.ones(len(self.active), dtype=torch.float64)
        else:
            bad = [t for t, ok in zip(self.active, torch.isfinite(gram.diagonal()), strict=True) if not ok]
            raise FloatingPointError(
                f"{type(self).__name__}: the gradient of task(s) {bad or self.active} is not finite "
                f"(losses {dict(zip(self.active, losses.tolist(), strict=True))})"
            )
        coefficients = coefficients.to(device=jacobian.device, dtype=jacobian.dtype)
        update = coefficients @ jacobian
        if self.requires_representation:
            representation.backward(update.view_as(representation))
        else:
            shared = [p for p in model.shared_parameters() if p.requires_grad]
            pieces = update.split([p.numel() for p in shared])
            _accumulate(shared, [piece.view_as(p) for piece, p in zip(pieces, shared, strict=True)])
        return coefficients

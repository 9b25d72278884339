"""GradNorm: balance tasks by the norms of their gradients on the last shared layer.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018,
arXiv 1711.02257, Section 3 and Algorithm 1. With ``W`` the last shared
layer and ``w_i`` the task weights:

    G_i       = || grad_W (w_i L_i) ||_2 = w_i || grad_W L_i ||_2
    L~_i      = L_i(t) / L_i(0)                 (inverse training rate)
    r_i       = L~_i / mean_j L~_j              (relative inverse training rate)
    L_grad    = sum_i | G_i - mean_j(G_j) * r_i^alpha |_1

The target ``mean(G) r_i^alpha`` is held constant (no gradient flows through
it); ``L_grad`` is differentiated with respect to the ``w_i`` only. The
network is updated with ``sum_i w_i L_i``; the weights take their own
gradient step and are renormalised to ``sum_i w_i = T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtl_course.weighting.base import WeightingMethod, register


def gradnorm_loss(
    weights: torch.Tensor, grad_norms: torch.Tensor, loss_ratios: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``L_grad = sum_i |w_i ||grad_W L_i|| - mean(G) r_i^alpha|`` with the target detached.

    ``grad_norms`` are ``||grad_W L_i||`` (so ``G_i = w_i * grad_norms_i``),
    ``loss_ratios`` are ``L_i(t) / L_i(0)``.

    >>> w = torch.ones(2)
    >>> float(gradnorm_loss(w, torch.tensor([1.0, 3.0]), torch.ones(2), alpha=1.0))  # targets 2, 2
    2.0
    """
    norms = weights * grad_norms
    relative_rate = loss_ratios / loss_ratios.mean()
    target = (norms.mean() * relative_rate**alpha).detach()
    return (norms - target).abs().sum()


@register("gradnorm")
class GradNorm(WeightingMethod):
    """GradNorm with asymmetry ``alpha`` and a plain gradient step of size ``lr`` on ``w``.

    ``L_i(0)`` are the losses of the first call. The weights are a buffer,
    not a parameter: GradNorm updates them itself, so they must not be given
    to the model's optimiser. After each step they are clamped to at least
    ``min_weight`` (``G_i = w_i ||grad L_i||`` is a norm only for ``w_i > 0``)
    and renormalised to sum to the number of active tasks.

    Needs ``model.last_shared_layer()``.
    """

    needs_model = True

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, lr: float = 0.025, min_weight: float = 1e-3) -> None:
        super().__init__(tasks)
        if lr <= 0:
            raise ValueError(f"GradNorm's learning rate for the weights must be positive, got {lr}")
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.min_weight = float(min_weight)
        self.register_buffer("w", torch.ones(len(self.tasks)))
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan")))

    def _backward(self, losses, model, representation, grad_scale):
        layer = [p for p in model.last_shared_layer() if p.requires_grad]
        if not layer:
            raise ValueError(f"{type(model).__name__}.last_shared_layer() returned no trainable parameters")
        idx = self.active_index
        initial = self.initial_losses[idx]
        self.initial_losses[idx] = torch.where(torch.isnan(initial), losses.detach().float(), initial)
        weights = self.w[idx].clone()

        grad_norms = torch.stack(
            [
                torch.cat(
                    [
                        g.reshape(-1)
                        for g in torch.autograd.grad(self._scaled(loss, grad_scale), layer, retain_graph=True)
                    ]
                ).norm()
                for loss in losses
            ]
        )
        if grad_scale is not None:
            grad_norms = grad_norms / grad_scale
        self._scaled((weights * losses).sum(), grad_scale).backward()

        w_var = weights.clone().requires_grad_(True)
        loss_ratios = losses.detach().float() / self.initial_losses[idx]
        (grad_w,) = torch.autograd.grad(gradnorm_loss(w_var, grad_norms.float(), loss_ratios, self.alpha), w_var)
        stepped = (weights - self.lr * grad_w).clamp_min(self.min_weight)
        renormalised = stepped * (len(self.active) / stepped.sum())
        # under fp16 loss scaling an overflowed step keeps the old weights
        self.w[idx] = torch.where(torch.isfinite(renormalised), renormalised, weights)
        return weights

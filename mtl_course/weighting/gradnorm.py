r"""GradNorm: balance tasks by the norms of their gradients on the last shared layer.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018,
arXiv 1711.02257, Section 3 and Algorithm 1. :func:`gradnorm_loss` is the
loss on the weights, :class:`GradNorm` the method (the network step, the
weight step and the renormalisation), :func:`suggested_weight_lr` a rate for
the weight step (the paper does not fix one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtl_course.weighting.base import WeightingMethod, register


def gradnorm_loss(
    weights: torch.Tensor, grad_norms: torch.Tensor, loss_ratios: torch.Tensor, alpha: float
) -> torch.Tensor:
    r"""GradNorm's gradient loss (Chen et al., ICML 2018, arXiv 1711.02257, Eq. 2).

    With :math:`W` the last shared layer and :math:`w_i` the task weights,

    .. math::

        G_W^{(i)} = \big\|\nabla_W\, w_i L_i\big\|_2 = w_i \big\|\nabla_W L_i\big\|_2, \qquad
        \tilde L_i = \frac{L_i(t)}{L_i(0)}, \qquad
        r_i = \frac{\tilde L_i}{\operatorname{mean}_j \tilde L_j},

    .. math::

        L_{\text{grad}} = \sum_i \Big| G_W^{(i)} - \overline{G}_W \, r_i^{\alpha} \Big|_1,
        \qquad \overline{G}_W = \operatorname{mean}_j G_W^{(j)} .

    The target :math:`\overline{G}_W r_i^\alpha` is held constant (detached),
    as the paper prescribes, so :math:`L_{\text{grad}}` is differentiated with
    respect to the :math:`w_i` only. ``grad_norms`` are
    :math:`\|\nabla_W L_i\|_2` and ``loss_ratios`` the :math:`\tilde L_i`.

    >>> w = torch.ones(2)
    >>> float(gradnorm_loss(w, torch.tensor([1.0, 3.0]), torch.ones(2), alpha=1.0))  # targets 2, 2
    2.0
    """
    norms = weights * grad_norms
    relative_rate = loss_ratios / loss_ratios.mean()
    target = (norms.mean() * relative_rate**alpha).detach()
    return (norms - target).abs().sum()


def suggested_weight_lr(grad_norms: torch.Tensor, fraction: float = 0.1) -> float:
    r"""A weight step for :class:`GradNorm` from the initial gradient norms :math:`n_i = \|\nabla_W L_i(0)\|_2`.

    GradNorm drives the weighted norms :math:`w_i n_i` towards a common value
    (for :math:`\alpha = 0` exactly); with :math:`\sum_i w_i = T` that
    balance gives the task with the largest norm the smallest weight,
    :math:`w_{\min} = T / (n_{\max} \sum_j 1/n_j)`. One plain step moves it
    by :math:`\mathrm{lr}\, n_{\max}`; asking that to be ``fraction`` of
    :math:`w_{\min}` gives

    .. math:: \mathrm{lr} = \text{fraction} \cdot \frac{T}{n_{\max}^2 \sum_j 1/n_j} .

    For norms of order 1 this is about ``fraction`` (0.1 by default); it falls
    with the square of the largest norm.

    >>> round(suggested_weight_lr(torch.tensor([1.0, 1.0])), 3)
    0.1
    >>> f"{suggested_weight_lr(torch.tensor([1.0, 100.0])):.3g}"  # T = 2, sum 1/n = 1.01
    '1.98e-05'
    """
    norms = torch.as_tensor(grad_norms, dtype=torch.float64).reshape(-1)
    if norms.numel() == 0 or not bool(torch.all(torch.isfinite(norms) & (norms > 0))):
        raise ValueError(f"the gradient norms must be positive and finite, got {norms.tolist()}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    return float(fraction * norms.numel() / (norms.max() ** 2 * (1.0 / norms).sum()))


@register("gradnorm")
class GradNorm(WeightingMethod):
    r"""GradNorm (Chen et al., ICML 2018, arXiv 1711.02257, Algorithm 1) with asymmetry ``alpha``.

    Each step back-propagates :math:`\sum_i w_i L_i` into the network, takes
    a plain gradient step of size ``lr`` on the weights with
    :math:`\partial L_{\text{grad}}/\partial w_i` (:func:`gradnorm_loss`), and
    renormalises them to :math:`\sum_i w_i = T`.

    :math:`L_i(0)` are the losses of the first call. The weights are a buffer,
    not a parameter: GradNorm updates them itself, so they must not be given
    to the model's optimiser. After each step they are clamped to at least
    ``min_weight`` (:math:`G_W^{(i)} = w_i \|\nabla_W L_i\|` is a norm only for :math:`w_i > 0`)
    and renormalised to sum to the number of active tasks.

    **Choosing the weight step ``lr``.** The paper (Algorithm 1) updates the
    :math:`w_i` using :math:`\nabla_{w_i} L_{\text{grad}}` and renormalises
    them, but fixes neither the optimiser nor its rate. This class takes plain
    gradient steps, and :math:`\partial L_{\text{grad}}/\partial w_i =
    \pm\|\nabla_W L_i\|_2`: a step moves :math:`w_i` by
    :math:`\mathrm{lr}\,\|\nabla_W L_i\|_2` before the renormalisation, so it
    carries the scale of the raw losses, the very scale GradNorm is meant to
    remove. A rate that suits losses of order 1 (the default 0.025) makes the
    weight of a task with large gradients jump between its floor
    ``min_weight`` and its target. :func:`suggested_weight_lr` chooses the
    rate from the gradient norms at the start; the class does not normalise
    the step itself.

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

"""IMTL-G: impartial multi-task learning, the gradient part.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task
Learning", ICLR 2021 (openreview.net/forum?id=IMPnRXEWpvr), Section 3.2.
:func:`imtl_g_coefficients` is the closed form, :class:`IMTLG` the method.
"""

from __future__ import annotations

import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting


def imtl_g_coefficients(gram: torch.Tensor) -> torch.Tensor:
    r"""The IMTL-G weights :math:`\alpha` from the Gram matrix :math:`G_{ij} = g_i \cdot g_j` of the task gradients.

    IMTL-G (Liu et al., ICLR 2021, Section 3.2) finds the update
    :math:`g = \sum_t \alpha_t g_t` with :math:`\sum_t \alpha_t = 1` whose
    projections onto all unit task gradients :math:`u_t = g_t/\|g_t\|` are
    equal, :math:`g \cdot u_1 = g \cdot u_t`. With the rows
    :math:`D = [g_1 - g_2; \dots; g_1 - g_T]` and
    :math:`U = [u_1 - u_2; \dots; u_1 - u_T]` the closed form is

    .. math::

        \alpha_{2:T} = g_1 U^\top \big(D U^\top\big)^{-1}, \qquad
        \alpha_1 = 1 - \sum_{t=2}^{T} \alpha_t .

    Every product in it is an entry of :math:`H_{ij} = g_i \cdot u_j = G_{ij}/\sqrt{G_{jj}}`,
    so the Gram matrix suffices. Every :math:`g_t` must be non-zero (:class:`IMTLG` says so when one is not).

    >>> alpha = imtl_g_coefficients(torch.diag(torch.tensor([1.0, 4.0])))  # g = (1,0), (0,2)
    >>> [round(a, 4) for a in alpha.tolist()]  # alpha_1 * 1 == alpha_2 * 2
    [0.6667, 0.3333]
    """
    h = gram / gram.diagonal().sqrt()  # h[i, j] = g_i . u_j
    n = gram.shape[0]
    if n == 1:
        return torch.ones(1, dtype=gram.dtype)
    g1_u = h[0, 0] - h[0, 1:]  # g_1 . (u_1 - u_b)
    d_u = h[0, 0] - h[0, 1:].unsqueeze(0) - h[1:, 0].unsqueeze(1) + h[1:, 1:]  # (g_1 - g_a) . (u_1 - u_b)
    rest = torch.linalg.solve(d_u.T, g1_u)
    return torch.cat([(1.0 - rest.sum()).unsqueeze(0), rest])


@register("imtl_g")
class IMTLG(GradientWeighting):
    r"""IMTL-G (Liu et al., ICLR 2021): the update :math:`\sum_t \alpha_t g_t` with :func:`imtl_g_coefficients`.

    On the shared parameters, or, with ``on="representation"``, on the
    gradients with respect to the shared representation :math:`z`, as in the paper.
    """

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        zero = [t for t, norm2 in zip(self.active, gram.diagonal().tolist(), strict=True) if norm2 == 0.0]
        if zero:
            raise ValueError(
                f"IMTL-G divides by every task's gradient norm, but task(s) {zero} have a zero gradient in this "
                "step (does the batch hold no labels of theirs?); use batches that label every task, or a "
                "method that allows a zero gradient"
            )
        return imtl_g_coefficients(gram)

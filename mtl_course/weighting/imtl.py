"""IMTL-G: impartial multi-task learning, the gradient part.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task
Learning", ICLR 2021 (openreview.net/forum?id=IMPnRXEWpvr), Section 3.2.
IMTL-G finds the update ``g = sum_t alpha_t g_t`` (``sum_t alpha_t = 1``)
whose projections onto all unit task gradients ``u_t = g_t / ||g_t||`` are
equal, ``g . u_1 = g . u_t``. With ``D = [g_1 - g_2; ...; g_1 - g_T]`` and
``U = [u_1 - u_2; ...; u_1 - u_T]`` the closed form is

    alpha_{2:T} = g_1 U^T (D U^T)^{-1},    alpha_1 = 1 - sum_{t>1} alpha_t.

All products are entries of ``H_ij = g_i . u_j = G_ij / ||g_j||``.
"""

from __future__ import annotations

import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting


def imtl_g_coefficients(gram: torch.Tensor) -> torch.Tensor:
    """``alpha`` of IMTL-G from the Gram matrix of the task gradients.

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
    """IMTL-G on the shared parameters (or, with ``on="representation"``, on ``z`` as in the paper)."""

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return imtl_g_coefficients(gram)

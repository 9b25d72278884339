"""PCGrad: project conflicting gradients.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020, arXiv 2001.06782, Algorithm 1.
:func:`pcgrad_coefficients` runs the projections on the Gram matrix,
:class:`PCGrad` is the method.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtl_course.weighting.base import register
from mtl_course.weighting.gradient import GradientWeighting, Target


def pcgrad_coefficients(gram: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Coefficients :math:`c` with :math:`\sum_i g_i^{PC} = \sum_k c_k g_k` (Yu et al., NeurIPS 2020, Algorithm 1).

    For each task :math:`i`, starting from :math:`g_i^{PC} = g_i` and visiting
    the other tasks :math:`j` in random order,

    .. math::

        \text{if } g_i^{PC} \cdot g_j < 0: \qquad
        g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC} \cdot g_j}{\|g_j\|^2}\, g_j

    (projections accumulate on the modified :math:`g_i^{PC}`, always against
    the *original* :math:`g_j`); the update is :math:`\sum_i g_i^{PC}`. Every
    :math:`g_i^{PC}` stays a linear combination
    :math:`\sum_k C_{ik} g_k` of the original gradients, so the algorithm runs
    on the coefficients and the Gram matrix alone:
    :math:`g_i^{PC} \cdot g_j = (C G)_{ij}`.

    >>> gram = torch.tensor([[1.0, -1.0], [-1.0, 2.0]])  # g_1 = (1, 0), g_2 = (-1, 1)
    >>> pcgrad_coefficients(gram).tolist()  # g_1 + g_2/2 + g_2 + g_1 = (1.5, 1.5)
    [2.0, 1.5]
    """
    n = gram.shape[0]
    projected = torch.eye(n, dtype=gram.dtype)
    for i in range(n):
        others = [j for j in torch.randperm(n, generator=generator).tolist() if j != i]
        for j in others:
            dot = projected[i] @ gram[:, j]
            if dot < 0:
                projected[i, j] -= dot / gram[j, j]
    return projected.sum(dim=0)


@register("pcgrad")
class PCGrad(GradientWeighting):
    r"""PCGrad (Yu et al., NeurIPS 2020, arXiv 2001.06782): the update :math:`\sum_i g_i^{PC}`.

    The projections are those of :func:`pcgrad_coefficients`, on the shared
    parameters (or on :math:`z`); ``seed`` fixes the random order.
    """

    def __init__(self, tasks: Sequence[str], seed: int = 0, *, on: Target = "parameters") -> None:
        super().__init__(tasks, on=on)
        self.generator = torch.Generator().manual_seed(seed)

    def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return pcgrad_coefficients(gram, self.generator)

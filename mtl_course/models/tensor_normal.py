r"""The tensor-normal distribution of Multilinear Relationship Networks: density, flip-flop updates, scale.

Long, Cao, Wang & Yu, "Learning Multiple Tasks with Multilinear Relationship
Networks", NIPS 2017, arXiv 1506.02117, put a tensor-normal prior on the
weight tensor :math:`\mathcal W \in \mathbb R^{D_1 \times D_2 \times T}` of
a task-specific layer (features :math:`\times` classes :math:`\times`
tasks):

.. math::

    \operatorname{vec}(\mathcal W) \sim \mathcal N\big(0,\ \Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3\big),

with a feature covariance :math:`\Sigma_1`, a class covariance
:math:`\Sigma_2` and a task covariance :math:`\Sigma_3` (here
:math:`\operatorname{vec}` is row-major, ``W.reshape(-1)``, so the first
mode varies slowest). With :math:`D = \prod_k D_k` the negative
log-density is

.. math::

    -\ln p(\mathcal W) = \tfrac{D}{2}\ln 2\pi + \tfrac12 \sum_k \tfrac{D}{D_k} \ln|\Sigma_k|
        + \tfrac12\, \mathcal W \times_1 \Sigma_1^{-1} \times_2 \Sigma_2^{-1} \times_3 \Sigma_3^{-1} \cdot \mathcal W ,

using :math:`\ln|\Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3| = \sum_k (D/D_k) \ln|\Sigma_k|`.
For two modes it is the matrix-normal density (SciPy's ``matrix_normal``).

**Flip-flop.** With the other factors fixed, the density is maximised over
:math:`\Sigma_k` in closed form (the "flip-flop" algorithm, Dutilleul 1999;
Manceur & Dutilleul 2013):

.. math::

    \Sigma_k = \frac{D_k}{D}\, \mathcal W_{(k)} \Big(\bigotimes_{j \ne k} \Sigma_j^{-1}\Big) \mathcal W_{(k)}^\top
        \;(+\ \epsilon I),

where :math:`\mathcal W_{(k)}` is the mode-:math:`k` unfolding
(:math:`D_k \times D/D_k`) and :math:`\epsilon I` keeps the estimate
invertible when :math:`D/D_k < D_k`.

**Scale.** :math:`(c\,\Sigma_1) \otimes (\Sigma_2 / c) = \Sigma_1 \otimes \Sigma_2`
for every :math:`c > 0`: the factors are identified only up to constants
whose product is 1. :func:`fix_scale` pins every factor to
:math:`\operatorname{tr}\Sigma_k = D_k` (mean eigenvalue 1), and either
moves the removed constants into one factor (the product, and the density,
are unchanged) or drops them (the overall scale is then set elsewhere, by
the penalty weight :math:`\lambda` of the training loss).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch


def _check(weights: torch.Tensor, covariances: Sequence[torch.Tensor]) -> None:
    """Raise a ``ValueError`` naming the mode whose covariance does not match the tensor."""
    if weights.ndim != len(covariances):
        raise ValueError(
            f"a tensor with {weights.ndim} modes needs {weights.ndim} covariance matrices, got {len(covariances)}"
        )
    for k, (size, cov) in enumerate(zip(weights.shape, covariances, strict=True)):
        if cov.shape != (size, size):
            raise ValueError(
                f"mode {k} has size {size}, so its covariance must be ({size}, {size}); got {tuple(cov.shape)}"
            )
    if not torch.isfinite(weights).all():
        raise ValueError("the weight tensor contains NaN or infinite entries")


def _check_mode(tensor: torch.Tensor, mode: int) -> None:
    if not 0 <= mode < tensor.ndim:
        raise ValueError(f"mode must be one of 0..{tensor.ndim - 1} for a tensor with {tensor.ndim} modes, got {mode}")


def mode_product(tensor: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    r"""The mode-:math:`k` product :math:`\mathcal W \times_k A`: multiply every mode-:math:`k` fibre by ``matrix``.

    >>> W = torch.arange(6.0).reshape(2, 3)
    >>> torch.equal(mode_product(W, torch.eye(3) * 2, 1), 2 * W)
    True
    >>> mode_product(W, torch.ones(1, 2), 0)  # sums over mode 0
    tensor([[3., 5., 7.]])
    """
    _check_mode(tensor, mode)
    if matrix.ndim != 2 or matrix.shape[1] != tensor.shape[mode]:
        raise ValueError(
            f"mode {mode} has size {tensor.shape[mode]}, so the matrix needs {tensor.shape[mode]} columns; "
            f"got shape {tuple(matrix.shape)}"
        )
    moved = torch.movedim(tensor, mode, 0)
    rest = moved.shape[1:]
    out = (matrix @ moved.reshape(moved.shape[0], -1)).reshape(matrix.shape[0], *rest)
    return torch.movedim(out, 0, mode)


def unfold(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    r"""The mode-:math:`k` unfolding :math:`\mathcal W_{(k)}`, shape :math:`D_k \times D / D_k`.

    >>> unfold(torch.arange(24.0).reshape(2, 3, 4), 2).shape
    torch.Size([4, 6])
    """
    _check_mode(tensor, mode)
    return torch.movedim(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def _whiten(weights: torch.Tensor, covariances: Sequence[torch.Tensor], skip: int | None = None) -> torch.Tensor:
    r""":math:`\mathcal W \times_j L_j^{-1}` over the modes :math:`j \ne` ``skip``, :math:`\Sigma_j = L_j L_j^\top`."""
    out = weights
    for k, cov in enumerate(covariances):
        if k != skip:
            L = torch.linalg.cholesky(cov)
            eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
            out = mode_product(out, torch.linalg.solve_triangular(L, eye, upper=False), k)
    return out


def tensor_normal_nll(weights: torch.Tensor, covariances: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The negative log-density of a zero-mean tensor-normal distribution (module docstring), differentiable in both.

    ``weights`` has :math:`K` modes, ``covariances`` one symmetric positive
    definite matrix per mode. For one mode it is the multivariate normal:

    >>> w, cov = torch.tensor([1.0, 2.0]), torch.diag(torch.tensor([1.0, 4.0]))
    >>> round(tensor_normal_nll(w, [cov]).item(), 4) == round(math.log(2 * math.pi) + 0.5 * math.log(4) + 0.5 * 2, 4)
    True
    """
    _check(weights, covariances)
    D = weights.numel()
    quadratic = _whiten(weights, covariances).pow(2).sum()
    logdet = sum(
        (D / cov.shape[0]) * 2 * torch.log(torch.diagonal(torch.linalg.cholesky(cov))).sum() for cov in covariances
    )
    return 0.5 * (D * math.log(2 * math.pi) + logdet + quadratic)


def flip_flop_update(
    weights: torch.Tensor, covariances: Sequence[torch.Tensor], mode: int, eps: float = 0.0
) -> torch.Tensor:
    r"""The closed-form maximiser over :math:`\Sigma_k` with the other factors fixed (module docstring), plus ``eps`` I.

    >>> W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])  # 3 x 2: two modes
    >>> flip_flop_update(W, [torch.eye(3), torch.eye(2)], mode=1)  # (D_2 / D) W^T W
    tensor([[0.6667, 0.6667],
            [0.6667, 2.6667]])
    """
    _check(weights, covariances)
    _check_mode(weights, mode)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    Y = unfold(_whiten(weights, covariances, skip=mode), mode)
    size = weights.shape[mode]
    update = (size / weights.numel()) * (Y @ Y.T)
    return update + eps * torch.eye(size, dtype=update.dtype, device=update.device)


def fix_scale(covariances: Sequence[torch.Tensor], carrier: int | None = None) -> list[torch.Tensor]:
    r"""Every factor rescaled to :math:`\operatorname{tr}\Sigma_k = D_k`; the removed constants go to ``carrier``.

    With ``carrier=k`` the Kronecker product is unchanged (factor ``k`` then
    holds the overall scale and has its own trace free); with ``None`` the
    overall scale is dropped.

    >>> a, b = 3 * torch.eye(2), torch.eye(3) / 3
    >>> [round(torch.trace(c).item(), 3) for c in fix_scale([a, b])]
    [2.0, 3.0]
    >>> [round(torch.trace(c).item(), 3) for c in fix_scale([a, 2 * b], carrier=0)]  # product 2 (a kron b)
    [4.0, 3.0]
    """
    scales = [torch.trace(c) / c.shape[0] for c in covariances]
    if any(not (s > 0) for s in scales):
        raise ValueError(f"covariance factors need a positive trace, got mean eigenvalues {[float(s) for s in scales]}")
    fixed = [c / s for c, s in zip(covariances, scales, strict=True)]
    if carrier is not None:
        fixed[carrier] = fixed[carrier] * math.prod(scales)
    return fixed


def flip_flop(
    weights: torch.Tensor,
    covariances: Sequence[torch.Tensor],
    modes: Iterable[int],
    sweeps: int = 1,
    eps: float = 0.0,
) -> list[torch.Tensor]:
    """``sweeps`` rounds of :func:`flip_flop_update` over ``modes`` in order, each using the newest other factors.

    No scale is fixed here (see :func:`fix_scale`): the result depends on where the factors start.
    """
    covariances, modes = list(covariances), list(modes)
    for _ in range(sweeps):
        for k in modes:
            covariances[k] = flip_flop_update(weights, covariances, k, eps)
    return covariances


def correlation(covariance: torch.Tensor) -> torch.Tensor:
    r"""The correlation matrix :math:`\Sigma_{ij} / \sqrt{\Sigma_{ii}\Sigma_{jj}}` of a covariance matrix.

    >>> correlation(torch.tensor([[4.0, -2.0], [-2.0, 9.0]]))
    tensor([[ 1.0000, -0.3333],
            [-0.3333,  1.0000]])
    """
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
        raise ValueError(f"a covariance matrix must be square, got shape {tuple(covariance.shape)}")
    sd = torch.sqrt(torch.diagonal(covariance))
    if not (sd > 0).all():
        raise ValueError("a correlation needs positive variances on the diagonal")
    return covariance / torch.outer(sd, sd)

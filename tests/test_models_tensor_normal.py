"""The tensor-normal prior of Multilinear Relationship Networks (Long et al., NIPS 2017, arXiv 1506.02117).

Every formula against an independent computation: the density against SciPy's
``matrix_normal`` and ``multivariate_normal`` with an explicit Kronecker
covariance, the flip-flop update against a numerical maximisation
(``scipy.optimize``), the gradient against autograd's closed form, and the
scale ambiguity of the Kronecker product.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

from mtl_course.models import (
    correlation,
    fix_scale,
    flip_flop,
    flip_flop_update,
    mode_product,
    tensor_normal_nll,
    unfold,
)


def _spd(n: int, g: torch.Generator) -> torch.Tensor:
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return A @ A.T + n * torch.eye(n, dtype=torch.float64)


@pytest.fixture
def case() -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    shape = (3, 2, 4)
    return torch.randn(*shape, generator=g, dtype=torch.float64), [_spd(n, g) for n in shape]


def test_two_modes_equal_scipy_matrix_normal() -> None:
    g = torch.Generator().manual_seed(1)
    W, U, V = torch.randn(4, 3, generator=g, dtype=torch.float64), _spd(4, g), _spd(3, g)
    expected = -scipy.stats.matrix_normal(mean=np.zeros((4, 3)), rowcov=U.numpy(), colcov=V.numpy()).logpdf(W.numpy())
    assert tensor_normal_nll(W, [U, V]).item() == pytest.approx(expected, rel=1e-12)


def test_three_modes_equal_a_multivariate_normal_with_the_kronecker_covariance(case) -> None:
    W, covs = case
    kron = np.kron(np.kron(covs[0].numpy(), covs[1].numpy()), covs[2].numpy())
    expected = -scipy.stats.multivariate_normal(np.zeros(W.numel()), kron).logpdf(W.reshape(-1).numpy())
    assert tensor_normal_nll(W, covs).item() == pytest.approx(expected, rel=1e-12)


def test_gradient_is_the_precision_times_the_weights(case) -> None:
    W, covs = case
    W = W.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tensor_normal_nll(W, covs), W)
    precision = torch.linalg.inv(torch.kron(torch.kron(covs[0], covs[1]), covs[2]))
    torch.testing.assert_close(grad.reshape(-1), precision @ W.detach().reshape(-1))


def test_mode_product_and_unfold_match_explicit_loops() -> None:
    g = torch.Generator().manual_seed(2)
    W, A = torch.randn(2, 3, 4, generator=g), torch.randn(5, 3, generator=g)
    out = mode_product(W, A, 1)
    loop = torch.stack([torch.stack([A @ W[i, :, k] for k in range(4)], -1) for i in range(2)])
    torch.testing.assert_close(out, loop)
    assert torch.equal(unfold(W, 1)[:, 0], W[0, :, 0]) and unfold(W, 1).shape == (3, 8)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_flip_flop_update_is_the_numerical_maximiser(case, mode: int) -> None:
    """Maximise the density over a Cholesky factor of Sigma_k with scipy.optimize; the closed form must match."""
    W, covs = case
    n = W.shape[mode]
    rows, cols = np.tril_indices(n)

    def nll(theta: np.ndarray) -> float:
        L = torch.zeros(n, n, dtype=torch.float64)
        L[rows, cols] = torch.as_tensor(theta)
        trial = list(covs)
        trial[mode] = L @ L.T + 1e-12 * torch.eye(n, dtype=torch.float64)
        return tensor_normal_nll(W, trial).item()

    start = np.eye(n)[rows, cols]
    best = scipy.optimize.minimize(nll, start, method="BFGS", options={"gtol": 1e-9})
    L = np.zeros((n, n))
    L[rows, cols] = best.x
    closed = flip_flop_update(W, covs, mode)
    np.testing.assert_allclose(closed.numpy(), L @ L.T, rtol=1e-4, atol=1e-6)
    trial = list(covs)
    trial[mode] = closed
    assert tensor_normal_nll(W, trial).item() <= best.fun + 1e-9


def test_flip_flop_update_with_eps_adds_eps_identity(case) -> None:
    W, covs = case
    torch.testing.assert_close(
        flip_flop_update(W, covs, 2, eps=0.5) - flip_flop_update(W, covs, 2), 0.5 * torch.eye(4, dtype=torch.float64)
    )


def test_the_kronecker_factors_trade_a_constant_and_fix_scale_removes_it(case) -> None:
    W, covs = case
    traded = [3.0 * covs[0], covs[1] / 3.0, covs[2]]
    assert tensor_normal_nll(W, traded).item() == pytest.approx(tensor_normal_nll(W, covs).item(), rel=1e-12)
    a, b = fix_scale(covs), fix_scale(traded)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)
    assert [round(torch.trace(c).item(), 9) for c in a] == [3.0, 2.0, 4.0]
    carried = fix_scale(covs, carrier=2)
    kron = torch.kron(torch.kron(*carried[:2]), carried[2])
    torch.testing.assert_close(kron, torch.kron(torch.kron(*covs[:2]), covs[2]))


def test_flip_flop_from_two_starts_gives_the_same_product_but_different_factors(case) -> None:
    W, _ = case
    eye = [torch.eye(n, dtype=torch.float64) for n in W.shape]
    one = flip_flop(W, eye, modes=[0, 1, 2], sweeps=30, eps=0.0)
    other = flip_flop(W, [eye[0], eye[1], 10 * eye[2]], modes=[0, 1, 2], sweeps=30, eps=0.0)
    assert not torch.allclose(one[0], other[0])
    kron = [torch.kron(torch.kron(c[0], c[1]), c[2]) for c in (one, other)]
    torch.testing.assert_close(kron[0], kron[1], rtol=1e-6, atol=1e-9)
    for x, y in zip(fix_scale(one), fix_scale(other), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-9)


def test_correlation_of_a_covariance() -> None:
    cov = torch.tensor([[4.0, 2.0], [2.0, 9.0]])
    torch.testing.assert_close(correlation(cov), torch.tensor([[1.0, 1 / 3], [1 / 3, 1.0]]))


@pytest.mark.parametrize(
    ("weights", "covs", "message"),
    [
        (torch.zeros(2, 3), [torch.eye(2)], "needs 2 covariance matrices"),
        (torch.zeros(2, 3), [torch.eye(2), torch.eye(2)], r"mode 1 has size 3.*\(3, 3\)"),
        (torch.full((2, 2), float("nan")), [torch.eye(2), torch.eye(2)], "NaN"),
    ],
)
def test_bad_input_names_what_is_wrong(weights, covs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tensor_normal_nll(weights, covs)


def test_bad_mode_eps_and_scale_are_refused() -> None:
    W, covs = torch.zeros(2, 2) + 1, [torch.eye(2), torch.eye(2)]
    with pytest.raises(ValueError, match="mode must be one of 0..1"):
        flip_flop_update(W, covs, 2)
    with pytest.raises(ValueError, match="eps must be"):
        flip_flop_update(W, covs, 0, eps=float("nan"))
    with pytest.raises(ValueError, match="positive trace"):
        fix_scale([torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="square"):
        correlation(torch.zeros(2, 3))


def test_mode_product_and_unfold_refuse_a_bad_mode_or_matrix() -> None:
    W = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="needs 3 columns"):
        mode_product(W, torch.eye(2), 1)
    with pytest.raises(ValueError, match="mode must be one of 0..1"):
        unfold(W, 2)

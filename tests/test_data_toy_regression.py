"""mtl_course.data.toy_regression: the GradNorm toy, quadratic tasks and the conflicting pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _data_digest import digest

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.toy_regression import QuadraticTasks, make_conflicting_regressions, make_gradnorm_toy


# -- the GradNorm toy ---------------------------------------------------------------------
def test_gradnorm_toy_follows_its_formula() -> None:
    """Rebuild B and eps_i from the same generator draws and recompute f_i(x) = sigma_i tanh((B + eps_i) x)."""
    sigmas = [1.0, 7.0, 100.0]
    toy = make_gradnorm_toy(sigmas, n_train=5, n_val=3, in_features=6, out_features=4, seed=11)
    g = torch.Generator().manual_seed(11)
    B = 10.0 * torch.randn(4, 6, generator=g)
    eps = 3.5 * torch.randn(3, 4, 6, generator=g)
    x = 2 * torch.rand(5, 6, generator=g) - 1
    x = x / x.norm(dim=1, keepdim=True)
    assert torch.allclose(toy.train.x, x)
    for i, (task, sigma) in enumerate(zip(toy.train.tasks, sigmas, strict=True)):
        expected = np.array(
            [
                [
                    sigma * np.tanh(sum((B[o, j] + eps[i, o, j]).item() * x[n, j].item() for j in range(6)))
                    for o in range(4)
                ]
                for n in range(5)
            ]
        )
        np.testing.assert_allclose(toy.train.targets[task].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_gradnorm_toy_scales_and_shapes() -> None:
    toy = make_gradnorm_toy([1.0, 100.0], n_train=400, n_val=10, seed=0)
    assert isinstance(toy.train, MultiTaskData) and isinstance(toy.val, MultiTaskData)
    assert toy.train.tasks == ("t0", "t1") and toy.train.info["sigmas"] == (1.0, 100.0)
    assert tuple(toy.train.x.shape) == (400, 250) and tuple(toy.val.targets["t0"].shape) == (10, 100)
    assert torch.allclose(toy.train.x.norm(dim=1), torch.ones(400))
    ratio = toy.train.targets["t1"].pow(2).mean() / toy.train.targets["t0"].pow(2).mean()
    assert 5e3 < float(ratio) < 2e4  # about sigma_1^2 / sigma_0^2 = 1e4 (the tasks share B, not eps)
    # tasks share B: their outputs agree in sign far more often than chance
    agree = (toy.train.targets["t0"].sign() == toy.train.targets["t1"].sign()).float().mean()
    assert float(agree) > 0.7


def test_gradnorm_toy_rejects_bad_scales() -> None:
    with pytest.raises(ValueError, match="sigmas"):
        make_gradnorm_toy([])
    with pytest.raises(ValueError, match="sigmas"):
        make_gradnorm_toy([1.0, -2.0])


# -- quadratic tasks --------------------------------------------------------------------------
def _random_quadratic(T: int = 3, d: int = 4, seed: int = 0) -> QuadraticTasks:
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(T, d, d))
    A = np.einsum("tij,tkj->tik", M, M) + 0.1 * np.eye(d)
    return QuadraticTasks(tuple(f"t{i}" for i in range(T)), A, rng.normal(size=(T, d)), rng.uniform(0, 1, T))


def test_losses_and_gradients_match_autograd() -> None:
    q = _random_quadratic()
    w = np.random.default_rng(1).normal(size=4)
    wt = torch.tensor(w, requires_grad=True)
    for i in range(q.n_tasks):
        diff = wt - torch.tensor(q.centers[i])
        loss = diff @ torch.tensor(q.A[i]) @ diff + q.minima[i]
        (grad,) = torch.autograd.grad(loss, wt)
        assert np.isclose(q.losses(w)[i], loss.item())
        np.testing.assert_allclose(q.gradients(w)[i], grad.numpy(), rtol=1e-10)


def test_weighted_optimum_is_the_minimiser() -> None:
    """The closed form zeroes the weighted gradient, and random perturbations only increase the weighted loss."""
    q = _random_quadratic()
    rng = np.random.default_rng(2)
    for _ in range(5):
        lam = 10 ** rng.uniform(-2, 2, q.n_tasks)
        w = q.weighted_optimum(lam)
        np.testing.assert_allclose(lam @ q.gradients(w), 0.0, atol=1e-8)
        base = lam @ q.losses(w)
        assert all(lam @ q.losses(w + 0.01 * rng.normal(size=q.dim)) > base for _ in range(20))


def test_weighted_optimum_against_a_brute_force_grid() -> None:
    pair = make_conflicting_regressions(loss_scales=(1.0, 10.0), seed=3)
    q = QuadraticTasks.from_least_squares(pair.train)
    axis = np.linspace(-1.5, 1.5, 301)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    losses = q.losses(grid)
    for lam in [(1.0, 1.0), (10.0, 1.0), (1.0, 0.05)]:
        brute = grid[np.argmin(losses @ np.array(lam))]
        assert np.abs(brute - q.weighted_optimum(lam)).max() <= 0.01


def test_only_ratios_matter_and_extremes_reach_the_task_optima() -> None:
    q = _random_quadratic()
    lam = np.array([0.3, 2.0, 5.0])
    np.testing.assert_allclose(q.weighted_optimum(lam), q.weighted_optimum(1000 * lam))
    np.testing.assert_allclose(q.weighted_optimum([1.0, 0.0, 0.0]), q.centers[0], atol=1e-10)
    np.testing.assert_allclose(q.optima().diagonal(), q.minima)


def test_weighted_optimum_rejects_bad_weights() -> None:
    q = _random_quadratic()
    for bad in ([0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, np.nan, 1.0], [1.0, 1.0]):
        with pytest.raises(ValueError, match="non-negative weights"):
            q.weighted_optimum(bad)


def test_front_is_monotone_pareto_trade_off() -> None:
    q = QuadraticTasks.from_least_squares(make_conflicting_regressions(seed=0).train)
    ratios, front = q.front(101)
    assert np.all(np.diff(ratios) > 0)
    # more weight on task 0: its loss falls, task 1's rises
    assert np.all(np.diff(front[:, 0]) <= 1e-12) and np.all(np.diff(front[:, 1]) >= -1e-12)
    with pytest.raises(ValueError, match="two-task"):
        _random_quadratic(T=3).front()


# -- the conflicting pair ---------------------------------------------------------------------------
def test_quadratic_form_equals_the_scaled_least_squares_losses() -> None:
    pair = make_conflicting_regressions(n_train=150, loss_scales=(1.0, 100.0), seed=4)
    q = QuadraticTasks.from_least_squares(pair.train)
    unscaled = QuadraticTasks.from_least_squares(pair.train, loss_scales=[1.0, 1.0])
    X = pair.train.x.double().numpy()
    rng = np.random.default_rng(0)
    for w in rng.normal(size=(5, 2)):
        mse = [np.mean((X @ w - pair.train.targets[t].double().numpy()[:, 0]) ** 2) for t in pair.train.tasks]
        np.testing.assert_allclose(q.losses(w), np.multiply([1.0, 100.0], mse), rtol=1e-9)
        np.testing.assert_allclose(unscaled.losses(w), mse, rtol=1e-9)


def test_conflicting_pair_geometry() -> None:
    pair = make_conflicting_regressions(angle_deg=150.0, noise=0.05, n_train=2000, seed=0)
    coefficients = pair.train.info["coefficients"]
    a0, a1 = coefficients
    assert np.isclose(np.degrees(np.arccos(a0 @ a1)), 150.0)
    q = QuadraticTasks.from_least_squares(pair.train)
    np.testing.assert_allclose(q.centers, coefficients, atol=0.02)  # least squares recovers a_i
    for t, a in zip(pair.train.tasks, coefficients, strict=True):  # truth is the noise-free x a_i
        np.testing.assert_allclose(pair.train.truth[t][:, 0].numpy(), pair.train.x.double().numpy() @ a, atol=1e-6)
        residual = (pair.train.targets[t] - pair.train.truth[t]).std().item()
        assert abs(residual - 0.05) < 0.005
    # between the optima the task gradients conflict
    g = q.gradients(q.weighted_optimum([1.0, 1.0]) + np.array([0.3, 0.0]))
    assert g[0] @ g[1] < 0
    three = make_conflicting_regressions(n_tasks=3, angle_deg=240.0, seed=0)
    assert three.train.tasks == ("t0", "t1", "t2") and QuadraticTasks.from_least_squares(three.train).n_tasks == 3


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="loss_scales"):
        make_conflicting_regressions(loss_scales=(1.0,))
    with pytest.raises(ValueError, match="anisotropy"):
        make_conflicting_regressions(anisotropy=0.5)


def test_the_toys_are_bit_identical_to_the_generators_before_the_common_container() -> None:
    """Digests of the arrays the generators made before they returned MultiTaskData (commit f1f8bec)."""
    toy = make_gradnorm_toy([1.0, 10.0, 100.0], n_train=20, n_val=10, in_features=8, out_features=5, seed=2)
    arrays = [toy.train.x, *toy.train.targets.values(), toy.val.x, *toy.val.targets.values()]
    assert digest(*arrays) == "77fe687d550d8fc6"
    pair = make_conflicting_regressions(n_train=30, n_val=20, n_tasks=3, loss_scales=(1.0, 2.0, 5.0), seed=4)
    arrays = [pair.train.x, *pair.train.targets.values(), pair.val.x, *pair.val.targets.values()]
    assert digest(*arrays, pair.train.info["coefficients"]) == "ebc3eb17b867d248"

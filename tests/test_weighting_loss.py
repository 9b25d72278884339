"""Uncertainty weighting, GradNorm and DWA against closed forms and direct computations."""

from __future__ import annotations

import math

import pytest
import torch
from _toy_models import ToyHardSharing, toy_losses

from mtl_course.weighting import DynamicWeightAverage, GradNorm, UncertaintyWeighting
from mtl_course.weighting.gradnorm import gradnorm_loss, suggested_weight_lr

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = ["a", "b", "c"]


# -- uncertainty ----------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "sigma2_over_loss"), [("regression", 1.0), ("classification", 2.0)])
def test_uncertainty_optimum_sigma2_matches_closed_form(kind, sigma2_over_loss, device):
    """d/ds [c e^{-s} L + s/2] = 0  =>  sigma^2 = e^s = 2 c L: L (regression), 2L (classification)."""
    losses = torch.tensor([0.3, 2.0, 7.5], device=device)
    method = UncertaintyWeighting(TASKS, kinds=dict.fromkeys(TASKS, kind)).to(device)
    optimizer = torch.optim.Adam(method.parameters(), lr=0.1)
    for _ in range(400):
        optimizer.zero_grad()
        method.backward(dict(zip(TASKS, losses.clone(), strict=True)))
        optimizer.step()
    torch.testing.assert_close(method.log_var.exp(), sigma2_over_loss * losses, rtol=2e-3, atol=1e-4)
    # and at the closed-form optimum the gradient in s vanishes exactly
    with torch.no_grad():
        method.log_var.copy_(torch.log(sigma2_over_loss * losses))
    method.log_var.grad = None
    method.backward(dict(zip(TASKS, losses.clone(), strict=True)))
    torch.testing.assert_close(method.log_var.grad, torch.zeros(3, device=device), atol=1e-6, rtol=0)


def test_uncertainty_gradients_match_autograd_of_the_written_formula(device):
    torch.manual_seed(0)
    kinds = {"a": "regression", "b": "classification", "c": "regression"}
    method = UncertaintyWeighting(TASKS, kinds=kinds, init_log_var=0.3).to(device)
    with torch.no_grad():
        method.log_var.copy_(torch.tensor([0.2, -0.4, 1.1]))
    raw = torch.tensor([0.5, 1.5, 3.0], device=device, requires_grad=True)
    weights = method.backward(dict(zip(TASKS, raw, strict=True)))
    s = torch.tensor([0.2, -0.4, 1.1], device=device, requires_grad=True)
    losses = torch.tensor([0.5, 1.5, 3.0], device=device, requires_grad=True)
    # the paper's terms with sigma^2 = e^s: 1/(2 sigma^2) L + log sigma ; 1/sigma^2 L + log sigma
    sigma2 = s.exp()
    reference = (
        losses[0] / (2 * sigma2[0])
        + torch.log(sigma2[0].sqrt())
        + losses[1] / sigma2[1]
        + torch.log(sigma2[1].sqrt())
        + losses[2] / (2 * sigma2[2])
        + torch.log(sigma2[2].sqrt())
    )
    reference.backward()
    torch.testing.assert_close(method.log_var.grad, s.grad)
    torch.testing.assert_close(raw.grad, losses.grad)
    torch.testing.assert_close(weights, torch.tensor([0.5, 1.0, 0.5], device=device) / sigma2.detach())


def test_uncertainty_rejects_unknown_kind_and_task():
    with pytest.raises(ValueError, match="task 'a': kind must be one of"):
        UncertaintyWeighting(TASKS, kinds={"a": "ranking"})
    with pytest.raises(KeyError, match=r"\['z'\]"):
        UncertaintyWeighting(TASKS, kinds={"z": "regression"})


# -- GradNorm -------------------------------------------------------------------------
def _gradnorm_setup(device):
    torch.manual_seed(1)
    model = ToyHardSharing(TASKS).to(device)
    x = torch.randn(32, 4, device=device)
    targets = {t: torch.randn(32, device=device) * 10**i for i, t in enumerate(TASKS)}
    return model, x, targets


def test_gradnorm_norms_match_direct_autograd(device):
    model, x, targets = _gradnorm_setup(device)
    method = GradNorm(TASKS, alpha=1.5, lr=0.1).to(device)
    method.w.copy_(torch.tensor([0.5, 1.0, 1.5]))
    weights = method.w.clone()

    w_layer = model.last_shared_layer()
    losses = toy_losses(model, x, targets)
    direct = []
    for w_i, loss in zip(weights, losses.values(), strict=True):
        grads = torch.autograd.grad(w_i * loss, w_layer, retain_graph=True)
        direct.append(torch.sqrt(sum((g**2).sum() for g in grads)))
    direct = torch.stack(direct)

    # rebuild the expected weight step from the direct norms: G_i = ||grad_W w_i L_i||
    ratios = torch.ones(3, device=device)  # first step: L(t) / L(0) = 1
    target = direct.mean() * ratios**1.5
    grad_w = torch.sign(direct - target) * direct / weights
    stepped = (weights - 0.1 * grad_w).clamp_min(1e-3)
    expected = stepped * 3 / stepped.sum()

    method.backward(toy_losses(model, x, targets), model)
    torch.testing.assert_close(method.w, expected)


def test_gradnorm_target_is_held_constant():
    """With the target detached, dL_grad/dw_i = sign(G_i - target_i) * ||grad L_i|| exactly."""
    w = torch.tensor([0.7, 1.1, 1.2], requires_grad=True)
    norms = torch.tensor([2.0, 0.5, 3.0])
    ratios = torch.tensor([0.9, 1.2, 0.6])
    (grad_w,) = torch.autograd.grad(gradnorm_loss(w, norms, ratios, alpha=0.5), w)
    g = w.detach() * norms
    target = g.mean() * (ratios / ratios.mean()) ** 0.5
    torch.testing.assert_close(grad_w, torch.sign(g - target) * norms)
    # a target that were not detached would also pass gradient through mean(G):
    w2 = w.detach().clone().requires_grad_(True)
    g2 = w2 * norms
    attached = (g2 - g2.mean() * (ratios / ratios.mean()) ** 0.5).abs().sum()
    (grad_attached,) = torch.autograd.grad(attached, w2)
    assert not torch.allclose(grad_attached, grad_w)


def test_gradnorm_renormalises_and_network_gets_weighted_sum(device):
    model, x, targets = _gradnorm_setup(device)
    method = GradNorm(TASKS, alpha=0.12, lr=0.5).to(device)
    for _step in range(5):
        model.zero_grad()
        used = method.w.clone()
        weights = method.backward(toy_losses(model, x, targets), model)
        torch.testing.assert_close(weights, used)
        assert math.isclose(method.w.sum().item(), 3.0, rel_tol=1e-5)
        assert (method.w > 0).all()
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        sum(w * loss for w, loss in zip(used, toy_losses(model, x, targets).values(), strict=True)).backward()
        for g, p in zip(got, model.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad)
    assert not torch.allclose(method.w, torch.ones(3, device=device))


def _gradnorm_run(lr: float | None, scales: tuple[float, ...], steps: int = 300) -> tuple[float, torch.Tensor, int]:
    """Train the toy with GradNorm's weight step ``lr`` (None: :func:`suggested_weight_lr` of the initial norms).

    Returns the rate used, the final weights and the number of steps on which some weight was below 0.01.
    """
    torch.manual_seed(0)
    model = ToyHardSharing(TASKS)
    x = torch.randn(64, 4)
    targets = {t: torch.randn(64) * s for t, s in zip(TASKS, scales, strict=True)}
    layer = model.last_shared_layer()
    norms = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, layer, retain_graph=True)]).norm()
            for loss in toy_losses(model, x, targets).values()
        ]
    )
    lr = suggested_weight_lr(norms) if lr is None else lr
    method = GradNorm(TASKS, alpha=0.12, lr=lr)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    near_floor = 0
    for _ in range(steps):
        optimizer.zero_grad()
        method.backward(toy_losses(model, x, targets), model)
        optimizer.step()
        near_floor += int(method.w.min() < 0.01)
    return lr, method.w, near_floor


def test_gradnorm_weight_step_carries_the_loss_scale_and_the_suggested_rate_removes_it():
    """Task scales (10, 100, 3): the default step pins a weight near its floor; suggested_weight_lr does not."""
    scales = (10.0, 100.0, 3.0)
    _, _, floor_default = _gradnorm_run(0.025, scales)
    lr, weights, floor_suggested = _gradnorm_run(None, scales)
    assert floor_default > 50, f"with lr = 0.025 a weight should often sit below 0.01, got {floor_default}/300 steps"
    assert floor_suggested == 0, f"with lr = {lr:.2e} no weight should fall below 0.01, got {floor_suggested}/300"
    assert weights.argmin().item() == 1, (
        f"the task with the largest gradients should get the smallest weight: {weights}"
    )


def test_suggested_weight_lr_matches_its_formula_and_rejects_bad_norms():
    norms = torch.tensor([0.5, 2.0, 8.0])
    # the balance w_i n_i = const with sum w_i = 3 gives w = 3 / (n_i sum 1/n_j); one step moves w_3 by lr * 8
    w_min = 3 / (8.0 * (1 / 0.5 + 1 / 2.0 + 1 / 8.0))
    assert math.isclose(suggested_weight_lr(norms, fraction=0.2) * 8.0, 0.2 * w_min, rel_tol=1e-12)
    with pytest.raises(ValueError, match="positive and finite"):
        suggested_weight_lr(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="fraction"):
        suggested_weight_lr(torch.tensor([1.0]), fraction=0.0)


def test_gradnorm_step_before_renormalisation_is_lr_times_the_raw_gradient_norm():
    """One step from w = (1, 1): w_i moves by lr * ||grad_W L_i|| (sign of G_i - target), then renormalises."""
    torch.manual_seed(2)
    model = ToyHardSharing(["a", "b"])
    x = torch.randn(16, 4)
    targets = {"a": torch.randn(16), "b": 50 * torch.randn(16)}
    method = GradNorm(["a", "b"], alpha=0.12, lr=1e-4)
    losses = toy_losses(model, x, targets)
    layer = model.last_shared_layer()
    norms = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(v, layer, retain_graph=True)]).norm()
            for v in losses.values()
        ]
    )
    # first step: ratios 1, target = mean(G); the task with the larger norm is above it and loses weight
    sign = torch.sign(norms - norms.mean())
    stepped = 1.0 - 1e-4 * sign * norms
    method.backward(losses, model)
    torch.testing.assert_close(method.w, stepped * 2 / stepped.sum())


# -- DWA -------------------------------------------------------------------------------
def test_dwa_matches_the_formula_and_starts_at_one(device):
    method = DynamicWeightAverage(TASKS, temperature=2.0).to(device)
    history = [{"a": 1.0, "b": 4.0, "c": 0.3}, {"a": 0.6, "b": 3.9, "c": 0.31}, {"a": 0.5, "b": 2.0, "c": 0.2}]
    zeros = torch.zeros(3, device=device)
    assert method.weights(zeros).tolist() == [1.0, 1.0, 1.0]
    method.on_epoch_end(history[0])
    assert method.weights(zeros).tolist() == [1.0, 1.0, 1.0]
    for t in (1, 2):
        method.on_epoch_end(history[t])
        rates = [history[t][k] / history[t - 1][k] for k in TASKS]
        denominator = sum(math.exp(r / 2.0) for r in rates)
        expected = [3 * math.exp(r / 2.0) / denominator for r in rates]
        assert method.weights(zeros).tolist() == pytest.approx(expected, rel=1e-6)


def test_dwa_requires_every_active_task():
    with pytest.raises(KeyError, match=r"missing \['c'\]"):
        DynamicWeightAverage(TASKS).on_epoch_end({"a": 1.0, "b": 1.0})

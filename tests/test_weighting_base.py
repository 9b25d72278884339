"""The weighting interface: registry, checks, and the update convention of every method."""

from __future__ import annotations

import pytest
import torch
from _toy_models import ToyHardSharing, toy_losses

from mtl_course.weighting import (
    EqualWeighting,
    FixedWeighting,
    RandomLossWeighting,
    available_methods,
    get_weighting,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = ["a", "b", "c"]
GRADIENT_METHODS = ["mgda", "mgda_ub", "pcgrad", "cagrad", "imtl_g"]


def _setup(device, seed=0):
    torch.manual_seed(seed)
    model = ToyHardSharing(TASKS).to(device)
    x = torch.randn(16, 4, device=device)
    targets = {t: torch.randn(16, device=device) * (i + 1) for i, t in enumerate(TASKS)}
    return model, x, targets


def test_registry_lists_every_method():
    assert available_methods() == sorted(["equal", "fixed", "rlw", "uncertainty", "gradnorm", "dwa", *GRADIENT_METHODS])


def test_unknown_method_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown weighting method 'nope'.*'pcgrad'"):
        get_weighting("nope", TASKS)


def test_nash_mtl_is_refused_with_the_reason():
    with pytest.raises(KeyError, match="cvxpy"):
        get_weighting("nash_mtl", TASKS)


def test_unknown_hyperparameter_lists_the_accepted_ones():
    with pytest.raises(TypeError, match=r"'pcgrad' accepts the hyper-parameters \['seed', 'on'\]"):
        get_weighting("pcgrad", TASKS, sed=1)


def test_a_type_error_from_inside_a_method_is_not_blamed_on_its_hyperparameters():
    # the hyper-parameters fit FixedWeighting's signature; the TypeError comes from its check of the weights
    with pytest.raises(TypeError, match=r"fixed weights must be a mapping \{task: weight\}, got int") as caught:
        get_weighting("fixed", TASKS, weights=3)
    assert "accepts the hyper-parameters" not in str(caught.value)


def test_fixed_weights_must_cover_exactly_the_tasks():
    with pytest.raises(KeyError, match=r"missing \['c'\], unexpected \['d'\]"):
        FixedWeighting(TASKS, weights={"a": 1.0, "b": 2.0, "d": 3.0})


@pytest.mark.parametrize("name", available_methods())
def test_mismatched_losses_name_missing_and_extra_tasks(name, device):
    model, x, targets = _setup(device)
    method = get_weighting(name, TASKS, **({"weights": dict.fromkeys(TASKS, 1.0)} if name == "fixed" else {}))
    losses = toy_losses(model, x, targets)
    losses["d"] = losses.pop("c")
    with pytest.raises(KeyError, match=r"missing \['c'\], unexpected \['d'\]"):
        method.backward(losses, model)


def test_non_scalar_loss_is_rejected(device):
    with pytest.raises(ValueError, match="task 'a' must be a 0-dim tensor, got shape \\(2,\\)"):
        EqualWeighting(["a"]).backward({"a": torch.ones(2, device=device, requires_grad=True)})


def test_gradient_method_needs_the_model(device):
    model, x, targets = _setup(device)
    with pytest.raises(ValueError, match="needs the model"):
        get_weighting("pcgrad", TASKS).backward(toy_losses(model, x, targets))


def test_mgda_ub_needs_the_representation(device):
    model, x, targets = _setup(device)
    with pytest.raises(ValueError, match="representation=model.encode"):
        get_weighting("mgda_ub", TASKS).backward(toy_losses(model, x, targets), model)


def test_equal_and_fixed_write_the_gradient_of_the_weighted_sum(device):
    model, x, targets = _setup(device)
    lambdas = {"a": 0.5, "b": 2.0, "c": 3.0}
    get_weighting("fixed", TASKS, weights=lambdas).to(device).backward(toy_losses(model, x, targets), model)
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sum(lambdas[t] * loss for t, loss in toy_losses(model, x, targets).items()).backward()
    for g, p in zip(got, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


@pytest.mark.parametrize("scale", [None, 1024.0])
def test_equal_weighting_writes_exactly_the_gradient_of_the_plain_sum(scale, device):
    # EqualWeighting back-propagates losses.sum() instead of the base class's (1 * losses).sum(): the same
    # gradient to the last bit, also under a GradScaler's scale; the weights it reports are ones
    model, x, targets = _setup(device)
    grad_scale = None if scale is None else torch.tensor(scale, device=device)
    weights = get_weighting("equal", TASKS).to(device).backward(toy_losses(model, x, targets), grad_scale=grad_scale)
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    objective = sum(toy_losses(model, x, targets).values())
    (objective if scale is None else objective * scale).backward()
    assert weights.tolist() == [1.0, 1.0, 1.0] and not weights.requires_grad
    for g, p in zip(got, model.parameters(), strict=True):
        assert torch.equal(g, p.grad)


def test_random_loss_weighting_draws_softmax_of_normals():
    method = RandomLossWeighting(TASKS, seed=3)
    draws = torch.randn(2, 3, generator=torch.Generator().manual_seed(3))
    for expected in torch.softmax(draws, dim=1):
        torch.testing.assert_close(method.weights(torch.zeros(3)), expected)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_gradient_methods_give_heads_their_own_unweighted_gradient(name, device):
    model, x, targets = _setup(device)
    method = get_weighting(name, TASKS).to(device)
    if method.requires_representation:
        z = model.encode(x)
        out = model.decode(z)
        losses = {t: ((out[t] - targets[t]) ** 2).mean() for t in TASKS}
        method.backward(losses, model, representation=z)
    else:
        method.backward(toy_losses(model, x, targets), model)
    for task in TASKS:
        head = list(model.task_parameters(task))
        expected = torch.autograd.grad(toy_losses(model, x, targets)[task], head)
        for p, g in zip(head, expected, strict=True):
            torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_gradient_methods_write_the_combination_their_weights_describe(name, device):
    model, x, targets = _setup(device)
    method = get_weighting(name, TASKS).to(device)
    shared = list(model.shared_parameters())
    per_task = [torch.autograd.grad(loss, shared, retain_graph=True) for loss in toy_losses(model, x, targets).values()]
    if method.requires_representation:
        z = model.encode(x)
        out = model.decode(z)
        weights = method.backward({t: ((out[t] - targets[t]) ** 2).mean() for t in TASKS}, model, representation=z)
    else:
        weights = method.backward(toy_losses(model, x, targets), model)
    for k, p in enumerate(shared):
        expected = sum(w * g[k] for w, g in zip(weights, per_task, strict=True))
        torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-6)


def test_equal_weights_are_one_tensor_reused_every_step_and_not_saved():
    method = get_weighting("equal", TASKS)
    p = torch.nn.Parameter(torch.tensor(1.0))
    first = method.backward(dict.fromkeys(TASKS, p * 1.0))
    second = method.backward(dict.fromkeys(TASKS, p * 2.0))
    assert first is second and second.tolist() == [1.0] * len(TASKS)
    assert p.grad.item() == 3 * len(TASKS)  # 1 + 2 per task: the weights were 1 at both steps
    assert "ones" not in method.state_dict()  # built from the task list, so checkpoints stay as they were


def test_deactivated_task_gets_weight_zero_and_no_loss(device):
    model, x, targets = _setup(device)
    method = get_weighting("equal", TASKS).to(device)
    method.deactivate("b")
    losses = toy_losses(model, x, targets)
    with pytest.raises(KeyError, match=r"unexpected \['b'\] \(deactivated: \['b'\]\)"):
        method.backward(losses, model)
    del losses["b"]
    assert method.backward(losses, model).tolist() == [1.0, 0.0, 1.0]
    assert all(p.grad is None for p in model.task_parameters("b"))

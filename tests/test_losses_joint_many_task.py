"""Successive regularisation (Hashimoto et al., EMNLP 2017, arXiv 1611.01587) as the JMT turns use it."""

from __future__ import annotations

import pytest
import torch

from mtl_course.losses import parameter_snapshot, successive_regularization
from mtl_course.models import JointManyTask


def _params(device):
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(3, 4, generator=g, dtype=torch.float64).to(device).requires_grad_(True),
        torch.randn(5, generator=g, dtype=torch.float64).to(device).requires_grad_(True),
    ]


def test_equals_a_brute_force_loop_over_every_entry(device) -> None:
    params = _params(device)
    snapshot = [p.detach() + torch.randn_like(p) for p in params]
    brute = sum(
        (a - b) ** 2
        for p, s in zip(params, snapshot, strict=True)
        for a, b in zip(p.detach().flatten().tolist(), s.flatten().tolist(), strict=True)
    )
    assert successive_regularization(params, snapshot, delta=0.3).item() == pytest.approx(0.3 * brute, rel=1e-12)


def test_gradient_is_two_delta_times_the_displacement_by_autograd_and_gradcheck(device) -> None:
    params = _params(device)
    snapshot = [p.detach() - 0.5 for p in params]
    grads = torch.autograd.grad(successive_regularization(params, snapshot, delta=0.2), params)
    for g, p, s in zip(grads, params, snapshot, strict=True):
        torch.testing.assert_close(g, 2 * 0.2 * (p.detach() - s))
    assert torch.autograd.gradcheck(lambda a, b: successive_regularization([a, b], snapshot, 0.2), tuple(params))


def test_zero_at_the_snapshot_and_the_snapshot_is_detached(device) -> None:
    params = _params(device)
    snapshot = parameter_snapshot(params)
    assert all(not s.requires_grad for s in snapshot)
    assert successive_regularization(params, snapshot, delta=5.0).item() == 0.0
    with torch.no_grad():
        params[0].add_(1.0)
    assert snapshot[0].data_ptr() != params[0].data_ptr()
    assert successive_regularization(params, snapshot, delta=1.0).item() == pytest.approx(12.0)


def test_it_reaches_only_the_lower_parameters_of_the_model(device) -> None:
    model = JointManyTask(12, {"pos": 5, "chunk": 4, "relation": 3}).to(device).double()
    lower = list(model.lower_parameters("chunk"))
    snapshot = parameter_snapshot(lower)
    with torch.no_grad():
        for p in lower:
            p.add_(0.01)
    successive_regularization(lower, snapshot, delta=1.0).backward()
    lower_ids = {id(p) for p in lower}
    for name, p in model.named_parameters():
        touched = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert touched == (id(p) in lower_ids), name

"""Single-task baselines, hard sharing and soft sharing (with its penalties)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from mtl_course.models import (
    HardSharing,
    LinearHead,
    MLPTrunk,
    SingleTask,
    SoftSharing,
    squared_l2_penalty,
    trace_norm_penalty,
)
from mtl_course.models.soft_sharing import stacked_parameters


# -- hard sharing --------------------------------------------------------------------------
def test_hard_sharing_forward_is_decode_of_encode(device: torch.device) -> None:
    torch.manual_seed(0)
    model = HardSharing.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 3}).to(device)
    x = torch.randn(8, 20, device=device)
    z = model.encode(x)
    torch.testing.assert_close(z, model.trunk(x))
    assert model.has_shared_representation and tuple(z.shape) == (8, 32)
    out, decoded = model(x), model.decode(z)
    for task in model.tasks:
        torch.testing.assert_close(out[task], decoded[task])
        torch.testing.assert_close(out[task], model.heads[task](z))


def test_hard_sharing_gradients_through_the_representation_match_the_weights() -> None:
    """What MGDA-UB relies on: dL/dz, pushed through the trunk, gives dL/dtheta_shared."""
    torch.manual_seed(0)
    model = HardSharing.mlp(in_features=5, hidden=[6], tasks={"a": 1, "b": 1})
    x = torch.randn(4, 5)
    z = model.encode(x)
    z_leaf = z.detach().requires_grad_()
    loss = model.decode(z_leaf)["a"].square().sum()
    (grad_z,) = torch.autograd.grad(loss, z_leaf)
    via_z = torch.autograd.grad(z, list(model.shared_parameters()), grad_outputs=grad_z)
    direct = torch.autograd.grad(model(x)["a"].square().sum(), list(model.shared_parameters()))
    for a, b in zip(via_z, direct, strict=True):
        torch.testing.assert_close(a, b)


def test_hard_sharing_general_constructor_and_last_shared_layer() -> None:
    trunk = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6))
    model = HardSharing(trunk, {"x": nn.Linear(6, 2), "y": nn.Linear(6, 1)})
    assert model.tasks == ["x", "y"]
    assert [id(p) for p in model.last_shared_layer()] == [id(trunk[2].weight), id(trunk[2].bias)]
    assert {t: tuple(y.shape) for t, y in model(torch.zeros(3, 4)).items()} == {"x": (3, 2), "y": (3, 1)}


def test_hard_sharing_names_the_expected_and_the_given_width() -> None:
    model = HardSharing.mlp(in_features=20, hidden=[32], tasks={"a": 1})
    with pytest.raises(ValueError, match="in_features is 20 but the batch has 19 features"):
        model(torch.zeros(8, 19))


def test_unet_hard_sharing_has_several_decoders_but_no_single_representation(device: torch.device) -> None:
    model = HardSharing.unet(in_channels=1, channels=[4, 8], tasks={"seg": 3, "depth": 1}).to(device)
    assert not model.has_shared_representation
    assert model.heads["seg"] is not model.heads["depth"]
    feats = model.encode(torch.zeros(2, 1, 8, 8, device=device))
    assert [tuple(f.shape) for f in feats] == [(2, 4, 8, 8), (2, 8, 4, 4)]
    assert model.parameter_counts()["seg"] != model.parameter_counts()["depth"]


# -- single task ---------------------------------------------------------------------------
def test_single_task_is_one_independent_network_per_task() -> None:
    torch.manual_seed(0)
    model = SingleTask.mlp(in_features=5, hidden=[7], tasks={"a": 1, "b": 2})
    x = torch.randn(3, 5)
    out = model(x)
    for task in model.tasks:
        torch.testing.assert_close(out[task], model.networks[task](x))
    assert list(model.shared_parameters()) == []
    assert model.parameter_counts() == {"shared": 0, "a": 42 + 8, "b": 42 + 16, "total": 108}
    with pytest.raises(NotImplementedError, match="no single shared representation"):
        model.encode(x)
    with pytest.raises(NotImplementedError, match="does not define a last shared layer"):
        model.last_shared_layer()


# -- soft sharing: the penalties ---------------------------------------------------------
def random_columns(num_tasks: int, seed: int = 0) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {f"t{i}": MLPTrunk(4, [5, 3]) for i in range(num_tasks)}


@pytest.mark.parametrize("num_tasks", [2, 3, 4])
def test_squared_l2_penalty_is_the_sum_over_groups_and_task_pairs(num_tasks: int, device: torch.device) -> None:
    columns = {t: c.to(device) for t, c in random_columns(num_tasks).items()}
    expected = 0.0
    for first, second in itertools.combinations(columns.values(), 2):
        for p, q in zip(first.parameters(), second.parameters(), strict=True):
            expected += ((p - q) ** 2).sum().item()
    got = squared_l2_penalty(columns)
    assert got.device.type == device.type
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_squared_l2_penalty_gradient_pulls_each_column_towards_the_others() -> None:
    """d/dtheta_i sum_{j<k} ||theta_j - theta_k||^2 = 2 sum_{j != i} (theta_i - theta_j)."""
    columns = random_columns(3)
    params = [list(c.parameters())[0] for c in columns.values()]
    grads = torch.autograd.grad(squared_l2_penalty(columns), params)
    for i, grad in enumerate(grads):
        expected = 2 * sum(params[i] - params[j] for j in range(3) if j != i)
        torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("num_tasks", [2, 3])
def test_trace_norm_penalty_is_the_nuclear_norm_of_the_stacked_parameters(num_tasks: int) -> None:
    columns = random_columns(num_tasks)
    expected = 0.0
    for group in zip(*(c.parameters() for c in columns.values()), strict=True):
        rows = np.stack([p.detach().numpy().ravel() for p in group])  # (T, n)
        expected += np.linalg.svd(rows.astype(np.float64), compute_uv=False).sum()
    assert trace_norm_penalty(columns).item() == pytest.approx(expected, rel=1e-5)


def test_both_penalties_vanish_for_tied_columns_and_the_trace_norm_gradient_stays_finite() -> None:
    model = SoftSharing.mlp(in_features=4, hidden=[5, 3], tasks={"a": 1, "b": 2, "c": 1}, penalty="trace")
    model.tie_columns()
    assert squared_l2_penalty(model.columns).item() == 0.0
    # tied columns: every W_g has rank 1, so its nuclear norm is the norm of sqrt(T) * theta
    expected = sum(3**0.5 * p.norm().item() for p in model.columns["a"].parameters())
    penalty = model.penalty()
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.columns.parameters())


def test_the_heads_are_not_penalised() -> None:
    model = SoftSharing.mlp(in_features=4, hidden=[5], tasks={"a": 1, "b": 3})
    before = model.penalty().item()
    with torch.no_grad():
        model.heads["a"].layers[0].weight.add_(10.0)
    assert model.penalty().item() == before


def test_soft_sharing_forward_and_ownership() -> None:
    torch.manual_seed(0)
    model = SoftSharing.mlp(in_features=4, hidden=[5], tasks={"a": 1, "b": 3})
    x = torch.randn(2, 4)
    out = model(x)
    torch.testing.assert_close(out["b"], model.heads["b"](model.columns["b"](x)))
    assert list(model.shared_parameters()) == []
    assert len(list(model.task_parameters("a"))) == 4  # column (2) + head (2)


def test_minimising_the_penalty_brings_the_columns_together() -> None:
    model = SoftSharing.mlp(in_features=4, hidden=[5], tasks={"a": 1, "b": 1})
    start = model.penalty().item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        model.penalty().backward()
        optimizer.step()
    assert model.penalty().item() < 1e-3 * start


def test_soft_sharing_errors_name_the_mismatch() -> None:
    heads = {"a": LinearHead(3, 1), "b": LinearHead(3, 1)}
    mismatch = r"parameter 'stages.0.0.weight' has shape \(3, 4\) in column 'a' but \(3, 5\)"
    with pytest.raises(ValueError, match=mismatch):
        SoftSharing({"a": MLPTrunk(4, [3]), "b": MLPTrunk(5, [3])}, heads)
    with pytest.raises(ValueError, match="column 'a' has parameters .* column 'b' has"):
        SoftSharing({"a": MLPTrunk(4, [3]), "b": MLPTrunk(4, [3, 3])}, heads)
    with pytest.raises(ValueError, match=r"unknown soft-sharing penalty 'l1'; choose one of \['l2', 'trace'\]"):
        SoftSharing.mlp(4, [3], {"a": 1, "b": 1}, penalty="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 tasks"):
        SoftSharing.mlp(4, [3], {"a": 1})


def test_stacked_parameters_puts_tasks_in_rows() -> None:
    columns = random_columns(3)
    stacked = stacked_parameters(columns)
    assert list(stacked) == [name for name, _ in columns["t0"].named_parameters()]
    torch.testing.assert_close(stacked["stages.1.0.weight"][2], columns["t2"].stages[1][0].weight.flatten())

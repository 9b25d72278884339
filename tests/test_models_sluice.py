"""Sluice networks (Ruder et al., arXiv 1705.08142; AAAI 2019)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtl_course.models import (
    CNNTrunk,
    CrossStitchNetwork,
    CrossStitchUnit,
    LinearHead,
    SluiceNetwork,
    SluiceUnit,
)
from mtl_course.models.sluice import layer_stitch_init, sluice_alpha_init, stage_weight, subspace_orthogonality


def direct_orthogonality(net: SluiceNetwork) -> float:
    """L_c by the formula: for every task m and layer k, split W_{m,k}'s rows into S blocks G_s."""
    total = 0.0
    s = net.num_subspaces
    for task in net.tasks:
        for stage in net.columns[task].stages:
            layer = [m for m in stage.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
            w = layer.weight.detach().double().reshape(layer.weight.shape[0], -1)
            rows = w.shape[0] // s
            blocks = [w[i * rows : (i + 1) * rows] for i in range(s)]
            for a in range(s):
                for b in range(a + 1, s):
                    total += torch.linalg.matrix_norm(blocks[a].T @ blocks[b], ord="fro").item() ** 2
    return total


@pytest.mark.parametrize("num_subspaces", [2, 4])
def test_orthogonality_penalty_matches_the_direct_computation_for_mlp_columns(num_subspaces: int) -> None:
    torch.manual_seed(0)
    tasks = {"a": 1, "b": 2, "c": 1}
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8, 8], tasks=tasks, num_subspaces=num_subspaces)
    expected = direct_orthogonality(net)
    assert expected > 0
    assert net.penalty().item() == pytest.approx(expected, rel=1e-5)


def test_orthogonality_penalty_matches_the_direct_computation_for_conv_columns() -> None:
    torch.manual_seed(0)
    net = SluiceNetwork(
        {t: CNNTrunk(2, [4, 4], pool=False) for t in ("a", "b")}, {t: LinearHead(4, 1) for t in ("a", "b")}
    )
    assert net.penalty().item() == pytest.approx(direct_orthogonality(net), rel=1e-5)


def test_orthogonality_penalty_is_zero_for_one_subspace_and_for_orthogonal_blocks() -> None:
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8], tasks={"a": 1, "b": 1}, num_subspaces=1)
    assert net.penalty().item() == 0.0
    # G_1 uses only row 0 of its block, G_2 only its last row: G_1^T G_2 = 0
    w = torch.zeros(4, 3)
    w[0] = torch.tensor([1.0, 2.0, 3.0])
    w[3] = torch.tensor([4.0, 5.0, 6.0])
    assert subspace_orthogonality(w, 2).item() == 0.0
    w[1] = torch.tensor([0.0, 0.0, 1.0])  # now G_1's second row meets G_2's second row
    # G_1^T G_2 = e_3 [4, 5, 6]: squared norm 16 + 25 + 36
    assert subspace_orthogonality(w, 2).item() == pytest.approx(77.0)


def test_minimising_the_penalty_makes_the_subspaces_orthogonal() -> None:
    torch.manual_seed(0)
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8], tasks={"a": 1, "b": 1})
    start = net.penalty().item()
    optimizer = torch.optim.Adam(net.columns.parameters(), lr=0.05)
    for _ in range(40):
        optimizer.zero_grad()
        net.penalty().backward()
        optimizer.step()
    assert net.penalty().item() < 0.01 * start


def test_sluice_unit_mixes_all_subspaces_of_all_tasks(device: torch.device) -> None:
    """h~_{m,s} = sum_{m',s'} alpha[(m,s),(m',s')] h_{m',s'}, task-major order, as a loop."""
    torch.manual_seed(0)
    unit = SluiceUnit(num_tasks=3, num_subspaces=2, num_channels=4).to(device)
    with torch.no_grad():
        unit.alpha.copy_(torch.randn(6, 6))
    hs = [torch.randn(5, 4, device=device) for _ in range(3)]
    out = unit(hs)
    for m in range(3):
        for s in range(2):
            expected = sum(
                unit.alpha[m * 2 + s, n * 2 + r] * hs[n][:, r * 2 : (r + 1) * 2] for n in range(3) for r in range(2)
            )
            torch.testing.assert_close(out[m][:, s * 2 : (s + 1) * 2], expected)


def test_with_one_subspace_the_unit_is_a_per_layer_cross_stitch_unit() -> None:
    torch.manual_seed(0)
    sluice = SluiceUnit(num_tasks=3, num_subspaces=1, num_channels=4)
    stitch = CrossStitchUnit(num_columns=3, num_channels=4, per_channel=False)
    with torch.no_grad():
        sluice.alpha.copy_(torch.randn(3, 3))
        stitch.alpha.copy_(sluice.alpha)
    hs = [torch.randn(5, 4, 2, 2, requires_grad=True) for _ in range(3)]
    out_sluice, out_stitch = sluice(hs), stitch(hs)
    for a, b in zip(out_sluice, out_stitch, strict=True):
        torch.testing.assert_close(a, b)
    (grad_sluice,) = torch.autograd.grad(sum(o.sum() for o in out_sluice), [sluice.alpha])
    (grad_stitch,) = torch.autograd.grad(sum(o.sum() for o in out_stitch), [stitch.alpha])
    torch.testing.assert_close(grad_sluice, grad_stitch)


def test_with_one_subspace_and_no_beta_the_network_is_a_per_layer_cross_stitch_network() -> None:
    torch.manual_seed(0)
    tasks = {"a": 1, "b": 2}
    sluice = SluiceNetwork.mlp(in_features=6, hidden=[8, 8], tasks=tasks, num_subspaces=1, layer_stitch=False)
    stitch = CrossStitchNetwork.mlp(in_features=6, hidden=[8, 8], tasks=tasks, per_channel=False)
    stitch.columns.load_state_dict(sluice.columns.state_dict())
    stitch.heads.load_state_dict(sluice.heads.state_dict())
    with torch.no_grad():
        for a, b in zip(sluice.cross_stitch_parameters(), stitch.mixing_parameters(), strict=True):
            a.copy_(torch.randn(2, 2))
            b.copy_(a)
    x = torch.randn(4, 6)
    out_sluice, out_stitch = sluice(x), stitch(x)
    for task in tasks:
        torch.testing.assert_close(out_sluice[task], out_stitch[task])


def test_beta_weights_the_layers_of_each_task() -> None:
    torch.manual_seed(0)
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8, 8], tasks={"a": 1, "b": 1})
    x = torch.randn(4, 6)
    # the mixed layer outputs, recomputed by hand
    hs, layers = [x, x], []
    for k, unit in enumerate(net.units):
        hs = unit([net.columns[t].stages[k](h) for t, h in zip(net.tasks, hs, strict=True)])
        layers.append(hs)
    out = net(x)
    torch.testing.assert_close(out["a"], net.heads["a"](sum(layer[0] for layer in layers) / 3))  # balanced beta
    with torch.no_grad():
        net.betas["b"].copy_(torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(net(x)["b"], net.heads["b"](layers[0][1]))  # b reads its first layer only


def test_initialisations() -> None:
    alpha = sluice_alpha_init(2, 2)
    assert torch.allclose(alpha.diagonal(), torch.full((4,), 0.9))
    assert torch.allclose(alpha.sum(dim=1), torch.ones(4))
    assert torch.allclose(alpha[0, 1:], torch.full((3,), 0.1 / 3))
    # with one subspace, the official code's 0.9 and 0.1 / (M - 1)
    official = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    torch.testing.assert_close(sluice_alpha_init(3, 1), official)
    torch.testing.assert_close(sluice_alpha_init(3, 2, "balanced"), torch.full((6, 6), 1 / 6))
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8, 8, 8], tasks={"a": 1, "b": 1}, beta_init="imbalanced")
    torch.testing.assert_close(net.betas["a"].detach(), torch.tensor([0.1 / 3, 0.1 / 3, 0.1 / 3, 0.9]))
    assert [tuple(b.shape) for b in net.layer_stitch_parameters()] == [(4,), (4,)]
    with pytest.raises(ValueError, match=r"unknown alpha initialisation 'uniform'; choose one of \['balanced', "):
        sluice_alpha_init(2, 2, "uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'imbalanced' beta needs at least 2 layers"):
        layer_stitch_init(1, "imbalanced")


def test_beta_belongs_to_its_task_and_alpha_is_shared() -> None:
    net = SluiceNetwork.mlp(in_features=6, hidden=[8, 8], tasks={"a": 1, "b": 1})
    assert id(net.betas["a"]) in {id(p) for p in net.task_parameters("a")}
    assert id(net.betas["a"]) not in {id(p) for p in net.task_parameters("b")}
    shared = {id(p) for p in net.shared_parameters()}
    assert all(id(a) in shared for a in net.cross_stitch_parameters())
    ablated = SluiceNetwork.mlp(in_features=6, hidden=[8, 4], tasks={"a": 1, "b": 1}, layer_stitch=False)
    assert list(ablated.layer_stitch_parameters()) == []


def test_sluice_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="cannot split 6 channels into 4 equal subspaces"):
        SluiceNetwork.mlp(in_features=3, hidden=[6, 6], tasks={"a": 1, "b": 1}, num_subspaces=4)
    with pytest.raises(ValueError, match=r"need one width; got \[8, 4\]"):
        SluiceNetwork.mlp(in_features=3, hidden=[8, 4], tasks={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="mixes 2 tasks, got 3 inputs"):
        SluiceUnit(2, 2, 4)([torch.zeros(1, 4)] * 3)
    with pytest.raises(ValueError, match=r"\(N, 4, \.\.\.\), got \(1, 6\) for task 1"):
        SluiceUnit(2, 2, 4)([torch.zeros(1, 4), torch.zeros(1, 6)])
    pooled = SluiceNetwork({t: CNNTrunk(1, [4, 4]) for t in "ab"}, {t: LinearHead(4, 1) for t in "ab"})
    with pytest.raises(ValueError, match=r"need one shape; got \[\(2, 4, 4, 4\), \(2, 4, 2, 2\)\]"):
        pooled(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="needs a Linear or Conv layer in every stage"):
        stage_weight(nn.Sequential(nn.ReLU()))
    net = SluiceNetwork.mlp(in_features=20, hidden=[8], tasks={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="in_features is 20 but the batch has 19"):
        net(torch.zeros(8, 19))

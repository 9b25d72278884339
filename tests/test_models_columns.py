"""The column-network base under soft sharing, cross-stitch and sluice networks (:mod:`mtl_course.models.columns`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mtl_course.models import (
    CNNTrunk,
    ColumnNetwork,
    CrossStitchNetwork,
    LinearHead,
    MixedColumnNetwork,
    MultiTaskModel,
    SluiceNetwork,
    SoftSharing,
)

TASKS = {"a": 1, "b": 2, "c": 1}
BUILDERS: dict[str, Callable[[], MultiTaskModel]] = {
    "soft_l2_mlp": lambda: SoftSharing.mlp(5, [6, 4], TASKS),
    "soft_trace_cnn": lambda: SoftSharing.cnn(1, [3, 4], TASKS, penalty="trace"),
    "cross_stitch_channel_mlp": lambda: CrossStitchNetwork.mlp(5, [6, 4], TASKS),
    "cross_stitch_layer_cnn": lambda: CrossStitchNetwork.cnn(
        1, [3, 4], TASKS, per_channel=False, alpha_init=(0.7, 0.2)
    ),
    "sluice_stitch_mlp": lambda: SluiceNetwork.mlp(5, [6, 6], TASKS, layer_stitch=True, beta_init="imbalanced"),
    "sluice_plain_mlp": lambda: SluiceNetwork.mlp(
        5, [6, 3], TASKS, num_subspaces=3, alpha_init="balanced", layer_stitch=False
    ),
    "sluice_cnn": lambda: SluiceNetwork(
        {t: CNNTrunk(1, [4, 4], pool=False) for t in TASKS}, {t: LinearHead(4, d) for t, d in TASKS.items()}
    ),
}

#: Computed with the classes as they were before the base existed (commit f1f8bec), by the code of
#: :func:`fingerprint`: the parameters summed with their registration index as weight, the sum of each
#: task's output on a seeded batch, the same index-weighted sum of the gradients of sum(output ** 2),
#: and the penalty.
BEFORE_THE_BASE = {
    "soft_l2_mlp": [-30.585533612407744, -1.2241396605968475, 0.5107026100158691, -0.09795652329921722, -28.41168923168152, 24.25345230102539],  # noqa: E501
    "soft_trace_cnn": [-18.52854280808242, -1.6131653785705566, -3.3649687469005585, 0.8816658854484558, -170.06624256027862, 7.618381500244141],  # noqa: E501
    "cross_stitch_channel_mlp": [576.6144548719749, -1.2305231094360352, 0.4274827539920807, -0.07769134640693665, -9.563952274020266, 0.0],  # noqa: E501
    "cross_stitch_layer_cnn": [103.57145653030602, -1.7995485067367554, -3.0382683873176575, 0.7616167664527893, -67.76507870294154, 0.0],  # noqa: E501
    "sluice_stitch_mlp": [242.8685310758883, 0.3579552471637726, -1.2610129863023758, 0.3185332417488098, -31.35326447326952, 1.843820571899414],  # noqa: E501
    "sluice_plain_mlp": [315.51734803570434, -1.3724766075611115, 0.9119917079806328, -0.16905713826417923, -54.95880919022602, 2.743316411972046],  # noqa: E501
    "sluice_cnn": [296.7918173602666, 1.1497350633144379, -0.6678256094455719, 0.31232357770204544, -31.232828388550843, 1.3055129051208496],  # noqa: E501
}  # fmt: skip


def fingerprint(name: str) -> list[float]:
    torch.manual_seed(0)
    model = BUILDERS[name]()
    x = torch.randn(3, 1, 6, 6) if "cnn" in name else torch.randn(3, 5)
    order = sum(k * p.double().sum() for k, p in enumerate(model.parameters()))
    out = model(x)
    grads = torch.autograd.grad(sum(o.pow(2).sum() for o in out.values()), list(model.parameters()))
    backward = sum(k * g.double().sum() for k, g in enumerate(grads))
    with torch.no_grad():
        return [float(order), *(float(out[t].double().sum()) for t in TASKS), float(backward), float(model.penalty())]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_seeded_models_are_those_of_before_the_base(name: str) -> None:
    # same registration order, same initialisation, same forward and backward: seeded results stay the same
    assert fingerprint(name) == pytest.approx(BEFORE_THE_BASE[name], rel=1e-6, abs=1e-6)


def test_state_dict_names_are_kept() -> None:
    # lecture A5 loads a sluice network's state into a cross-stitch network by these names
    net = SluiceNetwork.mlp(3, [4, 4], {"a": 1, "b": 1}, num_subspaces=1, layer_stitch=True)
    assert list(net.state_dict()) == [
        *(f"columns.{t}.stages.{k}.0.{p}" for t in "ab" for k in range(2) for p in ("weight", "bias")),
        *(f"heads.{t}.layers.0.{p}" for t in "ab" for p in ("weight", "bias")),
        "units.0.alpha",
        "units.1.alpha",
        "betas.a",
        "betas.b",
    ]


@pytest.mark.parametrize("cls", [SoftSharing, CrossStitchNetwork, SluiceNetwork])
def test_every_column_network_gets_both_factories(cls: type[ColumnNetwork]) -> None:
    options = {"layer_stitch": False} if cls is SluiceNetwork else {}
    net = cls.cnn(1, [4, 8], {"a": 1, "b": 3}, **options)
    assert isinstance(net, cls)
    assert {t: tuple(y.shape) for t, y in net(torch.zeros(2, 1, 8, 8)).items()} == {"a": (2, 1), "b": (2, 3)}
    assert [tuple(p.shape) for p in net.column_parameters("b")] == [(4, 1, 3, 3), (4,), (8, 4, 3, 3), (8,)]
    with pytest.raises(ValueError, match="needs at least 2 tasks, got \\['a'\\]"):
        cls.mlp(3, [4], {"a": 1})


@pytest.mark.parametrize("cls", [CrossStitchNetwork, SluiceNetwork])
def test_mixed_states_is_the_stage_loop(cls: type[MixedColumnNetwork]) -> None:
    torch.manual_seed(0)
    net = cls.mlp(3, [4, 4], {"a": 1, "b": 1})
    x = torch.randn(5, 3)
    states = net.mixed_states(x)
    h_a, h_b = x, x
    for k, unit in enumerate(net.units):
        h_a, h_b = unit([net.columns["a"].stages[k](h_a), net.columns["b"].stages[k](h_b)])
        torch.testing.assert_close(states[k], [h_a, h_b])
    assert list(net.mixing_parameters())[: len(net.units)] == [unit.alpha for unit in net.units]


def test_tie_columns_makes_every_column_the_first() -> None:
    torch.manual_seed(0)
    net = CrossStitchNetwork.mlp(3, [4, 4], {"a": 1, "b": 1, "c": 1})
    x = torch.randn(5, 3)
    assert not torch.allclose(net.columns["a"](x), net.columns["c"](x))
    net.tie_columns()
    for task in "bc":
        torch.testing.assert_close(net.columns[task](x), net.columns["a"](x))

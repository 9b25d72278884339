"""Every architecture honours the model contract of mtl_course.models.base, and trains."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from mtl_course.models import (
    CNNTrunk,
    CrossStitchNetwork,
    HardSharing,
    LinearHead,
    MultiTaskModel,
    SingleTask,
    SluiceNetwork,
    SoftSharing,
)

TASKS = {"a": 1, "b": 3}  # a: regression, b: 3-class classification
IN_FEATURES = 20

#: Vector-input architectures: name -> builder.
ARCHITECTURES: dict[str, Callable[[], MultiTaskModel]] = {
    "single_task": lambda: SingleTask.mlp(IN_FEATURES, [16, 16], TASKS),
    "hard_sharing": lambda: HardSharing.mlp(IN_FEATURES, [16, 16], TASKS),
    "soft_sharing_l2": lambda: SoftSharing.mlp(IN_FEATURES, [16, 16], TASKS, penalty="l2"),
    "soft_sharing_trace": lambda: SoftSharing.mlp(IN_FEATURES, [16, 16], TASKS, penalty="trace"),
    "cross_stitch_per_channel": lambda: CrossStitchNetwork.mlp(IN_FEATURES, [16, 16], TASKS, per_channel=True),
    "cross_stitch_per_layer": lambda: CrossStitchNetwork.mlp(IN_FEATURES, [16, 16], TASKS, per_channel=False),
    "sluice": lambda: SluiceNetwork.mlp(IN_FEATURES, [16, 16], TASKS),
}

#: Image-input architectures (input (N, 1, 8, 8)): name -> (builder, output shape per task for N=2).
IMAGE_ARCHITECTURES: dict[str, tuple[Callable[[], MultiTaskModel], dict[str, tuple[int, ...]]]] = {
    "single_task_cnn": (lambda: SingleTask.cnn(1, [4, 8], TASKS), {"a": (2, 1), "b": (2, 3)}),
    "hard_sharing_cnn": (lambda: HardSharing.cnn(1, [4, 8], TASKS), {"a": (2, 1), "b": (2, 3)}),
    "soft_sharing_cnn": (lambda: SoftSharing.cnn(1, [4, 8], TASKS), {"a": (2, 1), "b": (2, 3)}),
    "cross_stitch_cnn": (lambda: CrossStitchNetwork.cnn(1, [4, 8], TASKS), {"a": (2, 1), "b": (2, 3)}),
    "sluice_cnn": (
        lambda: SluiceNetwork(
            {t: CNNTrunk(1, [4, 4], pool=False) for t in TASKS}, {t: LinearHead(4, d) for t, d in TASKS.items()}
        ),
        {"a": (2, 1), "b": (2, 3)},
    ),
    "hard_sharing_unet": (
        lambda: HardSharing.unet(1, [4, 8], {"seg": 3, "depth": 1}),
        {"seg": (2, 3, 8, 8), "depth": (2, 1, 8, 8)},
    ),
    "single_task_unet": (
        lambda: SingleTask.unet(1, [4, 8], {"seg": 3, "depth": 1}),
        {"seg": (2, 3, 8, 8), "depth": (2, 1, 8, 8)},
    ),
}


def build(name: str) -> tuple[MultiTaskModel, torch.Tensor, dict[str, tuple[int, ...]]]:
    """A seeded model, an input batch and the expected output shapes."""
    torch.manual_seed(0)
    if name in ARCHITECTURES:
        return ARCHITECTURES[name](), torch.randn(2, IN_FEATURES), {"a": (2, 1), "b": (2, 3)}
    builder, shapes = IMAGE_ARCHITECTURES[name]
    return builder(), torch.randn(2, 1, 8, 8), shapes


ALL = [*ARCHITECTURES, *IMAGE_ARCHITECTURES]


def penalty(model: MultiTaskModel) -> torch.Tensor:
    """The model's architectural penalty (zero for models without one)."""
    return model.penalty()


@pytest.mark.parametrize("name", ALL)
def test_forward_returns_one_output_per_task_on_the_input_device(name: str, device: torch.device) -> None:
    model, x, shapes = build(name)
    model.to(device)
    out = model(x.to(device))
    assert list(out) == model.tasks == list(shapes)
    assert {t: tuple(y.shape) for t, y in out.items()} == shapes
    assert all(y.device.type == device.type for y in out.values())


@pytest.mark.parametrize("name", ALL)
def test_shared_and_task_parameters_cover_every_parameter_exactly_once(name: str) -> None:
    model, _, _ = build(name)
    groups = [list(model.shared_parameters())] + [list(model.task_parameters(t)) for t in model.tasks]
    listed = [id(p) for group in groups for p in group]
    assert len(listed) == len(set(listed)), "a parameter is listed twice"
    assert set(listed) == {id(p) for p in model.parameters()}
    counts = model.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["shared"] + sum(counts[t] for t in model.tasks) == counts["total"]


@pytest.mark.parametrize("name", ALL)
def test_task_parameters_get_gradient_only_from_their_task_and_shared_ones_from_every_task(name: str) -> None:
    """The split means what the contract says: who uses which parameter."""
    model, x, _ = build(name)
    out = model(x)
    for task in model.tasks:
        loss = out[task].square().mean()
        own = list(model.task_parameters(task))
        others = [p for t in model.tasks if t != task for p in model.task_parameters(t)]
        shared = list(model.shared_parameters())
        grads = torch.autograd.grad(loss, own + others + shared, retain_graph=True, allow_unused=True)
        split = len(own) + len(others)
        own_g, other_g, shared_g = grads[: len(own)], grads[len(own) : split], grads[split:]
        assert any(g is not None and g.abs().sum() > 0 for g in own_g), f"{task} does not use its own parameters"
        assert all(g is None or g.abs().sum() == 0 for g in other_g), f"{task} uses another task's parameters"
        if shared:
            assert all(g is not None and g.abs().sum() > 0 for g in shared_g), f"{task} misses a shared parameter"


@pytest.mark.parametrize("name", ALL)
def test_repr_shows_what_is_shared_and_the_counts(name: str) -> None:
    model, _, _ = build(name)
    text = repr(model)
    counts = model.parameter_counts()
    assert f"tasks={model.tasks}" in text and "shared: " in text and "per task: " in text
    assert f"total={counts['total']:,}" in text


@pytest.mark.parametrize("name", ALL)
def test_unknown_task_is_a_key_error_listing_the_tasks(name: str) -> None:
    model, _, _ = build(name)
    with pytest.raises(KeyError, match=r"unknown task 'c'; this model has tasks \['.*'\]"):
        list(model.task_parameters("c"))


def test_parameter_counts_of_hard_sharing_match_the_layer_sizes() -> None:
    model = HardSharing.mlp(in_features=20, hidden=[32, 16], tasks={"a": 1, "b": 3})
    shared = (20 * 32 + 32) + (32 * 16 + 16)
    assert model.parameter_counts() == {"shared": shared, "a": 17, "b": 51, "total": shared + 17 + 51}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_trains_and_its_loss_falls(name: str, device: torch.device) -> None:
    """Plain Adam on MSE(a) + CE(b) + penalty, 25 steps on a small synthetic problem."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, IN_FEATURES, generator=generator)
    y_a = x @ torch.randn(IN_FEATURES, 1, generator=generator)
    y_b = (x @ torch.randn(IN_FEATURES, 3, generator=generator)).argmax(dim=1)
    x, y_a, y_b = x.to(device), y_a.to(device), y_b.to(device)
    model, _, _ = build(name)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def total_loss() -> torch.Tensor:
        out = model(x)
        return F.mse_loss(out["a"], y_a) + F.cross_entropy(out["b"], y_b) + 1e-3 * penalty(model)

    with torch.no_grad():
        before = total_loss().item()
    for _ in range(25):
        optimizer.zero_grad()
        loss = total_loss()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = total_loss().item()
    assert after < 0.5 * before, f"{name}: loss went from {before:.3f} to {after:.3f}"

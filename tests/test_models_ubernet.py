"""The miniature UberNet (lecture B8): contract, checkpointed heads, bad input, every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data import make_partial_digits
from mtl_course.experiments.ubernet import DENSE, OUTPUTS, ubernet_tasks
from mtl_course.models import Checkpointed, FusionHead, SkipTrunk, ubernet, ubernet_single_task
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting


def test_outputs_and_parameter_split() -> None:
    model = ubernet(1, [4, 6], OUTPUTS, DENSE, hidden=5)
    out = model(torch.zeros(3, 1, 8, 8))
    assert {t: tuple(y.shape) for t, y in out.items()} == {"digit": (3, 10), "parity": (3, 2), "ink": (3, 2, 8, 8)}
    ids = [id(p) for p in model.shared_parameters()] + [id(p) for t in model.tasks for p in model.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in model.parameters()) and len(set(ids)) == len(ids)
    assert tuple(model.encode(torch.ones(2, 1, 8, 8)).shape) == (2, 10, 8, 8)


def test_skip_trunk_concatenates_every_stage() -> None:
    trunk = SkipTrunk(1, [3, 5])
    x = torch.randn(2, 1, 6, 6)
    stages = trunk.trunk.forward_stages(x)
    torch.testing.assert_close(trunk(x), torch.cat(stages, 1))
    assert trunk.out_channels == 8


def test_single_task_baseline_has_one_full_network_per_task() -> None:
    mtl = ubernet(1, [4, 4], OUTPUTS, DENSE, hidden=3)
    stl = ubernet_single_task(1, [4, 4], OUTPUTS, DENSE, hidden=3)
    counts = stl.parameter_counts()
    assert counts["shared"] == 0
    trunk = sum(p.numel() for p in mtl.shared_parameters())
    for t in OUTPUTS:
        assert counts[t] == trunk + mtl.parameter_counts()[t]


def test_checkpointed_heads_give_the_same_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    plain = ubernet(1, [4, 4], OUTPUTS, DENSE, hidden=3)
    torch.manual_seed(0)
    ckpt = ubernet(1, [4, 4], OUTPUTS, DENSE, hidden=3, checkpoint_heads=True)
    x = torch.randn(5, 1, 8, 8)
    grads = []
    for model in (plain, ckpt):
        loss = sum(y.square().mean() for y in model(x).values())
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        assert all(torch.equal(plain(x)[t], ckpt(x)[t]) for t in OUTPUTS)
    assert isinstance(ckpt.heads["ink"], Checkpointed)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: ubernet(1, [4], {"a": 2}, dense=["b"]), KeyError, r"dense task\(s\) \['b'\]"),
        (lambda: ubernet(1, [], {"a": 2}), ValueError, "channels must be a non-empty list"),
        (lambda: ubernet(1, [4], {"a": 0}), ValueError, "output dimension must be a positive int"),
        (lambda: FusionHead(4, 2, hidden=0), ValueError, "positive int hidden"),
        (lambda: Checkpointed(lambda x: x), TypeError, "wraps a torch.nn.Module, got function"),
    ],
)
def test_bad_construction_names_what_is_wrong(build, error, message: str) -> None:
    with pytest.raises(error, match=message):
        build()


def test_wrong_input_shape_names_the_expected_shape() -> None:
    model = ubernet(1, [4], OUTPUTS, DENSE, hidden=3)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\), got \(2, 3, 8, 8\)"):
        model(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"FusionHead expects features of shape \(N, 4, H, W\)"):
        model.heads["digit"](torch.zeros(2, 5, 8, 8))


def test_a_nan_image_stops_training_with_the_task_named(partial_loader) -> None:
    x, targets, masks = partial_loader.batch()
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")
    model = ubernet(1, [4], OUTPUTS, DENSE, hidden=3)
    with pytest.raises(FloatingPointError, match="the loss of task '(digit|parity|ink)' is not finite"):
        fit(model, ubernet_tasks("labelled"), "equal", [(x, targets, masks)], epochs=1, device="cpu", progress=False)


METHODS = [m for m in available_methods() if m != "fixed"]
ARCHITECTURES = {"ubernet": ubernet, "ubernet_single_task": ubernet_single_task}
INCOMPATIBLE = {
    ("ubernet_single_task", "mgda_ub"): (ValueError, "has none"),
    ("ubernet_single_task", "gradnorm"): (NotImplementedError, "SingleTask does not define a last shared layer"),
}


@pytest.fixture(scope="module")
def partial_loader():
    train, _ = make_partial_digits(n_train=96, n_test=4, seed=0)
    return train


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_trains_on_partial_labels_with_every_method(architecture: str, method: str, partial_loader, device) -> None:
    torch.manual_seed(0)
    model = ARCHITECTURES[architecture](1, [8, 8], OUTPUTS, DENSE, 8)
    tasks = ubernet_tasks("labelled")
    weighting = get_weighting(method, list(OUTPUTS))
    loader = partial_loader.loader(32, seed=0, device=device)
    if (architecture, method) in INCOMPATIBLE:
        error, message = INCOMPATIBLE[architecture, method]
        with pytest.raises(error, match=message):
            fit(model, tasks, weighting, loader, epochs=1, device=device, progress=False)
        return
    history = fit(model, tasks, weighting, loader, epochs=15, lr=1e-2, device=device, progress=False)
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.8 * first, f"{architecture} + {method}: loss {first:.3f} -> {last:.3f} did not fall"

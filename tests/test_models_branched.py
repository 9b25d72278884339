"""The branched network (a tree of shared trunks): the tree it builds, the contract, every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.loaders import TensorLoader
from mtl_course.losses import mse_loss
from mtl_course.models import BranchedNetwork, HardSharing, SingleTask
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = {"a": 1, "b": 1, "c": 1}
TREE = [[["a", "b", "c"]], [["a", "b"], ["c"]], [["a"], ["b"], ["c"]]]


def _tree() -> BranchedNetwork:
    torch.manual_seed(0)
    return BranchedNetwork(6, [8, 8, 4], TREE, TASKS)


def test_the_forward_pass_follows_the_tree() -> None:
    """Each task's output from a hand-written chain of the blocks on its path."""
    model = _tree()
    x = torch.randn(5, 6)
    out = model(x)
    root = model.blocks[0][0](x)
    ab, c = model.blocks[1][0](root), model.blocks[1][1](root)
    by_hand = {
        "a": model.heads["a"](model.blocks[2][0](ab)),
        "b": model.heads["b"](model.blocks[2][1](ab)),
        "c": model.heads["c"](model.blocks[2][2](c)),
    }
    for t in TASKS:
        torch.testing.assert_close(out[t], by_hand[t])
    torch.testing.assert_close(model.decode(model.encode(x))["b"], out["b"])


def test_each_loss_reaches_exactly_the_blocks_on_its_path_and_the_split_covers_every_parameter() -> None:
    model = _tree()
    params = list(model.parameters())
    shared = {id(p) for p in model.shared_parameters()}
    owned = {t: {id(p) for p in model.task_parameters(t)} for t in TASKS}
    assert sum(len(s) for s in owned.values()) + len(shared) == len(params)  # each parameter exactly once
    out = model(torch.randn(4, 6))
    for t in TASKS:
        grads = torch.autograd.grad(out[t].sum(), params, allow_unused=True, retain_graph=True)
        reached = {id(p) for p, g in zip(params, grads, strict=True) if g is not None}
        others = set().union(*(owned[u] for u in TASKS if u != t))
        assert owned[t] <= reached and not reached & others, t
    # the block of a and b is shared (by two tasks) but c never reaches it
    ab = {id(p) for p in model.blocks[1][0].parameters()}
    assert ab <= shared


def test_one_group_is_hard_sharing_and_one_group_per_task_is_single_task_learning() -> None:
    shared, separate = BranchedNetwork.shared(6, [8, 4], TASKS), BranchedNetwork.separate(6, [8, 4], TASKS)
    assert shared.parameter_counts() == HardSharing.mlp(6, [8, 4], TASKS).parameter_counts()
    assert separate.parameter_counts()["total"] == SingleTask.mlp(6, [8, 4], TASKS).parameter_counts()["total"]
    assert separate.parameter_counts()["shared"] == 0 and not separate.has_shared_representation
    assert shared.last_shared_layer()[0] is shared.blocks[1][0][0].weight
    assert "layer 2: [a] [b] [c]" in separate.describe_tree()


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ([], "at least one layer"),
        ([[["a", "b"]]], "split the tasks"),
        ([[["a", "b", "c"], ["a"]]], "split the tasks"),
        ([[["a"], ["b", "c"]], [["a", "b"], ["c"]]], "is not inside one group of layer 0"),
    ],
)
def test_a_tree_that_is_not_a_tree_is_refused(tree, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BranchedNetwork(6, [8] * len(tree), tree, TASKS)


def test_bad_widths_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one width per layer"):
        BranchedNetwork(6, [8], TREE, TASKS)
    with pytest.raises(ValueError, match="positive ints"):
        BranchedNetwork(6, [8, 0, 4], TREE, TASKS)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 6\), got \(2, 5\)"):
        _tree()(torch.zeros(2, 5))
    with pytest.raises(KeyError, match="unknown task 'd'"):
        list(_tree().task_parameters("d"))


def _data(device: torch.device) -> TensorLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    w = torch.randn(6, generator=g)
    targets = {"a": (x @ w).unsqueeze(1), "b": (x @ w + x[:, 0] ** 2).unsqueeze(1), "c": x[:, 1:2] - x[:, 2:3]}
    return TensorLoader(x, targets, device=device)


ARCHITECTURES = {"tree": _tree, "separate": lambda: BranchedNetwork.separate(6, [8, 8], TASKS)}
INCOMPATIBLE = {
    ("separate", "mgda_ub"): (ValueError, "has none"),
    ("separate", "gradnorm"): (NotImplementedError, "BranchedNetwork does not define a last shared layer"),
}


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "fixed"])
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_the_branched_network_trains_with_every_weighting_method(
    architecture: str, method: str, device: torch.device
) -> None:
    torch.manual_seed(0)
    model = ARCHITECTURES[architecture]()
    tasks = [Task(t, mse_loss) for t in TASKS]
    weighting = get_weighting(method, list(TASKS))
    if (architecture, method) in INCOMPATIBLE:
        error, message = INCOMPATIBLE[architecture, method]
        with pytest.raises(error, match=message):
            fit(model, tasks, weighting, _data(device), epochs=1, device=device, progress=False)
        return
    history = fit(model, tasks, weighting, _data(device), epochs=100, lr=1e-2, device=device, progress=False)
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.7 * first, f"{architecture} + {method}: loss {first:.3f} -> {last:.3f} did not fall"

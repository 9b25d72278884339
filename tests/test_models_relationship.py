"""Multilinear Relationship Networks: the model contract, the flip-flop in the forward pass, every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.loaders import TensorLoader
from mtl_course.losses import mse_loss
from mtl_course.models import MultilinearRelationshipNetwork, fix_scale, flip_flop_update, tensor_normal_nll
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = {"a": 1, "b": 1, "c": 1}
METHODS = [m for m in available_methods() if m != "fixed"]


def _data(device: torch.device) -> TensorLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    w = torch.randn(6, generator=g)
    targets = {"a": (x @ w).unsqueeze(1), "b": (x @ w + x[:, 0] ** 2).unsqueeze(1), "c": (-x @ w).unsqueeze(1)}
    return TensorLoader(x, targets, device=device)


def test_parameters_are_covered_once_and_outputs_are_linear_heads() -> None:
    torch.manual_seed(0)
    model = MultilinearRelationshipNetwork.mlp(6, [8], {"a": 2, "b": 2})
    ids = [id(p) for p in model.shared_parameters()] + [id(p) for t in model.tasks for p in model.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    x = torch.randn(5, 6)
    out = model.eval()(x)
    z = model.trunk(x)
    torch.testing.assert_close(out["b"], z @ model.weights["b"] + model.biases["b"])
    assert model.weight_tensor().shape == (8, 2, 2)
    assert torch.equal(model.weight_tensor()[..., 1], model.weights["b"])


def test_penalty_is_the_tensor_normal_nll_and_the_identity_prior_is_ridge() -> None:
    torch.manual_seed(0)
    model = MultilinearRelationshipNetwork.mlp(4, [], TASKS, update_every=0)
    W = model.weight_tensor()
    D = W.numel()
    ridge = 0.5 * W.pow(2).sum() + 0.5 * D * torch.log(torch.tensor(2 * torch.pi))
    torch.testing.assert_close(model.penalty(), ridge)
    torch.testing.assert_close(model.penalty(), tensor_normal_nll(W, model.covariances()))


def test_a_training_forward_updates_the_task_covariance_and_evaluation_does_not() -> None:
    torch.manual_seed(0)
    model = MultilinearRelationshipNetwork.mlp(4, [], TASKS, update_every=2)
    W = model.weight_tensor().detach()
    expected = fix_scale([torch.eye(4), torch.eye(1), flip_flop_update(W, model.covariances(), 2, eps=1e-3)])[2]
    model.eval()(torch.zeros(2, 4))
    assert torch.equal(model.task_covariance, torch.eye(3)) and model.updates == 0
    model.train()(torch.zeros(2, 4))
    torch.testing.assert_close(model.task_covariance, expected)
    model(torch.zeros(2, 4))  # the second training forward: no update (every 2)
    assert model.updates == 1
    assert torch.equal(model.feature_covariance, torch.eye(4)), "only the task covariance is updated by default"


def test_full_flip_flop_updates_all_three_with_fixed_traces() -> None:
    torch.manual_seed(0)
    model = MultilinearRelationshipNetwork.mlp(4, [], {"a": 2, "b": 2, "c": 2}, update=("feature", "class", "task"))
    model.train()(torch.zeros(1, 4))
    traces = [round(torch.trace(c).item(), 5) for c in model.covariances()]
    assert traces == [4.0, 2.0, 3.0]
    assert not torch.equal(model.feature_covariance, torch.eye(4))


@pytest.mark.parametrize("method", METHODS)
def test_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    torch.manual_seed(0)
    model = MultilinearRelationshipNetwork.mlp(6, [16], TASKS)
    tasks = [Task(t, mse_loss) for t in TASKS]
    history = fit(
        model,
        tasks,
        get_weighting(method, list(TASKS)),
        _data(device),
        epochs=40,
        lr=1e-2,
        device=device,
        penalty=1e-3,
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.7 * first, f"MRN + {method}: loss {first:.3f} -> {last:.3f} did not fall"
    assert model.updates > 0


def test_gradnorm_without_a_trunk_names_the_reason(device: torch.device) -> None:
    model = MultilinearRelationshipNetwork.mlp(6, [], TASKS)
    tasks = [Task(t, mse_loss) for t in TASKS]
    with pytest.raises(NotImplementedError, match="shares no layer"):
        fit(
            model, tasks, get_weighting("gradnorm", list(TASKS)), _data(device), epochs=1, device=device, progress=False
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": {"a": 1, "b": 2}}, "one output size D_2"),
        ({"update": ("tasks",)}, r"unknown covariance\(s\) \['tasks'\]"),
        ({"update_every": -1}, "update_every must be an int >= 0"),
        ({"eps": float("nan")}, "eps must be"),
        ({"task_covariance": torch.eye(2)}, r"task_covariance must be \(3, 3\)"),
        ({"tasks": {}}, "at least one task"),
    ],
)
def test_bad_arguments_name_what_is_wrong(kwargs: dict, message: str) -> None:
    args = {"tasks": TASKS} | kwargs
    with pytest.raises(ValueError, match=message):
        MultilinearRelationshipNetwork.mlp(4, [], **args)


def test_wrong_input_width_and_unknown_task_are_refused() -> None:
    model = MultilinearRelationshipNetwork.mlp(4, [], TASKS)
    with pytest.raises(ValueError, match=r"features of shape \(N, 4\)"):
        model.eval()(torch.zeros(2, 5))
    with pytest.raises(KeyError, match="unknown task 'z'"):
        list(model.task_parameters("z"))

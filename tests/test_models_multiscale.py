"""The two-scale network of lecture B1: the model contract, input checks, and training with every weighting."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.indoor_scenes import make_indoor_scenes
from mtl_course.experiments.eigen_fergus import build_scene_network, scene_tasks
from mtl_course.models.multiscale import MultiScaleNet, MultiScaleTrunk
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = {"depth": 1, "normals": 3, "semantic": 4}


def test_outputs_and_parameter_partition() -> None:
    net = MultiScaleNet(3, 16, TASKS, unit=["normals"])
    out = net(torch.randn(2, 3, 16, 16))
    assert out["depth"].shape == (2, 16, 16) and out["semantic"].shape == (2, 4, 16, 16)
    torch.testing.assert_close(out["normals"].norm(dim=1), torch.ones(2, 16, 16))
    ids = [id(p) for p in net.shared_parameters()] + [id(p) for t in net.tasks for p in net.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())
    z = net.encode(torch.randn(2, 3, 16, 16))
    assert set(net.decode(z)) == set(TASKS)


def test_single_task_network_has_the_same_trunk() -> None:
    mtl, stl = MultiScaleNet(3, 16, TASKS), MultiScaleNet(3, 16, {"depth": 1})
    assert mtl.parameter_counts()["shared"] == stl.parameter_counts()["shared"]
    assert mtl.parameter_counts()["depth"] == stl.parameter_counts()["depth"]


def test_the_coarse_scale_sees_the_whole_image() -> None:
    """Through the fully connected layers, a change in one corner moves the coarse features in the far corner."""
    torch.manual_seed(0)
    trunk = MultiScaleTrunk(3, 16)
    x = torch.randn(1, 3, 16, 16, requires_grad=True)
    trunk(x)[0, : trunk.width, -1, -1].sum().backward()
    assert x.grad[0, :, :4, :4].abs().sum() > 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MultiScaleTrunk(3, 12), "multiple of 8"),
        (lambda: MultiScaleNet(3, 16, {"depth": 1}, unit=["normals"]), "not among the tasks"),
        (lambda: MultiScaleNet(3, 16, {}), "at least one task"),
    ],
)
def test_bad_construction_names_the_problem(build, message) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        build()


def test_wrong_image_shape_names_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        MultiScaleNet(3, 16, TASKS)(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "fixed"])
def test_trains_with_every_weighting_method(method: str) -> None:
    data = make_indoor_scenes(16, size=8, seed=0)
    torch.manual_seed(0)
    net = build_scene_network(data, list(TASKS)[:2] + ["semantic"])
    tasks = scene_tasks()
    loader = data.loader(batch_size=None, shuffle=False)

    def total() -> float:
        with torch.no_grad():
            x, ys = data.batch()
            out = net(x)
            return sum(float(t.loss(out[t.name], ys[t.name])) for t in tasks)

    before = total()
    fit(net, tasks, get_weighting(method, [t.name for t in tasks]), loader, epochs=30, lr=1e-2, progress=False)
    assert total() < before, f"{method}: the summed loss did not fall"

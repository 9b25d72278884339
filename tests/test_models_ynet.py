"""Y-Net from the course's blocks: outputs, which losses reach which parameters, and every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.biopsy import make_biopsy
from mtl_course.losses import WeightedCrossEntropy, cross_entropy
from mtl_course.models import BottleneckHead, HardSharing, UNetDecoder, UNetEncoder, y_net
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = ["segmentation", "diagnosis"]
METHODS = [m for m in available_methods() if m != "fixed"]
#: MGDA-UB needs one shared tensor z; a U-Net encoder shares a list of feature maps.
INCOMPATIBLE = {"mgda_ub": (ValueError, "has none")}


def test_structure_and_outputs() -> None:
    model = y_net(1, [4, 8, 16], n_tissues=3, n_classes=5)
    assert isinstance(model, HardSharing) and isinstance(model.trunk, UNetEncoder)
    assert isinstance(model.heads["segmentation"], UNetDecoder)
    assert isinstance(model.heads["diagnosis"], BottleneckHead)
    out = model(torch.zeros(2, 1, 16, 16))
    assert tuple(out["segmentation"].shape) == (2, 3, 16, 16) and tuple(out["diagnosis"].shape) == (2, 5)
    counts = model.parameter_counts()
    assert counts["diagnosis"] == 16 * 5 + 5  # one linear layer on the pooled bottleneck
    assert counts["total"] == sum(p.numel() for p in model.parameters())


def test_each_loss_reaches_its_branch_and_the_encoder_only() -> None:
    torch.manual_seed(0)
    model = y_net(1, [4, 8], 3, 3)
    data = make_biopsy(4, seed=1)
    out = model(data.x)
    cross_entropy(out["diagnosis"], data.targets["diagnosis"]).backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.heads["segmentation"].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.trunk.parameters())
    model.zero_grad(set_to_none=True)
    out = model(data.x)
    WeightedCrossEntropy(torch.ones(3))(out["segmentation"], data.targets["segmentation"]).backward()
    assert all(p.grad is None for p in model.heads["diagnosis"].parameters())
    assert all(p.grad is not None for p in model.trunk.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_y_net_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    torch.manual_seed(0)
    model = y_net(1, [4, 8], 3, 3)
    data = make_biopsy(24, seed=0, noise=0.2)
    tasks = [Task("segmentation", WeightedCrossEntropy(torch.ones(3))), Task("diagnosis", cross_entropy)]
    weighting = get_weighting(method, TASKS)
    loader = [data.batch(device)]
    if method in INCOMPATIBLE:
        error, message = INCOMPATIBLE[method]
        with pytest.raises(error, match=message):
            fit(model, tasks, weighting, loader, epochs=1, device=device, progress=False)
        return
    history = fit(model, tasks, weighting, loader * 1, epochs=30, lr=1e-2, device=device, progress=False)
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.9 * first, f"Y-Net + {method}: loss {first:.3f} -> {last:.3f} did not fall"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="two different task names"):
        y_net(1, [4, 8], 3, 3, segmentation="a", classification="a")
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        y_net(1, [4, 8], 3, 1)
    with pytest.raises(ValueError, match="needs H and W divisible by 2"):
        y_net(1, [4, 8], 3, 3)(torch.zeros(1, 1, 15, 15))

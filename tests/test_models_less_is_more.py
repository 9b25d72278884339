"""mtl_course.models.less_is_more: a shared encoder, a view head and one shared landmark decoder (B11).

Covers the model contract, the parameter counts against a count by hand, the bad inputs, and that the joint
network trains with every registered weighting method (the architecture x weighting test, on the B11 data).
"""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.ultrasound_views import make_ultrasound_views
from mtl_course.experiments.less_is_more import view_tasks
from mtl_course.models import HardSharing, ViewLandmarkNet
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")


def _conv(a: int, b: int, k: int) -> int:
    return a * b * k * k + b


def test_outputs_and_parameter_counts_by_hand() -> None:
    net = ViewLandmarkNet(views=4, landmarks=8, channels=(8, 16))
    out = net(torch.zeros(3, 1, 32, 32))
    assert out["view"].shape == (3, 4) and out["landmarks"].shape == (3, 8, 16, 16)
    counts = net.parameter_counts()
    assert counts["shared"] == _conv(1, 8, 3) + _conv(8, 16, 3)
    assert counts["view"] == _conv(16, 16, 3) + 16 * 4 + 4
    assert counts["landmarks"] == _conv(16, 16, 3) + _conv(16, 8, 1)
    assert (
        counts["total"]
        == counts["shared"] + counts["view"] + counts["landmarks"]
        == sum(p.numel() for p in net.parameters())
    )


def test_single_task_networks_have_the_same_layers() -> None:
    joint = ViewLandmarkNet(4, 8)
    classifier, one_view = ViewLandmarkNet(4, None), ViewLandmarkNet(None, 2)
    assert classifier.tasks == ["view"] and one_view.tasks == ["landmarks"]
    assert (
        classifier.parameter_counts()["total"]
        == joint.parameter_counts()["total"] - joint.parameter_counts()["landmarks"]
    )
    assert one_view.parameter_counts()["landmarks"] == joint.parameter_counts()["landmarks"] - 6 * 17  # 6 fewer maps


def test_it_is_a_hard_sharing_model_whose_decode_of_encode_is_forward() -> None:
    torch.manual_seed(0)
    net = ViewLandmarkNet(4, 8)
    assert isinstance(net, HardSharing) and net.has_shared_representation
    x = torch.randn(2, 1, 32, 32)
    z = net.encode(x)
    assert z.shape == (2, 16, 8, 8)
    for t, y in net.decode(z).items():
        torch.testing.assert_close(y, net(x)[t])
    assert [tuple(p.shape) for p in net.last_shared_layer()] == [(16, 8, 3, 3), (16,)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs views, landmarks or both"),
        ({"views": 0}, "views must be a positive int"),
        ({"landmarks": 2.5}, "landmarks must be a positive int"),
        ({"views": True}, "views must be a positive int"),
    ],
)
def test_bad_arguments_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ViewLandmarkNet(**kwargs)


def test_a_wrong_input_is_named() -> None:
    net = ViewLandmarkNet(4, 8)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\), got \(2, 3, 32, 32\)"):
        net(torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "fixed"])
def test_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    torch.manual_seed(0)
    data = make_ultrasound_views(32, size=16, seed=0)
    net = ViewLandmarkNet(4, 8, channels=(6, 8))
    history = fit(
        net,
        view_tasks(),
        get_weighting(method, ["view", "landmarks"]),
        data.loader(batch_size=None, device=device),
        epochs=25,
        lr=1e-2,
        device=device,
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.8 * first, f"{method}: loss {first:.3f} -> {last:.3f} did not fall"


def test_fixed_weights_train_too(device: torch.device) -> None:
    torch.manual_seed(0)
    data = make_ultrasound_views(32, size=16, seed=0)
    net = ViewLandmarkNet(4, 8, channels=(6, 8))
    weighting = get_weighting("fixed", ["view", "landmarks"], weights={"view": 2.0, "landmarks": 1.0})
    history = fit(
        net, view_tasks(), weighting, data.loader(device=device), epochs=25, lr=1e-2, device=device, progress=False
    )
    assert history["train_loss"].iloc[-1] < 0.8 * history["train_loss"].iloc[0]

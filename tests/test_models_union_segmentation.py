"""mtl_course.models.union_segmentation: one output layer over the union of the modalities' labels.

Covers the model contract, the bad inputs, and that the network trains with every registered weighting method
(the architecture x weighting test of ``tests/test_architecture_x_weighting.py``, on the modality data).
"""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.modalities import MODALITIES, N_CLASSES, make_modalities
from mtl_course.experiments.moeskops import build_union_network
from mtl_course.losses import cross_entropy
from mtl_course.models import UnionSegmentationNet
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(tasks=MODALITIES) -> UnionSegmentationNet:
    torch.manual_seed(0)
    return UnionSegmentationNet(tasks, 1, [4, 4], [1, 2], hidden=8, n_classes=N_CLASSES)


def test_every_task_reads_the_same_union_output() -> None:
    net = _net()
    out = net(torch.randn(3, 1, 16, 16))
    assert list(out) == list(MODALITIES)
    assert all(out[m] is out["brain"] for m in MODALITIES)
    assert out["brain"].shape == (3, N_CLASSES, 16, 16)


def test_parameters_are_all_shared_and_counted_once() -> None:
    net = _net()
    counts = net.parameter_counts()
    assert counts["shared"] == counts["total"] == sum(p.numel() for p in net.parameters())
    assert all(counts[m] == 0 for m in MODALITIES)
    # the output layer, by hand: hidden x classes weights + one bias per class
    assert sum(p.numel() for p in net.last_shared_layer()) == 8 * N_CLASSES + N_CLASSES


def test_a_dedicated_network_is_the_same_class_and_size() -> None:
    joint, dedicated = build_union_network(MODALITIES), build_union_network(["cta"])
    assert type(joint) is type(dedicated)
    assert joint.parameter_counts()["total"] == dedicated.parameter_counts()["total"]


def test_decode_of_encode_is_forward_and_the_receptive_field_is_as_stated() -> None:
    net = _net().eval()
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(net.decode(net.encode(x))["cta"], net(x)["cta"])
    # without the per-image normalisation (image-wide statistics), a pixel's output depends on the inputs
    # within (receptive_field - 1) / 2 = 3 pixels, and no further
    for i, layer in enumerate(net.features):
        if isinstance(layer, torch.nn.GroupNorm):
            net.features[i] = torch.nn.Identity()
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    net(x)["brain"][0, :, 8, 8].sum().backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()[:, 0]
    assert net.receptive_field == 7 and rows.min() == 8 - 3 and rows.max() == 8 + 3


def test_resolution_is_kept_for_any_image_size() -> None:
    assert _net()(torch.randn(1, 1, 19, 23))["breast"].shape == (1, N_CLASSES, 19, 23)


def test_bad_inputs_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="one dilation per convolution"):
        UnionSegmentationNet(["a"], 1, [4, 4], [1], 8, 3)
    with pytest.raises(ValueError, match="channels must be a non-empty"):
        UnionSegmentationNet(["a"], 1, [], [], 8, 3)
    with pytest.raises(ValueError, match="n_classes counts the background"):
        UnionSegmentationNet(["a"], 1, [4], [1], 8, 1)
    with pytest.raises(ValueError, match="at least one task"):
        UnionSegmentationNet([], 1, [4], [1], 8, 3)
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\), got shape \(2, 3, 8, 8\)"):
        _net()(torch.zeros(2, 3, 8, 8))
    with pytest.raises(KeyError, match="unknown task 'liver'"):
        list(_net().task_parameters("liver"))


#: Methods that need every task's gradient to be non-zero in every batch: IMTL-G divides by the norm of each task's
#: gradient, and a mini-batch without images of a modality gives that task a zero loss and a zero gradient.
NEEDS_EVERY_TASK_IN_EVERY_BATCH = ("imtl_g",)


def _loader(device: torch.device, batch_size: int | None = 4):
    data = make_modalities(8, size=16, seed=0)
    return data.loader(batch_size=batch_size, seed=0, device=device)  # batches of 4: some lack a modality


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "fixed"])
def test_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    """Every method applies: the network has one shared representation (MGDA-UB) and a shared last layer
    (GradNorm). Mini-batches of 4 leave some modality out of some batches (that task's loss is zero); the
    methods that cannot take a zero task gradient train on full batches instead."""
    torch.manual_seed(0)
    net = UnionSegmentationNet(MODALITIES, 1, [6, 6], [1, 2], hidden=8, n_classes=N_CLASSES)
    tasks = [Task(m, cross_entropy) for m in MODALITIES]
    history = fit(
        net,
        tasks,
        get_weighting(method, list(MODALITIES)),
        _loader(device, None if method in NEEDS_EVERY_TASK_IN_EVERY_BATCH else 4),
        epochs=8,
        lr=1e-2,
        device=device,
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.7 * first, f"{method}: loss {first:.3f} -> {last:.3f} did not fall"


def test_fixed_weights_train_too(device: torch.device) -> None:
    torch.manual_seed(0)
    net = _net()
    weighting = get_weighting("fixed", list(MODALITIES), weights={"brain": 1.0, "breast": 2.0, "cta": 2.0})
    tasks = [Task(m, cross_entropy) for m in MODALITIES]
    history = fit(net, tasks, weighting, _loader(device), epochs=8, lr=1e-2, device=device, progress=False)
    assert history["train_loss"].iloc[-1] < 0.7 * history["train_loss"].iloc[0]


@pytest.mark.parametrize("method", NEEDS_EVERY_TASK_IN_EVERY_BATCH)
def test_a_batch_without_a_modality_stops_imtl_g_with_an_error_naming_the_tasks(method: str, device) -> None:
    torch.manual_seed(0)
    net = _net()
    tasks = [Task(m, cross_entropy) for m in MODALITIES]
    with pytest.raises(ValueError, match=r"IMTL-G divides by every task's gradient norm, but task\(s\) \['"):
        fit(
            net,
            tasks,
            get_weighting(method, list(MODALITIES)),
            _loader(device),
            epochs=2,
            device=device,
            progress=False,
        )

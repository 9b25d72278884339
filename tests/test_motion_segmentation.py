"""Lecture B16 (Qin et al., MICCAI 2018, arXiv 1806.04066): the cine generator, the warp, the motion loss, the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data import IGNORE_INDEX, MultiTaskData
from mtl_course.data.cine import make_cine
from mtl_course.experiments.motion_segmentation import (
    cine_scores,
    labelled_frames_only,
    motion_segmentation_tasks,
    run_motion_segmentation,
)
from mtl_course.losses import MotionLoss, flow_smoothness, mse_loss
from mtl_course.models.motion_segmentation import MotionSegmentationNet, warp
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting


# -- data --------------------------------------------------------------------------------------------
def test_cine_labels_only_ed_and_es_and_the_cavity_contracts() -> None:
    data = make_cine(3, n_frames=10, size=32, seed=1)
    frame = data.info["frame"]
    labelled = (data.targets["segmentation"] != IGNORE_INDEX).reshape(data.n, -1).all(1)
    assert np.array_equal(labelled, np.isin(frame, (0, 5)))
    assert np.array_equal(data.x[:, 0], np.repeat(data.x[frame == 0, 1], 10, axis=0))  # the source is the ED frame
    cavity = (data.truth["segmentation"] == 2).reshape(3, 10, -1).sum(-1)
    assert (cavity[:, 0] > 1.5 * cavity[:, 5]).all()  # ED cavity much larger than ES
    muscle = (data.truth["segmentation"] == 1).reshape(3, 10, -1).sum(-1)
    assert np.abs(muscle / muscle[:, :1] - 1).max() < 0.25  # the myocardium keeps (about) its area


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_subjects": 0}, "at least one subject"),
        ({"n_subjects": 1, "n_frames": 9}, "even number"),
        ({"n_subjects": 1, "noise": float("nan")}, "noise and max_shift"),
        ({"n_subjects": 1, "size": 8}, "16x16"),
    ],
)
def test_cine_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_cine(**kwargs)


# -- the warp ------------------------------------------------------------------------------------------
def test_warp_by_a_constant_flow_is_a_known_translation() -> None:
    """A flow (u, v) = (2, -1) pixels: the output at (y, x) is the input at (y - 1, x + 2), away from the border."""
    image = torch.randn(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    flow = torch.zeros(2, 2, 12, 12, dtype=torch.float64)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    out = warp(image, flow)
    assert torch.allclose(out[..., 1:, :-2], image[..., :-1, 2:], atol=1e-12)
    half = torch.zeros_like(flow)
    half[:, 0] = 0.5  # half a pixel to the right: bilinear interpolation, written out
    expected = 0.5 * image[..., :-1] + 0.5 * image[..., 1:]
    assert torch.allclose(warp(image, half)[..., :-1], expected, atol=1e-12)


def test_warp_zero_flow_is_the_identity_and_bad_shapes_raise() -> None:
    image = torch.rand(1, 1, 5, 7)
    assert torch.allclose(warp(image, torch.zeros(1, 2, 5, 7)), image, atol=1e-6)
    with pytest.raises(ValueError, match=r"flow \(B, 2, H, W\)"):
        warp(image, torch.zeros(1, 3, 5, 7))
    with pytest.raises(ValueError, match="same batch size"):
        warp(image, torch.zeros(1, 2, 5, 6))


# -- the losses -----------------------------------------------------------------------------------------
def test_flow_smoothness_gradient_matches_finite_differences() -> None:
    flow = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    assert torch.autograd.gradcheck(flow_smoothness, (flow,))


def test_motion_loss_is_warp_mse_plus_weighted_smoothness_and_skips_unlabelled_rows() -> None:
    g = torch.Generator().manual_seed(4)
    pred, target = torch.randn(3, 3, 6, 6, generator=g), torch.randn(3, 1, 6, 6, generator=g)
    value = MotionLoss(0.3)(pred, target)
    by_hand = ((pred[:, 0] - target[:, 0]) ** 2).mean() + 0.3 * flow_smoothness(pred[:, 1:])
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-6)
    target[1] = math.nan
    keep = [0, 2]
    expected = mse_loss(pred[keep, :1], target[keep]) + 0.3 * flow_smoothness(pred[keep, 1:])
    assert MotionLoss(0.3)(pred, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert MotionLoss(0.3)(pred, torch.full_like(target, math.nan)).item() == 0.0
    with pytest.raises(ValueError, match="MotionLoss expects"):
        MotionLoss()(pred[:, :2], target)
    with pytest.raises(ValueError, match="smoothness weight"):
        MotionLoss(float("nan"))


def test_motion_loss_prefers_the_true_translation() -> None:
    """The paper's point of the image term: the flow that undoes the motion scores lowest."""
    image = make_cine(1, seed=0).x[:1, :1]
    source = torch.as_tensor(image)
    target = warp(source, torch.full((1, 2, 32, 32), 1.0))
    losses = {}
    for shift in (0.0, 0.5, 1.0, 1.5):
        flow = torch.full((1, 2, 32, 32), shift)
        losses[shift] = MotionLoss(0.01)(torch.cat([warp(source, flow), flow], 1), target).item()
    assert min(losses, key=losses.get) == 1.0


# -- the model ------------------------------------------------------------------------------------------
def test_model_contract_and_bad_input() -> None:
    net = MotionSegmentationNet([4, 8])
    shared = {id(p) for p in net.shared_parameters()}
    per_task = [{id(p) for p in net.task_parameters(t)} for t in net.tasks]
    assert shared.isdisjoint(per_task[0]) and shared.isdisjoint(per_task[1]) and per_task[0].isdisjoint(per_task[1])
    assert len(shared) + sum(map(len, per_task)) == len(list(net.parameters()))
    with pytest.raises(ValueError, match=r"pair of frames \(B, 2, H, W\)"):
        net(torch.rand(2, 1, 16, 16))
    with pytest.raises(KeyError, match="unknown task"):
        list(net.task_parameters("flow"))
    with pytest.raises(ValueError, match="at least 2 classes"):
        MotionSegmentationNet([4, 8], n_classes=1)


def test_the_warped_output_is_the_source_warped_by_the_predicted_flow() -> None:
    torch.manual_seed(0)
    net = MotionSegmentationNet([4, 8])
    x = torch.rand(2, 2, 16, 16)
    motion = net(x)["motion"]
    assert torch.allclose(motion[:, :1], warp(x[:, :1], motion[:, 1:]), atol=1e-6)


METHODS = [m for m in available_methods() if m != "fixed"]


@pytest.mark.parametrize("method", METHODS)
def test_the_model_trains_with_every_weighting_method(method: str) -> None:
    torch.manual_seed(0)
    data = make_cine(2, n_frames=4, size=16, seed=0)
    net = MotionSegmentationNet([8, 16])  # with 4 channels, some seeds start with a dead (all-ReLU-zero) branch
    weighting = get_weighting(method, list(net.tasks))
    if method == "mgda_ub":
        with pytest.raises(ValueError, match="has none"):
            fit(net, motion_segmentation_tasks(), weighting, [data.batch()], epochs=1, progress=False)
        return
    history = fit(net, motion_segmentation_tasks(), weighting, [data.batch()] * 1, epochs=25, lr=1e-2, progress=False)
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.8 * first, f"{method}: loss {first:.3f} -> {last:.3f} did not fall"


# -- the recipe -----------------------------------------------------------------------------------------
def test_labelled_frames_only_and_its_errors() -> None:
    data = make_cine(2, seed=0)
    rows = labelled_frames_only(data)
    assert rows.n == 4 and np.isnan(rows.targets["motion"]).all()
    empty = data.with_targets(
        {"motion": data.targets["motion"], "segmentation": np.full_like(data.targets["segmentation"], IGNORE_INDEX)}
    )
    with pytest.raises(ValueError, match="no labelled frame"):
        labelled_frames_only(empty)


def test_recipe_runs_and_scores() -> None:
    result, scores = run_motion_segmentation([0], n_subjects=2, n_test=2, epochs=2, channels=(4, 8))
    assert list(scores["condition"]) == ["segmentation only", "joint"]
    assert set(scores.columns) >= {"dice_unlabelled", "dice_labelled", "warp_mse", "no_motion_mse", "roughness"}
    assert scores[["dice_unlabelled", "dice_labelled"]].stack().between(0, 1).all()
    with pytest.raises(ValueError, match="true label maps"):
        cine_scores(result.models[0], MultiTaskData(result.runs[0].test.x, result.runs[0].test.targets))
    with pytest.raises(ValueError, match="one frame index per row"):
        cine_scores(result.models[0], result.runs[0].test.take([0, 1]))
    with pytest.raises(ValueError, match="at least one seed"):
        run_motion_segmentation([])

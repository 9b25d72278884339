"""The face losses and metric: HyperFace's visibility-weighted landmark loss as a task loss, the normalised error."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.losses import mse_loss, visible_landmark_loss
from mtl_course.metrics import landmark_error


def _case(b: int = 6, n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, 2 * n, generator=g)
    target = torch.cat([torch.randn(b, n, 2, generator=g), (torch.rand(b, n, 1, generator=g) < 0.7).float()], -1)
    return pred, target


def _loop(pred: torch.Tensor, target: torch.Tensor) -> float:
    """HyperFace's L_L = 1/(2N) sum_i v_i ((x_i - a_i)^2 + (y_i - b_i)^2), per face, averaged over labelled faces."""
    total, faces = 0.0, 0
    for p, t in zip(pred.tolist(), target.tolist(), strict=True):
        if any(math.isnan(v) for row in t for v in row):
            continue
        n = len(t)
        total += sum(v * ((p[2 * i] - a) ** 2 + (p[2 * i + 1] - b) ** 2) for i, (a, b, v) in enumerate(t)) / (2 * n)
        faces += 1
    return total / faces


def test_visible_landmark_loss_matches_the_formula_and_skips_non_faces() -> None:
    pred, target = _case()
    target[2] = math.nan
    assert visible_landmark_loss(pred, target).item() == pytest.approx(_loop(pred, target), rel=1e-6)
    mask = torch.tensor([True, True, True, False, True, True])
    keep = [0, 1, 4, 5]
    assert visible_landmark_loss(pred, target, mask).item() == pytest.approx(_loop(pred[keep], target[keep]), rel=1e-6)


def test_gradient_matches_the_closed_form_and_is_zero_where_hidden_or_unlabelled() -> None:
    pred, target = _case(b=4)
    target[3] = math.nan
    pred.requires_grad_(True)
    visible_landmark_loss(pred, target).backward()
    labelled = 3
    n = target.shape[1]
    v = torch.nan_to_num(target[..., 2]).repeat_interleave(2, dim=1)
    want = v * (pred.detach() - torch.nan_to_num(target[..., :2]).flatten(1)) / (n * labelled)
    want[3] = 0.0
    torch.testing.assert_close(pred.grad, want)


def test_with_every_landmark_visible_it_is_tcdcns_squared_error() -> None:
    """With v = 1, 1/(2N) sum_i ||p_i - t_i||^2 is the mean squared error over the 2N coordinates."""
    pred, target = _case(seed=3)
    target[..., 2] = 1.0
    assert visible_landmark_loss(pred, target).item() == pytest.approx(
        mse_loss(pred, target[..., :2].flatten(1)).item()
    )


def test_no_labelled_face_gives_zero_not_nan() -> None:
    pred = torch.randn(2, 10, requires_grad=True)
    loss = visible_landmark_loss(pred, torch.full((2, 5, 3), math.nan))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize(
    ("pred", "target"),
    [
        (torch.zeros(2, 8), torch.zeros(2, 5, 3)),
        (torch.zeros(2, 10), torch.zeros(2, 5, 2)),
        (torch.zeros(2, 10), torch.zeros(2, 10)),
    ],
)
def test_wrong_shapes_name_the_expected_ones(pred: torch.Tensor, target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"pred \(B, 2N\) and target \(B, N, 3\)"):
        visible_landmark_loss(pred, target)
    with pytest.raises(ValueError, match=r"pred \(B, 2N\) and target \(B, N, 3\)"):
        landmark_error(pred, target)


def test_landmark_error_matches_a_loop_and_is_scale_free() -> None:
    pred, target = _case(b=5, seed=4)
    target[1] = math.nan
    want = []
    for p, t in zip(pred.tolist(), target.tolist(), strict=True):
        if math.isnan(t[0][0]):
            continue
        eyes = math.dist(t[0][:2], t[1][:2])
        want.append(sum(math.dist(p[2 * i : 2 * i + 2], row[:2]) for i, row in enumerate(t)) / len(t) / eyes)
    assert landmark_error(pred, target) == pytest.approx(sum(want) / len(want), rel=1e-5)
    scaled = target.clone()
    scaled[..., :2] *= 3.0
    assert landmark_error(3.0 * pred, scaled) == pytest.approx(landmark_error(pred, target), rel=1e-5)
    assert math.isnan(landmark_error(pred, torch.full_like(target, math.nan)))

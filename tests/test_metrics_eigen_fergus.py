"""The error measures of Eigen & Fergus (ICCV 2015, arXiv 1411.4734) against NumPy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, jaccard_score

from mtl_course.metrics import (
    accuracy,
    depth_abs_rel,
    depth_delta,
    depth_rmse_log,
    mean_iou,
    normal_angle_errors,
    normal_mean_angle,
    normal_median_angle,
    normal_within,
)


def _depths(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    log_pred = torch.randn(2, 6, 7, generator=g, dtype=torch.float64) * 0.3
    log_target = log_pred + torch.randn(2, 6, 7, generator=g, dtype=torch.float64) * 0.2
    log_target[0, 1, :3] = float("nan")
    return log_pred, log_target


def test_depth_metrics_against_numpy_on_the_valid_pixels() -> None:
    log_pred, log_target = _depths(0)
    valid = np.isfinite(log_target.numpy())
    d, d_true = np.exp(log_pred.numpy()[valid]), np.exp(log_target.numpy()[valid])
    assert depth_delta(log_pred, log_target) == pytest.approx(np.mean(np.maximum(d / d_true, d_true / d) < 1.25))
    assert depth_abs_rel(log_pred, log_target) == pytest.approx(np.mean(np.abs(d - d_true) / d_true))
    assert depth_rmse_log(log_pred, log_target) == pytest.approx(np.sqrt(np.mean((np.log(d) - np.log(d_true)) ** 2)))
    mask = torch.tensor([False, True])
    assert depth_rmse_log(log_pred, log_target, mask) == pytest.approx(depth_rmse_log(log_pred[1:], log_target[1:]))


def test_normal_metrics_against_a_pixel_loop() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64), dim=1)
    pred = 2.0 * torch.nn.functional.normalize(target + 0.4 * torch.randn(2, 3, 4, 5, generator=g), dim=1)
    target[1, :, 2, 3] = float("nan")
    angles = []
    for b in range(2):
        for i in range(4):
            for j in range(5):
                t = target[b, :, i, j].numpy()
                if np.isnan(t).any():
                    continue
                p = pred[b, :, i, j].numpy() / np.linalg.norm(pred[b, :, i, j].numpy())
                angles.append(np.degrees(np.arccos(np.clip(p @ t, -1, 1))))
    angles = np.array(angles)
    np.testing.assert_allclose(np.sort(normal_angle_errors(pred, target).numpy()), np.sort(angles), atol=1e-9)
    assert normal_mean_angle(pred, target) == pytest.approx(angles.mean())
    assert normal_median_angle(pred, target) == pytest.approx(np.median(angles))
    for degrees in (11.25, 22.5, 30.0):
        assert normal_within(pred, target, degrees=degrees) == pytest.approx(np.mean(angles < degrees))


def test_pixel_accuracy_and_mean_iou_against_scikit_learn() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 6, 6, generator=g)
    target = torch.randint(0, 3, (3, 6, 6), generator=g)  # class 3 never in the labels
    target[0, 0] = -100
    keep = target != -100
    y, p = target[keep].numpy(), logits.argmax(1)[keep].numpy()
    assert accuracy(logits, target) == pytest.approx(accuracy_score(y, p))
    assert mean_iou(logits, target) == pytest.approx(jaccard_score(y, p, average="macro"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: depth_delta(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3)), "same shape"),
        (lambda: depth_rmse_log(torch.zeros(1, 2, 2), torch.full((1, 2, 2), float("nan"))), "at least one pixel"),
        (lambda: normal_mean_angle(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)), r"\(B, 3, H, W\)"),
        (lambda: mean_iou(torch.zeros(1, 2, 2), torch.full((1, 2), -100)), "at least one labelled pixel"),
    ],
)
def test_bad_input_names_the_problem(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()

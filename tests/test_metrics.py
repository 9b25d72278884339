"""Metrics against scikit-learn and hand-checked tables; the multi-task delta in both conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course import metrics as M

pytestmark = pytest.mark.usefixtures("one_thread")


def test_accuracy_mse_mae_on_labelled_items(device):
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]], device=device)
    target = torch.tensor([0, 0, 0, -100], device=device)
    assert M.accuracy(logits, target) == pytest.approx(2 / 3)
    assert M.accuracy(logits, target, torch.tensor([True, False, True, True], device=device)) == 1.0
    pred = torch.tensor([1.0, 2.0, 4.0], device=device)
    y = torch.tensor([0.0, float("nan"), 1.0], device=device)
    assert M.mse(pred, y) == pytest.approx((1 + 9) / 2)
    assert M.mae(pred, y) == pytest.approx((1 + 3) / 2)


@pytest.mark.parametrize("seed", range(3))
def test_auc_matches_sklearn_with_ties(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.normal(size=300) + y, 1)  # rounding creates ties
    assert M.auc(torch.tensor(score), torch.tensor(y)) == pytest.approx(roc_auc_score(y, score), rel=1e-12)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="3 positives and 0 negatives"):
        M.auc(torch.rand(3), torch.ones(3))


def test_dice_matches_per_class_counting(device):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=gen).to(device)
    target = torch.randint(0, 3, (2, 4, 4), generator=gen).to(device)
    pred = logits.argmax(1).cpu().numpy()
    y = target.cpu().numpy()
    expected = np.mean([2 * ((pred == c) & (y == c)).sum() / ((pred == c).sum() + (y == c).sum()) for c in (1, 2)])
    assert M.dice(logits, target) == pytest.approx(expected)


def test_multitask_delta_on_a_hand_checked_table():
    mtl = {"seg": {"miou": 0.60, "pixacc": 0.80}, "depth": {"abs_err": 0.45}, "normal": {"mean_deg": 20.0}}
    stl = {"seg": {"miou": 0.50, "pixacc": 0.80}, "depth": {"abs_err": 0.50}, "normal": {"mean_deg": 25.0}}
    hib = {"seg": {"miou": True, "pixacc": True}, "depth": {"abs_err": False}, "normal": {"mean_deg": False}}
    # relative changes, sign-corrected: miou +0.2, pixacc 0, abs_err +0.1, mean_deg +0.2
    by_task = ((0.2 + 0.0) / 2 + 0.1 + 0.2) / 3
    flat = (0.2 + 0.0 + 0.1 + 0.2) / 4
    assert M.multitask_delta(mtl, stl, hib) == pytest.approx(by_task)
    assert M.multitask_delta(mtl, stl, hib, average="metric") == pytest.approx(flat)
    assert by_task != pytest.approx(flat)


def test_multitask_delta_names_mismatches():
    with pytest.raises(KeyError, match="task 'a': the metrics differ"):
        M.multitask_delta({"a": {"x": 1.0}}, {"a": {"y": 1.0}}, {"a": {"x": True}})
    with pytest.raises(KeyError, match="same tasks"):
        M.multitask_delta({"a": {"x": 1.0}}, {"b": {"x": 1.0}}, {"a": {"x": True}})
    with pytest.raises(ValueError, match="average must be"):
        M.multitask_delta({"a": {"x": 1.0}}, {"a": {"x": 1.0}}, {"a": {"x": True}}, average="mean")

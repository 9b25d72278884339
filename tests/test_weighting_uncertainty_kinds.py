"""Uncertainty weighting: a task that ``kinds`` does not name is a regression task (Kendall et al.'s Eq. 7)."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.weighting import UncertaintyWeighting

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kinds", [None, {}, {"seg": "classification"}])
@pytest.mark.parametrize("s0", [0.0, 0.7])
def test_an_unnamed_task_gets_the_regression_likelihood(kinds, s0, device):
    method = UncertaintyWeighting(["depth", "seg"], kinds=kinds, init_log_var=s0).to(device)
    seg_is_classification = bool(kinds)
    assert method.kinds == {"depth": "regression", "seg": "classification" if seg_is_classification else "regression"}
    losses = torch.tensor([1.5, 0.4], device=device)
    weights = method.backward({"depth": losses[0], "seg": losses[1]})
    # Eq. 7, written out: L / (2 sigma^2) + log sigma with s = log sigma^2, so the weight is e^{-s} / 2 and
    # dL/ds = -e^{-s} L / 2 + 1/2; Eq. 10 (classification) has e^{-s} and -e^{-s} L + 1/2
    regression_weight = math.exp(-s0) / 2
    seg_weight = math.exp(-s0) if seg_is_classification else regression_weight
    assert weights.tolist() == pytest.approx([regression_weight, seg_weight])
    expected_grad = [-regression_weight * 1.5 + 0.5, -seg_weight * 0.4 + 0.5]
    assert method.log_var.grad.tolist() == pytest.approx(expected_grad)

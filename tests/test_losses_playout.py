"""The soft Cohen's kappa loss of Playout, Duval & Cheriet (MICCAI 2018) and the lesion metrics of lecture B13."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score, confusion_matrix, recall_score

from mtl_course.data.fundus import make_fundus
from mtl_course.experiments.playout import LESION_LOSSES, ce_plus_kappa, kappa_on_logits
from mtl_course.losses import binary_cross_entropy, soft_kappa_loss
from mtl_course.metrics import false_positive_rate, sensitivity


def _soft_counts_loop(p: list[float], y: list[float]) -> float:
    """1 - kappa from the soft confusion counts, one pixel at a time (an independent brute force)."""
    tp = fp = fn = tn = 0.0
    for pi, yi in zip(p, y, strict=True):
        tp += pi * yi
        fp += pi * (1 - yi)
        fn += (1 - pi) * yi
        tn += (1 - pi) * (1 - yi)
    n = tp + fp + fn + tn
    p_o = (tp + tn) / n
    p_e = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    return 1 - (p_o - p_e) / (1 - p_e)


def test_soft_kappa_matches_a_loop_over_soft_counts():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(3, 1, 5, 5, generator=g) < 0.2).double()
    expected = _soft_counts_loop(p.flatten().tolist(), y.flatten().tolist())
    assert soft_kappa_loss(p, y, eps=0.0).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_on_hard_lesion_maps_one_minus_the_loss_is_sklearns_kappa(seed):
    data = make_fundus(8, size=16, seed=seed)
    y = data.targets["red"].double()
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(y.shape, generator=g, dtype=torch.float64) < 0.01
    pred = torch.where(flip, 1 - y, y)
    expected = cohen_kappa_score(y.flatten().numpy(), pred.flatten().numpy())
    assert 1 - soft_kappa_loss(pred, y, eps=0.0).item() == pytest.approx(expected, rel=1e-10)


def test_all_background_has_kappa_zero_but_pixel_accuracy_over_99_percent():
    y = make_fundus(40, size=24, seed=5).targets["bright"]
    background = torch.zeros_like(y)
    accuracy = (background == y).float().mean().item()
    assert accuracy > 0.99
    assert 1 - soft_kappa_loss(background, y).item() == pytest.approx(0.0, abs=1e-6)
    assert cohen_kappa_score(y.flatten().numpy(), background.flatten().numpy()) == 0.0


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    p = (0.05 + 0.9 * torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64)).requires_grad_()
    y = (torch.rand(2, 1, 4, 4, generator=g) < 0.3).double()
    assert torch.autograd.gradcheck(lambda q: soft_kappa_loss(q, y), (p,))


def test_missing_pixels_are_left_out():
    g = torch.Generator().manual_seed(2)
    p, y = torch.rand(2, 6, generator=g, dtype=torch.float64), (torch.rand(2, 6, generator=g) < 0.4).double()
    with_nan = y.clone()
    with_nan[1] = float("nan")
    expected = soft_kappa_loss(p[0], y[0])
    assert soft_kappa_loss(p, with_nan).item() == pytest.approx(expected.item(), rel=1e-12)
    assert soft_kappa_loss(p, y, mask=torch.tensor([True, False])).item() == pytest.approx(expected.item(), rel=1e-12)


def test_no_labelled_pixel_gives_zero_with_a_zero_gradient():
    p = torch.full((2, 3), 0.3, requires_grad=True)
    loss = soft_kappa_loss(p, torch.full((2, 3), float("nan")))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(p.grad, torch.zeros(2, 3))


@pytest.mark.parametrize(
    ("prob", "target", "error", "message"),
    [
        (torch.zeros(2, 3), torch.zeros(3, 2), ValueError, "same shape"),
        (torch.full((4,), 2.0), torch.zeros(4), ValueError, r"probabilities in \[0, 1\]"),
        (torch.tensor([0.5, float("nan")]), torch.zeros(2), ValueError, "and NaN"),
    ],
)
def test_bad_input_is_named(prob, target, error, message):
    with pytest.raises(error, match=message):
        soft_kappa_loss(prob, target)


def test_the_lesion_losses_compose_the_course_losses():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 1, 4, 4, generator=g)
    y = (torch.rand(2, 1, 4, 4, generator=g) < 0.2).float()
    kappa = soft_kappa_loss(torch.sigmoid(z), y)
    torch.testing.assert_close(kappa_on_logits(z, y), kappa)
    torch.testing.assert_close(ce_plus_kappa(z, y), binary_cross_entropy(z, y) + kappa)
    assert set(LESION_LOSSES) == {"CE", "kappa", "CE+kappa"}


def test_sensitivity_and_false_positive_rate_match_sklearn():
    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.05).astype(np.float32)
    z = rng.normal(size=500).astype(np.float32) + 2 * y
    pred = (z > 0).astype(int)
    tn, fp, fn, tp = confusion_matrix(y.astype(int), pred).ravel()
    assert sensitivity(torch.tensor(z), torch.tensor(y)) == pytest.approx(recall_score(y.astype(int), pred))
    assert false_positive_rate(torch.tensor(z), torch.tensor(y)) == pytest.approx(fp / (fp + tn))


def test_binary_metrics_name_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        sensitivity(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="no labelled item"):
        false_positive_rate(torch.zeros(2), torch.full((2,), float("nan")))
    assert np.isnan(sensitivity(torch.ones(3), torch.zeros(3)))  # no positive: undefined

"""Eigen & Fergus's losses (ICCV 2015, arXiv 1411.4734) against brute-force loops and autograd, and the
properties the paper and the slides claim for the depth loss, checked numerically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.losses import scale_invariant_depth_loss, surface_normal_loss


def _depth_loss_loop(log_pred: np.ndarray, log_target: np.ndarray, weight: float = 1.0) -> float:
    """The printed formula, one image at a time, pixel by pixel, missing pixels (NaN) skipped."""
    losses = []
    for p, t in zip(log_pred, log_target, strict=True):
        h, w = p.shape
        valid = [(i, j) for i in range(h) for j in range(w) if np.isfinite(t[i, j])]
        n = len(valid)
        d = {ij: p[ij] - t[ij] for ij in valid}
        loss = sum(v**2 for v in d.values()) / n - sum(d.values()) ** 2 / (2 * n**2)
        grad = 0.0
        for i, j in valid:
            if (i, j + 1) in d:
                grad += (d[i, j + 1] - d[i, j]) ** 2
            if (i + 1, j) in d:
                grad += (d[i + 1, j] - d[i, j]) ** 2
        losses.append(loss + weight * grad / n)
    return float(np.mean(losses))


def _images(seed: int, holes: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    log_pred = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    log_target = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    log_target[torch.rand(3, 5, 6, generator=g) < holes] = float("nan")
    return log_pred, log_target


@pytest.mark.parametrize("weight", [0.0, 1.0, 0.5])
def test_depth_loss_is_the_printed_formula_with_holes(weight: float) -> None:
    log_pred, log_target = _images(0)
    got = scale_invariant_depth_loss(log_pred, log_target, gradient_weight=weight).item()
    assert got == pytest.approx(_depth_loss_loop(log_pred.numpy(), log_target.numpy(), weight), rel=1e-10)


def test_depth_loss_gradient_matches_finite_differences_and_is_zero_at_holes() -> None:
    log_pred, log_target = _images(1)
    log_pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: scale_invariant_depth_loss(p, log_target), (log_pred,))
    scale_invariant_depth_loss(log_pred, log_target).backward()
    assert (log_pred.grad[torch.isnan(log_target)] == 0).all()


def test_the_first_two_terms_forgive_only_half_of_a_global_scale_the_gradient_term_all_of_it() -> None:
    """Multiplying D by s adds log s to every d_i. With lambda = 1/2 the first two terms are
    var(d) + mean(d)^2 / 2, so they change (only the lambda = 1 form, a variance, is invariant);
    the gradient term does not change at all."""
    log_pred, log_target = _images(2, holes=0.0)
    shift = 0.7
    base0 = scale_invariant_depth_loss(log_pred, log_target, gradient_weight=0.0)
    moved0 = scale_invariant_depth_loss(log_pred + shift, log_target, gradient_weight=0.0)
    d = log_pred - log_target
    mean_d = d.mean(dim=(1, 2))
    # with lambda = 1/2 the loss is var(d) + mean(d)^2 / 2: only half the scale error is forgiven
    expected_change = ((mean_d + shift) ** 2 - mean_d**2).mean() / 2
    assert (moved0 - base0).item() == pytest.approx(expected_change.item(), rel=1e-10)
    grad_only = scale_invariant_depth_loss(log_pred, log_target) - base0
    grad_moved = scale_invariant_depth_loss(log_pred + shift, log_target) - moved0
    assert grad_moved.item() == pytest.approx(grad_only.item(), rel=1e-10)
    # a prediction that is right up to a global scale s costs (log s)^2 / 2, its gradient term 0
    exact = scale_invariant_depth_loss(log_target + shift, log_target)
    assert exact.item() == pytest.approx(shift**2 / 2, rel=1e-12)


def test_the_gradient_term_penalises_a_blurred_edge_that_the_first_terms_barely_see() -> None:
    """A step edge predicted as a ramp: the gradient term is a larger share of the loss than for
    uncorrelated noise of the same per-pixel error (it compares local structure)."""
    target = torch.zeros(1, 1, 16, dtype=torch.float64)
    target[..., 8:] = 1.0
    ramp = torch.linspace(0, 1, 16, dtype=torch.float64).view(1, 1, 16)
    noise = target + (ramp - target)[..., torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    share = []
    for pred in (ramp, noise):
        total = scale_invariant_depth_loss(pred, target)
        first = scale_invariant_depth_loss(pred, target, gradient_weight=0.0)
        share.append(((total - first) / total).item())
    assert share[0] < share[1]  # the ramp is smooth: its error is low-frequency, the noise's high-frequency


def test_surface_normal_loss_is_the_negative_mean_dot_product_over_valid_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.nn.functional.normalize(torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64), dim=1)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64), dim=1)
    target[0, :, 1, 2] = float("nan")
    mask = torch.ones(2, dtype=torch.bool)
    mask[1] = False
    values = [
        -float(pred[b, :, i, j] @ target[b, :, i, j])
        for b in range(1)
        for i in range(4)
        for j in range(5)
        if not (i == 1 and j == 2)
    ]
    assert surface_normal_loss(pred, target, mask).item() == pytest.approx(np.mean(values), rel=1e-12)
    full_mask = mask.view(2, 1, 1, 1).expand(2, 3, 4, 5)  # as the training loop expands it
    assert surface_normal_loss(pred, target, full_mask).item() == pytest.approx(np.mean(values), rel=1e-12)


def test_surface_normal_loss_has_no_nan_gradient_at_holes() -> None:
    pred = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    target = torch.nn.functional.normalize(torch.randn(1, 3, 2, 2, dtype=torch.float64), dim=1)
    target[0, :, 0, 0] = float("nan")
    surface_normal_loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[0, :, 0, 0] == 0).all()
    # unit normals: the loss is -1 exactly when the prediction equals the target
    assert surface_normal_loss(target.nan_to_num(0.0) + 0.0, target).item() == pytest.approx(-1.0)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        surface_normal_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="same shape|shape"):
        surface_normal_loss(torch.zeros(1, 3, 3, 3), torch.zeros(1, 3, 3, 4))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        scale_invariant_depth_loss(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3))


def test_all_missing_gives_zero_with_a_graph() -> None:
    pred = torch.zeros(1, 3, 2, 2, requires_grad=True)
    loss = surface_normal_loss(pred, torch.full((1, 3, 2, 2), float("nan")))
    loss.backward()
    assert loss.item() == 0.0 and (pred.grad == 0).all()

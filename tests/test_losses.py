"""Task losses against direct computations (loops, NumPy, scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course import losses as L

pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- masks and partial labels ----------------------------------------------------------
def test_cross_entropy_averages_over_labelled_items_only(device):
    logits = torch.randn(6, 4, generator=_gen(0)).to(device)
    target = torch.tensor([0, 3, 1, 2, 2, 1], device=device)
    mask = torch.tensor([True, False, True, True, False, True], device=device)
    expected = np.mean(
        [
            -math.log(math.exp(logits[i, target[i]].item()) / sum(math.exp(v) for v in logits[i].tolist()))
            for i in range(6)
            if mask[i]
        ]
    )
    assert L.cross_entropy(logits, target, mask).item() == pytest.approx(expected, rel=1e-5)
    ignored = torch.where(mask, target, torch.full_like(target, -100))
    assert L.cross_entropy(logits, ignored).item() == pytest.approx(expected, rel=1e-5)


def test_dense_cross_entropy_with_per_sample_mask(device):
    logits = torch.randn(3, 5, 2, 2, generator=_gen(1)).to(device)
    target = torch.randint(0, 5, (3, 2, 2), generator=_gen(2)).to(device)
    mask = torch.tensor([True, False, True], device=device)
    per_pixel = [
        -torch.log_softmax(logits[b, :, i, j], 0)[target[b, i, j]].item()
        for b in (0, 2)
        for i in range(2)
        for j in range(2)
    ]
    assert L.cross_entropy(logits, target, mask).item() == pytest.approx(np.mean(per_pixel), rel=1e-5)


@pytest.mark.parametrize("loss", [L.mse_loss, L.l1_loss, L.binary_cross_entropy])
def test_no_labels_gives_zero_loss_with_zero_gradient_not_nan(loss, device):
    pred = torch.randn(4, 3, generator=_gen(3)).to(device).requires_grad_(True)
    target = torch.full((4, 3), float("nan"), device=device)
    value = loss(pred, target)
    value.backward()
    assert value.item() == 0.0 and value.requires_grad
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    pred.grad = None
    masked = loss(pred, torch.zeros(4, 3, device=device), torch.zeros(4, dtype=torch.bool, device=device))
    masked.backward()
    assert masked.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_cross_entropy_with_no_labels_is_zero_with_a_graph(device):
    logits = torch.randn(3, 4, device=device, requires_grad=True)
    value = L.cross_entropy(logits, torch.full((3,), -100, device=device))
    value.backward()
    assert value.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_regression_losses_skip_nan_targets_and_masked_samples(device):
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device=device)
    target = torch.tensor([[0.0, float("nan")], [1.0, 1.0], [0.0, 0.0]], device=device)
    mask = torch.tensor([True, True, False], device=device)
    # labelled items: (0,0): d=1 ; (1,0): d=2 ; (1,1): d=3
    assert L.mse_loss(pred, target, mask).item() == pytest.approx((1 + 4 + 9) / 3)
    assert L.l1_loss(pred, target, mask).item() == pytest.approx((1 + 2 + 3) / 3)


def test_mask_of_wrong_shape_is_explained():
    with pytest.raises(ValueError, match=r"leading dimensions of the target \(3, 2\).*\(2,\)"):
        L.mse_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(2, dtype=torch.bool))


# -- landmarks ---------------------------------------------------------------------------
def test_landmark_loss_matches_the_hyperface_sum(device):
    pred = torch.randn(4, 5, 2, generator=_gen(4)).to(device)
    target = torch.randn(4, 5, 2, generator=_gen(5)).to(device)
    visibility = (torch.rand(4, 5, generator=_gen(6)) > 0.4).float().to(device)
    mask = torch.tensor([True, True, False, True], device=device)
    per_sample = []
    for b in range(4):
        if not mask[b]:
            continue
        total = sum(
            visibility[b, i].item()
            * ((pred[b, i, 0] - target[b, i, 0]).item() ** 2 + (pred[b, i, 1] - target[b, i, 1]).item() ** 2)
            for i in range(5)
        )
        per_sample.append(total / (2 * 5))
    assert L.landmark_loss(pred, target, visibility, mask).item() == pytest.approx(np.mean(per_sample), rel=1e-5)


def test_occluded_landmarks_get_no_gradient(device):
    pred = torch.zeros(1, 3, 2, device=device, requires_grad=True)
    L.landmark_loss(pred, torch.ones(1, 3, 2, device=device), torch.tensor([[1.0, 0.0, 1.0]], device=device)).backward()
    assert pred.grad[0, 1].abs().sum().item() == 0.0 and pred.grad[0, 0].abs().sum().item() > 0


# -- normals and depth -----------------------------------------------------------------------
def test_surface_normal_loss_is_the_mean_negative_dot_product(device):
    pred = torch.randn(2, 3, 3, 4, generator=_gen(7)).to(device)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 3, 4, generator=_gen(8)), dim=1).to(device)
    mask = torch.rand(2, 3, 4, generator=_gen(9)).to(device) > 0.3
    values = []
    for b in range(2):
        for i in range(3):
            for j in range(4):
                if mask[b, i, j]:
                    n = pred[b, :, i, j] / pred[b, :, i, j].norm()
                    values.append(-(n * target[b, :, i, j]).sum().item())
    assert L.surface_normal_loss(pred, target, mask).item() == pytest.approx(np.mean(values), rel=1e-5)


def _depth_reference(log_pred, log_target, valid):
    """Eigen & Fergus's depth loss, one image at a time, with explicit loops."""
    losses = []
    for b in range(log_pred.shape[0]):
        d = (log_pred[b] - log_target[b]).numpy()
        v = valid[b].numpy()
        n = v.sum()
        if n == 0:
            continue
        ds = d[v]
        grad = 0.0
        h, w = d.shape
        for i in range(h):
            for j in range(w - 1):
                if v[i, j] and v[i, j + 1]:
                    grad += (d[i, j + 1] - d[i, j]) ** 2
        for i in range(h - 1):
            for j in range(w):
                if v[i, j] and v[i + 1, j]:
                    grad += (d[i + 1, j] - d[i, j]) ** 2
        losses.append((ds**2).sum() / n - ds.sum() ** 2 / (2 * n**2) + grad / n)
    return float(np.mean(losses))


def test_depth_loss_matches_loops_with_missing_ground_truth(device):
    log_pred = torch.randn(3, 4, 5, generator=_gen(10), dtype=torch.float64)
    log_target = torch.randn(3, 4, 5, generator=_gen(11), dtype=torch.float64)
    valid = torch.rand(3, 4, 5, generator=_gen(12)) > 0.3
    valid[1] = False  # an image without any ground truth is left out of the mean
    log_target[0, 0, 0] = float("nan")
    valid[0, 0, 0] = False
    got = L.scale_invariant_depth_loss(
        log_pred.to(device), log_target.to(device), (valid | torch.isnan(log_target)).to(device)
    )
    assert got.item() == pytest.approx(_depth_reference(log_pred, log_target, valid), rel=1e-10)


def test_depth_loss_gradient_is_finite_with_missing_pixels(device):
    log_pred = torch.zeros(1, 3, 3, device=device, requires_grad=True)
    log_target = torch.full((1, 3, 3), float("nan"), device=device)
    log_target[0, 1, 1] = 1.0
    L.scale_invariant_depth_loss(log_pred, log_target).backward()
    assert torch.isfinite(log_pred.grad).all()


# -- kappa ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_soft_kappa_on_hard_predictions_is_cohens_kappa(seed):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    y = (rng.random(200) < 0.1 + 0.2 * seed).astype(float)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    kappa = cohen_kappa_score(y, p)
    loss = L.soft_kappa_loss(torch.tensor(p, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), eps=0.0)
    assert 1 - loss.item() == pytest.approx(kappa, rel=1e-10)


def test_soft_kappa_of_all_background_is_zero_despite_high_accuracy():
    y = torch.zeros(1000)
    y[:5] = 1.0
    assert L.soft_kappa_loss(torch.zeros(1000), y).item() == pytest.approx(1.0, abs=1e-6)


# -- flow and penalties ------------------------------------------------------------------------------
def test_flow_smoothness_matches_loops(device):
    flow = torch.randn(2, 2, 3, 4, generator=_gen(13), dtype=torch.float64)
    values = []
    for b in range(2):
        for i in range(2):
            for j in range(3):
                s = sum(
                    (flow[b, c, i, j + 1] - flow[b, c, i, j]).item() ** 2
                    + (flow[b, c, i + 1, j] - flow[b, c, i, j]).item() ** 2
                    for c in range(2)
                )
                values.append(math.sqrt(0.01 + s))
    assert L.flow_smoothness(flow.to(device)).item() == pytest.approx(np.mean(values), rel=1e-10)


def test_successive_regularization_is_delta_times_squared_distance(device):
    params = [torch.randn(3, 2, generator=_gen(14)).to(device), torch.randn(4, generator=_gen(15)).to(device)]
    snapshot = L.parameter_snapshot(params)
    moved = [p + 0.1 * (k + 1) for k, p in enumerate(params)]
    expected = 1e-3 * (6 * 0.1**2 + 4 * 0.2**2)
    assert L.successive_regularization(moved, snapshot, delta=1e-3).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="2 parameters but 1 snapshots"):
        L.successive_regularization(moved, snapshot[:1], delta=1.0)


def test_scaled_mse_is_the_mse_times_its_scale_and_keeps_the_masks() -> None:
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, float("nan"), 1.0])
    assert L.ScaledMSE(4.0)(pred, target).item() == pytest.approx(4.0 * (1.0 + 9.0) / 2)
    mask = torch.tensor([True, True, False])
    assert L.ScaledMSE(0.5)(pred, target, mask).item() == pytest.approx(0.5 * 1.0)
    assert repr(L.ScaledMSE(100.0)) == "ScaledMSE(100)"


# -- the fused masked losses against a reference on the labelled items only -------------
def _reference_on_labelled(loss, pred, target, labelled):
    """The loss as a plain mean over the labelled items, computed on those items alone (0 when there are none)."""
    if not labelled.any():
        return (pred * 0.0).sum()
    if loss is L.cross_entropy:
        logits = pred.movedim(1, -1)[labelled]  # (n_labelled, C)
        return -torch.log_softmax(logits, dim=-1).gather(1, target[labelled].unsqueeze(1)).mean()
    p, t = pred[labelled], target[labelled]
    if loss is L.mse_loss:
        return ((p - t) ** 2).mean()
    if loss is L.l1_loss:
        return (p - t).abs().mean()
    return -(t * torch.log(torch.sigmoid(p)) + (1 - t) * torch.log(1 - torch.sigmoid(p))).mean()


def _partially_labelled(loss, shape, missing, masked, seed, device):
    """Random prediction, target with a fraction ``missing`` marked missing in-band, and a per-sample mask or None."""
    g = _gen(seed)
    if loss is L.cross_entropy:
        pred = torch.randn(shape[0], 5, *shape[1:], generator=g)
        target = torch.randint(0, 5, shape, generator=g)
        target[torch.rand(shape, generator=g) < missing] = -100
    else:
        pred = torch.randn(shape, generator=g)
        target = torch.randn(shape, generator=g)
        if loss is L.binary_cross_entropy:
            target = (target > 0).to(pred.dtype)
        target[torch.rand(shape, generator=g) < missing] = float("nan")
    mask = None if masked is None else torch.rand(shape[0], generator=g) >= masked
    return pred.to(device).requires_grad_(True), target.to(device), None if mask is None else mask.to(device)


@pytest.mark.parametrize("loss", [L.mse_loss, L.l1_loss, L.binary_cross_entropy, L.cross_entropy])
@pytest.mark.parametrize(
    ("shape", "missing", "masked"),
    [
        ((32, 1), 0.0, None),  # fully labelled
        ((16, 3), 0.4, None),  # in-band missing items only
        ((16, 3), 0.0, 0.5),  # a per-sample mask only
        ((8, 2, 3), 0.3, 0.3),  # both, on a dense target
        ((12, 2), 1.0, None),  # every item missing
        ((12, 2), 0.0, 1.0),  # every sample masked
    ],
)
def test_masked_losses_and_their_gradients_match_a_mean_over_the_labelled_items(loss, shape, missing, masked, device):
    for seed in range(3):
        pred, target, mask = _partially_labelled(loss, shape, missing, masked, seed, device)
        in_band = target != -100 if loss is L.cross_entropy else ~torch.isnan(target)
        labelled = in_band if mask is None else in_band & mask.reshape(-1, *[1] * (target.dim() - 1))
        value = loss(pred, target, mask)
        (grad,) = torch.autograd.grad(value, pred)
        reference = _reference_on_labelled(loss, pred, target, labelled)
        (reference_grad,) = torch.autograd.grad(reference, pred)
        assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)
        torch.testing.assert_close(grad, reference_grad, rtol=1e-5, atol=1e-7)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("loss", [L.mse_loss, L.l1_loss])
def test_regression_losses_refuse_a_target_of_another_shape(loss):
    with pytest.raises(ValueError, match=r"same shape, got \(4, 1\) and \(4,\)"):
        loss(torch.zeros(4, 1), torch.zeros(4))


def test_regression_loss_under_bf16_autocast_matches_float32_on_the_cast_prediction():
    pred32 = torch.randn(16, 2, generator=_gen(20))
    target = torch.randn(16, 2, generator=_gen(21))
    target[::3, 1] = float("nan")
    pred = pred32.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = L.mse_loss(pred, target)
    value.backward()
    exact = pred.detach().float().requires_grad_(True)
    reference = L.mse_loss(exact, target)
    reference.backward()
    assert value.dtype == torch.float32 and value.item() == pytest.approx(reference.item(), rel=1e-6)
    torch.testing.assert_close(pred.grad, exact.grad.to(torch.bfloat16))


@pytest.mark.parametrize(
    ("loss", "shape"),
    [
        *[(loss, shape) for loss in (L.mse_loss, L.l1_loss) for shape in ((32, 1), (128, 3), (4, 2, 5, 5), (512, 7))],
    ],
)
def test_fully_labelled_fast_path_equals_the_masked_path_bit_for_bit(loss, shape):
    """On the CPU a fully labelled batch skips masking; an all-true mask forces the masked path on the same batch.

    The value and the unweighted gradient agree bit for bit, a weighted gradient up to rounding."""
    pred, target, _ = _partially_labelled(loss, shape, 0.0, None, 7, torch.device("cpu"))
    fast = loss(pred, target)
    (fast_grad,) = torch.autograd.grad(fast, pred)
    masked = loss(pred, target, torch.ones(shape[0], dtype=torch.bool))
    (masked_grad,) = torch.autograd.grad(masked, pred)
    assert "DivBackward" not in type(fast.grad_fn).__name__  # the fused loss, not the masked sum / count
    assert torch.equal(fast, masked)
    assert torch.equal(fast_grad, masked_grad)
    weight = torch.tensor(0.37)  # a loss weight: the backward passes multiply in another order, so only rounding
    (fast_weighted,) = torch.autograd.grad(weight * loss(pred, target), pred)
    (masked_weighted,) = torch.autograd.grad(weight * loss(pred, target, torch.ones(shape[0], dtype=torch.bool)), pred)
    torch.testing.assert_close(fast_weighted, masked_weighted, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("params", "snapshot", "delta", "message"),
    [
        ([torch.zeros(2, 3)], [torch.zeros(3, 2)], 0.1, r"parameter 0 has shape \(2, 3\) but its snapshot \(3, 2\)"),
        ([torch.zeros(2)], [torch.zeros(1)], 0.1, r"parameter 0 has shape \(2,\) but its snapshot \(1,\)"),
        ([torch.zeros(2)], [torch.zeros(2)], -1.0, "delta >= 0, got -1.0"),
        ([torch.zeros(2)], [torch.zeros(2)], float("nan"), "delta >= 0, got nan"),
    ],
)
def test_successive_regularization_refuses_mismatched_snapshots_and_bad_weights(params, snapshot, delta, message):
    with pytest.raises(ValueError, match=message):
        L.successive_regularization(params, snapshot, delta)

"""The heat-map landmark loss, soft-argmax and measurement error of lecture B11 against independent computations."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.losses import IGNORE_INDEX, heatmap_cells, heatmap_cross_entropy
from mtl_course.metrics import heatmap_soft_argmax, measurement_error


def _case(seed: int = 0, b: int = 3, k: int = 4, h: int = 5, w: int = 6):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=g, dtype=torch.float64)
    target = torch.rand(b, k, 2, generator=g, dtype=torch.float64)
    target[0, 1:] = math.nan  # image 0: only landmark 0 labelled
    target[2, :2] = math.nan
    return logits, target


def _brute_force(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    b, k, h, w = logits.shape
    total, n = 0.0, 0
    for i in range(b):
        for j in range(k):
            x, y = target[i, j].tolist()
            if math.isnan(x):
                continue
            r, c = min(int(y * h), h - 1), min(int(x * w), w - 1)
            log_z = math.log(sum(math.exp(v) for v in logits[i, j].flatten().tolist()))
            total += log_z - float(logits[i, j, r, c])
            n += 1
    return torch.tensor(total / n, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heatmap_cross_entropy_equals_a_brute_force_loop(seed: int) -> None:
    logits, target = _case(seed)
    torch.testing.assert_close(heatmap_cross_entropy(logits, target), _brute_force(logits, target))


def test_unlabelled_landmarks_get_exactly_zero_gradient_and_the_rest_softmax_minus_onehot() -> None:
    logits, target = _case()
    logits.requires_grad_(True)
    heatmap_cross_entropy(logits, target).backward()
    missing = target.isnan().any(-1)
    assert bool((logits.grad[missing] == 0).all())
    n = int((~missing).sum())
    cells = heatmap_cells(target, 5, 6)
    prob = logits.detach().flatten(2).softmax(-1)
    onehot = torch.zeros_like(prob)
    onehot[~missing] = torch.nn.functional.one_hot(cells[~missing], 30).to(prob)
    expected = torch.where(missing[..., None], 0.0, (prob - onehot) / n).view_as(logits)
    torch.testing.assert_close(logits.grad, expected)


def test_a_mask_drops_whole_images_and_a_batch_without_labels_gives_zero_with_a_graph() -> None:
    logits, target = _case()
    keep = torch.tensor([True, False, True])
    torch.testing.assert_close(heatmap_cross_entropy(logits, target, keep), _brute_force(logits[keep], target[keep]))
    z = logits.clone().requires_grad_(True)
    loss = heatmap_cross_entropy(z, torch.full_like(target, math.nan))
    loss.backward()
    assert loss.item() == 0 and bool((z.grad == 0).all())


def test_heatmap_cells_by_hand_and_at_the_borders() -> None:
    pts = torch.tensor([[0.0, 0.0], [0.5, 0.5], [0.999, 0.999], [1.0, 1.0], [math.nan, 0.3]])
    assert heatmap_cells(pts, 4, 8).tolist() == [0, 2 * 8 + 4, 31, 31, IGNORE_INDEX]


def test_soft_argmax_is_the_cell_centre_for_a_peak_and_the_mean_of_cell_centres_for_a_flat_map() -> None:
    z = torch.full((1, 2, 4, 8), -1e4)
    z[0, 0, 3, 5] = 0.0
    points = heatmap_soft_argmax(z)
    torch.testing.assert_close(points[0, 0], torch.tensor([5.5 / 8, 3.5 / 4]))
    torch.testing.assert_close(heatmap_soft_argmax(torch.zeros(1, 1, 4, 8))[0, 0], torch.tensor([0.5, 0.5]))


def test_soft_argmax_equals_a_loop_over_the_cells() -> None:
    z = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    got = heatmap_soft_argmax(z)
    for i in range(2):
        for k in range(3):
            p = z[i, k].flatten().softmax(0).view(4, 5)
            x = sum(float(p[r, c]) * (c + 0.5) / 5 for r in range(4) for c in range(5))
            y = sum(float(p[r, c]) * (r + 0.5) / 4 for r in range(4) for c in range(5))
            assert got[i, k].tolist() == pytest.approx([x, y])


def test_measurement_error_by_hand_and_invariant_to_moving_and_swapping_the_landmarks() -> None:
    g = torch.Generator().manual_seed(0)
    pred, true = torch.randn(5, 2, 2, generator=g), torch.randn(5, 2, 2, generator=g)
    expected = torch.tensor(
        [abs(math.dist(p[0], p[1]) - math.dist(t[0], t[1])) for p, t in zip(pred.tolist(), true.tolist(), strict=True)]
    )
    torch.testing.assert_close(measurement_error(pred, true), expected)
    shifted = pred + torch.tensor([3.0, -2.0])
    torch.testing.assert_close(measurement_error(shifted.flip(1), true), expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: heatmap_cross_entropy(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3)), r"target \(B, K, 2\)"),
        (lambda: heatmap_cross_entropy(torch.zeros(2, 3, 16), torch.zeros(2, 3, 2)), r"logits \(B, K, h, w\)"),
        (lambda: heatmap_cells(torch.zeros(3, 3), 4, 4), "last dimension"),
        (lambda: heatmap_soft_argmax(torch.zeros(2, 4, 4)), r"\(B, K, h, w\)"),
        (lambda: measurement_error(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)), r"\(B, 2, 2\)"),
        (lambda: measurement_error(torch.zeros(2, 2, 2), torch.zeros(3, 2, 2)), r"\(B, 2, 2\)"),
    ],
)
def test_bad_shapes_are_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_a_nan_logit_gives_a_nan_loss_that_the_training_loop_refuses() -> None:
    logits, target = _case()
    logits[0, 0, 0, 0] = math.nan
    assert math.isnan(heatmap_cross_entropy(logits, target).item())


def test_a_nan_heat_map_stops_the_training_loop_with_an_error_naming_the_task() -> None:
    from mtl_course.data.ultrasound_views import make_ultrasound_views
    from mtl_course.models import ViewLandmarkNet
    from mtl_course.train import Task, fit

    torch.manual_seed(0)
    net = ViewLandmarkNet(None, 8, channels=(4, 4))
    with torch.no_grad():
        net.heads["landmarks"][-1].bias[0] = math.nan  # heat map 0 is NaN everywhere
    data = make_ultrasound_views(8, size=16, seed=0)  # two images of each view: heat map 0 is labelled
    data = data.with_targets({"landmarks": data.targets["landmarks"]})
    with pytest.raises(FloatingPointError, match="the loss of task 'landmarks' is not finite"):
        fit(net, [Task("landmarks", heatmap_cross_entropy)], "equal", data.loader(), epochs=1, progress=False)

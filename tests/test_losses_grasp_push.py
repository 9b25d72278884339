"""The losses of Pinto & Gupta (ICRA 2017, arXiv 1609.09025) as the course uses them, against brute force:
the sigmoid cross-entropy on the tried gripper angle only, the squared error on the tried push direction only, and
the grasp accuracy."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import accuracy_score

from mtl_course.data import make_tabletop
from mtl_course.losses import binary_cross_entropy, mse_loss
from mtl_course.metrics import binary_accuracy


def _tried(data, task: str) -> list[tuple[int, int]]:
    rows = [i for i, t in enumerate(data.info["task"]) if t == task]
    return [(i, int(data.info["action"][i])) for i in rows]


def test_the_grasp_loss_is_the_sigmoid_cross_entropy_of_the_tried_angles_only() -> None:
    data = make_tabletop(7, 5, seed=2)
    logits = torch.randn(12, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = data.targets["grasp"].double()
    terms = []
    for i, k in _tried(data, "grasp"):
        p, y = 1 / (1 + math.exp(-logits[i, k].item())), target[i, k].item()
        terms.append(-(y * math.log(p) + (1 - y) * math.log(1 - p)))
    assert binary_cross_entropy(logits, target).item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


def test_the_push_loss_is_the_squared_error_of_the_tried_directions_only() -> None:
    data = make_tabletop(4, 6, seed=3)
    pred = torch.randn(10, 8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = data.targets["push"].double()
    terms = [((pred[i, j] - target[i, j]) ** 2).tolist() for i, j in _tried(data, "push")]
    expected = sum(sum(t) for t in terms) / (2 * len(terms))
    assert mse_loss(pred, target).item() == pytest.approx(expected, rel=1e-12)


def test_only_the_tried_action_gets_a_gradient_and_it_is_sigmoid_minus_label() -> None:
    """The property the paper's design relies on: an interaction teaches the one action it tried; the gradient of
    the mean sigmoid cross-entropy with respect to that logit is (σ(z) − y) / n_g, against finite differences."""
    data = make_tabletop(6, 0, seed=4)
    logits = torch.randn(6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    target = data.targets["grasp"].double()
    (grad,) = torch.autograd.grad(binary_cross_entropy(logits, target), logits)
    tried = ~torch.isnan(target)
    assert (grad[~tried] == 0).all()
    z = logits.detach()
    torch.testing.assert_close(grad[tried], (torch.sigmoid(z[tried]) - target[tried]) / 6)
    eps, (i, k) = 1e-6, _tried(data, "grasp")[0]
    bumped = z.clone()
    bumped[i, k] += eps
    numeric = (binary_cross_entropy(bumped, target) - binary_cross_entropy(z, target)).item() / eps
    assert numeric == pytest.approx(grad[i, k].item(), rel=1e-4)


def test_the_grasp_accuracy_matches_scikit_learn_on_the_labelled_items() -> None:
    g = torch.Generator().manual_seed(5)
    logits, target = torch.randn(40, 8, generator=g), (torch.rand(40, 8, generator=g) > 0.6).float()
    target[torch.rand(40, 8, generator=g) > 0.7] = float("nan")
    keep = ~torch.isnan(target)
    expected = accuracy_score(target[keep].numpy(), (logits[keep] > 0).float().numpy())
    assert binary_accuracy(logits, target) == pytest.approx(expected)
    mask = torch.arange(40) < 20
    keep_rows = keep & mask[:, None]
    assert binary_accuracy(logits, target, mask) == pytest.approx(
        accuracy_score(target[keep_rows].numpy(), (logits[keep_rows] > 0).float().numpy())
    )


def test_the_grasp_accuracy_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match=r"one shape, got \(3, 2\) and \(3,\)"):
        binary_accuracy(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="no labelled item"):
        binary_accuracy(torch.zeros(3), torch.full((3,), float("nan")))

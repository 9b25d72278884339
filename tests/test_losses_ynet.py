"""Y-Net's class weights and class-weighted segmentation cross-entropy, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtl_course.losses import WeightedCrossEntropy, class_balance_weights, cross_entropy


def _random_case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    target = torch.randint(4, (3, 5, 5), generator=g)
    target[0, :2, :] = -100
    weights = 0.5 + 3 * torch.rand(4, generator=g)
    return logits, target, weights


def test_class_weights_equal_the_closed_form_of_the_public_code() -> None:
    labels = torch.randint(3, (5, 8, 8), generator=torch.Generator().manual_seed(1))
    labels[0, 0] = -100
    kept = labels[labels != -100].numpy()
    share = np.bincount(kept, minlength=4) / kept.size
    np.testing.assert_allclose(class_balance_weights(labels, 4).numpy(), 1 / np.log(1.10 + share), rtol=1e-6)
    np.testing.assert_allclose(class_balance_weights(labels, 4, c=1.5).numpy(), 1 / np.log(1.5 + share), rtol=1e-6)


def test_class_weights_limits_rarer_classes_weigh_more() -> None:
    w = class_balance_weights(torch.tensor([0] * 90 + [1] * 10), 3)
    assert w[2] == pytest.approx(1 / np.log(1.10), rel=1e-6)  # an absent class: the largest weight
    assert w[2] > w[1] > w[0]
    assert class_balance_weights(torch.zeros(7, dtype=torch.long), 1)[0] == pytest.approx(1 / np.log(2.10), rel=1e-6)


def test_weighted_cross_entropy_equals_a_loop_and_pytorch() -> None:
    logits, target, weights = _random_case()
    loss = WeightedCrossEntropy(weights)(logits, target)
    num = den = 0.0
    for n, i, j in np.ndindex(*target.shape):
        k = int(target[n, i, j])
        if k != -100:
            z = logits[n, :, i, j]
            num -= float(weights[k]) * float(z[k] - torch.logsumexp(z, 0))
            den += float(weights[k])
    assert loss.item() == pytest.approx(num / den, rel=1e-6)
    reference = F.cross_entropy(logits, target, weight=weights.double(), ignore_index=-100)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_weighted_cross_entropy_gradient_matches_pytorch() -> None:
    logits, target, weights = _random_case(2)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    WeightedCrossEntropy(weights)(a, target).backward()
    F.cross_entropy(b, target, weight=weights.double(), ignore_index=-100).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_weighted_cross_entropy_properties() -> None:
    logits, target, weights = _random_case(3)
    loss = WeightedCrossEntropy(weights)(logits, target)
    assert WeightedCrossEntropy(10 * weights)(logits, target).item() == pytest.approx(loss.item(), rel=1e-5)
    plain = cross_entropy(logits, target).item()
    assert WeightedCrossEntropy(torch.ones(4))(logits, target).item() == pytest.approx(plain, rel=1e-6)


def test_weighted_cross_entropy_mask_and_empty_label_set() -> None:
    logits, target, weights = _random_case(4)
    mask = torch.tensor([True, False, True])
    masked = WeightedCrossEntropy(weights)(logits, target, mask)
    assert masked.item() == pytest.approx(WeightedCrossEntropy(weights)(logits[[0, 2]], target[[0, 2]]).item())
    z = logits.clone().requires_grad_(True)
    empty = WeightedCrossEntropy(weights)(z, torch.full_like(target, -100))
    empty.backward()
    assert empty.item() == 0.0 and torch.all(z.grad == 0)


def test_bad_inputs_name_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="at least one labelled item"):
        class_balance_weights(torch.full((4,), -100), 3)
    with pytest.raises(ValueError, match=r"must lie in 0\.\.2"):
        class_balance_weights(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="c must exceed 1"):
        class_balance_weights(torch.tensor([0, 1]), 2, c=1.0)
    for bad in (torch.tensor([1.0, -1.0]), torch.tensor([1.0, float("nan")]), torch.ones(2, 2)):
        with pytest.raises(ValueError, match="positive finite"):
            WeightedCrossEntropy(bad)
    with pytest.raises(ValueError, match=r"3 class weights but the logits have shape \(2, 4, 5, 5\)"):
        WeightedCrossEntropy(torch.ones(3))(torch.zeros(2, 4, 5, 5), torch.zeros(2, 5, 5, dtype=torch.long))

"""BatchMean and labelled_fraction (lecture B8) against brute-force loops and autograd."""

from __future__ import annotations

import pickle

import pytest
import torch

from mtl_course.losses import BatchMean, binary_cross_entropy, cross_entropy, labelled_fraction, mse_loss


def _ce_loop(logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> tuple[float, int]:
    """The sum of -log softmax over the kept, labelled items, and how many there are (a plain loop)."""
    total, n = 0.0, 0
    for i in range(target.shape[0]):
        if not keep[i] or target[i] == -100:
            continue
        z = logits[i].double()
        total += float(torch.logsumexp(z, 0) - z[target[i]])
        n += 1
    return total, n


def test_batch_mean_divides_the_labelled_sum_by_the_whole_batch() -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(12, 5, generator=g), torch.randint(0, 5, (12,), generator=g)
    target[[1, 4]] = -100
    mask = torch.rand(12, generator=g) > 0.4
    total, n = _ce_loop(logits, target, mask)
    assert n > 0
    torch.testing.assert_close(
        BatchMean(cross_entropy)(logits, target, mask).double(),
        torch.tensor(total / 12.0, dtype=torch.float64),
        rtol=1e-5,
        atol=1e-7,
    )
    torch.testing.assert_close(
        cross_entropy(logits, target, mask).double(), torch.tensor(total / n, dtype=torch.float64), rtol=1e-5, atol=1e-7
    )


def test_dense_target_with_a_per_image_mask() -> None:
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(4, 2, 3, 3, generator=g), torch.randint(0, 2, (4, 3, 3), generator=g)
    mask = torch.tensor([True, False, False, True])
    pixels = [(i, a, b) for i in range(4) for a in range(3) for b in range(3)]
    total = sum(
        float(torch.logsumexp(logits[i, :, a, b], 0) - logits[i, target[i, a, b], a, b])
        for i, a, b in pixels
        if mask[i]
    )
    assert float(labelled_fraction(target, mask)) == 0.5
    assert abs(float(BatchMean(cross_entropy)(logits, target, mask)) - total / 36) < 1e-5


def test_regression_targets_with_nan() -> None:
    pred, target = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.0, float("nan"), 1.0, float("nan")])
    assert float(labelled_fraction(target)) == 0.5
    assert float(BatchMean(mse_loss)(pred, target)) == pytest.approx((1 + 4) / 4)
    assert float(BatchMean(binary_cross_entropy)(torch.zeros(4), target)) == pytest.approx(2 * 0.693147 / 4, rel=1e-5)


def test_the_gradient_is_the_labelled_gradient_times_the_labelled_share() -> None:
    """The property the lecture states: averaging over the batch weights the task by n_t / N."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (20,), generator=g)
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[2, 7, 11]] = True
    (labelled,) = torch.autograd.grad(cross_entropy(logits, target, mask), logits)
    (batch,) = torch.autograd.grad(BatchMean(cross_entropy)(logits, target, mask), logits)
    torch.testing.assert_close(batch, labelled * 3 / 20)


def test_fully_labelled_batch_is_unchanged_and_no_label_gives_zero_with_graph() -> None:
    logits = torch.randn(6, 4, requires_grad=True)
    target = torch.randint(0, 4, (6,))
    assert torch.equal(BatchMean(cross_entropy)(logits, target), cross_entropy(logits, target))
    none = BatchMean(cross_entropy)(logits, torch.full((6,), -100))
    none.backward()
    assert float(none.detach()) == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_batch_mean_is_picklable_and_names_its_loss() -> None:
    wrapped = pickle.loads(pickle.dumps(BatchMean(cross_entropy)))
    assert repr(wrapped) == "BatchMean(cross_entropy)"


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="wraps a loss function"):
        BatchMean("cross_entropy")
    with pytest.raises(ValueError, match="non-empty target"):
        labelled_fraction(torch.zeros(0))
    with pytest.raises(ValueError, match="leading dimensions"):
        labelled_fraction(torch.zeros(4, 2), torch.ones(3, dtype=torch.bool))
    out = BatchMean(mse_loss)(torch.tensor([float("nan"), 1.0]), torch.tensor([1.0, 1.0]))
    assert torch.isnan(out), "a NaN prediction must surface as a NaN loss (fit then names the task)"

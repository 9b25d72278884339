"""Lu et al.'s task affinity and grouping criterion against brute-force loops and hand-worked cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from mtl_course.metrics import (
    AffinityEstimate,
    branching_loss,
    cluster_tasks,
    error_margins,
    group_affinity,
    propose_grouping,
    separation_cost,
    task_affinity,
)


def _difficult(seed: int, n: int = 40, tasks: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, tasks)) < 0.3).astype(float)


def test_the_affinity_is_the_fraction_of_examples_on_which_two_tasks_agree() -> None:
    d = _difficult(0)
    expected = np.array(
        [[np.mean([d[n, i] == d[n, j] for n in range(len(d))]) for j in range(d.shape[1])] for i in range(d.shape[1])]
    )
    a = task_affinity(d)
    np.testing.assert_allclose(a, expected, rtol=0, atol=1e-12)
    assert np.allclose(a, a.T) and np.allclose(np.diag(a), 1.0) and a.min() >= 0


def test_tasks_that_are_hard_on_complementary_examples_have_affinity_zero() -> None:
    d = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert task_affinity(d)[0, 1] == 0.0 and task_affinity(np.hstack([d[:, :1]] * 2))[0, 1] == 1.0


def test_the_error_margin_of_two_classes_is_the_sigmoid_margin_of_the_reference_code() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (30,), generator=g)
    m = error_margins({"a": logits}, {"a": y}, ["a"])[:, 0]
    sigma = torch.sigmoid(logits[:, 1] - logits[:, 0]).float()  # p(class 1)
    torch.testing.assert_close(m, (y.float() - sigma).abs())


def _brute_force_estimate(batches: list[np.ndarray], decay: float) -> np.ndarray:
    """Every running value as the explicit weighted mean with weights decay^(K-k) over batches 1..K."""
    weights = lambda k: np.array([decay ** (k - j) for j in range(k + 1)])  # noqa: E731
    both_hard, both_easy = 0.0, 0.0
    total = weights(len(batches) - 1).sum()
    for k, m in enumerate(batches):
        w = weights(k)
        mean = sum(wj * b.mean(0) for wj, b in zip(w, batches[: k + 1], strict=True)) / w.sum()
        d = (m >= mean).astype(float)
        scale = decay ** (len(batches) - 1 - k)
        both_hard = both_hard + scale * d.T @ d / len(d)
        both_easy = both_easy + scale * (1 - d).T @ (1 - d) / len(d)
    return (both_hard + both_easy) / total


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 1.0])
def test_the_running_estimate_is_the_exponentially_weighted_mean_over_batches(decay: float) -> None:
    rng = np.random.default_rng(1)
    batches = [rng.random((25, 4)) for _ in range(6)]
    estimate = AffinityEstimate(decay)
    for b in batches:
        estimate.update(b)
    np.testing.assert_allclose(estimate.affinity, _brute_force_estimate(batches, decay), atol=1e-12)


def test_with_no_memory_the_estimate_is_the_last_batchs_affinity() -> None:
    rng = np.random.default_rng(2)
    last = rng.random((30, 3))
    estimate = AffinityEstimate(decay=0.0).update(rng.random((30, 3))).update(last)
    np.testing.assert_allclose(estimate.affinity, task_affinity(last >= last.mean(0)))


def _group_affinity_loop(a: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(groups), len(groups)))
    for k, l in itertools.product(range(len(groups)), repeat=2):
        b_kl = sum(min(a[i, j] for j in groups[l]) for i in groups[k]) / len(groups[k])
        b_lk = sum(min(a[j, i] for i in groups[k]) for j in groups[l]) / len(groups[l])
        out[k, l] = (b_kl + b_lk) / 2
    return out


def test_group_affinity_and_the_criterion_against_loops() -> None:
    a = task_affinity(_difficult(3, tasks=6))
    groups = [[0, 3], [1], [2, 4, 5]]
    expected = _group_affinity_loop(a, groups)
    np.testing.assert_allclose(group_affinity(a, groups), expected, atol=1e-12)
    separation = np.mean([1 - expected[k, k] for k in range(3)])
    assert math.isclose(separation_cost(a, groups), separation, abs_tol=1e-12)
    assert math.isclose(branching_loss(a, groups, 0.1, 2.0), 2 * 0.1 + 2.0 * separation, abs_tol=1e-12)
    np.testing.assert_allclose(group_affinity(a, [[i] for i in range(6)]), a)  # single tasks: the affinity itself


def test_spectral_clustering_recovers_blocks_and_the_criterion_trades_branches_against_separation() -> None:
    blocks = np.kron(np.eye(3), np.ones((2, 2)))
    a = 0.3 + 0.6 * blocks + 0.1 * np.eye(6)
    assert cluster_tasks(a, 3) == [[0, 1], [2, 3], [4, 5]]
    assert propose_grouping(a, branch_cost=0.1, separation_weight=1.0)[0] == [[0, 1], [2, 3], [4, 5]]
    assert propose_grouping(a, branch_cost=10.0, separation_weight=1.0)[0] == [[0, 1, 2, 3, 4, 5]]
    groups, losses = propose_grouping(a, branch_cost=0.0, separation_weight=1.0)
    assert len(losses) == 6 and groups == [[i] for i in range(6)]  # free branches: every task on its own
    assert losses[-1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: task_affinity([[0, 2]]), ValueError, "only 0 \\(simple\\) and 1"),
        (lambda: task_affinity([[0, float("nan")]]), ValueError, "must be finite"),
        (lambda: task_affinity([]), ValueError, "non-empty 2-D"),
        (lambda: group_affinity(np.ones((3, 2)), [[0, 1]]), ValueError, "must be square"),
        (lambda: group_affinity(np.eye(3), [[0, 1]]), ValueError, "split 0..2"),
        (lambda: group_affinity(np.eye(3), [[0, 1], [1, 2]]), ValueError, "disjoint"),
        (lambda: branching_loss(np.eye(2), [[0, 1]], -1.0, 1.0), ValueError, "finite and >= 0"),
        (lambda: cluster_tasks(np.eye(3), 4), ValueError, "between 1 and the number of tasks 3"),
        (lambda: AffinityEstimate(1.5), ValueError, "decay must be in \\[0, 1\\]"),
        (lambda: AffinityEstimate().affinity, ValueError, "has seen no batch yet"),
        (lambda: AffinityEstimate().update(np.ones((2, 3))).update(np.ones((2, 4))), ValueError, "4 tasks"),
    ],
)
def test_bad_input_is_refused_with_a_message(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ({"a": torch.zeros(3, 2)}, {"b": torch.zeros(3, dtype=torch.long)}, "task 'a' needs an output and a target"),
        ({"a": torch.zeros(3)}, {"a": torch.zeros(3, dtype=torch.long)}, "expected logits \\(N, C\\)"),
        ({"a": torch.zeros(3, 2)}, {"a": torch.tensor([0, -100, 1])}, "missing or out-of-range"),
    ],
)
def test_error_margins_refuse_bad_input(outputs, targets, message: str) -> None:
    with pytest.raises((KeyError, ValueError), match=message):
        error_margins(outputs, targets, ["a"])


def test_error_margins_need_at_least_one_task() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        error_margins({}, {}, [])

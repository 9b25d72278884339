"""The recipe of lecture B9: affinity over training, top-down widening, and the experiment on a tiny budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.data.digit_attributes import KNOWN_GROUPS, load_digit_attributes
from mtl_course.experiments.fully_adaptive import (
    BRANCHED,
    SHARED,
    affinity_over_training,
    branch_costs,
    group_labels,
    known_group_contrast,
    margin_snapshot,
    run_fully_adaptive,
    widen_top_down,
)
from mtl_course.experiments.labels import STL
from mtl_course.metrics import AffinityEstimate, group_affinity
from mtl_course.models import BranchedNetwork


def test_the_margin_snapshot_is_one_minus_the_probability_of_the_true_class() -> None:
    train, _ = load_digit_attributes(n_train=40, seed=0)
    torch.manual_seed(0)
    model = BranchedNetwork.shared(64, [8], dict.fromkeys(train.tasks, 2))
    margins = margin_snapshot(train)(model)
    x = torch.as_tensor(train.x)
    for k, task in enumerate(train.tasks):
        p = torch.softmax(model(x)[task], 1).detach().numpy()
        np.testing.assert_allclose(margins[:, k], 1 - p[np.arange(40), train.targets[task]], atol=1e-6)


def test_the_affinity_over_training_skips_the_margins_before_training() -> None:
    rng = np.random.default_rng(0)
    margins = [rng.random((20, 3)) for _ in range(4)]
    expected = AffinityEstimate(0.8).update(margins[1]).update(margins[2]).update(margins[3]).affinity
    np.testing.assert_allclose(affinity_over_training(margins, 0.8), expected)
    with pytest.raises(ValueError, match="at least one epoch"):
        affinity_over_training(margins[:1], 0.8)


def test_widening_groups_the_tasks_at_the_top_and_the_branches_below() -> None:
    blocks = np.kron(np.eye(3), np.ones((2, 2)))
    a = 0.3 + 0.6 * blocks + 0.1 * np.eye(6)
    a[:4, :4] += 0.05 * (1 - np.eye(4))  # the first two blocks are closer to each other than to the third
    names = list("abcdef")
    tree, criteria = widen_top_down(a, names, branch_costs=[0.1, 0.05], separation_weight=1.0)
    assert tree[-1] == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert all(any(set(g) <= set(p) for p in tree[0]) for g in tree[1])  # a tree: every branch inside one below
    top = group_affinity(a, [[0, 1], [2, 3], [4, 5]])
    assert top[0, 1] > top[0, 2]  # so the layer below may join the first two branches, never split a branch
    assert [len(c) for c in criteria] == [3, 6]
    with pytest.raises(ValueError, match="5 task names for an affinity matrix of 6 tasks"):
        widen_top_down(a, names[:5], [0.1, 0.1], 1.0)


def test_a_branch_costs_what_it_adds_as_a_fraction_of_the_thin_network() -> None:
    thin = BranchedNetwork.shared(64, [16, 16], dict.fromkeys("abc", 2))
    total = thin.parameter_counts()["total"]
    assert branch_costs(thin, 2.0) == pytest.approx([2 * (64 * 16 + 16) / total, 2 * (16 * 16 + 16) / total])
    with pytest.raises(ValueError, match="measured on the thin network"):
        branch_costs(BranchedNetwork.separate(64, [16], dict.fromkeys("abc", 2)), 1.0)


def test_group_labels_and_the_known_group_contrast() -> None:
    names = [t for g in KNOWN_GROUPS for t in g]
    assert group_labels(KNOWN_GROUPS, names) == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    with pytest.raises(KeyError, match="do not place the task"):
        group_labels([["is1"]], names)
    with pytest.raises(ValueError, match="at least one group of two tasks and two groups"):
        known_group_contrast(np.eye(2), ["a", "b"], [["a"], ["b"]])


def test_the_experiment_runs_on_a_tiny_budget_and_reports_every_condition() -> None:
    result = run_fully_adaptive([0, 1], n_train=120, hidden=(8, 8), epochs=5, device="cpu")
    assert set(result.grouping.labels) == {"real", "shuffled"} and len(result.grouping) == 4
    assert result.grouping.ari.between(-1, 1).all()
    for seed in (0, 1):
        assert result.affinity[seed].shape == (9, 9) and np.allclose(np.diag(result.chance[seed]), 1)
        assert len(result.trees[seed]) == 2
    assert sorted(set(result.accuracy.summary.condition)) == sorted([SHARED, BRANCHED, STL])
    counts = result.parameters.set_index(["seed", "condition"]).parameters
    assert (counts.xs(SHARED, level=1) <= counts.xs(BRANCHED, level=1)).all()
    assert (counts.xs(BRANCHED, level=1) <= counts.xs(STL, level=1)).all()
    with pytest.raises(ValueError, match="at least one seed"):
        run_fully_adaptive([])

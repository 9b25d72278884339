"""Lecture B6's recipe: a budget of interactions split between grasp and push (Pinto & Gupta, ICRA 2017)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data import make_tabletop
from mtl_course.experiments import GRASP_ONLY_HALF, budget_runs, budget_split, run_budget_split, split_label

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, (10, 0)), (0.3, (7, 3)), (0.5, (5, 5)), (1.0, (0, 10))])
def test_a_split_spends_the_budget_and_takes_prefixes(fraction: float, expected: tuple[int, int]) -> None:
    pool = make_tabletop(12, 12, seed=0)
    part = budget_split(pool, 10, fraction)
    assert (part.n_labelled()["grasp"], part.n_labelled()["push"]) == expected
    assert part.n == 10
    torch.testing.assert_close(part.x[: expected[0]], pool.x[: expected[0]])
    torch.testing.assert_close(part.x[expected[0] :], pool.x[12 : 12 + expected[1]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10, 1.5), r"a push fraction lies in \[0, 1\], got 1.5"),
        ((0, 0.5), "the budget must be a positive int, got 0"),
        ((30, 0.5), "the pool has 12 grasp interactions, the split needs 15"),
    ],
)
def test_a_bad_split_names_what_was_wrong(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        budget_split(make_tabletop(12, 12, seed=0), *args)


def test_the_runs_share_their_pool_and_the_control_has_no_push_labels() -> None:
    runs = budget_runs([8, 16], [0.0, 0.5], [0, 1], n_test=10)
    assert len(runs) == 2 * 2 * 3
    control = [r for r in runs if r.condition == GRASP_ONLY_HALF and r.info["budget"] == 16 and r.seed == 1]
    half = [r for r in runs if r.condition == split_label(0.5) and r.info["budget"] == 16 and r.seed == 1]
    assert control[0].train.n_labelled() == {"grasp": 8, "push": 0}
    torch.testing.assert_close(control[0].train.targets["grasp"], half[0].train.targets["grasp"], equal_nan=True)
    assert not torch.isnan(runs[0].test.targets["grasp"]).any(), "the test set is scored on every angle"
    with pytest.raises(ValueError, match="need budgets, push fractions and seeds"):
        budget_runs([], [0.5], [0])


def test_the_recipe_trains_every_run_on_its_own_labels() -> None:
    result = run_budget_split([48], [0.0, 1.0], [0], steps=30, n_test=40)
    summary = result.summary.set_index("condition")
    assert set(summary.index) == {GRASP_ONLY_HALF, split_label(0.0), split_label(1.0)}
    assert np.isfinite(summary["test_grasp"]).all() and not summary["diverged"].any()
    curves = result.curves.dropna(subset=["train"])
    for condition, task in [(split_label(0.0), "grasp"), (split_label(1.0), "push"), (GRASP_ONLY_HALF, "grasp")]:
        train = curves[(curves.condition == condition) & (curves.task == task)].sort_values("epoch")["train"]
        assert train.iloc[-1] < train.iloc[0], f"{condition}: the {task} loss did not fall"
    untouched = curves[(curves.condition == split_label(1.0)) & (curves.task == "grasp")]["train"]
    assert (untouched == 0).all(), "no grasp labels: the grasp loss is the zero of a task without labels"
    assert summary.loc[split_label(1.0), "test_push"] < summary.loc[split_label(0.0), "test_push"]
    assert math.isclose(summary.loc[split_label(1.0), "push_fraction"], 1.0)
    with pytest.raises(ValueError, match="steps and batch_size must be positive"):
        run_budget_split([8], [0.0], [0], steps=0)

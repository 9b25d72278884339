"""Hard versus soft sharing experiments: the replicated model, the distance, the sweep."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from mtl_course.data.loaders import TensorLoader
from mtl_course.data.relatedness import make_related_tasks
from mtl_course.experiments.mechanisms import replica_mse_loss
from mtl_course.experiments.sharing import (
    HARD,
    ReplicatedColumns,
    _task_cases,
    column_distance,
    method_label,
    sharing_sweep,
)
from mtl_course.losses import mse_loss
from mtl_course.models import HardSharing, SoftSharing
from mtl_course.train import Task, fit

TASKS = {"a": 1, "b": 1}


# -- column distance ---------------------------------------------------------------------
def test_column_distance_matches_a_brute_force_computation() -> None:
    torch.manual_seed(0)
    model = SoftSharing.mlp(4, [6, 3], {"a": 1, "b": 1, "c": 1})
    vectors = {t: parameters_to_vector(model.columns[t].parameters()).detach().double() for t in model.tasks}
    squared = sum((vectors[i] - vectors[j]).pow(2).sum() for i, j in itertools.combinations(model.tasks, 2))
    norms = sum(v.pow(2).sum() for v in vectors.values())
    assert column_distance(model, relative=False) == pytest.approx(float(squared.sqrt()), rel=1e-6)
    assert column_distance(model) == pytest.approx(float((squared / (2 * norms)).sqrt()), rel=1e-6)


def test_column_distance_is_zero_for_tied_and_about_one_for_independent_columns() -> None:
    torch.manual_seed(1)
    model = SoftSharing.mlp(8, [32, 32], TASKS)
    assert 0.85 < column_distance(model) < 1.15
    model.tie_columns()
    assert column_distance(model) == 0.0 and column_distance(model, relative=False) == 0.0


# -- the replicated model -------------------------------------------------------------------
def _model(penalty: str = "l2") -> ReplicatedColumns:
    return ReplicatedColumns.from_seeds(
        3,
        [5, 4],
        TASKS,
        seeds=[0, 1, 1, 2],
        lams=[0.0, 0.5, 2.0, 9.0],
        hard=[False, False, False, True],
        penalty=penalty,
    )


def test_replicas_compute_what_the_plain_models_compute() -> None:
    model = _model()
    x = torch.randn(4, 7, 3)
    per_task = torch.randn(4, 2, 7, 3)
    out, out_tasks = model(x), model(per_task)
    for r in range(model.replicas):
        single = model.replica(r)
        assert isinstance(single, HardSharing if r == 3 else SoftSharing)
        for i, t in enumerate(model.tasks):
            torch.testing.assert_close(out[t][r], single(x[r])[t])
            torch.testing.assert_close(out_tasks[t][r], single(per_task[r, i])[t])


@pytest.mark.parametrize("penalty", ["l2", "trace"])
def test_penalty_per_replica_is_soft_sharing_penalty(penalty: str) -> None:
    model = _model(penalty)
    values = model.penalty_per_replica()
    for r in range(3):
        torch.testing.assert_close(values[r], model.replica(r).penalty(), rtol=1e-5, atol=1e-5)
    expected = sum(
        lam * v for lam, v in zip([0.0, 0.5, 2.0, 0.0], values, strict=True)
    )  # the hard replica's lam is forced to 0
    torch.testing.assert_close(model.penalty(), expected)


def test_distances_per_replica_match_column_distance() -> None:
    model = _model()
    d = model.distances()
    for r in range(3):
        assert float(d[r]) == pytest.approx(column_distance(model.replica(r)), rel=1e-6)
    assert float(d[3]) == 0.0  # the hard replica's columns are tied
    assert float(model.distances(relative=False)[1]) == pytest.approx(
        column_distance(model.replica(1), relative=False), rel=1e-6
    )


def test_same_seed_same_start_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    model = _model()
    assert torch.equal(torch.rand(1), expected)
    torch.testing.assert_close(model.weights[0][1], model.weights[0][2])
    assert not torch.equal(model.weights[0][0], model.weights[0][1])
    torch.manual_seed(1)
    reference = SoftSharing.mlp(3, [5, 4], TASKS)
    torch.testing.assert_close(model.weights[0][1, 0], reference.columns["a"].stages[0][0].weight.T)


def test_shared_and_task_parameters_cover_every_parameter_once() -> None:
    model = _model()
    listed = [*model.shared_parameters(), *model.task_parameters("a"), *model.task_parameters("b")]
    assert len({id(p) for p in listed}) == len(listed) == len(list(model.parameters()))


@pytest.mark.parametrize("penalty", ["l2", "trace"])
def test_training_a_replica_in_the_stack_equals_training_it_alone(penalty: str) -> None:
    """The batched sweep is an implementation detail: each replica follows its own fit() trajectory."""
    data = make_related_tasks(12, 0.5, seed=0)
    x_cases, y_cases = _task_cases(data.train, data.tasks)
    lams, hard = [0.0, 0.05, 0.3, 0.0], [False, False, False, True]
    model = ReplicatedColumns.from_seeds(4, [6, 3], TASKS, seeds=[0, 1, 2, 3], lams=lams, hard=hard, penalty=penalty)
    singles = [model.replica(r) for r in range(4)]
    x = torch.as_tensor(np.stack([x_cases] * 4), dtype=torch.float32)
    y = torch.as_tensor(np.stack([y_cases] * 4), dtype=torch.float32)
    batch = (x, {t: y[..., i : i + 1] for i, t in enumerate(data.tasks)})
    fit(
        model,
        [Task(t, replica_mse_loss) for t in data.tasks],
        "equal",
        [batch],
        epochs=40,
        lr=1e-2,
        penalty=1.0,
        progress=False,
        device="cpu",
    )
    # alone: the stacked cases with NaN for the other task's labels, the course's missing-label convention
    x_all = torch.as_tensor(data.train.x, dtype=torch.float32)
    targets = {t: torch.as_tensor(data.train.targets[t], dtype=torch.float32)[:, None] for t in data.tasks}
    for r, single in enumerate(singles):
        penalty_weight = 0.0 if hard[r] else float(lams[r])
        fit(
            single,
            [Task(t, mse_loss) for t in data.tasks],
            "equal",
            TensorLoader(x_all, targets, shuffle=False),
            epochs=40,
            lr=1e-2,
            penalty=penalty_weight,
            progress=False,
            device="cpu",
        )
        trained = model.replica(r)
        for p, q in zip(single.parameters(), trained.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)


def test_bad_construction_is_reported() -> None:
    with pytest.raises(ValueError, match="one lam and one hard flag"):
        ReplicatedColumns.from_seeds(3, [4], TASKS, seeds=[0, 1], lams=[0.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        ReplicatedColumns.from_seeds(3, [4], TASKS, seeds=[0], lams=[-1.0])
    with pytest.raises(ValueError, match="unknown soft-sharing penalty"):
        ReplicatedColumns.from_seeds(3, [4], TASKS, seeds=[0], lams=[1.0], penalty="l1")
    with pytest.raises(ValueError, match="same sizes and tasks"):
        ReplicatedColumns([SoftSharing.mlp(3, [4], TASKS), SoftSharing.mlp(3, [5], TASKS)], lams=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"expects inputs of shape \(R=1"):
        ReplicatedColumns.from_seeds(3, [4], TASKS, seeds=[0], lams=[0.0])(torch.zeros(2, 5, 3))


def test_unequal_task_case_counts_are_reported() -> None:
    data = make_related_tasks(6, 0.5, seed=0)
    targets = dict(data.train.targets)
    targets["a"] = targets["a"].copy()
    targets["a"][0] = np.nan
    with pytest.raises(ValueError, match="same number of labelled cases"):
        _task_cases(type(data.train)(data.train.x, targets, data.train.truth), data.tasks)


# -- the sweep ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep():
    return sharing_sweep(rhos=[1.0, 0.0], n_train=[8, 16], lams=[0, 0.01, 1.0], seeds=[0, 1], steps=40, eval_every=10)


def test_sweep_has_one_row_per_arm_and_the_documented_columns(sweep) -> None:
    s = sweep.summary
    assert len(s) == 2 * 2 * 4 * 2  # sizes x rhos x (stl, 2 soft, hard) x seeds
    for column in [
        "arm",
        "method",
        "label",
        "lam",
        "rho",
        "n_train",
        "seed",
        "parameters",
        "best_step",
        "val_a",
        "test_a",
        "final_a",
        "val",
        "test",
        "final",
        "distance",
        "final_distance",
    ]:
        assert column in s.columns, column
    assert set(s["label"]) == {"STL", "soft λ=0.01", "soft λ=1", "hard"}
    assert s["arm"].tolist() == list(range(len(s)))
    assert np.isfinite(s[["test", "final", "val", "distance"]].to_numpy()).all()
    assert (s.loc[s.method == HARD, "distance"] == 0).all()
    assert set(sweep.models) == {8, 16} and sweep.models[8].replicas == len(sweep.arms[8]) == 16


def test_sweep_counts_parameters_of_the_plain_models(sweep) -> None:
    s = sweep.summary.drop_duplicates("method").set_index("method")["parameters"]
    torch.manual_seed(0)
    assert s["stl"] == s["soft"] == SoftSharing.mlp(4, [16, 8], TASKS).parameter_counts()["total"]
    assert s["hard"] == HardSharing.mlp(4, [16, 8], TASKS).parameter_counts()["total"]


def test_sweep_curves_are_consistent_with_the_summary(sweep) -> None:
    c, s = sweep.curves, sweep.summary
    assert len(c) == len(s) * 2 * 5  # tasks x (initial + 4 measurements)
    row = s.iloc[5]
    at_best = c[(c.arm == row.arm) & (c.step == row.best_step)].set_index("task")
    assert at_best.loc["a", "test"] == pytest.approx(row.test_a)
    assert at_best.loc["b", "val"] == pytest.approx(row.val_b)
    start = c[c.step == 0]
    assert start.groupby("seed").test.nunique().max() <= 2 * 2 * 2  # one initial network per seed (and rho, task)


def test_the_penalty_pulls_the_columns_together(sweep) -> None:
    d = sweep.summary.groupby("lam", dropna=True).final_distance.mean()
    assert d[0.0] > d[0.01] > d[1.0]


def test_sweep_is_deterministic() -> None:
    kwargs = {"rhos": [0.5], "n_train": 8, "lams": [0, 0.1], "seeds": [3], "steps": 20, "eval_every": 10}
    a, b = sharing_sweep(**kwargs).summary, sharing_sweep(**kwargs).summary
    pd.testing.assert_frame_equal(a, b)


def test_sweep_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="multiple of eval_every"):
        sharing_sweep(rhos=[1.0], n_train=8, lams=[0], seeds=[0], steps=25, eval_every=10)
    with pytest.raises(ValueError, match="at least one rho"):
        sharing_sweep(rhos=[1.0], n_train=8, lams=[], seeds=[0], hard=False)


def test_method_labels() -> None:
    assert method_label("soft", 0.3) == "soft λ=0.3"
    assert method_label("hard", math.nan) == "hard"

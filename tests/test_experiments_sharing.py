"""Hard versus soft sharing experiments: the distance between the columns, the sweep."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from mtl_course.experiments.sharing import column_distance, method_label, sharing_sweep
from mtl_course.models import HardSharing, SoftSharing

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


# -- the sweep ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep():
    return sharing_sweep(rhos=[1.0, 0.0], n_train=[8, 16], lams=[0, 0.01, 1.0], seeds=[0, 1], steps=40, eval_every=10)


def test_sweep_has_one_row_per_arm_and_the_documented_columns(sweep) -> None:
    s = sweep.summary
    assert len(s) == 2 * 2 * 4 * 2  # sizes x rhos x (stl, 2 soft, hard) x seeds
    for column in [
        "run",
        "method",
        "condition",
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
    assert set(s["condition"]) == {"STL", "soft λ=0.01", "soft λ=1", "hard"}
    assert s["run"].tolist() == list(range(len(s)))
    assert np.isfinite(s[["test", "final", "val", "distance"]].to_numpy()).all()
    assert (s.loc[s.method == "hard", "distance"] == 0).all()
    assert len(sweep.models) == len(sweep.runs) == len(s)
    assert isinstance(sweep.models[31], HardSharing) and isinstance(sweep.models[30], SoftSharing)
    assert sweep.models[30].columns["a"].in_features == 4


def test_sweep_counts_parameters_of_the_plain_models(sweep) -> None:
    s = sweep.summary.drop_duplicates("method").set_index("method")["parameters"]
    torch.manual_seed(0)
    assert s["stl"] == s["soft"] == SoftSharing.mlp(4, [16, 8], TASKS).parameter_counts()["total"]
    assert s["hard"] == HardSharing.mlp(4, [16, 8], TASKS).parameter_counts()["total"]


def test_sweep_curves_are_consistent_with_the_summary(sweep) -> None:
    c, s = sweep.curves, sweep.summary
    assert len(c) == len(s) * 2 * 5  # tasks x (initial + 4 measurements)
    row = s.iloc[5]
    at_best = c[(c.run == row.run) & (c.step == row.best_step)].set_index("task")
    assert at_best.loc["a", "test"] == pytest.approx(row.test_a)
    assert at_best.loc["b", "val"] == pytest.approx(row.val_b)
    assert at_best.loc["a", "distance"] == pytest.approx(row.distance)
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
    with pytest.raises(ValueError, match="method must be"):
        method_label("soft sharing", 0.3)

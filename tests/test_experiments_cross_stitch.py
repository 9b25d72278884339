"""Lecture A4's recipe (:mod:`mtl_course.experiments.cross_stitch`) on the experiment engine.

The recipe is checked against the same model trained by hand with ``fit``
and scored with NumPy, the mixing learning rate against Adam's step size,
and the recorded trace against the model's initialisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.teachers import make_related_regression
from mtl_course.experiments.cross_stitch import (
    CONDITIONS,
    build_model,
    find_run,
    mixing_snapshot,
    regression_tasks,
    run_cross_stitch,
    runs_on,
    trace,
    train_conditions,
    train_runs,
)
from mtl_course.experiments.labels import CROSS_STITCH, STL
from mtl_course.models import CrossStitchNetwork, SingleTask
from mtl_course.train import fit


def starved_pair(seed: int, n: tuple[int, int] = (200, 20), n_test: int = 100) -> tuple[MultiTaskData, MultiTaskData]:
    """Lecture A4's teacher tasks, small: task A labels its own ``n[0]`` inputs, B its own ``n[1]``."""
    return make_related_regression(n_samples=n, rho=0.9, n_test=n_test, seed=seed)


@pytest.fixture(scope="module")
def data() -> dict[tuple[float, int], tuple[MultiTaskData, MultiTaskData]]:
    return {(0.9, 0): starved_pair(0)}


def test_the_recipe_is_fit_on_the_full_batch_scored_on_the_test_set(data, device: torch.device) -> None:
    result = run_cross_stitch(data, [STL], hidden=[16], epochs=30, lr=1e-2, mixing_lr_scale=None, device=device)
    row = result.summary.iloc[0]
    assert (row.condition, row.seed, row.rho, row.diverged) == (STL, 0, 0.9, False)
    # the same model, trained by hand
    train, test = data[0.9, 0]
    torch.manual_seed(0)
    model = SingleTask.mlp(20, [16], {"A": 1, "B": 1})
    fit(model, regression_tasks("AB"), "equal", [train.batch()], epochs=30, lr=1e-2, device="cpu", progress=False)
    with torch.no_grad():
        pred = model(torch.as_tensor(test.x, dtype=torch.float32))
    for task in "AB":
        by_hand = float(((pred[task].numpy() - test.targets[task]) ** 2).mean())
        assert row[f"test_{task}"] == pytest.approx(by_hand, rel=1e-4)
        assert row[f"test_{task}"] < row[f"init_{task}"]  # it learned something


def test_mixing_learning_rate_and_trace(data, device: torch.device) -> None:
    moved = {}
    for scale in (1e-4, 10.0):
        result = run_cross_stitch(data, [CROSS_STITCH], hidden=[8, 8], epochs=5, mixing_lr_scale=scale, device=device)
        alpha = trace(result, "units.0.alpha", condition=CROSS_STITCH, seed=0)
        assert alpha.shape == (6, 8, 2, 2)  # init + one snapshot per epoch, per-channel alpha
        assert np.allclose(alpha[0], np.array([[0.9, 0.1], [0.1, 0.9]]))
        moved[scale] = np.abs(alpha[-1] - alpha[0]).max()
    # Adam moves a parameter by about lr per step: 5 steps of 1e-6 vs 5 steps of 0.1
    assert moved[1e-4] < 1e-5 < 0.05 < moved[10.0]


def test_one_long_epoch_gives_the_final_numbers_of_many(data, device: torch.device) -> None:
    def build(run):
        return build_model(run.condition, 20, [8, 8], {"A": 1, "B": 1})

    runs = runs_on(data, [CROSS_STITCH])
    short = train_runs(runs, build, epochs=6, mixing_lr_scale=10.0, record=mixing_snapshot, device=device)
    long = train_runs(runs, build, epochs=1, steps_per_epoch=6, mixing_lr_scale=10.0, device=device)
    columns = ["test_A", "test_B", "best_step"]
    assert short.summary[columns].equals(long.summary[columns])
    assert len(short.records[0]) == 7 and long.records == [[]]


def test_train_conditions_groups_by_curves_and_joins_the_results(data, device: torch.device) -> None:
    def build(run):
        return build_model(run.condition, 20, [8], {"A": 1, "B": 1})

    options = {"epochs": 4, "mixing_lr_scale": 10.0, "record": mixing_snapshot, "device": device}
    every_step = train_conditions(data, CONDITIONS, build, **options)
    grouped = train_conditions(data, CONDITIONS, build, curves=lambda run: run.condition == CROSS_STITCH, **options)
    # the conditions without curves first (one engine call), then the cross-stitch network (another)
    assert list(grouped.summary.condition) == [STL, "hard", CROSS_STITCH] and list(grouped.summary.run) == [0, 1, 2]
    assert [len(r) for r in grouped.records] == [2, 2, 5]
    assert grouped.runs[2].condition == CROSS_STITCH and grouped.models[2].units
    columns = ["test_A", "test_B", "best_step"]
    by_condition = every_step.summary.set_index("condition")[columns]
    assert by_condition.loc[list(grouped.summary.condition)].reset_index(drop=True).equals(grouped.summary[columns])
    assert [len(r) for r in train_conditions(data, CONDITIONS, build, curves=False, **options).records] == [2, 2, 2]


def test_train_conditions_measure_every_keeps_the_records_and_the_final_numbers(data, device: torch.device) -> None:
    def build(run):
        return build_model(run.condition, 20, [8], {"A": 1, "B": 1})

    options = {"epochs": 4, "mixing_lr_scale": 10.0, "record": mixing_snapshot, "device": device}
    every_step = train_conditions(data, [CROSS_STITCH], build, **options)
    sparse = train_conditions(data, [CROSS_STITCH], build, measure_every=4, **options)
    columns = ["test_A", "test_B", "final_A", "init_B"]
    assert np.allclose(sparse.summary[columns].to_numpy(dtype=float), every_step.summary[columns].to_numpy(dtype=float))
    assert len(sparse.records[0]) == 5  # the α after every step
    test = sparse.curves.pivot(index="epoch", columns="task", values="test")
    assert test.loc[[1, 2, 3]].isna().all().all() and test.loc[[0, 4]].notna().all().all()


def test_a_diverging_run_is_reported_not_raised(data, device: torch.device) -> None:
    result = run_cross_stitch(data, [CROSS_STITCH], hidden=[8], epochs=20, lr=1e30, device=device)
    row = result.summary.iloc[0]
    assert row.diverged and math.isnan(row.test_A) and math.isnan(row.test_B)


def test_runs_on_pairs_the_conditions_on_one_draw() -> None:
    data = {(rho, seed): starved_pair(seed, (10, 5), 4) for rho in (0.0, 1.0) for seed in (0, 1)}
    runs = runs_on(data, CONDITIONS, note="x")
    assert [(r.info["rho"], r.seed, r.condition) for r in runs[:4]] == [
        (0.0, 0, STL),
        (0.0, 0, "hard"),
        (0.0, 0, CROSS_STITCH),
        (0.0, 1, STL),
    ]
    assert runs[0].train is runs[2].train and runs[0].test is runs[1].test and runs[0].val is None
    assert runs[-1].info == {"rho": 1.0, "note": "x"}


def test_mixing_snapshot_copies_the_alpha() -> None:
    net = CrossStitchNetwork.mlp(3, [4], {"a": 1, "b": 1}, per_channel=False)
    snapshot = mixing_snapshot(net)
    with torch.no_grad():
        net.units[0].alpha.fill_(0.0)
    assert np.allclose(snapshot["units.0.alpha"], [[0.9, 0.1], [0.1, 0.9]])
    assert mixing_snapshot(SingleTask.mlp(3, [4], {"a": 1})) == {}


def test_errors_name_the_problem(data) -> None:
    with pytest.raises(ValueError, match=r"unknown condition 'soft'; choose one of \['STL', 'hard', 'cross-stitch'\]"):
        build_model("soft", 20, [4], {"A": 1, "B": 1})
    with pytest.raises(ValueError, match="at least one run"):
        train_runs([], lambda run: SingleTask.mlp(20, [4], {"A": 1, "B": 1}))
    result = run_cross_stitch(data, [STL, CROSS_STITCH], hidden=[4], epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"2 runs match \{'seed': 0\}"):
        find_run(result, seed=0)
    with pytest.raises(KeyError, match=r"no record 'units.0.alpha' for the run .* recorded: \[\]"):
        trace(result, "units.0.alpha", condition=STL)

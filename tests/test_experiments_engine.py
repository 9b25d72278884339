"""Tests of :mod:`mtl_course.experiments.engine`: runs, the monitoring rule, the result tables, ``train_each``.

Each behaviour is checked against an independent computation: a run trained
by ``train_each`` against the same model trained by hand with ``fit``, the
restored best weights against a fresh evaluation, the best epoch against a
brute-force search of the curves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import MEASURES, Run, best_epochs, train_each, train_replicated
from mtl_course.experiments.replicate import ReplicatedMLP, replica_mse_loss
from mtl_course.losses import mse_loss
from mtl_course.metrics import mae, mse
from mtl_course.models import CrossStitchNetwork, HardSharing, SoftSharing
from mtl_course.train import Task, evaluate, fit

TASKS = [Task("a", mse_loss, {"mse": mse, "mae": mae}), Task("b", mse_loss, {"mse": mse, "mae": mae})]


def _data(seed: int, n: int) -> MultiTaskData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    truth = {"a": x[:, :1] - x[:, 1:2], "b": np.sin(x[:, :1])}
    targets = {t: y + 0.3 * rng.normal(size=y.shape) for t, y in truth.items()}
    return MultiTaskData(x, targets, truth=truth)


def _runs(seeds=(0, 1), conditions=("x", "y")) -> list[Run]:
    return [
        Run(c, s, _data(10 * s, 30), _data(10 * s + 1, 20), _data(10 * s + 2, 40), {"size": 30})
        for s in seeds
        for c in conditions
    ]


def _hard(run: Run) -> HardSharing:
    return HardSharing.mlp(3, [8], {"a": 1, "b": 1})


def test_train_each_equals_fit_by_hand():
    run = _runs(seeds=(3,), conditions=("x",))[0]
    result = train_each([run], _hard, TASKS, epochs=7, lr=1e-2, steps_per_epoch=2, select=["a"], device="cpu")
    torch.manual_seed(3)
    model = _hard(run)
    history = fit(model, TASKS, "equal", [run.train.batch()] * 2, epochs=7, lr=1e-2, device="cpu", progress=False)
    assert len(history) == 7
    curve = result.curves[(result.curves.task == "a")]
    # the last epoch of the curves is the hand-trained model's state (the engine restored its best one)
    final = evaluate(model, TASKS, [run.test.batch()], device="cpu")
    assert curve.test.iloc[-1] == pytest.approx(final["a/val_loss"], rel=1e-6)
    assert list(curve.step) == [0, 2, 4, 6, 8, 10, 12, 14]
    # the restored weights are those of the best epoch: scoring them again gives the summary's numbers
    row = result.summary.iloc[0]
    again = evaluate(result.models[0], TASKS, [run.val.batch()], device="cpu")
    assert again["a/val_loss"] == pytest.approx(row["val_a"], rel=1e-6)
    assert row["best_epoch"] == int(np.argmin(curve.val.to_numpy()))


def test_summary_and_curves_agree():
    runs = _runs()
    result = train_each(runs, _hard, TASKS, epochs=5, lr=3e-2, metric="mae", device="cpu")
    assert list(result.summary.condition) == ["x", "y", "x", "y"]
    assert list(result.summary["size"]) == [30] * 4
    assert len(result.curves) == 6 * len(runs) * 2
    for r, row in result.summary.iterrows():
        c = result.curves[result.curves.run == r].pivot(index="epoch", columns="task", values=list(MEASURES))
        criterion = c["val"]["a"] + c["val"]["b"]
        assert row["best_epoch"] == int(criterion.to_numpy().argmin())
        assert row["test_b"] == c["test"]["b"].iloc[row["best_epoch"]]
        assert row["final_a"] == c["test"]["a"].iloc[-1]
        assert row["init_a"] == c["test"]["a"].iloc[0]
        assert row["test"] == pytest.approx((row["test_a"] + row["test_b"]) / 2)
    # the test metric is MAE against the test targets: recompute it on the restored model
    run, model = runs[1], result.models[1]
    with torch.no_grad():
        x, y = run.test.batch()
        pred = model(x)["b"]
    assert result.summary.loc[1, "test_b"] == pytest.approx(float((pred - y["b"]).abs().mean()), rel=1e-6)


def test_measure_every_measures_only_every_kth_and_the_last_epoch_with_the_same_final_numbers():
    runs = _runs(seeds=(2,), conditions=("x",))
    every = train_each(runs, _hard, TASKS, epochs=7, lr=3e-2, record=lambda m: 0, device="cpu")
    sparse = train_each(runs, _hard, TASKS, epochs=7, lr=3e-2, record=lambda m: 0, measure_every=3, device="cpu")
    # the same training: the curves agree where measured (epochs 0, 3, 6 and the last, 7), NaN elsewhere
    full = every.curves.pivot(index="epoch", columns="task", values="test")
    part = sparse.curves.pivot(index="epoch", columns="task", values="test")
    measured = [0, 3, 6, 7]
    assert np.allclose(part.loc[measured].to_numpy(), full.loc[measured].to_numpy(), rtol=1e-6)
    assert part.drop(index=measured).isna().all().all()
    assert len(sparse.records[0]) == 8  # the records are still taken every epoch
    # the validation set picks the best of the measured epochs only
    val = every.curves.pivot(index="epoch", columns="task", values="val").sum(axis=1)
    assert sparse.summary.loc[0, "best_epoch"] == measured[int(np.argmin(val.loc[measured].to_numpy()))]
    assert sparse.summary.loc[0, "final_a"] == pytest.approx(every.summary.loc[0, "final_a"], rel=1e-6)
    with pytest.raises(ValueError, match="every=0"):
        train_each(runs, _hard, TASKS, epochs=2, measure_every=0, device="cpu")


def test_runs_of_one_seed_start_from_the_same_weights_and_the_global_rng_is_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    result = train_each(_runs(seeds=(5,)), _hard, TASKS, epochs=0, device="cpu")
    assert torch.rand(1) == before
    a, b = (dict(m.named_parameters()) for m in result.models)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_diverged_run_is_nan_and_the_others_go_on():
    runs = _runs(seeds=(0,), conditions=("ok",)) + [
        Run("blows up", 0, _data(0, 30).with_targets({"a": np.full((30, 1), 1e30), "b": np.zeros((30, 1))}),
            _data(1, 20), _data(2, 40))
    ]  # fmt: skip
    result = train_each(runs, _hard, TASKS, epochs=4, lr=1e-2, device="cpu")
    ok, bad = result.summary.iloc[0], result.summary.iloc[1]
    assert not ok["diverged"] and math.isfinite(ok["test_a"])
    assert bad["diverged"] and math.isnan(bad["test_a"]) and math.isnan(bad["final_b"])
    assert math.isfinite(bad["init_a"])


def test_mixing_lr_scale_penalty_and_record_reach_fit():
    run = _runs(seeds=(2,), conditions=("x",))[0]

    def stitch(run: Run) -> CrossStitchNetwork:
        return CrossStitchNetwork.mlp(3, [8, 8], {"a": 1, "b": 1})

    def alphas(model):
        return [a.detach().numpy().copy() for a in model.mixing_parameters()]

    result = train_each([run], stitch, TASKS, epochs=3, lr=1e-2, mixing_lr_scale=50.0, record=alphas, device="cpu")
    torch.manual_seed(2)
    model = stitch(run)
    optimizer = torch.optim.Adam(model.parameter_groups(1e-2, 50.0), lr=1e-2)
    fit(model, TASKS, "equal", [run.train.batch()], epochs=3, optimizer=optimizer, device="cpu", progress=False)
    records = result.records[0]
    assert len(records) == 4
    np.testing.assert_allclose(records[-1][0], alphas(model)[0], rtol=1e-6)
    assert not np.allclose(records[0][0], records[-1][0])

    def soft(run: Run) -> SoftSharing:
        return SoftSharing.mlp(3, [8], {"a": 1, "b": 1})

    no_val = Run(run.condition, run.seed, run.train, None, run.test)  # no validation set: the last weights are kept
    result = train_each([no_val], soft, TASKS, epochs=3, lr=1e-2, penalty=0.5, device="cpu")
    torch.manual_seed(2)
    model = soft(run)
    fit(model, TASKS, "equal", [run.train.batch()], epochs=3, lr=1e-2, penalty=0.5, device="cpu", progress=False)
    for p, q in zip(result.models[0].parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_mini_batches_count_steps():
    run = _runs(seeds=(0,), conditions=("x",))[0]
    result = train_each([run], _hard, TASKS, epochs=2, batch_size=8, device="cpu")
    assert sorted(result.curves.step.unique()) == [0, 4, 8]  # 30 cases in batches of 8


def test_best_epochs_without_validation_is_the_last_epoch():
    val = np.full((4, 2, 1), np.nan)
    val[:, 1, 0] = [3.0, 2.0, 2.0, 5.0]
    assert best_epochs(val, [0]).tolist() == [3, 1]


def test_errors_name_what_is_wrong():
    runs = _runs(seeds=(0,), conditions=("x",))
    with pytest.raises(ValueError, match="at least one run"):
        train_each([], _hard, TASKS)
    with pytest.raises(KeyError, match="expected \\['a'\\]"):
        train_each(runs, _hard, TASKS[:1], device="cpu")
    with pytest.raises(KeyError, match="'auc'"):
        train_each(runs, _hard, TASKS, metric="auc", device="cpu")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        train_each(runs, _hard, TASKS, steps_per_epoch=2, batch_size=4, device="cpu")


# -- all runs at once --------------------------------------------------------------------------------
#: The same tasks with replica losses (one value per replica) for train_replicated.
REPLICA_TASKS = [Task(t.name, replica_mse_loss, t.metrics) for t in TASKS]


def _stack(runs) -> ReplicatedMLP:
    return ReplicatedMLP.mlp(3, [8], {"a": 1, "b": 1}, [run.seed for run in runs])


def test_train_replicated_equals_train_each_run_by_run():
    runs = _runs(seeds=(0, 1, 2), conditions=("x",)) + [
        Run("STL", 0, _data(0, 30).with_targets({"a": _data(0, 30).targets["a"], "b": np.full((30, 1), np.nan)}),
            _data(1, 20), _data(2, 40))
    ]  # fmt: skip
    options = {"epochs": 12, "lr": 2e-2, "steps_per_epoch": 3, "metric": "mae", "select": ["a"], "device": "cpu"}
    together = train_replicated(runs, _stack, REPLICA_TASKS, **options)
    each = train_each(runs, _hard, TASKS, **options)
    columns = ["best_epoch", "best_step", "train_a", "val_a", "test_a", "test_b", "final_b", "init_a", "test"]
    np.testing.assert_allclose(
        together.summary[columns].to_numpy(float), each.summary[columns].to_numpy(float), rtol=2e-4, atol=1e-6
    )
    np.testing.assert_allclose(together.curves["test"], each.curves["test"], rtol=2e-4, atol=1e-6)
    assert together.stack is not None and len(together.models) == 4
    # every replica got back the weights of its own best epoch
    for r, run in enumerate(runs):
        again = evaluate(together.models[r], TASKS, [run.val.batch()], device="cpu")
        assert again["a/val_loss"] == pytest.approx(together.summary.loc[r, "val_a"], rel=1e-5)


def test_train_replicated_records_per_replica_and_checks_its_runs():
    runs = _runs(seeds=(0, 1), conditions=("x",))
    result = train_replicated(
        runs, _stack, REPLICA_TASKS, epochs=2, record=lambda m: m.trunk_weights[0].detach().clone(), device="cpu"
    )
    assert len(result.records[1]) == 3
    torch.testing.assert_close(result.records[1][0], _stack(runs).trunk_weights[0][1].detach())
    with pytest.raises(ValueError, match="2 replicas for 1 runs"):
        train_replicated(runs[:1], lambda r: _stack(runs), REPLICA_TASKS, epochs=1, device="cpu")
    with pytest.raises(KeyError, match="expected \\['a'\\]"):
        train_replicated(runs, _stack, REPLICA_TASKS[:1], epochs=1, device="cpu")

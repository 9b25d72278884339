"""The experiment runners of lecture A2 (mtl_course.experiments.mechanisms).

The runs are checked against the problems they come from, the ridge
read-out against scikit-learn, the input-weight share against a loop, and
the batched training against training one replica alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.data import caruana as C
from mtl_course.experiments import mechanisms as M
from mtl_course.experiments.engine import Run
from mtl_course.experiments.labels import MTL, SHUFFLED, STL
from mtl_course.experiments.replicate import ReplicatedMLP
from mtl_course.losses import mse_loss


def _model(seeds=(0, 1, 2), d: int = 6, tasks=None) -> M.ReplicatedMLP:
    return M.ReplicatedMLP.mlp(d, [8, 5], tasks or {"main": 1, "extra": 3}, list(seeds))


# -- training ---------------------------------------------------------------------------------
def _tiny_runs(seeds=(0, 1)) -> list[Run]:
    return M.make_runs(C.CaruanaProblem(), seeds, M.SHUFFLE_TEST_CONDITIONS, n_train=40, n_val=20, n_test=50)


def test_runs_give_each_condition_the_same_cases_and_score_against_the_truth() -> None:
    runs = _tiny_runs(seeds=(3,))
    assert [r.condition for r in runs] == ["STL", "MTL", "shuffled"]
    stl, mtl, shuffled = runs
    np.testing.assert_array_equal(stl.train.x, mtl.train.x)
    assert stl.train.tasks == ("main", "extra") and mtl.train.targets["extra"].shape == (40, 4)
    assert np.isnan(stl.train.targets["extra"]).all() and not np.isnan(mtl.train.targets["extra"]).any()
    np.testing.assert_array_equal(np.sort(shuffled.train.targets["extra"], 0), np.sort(mtl.train.targets["extra"], 0))
    truth = C.caruana_function(mtl.test.x)[:, None]
    np.testing.assert_array_equal(mtl.test.targets["main"], truth)


def test_a_replica_trains_the_same_alone_or_with_others(device: torch.device) -> None:
    runs = _tiny_runs()
    together = M.train_mlp_replicas(runs, steps=20, eval_every=5, device=device)
    alone = M.train_mlp_replicas(runs[1:2], steps=20, eval_every=5, device=device)
    cols = ["best_step", "test", "final", "train_main"]
    np.testing.assert_allclose(
        together.summary.loc[1, cols].to_numpy(float), alone.summary.loc[0, cols].to_numpy(float), rtol=1e-4
    )


def test_early_stopping_keeps_the_main_tasks_best_validation_epoch(device: torch.device) -> None:
    result = M.train_mlp_replicas(_tiny_runs(seeds=(0,)), steps=60, eval_every=5, lr=1e-2, device=device)
    main = result.curves[result.curves.task == "main"]
    best = main.groupby("run").val.min().to_numpy()
    np.testing.assert_allclose(result.summary["val_main"], best)
    np.testing.assert_allclose(result.summary["test"], result.summary["test_main"])
    for r, run in enumerate(result.runs):  # the restored replica scores its best epoch's test error
        with torch.no_grad():
            pred = result.models[r].to("cpu")(torch.as_tensor(run.test.x, dtype=torch.float32))["main"]
        assert float(mse_loss(pred, torch.as_tensor(run.test.targets["main"], dtype=torch.float32))) == pytest.approx(
            result.summary.loc[r, "test"], rel=1e-5
        )


def test_train_runs_rejects_mismatched_runs() -> None:
    runs = _tiny_runs(seeds=(0,))
    hint = M.make_runs(C.HintProblem(), [0], M.SHUFFLE_TEST_CONDITIONS, 40, 20, 50)
    with pytest.raises(ValueError, match="targets of one shape for task 'extra'"):
        M.train_mlp_replicas(runs + hint, steps=5, eval_every=5, device="cpu")
    with pytest.raises(ValueError, match="multiple of eval_every"):
        M.train_mlp_replicas(runs, steps=7, eval_every=5, device="cpu")


# -- read-outs and diagnostics -----------------------------------------------------------------
def test_linear_probe_matches_scikit_learn_ridge_on_standardised_features() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    r = np.random.default_rng(0)
    z, zt = r.standard_normal((40, 6)) * [1, 2, 3, 1, 1, 5], r.standard_normal((30, 6))
    y, yt = z @ r.standard_normal(6) + r.standard_normal(40), r.standard_normal(30)
    scaler = StandardScaler().fit(z)
    ridge = Ridge(alpha=0.1 * 40).fit(scaler.transform(z), y)
    expected = np.mean((yt - ridge.predict(scaler.transform(zt))) ** 2)
    assert M.linear_probe_error(z, y, zt, yt, ridge=0.1) == pytest.approx(expected, rel=1e-8)
    # several tasks at once: each column fitted separately, the mean MSE returned
    Y, Yt = np.column_stack([y, -2 * y + 1]), np.column_stack([yt, yt**2])
    per_task = [M.linear_probe_error(z, Y[:, j], zt, Yt[:, j], ridge=0.1) for j in range(2)]
    assert M.linear_probe_error(z, Y, zt, Yt, ridge=0.1) == pytest.approx(np.mean(per_task), rel=1e-10)
    multi = Ridge(alpha=0.1 * 40).fit(scaler.transform(z), Y)
    assert np.mean(per_task) == pytest.approx(np.mean((Yt - multi.predict(scaler.transform(zt))) ** 2), rel=1e-8)
    # a constant (dead) feature is ignored instead of dividing by zero
    z[:, 2] = 1.0
    assert np.isfinite(M.linear_probe_error(z, y, zt, yt))


def test_input_weight_share_against_a_loop() -> None:
    model = ReplicatedMLP.mlp(6, [8, 5], {"main": 1, "extra": 3}, [0, 1, 2])
    w = model.trunk_weights[0].detach().numpy()
    for r in range(3):
        mass = [(w[r, i] ** 2).sum() for i in range(6)]
        assert M.input_weight_share(model, [1, 4])[r] == pytest.approx((mass[1] + mass[4]) / sum(mass), rel=1e-5)


# -- the experiments run end to end on tiny budgets -----------------------------------------------
@pytest.mark.slow
def test_experiments_smoke(device: torch.device) -> None:
    small = {"n_train": 30, "n_val": 20, "n_test": 40, "steps": 20, "eval_every": 10, "device": device}
    res = M.caruana_experiment([0], **small)
    assert set(res.summary["condition"]) == {STL, MTL, SHUFFLED, M.MTL_COPIES, M.STL_AVERAGE}
    assert set(res.summary["experiment"]) == {"main", "random labels"}
    att = M.attention_experiment([0], **small)
    assert {"relevant_share", "relevant_share_init"} <= set(att.summary.columns)
    assert M.eavesdropping_experiment([0], **small).summary.shape[0] == 3
    rep, probe = M.representation_experiment([0], task_counts=(1, 3), n_probe=20, n_novel=2, **small)
    assert list(probe["tasks"]) == [1, 3] and probe["novel_mse"].notna().all()
    assert list(rep.summary["condition"]) == ["T=1", "T=3"]  # T: the number of training tasks
    extra = [run.train.targets["extra"] for run in rep.runs]
    assert np.isnan(extra[0]).all() and not np.isnan(extra[1][:, :2]).any() and np.isnan(extra[1][:, 2:]).all()
    assert M.predict(rep, "test").shape == (2, 40)
    bc = M.breast_cancer_experiment([0], n_train=30, n_val=30, steps=20, eval_every=10, device=device)
    assert bc.summary["test"].between(0, 1).all() and bc.summary["test_extra"].isna().all()
    assert bc.runs[0].test.n == 569 - 60
    assert abs(bc.runs[0].train.targets["main"].mean() - 212 / 569) < 0.05  # stratified

"""The experiment runners of lecture A2 (mtl_course.experiments.mechanisms).

The replicated model is checked against the course's own HardSharing model
(forward pass and autograd gradients), the losses against per-replica
loops, the ridge read-out against scikit-learn, and the batched training
against training each replica alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mtl_course.data import caruana as C
from mtl_course.experiments import mechanisms as M
from mtl_course.losses import mse_loss
from mtl_course.models import HardSharing


def _model(seeds=(0, 1, 2), d: int = 6, tasks=None) -> M.ReplicatedMLP:
    return M.ReplicatedMLP.mlp(d, [8, 5], tasks or {"main": 1, "extra": 3}, list(seeds))


# -- the replicated model ----------------------------------------------------------------
def test_each_replica_is_the_hard_sharing_model_seeded_alike(device: torch.device) -> None:
    model = _model(seeds=(4, 7)).to(device)
    x = torch.randn(2, 9, 6, device=device)
    out = model(x)
    for r, seed in enumerate((4, 7)):
        torch.manual_seed(seed)
        reference = HardSharing.mlp(6, [8, 5], {"main": 1, "extra": 3}).to(device)
        expected = reference(x[r])
        for task in ("main", "extra"):
            torch.testing.assert_close(out[task][r], expected[task])
            torch.testing.assert_close(model.replica(r)(x[r])[task], expected[task])


def test_contract_and_shape_errors() -> None:
    model = _model()
    counts = model.parameter_counts()
    assert counts["shared"] == 3 * (6 * 8 + 8 + 8 * 5 + 5)
    assert counts["extra"] == 3 * (5 * 3 + 3) and counts["total"] == counts["shared"] + counts["main"] + counts["extra"]
    assert torch.equal(model.encode(torch.ones(3, 2, 6))[0], model.replica(0).encode(torch.ones(2, 6)))
    with pytest.raises(ValueError, match=r"\(R=3, n, 6\)"):
        model(torch.zeros(2, 4, 6))
    with pytest.raises(IndexError):
        model.replica(3)


def test_replica_gradients_equal_hard_sharing_with_one_head_per_task() -> None:
    """A K-output head trained with the column loss = K one-output heads with the summed MSE."""
    torch.manual_seed(0)
    model = _model(seeds=(0, 1))
    x = torch.randn(2, 11, 6)
    y_main = torch.randn(2, 11, 1)
    y_extra = torch.randn(2, 11, 3)
    y_extra[1, :4, 2] = float("nan")  # partially missing labels
    out = model(x)
    (M.replica_mse_loss(out["main"], y_main) + M.replica_column_mse_loss(out["extra"], y_extra)).backward()
    for r in range(2):
        ref = model.replica(r)
        separate = HardSharing.mlp(6, [8, 5], {"main": 1, "e0": 1, "e1": 1, "e2": 1})
        separate.trunk.load_state_dict(ref.trunk.state_dict())
        separate.heads["main"].load_state_dict(ref.heads["main"].state_dict())
        with torch.no_grad():
            for k in range(3):
                separate.heads[f"e{k}"].layers[-1].weight.copy_(ref.heads["extra"].layers[-1].weight[k : k + 1])
                separate.heads[f"e{k}"].layers[-1].bias.copy_(ref.heads["extra"].layers[-1].bias[k : k + 1])
        o = separate(x[r])
        loss = mse_loss(o["main"], y_main[r]) + sum(mse_loss(o[f"e{k}"], y_extra[r, :, k : k + 1]) for k in range(3))
        loss.backward()
        for w, stage in zip(model.trunk_weights, separate.trunk.stages, strict=True):
            torch.testing.assert_close(w.grad[r], stage[0].weight.grad.T)
        torch.testing.assert_close(
            model.head_weights["extra"].grad[r, :, 2], separate.heads["e2"].layers[-1].weight.grad[0]
        )


def test_stl_replica_extra_head_gets_no_gradient() -> None:
    model = _model(seeds=(0,))
    x = torch.randn(1, 10, 6)
    out = model(x)
    y_extra = torch.full((1, 10, 3), float("nan"))
    loss = M.replica_mse_loss(out["main"], torch.randn(1, 10, 1)) + M.replica_column_mse_loss(out["extra"], y_extra)
    loss.backward()
    assert torch.count_nonzero(model.head_weights["extra"].grad) == 0
    assert torch.isfinite(model.trunk_weights[0].grad).all() and model.trunk_weights[0].grad.abs().sum() > 0


# -- losses against loops -----------------------------------------------------------------
def test_replica_losses_against_per_replica_loops() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 7, 2, generator=g)
    target = torch.randn(3, 7, 2, generator=g)
    target[0, :3, 1] = float("nan")
    target[2] = float("nan")
    expected_mse = sum(mse_loss(pred[r], target[r]) for r in range(2))  # replica 2 has no labels
    torch.testing.assert_close(M.replica_mse_loss(pred, target), expected_mse)
    expected_cols = sum(mse_loss(pred[r, :, k], target[r, :, k]) for r in range(2) for k in range(2))
    torch.testing.assert_close(M.replica_column_mse_loss(pred, target), expected_cols)
    labels = (torch.rand(3, 7, 1, generator=g) > 0.5).float()
    expected_bce = sum(F.binary_cross_entropy_with_logits(pred[r, :, :1], labels[r]) for r in range(3))
    torch.testing.assert_close(M.replica_bce_loss(pred[..., :1], labels), expected_bce)


# -- training ---------------------------------------------------------------------------------
def _tiny_arms(seeds=(0, 1)) -> list[M.Arm]:
    return M.make_arms(C.CaruanaProblem(), seeds, M.CONDITIONS, n_train=40, n_val=20, n_test=50)


def test_a_replica_trains_the_same_alone_or_with_others(device: torch.device) -> None:
    arms = _tiny_arms()
    together = M.train_arms(arms, steps=20, eval_every=5, device=device)
    alone = M.train_arms(arms[1:2], steps=20, eval_every=5, device=device)
    cols = ["best_step", "test_es", "test_final", "train_final"]
    np.testing.assert_allclose(
        together.summary.loc[1, cols].to_numpy(float), alone.summary.loc[0, cols].to_numpy(float), rtol=1e-4
    )


def test_early_stopping_restores_each_replicas_best_weights(device: torch.device) -> None:
    arms = _tiny_arms(seeds=(0,))
    result = M.train_arms(arms, steps=60, eval_every=5, lr=1e-2, device=device)
    monitor = M.ReplicaMonitor(arms, torch.device(device), "regression", 5)
    _, val, test = monitor.measure(result.model)
    best = result.curves.groupby("arm").val_loss.min().to_numpy()
    np.testing.assert_allclose(val.cpu().numpy(), best, rtol=1e-5)
    np.testing.assert_allclose(test.cpu().numpy(), result.summary["test_es"], rtol=1e-5)
    assert set(result.curves.columns) >= {"step", "arm", "condition", "seed", "train_loss", "val_loss", "test"}
    assert len(result.curves) == 3 * 12


def test_train_arms_rejects_mismatched_arms() -> None:
    arms = _tiny_arms(seeds=(0,))
    hint = M.make_arms(C.HintProblem(), [0], M.CONDITIONS, 40, 20, 50)
    with pytest.raises(ValueError, match="every arm needs the tasks"):
        M.train_arms(arms + hint, steps=5, eval_every=5, device="cpu")
    with pytest.raises(ValueError, match="multiple of eval_every"):
        M.train_arms(arms, steps=7, eval_every=5, device="cpu")


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
    model = _model()
    w = model.trunk_weights[0].detach().numpy()
    for r in range(3):
        mass = [(w[r, i] ** 2).sum() for i in range(6)]
        assert M.input_weight_share(model, [1, 4])[r] == pytest.approx((mass[1] + mass[4]) / sum(mass), rel=1e-5)


def test_summarize_pairs_conditions_with_the_baseline_by_seed() -> None:
    df = pd.DataFrame(
        {
            "condition": ["STL", "MTL", "STL", "MTL", "STL", "MTL"],
            "seed": [0, 0, 1, 1, 2, 2],
            "err": [1.0, 0.5, 2.0, 2.5, 3.0, 1.5],
        }
    )
    out = M.summarize(df, metric="err")
    assert out.loc["MTL", "mean"] == pytest.approx(1.5)
    assert out.loc["MTL", "sd"] == pytest.approx(np.std([0.5, 2.5, 1.5], ddof=1))
    assert out.loc["MTL", "wins"] == 2 and out.loc["STL", "wins"] == 0
    assert out.loc["MTL", "rel_change"] == pytest.approx(np.mean([-0.5, 0.25, -0.5]))
    assert M.summarize(df, metric="err", higher_is_better=True).loc["MTL", "wins"] == 1
    assert M.mean_sd([1.0, 2.0, 3.0], digits=1) == "2.0 ± 1.0"


# -- the experiments run end to end on tiny budgets -----------------------------------------------
@pytest.mark.slow
def test_experiments_smoke(device: torch.device) -> None:
    small = {"n_train": 30, "n_val": 20, "n_test": 40, "steps": 20, "eval_every": 10, "device": device}
    res = M.caruana_experiment([0], **small)
    assert set(res.summary["condition"]) == {"STL", "MTL", "shuffled", "MTL copies", "STL average"}
    assert set(res.summary["experiment"]) == {"main", "random labels"}
    att = M.attention_experiment([0], **small)
    assert {"relevant_share", "relevant_share_init"} <= set(att.summary.columns)
    assert M.eavesdropping_experiment([0], **small).summary.shape[0] == 3
    rep, probe = M.representation_experiment([0], task_counts=(1, 3), n_probe=20, n_novel=2, **small)
    assert list(probe["tasks"]) == [1, 3] and probe["novel_mse"].notna().all()
    assert (
        np.isnan(rep.arms[0].train.targets["task_2"]).all() and not np.isnan(rep.arms[1].train.targets["task_3"]).any()
    )
    bc = M.breast_cancer_experiment([0], n_train=30, n_val=30, steps=20, eval_every=10, device=device)
    assert bc.summary["test_es"].between(0, 1).all()
    assert len(bc.arms[0].test.truth) == 569 - 60
    assert abs(bc.arms[0].train.truth.mean() - 212 / 569) < 0.05  # stratified

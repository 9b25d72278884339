"""The replicated models (mtl_course.experiments.replicate).

Each replica is checked against the ordinary model it stands for (forward
pass, autograd gradients, penalty, training with ``fit``), and the replica
losses against loops over replicas and columns of the course's own losses.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.teachers import make_related_tasks
from mtl_course.experiments.replicate import (
    ReplicatedColumns,
    ReplicatedMLP,
    replica_bce_loss,
    replica_column_mse_loss,
    replica_mse_loss,
    summed,
)
from mtl_course.losses import mse_loss
from mtl_course.models import HardSharing, SoftSharing
from mtl_course.train import Task, fit

TASKS = {"a": 1, "b": 1}


# -- losses against loops -----------------------------------------------------------------
def test_replica_losses_against_per_replica_loops() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 7, 2, generator=g)
    target = torch.randn(3, 7, 2, generator=g)
    target[0, :3, 1] = float("nan")
    target[2] = float("nan")
    expected_mse = torch.stack([mse_loss(pred[r], target[r]) for r in range(3)])  # replica 2 has no labels: 0
    torch.testing.assert_close(replica_mse_loss(pred, target), expected_mse)
    torch.testing.assert_close(summed(replica_mse_loss)(pred, target), expected_mse.sum())
    expected_cols = torch.stack([sum(mse_loss(pred[r, :, k], target[r, :, k]) for k in range(2)) for r in range(3)])
    torch.testing.assert_close(replica_column_mse_loss(pred, target), expected_cols)
    labels = (torch.rand(3, 7, 1, generator=g) > 0.5).float()
    expected_bce = sum(F.binary_cross_entropy_with_logits(pred[r, :, :1], labels[r]) for r in range(3))
    torch.testing.assert_close(replica_bce_loss(pred[..., :1], labels).sum(), expected_bce)
    mask = torch.rand(3, 7, generator=g) > 0.3
    expected_masked = torch.stack([mse_loss(pred[r], target[r], mask[r]) for r in range(3)])
    torch.testing.assert_close(replica_mse_loss(pred, target, mask), expected_masked)


# -- ReplicatedMLP --------------------------------------------------------------------------
def _mlp(seeds=(0, 1, 2), d: int = 6) -> ReplicatedMLP:
    return ReplicatedMLP.mlp(d, [8, 5], {"main": 1, "extra": 3}, list(seeds))


def test_each_replica_is_the_hard_sharing_model_seeded_alike(device: torch.device) -> None:
    model = _mlp(seeds=(4, 7)).to(device)
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
    model = _mlp()
    counts = model.parameter_counts()
    assert counts["shared"] == 3 * (6 * 8 + 8 + 8 * 5 + 5)
    assert counts["extra"] == 3 * (5 * 3 + 3) and counts["total"] == counts["shared"] + counts["main"] + counts["extra"]
    assert torch.equal(model.encode(torch.ones(3, 2, 6))[0], model.replica(0).encode(torch.ones(2, 6)))
    with pytest.raises(ValueError, match=r"\(R=3, n, 6\)"):
        model(torch.zeros(2, 4, 6))
    with pytest.raises(IndexError):
        model.replica(3)
    with pytest.raises(ValueError, match="same sizes and tasks"):
        ReplicatedMLP([HardSharing.mlp(3, [4], TASKS), HardSharing.mlp(3, [5], TASKS)])


def test_replica_gradients_equal_hard_sharing_with_one_head_per_task() -> None:
    """A K-output head trained with the per-column loss = K one-output heads with the summed MSE."""
    torch.manual_seed(0)
    model = _mlp(seeds=(0, 1))
    x = torch.randn(2, 11, 6)
    y_main = torch.randn(2, 11, 1)
    y_extra = torch.randn(2, 11, 3)
    y_extra[1, :4, 2] = float("nan")  # partially missing labels
    out = model(x)
    (replica_mse_loss(out["main"], y_main) + replica_column_mse_loss(out["extra"], y_extra)).sum().backward()
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
    model = _mlp(seeds=(0,))
    out = model(torch.randn(1, 10, 6))
    y_extra = torch.full((1, 10, 3), float("nan"))
    loss = replica_mse_loss(out["main"], torch.randn(1, 10, 1)) + replica_column_mse_loss(out["extra"], y_extra)
    loss.sum().backward()
    assert torch.count_nonzero(model.head_weights["extra"].grad) == 0
    assert torch.isfinite(model.trunk_weights[0].grad).all() and model.trunk_weights[0].grad.abs().sum() > 0


def test_stack_puts_every_replicas_data_side_by_side() -> None:
    model = _mlp(seeds=(0, 1))
    data = [
        MultiTaskData(np.full((4, 6), float(r)), {"main": np.arange(4.0) + r, "extra": np.ones((4, 3))})
        for r in range(2)
    ]
    x, y = model.stack(data)
    assert x.shape == (2, 4, 6) and y["main"].shape == (2, 4, 1) and y["extra"].shape == (2, 4, 3)
    assert float(x[1, 0, 0]) == 1.0 and y["main"][1, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="same number of cases"):
        model.stack([data[0], data[1].take([0, 1])])


# -- ReplicatedColumns ----------------------------------------------------------------------
def _columns(penalty: str = "l2") -> ReplicatedColumns:
    return ReplicatedColumns.from_seeds(
        3,
        [5, 4],
        TASKS,
        seeds=[0, 1, 1, 2],
        lams=[0.0, 0.5, 2.0, 9.0],
        hard=[False, False, False, True],
        penalty=penalty,
    )


def _column_distance(model: SoftSharing) -> float:
    vectors = {t: parameters_to_vector(model.columns[t].parameters()).detach().double() for t in model.tasks}
    squared = sum((vectors[i] - vectors[j]).pow(2).sum() for i, j in itertools.combinations(model.tasks, 2))
    norms = sum(v.pow(2).sum() for v in vectors.values())
    return float((squared / ((len(vectors) - 1) * norms)).sqrt())


def test_replicas_compute_what_the_plain_models_compute() -> None:
    model = _columns()
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
    model = _columns(penalty)
    values = model.penalty_per_replica()
    for r in range(3):
        torch.testing.assert_close(values[r], model.replica(r).penalty(), rtol=1e-5, atol=1e-5)
    expected = sum(lam * v for lam, v in zip([0.0, 0.5, 2.0, 0.0], values, strict=True))  # hard: lam forced to 0
    torch.testing.assert_close(model.penalty(), expected)


def test_distances_per_replica_match_a_brute_force_distance() -> None:
    model = _columns()
    d = model.distances()
    for r in range(3):
        assert float(d[r]) == pytest.approx(_column_distance(model.replica(r)), rel=1e-6)
    assert float(d[3]) == 0.0  # the hard replica's columns are tied


def test_same_seed_same_start_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    model = _columns()
    assert torch.equal(torch.rand(1), expected)
    torch.testing.assert_close(model.weights[0][1], model.weights[0][2])
    assert not torch.equal(model.weights[0][0], model.weights[0][1])
    torch.manual_seed(1)
    reference = SoftSharing.mlp(3, [5, 4], TASKS)
    torch.testing.assert_close(model.weights[0][1, 0], reference.columns["a"].stages[0][0].weight.T)


def test_shared_and_task_parameters_cover_every_parameter_once() -> None:
    model = _columns()
    listed = [*model.shared_parameters(), *model.task_parameters("a"), *model.task_parameters("b")]
    assert len({id(p) for p in listed}) == len(listed) == len(list(model.parameters()))


def test_stack_gives_each_column_its_own_cases_when_the_tasks_have_disjoint_cohorts() -> None:
    model = ReplicatedColumns.from_seeds(4, [6], TASKS, seeds=[0, 1], lams=[0.0, 0.1])
    train, _, test = make_related_tasks(5, 0.5, seed=0)
    x, y = model.stack([train, train])
    assert x.shape == (2, 2, 5, 4) and y["b"].shape == (2, 5, 1)
    np.testing.assert_array_equal(x[0, 1].numpy(), train.x[5:].astype(np.float32))
    np.testing.assert_array_equal(y["b"][1, :, 0].numpy(), train.targets["b"][5:, 0].astype(np.float32))
    x, y = model.stack([test, test])  # every case labelled for both tasks: the pooled layout
    assert x.shape == (2, 500, 4) and y["a"].shape == (2, 500, 1)


@pytest.mark.parametrize("penalty", ["l2", "trace"])
def test_training_a_replica_in_the_stack_equals_training_it_alone(penalty: str) -> None:
    """The batched sweep is an implementation detail: each replica follows its own fit() trajectory."""
    train = make_related_tasks(12, 0.5, seed=0).train
    lams, hard = [0.0, 0.05, 0.3, 0.0], [False, False, False, True]
    model = ReplicatedColumns.from_seeds(4, [6, 3], TASKS, seeds=[0, 1, 2, 3], lams=lams, hard=hard, penalty=penalty)
    singles = [model.replica(r) for r in range(4)]
    tasks = [Task(t, summed(replica_mse_loss)) for t in train.tasks]
    fit(
        model, tasks, "equal", [model.stack([train] * 4)], epochs=40, lr=1e-2, penalty=1.0, progress=False, device="cpu"
    )
    # alone: the pooled cases with NaN for the other task's labels, the course's missing-label convention
    for r, single in enumerate(singles):
        weight = 0.0 if hard[r] else float(lams[r])
        tasks = [Task(t, mse_loss) for t in train.tasks]
        fit(single, tasks, "equal", [train.batch()], epochs=40, lr=1e-2, penalty=weight, progress=False, device="cpu")
        for p, q in zip(single.parameters(), model.replica(r).parameters(), strict=True):
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

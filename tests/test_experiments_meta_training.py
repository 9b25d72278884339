"""MAML's inner step, the learning-progress teacher and the recipe of lecture B15."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from mtl_course.data import make_digit_pair_tasks
from mtl_course.experiments import (
    JOINT_PRETRAINING,
    META_CONDITIONS,
    LearningProgressTeacher,
    classifier,
    fine_tune,
    inner_step,
    joint_pretrain,
    meta_train,
    run_meta_training,
    sample_episode,
)
from mtl_course.losses import binary_cross_entropy
from mtl_course.metrics import auc


@pytest.fixture(scope="module")
def data():
    return make_digit_pair_tasks(seed=0)


def test_inner_step_equals_the_hand_computed_logistic_gradient():
    gen = torch.Generator().manual_seed(0)
    model = nn.Linear(5, 1).double()
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    y = (torch.rand(12, generator=gen) > 0.5).double()
    params = dict(model.named_parameters())
    adapted = inner_step(model, params, x, y, inner_lr=0.3)
    # closed form: d/dw mean BCE(x w + b, y) = x^T (sigmoid(x w + b) - y) / n
    residual = torch.sigmoid(x @ model.weight.T + model.bias).squeeze(-1) - y
    torch.testing.assert_close(adapted["weight"], model.weight - 0.3 * (residual @ x / 12).unsqueeze(0))
    torch.testing.assert_close(adapted["bias"], model.bias - 0.3 * residual.mean().unsqueeze(0))


def test_meta_gradient_goes_through_the_inner_step_finite_differences():
    gen = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    xs, xq = (torch.randn(6, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    ys, yq = (torch.tensor([0.0, 1, 0, 1, 1, 0], dtype=torch.float64) for _ in range(2))

    def meta_loss(flat: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        params, start = {}, 0
        for name, p in model.named_parameters():
            params[name] = flat[start : start + p.numel()].view_as(p)
            start += p.numel()
        adapted = inner_step(model, params, xs, ys, inner_lr=0.7, create_graph=create_graph)
        out = torch.func.functional_call(model, adapted, (xq,)).squeeze(-1)
        return nn.functional.binary_cross_entropy_with_logits(out, yq)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).requires_grad_(True)
    (grad,) = torch.autograd.grad(meta_loss(flat), flat)
    eps, numeric = 1e-6, torch.zeros_like(flat)
    for i in range(len(flat)):
        step = torch.zeros_like(flat)
        step[i] = eps
        numeric[i] = (meta_loss(flat + step).detach() - meta_loss(flat - step).detach()) / (2 * eps)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)
    (first_order,) = torch.autograd.grad(meta_loss(flat, create_graph=False), flat)
    assert not torch.allclose(first_order, grad, atol=1e-4)  # the second-order term matters here


def test_teacher_picks_the_brute_force_argmax_of_learning_progress():
    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(6)]
    teacher = LearningProgressTeacher(tasks, beta=0.3, epsilon=0.0)
    history: dict[str, list[float]] = {t: [] for t in tasks}
    for _ in range(40):
        task = tasks[rng.integers(6)]
        score = float(rng.normal())
        teacher.update(task, score)
        history[task].append(score)
    # brute force: |Q| = |sum_j beta (1 - beta)^(m - j) r_j| with r_j the change of score, from chance -ln 2
    progress = {}
    for t, scores in history.items():
        changes = np.diff([-np.log(2.0), *scores])
        m = len(changes)
        progress[t] = abs(sum(0.3 * 0.7 ** (m - 1 - j) * r for j, r in enumerate(changes)))
    assert teacher.choose(1) == [max(tasks, key=progress.get)]
    assert teacher.choose(3) == sorted(tasks, key=progress.get, reverse=True)[:3]


def test_teacher_explores_uniformly_and_picks_distinct_tasks():
    teacher = LearningProgressTeacher(list("abcd"), epsilon=1.0, seed=0)
    teacher.update("a", 5.0)  # a large progress that a greedy teacher would always pick
    picks = [teacher.choose(1)[0] for _ in range(4000)]
    counts = np.array([picks.count(t) for t in "abcd"])
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    assert len(set(teacher.choose(4))) == 4


def test_fine_tune_auc_agrees_with_scikit_learn(data):
    score = torch.tensor(np.random.default_rng(0).integers(0, 5, 200), dtype=torch.float32)  # many ties
    y = torch.tensor(np.random.default_rng(1).integers(0, 2, 200), dtype=torch.float32)
    assert auc(score, y) == pytest.approx(roc_auc_score(y.numpy(), score.numpy()))
    model = classifier(seed=0)
    value = fine_tune(model, data, steps=3)
    with torch.no_grad():
        s = model(torch.as_tensor(data.target_test.x)).squeeze(-1).numpy()
    assert value == pytest.approx(roc_auc_score(data.target_test.targets["target"], s))


def test_meta_training_lowers_the_query_loss(data):
    history = meta_train(classifier(seed=0), data, curriculum=True, iterations=120, seed=0)
    assert len(history.picks) == 120 and all(len(set(p)) == 4 for p in history.picks)
    assert np.mean(history.query_loss[-20:]) < np.mean(history.query_loss[:20]) - 0.05


def test_joint_pretraining_lowers_the_loss_and_keeps_the_head(data):
    model = classifier(seed=0)
    head = model[-1].weight.detach().clone()
    fresh = classifier(seed=0)
    torch.manual_seed(5)  # the same 45 output heads in both calls
    first = joint_pretrain(fresh, data, steps=1)[0]
    torch.manual_seed(5)
    heads = nn.Linear(32, 45)
    with torch.no_grad():
        z = model[:-1](torch.as_tensor(data.source.x))
        per_task = [
            binary_cross_entropy(heads(z)[:, j], torch.as_tensor(data.source.targets[t]))
            for j, t in enumerate(data.source.tasks)
        ]
    assert first == pytest.approx(torch.stack(per_task).mean().item(), rel=1e-6)  # the mean of the task losses
    losses = joint_pretrain(model, data, steps=60)
    assert losses[-1] < losses[0] - 0.1
    torch.testing.assert_close(model[-1].weight, head)


def test_run_meta_training_table(data):
    result = run_meta_training([0], iterations=3, fine_tune_steps=2)
    assert list(result.table.condition) == list(META_CONDITIONS)
    assert result.table.auc.between(0, 1).all() and len(result.histories) == 2
    with pytest.raises(ValueError, match="conditions from"):
        run_meta_training([0], conditions=[JOINT_PRETRAINING, "MAML++"])


def test_bad_input(data):
    rng = np.random.default_rng(0)
    with pytest.raises(KeyError, match="unknown source task 'd3_vs_3'"):
        sample_episode(data, "d3_vs_3", 5, rng)
    with pytest.raises(ValueError, match="leaves no query images"):
        sample_episode(data, "d3_vs_8", 10, rng)
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="same, non-zero length"):
        inner_step(model, dict(model.named_parameters()), torch.zeros(3, 2), torch.zeros(2), 0.1)
    with pytest.raises(ValueError, match="at least one task"):
        LearningProgressTeacher([])
    teacher = LearningProgressTeacher(["a", "b"])
    with pytest.raises(ValueError, match="must be finite, got nan"):
        teacher.update("a", float("nan"))
    with pytest.raises(ValueError, match="can choose 1 to 2 tasks, got k=3"):
        teacher.choose(3)
    with pytest.raises(ValueError, match="positive hidden widths"):
        classifier(hidden=())

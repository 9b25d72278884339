r"""Meta-training on a curriculum of small tasks, then fine-tuning on the target (lecture B15).

Maicas, Bradley, Nascimento, Reid and Carneiro, "Training Medical Image
Analysis Systems like Radiologists", MICCAI 2018, arXiv 1805.10884: pre-train
a classifier with model-agnostic meta-learning (MAML; Finn, Abbeel and
Levine, ICML 2017, arXiv 1703.03400) on many small classification tasks, the
tasks chosen by teacher-student curriculum learning (Matiisen, Oliver, Cohen
and Schulman, arXiv 1707.00183) instead of uniformly at random, then
fine-tune on the target task.

**MAML.** For a task :math:`\tau` with support set :math:`S_\tau` and query
set :math:`Q_\tau`, one inner gradient step with step size :math:`\alpha`
adapts the weights, and the meta-objective is the query loss of the adapted
weights, averaged over a meta-batch :math:`B` of tasks:

.. math::

    \theta'_\tau = \theta - \alpha\, \nabla_\theta L_{S_\tau}(\theta), \qquad
    \min_\theta \; \frac{1}{|B|} \sum_{\tau \in B} L_{Q_\tau}(\theta'_\tau) .

The gradient of the meta-objective goes through the inner step (second order).

**The teacher.** After task :math:`i` is practised at step :math:`t` with
score :math:`s_i(t)` (here minus the query loss after adaptation), its
learning progress is the change since its previous visit,
:math:`r = s_i(t) - s_i(t')` (the first visit is measured from the score of
chance, :math:`-\ln 2`), smoothed as :math:`Q_i \leftarrow \beta r + (1 -
\beta) Q_i` (Matiisen et al.'s "online" teacher). The teacher picks the task
of largest :math:`|Q_i|` (progress, or forgetting), except with probability
:math:`\varepsilon`, when it picks a task uniformly at random (exploration).

**Joint pre-training**, the multi-task baseline: the same trunk with one
output per source task, trained on the sum of the masked task losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from mtl_course.data.digit_pairs import TARGET, FewShotTasks, make_digit_pair_tasks
from mtl_course.losses import binary_cross_entropy
from mtl_course.metrics import auc

RANDOM_INIT = "random init"
JOINT_PRETRAINING = "joint MTL pre-training"
META_UNIFORM = "meta-training, uniform"
META_CURRICULUM = "meta-training, curriculum"
#: The four conditions of the lecture, in the order of its table.
META_CONDITIONS: tuple[str, ...] = (RANDOM_INIT, JOINT_PRETRAINING, META_UNIFORM, META_CURRICULUM)
#: The score of a classifier that outputs 1/2 everywhere: minus the cross-entropy of chance.
CHANCE_SCORE = -math.log(2.0)

Params = dict[str, torch.Tensor]


def classifier(in_features: int = 64, hidden: Sequence[int] = (32, 32), seed: int = 0) -> nn.Sequential:
    """A seeded MLP ``in_features -> hidden... -> 1`` (one logit).

    ``model[:-1]`` is the trunk, ``model[-1]`` the head.
    """
    if in_features < 1 or not hidden or any(h < 1 for h in hidden):
        raise ValueError(f"need in_features >= 1 and positive hidden widths, got {in_features}, {list(hidden)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for width_in, width_out in zip([in_features, *hidden[:-1]], hidden, strict=True):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden[-1], 1))


def _loss(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return binary_cross_entropy(functional_call(model, params, (x,)).squeeze(-1), y)


def inner_step(
    model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor, inner_lr: float, create_graph: bool = True
) -> Params:
    r"""MAML's adapted weights :math:`\theta' = \theta - \alpha \nabla_\theta L_S(\theta)` after one step on ``(x, y)``.

    ``params`` maps names (as in ``model.named_parameters()``) to tensors;
    ``create_graph=True`` keeps the step differentiable (second-order MAML).
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"support inputs and labels must have the same, non-zero length, got {len(x)} and {len(y)}")
    loss = _loss(model, params, x, y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads, strict=True)}


@dataclass(frozen=True)
class Episode:
    """One task's support set (adapt on it) and query set (score the adapted weights on it)."""

    task: str
    x_support: torch.Tensor
    y_support: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor


def sample_episode(source: FewShotTasks, task: str, k_shot: int, rng: np.random.Generator) -> Episode:
    """``k_shot`` images of each class of ``task`` for the support set, the task's other images for the query set."""
    if task not in source.source.targets:
        raise KeyError(f"unknown source task {task!r}; the tasks are {source.source.tasks[:3]}...")
    y = np.asarray(source.source.targets[task])
    support = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k_shot] for c in (0.0, 1.0)])
    labelled = np.flatnonzero(~np.isnan(y))
    query = np.setdiff1d(labelled, support)
    if len(query) == 0:
        raise ValueError(f"k_shot={k_shot} leaves no query images for task {task!r} ({len(labelled)} labelled)")
    x_all, y_all = torch.as_tensor(source.source.x), torch.as_tensor(y)
    return Episode(task, x_all[support], y_all[support], x_all[query], y_all[query])


class LearningProgressTeacher:
    r"""Matiisen et al.'s "online" teacher: :math:`Q_i \leftarrow \beta r + (1-\beta) Q_i`, pick :math:`\arg\max |Q_i|`.

    ``choose(k)`` returns ``k`` distinct tasks: each slot is, with probability
    ``epsilon``, a task drawn uniformly from those not yet chosen, otherwise the
    not-yet-chosen task of largest :math:`|Q_i|` (ties to the first).
    """

    def __init__(self, tasks: Sequence[str], beta: float = 0.3, epsilon: float = 0.2, seed: int = 0) -> None:
        if not tasks:
            raise ValueError("the teacher needs at least one task, got an empty list")
        if not 0 < beta <= 1 or not 0 <= epsilon <= 1:
            raise ValueError(f"need 0 < beta <= 1 and 0 <= epsilon <= 1, got beta={beta}, epsilon={epsilon}")
        self.tasks, self.beta, self.epsilon = list(tasks), beta, epsilon
        self.q = np.zeros(len(self.tasks))
        self.last_score = np.full(len(self.tasks), CHANCE_SCORE)
        self.rng = np.random.default_rng(seed)

    def update(self, task: str, score: float) -> None:
        """Record ``score`` for ``task``: its progress since the last visit updates :math:`Q`."""
        if not math.isfinite(score):
            raise ValueError(f"the score of {task!r} must be finite, got {score}")
        i = self.tasks.index(task)
        self.q[i] = self.beta * (score - self.last_score[i]) + (1 - self.beta) * self.q[i]
        self.last_score[i] = score

    def choose(self, k: int = 1) -> list[str]:
        """``k`` distinct tasks, greedy in :math:`|Q|` with :math:`\\varepsilon`-exploration."""
        if not 1 <= k <= len(self.tasks):
            raise ValueError(f"can choose 1 to {len(self.tasks)} tasks, got k={k}")
        left, chosen = list(range(len(self.tasks))), []
        for _ in range(k):
            if self.rng.random() < self.epsilon:
                i = left[self.rng.integers(len(left))]
            else:
                i = max(left, key=lambda j: abs(self.q[j]))
            left.remove(i)
            chosen.append(self.tasks[i])
        return chosen


@dataclass
class MetaHistory:
    """What meta-training did: the tasks of each meta-batch and the mean query loss after adaptation."""

    picks: list[list[str]] = field(default_factory=list)
    query_loss: list[float] = field(default_factory=list)


def meta_train(
    model: nn.Module,
    source: FewShotTasks,
    curriculum: bool,
    iterations: int = 300,
    meta_batch: int = 4,
    k_shot: int = 5,
    inner_lr: float = 0.5,
    meta_lr: float = 1e-3,
    seed: int = 0,
) -> MetaHistory:
    """Second-order MAML on the source tasks, sampled uniformly or by a :class:`LearningProgressTeacher`."""
    rng, teacher = np.random.default_rng(seed), LearningProgressTeacher(source.source.tasks, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=meta_lr)
    history = MetaHistory()
    for _ in range(iterations):
        if curriculum:
            tasks = teacher.choose(meta_batch)
        else:
            tasks = list(rng.choice(source.source.tasks, size=meta_batch, replace=False))
        params = dict(model.named_parameters())
        losses = []
        for task in tasks:
            ep = sample_episode(source, task, k_shot, rng)
            adapted = inner_step(model, params, ep.x_support, ep.y_support, inner_lr)
            losses.append(_loss(model, adapted, ep.x_query, ep.y_query))
            teacher.update(task, -losses[-1].item())
        meta_loss = torch.stack(losses).mean()
        optimizer.zero_grad()
        meta_loss.backward()
        optimizer.step()
        history.picks.append(tasks)
        history.query_loss.append(meta_loss.item())
    return history


def joint_pretrain(model: nn.Sequential, source: FewShotTasks, steps: int = 300, lr: float = 1e-2) -> list[float]:
    """Train ``model[:-1]`` with one linear output per source task on the mean of the masked task losses.

    Full batch, Adam; returns the loss per step. The head ``model[-1]`` is not touched. Every source task
    has the same number of labels (``2 n_per_digit``), so the mean over all labelled (image, task) entries,
    computed in one call, is the mean of the 45 task losses.
    """
    trunk, width = model[:-1], model[-1].in_features
    heads = nn.Linear(width, len(source.source.tasks))
    x = torch.as_tensor(source.source.x)
    y = torch.stack([torch.as_tensor(source.source.targets[t]) for t in source.source.tasks], dim=1)
    optimizer = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=lr)
    losses = []
    for _ in range(steps):
        logits = heads(trunk(x))
        loss = binary_cross_entropy(logits, y)  # NaN marks an image outside a task's pair
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def fine_tune(model: nn.Module, source: FewShotTasks, steps: int = 100, lr: float = 1e-2) -> float:
    """Train every weight on the target's few labels (full batch, Adam) and return the test AUC."""
    x, y = (torch.as_tensor(a) for a in (source.target_train.x, source.target_train.targets[TARGET]))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = binary_cross_entropy(model(x).squeeze(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        score = model(torch.as_tensor(source.target_test.x)).squeeze(-1)
    return auc(score, torch.as_tensor(source.target_test.targets[TARGET]))


@dataclass
class MetaTrainingResult:
    """``table``: one row per (condition, seed) with the target test ``auc``; ``histories``: meta-training, by run."""

    table: pd.DataFrame
    histories: dict[tuple[str, int], MetaHistory]


def run_meta_training(
    seeds: Sequence[int], conditions: Sequence[str] = META_CONDITIONS, iterations: int = 300, fine_tune_steps: int = 100
) -> MetaTrainingResult:
    """Every condition on every seed: same split, initial weights and fine-tuning; only pre-training differs.

    A seed draws the split of ``load_digits`` (:func:`make_digit_pair_tasks`),
    the initial weights and the episodes. Joint pre-training gets as many
    (full-batch) steps as meta-training gets meta-iterations.
    """
    unknown = [c for c in conditions if c not in META_CONDITIONS]
    if unknown or not seeds:
        raise ValueError(f"need seeds and conditions from {list(META_CONDITIONS)}, got {list(seeds)} and {unknown}")
    rows, histories = [], {}
    for seed in seeds:
        data = make_digit_pair_tasks(seed=seed)
        for condition in conditions:
            model = classifier(seed=seed)
            if condition == JOINT_PRETRAINING:
                joint_pretrain(model, data, steps=iterations)
            elif condition in (META_UNIFORM, META_CURRICULUM):
                histories[condition, seed] = meta_train(
                    model, data, curriculum=condition == META_CURRICULUM, iterations=iterations, seed=seed
                )
            rows.append({"condition": condition, "seed": seed, "auc": fine_tune(model, data, steps=fine_tune_steps)})
    return MetaTrainingResult(pd.DataFrame(rows), histories)

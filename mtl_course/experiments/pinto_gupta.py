r"""Lecture B6's experiment: a fixed budget of robot interactions, split between grasping and pushing.

Pinto and Gupta, "Learning to push by grasping: using multiple tasks for
effective learning" (ICRA 2017, arXiv 1609.09025), abstract: "a deep-network
learned with 2.5K grasp and 2.5K push examples performs better on grasping
than a network trained on 5K grasp examples". Every interaction labels one
task, so a budget of :math:`B` interactions with a push fraction
:math:`f` gives :math:`(1 - f)B` grasp labels and :math:`fB` push labels.
The joint loss is the sum of the two tasks' losses, each averaged over the
interactions that label it (the course's masked losses):

.. math::

    L = \frac{1}{n_g} \sum_{i \in G} -\big[y_i \log \sigma(\hat g_{i,k_i})
        + (1 - y_i) \log\big(1 - \sigma(\hat g_{i,k_i})\big)\big]
      + \frac{1}{2 n_p} \sum_{i \in P} \lVert \hat d_{i,j_i} - d_i \rVert^2

with :math:`G` and :math:`P` the :math:`n_g` grasp and :math:`n_p` push
interactions, :math:`k_i` the tried angle and :math:`j_i` the tried
direction

(the sigmoid cross-entropy :func:`~mtl_course.losses.binary_cross_entropy`
and the squared error :func:`~mtl_course.losses.mse_loss`, which averages
over the 2 outcome values as well).

:func:`run_budget_split` trains one
:class:`~mtl_course.models.grasp_push.GraspPushNetwork` per (budget, push
fraction, seed) with the engine's :func:`~mtl_course.experiments.engine.train_each`,
plus the sceptic's control :data:`GRASP_ONLY_HALF`: the grasp labels of the
half-and-half split without its push labels (the same network trained on
grasping alone, i.e. the single-task network of equal capacity). All runs
of one seed draw their interactions from one pool (a smaller budget or
fraction takes a prefix of it) and start from the same weights; they are
scored on the same held-out scenes, on every gripper angle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mtl_course.data.tabletop import make_tabletop
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.losses import binary_cross_entropy, mse_loss
from mtl_course.metrics import binary_accuracy, mse
from mtl_course.models.grasp_push import GraspPushNetwork
from mtl_course.train import Task

#: The metric the engine scores the test set with: grasp accuracy (every angle) and push MSE.
SCORE = "score"
#: The control condition: the half-and-half split's grasp labels alone.
GRASP_ONLY_HALF = "grasp only, half the budget"


def split_label(push_fraction: float) -> str:
    """The condition name of a push fraction: ``"push 50%"``.

    >>> split_label(0.25), split_label(0.0)
    ('push 25%', 'push 0%')
    """
    if not 0.0 <= push_fraction <= 1.0:
        raise ValueError(f"a push fraction lies in [0, 1], got {push_fraction}")
    return f"push {100 * push_fraction:g}%"


def grasp_push_tasks() -> list[Task]:
    """The two tasks with the losses of the slides: sigmoid cross-entropy (grasp), squared error (push);
    :data:`SCORE` is the grasp accuracy and the push mean squared error."""
    return [
        Task("grasp", binary_cross_entropy, {SCORE: binary_accuracy}),
        Task("push", mse_loss, {SCORE: mse}),
    ]


def budget_split(pool: MultiTaskData, budget: int, push_fraction: float) -> MultiTaskData:
    """The first ``round((1 - f) budget)`` grasp and the first ``round(f budget)`` push interactions of ``pool``.

    ``pool`` is a :func:`~mtl_course.data.tabletop.make_tabletop` set (its ``info["task"]`` says which
    task each row labels).

    >>> pool = make_tabletop(4, 4, seed=0)
    >>> budget_split(pool, 4, 0.25).n_labelled()
    {'grasp': 3, 'push': 1}
    """
    split_label(push_fraction)
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"the budget must be a positive int, got {budget!r}")
    n_push = round(push_fraction * budget)
    rows = {task: [i for i, t in enumerate(pool.info["task"]) if t == task] for task in ("grasp", "push")}
    wanted = {"grasp": budget - n_push, "push": n_push}
    for task, n in wanted.items():
        if n > len(rows[task]):
            raise ValueError(f"the pool has {len(rows[task])} {task} interactions, the split needs {n}")
    return pool.take(rows["grasp"][: wanted["grasp"]] + rows["push"][: wanted["push"]])


def budget_runs(
    budgets: Sequence[int],
    push_fractions: Sequence[float],
    seeds: Sequence[int],
    *,
    n_test: int = 300,
    control: bool = True,
    **data_options: object,
) -> list[Run]:
    """One :class:`~mtl_course.experiments.engine.Run` per (budget, push fraction, seed), and with ``control`` one
    :data:`GRASP_ONLY_HALF` run per (budget, seed); ``info``: ``budget``, ``push_fraction``, ``n_grasp``, ``n_push``.

    The pool of seed ``s`` is ``make_tabletop(max(budgets), max(budgets), seed=s)``; the test set is
    ``make_tabletop(n_test, 0, seed=10_000 + s)`` scored against the truth of every action.
    """
    if not budgets or not push_fractions or not seeds:
        raise ValueError(f"need budgets, push fractions and seeds, got {budgets}, {push_fractions} and {seeds}")
    runs = []
    for seed in seeds:
        pool = make_tabletop(max(budgets), max(budgets), seed=seed, **data_options)
        test = make_tabletop(n_test, 0, seed=10_000 + seed, **data_options)
        test = test.with_targets(test.truth)
        for budget in budgets:
            plan = [(split_label(f), f, budget_split(pool, budget, f)) for f in push_fractions]
            if control:
                half = budget_split(pool, budget, 0.5)
                plan.append(
                    (
                        GRASP_ONLY_HALF,
                        0.5,
                        half.with_targets(
                            {
                                "grasp": half.targets["grasp"],
                                "push": torch.full_like(half.targets["push"], float("nan")),
                            }
                        ),
                    )
                )
            for condition, fraction, train in plan:
                counts = train.n_labelled()
                info = {
                    "budget": budget,
                    "push_fraction": fraction,
                    "n_grasp": counts["grasp"],
                    "n_push": counts["push"],
                }
                runs.append(Run(condition, seed, train, None, test, info))
    return runs


def run_budget_split(
    budgets: Sequence[int],
    push_fractions: Sequence[float],
    seeds: Sequence[int],
    *,
    steps: int = 150,
    lr: float = 5e-3,
    batch_size: int = 32,
    channels: Sequence[int] = (8, 16),
    n_test: int = 300,
    control: bool = True,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train a :class:`~mtl_course.models.grasp_push.GraspPushNetwork` on every run of :func:`budget_runs`.

    Adam on shuffled mini-batches of ``batch_size``, about ``steps``
    optimiser steps per run whatever its size (``ceil(steps · batch_size /
    n)`` epochs of ``n`` interactions, so a small budget is not also
    trained less), no validation set (validation labels would cost
    interactions): each run keeps its weights after the last epoch.
    ``summary``'s ``test_grasp`` is the grasp accuracy over every angle of
    the test scenes, ``test_push`` the push MSE.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}")
    runs = budget_runs(budgets, push_fractions, seeds, n_test=n_test, control=control)
    size = runs[0].train.info["settings"]["size"]
    parts = []
    for n in sorted({run.train.n for run in runs}):
        epochs = math.ceil(steps * batch_size / n)
        parts.append(
            train_each(
                [run for run in runs if run.train.n == n],
                lambda run: GraspPushNetwork(size, channels),
                grasp_push_tasks(),
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                metric=SCORE,
                measure_every=epochs,
                device=device,
            )
        )
    return concat_results(parts)

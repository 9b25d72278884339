r"""Fully-adaptive feature sharing on the digit attributes: the experiment of lecture B9.

Lu, Kumar, Zhai, Cheng, Javidi & Feris, "Fully-adaptive Feature Sharing in
Multi-Task Networks with Applications in Person Attribute Classification",
CVPR 2017, arXiv 1611.05377. The affinity and the grouping criterion live in
:mod:`mtl_course.metrics` (:class:`~mtl_course.metrics.AffinityEstimate`,
:func:`~mtl_course.metrics.propose_grouping`), the tree of trunks in
:mod:`mtl_course.models.branched`; this module holds what the lecture does
with them.

**The procedure, as the course runs it** (:func:`run_fully_adaptive`, per seed):

1. train the thin network that every task shares
   (:meth:`~mtl_course.models.BranchedNetwork.shared`) and record every
   task's error margins on the training images after every epoch
   (:func:`margin_snapshot`); the running affinity over the epochs
   (:func:`affinity_over_training`) is the affinity of the seed;
2. the same with every task's labels shuffled across the images
   (:func:`~mtl_course.data.digit_attributes.shuffle_each_task`): the
   chance level of the affinity;
3. widen top-down (:func:`widen_top_down`): group the tasks at the top layer,
   then the branches at every layer below, each by the criterion of
   :func:`~mtl_course.metrics.propose_grouping`;
4. train, from fresh weights, the branched network the procedure proposes,
   the thin shared network, and one network per task (the sceptic's baseline),
   with :func:`~mtl_course.experiments.engine.train_each`.

The paper re-estimates the affinity after every widening step and starts the
new branches from copies of the thin network's weights; the course groups
every layer from the one affinity of the thin network and trains the
proposed tree from scratch (lecture B9, section 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mtl_course.data.digit_attributes import KNOWN_GROUPS, load_digit_attributes, shuffle_each_task
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, train_each
from mtl_course.experiments.labels import STL
from mtl_course.losses import cross_entropy
from mtl_course.metrics import (
    AffinityEstimate,
    accuracy,
    cluster_tasks,
    error_margins,
    group_affinity,
    propose_grouping,
)
from mtl_course.models.branched import BranchedNetwork
from mtl_course.train import Task

#: The thin network every task shares (hard sharing).
SHARED = "shared (thin)"
#: The branched network the widening procedure proposes.
BRANCHED = "branched"
#: The conditions of the accuracy comparison, in the order of the lecture's tables.
CONDITIONS: tuple[str, ...] = (SHARED, BRANCHED, STL)


def attribute_tasks(names: Sequence[str]) -> list[Task]:
    """One two-class task per name: the cross-entropy and the accuracy."""
    return [Task(name, cross_entropy, {"accuracy": accuracy}) for name in names]


def margin_snapshot(data: MultiTaskData, device: torch.device | str | None = None) -> Callable[..., np.ndarray]:
    """A :class:`~mtl_course.train.Recorder` snapshot: the model's error margins on ``data``, ``(N, T)``."""
    x, targets = data.batch(device)[:2]
    tasks = list(data.tasks)

    def snapshot(model: torch.nn.Module) -> np.ndarray:
        return error_margins(model(x), targets, tasks).detach().cpu().numpy()

    return snapshot


def affinity_over_training(margins: Sequence[np.ndarray], decay: float) -> np.ndarray:
    """The running affinity (:class:`~mtl_course.metrics.AffinityEstimate`) after the margins of every epoch.

    ``margins[0]`` (before training) is left out: the estimate follows the training, as in the paper.
    """
    if len(margins) < 2:
        raise ValueError(f"need the margins before training and after at least one epoch, got {len(margins)}")
    estimate = AffinityEstimate(decay)
    for m in margins[1:]:
        estimate.update(m)
    return estimate.affinity


def widen_top_down(
    affinity: np.ndarray,
    tasks: Sequence[str],
    branch_costs: Sequence[float],
    separation_weight: float,
    seed: int = 0,
) -> tuple[list[list[list[str]]], list[list[float]]]:
    r"""The groups of every layer (bottom first) that top-down widening proposes from one affinity matrix.

    At the top layer the branches are the tasks; at every layer below they are the groups of the layer
    above, related by :func:`~mtl_course.metrics.group_affinity`. Each layer's branches are grouped by
    :func:`~mtl_course.metrics.propose_grouping` with that layer's cost per branch ``branch_costs[l]``
    (bottom first, one per layer). Returns the groups of task names per layer and, per layer (bottom first),
    the criterion :math:`L(C)` for ``C = 1, 2, ...``.

    >>> A = np.array([[1, .9, .1, .1], [.9, 1, .1, .1], [.1, .1, 1, .8], [.1, .1, .8, 1]])
    >>> groups, _ = widen_top_down(A, ["a", "b", "c", "d"], branch_costs=[1.0, 0.2], separation_weight=1.0)
    >>> groups
    [[['a', 'b', 'c', 'd']], [['a', 'b'], ['c', 'd']]]
    """
    if len(tasks) != len(affinity):
        raise ValueError(f"{len(tasks)} task names for an affinity matrix of {len(affinity)} tasks")
    branches = [[i] for i in range(len(tasks))]
    layers, criteria = [], []
    for cost in reversed(list(branch_costs)):
        grouping, losses = propose_grouping(group_affinity(affinity, branches), cost, separation_weight, seed=seed)
        branches = [sorted(i for b in group for i in branches[b]) for group in grouping]
        layers.append([[tasks[i] for i in group] for group in branches])
        criteria.append(losses)
    return layers[::-1], criteria[::-1]


def branch_costs(thin: BranchedNetwork, penalty: float) -> list[float]:
    r"""The cost of one more branch at every layer (bottom first): :math:`c_\ell = \lambda\, P_\ell / P`.

    :math:`P_\ell` is the number of parameters of one block of layer :math:`\ell`, :math:`P` that of the whole
    thin network, :math:`\lambda` the ``penalty``: a branch costs what it adds to the model, as a fraction
    of the thin model. (The reference code reads one cost per layer from its configuration.)

    >>> thin = BranchedNetwork.shared(4, [8, 6], {"a": 2, "b": 2})  # blocks of 40 and 54 parameters, 122 in all
    >>> [round(c, 4) for c in branch_costs(thin, 1.0)]
    [0.3279, 0.4426]
    """
    if not penalty >= 0:
        raise ValueError(f"the branch penalty must be >= 0, got {penalty}")
    if any(len(groups) != 1 for groups in thin.groups):
        raise ValueError(
            f"the costs are measured on the thin network (one group per layer), got {thin.describe_tree()}"
        )
    total = thin.parameter_counts()["total"]
    return [penalty * sum(p.numel() for p in layer[0].parameters()) / total for layer in thin.blocks]


def group_labels(groups: Sequence[Sequence[str]], tasks: Sequence[str]) -> list[int]:
    """The index of each task's group, in the order of ``tasks`` (for a Rand index).

    >>> group_labels([["b"], ["a", "c"]], ["a", "b", "c"])
    [1, 0, 1]
    """
    where = {t: k for k, group in enumerate(groups) for t in group}
    missing = [t for t in tasks if t not in where]
    if missing:
        raise KeyError(f"the groups {list(map(list, groups))} do not place the task(s) {missing}")
    return [where[t] for t in tasks]


@dataclass
class FullyAdaptiveResult:
    """Per seed: ``affinity`` and ``chance`` (the affinity with shuffled labels), ``trees`` (the proposed
    groups per layer, bottom first) and ``criteria`` (per layer the criterion of every number of groups);
    ``grouping``: one row per seed and labelling (``labels``: ``"real"`` or ``"shuffled"``) with the
    ``ari`` of the spectral clustering into as many groups as the known grouping has against it, and the
    mean affinity ``within`` and ``between`` the known groups; ``accuracy``: the engine's result of the
    comparison of :data:`CONDITIONS`; ``parameters``: per seed and condition the parameter count."""

    affinity: dict[int, np.ndarray]
    chance: dict[int, np.ndarray]
    trees: dict[int, list[list[list[str]]]]
    criteria: dict[int, list[list[float]]]
    grouping: pd.DataFrame
    accuracy: ExperimentResult
    parameters: pd.DataFrame


def known_group_contrast(
    affinity: np.ndarray, tasks: Sequence[str], groups: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """The mean affinity of the pairs of different tasks within a group and of the pairs across groups.

    >>> A = np.array([[1, .9, .2], [.9, 1, .4], [.2, .4, 1]])
    >>> [round(v, 4) for v in known_group_contrast(A, ["a", "b", "c"], [["a", "b"], ["c"]])]
    [0.9, 0.3]
    """
    labels = np.array(group_labels(groups, tasks))
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    across = labels[:, None] != labels[None, :]
    if not same.any() or not across.any():
        raise ValueError(f"need at least one group of two tasks and two groups, got {list(map(list, groups))}")
    a = np.asarray(affinity, dtype=float)
    return float(a[same].mean()), float(a[across].mean())


def run_fully_adaptive(
    seeds: Sequence[int],
    *,
    n_train: int = 500,
    hidden: Sequence[int] = (16, 16),
    epochs: int = 150,
    lr: float = 3e-3,
    decay: float = 0.95,
    branch_penalty: float = 0.5,
    separation_weight: float = 1.0,
    device: torch.device | str | None = None,
) -> FullyAdaptiveResult:
    """The lecture's experiment (module docstring) on ``load_digit_attributes(n_train, seed=s)`` for every seed.

    Every network is trained full-batch with Adam (``lr``, ``epochs`` steps, equal weighting); accuracies are
    measured on the images not used for training after the last epoch.
    """
    from sklearn.metrics import adjusted_rand_score

    if not seeds:
        raise ValueError("run_fully_adaptive needs at least one seed, got none")
    hidden = list(hidden)
    data = {s: load_digit_attributes(n_train, seed=s) for s in seeds}
    names = list(data[seeds[0]][0].tasks)
    outputs = dict.fromkeys(names, 2)
    tasks = attribute_tasks(names)
    known = group_labels(KNOWN_GROUPS, names)

    def thin(run: Run) -> BranchedNetwork:
        return BranchedNetwork.shared(run.train.x.shape[1], hidden, outputs)

    probe = [
        Run(label, s, train if label == "real" else shuffle_each_task(train, seed=s), None, test)
        for s in seeds
        for train, test in [data[s]]
        for label in ("real", "shuffled")
    ]
    recorded = [
        train_each(
            [run],
            thin,
            tasks,
            epochs=epochs,
            lr=lr,
            record=margin_snapshot(run.train, device),
            measure_every=epochs,
            device=device,
        ).records[0]
        for run in probe
    ]
    affinity, chance, rows = {}, {}, []
    for run, margins in zip(probe, recorded, strict=True):
        a = affinity_over_training(margins, decay)
        (affinity if run.condition == "real" else chance)[run.seed] = a
        found = cluster_tasks(a, len(KNOWN_GROUPS), seed=run.seed)
        clusters = group_labels([[names[i] for i in g] for g in found], names)
        within, between = known_group_contrast(a, names, KNOWN_GROUPS)
        rows.append(
            {
                "seed": run.seed,
                "labels": run.condition,
                "ari": adjusted_rand_score(known, clusters),
                "within": within,
                "between": between,
            }
        )
    trees, criteria = {}, {}
    costs = branch_costs(thin(probe[0]), branch_penalty)
    for s in seeds:
        trees[s], criteria[s] = widen_top_down(affinity[s], names, costs, separation_weight, seed=s)

    def build(run: Run) -> BranchedNetwork:
        width = run.train.x.shape[1]
        if run.condition == SHARED:
            return BranchedNetwork.shared(width, hidden, outputs)
        if run.condition == STL:
            return BranchedNetwork.separate(width, hidden, outputs)
        return BranchedNetwork(width, hidden, trees[run.seed], outputs)

    runs = [Run(c, s, data[s][0], None, data[s][1]) for s in seeds for c in CONDITIONS]
    result = train_each(
        runs, build, tasks, epochs=epochs, lr=lr, metric="accuracy", measure_every=epochs, device=device
    )
    parameters = pd.DataFrame(
        [
            {"seed": run.seed, "condition": run.condition, "parameters": model.parameter_counts()["total"]}
            for run, model in zip(runs, result.models, strict=True)
        ]
    )
    return FullyAdaptiveResult(affinity, chance, trees, criteria, pd.DataFrame(rows), result, parameters)

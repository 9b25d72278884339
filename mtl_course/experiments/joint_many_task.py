r"""The Joint Many-Task model's training scheme and the experiment of lecture B3.

Hashimoto, Xiong, Tsuruoka and Socher, "A Joint Many-Task Model: Growing a
Neural Network for Multiple NLP Tasks" (EMNLP 2017, arXiv 1611.01587),
training strategy: every epoch the tasks take **turns**, lowest first; task
:math:`k`'s turn is one pass over its data minimising its own loss plus the
successive regularisation term

.. math:: J_k(\theta) = L_k(\theta) + \delta\, \|\theta_{\text{lower}} - \theta'_{\text{lower}}\|^2,

where :math:`\theta'_{\text{lower}}` is a snapshot of the layers below task
:math:`k`, taken just before its turn (for the lowest task: the word
embeddings after the previous epoch). The paper also adds an L2 penalty
:math:`\lambda \|W_k\|^2` on the task's own weights; the course leaves it out.

**Why not the engine's** :func:`~mtl_course.experiments.engine.train_each`:
it trains every task at every step and measures after every epoch, while
this scheme needs a new objective (a new snapshot) for every turn and a
measurement after every turn. So :func:`train_turns` calls
:func:`mtl_course.train.fit` once per turn (one epoch, the equal weighting
with every other task deactivated, the turn's task carrying the objective
:math:`J_k` of :func:`turn_task`) and keeps one Adam optimiser per task
across epochs, as the paper keeps one optimiser schedule per task.

**The experiment** (:func:`run_joint_many_task`): on the toy language of
:mod:`mtl_course.data.toy_language`, per seed: the hierarchy
(:data:`JMT`) at every :math:`\delta` of a sweep, every task read from the
top layer (:data:`TOP`), and single-task networks of the same architecture
(:data:`~mtl_course.experiments.labels.STL`: only the task's own turns,
:math:`\delta = 0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.toy_language import make_toy_language
from mtl_course.device import get_device
from mtl_course.experiments.labels import STL
from mtl_course.losses import cross_entropy, parameter_snapshot, successive_regularization
from mtl_course.metrics import accuracy
from mtl_course.models.joint_many_task import JointManyTask
from mtl_course.train import Task, evaluate, fit
from mtl_course.weighting import get_weighting

#: Each task at its own depth (the paper's model).
JMT = "JMT"
#: The ablation: every task read from the top layer.
TOP = "all from top"
#: The toy language's tasks, lowest first.
TASKS = ("pos", "chunk", "relation")


def jmt_tasks(names: Sequence[str] = TASKS) -> list[Task]:
    """One classification task per name: the masked cross-entropy and the accuracy."""
    return [Task(name, cross_entropy, {"accuracy": accuracy}) for name in names]


def turn_task(task: Task, model: JointManyTask, delta: float) -> Task:
    r"""``task`` with the objective of its turn, :math:`L_k + \delta \|\theta_{\text{lower}} - \theta'\|^2`.

    The snapshot :math:`\theta'` of ``model.lower_parameters(task.name)`` is
    taken when this function is called: just before the turn.
    """
    if not (delta >= 0 and delta < float("inf")):
        raise ValueError(f"delta must be a finite number >= 0, got {delta}")
    lower = list(model.lower_parameters(task.name))
    snapshot = parameter_snapshot(lower)

    def objective(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return task.loss(pred, target, mask) + successive_regularization(lower, snapshot, delta)

    return Task(task.name, objective, task.metrics)


def train_turns(
    model: JointManyTask,
    train: MultiTaskData,
    measure_on: MultiTaskData,
    *,
    epochs: int,
    delta: float,
    lr: float = 1e-2,
    batch_size: int = 50,
    seed: int = 0,
    turns: Sequence[str] | None = None,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """Train ``model`` with the paper's scheme; the accuracy of every task on ``measure_on`` after every turn.

    ``turns`` are the tasks that take turns, in order (default: all, lowest
    first; one task alone is single-task training). Returns one row per
    turn: ``epoch``, ``turn`` (the task that just trained) and one accuracy
    column per task; epoch 0 (``turn="init"``) is before training.
    """
    device = get_device() if device is None else torch.device(device)
    tasks = jmt_tasks(model.tasks)
    turns = list(model.tasks if turns is None else turns)
    for name in turns:
        model.check_task(name)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    model.to(device)
    loader = train.loader(batch_size, seed=seed, device=device)
    optimizers = {t: torch.optim.Adam(model.parameters(), lr=lr) for t in turns}
    batch = [measure_on.batch(device)]

    def row(epoch: int, turn: str) -> dict[str, object]:
        scores = evaluate(model, tasks, batch, device)
        return {"epoch": epoch, "turn": turn, **{t: scores[f"{t}/val_accuracy"] for t in model.tasks}}

    rows = [row(0, "init")]
    for epoch in range(1, epochs + 1):
        for name in turns:
            weighting = get_weighting("equal", model.tasks)
            for other in model.tasks:
                if other != name:
                    weighting.deactivate(other)
            turn = [turn_task(t, model, delta) if t.name == name else t for t in tasks]
            with model.up_to(name):  # the layers above the turn's task take no part in it
                fit(model, turn, weighting, loader, epochs=1, optimizer=optimizers[name], device=device, progress=False)
            rows.append(row(epoch, name))
    return pd.DataFrame(rows)


def forgetting(turns: pd.DataFrame, task: str) -> pd.Series:
    """Per epoch, ``task``'s accuracy after its own turn minus after the epoch's last turn (> 0: it forgot).

    >>> t = pd.DataFrame({"epoch": [0, 1, 1, 1], "turn": ["init", "pos", "chunk", "relation"],
    ...                   "pos": [0.2, 0.9, 0.85, 0.8]})
    >>> forgetting(t, "pos").round(2).tolist()
    [0.1]
    """
    trained = turns[turns.turn != "init"]
    after_own = trained[trained.turn == task].set_index("epoch")[task]
    after_all = trained.groupby("epoch")[task].last()
    return (after_own - after_all).rename(f"{task} forgetting")


@dataclass
class JointManyTaskResult:
    """``summary``: one row per run (``condition``, ``seed``, ``delta``, final test accuracy per task, and
    ``forgetting_<task>``, the mean over epochs of :func:`forgetting`, for the tasks below the top);
    ``turns``: every run's per-turn accuracies (:func:`train_turns`) with the run's columns."""

    summary: pd.DataFrame
    turns: pd.DataFrame


def _run(
    condition: str, seed: int, delta: float, data: tuple[MultiTaskData, MultiTaskData], turns: Sequence[str], **options
) -> tuple[dict[str, object], pd.DataFrame]:
    train, test = data
    vocab = len(train.info["vocabulary"])
    classes = {"pos": len(train.info["pos_tags"]), "chunk": len(train.info["chunk_tags"])}
    classes["relation"] = len(train.info["relations"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = JointManyTask(vocab, classes, hidden=options.pop("hidden"), hierarchy=condition != TOP)
    history = train_turns(model, train, test, delta=delta, seed=seed, turns=turns, **options)
    final = history.iloc[-1]
    row: dict[str, object] = {"condition": condition, "seed": seed, "delta": delta}
    row.update({t: (float(final[t]) if t in turns else float("nan")) for t in TASKS})
    if len(turns) > 1:
        row.update({f"forgetting_{t}": float(forgetting(history, t).mean()) for t in TASKS[:-1]})
    return row, history.assign(condition=condition, seed=seed, delta=delta)


def run_joint_many_task(
    seeds: Sequence[int],
    deltas: Sequence[float],
    *,
    top_delta: float,
    n_train: int = 200,
    n_test: int = 200,
    epochs: int = 20,
    hidden: int = 16,
    lr: float = 1e-2,
    batch_size: int = 50,
    stl: bool = True,
    device: torch.device | str | None = None,
) -> JointManyTaskResult:
    """The lecture's experiment: per seed, :data:`JMT` at every ``deltas``, :data:`TOP` at ``top_delta``, and
    (with ``stl``) one single-task run per task; all runs of a seed share their data and initial random state.

    The data of seed ``s``: ``make_toy_language(n_train, seed=s)`` to train on, ``make_toy_language(n_test,
    seed=10_000 + s)`` to measure on.
    """
    if not seeds or not deltas:
        raise ValueError(f"run_joint_many_task needs at least one seed and one delta, got {seeds} and {deltas}")
    options = {"epochs": epochs, "hidden": hidden, "lr": lr, "batch_size": batch_size, "device": device}
    rows, histories = [], []
    for seed in seeds:
        data = (make_toy_language(n_train, seed=seed), make_toy_language(n_test, seed=10_000 + seed))
        plan = [(JMT, d, TASKS) for d in deltas] + [(TOP, top_delta, TASKS)]
        plan += [(STL, 0.0, (t,)) for t in TASKS] if stl else []
        for condition, delta, turns in plan:
            row, history = _run(condition, seed, delta, data, turns, **options)
            rows.append(row)
            histories.append(history)
    summary = pd.DataFrame(rows)
    stl_rows = summary.condition == STL
    if stl_rows.any():  # one row per seed for STL: each task's accuracy from its own run
        merged = summary[stl_rows].groupby(["condition", "seed", "delta"], as_index=False)[list(TASKS)].max()
        summary = pd.concat([summary[~stl_rows], merged], ignore_index=True)
    return JointManyTaskResult(summary, pd.concat(histories, ignore_index=True))

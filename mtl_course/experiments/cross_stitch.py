r"""Cross-stitch networks on a data-starved task: the experiment of lecture A4, on the experiment engine.

Misra, Shrivastava, Gupta & Hebert, "Cross-stitch Networks for Multi-task
Learning", CVPR 2016, arXiv 1604.03539. The architecture lives in
:mod:`mtl_course.models.cross_stitch`; this module holds what the lecture
does with it. Lecture A5 (:mod:`mtl_course.experiments.sluice`) trains its
sluice networks with the same recipe.

**The recipe.** Every run (:class:`~mtl_course.experiments.engine.Run`: a
condition on one draw of the teacher tasks) trains one model with
:func:`~mtl_course.experiments.engine.train_each`: full-batch Adam, one step
per epoch, equal weighting of the task losses (each the mean squared error
over the task's own labelled samples), no validation set and hence no early
stopping, the test MSE on the noisy test labels after the last epoch
(``test_<task>`` in the summary). ``mixing_lr_scale`` gives the mixing
parameters (cross-stitch :math:`\alpha`; sluice :math:`\alpha, \beta`) the
learning rate ``mixing_lr_scale * lr`` through
:meth:`~mtl_course.models.base.MultiTaskModel.parameter_groups`, the
analogue of the paper's Caffe ``lr_mult`` (Table 2); :func:`mixing_snapshot`
records them before training and after every epoch
(:class:`~mtl_course.train.Recorder`), and :func:`trace` reads one of them
back over training.

**The comparison.** :data:`CONDITIONS`: single-task networks, hard sharing
and a cross-stitch network, all built from the same
:class:`~mtl_course.models.MLPTrunk` columns (:func:`build_model`).
:func:`runs_on` pairs them: the runs of one relatedness :math:`\rho` and
seed share their data and, through the engine, their initial random state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.experiments.labels import CROSS_STITCH, HARD, STL
from mtl_course.losses import mse_loss
from mtl_course.metrics import mse
from mtl_course.models import CrossStitchNetwork, HardSharing, SingleTask
from mtl_course.models.base import MultiTaskModel
from mtl_course.train import Task

#: The conditions of lecture A4, in the order of its tables.
CONDITIONS: tuple[str, ...] = (STL, HARD, CROSS_STITCH)

#: ``(train, test)`` for every ``(rho, seed)``: one draw of the teacher tasks per relatedness and seed.
TeacherData = Mapping[tuple[float, int], tuple[MultiTaskData, MultiTaskData]]


def build_model(
    condition: str,
    in_features: int,
    hidden: Sequence[int],
    tasks: Mapping[str, int],
    alpha_init: tuple[float, float] = (0.9, 0.1),
) -> MultiTaskModel:
    """A freshly initialised model of ``condition`` (one of :data:`CONDITIONS`) from the ``.mlp`` factories.

    >>> build_model("cross-stitch", 20, [32, 32], {"A": 1, "B": 1}).parameter_counts()["total"]
    3778
    """
    if condition == STL:
        return SingleTask.mlp(in_features, list(hidden), dict(tasks))
    if condition == HARD:
        return HardSharing.mlp(in_features, list(hidden), dict(tasks))
    if condition == CROSS_STITCH:
        return CrossStitchNetwork.mlp(in_features, list(hidden), dict(tasks), alpha_init=alpha_init)
    raise ValueError(f"unknown condition {condition!r}; choose one of {list(CONDITIONS)}")


def regression_tasks(names: Sequence[str]) -> list[Task]:
    """One :class:`~mtl_course.train.Task` per name: the MSE loss (``NaN`` labels skipped) and the MSE as metric."""
    return [Task(name, mse_loss, {"mse": mse}) for name in names]


def runs_on(data: TeacherData, conditions: Sequence[str], **info: Any) -> list[Run]:
    """One :class:`~mtl_course.experiments.engine.Run` per ``(rho, seed)`` of ``data`` and condition, in that order.

    The runs of one ``(rho, seed)`` share its training and test set; the
    summary gets the columns ``rho`` and ``info``'s keys.
    """
    return [
        Run(condition, seed, train, None, test, {"rho": rho, **info})
        for (rho, seed), (train, test) in data.items()
        for condition in conditions
    ]


def mixing_snapshot(model: MultiTaskModel) -> dict[str, np.ndarray]:
    """Copies of the model's mixing parameters by name (``"units.0.alpha"``, ``"betas.A"``); empty for other models.

    >>> sorted(mixing_snapshot(CrossStitchNetwork.mlp(3, [4, 4], {"a": 1, "b": 1})))
    ['units.0.alpha', 'units.1.alpha']
    """
    mixing = {id(p) for p in model.mixing_parameters()}
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters() if id(p) in mixing}


def train_runs(
    runs: Sequence[Run],
    build: Callable[[Run], MultiTaskModel],
    *,
    epochs: int = 100,
    steps_per_epoch: int = 1,
    lr: float = 1e-2,
    mixing_lr_scale: float | None = None,
    penalty: float = 0.0,
    record: Callable[[MultiTaskModel], Any] | None = None,
    measure_every: int = 1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """The recipe of the module docstring: :func:`~mtl_course.experiments.engine.train_each` on the full batch.

    Every run takes ``epochs * steps_per_epoch`` full-batch steps; the
    engine measures the run (and ``record`` snapshots it) before training
    and after every epoch: ``epochs=1, steps_per_epoch=n`` trains the same
    ``n`` steps as ``epochs=n`` and gives the same final numbers without the
    per-epoch measurements. ``build(run)`` returns the run's model; ``penalty`` adds
    ``penalty * model.penalty()`` to every step's loss (the sluice
    orthogonality term); ``record`` is the per-epoch snapshot, e.g.
    :func:`mixing_snapshot` (``None``: no record); ``measure_every=k``
    measures only after every ``k``-th epoch and the last (the records are
    still taken every epoch). A diverging run has
    ``diverged=True`` and ``NaN`` test errors.
    """
    if not runs:
        raise ValueError("train_runs needs at least one run, got none")
    return train_each(
        runs,
        build,
        regression_tasks(runs[0].train.tasks),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        mixing_lr_scale=mixing_lr_scale,
        penalty=penalty,
        metric="mse",
        record=record,
        measure_every=measure_every,
        device=device,
    )


def train_conditions(
    data: TeacherData,
    conditions: Sequence[str],
    build: Callable[[Run], MultiTaskModel],
    *,
    epochs: int = 100,
    curves: bool | Callable[[Run], bool] = True,
    penalty: Mapping[str, float] | None = None,
    lr: float = 1e-2,
    mixing_lr_scale: float | None = None,
    record: Callable[[MultiTaskModel], Any] | None = None,
    measure_every: int = 1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Every condition on every ``(rho, seed)`` of ``data`` (:func:`runs_on`), trained by :func:`train_runs`.

    Every run takes ``epochs`` full-batch steps. The runs selected by
    ``curves`` (``True``: all, ``False``: none, or a function of the run) are
    measured and recorded after every step; the others take their ``epochs`` steps as one engine epoch,
    so they are measured and recorded only before and after training: the
    same final numbers, without the per-step measurements. ``measure_every=k``
    measures the selected runs only after every ``k``-th step and the last
    (their records are still taken every step), e.g. ``k = epochs`` where
    only the records are plotted.
    ``penalty[condition]`` weights the model's penalty (default 0). The
    engine takes one penalty weight and one epoch length per call, so the
    runs are trained in groups of equal weight and ``curves``, in the order
    the groups first appear; the result lists the runs group by group.
    """
    runs = runs_on(data, conditions)

    def group(run: Run) -> tuple[float, bool]:
        return (penalty or {}).get(run.condition, 0.0), bool(curves(run) if callable(curves) else curves)

    results = []
    for lam, every_step in dict.fromkeys(map(group, runs)):
        results.append(
            train_runs(
                [run for run in runs if group(run) == (lam, every_step)],
                build,
                epochs=epochs if every_step else 1,
                steps_per_epoch=1 if every_step else epochs,
                lr=lr,
                mixing_lr_scale=mixing_lr_scale,
                penalty=lam,
                record=record,
                measure_every=measure_every if every_step else 1,
                device=device,
            )
        )
    return concat_results(results)


def run_cross_stitch(
    data: TeacherData,
    conditions: Sequence[str] = CONDITIONS,
    *,
    hidden: Sequence[int] = (32, 32),
    alpha_init: tuple[float, float] = (0.9, 0.1),
    epochs: int = 100,
    curves: bool | Callable[[Run], bool] = True,
    lr: float = 1e-2,
    mixing_lr_scale: float | None = 10.0,
    record: bool = True,
    measure_every: int = 1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    r"""Lecture A4's experiment: every condition on every ``(rho, seed)`` of ``data`` (:func:`train_conditions`).

    ``alpha_init`` is the cross-stitch :math:`(\alpha_S, \alpha_D)`;
    ``record`` stores the :math:`\alpha` (:func:`trace`), after every step
    for the runs selected by ``curves`` (as in :func:`train_conditions`),
    before and after training for the others; ``measure_every`` as in
    :func:`train_conditions`.
    """

    def build(run: Run) -> MultiTaskModel:
        tasks = dict.fromkeys(run.train.tasks, 1)
        return build_model(run.condition, run.train.x.shape[1], hidden, tasks, alpha_init=alpha_init)

    return train_conditions(
        data,
        conditions,
        build,
        epochs=epochs,
        curves=curves,
        lr=lr,
        mixing_lr_scale=mixing_lr_scale,
        record=mixing_snapshot if record else None,
        measure_every=measure_every,
        device=device,
    )


def find_run(result: ExperimentResult, **where: object) -> int:
    """The index (into ``result.models`` and ``result.records``) of the one run whose summary row matches ``where``."""
    rows = result.select(**where)
    if len(rows) != 1:
        raise ValueError(f"{len(rows)} runs match {where}; give the columns that pick exactly one")
    return int(rows["run"].iloc[0])


def trace(result: ExperimentResult, key: str, **where: object) -> np.ndarray:
    """The recorded ``key`` (e.g. ``"units.0.alpha"``) of the run matching ``where``, shape ``(epochs + 1, ...)``.

    Row 0 is the initialisation; a diverged run stops at its last finite epoch.
    """
    records = result.records[find_run(result, **where)]
    if not records or key not in records[0]:
        known = sorted(records[0]) if records else []
        raise KeyError(f"no record {key!r} for the run {where}; recorded: {known}")
    return np.stack([snapshot[key] for snapshot in records])

r"""The experiment engine: train many runs (conditions × seeds × settings), monitor them the same way, one result.

Every comparison in the course has the same shape: a list of :class:`Run`\ s
(a condition such as STL or MTL, on one seed, with its own training,
validation and test data), one model per run, the same training recipe for
all, and a table with one row per run that :mod:`mtl_course.stats` turns
into mean ± sd and paired changes. This module is the one home of that
shape:

* :class:`Run` -- what one run trains on;
* :class:`Monitor` -- the one monitoring and early-stopping rule: before
  training (epoch 0) and after every epoch it records, per task, the
  training loss and the validation loss on the whole training and
  validation sets, and the test metric on the whole test set; the *best
  epoch* is the first one with the lowest validation loss summed over the
  selected tasks, and the weights of that epoch are restored at the end
  (early stopping without stopping: the curves still run to the end);
* :class:`ExperimentResult` -- ``summary`` (one row per run), ``curves``
  (one row per run, epoch and task) and the trained models;
* :func:`train_each` -- one ordinary model per run, trained with
  :func:`mtl_course.train.fit` (the cross-stitch and sluice lectures);
* :func:`train_replicated` -- all runs at once, as the replicas of one
  :class:`~mtl_course.experiments.replicate.ReplicatedModel` in one
  :func:`~mtl_course.train.fit` call (the many tiny networks of lectures A2
  and A3); :class:`ReplicaMonitor` applies the same rule to every replica.

The test metric is computed against ``run.test.targets``: give a test set
whose targets are the noise-free truth (``test.with_targets(test.truth)``)
to score against the ground truth, and one with noisy labels to score as a
held-out set would be scored in practice.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.device import get_device
from mtl_course.experiments.replicate import ReplicatedModel, summed
from mtl_course.losses import expand_mask
from mtl_course.models.base import MultiTaskModel
from mtl_course.train import Callback, Recorder, Task, TrainState, fit, split_batch
from mtl_course.weighting import WeightingMethod

#: What a run is measured on every epoch, in this order (the long ``curves`` table has one column each).
MEASURES = ("train", "val", "test")


@dataclass(frozen=True)
class Run:
    """One run of an experiment: a condition on one seed, with its own data.

    ``train`` holds the condition's training signals (e.g. ``NaN`` for the
    extra tasks of STL, shuffled labels for Caruana's shuffle test); ``val``
    (optional) selects the best epoch; ``test`` is scored with the test
    metric against its ``targets``. ``seed`` sets the run's initial weights
    (runs of one seed start from the same network). ``info`` holds extra
    columns for the result tables (a relatedness, a sample size, ...).
    """

    condition: str
    seed: int
    train: MultiTaskData
    val: MultiTaskData | None
    test: MultiTaskData
    info: Mapping[str, Any] = field(default_factory=dict)


def _selection(val: np.ndarray, select: Sequence[int]) -> np.ndarray:
    """The criterion of the best epoch: the validation loss summed over the selected tasks, ``(E, R)``."""
    return val[..., list(select)].sum(-1)


def best_epochs(val: np.ndarray, select: Sequence[int]) -> np.ndarray:
    """Per run, the first epoch with the lowest validation loss summed over the tasks ``select``.

    ``val`` is ``(epochs + 1, runs, tasks)`` (row 0: before training). A run
    whose criterion is never finite (no validation set, or a diverged run)
    gets its last epoch.

    >>> val = np.array([[[3.0, 1.0]], [[1.0, 2.0]], [[1.0, 9.0]], [[2.0, 0.0]]])  # 4 epochs, 1 run, 2 tasks
    >>> best_epochs(val, [0]).tolist(), best_epochs(val, [0, 1]).tolist()
    ([1], [3])
    """
    criterion = _selection(val, select)
    finite = np.isfinite(criterion)
    masked = np.where(finite, criterion, np.inf)
    return np.where(finite.any(0), masked.argmin(0), criterion.shape[0] - 1)


@dataclass
class ExperimentResult:
    """What an executor returns.

    ``summary``: one row per run with ``run``, ``condition``, ``seed``, the
    run's ``info`` columns, ``best_epoch`` and ``best_step`` (see
    :func:`best_epochs`), ``diverged``, and per task ``t``: ``train_<t>``,
    ``val_<t>`` and ``test_<t>`` at the best epoch (early stopping),
    ``final_<t>`` (the test metric after the last epoch) and ``init_<t>``
    (before training); ``val``, ``test``, ``final`` and ``init`` are their
    means over the selected tasks (the tasks the experiment is about, whose
    validation losses choose the best epoch). ``curves``: a long table
    ``run, condition, seed, <info>, epoch, step, task, train, val, test``.
    ``models``: the trained model of every run, with the weights of its
    best epoch (for replicated runs, ``replica(r)`` of ``stack``, made when
    read). ``stack``: the :class:`~mtl_course.experiments.replicate.ReplicatedModel`
    that trained the runs together (``None`` for :func:`train_each`).
    ``records``: per run, the snapshots of the ``record`` function, epochs
    0, 1, ... (empty without one).
    """

    summary: pd.DataFrame
    curves: pd.DataFrame
    models: Sequence[MultiTaskModel]
    runs: list[Run]
    records: list[list[Any]] = field(default_factory=list)
    stack: ReplicatedModel | None = None

    def select(self, **columns: object) -> pd.DataFrame:
        """The summary rows whose columns equal the given values, e.g. ``select(condition="STL")``."""
        keep = np.ones(len(self.summary), dtype=bool)
        for name, value in columns.items():
            if name not in self.summary:
                raise KeyError(f"the summary has no column {name!r}; its columns are {list(self.summary)}")
            keep &= (self.summary[name] == value).to_numpy()
        return self.summary[keep]


def _indices(tasks: Sequence[str], select: Sequence[str] | None) -> list[int]:
    """Positions of the selected tasks (default: all)."""
    unknown = [t for t in select or () if t not in tasks]
    if unknown:
        raise KeyError(f"cannot select the task(s) {unknown}; the tasks are {list(tasks)}")
    return [list(tasks).index(t) for t in (select or tasks)]


def make_result(
    runs: Sequence[Run],
    tasks: Sequence[str],
    values: Mapping[str, np.ndarray],
    steps: Sequence[int],
    models: Sequence[MultiTaskModel],
    *,
    select: Sequence[str] | None = None,
    diverged: Sequence[bool] | None = None,
    records: list[list[Any]] | None = None,
) -> ExperimentResult:
    """Assemble an :class:`ExperimentResult` from measurements ``values[m]`` of shape ``(epochs + 1, runs, tasks)``.

    ``m`` runs over :data:`MEASURES`; ``steps[e]`` is the optimiser step
    count after epoch ``e``; the best epoch is chosen on the validation
    losses of the tasks ``select`` (default: all).
    """
    index = _indices(tasks, select)
    E, R, T = values["val"].shape
    diverged = [False] * R if diverged is None else list(diverged)
    # a diverged run is scored at its last epoch, which it did not reach: NaN
    best = np.where(diverged, E - 1, best_epochs(values["val"], index))
    test = values["test"]
    rows = []
    for r, run in enumerate(runs):
        b = best[r]
        row: dict[str, Any] = {"run": r, "condition": run.condition, "seed": run.seed, **run.info}
        row.update(best_epoch=int(b), best_step=int(steps[b]), diverged=bool(diverged[r]))
        for i, t in enumerate(tasks):
            row.update({f"{m}_{t}": float(values[m][b, r, i]) for m in MEASURES})
            row[f"final_{t}"], row[f"init_{t}"] = float(test[-1, r, i]), float(test[0, r, i])
        row["val"] = float(values["val"][b, r, index].mean())
        row.update({k: float(test[e, r, index].mean()) for k, e in (("test", b), ("final", -1), ("init", 0))})
        rows.append(row)
    info_columns = list(dict.fromkeys(k for run in runs for k in run.info))
    curves = pd.DataFrame(
        {
            "run": np.tile(np.repeat(np.arange(R), T), E),
            "condition": np.tile(np.repeat([run.condition for run in runs], T), E),
            "seed": np.tile(np.repeat([run.seed for run in runs], T), E),
            **{k: np.tile(np.repeat([run.info.get(k) for run in runs], T), E) for k in info_columns},
            "epoch": np.repeat(np.arange(E), R * T),
            "step": np.repeat(np.asarray(steps), R * T),
            "task": np.tile(list(tasks), E * R),
            **{m: values[m].reshape(-1) for m in MEASURES},
        }
    )
    return ExperimentResult(pd.DataFrame(rows), curves, models, list(runs), records or [[] for _ in runs])


# -- one ordinary model per run ------------------------------------------------------------------
class Monitor(Callback):
    """The engine's rule for one ordinary model: measure before training and after every epoch; keep the best weights.

    Per task, the training loss and the validation loss (``task.loss`` on the
    whole set, model in eval mode) and the test metric (``task.metrics[metric]``,
    or the loss when ``metric`` is ``None``). The weights of the best measured
    epoch (the first with the lowest validation loss summed over ``select``)
    are restored at the end of training; without a validation set the weights
    after the last epoch are kept. With ``every=k`` it measures only after
    every ``k``-th epoch and after the last of ``epochs`` (the other epochs get
    ``NaN``): the same final numbers for less work where only they are read.
    """

    def __init__(
        self,
        run: Run,
        tasks: Sequence[Task],
        device: torch.device,
        metric: str | None = None,
        select: Sequence[str] | None = None,
        every: int = 1,
        epochs: int | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"the monitor measures after every k-th epoch for k >= 1, got every={every}")
        if metric is not None:
            missing = [t.name for t in tasks if metric not in t.metrics]
            if missing:
                raise KeyError(f"the test metric {metric!r} is not among the metrics of task(s) {missing}")
        self.tasks, self.metric = list(tasks), metric
        self.every, self.epochs = every, epochs
        self.select = _indices([t.name for t in tasks], select)
        sets = {"train": run.train, "val": run.val, "test": run.test}
        self.batches = {m: split_batch(data.batch(device)) for m, data in sets.items() if data is not None}
        self.values: list[np.ndarray] = []  # per epoch: (measures, tasks)
        self._best = math.inf
        self._best_state: dict[str, torch.Tensor] | None = None

    def _score(self, model: MultiTaskModel, measure: str) -> list[float]:
        """``task.loss`` (or the test metric) of every task on the whole split, as :func:`~mtl_course.train.evaluate`
        computes it for one batch; ``NaN`` for a missing split or a task without targets in it."""
        if measure not in self.batches:
            return [math.nan] * len(self.tasks)
        x, ys, ms = self.batches[measure]
        out = model(x)
        scores = []
        for task in self.tasks:
            if task.name not in ys:
                scores.append(math.nan)
                continue
            y = ys[task.name]
            mask = expand_mask(ms[task.name].bool(), y.shape) if task.name in ms else None
            fn = task.metrics[self.metric] if measure == "test" and self.metric is not None else task.loss
            scores.append(float(fn(out[task.name].float(), y, mask)))
        return scores

    @torch.no_grad()
    def measure(self, model: MultiTaskModel) -> None:
        was_training = model.training
        model.eval()
        values = np.array([self._score(model, m) for m in MEASURES])
        model.train(was_training)
        self.values.append(values)
        criterion = float(values[1, self.select].sum())
        if criterion < self._best:
            self._best = criterion
            self._best_state = copy.deepcopy(model.state_dict())

    def on_train_begin(self, state: TrainState) -> None:
        self.measure(state.model)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self.every == 0 or state.epoch == self.epochs:
            self.measure(state.model)
        else:
            self.values.append(np.full((len(MEASURES), len(self.tasks)), math.nan))

    def on_train_end(self, state: TrainState) -> None:
        if self._best_state is not None:
            state.model.load_state_dict(self._best_state)


def _padded(values: list[np.ndarray], epochs: int, tasks: int) -> np.ndarray:
    """``(epochs + 1, measures, tasks)``; epochs a diverged run did not reach are ``NaN``."""
    out = np.full((epochs + 1, len(MEASURES), tasks), math.nan)
    if values:
        out[: len(values)] = np.stack(values)
    return out


def train_each(
    runs: Sequence[Run],
    build_model: Callable[[Run], MultiTaskModel],
    tasks: Sequence[Task],
    *,
    epochs: int = 100,
    lr: float = 1e-2,
    weighting: str | Callable[[Run], WeightingMethod] = "equal",
    steps_per_epoch: int = 1,
    batch_size: int | None = None,
    mixing_lr_scale: float | None = None,
    penalty: float = 0.0,
    metric: str | None = None,
    select: Sequence[str] | None = None,
    record: Callable[[MultiTaskModel], Any] | None = None,
    measure_every: int = 1,
    callbacks: Callable[[Run], Sequence[Callback]] | None = None,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train one ordinary model per run with :func:`mtl_course.train.fit` (Adam), monitored by :class:`Monitor`.

    ``build_model(run)`` returns the run's freshly initialised model; it is
    called inside ``torch.random.fork_rng`` after ``torch.manual_seed(run.seed)``
    (the global random state is left as it was). Each epoch is
    ``steps_per_epoch`` steps on the whole training set (``batch_size=None``)
    or one pass of shuffled mini-batches (``run.train.loader(batch_size,
    seed=run.seed)``). ``mixing_lr_scale`` gives the model's
    ``mixing_parameters()`` (cross-stitch :math:`\\alpha`, sluice
    :math:`\\alpha, \\beta`) the learning rate ``mixing_lr_scale * lr``
    through ``model.parameter_groups``; ``penalty`` adds
    ``penalty * model.penalty()`` to every step's loss; ``record(model)`` is
    a :class:`~mtl_course.train.Recorder` snapshot taken before training and
    after every epoch, while the monitor measures the splits before training,
    after every ``measure_every``-th epoch and after the last one (``NaN`` in
    the curves between). A run whose loss stops being finite (``fit`` raises
    ``FloatingPointError``, e.g. at a diverging learning rate) is reported
    with ``diverged=True`` and ``NaN`` measurements from then on; the others
    go on. ``weighting`` is a registered name or a function ``run -> method``
    (a fresh method per run, e.g. fixed weights that differ between runs);
    ``callbacks(run)`` adds per-run callbacks of :func:`~mtl_course.train.fit`,
    which then also evaluates ``run.val`` every epoch (the ``<task>/val_loss``
    columns that :class:`~mtl_course.train.TaskEarlyStopping` reads).
    """
    if not runs:
        raise ValueError("train_each needs at least one run, got none")
    if steps_per_epoch < 1 or (batch_size is not None and steps_per_epoch != 1):
        raise ValueError(
            f"steps_per_epoch must be >= 1, and 1 with mini-batches; got {steps_per_epoch} with batch_size={batch_size}"
        )
    device = get_device() if device is None else torch.device(device)
    names = [t.name for t in tasks]
    per_epoch = steps_per_epoch
    values, models, records, diverged = [], [], [], []
    for run in runs:
        if list(run.train.tasks) != names:
            raise KeyError(f"run {run.condition!r}/{run.seed} has the tasks {list(run.train.tasks)}, expected {names}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(run.seed))
            model = build_model(run).to(device)
        monitor = Monitor(run, tasks, device, metric, select, every=measure_every, epochs=epochs)
        recorder = Recorder(record) if record is not None else None
        optimizer = None
        if mixing_lr_scale is not None:
            optimizer = torch.optim.Adam(model.parameter_groups(lr, mixing_lr_scale), lr=lr)
        if batch_size is None:
            loader = [run.train.batch(device)] * steps_per_epoch
        else:
            loader = run.train.loader(batch_size, seed=int(run.seed), device=device)
            per_epoch = len(loader)
        extra = list(callbacks(run)) if callbacks is not None else []
        if extra and run.val is None:
            raise ValueError(f"run {run.condition!r}/{run.seed} has callbacks but no validation set for them to read")
        try:
            fit(
                model,
                tasks,
                weighting if isinstance(weighting, str) else weighting(run),
                loader,
                val_loader=[run.val.batch(device)] if extra else None,
                epochs=epochs,
                lr=lr,
                optimizer=optimizer,
                device=device,
                penalty=penalty,
                callbacks=[monitor] + ([recorder] if recorder is not None else []) + extra,
                progress=False,
            )
            diverged.append(False)
        except FloatingPointError:
            diverged.append(True)
        values.append(_padded(monitor.values, epochs, len(names)))
        models.append(model)
        records.append(recorder.values if recorder is not None else [])
    stacked = np.stack(values, axis=1)  # (epochs + 1, runs, measures, tasks)
    measured = {m: stacked[:, :, i] for i, m in enumerate(MEASURES)}
    steps = [e * per_epoch for e in range(epochs + 1)]
    return make_result(runs, names, measured, steps, models, select=select, diverged=diverged, records=records)


# -- all runs at once, as replicas --------------------------------------------------------------------
class ReplicaMonitor(Callback):
    """:class:`Monitor`'s rule for every replica of a :class:`~mtl_course.experiments.replicate.ReplicatedModel`.

    Per replica and task, the training and validation loss (``task.loss``,
    a replica loss with one value per replica, such as
    :func:`~mtl_course.experiments.replicate.replica_mse_loss`) and the test
    metric (``task.metrics[metric]`` replica by replica, or the loss). Each
    replica keeps the weights of its own best epoch (every parameter has the
    replica index first), restored at the end of training.
    """

    def __init__(
        self,
        model: ReplicatedModel,
        runs: Sequence[Run],
        tasks: Sequence[Task],
        device: torch.device,
        metric: str | None = None,
        select: Sequence[str] | None = None,
    ) -> None:
        self.tasks, self.metric = list(tasks), metric
        self.select = _indices([t.name for t in tasks], select)
        self.batches = {}
        for m in MEASURES:
            sets = [getattr(run, m) for run in runs]
            self.batches[m] = None if any(s is None for s in sets) else model.stack(sets, device)
        self._groups = _forward_groups(self.batches)
        self.values: list[torch.Tensor] = []  # per epoch: (measures, R, T), read once at the end
        self._best: torch.Tensor | None = None
        self._best_params: list[torch.Tensor] = []

    def _outputs(self, model: ReplicatedModel) -> dict[str, dict[str, torch.Tensor]]:
        """The model's outputs on every split, one forward pass per group of splits with the same input layout."""
        outputs = {}
        for x, parts in self._groups:
            out = model(x)
            pieces = {t: y.split([n for _, n in parts], dim=1) for t, y in out.items()}
            for i, (measure, _) in enumerate(parts):
                outputs[measure] = {t: pieces[t][i] for t in out}
        return outputs

    def _score(self, out: Mapping[str, torch.Tensor] | None, measure: str, nan: torch.Tensor) -> torch.Tensor:
        if out is None:
            return torch.stack([nan] * len(self.tasks), -1)
        ys = self.batches[measure][1]
        scores = []
        for task in self.tasks:
            name = task.name
            if name not in ys:
                scores.append(nan)
            elif measure == "test" and self.metric is not None:
                fn = task.metrics[self.metric]
                scores.append(torch.tensor([fn(p, y) for p, y in zip(out[name], ys[name], strict=True)]).to(nan))
            else:
                scores.append(task.loss(out[name].float(), ys[name], None))
        return torch.stack(scores, -1)

    @torch.no_grad()
    def measure(self, model: ReplicatedModel) -> None:
        was_training = model.training
        model.eval()
        outputs = self._outputs(model)
        nan = torch.full((model.replicas,), math.nan, device=next(model.parameters()).device)
        values = torch.stack([self._score(outputs.get(m), m, nan) for m in MEASURES])
        model.train(was_training)
        self.values.append(values)
        criterion = values[1][:, self.select].sum(-1)
        params = [p.detach() for p in model.parameters()]
        if self._best is None:
            self._best = torch.full_like(criterion, math.inf)
            self._best_params = [p.clone() for p in params]
        improved = criterion < self._best
        self._best = torch.where(improved, criterion, self._best)
        for p, best in zip(params, self._best_params, strict=True):
            best[improved] = p[improved]

    def on_train_begin(self, state: TrainState) -> None:
        self.measure(state.model)  # type: ignore[arg-type]

    def on_epoch_end(self, state: TrainState) -> None:
        self.measure(state.model)  # type: ignore[arg-type]

    @torch.no_grad()
    def on_train_end(self, state: TrainState) -> None:
        """Give every replica the weights of its own best validation epoch (kept where it never improved)."""
        if torch.isfinite(self._best).any():
            for p, best in zip(state.model.parameters(), self._best_params, strict=True):
                keep = torch.isfinite(self._best)
                p[keep] = best[keep]

    def measurements(self) -> dict[str, np.ndarray]:
        """``{measure: (epochs + 1, R, T)}``."""
        stacked = torch.stack(self.values).cpu().numpy()
        return {m: stacked[:, i] for i, m in enumerate(MEASURES)}


def timed_train_each(
    runs: Sequence[Run], build_model: Callable[[Run], MultiTaskModel], tasks: Sequence[Task], **options: Any
) -> tuple[ExperimentResult, float, float]:
    """:func:`train_each` with ``options``, and the CPU and wall seconds it took (the lectures' cost tables)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = train_each(runs, build_model, tasks, **options)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def _forward_groups(batches: Mapping[str, Any]) -> list[tuple[torch.Tensor, list[tuple[str, int]]]]:
    """The splits' inputs concatenated along the case dimension (-2) where their layouts agree, with each
    split's name and number of cases: a replicated model then runs once per group instead of once per split."""
    groups: dict[tuple, tuple[list[torch.Tensor], list[tuple[str, int]]]] = {}
    for measure, batch in batches.items():
        if batch is None:
            continue
        x = batch[0]
        key = (*x.shape[:-2], x.shape[-1])
        xs, parts = groups.setdefault(key, ([], []))
        xs.append(x)
        parts.append((measure, x.shape[-2]))
    return [(torch.cat(xs, dim=-2), parts) for xs, parts in groups.values()]


class _Replicas(Sequence):
    """The runs' models as ordinary models, ``stack.replica(r)`` of one or more stacks in turn, made when read."""

    def __init__(self, *stacks: ReplicatedModel) -> None:
        self.where = [(stack, r) for stack in stacks for r in range(stack.replicas)]

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, i: int) -> MultiTaskModel:  # type: ignore[override]
        stack, r = self.where[i]
        return stack.replica(r)

    def __iter__(self) -> Iterator[MultiTaskModel]:
        return (self[i] for i in range(len(self)))


def concat_results(results: Sequence[ExperimentResult]) -> ExperimentResult:
    """Several results as one, e.g. one per training-set size: runs numbered on, tables stacked.

    ``stack`` is ``None`` (each part had its own); ``models`` reads each part's.
    """
    if not results:
        raise ValueError("concat_results needs at least one result, got none")
    summaries, curves, offset = [], [], 0
    for part in results:
        summaries.append(part.summary.assign(run=part.summary["run"] + offset))
        curves.append(part.curves.assign(run=part.curves["run"] + offset))
        offset += len(part.runs)
    if all(part.stack is not None for part in results):
        models: Sequence[MultiTaskModel] = _Replicas(*(part.stack for part in results))
    else:
        models = [m for part in results for m in part.models]
    return ExperimentResult(
        pd.concat(summaries, ignore_index=True),
        pd.concat(curves, ignore_index=True),
        models,
        [run for part in results for run in part.runs],
        [record for part in results for record in part.records],
    )


def train_replicated(
    runs: Sequence[Run],
    build_stack: Callable[[Sequence[Run]], ReplicatedModel],
    tasks: Sequence[Task],
    *,
    epochs: int = 100,
    lr: float = 3e-3,
    steps_per_epoch: int = 1,
    penalty: float = 0.0,
    metric: str | None = None,
    select: Sequence[str] | None = None,
    record: Callable[[ReplicatedModel], Any] | None = None,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train every run as one replica of ``build_stack(runs)``: full batch, Adam, one ``fit`` call.

    The same recipe as :func:`train_each` with ``batch_size=None``, for
    many small runs: replica ``r`` is run ``r``'s model (``build_stack``
    seeds it with ``runs[r].seed``), trained on its own data. The tasks'
    losses are replica losses (one value per replica, e.g.
    :func:`~mtl_course.experiments.replicate.replica_mse_loss`); the
    training objective is their sum over the replicas
    (:func:`~mtl_course.experiments.replicate.summed`), so each replica
    follows the trajectory it would follow alone. Every run
    needs the same tasks and as many cases as the others in each split.
    ``penalty`` multiplies the stack's ``penalty()`` (each replica's own
    :math:`\\lambda_r \\Omega_r`). ``record(stack)`` returns one snapshot
    with the replicas first; ``records[r]`` holds replica ``r``'s slices.
    Adam uses the fused kernel where there is one (the same update in one call).
    """
    if not runs:
        raise ValueError("train_replicated needs at least one run, got none")
    device = get_device() if device is None else torch.device(device)
    names = [t.name for t in tasks]
    for run in runs:
        if list(run.train.tasks) != names:
            raise KeyError(f"run {run.condition!r}/{run.seed} has the tasks {list(run.train.tasks)}, expected {names}")
    model = build_stack(runs).to(device)
    if model.replicas != len(runs):
        raise ValueError(f"build_stack made {model.replicas} replicas for {len(runs)} runs")
    monitor = ReplicaMonitor(model, runs, tasks, device, metric, select)
    recorder = Recorder(record) if record is not None else None
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None, foreach=None if fused else True)
    replica_tasks = [Task(t.name, summed(t.loss)) for t in tasks]
    fit(
        model,
        replica_tasks,
        "equal",
        [monitor.batches["train"]] * steps_per_epoch,
        epochs=epochs,
        optimizer=optimizer,
        device=device,
        penalty=penalty,
        callbacks=[monitor] + ([recorder] if recorder is not None else []),
        progress=False,
    )
    records = [[] for _ in runs]
    if recorder is not None:
        records = [[snapshot[r] for snapshot in recorder.values] for r in range(len(runs))]
    steps = [e * steps_per_epoch for e in range(epochs + 1)]
    result = make_result(runs, names, monitor.measurements(), steps, _Replicas(model), select=select, records=records)
    result.stack = model
    return result

"""The training loop: any model, any weighting method, partially labelled batches.

:func:`fit` trains a :class:`~mtl_course.models.base.MultiTaskModel` with a
:class:`~mtl_course.weighting.WeightingMethod` and returns the history as a
pandas DataFrame with one row per epoch and the columns

``epoch``, ``time_s``, ``train_loss`` / ``val_loss`` (sums over tasks), and
per task ``<task>/train_loss``, ``<task>/weight`` (the epoch-mean effective
weight), ``<task>/val_loss`` and ``<task>/val_<metric>``.

Batches are ``(x, targets)``, ``(x, targets, masks)`` or a dict
``{"x": x, "targets": {...}, "masks": {...}}`` with ``targets`` and the
optional ``masks`` keyed by task. A task may be missing from ``targets``
(no labels in this batch), or have missing items marked by its mask, ``NaN``
or ``-100`` (see :mod:`mtl_course.losses`). A task without labels in a batch
contributes a zero loss; note that for MGDA a zero gradient is Pareto
stationary, so the shared update of that step vanishes.

The hot path does not synchronise with an accelerator: there, losses and
weights are accumulated on the device and read once per epoch. On the CPU,
where reading a value waits for nothing, they are read at their step as
Python floats and the epoch's sums are taken in double precision. A
non-finite loss raises at the end of the epoch, naming the task, the epoch
and the first step.

Callbacks: :class:`BestWeights` (model selection on validation data) and
:class:`TaskEarlyStopping` (TCDCN's task-wise early stopping).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch

from mtl_course.device import autocast, get_device
from mtl_course.losses import expand_mask
from mtl_course.models.base import MultiTaskModel
from mtl_course.weighting import WeightingMethod, get_weighting

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], float]
Amp = Literal["bf16", "fp16"] | None


@dataclass(frozen=True)
class Task:
    """One task: its name (a key of the model's outputs), its loss and its metrics.

    ``loss(pred, target, mask)`` and each ``metrics[name](pred, target, mask)``
    follow the conventions of :mod:`mtl_course.losses` and :mod:`mtl_course.metrics`.

    >>> from mtl_course.losses import cross_entropy
    >>> from mtl_course.metrics import accuracy
    >>> Task("digit", cross_entropy, {"accuracy": accuracy}).name
    'digit'
    """

    name: str
    loss: LossFn
    metrics: Mapping[str, MetricFn] = field(default_factory=dict)


# -- batches ----------------------------------------------------------------------
def split_batch(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(x, targets, masks)`` from a tuple or dict batch (masks default to ``{}``).

    >>> x, y, m = split_batch({"x": torch.zeros(2), "targets": {"a": torch.ones(2)}})
    >>> sorted(y), m
    (['a'], {})
    """
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):  # the loaders' form first: it is the common one
        return batch[0], dict(batch[1]), dict(batch[2]) if len(batch) == 3 else {}
    if isinstance(batch, Mapping):
        if "x" not in batch or "targets" not in batch:
            raise KeyError(f"a dict batch needs the keys 'x' and 'targets' (and optionally 'masks'); got {list(batch)}")
        return batch["x"], dict(batch["targets"]), dict(batch.get("masks") or {})
    raise TypeError(
        "a batch must be (x, {task: target}), (x, targets, {task: mask}) or "
        f"{{'x': ..., 'targets': ..., 'masks': ...}}; got {type(batch).__name__}"
    )


def _to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors on ``device``; one already there is kept as it is (``.to`` costs a dispatch every step)."""
    return {k: v if v.device == device else v.to(device, non_blocking=True) for k, v in tensors.items()}


def _move(module: torch.nn.Module, device: torch.device) -> None:
    """``module.to(device)``, unless every parameter and buffer is there already.

    ``to`` visits every submodule and re-assigns each of its tensors; on the lectures' small MLPs, asking where
    the tensors are takes half as long, and ``fit`` is called hundreds of times per lecture.
    """
    if any(t.device != device for t in itertools.chain(module.parameters(), module.buffers())):
        module.to(device)


def _check_keys(kind: str, given: Iterable[str], tasks: Sequence[str]) -> None:
    unknown = [k for k in given if k not in tasks]
    if unknown:
        raise KeyError(f"the batch has {kind} for unknown task(s) {unknown}; the tasks are {list(tasks)}")


def _batch_on(
    batch: Any, device: torch.device, tasks: Sequence[str], known: frozenset[str]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """:func:`split_batch`, its task names checked against ``known`` (the set of ``tasks``), moved to ``device``."""
    x, ys, ms = split_batch(batch)
    if not known.issuperset(ys):  # one set operation on the common step; the message only when it fails
        _check_keys("targets", ys, tasks)
    if ms:
        if not known.issuperset(ms):
            _check_keys("masks", ms, tasks)
        ms = _to_device(ms, device)
    return x if x.device == device else x.to(device, non_blocking=True), _to_device(ys, device), ms


_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast(device: torch.device, amp: Amp) -> contextlib.AbstractContextManager:
    """:func:`mtl_course.device.autocast` for the ``amp`` option; no context at all when ``amp`` is ``None``.

    (Entering and leaving a disabled ``torch.autocast`` costs microseconds every step, a few per cent of a small
    model's step.)
    """
    return contextlib.nullcontext() if amp is None else autocast(device, _AMP_DTYPES[amp])


# -- callbacks --------------------------------------------------------------------------
@dataclass
class TrainState:
    """What callbacks see: the model, the weighting, the history so far, and a stop flag."""

    model: MultiTaskModel
    weighting: WeightingMethod
    history: list[dict[str, float]]
    epoch: int = 0
    stop: bool = False


class Callback:
    """Hooks of :func:`fit`; override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first epoch (``state.epoch == 0``), after the model moved to its device."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After the epoch's row was appended to ``state.history``."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch."""


class Recorder(Callback):
    """Snapshots of the model before training and after every epoch: ``snapshot(model)`` for epochs 0, 1, 2, ...

    The one way the course records how parameters move during training (the
    cross-stitch :math:`\alpha`, the sluice :math:`\beta`, a shared weight's
    trajectory). ``snapshot`` runs without gradients and should return copies
    (NumPy arrays, floats), not live tensors.

    >>> from mtl_course.models import CrossStitchNetwork
    >>> alphas = Recorder(lambda m: [a.detach().numpy().copy() for a in m.mixing_parameters()])
    >>> net = CrossStitchNetwork.mlp(3, [4, 4], {"a": 1, "b": 1})
    >>> batch = (torch.zeros(8, 3), {"a": torch.zeros(8, 1), "b": torch.zeros(8, 1)})
    >>> tasks = [Task("a", torch.nn.functional.mse_loss), Task("b", torch.nn.functional.mse_loss)]
    >>> _ = fit(net, tasks, "equal", [batch], epochs=3, callbacks=[alphas], progress=False, device="cpu")
    >>> len(alphas.values), alphas.values[0][0].shape  # epochs 0..3; the first unit: a 2 x 2 alpha per channel
    (4, (4, 2, 2))
    """

    def __init__(self, snapshot: Callable[[MultiTaskModel], Any]) -> None:
        self.snapshot = snapshot
        self.values: list[Any] = []

    @torch.no_grad()
    def on_train_begin(self, state: TrainState) -> None:
        self.values = [self.snapshot(state.model)]

    @torch.no_grad()
    def on_epoch_end(self, state: TrainState) -> None:
        self.values.append(self.snapshot(state.model))


def _column(state: TrainState, name: str) -> list[float]:
    if name not in state.history[-1]:
        raise KeyError(f"the history has no column {name!r}; columns: {list(state.history[-1])}")
    return [row[name] for row in state.history]


class BestWeights(Callback):
    """Model selection: keep the weights of the best epoch by ``monitor`` and restore them at the end.

    ``monitor`` is a history column (default the summed validation loss);
    ``mode`` is ``"min"`` or ``"max"``.
    """

    def __init__(self, monitor: str = "val_loss", mode: Literal["min", "max"] = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        value = _column(state, self.monitor)[-1]
        better = value < self.best_value if self.mode == "min" else value > self.best_value
        if better:
            self.best_value, self.best_epoch = value, state.epoch
            self.best_state = copy.deepcopy(state.model.state_dict())

    def on_train_end(self, state: TrainState) -> None:
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)


def tcdcn_criterion(train_errors: Sequence[float], val_error: float, k: int, lam: float) -> float:
    """TCDCN's task-wise early-stopping criterion (Zhang et al., ECCV 2014), as printed on the slides:

        [k med_{j=t-k..t} E_tr(j) / (sum_{j=t-k}^{t} E_tr(j) - k med_j E_tr(j))]
        * [(E_val(t) - min E_tr) / (lam * min E_tr)]

    ``train_errors`` are the task's training errors ``E_tr(1..t)`` (one per
    epoch), ``val_error`` its validation error ``E_val(t)``, ``lam`` the task
    coefficient (TCDCN's importance coefficient of the task's loss); ``min
    E_tr`` is taken over all epochs so far.

    **Which window.** The course reads the printed limits literally: the window
    ``t-k..t`` holds ``k + 1`` epochs. The other reading, a window of ``k``
    epochs, makes the denominator ``k mean - k med`` zero whenever mean and
    median agree (a plateau, a straight line), so the criterion would be
    infinite exactly where training has settled. Under the ``k + 1`` reading
    the trend factor equals ``k`` on a plateau and on a straight line, and is
    smaller on a fast, convex decrease: the threshold ``epsilon`` must be
    calibrated against ``k``. This is a property of the reading, not a claim
    of the paper. A zero denominator gives ``inf``.

    >>> tcdcn_criterion([1.0, 1.0, 1.0], val_error=1.5, k=2, lam=1.0)  # plateau: 2 * 0.5
    1.0
    """
    if len(train_errors) < k + 1:
        raise ValueError(f"the criterion needs k + 1 = {k + 1} training errors, got {len(train_errors)}")
    window = list(train_errors[-(k + 1) :])
    median = statistics.median(window)
    trend_denominator = sum(window) - k * median
    trend = k * median / trend_denominator if trend_denominator != 0 else math.inf
    best = min(train_errors)
    return trend * (val_error - best) / (lam * best)


class TaskEarlyStopping(Callback):
    r"""Stop auxiliary ``task`` when :func:`tcdcn_criterion` exceeds ``epsilon``.

    Stopping deactivates the task in the weighting method: its loss is no
    longer computed or back-propagated. Needs a validation loader.

    ``lam`` is the criterion's task coefficient :math:`\lambda^a`. In TCDCN it
    is the coefficient of task :math:`a`'s loss in the training objective,
    which the paper treats as learnable; here it is a constant (default
    1) that is neither learnt nor tied to the weight the weighting method
    gives the task. ``k`` is the window (``k + 1`` epochs, see
    :func:`tcdcn_criterion`), ``epsilon`` the threshold.
    """

    def __init__(self, task: str, k: int = 5, epsilon: float = 5.0, lam: float = 1.0) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.task, self.k, self.epsilon, self.lam = task, k, epsilon, lam
        self.stopped_epoch: int | None = None
        self.values: list[float] = []

    def on_epoch_end(self, state: TrainState) -> None:
        if self.stopped_epoch is not None:
            return
        train = _column(state, f"{self.task}/train_loss")
        if len(train) < self.k + 1:
            return
        val = _column(state, f"{self.task}/val_loss")[-1]
        value = tcdcn_criterion(train, val, self.k, self.lam)
        self.values.append(value)
        if value > self.epsilon:
            state.weighting.deactivate(self.task)
            self.stopped_epoch = state.epoch


# -- evaluation --------------------------------------------------------------------------
@torch.no_grad()
def evaluate(
    model: MultiTaskModel,
    tasks: Sequence[Task],
    loader: Iterable[Any],
    device: torch.device | str | None = None,
    amp: Amp = None,
) -> dict[str, float]:
    """Validation loss and metrics per task, computed once on the whole concatenated set.

    Returns ``{"<task>/val_loss": ..., "<task>/val_<metric>": ..., "val_loss": sum}``;
    a task without any label in ``loader`` gets ``NaN``.
    """
    device = get_device() if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    names = [t.name for t in tasks]
    outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    targets: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    masks: dict[str, list[torch.Tensor | None]] = {n: [] for n in names}
    for batch in loader:
        x, ys, ms = split_batch(batch)
        _check_keys("targets", ys, names)
        with _autocast(device, amp):
            out = model(x.to(device, non_blocking=True))
        for name in names:
            if name in ys:
                y = ys[name].to(device, non_blocking=True)
                outputs[name].append(out[name].float())
                targets[name].append(y)
                masks[name].append(expand_mask(ms[name].to(device).bool(), y.shape) if name in ms else None)
    model.train(was_training)
    row: dict[str, float] = {}
    for task in tasks:
        name = task.name
        if not targets[name]:
            row[f"{name}/val_loss"] = math.nan
            row.update({f"{name}/val_{m}": math.nan for m in task.metrics})
            continue
        pred, y = torch.cat(outputs[name]), torch.cat(targets[name])
        mask = None
        if any(m is not None for m in masks[name]):
            mask = torch.cat(
                [
                    torch.ones_like(t, dtype=torch.bool) if m is None else m
                    for m, t in zip(masks[name], targets[name], strict=True)
                ]
            )
        row[f"{name}/val_loss"] = float(task.loss(pred, y, mask))
        for metric, fn in task.metrics.items():
            row[f"{name}/val_{metric}"] = float(fn(pred, y, mask))
    row["val_loss"] = sum(row[f"{n}/val_loss"] for n in names)
    return row


# -- training ------------------------------------------------------------------------------
def _check_tasks(model: MultiTaskModel, tasks: Sequence[Task], weighting: WeightingMethod) -> None:
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    if set(names) != set(model.tasks):
        raise KeyError(f"the task specification names {names} but the model has tasks {model.tasks}")
    if set(names) != set(weighting.tasks):
        raise KeyError(f"the task specification names {names} but the weighting method has tasks {weighting.tasks}")
    if weighting.requires_representation and not model.has_shared_representation:
        raise ValueError(
            f"{type(weighting).__name__} works on the shared representation, but "
            f"{type(model).__name__} has none (has_shared_representation=False)"
        )


def _check_optimizer(optimizer: torch.optim.Optimizer, weighting: WeightingMethod) -> None:
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in weighting.named_parameters() if id(p) not in optimised]
    if missing:
        raise ValueError(
            f"{type(weighting).__name__} has learnable parameters {missing} that the optimiser does not "
            "update; add weighting.parameters() to it (or let fit create the optimiser)"
        )


class _EpochTotals:
    """What one epoch accumulates: at every step the active tasks' losses (in ``active`` order) and every task's
    weight, and per task the number of batches that labelled it.

    Where the values wait until the end of the epoch depends on the device:

    * on the CPU (``on_host``), every value is read as a Python float at its step, and the sums are taken in
      double precision at the end: reading a CPU tensor waits for nothing, and no tensor operation is left for
      the end of the epoch (which, in full-batch training, comes after every step);
    * on an accelerator, the values stay on the device and reach the host in one transfer at the end of the
      epoch: reading one at its step would make the host wait for the device at every step.
    """

    def __init__(self, names: Sequence[str], active: Sequence[str], on_host: bool) -> None:
        self.names, self.active, self.on_host = names, active, on_host
        self.labelled_batches = dict.fromkeys(active, 0)
        self.steps = 0
        self.losses: list[list[float]] | list[torch.Tensor] = []  # per step a list (host), or flat 0-dim tensors
        self.weights: list[list[float]] | list[torch.Tensor] = []

    def add(self, losses: Mapping[str, torch.Tensor], weights: torch.Tensor) -> None:
        """Record one step: its losses (one 0-dim tensor per active task) and its weights (one per task)."""
        if self.on_host:
            self.losses.append([loss.item() for loss in losses.values()])
            self.weights.append(weights.tolist())
        else:
            self.losses.extend(loss.detach() for loss in losses.values())  # stacked once per epoch, not per step
            self.weights.append(weights)
        self.steps += 1

    def summary(self) -> tuple[list[float], list[float]]:
        """Per active task the sum of its losses over the steps, and per task its mean weight (NaN: no steps)."""
        if not self.steps:
            return [0.0] * len(self.active), [math.nan] * len(self.names)
        if self.on_host:
            if self.steps == 1:  # full-batch training: the one step's values are the sums and the means
                return self.losses[0], self.weights[0]
            loss_sums = list(map(sum, zip(*self.losses, strict=True)))  # zip(*steps): each task over the steps
            return loss_sums, [total / self.steps for total in map(sum, zip(*self.weights, strict=True))]
        summary = torch.cat([self._stacked_losses().sum(dim=0), torch.stack(self.weights).float().mean(dim=0)])
        values = summary.tolist()  # the one transfer (and device synchronisation) of the epoch
        return values[: len(self.active)], values[len(self.active) :]

    def step_losses(self, j: int) -> list[float]:
        """Every step's loss of the ``j``-th active task (read only to name the step where it stopped being finite)."""
        if self.on_host:
            return [step[j] for step in self.losses]
        return self._stacked_losses()[:, j].tolist()

    def _stacked_losses(self) -> torch.Tensor:
        return torch.stack(self.losses).view(self.steps, len(self.active)).float()


def _prepare_optimizer(
    model: MultiTaskModel, weighting: WeightingMethod, optimizer: torch.optim.Optimizer | None, lr: float
) -> torch.optim.Optimizer:
    if optimizer is None:
        # foreach: one kernel per step for all parameters; on the small models of the
        # course it halves the step time against the per-parameter loop
        return torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=lr, foreach=True)
    _check_optimizer(optimizer, weighting)
    return optimizer


def _step_losses(
    model: MultiTaskModel,
    by_name: Mapping[str, Task],
    active: Sequence[str],
    x: torch.Tensor,
    ys: Mapping[str, torch.Tensor],
    ms: Mapping[str, torch.Tensor],
    needs_representation: bool,
    labelled_batches: dict[str, int],
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The forward pass and each active task's loss (a zero that keeps the graph for a task without labels)."""
    if needs_representation:
        representation = model.encode(x)
        outputs = model.decode(representation)
    else:
        representation = None
        outputs = model(x)
    losses = {}
    for name in active:
        if name in ys:
            losses[name] = by_name[name].loss(outputs[name], ys[name], ms.get(name))
            labelled_batches[name] += 1
        else:
            losses[name] = outputs[name].sum() * 0.0
    return losses, representation


def _backward_and_step(
    model: MultiTaskModel,
    weighting: WeightingMethod,
    losses: dict[str, torch.Tensor],
    representation: torch.Tensor | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    penalty: float,
    totals: _EpochTotals,
) -> None:
    """The weighting's backward pass, the model's penalty, and the optimiser step (through the fp16 scaler)."""
    grad_scale = scaler.scale(torch.ones((), device=next(iter(losses.values())).device)) if scaler is not None else None
    weights = weighting.backward(losses, model, representation=representation, grad_scale=grad_scale)
    if penalty:
        extra = penalty * model.penalty()
        (extra if grad_scale is None else extra * grad_scale).backward()
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    totals.add(losses, weights)


def _epoch_row(epoch: int, totals: _EpochTotals) -> tuple[dict[str, float], dict[str, float]]:
    """The history row of one epoch and the active tasks' mean training losses; raises when a loss was not finite.

    A task's sum over the steps is finite exactly when every step's loss is (NaN and infinity propagate), and so
    is their total unless it overflows: the tasks and then their steps are searched only when the total is not.
    """
    loss_sums, weight_means = totals.summary()
    if not math.isfinite(sum(loss_sums)):
        for j, total in enumerate(loss_sums):  # the first task, in active order, with a non-finite loss
            if not math.isfinite(total):
                bad = [step for step, loss in enumerate(totals.step_losses(j)) if not math.isfinite(loss)]
                where = f"step {bad[0]} (its first occurrence in the epoch)" if bad else "its sum over the steps"
                raise FloatingPointError(
                    f"the loss of task {totals.active[j]!r} is not finite at epoch {epoch}, {where}; check the "
                    "targets, the learning rate, or the task's loss scale"
                )
    means = {}
    for name, total in zip(totals.active, loss_sums, strict=True):
        labelled = totals.labelled_batches[name]
        means[name] = total / labelled if labelled else math.nan
    row: dict[str, float] = {"epoch": epoch}
    for name, weight in zip(totals.names, weight_means, strict=True):
        train_loss, weight_column = _train_columns(name)
        row[train_loss] = means.get(name, math.nan)
        row[weight_column] = weight
    row["train_loss"] = sum(means.values())
    return row, means


@functools.cache
def _train_columns(task: str) -> tuple[str, str]:
    """The history's columns ``<task>/train_loss`` and ``<task>/weight``, formatted (and hashed) once per task."""
    return f"{task}/train_loss", f"{task}/weight"


def fit(
    model: MultiTaskModel,
    tasks: Sequence[Task],
    weighting: WeightingMethod | str,
    train_loader: Iterable[Any],
    *,
    val_loader: Iterable[Any] | None = None,
    epochs: int = 10,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
    amp: Amp = None,
    penalty: float = 0.0,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """Train ``model`` on ``tasks`` with ``weighting`` and return the per-epoch history.

    ``weighting`` is a method or a registered name. Without ``optimizer``,
    Adam with ``lr`` optimises the model's and the weighting's parameters
    (uncertainty's ``s``). ``amp="bf16"`` or ``"fp16"`` trains under autocast;
    fp16 (CUDA only) uses a ``GradScaler``. A non-zero ``penalty`` adds
    ``penalty * model.penalty()`` (the model's own regulariser, e.g. the
    soft-sharing distance) to the objective of every step.
    ``progress=False`` hides the tqdm bar.
    """
    device = get_device() if device is None else torch.device(device)
    if isinstance(weighting, str):
        weighting = get_weighting(weighting, [t.name for t in tasks])
    _check_tasks(model, tasks, weighting)
    _check_amp(amp, device)
    _move(model, device)
    _move(weighting, device)
    optimizer = _prepare_optimizer(model, weighting, optimizer, lr)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    by_name = {t.name: t for t in tasks}
    names = list(weighting.tasks)
    known = frozenset(names)
    on_host = device.type == "cpu"  # where the epoch's losses wait: see _EpochTotals
    amp_context = _autocast(device, amp)  # built once, entered every step
    state = TrainState(model, weighting, history=[])
    for callback in callbacks:
        callback.on_train_begin(state)
    bar = _progress_bar(epochs) if progress else None
    for epoch in range(1, epochs + 1):
        state.epoch = epoch
        start = time.perf_counter()
        if not model.training:  # evaluate() restores training mode; model.train() walks every submodule
            model.train()
        active = list(weighting.active)  # callbacks may stop a task between epochs, never within one
        totals = _EpochTotals(names, active, on_host)
        for batch in train_loader:
            x, ys, ms = _batch_on(batch, device, names, known)
            optimizer.zero_grad(set_to_none=True)
            with amp_context:
                losses, representation = _step_losses(
                    model, by_name, active, x, ys, ms, weighting.requires_representation, totals.labelled_batches
                )
            _backward_and_step(model, weighting, losses, representation, optimizer, scaler, penalty, totals)
        row, mean_losses = _epoch_row(epoch, totals)
        weighting.on_epoch_end(mean_losses)
        if val_loader is not None:
            row.update(evaluate(model, tasks, val_loader, device, amp))
        row["time_s"] = time.perf_counter() - start
        state.history.append(row)
        for callback in callbacks:
            callback.on_epoch_end(state)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train_loss=f"{row['train_loss']:.4g}")
        if state.stop:
            break
    if bar is not None:
        bar.close()
    for callback in callbacks:
        callback.on_train_end(state)
    return pd.DataFrame(state.history)


def _check_amp(amp: Amp, device: torch.device) -> None:
    if amp not in (None, "bf16", "fp16"):
        raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got {device}; use amp='bf16' on the CPU")


def _progress_bar(epochs: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(desc="epochs", total=epochs)

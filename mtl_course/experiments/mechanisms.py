r"""Why does multi-task learning work? One small experiment per mechanism (lecture A2).

Caruana (Machine Learning 28:41--75, 1997, doi:10.1023/A:1007379606734)
explains the gains of a shared hidden layer by mechanisms (Section 3.2), and
rules out "extra outputs just add noise or restrict capacity" with the
*shuffle test* (Section 3.1). Ruder (arXiv 1706.05098, 2017, Section 3) names
them implicit data augmentation, attention focusing, eavesdropping,
representation bias and regularisation. This module runs them:

* :func:`caruana_experiment` -- STL vs MTL vs shuffled extra tasks on
  :class:`~mtl_course.data.caruana.CaruanaProblem`, with early stopping, plus
  the implicit-data-augmentation arms (:func:`amplification_arms`: noisy
  copies of the main function; STL on averaged labels) and the
  regularisation arms (:func:`random_label_arms`: pure-noise main labels);
* :func:`attention_experiment` -- attention focusing on
  :class:`~mtl_course.data.caruana.AttentionProblem`, with the share of
  first-layer weight on the relevant inputs (:func:`input_weight_share`);
* :func:`eavesdropping_experiment` -- a hint task (:class:`~mtl_course.data.caruana.HintProblem`);
* :func:`representation_experiment` -- representation bias and Baxter's
  environment: train on :math:`K` tasks, then fit only a linear read-out for
  novel tasks on the frozen shared layer (:func:`linear_probe_error`);
* :func:`breast_cancer_experiment` -- the negative control.

**Many seeds at once.** A lecture has about a minute of CPU time, and a tiny
MLP trained on 200 cases is dominated by per-call overhead, not arithmetic.
:class:`ReplicatedMLP` therefore stacks :math:`R` independent copies of
``HardSharing.mlp(...)`` (one per seed and condition, each with its own data)
and evaluates them with batched matrix products; :func:`train_arms` trains
all of them in one call of :func:`mtl_course.train.fit` (full batch, Adam).
Because no parameter is shared between replicas and Adam acts element-wise,
each replica follows exactly the trajectory it would follow alone
(:meth:`ReplicatedMLP.replica` returns replica :math:`r` as a plain
:class:`~mtl_course.models.HardSharing`). Single-task learning is the same
network whose extra heads receive no labels (``NaN`` targets): the extra
heads then get no gradient and the trunk only the main task's, as in an STL
network with one output. The extra tasks' one-unit linear heads are stored
side by side as one linear layer (output ``"extra"``), which is the same
model with fewer, larger kernel calls.

**Early stopping per replica.** :class:`ReplicaMonitor` records every
replica's training loss, validation loss and test error every
``eval_every`` steps; the early-stopped test error of a replica is its
test error at its own best validation step, and its weights from that step
are restored at the end; the final test error is the one after the last
step (no early stopping).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.data.caruana import (
    MAIN,
    AttentionProblem,
    CaruanaProblem,
    EnvironmentProblem,
    HintProblem,
    TaskData,
    average_labels,
    drop_extra_tasks,
    environment_features,
    load_breast_cancer_tasks,
    shuffle_extra_tasks,
    take,
)
from mtl_course.device import get_device
from mtl_course.metrics import auc
from mtl_course.models.base import MultiTaskModel, check_task_outputs
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.train import Callback, Task, TrainState, fit

Kind = Literal["regression", "classification"]

#: Name of the output that holds every extra task (one unit per extra task).
EXTRA = "extra"


# -- the replicated model -----------------------------------------------------------
class ReplicatedMLP(MultiTaskModel):
    r""":math:`R` independent hard-sharing MLPs, evaluated at once with batched matrix products.

    Replica :math:`r` is ``HardSharing.mlp(in_features, hidden, tasks)``
    initialised from ``torch.manual_seed(seeds[r])``: a trunk of
    ``Linear -> ReLU`` layers and one linear head per task. Inputs have
    shape ``(R, n, in_features)`` (each replica its own cases); outputs are
    ``{task: (R, n, out)}``:

    .. math::

        h^{(0)}_r = x_r, \quad h^{(l)}_r = \mathrm{ReLU}(h^{(l-1)}_r W^{(l)}_r + b^{(l)}_r), \quad
        \hat y_{r,t} = h^{(L)}_r V_{r,t} + c_{r,t}.

    Replicas with the same seed start from the same weights, so conditions
    compared on one seed differ only in their training signals.

    >>> model = ReplicatedMLP.mlp(in_features=10, hidden=[32, 32], tasks={"main": 1, "extra": 1}, seeds=[0, 0, 1])
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(3, 7, 10)).items()}
    {'main': (3, 7, 1), 'extra': (3, 7, 1)}
    >>> bool(torch.equal(model.trunk_weights[0][0], model.trunk_weights[0][1]))  # same seed, same init
    True
    """

    has_shared_representation = True

    def __init__(self, models: Sequence[HardSharing]) -> None:
        if not models:
            raise ValueError("ReplicatedMLP needs at least one HardSharing.mlp model to stack")
        first = models[0]
        super().__init__(first.tasks)
        self.in_features = first.trunk.in_features
        self.hidden = list(first.trunk.out_channels)
        self.out_features = {t: first.heads[t].layers[-1].out_features for t in first.tasks}
        for m in models:
            if (
                m.tasks != first.tasks
                or list(m.trunk.out_channels) != self.hidden
                or len(m.heads[m.tasks[0]].layers) != 1
            ):
                raise ValueError(
                    "every stacked model must be HardSharing.mlp with the same sizes, tasks and no head_hidden"
                )
        linears = [[stage[0] for stage in m.trunk.stages] for m in models]
        self.trunk_weights = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in linears])) for i in range(len(self.hidden))]
        )
        self.trunk_biases = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].bias.detach()[None] for ls in linears])) for i in range(len(self.hidden))]
        )
        self.head_weights = nn.ParameterDict(
            {
                t: nn.Parameter(torch.stack([m.heads[t].layers[-1].weight.detach().T for m in models]))
                for t in self.tasks
            }
        )
        self.head_biases = nn.ParameterDict(
            {
                t: nn.Parameter(torch.stack([m.heads[t].layers[-1].bias.detach()[None] for m in models]))
                for t in self.tasks
            }
        )

    @classmethod
    def mlp(
        cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int], seeds: Sequence[int]
    ) -> ReplicatedMLP:
        """One replica per entry of ``seeds``, each initialised like ``HardSharing.mlp`` after ``torch.manual_seed(seed)``.

        The global torch random state is left untouched.
        """
        tasks = check_task_outputs(tasks)
        models = []
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                models.append(HardSharing.mlp(in_features, hidden, tasks))
        return cls(models)

    @property
    def replicas(self) -> int:
        return self.trunk_weights[0].shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation of every replica, ``(R, n, hidden[-1])``."""
        if x.ndim != 3 or x.shape[0] != self.replicas or x.shape[2] != self.in_features:
            raise ValueError(
                f"ReplicatedMLP expects inputs of shape (R={self.replicas}, n, {self.in_features}), got {tuple(x.shape)}"
            )
        h = x
        for w, b in zip(self.trunk_weights, self.trunk_biases, strict=True):
            h = torch.relu(torch.baddbmm(b, h, w))
        return h

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: torch.baddbmm(self.head_biases[t], z, self.head_weights[t]) for t in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.trunk_weights
        yield from self.trunk_biases

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield self.head_weights[task]
        yield self.head_biases[task]

    def last_shared_layer(self) -> list[nn.Parameter]:
        return [self.trunk_weights[-1], self.trunk_biases[-1]]

    def replica(self, r: int) -> HardSharing:
        """Replica ``r`` as a plain :class:`~mtl_course.models.HardSharing` with copies of its weights."""
        if not 0 <= r < self.replicas:
            raise IndexError(f"replica index must be in 0..{self.replicas - 1}, got {r}")
        model = HardSharing.mlp(self.in_features, self.hidden, self.out_features)
        with torch.no_grad():
            for stage, w, b in zip(model.trunk.stages, self.trunk_weights, self.trunk_biases, strict=True):
                stage[0].weight.copy_(w[r].T)
                stage[0].bias.copy_(b[r, 0])
            for t in self.tasks:
                model.heads[t].layers[-1].weight.copy_(self.head_weights[t][r].T)
                model.heads[t].layers[-1].bias.copy_(self.head_biases[t][r, 0])
        return model.to(self.trunk_weights[0].device)

    def extra_repr(self) -> str:
        return f"replicas={self.replicas}, in_features={self.in_features}, hidden={self.hidden}, tasks={self.tasks}"


# -- losses summed over replicas ------------------------------------------------------
def _replica_mean(values: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """Per replica (dim 0), the mean of ``values`` over the labelled items; 0 for a replica without labels."""
    dims = tuple(range(1, values.ndim))
    zeros = torch.zeros((), dtype=values.dtype, device=values.device)
    total = torch.where(labelled, values, zeros).sum(dims)
    return total / labelled.sum(dims).clamp_min(1)


def _labelled(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    labelled = ~torch.isnan(target)
    if mask is not None:
        labelled = labelled & mask.bool().reshape(*mask.shape, *([1] * (target.ndim - mask.ndim))).expand_as(target)
    return labelled


def replica_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Sum over replicas of each replica's mean squared error: :math:`\sum_r \frac{1}{n_r}\sum_{i} (\hat y_{ri} - y_{ri})^2`.

    ``pred`` and ``target`` are ``(R, n, ...)``; ``NaN`` targets (or a false
    ``mask``) are missing and contribute neither value nor gradient, so a
    replica without labels for a task adds 0. Summing (not averaging) over
    replicas gives every replica the gradient of its own loss.

    >>> pred = torch.zeros(2, 3, 1)
    >>> target = torch.tensor([[1.0, 2.0, 3.0], [float("nan")] * 3]).unsqueeze(-1)
    >>> replica_mse_loss(pred, target)  # (1 + 4 + 9) / 3 + 0
    tensor(4.6667)
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, pred.detach())
    return _replica_mean((pred - safe) ** 2, labelled).sum()


def replica_column_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""For ``(R, n, K)`` outputs of :math:`K` regression tasks stored as one head: :math:`\sum_r \sum_k \mathrm{MSE}_{rk}`.

    Each column :math:`k` is one task; its mean squared error is averaged
    over its labelled cases, then the columns and the replicas are summed.
    This equals giving each of the :math:`K` tasks its own linear head and
    summing their losses (equal weighting), because a :math:`K`-output
    linear layer *is* :math:`K` one-output linear layers side by side.

    >>> pred = torch.zeros(1, 2, 2)
    >>> target = torch.tensor([[[1.0, 3.0], [float("nan"), 5.0]]])
    >>> replica_column_mse_loss(pred, target)  # 1 + (9 + 25) / 2
    tensor(18.)
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, pred.detach())
    squared = torch.where(labelled, (pred - safe) ** 2, torch.zeros((), dtype=pred.dtype, device=pred.device))
    return (squared.sum(1) / labelled.sum(1).clamp_min(1)).sum()


def replica_bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Sum over replicas of each replica's mean binary cross-entropy with logits.

    :math:`\sum_r \frac{1}{n_r}\sum_i [\log(1 + e^{z_{ri}}) - y_{ri} z_{ri}]`; ``NaN`` targets are missing.

    >>> replica_bce_loss(torch.zeros(2, 4, 1), torch.ones(2, 4, 1))  # 2 log 2
    tensor(1.3863)
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, torch.zeros_like(target))
    per_item = F.binary_cross_entropy_with_logits(logits, safe, reduction="none")
    return _replica_mean(per_item, labelled).sum()


# -- arms, monitoring and training ----------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One replica of an experiment: a condition on one seed with its own train/validation/test data.

    ``train`` holds the training signals of the condition (e.g. ``NaN`` for
    the extra tasks of STL, shuffled extra signals for the shuffle test);
    ``val`` is used for early stopping on the main task's labels; ``test``
    is scored against ``test.truth``. ``info`` holds extra columns for the
    result table (e.g. the experiment or the number of tasks).
    """

    condition: str
    seed: int
    train: TaskData
    val: TaskData
    test: TaskData
    info: Mapping[str, object] = field(default_factory=dict)


def _stack(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.stack(arrays), dtype=torch.float32, device=device)


class ReplicaMonitor(Callback):
    """Every epoch, per replica: main-task training loss, validation loss, and test error.

    Regression: training and validation MSE against the (noisy) labels, test
    MSE against the noise-free ``truth``. Classification: training and
    validation binary cross-entropy, test AUC (:func:`mtl_course.metrics.auc`).
    After training ``train_loss``, ``val_loss`` and ``test`` are arrays
    ``(epochs, R)``; ``steps`` holds the step count after each epoch.

    With ``restore_best`` the monitor keeps, for every replica separately,
    the weights of its best validation epoch and loads them at the end of
    training (per-replica early stopping; all parameters have the replica
    index as their first dimension).
    """

    def __init__(
        self, arms: Sequence[Arm], device: torch.device, kind: Kind, steps_per_epoch: int, restore_best: bool = True
    ) -> None:
        self.kind, self.steps_per_epoch, self.restore_best = kind, steps_per_epoch, restore_best
        self.n_train, self.n_val = arms[0].train.n, arms[0].val.n
        self.x = _stack([np.concatenate([a.train.x, a.val.x, a.test.x]) for a in arms], device)
        self.y_train = _stack([a.train.targets[a.train.main] for a in arms], device)
        self.y_val = _stack([a.val.targets[a.val.main] for a in arms], device)
        self.truth = _stack([a.test.truth for a in arms], device)
        self._rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.steps: list[int] = []
        self._best_val: torch.Tensor | None = None
        self._best_params: list[torch.Tensor] = []

    @torch.no_grad()
    def measure(self, model: MultiTaskModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(training loss, validation loss, test error) of every replica now."""
        was_training = model.training
        model.eval()
        out = model(self.x)[MAIN][..., 0].float()
        model.train(was_training)
        a, b = self.n_train, self.n_train + self.n_val
        train, val, test = out[:, :a], out[:, a:b], out[:, b:]
        if self.kind == "regression":
            return (
                ((train - self.y_train) ** 2).mean(1),
                ((val - self.y_val) ** 2).mean(1),
                ((test - self.truth) ** 2).mean(1),
            )
        bce = F.binary_cross_entropy_with_logits
        test_auc = torch.tensor([auc(test[r], self.truth[r]) for r in range(test.shape[0])], device=out.device)
        return (
            bce(train, self.y_train, reduction="none").mean(1),
            bce(val, self.y_val, reduction="none").mean(1),
            test_auc,
        )

    def on_epoch_end(self, state: TrainState) -> None:
        train, val, test = self.measure(state.model)
        self._rows.append((train, val, test))
        self.steps.append(state.epoch * self.steps_per_epoch)
        if self.restore_best:
            params = [p.detach() for p in state.model.parameters()]
            if self._best_val is None:
                self._best_val = torch.full_like(val, math.inf)
                self._best_params = [p.clone() for p in params]
            improved = val < self._best_val
            self._best_val = torch.where(improved, val, self._best_val)
            for p, best in zip(params, self._best_params, strict=True):
                best[improved] = p[improved]

    @torch.no_grad()
    def on_train_end(self, state: TrainState) -> None:
        """With ``restore_best``, give every replica the weights of its own best validation epoch."""
        if self.restore_best and self._best_params:
            for p, best in zip(state.model.parameters(), self._best_params, strict=True):
                p.copy_(best)

    def _column(self, i: int) -> np.ndarray:
        return torch.stack([row[i] for row in self._rows]).cpu().numpy()

    @property
    def train_loss(self) -> np.ndarray:
        return self._column(0)

    @property
    def val_loss(self) -> np.ndarray:
        return self._column(1)

    @property
    def test(self) -> np.ndarray:
        return self._column(2)


@contextmanager
def cpu_threads(n: int | None, device: torch.device) -> Iterator[None]:
    """Limit torch's intra-op CPU threads to ``n`` while training on the CPU (``None``: leave as is).

    Tiny batched matrix products gain nothing from more threads, and on a
    busy machine extra threads mostly wait for each other.
    """
    if n is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ArmsResult:
    """What :func:`train_arms` returns.

    ``summary``: one row per arm with ``condition``, ``seed``, the arm's
    ``info`` columns, ``best_step`` (best validation step), ``test_es``
    (test error at that step: early stopping), ``test_final`` (after the
    last step, no early stopping), ``test_init`` (before training), and the
    main task's training loss ``train_es`` and ``train_final``. ``curves``:
    long table ``step, arm, condition, seed, train_loss, val_loss, test``
    (plus the ``info`` columns). ``model``: the trained
    :class:`ReplicatedMLP` (replica ``i`` is arm ``i``) with every replica's
    early-stopped weights (those of its best validation epoch) when
    ``restore_best``, else the weights after the last step.
    """

    summary: pd.DataFrame
    curves: pd.DataFrame
    model: ReplicatedMLP
    arms: list[Arm]

    @torch.no_grad()
    def predict(self, split: Literal["train", "val", "test"] = "test") -> np.ndarray:
        """The main-task output of every replica on its own ``split`` cases, ``(R, n)`` (logits for classification)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        device = self.model.trunk_weights[0].device
        x = _stack([getattr(a, split).x for a in self.arms], device)
        was_training = self.model.training
        self.model.eval()
        out = self.model(x)[MAIN][..., 0].float().cpu().numpy()
        self.model.train(was_training)
        return out

    def select(self, **columns: object) -> pd.DataFrame:
        """The summary rows whose columns equal the given values, e.g. ``select(experiment="main")``."""
        keep = np.ones(len(self.summary), dtype=bool)
        for name, value in columns.items():
            keep &= (self.summary[name] == value).to_numpy()
        return self.summary[keep]


def train_arms(
    arms: Sequence[Arm],
    hidden: Sequence[int] = (32, 32),
    steps: int = 600,
    lr: float = 3e-3,
    eval_every: int = 10,
    kind: Kind = "regression",
    device: torch.device | str | None = None,
    threads: int | None = 1,
    restore_best: bool = True,
) -> ArmsResult:
    """Train one replica per arm, full batch with Adam, in a single call of :func:`~mtl_course.train.fit`.

    Every arm must have the same task names, input width and split sizes.
    The model has two outputs: ``"main"`` (one unit) and ``"extra"`` (one
    unit per extra task: the extra tasks' linear heads side by side, trained
    with :func:`replica_column_mse_loss`). The weighting is ``"equal"``: the
    main loss plus the sum of the extra tasks' MSEs, as in Caruana's backprop
    nets, which sum the errors of all outputs. The seed of an arm sets its
    replica's initial weights, so arms of one seed start from the same network.
    ``eval_every`` steps make one epoch of :func:`~mtl_course.train.fit`
    (the same full batch repeated), after which :class:`ReplicaMonitor` measures.
    """
    if not arms:
        raise ValueError("train_arms needs at least one arm")
    if steps % eval_every:
        raise ValueError(f"steps ({steps}) must be a multiple of eval_every ({eval_every})")
    device = get_device() if device is None else torch.device(device)
    names = arms[0].train.tasks
    for arm in arms:
        if arm.train.tasks != names:
            raise ValueError(
                f"every arm needs the tasks {names}; arm {arm.condition!r}/{arm.seed} has {arm.train.tasks}"
            )
    main, extras = names[0], names[1:]
    outputs = {MAIN: 1, EXTRA: len(extras)} if extras else {MAIN: 1}
    d = arms[0].train.x.shape[1]
    model = ReplicatedMLP.mlp(d, hidden, outputs, [a.seed for a in arms]).to(device)
    tasks = [Task(MAIN, replica_mse_loss if kind == "regression" else replica_bce_loss)]
    x = _stack([a.train.x for a in arms], device)
    targets = {MAIN: _stack([a.train.targets[main] for a in arms], device)[..., None]}
    if extras:
        tasks.append(Task(EXTRA, replica_column_mse_loss))
        targets[EXTRA] = _stack([np.stack([a.train.targets[t] for t in extras], axis=1) for a in arms], device)
    monitor = ReplicaMonitor(arms, device, kind, eval_every, restore_best)
    # the fused Adam kernel updates all parameters in one call (the same update as the default loop)
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None, foreach=None if fused else True)
    with cpu_threads(threads, device):
        _, _, init_test = monitor.measure(model)
        fit(
            model,
            tasks,
            "equal",
            [(x, targets)] * eval_every,
            epochs=steps // eval_every,
            optimizer=optimizer,
            device=device,
            callbacks=[monitor],
            progress=False,
        )
    train_loss, val, test = monitor.train_loss, monitor.val_loss, monitor.test
    best = val.argmin(0)
    init_test = init_test.cpu().numpy()
    rows = []
    for i, arm in enumerate(arms):
        rows.append(
            {
                "condition": arm.condition,
                "seed": arm.seed,
                **arm.info,
                "best_step": monitor.steps[best[i]],
                "test_es": float(test[best[i], i]),
                "test_final": float(test[-1, i]),
                "test_init": float(init_test[i]),
                "train_es": float(train_loss[best[i], i]),
                "train_final": float(train_loss[-1, i]),
            }
        )
    n_epochs, n_arms = len(monitor.steps), len(arms)
    curves = pd.DataFrame(
        {
            "step": np.repeat(monitor.steps, n_arms),
            "arm": np.tile(np.arange(n_arms), n_epochs),
            "condition": np.tile([a.condition for a in arms], n_epochs),
            "seed": np.tile([a.seed for a in arms], n_epochs),
            **{k: np.tile([a.info.get(k) for a in arms], n_epochs) for k in arms[0].info},
            "train_loss": train_loss.reshape(-1),
            "val_loss": val.reshape(-1),
            "test": test.reshape(-1),
        }
    )
    return ArmsResult(pd.DataFrame(rows), curves, model, list(arms))


# -- summaries --------------------------------------------------------------------------------
def summarize(
    summary: pd.DataFrame,
    metric: str = "test_es",
    baseline: str = "STL",
    higher_is_better: bool = False,
    by: Sequence[str] = ("condition",),
) -> pd.DataFrame:
    """Mean ± sd of ``metric`` per condition, and the paired comparison with ``baseline`` over seeds.

    Columns: ``mean``, ``sd`` (sample standard deviation, ``ddof=1``), ``n``
    (seeds), ``wins`` (seeds on which the condition beats the baseline of
    the same seed), ``rel_change`` (mean over seeds of
    ``(value - baseline) / baseline``; negative is better for errors) and
    ``rel_sd`` (its sample standard deviation over seeds).

    >>> df = pd.DataFrame({"condition": ["STL", "MTL"] * 2, "seed": [0, 0, 1, 1], "test_es": [1.0, 0.8, 2.0, 2.2]})
    >>> row = summarize(df).loc["MTL"]
    >>> float(row["mean"]), int(row["wins"])
    (1.5, 1)
    """
    by = list(by)
    base = summary[summary["condition"] == baseline].set_index(["seed", *[b for b in by if b != "condition"]])[metric]
    out = []
    for key, group in summary.groupby(by, sort=False):
        values = group[metric].to_numpy(dtype=float)
        idx = group.set_index(["seed", *[b for b in by if b != "condition"]]).index
        reference = base.reindex(idx).to_numpy(dtype=float)
        better = values > reference if higher_is_better else values < reference
        relative = (values - reference) / reference
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(
            mean=float(values.mean()),
            sd=float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            n=len(values),
            wins=int(better.sum()),
            rel_change=float(relative.mean()),
            rel_sd=float(relative.std(ddof=1)) if len(values) > 1 else math.nan,
        )
        out.append(row)
    return pd.DataFrame(out).set_index(by)


def report(
    summary: pd.DataFrame,
    metric: str = "test_es",
    baseline: str = "STL",
    higher_is_better: bool = False,
    digits: int = 2,
    by: Sequence[str] = ("condition",),
) -> pd.DataFrame:
    """:func:`summarize` as a readable table: ``mean ± sd``, seeds beating the baseline, mean relative change.

    >>> df = pd.DataFrame({"condition": ["STL", "MTL"] * 2, "seed": [0, 0, 1, 1], "test_es": [1.0, 0.8, 2.0, 1.6]})
    >>> report(df).loc["MTL"].tolist()
    ['1.20 ± 0.57', '2/2', '-20%']
    """
    table = summarize(summary, metric, baseline, higher_is_better, by)
    out = pd.DataFrame(index=table.index)
    out[f"{metric} (mean ± sd)"] = [
        f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(table["mean"], table["sd"], strict=True)
    ]
    out[f"beats {baseline}"] = [f"{w}/{n}" for w, n in zip(table["wins"], table["n"], strict=True)]
    out[f"change vs {baseline}"] = [
        f"{100 * r:+.0f}%".replace("+0%", "0%").replace("-0%", "0%") for r in table["rel_change"]
    ]
    return out


def first_step_below(curves: pd.DataFrame, column: str, threshold: float) -> pd.Series:
    """Per arm, the first recorded step at which ``column`` falls below ``threshold`` (``inf`` if it never does).

    >>> c = pd.DataFrame({"arm": [0, 0, 0, 1, 1, 1], "step": [10, 20, 30] * 2, "loss": [0.5, 0.05, 0.0, 0.9, 0.8, 0.7]})
    >>> first_step_below(c, "loss", 0.1).tolist()
    [20.0, inf]
    """
    below = curves[curves[column] < threshold].groupby("arm")["step"].min()
    return below.reindex(sorted(curves["arm"].unique())).astype(float).fillna(math.inf)


def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """``"mean ± sd"`` with ``digits`` decimals (sample sd).

    >>> mean_sd([1.0, 2.0, 3.0])
    '2.00 ± 1.00'
    """
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.{digits}f} ± {sd:.{digits}f}"


# -- the experiments ----------------------------------------------------------------------------
def _splits(problem, seed: int, n_train: int, n_val: int, n_test: int) -> tuple[TaskData, TaskData, TaskData]:
    rng = np.random.default_rng(seed)
    return problem.sample(n_train, rng), problem.sample(n_val, rng), problem.sample(n_test, rng)


Condition = Callable[[TaskData, np.random.Generator], TaskData]

#: The standard conditions: single-task, multi-task, and Caruana's shuffle test.
CONDITIONS: dict[str, Condition] = {
    "STL": lambda data, rng: drop_extra_tasks(data),
    "MTL": lambda data, rng: data,
    "shuffled": shuffle_extra_tasks,
}


def make_arms(
    problem,
    seeds: Sequence[int],
    conditions: Mapping[str, Condition] = CONDITIONS,
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Arm]:
    """One arm per (seed, condition): every condition of a seed sees the same cases.

    ``problem.sample(n, rng)`` draws the training, validation and test cases
    from ``np.random.default_rng(seed)`` in that order; each condition then
    turns the training data into its training signals (the shuffle uses
    ``np.random.default_rng([seed, 7])``).
    """
    arms = []
    for seed in seeds:
        train, val, test = _splits(problem, seed, n_train, n_val, n_test)
        for name, condition in conditions.items():
            arms.append(
                Arm(name, seed, condition(train, np.random.default_rng([seed, 7])), val, test, dict(info or {}))
            )
    return arms


def amplification_arms(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Arm]:
    r"""Implicit data augmentation, on the main demo's inputs, main labels and noises.

    ``"MTL copies"``: the extra tasks are noisy copies :math:`F + \varepsilon_k`
    (:class:`~mtl_course.data.caruana.CaruanaProblem` with ``extra_slope=0``);
    ``"STL average"``: a single-task network trained on the average of the
    five labels, whose noise variance is :math:`\sigma^2/5`: what perfect
    amplification could achieve.
    """
    conditions = {"MTL copies": CONDITIONS["MTL"], "STL average": lambda data, rng: average_labels(data)}
    return make_arms(CaruanaProblem(extra_slope=0.0), seeds, conditions, n_train, n_val, n_test, info)


def random_label_arms(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Arm]:
    """Regularisation as a smaller capacity to fit noise: the main labels are replaced by pure noise.

    The main task's training and validation labels become independent
    :math:`N(0, 1)` draws (they carry no information about the inputs); the
    extra tasks are the main demo's. How well a network fits such labels
    in a fixed training budget measures its capacity to memorise noise (the
    idea behind the Rademacher complexity that Ruder cites). Conditions:
    STL, MTL and shuffled extra tasks.
    """

    def with_noise_labels(data: TaskData, seed: int, salt: int) -> TaskData:
        noise = np.random.default_rng([seed, salt]).standard_normal(data.n)
        return data.with_targets({**data.targets, data.main: noise})

    arms = []
    for arm in make_arms(CaruanaProblem(), seeds, CONDITIONS, n_train, n_val, n_test, info):
        arms.append(
            Arm(
                arm.condition,
                arm.seed,
                with_noise_labels(arm.train, arm.seed, 3),
                with_noise_labels(arm.val, arm.seed, 5),
                arm.test,
                arm.info,
            )
        )
    return arms


def caruana_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 600,
    lr: float = 3e-3,
    eval_every: int = 10,
    amplification: bool = True,
    random_labels: bool = True,
    device: torch.device | str | None = None,
) -> ArmsResult:
    r"""The main demo and its controls, trained together (column ``experiment``).

    * ``experiment="main"``: STL, MTL and shuffled extra tasks on
      :class:`~mtl_course.data.caruana.CaruanaProblem` (MLP 10-32-32, one
      linear head per task, full-batch Adam, early stopping on the main
      task's validation MSE), and with ``amplification`` the arms of
      :func:`amplification_arms` (same inputs, main labels and noises);
    * ``experiment="random labels"``: :func:`random_label_arms` when ``random_labels``.
    """
    arms = make_arms(CaruanaProblem(), seeds, CONDITIONS, n_train, n_val, n_test, {"experiment": "main"})
    if amplification:
        arms += amplification_arms(seeds, n_train, n_val, n_test, {"experiment": "main"})
    if random_labels:
        arms += random_label_arms(seeds, n_train, n_val, n_test, {"experiment": "random labels"})
    return train_arms(arms, steps=steps, lr=lr, eval_every=eval_every, device=device)


def input_weight_mass(model: ReplicatedMLP) -> np.ndarray:
    r"""Per replica, each input's share of the first layer's squared weights, ``(R, in_features)``, rows summing to 1.

    :math:`m_i = \lVert W^{(1)}_{i\cdot} \rVert^2 / \sum_j \lVert W^{(1)}_{j\cdot} \rVert^2`, where row
    :math:`i` of the first weight matrix holds input :math:`i`'s outgoing weights.
    """
    w = model.trunk_weights[0].detach().float().cpu()  # (R, in, hidden)
    mass = (w**2).sum(-1)
    return (mass / mass.sum(1, keepdim=True)).numpy()


def input_weight_share(model: ReplicatedMLP, relevant: Sequence[int]) -> np.ndarray:
    r"""Per replica, the share of first-layer weight mass on the ``relevant`` inputs: :math:`\sum_{i \in \text{rel}} m_i`.

    :math:`m_i` is :func:`input_weight_mass`. At initialisation the share is
    about ``len(relevant) / in_features``.

    >>> model = ReplicatedMLP.mlp(4, [3], {"main": 1}, seeds=[0])
    >>> with torch.no_grad():
    ...     _ = model.trunk_weights[0].copy_(torch.tensor([[[1.0] * 3, [0.0] * 3, [1.0] * 3, [2.0] * 3]]))
    >>> [round(float(v), 3) for v in input_weight_share(model, [0, 2])]  # (3 + 3) / (3 + 0 + 3 + 12)
    [0.333]
    """
    return input_weight_mass(model)[:, list(relevant)].sum(1)


def attention_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: AttentionProblem | None = None,
    device: torch.device | str | None = None,
) -> ArmsResult:
    """Attention focusing on :class:`~mtl_course.data.caruana.AttentionProblem`: STL vs MTL vs shuffled.

    The summary gains the column ``relevant_share``: :func:`input_weight_share`
    of the early-stopped network on the relevant inputs, and
    ``relevant_share_init`` at initialisation.
    """
    problem = AttentionProblem() if problem is None else problem
    arms = make_arms(problem, seeds, CONDITIONS, n_train, n_val, n_test)
    result = train_arms(arms, steps=steps, lr=lr, eval_every=eval_every, device=device)
    initial = ReplicatedMLP.mlp(
        problem.n_features, result.model.hidden, result.model.out_features, [a.seed for a in arms]
    )
    result.summary["relevant_share"] = input_weight_share(result.model, problem.relevant)
    result.summary["relevant_share_init"] = input_weight_share(initial, problem.relevant)
    return result


def eavesdropping_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 400,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: HintProblem | None = None,
    device: torch.device | str | None = None,
) -> ArmsResult:
    """Eavesdropping on :class:`~mtl_course.data.caruana.HintProblem`: STL vs MTL with the hint vs shuffled hint."""
    problem = HintProblem() if problem is None else problem
    arms = make_arms(problem, seeds, CONDITIONS, n_train, n_val, n_test)
    return train_arms(arms, steps=steps, lr=lr, eval_every=eval_every, device=device)


def linear_probe_error(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, ridge: float = 0.1
) -> float:
    r"""Test MSE of a ridge regression on frozen features: a new task's read-out from a learnt representation.

    The features are standardised with the training cases' mean and standard
    deviation (constant features, e.g. dead ReLU units, are set to 0), then

    :math:`\hat\beta = \arg\min_\beta \lVert y - \beta_0 - Z\beta\rVert^2 + \lambda n \lVert\beta\rVert^2`

    (intercept unpenalised) is solved in closed form; the function returns
    :math:`\frac{1}{m}\lVert y_{test} - \hat y_{test}\rVert^2`. On standardised
    features this is scikit-learn's ``Ridge(alpha=lambda * n)``. With
    targets of shape ``(n, T)`` every column is one task, fitted separately,
    and the mean test MSE over the tasks is returned.
    """
    mu_z, sd_z = z_train.mean(0), z_train.std(0)
    sd_z = np.where(sd_z > 1e-8, sd_z, np.inf)
    zs, zt = (z_train - mu_z) / sd_z, (z_test - mu_z) / sd_z
    mu_y = y_train.mean(0)
    n, p = zs.shape
    beta = np.linalg.solve(zs.T @ zs + ridge * n * np.eye(p), zs.T @ (y_train - mu_y))
    pred = zt @ beta + mu_y
    return float(np.mean((y_test - pred) ** 2))


def representation_experiment(
    seeds: Sequence[int],
    task_counts: Sequence[int] = (1, 2, 4, 8),
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    n_probe: int = 100,
    n_novel: int = 20,
    ridge: float = 0.1,
    steps: int = 400,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: EnvironmentProblem | None = None,
    device: torch.device | str | None = None,
) -> tuple[ArmsResult, pd.DataFrame]:
    r"""Representation bias in Baxter's environment: train on :math:`K` tasks, read out novel ones.

    Every arm sees the same ``n_train`` cases of a seed; the arm with
    :math:`K` tasks has the labels of the first :math:`K` training tasks of
    :class:`~mtl_course.data.caruana.EnvironmentProblem` (the others
    ``NaN``; :math:`K = 1` is STL). After training (every replica's
    early-stopped weights), ``n_novel`` new tasks of the same environment
    are each fitted with a ridge read-out (:func:`linear_probe_error`) on
    ``n_probe`` fresh labelled cases of the frozen shared layer and scored
    on clean test targets. Returns the training result (``test_es`` is the
    main task's early-stopped test MSE) and a table with the columns
    ``tasks``, ``seed``, ``novel_mse`` (mean over the novel tasks) and
    ``untrained_mse`` (the same read-out on the replica's initial, random
    shared layer). Every task has unit variance, so predicting the mean
    scores about 1.
    """
    problem = EnvironmentProblem() if problem is None else problem
    if max(task_counts) > problem.n_tasks or min(task_counts) < 1:
        raise ValueError(f"task_counts {list(task_counts)} must lie in 1..{problem.n_tasks} (the problem's n_tasks)")
    arms = []
    for seed in seeds:
        train, val, test = _splits(problem, seed, n_train, n_val, n_test)
        for k in task_counts:
            kept = set(problem.task_names[:k])
            targets = {t: (y if t in kept else np.full_like(y, np.nan)) for t, y in train.targets.items()}
            arms.append(Arm(f"K={k}", seed, train.with_targets(targets), val, test, {"tasks": k}))
    result = train_arms(arms, steps=steps, lr=lr, eval_every=eval_every, device=device)
    device_ = result.model.trunk_weights[0].device
    initial = ReplicatedMLP.mlp(
        problem.n_features, result.model.hidden, result.model.out_features, [a.seed for a in arms]
    )
    x_probe, y_probe, y_test = [], [], []
    for arm in arms:
        rng = np.random.default_rng([arm.seed, 11])
        xp = rng.uniform(-1.5, 1.5, size=(n_probe, problem.n_features))
        coef = problem.novel_tasks(n_novel, arm.seed)
        x_probe.append(xp)
        y_probe.append(environment_features(xp) @ coef.T + problem.noise * rng.standard_normal((n_probe, n_novel)))
        y_test.append(environment_features(arm.test.x) @ coef.T)
    xs = _stack([np.concatenate([xp, arm.test.x]) for xp, arm in zip(x_probe, arms, strict=True)], device_)
    with torch.no_grad():
        z_trained = result.model.encode(xs).cpu().numpy()
        z_initial = initial.to(device_).encode(xs).cpu().numpy()
    rows = []
    for i, arm in enumerate(arms):
        errors = {
            label: linear_probe_error(z[i, :n_probe], y_probe[i], z[i, n_probe:], y_test[i], ridge)
            for label, z in (("novel_mse", z_trained), ("untrained_mse", z_initial))
        }
        rows.append({"tasks": arm.info["tasks"], "seed": arm.seed, **errors})
    return result, pd.DataFrame(rows)


def breast_cancer_experiment(
    seeds: Sequence[int],
    n_train: int = 30,
    n_val: int = 30,
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 20,
    hidden: Sequence[int] = (32, 32),
    device: torch.device | str | None = None,
) -> ArmsResult:
    """The negative control: STL vs MTL vs shuffled on the Wisconsin breast cancer data (test AUC, higher is better).

    Per seed, ``n_train`` training and ``n_val`` validation cases are drawn
    at random, stratified by diagnosis; all other cases are the test set.
    Inputs: the 10 "mean" features; main task: malignant (binary
    cross-entropy); extra tasks: the 20 "error"/"worst" features (MSE),
    used only in training. Early stopping on the validation cross-entropy.
    """
    data = load_breast_cancer_tasks()
    malignant_share = float(np.mean(data.truth == 1.0))
    arms = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        train_rows: list[int] = []
        val_rows: list[int] = []
        for label, share in ((0.0, 1 - malignant_share), (1.0, malignant_share)):
            rows = rng.permutation(np.flatnonzero(data.truth == label))
            k_train, k_val = round(n_train * share), round(n_val * share)
            train_rows += rows[:k_train].tolist()
            val_rows += rows[k_train : k_train + k_val].tolist()
        rest = np.setdiff1d(np.arange(data.n), np.array(train_rows + val_rows))
        train, val, test = take(data, np.array(train_rows)), take(data, np.array(val_rows)), take(data, rest)
        for name, condition in CONDITIONS.items():
            arms.append(Arm(name, seed, condition(train, np.random.default_rng([seed, 7])), val, test))
    return train_arms(
        arms, hidden=hidden, steps=steps, lr=lr, eval_every=eval_every, kind="classification", device=device
    )

r"""Hard versus soft parameter sharing, swept over relatedness, data size and penalty (lecture A3).

Three ways to train two (or more) tasks with multilayer perceptrons:

* **STL** -- one independent network per task
  (:class:`~mtl_course.models.SingleTask`);
* **hard sharing** -- one trunk for all tasks, one head per task
  (:class:`~mtl_course.models.HardSharing`; Caruana, Machine Learning 28,
  1997, doi:10.1023/A:1007379606734);
* **soft sharing** -- one column per task plus the penalty
  :math:`\lambda\,\Omega` on the distance between the columns
  (:class:`~mtl_course.models.SoftSharing`; squared L2 after Duong, Cohn,
  Bird & Cook, ACL 2015, doi:10.3115/v1/P15-2139; trace norm after Yang &
  Hospedales, ICLR 2017 workshop, arXiv 1606.04038). The objective is

  .. math::

      \sum_t \mathcal L_t(\theta_t, \phi_t) + \lambda\, \Omega(\theta_1, \dots, \theta_T),
      \qquad \Omega_{\ell_2} = \sum_{i<j} \lVert \theta_i - \theta_j \rVert_2^2 ,

  with columns :math:`\theta_t` and (unpenalised) heads :math:`\phi_t`.
  :math:`\lambda = 0` is STL; as :math:`\lambda \to \infty` the columns are
  forced equal, which is hard sharing of the whole column.

:func:`column_distance` measures how far apart the columns are,
:func:`sharing_sweep` runs the lecture's experiment and returns DataFrames.

**Many models at once.** A sweep trains hundreds of tiny networks, and one
:func:`~mtl_course.train.fit` call per network would take minutes on a
laptop CPU, dominated by per-call overhead. :class:`ReplicatedColumns`
therefore stacks :math:`R` independent models -- each with its own columns,
heads, penalty strength :math:`\lambda_r`, data and seed -- and evaluates
them with batched matrix products; :func:`sharing_sweep` trains all of them
in one :func:`~mtl_course.train.fit` call (full batch, Adam, equal
weighting). No parameter is shared between replicas, the loss is the *sum*
over replicas of each replica's own loss and Adam acts element-wise, so
each replica follows the trajectory it would follow alone:
:meth:`ReplicatedColumns.replica` returns replica :math:`r` as a plain
:class:`~mtl_course.models.SoftSharing` or
:class:`~mtl_course.models.HardSharing`, and a test checks that training it
alone with ``fit`` gives the same weights. A hard-sharing replica runs
task 1's column for every task (the other columns receive no gradient and
are ignored).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtl_course.data.relatedness import RegressionSet, RelatedTasks, make_related_tasks
from mtl_course.device import get_device
from mtl_course.experiments.mechanisms import cpu_threads, replica_mse_loss
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.soft_sharing import PENALTIES, SoftSharing, squared_l2_penalty, stacked_parameters
from mtl_course.train import Callback, Task, TrainState, fit

HARD = "hard"
SOFT = "soft"
STL = "stl"


# -- distance between the task networks -------------------------------------------------
def column_distance(columns: Mapping[str, nn.Module] | SoftSharing, relative: bool = True) -> float:
    r"""How far apart the task columns are.

    Absolute: :math:`\sqrt{\Omega_{\ell_2}} = \big(\sum_{i<j}\lVert\theta_i - \theta_j\rVert_2^2\big)^{1/2}`
    over all column parameters (:func:`~mtl_course.models.squared_l2_penalty`).
    Relative (default): divided by :math:`\big((T-1)\sum_t \lVert\theta_t\rVert_2^2\big)^{1/2}`,
    which is 0 for identical columns and close to 1 for independently
    initialised ones (for :math:`T = 2`: :math:`\lVert\theta_1-\theta_2\rVert / \sqrt{\lVert\theta_1\rVert^2 + \lVert\theta_2\rVert^2}`).

    >>> cols = {"a": nn.Linear(1, 1, bias=False), "b": nn.Linear(1, 1, bias=False)}
    >>> with torch.no_grad():
    ...     _ = cols["a"].weight.fill_(3.0), cols["b"].weight.fill_(4.0)
    >>> column_distance(cols, relative=False), column_distance(cols)  # |3 - 4|, 1 / 5
    (1.0, 0.2)
    """
    if isinstance(columns, SoftSharing):
        columns = columns.columns
    with torch.no_grad():
        absolute = float(squared_l2_penalty(columns)) ** 0.5
        if not relative:
            return absolute
        stacked = stacked_parameters(columns)
        T = next(iter(stacked.values())).shape[0]
        norm2 = sum(float(w.detach().cpu().double().pow(2).sum()) for w in stacked.values())
    return absolute / math.sqrt((T - 1) * norm2) if norm2 > 0 else 0.0


# -- the replicated model ------------------------------------------------------------------
class ReplicatedColumns(MultiTaskModel):
    r""":math:`R` independent soft-sharing (or STL, or hard-sharing) MLPs evaluated with batched matrix products.

    Replica :math:`r` has, per task :math:`t`, a column of ``Linear -> ReLU``
    layers and a linear head:

    .. math::

        h^{(0)}_{r,t} = x_r, \quad
        h^{(l)}_{r,t} = \mathrm{ReLU}\big(h^{(l-1)}_{r,t} W^{(l)}_{r,t} + b^{(l)}_{r,t}\big), \quad
        \hat y_{r,t} = h^{(L)}_{r,t} V_{r,t} + c_{r,t},

    and contributes :math:`\lambda_r\,\Omega(\theta_{r,1}, \dots, \theta_{r,T})`
    to :meth:`penalty`. Hard-sharing replicas (``hard[r]``) use the first
    task's column for every task. Inputs are ``(R, n, d)``, or
    ``(R, T, n, d)`` when every task has its own cases (then a column
    computes only its own task's cases, half the work for two tasks);
    outputs are ``{task: (R, n, out)}``. Build it with :meth:`from_seeds` or from
    :class:`~mtl_course.models.SoftSharing` models (all of one size).

    >>> model = ReplicatedColumns.from_seeds(8, [16, 4], {"a": 1, "b": 1}, seeds=[0, 0, 1], lams=[0.0, 1.0, 0.1],
    ...                                      hard=[False, False, True])
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(3, 5, 8)).items()}
    {'a': (3, 5, 1), 'b': (3, 5, 1)}
    >>> [round(d, 2) for d in model.distances().tolist()]  # independent columns, tied columns (hard)
    [0.96, 0.96, 0.0]
    """

    def __init__(
        self,
        models: Sequence[SoftSharing],
        lams: Sequence[float],
        hard: Sequence[bool] | None = None,
        penalty: str = "l2",
    ) -> None:
        if not models:
            raise ValueError("ReplicatedColumns needs at least one SoftSharing.mlp model to stack")
        R = len(models)
        hard = [False] * R if hard is None else [bool(h) for h in hard]
        if len(lams) != R or len(hard) != R:
            raise ValueError(
                f"need one lam and one hard flag per model: {R} models, {len(lams)} lams, {len(hard)} flags"
            )
        if any(not math.isfinite(lam) or lam < 0 for lam in lams):
            raise ValueError(f"penalty strengths must be finite and >= 0, got {list(lams)}")
        if penalty not in PENALTIES:
            raise ValueError(f"unknown soft-sharing penalty {penalty!r}; choose one of {list(PENALTIES)}")
        first = models[0]
        super().__init__(first.tasks)
        self.penalty_kind = penalty
        self.in_features = first.columns[self.tasks[0]].in_features
        self.hidden = list(first.columns[self.tasks[0]].out_channels)
        self.out_features = {t: first.heads[t].layers[-1].out_features for t in self.tasks}
        for m in models:
            if (
                not isinstance(m, SoftSharing)
                or m.tasks != self.tasks
                or list(m.columns[self.tasks[0]].out_channels) != self.hidden
                or any(len(m.heads[t].layers) != 1 for t in self.tasks)
            ):
                raise ValueError("every stacked model must be SoftSharing.mlp with the same sizes and tasks")

        def layers(m: SoftSharing, t: str) -> list[nn.Linear]:
            return [stage[0] for stage in m.columns[t].stages]

        L = len(self.hidden)
        self.weights = nn.ParameterList(
            [
                nn.Parameter(
                    torch.stack([torch.stack([layers(m, t)[i].weight.detach().T for t in self.tasks]) for m in models])
                )
                for i in range(L)
            ]
        )
        self.biases = nn.ParameterList(
            [
                nn.Parameter(
                    torch.stack(
                        [torch.stack([layers(m, t)[i].bias.detach()[None] for t in self.tasks]) for m in models]
                    )
                )
                for i in range(L)
            ]
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
        self.register_buffer(
            "lams", torch.tensor([0.0 if h else float(lam) for lam, h in zip(lams, hard, strict=True)])
        )
        self.register_buffer("hard", torch.tensor(hard, dtype=torch.bool))

    @classmethod
    def from_seeds(
        cls,
        in_features: int,
        hidden: Sequence[int],
        tasks: Mapping[str, int],
        seeds: Sequence[int],
        lams: Sequence[float],
        hard: Sequence[bool] | None = None,
        penalty: str = "l2",
    ) -> ReplicatedColumns:
        """Replica ``r`` starts as ``SoftSharing.mlp(in_features, hidden, tasks)`` after ``torch.manual_seed(seeds[r])``.

        Replicas with the same seed start from the same weights (a hard
        replica from the same first column and heads). The global torch
        random state is left untouched.
        """
        cache: dict[int, SoftSharing] = {}
        for seed in seeds:
            if int(seed) not in cache:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    cache[int(seed)] = SoftSharing.mlp(in_features, hidden, tasks, penalty=penalty)
        return cls([cache[int(s)] for s in seeds], lams, hard, penalty)

    @property
    def replicas(self) -> int:
        return self.weights[0].shape[0]

    def _effective(self, p: torch.Tensor) -> torch.Tensor:
        """Column parameters as used: a hard replica's columns are all its first column."""
        mask = self.hard.view(-1, *([1] * (p.ndim - 1)))
        return torch.where(mask, p[:, :1].expand_as(p), p)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Every column's output, ``(R, T, n, hidden[-1])``.

        ``x`` is ``(R, n, d)`` (every column sees the same cases) or
        ``(R, T, n, d)`` (column ``t`` sees its task's own cases).
        """
        R, T = self.replicas, len(self.tasks)
        ok = (x.ndim == 3 and x.shape[0] == R) or (x.ndim == 4 and x.shape[:2] == (R, T))
        if not ok or x.shape[-1] != self.in_features:
            raise ValueError(
                f"ReplicatedColumns expects inputs of shape (R={R}, n, {self.in_features}) or "
                f"(R={R}, T={T}, n, {self.in_features}), got {tuple(x.shape)}"
            )
        h = x.unsqueeze(1) if x.ndim == 3 else x
        for w, b in zip(self.weights, self.biases, strict=True):
            h = torch.relu(torch.matmul(h, self._effective(w)) + self._effective(b))
        return h

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{task: (R, n, out)}``; with ``(R, T, n, d)`` inputs task ``t``'s outputs are on its own cases ``x[:, t]``."""
        h = self.features(x)
        return {t: torch.baddbmm(self.head_biases[t], h[:, i], self.head_weights[t]) for i, t in enumerate(self.tasks)}

    def penalty_per_replica(self) -> torch.Tensor:
        r""":math:`\Omega_r` of every replica, ``(R,)``: the same sums as :meth:`SoftSharing.penalty`."""
        total = torch.zeros((), device=self.lams.device)
        for p in [*self.weights, *self.biases]:
            flat = p.reshape(p.shape[0], p.shape[1], -1)
            if self.penalty_kind == "l2":
                T = flat.shape[1]
                for i in range(T):
                    for j in range(i + 1, T):
                        total = total + (flat[:, i] - flat[:, j]).pow(2).sum(-1)
            else:
                total = total + torch.linalg.matrix_norm(flat, ord="nuc")
        return total

    def penalty(self) -> torch.Tensor:
        r""":math:`\sum_r \lambda_r \Omega_r` (hard replicas have :math:`\lambda_r = 0`); ``fit(..., penalty=1.0)``."""
        return (self.lams * self.penalty_per_replica()).sum()

    @torch.no_grad()
    def distances(self, relative: bool = True) -> torch.Tensor:
        """:func:`column_distance` of every replica's effective columns, ``(R,)`` (0 for hard replicas)."""
        device = self.lams.device
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        num = torch.zeros(self.replicas, dtype=dtype, device=device)
        den = torch.zeros_like(num)
        for p in [*self.weights, *self.biases]:
            flat = self._effective(p).reshape(p.shape[0], p.shape[1], -1).to(dtype)
            T = flat.shape[1]
            for i in range(T):
                for j in range(i + 1, T):
                    num += (flat[:, i] - flat[:, j]).pow(2).sum(-1)
            den += flat.pow(2).sum((1, 2))
        if not relative:
            return num.sqrt()
        return torch.where(den > 0, (num / ((T - 1) * den.clamp_min(1e-300))).sqrt(), torch.zeros_like(num))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The stacked column tensors: each holds every task's column (of every replica), so it cannot be split per task."""
        yield from self.weights
        yield from self.biases

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Head ``task`` of every replica."""
        self.check_task(task)
        yield self.head_weights[task]
        yield self.head_biases[task]

    def replica(self, r: int) -> SoftSharing | HardSharing:
        """Replica ``r`` as a plain model with copies of its weights: ``HardSharing`` for a hard replica, else ``SoftSharing``."""
        if not 0 <= r < self.replicas:
            raise IndexError(f"replica index must be in 0..{self.replicas - 1}, got {r}")
        soft = SoftSharing.mlp(self.in_features, self.hidden, self.out_features, penalty=self.penalty_kind)
        with torch.no_grad():
            for ti, t in enumerate(self.tasks):
                for stage, w, b in zip(soft.columns[t].stages, self.weights, self.biases, strict=True):
                    stage[0].weight.copy_(w[r, ti].T)
                    stage[0].bias.copy_(b[r, ti, 0])
                soft.heads[t].layers[-1].weight.copy_(self.head_weights[t][r].T)
                soft.heads[t].layers[-1].bias.copy_(self.head_biases[t][r, 0])
        device = self.weights[0].device
        if bool(self.hard[r]):
            return HardSharing(soft.columns[self.tasks[0]], dict(soft.heads)).to(device)
        return soft.to(device)

    def extra_repr(self) -> str:
        return (
            f"replicas={self.replicas}, in_features={self.in_features}, hidden={self.hidden}, tasks={self.tasks}, "
            f"penalty={self.penalty_kind!r}, hard replicas={int(self.hard.sum())}"
        )


# -- the sweep ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One replica of the sweep: a sharing method on one data set (relatedness, size, seed)."""

    method: str  # "stl", "soft" or "hard"
    lam: float  # 0 for STL; NaN for hard sharing
    rho: float
    n_train: int
    seed: int

    @property
    def label(self) -> str:
        """``"STL"``, ``"hard"`` or ``"soft λ=…"``."""
        if self.method == STL:
            return "STL"
        if self.method == HARD:
            return "hard"
        return f"soft λ={self.lam:g}"


def method_label(method: str, lam: float) -> str:
    """The display name of a method: ``method_label("soft", 0.01) == "soft λ=0.01"``.

    >>> method_label("stl", 0.0), method_label("hard", float("nan")), method_label("soft", 0.01)
    ('STL', 'hard', 'soft λ=0.01')
    """
    return Arm(method, lam, 0.0, 1, 0).label


class SweepMonitor(Callback):
    """After every epoch of ``fit``: each replica's train, validation and test MSE per task, and its column distance.

    ``values[name]`` after training is an array ``(epochs + 1, R, T)`` for
    ``train``, ``val`` (noisy labels), ``test`` (against the noise-free
    truth), and ``(epochs + 1, R)`` for ``distance``; row 0 is before training.
    """

    def __init__(
        self, model: ReplicatedColumns, data: Mapping[str, tuple[torch.Tensor, torch.Tensor]], steps_per_epoch: int
    ) -> None:
        self.data = data
        self.steps_per_epoch = steps_per_epoch
        self.steps: list[int] = []
        self._values: dict[str, list[torch.Tensor]] = {name: [] for name in [*data, "distance"]}
        self.measure(model, step=0)

    @torch.no_grad()
    def measure(self, model: ReplicatedColumns, step: int) -> None:
        was_training = model.training
        model.eval()
        for name, (x, y) in self.data.items():
            out = model(x)
            pred = torch.stack([out[t][..., 0] for t in model.tasks], dim=-1)  # (R, n, T)
            self._values[name].append(((pred - y) ** 2).mean(1))
        self._values["distance"].append(model.distances())
        model.train(was_training)
        self.steps.append(step)

    def on_epoch_end(self, state: TrainState) -> None:
        self.measure(state.model, state.epoch * self.steps_per_epoch)  # type: ignore[arg-type]

    @property
    def values(self) -> dict[str, np.ndarray]:
        return {name: torch.stack(v).cpu().numpy() for name, v in self._values.items()}


@dataclass
class SweepResult:
    """What :func:`sharing_sweep` returns.

    ``summary``: one row per arm (``arm``, ``method``, ``label``, ``lam``, ``rho``,
    ``n_train``, ``seed``, ``parameters`` of one such model, ``best_step``
    (lowest summed validation MSE), per task ``val_<t>`` (validation MSE
    against the noisy labels) and ``test_<t>`` (test MSE against the
    noise-free truth), both at ``best_step`` (early stopping), and
    ``final_<t>`` (test MSE after the last step); ``val``, ``test`` and
    ``final`` (means over tasks); ``distance`` (relative column distance at
    ``best_step``) and ``final_distance``. ``curves``: a long table ``step,
    arm, method, label, lam, rho, n_train, seed, task, train, val, test``
    (MSEs) plus ``distance``. ``models``: per training-set size, the trained
    :class:`ReplicatedColumns` (weights after the last step); its replica
    ``i`` is ``arms[n_train][i]``.
    """

    summary: pd.DataFrame
    curves: pd.DataFrame
    models: dict[int, ReplicatedColumns]
    arms: dict[int, list[Arm]]


def _task_cases(data: RegressionSet, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each task's labelled cases: inputs ``(T, n, d)`` and targets ``(n, T)`` (column ``t`` belongs to ``x[t]``)."""
    rows = [~np.isnan(data.targets[t]) for t in names]
    counts = {t: int(r.sum()) for t, r in zip(names, rows, strict=True)}
    if len(set(counts.values())) != 1:
        raise ValueError(f"every task needs the same number of labelled cases, got {counts}")
    x = np.stack([data.x[r] for r in rows])
    y = np.stack([data.targets[t][r] for t, r in zip(names, rows, strict=True)], -1)
    return x, y


def _parameters(hidden: Sequence[int], d: int, tasks: Mapping[str, int], method: str) -> int:
    with torch.random.fork_rng(devices=[]):
        if method == HARD:
            return HardSharing.mlp(d, hidden, tasks).parameter_counts()["total"]
        return SoftSharing.mlp(d, hidden, tasks).parameter_counts()["total"]


def sharing_sweep(
    rhos: Sequence[float],
    n_train: int | Sequence[int],
    lams: Sequence[float],
    seeds: Sequence[int],
    *,
    hard: bool = True,
    hidden: Sequence[int] = (16, 8),
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 10,
    n_test: int = 300,
    penalty: str = "l2",
    data_kwargs: Mapping[str, object] | None = None,
    device: torch.device | str | None = None,
    threads: int | None = 1,
) -> SweepResult:
    r"""Train STL, soft sharing and hard sharing on related tasks; one replica per (method, :math:`\rho`, :math:`n`, seed).

    ``lams`` are the penalty strengths (``0`` is STL); ``hard=True`` adds a
    hard-sharing arm. Data come from
    :func:`~mtl_course.data.relatedness.make_related_tasks` (``data_kwargs``
    go there; validation sets have ``n_train`` cases per task, test sets
    ``n_test`` shared cases). Every arm of one seed
    starts from the same weights; every arm of one (seed, :math:`\rho`, :math:`n`)
    sees the same data. Full-batch Adam (``lr``) for ``steps`` steps, with
    equal task weights; measurements every ``eval_every`` steps. One
    :func:`~mtl_course.train.fit` call per training-set size.
    """
    if steps % eval_every:
        raise ValueError(f"steps ({steps}) must be a multiple of eval_every ({eval_every})")
    if not rhos or not lams and not hard or not seeds:
        raise ValueError("need at least one rho, one seed and one method (a lam or hard=True)")
    sizes = [n_train] if isinstance(n_train, (int, np.integer)) else list(n_train)
    device = get_device() if device is None else torch.device(device)
    data_kwargs = dict(data_kwargs or {})
    methods = [(STL if lam == 0 else SOFT, float(lam)) for lam in lams] + ([(HARD, math.nan)] if hard else [])
    rows: list[dict] = []
    curves: list[pd.DataFrame] = []
    models: dict[int, ReplicatedColumns] = {}
    arms_by_size: dict[int, list[Arm]] = {}
    offset = 0
    for n in sizes:
        arms: list[Arm] = []
        datasets: list[RelatedTasks] = []
        for seed in seeds:
            for rho in rhos:
                data = make_related_tasks(int(n), float(rho), int(seed), n_test=n_test, **data_kwargs)  # type: ignore[arg-type]
                for method, lam in methods:
                    arms.append(Arm(method, lam, float(rho), int(n), int(seed)))
                    datasets.append(data)
        names = datasets[0].tasks
        d = datasets[0].train.x.shape[1]
        outputs = dict.fromkeys(names, 1)

        def stack(split: str) -> tuple[torch.Tensor, torch.Tensor]:
            cases = [_task_cases(getattr(ds, split), names) for ds in datasets]
            x = torch.as_tensor(np.stack([c[0] for c in cases]), dtype=torch.float32, device=device)
            y = torch.as_tensor(np.stack([c[1] for c in cases]), dtype=torch.float32, device=device)
            return x, y

        model = ReplicatedColumns.from_seeds(
            d,
            hidden,
            outputs,
            [a.seed for a in arms],
            [0.0 if a.method == HARD else a.lam for a in arms],
            [a.method == HARD for a in arms],
            penalty,
        ).to(device)
        x_train, y_train = stack("train")
        x_test = torch.as_tensor(np.stack([ds.test.x for ds in datasets]), dtype=torch.float32, device=device)
        y_test = torch.as_tensor(
            np.stack([np.stack([ds.test.truth[t] for t in names], -1) for ds in datasets]),
            dtype=torch.float32,
            device=device,
        )
        monitor = SweepMonitor(
            model, {"train": (x_train, y_train), "val": stack("val"), "test": (x_test, y_test)}, eval_every
        )
        tasks = [Task(t, replica_mse_loss) for t in names]
        batch = (x_train, {t: y_train[..., i : i + 1] for i, t in enumerate(names)})
        with cpu_threads(threads, device):
            fit(
                model,
                tasks,
                "equal",
                [batch] * eval_every,
                epochs=steps // eval_every,
                lr=lr,
                device=device,
                penalty=1.0,
                callbacks=[monitor],
                progress=False,
            )
        values = monitor.values
        best = values["val"].sum(-1).argmin(0)  # (R,)
        params = {m: _parameters(hidden, d, outputs, m) for m in (STL, SOFT, HARD)}
        for r, arm in enumerate(arms):
            row = {
                "arm": offset + r,
                "method": arm.method,
                "label": arm.label,
                "lam": arm.lam,
                "rho": arm.rho,
                "n_train": arm.n_train,
                "seed": arm.seed,
                "parameters": params[arm.method],
                "best_step": monitor.steps[best[r]],
            }
            for i, t in enumerate(names):
                row[f"val_{t}"] = float(values["val"][best[r], r, i])
                row[f"test_{t}"] = float(values["test"][best[r], r, i])
                row[f"final_{t}"] = float(values["test"][-1, r, i])
            row["val"] = float(values["val"][best[r], r].mean())
            row["test"] = float(values["test"][best[r], r].mean())
            row["final"] = float(values["test"][-1, r].mean())
            row["distance"] = float(values["distance"][best[r], r])
            row["final_distance"] = float(values["distance"][-1, r])
            rows.append(row)
        E, R, T = values["train"].shape
        curves.append(
            pd.DataFrame(
                {
                    "step": np.repeat(monitor.steps, R * T),
                    "arm": np.tile(np.repeat(np.arange(offset, offset + R), T), E),
                    "method": np.tile(np.repeat([a.method for a in arms], T), E),
                    "label": np.tile(np.repeat([a.label for a in arms], T), E),
                    "lam": np.tile(np.repeat([a.lam for a in arms], T), E),
                    "rho": np.tile(np.repeat([a.rho for a in arms], T), E),
                    "n_train": np.tile(np.repeat([a.n_train for a in arms], T), E),
                    "seed": np.tile(np.repeat([a.seed for a in arms], T), E),
                    "task": np.tile(list(names), E * R),
                    "train": values["train"].reshape(-1),
                    "val": values["val"].reshape(-1),
                    "test": values["test"].reshape(-1),
                    "distance": np.repeat(values["distance"].reshape(-1), T),
                }
            )
        )
        offset += R
        models[int(n)] = model
        arms_by_size[int(n)] = arms
    return SweepResult(pd.DataFrame(rows), pd.concat(curves, ignore_index=True), models, arms_by_size)

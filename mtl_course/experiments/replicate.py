r"""Many independent copies of a small multi-layer perceptron, evaluated at once with batched matrix products.

A lecture has about a minute of CPU time, and its comparisons train hundreds
of tiny networks (conditions × seeds × settings). One
:func:`~mtl_course.train.fit` call per network would spend that minute on
per-call overhead, not arithmetic. The models here stack :math:`R`
ordinary networks weight by weight -- replica :math:`r`'s weight matrices
are slices ``[r]`` of one tensor -- and evaluate them with batched matrix
products (``torch.baddbmm``):

* :class:`ReplicatedMLP` -- :math:`R` copies of ``HardSharing.mlp``
  (lecture A2);
* :class:`ReplicatedColumns` -- :math:`R` copies of ``SoftSharing.mlp``,
  each with its own penalty strength :math:`\lambda_r`, some of them
  hard-sharing replicas (lecture A3).

The training objective is the *sum* over replicas of each replica's own loss,

.. math::

    \mathcal L(\theta_1, \dots, \theta_R) = \sum_r \big[\mathcal L_r(\theta_r) + \lambda_r \Omega(\theta_r)\big],

so :math:`\partial \mathcal L / \partial \theta_r` is replica :math:`r`'s
own gradient; no parameter is shared between replicas and Adam acts
element-wise, so every replica follows the trajectory it would follow alone
(``replica(r)`` returns it as the ordinary model; the tests train both and
compare). The replica losses (:func:`replica_mse_loss`,
:func:`replica_column_mse_loss`, :func:`replica_bce_loss`) return one value
per replica, with the label convention of :mod:`mtl_course.losses`; the
tests check them against a loop of the course's own losses over the replicas.

Why hand-written? ``torch.func.stack_module_state`` + ``vmap(functional_call)``
replicates *any* model in a few lines, and would be the better teaching
code, but on the lectures' sizes it trained at 0.5--0.7 times the speed of
these batched products on one CPU thread (``benchmarks/bench_replicate.py``),
which would push lectures A2 and A3 past their present run times. Mapping
the course's losses over the replicas with ``vmap`` instead of
:func:`replica_mean` costs about 0.6 ms per call on lecture A2's sizes,
more than a quarter of a training step, for the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.data.tasks import MultiTaskData
from mtl_course.losses import expand_mask
from mtl_course.models.base import MultiTaskModel, check_task_outputs
from mtl_course.models.blocks import MLPTrunk
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.soft_sharing import PENALTIES, SoftSharing
from mtl_course.train import LossFn

Batch = tuple[torch.Tensor, dict[str, torch.Tensor]]


# -- the replica losses ------------------------------------------------------------------------------
def _labelled(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The labelled items, as :mod:`mtl_course.losses` defines them: not ``NaN`` and not masked out."""
    labelled = ~torch.isnan(target)
    return labelled if mask is None else labelled & expand_mask(mask.bool(), target.shape)


def replica_mean(values: torch.Tensor, labelled: torch.Tensor, columns: bool = False) -> torch.Tensor:
    r"""Per replica (dim 0), the mean of ``values`` over its labelled items, ``(R,)``; 0 for a replica without labels.

    With ``columns`` the last dimension holds :math:`K` tasks: each column is
    averaged over its own labelled items and the :math:`K` means are summed.
    """
    dims = tuple(range(1, values.ndim - 1 if columns else values.ndim))
    zeros = torch.zeros((), dtype=values.dtype, device=values.device)
    means = torch.where(labelled, values, zeros).sum(dims) / labelled.sum(dims).clamp_min(1)
    return means.sum(-1) if columns else means


def replica_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Each replica's :func:`~mtl_course.losses.mse_loss`, ``(R,)``.

    :math:`\frac{1}{n_r}\sum_i (\hat y_{ri} - y_{ri})^2` over the labelled items of replica :math:`r`.

    ``pred`` and ``target`` are ``(R, n, ...)``, ``mask`` ``(R, n)``; ``NaN``
    targets (or a false mask) are missing and contribute neither value nor
    gradient, so a replica without labels scores 0. The engine trains on the
    *sum* over replicas, which gives every replica the gradient of its own loss.

    >>> pred = torch.zeros(2, 3, 1)
    >>> target = torch.tensor([[1.0, 2.0, 3.0], [float("nan")] * 3]).unsqueeze(-1)
    >>> replica_mse_loss(pred, target)  # (1 + 4 + 9) / 3 and 0
    tensor([4.6667, 0.0000])
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, pred.detach())
    return replica_mean((pred - safe) ** 2, labelled)


def replica_column_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""For ``(R, n, K)`` outputs of :math:`K` regression tasks stored as one head: :math:`\sum_k \mathrm{MSE}_{rk}`.

    Each column :math:`k` is one task; its mean squared error is averaged
    over its labelled cases, then the columns are summed. This equals giving
    each of the :math:`K` tasks its own linear head and summing their losses
    (equal weighting), because a :math:`K`-output linear layer *is*
    :math:`K` one-output linear layers side by side.

    >>> pred = torch.zeros(1, 2, 2)
    >>> target = torch.tensor([[[1.0, 3.0], [float("nan"), 5.0]]])
    >>> replica_column_mse_loss(pred, target)  # 1 + (9 + 25) / 2
    tensor([18.])
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, pred.detach())
    return replica_mean((pred - safe) ** 2, labelled, columns=True)


def replica_bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Each replica's :func:`~mtl_course.losses.binary_cross_entropy` on logits, ``(R,)``; ``NaN`` targets are missing.

    :math:`\frac{1}{n_r}\sum_i [\log(1 + e^{z_{ri}}) - y_{ri} z_{ri}]`.

    >>> replica_bce_loss(torch.zeros(2, 4, 1), torch.ones(2, 4, 1))  # log 2 each
    tensor([0.6931, 0.6931])
    """
    labelled = _labelled(target, mask)
    safe = torch.where(labelled, target, torch.zeros_like(target))
    return replica_mean(F.binary_cross_entropy_with_logits(logits, safe, reduction="none"), labelled)


def summed(loss: LossFn) -> LossFn:
    """A replica loss summed over the replicas: the training objective of a stack (see the module docstring)."""

    def total(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return loss(pred, target, mask).sum()

    total.__name__ = total.__qualname__ = f"summed({getattr(loss, '__name__', 'loss')})"
    return total


# -- stacking ------------------------------------------------------------------------------------
def _linears(trunk: MLPTrunk) -> list[nn.Linear]:
    return [stage[0] for stage in trunk.stages]


def _stacked(tensors: Sequence[torch.Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]))


def _column(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A target as a float tensor with a trailing output dimension: ``(n,)`` becomes ``(n, 1)``."""
    tensor = torch.as_tensor(array, dtype=torch.float32)
    return tensor[:, None] if tensor.ndim == 1 else tensor


def _seeded(build, seeds: Sequence[int]) -> list:
    """``build()`` after ``torch.manual_seed(seed)`` for every distinct seed; the global random state is kept."""
    cache = {}
    for seed in seeds:
        if int(seed) not in cache:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                cache[int(seed)] = build()
    return [cache[int(s)] for s in seeds]


class ReplicatedModel(MultiTaskModel):
    r"""The base of the replicated models: :math:`R` linear heads per task, stacked, and the replicas' data.

    Head :math:`t` of replica :math:`r` is :math:`\hat y_{r,t} = h_r V_{r,t} + c_{r,t}`
    with ``head_weights[t]`` ``(R, hidden, out)`` and ``head_biases[t]``
    ``(R, 1, out)``. Every parameter has the replica index as its first
    dimension (the engine restores each replica's own best weights with it).
    """

    def __init__(self, tasks: Sequence[str], heads: Sequence[Mapping[str, nn.Module]]) -> None:
        super().__init__(list(tasks))
        for h in heads:
            if any(len(h[t].layers) != 1 for t in self.tasks):
                raise ValueError("every stacked model needs linear heads (no head_hidden)")
        self.out_features = {t: heads[0][t].layers[-1].out_features for t in self.tasks}
        self.head_weights = nn.ParameterDict({t: _stacked([h[t].layers[-1].weight.T for h in heads]) for t in tasks})
        self.head_biases = nn.ParameterDict({t: _stacked([h[t].layers[-1].bias[None] for h in heads]) for t in tasks})

    @property
    def replicas(self) -> int:
        return self.head_weights[self.tasks[0]].shape[0]

    def decode_task(self, task: str, h: torch.Tensor) -> torch.Tensor:
        """Head ``task`` of every replica on the features ``h`` ``(R, n, hidden)``."""
        return torch.baddbmm(self.head_biases[task], h, self.head_weights[task])

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Head ``task`` of every replica."""
        self.check_task(task)
        yield self.head_weights[task]
        yield self.head_biases[task]

    def _copy_heads(self, heads: Mapping[str, nn.Module], r: int) -> None:
        for t in self.tasks:
            heads[t].layers[-1].weight.copy_(self.head_weights[t][r].T)
            heads[t].layers[-1].bias.copy_(self.head_biases[t][r, 0])

    def _check_replica(self, r: int) -> None:
        if not 0 <= r < self.replicas:
            raise IndexError(f"replica index must be in 0..{self.replicas - 1}, got {r}")

    def stack(self, data: Sequence[MultiTaskData], device: torch.device | str | None = None) -> Batch:
        """One batch of every replica's data: inputs ``(R, n, d)`` and targets ``{task: (R, n, out)}``.

        Every replica needs the same number of cases. A task missing from a
        replica's targets is left out of the batch.
        """
        if len(data) != self.replicas:
            raise ValueError(f"need one data set per replica: {self.replicas} replicas, {len(data)} sets")
        sizes = {d.n for d in data}
        if len(sizes) != 1:
            raise ValueError(f"every replica needs the same number of cases, got {sorted(sizes)}")
        x = torch.stack([torch.as_tensor(d.x, dtype=torch.float32) for d in data]).to(device)
        tasks = [t for t in self.tasks if all(t in d.targets for d in data)]
        for t in tasks:
            shapes = {tuple(np.shape(d.targets[t])) for d in data}
            if len(shapes) != 1:
                raise ValueError(f"every replica needs targets of one shape for task {t!r}, got {sorted(shapes)}")
        return x, {t: torch.stack([_column(d.targets[t]) for d in data]).to(device) for t in tasks}


class ReplicatedMLP(ReplicatedModel):
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
        self_hidden = list(first.trunk.out_channels)
        for m in models:
            if m.tasks != first.tasks or list(m.trunk.out_channels) != self_hidden:
                raise ValueError("every stacked model must be HardSharing.mlp with the same sizes and tasks")
        super().__init__(first.tasks, [m.heads for m in models])
        self.in_features, self.hidden = first.trunk.in_features, self_hidden
        layers = [_linears(m.trunk) for m in models]
        self.trunk_weights = nn.ParameterList(
            [_stacked([ls[i].weight.T for ls in layers]) for i in range(len(layers[0]))]
        )
        self.trunk_biases = nn.ParameterList(
            [_stacked([ls[i].bias[None] for ls in layers]) for i in range(len(layers[0]))]
        )

    @classmethod
    def mlp(
        cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int], seeds: Sequence[int]
    ) -> ReplicatedMLP:
        """One replica per entry of ``seeds``: ``HardSharing.mlp`` after ``torch.manual_seed(seed)``.

        The global torch random state is left untouched.
        """
        tasks = check_task_outputs(tasks)
        return cls(_seeded(lambda: HardSharing.mlp(in_features, hidden, tasks), seeds))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation of every replica, ``(R, n, hidden[-1])``."""
        if x.ndim != 3 or x.shape[0] != self.replicas or x.shape[2] != self.in_features:
            raise ValueError(
                f"ReplicatedMLP expects inputs of shape (R={self.replicas}, n, {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        h = x
        for w, b in zip(self.trunk_weights, self.trunk_biases, strict=True):
            h = torch.relu(torch.baddbmm(b, h, w))
        return h

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: self.decode_task(t, z) for t in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.trunk_weights
        yield from self.trunk_biases

    def last_shared_layer(self) -> list[nn.Parameter]:
        return [self.trunk_weights[-1], self.trunk_biases[-1]]

    @torch.no_grad()
    def replica(self, r: int) -> HardSharing:
        """Replica ``r`` as a plain :class:`~mtl_course.models.HardSharing` with copies of its weights."""
        self._check_replica(r)
        model = HardSharing.mlp(self.in_features, self.hidden, self.out_features)
        for layer, w, b in zip(_linears(model.trunk), self.trunk_weights, self.trunk_biases, strict=True):
            layer.weight.copy_(w[r].T)
            layer.bias.copy_(b[r, 0])
        self._copy_heads(model.heads, r)
        return model.to(self.trunk_weights[0].device)

    def extra_repr(self) -> str:
        return f"replicas={self.replicas}, in_features={self.in_features}, hidden={self.hidden}, tasks={self.tasks}"


class ReplicatedColumns(ReplicatedModel):
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
        tasks = first.tasks
        hidden = list(first.columns[tasks[0]].out_channels)
        for m in models:
            if not isinstance(m, SoftSharing) or m.tasks != tasks or list(m.columns[tasks[0]].out_channels) != hidden:
                raise ValueError("every stacked model must be SoftSharing.mlp with the same sizes and tasks")
        super().__init__(tasks, [m.heads for m in models])
        self.penalty_kind = penalty
        self.in_features, self.hidden = first.columns[tasks[0]].in_features, hidden
        layers = [[_linears(m.columns[t]) for t in tasks] for m in models]  # [replica][task][layer]
        L = len(hidden)
        self.weights = nn.ParameterList(
            [_stacked([torch.stack([col[i].weight.T for col in m]) for m in layers]) for i in range(L)]
        )
        self.biases = nn.ParameterList(
            [_stacked([torch.stack([col[i].bias[None] for col in m]) for m in layers]) for i in range(L)]
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
        """Replica ``r`` starts as ``SoftSharing.mlp(in_features, hidden, tasks)`` after ``manual_seed(seeds[r])``.

        Replicas with the same seed start from the same weights (a hard
        replica from the same first column and heads). The global torch
        random state is left untouched.
        """
        models = _seeded(lambda: SoftSharing.mlp(in_features, hidden, tasks, penalty=penalty), seeds)
        return cls(models, lams, hard, penalty)

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
        """``{task: (R, n, out)}``; with ``(R, T, n, d)`` inputs, task ``t``'s outputs are on its cases ``x[:, t]``."""
        h = self.features(x)
        return {t: self.decode_task(t, h[:, i]) for i, t in enumerate(self.tasks)}

    def _pairs(self, effective: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """For every column parameter, its ``(R, T, size)`` matrix and the squared distances summed over task pairs."""
        for p in [*self.weights, *self.biases]:
            flat = (self._effective(p) if effective else p).reshape(p.shape[0], p.shape[1], -1)
            T = flat.shape[1]
            yield flat, sum((flat[:, i] - flat[:, j]).pow(2).sum(-1) for i in range(T) for j in range(i + 1, T))

    def penalty_per_replica(self) -> torch.Tensor:
        r""":math:`\Omega_r` of every replica, ``(R,)``: the same sums as :meth:`SoftSharing.penalty`."""
        if self.penalty_kind == "l2":
            return sum(pairs for _, pairs in self._pairs(effective=False))
        return sum(torch.linalg.matrix_norm(flat, ord="nuc") for flat, _ in self._pairs(effective=False))

    def penalty(self) -> torch.Tensor:
        r""":math:`\sum_r \lambda_r \Omega_r` (hard replicas have :math:`\lambda_r = 0`); ``fit(..., penalty=1.0)``."""
        return (self.lams * self.penalty_per_replica()).sum()

    @torch.no_grad()
    def distances(self, relative: bool = True) -> torch.Tensor:
        r"""The relative column distance of every replica's effective columns, ``(R,)`` (0 for hard replicas).

        :math:`d_r = \sqrt{\Omega_{\ell_2}} \big/ \big((T-1)\sum_t \lVert\theta_t\rVert_2^2\big)^{1/2}`:
        0 for identical columns, close to 1 for independently initialised
        ones; ``relative=False`` gives :math:`\sqrt{\Omega_{\ell_2}}`.
        """
        device = self.lams.device
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        num = torch.zeros(self.replicas, dtype=dtype, device=device)
        den = torch.zeros_like(num)
        for flat, pairs in self._pairs(effective=True):
            num += pairs.to(dtype)
            den += flat.to(dtype).pow(2).sum((1, 2))
        if not relative:
            return num.sqrt()
        T = len(self.tasks)
        return torch.where(den > 0, (num / ((T - 1) * den.clamp_min(1e-300))).sqrt(), torch.zeros_like(num))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The stacked column tensors: each holds every task's column of every replica (not split per task)."""
        yield from self.weights
        yield from self.biases

    @torch.no_grad()
    def replica(self, r: int) -> SoftSharing | HardSharing:
        """Replica ``r`` as a plain model with copies of its weights: ``HardSharing`` if hard, else ``SoftSharing``."""
        self._check_replica(r)
        soft = SoftSharing.mlp(self.in_features, self.hidden, self.out_features, penalty=self.penalty_kind)
        for ti, t in enumerate(self.tasks):
            for layer, w, b in zip(_linears(soft.columns[t]), self.weights, self.biases, strict=True):
                layer.weight.copy_(w[r, ti].T)
                layer.bias.copy_(b[r, ti, 0])
        self._copy_heads(soft.heads, r)
        device = self.weights[0].device
        if bool(self.hard[r]):
            return HardSharing(soft.columns[self.tasks[0]], dict(soft.heads)).to(device)
        return soft.to(device)

    def stack(self, data: Sequence[MultiTaskData], device: torch.device | str | None = None) -> Batch:
        """Like :meth:`ReplicatedModel.stack`, but when every task has its own labelled cases (two cohorts), inputs
        ``(R, T, n, d)`` with task ``t``'s ``n`` cases in ``[:, t]`` and targets ``{t: (R, n, 1)}`` on them."""
        own = [_own_cases(d, self.tasks) for d in data]
        if any(o is None for o in own) or len({o[0].shape for o in own}) != 1:
            return super().stack(data, device)
        x = torch.as_tensor(np.stack([o[0] for o in own]), dtype=torch.float32, device=device)
        y = torch.as_tensor(np.stack([o[1] for o in own]), dtype=torch.float32, device=device)
        return x, {t: y[..., i : i + 1] for i, t in enumerate(self.tasks)}

    def extra_repr(self) -> str:
        return (
            f"replicas={self.replicas}, in_features={self.in_features}, hidden={self.hidden}, tasks={self.tasks}, "
            f"penalty={self.penalty_kind!r}, hard replicas={int(self.hard.sum())}"
        )


def _own_cases(data: MultiTaskData, tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Inputs ``(T, n, d)`` and targets ``(n, T)`` when every task labels its own ``n`` cases and no case has two
    labels; ``None`` otherwise."""
    if data.masks is not None:
        return None
    rows = [~np.isnan(np.asarray(data.targets[t], dtype=float).reshape(data.n, -1)).any(1) for t in tasks]
    if len({int(r.sum()) for r in rows}) != 1 or np.any(np.sum(rows, axis=0) > 1):
        return None
    x = np.stack([np.asarray(data.x)[r] for r in rows])
    y = np.stack([np.asarray(data.targets[t]).reshape(data.n)[r] for t, r in zip(tasks, rows, strict=True)], -1)
    return x, y

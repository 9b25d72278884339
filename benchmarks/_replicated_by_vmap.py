r"""The generic replicator that ``bench_replicate.py`` evaluates: ``stack_module_state`` + ``vmap(functional_call)``.

It lost on speed to the hand-batched models of :mod:`mtl_course.experiments.replicate`
(see the benchmark), so it lives here, runnable, as the measured alternative.

A lecture has about a minute of CPU time, and its comparisons train hundreds
of tiny networks (conditions × seeds × settings). One
:func:`~mtl_course.train.fit` call per network would spend that minute on
per-call overhead, not arithmetic. :class:`Replicated` therefore stacks
:math:`R` models of one architecture (``HardSharing.mlp``,
``SoftSharing.mlp``, ... each with its own initial weights) parameter by
parameter, and evaluates all of them in one vectorised call:

.. math::

    \hat y_r = f(x_r; \theta_r), \qquad r = 1, \dots, R,

with inputs ``(R, n, ...)`` (every replica its own cases). The training
objective is the *sum* over replicas of each replica's own loss,

.. math::

    \mathcal L(\theta_1, \dots, \theta_R) = \sum_r \big[\mathcal L_r(\theta_r) + \lambda_r \Omega(\theta_r)\big],

so :math:`\partial \mathcal L / \partial \theta_r` is replica :math:`r`'s own
gradient; since no parameter is shared between replicas and Adam acts
element-wise, every replica follows the trajectory it would follow alone
(a test checks this against :func:`~mtl_course.train.fit` on the
ordinary model). The replica losses are those of the package,
:func:`mtl_course.experiments.replicate.summed_over_replicas`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mtl_course.models.base import MultiTaskModel


def _signature(model: nn.Module) -> tuple:
    """What must agree for two models to be stacked: the class and every parameter's and buffer's name and shape."""
    return (
        type(model),
        tuple((k, tuple(v.shape)) for k, v in model.named_parameters()),
        tuple((k, tuple(v.shape)) for k, v in model.named_buffers()),
    )


class _Method(nn.Module):
    """Calls a method of the wrapped model by name, so that ``functional_call`` can evaluate it (e.g. ``penalty``)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(*args)


class Replicated(MultiTaskModel):
    r""":math:`R` independent copies of one :class:`~mtl_course.models.base.MultiTaskModel`, evaluated with ``vmap``.

    ``models`` must share their class and their parameters' names and
    shapes; their weights may differ (one seed each). ``penalty_weights``
    are the :math:`\lambda_r` of :meth:`penalty` (default 0: no penalty).
    Inputs are ``(R, n, ...)``, outputs ``{task: (R, n, ...)}``.

    >>> from mtl_course.models import HardSharing
    >>> models = [HardSharing.mlp(3, [8], {"a": 1, "b": 2}) for _ in range(4)]
    >>> stack = Replicated(models)
    >>> {t: tuple(y.shape) for t, y in stack(torch.zeros(4, 5, 3)).items()}
    {'a': (4, 5, 1), 'b': (4, 5, 2)}
    >>> x = torch.randn(5, 3)
    >>> bool(torch.allclose(stack(x.expand(4, 5, 3))["b"][2], models[2](x)["b"], atol=1e-6))
    True
    """

    def __init__(self, models: Sequence[MultiTaskModel], penalty_weights: Sequence[float] | None = None) -> None:
        if not models:
            raise ValueError("Replicated needs at least one model to stack, got none")
        first = models[0]
        for i, model in enumerate(models):
            if _signature(model) != _signature(first):
                raise ValueError(
                    f"every stacked model must have the architecture of model 0 ({type(first).__name__} with the "
                    f"same parameter names and shapes); model {i} ({type(model).__name__}) differs"
                )
        weights = [0.0] * len(models) if penalty_weights is None else [float(w) for w in penalty_weights]
        if len(weights) != len(models):
            raise ValueError(f"need one penalty weight per model: {len(models)} models, {len(weights)} weights")
        super().__init__(first.tasks)
        params, buffers = stack_module_state(list(models))
        self.names = list(params)
        self.buffer_names = list(buffers)
        # "." is not allowed in a module's attribute names: parameter "trunk.stages.0.0.weight" -> "trunk/stages/..."
        self.stacked = nn.ParameterDict({k.replace(".", "/"): nn.Parameter(v) for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer("buffer/" + k.replace(".", "/"), v)
        self.register_buffer("penalty_weights", torch.tensor(weights))
        # the template is not a submodule: its own tensors are never used, functional_call swaps in a replica's
        template = copy.deepcopy(first)
        self.__dict__["template"] = template
        self.has_shared_representation = first.has_shared_representation
        names = {id(p): k for k, p in first.named_parameters()}
        self._shared = [names[id(p)] for p in first.shared_parameters()]
        self._task = {t: [names[id(p)] for p in first.task_parameters(t)] for t in first.tasks}

    @property
    def replicas(self) -> int:
        return len(self.penalty_weights)

    def _replica_params(self) -> dict[str, torch.Tensor]:
        return {k: self.stacked[k.replace(".", "/")] for k in self.names}

    def _replica_buffers(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, "buffer/" + k.replace(".", "/")) for k in self.buffer_names}

    def _map(self, method: str, *args: torch.Tensor):
        """``model.method(*args)`` of every replica, with replica ``r``'s weights and the ``r``-th slice of ``args``."""
        module = _Method(self.template, method)
        params = {"model." + k: v for k, v in self._replica_params().items()}
        buffers = {"model." + k: v for k, v in self._replica_buffers().items()}

        def one(params, buffers, *xs):
            return functional_call(module, (params, buffers), xs)

        return vmap(one)(params, buffers, *args)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[0] != self.replicas:
            raise ValueError(f"Replicated expects inputs (R={self.replicas}, n, ...), got {tuple(x.shape)}")
        return self._map("forward", x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._map("encode", x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._map("decode", z)

    def penalty_per_replica(self) -> torch.Tensor:
        r""":math:`\Omega(\theta_r)` of every replica, ``(R,)``: the ordinary model's ``penalty()``, mapped."""
        return self._map("penalty")

    def penalty(self) -> torch.Tensor:
        r""":math:`\sum_r \lambda_r \Omega(\theta_r)`; train with ``fit(..., penalty=1.0)``."""
        return (self.penalty_weights * self.penalty_per_replica()).sum()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from (self.stacked[k.replace(".", "/")] for k in self._shared)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield from (self.stacked[k.replace(".", "/")] for k in self._task[task])

    def replica(self, r: int) -> MultiTaskModel:
        """Replica ``r`` as an ordinary model with copies of its weights (on the stack's device)."""
        if not 0 <= r < self.replicas:
            raise IndexError(f"replica index must be in 0..{self.replicas - 1}, got {r}")
        model = copy.deepcopy(self.template)
        state = {k: v[r].detach().clone() for k, v in {**self._replica_params(), **self._replica_buffers()}.items()}
        model.load_state_dict(state)
        return model.to(self.penalty_weights.device)

    def extra_repr(self) -> str:
        return f"replicas={self.replicas}, model={type(self.template).__name__}, tasks={self.tasks}"

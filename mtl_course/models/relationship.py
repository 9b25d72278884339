r"""Multilinear Relationship Networks (Long, Cao, Wang & Yu, NIPS 2017, arXiv 1506.02117).

A shared trunk :math:`z = f(x)` and one linear layer per task,
:math:`\hat y_t = z^\top W_t + b_t`. The task-specific weights stack into a
tensor :math:`\mathcal W \in \mathbb R^{D_1 \times D_2 \times T}` (features
:math:`\times` outputs :math:`\times` tasks) with a tensor-normal prior
(:mod:`~mtl_course.models.tensor_normal`):

.. math::

    \operatorname{vec}(\mathcal W) \sim \mathcal N(0,\ \Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3).

MAP training minimises :math:`\sum_t L_t + \lambda\,(-\ln p(\mathcal W))`
(``fit(..., penalty=lam)`` adds :math:`\lambda` :meth:`penalty`), alternating
gradient steps on the weights with closed-form flip-flop updates of the
covariances. Like BatchNorm's running statistics, the covariances are
buffers that the forward pass updates in training mode: every
``update_every``-th training forward first replaces the covariances named in
``update`` by their flip-flop estimates from the current weights (then every
factor is rescaled to :math:`\operatorname{tr}\Sigma_k = D_k`, so that
:math:`\lambda` alone sets the prior's overall strength); evaluation never
changes them. ``update_every=0`` keeps the prior fixed.

What the official code does (``thuml/MTlearn``, ``src/model_multi_task.py``,
commit ``c12a434``): the prior sits on the last layer only, the shared VGG
layers are frozen (learning rate 0), the class and feature matrices stay at
the identity, and only the task matrix is re-estimated every 100 iterations
(the two other updates are commented out; an earlier commit, ``1859ac9``,
updated all three and divided each by its trace). The default here follows
it, ``update=("task",)``; ``update=("feature", "class", "task")`` is the
paper's full flip-flop. The paper puts priors on several task-specific
layers; the course puts it on one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel, check_task_outputs, last_layer_parameters
from mtl_course.models.blocks import MLPTrunk
from mtl_course.models.tensor_normal import fix_scale, flip_flop_update, tensor_normal_nll

#: The modes of the weight tensor, in order.
MODES: tuple[str, ...] = ("feature", "class", "task")


class MultilinearRelationshipNetwork(MultiTaskModel):
    r"""A shared ``trunk`` (output width ``in_features`` :math:`= D_1`) and one linear layer per task under a
    tensor-normal prior (module docstring).

    ``tasks`` maps names to the output size :math:`D_2`, the same for all.
    ``task_covariance`` is the initial (or, with ``update_every=0``, fixed)
    :math:`\Sigma_3`; default :math:`I_T`. ``eps`` is added to every updated
    covariance before the rescaling.

    >>> _ = torch.manual_seed(0)
    >>> model = MultilinearRelationshipNetwork.mlp(in_features=5, hidden=[], tasks={"a": 1, "b": 1, "c": 1})
    >>> model.weight_tensor().shape, model.task_covariance.shape
    (torch.Size([5, 1, 3]), torch.Size([3, 3]))
    >>> _ = model.train()(torch.randn(4, 5))  # a training forward re-estimates the task covariance
    >>> round(torch.trace(model.task_covariance).item(), 4)
    3.0
    """

    has_shared_representation = True

    def __init__(
        self,
        trunk: nn.Module,
        in_features: int,
        tasks: Mapping[str, int],
        *,
        task_covariance: torch.Tensor | None = None,
        update: Sequence[str] = ("task",),
        update_every: int = 1,
        eps: float = 1e-3,
    ) -> None:
        tasks = check_task_outputs(tasks)
        super().__init__(list(tasks))
        sizes = set(tasks.values())
        if len(sizes) != 1:
            raise ValueError(f"the weight tensor needs one output size D_2 for every task, got {tasks}")
        unknown = [m for m in update if m not in MODES]
        if unknown:
            raise ValueError(f"unknown covariance(s) {unknown} to update; choose from {list(MODES)}")
        if not isinstance(update_every, int) or update_every < 0:
            raise ValueError(f"update_every must be an int >= 0 (0: a fixed prior), got {update_every!r}")
        if not (eps >= 0 and math.isfinite(eps)):
            raise ValueError(f"eps must be a finite number >= 0, got {eps}")
        (out_features,) = sizes
        T = len(tasks)
        self.trunk = trunk
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default range
        self.weights = nn.ParameterDict(
            {t: nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound)) for t in tasks}
        )
        self.biases = nn.ParameterDict({t: nn.Parameter(torch.zeros(out_features)) for t in tasks})
        if task_covariance is None:
            task_covariance = torch.eye(T)
        if task_covariance.shape != (T, T):
            raise ValueError(f"task_covariance must be ({T}, {T}) for {T} tasks, got {tuple(task_covariance.shape)}")
        self.register_buffer("feature_covariance", torch.eye(in_features))
        self.register_buffer("class_covariance", torch.eye(out_features))
        self.register_buffer("task_covariance", task_covariance.detach().clone().float())
        self.update = tuple(m for m in MODES if m in update)
        self.update_every, self.eps = update_every, float(eps)
        self.updates = 0  # flip-flop updates done
        self._forwards = 0  # training forwards seen

    @classmethod
    def mlp(
        cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int], **prior: object
    ) -> MultilinearRelationshipNetwork:
        """An :class:`MLPTrunk` (``hidden=[]``: no trunk, the tasks are linear in ``x``) and the prior's keywords."""
        trunk = MLPTrunk(in_features, hidden) if hidden else nn.Identity()
        return cls(trunk, hidden[-1] if hidden else in_features, tasks, **prior)  # type: ignore[arg-type]

    # -- the prior ----------------------------------------------------------------
    def weight_tensor(self) -> torch.Tensor:
        r"""The task-specific weights as :math:`\mathcal W`, shape ``(D_1, D_2, T)``: ``[..., t]`` is :math:`W_t`."""
        return torch.stack([self.weights[t] for t in self.tasks], dim=-1)

    def covariances(self) -> list[torch.Tensor]:
        r"""``[Sigma_1, Sigma_2, Sigma_3]``: feature, class and task covariance."""
        return [self.feature_covariance, self.class_covariance, self.task_covariance]

    def penalty(self) -> torch.Tensor:
        r""":math:`-\ln p(\mathcal W)` under the current covariances (:func:`tensor_normal_nll`)."""
        return tensor_normal_nll(self.weight_tensor(), self.covariances())

    @torch.no_grad()
    def update_covariances(self) -> None:
        """One flip-flop pass over the covariances in ``update`` (in the order of :data:`MODES`), scales fixed."""
        W = self.weight_tensor().detach()
        covariances = self.covariances()
        for name in self.update:
            k = MODES.index(name)
            covariances[k] = flip_flop_update(W, covariances, k, self.eps)
        for buffer, value in zip(self.covariances(), fix_scale(covariances), strict=True):
            buffer.copy_(value)
        self.updates += 1

    # -- the model contract ---------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's features; every ``update_every``-th call in training mode first updates the covariances.

        The hook sits here, not in :meth:`forward`, so that a weighting method
        that calls ``encode`` and ``decode`` itself (MGDA-UB) updates them too.
        """
        if self.training and self.update_every and self.update:
            if self._forwards % self.update_every == 0:
                self.update_covariances()
            self._forwards += 1
        return self.trunk(x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        if z.ndim != 2 or z.shape[1] != self.in_features:
            raise ValueError(f"the task layers expect features of shape (N, {self.in_features}), got {tuple(z.shape)}")
        return {t: z @ self.weights[t] + self.biases[t] for t in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield self.weights[task]
        yield self.biases[task]

    def last_shared_layer(self) -> list[nn.Parameter]:
        if not any(True for _ in self.trunk.parameters()):
            raise NotImplementedError(
                f"{type(self).__name__} without a trunk (hidden=[]) shares no layer, so it has no last shared layer"
            )
        return last_layer_parameters(self.trunk)

    def extra_repr(self) -> str:
        return self.describe_sharing(
            shared="trunk",
            task_specific=f"weights.<task> ({self.in_features}x{self.out_features}) + biases.<task>; "
            f"tensor-normal prior, updating {list(self.update)} every {self.update_every} training forward(s)",
        )

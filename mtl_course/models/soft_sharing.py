r"""Soft parameter sharing: one column per task and a penalty that pulls them together.

Every task has its own network ("column", all of one architecture) and
head; nothing is shared in the forward pass. Instead the training loss gets
a penalty :math:`\lambda\,\Omega(\theta_1, \dots, \theta_T)` on the distance
between corresponding parameters of the columns. The training loop adds
``lam * model.penalty()`` to the sum of the task losses.

Two penalties, each summed over the parameter groups :math:`g` (every
weight and bias tensor of the column, flattened to a vector
:math:`\theta_{t,g}`):

* ``"l2"`` (default): squared L2 distance over all task pairs (Duong, Cohn,
  Bird & Cook, ACL 2015, "Low Resource Dependency Parsing: Cross-lingual
  Parameter Sharing in a Neural Network Parser", ACL Anthology P15-2139):

  .. math::

      \Omega_{\ell_2} = \sum_g \sum_{i<j} \lVert \theta_{i,g} - \theta_{j,g} \rVert_2^2 .

  For two tasks this is Duong et al.'s :math:`\lVert\theta_1 - \theta_2\rVert^2`.
  Equivalently it is :math:`T \sum_g \sum_i \lVert \theta_{i,g} - \bar\theta_g \rVert_2^2`,
  :math:`T` times the spread around the mean over tasks; the code sums the
  pairs, which is exactly 0 for tied columns.

* ``"trace"``: trace norm (Yang & Hospedales, ICLR 2017 workshop,
  "Trace Norm Regularised Deep Multi-Task Learning", arXiv 1606.04038). Stack
  the :math:`T` corresponding parameters as the rows of a matrix
  :math:`W_g \in \mathbb{R}^{T \times n_g}` (the stacked tensor flattened
  along its task axis) and take the nuclear norm, the sum of its singular
  values:

  .. math::

      \Omega_{tr} = \sum_g \lVert W_g \rVert_* = \sum_g \sum_k \sigma_k(W_g).

  It favours a low rank of :math:`W_g`: columns that are linear combinations
  of a few shared ones, rather than columns close to each other.

The heads are not penalised: their shapes differ when the tasks have
different output sizes. To penalise every layer, put the whole network in
the columns and pass ``nn.Identity()`` heads.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Literal

import torch
from torch import nn

from mtl_course.models.columns import ColumnNetwork

SoftSharingPenalty = Literal["l2", "trace"]
PENALTIES: tuple[str, ...] = ("l2", "trace")


def stacked_parameters(columns: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """For every parameter name, the ``T`` corresponding parameters flattened as the rows of a ``(T, n)`` matrix.

    Raises a ``ValueError`` naming the parameter when the columns differ.

    >>> cols = {"a": nn.Linear(3, 2), "b": nn.Linear(3, 2)}
    >>> {name: tuple(w.shape) for name, w in stacked_parameters(cols).items()}
    {'weight': (2, 6), 'bias': (2, 2)}
    """
    named = {task: dict(column.named_parameters()) for task, column in columns.items()}
    (first_task, first), *others = named.items()
    for task, params in others:
        if list(params) != list(first):
            raise ValueError(
                "soft-sharing columns must have the same architecture; column "
                f"{first_task!r} has parameters {list(first)}, column {task!r} has {list(params)}"
            )
        for name, p in params.items():
            if p.shape != first[name].shape:
                raise ValueError(
                    f"soft-sharing columns must have the same architecture; parameter {name!r} has shape "
                    f"{tuple(first[name].shape)} in column {first_task!r} but {tuple(p.shape)} in column {task!r}"
                )
    return {name: torch.stack([params[name].flatten() for params in named.values()]) for name in first}


def squared_l2_penalty(columns: Mapping[str, nn.Module]) -> torch.Tensor:
    r"""``sum_g sum_{i<j} ||theta_i,g - theta_j,g||^2``: squared distances over all pairs of columns.

    >>> cols = {"a": nn.Linear(1, 1, bias=False), "b": nn.Linear(1, 1, bias=False)}
    >>> with torch.no_grad():
    ...     _ = cols["a"].weight.fill_(1.0), cols["b"].weight.fill_(3.0)
    >>> squared_l2_penalty(cols)
    tensor(4., grad_fn=<AddBackward0>)
    """
    total = 0
    for stacked in stacked_parameters(columns).values():
        for i, j in itertools.combinations(range(len(stacked)), 2):
            total = total + (stacked[i] - stacked[j]).pow(2).sum()
    return total


def trace_norm_penalty(columns: Mapping[str, nn.Module]) -> torch.Tensor:
    r"""``sum_g ||W_g||_*``: the nuclear norm of each ``(T, n_g)`` matrix of stacked parameters.

    Half-precision parameters are promoted to float32 for the SVD.

    >>> cols = {"a": nn.Linear(2, 1, bias=False), "b": nn.Linear(2, 1, bias=False)}
    >>> with torch.no_grad():
    ...     _ = cols["a"].weight.copy_(torch.tensor([[3.0, 0.0]])), cols["b"].weight.copy_(torch.tensor([[0.0, 4.0]]))
    >>> trace_norm_penalty(cols)
    tensor(7., grad_fn=<AddBackward0>)
    """
    total = 0
    for stacked in stacked_parameters(columns).values():
        if stacked.dtype in (torch.float16, torch.bfloat16):
            stacked = stacked.float()
        total = total + torch.linalg.matrix_norm(stacked, ord="nuc")
    return total


class SoftSharing(ColumnNetwork):
    """One column and one head per task, ``{t: heads[t](columns[t](x))}``, plus the penalty :meth:`penalty`.

    ``penalty`` is ``"l2"`` (Duong et al., ACL 2015) or ``"trace"`` (Yang &
    Hospedales, ICLR 2017 workshop, arXiv 1606.04038); see the module
    docstring for the exact definitions. Nothing is shared in the forward
    pass, so :meth:`shared_parameters` is empty and
    ``task_parameters(t)`` is column ``t`` and head ``t``. The columns,
    heads and factories come from :class:`~mtl_course.models.columns.ColumnNetwork`.

    >>> _ = torch.manual_seed(0)
    >>> model = SoftSharing.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 1})
    >>> bool(model.penalty() > 0)
    True
    >>> model.tie_columns()
    >>> model.penalty().item()
    0.0
    """

    architecture = "soft sharing"

    def __init__(
        self,
        columns: Mapping[str, nn.Module],
        heads: Mapping[str, nn.Module],
        penalty: SoftSharingPenalty = "l2",
    ) -> None:
        super().__init__(columns, heads)
        if penalty not in PENALTIES:
            raise ValueError(f"unknown soft-sharing penalty {penalty!r}; choose one of {list(PENALTIES)}")
        stacked_parameters(self.columns)  # raises when the columns differ
        self.penalty_kind = penalty

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: self.heads[task](self.columns[task](x)) for task in self.tasks}

    def penalty(self) -> torch.Tensor:
        """The unweighted penalty ``Omega`` on the columns; the training loop adds ``lam * Omega``."""
        if self.penalty_kind == "l2":
            return squared_l2_penalty(self.columns)
        return trace_norm_penalty(self.columns)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.column_parameters(task)
        yield from self.heads[task].parameters()

    def extra_repr(self) -> str:
        return self.describe_sharing(
            shared=f"nothing in the forward pass; penalty={self.penalty_kind!r} pulls the columns together",
            task_specific="columns.<task> + heads.<task>",
        )

r"""The model contract every multi-task architecture of the course follows.

* ``model(x)`` returns a dict ``{task_name: output}`` with one entry per task
  in ``model.tasks`` (in that order).
* ``model.shared_parameters()`` yields the parameters every task uses;
  ``model.task_parameters(task)`` yields the parameters only ``task`` uses.
  Together they cover every trainable parameter exactly once.
* Models with one shared representation ``z = encode(x)`` (hard sharing)
  also implement ``decode(z) -> {task: output}``, so that MGDA-UB (Sener &
  Koltun, NeurIPS 2018, arXiv 1810.04650) can differentiate the task losses
  with respect to ``z`` instead of the shared weights.
* ``model.last_shared_layer()`` returns the parameters of the last shared
  layer, on which GradNorm (Chen et al., ICML 2018, arXiv 1711.02257)
  measures the per-task gradient norms.
* ``model.mixing_parameters()`` yields the parameters that decide *how much*
  the tasks share (cross-stitch :math:`\alpha`, sluice :math:`\alpha` and
  :math:`\beta`); empty by default. :meth:`MultiTaskModel.parameter_groups`
  gives them their own learning rate.
* ``model.penalty()`` is the model's own regulariser :math:`\Omega` (the
  soft-sharing distance, the sluice orthogonality term), zero by default;
  ``fit(..., penalty=lam)`` adds :math:`\lambda\,\Omega` to every step's loss.

Architecture and weighting are orthogonal: any model that honours this
contract trains with any method of :mod:`mtl_course.weighting`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn


class MultiTaskModel(nn.Module):
    """Base class: stores the task names and implements the bookkeeping.

    Subclasses implement :meth:`forward`, :meth:`shared_parameters` and
    :meth:`task_parameters`; models with one shared representation also
    implement :meth:`encode` and :meth:`decode` and set
    ``has_shared_representation = True``.
    """

    has_shared_representation: bool = False

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks:
            raise ValueError("a multi-task model needs at least one task name, got an empty list")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task names must be unique, got {tasks}")
        for name in tasks:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"task names must be Python identifiers, got {name!r}")
        self.tasks: list[str] = tasks

    # -- the contract -------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def shared_parameters(self) -> Iterator[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation ``z``; only for models with one."""
        raise NotImplementedError(
            f"{type(self).__name__} has no single shared representation; "
            "MGDA-UB needs a hard-sharing model such as HardSharing"
        )

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Task outputs from the shared representation ``z``; only for models with one."""
        raise NotImplementedError(f"{type(self).__name__} has no single shared representation to decode")

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Parameters of the last shared layer (GradNorm's ``W``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define a last shared layer")

    def mixing_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that mix the tasks' representations (cross-stitch and sluice units); none by default."""
        return iter(())

    def penalty(self) -> torch.Tensor:
        r"""The model's own regulariser :math:`\Omega`, unweighted; a zero scalar by default.

        >>> from mtl_course.models import HardSharing
        >>> HardSharing.mlp(4, [8], {"a": 1, "b": 1}).penalty()
        tensor(0.)
        """
        reference = next(self.parameters(), None)
        if reference is None:
            return torch.zeros(())
        return reference.new_zeros(())

    def parameter_groups(self, lr: float, mixing_lr_scale: float = 1.0) -> list[dict]:
        """Optimiser parameter groups: every parameter at ``lr``, the mixing parameters at ``lr * mixing_lr_scale``.

        Misra et al. (CVPR 2016, arXiv 1604.03539, Section 4) train the
        cross-stitch units with a learning rate :math:`10^2`--:math:`10^3` times
        the network's; pass the result to any ``torch.optim`` optimiser.

        >>> from mtl_course.models import CrossStitchNetwork
        >>> net = CrossStitchNetwork.mlp(4, [8, 8], {"a": 1, "b": 1})
        >>> [(len(g["params"]), g["lr"]) for g in net.parameter_groups(1e-3, mixing_lr_scale=100)]
        [(12, 0.001), (2, 0.1)]
        """
        if lr <= 0 or mixing_lr_scale <= 0:
            raise ValueError(f"lr and mixing_lr_scale must be positive, got lr={lr}, mixing_lr_scale={mixing_lr_scale}")
        mixing = [p for p in self.mixing_parameters() if p.requires_grad]
        mixing_ids = {id(p) for p in mixing}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in mixing_ids]
        groups: list[dict] = [{"params": rest, "lr": lr}]
        if mixing:
            groups.append({"params": mixing, "lr": lr * mixing_lr_scale})
        return groups

    # -- bookkeeping ----------------------------------------------------------
    def check_task(self, task: str) -> None:
        """Raise a ``KeyError`` that names the known tasks when ``task`` is unknown."""
        if task not in self.tasks:
            raise KeyError(f"unknown task {task!r}; this model has tasks {self.tasks}")

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters: ``shared``, one entry per task, and ``total``."""
        counts = {"shared": sum(p.numel() for p in self.shared_parameters() if p.requires_grad)}
        for task in self.tasks:
            counts[task] = sum(p.numel() for p in self.task_parameters(task) if p.requires_grad)
        counts["total"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

    def describe_sharing(self, shared: str, task_specific: str) -> str:
        """One line for ``extra_repr``: what is shared, what is per task, the counts."""
        counts = ", ".join(f"{name}={n:,}" for name, n in self.parameter_counts().items())
        return f"tasks={self.tasks}, shared: {shared}, per task: {task_specific}, parameters: {counts}"


def check_task_outputs(tasks: Mapping[str, int]) -> dict[str, int]:
    """Validate a ``{task_name: output_dimension}`` mapping and return it as a dict.

    >>> check_task_outputs({"a": 1, "b": 3})
    {'a': 1, 'b': 3}
    """
    if not isinstance(tasks, Mapping):
        raise TypeError(f"tasks must map task name -> output dimension, e.g. {{'a': 1, 'b': 3}}; got {tasks!r}")
    for name, dim in tasks.items():
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"task {name!r}: output dimension must be a positive int, got {dim!r}")
    return dict(tasks)


def check_same_tasks(what: str, given: Mapping[str, object], tasks: Sequence[str]) -> None:
    """Raise a ``ValueError`` unless ``given`` has exactly one entry per task."""
    if set(given) != set(tasks):
        raise ValueError(f"{what} must have one entry per task {list(tasks)}, got keys {list(given)}")


def last_layer_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of the last submodule (in registration order) that owns parameters.

    For a stack of layers this is the last layer, e.g. the last ``nn.Linear``.

    >>> [tuple(p.shape) for p in last_layer_parameters(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))]
    [(2, 3), (2,)]
    """
    owners = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    if not owners:
        raise ValueError(f"{type(module).__name__} has no parameters, so it has no last layer")
    return list(owners[-1].parameters(recurse=False))

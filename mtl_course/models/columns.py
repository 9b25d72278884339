r"""Column networks: one network ("column") and one head per task, the skeleton under soft sharing,
cross-stitch and sluice networks.

All three give every task :math:`t` its own column :math:`f_t` (all of one
architecture) and head :math:`h_t`. They differ only in how the columns
talk to each other:

* soft sharing (:class:`~mtl_course.models.soft_sharing.SoftSharing`): not
  at all in the forward pass, :math:`\hat y_t = h_t(f_t(x))`; a penalty on
  the distance between the columns' parameters pulls them together;
* cross-stitch (:class:`~mtl_course.models.cross_stitch.CrossStitchNetwork`)
  and sluice networks (:class:`~mtl_course.models.sluice.SluiceNetwork`):
  after every stage :math:`k` of the columns a learned unit :math:`U_k`
  mixes the :math:`T` columns' states,

  .. math::

      (h_{1,k}, \dots, h_{T,k}) = U_k\big(f_{1,k}(h_{1,k-1}), \dots, f_{T,k}(h_{T,k-1})\big),
      \qquad h_{t,0} = x,

  and head :math:`t` reads :math:`h_{t,K}` (sluice networks: a learned sum
  over :math:`k`).

:class:`ColumnNetwork` holds what all three share: the columns and heads,
their checks, the ``.mlp`` / ``.cnn`` factories and the parameter
bookkeeping. :class:`MixedColumnNetwork` adds the units and the stage loop
:meth:`MixedColumnNetwork.mixed_states`; a subclass says which unit to put
after a stage and what the heads read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel, check_same_tasks, check_task_outputs, last_layer_parameters
from mtl_course.models.blocks import CNNTrunk, LinearHead, MLPTrunk, StagedEncoder


class ColumnNetwork(MultiTaskModel):
    """One column and one head per task: ``columns[t]`` and ``heads[t]`` for every task ``t``, at least two tasks.

    A subclass implements :meth:`forward` and the parameter split; ``options``
    of the factories :meth:`mlp` and :meth:`cnn` go to its constructor.
    ``architecture`` names the subclass in error messages.
    """

    architecture: ClassVar[str] = "a column network"

    def __init__(self, columns: Mapping[str, nn.Module], heads: Mapping[str, nn.Module]) -> None:
        super().__init__(list(columns))
        check_same_tasks("heads", heads, self.tasks)
        if len(self.tasks) < 2:
            raise ValueError(f"{self.architecture} needs at least 2 tasks, got {self.tasks}")
        self.columns = nn.ModuleDict(columns)
        self.heads = nn.ModuleDict({task: heads[task] for task in self.tasks})

    @classmethod
    def from_columns(cls, column: Callable[[], StagedEncoder], tasks: Mapping[str, int], **options: Any) -> Self:
        """One ``column()`` per task (built in task order), then one :class:`LinearHead` per task on its output."""
        tasks = check_task_outputs(tasks)
        columns = {t: column() for t in tasks}
        heads = {t: LinearHead(columns[t].out_features, d) for t, d in tasks.items()}
        return cls(columns, heads, **options)

    @classmethod
    def mlp(cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int], **options: Any) -> Self:
        """:class:`MLPTrunk` columns and :class:`LinearHead` heads (``tasks``: name -> output size)."""
        return cls.from_columns(lambda: MLPTrunk(in_features, hidden), tasks, **options)

    @classmethod
    def cnn(cls, in_channels: int, channels: Sequence[int], tasks: Mapping[str, int], **options: Any) -> Self:
        """:class:`CNNTrunk` columns and globally pooled :class:`LinearHead` heads."""
        return cls.from_columns(lambda: CNNTrunk(in_channels, channels), tasks, **options)

    def column_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """The parameters of ``task``'s column (not its head)."""
        self.check_task(task)
        yield from self.columns[task].parameters()

    @torch.no_grad()
    def tie_columns(self) -> None:
        """Copy the first column's parameters into every other column (as if all started from one network)."""
        first = self.columns[self.tasks[0]]
        for task in self.tasks[1:]:
            self.columns[task].load_state_dict(first.state_dict())


def check_matching_columns(columns: Mapping[str, nn.Module]) -> list[int]:
    """The common stage widths of the columns; raises unless all are staged encoders with those widths."""
    widths = {}
    for task, column in columns.items():
        if not isinstance(column, StagedEncoder):
            raise TypeError(f"column {task!r} must be a StagedEncoder (a list of stages), got {type(column).__name__}")
        widths[task] = column.out_channels
    first_task, first = next(iter(widths.items()))
    for task, w in widths.items():
        if w != first:
            raise ValueError(
                f"all columns must have the same stages; column {first_task!r} has stage widths "
                f"{first}, column {task!r} has {w}"
            )
    return first


#: ``unit(num_tasks, width)`` builds the mixing unit after a stage of ``width`` channels.
UnitFactory = Callable[[int, int], nn.Module]


class MixedColumnNetwork(ColumnNetwork):
    """Columns of :class:`StagedEncoder` s with one mixing unit after every stage (cross-stitch, sluice).

    ``units[k]`` maps the list of the :math:`T` columns' outputs of stage
    ``k`` to a list of :math:`T` mixed states; :meth:`mixed_states` runs the
    stage loop. In the sense of the model contract the columns and the units
    are *shared*: after the first unit every task's output depends on every
    column. :meth:`task_parameters` are the heads; :meth:`mixing_parameters`
    the ``alpha`` of every unit.
    """

    def __init__(self, columns: Mapping[str, StagedEncoder], heads: Mapping[str, nn.Module], unit: UnitFactory) -> None:
        super().__init__(columns, heads)
        self.stage_widths = check_matching_columns(columns)
        self.units = nn.ModuleList(unit(len(self.tasks), width) for width in self.stage_widths)

    def mixed_states(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """The stage loop: ``states[k][m]`` is task ``m``'s state after stage ``k`` and unit ``k``."""
        for task in self.tasks:
            self.columns[task].check_input(x)
        hs = [x] * len(self.tasks)
        states = []
        for k, unit in enumerate(self.units):
            hs = unit([self.columns[task].stages[k](h) for task, h in zip(self.tasks, hs, strict=True)])
            states.append(hs)
        return states

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.columns.parameters()
        yield from self.units.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield from self.heads[task].parameters()

    def mixing_parameters(self) -> Iterator[nn.Parameter]:
        """The ``alpha`` of every unit (see :meth:`MultiTaskModel.parameter_groups` for their own learning rate)."""
        for unit in self.units:
            yield unit.alpha

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The last layer of every column; each feeds every task through the last unit."""
        return [p for task in self.tasks for p in last_layer_parameters(self.columns[task])]

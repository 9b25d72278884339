"""Single-task learning (STL) baselines behind the multi-task contract.

One independent network per task, nothing shared: the reference against
which the multi-task delta of a model is measured (Maninis, Radosavovic &
Kokkinos, CVPR 2019, arXiv 1904.08918; see :mod:`mtl_course.metrics`). Training all of them in one model with the sum
of the task losses is the same as training each alone, because no
parameter receives the gradient of more than one loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel, check_task_outputs
from mtl_course.models.blocks import CNNTrunk, LinearHead, MLPTrunk, UNetDecoder, UNetEncoder


class SingleTask(MultiTaskModel):
    """``{t: networks[t](x)}`` with one independent network per task.

    ``shared_parameters()`` is empty; ``task_parameters(t)`` is network ``t``.

    >>> model = SingleTask.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 1})
    >>> model.parameter_counts()
    {'shared': 0, 'a': 1761, 'b': 1761, 'total': 3522}
    """

    def __init__(self, networks: Mapping[str, nn.Module]) -> None:
        super().__init__(list(networks))
        self.networks = nn.ModuleDict(networks)

    @classmethod
    def mlp(cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int]) -> SingleTask:
        """Per task an :class:`MLPTrunk` followed by a :class:`LinearHead` (``tasks``: name -> output size)."""
        tasks = check_task_outputs(tasks)
        return cls(
            {t: nn.Sequential(MLPTrunk(in_features, hidden), LinearHead(hidden[-1], d)) for t, d in tasks.items()}
        )

    @classmethod
    def cnn(cls, in_channels: int, channels: Sequence[int], tasks: Mapping[str, int]) -> SingleTask:
        """Per task a :class:`CNNTrunk` followed by a globally pooled :class:`LinearHead`."""
        tasks = check_task_outputs(tasks)
        return cls(
            {t: nn.Sequential(CNNTrunk(in_channels, channels), LinearHead(channels[-1], d)) for t, d in tasks.items()}
        )

    @classmethod
    def unet(cls, in_channels: int, channels: Sequence[int], tasks: Mapping[str, int]) -> SingleTask:
        """Per task a whole U-Net (:class:`UNetEncoder` + :class:`UNetDecoder`)."""
        tasks = check_task_outputs(tasks)
        return cls(
            {t: nn.Sequential(UNetEncoder(in_channels, channels), UNetDecoder(channels, d)) for t, d in tasks.items()}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: self.networks[task](x) for task in self.tasks}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield from self.networks[task].parameters()

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="nothing", task_specific="networks.<task>")

r"""Hard parameter sharing: one shared trunk, one head per task.

The most common deep multi-task design (Caruana, Machine Learning 28, 1997,
DOI 10.1023/A:1007379606734; survey: Ruder, arXiv 1706.05098). Sharing the
trunk lowers the risk of overfitting. Ruder (2017) summarises Baxter
(Machine Learning 28, 1997) as: the risk of overfitting the shared
parameters is an order :math:`T` (the number of tasks) smaller than that of
the task-specific ones; Baxter's JAIR paper (12, 2000, arXiv 1106.0245)
states it as a per-task sample bound of order :math:`a + b/T` (Lecture A3).

.. math::

    z = f_{\theta_{sh}}(x), \qquad \hat y_t = h_{\theta_t}(z) \quad (t = 1, \dots, T).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from mtl_course.models.base import (
    MultiTaskModel,
    check_task_outputs,
    last_layer_parameters,
)
from mtl_course.models.blocks import CNNTrunk, LinearHead, MLPTrunk, UNetDecoder, UNetEncoder


class HardSharing(MultiTaskModel):
    """One shared ``trunk`` and one head per task: ``{t: heads[t](trunk(x))}``.

    The shared representation ``z = encode(x)`` is the trunk's output, and
    ``decode(z)`` applies the heads, so MGDA-UB can differentiate the task
    losses with respect to ``z``. With a :class:`UNetEncoder` trunk ``z`` is
    the list of feature maps of every scale (the decoders need the skips);
    such a model sets ``has_shared_representation = False`` because there is
    no single tensor ``z``.

    >>> model = HardSharing.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 3})
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(8, 20)).items()}
    {'a': (8, 1), 'b': (8, 3)}
    >>> model.parameter_counts()
    {'shared': 1728, 'a': 33, 'b': 99, 'total': 1860}
    """

    has_shared_representation = True

    def __init__(self, trunk: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        super().__init__(list(heads))
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)
        if getattr(trunk, "returns_feature_list", False):
            self.has_shared_representation = False

    @classmethod
    def mlp(
        cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int], head_hidden: Sequence[int] = ()
    ) -> HardSharing:
        """An :class:`MLPTrunk` and one :class:`LinearHead` per task (``tasks``: name -> output size)."""
        tasks = check_task_outputs(tasks)
        return cls(
            MLPTrunk(in_features, hidden),
            {t: LinearHead(hidden[-1], dim, head_hidden) for t, dim in tasks.items()},
        )

    @classmethod
    def cnn(cls, in_channels: int, channels: Sequence[int], tasks: Mapping[str, int]) -> HardSharing:
        """A :class:`CNNTrunk` and one globally pooled :class:`LinearHead` per task."""
        tasks = check_task_outputs(tasks)
        return cls(CNNTrunk(in_channels, channels), {t: LinearHead(channels[-1], d) for t, d in tasks.items()})

    @classmethod
    def unet(cls, in_channels: int, channels: Sequence[int], tasks: Mapping[str, int]) -> HardSharing:
        """A shared :class:`UNetEncoder` and one :class:`UNetDecoder` per task (dense outputs).

        >>> model = HardSharing.unet(1, [8, 16], {"seg": 3, "depth": 1})
        >>> {t: tuple(y.shape) for t, y in model(torch.zeros(2, 1, 8, 8)).items()}
        {'seg': (2, 3, 8, 8), 'depth': (2, 1, 8, 8)}
        """
        tasks = check_task_outputs(tasks)
        return cls(UNetEncoder(in_channels, channels), {t: UNetDecoder(channels, d) for t, d in tasks.items()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation ``z``: the trunk's output."""
        return self.trunk(x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head applied to the shared representation ``z``."""
        return {task: self.heads[task](z) for task in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        yield from self.heads[task].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The trunk's last layer (for GradNorm)."""
        return last_layer_parameters(self.trunk)

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="trunk", task_specific="heads.<task>")

"""Tiny models that honour the MultiTaskModel contract, for the weighting and training tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel


class ToyHardSharing(MultiTaskModel):
    """``z = relu(W2 relu(W1 x))`` shared, one linear head per task (``out_dims[t]`` outputs)."""

    has_shared_representation = True

    def __init__(
        self, tasks: Sequence[str], in_dim: int = 4, hidden: int = 8, out_dims: dict[str, int] | None = None
    ) -> None:
        super().__init__(tasks)
        out_dims = out_dims or {}
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, out_dims.get(t, 1)) for t in self.tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            t: self.heads[t](z).squeeze(-1) if self.heads[t].out_features == 1 else self.heads[t](z) for t in self.tasks
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        return self.heads[task].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        return list(self.trunk[2].parameters())


class ToyNoRepresentation(ToyHardSharing):
    """The same network, claiming no single shared representation (like a soft-sharing model)."""

    has_shared_representation = False


def toy_losses(model: ToyHardSharing, x: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-task MSE losses of ``model`` on ``x``."""
    out = model(x)
    return {t: ((out[t] - targets[t]) ** 2).mean() for t in model.tasks}

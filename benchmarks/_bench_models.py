"""The small CNN and synthetic data shared by the benchmarks (not part of the package)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel


class SmallCNN(MultiTaskModel):
    """Two conv layers and a linear layer shared; one linear classifier per task (16x16 inputs)."""

    has_shared_representation = True

    def __init__(self, tasks: Sequence[str], classes: int = 10) -> None:
        super().__init__(tasks)
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict({t: nn.Linear(64, classes) for t in self.tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: head(z) for t, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        return list(self.trunk[7].parameters())


def synthetic_batches(tasks: Sequence[str], n_batches: int, batch_size: int = 32, seed: int = 0):
    """``n_batches`` of ``(x, {task: labels})`` with random images and labels."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch_size, 1, 16, 16, generator=g),
            {t: torch.randint(0, 10, (batch_size,), generator=g) for t in tasks},
        )
        for _ in range(n_batches)
    ]

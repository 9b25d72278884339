"""Mini-batches of in-memory tensors in the course's batch format.

The course's datasets are small and live in memory, so a loader needs no
worker processes or collate functions: it slices tensors. :class:`TensorLoader`
yields ``(x, {task: y})`` (or ``(x, {task: y}, {task: mask})``), the format
:func:`mtl_course.train.fit` reads, reshuffled every epoch by its own seeded
generator, so that a run is reproducible whatever else draws random numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

Batch = (
    tuple[torch.Tensor, dict[str, torch.Tensor]] | tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]
)


class TensorLoader:
    """Iterate over ``x`` and per-task ``targets`` (and ``masks``) in mini-batches.

    ``batch_size=None`` gives one full batch per epoch (full-batch training,
    the fastest choice for the tiny tabular problems of the lectures).
    ``device`` moves every tensor once, up front.

    >>> x = torch.arange(10.0).unsqueeze(1)
    >>> loader = TensorLoader(x, {"a": 2 * x}, batch_size=4, shuffle=False)
    >>> len(loader), [tuple(b[0].shape) for b in loader]
    (3, [(4, 1), (4, 1), (2, 1)])
    >>> xb, yb = next(iter(loader)); bool(torch.equal(yb["a"], 2 * xb))
    True
    """

    def __init__(
        self,
        x: torch.Tensor,
        targets: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor] | None = None,
        *,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        n = x.shape[0]
        for kind, tensors in (("target", targets), ("mask", masks or {})):
            for task, tensor in tensors.items():
                if tensor.shape[0] != n:
                    raise ValueError(
                        f"{kind} of task {task!r} has {tensor.shape[0]} rows but x has {n}; "
                        "every tensor needs one row per sample"
                    )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None (full batch), got {batch_size}")
        move = (lambda t: t.to(device)) if device is not None else (lambda t: t)
        self.x = move(x)
        self.targets = {task: move(t) for task, t in targets.items()}
        self.masks = None if masks is None else {task: move(m) for task, m in masks.items()}
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = self.x.shape[0]
        order = torch.randperm(n, generator=self.generator).to(self.x.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            index = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            x = self.x[index]
            targets = {task: t[index] for task, t in self.targets.items()}
            if self.masks is None:
                yield x, targets
            else:
                yield x, targets, {task: m[index] for task, m in self.masks.items()}

r"""The course's one data container: inputs shared by every task and one target per task.

Every generator of :mod:`mtl_course.data` returns :class:`MultiTaskData` (or a
split of them), so every lecture reads its data the same way:

* ``data.x`` -- the inputs, ``(n, ...)``, one row per case;
* ``data.targets`` -- ``{task: (n, ...)}``, the training signals; ``NaN``
  (regression) or ``-100`` (classification) marks a label a case does not have;
* ``data.masks`` -- optional ``{task: (n,)}`` booleans, ``False`` where a case
  has no label for the task (the convention of :mod:`mtl_course.losses`);
* ``data.truth`` -- optional ``{task: (n, ...)}`` noise-free ground truth,
  known because the data are synthetic (a teacher network's output, the
  regression function before noise was added);
* ``data.info`` -- anything else the generator wants to keep (the teacher,
  the true coefficients, feature names, source indices).

The arrays are NumPy arrays or torch tensors, as the generator made them;
:meth:`MultiTaskData.batch` and :meth:`MultiTaskData.loader` turn them into the
``(x, {task: y}[, {task: mask}])`` batches that :func:`mtl_course.train.fit`
reads.

>>> import numpy as np
>>> data = MultiTaskData(np.zeros((4, 3)), {"a": np.arange(4.0), "b": np.array([1.0, np.nan, 2.0, np.nan])})
>>> data.n, data.tasks, data.n_labelled()
(4, ('a', 'b'), {'a': 4, 'b': 2})
>>> x, y = data.batch()
>>> tuple(x.shape), y["a"].dtype
((4, 3), torch.float32)
>>> data.take([0, 2]).targets["b"].tolist()
[1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from mtl_course.data.loaders import Batch, TensorLoader

Array = np.ndarray | torch.Tensor

#: The label value that marks a missing class label (PyTorch's ``ignore_index``).
IGNORE_INDEX = -100


def _rows(array: Array) -> int:
    return int(array.shape[0])


def _as_tensor(array: Array, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    """Floating arrays become ``dtype``; integer and boolean arrays (class labels, masks) keep their kind."""
    tensor = torch.as_tensor(array)
    if tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.to(device) if device is not None else tensor


def _labelled(target: Array, mask: Array | None) -> int:
    t = torch.as_tensor(target)
    present = ~torch.isnan(t) if t.is_floating_point() else t != IGNORE_INDEX
    present = present.reshape(present.shape[0], -1).any(dim=1)  # a case counts when any of its entries is labelled
    if mask is not None:
        present &= torch.as_tensor(mask).bool().reshape(-1)
    return int(present.sum())


@dataclass(frozen=True)
class MultiTaskData:
    """Inputs ``x`` shared by every task, ``targets`` per task, optional ``masks``, ``truth`` and ``info``.

    See the module docstring for the conventions. Construction checks that
    every array has one row per case and names what is wrong otherwise.
    """

    x: Array
    targets: Mapping[str, Array]
    masks: Mapping[str, Array] | None = None
    truth: Mapping[str, Array] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("MultiTaskData needs at least one task in targets, got none")
        n = _rows(self.x)
        for kind, arrays in (("target", self.targets), ("mask", self.masks or {}), ("truth", self.truth or {})):
            for task, array in arrays.items():
                if task not in self.targets:
                    raise KeyError(f"{kind} for unknown task {task!r}; the tasks are {list(self.targets)}")
                if _rows(array) != n:
                    raise ValueError(f"the {kind} of task {task!r} has {_rows(array)} rows but x has {n}")
        object.__setattr__(self, "targets", dict(self.targets))

    @property
    def n(self) -> int:
        """The number of cases (rows of ``x``)."""
        return _rows(self.x)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task names, in the order of ``targets``."""
        return tuple(self.targets)

    def __len__(self) -> int:
        return self.n

    def n_labelled(self) -> dict[str, int]:
        """Per task, the number of cases that carry a label (not ``NaN``/``-100``, not masked out).

        A case with a multi-entry target (an image's pixels, one action of several) counts when any entry is
        labelled: it then contributes to the task's loss.
        """
        masks = self.masks or {}
        return {t: _labelled(y, masks.get(t)) for t, y in self.targets.items()}

    def batch(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Batch:
        """The whole set as one batch ``(x, {task: y})``, or ``(x, {task: y}, {task: mask})`` with masks."""
        x = _as_tensor(self.x, dtype, device)
        targets = {t: _as_tensor(y, dtype, device) for t, y in self.targets.items()}
        if self.masks is None:
            return x, targets
        return x, targets, {t: _as_tensor(m, dtype, device).bool() for t, m in self.masks.items()}

    def loader(
        self,
        batch_size: int | None = None,
        *,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> TensorLoader:
        """A :class:`~mtl_course.data.loaders.TensorLoader` over the set (``batch_size=None``: full batch)."""
        x, targets, *masks = self.batch(dtype=dtype)
        return TensorLoader(
            x, targets, masks[0] if masks else None, batch_size=batch_size, shuffle=shuffle, seed=seed, device=device
        )

    def take(self, rows: Sequence[int] | np.ndarray | torch.Tensor | slice) -> MultiTaskData:
        """The cases ``rows`` (indices, a boolean mask or a slice) of every array; ``info`` is kept."""
        index = rows if isinstance(rows, slice) else np.asarray(rows)

        def pick(a: Array) -> Array:
            if isinstance(a, torch.Tensor) and not isinstance(index, slice):
                return a[torch.as_tensor(index)]
            return a[index]

        def pick_all(arrays: Mapping[str, Array] | None) -> dict[str, Array] | None:
            return None if arrays is None else {t: pick(a) for t, a in arrays.items()}

        return MultiTaskData(
            pick(self.x), pick_all(self.targets), pick_all(self.masks), pick_all(self.truth), self.info
        )

    def with_targets(self, targets: Mapping[str, Array]) -> MultiTaskData:
        """The same inputs, masks, truth and info with other training signals (e.g. shuffled or dropped labels)."""
        keep = set(targets)
        masks = None if self.masks is None else {t: m for t, m in self.masks.items() if t in keep}
        truth = None if self.truth is None else {t: v for t, v in self.truth.items() if t in keep}
        return replace(self, targets=dict(targets), masks=masks, truth=truth)

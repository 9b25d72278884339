r"""Branched networks: a tree of shared trunks, the architecture that fully-adaptive feature sharing builds.

Lu, Kumar, Zhai, Cheng, Javidi & Feris, "Fully-adaptive Feature Sharing in
Multi-Task Networks with Applications in Person Attribute Classification"
(CVPR 2017, arXiv 1611.05377) start from a thin network that every task
shares and widen it top-down: at a layer, the branches above it are grouped
by task affinity, and each group gets its own copy of the layer. The result
is a tree: every layer :math:`\ell` splits the tasks into groups
:math:`g^{(\ell)}_1, \dots, g^{(\ell)}_{C_\ell}`, each group a subset of one
group of the layer below, and one block per group,

.. math::

    h^{(\ell)}_{g} = \operatorname{ReLU}\big(W^{(\ell)}_{g}\, h^{(\ell-1)}_{\pi(g)} + b^{(\ell)}_{g}\big),
    \qquad h^{(0)} = x, \qquad \hat y_t = \text{head}_t\big(h^{(L)}_{g \ni t}\big),

where :math:`\pi(g)` is the group of layer :math:`\ell - 1` that contains
:math:`g`. One group of all tasks at every layer is hard sharing; one group
per task at every layer is one network per task.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel, check_task_outputs
from mtl_course.models.blocks import LinearHead

Groups = tuple[tuple[str, ...], ...]


def _check_tree(partitions: Sequence[Sequence[Sequence[str]]], tasks: Sequence[str]) -> list[Groups]:
    """Validate the groups of every layer (bottom first): each a partition of the tasks, each finer than the last."""
    if not partitions:
        raise ValueError("a branched network needs the groups of at least one layer, got none")
    layers: list[Groups] = []
    for level, partition in enumerate(partitions):
        groups = tuple(tuple(group) for group in partition)
        flat = [t for group in groups for t in group]
        if any(not group for group in groups) or sorted(flat) != sorted(tasks):
            raise ValueError(
                f"layer {level}: the groups must split the tasks {list(tasks)} into non-empty disjoint groups, "
                f"got {[list(g) for g in groups]}"
            )
        if layers:
            for group in groups:
                if not any(set(group) <= set(parent) for parent in layers[-1]):
                    raise ValueError(
                        f"layer {level}: the group {list(group)} is not inside one group of layer {level - 1} "
                        f"{[list(g) for g in layers[-1]]}; a branch cannot join tasks that were split below it"
                    )
        layers.append(groups)
    return layers


class BranchedNetwork(MultiTaskModel):
    """A tree of ``Linear -> ReLU`` blocks: at layer ``l`` one block per group of ``partitions[l]``; a head per task.

    ``partitions`` lists, from the input upwards, the groups of task names of
    every layer; ``hidden[l]`` is the width of every block of layer ``l``.
    ``shared_parameters()`` are the blocks that two or more tasks use (a
    gradient method gets a zero gradient from the tasks that do not use a
    block); ``task_parameters(t)`` are the blocks of ``t`` alone and its head.
    When the first layers have one group of all tasks, they are the shared
    representation ``z = encode(x)`` (for MGDA-UB) and their last layer is
    the last shared layer (for GradNorm).

    >>> tree = [[["a", "b", "c"]], [["a", "b"], ["c"]]]
    >>> model = BranchedNetwork(4, [8, 6], tree, {"a": 2, "b": 2, "c": 2})
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(5, 4)).items()}
    {'a': (5, 2), 'b': (5, 2), 'c': (5, 2)}
    >>> model.parameter_counts()  # shared: 4*8+8 and 8*6+6; c: 8*6+6 and 6*2+2
    {'shared': 94, 'a': 14, 'b': 14, 'c': 68, 'total': 190}
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        partitions: Sequence[Sequence[Sequence[str]]],
        tasks: Mapping[str, int],
    ) -> None:
        tasks = check_task_outputs(tasks)
        super().__init__(list(tasks))
        hidden = list(hidden)
        if len(hidden) != len(partitions):
            raise ValueError(f"need one width per layer: {len(partitions)} layers of groups, hidden={hidden}")
        if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in [in_features, *hidden]):
            raise ValueError(f"in_features and hidden must be positive ints, got {in_features} and {hidden}")
        self.groups: list[Groups] = _check_tree(partitions, self.tasks)
        self.in_features, self.hidden = in_features, hidden
        widths = [in_features, *hidden]
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.Sequential(nn.Linear(widths[level], widths[level + 1]), nn.ReLU()) for _ in groups)
            for level, groups in enumerate(self.groups)
        )
        self.heads = nn.ModuleDict({t: LinearHead(hidden[-1], d) for t, d in tasks.items()})
        self.shared_depth = next((k for k, g in enumerate(self.groups) if len(g) > 1), len(self.groups))
        self.has_shared_representation = self.shared_depth > 0

    @classmethod
    def shared(cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int]) -> BranchedNetwork:
        """One group of all tasks at every layer: hard sharing, the thin network the procedure starts from."""
        return cls(in_features, hidden, [[list(tasks)]] * len(hidden), tasks)

    @classmethod
    def separate(cls, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int]) -> BranchedNetwork:
        """One group per task at every layer: one independent network per task."""
        return cls(in_features, hidden, [[[t] for t in tasks]] * len(hidden), tasks)

    def _parents(self, level: int) -> list[int]:
        """For every group of layer ``level``, the index of the group of the layer below that contains it."""
        below = self.groups[level - 1]
        return [next(k for k, p in enumerate(below) if set(g) <= set(p)) for g in self.groups[level]]

    def _run(self, h: list[torch.Tensor], start: int) -> list[torch.Tensor]:
        """The outputs of every group of the top layer, from ``h``, the outputs of the groups of layer ``start - 1``."""
        for level in range(start, len(self.groups)):
            parents = self._parents(level) if level > 0 else [0] * len(self.groups[0])
            h = [block(h[p]) for block, p in zip(self.blocks[level], parents, strict=True)]
        return h

    def _heads(self, top: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        where = {t: k for k, group in enumerate(self.groups[-1]) for t in group}
        return {t: self.heads[t](top[where[t]]) for t in self.tasks}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"BranchedNetwork expects inputs of shape (N, {self.in_features}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check_input(x)
        return self._heads(self._run([x], 0))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the layers every task shares (those with one group)."""
        if not self.has_shared_representation:
            return super().encode(x)
        self._check_input(x)
        for level in range(self.shared_depth):
            x = self.blocks[level][0](x)
        return x

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The task outputs from the shared representation ``z``."""
        if not self.has_shared_representation:
            return super().decode(z)
        return self._heads(self._run([z], self.shared_depth))

    def _used_by(self) -> Iterator[tuple[tuple[str, ...], nn.Module]]:
        for level, groups in enumerate(self.groups):
            yield from zip(groups, self.blocks[level], strict=True)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for group, block in self._used_by():
            if len(group) > 1:
                yield from block.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        for group, block in self._used_by():
            if group == (task,):
                yield from block.parameters()
        yield from self.heads[task].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The last layer that every task shares (for GradNorm)."""
        if not self.has_shared_representation:
            return super().last_shared_layer()
        return list(self.blocks[self.shared_depth - 1][0].parameters())

    def describe_tree(self) -> str:
        """The groups of every layer, top first, e.g. ``layer 2: [a b] [c]``."""
        lines = []
        for level in reversed(range(len(self.groups))):
            groups = " ".join("[" + " ".join(g) + "]" for g in self.groups[level])
            lines.append(f"layer {level + 1}: {groups}")
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="blocks of groups of 2+ tasks", task_specific="own blocks, heads.<task>")

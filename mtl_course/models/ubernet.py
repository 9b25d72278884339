r"""A miniature UberNet: a shared convolutional trunk with skip layers, one fusion head per task.

Kokkinos, "UberNet: Training a 'Universal' Convolutional Neural Network for
Low-, Mid-, and High-Level Vision using Diverse Datasets and Limited Memory"
(CVPR 2017, arXiv 1609.02132) shares a VGG trunk between seven tasks; every
task reads the trunk at several depths through task-specific *skip layers*
whose responses a *fusion layer* combines linearly (the paper also feeds an
image pyramid of three scales, which this miniature leaves out). Here the
trunk is a :class:`~mtl_course.models.blocks.CNNTrunk` without pooling, whose
stages all keep the image size, and the shared representation is the
concatenation of every stage's feature map (:class:`SkipTrunk`),

.. math:: z = \big[h^{(1)};\ h^{(2)};\ \dots;\ h^{(S)}\big], \qquad
          h^{(s)} = \operatorname{ReLU}\big(W^{(s)} * h^{(s-1)}\big),\ h^{(0)} = x .

Each task's :class:`FusionHead` is a 1x1 convolution of :math:`z` (a linear
map of all depths at every pixel: skip layers and fusion in one), a ReLU, and
either a per-pixel output (a dense task) or a pooled linear classifier (an
image-level task). :func:`ubernet` assembles the whole model as a
:class:`~mtl_course.models.hard_sharing.HardSharing` (so the model contract,
MGDA-UB's representation and GradNorm's last shared layer come with it);
:func:`ubernet_single_task` builds the single-task baseline of the same
architecture, one trunk per task.

:class:`Checkpointed` wraps a module so that its activations are recomputed
in the backward pass instead of stored (``torch.utils.checkpoint``), the
trade of computation for memory that lets many task heads train within a
fixed memory budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mtl_course.models.base import check_task_outputs
from mtl_course.models.blocks import CNNTrunk
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.single_task import SingleTask


class SkipTrunk(nn.Module):
    """The shared trunk with skip layers: a pooling-free :class:`CNNTrunk` whose output concatenates every stage.

    >>> trunk = SkipTrunk(in_channels=1, channels=[4, 6])
    >>> trunk.out_channels, tuple(trunk(torch.zeros(2, 1, 8, 8)).shape)
    (10, (2, 10, 8, 8))
    """

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.trunk = CNNTrunk(in_channels, channels, pool=False)
        self.out_channels = sum(self.trunk.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.trunk.forward_stages(x), dim=1)


class FusionHead(nn.Module):
    """A task's fusion layer and output: ``Conv1x1 -> ReLU``, then per pixel (``dense``) or pooled.

    A dense head ends in a 1x1 convolution, ``(N, out, H, W)``; an image-level
    head averages the map over a ``pool x pool`` grid (keeping coarse
    position, which a digit's class needs) and applies a linear layer,
    ``(N, out)``.

    >>> tuple(FusionHead(10, 3, hidden=8)(torch.zeros(2, 10, 8, 8)).shape)
    (2, 3)
    >>> tuple(FusionHead(10, 2, hidden=8, dense=True)(torch.zeros(2, 10, 8, 8)).shape)
    (2, 2, 8, 8)
    """

    def __init__(self, in_channels: int, out_features: int, hidden: int = 16, dense: bool = False, pool: int = 4):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_features", out_features), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FusionHead needs a positive int {name}, got {value!r}")
        self.in_channels, self.dense = in_channels, dense
        self.fuse = nn.Sequential(nn.Conv2d(in_channels, hidden, kernel_size=1), nn.ReLU())
        if dense:
            self.out: nn.Module = nn.Conv2d(hidden, out_features, kernel_size=1)
        else:
            self.out = nn.Sequential(
                nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(hidden * pool * pool, out_features)
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 4 or z.shape[1] != self.in_channels:
            raise ValueError(
                f"FusionHead expects features of shape (N, {self.in_channels}, H, W), got {tuple(z.shape)}"
            )
        return self.out(self.fuse(z))


class Checkpointed(nn.Module):
    """``module`` run under ``torch.utils.checkpoint``: only its input is kept for the backward pass.

    While gradients are recorded, the activations inside ``module`` are not
    stored; the backward pass runs ``module`` forward once more to recompute
    them (Chen, Xu, Zhang & Guestrin, "Training deep nets with sublinear memory
    cost", arXiv 1604.06174). Outputs and gradients equal those of ``module``.

    >>> head = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    >>> x = torch.ones(2, 3)
    >>> bool(torch.equal(Checkpointed(head)(x), head(x)))
    True
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"Checkpointed wraps a torch.nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self.module, x, use_reentrant=False)
        return self.module(x)


def _heads(in_channels: int, tasks: Mapping[str, int], dense: Sequence[str], hidden: int) -> dict[str, nn.Module]:
    tasks = check_task_outputs(tasks)
    unknown = [t for t in dense if t not in tasks]
    if unknown:
        raise KeyError(f"dense task(s) {unknown} are not among the tasks {list(tasks)}")
    return {t: FusionHead(in_channels, d, hidden, dense=t in dense) for t, d in tasks.items()}


def ubernet(
    in_channels: int,
    channels: Sequence[int],
    tasks: Mapping[str, int],
    dense: Sequence[str] = (),
    hidden: int = 16,
    checkpoint_heads: bool = False,
) -> HardSharing:
    """One :class:`SkipTrunk` shared by all ``tasks`` (name -> outputs), one :class:`FusionHead` per task.

    Tasks named in ``dense`` get per-pixel outputs. ``checkpoint_heads`` wraps
    every head in :class:`Checkpointed`.

    >>> model = ubernet(1, [8, 8], {"digit": 10, "ink": 2}, dense=["ink"], hidden=4)
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(3, 1, 8, 8)).items()}
    {'digit': (3, 10), 'ink': (3, 2, 8, 8)}
    """
    trunk = SkipTrunk(in_channels, channels)
    heads = _heads(trunk.out_channels, tasks, dense, hidden)
    if checkpoint_heads:
        heads = {t: Checkpointed(h) for t, h in heads.items()}
    return HardSharing(trunk, heads)


def ubernet_single_task(
    in_channels: int, channels: Sequence[int], tasks: Mapping[str, int], dense: Sequence[str] = (), hidden: int = 16
) -> SingleTask:
    """The baseline: per task, its own :class:`SkipTrunk` and :class:`FusionHead` (nothing shared).

    >>> model = ubernet_single_task(1, [8], {"digit": 10, "parity": 2}, hidden=4)
    >>> model.parameter_counts()["digit"] == ubernet(1, [8], {"digit": 10}, hidden=4).parameter_counts()["total"]
    True
    """
    heads = _heads(sum(channels), tasks, dense, hidden)
    return SingleTask({t: nn.Sequential(SkipTrunk(in_channels, channels), head) for t, head in heads.items()})

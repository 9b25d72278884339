r"""HyperFace's shared trunk: "hyperfeatures" fused from several depths of a CNN, against the last layer alone.

Ranjan, Patel & Chellappa, "HyperFace: A Deep Multi-task Learning Framework
for Face Detection, Landmark Localization, Pose Estimation, and Gender
Recognition" (IEEE TPAMI 2019, arXiv 1603.01249) argue that the early layers
of a CNN keep the *where* (edges, corners: landmarks and pose need them) and
the deep layers the *what* (face or not, gender). They fuse both: the feature
maps of several depths are brought to one spatial size, concatenated and
mixed by a :math:`1 \times 1` convolution, and a fully connected layer turns
the result into the one shared representation from which every task's head
reads. With stage outputs :math:`h_1, \dots, h_K` of a CNN and :math:`r(\cdot)`
resizing to the size of :math:`h_K`,

.. math::

    z = \operatorname{ReLU}\!\Big(W_{fc}\,\operatorname{vec}\,\operatorname{ReLU}\big(
        W_{1\times1} * [\,r(h_1); \dots; r(h_{K-1}); h_K\,]\big)\Big),

and the ablation reads only :math:`h_K` (the same :math:`1 \times 1`
convolution and fully connected layer, with fewer input channels). Here
:math:`r` is average pooling (parameter-free); the paper instead brings
early layers to size with strided convolutions of their own.

The model is :class:`~mtl_course.models.hard_sharing.HardSharing` with a
:class:`HyperFeatures` trunk: the fused vector is the shared representation
``z`` (so MGDA-UB works) and the fully connected layer is the last shared
layer (GradNorm's ``W``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.models.base import check_task_outputs
from mtl_course.models.blocks import CNNTrunk, LinearHead
from mtl_course.models.hard_sharing import HardSharing


class HyperFeatures(nn.Module):
    """A :class:`~mtl_course.models.blocks.CNNTrunk` whose stage outputs are fused (``fuse=True``) or not.

    ``forward(x)`` returns ``z`` ``(N, hidden)``; ``fused_stages`` names the
    stages that enter the fusion (all of them, or only the last).

    >>> trunk = HyperFeatures(in_channels=1, channels=[4, 8, 8], size=16, fused_channels=8, hidden=16)
    >>> tuple(trunk(torch.zeros(2, 1, 16, 16)).shape), trunk.fused_stages
    ((2, 16), [0, 1, 2])
    >>> HyperFeatures(1, [4, 8, 8], size=16, fuse=False).fused_stages
    [2]
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        size: int,
        *,
        fuse: bool = True,
        fused_channels: int = 32,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.cnn = CNNTrunk(in_channels, channels)
        last = size // 2 ** len(self.cnn)
        if last < 1 or size % 2 ** len(self.cnn):
            raise ValueError(
                f"an image of size {size} must be divisible by 2 ** {len(self.cnn)} (one halving per stage), "
                f"got a remainder of {size % 2 ** len(self.cnn)}"
            )
        self.size, self.fuse, self.last_size = size, fuse, last
        self.fused_stages = list(range(len(self.cnn))) if fuse else [len(self.cnn) - 1]
        # stage k has size size / 2 ** (k + 1): a kernel-and-stride-f convolution brings it to the last stage's size
        self.resize = nn.ModuleList(
            nn.Conv2d(c, c, kernel_size=2 ** (len(self.cnn) - 1 - k), stride=2 ** (len(self.cnn) - 1 - k))
            for k, c in enumerate(self.cnn.out_channels[:-1])
            if k in self.fused_stages
        )
        width = sum(self.cnn.out_channels[k] for k in self.fused_stages)
        self.mix = nn.Conv2d(width, fused_channels, kernel_size=1)
        self.fc = nn.Linear(fused_channels * last * last, hidden)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"HyperFeatures expects images of shape (N, {self.cnn.in_channels}, {self.size}, {self.size}), "
                f"got {tuple(x.shape)}"
            )
        stages = self.cnn.forward_stages(x)
        maps = [F.relu(resize(h)) for resize, h in zip(self.resize, stages[:-1], strict=False)] + [stages[-1]]
        fused = F.relu(self.mix(torch.cat(maps, dim=1)))
        return F.relu(self.fc(fused.flatten(1)))

    def extra_repr(self) -> str:
        return f"size={self.size}, fuse={self.fuse}, fused_stages={self.fused_stages}"


class HyperFace(HardSharing):
    """Hard sharing on :class:`HyperFeatures`: one head per task (``tasks``: name -> output size).

    ``head_hidden`` adds per-task hidden layers (HyperFace gives every task a
    fully connected layer of its own before its output).

    >>> model = HyperFace({"face": 2, "landmarks": 10}, size=32)
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(3, 1, 32, 32)).items()}
    {'face': (3, 2), 'landmarks': (3, 10)}
    >>> HyperFace({"face": 2}, size=32, fuse=False).trunk.fused_stages
    [2]
    """

    def __init__(
        self,
        tasks: Mapping[str, int],
        *,
        size: int = 32,
        channels: Sequence[int] = (8, 16, 32),
        fuse: bool = True,
        fused_channels: int = 32,
        hidden: int = 64,
        head_hidden: Sequence[int] = (),
        in_channels: int = 1,
    ) -> None:
        tasks = check_task_outputs(tasks)
        trunk = HyperFeatures(
            in_channels, list(channels), size, fuse=fuse, fused_channels=fused_channels, hidden=hidden
        )
        super().__init__(trunk, {t: LinearHead(hidden, d, head_hidden) for t, d in tasks.items()})

    def extra_repr(self) -> str:
        fusion = "hyperfeatures of every stage" if self.trunk.fuse else "the last stage only"
        return self.describe_sharing(shared=f"CNN trunk reading {fusion}", task_specific="heads.<task>")

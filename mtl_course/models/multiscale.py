r"""A two-scale network with one shared trunk and one dense head per task (lecture B1).

After Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels
with a Common Multi-Scale Convolutional Architecture" (ICCV 2015, arXiv
1411.4734): a *coarse* scale sees the whole image through fully connected
layers and predicts a coarse, spatially varying feature map; a *refinement*
scale combines it with convolutional features of the image at a higher
resolution; every output map is produced from these features. The paper has
three scales on 320 × 240 images and mostly trains one network per task;
this small version has two scales (plus full-resolution image features), one
shared trunk and one head per task, so that one network predicts all three
maps:

.. math::

    c &= \operatorname{up}_2\big(\mathrm{FC}(\mathrm{conv}(\operatorname{pool}_4 x))\big)
        \quad\text{(scale 1: the whole image, } H/4\text{)} \\
    f &= \mathrm{conv}\big([\mathrm{conv}_{/2}(x),\, c]\big)
        \quad\text{(scale 2: refinement, } H/2\text{)} \\
    z &= \big[\operatorname{up}_2(f),\, \mathrm{conv}(x)\big], \qquad
    \hat y_t = h_t(z) \quad\text{(full resolution)}

A task with one output channel (depth) returns ``(B, H, W)``; the tasks in
``unit`` (normals) are scaled to unit length along the channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.models.base import check_task_outputs
from mtl_course.models.hard_sharing import HardSharing


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU())


class MultiScaleTrunk(nn.Module):
    """The shared part: the coarse full-image scale, the refinement scale and full-resolution image features.

    ``forward(x)`` maps ``(B, in_channels, size, size)`` to the shared
    representation ``z`` ``(B, 2 * width, size, size)``; ``size`` must be a
    multiple of 8.

    >>> tuple(MultiScaleTrunk(3, 16, width=8)(torch.zeros(2, 3, 16, 16)).shape)
    (2, 16, 16, 16)
    """

    def __init__(self, in_channels: int, size: int, width: int = 8, coarse_hidden: int = 64) -> None:
        super().__init__()
        if size < 8 or size % 8:
            raise ValueError(f"MultiScaleTrunk needs an image size that is a multiple of 8, got {size}")
        if min(in_channels, width, coarse_hidden) < 1:
            raise ValueError(
                f"in_channels, width and coarse_hidden must be positive, got {in_channels}, {width}, {coarse_hidden}"
            )
        self.in_channels, self.size, self.width = in_channels, size, width
        quarter = size // 4
        # scale 1: the whole image at 1/4 resolution, then fully connected layers (every output sees every pixel)
        self.coarse_conv = nn.Sequential(nn.AvgPool2d(4), _conv(in_channels, width), _conv(width, width, stride=2))
        self.coarse_fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * (quarter // 2) ** 2, coarse_hidden),
            nn.ReLU(),
            nn.Linear(coarse_hidden, width * quarter**2),
            nn.ReLU(),
        )
        # scale 2: image features at 1/2 resolution, combined with the upsampled coarse map
        self.fine_conv = _conv(in_channels, width, stride=2)
        self.refine = nn.Sequential(_conv(2 * width, width), _conv(width, width))
        # full resolution: local image features for the heads
        self.image_conv = _conv(in_channels, width)

    @property
    def out_channels(self) -> int:
        return 2 * self.width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, self.size, self.size):
            raise ValueError(
                f"MultiScaleTrunk expects images of shape (B, {self.in_channels}, {self.size}, {self.size}), "
                f"got {tuple(x.shape)}"
            )
        quarter = self.size // 4
        coarse = self.coarse_fc(self.coarse_conv(x)).view(-1, self.width, quarter, quarter)
        coarse = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        fine = self.refine(torch.cat([self.fine_conv(x), coarse], dim=1))
        fine = F.interpolate(fine, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.cat([fine, self.image_conv(x)], dim=1)


class MultiScaleNet(HardSharing):
    """Hard sharing of one :class:`MultiScaleTrunk` with a ``conv3x3 -> ReLU -> conv1x1`` head per task.

    ``tasks`` maps a task to its output channels (depth 1, normals 3,
    semantic labels the number of classes); a 1-channel output is returned
    as ``(B, H, W)`` and the tasks in ``unit`` are normalised to unit length.
    With one task it is the single-task network of the same trunk: the
    sceptic's baseline of equal capacity per task.

    >>> net = MultiScaleNet(3, 16, {"depth": 1, "normals": 3, "semantic": 4}, unit=["normals"])
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 3, 16, 16)).items()}
    {'depth': (2, 16, 16), 'normals': (2, 3, 16, 16), 'semantic': (2, 4, 16, 16)}
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        tasks: Mapping[str, int],
        unit: Sequence[str] = (),
        width: int = 8,
        coarse_hidden: int = 64,
        head_width: int = 8,
    ) -> None:
        tasks = check_task_outputs(tasks)
        unknown = [t for t in unit if t not in tasks]
        if unknown:
            raise KeyError(f"unit-length task(s) {unknown} are not among the tasks {list(tasks)}")
        trunk = MultiScaleTrunk(in_channels, size, width, coarse_hidden)
        heads = {
            t: nn.Sequential(_conv(trunk.out_channels, head_width), nn.Conv2d(head_width, dim, 1))
            for t, dim in tasks.items()
        }
        super().__init__(trunk, heads)
        self.unit = list(unit)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head on ``z``: 1-channel maps squeezed to ``(B, H, W)``, the ``unit`` tasks normalised."""
        out = {}
        for task in self.tasks:
            y = self.heads[task](z)
            if task in self.unit:
                y = F.normalize(y, dim=1)
            out[task] = y[:, 0] if y.shape[1] == 1 else y
        return out

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="trunk (coarse + refinement scales)", task_specific="heads.<task>")

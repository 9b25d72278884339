r"""One convolutional trunk for grasping and pushing, one head per task (lecture B6).

Pinto and Gupta, "Learning to push by grasping: using multiple tasks for
effective learning" (ICRA 2017, arXiv 1609.09025): the grasp, push and poke
networks share their convolutional layers, and each task has its own
layers on top. Like the authors' earlier grasp network (Pinto & Gupta,
ICRA 2016, arXiv 1509.06825, abstract: "an 18-way binary classification
over image patches"), each head here scores
*every* action and the loss reads the tried one (the others are missing
labels):

.. math::

    z = f_{\theta_{sh}}(x), \qquad
    \hat g = h_{\text{grasp}}(z) \in \mathbb R^{K} \ \text{(logits, one per gripper angle)}, \qquad
    \hat d = h_{\text{push}}(z) \in \mathbb R^{D \times 2} \ \text{(move and turn, one row per push direction)}.

It is a :class:`~mtl_course.models.hard_sharing.HardSharing` model: a
:class:`~mtl_course.models.blocks.CNNTrunk` and one :class:`ActionHead` per
task; the heads flatten the trunk's feature map instead of pooling it,
because where the object lies relative to the interaction point (the patch
centre) decides a grasp.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtl_course.models.blocks import CNNTrunk
from mtl_course.models.hard_sharing import HardSharing


class ActionHead(nn.Module):
    """Flatten the feature map and map it linearly to one output (or ``outputs`` values) per action.

    ``in_shape`` is the trunk's output ``(C, H, W)``; the result is
    ``(N, actions)``, or ``(N, actions, outputs)`` when ``outputs`` is given.
    ``hidden`` inserts a ``Linear -> ReLU`` layer of that width first.

    >>> head = ActionHead((16, 4, 4), actions=8, outputs=2)
    >>> tuple(head(torch.zeros(3, 16, 4, 4)).shape)
    (3, 8, 2)
    """

    def __init__(
        self, in_shape: Sequence[int], actions: int, outputs: int | None = None, hidden: int | None = None
    ) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise ValueError(f"in_shape must be a feature map's (C, H, W), got {in_shape!r}")
        optional = {"hidden": hidden, "outputs": outputs}
        for name, value in (("actions", actions), *((k, v) for k, v in optional.items() if v is not None)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.actions, self.outputs = actions, outputs
        features = self.in_shape[0] * self.in_shape[1] * self.in_shape[2]
        width = features if hidden is None else hidden
        layers: list[nn.Module] = [nn.Flatten()]
        if hidden is not None:
            layers += [nn.Linear(features, hidden), nn.ReLU()]
        self.layers = nn.Sequential(*layers, nn.Linear(width, actions * (outputs or 1)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if tuple(z.shape[1:]) != self.in_shape:
            raise ValueError(
                f"ActionHead expects features of shape (N, {', '.join(map(str, self.in_shape))}), got {tuple(z.shape)}"
            )
        out = self.layers(z)
        return out if self.outputs is None else out.view(-1, self.actions, self.outputs)


class GraspPushNetwork(HardSharing):
    """A shared :class:`~mtl_course.models.blocks.CNNTrunk` and the heads ``grasp`` ``(N, K)`` and ``push``
    ``(N, D, 2)`` on ``size`` × ``size`` one-channel patches (Pinto & Gupta, ICRA 2017, arXiv 1609.09025).

    >>> net = GraspPushNetwork(size=16, channels=[8, 16], grasp_angles=8, push_directions=8)
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 1, 16, 16)).items()}
    {'grasp': (2, 8), 'push': (2, 8, 2)}
    >>> net.parameter_counts()
    {'shared': 1248, 'grasp': 2056, 'push': 4112, 'total': 7416}
    """

    def __init__(
        self,
        size: int = 16,
        channels: Sequence[int] = (8, 16),
        grasp_angles: int = 8,
        push_directions: int = 8,
        hidden: int | None = None,
    ) -> None:
        trunk = CNNTrunk(1, channels)
        side = size // 2 ** len(trunk)
        if side < 1 or size % 2 ** len(trunk):
            raise ValueError(
                f"a trunk of {len(trunk)} pooling stages needs size divisible by {2 ** len(trunk)}, got size={size}"
            )
        in_shape = (trunk.out_features, side, side)
        super().__init__(
            trunk,
            {
                "grasp": ActionHead(in_shape, grasp_angles, hidden=hidden),
                "push": ActionHead(in_shape, push_directions, outputs=2, hidden=hidden),
            },
        )
        self.size = size

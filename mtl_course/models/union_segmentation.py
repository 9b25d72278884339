r"""One fully convolutional network whose single output layer is the union of every task's labels.

Moeskops et al. (MICCAI 2016, arXiv 1704.03379) segment brain MRI (six
tissues), breast MRI (the pectoral muscle) and cardiac CTA (the coronary
arteries) with *one* CNN that is not told the modality: its softmax output
covers the union of the three label sets plus one shared background, so the
"tasks" share every parameter, the output layer included. Per pixel :math:`i`
with features :math:`h_i` of the shared layers,

.. math::

    p_i = \operatorname{softmax}(W h_i + b) \in \Delta^{C - 1}, \qquad
    C = 1 + \sum_m |\mathcal{L}_m| ,

with :math:`\mathcal{L}_m` the labels of modality :math:`m` (disjoint sets).

In the course's model contract (:class:`~mtl_course.models.base.MultiTaskModel`)
each modality is one task, and every task reads the *same* output tensor:
``model(x) == {m: logits for m in tasks}``. ``shared_parameters()`` is the whole
network and ``task_parameters(m)`` is empty; the task losses differ only in the
images they are computed on (each modality's targets label its own images
only). The same class with one task name is the *dedicated* network of the
same size that the paper compares against.

It keeps the image resolution (no pooling), its fully connected layer is a
1 x 1 convolution, with ELU activations; summaries of the paper describe its
network so, which the course could not check in the full text. Dilated 3 x 3
convolutions widen the receptive field cheaply, and each layer is normalised
*per image* (``GroupNorm`` with one group: the mean and sd over the image's
channels and pixels), not per batch: batch statistics mix the modalities of
a mini-batch in proportions that change from batch to batch, and in the
course's first trial a joint network with batch normalisation scored far
lower in evaluation mode (running statistics) than with per-image
normalisation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel


def _positive_ints(what: str, values: Sequence[int]) -> list[int]:
    values = list(values)
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ValueError(f"{what} must be a non-empty list of positive ints, got {values!r}")
    return values


class UnionSegmentationNet(MultiTaskModel):
    """A resolution-preserving CNN with one output layer over the union label space, shared by every task.

    ``channels[k]`` and ``dilations[k]`` describe the ``k``-th 3 x 3
    convolution (``Conv -> GroupNorm(1) -> ELU``), ``hidden`` the 1 x 1
    convolution after them (the paper's fully connected layer), and
    ``n_classes`` the union label space, background included. The
    convolutions see a window ``receptive_field = 1 + 2 * sum(dilations)``
    pixels wide; the per-image normalisation adds two numbers per layer
    computed from the whole image (its mean and sd).

    >>> net = UnionSegmentationNet(["brain", "cta"], 1, [8, 8], [1, 2], hidden=16, n_classes=9)
    >>> out = net(torch.zeros(2, 1, 12, 12))
    >>> {t: tuple(y.shape) for t, y in out.items()}, out["brain"] is out["cta"]
    ({'brain': (2, 9, 12, 12), 'cta': (2, 9, 12, 12)}, True)
    >>> net.parameter_counts()  # (80 + 16) + (584 + 16) + (144 + 32) + 153: conv + norm, 1 x 1, output
    {'shared': 1025, 'brain': 0, 'cta': 0, 'total': 1025}
    >>> net.receptive_field
    7
    """

    has_shared_representation = True

    def __init__(
        self,
        tasks: Sequence[str],
        in_channels: int,
        channels: Sequence[int],
        dilations: Sequence[int],
        hidden: int,
        n_classes: int,
    ) -> None:
        super().__init__(tasks)
        channels = _positive_ints("channels", channels)
        dilations = _positive_ints("dilations", dilations)
        if len(channels) != len(dilations):
            raise ValueError(f"need one dilation per convolution: channels {channels}, dilations {dilations}")
        _positive_ints("in_channels and hidden", [in_channels, hidden])
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes counts the background too and must be an int >= 2, got {n_classes!r}")
        self.in_channels, self.n_classes = in_channels, n_classes
        self.receptive_field = 1 + 2 * sum(dilations)
        layers: list[nn.Module] = []
        previous = in_channels
        for width, dilation in zip(channels, dilations, strict=True):
            layers += [
                nn.Conv2d(previous, width, 3, padding=dilation, dilation=dilation),
                nn.GroupNorm(1, width),  # per image: the modalities of a batch do not mix
                nn.ELU(),
            ]
            previous = width
        layers += [nn.Conv2d(previous, hidden, 1), nn.GroupNorm(1, hidden), nn.ELU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(hidden, n_classes, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel features :math:`h` of the shared layers, ``(B, hidden, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects images (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        return self.features(x)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The union logits :math:`W h + b`, ``(B, n_classes, H, W)``: one tensor that every task reads."""
        logits = self.classifier(z)
        return dict.fromkeys(self.tasks, logits)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        return iter(())

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The union output layer (shared by every task), where GradNorm measures the task gradients."""
        return list(self.classifier.parameters())

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="every layer, the union output layer included", task_specific="nothing")

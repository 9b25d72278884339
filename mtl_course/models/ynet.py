r"""Y-Net: a U-Net with a parallel classification branch at its bottleneck.

Mehta, Mercan, Bartlett, Weaver, Elmore & Shapiro, "Y-Net: Joint
Segmentation and Classification for Diagnosis of Breast Biopsy Images",
MICCAI 2018, arXiv 1806.01313. One encoder feeds two outputs, hence the
"Y": the segmentation decoder (with the encoder's skip connections) and a
classification branch that reads the encoder's last feature map:

.. math::

    \{f_1, \dots, f_D\} = E_{\theta_{sh}}(x), \qquad
    \hat y_{seg} = U_{\theta_{seg}}(f_1, \dots, f_D), \qquad
    \hat y_{cls} = W\,\overline{f_D} + b

(:math:`\overline{f_D}`: the bottleneck averaged over space). Built from the
course's blocks as a :class:`~mtl_course.models.hard_sharing.HardSharing`
model: a :class:`~mtl_course.models.blocks.UNetEncoder` trunk, a
:class:`~mtl_course.models.blocks.UNetDecoder` and a
:class:`~mtl_course.models.blocks.BottleneckHead`. The paper's encoder and
decoder blocks (residual and ESP units, PSP decoding) are replaced by the
course's plain double convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtl_course.models.blocks import BottleneckHead, UNetDecoder, UNetEncoder
from mtl_course.models.hard_sharing import HardSharing


def y_net(
    in_channels: int,
    channels: Sequence[int],
    n_tissues: int,
    n_classes: int,
    segmentation: str = "segmentation",
    classification: str = "diagnosis",
) -> HardSharing:
    """A Y-Net: tasks ``segmentation`` (``n_tissues`` dense logits) and ``classification`` (``n_classes`` logits).

    >>> import torch
    >>> model = y_net(1, [8, 16], n_tissues=3, n_classes=3)
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(2, 1, 16, 16)).items()}
    {'segmentation': (2, 3, 16, 16), 'diagnosis': (2, 3)}
    >>> y_net(1, [8, 16], 3, 3, segmentation="x", classification="x")
    Traceback (most recent call last):
    ...
    ValueError: Y-Net needs two different task names, got 'x' twice
    """
    if segmentation == classification:
        raise ValueError(f"Y-Net needs two different task names, got {segmentation!r} twice")
    for what, k in (("n_tissues", n_tissues), ("n_classes", n_classes)):
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"{what} must be an int >= 2 (classes of a softmax), got {k!r}")
    channels = list(channels)
    encoder = UNetEncoder(in_channels, channels)
    return HardSharing(
        encoder,
        {segmentation: UNetDecoder(channels, n_tissues), classification: BottleneckHead(channels[-1], n_classes)},
    )

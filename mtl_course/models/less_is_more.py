r"""One network for view classification and the landmarks of every view (Xu et al., lecture B11).

Xu, Huo, Park, Landman, Milkowski, Grbic & Zhou, "Less is More: Simultaneous
View Classification and Landmark Detection for Abdominal Ultrasound Images"
(MICCAI 2018, arXiv 1805.10376): a shared encoder, a classification branch
that names the view, and **one** decoder shared by the landmark tasks of all
views, which outputs a heat map per landmark of every view. An image's view
decides which of the heat maps are read (and, in training, which are
supervised: :func:`~mtl_course.losses.heatmap_cross_entropy`).

.. math::

    z = f_{\theta_{sh}}(x), \qquad
    \hat v = \arg\max_v\, g_{\theta_{\mathrm{view}}}(z)_v, \qquad
    Z = d_{\theta_{\mathrm{lm}}}(z) \in \mathbb R^{2V \times h \times w},

and the landmarks of view :math:`v` are read from channels :math:`2v, 2v+1`
of :math:`Z`. The paper's network is far larger (global convolutional
kernels, boundary refinement, residual blocks; its figure and parameter
counts are not checked here); ours keeps the layout: a small
:class:`~mtl_course.models.blocks.CNNTrunk` (two ``conv-ReLU-pool`` stages,
:math:`S \to S/4`), a classification head (a convolution, global max
pooling, a linear layer) and a heat-map decoder (upsampling by 2, a
convolution, a :math:`1 \times 1` convolution to one heat map per landmark at
half the image resolution). It is a :class:`~mtl_course.models.HardSharing`
model with these two heads, so it honours the model contract and trains with
every weighting method; a network with only one of the heads is the
single-task baseline of the same size.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mtl_course.models.blocks import CNNTrunk
from mtl_course.models.hard_sharing import HardSharing


class HeatmapDecoder(nn.Sequential):
    """Heat maps from a feature map: upsample by 2, ``conv3x3 -> ReLU``, then a 1x1 convolution to ``landmarks`` maps.

    >>> import torch
    >>> tuple(HeatmapDecoder(16, 8)(torch.zeros(2, 16, 8, 8)).shape)
    (2, 8, 16, 16)
    """

    def __init__(self, in_channels: int, landmarks: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(in_channels, landmarks, kernel_size=1),
        )


class ViewClassifierHead(nn.Sequential):
    """The classification branch: ``conv3x3 -> ReLU``, global max pooling, a linear layer to ``views`` logits.

    Max pooling asks "is this feature anywhere in the image?"; on the demo's
    views it learns faster than average pooling, which dilutes a small organ in
    the background.

    >>> import torch
    >>> tuple(ViewClassifierHead(16, 4)(torch.zeros(2, 16, 8, 8)).shape)
    (2, 4)
    """

    def __init__(self, in_channels: int, views: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(in_channels, views),
        )


class ViewLandmarkNet(HardSharing):
    """Xu et al.'s design at the course's scale: a shared encoder, a ``view`` head and a shared ``landmarks`` decoder.

    ``views`` (the number of view classes) adds the ``view`` task,
    ``landmarks`` (heat maps: two per view for the joint model, two for a
    network of one view) adds the ``landmarks`` task; give both for the joint
    model, one of them for a single-task network of the same size.

    >>> import torch
    >>> net = ViewLandmarkNet(views=4, landmarks=8)
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 1, 32, 32)).items()}
    {'view': (2, 4), 'landmarks': (2, 8, 16, 16)}
    >>> net.parameter_counts()
    {'shared': 1248, 'view': 2388, 'landmarks': 2456, 'total': 6092}
    """

    def __init__(
        self,
        views: int | None = None,
        landmarks: int | None = None,
        channels: Sequence[int] = (8, 16),
        in_channels: int = 1,
    ) -> None:
        for name, value in (("views", views), ("landmarks", landmarks)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if views is None and landmarks is None:
            raise ValueError("ViewLandmarkNet needs views, landmarks or both; got neither")
        trunk = CNNTrunk(in_channels, channels)
        width = trunk.out_channels[-1]
        heads: dict[str, nn.Module] = {}
        if views is not None:
            heads["view"] = ViewClassifierHead(width, views)
        if landmarks is not None:
            heads["landmarks"] = HeatmapDecoder(width, landmarks)
        super().__init__(trunk, heads)

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="trunk (encoder)", task_specific="heads.view, heads.landmarks (decoder)")

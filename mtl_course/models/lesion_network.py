r"""One encoder, a decoder per lesion kind and a lesion-presence classifier (Playout, Duval & Cheriet, lecture B13).

Playout, Duval & Cheriet ("A multitask learning architecture for
simultaneous segmentation of bright and red lesions in fundus images",
MICCAI 2018, doi:10.1007/978-3-030-00934-2_37) segment bright lesions
(exudates, cotton-wool spots) and red lesions (microaneurysms,
haemorrhages) with one shared encoder and one decoder per lesion kind, and
attach an auxiliary classifier at the end of the encoder that says whether
the image holds lesions at all [abstract; the layer details of the paper are
not reproduced]. In the course's terms it is hard sharing with a U-Net trunk
(:class:`~mtl_course.models.blocks.UNetEncoder`), two
:class:`~mtl_course.models.blocks.UNetDecoder` heads and one
:class:`~mtl_course.models.blocks.BottleneckHead`:

.. math::

    z = f_{\theta_{sh}}(x), \qquad
    \hat y_{\mathrm{bright}} = g_{\theta_b}(z), \qquad
    \hat y_{\mathrm{red}} = g_{\theta_r}(z), \qquad
    \hat c = h_{\theta_c}(z_{\mathrm{bottleneck}}),

with pixel logits :math:`\hat y` ``(B, 1, H, W)`` and an image logit
:math:`\hat c` ``(B, 1)``. The classifier sees only the deepest feature map,
so its gradient reaches the encoder and nothing else: what it can teach the
decoders, it teaches through the shared features.

Every lesion decoder's output bias starts at the log-odds of the lesions'
prior frequency :math:`\pi` (``prior``), :math:`b = \log \frac{\pi}{1 - \pi}`
(the initialisation for rare classes of Lin et al., "Focal loss for dense
object detection", ICCV 2017, arXiv 1708.02002): the untrained network then
predicts "background" with probability :math:`1 - \pi` everywhere instead of
1/2, and training does not spend its first steps (and, for the
:math:`\kappa` loss, a phase of "lesion everywhere") just moving the bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mtl_course.models.blocks import BottleneckHead, UNetDecoder, UNetEncoder
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.single_task import SingleTask

#: The lesion decoders of the network, in output order.
LESION_TASKS: tuple[str, str] = ("bright", "red")
#: The image-level auxiliary task at the end of the encoder.
PRESENCE_TASK = "presence"


def _prior_logit(prior: float | None) -> float | None:
    if prior is None:
        return None
    if not 0 < prior < 1:
        raise ValueError(f"prior is the lesions' pixel frequency and must lie in (0, 1) or be None, got {prior}")
    return math.log(prior / (1 - prior))


def _init_bias(decoder: UNetDecoder, logit: float | None) -> UNetDecoder:
    if logit is not None:
        torch.nn.init.constant_(decoder.head.conv.bias, logit)
    return decoder


def lesion_network(
    channels: Sequence[int], *, presence: bool = True, prior: float | None = 0.005, in_channels: int = 3
) -> HardSharing:
    """The shared-encoder network: a U-Net encoder, a decoder per lesion kind and (if ``presence``) the classifier.

    ``channels`` are the encoder's widths per level (``H`` and ``W`` must be
    divisible by ``2 ** (len(channels) - 1)``). Tasks: ``bright``, ``red``
    (pixel logits ``(B, 1, H, W)``) and ``presence`` (an image logit ``(B, 1)``).
    ``prior`` sets the decoders' initial output bias (module docstring;
    ``None``: PyTorch's default initialisation).

    >>> net = lesion_network([4, 8])
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 3, 8, 8)).items()}
    {'bright': (2, 1, 8, 8), 'red': (2, 1, 8, 8), 'presence': (2, 1)}
    >>> lesion_network([4, 8], presence=False).tasks
    ['bright', 'red']
    """
    encoder = UNetEncoder(in_channels, channels)
    logit = _prior_logit(prior)
    heads: dict[str, torch.nn.Module] = {t: _init_bias(UNetDecoder(channels, 1), logit) for t in LESION_TASKS}
    if presence:
        heads[PRESENCE_TASK] = BottleneckHead(encoder.out_features, 1)
    return HardSharing(encoder, heads)


def separate_lesion_networks(
    channels: Sequence[int], *, prior: float | None = 0.005, in_channels: int = 3
) -> SingleTask:
    """The sceptic's baseline: a whole U-Net per lesion kind, nothing shared (at least the capacity of the shared one).

    >>> shared, separate = lesion_network([4, 8], presence=False), separate_lesion_networks([4, 8])
    >>> separate.parameter_counts()["total"] - shared.parameter_counts()["total"] == shared.parameter_counts()["shared"]
    True
    """
    net = SingleTask.unet(in_channels, channels, dict.fromkeys(LESION_TASKS, 1))
    logit = _prior_logit(prior)
    for t in LESION_TASKS:
        _init_bias(net.networks[t][1], logit)
    return net

r"""Joint motion estimation and segmentation with one shared encoder (lecture B16).

Qin, Bai, Schlemper, Petersen, Piechnik, Neubauer & Rueckert, "Joint Learning
of Motion Estimation and Segmentation for Cardiac MR Image Sequences", MICCAI
2018, arXiv 1806.04066. A Siamese encoder :math:`E` (one set of weights)
encodes the source frame :math:`I_s` and the target frame :math:`I_t`; the
motion branch reads both encodings and predicts a dense flow
:math:`f = (u, v)`; a spatial transformer warps the source by it,

.. math:: \hat I_t(p) = I_s\big(p + f(p)\big),

sampled bilinearly (:func:`warp`); the segmentation branch reads the target's
encoding alone and predicts its label map. The motion branch needs no labels
(its loss compares :math:`\hat I_t` with :math:`I_t`), so the encoder learns
from every frame, the segmentation branch only from the annotated ones.

The course's version is a small 2-D U-Net (:class:`~mtl_course.models.blocks.UNetEncoder`
and :class:`~mtl_course.models.blocks.UNetDecoder`) instead of the paper's
VGG-style FCN, and it estimates the motion of one pair at a time (the paper's
motion branch is recurrent over the sequence).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.models.base import MultiTaskModel, last_layer_parameters
from mtl_course.models.blocks import UNetDecoder, UNetEncoder


def _pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    return torch.meshgrid(ys, xs, indexing="ij")


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    r"""The spatial transformer: ``image`` sampled at every pixel moved by ``flow`` (backward warping).

    .. math:: \operatorname{warp}(I, f)(y, x) = I\big(y + v(y, x),\; x + u(y, x)\big)

    ``image`` is ``(B, C, H, W)``; ``flow`` is ``(B, 2, H, W)`` **in pixels**,
    channel 0 the horizontal displacement :math:`u` (towards larger column
    index :math:`x`), channel 1 the vertical :math:`v` (towards larger row
    index :math:`y`). Sampling is bilinear (``grid_sample`` with
    ``align_corners=True``, so pixel :math:`x` sits at
    :math:`2x/(W-1) - 1` in its normalised coordinates); points outside the
    image take the value of the nearest border pixel. A constant flow
    :math:`u = d` thus shows the image moved **left** by :math:`d` pixels:
    the output at :math:`x` is the input at :math:`x + d`.

    >>> image = torch.arange(4.0).reshape(1, 1, 1, 4)
    >>> flow = torch.zeros(1, 2, 1, 4); flow[:, 0] = 1.0
    >>> warp(image, flow)
    tensor([[[[1., 2., 3., 3.]]]])
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(
            "warp expects an image (B, C, H, W) and a flow (B, 2, H, W), "
            f"got {tuple(image.shape)} and {tuple(flow.shape)}"
        )
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"the image {tuple(image.shape)} and the flow {tuple(flow.shape)} must have the same batch size and H, W"
        )
    height, width = image.shape[-2:]
    rows, cols = _pixel_grid(height, width, flow.device, flow.dtype)
    x = cols + flow[:, 0]
    y = rows + flow[:, 1]
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


class MotionSegmentationNet(MultiTaskModel):
    r"""Qin et al.'s joint model: a Siamese U-Net encoder shared by a motion and a segmentation branch.

    ``x`` is ``(B, 2, H, W)``: channel 0 the source frame :math:`I_s` (ED),
    channel 1 the target frame :math:`I_t`. The outputs are

    * ``"motion"`` -- ``(B, 3, H, W)``: channel 0 the warped source
      :math:`\hat I_t = \operatorname{warp}(I_s, f)`, channels 1-2 the flow
      :math:`f` in pixels (:func:`warp`'s convention), so that one loss sees
      both (:class:`~mtl_course.losses.MotionLoss`);
    * ``"segmentation"`` -- ``(B, n_classes, H, W)`` logits for :math:`I_t`.

    Shared: the encoder. Per task: the motion decoder (on the two encodings,
    concatenated at every scale) and the segmentation decoder (on the
    target's encoding).

    >>> net = MotionSegmentationNet(channels=[4, 8], n_classes=3)
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 2, 16, 16)).items()}
    {'motion': (2, 3, 16, 16), 'segmentation': (2, 3, 16, 16)}
    """

    def __init__(self, channels: Sequence[int] = (8, 16), n_classes: int = 3) -> None:
        super().__init__(["motion", "segmentation"])
        channels = list(channels)
        if n_classes < 2:
            raise ValueError(f"the segmentation branch needs at least 2 classes, got n_classes={n_classes}")
        self.encoder = UNetEncoder(1, channels)
        self.motion_decoder = UNetDecoder([2 * c for c in channels], 2)
        self.segmentation_decoder = UNetDecoder(channels, n_classes)

    def _check_pair(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 2:
            raise ValueError(
                f"{type(self).__name__} expects a pair of frames (B, 2, H, W) (source, target), got {tuple(x.shape)}"
            )

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        """The encoder's feature maps of both frames: at every scale, ``(2B, C, h, w)``, source first."""
        self._check_pair(x)
        frames = torch.cat([x[:, :1], x[:, 1:]], dim=0)
        return self.encoder(frames)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encode(x)
        batch = x.shape[0]
        source, target = [f[:batch] for f in features], [f[batch:] for f in features]
        flow = self.motion_decoder([torch.cat([s, t], dim=1) for s, t in zip(source, target, strict=True)])
        warped = warp(x[:, :1], flow)
        return {"motion": torch.cat([warped, flow], dim=1), "segmentation": self.segmentation_decoder(target)}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.encoder.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        decoder = self.motion_decoder if task == "motion" else self.segmentation_decoder
        yield from decoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The encoder's last layer (for GradNorm)."""
        return last_layer_parameters(self.encoder)

    def extra_repr(self) -> str:
        return self.describe_sharing(shared="encoder (Siamese)", task_specific="motion_decoder, segmentation_decoder")

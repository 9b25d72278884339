"""Building blocks shared by every architecture: trunks, encoders and heads.

Every trunk is a :class:`StagedEncoder`, a list of stages run one after the
other. Hard sharing only needs the last stage's output; cross-stitch and
sluice networks insert their mixing units *between* stages, so they need the
stage-wise forward :meth:`StagedEncoder.forward_stages`.

* :class:`MLPTrunk` -- ``Linear -> ReLU`` stages on ``(N, in_features)`` inputs.
* :class:`CNNTrunk` -- ``Conv3x3 -> ReLU -> MaxPool2`` stages on images.
* :class:`UNetEncoder` / :class:`UNetDecoder` -- a small U-Net (Ronneberger,
  Fischer & Brox, MICCAI 2015, arXiv 1505.04597): the encoder returns the
  feature map of every scale, and any number of decoders (one per task) turn
  them into dense outputs through skip connections.
* :class:`LinearHead` (classification logits or regression values) and
  :class:`DenseHead` (one prediction per pixel).

>>> trunk = MLPTrunk(in_features=20, hidden=[32, 16])
>>> [tuple(h.shape) for h in trunk.forward_stages(torch.zeros(8, 20))]
[(8, 32), (8, 16)]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _check_positive_ints(what: str, values: Sequence[int]) -> list[int]:
    values = list(values)
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ValueError(f"{what} must be a non-empty list of positive ints, got {values!r}")
    return values


class StagedEncoder(nn.Module):
    """An encoder given as a list of stages, with a stage-wise forward.

    ``forward_stages(x)`` returns the output of every stage, so that a
    cross-stitch or sluice unit can be inserted between stages;
    ``forward(x)`` returns the last one. ``out_channels[k]`` is the number of
    channels (features) stage ``k`` produces.

    >>> enc = StagedEncoder([nn.Linear(3, 4), nn.Linear(4, 2)], out_channels=[4, 2])
    >>> tuple(enc(torch.zeros(5, 3)).shape)
    (5, 2)
    """

    #: ``True`` when :meth:`forward` returns the list of every stage's output
    #: (the U-Net encoder) instead of one tensor.
    returns_feature_list: bool = False

    def __init__(self, stages: Sequence[nn.Module], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(stages) != len(out_channels):
            raise ValueError(
                f"need one out_channels entry per stage: {len(stages)} stages, "
                f"{len(out_channels)} out_channels {list(out_channels)}"
            )
        self.stages = nn.ModuleList(stages)
        self.out_channels: list[int] = _check_positive_ints("out_channels", out_channels)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def out_features(self) -> int:
        """Channels (features) of the last stage's output."""
        return self.out_channels[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the expected and the given shape; no check by default."""

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every stage, first to last."""
        self.check_input(x)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]


class MLPTrunk(StagedEncoder):
    """A multilayer perceptron: one ``Linear -> ReLU`` stage per hidden width.

    >>> trunk = MLPTrunk(in_features=20, hidden=[32, 32])
    >>> tuple(trunk(torch.zeros(8, 20)).shape)
    (8, 32)
    >>> trunk(torch.zeros(8, 19))
    Traceback (most recent call last):
    ...
    ValueError: MLPTrunk expects inputs of shape (N, 20), got (8, 19): in_features is 20 but the batch has 19 features
    """

    def __init__(self, in_features: int, hidden: Sequence[int]) -> None:
        (in_features,) = _check_positive_ints("in_features", [in_features])
        hidden = _check_positive_ints("hidden", hidden)
        widths = [in_features, *hidden]
        stages = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        super().__init__(stages, hidden)
        self.in_features = in_features

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            got = x.shape[1] if x.ndim == 2 else f"a {x.ndim}-D tensor"
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape (N, {self.in_features}), got "
                f"{tuple(x.shape)}: in_features is {self.in_features} but the batch has {got} features"
            )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, hidden={self.out_channels}"


def _check_image(module: nn.Module, x: torch.Tensor, in_channels: int) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{type(module).__name__} expects images of shape (N, {in_channels}, H, W), got {tuple(x.shape)}"
        )


class CNNTrunk(StagedEncoder):
    """A small convolutional trunk: one ``Conv3x3 -> ReLU -> MaxPool2`` stage per width.

    With ``pool=False`` the stages keep the spatial size (for dense heads).

    >>> trunk = CNNTrunk(in_channels=1, channels=[8, 16])
    >>> tuple(trunk(torch.zeros(2, 1, 16, 16)).shape)
    (2, 16, 4, 4)
    """

    def __init__(self, in_channels: int, channels: Sequence[int], pool: bool = True) -> None:
        (in_channels,) = _check_positive_ints("in_channels", [in_channels])
        channels = _check_positive_ints("channels", channels)
        widths = [in_channels, *channels]
        stages = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers: list[nn.Module] = [nn.Conv2d(a, b, kernel_size=3, padding=1), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        super().__init__(stages, channels)
        self.in_channels = in_channels
        self.pool = pool

    def check_input(self, x: torch.Tensor) -> None:
        _check_image(self, x, self.in_channels)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels={self.out_channels}, pool={self.pool}"


class DoubleConv(nn.Sequential):
    """``Conv3x3 -> ReLU -> Conv3x3 -> ReLU``, the unit of every U-Net level."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(),
        )


class UNetEncoder(StagedEncoder):
    """The contracting path of a U-Net (Ronneberger et al., MICCAI 2015, arXiv 1505.04597).

    Stage 0 is a :class:`DoubleConv` at full resolution; every further stage
    halves the resolution (``MaxPool2``) and applies a :class:`DoubleConv`.
    ``forward`` returns the list of all stage outputs, finest first; the last
    one is the bottleneck. Height and width must be divisible by
    ``2 ** (len(channels) - 1)``.

    >>> enc = UNetEncoder(in_channels=1, channels=[8, 16, 32])
    >>> [tuple(f.shape) for f in enc(torch.zeros(2, 1, 16, 16))]
    [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    """

    returns_feature_list = True

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        (in_channels,) = _check_positive_ints("in_channels", [in_channels])
        channels = _check_positive_ints("channels", channels)
        stages: list[nn.Module] = [DoubleConv(in_channels, channels[0])]
        for a, b in zip(channels[:-1], channels[1:], strict=True):
            stages.append(nn.Sequential(nn.MaxPool2d(2), DoubleConv(a, b)))
        super().__init__(stages, channels)
        self.in_channels = in_channels

    def check_input(self, x: torch.Tensor) -> None:
        _check_image(self, x, self.in_channels)
        multiple = 2 ** (len(self.stages) - 1)
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"{type(self).__name__} with {len(self.stages)} levels needs H and W divisible by "
                f"{multiple}, got an image of {x.shape[-2]}x{x.shape[-1]} (input shape {tuple(x.shape)})"
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return self.forward_stages(x)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels={self.out_channels}"


class DenseHead(nn.Module):
    """A dense-prediction head: a 1x1 convolution, one output vector per pixel.

    >>> tuple(DenseHead(8, 3)(torch.zeros(2, 8, 5, 5)).shape)
    (2, 3, 5, 5)
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(self, x, self.conv.in_channels)
        return self.conv(x)


class UNetDecoder(nn.Module):
    """The expanding path of a U-Net, one per task, ending in a :class:`DenseHead`.

    Takes the list of feature maps a :class:`UNetEncoder` with the same
    ``channels`` returns. From the bottleneck up, each level upsamples
    (``ConvTranspose2d``, stride 2), concatenates the encoder's feature map of
    that scale (the skip connection) and applies a :class:`DoubleConv`.

    >>> enc, dec = UNetEncoder(1, [8, 16]), UNetDecoder([8, 16], out_channels=3)
    >>> tuple(dec(enc(torch.zeros(2, 1, 8, 8))).shape)
    (2, 3, 8, 8)
    """

    def __init__(self, channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        channels = _check_positive_ints("channels", channels)
        self.channels = channels
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(deep, shallow, kernel_size=2, stride=2)
            for shallow, deep in zip(channels[:-1], channels[1:], strict=True)
        )
        self.fuse = nn.ModuleList(DoubleConv(2 * shallow, shallow) for shallow in channels[:-1])
        self.head = DenseHead(channels[0], out_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(features, torch.Tensor) or len(features) != len(self.channels):
            got = "one tensor" if isinstance(features, torch.Tensor) else f"{len(features)} feature maps"
            raise ValueError(
                f"UNetDecoder expects the list of {len(self.channels)} feature maps of a UNetEncoder "
                f"with channels {self.channels}, got {got}"
            )
        x = features[-1]
        for level in reversed(range(len(self.up))):
            x = self.up[level](x)
            x = self.fuse[level](torch.cat([features[level], x], dim=1))
        return self.head(x)


class LinearHead(nn.Module):
    """A head for classification (it returns logits) or regression (values).

    Both are linear maps of the features; which one a head is depends only on
    the loss it is trained with. Image features ``(N, C, H, W)`` are first
    averaged over space (global average pooling). ``hidden`` adds
    ``Linear -> ReLU`` layers before the output layer.

    >>> head = LinearHead(in_features=32, out_features=3)
    >>> tuple(head(torch.zeros(8, 32)).shape), tuple(head(torch.zeros(8, 32, 4, 4)).shape)
    ((8, 3), (8, 3))
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = ()) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], out_features))
        self.in_features = in_features
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"LinearHead expects features of shape (N, {self.in_features}) or "
                f"(N, {self.in_features}, H, W), got {tuple(x.shape)}"
            )
        if x.ndim > 2:
            x = x.flatten(2).mean(-1)
        return self.layers(x)


class BottleneckHead(LinearHead):
    """A classification or regression head on a U-Net encoder's deepest feature map.

    Takes the list of feature maps a :class:`UNetEncoder` returns and applies
    a :class:`LinearHead` (global average pooling, then linear layers) to the
    last one, the bottleneck: the classification branch of Y-Net (Mehta et
    al., MICCAI 2018, arXiv 1806.01313), which sits at the end of the encoder
    beside the segmentation decoder.

    >>> enc, head = UNetEncoder(1, [8, 16]), BottleneckHead(16, 2)
    >>> tuple(head(enc(torch.zeros(3, 1, 8, 8))).shape)
    (3, 2)
    """

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        if isinstance(features, torch.Tensor):
            raise ValueError(
                "BottleneckHead expects the list of feature maps of a UNetEncoder, got one tensor; "
                "use LinearHead for a single feature tensor"
            )
        return super().forward(features[-1])

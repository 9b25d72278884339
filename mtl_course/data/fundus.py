r"""Synthetic fundus-like colour images with sparse bright and red lesions (lecture B13).

Stands in for the colour fundus photographs of Playout, Duval & Cheriet
("A multitask learning architecture for simultaneous segmentation of bright
and red lesions in fundus images", MICCAI 2018, doi:10.1007/978-3-030-00934-2_37),
which cannot ship with the course. Each RGB image shows

* a round field of view on an orange-red background with uneven illumination;
* an **optic disc**, a large bright yellow disc left or right of the centre
  (a distractor that looks like a bright lesion, only larger);
* **vessels**, dark red curves leaving the optic disc (a distractor that looks
  like a red lesion, only elongated);
* with probability ``p_lesion`` each, a few **bright lesions** (exudates: small
  yellow spots) and a few **red lesions** (microaneurysms and haemorrhages:
  small dark red dots), a pixel or a few wide, inside the field of view,
  away from the optic disc and from each other's kind.

Three targets: ``bright`` and ``red``, the lesion masks ``(n, 1, H, W)`` in
{0, 1}, and ``presence`` ``(n, 1)``, 1 when the image holds any lesion. The
lesions cover well under 1 % of the pixels, so that predicting background
everywhere has a pixel accuracy above 99 %: the class imbalance the paper's
kappa loss is meant for. What the stand-in keeps: the two colours of lesion,
their rarity and small size, and look-alike anatomy. What it loses: real
texture, the variety of lesion shapes (large haemorrhages, cotton-wool
spots), image size (the paper's images are hundreds of pixels wide) and the
label noise of manual annotation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mtl_course.data.tasks import MultiTaskData

#: The two lesion tasks, in the order of the targets.
LESIONS: tuple[str, str] = ("bright", "red")
#: The image-level task: does the image hold any lesion?
PRESENCE = "presence"

_BACKGROUND = (0.78, 0.36, 0.16)
_DISC = (1.0, 0.9, 0.62)
_VESSEL = (0.46, 0.12, 0.07)
_BRIGHT = (0.98, 0.86, 0.42)
_RED = (0.2, 0.02, 0.02)


def _paint(image: torch.Tensor, where: torch.Tensor, colour: tuple[float, float, float], alpha: float) -> None:
    """Blend ``colour`` into ``image`` ``(3, H, W)`` with weight ``alpha * where`` (``where`` in [0, 1])."""
    weight = alpha * where
    image.mul_(1 - weight).add_(weight * torch.tensor(colour)[:, None, None])


def _vessels(size: int, disc: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A ``(size, size)`` map in {0, 1} of four curved vessels leaving the optic disc centre ``disc``."""
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    towards_centre = 1.0 if disc[1] < size / 2 else -1.0
    t = torch.linspace(0, 0.9 * size, 4 * size)
    hit = torch.zeros(size, size, dtype=torch.bool)
    for sign in (-1.0, 1.0):
        for spread in (0.35, 0.9):
            angle = sign * (spread + 0.2 * torch.rand((), generator=g).item())
            bend = -sign * (0.015 + 0.02 * torch.rand((), generator=g).item())
            x = disc[1] + towards_centre * t * math.cos(angle)
            y = disc[0] + t * math.sin(angle) + bend * t**2
            d2 = (yy[None] - y[:, None, None]) ** 2 + (xx[None] - x[:, None, None]) ** 2
            hit |= (d2 <= 0.36).any(0)
    return hit.float()


def _spots(
    size: int, count: int, radius: tuple[float, float], allowed: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    """A ``(size, size)`` mask in {0, 1} of ``count`` round spots centred on ``allowed`` pixels."""
    coords = torch.arange(size, dtype=torch.float32)
    mask = torch.zeros(size, size, dtype=torch.bool)
    candidates = allowed.nonzero().float()
    for _ in range(count):
        centre = candidates[torch.randint(len(candidates), (), generator=g)] + torch.rand(2, generator=g) - 0.5
        r = radius[0] + (radius[1] - radius[0]) * torch.rand((), generator=g).item()
        mask |= (coords[:, None] - centre[0]) ** 2 + (coords[None, :] - centre[1]) ** 2 <= r**2
    return mask


def _dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """``mask`` ``(H, W)`` grown by ``pixels`` in every direction (a square structuring element), as floats."""
    return F.max_pool2d(mask.float()[None, None], 2 * pixels + 1, stride=1, padding=pixels)[0, 0]


def make_fundus(
    n: int,
    size: int = 32,
    *,
    p_lesion: float = 0.5,
    max_lesions: int = 3,
    radius: tuple[float, float] = (0.6, 1.2),
    noise: float = 0.03,
    seed: int = 0,
) -> MultiTaskData:
    """Generate ``n`` fundus-like RGB images ``(n, 3, size, size)`` with bright and red lesion masks.

    Each image gets, independently with probability ``p_lesion`` per kind,
    1 to ``max_lesions`` bright and 1 to ``max_lesions`` red spots of radius
    in ``radius`` pixels. Targets (see the module docstring): ``bright``,
    ``red`` ``(n, 1, size, size)`` and ``presence`` ``(n, 1)``, all float in
    {0, 1}. ``info`` holds ``vessels`` and ``optic_disc`` ``(n, size, size)``
    (the distractors' masks) and ``field_of_view`` ``(size, size)``.

    >>> data = make_fundus(6, size=24, seed=0)
    >>> data.tasks, tuple(data.x.shape), tuple(data.targets["bright"].shape), tuple(data.targets["presence"].shape)
    (('bright', 'red', 'presence'), (6, 3, 24, 24), (6, 1, 24, 24), (6, 1))
    >>> lesion = torch.maximum(data.targets["bright"], data.targets["red"]).amax((1, 2, 3))
    >>> bool(torch.equal(lesion, data.targets["presence"][:, 0]))
    True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (room for the optic disc and the lesions), got {size!r}")
    if not 0 <= p_lesion <= 1:
        raise ValueError(f"p_lesion is a probability and must lie in [0, 1], got {p_lesion}")
    if not isinstance(max_lesions, int) or max_lesions < 1:
        raise ValueError(f"max_lesions must be a positive int, got {max_lesions!r}")
    if not 0 < radius[0] <= radius[1] <= size / 8:
        raise ValueError(f"radius range {radius} must satisfy 0 < low <= high <= size/8 = {size / 8}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite sd >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    c = (size - 1) / 2
    field = ((yy - c) ** 2 + (xx - c) ** 2 <= (size / 2 - 0.5) ** 2).float()
    disc_radius = size / 10
    images, bright, red, vessels, discs = [], [], [], [], []
    for _ in range(n):
        side = 1.0 if torch.rand((), generator=g) < 0.5 else -1.0
        disc = torch.tensor([c + size * 0.1 * (torch.rand((), generator=g).item() - 0.5), c + side * size * 0.27])
        disc_map = ((yy - disc[0]) ** 2 + (xx - disc[1]) ** 2 <= disc_radius**2).float()
        light = 1.0 + 0.15 * torch.cos((xx - c) / size * 3 + torch.rand((), generator=g).item() * 6)
        image = torch.tensor(_BACKGROUND)[:, None, None] * light * (1 - 0.25 * ((yy - c) ** 2 + (xx - c) ** 2) / c**2)
        vessel_map = _vessels(size, disc, g) * field
        _paint(image, vessel_map, _VESSEL, 0.6)
        _paint(image, disc_map, _DISC, 0.9)
        allowed = (field > 0) & ((yy - disc[0]) ** 2 + (xx - disc[1]) ** 2 > (disc_radius + 3) ** 2)
        masks = []
        for colour in (_BRIGHT, _RED):
            count = (
                int(torch.randint(1, max_lesions + 1, (), generator=g)) if torch.rand((), generator=g) < p_lesion else 0
            )
            mask = _spots(size, count, radius, allowed, g) & (field > 0)
            _paint(image, mask.float(), colour, 0.9)
            masks.append(mask.float())
            allowed &= _dilate(mask, 2) == 0  # the next kind of lesion keeps clear of this one
        image = image * field + noise * torch.randn(3, size, size, generator=g) * field
        images.append(image)
        bright.append(masks[0])
        red.append(masks[1])
        vessels.append(vessel_map)
        discs.append(disc_map)
    bright_t, red_t = torch.stack(bright)[:, None], torch.stack(red)[:, None]
    presence = torch.maximum(bright_t, red_t).amax((2, 3))
    return MultiTaskData(
        torch.stack(images),
        {"bright": bright_t, "red": red_t, PRESENCE: presence},
        info={"vessels": torch.stack(vessels), "optic_disc": torch.stack(discs), "field_of_view": field},
    )


def lesion_fraction(data: MultiTaskData) -> dict[str, float]:
    """The fraction of all pixels that each lesion kind covers, ``{lesion: fraction}``.

    >>> fractions = lesion_fraction(make_fundus(50, seed=1))
    >>> all(0 < f < 0.01 for f in fractions.values())
    True
    """
    missing = [t for t in LESIONS if t not in data.targets]
    if missing:
        raise KeyError(f"lesion_fraction needs the lesion targets {list(LESIONS)}; missing {missing}")
    return {t: float(torch.as_tensor(data.targets[t]).float().mean()) for t in LESIONS}

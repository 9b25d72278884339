r"""Synthetic abdominal ultrasound "views", each with the two landmarks of its measurement (lecture B11).

Xu, Huo, Park, Landman, Milkowski, Grbic & Zhou, "Less is More: Simultaneous
View Classification and Landmark Detection for Abdominal Ultrasound Images"
(MICCAI 2018, arXiv 1805.10376) train one network to name the standard view
of an abdominal ultrasound image and to place the landmarks of the organ
measurement that belongs to that view. This module makes a small stand-in
(nothing is downloaded): :data:`VIEWS` has four views, where the slides list
eleven, and two pairs of them share anatomy:

* ``kidney_long`` and ``kidney_trans``: the same kidney, cut along its long
  axis (an elongated ellipse) or across it (a rounder one); a dark cortex
  around a bright central sinus;
* ``liver`` and ``spleen``: two large, homogeneous, bright organs with dark
  vessels; the liver is larger and a little darker, but their sizes overlap.

Each image is a fan-shaped field of view (the sector of a curved probe, apex
above the image) with multiplicative speckle (Rayleigh-distributed amplitude,
spatially correlated over about two pixels), depth attenuation, and zero
outside the fan. The organ sits at a random place, size and angle (within
:math:`\pm 35^\circ` of the horizontal). Its **measurement** is the length of
its major axis, and the two **landmarks** are the axis's ends, the left one
first: :math:`c \pm a\,(\cos\theta, \sin\theta)` for an ellipse with centre
:math:`c`, semi-major axis :math:`a` and angle :math:`\theta`.

The targets follow the paper's design of one landmark task per view:

* ``view`` -- the view's index into :data:`VIEWS`, ``(n,)``;
* ``landmarks`` -- ``(n, 2 V, 2)``: rows :math:`2v, 2v + 1` hold the two
  landmarks of view :math:`v`, as ``(x, y)`` in units of the image size
  (:math:`u / S` for a pixel coordinate :math:`u \in [0, S)`, pixel
  :math:`j` covering :math:`[j, j + 1)`); the rows of every other view are
  ``NaN``: an image is labelled only for the landmarks of its own view.

``info`` holds ``views``, ``size``, ``points`` (the image's own two
landmarks in pixels, ``(n, 2, 2)``) and ``lengths`` (the true measurement in
pixels, ``(n,)``).

What it leaves out: real anatomy and acoustics (shadowing, reverberation,
gain settings), the other seven views and their measurements, views without
a measurement, the paper's 187,219 images, and annotator disagreement (our
landmarks are exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mtl_course.data.tasks import MultiTaskData

#: The four views of the demo, in the order of the class indices.
VIEWS: tuple[str, ...] = ("kidney_long", "kidney_trans", "liver", "spleen")
#: Landmarks per view: the two ends of the measured axis.
LANDMARKS_PER_VIEW = 2

# per view, as fractions of the image size: semi-major axis a, semi-minor axis b (ranges), organ echogenicity
_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "kidney_long": ((0.26, 0.34), (0.11, 0.15), 0.3),
    "kidney_trans": ((0.15, 0.21), (0.12, 0.16), 0.3),
    "liver": ((0.29, 0.37), (0.18, 0.24), 0.6),
    "spleen": ((0.20, 0.28), (0.13, 0.18), 1.0),
}
_BACKGROUND = 0.5  # echogenicity of the tissue around the organ
_FAN_HALF_ANGLE = math.radians(34.0)
_MAX_TILT = math.radians(35.0)


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(x, y)``, each ``(size, size)``: pixel ``j`` is centred at ``j + 0.5``."""
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    return centres[None, :].expand(size, size), centres[:, None].expand(size, size)


def fan_mask(size: int) -> torch.Tensor:
    """The fan-shaped field of view of a curved probe, ``(size, size)`` booleans.

    The apex sits 0.15 image sizes above the top edge; the fan spans
    :math:`\\pm 34^\\circ` and depths from 0.3 to 1.1 image sizes from the apex.

    >>> m = fan_mask(16)
    >>> bool(m[8, 8]), bool(m[0, 0]), bool(m[15, 0])
    (True, False, False)
    """
    if size < 8:
        raise ValueError(f"an ultrasound image needs at least 8 x 8 pixels, got size={size}")
    x, y = _grid(size)
    dx, dy = x - size / 2, y + 0.15 * size
    radius, angle = torch.sqrt(dx**2 + dy**2), torch.atan2(dx, dy)
    return (angle.abs() <= _FAN_HALF_ANGLE) & (radius >= 0.3 * size) & (radius <= 1.1 * size)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _organs(views: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Per image ``(cx, cy, a, b, theta)`` in pixels and radians, with both axis ends well inside the fan."""
    n = len(views)
    params = torch.empty(n, 5)
    todo = torch.arange(n)
    fan = fan_mask(size)
    while len(todo):
        m = len(todo)
        a, b = torch.empty(m), torch.empty(m)
        for v, name in enumerate(VIEWS):
            mine = views[todo] == v
            (a_lo, a_hi), (b_lo, b_hi), _ = _SHAPES[name]
            a[mine] = size * _uniform(int(mine.sum()), a_lo, a_hi, g)
            b[mine] = size * _uniform(int(mine.sum()), b_lo, b_hi, g)
        cx, cy = size * _uniform(m, 0.3, 0.7, g), size * _uniform(m, 0.4, 0.7, g)
        theta = _uniform(m, -_MAX_TILT, _MAX_TILT, g)
        centre, half = torch.stack([cx, cy], -1), torch.stack([a * torch.cos(theta), a * torch.sin(theta)], -1)
        ends = torch.stack([centre - half, centre + half], 1)  # (m, 2 ends, (x, y))
        pixel = ends.floor().long()
        inside = ((pixel >= 1) & (pixel <= size - 2)).all(-1)
        on_fan = torch.zeros_like(inside)
        on_fan[inside] = fan[pixel[..., 1].clamp(0, size - 1), pixel[..., 0].clamp(0, size - 1)][inside]
        ok = on_fan.all(-1)
        params[todo[ok]] = torch.stack([cx, cy, a, b, theta], -1)[ok]
        todo = todo[~ok]
    return params


def _ellipse(x: torch.Tensor, y: torch.Tensor, params: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The squared normalised radius of every pixel in each image's ellipse, ``(n, S, S)`` (inside: <= 1)."""
    cx, cy, a, b, theta = (params[:, k, None, None] for k in range(5))
    dx, dy = x - cx, y - cy
    along = dx * torch.cos(theta) + dy * torch.sin(theta)
    across = -dx * torch.sin(theta) + dy * torch.cos(theta)
    return (along / (scale * a)) ** 2 + (across / (scale * b)) ** 2


def _echo(views: torch.Tensor, params: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """The noise-free echogenicity map of every image, ``(n, S, S)``."""
    x, y = _grid(size)
    n = len(views)
    echo = torch.full((n, size, size), _BACKGROUND)
    organ = _ellipse(x, y, params) <= 1
    level = torch.tensor([_SHAPES[v][2] for v in VIEWS])[views]
    echo = torch.where(organ, level[:, None, None], echo)
    kidney = views <= 1
    sinus = (_ellipse(x, y, params, scale=0.55) <= 1) & kidney[:, None, None]
    echo = torch.where(sinus, torch.tensor(1.0), echo)
    # two dark vessels inside the liver and the spleen, at random places along the major axis
    for _ in range(2):
        t = _uniform(n, -0.5, 0.5, g)
        vx = params[:, 0] + t * params[:, 2] * torch.cos(params[:, 4])
        vy = params[:, 1] + t * params[:, 2] * torch.sin(params[:, 4])
        r = size * _uniform(n, 0.03, 0.06, g)
        vessel = ((x - vx[:, None, None]) ** 2 + (y - vy[:, None, None]) ** 2 <= r[:, None, None] ** 2) & organ
        echo = torch.where(vessel & ~kidney[:, None, None], torch.tensor(0.1), echo)
    return echo


def _speckle(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Multiplicative speckle with mean 1: a Rayleigh amplitude, correlated by a 2 x 2 average."""
    real, imag = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    amplitude = torch.sqrt(real**2 + imag**2) / math.sqrt(math.pi / 2)  # Rayleigh, mean 1
    return F.avg_pool2d(F.pad(amplitude[:, None], (0, 1, 0, 1), mode="replicate"), 2, stride=1)[:, 0]


def make_ultrasound_views(
    n: int, *, size: int = 32, seed: int = 0, views: Sequence[str] = VIEWS, attenuation: float = 0.6
) -> MultiTaskData:
    """``n`` ultrasound-like images, the views in turn (shuffled), with their view and landmark targets.

    See the module docstring for the images and the targets. ``views``
    restricts the images to some of :data:`VIEWS` (the class indices and
    the landmark rows keep their places). ``attenuation`` is the depth
    attenuation per image height (intensity times :math:`e^{-\\alpha\\, y / S}`).

    >>> data = make_ultrasound_views(8, size=32, seed=0)
    >>> data.tasks, tuple(data.x.shape), tuple(data.targets["landmarks"].shape)
    (('view', 'landmarks'), (8, 1, 32, 32), (8, 8, 2))
    >>> v = int(data.targets["view"][0]); data.targets["landmarks"][0].isnan().all(-1).tolist().count(False)
    2
    """
    if n < 1:
        raise ValueError(f"need at least one image, got n={n}")
    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be a non-empty subset of {list(VIEWS)}, got {list(views)}")
    if not (attenuation >= 0 and math.isfinite(attenuation)):
        raise ValueError(f"the attenuation must be finite and >= 0, got {attenuation}")
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.tensor([VIEWS.index(v) for v in views])
    view = chosen[torch.arange(n) % len(chosen)][torch.randperm(n, generator=g)]
    params = _organs(view, size, g)
    _, y = _grid(size)
    image = _echo(view, params, size, g) * _speckle((n, size, size), g) * torch.exp(-attenuation * y / size)
    image = torch.where(fan_mask(size), image, torch.tensor(0.0))
    cx, cy, a, _, theta = params.unbind(-1)
    half = torch.stack([a * torch.cos(theta), a * torch.sin(theta)], -1)
    points = torch.stack([torch.stack([cx, cy], -1) - half, torch.stack([cx, cy], -1) + half], 1)  # (n, 2, 2)
    landmarks = torch.full((n, LANDMARKS_PER_VIEW * len(VIEWS), 2), math.nan)
    rows = LANDMARKS_PER_VIEW * view[:, None] + torch.arange(LANDMARKS_PER_VIEW)
    landmarks[torch.arange(n)[:, None], rows] = points / size
    return MultiTaskData(
        image[:, None],
        {"view": view, "landmarks": landmarks},
        info={"views": VIEWS, "size": size, "points": points, "lengths": 2 * a},
    )


def view_rows(view: int | torch.Tensor) -> torch.Tensor:
    """The rows of the ``landmarks`` target (and the heat-map channels) that belong to ``view``.

    >>> view_rows(2).tolist(), view_rows(torch.tensor([0, 3])).tolist()
    ([4, 5], [[0, 1], [6, 7]])
    """
    view = torch.as_tensor(view)
    if ((view < 0) | (view >= len(VIEWS))).any():
        raise ValueError(f"view indices must lie in [0, {len(VIEWS) - 1}], got {view.tolist()}")
    return LANDMARKS_PER_VIEW * view[..., None] + torch.arange(LANDMARKS_PER_VIEW)

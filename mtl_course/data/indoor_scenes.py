r"""Tiny synthetic indoor scenes with exact depth, surface normals and semantic labels (lecture B1).

A stand-in for NYU Depth v2 (Silberman et al., ECCV 2012), the data of Eigen
& Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a
Common Multi-Scale Convolutional Architecture" (ICCV 2015, arXiv 1411.4734).
Each scene is a room seen by a pinhole camera at the origin looking along
:math:`+z` (image :math:`y` pointing down): a floor, a back wall, two side
walls, axis-aligned boxes standing on the floor and spheres resting on it.
Every pixel's ray :math:`r(t) = t\,(x_u, y_v, 1)` is cast against every
surface, and the nearest hit gives

* the depth :math:`D^* = t` (the :math:`z` of the hit point, as a depth
  camera measures it), stored as :math:`\log D^*`;
* the unit surface normal :math:`N^*` facing the camera;
* the semantic label: :data:`CLASSES`.

The image is the Lambertian shading of the scene (an albedo per surface, one
light) with pixel noise. As a depth sensor does, the targets have holes:
pixels on depth edges and a blob per image have no depth and no normal
(``NaN``); the complete maps are in ``truth``.

>>> data = make_indoor_scenes(4, size=16, seed=0)
>>> data.tasks, tuple(data.x.shape), tuple(data.targets["normals"].shape)
(('depth', 'normals', 'semantic'), (4, 3, 16, 16), (4, 3, 16, 16))
>>> bool(np.isnan(data.targets["depth"]).any()), bool(np.isnan(data.truth["depth"]).any())
(True, False)
"""

from __future__ import annotations

import numpy as np

from mtl_course.data.tasks import MultiTaskData

#: The semantic classes, by label.
CLASSES: tuple[str, ...] = ("floor", "wall", "box", "sphere")
FLOOR, WALL, BOX, SPHERE = range(len(CLASSES))

_CAMERA_HEIGHT = 1.2  # the floor is the plane y = +1.2 (y points down)
_FOCAL = 1.0  # in units of half the image width: a 53-degree field of view
_LIGHT = np.array([0.4, -0.8, -0.45]) / np.linalg.norm([0.4, -0.8, -0.45])  # towards the light, from a surface


def pixel_rays(size: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The ray directions :math:`(x_u, y_v, 1)` through the pixel centres of a ``size`` × ``size`` image.

    Returns ``(x_u, y_v)``, each ``(size, size)`` (row ``v``, column ``u``):
    :math:`x_u = \big(2 (u + \tfrac12) / \text{size} - 1\big) / f` with the focal length
    :math:`f = 1` (half the image width), likewise :math:`y_v`. The pixel of depth
    :math:`D` shows the point :math:`D\,(x_u, y_v, 1)`.

    >>> xu, yv = pixel_rays(2); xu.tolist(), yv[:, 0].tolist()
    ([[-0.5, 0.5], [-0.5, 0.5]], [-0.5, 0.5])
    """
    centres = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    xu, yv = np.meshgrid(centres / _FOCAL, centres / _FOCAL, indexing="xy")
    return xu, yv


class _Hits:
    """The nearest hit so far of every pixel of a batch of images: ``t``, normal, label, albedo."""

    def __init__(self, n: int, size: int) -> None:
        self.t = np.full((n, size, size), np.inf)
        self.normal = np.zeros((n, 3, size, size))
        self.label = np.zeros((n, size, size), dtype=np.int64)
        self.albedo = np.zeros((n, 3, size, size))

    def offer(self, t: np.ndarray, normal: np.ndarray, label: int, albedo: np.ndarray) -> None:
        """Keep the hits ``t`` ``(n, H, W)`` (``inf``: no hit) that are nearer; ``normal`` ``(n, 3, H, W)``."""
        nearer = (t > 1e-6) & (t < self.t)
        self.t = np.where(nearer, t, self.t)
        self.normal = np.where(nearer[:, None], normal, self.normal)
        self.label = np.where(nearer, label, self.label)
        self.albedo = np.where(nearer[:, None], albedo[:, :, None, None], self.albedo)


def _constant_normal(n: int, size: int, normal: tuple[float, float, float]) -> np.ndarray:
    return np.broadcast_to(np.asarray(normal, dtype=float)[None, :, None, None], (n, 3, size, size))


def _planes(hits: _Hits, xu: np.ndarray, yv: np.ndarray, rng: np.random.Generator) -> None:
    """Floor ``y = h``, back wall ``z = b``, side walls ``x = -l`` and ``x = r``, one random room per image."""
    n, size = hits.t.shape[0], xu.shape[0]
    back = rng.uniform(4.0, 7.0, n)[:, None, None]
    left = rng.uniform(1.5, 3.0, n)[:, None, None]
    right = rng.uniform(1.5, 3.0, n)[:, None, None]
    with np.errstate(divide="ignore"):
        floor_t = np.where(yv > 0, _CAMERA_HEIGHT / yv, np.inf)[None].repeat(n, 0)
        left_t = np.where(xu < 0, -left / xu, np.inf)
        right_t = np.where(xu > 0, right / xu, np.inf)
    wall = rng.uniform(0.5, 0.9, (n, 1)) * np.array([[1.0, 0.95, 0.85]])
    hits.offer(np.broadcast_to(back, hits.t.shape).copy(), _constant_normal(n, size, (0, 0, -1)), WALL, wall)
    hits.offer(left_t, _constant_normal(n, size, (1, 0, 0)), WALL, wall * 0.9)
    hits.offer(right_t, _constant_normal(n, size, (-1, 0, 0)), WALL, wall * 0.9)
    floor = rng.uniform(0.3, 0.6, (n, 1)) * np.array([[0.8, 0.6, 0.4]])
    hits.offer(floor_t, _constant_normal(n, size, (0, -1, 0)), FLOOR, floor)


def _box(hits: _Hits, xu: np.ndarray, yv: np.ndarray, rng: np.random.Generator) -> None:
    """An axis-aligned box on the floor per image (the slab method), present in about 3 of 4 images."""
    n, size = hits.t.shape[0], xu.shape[0]
    centre_x, centre_z = rng.uniform(-1.0, 1.0, n), rng.uniform(1.8, 3.5, n)
    half_x, half_z, height = rng.uniform(0.4, 0.8, n), rng.uniform(0.4, 0.8, n), rng.uniform(0.5, 1.3, n)
    lo = np.stack([centre_x - half_x, _CAMERA_HEIGHT - height, centre_z - half_z], 1)[:, :, None, None]
    hi = np.stack([centre_x + half_x, np.full(n, _CAMERA_HEIGHT), centre_z + half_z], 1)[:, :, None, None]
    direction = np.stack([xu, yv, np.ones_like(xu)])[None]  # (1, 3, H, W)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = lo / direction, hi / direction
    t_near, t_far = np.minimum(t1, t2), np.maximum(t1, t2)
    entry = t_near.max(axis=1)
    axis = t_near.argmax(axis=1)  # the slab the ray enters last: the face it hits
    hit = (entry <= t_far.min(axis=1)) & (entry > 0) & (rng.random(n) < 0.75)[:, None, None]
    sign = -np.sign(np.take_along_axis(direction.repeat(n, 0), axis[:, None], 1)[:, 0])
    normal = np.zeros((n, 3, size, size))
    np.put_along_axis(normal, axis[:, None], sign[:, None], axis=1)
    albedo = rng.uniform(0.2, 1.0, (n, 3))
    hits.offer(np.where(hit, entry, np.inf), normal, BOX, albedo)


def _sphere(hits: _Hits, xu: np.ndarray, yv: np.ndarray, rng: np.random.Generator) -> None:
    """A sphere resting on the floor, present in about 3 of 5 images."""
    n = hits.t.shape[0]
    radius = rng.uniform(0.35, 0.7, n)[:, None, None]
    centre = np.stack(
        [rng.uniform(-1.2, 1.2, n), _CAMERA_HEIGHT - radius[:, 0, 0], rng.uniform(1.8, 3.5, n)], 1
    )  # (n, 3)
    direction = np.stack([xu, yv, np.ones_like(xu)])  # (3, H, W)
    a = (direction**2).sum(0)[None]
    b = -2.0 * np.einsum("nc,chw->nhw", centre, direction)
    c = (centre**2).sum(1)[:, None, None] - radius**2
    disc = b**2 - 4 * a * c
    present = (rng.random(n) < 0.6)[:, None, None]
    t = np.where((disc >= 0) & present, (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a), np.inf)
    point = t[:, None] * direction[None]
    normal = (np.where(np.isfinite(point), point, 0.0) - centre[:, :, None, None]) / radius[:, None]
    hits.offer(t, normal, SPHERE, rng.uniform(0.2, 1.0, (n, 3)))


def discontinuities(log_depth: np.ndarray, jump: float = 0.05, ratio: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour pairs of ``log_depth`` ``(n, H, W)`` that straddle a depth discontinuity, down and across.

    Returns ``(vertical, horizontal)``, of shapes ``(n, H - 1, W)`` and
    ``(n, H, W - 1)``: entry ``[k, i, j]`` is true when the pixel and its
    neighbour below (or to the right) are a discontinuity. A pair is one when
    its log-depth step exceeds ``jump`` and is ``ratio`` times larger than the
    steps just before and after it along the same axis: a crease (floor
    meeting wall) is continuous, its step no larger than the slope beside it.
    A pair at the image border lacks one of the two neighbouring steps, so
    it cannot be told from a crease and is never counted.

    >>> down, across = discontinuities(np.array([[[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]]))
    >>> across.astype(int).tolist(), down.shape
    ([[[0, 0, 1, 0, 0]]], (1, 0, 6))
    >>> discontinuities(np.array([[[0.0, 0.1, 0.2, 0.3, 0.3, 0.3]]]))[1].any()  # a crease
    np.False_
    """
    pairs = []
    for axis in (1, 2):
        step = np.abs(np.diff(log_depth, axis=axis))
        # the steps just before and after each step; a step at the border is its own missing neighbour
        before = np.concatenate([_along(step, axis, slice(None, 1)), _along(step, axis, slice(None, -1))], axis=axis)
        after = np.concatenate([_along(step, axis, slice(1, None)), _along(step, axis, slice(-1, None))], axis=axis)
        pairs.append((step > jump) & (step > ratio * np.maximum(before, after)))
    return pairs[0], pairs[1]


def _along(array: np.ndarray, axis: int, index: slice) -> np.ndarray:
    """``array`` sliced by ``index`` along ``axis``."""
    where = [slice(None)] * array.ndim
    where[axis] = index
    return array[tuple(where)]


def depth_edges(log_depth: np.ndarray, jump: float = 0.05, ratio: float = 1.5) -> np.ndarray:
    """The pixels on either side of a depth discontinuity (:func:`discontinuities`), ``(n, H, W)``.

    >>> depth_edges(np.array([[[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]])).astype(int).tolist()
    [[[0, 0, 1, 1, 0, 0]]]
    """
    down, across = discontinuities(log_depth, jump, ratio)
    edge = np.zeros(log_depth.shape, dtype=bool)
    edge[:, :-1] |= down
    edge[:, 1:] |= down
    edge[:, :, :-1] |= across
    edge[:, :, 1:] |= across
    return edge


def _sensor_holes(edge: np.ndarray, rng: np.random.Generator, edge_drop: float) -> np.ndarray:
    """Where a depth sensor returns nothing: a fraction ``edge_drop`` of the depth-edge pixels, and one blob."""
    n, size, _ = edge.shape
    holes = edge & (rng.random(edge.shape) < edge_drop)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    centre = rng.uniform(0, size, (n, 2))[:, :, None, None]
    radius = rng.uniform(0.04, 0.12, n)[:, None, None] * size
    blob = (rows[None] - centre[:, 0]) ** 2 + (cols[None] - centre[:, 1]) ** 2 < radius**2
    return holes | blob


def make_indoor_scenes(
    n: int, size: int = 32, seed: int = 0, noise: float = 0.02, edge_drop: float = 0.5
) -> MultiTaskData:
    r"""``n`` seeded indoor scenes of ``size`` × ``size`` pixels: the image and three dense targets.

    ``x`` is ``(n, 3, size, size)`` (RGB in [0, 1] plus Gaussian noise of sd
    ``noise``). ``targets``: ``"depth"`` the log depth :math:`\log D^*`
    ``(n, size, size)``; ``"normals"`` the unit normals :math:`N^*`
    ``(n, 3, size, size)``; ``"semantic"`` the class of :data:`CLASSES`
    ``(n, size, size)``. Depth and normals are ``NaN`` at the sensor's holes
    (a fraction ``edge_drop`` of the depth-edge pixels and a blob per image);
    ``truth`` holds the complete maps. ``info``: ``classes``,
    ``missing_fraction``.

    >>> d = make_indoor_scenes(2, size=8, seed=1)
    >>> n = d.truth["normals"]; bool(np.allclose((n**2).sum(1), 1.0))
    True
    """
    if n < 1 or size < 4:
        raise ValueError(f"make_indoor_scenes needs n >= 1 scenes of size >= 4 pixels, got n={n}, size={size}")
    if not (0.0 <= edge_drop <= 1.0 and noise >= 0):  # written so that NaN fails too
        raise ValueError(f"edge_drop must lie in [0, 1] and noise be >= 0, got edge_drop={edge_drop}, noise={noise}")
    rng = np.random.default_rng(seed)
    xu, yv = pixel_rays(size)
    hits = _Hits(n, size)
    _planes(hits, xu, yv, rng)
    _box(hits, xu, yv, rng)
    _sphere(hits, xu, yv, rng)
    log_depth = np.log(hits.t)
    shading = 0.35 + 0.65 * np.clip(np.einsum("nchw,c->nhw", hits.normal, _LIGHT), 0.0, None)
    image = hits.albedo * shading[:, None] + noise * rng.standard_normal(hits.albedo.shape)
    edge = depth_edges(log_depth)
    holes = _sensor_holes(edge, rng, edge_drop)
    depth = np.where(holes, np.nan, log_depth)
    normals = np.where(holes[:, None], np.nan, hits.normal)
    return MultiTaskData(
        x=image.astype(np.float32),
        targets={"depth": depth.astype(np.float32), "normals": normals.astype(np.float32), "semantic": hits.label},
        truth={"depth": log_depth.astype(np.float32), "normals": hits.normal.astype(np.float32)},
        info={"classes": CLASSES, "missing_fraction": float(holes.mean())},
    )

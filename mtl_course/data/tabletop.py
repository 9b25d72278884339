r"""A seeded simulated tabletop: one object, grasped or pushed, seen in a small image (lecture B6).

It stands in for the robot data of Pinto and Gupta, "Learning to push by
grasping: using multiple tasks for effective learning" (ICRA 2017, arXiv
1609.09025), where a robot grasps, pushes and pokes objects on a table
and every *interaction* yields one label of one task. Here an
interaction is a scene (an object on the table) and an action at an
**interaction point** :math:`p` near the object; the input is the
``size`` × ``size`` image patch centred on :math:`p`, as the authors'
earlier grasp network classified image patches (Pinto & Gupta, ICRA 2016,
arXiv 1509.06825, abstract: "an 18-way binary classification over image
patches").

**The object** is a bar, an ellipse or an equilateral triangle
(:data:`OBJECT_NAMES`) with centroid :math:`c`, a random orientation and a
random size, drawn as a polygon; its pixels are 1, the table 0, plus
Gaussian noise.

**Grasp** (:math:`K` = ``grasp_angles`` gripper angles): the gripper closes at
:math:`p` along the direction :math:`u_k = (\cos\alpha_k, \sin\alpha_k)`,
:math:`\alpha_k = k\pi/K`. The attempt succeeds when the gripper is centred
on the object and the object fits between the open fingers,

.. math:: \text{success}_k = \big[\lVert p - c\rVert \le r_{\text{grasp}}\big] \cdot
          \big[w(u_k) \le w_{\text{open}}\big], \qquad
          w(u) = \max_v u^\top v - \min_v u^\top v,

with :math:`w(u)` the object's width along :math:`u` (over its vertices
:math:`v`).

**Push** (a toy quasi-static model; what the paper's push head predicts
has not been checked for the course): a pusher starts at :math:`s = p - \ell u` behind the
interaction point and moves a length :math:`2\ell` along
:math:`u = u^{\text{push}}_j = (\cos\beta_j, \sin\beta_j)`,
:math:`\beta_j = 2\pi j/D`, :math:`D` = ``push_directions``. If it meets the
object at the contact point :math:`q`, after :math:`t` of its path, the
object is pushed for the rest, :math:`m = 2\ell - t`; with the signed lever
arm :math:`a = (q - c) \times u` and the object's radius of gyration
:math:`\rho`, it translates and turns by

.. math:: \Delta_{\text{move}} = \frac{m}{2\ell}\,\frac{\rho^2}{\rho^2 + a^2}, \qquad
          \Delta_{\text{turn}} = \frac{m}{2\ell}\,\frac{a\,\rho}{\rho^2 + a^2}

(zero when it misses): a push through the centroid translates, an
off-centre push turns. Both outcomes depend on the same geometry as the
grasp: where the object's boundary lies along a direction.

The targets follow the course's convention for partial labels: ``grasp`` is
``(n, K)`` and ``push`` is ``(n, D, 2)``, ``NaN`` everywhere except the one
action an interaction tried (a grasp interaction has no push label at all,
and the other way round). ``truth`` holds every action's outcome for every
scene, to score a test set on all of them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_course.data.tasks import MultiTaskData

#: The objects on the table, in the order of ``info["object"]``.
OBJECT_NAMES = ("bar", "ellipse", "triangle")
#: The tasks, in the order of ``targets``.
TABLETOP_TASKS = ("grasp", "push")


def object_polygon(kind: int, centre: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """The vertices ``(V, 2)`` of object ``kind`` (an index into :data:`OBJECT_NAMES`), counter-clockwise.

    At ``scale`` 1 the bar is 10 × 3 pixels, the ellipse has semi-axes 5 and
    2.2 (a 24-gon), the triangle has sides of 5.2 pixels.

    >>> object_polygon(0, np.zeros(2), 0.0, 1.0).round(1).tolist()
    [[-5.0, -1.5], [5.0, -1.5], [5.0, 1.5], [-5.0, 1.5]]
    """
    if kind == 0:
        local = np.array([[-5.0, -1.5], [5.0, -1.5], [5.0, 1.5], [-5.0, 1.5]])
    elif kind == 1:
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        local = np.stack([5.0 * np.cos(t), 2.2 * np.sin(t)], axis=1)
    elif kind == 2:
        t = np.pi / 2 + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
        local = (5.2 / math.sqrt(3)) * np.stack([np.cos(t), np.sin(t)], axis=1)
    else:
        raise ValueError(f"object kind must be 0, 1 or 2 ({OBJECT_NAMES}), got {kind!r}")
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return centre + scale * local @ rotation.T


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Whether each point ``(..., 2)`` lies inside the convex counter-clockwise ``polygon`` ``(V, 2)``.

    >>> square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> inside_polygon(np.array([[0.5, 0.5], [1.5, 0.5]]), square).tolist()
    [True, False]
    """
    edges = np.roll(polygon, -1, axis=0) - polygon
    rel = points[..., None, :] - polygon
    cross = edges[:, 0] * rel[..., 1] - edges[:, 1] * rel[..., 0]
    return (cross >= 0).all(axis=-1)


def object_width(polygon: np.ndarray, direction: np.ndarray) -> np.ndarray:
    r"""The width :math:`w(u) = \max_v u^\top v - \min_v u^\top v` of ``polygon`` along each unit direction.

    ``direction`` is ``(K, 2)``; the result ``(K,)``.

    >>> bar = object_polygon(0, np.zeros(2), 0.0, 1.0)
    >>> object_width(bar, np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [10.0, 3.0]
    """
    projections = polygon @ direction.T
    return projections.max(axis=0) - projections.min(axis=0)


def ray_contact(start: np.ndarray, direction: np.ndarray, polygon: np.ndarray) -> float | None:
    """The distance along ``direction`` from ``start`` to the first point of the convex ``polygon``; ``None`` if the
    ray misses it (a start inside the polygon is in contact at once: 0).

    >>> square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> ray_contact(np.array([-2.0, 0.5]), np.array([1.0, 0.0]), square), ray_contact(np.array([-2.0, 3.0]),
    ...     np.array([1.0, 0.0]), square)
    (2.0, None)
    """
    # Cyrus-Beck clipping: the ray enters at the largest entering parameter, if it is below the smallest leaving one
    edges = np.roll(polygon, -1, axis=0) - polygon
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)  # outward for a counter-clockwise polygon
    enter, leave = 0.0, math.inf
    for normal, vertex in zip(normals, polygon, strict=True):
        speed = float(normal @ direction)
        distance = float(normal @ (vertex - start))  # > 0: start is on the inner side of this edge
        if abs(speed) < 1e-12:
            if distance < 0:
                return None
            continue
        t = distance / speed
        if speed < 0:
            enter = max(enter, t)
        else:
            leave = min(leave, t)
    return enter if enter <= leave else None


def radius_of_gyration(polygon: np.ndarray) -> float:
    r""":math:`\rho = \sqrt{I / A}` of a uniform polygon about its centroid (the shoelace formulas).

    >>> round(radius_of_gyration(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])) ** 2, 6)  # (a²+b²)/12
    0.666667
    """
    x, y = polygon[:, 0], polygon[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    cx, cy = ((x + xn) * cross).sum() / (6 * area), ((y + yn) * cross).sum() / (6 * area)
    polar = ((x**2 + x * xn + xn**2 + y**2 + y * yn + yn**2) * cross).sum() / 12  # about the origin
    return math.sqrt(polar / area - (cx**2 + cy**2))


def push_outcome(
    polygon: np.ndarray, centre: np.ndarray, point: np.ndarray, direction: np.ndarray, reach: float
) -> tuple[float, float]:
    r"""``(move, turn)`` of a push through ``point`` along the unit ``direction``, starting ``reach`` behind it and
    ending ``reach`` beyond (the module docstring's :math:`\Delta_{\text{move}}, \Delta_{\text{turn}}`).

    >>> square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    >>> move, turn = push_outcome(square, np.zeros(2), np.zeros(2), np.array([1.0, 0.0]), reach=3.0)
    >>> round(move, 4), abs(turn)  # travel (6 - 2) / 6, no lever arm
    (0.6667, 0.0)
    """
    start = point - reach * direction
    t = ray_contact(start, direction, polygon)
    if t is None or t >= 2 * reach:
        return 0.0, 0.0
    contact = start + t * direction
    lever = float((contact - centre)[0] * direction[1] - (contact - centre)[1] * direction[0])
    rho = radius_of_gyration(polygon)
    travel = (2 * reach - t) / (2 * reach)
    return travel * rho**2 / (rho**2 + lever**2), travel * lever * rho / (rho**2 + lever**2)


def render(polygon: np.ndarray, point: np.ndarray, size: int, supersample: int = 2) -> np.ndarray:
    """The ``size`` × ``size`` patch centred on ``point``: the fraction of each pixel the polygon covers."""
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    grid = np.arange(size) - (size - 1) / 2
    fine = (grid[:, None] + offsets[None, :]).reshape(-1)
    ys, xs = np.meshgrid(fine + point[1], fine + point[0], indexing="ij")
    covered = inside_polygon(np.stack([xs, ys], axis=-1), polygon).astype(float)
    return covered.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def _check_counts(n_grasp: int, n_push: int, size: int, grasp_angles: int, push_directions: int) -> None:
    for name, value, low in (
        ("n_grasp", n_grasp, 0),
        ("n_push", n_push, 0),
        ("size", size, 8),
        ("grasp_angles", grasp_angles, 1),
        ("push_directions", push_directions, 1),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if n_grasp + n_push < 1:
        raise ValueError(f"need at least one interaction, got n_grasp={n_grasp} and n_push={n_push}")


def _check_lengths(**lengths: float) -> None:
    for name, value in lengths.items():
        strict = name != "noise"
        if not (math.isfinite(value) and (value > 0 if strict else value >= 0)):
            raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} 0, got {value!r}")


def _interactions(
    n: int, rng: np.random.Generator, size: int, spread: float, actions: int
) -> list[tuple[int, np.ndarray, np.ndarray, int, np.ndarray]]:
    """``n`` interactions ``(kind, polygon, point, action, pixel noise)``, the centroid at the origin; each draws
    from ``rng`` in turn, so the first ``k`` do not depend on ``n``."""
    rows = []
    for _ in range(n):
        kind = int(rng.integers(len(OBJECT_NAMES)))
        polygon = object_polygon(kind, np.zeros(2), float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.8, 1.2)))
        point = rng.normal(0.0, spread, size=2)
        rows.append((kind, polygon, point, int(rng.integers(actions)), rng.normal(size=(size, size))))
    return rows


def make_tabletop(
    n_grasp: int,
    n_push: int,
    *,
    size: int = 16,
    grasp_angles: int = 8,
    push_directions: int = 8,
    spread: float = 1.3,
    grasp_radius: float = 2.0,
    opening: float = 6.5,
    noise: float = 0.1,
    seed: int = 0,
) -> MultiTaskData:
    r"""``n_grasp`` grasp interactions then ``n_push`` push interactions, each a new scene (see the module docstring).

    The interaction point lies at :math:`p = c + \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, \text{spread}^2 I)`; the tried grasp
    angle and push direction are uniform. The grasp scenes and the push
    scenes come from two independent random streams of ``seed``, so the
    first ``k`` grasp interactions are the same whatever ``n_push`` is (a
    smaller budget is a prefix of a larger one).

    Returns :class:`~mtl_course.data.tasks.MultiTaskData` with ``x``
    ``(n, 1, size, size)`` (float32), ``targets`` ``grasp`` ``(n, K)`` in
    {0, 1, NaN} and ``push`` ``(n, D, 2)`` (move, turn; NaN where not
    tried), ``truth`` with every action's outcome, and ``info``:
    ``object`` (kind per row), ``action`` (the tried angle or direction
    index per row), ``task`` (``"grasp"`` or ``"push"`` per row), and the
    settings.

    >>> data = make_tabletop(3, 2, seed=0)
    >>> data.tasks, tuple(data.x.shape), data.n_labelled()
    (('grasp', 'push'), (5, 1, 16, 16), {'grasp': 3, 'push': 2})
    >>> tuple(data.targets["grasp"].shape), tuple(data.targets["push"].shape)
    ((5, 8), (5, 8, 2))
    """
    _check_counts(n_grasp, n_push, size, grasp_angles, push_directions)
    _check_lengths(spread=spread, grasp_radius=grasp_radius, opening=opening, noise=noise)
    grasp_rng, push_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    alphas = np.arange(grasp_angles) * np.pi / grasp_angles
    grasp_dirs = np.stack([np.cos(alphas), np.sin(alphas)], axis=1)
    betas = np.arange(push_directions) * 2 * np.pi / push_directions
    push_dirs = np.stack([np.cos(betas), np.sin(betas)], axis=1)
    reach = size / 2
    rows = [("grasp", *row) for row in _interactions(n_grasp, grasp_rng, size, spread, grasp_angles)]
    rows += [("push", *row) for row in _interactions(n_push, push_rng, size, spread, push_directions)]
    n = len(rows)
    x = np.empty((n, 1, size, size), dtype=np.float32)
    grasp_truth = np.empty((n, grasp_angles), dtype=np.float32)
    push_truth = np.empty((n, push_directions, 2), dtype=np.float32)
    for i, (_, _, polygon, point, _, pixel_noise) in enumerate(rows):
        x[i, 0] = render(polygon, point, size) + noise * pixel_noise
        centred = float(np.linalg.norm(point)) <= grasp_radius
        grasp_truth[i] = centred * (object_width(polygon, grasp_dirs) <= opening)
        push_truth[i] = [push_outcome(polygon, np.zeros(2), point, u, reach) for u in push_dirs]
    grasp = np.full_like(grasp_truth, np.nan)
    push = np.full_like(push_truth, np.nan)
    tasks = np.array([row[0] for row in rows])
    action = np.array([row[4] for row in rows])
    for i, (task, a) in enumerate(zip(tasks, action, strict=True)):
        if task == "grasp":
            grasp[i, a] = grasp_truth[i, a]
        else:
            push[i, a] = push_truth[i, a]
    info = {
        "object": np.array([row[1] for row in rows]),
        "action": action,
        "task": tasks,
        "grasp_angles": alphas,
        "push_directions": betas,
        "settings": {
            "size": size,
            "spread": spread,
            "grasp_radius": grasp_radius,
            "opening": opening,
            "noise": noise,
            "reach": reach,
            "seed": seed,
        },
    }
    targets = {"grasp": torch.from_numpy(grasp), "push": torch.from_numpy(push)}
    truth = {"grasp": torch.from_numpy(grasp_truth), "push": torch.from_numpy(push_truth)}
    return MultiTaskData(torch.from_numpy(x), targets, truth=truth, info=info)

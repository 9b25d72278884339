r"""Seeded synthetic faces with exact labels, for the face papers of Part B (HyperFace, TCDCN, Devries et al.).

Three hard-sharing papers learn several face tasks from one image:
HyperFace (Ranjan, Patel & Chellappa, IEEE TPAMI 2019, arXiv 1603.01249:
detection, landmarks with visibility, pose, gender), TCDCN (Zhang, Luo, Loy
& Tang, ECCV 2014: landmarks helped by pose, gender, glasses and smiling) and
Devries, Biswaranjan & Taylor (CRV 2014: expression helped by landmarks).
This generator draws small grey-level faces from a parametric 3-D face, so
that every label is exact by construction:

* **geometry.** Five landmarks (left eye, right eye, nose tip, left and
  right mouth corner, in image order) sit on a unit head in 3-D. The head is
  rotated by the pose, ``R = R_z(roll) R_y(yaw) R_x(pitch)``, and projected
  orthographically: a landmark :math:`p` lands at
  :math:`(u, v) = c + s\,\big((Rp)_x, -(Rp)_y\big)` for a head centre
  :math:`c` and scale :math:`s` (pixels per head radius).
* **visibility** :math:`v_i \in \{0, 1\}`: a landmark is hidden by the head
  itself when its rotated surface normal turns away from the camera,
  :math:`(Rn_i)_z < 0.25` (the far eye or mouth corner under a large yaw),
  or by an occluder (a flat rectangle drawn over part of the face). Hidden
  features are not drawn; their positions are still known exactly.
* **attributes.** A gender-like shape attribute (a wider face and darker
  brows for class 1), glasses (two rings and a bridge), and an expression
  set by the landmark geometry: ``neutral``; ``happy`` (mouth corners raised,
  the mouth curved up); ``surprised`` (eyes opened wide, a narrow open
  mouth); ``sad`` (mouth corners lowered, the mouth curved down). ``smile``
  is 1 exactly for ``happy``.
* **clutter and non-faces.** The background is a smooth random field with
  blobs; a fraction ``non_face`` of the patches hold no face: clutter alone,
  a featureless skin-toned ellipse, or scattered dark blobs.

What it leaves out: texture, hair, lighting, identity, perspective, the
paper's real data sets (AFLW, MTFL, the Toronto Face Database) and their
label noise.
"""

from __future__ import annotations

import math

import torch

from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
EXPRESSIONS = ("neutral", "happy", "surprised", "sad")
#: Yaw bins of the ``pose_bin`` task, in degrees: TCDCN's five head-pose classes (profile to profile).
YAW_BINS = (-60.0, -36.0, -12.0, 12.0, 36.0, 60.0)
#: A landmark whose rotated normal has a z-component below this is hidden by the head itself.
SELF_OCCLUSION = 0.25

# the landmarks on the unit head (x right, y up, z towards the camera), before expression offsets
_EYE = (0.38, 0.22, 0.88)
_NOSE = (0.0, -0.12, 1.12)
_MOUTH = (0.30, -0.46, 0.80)
# per expression: mouth-corner height offset, mouth half-width, mouth curvature (+: smiling), eye opening
_EXPRESSION_GEOMETRY = {
    "neutral": (0.0, 0.30, 0.0, 1.0),
    "happy": (0.09, 0.33, 0.10, 0.85),
    "surprised": (0.02, 0.20, 0.0, 1.7),
    "sad": (-0.09, 0.28, -0.08, 0.9),
}
_MOUTH_POINTS = 7


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    r"""The head rotation :math:`R = R_z(\text{roll})\,R_y(\text{yaw})\,R_x(\text{pitch})`, ``(n, 3, 3)``, in radians.

    >>> R = rotation_matrix(torch.tensor([0.3]), torch.tensor([-0.2]), torch.tensor([0.1]))
    >>> bool(torch.allclose(R[0] @ R[0].T, torch.eye(3), atol=1e-6)), round(float(torch.linalg.det(R[0])), 4)
    (True, 1.0)
    """
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def yaw_bin(yaw_degrees: torch.Tensor) -> torch.Tensor:
    """TCDCN-style head-pose class of each yaw (degrees): 0 (far left) to 4 (far right), by :data:`YAW_BINS`.

    >>> yaw_bin(torch.tensor([-50.0, -20.0, 0.0, 20.0, 59.0])).tolist()
    [0, 1, 2, 3, 4]
    """
    inner = torch.tensor(YAW_BINS[1:-1], dtype=yaw_degrees.dtype)
    return torch.bucketize(yaw_degrees.contiguous(), inner, right=True)


def _face_points(
    n: int, expression: torch.Tensor, g: torch.Generator, strength: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 3-D landmarks ``(n, 5, 3)``, the mouth curve ``(n, K, 3)`` and the eye opening ``(n,)``.

    ``strength`` scales each expression's departure from ``neutral`` (1: the table as it stands).
    """
    table = torch.tensor([_EXPRESSION_GEOMETRY[e] for e in EXPRESSIONS])
    if strength != 1.0:  # the default faces stay bit for bit those of the table
        table = table[0] + strength * (table - table[0])
    geometry = table[expression]
    lift, half_width, curve, opening = geometry.unbind(-1)
    jitter = 0.03 * torch.randn(n, 3, generator=g)  # identity: eye spacing, eye height, mouth height
    eye_x, eye_y = _EYE[0] + jitter[:, 0], _EYE[1] + jitter[:, 1]
    mouth_y = _MOUTH[1] + jitter[:, 2] + lift
    zeros = torch.zeros(n)
    points = torch.stack(
        [
            torch.stack([-eye_x, eye_y, zeros + _EYE[2]], -1),
            torch.stack([eye_x, eye_y, zeros + _EYE[2]], -1),
            torch.stack([zeros, zeros + _NOSE[1], zeros + _NOSE[2]], -1),
            torch.stack([-half_width, mouth_y, zeros + _MOUTH[2]], -1),
            torch.stack([half_width, mouth_y, zeros + _MOUTH[2]], -1),
        ],
        1,
    )
    # the mouth: from corner to corner, its centre lowered by the curvature (a smile bends the middle down)
    t = torch.linspace(-1.0, 1.0, _MOUTH_POINTS)
    mx = half_width[:, None] * t
    my = mouth_y[:, None] - curve[:, None] * (1 - t**2)
    mz = torch.full_like(mx, _MOUTH[2]) + 0.08 * (1 - t**2)
    return points, torch.stack([mx, my, mz], -1), opening


def _project(points: torch.Tensor, rotation: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor):
    """Rotated points ``(n, m, 3)`` and their pixel positions ``(n, m, 2)`` (x right, y down)."""
    rotated = points @ rotation.transpose(1, 2)
    pixels = centre[:, None, :] + scale[:, None, None] * torch.stack([rotated[..., 0], -rotated[..., 1]], -1)
    return rotated, pixels


def _facing(points: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The z-component of each point's rotated unit normal (the head is a unit sphere: the normal is the point)."""
    normals = points / points.norm(dim=-1, keepdim=True)
    return (normals @ rotation.transpose(1, 2))[..., 2]


def _blob(grid: torch.Tensor, at: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Axis-aligned Gaussian bumps ``(n, m, H, W)`` at pixel positions ``at`` ``(n, m, 2)`` with widths ``(n, m)``."""
    dx = grid[None, None, 0] - at[..., 0, None, None]
    dy = grid[None, None, 1] - at[..., 1, None, None]
    return torch.exp(-0.5 * ((dx / sx[..., None, None]) ** 2 + (dy / sy[..., None, None]) ** 2))


def _ring(grid: torch.Tensor, at: torch.Tensor, radius: torch.Tensor, width: float) -> torch.Tensor:
    """Soft circles ``(n, m, H, W)`` of ``radius`` ``(n,)`` around ``at`` ``(n, m, 2)``."""
    d = ((grid[None, None] - at[..., None, None]) ** 2).sum(2).sqrt()
    return torch.exp(-0.5 * ((d - radius[:, None, None, None]) / width) ** 2)


def _ellipse(grid: torch.Tensor, centre: torch.Tensor, axes: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Soft-edged filled ellipses ``(n, H, W)``: ``centre`` ``(n, 2)``, semi-axes ``(n, 2)``, rotation ``(n,)``."""
    dx = grid[None, 0] - centre[:, 0, None, None]
    dy = grid[None, 1] - centre[:, 1, None, None]
    c, s = angle.cos()[:, None, None], angle.sin()[:, None, None]
    u, w = (c * dx + s * dy) / axes[:, 0, None, None], (-s * dx + c * dy) / axes[:, 1, None, None]
    return torch.sigmoid(4.0 * (1.0 - (u**2 + w**2).sqrt()) * axes.min(1).values[:, None, None])


def _clutter(n: int, size: int, grid: torch.Tensor, g: torch.Generator, blobs: int = 6) -> torch.Tensor:
    """A smooth random background ``(n, H, W)``: a mean level plus Gaussian blobs of either sign."""
    level = 0.25 + 0.5 * torch.rand(n, 1, 1, generator=g)
    at = size * torch.rand(n, blobs, 2, generator=g)
    width = size * (0.06 + 0.14 * torch.rand(n, blobs, generator=g))
    amplitude = 0.35 * (2 * torch.rand(n, blobs, 1, 1, generator=g) - 1)
    return level + (amplitude * _blob(grid, at, width, width)).sum(1)


def _occluders(n: int, grid: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor, p: float, g: torch.Generator):
    """Per face, maybe one rectangle over part of the face: its coverage ``(n, H, W)`` and its box ``(n, 4)``."""
    present = torch.rand(n, generator=g) < p
    half = scale[:, None] * (0.3 + 0.35 * torch.rand(n, 2, generator=g))  # half-width, half-height
    offset = scale[:, None] * (1.2 * torch.rand(n, 2, generator=g) - 0.6)
    mid = centre + offset
    lo, hi = mid - half, mid + half
    box = torch.cat([lo, hi], 1)
    inside = (
        (grid[None, 0] >= lo[:, 0, None, None])
        & (grid[None, 0] <= hi[:, 0, None, None])
        & (grid[None, 1] >= lo[:, 1, None, None])
        & (grid[None, 1] <= hi[:, 1, None, None])
    )
    return (inside & present[:, None, None]).float(), torch.where(present[:, None], box, math.nan)


def _inside(points: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Whether each pixel position ``(n, m, 2)`` lies in its face's box ``(n, 4)`` (``NaN`` box: none)."""
    lo, hi = box[:, None, :2], box[:, None, 2:]
    return ((points >= lo) & (points <= hi)).all(-1)


def _check_arguments(
    n: int, size: int, non_face: float, occlusion: float, max_yaw: float, noise: float, expression_strength: float
) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    for name, value in (("non_face", non_face), ("occlusion", occlusion)):
        if not 0.0 <= value <= 1.0:  # also refuses NaN
            raise ValueError(f"{name} is a probability in [0, 1], got {value}")
    if not 0.0 <= max_yaw <= YAW_BINS[-1]:
        raise ValueError(f"max_yaw must lie in [0, {YAW_BINS[-1]}] degrees, got {max_yaw}")
    if not noise >= 0.0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0.0 <= expression_strength <= 3.0:
        raise ValueError(f"expression_strength must lie in [0, 3] (1: the default geometry), got {expression_strength}")


def make_faces(
    n: int,
    size: int = 32,
    *,
    non_face: float = 0.0,
    occlusion: float = 0.3,
    max_yaw: float = 60.0,
    noise: float = 0.04,
    expression_strength: float = 1.0,
    seed: int = 0,
) -> MultiTaskData:
    """``n`` grey images ``(n, 1, size, size)`` in [0, 1]-ish, with every face label exact by construction.

    ``non_face`` is the fraction of patches without a face (for detection),
    ``occlusion`` the probability that a face gets an occluding rectangle,
    ``max_yaw`` the largest absolute yaw in degrees (pitch within ±20°, roll within
    ±15°), ``noise`` the sd of the pixel noise, ``expression_strength`` the factor by which
    each expression's geometry departs from ``neutral`` (mouth-corner height, mouth width and
    curvature, eye opening; 1, the default, draws the faces of lectures B4 and B5, 2 doubles every
    offset: a stronger expression signal, as lecture B7 uses). Targets (non-face rows carry
    ``NaN`` or ``-100`` for every task but ``face``):

    * ``face`` ``(n,)``: 1 for a face, 0 for a non-face patch;
    * ``landmarks`` ``(n, 5, 3)``: per landmark of :data:`LANDMARKS` the
      position ``(x, y)`` in coordinates centred on the patch and scaled by
      ``size / 2`` (so the patch spans [-1, 1]), and its visibility ``v``
      as the third column (the weight of :func:`mtl_course.losses.landmark_loss`);
      hidden landmarks keep their exact position;
    * ``visibility`` ``(n, 5)``: ``v`` again, as a task of its own;
    * ``pose`` ``(n, 3)``: yaw, pitch, roll in radians; ``pose_bin`` ``(n,)``: :func:`yaw_bin`;
    * ``gender`` (the shape attribute), ``glasses``, ``smile`` ``(n,)`` in {0, 1};
    * ``expression`` ``(n,)``: an index into :data:`EXPRESSIONS`.

    ``info`` holds the names (``landmarks``, ``expressions``) and the yaw
    bins (``pose_bins_degrees``).

    >>> data = make_faces(6, seed=0)
    >>> tuple(data.x.shape), tuple(data.targets["landmarks"].shape), data.targets["expression"].tolist()
    ((6, 1, 32, 32), (6, 5, 3), [0, 1, 2, 3, 0, 1])
    >>> bool(torch.equal(data.targets["smile"], (data.targets["expression"] == 1).long()))
    True
    """
    _check_arguments(n, size, non_face, occlusion, max_yaw, noise, expression_strength)
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"))  # (2, H, W): x then y
    expression = torch.arange(n) % len(EXPRESSIONS)
    gender, glasses = (torch.rand(n, 2, generator=g) < 0.5).long().unbind(1)
    degrees = torch.tensor([max_yaw, 20.0, 15.0]) * (2 * torch.rand(n, 3, generator=g) - 1)
    pose = torch.deg2rad(degrees)
    rotation = rotation_matrix(*pose.unbind(1))
    scale = size * (0.27 + 0.04 * torch.rand(n, generator=g))
    centre = size / 2 + size * 0.06 * (2 * torch.rand(n, 2, generator=g) - 1)

    points, mouth, opening = _face_points(n, expression, g, expression_strength)
    _, pixels = _project(points, rotation, centre, scale)
    _, mouth_pixels = _project(mouth, rotation, centre, scale)
    facing = _facing(points, rotation)
    mouth_facing = _facing(mouth, rotation)
    cover, box = _occluders(n, grid, centre, scale, occlusion, g)
    visible = (facing >= SELF_OCCLUSION) & ~_inside(pixels, box)

    width = 0.82 + 0.12 * gender + 0.03 * torch.randn(n, generator=g)
    head = _ellipse(grid, centre, torch.stack([width * scale, 1.22 * scale], 1), pose[:, 2])
    skin = 0.55 + 0.3 * torch.rand(n, 1, 1, generator=g)
    shown = (facing >= SELF_OCCLUSION).float()  # what the head itself does not hide (occluders are drawn on top)
    eyes = _blob(
        grid,
        pixels[:, :2],
        0.10 * scale[:, None] * facing[:, :2].clamp_min(0.2),
        0.05 * scale[:, None] * opening[:, None],
    )
    brow_at = pixels[:, :2] - torch.stack([torch.zeros(n), 0.2 * scale], 1)[:, None]
    brows = _blob(grid, brow_at, 0.13 * scale[:, None].expand(n, 2), 0.03 * scale[:, None].expand(n, 2))
    nose = _blob(grid, pixels[:, 2:3], 0.05 * scale[:, None], 0.05 * scale[:, None])
    lips = _blob(
        grid,
        mouth_pixels,
        0.05 * scale[:, None].expand(n, _MOUTH_POINTS),
        0.035 * scale[:, None].expand(n, _MOUTH_POINTS),
    )
    open_mouth = (expression == EXPRESSIONS.index("surprised")).float()[:, None]
    mouth_centre = mouth_pixels[:, _MOUTH_POINTS // 2 : _MOUTH_POINTS // 2 + 1]
    gape = open_mouth[..., None, None] * _blob(grid, mouth_centre, 0.08 * scale[:, None], 0.10 * scale[:, None])
    rings = _ring(grid, pixels[:, :2], 0.19 * scale, 0.45)
    bridge = _blob(grid, pixels[:, :2].mean(1, keepdim=True), 0.06 * scale[:, None], 0.025 * scale[:, None])
    lens = glasses.float()[:, None, None, None] * torch.cat([rings * shown[:, :2, None, None], bridge], 1)
    darkness = (
        0.55 * (eyes * shown[:, :2, None, None]).sum(1)
        + (0.2 + 0.25 * gender.float())[:, None, None] * (brows * shown[:, :2, None, None]).sum(1)
        + 0.3 * nose.sum(1)
        + 0.45 * (lips * (mouth_facing >= SELF_OCCLUSION).float()[..., None, None]).sum(1).clamp(max=1.0)
        + 0.5 * gape.sum(1)
        + 0.5 * lens.sum(1).clamp(max=1.0)
    )
    face = skin * head - head * darkness.clamp(max=0.9)
    background = _clutter(n, size, grid, g)
    image = background * (1 - head) + face
    shade = 0.1 + 0.8 * torch.rand(n, 1, 1, generator=g)
    image = image * (1 - cover) + shade * cover

    is_face = torch.rand(n, generator=g) >= non_face
    image = torch.where(is_face[:, None, None], image, _non_faces(n, size, grid, g))
    image = image + noise * torch.randn(n, size, size, generator=g)
    return _package(image, is_face, pixels, visible, pose, degrees, gender, glasses, expression, size)


def _non_faces(n: int, size: int, grid: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Patches without a face: clutter, a featureless skin-toned ellipse, or scattered dark blobs (a third each)."""
    kind = torch.randint(0, 3, (n,), generator=g)
    background = _clutter(n, size, grid, g)
    centre = size / 2 + size * 0.1 * (2 * torch.rand(n, 2, generator=g) - 1)
    axes = size * torch.stack([0.2 + 0.08 * torch.rand(n, generator=g), 0.3 + 0.06 * torch.rand(n, generator=g)], 1)
    blank = _ellipse(grid, centre, axes, torch.zeros(n))
    spots_at = size * (0.2 + 0.6 * torch.rand(n, 5, 2, generator=g))
    spots = _blob(grid, spots_at, torch.full((n, 5), 0.035 * size), torch.full((n, 5), 0.025 * size)).sum(1)
    skin = 0.55 + 0.3 * torch.rand(n, 1, 1, generator=g)
    ellipse = background * (1 - blank) + skin * blank
    return torch.where(
        kind[:, None, None] == 0, background, torch.where(kind[:, None, None] == 1, ellipse, background - 0.5 * spots)
    )


def _package(
    image: torch.Tensor,
    is_face: torch.Tensor,
    pixels: torch.Tensor,
    visible: torch.Tensor,
    pose: torch.Tensor,
    degrees: torch.Tensor,
    gender: torch.Tensor,
    glasses: torch.Tensor,
    expression: torch.Tensor,
    size: int,
) -> MultiTaskData:
    """The targets of :func:`make_faces`, with ``NaN``/``-100`` for every task but ``face`` on a non-face patch."""
    face_rows = is_face[:, None]
    position = (pixels - size / 2) / (size / 2)
    v = visible.float()
    landmarks = torch.where(face_rows[..., None], torch.cat([position, v[..., None]], -1), math.nan)

    def classes(label: torch.Tensor) -> torch.Tensor:
        return torch.where(is_face, label, IGNORE_INDEX)

    targets = {
        "face": is_face.long(),
        "landmarks": landmarks,
        "visibility": torch.where(face_rows, v, math.nan),
        "pose": torch.where(face_rows, pose, math.nan),
        "pose_bin": classes(yaw_bin(degrees[:, 0])),
        "gender": classes(gender),
        "glasses": classes(glasses),
        "smile": classes((expression == EXPRESSIONS.index("happy")).long()),
        "expression": classes(expression),
    }
    info = {"landmarks": LANDMARKS, "expressions": EXPRESSIONS, "pose_bins_degrees": YAW_BINS}
    return MultiTaskData(image.unsqueeze(1), targets, info=info)

r"""Synthetic 2-D cine sequences of a beating left ventricle (lecture B16).

A stand-in for the short-axis cine MR of Qin et al., "Joint Learning of
Motion Estimation and Segmentation for Cardiac MR Image Sequences" (MICCAI
2018, arXiv 1806.04066; UK Biobank data in the paper). Each subject is a
sequence of :math:`T` frames of a bright disk (the left-ventricle blood pool,
class 2) inside a dark ring (the myocardium, class 1) on a grey background
(class 0), with intensities near 0.4, -0.25 and 0 (centred, as a network input usually is). The cavity
radius follows one cardiac cycle,

.. math:: r(t) = r_{ES} + (r_{ED} - r_{ES})\,\tfrac12\big(1 + \cos(2\pi t / T)\big),

largest at end-diastole (ED, :math:`t = 0`) and smallest at end-systole (ES,
:math:`t = T/2`); the myocardium keeps its area (it is nearly
incompressible), so its outer radius is :math:`R(t) = \sqrt{r(t)^2 + A/\pi}`
and the wall thickens in systole. Every subject has its own radii, contrast
and position (a random translation of up to ``max_shift`` pixels), every frame
a small extra jitter of the centre and Gaussian noise. Edges are anti-aliased.

**The rows.** One row per frame :math:`t` of every subject: the input is the
pair (ED frame, frame :math:`t`), ``x[:, 0]`` the source and ``x[:, 1]`` the
target of the motion; the targets are

* ``"motion"`` -- frame :math:`t` itself, ``(n, 1, H, W)``: the image the
  warped ED frame must match (no label needed: the motion is unsupervised);
* ``"segmentation"`` -- the label map of frame :math:`t`, ``(n, H, W)``, given
  only on the ED and ES frames (``IGNORE_INDEX`` elsewhere, as in the paper's
  data, where only ED and ES are annotated); ``truth`` has every frame's map.

``info``: ``subject`` and ``frame`` per row, ``labelled`` (the labelled frame
indices), ``radius`` (the cavity radius of every row).

>>> data = make_cine(2, n_frames=10, size=32, seed=0)
>>> data.tasks, tuple(data.x.shape), tuple(data.targets["segmentation"].shape)
(('motion', 'segmentation'), (20, 2, 32, 32), (20, 32, 32))
>>> data.n_labelled()["segmentation"], data.info["labelled"]
(4, (0, 5))
"""

from __future__ import annotations

import numpy as np

from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData

#: The classes of the label maps, by label.
CINE_CLASSES: tuple[str, ...] = ("background", "myocardium", "cavity")


def _check_cine_arguments(n_subjects: int, n_frames: int, size: int, noise: float, max_shift: float) -> None:
    if n_subjects < 1:
        raise ValueError(f"make_cine needs at least one subject, got n_subjects={n_subjects}")
    if n_frames < 2 or n_frames % 2:
        raise ValueError(f"make_cine needs an even number of frames >= 2 (ES is frame T/2), got n_frames={n_frames}")
    if size < 16:
        raise ValueError(f"make_cine draws the heart on at least 16x16 pixels, got size={size}")
    if not (noise >= 0 and max_shift >= 0):  # also refuses NaN
        raise ValueError(f"noise and max_shift must be >= 0, got noise={noise}, max_shift={max_shift}")


def _coverage(distance: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased inside-ness of a disk: 1 inside, 0 outside, linear over one pixel at the edge."""
    return np.clip(radius - distance + 0.5, 0.0, 1.0)


def make_cine(
    n_subjects: int,
    n_frames: int = 10,
    size: int = 32,
    noise: float = 0.08,
    max_shift: float = 3.0,
    seed: int = 0,
) -> MultiTaskData:
    """``n_subjects`` synthetic cine sequences of ``n_frames`` frames, one row per frame (see the module docstring)."""
    _check_cine_arguments(n_subjects, n_frames, size, noise, max_shift)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    scale = size / 32
    t = np.arange(n_frames)
    phase = 0.5 * (1 + np.cos(2 * np.pi * t / n_frames))  # 1 at ED, 0 at ES
    images, labels, radii = [], [], []
    for _ in range(n_subjects):
        r_ed = rng.uniform(6.5, 8.5) * scale
        r_es = r_ed * rng.uniform(0.55, 0.7)
        wall = rng.uniform(2.5, 3.5) * scale  # the myocardium's thickness at ED
        area = np.pi * ((r_ed + wall) ** 2 - r_ed**2)
        centre = size / 2 - 0.5 + rng.uniform(-max_shift, max_shift, size=2)
        blood, muscle, tissue = rng.uniform(0.3, 0.5), rng.uniform(-0.35, -0.15), rng.uniform(-0.05, 0.1)
        for p in phase:
            cy, cx = centre + rng.uniform(-0.5, 0.5, size=2)
            r = r_es + (r_ed - r_es) * p
            outer = np.sqrt(r**2 + area / np.pi)
            distance = np.hypot(yy - cy, xx - cx)
            inner_cover, outer_cover = _coverage(distance, r), _coverage(distance, outer)
            image = tissue + (muscle - tissue) * outer_cover + (blood - muscle) * inner_cover
            images.append(image + noise * rng.standard_normal(image.shape))
            labels.append(np.where(distance < r, 2, np.where(distance < outer, 1, 0)))
            radii.append(r)
    frames = np.asarray(images, dtype=np.float32).reshape(n_subjects, n_frames, size, size)
    truth = np.asarray(labels, dtype=np.int64)
    source = np.repeat(frames[:, :1], n_frames, axis=1)  # the ED frame of the subject, for every row
    x = np.stack([source, frames], axis=2).reshape(-1, 2, size, size)
    labelled = (0, n_frames // 2)
    frame = np.tile(t, n_subjects)
    segmentation = np.where(np.isin(frame, labelled)[:, None, None], truth, IGNORE_INDEX)
    return MultiTaskData(
        x,
        {"motion": x[:, 1:2].copy(), "segmentation": segmentation},
        truth={"segmentation": truth},
        info={
            "subject": np.repeat(np.arange(n_subjects), n_frames),
            "frame": frame,
            "labelled": labelled,
            "radius": np.asarray(radii),
            "classes": CINE_CLASSES,
        },
    )

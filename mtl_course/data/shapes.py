"""Toy "lesion" images with two tasks: segment the lesion, and diagnose it.

Each grey image holds one bright lesion, a disc or a square, of random size
and position, under Gaussian noise. Two tasks read the same pixels:

* segmentation: the binary mask of the lesion (a dense, per-pixel label);
* diagnosis: whether the lesion is large (its area exceeds ``large_area``
  pixels), one label per image, as size thresholds drive many clinical
  decisions (e.g. the diameter of an aneurysm or a nodule).

It stands in for the segmentation-plus-diagnosis pairs of medical imaging
(e.g. Y-Net, Mehta et al., MICCAI 2018, arXiv 1806.01313): the mask says
*where* the lesion is and how big, which is what the diagnosis needs, so a
shared encoder can pass what it learns from one task to the other. The
shape (disc or square) is kept as a third, nuisance label. Everything is
generated from a seed; nothing is downloaded.
"""

from __future__ import annotations

import torch

from mtl_course.data.tasks import MultiTaskData

SHAPE_NAMES = ("disc", "square")


def make_shapes(
    n: int,
    size: int = 16,
    noise: float = 0.5,
    radius: tuple[float, float] = (2.5, 5.0),
    large_area: int = 42,
    seed: int = 0,
) -> MultiTaskData:
    """Generate ``n`` noisy images with one disc or square lesion each.

    Returns :class:`~mtl_course.data.tasks.MultiTaskData` with images ``x``
    ``(n, 1, size, size)`` and two targets: ``segmentation``, the lesion mask
    ``(n, size, size)`` in {0, 1}, and ``diagnosis`` ``(n,)``, 1 when the
    lesion covers more than ``large_area`` pixels (the default splits the
    default size range about in half). ``info["shape"]`` ``(n,)`` holds the
    nuisance label, 0 for a disc and 1 for a square (:data:`SHAPE_NAMES`);
    like all of ``info`` it is not subset by :meth:`MultiTaskData.take`.

    A disc of radius ``r`` holds the pixels with ``‖p − c‖₂ ≤ r``; a square of
    the same area holds those with ``‖p − c‖_∞ ≤ r·√π/2``, so the two classes
    cannot be told apart by brightness alone.

    >>> data = make_shapes(4, size=12, seed=0)
    >>> mask, diagnosis = data.targets["segmentation"], data.targets["diagnosis"]
    >>> data.tasks, tuple(data.x.shape), tuple(mask.shape), data.info["shape"].tolist()
    (('segmentation', 'diagnosis'), (4, 1, 12, 12), (4, 12, 12), [0, 1, 1, 0])
    >>> bool(torch.equal(diagnosis, (mask.sum((1, 2)) > 42).long()))
    True
    >>> bool(((mask == 0) | (mask == 1)).all())
    True
    """
    if n < 1 or size < 8:
        raise ValueError(f"need n >= 1 and size >= 8, got n={n}, size={size}")
    low, high = radius
    if not 0 < low <= high < size / 2:
        raise ValueError(f"radius range {radius} must satisfy 0 < low <= high < size/2 = {size / 2}")
    g = torch.Generator().manual_seed(seed)
    shape = torch.randint(0, 2, (n,), generator=g)
    r = low + (high - low) * torch.rand(n, generator=g)
    margin = r + 0.5
    centre = margin[:, None] + (size - 1 - 2 * margin[:, None]) * torch.rand(n, 2, generator=g)
    coords = torch.arange(size, dtype=torch.float32)
    dy = coords[None, :, None] - centre[:, 0, None, None]
    dx = coords[None, None, :] - centre[:, 1, None, None]
    disc = dx**2 + dy**2 <= r[:, None, None] ** 2
    half_side = r * (torch.pi**0.5) / 2
    square = torch.maximum(dx.abs(), dy.abs()) <= half_side[:, None, None]
    mask = torch.where(shape[:, None, None] == 1, square, disc).long()
    x = mask.float() + noise * torch.randn(n, size, size, generator=g)
    diagnosis = (mask.sum((1, 2)) > large_area).long()
    return MultiTaskData(x.unsqueeze(1), {"segmentation": mask, "diagnosis": diagnosis}, info={"shape": shape})

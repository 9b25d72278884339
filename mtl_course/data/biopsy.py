r"""Synthetic "breast biopsy" images: a tissue map to segment and a diagnosis to make.

A stand-in for the breast biopsy patches of Y-Net (Mehta, Mercan, Bartlett,
Weaver, Elmore & Shapiro, MICCAI 2018, arXiv 1806.01313), whose diagnosis
depends on which tissues a slide shows and where. Each grey image is a map of
three tissue types, each drawn with its own texture of the same mean
brightness and contrast, so that only the texture tells them apart:

* ``stroma`` (label 0, the background): horizontal stripes;
* ``benign`` epithelium (label 1, 0 to 2 discs that carry no diagnosis):
  vertical stripes;
* ``atypical`` epithelium (label 2): a checkerboard.

Every texture has a random phase per image, and Gaussian noise of standard
deviation ``noise`` covers the image. The diagnosis (three classes) is drawn
first and sets the amount and arrangement of atypical tissue:

* ``benign`` (0): no atypical tissue;
* ``atypia`` (1): one small atypical disc;
* ``malignant`` (2): three atypical discs, scattered.

So the diagnosis is a function of the tissue map (how much atypical tissue
there is and in how many places), which is what Y-Net's "discriminative
segmentation masks" use. Everything is generated from a seed; nothing is
downloaded.

>>> data = make_biopsy(4, seed=0)
>>> tuple(data.x.shape), tuple(data.targets["segmentation"].shape), data.targets["diagnosis"].tolist()
((4, 1, 16, 16), (4, 16, 16), [2, 0, 2, 0])
"""

from __future__ import annotations

import math

import torch

from mtl_course.data.tasks import MultiTaskData

TISSUE_NAMES = ("stroma", "benign", "atypical")
DIAGNOSIS_NAMES = ("benign", "atypia", "malignant")
#: The tissue whose amount and arrangement set the diagnosis.
ATYPICAL = 2
#: (number of atypical discs, their radius range in pixels) for each diagnosis.
ATYPICAL_DISCS = {0: (0, (0.0, 0.0)), 1: (1, (2.0, 3.0)), 2: (3, (2.0, 3.5))}


def _disc(size: int, centre: torch.Tensor, radius: float) -> torch.Tensor:
    grid = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def tissue_textures(size: int, phases: torch.Tensor) -> torch.Tensor:
    r"""The three textures of one image, ``(3, size, size)``, each of mean 0 and amplitude 1 (period 4 pixels).

    .. math::

        s_0 = \sin(\tfrac{\pi}{2} y + \phi_0), \quad s_1 = \sin(\tfrac{\pi}{2} x + \phi_1), \quad
        s_2 = \sqrt 2 \sin(\tfrac{\pi}{2} x + \phi_2) \sin(\tfrac{\pi}{2} y + \phi_2)

    (stroma, benign, atypical; the :math:`\sqrt 2` gives the checkerboard the
    stripes' root-mean-square contrast).

    >>> tissue_textures(8, torch.zeros(3)).shape
    torch.Size([3, 8, 8])
    """
    if phases.shape != (len(TISSUE_NAMES),):
        raise ValueError(f"need one phase per tissue, shape ({len(TISSUE_NAMES)},), got {tuple(phases.shape)}")
    grid = torch.arange(size, dtype=torch.float32) * (math.pi / 2)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    return torch.stack(
        [
            torch.sin(yy + phases[0]),
            torch.sin(xx + phases[1]),
            math.sqrt(2.0) * torch.sin(xx + phases[2]) * torch.sin(yy + phases[2]),
        ]
    )


def make_biopsy(n: int, size: int = 16, noise: float = 0.4, seed: int = 0) -> MultiTaskData:
    """Generate ``n`` tissue images with their tissue maps and diagnoses.

    Returns :class:`~mtl_course.data.tasks.MultiTaskData` with images ``x``
    ``(n, 1, size, size)`` and two targets: ``segmentation``, the tissue map
    ``(n, size, size)`` with labels 0-2 (:data:`TISSUE_NAMES`), and
    ``diagnosis`` ``(n,)`` with classes 0-2 (:data:`DIAGNOSIS_NAMES`), drawn
    uniformly. ``info`` holds the names, ``atypical_fraction`` (the share of
    atypical pixels of each image) and ``noise``.

    >>> make_biopsy(0)
    Traceback (most recent call last):
    ...
    ValueError: make_biopsy needs n >= 1 images, got 0
    """
    if n < 1:
        raise ValueError(f"make_biopsy needs n >= 1 images, got {n}")
    if size < 12:
        raise ValueError(f"make_biopsy needs size >= 12 pixels to hold three discs, got {size}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
    gen = torch.Generator().manual_seed(seed)
    diagnosis = torch.randint(len(DIAGNOSIS_NAMES), (n,), generator=gen)
    tissue = torch.zeros(n, size, size, dtype=torch.long)
    images = torch.empty(n, 1, size, size)
    margin = 3.0
    for i in range(n):
        for _ in range(int(torch.randint(3, (1,), generator=gen))):  # benign epithelium: 0 to 2 discs
            centre = margin + torch.rand(2, generator=gen) * (size - 1 - 2 * margin)
            radius = 2.0 + 2.0 * float(torch.rand(1, generator=gen))
            tissue[i][_disc(size, centre, radius)] = 1
        count, (low, high) = ATYPICAL_DISCS[int(diagnosis[i])]
        for _ in range(count):
            centre = margin + torch.rand(2, generator=gen) * (size - 1 - 2 * margin)
            radius = low + (high - low) * float(torch.rand(1, generator=gen))
            tissue[i][_disc(size, centre, radius)] = ATYPICAL
        textures = tissue_textures(size, 2 * math.pi * torch.rand(len(TISSUE_NAMES), generator=gen))
        images[i, 0] = textures.gather(0, tissue[i].unsqueeze(0))[0]
    images += noise * torch.randn(images.shape, generator=gen)
    fraction = (tissue == ATYPICAL).float().mean(dim=(1, 2))
    return MultiTaskData(
        images,
        {"segmentation": tissue, "diagnosis": diagnosis},
        info={
            "tissue_names": TISSUE_NAMES,
            "diagnosis_names": DIAGNOSIS_NAMES,
            "atypical_fraction": fraction,
            "noise": noise,
        },
    )

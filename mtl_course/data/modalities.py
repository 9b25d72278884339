r"""Three synthetic imaging "modalities" with disjoint label sets, for one network that segments all three.

Moeskops et al. (MICCAI 2016, arXiv 1704.03379) train one CNN to segment six
tissues in brain MRI, the pectoral muscle in breast MRI and the coronary
arteries in cardiac CTA; the network is not told which modality an image
comes from, and its output is the *union* of the three label sets plus one
background class that all three share. This module makes a small 2-D stand-in
with the same structure (nothing is downloaded):

* **brain** (brain-MR-like): an elliptical head of nested tissue layers with
  wavy boundaries -- extracerebral CSF, cortical grey matter, white matter,
  deep grey matter, ventricles -- and a cerebellum at the back; six classes
  with T1-like mean intensities (CSF dark, white matter bright);
* **breast** (breast-MR-like): a bright, textured breast mound above a dark,
  curved pectoral-muscle band and the thorax, under a smooth multiplicative
  bias field; one class, the pectoral muscle;
* **cta** (CTA-like): a grey heart with a bright aorta and a thin, bright,
  branching coronary tree that starts at the aorta, under stronger noise; one
  class, the coronary artery. The aorta is as bright as the arteries but is
  *not* labelled, so brightness alone does not segment the task.

The union label space has :data:`N_CLASSES` = 9 classes: 0 the shared
background, 1--6 the brain tissues, 7 the pectoral muscle, 8 the coronary
artery (:data:`CLASS_NAMES`, :data:`LABEL_SETS`). Intensities overlap across
modalities (white matter, breast fat and contrast-filled vessels are all
bright), so a network must recognise the modality from the context.

What it leaves out: 3-D volumes and triplanar patches, real anatomy and
scanner physics, the class imbalance of real scans (a coronary tree is a far
smaller fraction of a CTA volume than of these 32 x 32 images).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData

#: The modalities, in the order of the targets (each is one task of the returned data).
MODALITIES: tuple[str, ...] = ("brain", "breast", "cta")
#: The union label space: index -> name; 0 is the background shared by every modality.
CLASS_NAMES: tuple[str, ...] = (
    "background",
    "extracerebral CSF",
    "cortical GM",
    "white matter",
    "deep GM",
    "ventricles",
    "cerebellum",
    "pectoral muscle",
    "coronary artery",
)
#: The number of classes of the union label space.
N_CLASSES = len(CLASS_NAMES)
#: Each modality's own foreground labels in the union space (the shared background 0 is in none of them).
LABEL_SETS: dict[str, tuple[int, ...]] = {"brain": (1, 2, 3, 4, 5, 6), "breast": (7,), "cta": (8,)}

# brain: the outer normalised radius of each nested layer, and the T1-like mean intensity of every label
_BRAIN_LAYERS = ((1.0, 1), (0.88, 2), (0.7, 3), (0.4, 4), (0.2, 5))
_BRAIN_MEAN = torch.tensor([0.0, 0.15, 0.45, 0.8, 0.55, 0.1, 0.6])


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, dtype=torch.float32)
    return coords[:, None].expand(size, size), coords[None, :].expand(size, size)


def _brain(n: int, size: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Nested elliptical tissue layers with wavy boundaries, and a cerebellum below the cerebrum."""
    yy, xx = _grid(size)
    centre = size / 2 - 0.5 + (torch.rand(n, 2, generator=g) - 0.5) * 0.1 * size
    axes = size * (0.36 + 0.06 * torch.rand(n, 2, generator=g))  # semi-axes (vertical, horizontal)
    dy = (yy - centre[:, 0, None, None]) / axes[:, 0, None, None]
    dx = (xx - centre[:, 1, None, None]) / axes[:, 1, None, None]
    theta = torch.atan2(dy, dx)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    rho = torch.sqrt(dy**2 + dx**2) * (1 + 0.06 * torch.sin(5 * theta + phase))
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for radius, label in _BRAIN_LAYERS:
        labels[rho <= radius] = label
    # the cerebellum: a small ellipse at the back (bottom), over the outer layers only
    cy, cx = centre[:, 0] + 0.6 * axes[:, 0], centre[:, 1]
    cerebellum = ((yy - cy[:, None, None]) / (0.3 * axes[:, 0, None, None])) ** 2 + (
        (xx - cx[:, None, None]) / (0.45 * axes[:, 1, None, None])
    ) ** 2 <= 1
    labels[cerebellum & (rho > 0.4) & (rho <= 1.0)] = 6
    gain = 0.9 + 0.2 * torch.rand(n, 1, 1, generator=g)
    image = gain * _BRAIN_MEAN[labels] + 0.06 * noise * torch.randn(n, size, size, generator=g)
    return image, labels


def _breast(n: int, size: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured breast mound above a curved pectoral-muscle band and the thorax, under a bias field."""
    yy, xx = _grid(size)
    wall = size * (0.62 + 0.1 * torch.rand(n, 1, 1, generator=g))  # chest-wall row at the centre column
    bend = (0.1 + 0.1 * torch.rand(n, 1, 1, generator=g)) / size
    offset = (torch.rand(n, 1, 1, generator=g) - 0.5) * 0.2 * size
    front = wall - bend * (xx - size / 2 - offset) ** 2  # the muscle's front edge, curved towards the breast
    thickness = 2.5 + 3.0 * torch.rand(n, 1, 1, generator=g)
    muscle = (yy >= front) & (yy < front + thickness)
    thorax = yy >= front + thickness
    height = size * (0.35 + 0.15 * torch.rand(n, 1, 1, generator=g))
    mound = ((yy - front) / height) ** 2 + ((xx - size / 2 - offset) / (0.48 * size)) ** 2 <= 1
    breast = mound & (yy < front)
    # fibroglandular texture: a smooth random field, darker strands in the bright fat
    texture = torch.nn.functional.avg_pool2d(torch.randn(n, 1, size, size, generator=g), 5, 1, 2).squeeze(1)
    image = torch.zeros(n, size, size)
    image = torch.where(breast, 0.85 - 0.8 * texture.clamp(min=0), image)
    image = torch.where(muscle, torch.full_like(image, 0.3), image)
    image = torch.where(thorax, torch.full_like(image, 0.5), image)
    bias = 1 + 0.2 * ((xx - size / 2) / size) * torch.randn(n, 1, 1, generator=g)
    image = bias * image + 0.06 * noise * torch.randn(n, size, size, generator=g)
    labels = torch.where(muscle, LABEL_SETS["breast"][0], 0)
    return image, labels


def _vessel_tree(size: int, g: torch.Generator, root: torch.Tensor) -> torch.Tensor:
    """Points of 2-3 branching random walks from ``root`` (y, x), half a pixel apart: ``(P, 2)``."""
    points = []
    n_branches = int(torch.randint(2, 4, (1,), generator=g))
    for _ in range(n_branches):
        position = root.clone()
        angle = float(math.pi / 2 + (torch.rand(1, generator=g) - 0.5) * 2.4)  # heading down-ish, spread out
        length = int(size * (0.9 + 0.6 * float(torch.rand(1, generator=g))))
        for _ in range(length):
            angle += float(0.25 * torch.randn(1, generator=g))
            position = position + 0.5 * torch.tensor([math.sin(angle), math.cos(angle)])
            if not (0 <= position[0] < size and 0 <= position[1] < size):
                break
            points.append(position)
    return torch.stack(points) if points else root[None]


def _cta(n: int, size: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A grey heart, a bright unlabelled aorta, and a thin bright coronary tree starting at the aorta."""
    yy, xx = _grid(size)
    pixels = torch.stack([yy, xx], -1).reshape(-1, 2)
    image = torch.full((n, size, size), 0.1)
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        centre = size / 2 + (torch.rand(2, generator=g) - 0.5) * 0.15 * size
        heart = ((yy - centre[0]) / (0.42 * size)) ** 2 + ((xx - centre[1]) / (0.45 * size)) ** 2 <= 1
        aorta_centre = torch.tensor([0.22 * size, float(centre[1])]) + (torch.rand(2, generator=g) - 0.5) * 3
        aorta_radius = 0.09 * size
        aorta = (yy - aorta_centre[0]) ** 2 + (xx - aorta_centre[1]) ** 2 <= aorta_radius**2
        tree = _vessel_tree(size, g, aorta_centre + torch.tensor([aorta_radius, 0.0]))
        distance = torch.cdist(pixels, tree).min(dim=1).values.reshape(size, size)
        artery = (distance <= 0.75) & ~aorta
        image[i] = torch.where(heart, 0.4, image[i])
        image[i] = torch.where(aorta | artery, 0.95, image[i])
        labels[i] = torch.where(artery, LABEL_SETS["cta"][0], 0)
    image = image + 0.1 * noise * torch.randn(n, size, size, generator=g)
    return image, labels


_GENERATORS = {"brain": _brain, "breast": _breast, "cta": _cta}


def _counts(n: int | Mapping[str, int]) -> dict[str, int]:
    counts = dict.fromkeys(MODALITIES, n) if isinstance(n, int) else dict(n)
    unknown = [m for m in counts if m not in MODALITIES]
    if unknown:
        raise KeyError(f"unknown modality {unknown}; the modalities are {list(MODALITIES)}")
    counts = {m: counts.get(m, 0) for m in MODALITIES}
    for m, k in counts.items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ValueError(f"the number of {m} images must be an int >= 0, got {k!r}")
    if sum(counts.values()) < 1:
        raise ValueError(f"need at least one image in all, got n={n!r}")
    return counts


def make_modalities(n: int | Mapping[str, int], size: int = 32, noise: float = 1.0, seed: int = 0) -> MultiTaskData:
    """Images of three synthetic modalities, shuffled together, labelled in one union label space.

    ``n`` is the number of images per modality, or ``{modality: number}``
    (a modality left out gets none). Returns
    :class:`~mtl_course.data.tasks.MultiTaskData` with ``x`` ``(N, 1, size,
    size)`` and one task per modality (:data:`MODALITIES`): ``targets[m]``
    ``(N, size, size)`` holds the union labels (:data:`CLASS_NAMES`) on the
    images of modality ``m`` and :data:`~mtl_course.data.tasks.IGNORE_INDEX`
    on every other image, so a loss of task ``m`` sees only modality ``m``.
    :func:`modality_index` recovers each image's modality from the targets
    (and so survives :meth:`~mtl_course.data.tasks.MultiTaskData.take`).
    ``info`` holds ``modalities``, ``class_names`` and ``label_sets``.
    ``noise`` scales every modality's noise (brain and breast sd 0.06, CTA 0.1).

    >>> data = make_modalities({"brain": 2, "breast": 1, "cta": 1}, size=24, seed=0)
    >>> data.tasks, tuple(data.x.shape), data.n_labelled()
    (('brain', 'breast', 'cta'), (4, 1, 24, 24), {'brain': 2, 'breast': 1, 'cta': 1})
    >>> sorted(set(data.targets["brain"][modality_index(data) == 0].unique().tolist()))
    [0, 1, 2, 3, 4, 5, 6]
    """
    counts = _counts(n)
    if size < 16:
        raise ValueError(f"images must be at least 16 x 16 pixels, got size={size}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    images, labels, modality = [], [], []
    for index, m in enumerate(MODALITIES):
        if counts[m]:
            image, label = _GENERATORS[m](counts[m], size, noise, g)
            images.append(image)
            labels.append(label)
            modality.append(torch.full((counts[m],), index))
    order = torch.randperm(sum(counts.values()), generator=g)
    x, y, which = torch.cat(images)[order], torch.cat(labels)[order], torch.cat(modality)[order]
    targets = {m: torch.where((which == i)[:, None, None], y, IGNORE_INDEX) for i, m in enumerate(MODALITIES)}
    info = {"modalities": MODALITIES, "class_names": CLASS_NAMES, "label_sets": LABEL_SETS}
    return MultiTaskData(x.unsqueeze(1), targets, info=info)


def modality_index(data: MultiTaskData) -> torch.Tensor:
    """Each image's modality as an index into ``data.tasks``: the one task whose target labels the image.

    Raises a ``ValueError`` when an image is labelled for no modality or for several.
    """
    labelled = torch.stack([torch.as_tensor(data.targets[m])[:, 0, 0] != IGNORE_INDEX for m in data.tasks], 1)
    per_image = labelled.sum(1)
    if not bool((per_image == 1).all()):
        bad = int((per_image != 1).nonzero()[0, 0])
        raise ValueError(f"image {bad} is labelled for {int(per_image[bad])} modalities; each image needs exactly one")
    return labelled.long().argmax(1)

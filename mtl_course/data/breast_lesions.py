r"""Synthetic breast-ultrasound lesions: BI-RADS descriptors first, malignancy from a known, noisy rule (lecture B12).

It stands in for the data of Liu et al. (MICCAI 2018), who train a network
to diagnose breast lesions in ultrasound images with the BI-RADS descriptors
a radiologist reports (shape, orientation, margin, echo pattern, posterior
features) as auxiliary tasks. Clinical images cannot ship with the course,
so the generator draws each lesion's descriptors first, renders a small
ultrasound-like image from them, and draws the malignancy label from the
descriptors through a rule it knows exactly.

**The descriptors** (:data:`DESCRIPTORS`), each binary, 0 for the
benign-looking level and 1 for the suspicious one (:data:`LEVELS`), drawn
independently with probability 1/2:

* ``shape``: oval (0) or irregular (1): the outline gets lobes;
* ``orientation``: parallel (0, wider than tall) or not parallel (1, taller than wide);
* ``margin``: circumscribed (0) or spiculated (1): fine spikes on the outline;
* ``echo``: homogeneous (0) or heterogeneous (1) echo pattern inside the lesion;
* ``posterior``: enhancement (0, brighter below the lesion) or shadowing (1, darker).

**The rule.** With the descriptor vector :math:`d \in \{0, 1\}^5` and the
rule weights :math:`w(h)` (:func:`rule_weights`, non-negative, summing to 1),

.. math::

    p(\text{malignant} \mid d) = \sigma\big(\kappa\,(w(h)^\top d - \tfrac12)\big), \qquad
    w(h) = (1 - h)\, e_{\text{echo}} + h\, w_{\text{vote}},

(:func:`malignancy_probability`). The knob :math:`h \in [0, 1]` (``hardness``)
moves the rule from one salient descriptor (:math:`h = 0`: malignant when
the echo pattern is heterogeneous, a texture the first filters of any
network see) to a weighted vote of all five (:data:`VOTE_WEIGHTS`), in
which no single descriptor decides; :math:`\kappa` (``sharpness``) sets the
label noise: the label is a Bernoulli draw with this probability, so even a
perfect reader of the descriptors has an AUC below 1 (the Bayes ceiling,
the AUC of the probability itself, kept as ``truth``).

What the stand-in keeps: the descriptors are visible in the image, and the
diagnosis depends on them, so descriptor labels tell a network *where to
look*. What it loses: real anatomy and speckle physics, the descriptors'
other levels (BI-RADS has more than two for most), their correlations with
each other, and readers who disagree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mtl_course.data.tasks import MultiTaskData

#: The five BI-RADS ultrasound descriptors, in the order of the descriptor vector ``d``.
DESCRIPTORS: tuple[str, ...] = ("shape", "orientation", "margin", "echo", "posterior")
#: The two levels of each descriptor: ``(benign-looking, suspicious)``, coded 0 and 1.
LEVELS: dict[str, tuple[str, str]] = {
    "shape": ("oval", "irregular"),
    "orientation": ("parallel", "not parallel"),
    "margin": ("circumscribed", "spiculated"),
    "echo": ("homogeneous", "heterogeneous"),
    "posterior": ("enhancement", "shadowing"),
}
#: The rule's weights at ``hardness = 1``: a vote of all five descriptors, none decisive alone.
VOTE_WEIGHTS: tuple[float, ...] = (0.1, 0.3, 0.1, 0.2, 0.3)
#: The descriptor that decides alone at ``hardness = 0``.
SALIENT = "echo"
#: The diagnosis task's name; the descriptor tasks are named by :data:`DESCRIPTORS`.
DIAGNOSIS = "malignancy"


def rule_weights(hardness: float) -> torch.Tensor:
    r"""The rule's weights :math:`w(h) = (1 - h)\, e_{\text{echo}} + h\, w_{\text{vote}}`, ``(5,)``, summing to 1.

    >>> rule_weights(0.0).tolist(), rule_weights(1.0).tolist() == list(VOTE_WEIGHTS)
    ([0.0, 0.0, 0.0, 1.0, 0.0], True)
    """
    if not (isinstance(hardness, int | float) and 0.0 <= hardness <= 1.0):
        raise ValueError(f"hardness must be a number in [0, 1] (0: {SALIENT} alone, 1: the vote), got {hardness!r}")
    salient = torch.zeros(len(DESCRIPTORS), dtype=torch.float64)
    salient[DESCRIPTORS.index(SALIENT)] = 1.0
    return (1.0 - hardness) * salient + hardness * torch.tensor(VOTE_WEIGHTS, dtype=torch.float64)


def malignancy_probability(descriptors: torch.Tensor, hardness: float, sharpness: float) -> torch.Tensor:
    r"""The rule :math:`p = \sigma(\kappa\,(w(h)^\top d - \frac12))` for descriptor vectors ``(n, 5)`` in {0, 1}.

    >>> d = torch.tensor([[0, 0, 0, 1, 0], [1, 1, 1, 0, 1]])
    >>> [round(p, 4) for p in malignancy_probability(d, hardness=0.0, sharpness=4.0).tolist()]  # σ(2), σ(-2)
    [0.8808, 0.1192]
    """
    if descriptors.ndim != 2 or descriptors.shape[1] != len(DESCRIPTORS):
        raise ValueError(
            f"descriptors must have shape (n, {len(DESCRIPTORS)}) with columns {DESCRIPTORS}, "
            f"got {tuple(descriptors.shape)}"
        )
    if not bool(((descriptors == 0) | (descriptors == 1)).all()):
        raise ValueError("descriptors must be 0 (benign-looking) or 1 (suspicious); got other values")
    if not (math.isfinite(sharpness) and sharpness > 0):
        raise ValueError(f"sharpness (the rule's κ) must be positive and finite, got {sharpness}")
    score = descriptors.double() @ rule_weights(hardness)
    return torch.sigmoid(sharpness * (score - 0.5))


def _smooth_noise(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Blobby noise in [0, 1]: white noise averaged over 3 x 3 twice, rescaled per image."""
    noise = torch.rand(n, 1, size, size, generator=generator)
    for _ in range(2):
        noise = F.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)
    low = noise.amin((2, 3), keepdim=True)
    high = noise.amax((2, 3), keepdim=True)
    return ((noise - low) / (high - low)).squeeze(1)


def render_lesions(
    descriptors: torch.Tensor, size: int = 32, speckle: float = 0.25, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Ultrasound-like images ``(n, 1, size, size)`` of lesions with the given descriptors ``(n, 5)``.

    A dark (hypoechoic) lesion on a grey background. In lesion coordinates
    :math:`u = \Delta x / a_x`, :math:`v = \Delta y / a_y` with the semi-axes
    :math:`a_x > a_y` (parallel) or :math:`a_x < a_y` (not parallel), a pixel
    lies inside when :math:`\sqrt{u^2 + v^2} \le R(\theta)`, where
    :math:`R(\theta) = 1 + 0.4\,\text{shape}\cos(3\theta + \phi_1) + 0.5\,\text{margin}\max(0, \cos(7\theta +
    \phi_2))^2`; a heterogeneous echo pattern adds bright blobs inside; below the
    lesion a column is brighter (enhancement) or darker (shadowing), fading
    with depth; the whole image gets multiplicative speckle of relative size
    ``speckle``.
    """
    if descriptors.ndim != 2 or descriptors.shape[1] != len(DESCRIPTORS):
        raise ValueError(f"descriptors must have shape (n, {len(DESCRIPTORS)}), got {tuple(descriptors.shape)}")
    if size < 16:
        raise ValueError(f"images need size >= 16 to show the descriptors, got size={size}")
    g = torch.Generator().manual_seed(0) if generator is None else generator
    n = descriptors.shape[0]
    shape, orientation, margin, echo, posterior = descriptors.float().unbind(1)
    scale = size / 32
    long_axis = scale * (7.5 + torch.rand(n, generator=g))
    short_axis = scale * (4.5 + 0.5 * torch.rand(n, generator=g))
    a_x = torch.where(orientation == 1, short_axis, long_axis)
    a_y = torch.where(orientation == 1, long_axis, short_axis)
    centre = size / 2 + scale * 2 * (torch.rand(n, 2, generator=g) - 0.5) - torch.tensor([scale * 3.0, 0.0])
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dy = coords[None, :, None] - centre[:, 0, None, None]
    dx = coords[None, None, :] - centre[:, 1, None, None]
    u, v = dx / a_x[:, None, None], dy / a_y[:, None, None]
    rho, theta = torch.sqrt(u**2 + v**2), torch.atan2(v, u)
    phase = 2 * math.pi * torch.rand(n, 2, generator=g)
    lobes = 0.4 * shape[:, None, None] * torch.cos(3 * theta + phase[:, 0, None, None])
    spikes = 0.5 * margin[:, None, None] * torch.cos(7 * theta + phase[:, 1, None, None]).clamp_min(0) ** 2
    inside = torch.sigmoid(6.0 * scale * (1 + lobes + spikes - rho))
    blobs = (_smooth_noise(n, size, g) > 0.55).float()
    lesion = 0.12 + 0.55 * echo[:, None, None] * blobs
    # posterior features: a column under the lesion, as wide as the lesion, fading with depth
    below = (dy - a_y[:, None, None]).clamp_min(0)
    column = torch.sigmoid(3.0 * (1 - dx.abs() / a_x[:, None, None])) * (dy > 0) * torch.exp(-below / (6 * scale))
    sign = 1 - 2 * posterior[:, None, None]
    background = 0.55 + 0.3 * sign * column
    image = inside * lesion + (1 - inside) * background
    image = image * (1 + speckle * torch.randn(n, size, size, generator=g))
    return image.unsqueeze(1)


def make_breast_lesions(
    n: int,
    hardness: float = 1.0,
    sharpness: float = 8.0,
    size: int = 32,
    speckle: float = 0.25,
    seed: int = 0,
) -> MultiTaskData:
    r"""``n`` synthetic lesions: images, the malignancy label and the five descriptor labels.

    Returns :class:`~mtl_course.data.tasks.MultiTaskData` with ``x``
    ``(n, 1, size, size)`` (:func:`render_lesions`) and six float targets in
    {0, 1}, each ``(n,)``: :data:`DIAGNOSIS` (drawn from
    :func:`malignancy_probability`) and one per descriptor
    (:data:`DESCRIPTORS`). ``truth[DIAGNOSIS]`` is the rule's probability
    :math:`p(\text{malignant} \mid d)` (the noise-free target), the descriptors'
    truth their labels. ``info`` holds ``descriptors`` ``(n, 5)``, the rule's
    ``weights``, ``hardness`` and ``sharpness``.

    >>> data = make_breast_lesions(6, hardness=0.0, seed=0)
    >>> data.tasks, tuple(data.x.shape)
    (('malignancy', 'shape', 'orientation', 'margin', 'echo', 'posterior'), (6, 1, 32, 32))
    >>> bool(torch.equal(data.targets["shape"], data.info["descriptors"][:, 0].float()))
    True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"need n >= 1 lesions, got n={n!r}")
    g = torch.Generator().manual_seed(seed)
    descriptors = (torch.rand(n, len(DESCRIPTORS), generator=g) < 0.5).long()
    probability = malignancy_probability(descriptors, hardness, sharpness).float()
    malignant = (torch.rand(n, generator=g) < probability).float()
    x = render_lesions(descriptors, size=size, speckle=speckle, generator=g)
    labels = {name: descriptors[:, k].float() for k, name in enumerate(DESCRIPTORS)}
    return MultiTaskData(
        x,
        {DIAGNOSIS: malignant, **labels},
        truth={DIAGNOSIS: probability, **labels},
        info={
            "descriptors": descriptors,
            "weights": rule_weights(hardness),
            "hardness": hardness,
            "sharpness": sharpness,
        },
    )

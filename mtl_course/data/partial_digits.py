r"""Partially labelled digits: three tasks on the same images, each training image labelled for one task only.

UberNet (Kokkinos, CVPR 2017, arXiv 1609.02132) trains one network on the
union of data sets that each annotate only some of its tasks (boundaries on
one, surface normals on another, semantic labels on a third): an image carries
the labels of *its* data set and no others, and the loss of task :math:`t`
counts sample :math:`i` only where :math:`\delta_{t,i} = 1`. This generator
builds the smallest such setting from scikit-learn's bundled ``load_digits``
(1,797 handwritten digits of 8 x 8 pixels; nothing is downloaded), with three
tasks that read the same pixels at three levels:

* ``digit`` -- the class, 0..9 (a high-level, per-image task);
* ``parity`` -- whether the digit is odd (0: even, 1: odd), a per-image
  attribute computed from the class;
* ``ink`` -- a dense task: the foreground mask of the clean digit,
  ``clean > ink_threshold`` per pixel (0: background, 1: ink), predicted from
  the noisy image.

The inputs are the digits scaled to [0, 1] plus Gaussian noise of standard
deviation ``noise``. In the **training set** each image carries exactly one
label: a share ``fractions[t]`` of the images (rounded, at least one) is
labelled for task ``t`` and for no other; the other tasks' targets are
``-100`` (:data:`~mtl_course.data.tasks.IGNORE_INDEX`) and ``masks[t]`` is
``False`` there. The **test set** is fully labelled (no masks). The source
images are first split into disjoint training and test pools, so no test
digit was seen in training.

*Stands in for* the medical version of the same problem: one archive of scans
with diagnoses, another with lesion masks drawn by a radiologist, a third with
a recorded attribute, and no scan annotated for everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mtl_course.data.multidigits import digit_pools
from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData

#: The tasks, in the order of ``fractions``.
TASKS = ("digit", "parity", "ink")


def _check_fractions(fractions: Sequence[float], n_train: int) -> np.ndarray:
    f = np.asarray(fractions, dtype=float).reshape(-1)
    if f.size != len(TASKS):
        raise ValueError(f"need one label fraction per task {TASKS}, got {f.size}: {list(fractions)}")
    if not np.isfinite(f).all() or (f <= 0).any():
        raise ValueError(
            f"every task needs a positive label fraction (an empty label set cannot train it), got {f.tolist()}"
        )
    if not math.isclose(float(f.sum()), 1.0, abs_tol=1e-6):
        raise ValueError(f"each training image carries one label, so the fractions must sum to 1; got {f.sum():.6g}")
    if n_train < len(TASKS):
        raise ValueError(f"need n_train >= {len(TASKS)} (one labelled image per task at least), got {n_train}")
    return f


def label_counts(fractions: Sequence[float], n_train: int) -> dict[str, int]:
    """How many training images each task labels: ``fractions * n_train`` rounded, at least 1, summing to ``n_train``.

    The task with the largest fraction takes what the rounding leaves.

    >>> label_counts([0.8, 0.1, 0.1], 100)
    {'digit': 80, 'parity': 10, 'ink': 10}
    >>> label_counts([0.98, 0.01, 0.01], 50)
    {'digit': 48, 'parity': 1, 'ink': 1}
    """
    f = _check_fractions(fractions, n_train)
    counts = [max(1, int(round(x * n_train))) for x in f]
    largest = int(np.argmax(f))
    counts[largest] += n_train - sum(counts)
    if counts[largest] < 1:
        raise ValueError(f"the fractions {f.tolist()} leave no image of {n_train} for the task {TASKS[largest]!r}")
    return dict(zip(TASKS, counts, strict=True))


def make_partial_digits(
    n_train: int = 600,
    n_test: int = 500,
    fractions: Sequence[float] = (1 / 3, 1 / 3, 1 / 3),
    noise: float = 0.3,
    ink_threshold: float = 0.5,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> tuple[MultiTaskData, MultiTaskData]:
    """``(train, test)``: ``n_train`` images each labelled for one task, ``n_test`` fully labelled images.

    Both are :class:`~mtl_course.data.tasks.MultiTaskData` with ``x``
    ``(n, 1, 8, 8)`` (noisy digits) and the targets ``digit`` ``(n,)``,
    ``parity`` ``(n,)`` and ``ink`` ``(n, 8, 8)`` (all ``int64``). ``train``
    has ``masks`` ``{task: (n,) bool}`` and ``-100`` for every missing label;
    ``info["labelled_task"]`` names the one task of each training image.
    ``info["source_index"]`` holds the rows of ``load_digits()`` used and
    ``info["clean"]`` the noise-free images. The same ``seed`` gives the same
    sets.

    >>> train, test = make_partial_digits(n_train=30, n_test=10, fractions=(0.6, 0.2, 0.2), seed=0)
    >>> train.tasks, tuple(train.x.shape), tuple(train.targets["ink"].shape)
    (('digit', 'parity', 'ink'), (30, 1, 8, 8), (30, 8, 8))
    >>> train.n_labelled(), test.n_labelled()
    ({'digit': 18, 'parity': 6, 'ink': 6}, {'digit': 10, 'parity': 10, 'ink': 10})
    >>> bool(sum(train.masks[t].long() for t in train.tasks).eq(1).all())  # one label per training image
    True
    """
    counts = label_counts(fractions, n_train)
    if n_test < 1:
        raise ValueError(f"need n_test >= 1, got {n_test}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
    if not 0.0 < ink_threshold < 1.0:
        raise ValueError(f"ink_threshold must lie strictly between 0 and 1 (pixels are in [0, 1]), got {ink_threshold}")
    rng = np.random.default_rng(seed)
    images, labels, pools = digit_pools(rng, test_fraction)

    def build(pool: np.ndarray, n: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        rows = rng.choice(pool, size=n, replace=n > len(pool))
        clean = torch.from_numpy(images[rows])
        x = clean + noise * torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))
        digit = torch.from_numpy(labels[rows])
        targets = {"digit": digit, "parity": digit % 2, "ink": (clean > ink_threshold).long()}
        return x.unsqueeze(1), targets, {"source_index": torch.from_numpy(rows), "clean": clean}

    x, targets, info = build(pools["train"], n_train)
    owner = torch.from_numpy(rng.permutation(np.repeat(np.arange(len(TASKS)), list(counts.values()))))
    masks = {t: owner == k for k, t in enumerate(TASKS)}
    for t in TASKS:
        targets[t] = torch.where(
            masks[t].reshape(-1, *[1] * (targets[t].dim() - 1)), targets[t], torch.tensor(IGNORE_INDEX)
        )
    train = MultiTaskData(x, targets, masks, info={**info, "labelled_task": owner, "tasks": TASKS})
    x_test, targets_test, info_test = build(pools["test"], n_test)
    return train, MultiTaskData(x_test, targets_test, info={**info_test, "tasks": TASKS})

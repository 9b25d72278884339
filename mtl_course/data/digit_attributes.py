"""Digit attributes: nine yes/no questions about one handwritten digit, in three related groups.

The data of lecture B9 (Lu et al., "Fully-adaptive Feature Sharing in
Multi-Task Networks with Applications in Person Attribute Classification",
CVPR 2017, arXiv 1611.05377). The paper's tasks are person attributes
(CelebA's 40 face attributes, DeepFashion's clothing categories), many of
them related ("wearing lipstick" and "heavy makeup"); its method has to find
out which ones to group. Here the images are the 8x8 digits of
scikit-learn's ``load_digits`` (1,797 images, bundled, nothing is
downloaded) and the nine binary tasks are questions about the digit, chosen
so that the related groups are known in advance (:data:`KNOWN_GROUPS`):

* **thin strokes** -- ``is1``, ``is7``, ``straight`` (only straight strokes:
  1, 4 or 7): all three are decided by the same few thin-stroke digits;
* **round single digits** -- ``is0``, ``is6``: a closed round body, told
  apart from each other and from 8 and 9;
* **halves of the ten digits** -- ``loop`` (a closed loop: 0, 6, 8 or 9),
  ``is8``, ``even``, ``ge5`` (5 or more): coarse questions whose answers
  depend on the same many-digit distinctions (8 against 3, 5, 9; 6 against 5).

*Stands in for* a panel of findings read off one image, some of which go
together (in a chest radiograph: cardiomegaly and pleural effusion), where a
network designer does not know in advance which findings should share
features. The grouping is "known" only in the sense that the course chose
the tasks to fall into these groups; whether an affinity measured during
training recovers them is the question of the lecture.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mtl_course.data.tasks import MultiTaskData

#: The digits for which each task's answer is "yes".
TASK_DIGITS: Mapping[str, frozenset[int]] = {
    "is1": frozenset({1}),
    "is7": frozenset({7}),
    "straight": frozenset({1, 4, 7}),
    "is0": frozenset({0}),
    "is6": frozenset({6}),
    "loop": frozenset({0, 6, 8, 9}),
    "is8": frozenset({8}),
    "even": frozenset({0, 2, 4, 6, 8}),
    "ge5": frozenset({5, 6, 7, 8, 9}),
}
#: The related groups the tasks were chosen to form (see the module docstring).
KNOWN_GROUPS: tuple[tuple[str, ...], ...] = (("is1", "is7", "straight"), ("is0", "is6"), ("loop", "is8", "even", "ge5"))


def attribute_labels(digits: np.ndarray) -> dict[str, np.ndarray]:
    """The nine binary labels (class indices 0 = no, 1 = yes, ``int64``) of an array of digit labels 0..9.

    >>> {t: y.tolist() for t, y in attribute_labels(np.array([1, 6, 8])).items() if t in ("straight", "loop", "ge5")}
    {'straight': [1, 0, 0], 'loop': [0, 1, 1], 'ge5': [0, 1, 1]}
    >>> attribute_labels(np.array([3, 10]))
    Traceback (most recent call last):
    ...
    ValueError: digit labels must be integers 0..9, got values [10]
    """
    digits = np.asarray(digits)
    if digits.ndim != 1 or digits.size == 0:
        raise ValueError(f"need a non-empty 1-D array of digit labels, got shape {digits.shape}")
    if not np.issubdtype(digits.dtype, np.integer):
        raise ValueError(f"digit labels must be integers 0..9, got dtype {digits.dtype}")
    bad = sorted({int(d) for d in digits if not 0 <= d <= 9})
    if bad:
        raise ValueError(f"digit labels must be integers 0..9, got values {bad}")
    return {task: np.isin(digits, sorted(yes)).astype(np.int64) for task, yes in TASK_DIGITS.items()}


def load_digit_attributes(n_train: int = 600, seed: int = 0) -> tuple[MultiTaskData, MultiTaskData]:
    """A seeded split of ``load_digits`` into ``n_train`` training images and the rest, with the nine tasks.

    Each half is a :class:`~mtl_course.data.tasks.MultiTaskData` with ``x``
    (n, 64) ``float32`` pixel values scaled to [0, 1], one target per task of
    :data:`TASK_DIGITS` (n,) with classes 0 = no, 1 = yes, and in ``info``:
    ``digit`` (the digit labels), ``index`` (rows of ``load_digits()``) and
    ``groups`` (:data:`KNOWN_GROUPS`).

    >>> train, test = load_digit_attributes(n_train=100, seed=0)
    >>> train.n, test.n, train.tasks[:3], train.x.shape[1]
    (100, 1697, ('is1', 'is7', 'straight'), 64)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n = len(bunch.target)
    if not isinstance(n_train, int) or not 0 < n_train < n:
        raise ValueError(f"n_train must be an int between 1 and {n - 1} (load_digits has {n} images), got {n_train}")
    order = np.random.default_rng(seed).permutation(n)
    x = (bunch.data / 16.0).astype(np.float32)

    def part(rows: np.ndarray) -> MultiTaskData:
        digits = bunch.target[rows].astype(np.int64)
        info = {"digit": digits, "index": rows, "groups": KNOWN_GROUPS}
        return MultiTaskData(x[rows], attribute_labels(digits), info=info)

    return part(order[:n_train]), part(order[n_train:])


def shuffle_each_task(data: MultiTaskData, seed: int = 0) -> MultiTaskData:
    """Every task's labels permuted across the images by its own permutation: the chance level of any relation.

    Each task keeps its own label frequencies, but its labels no longer belong to the images, nor go together
    with the other tasks' labels.

    >>> train, _ = load_digit_attributes(n_train=50, seed=0)
    >>> shuffled = shuffle_each_task(train, seed=1)
    >>> bool((np.sort(shuffled.targets["even"]) == np.sort(train.targets["even"])).all())
    True
    """
    rng = np.random.default_rng(seed)
    return data.with_targets({t: np.asarray(y)[rng.permutation(data.n)] for t, y in data.targets.items()})

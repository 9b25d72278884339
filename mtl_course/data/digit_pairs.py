"""Few-shot digit-pair tasks and a target task with few labels, for meta-training (lecture B15).

The data of lecture B15 (Maicas, Bradley, Nascimento, Reid and Carneiro,
"Training Medical Image Analysis Systems like Radiologists", MICCAI 2018,
arXiv 1805.10884). The paper meta-trains a classifier on many small
classification problems and then fine-tunes it on breast screening from
DCE-MRI. Here the images are the 8x8 digits of scikit-learn's ``load_digits``
(1,797 images, bundled, nothing is downloaded):

* **source tasks** -- one binary task per pair of digits :math:`(a, b)`,
  :math:`a < b` (45 tasks), each with only ``n_per_digit`` images of either
  digit (label 0 for :math:`a`, 1 for :math:`b`, ``NaN`` for the other digits);
* **target task** -- "is the digit one of ``target_digits``?" (by default 3, 5
  or 8, digits that look alike) with ``n_target`` labelled images per class
  for fine-tuning and every remaining image for testing.

The three splits use disjoint images. *Stands in for* a bank of small,
easy-to-label sub-problems of one imaging domain (the meta-training tasks)
and one hard clinical question with few labels (the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from mtl_course.data.tasks import MultiTaskData

#: The target task's name in :class:`FewShotTasks` ``.target_train`` and ``.target_test``.
TARGET = "target"


def pair_task(a: int, b: int) -> str:
    """The name of the source task "digit ``a`` (label 0) against digit ``b`` (label 1)".

    >>> pair_task(3, 8)
    'd3_vs_8'
    """
    return f"d{a}_vs_{b}"


@dataclass(frozen=True)
class FewShotTasks:
    """The source tasks (one :class:`MultiTaskData`, 45 masked binary tasks) and the target's two splits."""

    source: MultiTaskData
    target_train: MultiTaskData
    target_test: MultiTaskData


def _check_digits(target_digits: Sequence[int]) -> tuple[int, ...]:
    digits = tuple(int(d) for d in target_digits)
    if not digits or len(set(digits)) != len(digits) or any(d < 0 or d > 9 for d in digits) or len(digits) == 10:
        raise ValueError(f"target_digits must be 1 to 9 distinct digits in 0..9, got {list(target_digits)}")
    return digits


def make_digit_pair_tasks(
    n_per_digit: int = 10, target_digits: Sequence[int] = (3, 5, 8), n_target: int = 10, seed: int = 0
) -> FewShotTasks:
    """A seeded split of ``load_digits`` into the 45 digit-pair source tasks and the target task.

    ``source.x`` holds ``n_per_digit`` images of every digit (pixels scaled to
    [0, 1], shape ``(10 n_per_digit, 64)``); ``source.targets[pair_task(a, b)]``
    is 0 on the images of ``a``, 1 on those of ``b`` and ``NaN`` elsewhere.
    ``target_train`` has ``n_target`` images with target label 1 (a digit of
    ``target_digits``) and ``n_target`` with label 0; ``target_test`` is every
    other image. ``info["digit"]`` and ``info["index"]`` (rows of
    ``load_digits()``) travel with each split.

    >>> tasks = make_digit_pair_tasks(seed=0)
    >>> tasks.source.n, len(tasks.source.tasks), tasks.target_train.n, tasks.target_test.n
    (100, 45, 20, 1677)
    >>> tasks.source.n_labelled()["d3_vs_8"]
    20
    """
    from sklearn.datasets import load_digits

    digits = _check_digits(target_digits)
    if n_per_digit < 2 or n_target < 1:
        raise ValueError(f"need n_per_digit >= 2 and n_target >= 1, got n_per_digit={n_per_digit}, n_target={n_target}")
    bunch = load_digits()
    x, label = (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(label))
    source_rows = np.concatenate([order[label[order] == d][:n_per_digit] for d in range(10)])
    rest = np.setdiff1d(order, source_rows, assume_unique=True)
    rest = rest[rng.permutation(len(rest))]
    positive = np.isin(label[rest], digits)
    train_rows = np.concatenate([rest[positive][:n_target], rest[~positive][:n_target]])
    test_rows = np.setdiff1d(rest, train_rows, assume_unique=True)

    def split(rows: np.ndarray, targets: dict[str, np.ndarray]) -> MultiTaskData:
        return MultiTaskData(x[rows], targets, info={"digit": label[rows], "index": rows})

    pairs = {}
    for a, b in combinations(range(10), 2):
        y = np.full(len(source_rows), np.nan, dtype=np.float32)
        y[label[source_rows] == a], y[label[source_rows] == b] = 0.0, 1.0
        pairs[pair_task(a, b)] = y

    def target(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {TARGET: np.isin(label[rows], digits).astype(np.float32)}

    return FewShotTasks(
        split(source_rows, pairs), split(train_rows, target(train_rows)), split(test_rows, target(test_rows))
    )

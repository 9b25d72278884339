"""MultiDigits: two handwritten digits overlaid on one small canvas, one task per digit.

A miniature of MultiMNIST, the two-task benchmark of Sener & Koltun
("Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
arXiv 1810.04650, Section 4.1, after Sabour et al., NeurIPS 2017): one digit
is placed in the top-left corner and another in the bottom-right corner of a
canvas, the two overlap, and the tasks are to name the left and the right
digit. Here the digits are the 8x8 images of scikit-learn's ``load_digits``
(1,797 images, bundled with scikit-learn, nothing is downloaded) and the
canvas is ``(8 + offset) x (8 + offset)`` = 12 x 12 pixels for the default
``offset`` of 4:

    canvas[0:8, 0:8]                         = left image
    canvas[offset:8+offset, offset:8+offset] = max(canvas[...], right image)

(element-wise maximum where the two overlap). Pixel values are scaled to
``[0, 1]``.

*Stands in for* two findings read off the same image that compete for the
same pixels, e.g. two overlapping structures in a projection radiograph: the
tasks are equally hard and symmetric, so a shared network should serve both,
and the question of the lecture is whether a clever weighting of the two
losses helps.

To keep test digits unseen, the 1,797 source images are first split into a
training pool and a test pool (``test_fraction``); training pairs draw both
digits from the training pool, test pairs from the test pool.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_course.data.tasks import MultiTaskData

DIGIT_SIZE = 8


def overlay(left: np.ndarray, right: np.ndarray, offset: int = 4) -> np.ndarray:
    """Place ``left`` (…, 8, 8) top-left and ``right`` bottom-right, shifted by ``offset``; max where they overlap.

    >>> a, b = np.ones((8, 8)), 2 * np.ones((8, 8))
    >>> c = overlay(a, b, offset=4)
    >>> c.shape, [float(v) for v in (c[0, 0], c[5, 5], c[11, 11], c[0, 11])]
    ((12, 12), [1.0, 2.0, 2.0, 0.0])
    """
    if left.shape[-2:] != (DIGIT_SIZE, DIGIT_SIZE) or right.shape != left.shape:
        raise ValueError(f"need two arrays of 8x8 images of the same shape, got {left.shape} and {right.shape}")
    if not 0 <= offset <= DIGIT_SIZE:
        raise ValueError(f"offset must be in 0..{DIGIT_SIZE} pixels, got {offset}")
    size = DIGIT_SIZE + offset
    canvas = np.zeros(left.shape[:-2] + (size, size), dtype=np.result_type(left, right))
    canvas[..., :DIGIT_SIZE, :DIGIT_SIZE] = left
    window = canvas[..., offset:, offset:]
    np.maximum(window, right, out=window)
    return canvas


def digit_pools(rng: np.random.Generator, test_fraction: float) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """scikit-learn's 8 x 8 digits in [0, 1], their labels, and disjoint ``{"train", "test"}`` pools of their rows.

    A share ``test_fraction`` of the 1797 images, drawn with ``rng``, is kept for testing, so that no test
    image (nor a copy of one) is ever trained on.

    >>> images, labels, pools = digit_pools(np.random.default_rng(0), 0.25)
    >>> images.shape, len(pools["train"]) + len(pools["test"]), float(images.max())
    ((1797, 8, 8), 1797, 1.0)
    """
    from sklearn.datasets import load_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    order = rng.permutation(len(images))
    n_test_pool = int(round(test_fraction * len(images)))
    return images, labels, {"train": order[n_test_pool:], "test": order[:n_test_pool]}


def load_multidigits(
    n_train: int = 1000,
    n_test: int = 500,
    offset: int = 4,
    test_fraction: float = 0.3,
    seed: int = 0,
    flat: bool = False,
) -> tuple[MultiTaskData, MultiTaskData]:
    """Build ``n_train`` training and ``n_test`` test canvases from disjoint pools of ``load_digits``.

    Each canvas draws its two digits independently and uniformly (with
    replacement) from its pool, so the left and right labels are independent.
    The same ``seed`` gives the same canvases.

    Returns ``(train, test)``, each a :class:`~mtl_course.data.tasks.MultiTaskData`
    with canvases ``x`` (n, 1, H, W) in [0, 1] (``flat=True``: vectors
    (n, H * W), the input of an MLP), the targets ``left`` and ``right``
    (n,) in 0..9, and in ``info`` the rows of ``load_digits()`` each canvas
    was built from (``left_index``, ``right_index``).

    >>> train, test = load_multidigits(n_train=6, n_test=3, seed=0)
    >>> tuple(train.x.shape), tuple(test.x.shape), train.tasks
    ((6, 1, 12, 12), (3, 1, 12, 12), ('left', 'right'))
    >>> float(train.x.min()) >= 0.0 and float(train.x.max()) <= 1.0
    True
    >>> tuple(load_multidigits(n_train=6, n_test=3, seed=0, flat=True)[0].x.shape)
    (6, 144)
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need n_train >= 1 and n_test >= 1, got n_train={n_train}, n_test={n_test}")
    rng = np.random.default_rng(seed)
    images, labels, pools = digit_pools(rng, test_fraction)

    def build(pool: np.ndarray, n: int) -> MultiTaskData:
        left = rng.choice(pool, size=n)
        right = rng.choice(pool, size=n)
        canvas = torch.from_numpy(overlay(images[left], images[right], offset))
        return MultiTaskData(
            canvas.reshape(n, -1) if flat else canvas.unsqueeze(1),
            {"left": torch.from_numpy(labels[left]), "right": torch.from_numpy(labels[right])},
            info={"left_index": torch.from_numpy(left), "right_index": torch.from_numpy(right)},
        )

    return build(pools["train"], n_train), build(pools["test"], n_test)

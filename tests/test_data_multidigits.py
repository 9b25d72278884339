"""mtl_course.data.multidigits: two load_digits images overlaid on one canvas, one task per digit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _data_digest import digest
from sklearn.datasets import load_digits

from mtl_course.data.multidigits import load_multidigits, overlay


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_shapes_range_and_dtypes() -> None:
    train, test = load_multidigits(n_train=50, n_test=20, seed=0)
    assert tuple(train.x.shape) == (50, 1, 12, 12) and tuple(test.x.shape) == (20, 1, 12, 12)
    assert train.x.dtype == torch.float32 and train.targets["left"].dtype == torch.int64
    assert float(train.x.min()) >= 0.0 and float(train.x.max()) <= 1.0
    assert train.tasks == ("left", "right")
    flat, _ = load_multidigits(n_train=50, n_test=20, seed=0, flat=True)
    assert torch.equal(flat.x, train.x.reshape(50, 144))
    assert torch.equal(flat.targets["right"], train.targets["right"])


def test_the_numbers_are_bit_identical_to_the_loader_before_the_common_container() -> None:
    """A digest of what load_multidigits made when it returned MultiDigitsData (commit f1f8bec)."""
    arrays = []
    for data in load_multidigits(n_train=30, n_test=10, seed=7):
        arrays += [data.x, data.targets["left"], data.targets["right"]]
        arrays += [data.info["left_index"], data.info["right_index"]]
    assert digest(*arrays) == "9fdf27f34019dbf5"


def test_canvas_is_the_elementwise_max_of_the_two_placed_digits(digits) -> None:
    """Rebuild every canvas independently from load_digits and the recorded source rows."""
    train, _ = load_multidigits(n_train=40, n_test=5, seed=1)
    images = digits.images / 16.0
    for k in range(train.n):
        left, right = images[int(train.info["left_index"][k])], images[int(train.info["right_index"][k])]
        expected = np.zeros((12, 12))
        expected[:8, :8] = left
        for i in range(8):
            for j in range(8):
                expected[4 + i, 4 + j] = max(expected[4 + i, 4 + j], right[i, j])
        np.testing.assert_allclose(train.x[k, 0].numpy(), expected, atol=1e-6)


def test_labels_are_those_of_the_source_images(digits) -> None:
    train, test = load_multidigits(n_train=100, n_test=30, seed=2)
    for data in (train, test):
        for side in ("left", "right"):
            source = data.info[f"{side}_index"].numpy()
            assert torch.equal(data.targets[side], torch.from_numpy(digits.target[source]))


def test_train_and_test_pools_are_disjoint() -> None:
    train, test = load_multidigits(n_train=2000, n_test=1000, seed=3)
    train_sources = set(train.info["left_index"].tolist()) | set(train.info["right_index"].tolist())
    test_sources = set(test.info["left_index"].tolist()) | set(test.info["right_index"].tolist())
    assert not train_sources & test_sources
    # 2,000 draws from a pool of about 1,258 images use most of it
    assert len(train_sources) > 1000 and len(test_sources) > 450


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, _ = load_multidigits(n_train=30, n_test=5, seed=7)
    b, _ = load_multidigits(n_train=30, n_test=5, seed=7)
    c, _ = load_multidigits(n_train=30, n_test=5, seed=8)
    assert torch.equal(a.x, b.x) and torch.equal(a.targets["left"], b.targets["left"])
    assert not torch.equal(a.x, c.x)


def test_labels_cover_all_classes_and_are_independent() -> None:
    train, _ = load_multidigits(n_train=3000, n_test=10, seed=0)
    left, right = train.targets["left"], train.targets["right"]
    for labels in (left, right):
        counts = torch.bincount(labels, minlength=10)
        assert counts.min() > 200  # about 300 each
    agreement = float((left == right).float().mean())
    assert 0.05 < agreement < 0.15  # independent draws agree about 1 time in 10


def test_offset_sets_the_canvas_size() -> None:
    train, _ = load_multidigits(n_train=3, n_test=3, offset=2, seed=0)
    assert tuple(train.x.shape[-2:]) == (10, 10)
    np.testing.assert_array_equal(overlay(np.ones((8, 8)), np.ones((8, 8)), offset=0), np.ones((8, 8)))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="n_train"):
        load_multidigits(n_train=0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_multidigits(test_fraction=1.0)
    with pytest.raises(ValueError, match="offset"):
        overlay(np.ones((8, 8)), np.ones((8, 8)), offset=9)
    with pytest.raises(ValueError, match="8x8"):
        overlay(np.ones((7, 8)), np.ones((7, 8)))

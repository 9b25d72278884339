"""The digit-pair source tasks and the target task of lecture B15."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mtl_course.data import TARGET, make_digit_pair_tasks, pair_task


@pytest.fixture(scope="module")
def tasks():
    return make_digit_pair_tasks(n_per_digit=10, target_digits=(3, 5, 8), n_target=10, seed=3)


def test_splits_are_disjoint_and_cover_the_digits(tasks):
    parts = [tasks.source, tasks.target_train, tasks.target_test]
    rows = [set(p.info["index"].tolist()) for p in parts]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]
    assert sum(len(r) for r in rows) == len(load_digits().target)


def test_images_and_digits_match_load_digits(tasks):
    bunch = load_digits()
    for part in (tasks.source, tasks.target_train, tasks.target_test):
        np.testing.assert_allclose(part.x, bunch.data[part.info["index"]] / 16.0, rtol=1e-6)
        np.testing.assert_array_equal(part.info["digit"], bunch.target[part.info["index"]])


def test_pair_labels_brute_force(tasks):
    digit = tasks.source.info["digit"]
    assert np.bincount(digit, minlength=10).tolist() == [10] * 10
    assert len(tasks.source.tasks) == 45
    for a in range(10):
        for b in range(a + 1, 10):
            y = tasks.source.targets[pair_task(a, b)]
            for label, d in zip(y, digit, strict=True):
                expected = 0.0 if d == a else 1.0 if d == b else None
                assert np.isnan(label) if expected is None else label == expected


def test_target_is_balanced_and_correct(tasks):
    y, d = tasks.target_train.targets[TARGET], tasks.target_train.info["digit"]
    assert y.sum() == 10 and len(y) == 20
    np.testing.assert_array_equal(y == 1, np.isin(d, [3, 5, 8]))
    np.testing.assert_array_equal(
        tasks.target_test.targets[TARGET] == 1, np.isin(tasks.target_test.info["digit"], [3, 5, 8])
    )


def test_seeded():
    a, b = make_digit_pair_tasks(seed=1), make_digit_pair_tasks(seed=1)
    np.testing.assert_array_equal(a.target_train.info["index"], b.target_train.info["index"])
    assert not np.array_equal(a.source.info["index"], make_digit_pair_tasks(seed=2).source.info["index"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_digits": ()}, "target_digits must be 1 to 9 distinct digits"),
        ({"target_digits": (3, 3)}, "target_digits must be 1 to 9 distinct digits"),
        ({"target_digits": (3, 12)}, "target_digits must be 1 to 9 distinct digits"),
        ({"target_digits": tuple(range(10))}, "target_digits must be 1 to 9 distinct digits"),
        ({"n_per_digit": 1}, "need n_per_digit >= 2"),
        ({"n_target": 0}, "n_target >= 1"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_digit_pair_tasks(**kwargs)

"""The digit-attribute tasks of lecture B9: labels against a brute-force table, the split, the shuffled chance level."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.data.digit_attributes import (
    KNOWN_GROUPS,
    TASK_DIGITS,
    attribute_labels,
    load_digit_attributes,
    shuffle_each_task,
)

#: Written out by hand from the module docstring: which digits answer "yes".
BY_HAND = {
    "is1": [1],
    "is7": [7],
    "straight": [1, 4, 7],
    "is0": [0],
    "is6": [6],
    "loop": [0, 6, 8, 9],
    "is8": [8],
    "even": [0, 2, 4, 6, 8],
    "ge5": [5, 6, 7, 8, 9],
}


def test_the_labels_match_a_table_written_by_hand() -> None:
    digits = np.arange(10)
    labels = attribute_labels(digits)
    assert list(labels) == list(BY_HAND)
    for task, yes in BY_HAND.items():
        assert labels[task].tolist() == [int(d in yes) for d in range(10)], task


def test_the_known_groups_split_the_nine_tasks() -> None:
    flat = [t for group in KNOWN_GROUPS for t in group]
    assert sorted(flat) == sorted(TASK_DIGITS) and len(flat) == 9


def test_the_split_is_seeded_disjoint_and_labelled_from_the_digits() -> None:
    train, test = load_digit_attributes(n_train=200, seed=3)
    again, _ = load_digit_attributes(n_train=200, seed=3)
    assert train.n == 200 and test.n == 1797 - 200
    assert np.array_equal(train.info["index"], again.info["index"])
    assert not set(train.info["index"]) & set(test.info["index"])
    assert train.x.dtype == np.float32 and train.x.min() >= 0.0 and train.x.max() <= 1.0
    for task, yes in BY_HAND.items():
        assert np.array_equal(train.targets[task], np.isin(train.info["digit"], yes).astype(np.int64))
    assert train.info["groups"] == KNOWN_GROUPS


def test_shuffling_keeps_each_tasks_label_counts_and_breaks_the_link_between_tasks() -> None:
    train, _ = load_digit_attributes(n_train=600, seed=0)
    shuffled = shuffle_each_task(train, seed=0)
    for task in train.tasks:
        assert np.sort(shuffled.targets[task]).tolist() == np.sort(train.targets[task]).tolist()
    # is1 implies straight in the real labels, but not once each task has its own permutation
    real = train.targets["is1"] & (1 - train.targets["straight"])
    fake = shuffled.targets["is1"] & (1 - shuffled.targets["straight"])
    assert real.sum() == 0 and fake.sum() > 0


@pytest.mark.parametrize(
    ("digits", "message"),
    [
        (np.array([1, 12]), "got values \\[12\\]"),
        (np.array([1.0, 2.0]), "got dtype float64"),
        (np.array([], dtype=int), "non-empty 1-D array"),
        (np.zeros((2, 2), dtype=int), "non-empty 1-D array"),
    ],
)
def test_bad_digit_labels_are_refused_with_a_message(digits: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        attribute_labels(digits)


@pytest.mark.parametrize("n_train", [0, 1797, 2.5])
def test_a_bad_training_size_is_refused(n_train: object) -> None:
    with pytest.raises(ValueError, match="n_train must be an int between 1 and 1796"):
        load_digit_attributes(n_train=n_train)  # type: ignore[arg-type]

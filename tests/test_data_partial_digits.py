"""The partially labelled digits of lecture B8: one label per training image, a fully labelled test set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data import IGNORE_INDEX, label_counts, make_partial_digits


@pytest.fixture(scope="module")
def sets():
    return make_partial_digits(n_train=200, n_test=80, fractions=(0.1, 0.3, 0.6), seed=3)


def test_every_training_image_carries_exactly_one_label(sets) -> None:
    train, _ = sets
    owners = torch.stack([train.masks[t] for t in train.tasks]).long()
    assert owners.sum(0).eq(1).all()
    for k, task in enumerate(train.tasks):
        target, mask = train.targets[task], train.masks[task]
        assert torch.equal(train.info["labelled_task"] == k, mask)
        missing = target[~mask].reshape(int((~mask).sum()), -1)
        assert missing.eq(IGNORE_INDEX).all(), f"{task}: an unlabelled image keeps a label"
        assert target[mask].ne(IGNORE_INDEX).all()


def test_label_counts_follow_the_fractions(sets) -> None:
    train, _ = sets
    assert train.n_labelled() == {"digit": 20, "parity": 60, "ink": 120} == label_counts((0.1, 0.3, 0.6), 200)


def test_test_set_is_fully_labelled_and_consistent(sets) -> None:
    _, test = sets
    assert test.masks is None and test.n_labelled() == {"digit": 80, "parity": 80, "ink": 80}
    assert torch.equal(test.targets["parity"], test.targets["digit"] % 2)
    assert torch.equal(test.targets["ink"], (test.info["clean"] > 0.5).long())
    assert tuple(test.x.shape) == (80, 1, 8, 8) and test.x.dtype == torch.float32


def test_labels_match_the_source_digits(sets) -> None:
    from sklearn.datasets import load_digits

    train, test = sets
    digits = load_digits()
    for data in (train, test):
        rows = data.info["source_index"].numpy()
        np.testing.assert_allclose(data.info["clean"].numpy(), digits.images[rows] / 16.0, rtol=1e-6)
    labelled = train.masks["digit"]
    assert np.array_equal(train.targets["digit"][labelled].numpy(), digits.target[train.info["source_index"][labelled]])


def test_train_and_test_digits_come_from_disjoint_pools(sets) -> None:
    train, test = sets
    assert not set(train.info["source_index"].tolist()) & set(test.info["source_index"].tolist())


def test_noise_level_is_the_requested_one() -> None:
    train, _ = make_partial_digits(n_train=300, n_test=5, noise=0.2, seed=0)
    residual = train.x[:, 0] - train.info["clean"]
    assert math.isclose(float(residual.std()), 0.2, rel_tol=0.05)


def test_same_seed_same_sets_other_seed_other_sets() -> None:
    a, b, c = (make_partial_digits(n_train=30, n_test=10, seed=s)[0] for s in (1, 1, 2))
    assert torch.equal(a.x, b.x) and torch.equal(a.info["labelled_task"], b.info["labelled_task"])
    assert not torch.equal(a.x, c.x)


def test_label_counts_round_but_keep_every_task() -> None:
    assert label_counts([0.98, 0.01, 0.01], 50) == {"digit": 48, "parity": 1, "ink": 1}
    assert sum(label_counts([1 / 3, 1 / 3, 1 / 3], 100).values()) == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fractions": (0.5, 0.5)}, "one label fraction per task"),
        ({"fractions": (0.5, 0.5, 0.0)}, "empty label set"),
        ({"fractions": (0.5, float("nan"), 0.5)}, "positive label fraction"),
        ({"fractions": (0.5, 0.3, 0.3)}, "must sum to 1"),
        ({"n_train": 2}, "n_train >= 3"),
        ({"n_test": 0}, "n_test >= 1"),
        ({"noise": float("nan")}, "noise must be"),
        ({"ink_threshold": 1.0}, "ink_threshold"),
        ({"test_fraction": 0.0}, "test_fraction"),
    ],
)
def test_bad_input_names_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_partial_digits(**{"n_train": 30, "n_test": 5, **kwargs})

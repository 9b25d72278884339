"""Linear tasks with a known task correlation (lecture B10)."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.data import MultiTaskData, make_relationship_tasks, relationship_correlation, weight_correlation


def test_shapes_labels_and_truth() -> None:
    train, test = make_relationship_tasks(n_samples=(5, 6, 2, 5, 5, 5), n_features=7, n_test=50, seed=3)
    assert train.x.shape == (28, 7) and test.x.shape == (50, 7)
    assert train.n_labelled() == {"A": 5, "B": 6, "C": 2, "D": 5, "E": 5, "F": 5}
    W = train.info["weights"]
    np.testing.assert_allclose(test.targets["E"][:, 0], test.x @ W[:, 4])
    labelled = ~np.isnan(train.targets["C"][:, 0])
    residual = train.targets["C"][labelled, 0] - train.x[labelled] @ W[:, 2]
    assert 0 < np.abs(residual).max() < 5 * 0.5


def test_the_weights_follow_the_correlation_over_many_features() -> None:
    train, _ = make_relationship_tasks(n_features=20_000, seed=0)
    np.testing.assert_allclose(weight_correlation(train), relationship_correlation(), atol=0.03)
    np.testing.assert_allclose((train.info["weights"] ** 2).sum(0), 1.0, atol=0.05)


def test_seeded_and_reproducible() -> None:
    a, _ = make_relationship_tasks(seed=1)
    b, _ = make_relationship_tasks(seed=1)
    c, _ = make_relationship_tasks(seed=2)
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_samples": (5, 5)}, "one positive sample count per task"),
        ({"n_samples": (5, 5, 0, 5, 5, 5)}, "one positive sample count per task"),
        ({"noise": float("nan")}, "noise must be"),
        ({"correlation": np.eye(5)}, r"must be \(6, 6\)"),
        ({"correlation": np.full((6, 6), np.nan)}, "finite and symmetric"),
        ({"correlation": -np.ones((6, 6)) + 2 * np.eye(6)}, "positive definite"),
        ({"n_features": 0}, "n_features >= 1"),
        ({"tasks": ("A", "A", "C", "D", "E", "F")}, "unique"),
    ],
)
def test_bad_input_names_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_relationship_tasks(**kwargs)


def test_bad_correlation_arguments_and_missing_weights() -> None:
    with pytest.raises(ValueError, match="block in"):
        relationship_correlation(block=-0.9)
    train, _ = make_relationship_tasks(seed=0)
    with pytest.raises(KeyError, match="no true weights"):
        weight_correlation(MultiTaskData(train.x, train.targets))

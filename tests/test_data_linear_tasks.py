"""mtl_course.data.linear_tasks: sparse linear tasks and scikit-learn's diabetes and Linnerud data."""

from __future__ import annotations

import numpy as np
import pytest
from _data_digest import digest
from sklearn.datasets import load_diabetes, load_linnerud

from mtl_course.data.linear_tasks import (
    load_diabetes_tasks,
    load_linnerud_tasks,
    make_sparse_linear_tasks,
    random_split,
    target_matrix,
)


@pytest.mark.parametrize(
    ("shared", "expected", "split"),
    [(True, "bf81c27356ee968c", "334f9faeb3496c81"), (False, "1397a1ab1198038d", "d47268d0315571a6")],
)
def test_the_numbers_are_bit_identical_to_the_generator_before_the_common_container(
    shared: bool, expected: str, split: str
) -> None:
    """Digests of X, Y, the coefficients and a split when the generator returned LinearTasks (commit f1f8bec)."""
    data = make_sparse_linear_tasks(
        n_samples=40, n_features=12, n_tasks=3, n_informative=3, shared_support=shared, seed=5
    )
    assert digest(data.x, target_matrix(data), data.info["coefficients"]) == expected
    train, test = random_split(data, 30, seed=1)
    assert digest(train.x, target_matrix(train), test.x, target_matrix(test)) == split


def test_targets_are_the_noise_free_truth_plus_noise_of_the_given_scale() -> None:
    data = make_sparse_linear_tasks(n_samples=4000, n_features=10, n_tasks=2, n_informative=3, noise=0.5, seed=0)
    B = data.info["coefficients"]
    assert data.tasks == ("task 0", "task 1") and B.shape == (10, 2)
    for k, task in enumerate(data.tasks):
        np.testing.assert_allclose(data.truth[task], data.x @ B[:, k])
        assert abs(float(np.std(data.targets[task] - data.truth[task])) - 0.5) < 0.02
    assert np.count_nonzero(B, axis=0).tolist() == [3, 3]
    assert data.info["feature_names"][:2] == ("x0", "x1")


def test_different_supports_draw_their_own_features() -> None:
    data = make_sparse_linear_tasks(n_samples=10, n_features=40, n_tasks=4, n_informative=4, shared_support=False)
    support = data.info["coefficients"] != 0
    assert not (support == support[:, :1]).all()


def test_target_matrix_has_one_column_per_task_in_order() -> None:
    data = make_sparse_linear_tasks(n_samples=6, n_features=3, n_tasks=3, n_informative=1, seed=2)
    Y = target_matrix(data)
    assert Y.shape == (6, 3)
    for k, task in enumerate(data.tasks):
        np.testing.assert_array_equal(Y[:, k], data.targets[task])


def test_random_split_partitions_the_rows() -> None:
    data = make_sparse_linear_tasks(n_samples=25, n_features=3, n_tasks=2, n_informative=1, seed=3)
    train, test = random_split(data, 18, seed=4)
    assert (train.n, test.n) == (18, 7)
    rows = np.concatenate([train.x, test.x])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, data.x))
    assert train.info is data.info
    for n_train in (0, 25):
        with pytest.raises(ValueError, match="n_train must be between 1 and 24"):
            random_split(data, n_train)


def test_bundled_sets_are_scikit_learns() -> None:
    diabetes, bunch = load_diabetes_tasks(), load_diabetes()
    np.testing.assert_array_equal(diabetes.x, bunch.data)
    np.testing.assert_array_equal(diabetes.targets["progression"], bunch.target)
    linnerud, bunch = load_linnerud_tasks(), load_linnerud()
    np.testing.assert_array_equal(target_matrix(linnerud), bunch.target)
    assert linnerud.info["feature_names"] == tuple(bunch.feature_names) and linnerud.tasks == tuple(bunch.target_names)
    assert diabetes.truth is None and linnerud.truth is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="n_informative"):
        make_sparse_linear_tasks(n_features=3, n_informative=4)
    with pytest.raises(ValueError, match="noise"):
        make_sparse_linear_tasks(noise=-1.0)

"""Related regression tasks of controlled relatedness (lecture A3's data)."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.data.relatedness import function_correlation, make_related_tasks, make_teacher, mix


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.7, 1.0])
def test_task_functions_have_unit_variance_and_correlation_rho(rho: float) -> None:
    for seed in range(3):
        teacher = make_teacher(rho, seed)
        f = teacher(np.random.default_rng(99).normal(size=(40_000, 4)))
        assert abs(np.corrcoef(f["a"], f["b"])[0, 1] - rho) < 0.02
        assert abs(f["a"].std() - 1) < 0.02 and abs(f["b"].std() - 1) < 0.02
        assert abs(function_correlation(teacher)[("a", "b")] - rho) < 0.02


def test_the_mixture_follows_its_formula() -> None:
    """f_b = rho f_a + sqrt(1 - rho^2) (g - c f_a) / sqrt(1 - c^2), computed by hand."""
    rho, teacher = 0.6, make_teacher(0.6, seed=4)
    x = np.random.default_rng(0).normal(size=(50, 4))
    fa = np.tanh(x @ teacher.anchor.W.T) @ teacher.anchor.v / teacher.anchor.scale
    g = np.tanh(x @ teacher.others["b"].W.T) @ teacher.others["b"].v / teacher.others["b"].scale
    c = teacher.overlap["b"]
    expected = rho * fa + np.sqrt(1 - rho**2) * (g - c * fa) / np.sqrt(1 - c**2)
    f = teacher(x)
    np.testing.assert_allclose(f["a"], fa)
    np.testing.assert_allclose(f["b"], expected, rtol=1e-3, atol=1e-3)


def test_mix_keeps_the_variance() -> None:
    a, b = np.random.default_rng(1).normal(size=(2, 100_000))
    assert abs(mix(a, b, 0.8).var() - 1) < 0.02
    np.testing.assert_array_equal(mix(a, b, 1.0), a)


def test_three_tasks_are_each_correlated_rho_with_the_anchor() -> None:
    teacher = make_teacher(0.5, seed=0, tasks=("a", "b", "c"))
    corr = function_correlation(teacher)
    assert abs(corr[("a", "b")] - 0.5) < 0.02 and abs(corr[("a", "c")] - 0.5) < 0.02
    assert abs(corr[("b", "c")] - 0.25) < 0.02  # rho^2: the g_t are made mutually uncorrelated


def test_disjoint_cases_carry_one_label_each() -> None:
    data = make_related_tasks(n_train=10, rho=0.5, seed=0, n_val=6, n_test=7)
    assert data.train.x.shape == (20, 4) and data.val.x.shape == (12, 4) and data.test.x.shape == (7, 4)
    labelled = np.stack([~np.isnan(data.train.targets[t]) for t in data.tasks])
    assert labelled.sum(0).tolist() == [1] * 20  # every case has exactly one label
    assert labelled[0, :10].all() and labelled[1, 10:].all()
    assert not any(np.isnan(data.test.truth[t]).any() for t in data.tasks)


def test_shared_cases_carry_every_label() -> None:
    data = make_related_tasks(n_train=10, rho=0.5, seed=0, shared_inputs=True)
    assert data.train.x.shape == (10, 4)
    assert not any(np.isnan(data.train.targets[t]).any() for t in data.tasks)


def test_labels_are_truth_plus_noise_of_the_given_size() -> None:
    data = make_related_tasks(n_train=4000, rho=0.2, seed=3, noise=0.5)
    for t in data.tasks:
        y, f = data.train.targets[t], data.train.truth[t]
        rows = ~np.isnan(y)
        assert abs((y[rows] - f[rows]).std() - 0.5) < 0.03


def test_inputs_and_noise_do_not_depend_on_rho() -> None:
    d1, d2 = make_related_tasks(30, 0.1, seed=5), make_related_tasks(30, 0.9, seed=5)
    np.testing.assert_array_equal(d1.train.x, d2.train.x)
    noise1 = np.nan_to_num(d1.train.targets["b"] - d1.train.truth["b"])
    noise2 = np.nan_to_num(d2.train.targets["b"] - d2.train.truth["b"])
    np.testing.assert_allclose(noise1, noise2)
    np.testing.assert_array_equal(d1.teacher.anchor.W, d2.teacher.anchor.W)


def test_larger_training_sets_extend_smaller_ones() -> None:
    small, large = make_related_tasks(10, 0.5, seed=2), make_related_tasks(25, 0.5, seed=2)
    np.testing.assert_array_equal(small.train.x[:10], large.train.x[:10])  # task a's first cases
    np.testing.assert_array_equal(small.train.x[10:], large.train.x[25:35])  # task b's first cases
    np.testing.assert_array_equal(small.train.targets["b"][10:], large.train.targets["b"][25:35])


def test_seeds_give_different_teachers() -> None:
    assert not np.allclose(make_teacher(0.5, 0).anchor.W, make_teacher(0.5, 1).anchor.W)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_train": 10, "rho": 1.5, "seed": 0}, "rho must lie in"),
        ({"n_train": 10, "rho": -0.1, "seed": 0}, "rho must lie in"),
        ({"n_train": 0, "rho": 0.5, "seed": 0}, "n_train must be a positive int"),
        ({"n_train": 5, "rho": 0.5, "seed": 0, "n_val": 0}, "n_val must be a positive int"),
        ({"n_train": 5, "rho": 0.5, "seed": 0, "noise": -1.0}, "noise must be non-negative"),
        ({"n_train": 5, "rho": 0.5, "seed": 0, "tasks": ("a", "a")}, "unique task names"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_related_tasks(**kwargs)

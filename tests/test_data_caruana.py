"""The seeded problems of lecture A2 (mtl_course.data.caruana) against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_course.data import caruana as C


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- the functions, against a per-row loop over the printed formulas -----------------------
def test_caruana_function_matches_the_formula_row_by_row() -> None:
    x = rng().uniform(-1.5, 1.5, size=(50, 10))
    expected = [math.sin(2 * r[0]) + r[1] ** 2 + r[2] * r[3] for r in x]
    np.testing.assert_allclose(C.caruana_function(x), expected, rtol=1e-12)


def test_hint_feature_matches_the_formula_row_by_row() -> None:
    x = rng().uniform(-1, 1, size=(50, 10))
    np.testing.assert_allclose(C.hint_feature(x), [r[0] * r[1] + r[2] * r[3] for r in x], rtol=1e-12)


# -- CaruanaProblem ---------------------------------------------------------------------
def test_caruana_problem_targets_are_f_plus_slope_plus_independent_noise() -> None:
    problem = C.CaruanaProblem()
    data = problem.sample(40_000, rng(1))
    assert data.x.shape == (40_000, 10) and data.tasks == ("main", "extra_1", "extra_2", "extra_3", "extra_4")
    assert data.x.min() >= -1.5 and data.x.max() <= 1.5
    np.testing.assert_allclose(data.truth["main"][:, 0], C.caruana_function(data.x))
    residuals = [data.targets["main"][:, 0] - data.truth["main"][:, 0]]
    for k in range(1, 5):
        residuals.append(data.targets[f"extra_{k}"][:, 0] - data.truth["main"][:, 0] - 0.3 * data.x[:, 3 + k])
    residuals = np.stack(residuals, axis=1)
    np.testing.assert_allclose(residuals.std(0), 1.0, atol=0.02)  # sigma = 1
    corr = np.corrcoef(residuals.T) - np.eye(5)
    assert np.abs(corr).max() < 0.03  # independent noise processes


def test_extra_slope_zero_keeps_inputs_main_labels_and_noises() -> None:
    related = C.CaruanaProblem().sample(100, rng(3))
    copies = C.CaruanaProblem(extra_slope=0.0).sample(100, rng(3))
    np.testing.assert_array_equal(related.x, copies.x)
    np.testing.assert_array_equal(related.targets["main"][:, 0], copies.targets["main"][:, 0])
    for k in range(1, 5):
        np.testing.assert_allclose(
            related.targets[f"extra_{k}"][:, 0] - 0.3 * related.x[:, 3 + k],
            copies.targets[f"extra_{k}"][:, 0],
            atol=1e-12,
        )


def test_same_seed_same_data_and_bad_arguments() -> None:
    a, b = C.CaruanaProblem().sample(10, rng(5)), C.CaruanaProblem().sample(10, rng(5))
    np.testing.assert_array_equal(a.x, b.x)
    with pytest.raises(ValueError, match="n must be a positive int"):
        C.CaruanaProblem().sample(0, rng())
    with pytest.raises(TypeError, match="numpy Generator"):
        C.CaruanaProblem().sample(5, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_features must be at least"):
        C.CaruanaProblem(n_features=6)


# -- AttentionProblem ---------------------------------------------------------------------
def test_attention_extras_are_uncorrelated_with_f_and_use_only_the_relevant_inputs() -> None:
    problem = C.AttentionProblem()
    data = problem.sample(100_000, rng(2))
    assert data.x.shape == (100_000, 20) and problem.relevant == (0, 1, 2, 3)
    for task in C.extra_tasks(data):
        assert abs(np.corrcoef(data.truth["main"][:, 0], data.targets[task][:, 0])[0, 1]) < 0.02, task
    # the extra functions ignore every distractor input
    x = rng(4).uniform(-1.5, 1.5, size=(20, 20))
    shuffled = x.copy()
    shuffled[:, 4:] = rng(5).uniform(-1.5, 1.5, size=(20, 16))
    for name, values in C.attention_extra_functions(x).items():
        np.testing.assert_array_equal(values, C.attention_extra_functions(shuffled)[name])
    np.testing.assert_allclose(C.caruana_function(x), C.caruana_function(shuffled))


def test_attention_noise_levels() -> None:
    data = C.AttentionProblem(noise=0.5, extra_noise=0.1).sample(40_000, rng(6))
    assert abs((data.targets["main"][:, 0] - data.truth["main"][:, 0]).std() - 0.5) < 0.01
    clean = C.attention_extra_functions(data.x)
    assert abs((data.targets["extra_1"][:, 0] - clean["extra_1"]).std() - 0.1) < 0.005


# -- HintProblem ----------------------------------------------------------------------------
def test_hint_problem_main_is_abs_g_and_hint_is_g() -> None:
    data = C.HintProblem(noise=0.1, hint_noise=0.1).sample(40_000, rng(7))
    g = np.array([r[0] * r[1] + r[2] * r[3] for r in data.x])
    np.testing.assert_allclose(data.truth["main"][:, 0], np.abs(g), rtol=1e-12)
    assert abs((data.targets["main"][:, 0] - np.abs(g)).std() - 0.1) < 0.005
    assert abs((data.targets["hint"][:, 0] - g).std() - 0.1) < 0.005
    # |G| is blind to the sign of G: the main target is uncorrelated with the hint's
    assert abs(np.corrcoef(data.truth["main"][:, 0], g)[0, 1]) < 0.02


# -- EnvironmentProblem ------------------------------------------------------------------
def test_environment_features_are_standardised_by_their_closed_form_moments() -> None:
    phi = C.environment_features(rng(8).uniform(-1.5, 1.5, size=(400_000, 10)))
    np.testing.assert_allclose(phi.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(phi.var(0), 1.0, atol=0.01)


def test_environment_tasks_are_unit_read_outs_of_the_shared_features() -> None:
    problem = C.EnvironmentProblem(n_tasks=4, noise=0.5, task_seed=3)
    a = problem.coefficients
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    data = problem.sample(30_000, rng(9))
    clean = problem.clean_targets(data.x)
    np.testing.assert_allclose(
        np.stack([clean[t] for t in problem.task_names], 1), C.environment_features(data.x) @ a.T
    )
    np.testing.assert_allclose(data.truth["main"][:, 0], clean["main"])
    assert abs((data.targets["task_2"][:, 0] - clean["task_2"]).std() - 0.5) < 0.01
    assert abs(clean["main"].var() - 1.0) < 0.05  # unit signal variance
    novel = problem.novel_tasks(5, seed=1)
    np.testing.assert_allclose(np.linalg.norm(novel, axis=1), 1.0)
    assert not np.allclose(novel[:4], a)
    np.testing.assert_array_equal(novel, problem.novel_tasks(5, seed=1))


# -- conditions: shuffle test, STL, averaged labels -------------------------------------------
def test_shuffle_moves_all_extra_signals_of_a_case_together_and_keeps_the_main_task() -> None:
    data = C.CaruanaProblem().sample(200, rng(10))
    shuffled = C.shuffle_extra_tasks(data, rng(11))
    np.testing.assert_array_equal(shuffled.x, data.x)
    np.testing.assert_array_equal(shuffled.targets["main"][:, 0], data.targets["main"][:, 0])
    before = np.stack([data.targets[t][:, 0] for t in C.extra_tasks(data)], 1)
    after = np.stack([shuffled.targets[t][:, 0] for t in C.extra_tasks(data)], 1)
    # every shuffled row is an original row (joint permutation), and the rows moved
    rows = {tuple(r) for r in before}
    assert all(tuple(r) in rows for r in after)
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))
    assert (after != before).any(axis=1).mean() > 0.9
    # the relation to the main task is gone
    assert abs(np.corrcoef(shuffled.targets["main"][:, 0], shuffled.targets["extra_1"][:, 0])[0, 1]) < 0.2
    assert np.corrcoef(data.targets["main"][:, 0], data.targets["extra_1"][:, 0])[0, 1] > 0.4


def test_drop_and_average() -> None:
    data = C.CaruanaProblem(extra_slope=0.0).sample(50_000, rng(12))
    stl = C.drop_extra_tasks(data)
    assert all(np.isnan(stl.targets[t][:, 0]).all() for t in C.extra_tasks(data))
    np.testing.assert_array_equal(stl.targets["main"][:, 0], data.targets["main"][:, 0])
    avg = C.average_labels(data)
    np.testing.assert_allclose(avg.targets["main"][:, 0], np.mean([data.targets[t][:, 0] for t in data.tasks], axis=0))
    # five independent unit noises average to variance 1/5
    assert abs((avg.targets["main"][:, 0] - data.truth["main"][:, 0]).var() - 0.2) < 0.01


# -- the negative control's data --------------------------------------------------------------
def test_breast_cancer_tasks_use_mean_features_as_inputs_and_the_rest_as_extra_tasks() -> None:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    data = C.load_breast_cancer_tasks(standardize=False)
    assert data.x.shape == (569, 10) and len(C.extra_tasks(data)) == 20
    assert all(str(n).startswith("mean ") for n in bunch.feature_names[:10])
    assert all(("error" in t) or ("worst" in t) for t in C.extra_tasks(data))
    np.testing.assert_array_equal(data.x, bunch.data[:, :10])
    np.testing.assert_array_equal(data.targets["worst_radius"][:, 0], bunch.data[:, 20])
    assert (
        int(data.truth["main"][:, 0].sum()) == int((bunch.target == 0).sum()) == 212
    )  # malignant = scikit-learn's class 0
    z = C.load_breast_cancer_tasks()
    np.testing.assert_allclose(z.x.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.x.std(0), 1)


# -- Caruana's pneumonia table -------------------------------------------------------------------
def test_pneumonia_table_recomputes_the_printed_change_row() -> None:
    table = C.pneumonia_table()
    recomputed = 100 * (table["mtl"] - table["stl"]) / table["stl"]
    np.testing.assert_allclose(recomputed, table["printed_change_pct"], atol=0.05)
    assert (table["mtl"] < table["stl"]).all()
    assert table.attrs["significant"] == (0.3, 0.4, 0.5)

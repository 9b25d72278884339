"""The lasso and the multi-task lasso of ``mtl_course.linear`` against independent checks.

References: scikit-learn's ``Lasso``, ``lasso_path`` and ``MultiTaskLasso``
(run to a much tighter tolerance than their defaults), the closed form of
``alpha_max``, a piecewise definition of soft-thresholding, and the KKT
(subgradient) conditions of the solution.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso, MultiTaskLasso
from sklearn.linear_model import lasso_path as sk_lasso_path

from mtl_course.data.linear_tasks import make_sparse_linear_tasks, target_matrix
from mtl_course.linear import (
    alpha_max,
    duality_gap,
    group_soft_threshold,
    lambda_from_alpha,
    lasso,
    lasso_path,
    multitask_lasso,
    soft_threshold,
)

ATOL = 1e-4
SK_TIGHT = {"tol": 1e-12, "max_iter": 1_000_000}


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    data = make_sparse_linear_tasks(n_samples=40, n_features=30, n_tasks=3, n_informative=4, seed=0)
    return data.x, target_matrix(data)


# -- soft-thresholding -----------------------------------------------------------
def _soft_threshold_piecewise(z: float, t: float) -> float:
    if z > t:
        return z - t
    if z < -t:
        return z + t
    return 0.0


def test_soft_threshold_matches_piecewise_definition() -> None:
    z = np.linspace(-3, 3, 61)
    for t in (0.0, 0.5, 1.0, 5.0):
        expected = np.array([_soft_threshold_piecewise(v, t) for v in z])
        np.testing.assert_allclose(soft_threshold(z, t), expected, atol=0)


def test_soft_threshold_solves_the_1d_lasso() -> None:
    grid = np.linspace(-4, 4, 80_001)
    for z, t in [(2.0, 0.5), (-1.3, 1.0), (0.4, 0.7)]:
        brute = grid[np.argmin(0.5 * (grid - z) ** 2 + t * np.abs(grid))]
        assert abs(soft_threshold(z, t) - brute) < 1e-4


def test_group_soft_threshold_equals_soft_threshold_in_1d_and_shrinks_along_z() -> None:
    for z in (-2.0, -0.3, 0.0, 0.3, 2.0):
        assert group_soft_threshold(np.array([z]), 0.5)[0] == pytest.approx(soft_threshold(z, 0.5))
    z = np.array([3.0, -4.0])
    out = group_soft_threshold(z, 1.0)
    np.testing.assert_allclose(out, 0.8 * z)
    np.testing.assert_array_equal(group_soft_threshold(z, 5.0), 0.0)


def test_negative_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        soft_threshold(np.ones(2), -1.0)
    with pytest.raises(ValueError, match="non-negative"):
        group_soft_threshold(np.ones(2), -1.0)


# -- the lasso against scikit-learn ------------------------------------------------
@pytest.mark.parametrize("alpha", [5.0, 1.0, 0.1, 0.01])
def test_lasso_matches_sklearn_on_diabetes(diabetes, alpha: float) -> None:
    X, y = diabetes
    ours = lasso(X, y, alpha)
    ref = Lasso(alpha=alpha, **SK_TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=ATOL)
    assert ours.intercept == pytest.approx(ref.intercept_, abs=ATOL)


@pytest.mark.parametrize("alpha", [2.0, 0.3, 0.05])
def test_lasso_matches_sklearn_on_synthetic_data(synthetic, alpha: float) -> None:
    X, Y = synthetic
    ours = lasso(X, Y[:, 0], alpha)
    ref = Lasso(alpha=alpha, **SK_TIGHT).fit(X, Y[:, 0])
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=ATOL)
    assert ours.intercept == pytest.approx(ref.intercept_, abs=ATOL)


def test_lasso_without_intercept_matches_sklearn(synthetic) -> None:
    X, Y = synthetic
    y = Y[:, 1] + 3.0
    ours = lasso(X, y, 0.2, fit_intercept=False)
    ref = Lasso(alpha=0.2, fit_intercept=False, **SK_TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=ATOL)
    assert ours.intercept == 0.0


def test_lasso_path_matches_sklearn_lasso_path(diabetes) -> None:
    X, y = diabetes
    ours = lasso_path(X, y, n_alphas=20)
    # scikit-learn's lasso_path fits no intercept: give it centred data.
    alphas, coefs, _ = sk_lasso_path(X - X.mean(0), y - y.mean(), alphas=ours.alphas, **SK_TIGHT)
    np.testing.assert_allclose(ours.alphas, alphas)
    np.testing.assert_allclose(ours.coefs, coefs.T, atol=ATOL)
    assert np.all(np.diff(ours.alphas) < 0)
    np.testing.assert_array_equal(ours.coefs[0], 0.0)


def test_lasso_path_sorts_given_alphas_and_predicts(diabetes) -> None:
    X, y = diabetes
    path = lasso_path(X, y, [0.1, 1.0, 0.5])
    np.testing.assert_allclose(path.alphas, [1.0, 0.5, 0.1])
    assert path.predict(X[:7]).shape == (3, 7)
    np.testing.assert_allclose(path.predict(X[:7])[2], lasso(X, y, 0.1).predict(X[:7]), atol=1e-3)


# -- alpha_max and the lambda/alpha conversion ---------------------------------------
def test_alpha_max_closed_form_gives_all_zeros(diabetes) -> None:
    X, y = diabetes
    Xc, yc = X - X.mean(0), y - y.mean()
    closed_form = np.max(np.abs(Xc.T @ yc)) / len(y)
    assert alpha_max(X, y) == pytest.approx(closed_form)
    for alpha in (closed_form, 1.5 * closed_form):
        fit = lasso(X, y, alpha)
        np.testing.assert_array_equal(fit.coef, 0.0)
        assert fit.intercept == pytest.approx(y.mean())
        np.testing.assert_array_equal(Lasso(alpha=alpha).fit(X, y).coef_, 0.0)
    assert np.count_nonzero(lasso(X, y, 0.99 * closed_form).coef) == 1


def test_alpha_max_of_multitask_lasso_gives_all_zeros(synthetic) -> None:
    X, Y = synthetic
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    closed_form = np.max(np.linalg.norm(Xc.T @ Yc, axis=1)) / len(Y)
    assert alpha_max(X, Y, "l21") == pytest.approx(closed_form)
    np.testing.assert_array_equal(multitask_lasso(X, Y, closed_form).coef, 0.0)
    assert np.any(multitask_lasso(X, Y, 0.99 * closed_form).coef != 0)


def test_lambda_alpha_conversion_gives_the_same_minimiser(synthetic) -> None:
    """λ = 2nα: the lecture's ‖y − Xβ‖² + λ‖β‖₁ and sklearn's objective share their minimiser."""
    X, Y = synthetic
    y, n, alpha = Y[:, 0], len(Y), 0.3
    beta = lasso(X, y, alpha).coef
    lam = lambda_from_alpha(alpha, n)

    def lecture_objective(b: np.ndarray) -> float:
        r = y - y.mean() - (X - X.mean(0)) @ b
        return float(r @ r + lam * np.abs(b).sum())

    rng = np.random.default_rng(0)
    assert all(
        lecture_objective(beta) <= lecture_objective(beta + 1e-3 * rng.normal(size=beta.shape)) for _ in range(50)
    )


# -- optimality: KKT conditions and the duality gap --------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_lasso_solution_satisfies_kkt_conditions(diabetes, alpha: float) -> None:
    """0 ∈ −Xᵀ(y − Xβ)/n + α ∂‖β‖₁: equality on the support, |·| ≤ α off it."""
    X, y = diabetes
    fit = lasso(X, y, alpha)
    Xc, yc = X - X.mean(0), y - y.mean()
    correlation = Xc.T @ (yc - Xc @ fit.coef) / len(y)
    active = fit.coef != 0
    assert active.any()
    np.testing.assert_allclose(correlation[active], alpha * np.sign(fit.coef[active]), atol=1e-6)
    assert np.all(np.abs(correlation[~active]) <= alpha + 1e-9)


def test_multitask_solution_satisfies_kkt_conditions(synthetic) -> None:
    """Rows: X_jᵀR/n = α B_j/‖B_j‖ on the support, ‖X_jᵀR/n‖ ≤ α off it."""
    X, Y = synthetic
    alpha = 0.3
    fit = multitask_lasso(X, Y, alpha)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    correlation = Xc.T @ (Yc - Xc @ fit.coef) / len(Y)
    norms = np.linalg.norm(fit.coef, axis=1)
    active = norms > 0
    assert 0 < active.sum() < len(active)
    np.testing.assert_allclose(correlation[active], alpha * fit.coef[active] / norms[active, None], atol=1e-6)
    assert np.all(np.linalg.norm(correlation[~active], axis=1) <= alpha + 1e-9)


def test_duality_gap_is_small_at_the_solution_and_large_elsewhere(diabetes) -> None:
    X, y = diabetes
    fit = lasso(X, y, 0.5)
    assert fit.duality_gap < 1e-6
    Xc, yc = X - X.mean(0), (y - y.mean())[:, None]
    assert duality_gap(Xc, yc, np.zeros((10, 1)), 0.5) > 100.0


# -- multi-task lasso and separate lassos ---------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.3, 0.05])
def test_multitask_lasso_matches_sklearn(synthetic, alpha: float) -> None:
    X, Y = synthetic
    ours = multitask_lasso(X, Y, alpha)
    ref = MultiTaskLasso(alpha=alpha, **SK_TIGHT).fit(X, Y)
    np.testing.assert_allclose(ours.coef, ref.coef_.T, atol=ATOL)
    np.testing.assert_allclose(ours.intercept, ref.intercept_, atol=ATOL)
    rows = np.any(ours.coef != 0, axis=1)
    np.testing.assert_array_equal(ours.coef != 0, np.repeat(rows[:, None], Y.shape[1], axis=1))


def test_multitask_lasso_matches_sklearn_on_diabetes_with_two_targets(diabetes) -> None:
    X, y = diabetes
    Y = np.stack([y, X[:, 2] * 300 + 0.5 * y], axis=1)
    ours = multitask_lasso(X, Y, 0.5)
    ref = MultiTaskLasso(alpha=0.5, **SK_TIGHT).fit(X, Y)
    np.testing.assert_allclose(ours.coef, ref.coef_.T, atol=ATOL)


def test_matrix_y_with_l1_penalty_is_separate_lassos(synthetic) -> None:
    X, Y = synthetic
    joint = lasso(X, Y, 0.2)
    assert joint.coef.shape == (X.shape[1], Y.shape[1])
    for t in range(Y.shape[1]):
        np.testing.assert_allclose(joint.coef[:, t], lasso(X, Y[:, t], 0.2).coef, atol=1e-8)


def test_multitask_path_matches_pointwise_fits(synthetic) -> None:
    X, Y = synthetic
    path = lasso_path(X, Y, n_alphas=5, eps=0.05, penalty="l21")
    assert path.coefs.shape == (5, X.shape[1], Y.shape[1])
    assert path.intercepts.shape == (5, Y.shape[1])
    np.testing.assert_allclose(path.coefs[3], multitask_lasso(X, Y, path.alphas[3]).coef, atol=1e-6)


# -- errors ---------------------------------------------------------------------------
def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"X has shape \(10, 3\) and y has shape \(9,\)"):
        lasso(np.zeros((10, 3)), np.zeros(9), 0.1)


def test_negative_alpha_is_rejected() -> None:
    with pytest.raises(ValueError, match="alpha must be a non-negative number, got -0.1"):
        lasso(np.eye(3), np.ones(3), -0.1)


def test_bad_inputs_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="X must have shape"):
        lasso(np.zeros(5), np.zeros(5), 0.1)
    with pytest.raises(ValueError, match="finite"):
        lasso(np.array([[np.nan], [1.0]]), np.zeros(2), 0.1)
    with pytest.raises(ValueError, match="multi-task lasso needs Y of shape"):
        multitask_lasso(np.eye(3), np.ones(3), 0.1)
    with pytest.raises(ValueError, match="coef_init has shape"):
        lasso(np.eye(3), np.ones(3), 0.1, coef_init=np.zeros(4))
    with pytest.raises(ValueError, match="penalty must be one of"):
        lasso_path(np.eye(3), np.ones(3), penalty="l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4 coefficients per task"):
        lasso(np.eye(4), np.ones(4), 0.1).predict(np.zeros((2, 3)))


def test_constant_feature_keeps_zero_coefficient(synthetic) -> None:
    X, Y = synthetic
    X = np.hstack([X, np.full((len(X), 1), 7.0)])
    assert lasso(X, Y[:, 0], 0.1).coef[-1] == 0.0


def test_import_is_light() -> None:
    code = (
        "import sys, mtl_course.linear; "
        "bad = [m for m in ('sklearn', 'seaborn', 'ipywidgets') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

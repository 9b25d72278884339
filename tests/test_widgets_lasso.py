"""Kernel-side tests of the λ explorer: controls, summaries, static fallback, latency."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mtl_course.data.linear_tasks import load_diabetes_tasks, make_sparse_linear_tasks, random_split
from mtl_course.widgets.lasso import LassoExplorer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explorer() -> LassoExplorer:
    train, val = random_split(load_diabetes_tasks(), 300, seed=0)
    return LassoExplorer.from_data(train, val)


def test_selected_feature_count_falls_as_alpha_grows(explorer: LassoExplorer) -> None:
    # Along the whole path the count need not be monotone (a feature can leave the
    # model as alpha decreases); across well-separated values it falls.
    grid = [-2.5, -1.0, 0.0, explorer.log10_alpha_max]
    counts = [len(explorer.set(log10_alpha=v).state.selected) for v in grid]
    assert counts[0] > counts[1] > counts[2] > counts[3] == 0, counts


def test_summary_changes_with_the_slider(explorer: LassoExplorer) -> None:
    first = explorer.set(log10_alpha=-2.0).summary
    second = explorer.set(log10_alpha=0.0).summary
    assert first != second
    assert "features selected" in second and "validation MSE" in second
    assert "λ = 2nα" in second


def test_static_fallback_has_png_and_summary(explorer: LassoExplorer) -> None:
    explorer.set(log10_alpha=-1.0)
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == explorer.summary
    assert "application/vnd.jupyter.widget-view+json" in bundle
    import base64

    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert explorer.png().startswith(PNG_MAGIC)


def test_largest_alpha_reports_all_zero_coefficients(explorer: LassoExplorer) -> None:
    state = explorer.set(log10_alpha=explorer.log10_alpha_max).state
    assert state.selected == () and np.all(state.coef == 0)
    assert "all coefficients are zero" in explorer.summary
    assert "predicts the training mean" in explorer.summary
    assert np.isfinite(state.val_mse) and "nan" not in explorer.summary.lower()


def test_smallest_alpha_gives_a_clear_message(explorer: LassoExplorer) -> None:
    state = explorer.set(log10_alpha=float(explorer.log_alphas[-1])).state
    assert "close to least squares" in explorer.summary
    assert np.isfinite(state.val_mse) and len(state.selected) >= 8


def test_slider_values_outside_the_grid_snap_to_its_ends(explorer: LassoExplorer) -> None:
    assert explorer.compute(log10_alpha=10.0).selected == ()
    assert explorer.compute(log10_alpha=-10.0).k == len(explorer.log_alphas) - 1


def test_unknown_control_is_named(explorer: LassoExplorer) -> None:
    with pytest.raises(KeyError, match="log10_alpha"):
        explorer.set(lam=1.0)


def test_bad_inputs_are_reported() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="one task"):
        LassoExplorer(X, np.zeros((20, 2)), X, np.zeros(20), ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 feature names"):
        LassoExplorer(X, np.zeros(20), X, np.zeros(20), ["a", "b"])


def test_from_data_reads_the_task_and_the_feature_names() -> None:
    train, val = random_split(make_sparse_linear_tasks(n_samples=40, n_features=5, n_tasks=2, seed=0), 30)
    explorer = LassoExplorer.from_data(train, val, task="task 1", n_alphas=5)
    assert explorer.feature_names == ("x0", "x1", "x2", "x3", "x4")
    names = explorer.feature_names
    direct = LassoExplorer(train.x, train.targets["task 1"], val.x, val.targets["task 1"], names, n_alphas=5)
    np.testing.assert_array_equal(explorer.val_mse, direct.val_mse)
    other = LassoExplorer(train.x, train.targets["task 0"], val.x, val.targets["task 0"], names, n_alphas=5)
    assert not np.array_equal(explorer.val_mse, other.val_mse)
    with pytest.raises(ValueError, match="name the task"):
        LassoExplorer.from_data(train, val)


def test_slider_update_is_fast(explorer: LassoExplorer, assert_fast_moves: Callable) -> None:
    """Median CPU time of 10 moves (compute + draw), see ``assert_fast_moves`` in conftest."""
    assert_fast_moves(lambda v: explorer.set(log10_alpha=v), np.linspace(-2.5, 0.3, 10))

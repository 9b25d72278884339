"""Kernel-side tests of the loss-weight tuner: controls, the front, extreme inputs, reset, retraining, latency."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mtl_course.data.toy_regression import QuadraticTasks, make_conflicting_regressions
from mtl_course.widgets.loss_weights import LossWeightTuner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pair():
    return make_conflicting_regressions(loss_scales=(1.0, 100.0), seed=0)


def closed_form_retrain(problem: QuadraticTasks, epochs: int = 60) -> Callable:
    """A stand-in for a training recipe: reports progress and returns the exact weighted optimum.

    The widget only calls what it is given; the real recipe
    (``experiments.loss_weighting.make_fit_retrainer``) is tested with the experiments.
    """

    def retrain(weights: Mapping[str, float], progress: Callable[[int, int], None]) -> np.ndarray:
        for done in range(0, epochs + 1, epochs // 3):
            progress(done, epochs)
        return problem.weighted_optimum([weights[t] for t in problem.names])

    return retrain


@pytest.fixture()
def tuner(pair) -> LossWeightTuner:
    return LossWeightTuner.from_regressions(
        pair, retrain=closed_form_retrain(QuadraticTasks.from_least_squares(pair.train))
    )


def test_raising_lambda_1_walks_down_l1_and_up_l2(tuner: LossWeightTuner) -> None:
    path = np.array([tuner.set(lam_t0=float(v), lam_t1=1.0).state.losses for v in np.logspace(-3, 3, 15)])
    assert np.all(np.diff(path[:, 0]) < 0) and np.all(np.diff(path[:, 1]) > 0)
    # every point is the closed-form weighted optimum (of the slider values, snapped to the slider's grid)
    state = tuner.set(lam_t0=7.0, lam_t1=0.5).state
    weights = [tuner.values["lam_t0"], tuner.values["lam_t1"]]
    np.testing.assert_allclose(state.w, tuner.problem.weighted_optimum(weights))


def test_summary_and_png_follow_the_sliders(tuner: LossWeightTuner) -> None:
    first_summary, first_png = tuner.set(lam_t0=1.0).summary, tuner.png()
    second_summary, second_png = tuner.set(lam_t0=100.0).summary, tuner.png()
    assert first_summary != second_summary and first_png != second_png
    assert "λ = (t0: 100, t1: 1)" in second_summary and "validation MSE" in second_summary
    assert tuner.image.value == second_png


def test_static_fallback_has_widget_png_and_summary(tuner: LossWeightTuner) -> None:
    tuner.set(lam_t0=3.0)
    bundle = tuner._repr_mimebundle_()
    assert bundle["text/plain"] == tuner.summary
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)


def test_all_weights_zero_gives_a_message(tuner: LossWeightTuner) -> None:
    state = tuner.set(use_t0=False, use_t1=False).state
    assert state.w is None and state.losses is None
    assert "all weights are zero" in tuner.summary.lower()
    assert "nan" not in tuner.summary.lower()
    assert tuner.png().startswith(PNG_MAGIC)


def test_single_active_task_is_single_task_training(tuner: LossWeightTuner) -> None:
    state = tuner.set(use_t0=True, use_t1=False, lam_t0=5.0).state
    np.testing.assert_allclose(state.w, tuner.problem.centers[0], atol=1e-10)
    assert "single-task training of t0" in tuner.summary


def test_maximum_and_minimum_slider_values(tuner: LossWeightTuner) -> None:
    equal = tuner.set(lam_t0=1.0, lam_t1=1.0).state.w
    state = tuner.set(lam_t0=1e9, lam_t1=1e9).state  # the slider clamps to its maximum, 1000
    assert tuner.values["lam_t0"] == pytest.approx(1000.0)
    np.testing.assert_allclose(state.w, equal)
    assert "only ratios move the optimum" in tuner.summary
    tuner.set(lam_t0=0.0, lam_t1=1e9)  # clamps to 1e-3 and 1e3
    assert "practically single-task training of t1" in tuner.summary
    assert np.all(np.isfinite(tuner.state.losses))


def test_not_a_number_is_reported_not_raised(tuner: LossWeightTuner) -> None:
    # compute() directly: a slider cannot send NaN, and Explorer.set snaps values to the grid first
    state = tuner.compute(lam_t0=float("nan"), use_t0=True, lam_t1=1.0, use_t1=True)
    assert "not a valid weight" in state.message
    assert np.all(np.isfinite(state.losses))
    tuner.state = state
    assert "nan is not a valid weight" in tuner._summary(state) and "t0 nan" not in tuner._summary(state)


def test_reset_restores_lambda_one_and_every_task(tuner: LossWeightTuner) -> None:
    reference = tuner.summary
    tuner.set(lam_t0=20.0, use_t1=False)
    tuner.reset()
    assert tuner.values == {"lam_t0": 1.0, "use_t0": True, "lam_t1": 1.0, "use_t1": True}
    assert tuner.summary == reference
    tuner.set(lam_t0=20.0)
    tuner.reset_button.click()
    assert tuner.values["lam_t0"] == 1.0


def test_retrain_calls_the_injected_function_and_marks_its_result(tuner: LossWeightTuner) -> None:
    tuner.set(lam_t0=30.0, lam_t1=1.0)
    tuner.retrain_button.click()
    state = tuner.state
    assert state.retrained is not None
    np.testing.assert_allclose(state.retrained, state.w)
    assert tuner.progress.value == tuner.progress.max == 60
    assert "retrained with fit" in tuner.summary
    tuner.set(lam_t0=50.0)  # other weights: the retrained point no longer applies
    assert tuner.state.retrained is None


def test_retraining_with_every_task_off_does_not_train(tuner: LossWeightTuner) -> None:
    tuner.set(use_t0=False, use_t1=False)
    tuner.retrain()
    assert tuner.state.retrained is None and "all weights are zero" in tuner.summary.lower()


def test_one_task_and_three_tasks() -> None:
    one = QuadraticTasks(("a",), np.eye(2)[None], np.array([[0.5, -0.5]]), np.array([0.1]))
    tuner = LossWeightTuner(one)
    assert "a single task" in tuner.summary.lower()
    assert tuner.retrain_button.disabled
    np.testing.assert_allclose(tuner.set(lam_a=100.0).state.w, [0.5, -0.5])
    three = make_conflicting_regressions(n_tasks=3, angle_deg=240.0, seed=1)
    tuner3 = LossWeightTuner.from_regressions(three)
    assert tuner3.retrain_button.disabled  # no retrain function given
    low = tuner3.set(lam_t2=0.01).state.losses[2]
    high = tuner3.set(lam_t2=100.0).state.losses[2]
    assert high < low


def test_validation_errors_are_the_unscaled_mse(pair) -> None:
    tuner = LossWeightTuner.from_regressions(pair)
    w = np.array([0.2, -0.4])
    x, y = pair.val.x.double().numpy(), {t: v.double().numpy()[:, 0] for t, v in pair.val.targets.items()}
    np.testing.assert_allclose(tuner.val.losses(w), [np.mean((x @ w - y[t]) ** 2) for t in tuner.names], rtol=1e-9)
    scaled = QuadraticTasks.from_least_squares(pair.val).losses(w)  # the training objective's scales (1, 100)
    np.testing.assert_allclose(scaled, [1.0, 100.0] * tuner.val.losses(w), rtol=1e-9)


def test_bad_construction_is_named(pair) -> None:
    q = QuadraticTasks.from_least_squares(pair.train)
    with pytest.raises(ValueError, match="identifiers"):
        LossWeightTuner(QuadraticTasks(("a b", "c"), q.A, q.centers, q.minima))
    with pytest.raises(ValueError, match="log10_range"):
        LossWeightTuner(q, log10_range=(1.0, 3.0))
    other = QuadraticTasks.from_least_squares(make_conflicting_regressions(n_tasks=3, seed=0).train)
    with pytest.raises(ValueError, match="val must have the tasks"):
        LossWeightTuner(q, other)


def test_slider_update_is_fast(tuner: LossWeightTuner, assert_fast_moves: Callable) -> None:
    """Median of 20 moves, including the PNG the view shows (see ``assert_fast_moves`` in conftest)."""
    assert_fast_moves(lambda v: tuner.set(lam_t0=v), np.logspace(-2, 2, 20))

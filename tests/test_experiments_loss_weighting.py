"""mtl_course.experiments.loss_weighting: the comparison helpers of lecture A6 (small, fast runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.data.toy_regression import QuadraticTasks, make_conflicting_regressions
from mtl_course.experiments.labels import STL
from mtl_course.experiments.loss_weighting import (
    conflicting_pair_experiment,
    conflicting_pair_tasks,
    gradnorm_toy_experiment,
    make_fit_retrainer,
    make_method,
    multidigits_experiment,
    pareto_stationarity,
    shared_linear_model,
    tcdcn_curve,
)
from mtl_course.train import tcdcn_criterion
from mtl_course.weighting import available_methods

pytestmark = pytest.mark.usefixtures("one_thread")


def test_make_method_builds_every_registered_method() -> None:
    for name in available_methods():
        method = make_method(name, ["a", "b"], fixed_weights={"a": 1.0, "b": 2.0})
        assert method.tasks == ["a", "b"]
    assert make_method("gradnorm", ["a", "b"]).alpha == 0.12  # the paper's toy value
    assert make_method("gradnorm", ["a", "b"], hyper={"gradnorm": {"lr": 1e-3}}).lr == 1e-3
    with pytest.raises(ValueError, match="fixed_weights"):
        make_method("fixed", ["a", "b"])


def test_pareto_stationarity_against_a_grid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = rng.normal(size=(2, 3))
        grid = np.linspace(0, 1, 20_001)[:, None]
        brute = np.linalg.norm(grid * g[0] + (1 - grid) * g[1], axis=1).min()
        assert abs(pareto_stationarity(g) - brute) < 1e-6
    assert pareto_stationarity(np.array([[1.0, 2.0], [-2.0, -4.0]])) == pytest.approx(0.0, abs=1e-12)


def test_tcdcn_curve_calls_the_criterion_at_every_epoch() -> None:
    train = [1.0, 0.7, 0.5, 0.42, 0.4, 0.39]
    val = [1.1, 0.8, 0.7, 0.72, 0.75, 0.8]
    curve = tcdcn_curve(train, val, k=2, lam=0.5)
    assert np.isnan(curve[:2]).all()
    for t in range(3, 7):
        assert curve[t - 1] == pytest.approx(tcdcn_criterion(train[:t], val[t - 1], 2, 0.5))


def test_conflicting_pair_equal_weighting_converges_to_the_closed_form() -> None:
    pair = make_conflicting_regressions(seed=0)
    paths = conflicting_pair_experiment(pair, ["equal", "mgda"], init=(-1.0, 1.5), steps=60, lr=0.2, device="cpu")
    q = QuadraticTasks.from_least_squares(pair.train)
    assert paths["equal"].shape == (61, 2)
    np.testing.assert_array_equal(paths["equal"][0], [-1.0, 1.5])  # row 0: the start, before training
    np.testing.assert_allclose(paths["equal"][-1], q.weighted_optimum([1.0, 1.0]), atol=1e-4)
    # MGDA stops at a Pareto-stationary point
    assert pareto_stationarity(q.gradients(paths["mgda"][-1])) < 1e-3


def test_the_shared_linear_model_trained_on_the_scaled_losses_matches_the_quadratics() -> None:
    """The torch losses of the recipe equal the closed-form quadratics of the data layer."""
    pair = make_conflicting_regressions(n_train=150, loss_scales=(1.0, 100.0), seed=4)
    w = np.array([0.3, -0.2])
    model = shared_linear_model(pair.train.tasks, 2, init=w)
    assert [p.shape for p in model.shared_parameters()] == [torch.Size([1, 2])]
    out = model(pair.train.x)
    torch_losses = [t.loss(out[t.name], pair.train.targets[t.name]).item() for t in conflicting_pair_tasks(pair.train)]
    np.testing.assert_allclose(torch_losses, QuadraticTasks.from_least_squares(pair.train).losses(w), rtol=1e-5)


def test_the_fit_retrainer_reaches_the_closed_form_and_reports_progress() -> None:
    pair = make_conflicting_regressions(loss_scales=(1.0, 100.0), seed=0)
    calls: list[tuple[int, int]] = []
    w = make_fit_retrainer(pair, epochs=60, device="cpu")({"t0": 30.0, "t1": 1.0}, lambda *a: calls.append(a))
    optimum = QuadraticTasks.from_least_squares(pair.train).weighted_optimum([30.0, 1.0])
    assert np.linalg.norm(w - optimum) < 1e-4
    assert calls[0] == (0, 60) and calls[-1] == (60, 60) and len(calls) == 21


def test_multidigits_experiment_has_an_stl_row_per_seed() -> None:
    df = multidigits_experiment(["equal"], seeds=(0,), epochs=1, n_train=40, n_test=20, hidden=(8,), device="cpu")
    assert list(df.method) == [STL, "equal"]
    assert df[["left", "right"]].apply(lambda c: c.between(0, 1)).all().all()


def test_gradnorm_toy_experiment_columns_and_score() -> None:
    df = gradnorm_toy_experiment(
        [1.0, 10.0],
        ["equal", "fixed"],
        seeds=(0,),
        epochs=3,
        n_train=32,
        n_val=16,
        in_features=4,
        out_features=3,
        hidden=(8,),
        device="cpu",
    )
    assert list(df.method) == ["equal", "fixed"]
    assert {"score", "ratio/t0", "ratio/t1", "weight/t0", "weight/t1"} <= set(df.columns)
    np.testing.assert_allclose(df.score, df["ratio/t0"] + df["ratio/t1"])
    # fixed weights are 1 / L_i(0): the large-scale task gets the small weight
    fixed = df[df.method == "fixed"].iloc[0]
    assert fixed["weight/t1"] < fixed["weight/t0"]

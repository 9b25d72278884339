"""The related-regression generator of lectures A3--A5 and its experiment helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data.related_tasks import RelatedRegression, fit_and_score, make_related_regression
from mtl_course.losses import mse_loss
from mtl_course.models import CrossStitchNetwork, SingleTask


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one CPU thread is faster, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_default_is_the_lecture_demo() -> None:
    train, test = make_related_regression()
    assert train.task_names == ("A", "B")
    assert train.n_labelled == {"A": 2000, "B": 100}
    assert test.n_labelled == {"A": 2000, "B": 2000}
    assert train.X.shape == (2100, 20) and test.X.shape == (2000, 20)
    assert train.teacher.hidden_weights.shape == (2, 4, 20)


def test_each_training_sample_has_exactly_one_label_and_the_test_set_all() -> None:
    train, test = make_related_regression(n_samples=(30, 7, 5), rho=0.5, n_test=11, seed=3)
    labelled = np.isfinite(train.Y)
    assert (labelled.sum(axis=1) == 1).all()
    assert labelled.sum(axis=0).tolist() == [30, 7, 5]
    assert np.isfinite(test.Y).all() and np.isfinite(train.signal).all()


def test_targets_match_a_brute_force_teacher() -> None:
    """Recompute f_t(x) = (v_t . tanh(g W_t x / sqrt(d)) - mu_t) / s_t with plain loops."""
    train, _ = make_related_regression(n_samples=(6, 4), rho=0.3, gain=1.7, seed=5)
    teacher = train.teacher
    T, k, d = teacher.hidden_weights.shape
    for n in range(train.X.shape[0]):
        for t in range(T):
            raw = 0.0
            for h in range(k):
                pre = sum(teacher.hidden_weights[t, h, j] * train.X[n, j] for j in range(d))
                raw += teacher.output_weights[t, h] * math.tanh(teacher.gain * pre / math.sqrt(d))
            expected = (raw - teacher.offset[t]) / teacher.scale[t]
            assert train.signal[n, t] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_signal_is_standardised_and_noise_has_the_requested_level() -> None:
    train, test = make_related_regression(n_samples=(20000, 20000), rho=0.7, noise=0.3, n_test=20000, seed=1)
    # fresh samples: mean 0, variance 1 up to Monte-Carlo error (sd of the mean ~ 0.007)
    assert np.abs(test.signal.mean(axis=0)).max() < 0.04
    assert np.abs(test.signal.std(axis=0) - 1).max() < 0.04
    residual = train.Y - train.signal
    assert np.nanstd(residual) == pytest.approx(0.3, rel=0.03)
    assert np.std(test.Y - test.signal) == pytest.approx(0.3, rel=0.03)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_hidden_weights_have_correlation_rho_with_task_a(rho: float) -> None:
    # 40 x 100 = 4000 entries: the standard error of a correlation is about 0.016
    train, _ = make_related_regression(n_samples=(1, 1), rho=rho, n_hidden=40, n_features=100, n_test=1, seed=2)
    w_a, w_b = (w.ravel() for w in train.teacher.hidden_weights)
    assert np.corrcoef(w_a, w_b)[0, 1] == pytest.approx(rho, abs=0.05)
    assert w_b.std() == pytest.approx(1.0, abs=0.05)  # still N(0, 1) entries
    # the fresh part W' = (W_B - rho W_A) / sqrt(1 - rho^2) is uncorrelated with W_A
    fresh = (w_b - rho * w_a) / math.sqrt(1 - rho**2)
    assert abs(np.corrcoef(w_a, fresh)[0, 1]) < 0.05 and fresh.std() == pytest.approx(1.0, abs=0.05)


def test_rho_one_shares_the_hidden_weights_and_readout_rho_the_readouts() -> None:
    train, _ = make_related_regression(rho=1.0, readout_rho=0.0, n_test=5)
    w = train.teacher.hidden_weights
    v = train.teacher.output_weights
    assert np.array_equal(w[0], w[1]) and not np.allclose(v[0], v[1])
    train, _ = make_related_regression(rho=0.0, readout_rho=1.0, n_test=5)
    assert np.array_equal(train.teacher.output_weights[0], train.teacher.output_weights[1])
    assert not np.allclose(train.teacher.hidden_weights[0], train.teacher.hidden_weights[1])


def test_per_task_relatedness_and_names() -> None:
    train, _ = make_related_regression(
        n_samples=(5, 5, 5), rho=[1.0, 0.0], task_names=["main", "aux1", "aux2"], n_test=3
    )
    w = train.teacher.hidden_weights
    assert train.task_names == ("main", "aux1", "aux2")
    assert np.array_equal(w[0], w[1]) and not np.allclose(w[0], w[2])


def test_seeded() -> None:
    a, _ = make_related_regression(n_samples=(10, 5), seed=7, n_test=3)
    b, _ = make_related_regression(n_samples=(10, 5), seed=7, n_test=3)
    c, _ = make_related_regression(n_samples=(10, 5), seed=8, n_test=3)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y, equal_nan=True)
    assert not np.allclose(a.X, c.X)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rho": 1.5}, "rho must lie in"),
        ({"rho": [0.5, 0.5]}, "one per task after the first"),
        ({"n_samples": (10, 0)}, "positive count"),
        ({"noise": -0.1}, "noise >= 0"),
        ({"gain": 0.0}, "gain > 0"),
        ({"readout_rho": float("nan")}, "readout_rho must lie in"),
        ({"task_names": ["a", "a"]}, "distinct task names"),
    ],
)
def test_invalid_arguments_say_what_is_wrong(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_related_regression(**kwargs)


def test_batch_feeds_the_course_losses(device: torch.device) -> None:
    train, _ = make_related_regression(n_samples=(40, 10), n_test=2)
    x, targets = train.batch(device)
    assert x.shape == (50, 20) and x.device.type == device.type and x.dtype == torch.float32
    assert {t: tuple(y.shape) for t, y in targets.items()} == {"A": (50, 1), "B": (50, 1)}
    pred = torch.zeros(50, 1, device=device)
    for i, task in enumerate(train.task_names):
        # mse_loss averages over the labelled samples of the task only
        expected = np.nanmean(train.Y[:, i] ** 2)
        assert mse_loss(pred, targets[task]).item() == pytest.approx(expected, rel=1e-5)


def test_inconsistent_dataset_is_rejected() -> None:
    train, _ = make_related_regression(n_samples=(4, 3), n_test=2)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        RelatedRegression(train.X[:5], train.Y, train.signal, train.teacher)


# -- fit_and_score ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_data() -> tuple[RelatedRegression, RelatedRegression]:
    return make_related_regression(n_samples=(200, 20), rho=0.9, n_test=100, seed=0)


def test_fit_and_score_trains_and_scores(small_data, device: torch.device) -> None:
    train, test = small_data
    torch.manual_seed(0)
    model = SingleTask.mlp(20, [16], {"A": 1, "B": 1})
    x_test = torch.tensor(test.X, dtype=torch.float32)
    with torch.no_grad():
        out = model(x_test)
    before = {t: float(((out[t][:, 0].numpy() - test.Y[:, i]) ** 2).mean()) for i, t in enumerate(test.task_names)}
    result = fit_and_score(model, train, test, epochs=60, lr=1e-2, device=device)
    assert not result.diverged and len(result.history) == 60
    assert set(result.test_mse) == {"A", "B"}
    assert result.test_mse["A"] < before["A"]  # it learned something
    # the score is the plain test MSE of the trained model
    model = model.cpu().eval()
    with torch.no_grad():
        pred = model(x_test)["A"][:, 0].numpy()
    assert result.test_mse["A"] == pytest.approx(float(((pred - test.Y[:, 0]) ** 2).mean()), rel=1e-4)


def test_alpha_learning_rate_and_trace(small_data, device: torch.device) -> None:
    train, test = small_data
    moved = {}
    for scale in (1e-4, 10.0):
        torch.manual_seed(0)
        model = CrossStitchNetwork.mlp(20, [8, 8], {"A": 1, "B": 1})
        result = fit_and_score(
            model, train, test, epochs=5, lr=1e-2, alpha_lr_scale=scale, record_alpha=True, device=device
        )
        trace = result.alphas(0)
        assert trace.shape == (6, 8, 2, 2)  # init + one snapshot per epoch, per-channel alpha
        assert np.allclose(trace[0], np.array([[0.9, 0.1], [0.1, 0.9]]))
        moved[scale] = np.abs(trace[-1] - trace[0]).max()
    # Adam moves a parameter by about lr per step: 5 steps of 1e-6 vs 5 steps of 0.1
    assert moved[1e-4] < 1e-5 < 0.05 < moved[10.0]


def test_divergence_is_reported_not_raised(small_data, device: torch.device) -> None:
    train, test = small_data
    torch.manual_seed(0)
    model = CrossStitchNetwork.mlp(20, [8], {"A": 1, "B": 1})
    result = fit_and_score(model, train, test, epochs=20, lr=1e30, device=device)
    assert result.diverged and all(math.isnan(v) for v in result.test_mse.values())


def test_fit_and_score_checks_its_arguments(small_data) -> None:
    train, test = small_data
    with pytest.raises(ValueError, match="mixing_parameters"):
        fit_and_score(SingleTask.mlp(20, [4], {"A": 1, "B": 1}), train, test, epochs=1, alpha_lr_scale=10.0)
    with pytest.raises(KeyError, match="data have"):
        fit_and_score(SingleTask.mlp(20, [4], {"a": 1, "b": 1}), train, test, epochs=1)
    with pytest.raises(ValueError, match="positive number"):
        fit_and_score(CrossStitchNetwork.mlp(20, [4], {"A": 1, "B": 1}), train, test, epochs=1, alpha_lr_scale=0.0)
    with pytest.raises(ValueError, match="no alpha was recorded"):
        fit_and_score(SingleTask.mlp(20, [4], {"A": 1, "B": 1}), train, test, epochs=1, device="cpu").alphas(0)

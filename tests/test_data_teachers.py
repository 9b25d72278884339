"""The teacher-network tasks of lectures A3--A5: the two meanings of rho, checked against their formulas.

The fingerprints pin the generators' numbers: they are SHA-256 digests of the
arrays that ``mtl_course/data/relatedness.py`` (``make_related_tasks``) and
``mtl_course/data/related_tasks.py`` (``make_related_regression``) produced at
commit f1f8bec, before the two modules were merged into ``teachers.py``; the
lectures' checked outputs depend on these numbers being bit-identical.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from mtl_course.data.teachers import (
    function_correlation,
    function_mixture,
    make_related_regression,
    make_related_tasks,
    mix,
    task_correlation,
)
from mtl_course.losses import mse_loss


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    ("rho", "digest"),
    [(0.0, "d90569f377927902"), (0.5, "dc2ddb402be30d37"), (1.0, "763a61a024b8998d"), (0.3, "d11b0c7536707ca0")],
)
def test_function_mixed_tasks_are_bit_identical_to_lecture_a3s(rho: float, digest: str) -> None:
    data = make_related_tasks(32, rho, 1)
    arrays = []
    for split in data:
        arrays += [
            split.x,
            *(split.targets[t][:, 0] for t in split.tasks),
            *(split.truth[t][:, 0] for t in split.tasks),
        ]
    assert _digest(arrays) == digest


@pytest.mark.parametrize(
    ("kwargs", "digest"), [({}, "a16acd7b17152b1d"), ({"rho": 0.0, "seed": 2}, "d27fe198b4b01cd9")]
)
def test_weight_mixed_tasks_are_bit_identical_to_lecture_a4s(kwargs: dict, digest: str) -> None:
    arrays = []
    for split in make_related_regression(**kwargs):
        arrays += [
            split.x,
            *(split.targets[t][:, 0] for t in split.tasks),
            *(split.truth[t][:, 0] for t in split.tasks),
        ]
    assert _digest(arrays) == digest


def test_the_meaning_of_rho_is_recorded() -> None:
    assert make_related_tasks(5, 0.5, 0).train.info["rho_mixes"] == "functions"
    assert make_related_regression(n_samples=(3, 2), n_test=2).test.info["rho_mixes"] == "weights"


# -- rho mixes the functions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.7, 1.0])
def test_task_functions_have_unit_variance_and_correlation_rho(rho: float) -> None:
    for seed in range(3):
        teacher = function_mixture(rho, seed)
        f = teacher(np.random.default_rng(99).normal(size=(40_000, 4)))
        assert abs(np.corrcoef(f["a"], f["b"])[0, 1] - rho) < 0.02
        assert abs(f["a"].std() - 1) < 0.02 and abs(f["b"].std() - 1) < 0.02
        assert abs(function_correlation(teacher)[("a", "b")] - rho) < 0.02


def test_the_mixture_follows_its_formula() -> None:
    """f_b = rho f_a + sqrt(1 - rho^2) (g - c f_a) / sqrt(1 - c^2), computed by hand."""
    rho, teacher = 0.6, function_mixture(0.6, seed=4)
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
    corr = function_correlation(function_mixture(0.5, seed=0, tasks=("a", "b", "c")))
    assert abs(corr[("a", "b")] - 0.5) < 0.02 and abs(corr[("a", "c")] - 0.5) < 0.02
    assert abs(corr[("b", "c")] - 0.25) < 0.02  # rho^2: the g_t are made mutually uncorrelated


def test_disjoint_cases_carry_one_label_each() -> None:
    train, val, test = make_related_tasks(n_train=10, rho=0.5, seed=0, n_val=6, n_test=7)
    assert train.x.shape == (20, 4) and val.x.shape == (12, 4) and test.x.shape == (7, 4)
    labelled = np.stack([~np.isnan(train.targets[t][:, 0]) for t in train.tasks])
    assert labelled.sum(0).tolist() == [1] * 20  # every case has exactly one label
    assert labelled[0, :10].all() and labelled[1, 10:].all()
    for t in test.tasks:  # the test targets are the noise-free truth
        np.testing.assert_array_equal(test.targets[t], test.truth[t])


def test_shared_cases_carry_every_label() -> None:
    train = make_related_tasks(n_train=10, rho=0.5, seed=0, shared_inputs=True).train
    assert train.x.shape == (10, 4) and train.n_labelled() == {"a": 10, "b": 10}


def test_labels_are_truth_plus_noise_of_the_given_size() -> None:
    train = make_related_tasks(n_train=4000, rho=0.2, seed=3, noise=0.5).train
    for t in train.tasks:
        y, f = train.targets[t], train.truth[t]
        rows = ~np.isnan(y)
        assert abs((y[rows] - f[rows]).std() - 0.5) < 0.03


def test_inputs_and_noise_do_not_depend_on_rho() -> None:
    d1, d2 = make_related_tasks(30, 0.1, seed=5), make_related_tasks(30, 0.9, seed=5)
    np.testing.assert_array_equal(d1.train.x, d2.train.x)
    noise1 = np.nan_to_num(d1.train.targets["b"] - d1.train.truth["b"])
    noise2 = np.nan_to_num(d2.train.targets["b"] - d2.train.truth["b"])
    np.testing.assert_allclose(noise1, noise2)
    np.testing.assert_array_equal(d1.train.info["teacher"].anchor.W, d2.train.info["teacher"].anchor.W)


def test_larger_training_sets_extend_smaller_ones() -> None:
    small, large = make_related_tasks(10, 0.5, seed=2).train, make_related_tasks(25, 0.5, seed=2).train
    np.testing.assert_array_equal(small.x[:10], large.x[:10])  # task a's first cases
    np.testing.assert_array_equal(small.x[10:], large.x[25:35])  # task b's first cases
    np.testing.assert_array_equal(small.targets["b"][10:], large.targets["b"][25:35])


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
def test_bad_arguments_of_the_function_mixture_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_related_tasks(**kwargs)


# -- rho mixes the hidden weights -------------------------------------------------------------------------------
def test_default_is_the_lecture_a4_demo() -> None:
    train, test = make_related_regression()
    assert train.tasks == ("A", "B")
    assert train.n_labelled() == {"A": 2000, "B": 100} and test.n_labelled() == {"A": 2000, "B": 2000}
    assert train.x.shape == (2100, 20) and test.x.shape == (2000, 20)
    assert train.info["teacher"].hidden_weights.shape == (2, 4, 20)


def test_each_training_sample_has_exactly_one_label() -> None:
    train, test = make_related_regression(n_samples=(30, 7, 5), rho=0.5, n_test=11, seed=3)
    labelled = np.concatenate([np.isfinite(train.targets[t]) for t in train.tasks], axis=1)
    assert (labelled.sum(axis=1) == 1).all() and labelled.sum(axis=0).tolist() == [30, 7, 5]
    assert test.n_labelled() == {"A": 11, "B": 11, "C": 11}


def test_targets_match_a_brute_force_teacher() -> None:
    """Recompute f_t(x) = (v_t . tanh(g W_t x / sqrt(d)) - mu_t) / s_t with plain loops."""
    train, _ = make_related_regression(n_samples=(6, 4), rho=0.3, gain=1.7, seed=5)
    teacher = train.info["teacher"]
    T, k, d = teacher.hidden_weights.shape
    for n in range(train.n):
        for t, name in enumerate(train.tasks):
            raw = 0.0
            for h in range(k):
                pre = sum(teacher.hidden_weights[t, h, j] * train.x[n, j] for j in range(d))
                raw += teacher.output_weights[t, h] * math.tanh(teacher.gain * pre / math.sqrt(d))
            expected = (raw - teacher.offset[t]) / teacher.scale[t]
            assert train.truth[name][n, 0] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_signal_is_standardised_and_noise_has_the_requested_level() -> None:
    train, test = make_related_regression(n_samples=(20000, 20000), rho=0.7, noise=0.3, n_test=20000, seed=1)
    signal = np.concatenate([test.truth[t] for t in test.tasks], axis=1)
    assert np.abs(signal.mean(axis=0)).max() < 0.04  # Monte-Carlo error of the mean ~ 0.007
    assert np.abs(signal.std(axis=0) - 1).max() < 0.04
    for data in (train, test):
        residual = np.concatenate([data.targets[t] - data.truth[t] for t in data.tasks])
        assert np.nanstd(residual) == pytest.approx(0.3, rel=0.03)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_hidden_weights_have_correlation_rho_with_task_a(rho: float) -> None:
    # 40 x 100 = 4000 entries: the standard error of a correlation is about 0.016
    train, _ = make_related_regression(n_samples=(1, 1), rho=rho, n_hidden=40, n_features=100, n_test=1, seed=2)
    w_a, w_b = (w.ravel() for w in train.info["teacher"].hidden_weights)
    assert np.corrcoef(w_a, w_b)[0, 1] == pytest.approx(rho, abs=0.05)
    assert w_b.std() == pytest.approx(1.0, abs=0.05)  # still N(0, 1) entries
    fresh = (w_b - rho * w_a) / math.sqrt(1 - rho**2)  # W' is uncorrelated with W_A
    assert abs(np.corrcoef(w_a, fresh)[0, 1]) < 0.05 and fresh.std() == pytest.approx(1.0, abs=0.05)


def test_rho_one_shares_the_hidden_weights_and_readout_rho_the_readouts() -> None:
    teacher = make_related_regression(rho=1.0, readout_rho=0.0, n_test=5).train.info["teacher"]
    w, v = teacher.hidden_weights, teacher.output_weights
    assert np.array_equal(w[0], w[1]) and not np.allclose(v[0], v[1])
    teacher = make_related_regression(rho=0.0, readout_rho=1.0, n_test=5).train.info["teacher"]
    assert np.array_equal(teacher.output_weights[0], teacher.output_weights[1])
    assert not np.allclose(teacher.hidden_weights[0], teacher.hidden_weights[1])


def test_per_task_relatedness_and_names() -> None:
    train, _ = make_related_regression(n_samples=(5, 5, 5), rho=[1.0, 0.0], task_names=["main", "aux1", "aux2"])
    w = train.info["teacher"].hidden_weights
    assert train.tasks == ("main", "aux1", "aux2")
    assert np.array_equal(w[0], w[1]) and not np.allclose(w[0], w[2])


def test_unrelated_weights_still_give_correlated_functions() -> None:
    """At rho = 0 the weight-mixed tasks are correlated by chance; rho = readout_rho = 1 makes them identical."""
    correlations = [
        task_correlation(make_related_regression(n_samples=(1, 1), rho=0.0, n_test=20_000, seed=s).test, "A", "B")
        for s in range(10)
    ]
    assert max(abs(c) for c in correlations) > 0.1
    _, test = make_related_regression(rho=1.0, readout_rho=1.0, n_test=300)
    assert task_correlation(test, "A", "B") == pytest.approx(1.0)
    by_hand = np.corrcoef(test.truth["A"][:, 0], test.truth["B"][:, 0] + 0.0 * test.x[:, 0])[0, 1]
    assert task_correlation(test, "A", "B") == pytest.approx(by_hand)
    with pytest.raises(KeyError, match="truth of tasks 'A' and 'C'"):
        task_correlation(test, "A", "C")


def test_seeded() -> None:
    a, b, c = (make_related_regression(n_samples=(10, 5), seed=s, n_test=3).train for s in (7, 7, 8))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.targets["B"], b.targets["B"], equal_nan=True)
    assert not np.allclose(a.x, c.x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
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
    for task in train.tasks:  # mse_loss averages over the labelled samples of the task only
        expected = np.nanmean(train.targets[task] ** 2)
        assert mse_loss(pred, targets[task]).item() == pytest.approx(expected, rel=1e-5)

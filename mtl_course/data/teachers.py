r"""Teacher networks: regression tasks of known relatedness :math:`\rho` (lectures A3--A5).

Every task is a noisy read-out of a random *teacher*, a network with one
hidden layer of tanh units, so that the ground truth is known and the
relatedness of two tasks is one number. What that number means is a choice,
and the course makes it twice (``RhoMixes``):

``"functions"`` -- :func:`make_related_tasks` (lecture A3)
    :math:`\rho` mixes the teachers' *functions*: task :math:`t` is
    :math:`f_t = \rho f_1 + \sqrt{1 - \rho^2}\, g_t^{\perp}`, with
    :math:`g_t^\perp` an independent teacher made exactly uncorrelated with
    the anchor task :math:`f_1`. Then :math:`\operatorname{corr}(f_1, f_t) = \rho`
    exactly (on the reference sample), and :math:`\rho = 0` means "unrelated".
``"weights"`` -- :func:`make_related_regression` (lectures A4, A5)
    :math:`\rho` mixes the teachers' *hidden weights*:
    :math:`W_t = \rho W_0 + \sqrt{1 - \rho^2} W'_t`, entry by entry, so
    :math:`\rho = 1` means the tasks read the same hidden features. Two
    independent random tanh networks are correlated by chance (their
    near-linear parts are two random directions), so :math:`\rho = 0` does
    not mean uncorrelated functions: :func:`task_correlation` measures it.

Both draw :math:`x \sim \mathcal N(0, I_d)`, standardise every task function
to mean 0 and variance 1 (so a test MSE is in units of the signal's variance
and the noise floor is :math:`\sigma^2`), give each task its own training
cases (two cohorts, each annotated for one outcome; ``NaN`` marks the other
tasks' labels) and label every test case for every task. Both return
:class:`~mtl_course.data.tasks.MultiTaskData` with the noise-free targets as
``truth`` and the teacher in ``info["teacher"]``.

*Stands in for* pairs of clinical prediction targets computed from the same
measurements (imaging-derived features, lab values), whose dependence on the
inputs ranges from the same latent physiological factors to unrelated ones:
outcome A recorded for many patients, outcome B -- a rare or expensive
label -- for few. It keeps the point of the lectures, that sharing can only
help as far as the tasks share their function (Caruana, Machine Learning 28,
1997; Misra et al., CVPR 2016, arXiv 1604.03539), while the ground truth
stays known.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from mtl_course.data.tasks import MultiTaskData

#: What :math:`\rho` mixes: the task functions (exact correlation, lecture A3) or the hidden weights (A4, A5).
RhoMixes = Literal["functions", "weights"]

_REFERENCE_SEED = 12345
_REFERENCE_SIZE = 100_000
#: Monte-Carlo sample size used to standardise each weight-mixed teacher's output.
_STANDARDISE_SAMPLES = 50_000


def mix(anchor: np.ndarray, own: np.ndarray, rho: float) -> np.ndarray:
    r""":math:`\rho\,a + \sqrt{1-\rho^2}\,b`: for uncorrelated unit-variance ``a``, ``b`` it has unit variance and
    correlation :math:`\rho` with ``a`` (both meanings of :math:`\rho` use it: on functions and on weights).

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(2, 200_000))
    >>> m = mix(a, b, 0.6)
    >>> round(float(m.std()), 2), round(float(np.corrcoef(a, m)[0, 1]), 2)
    (1.0, 0.6)
    """
    return rho * anchor + math.sqrt(max(0.0, 1.0 - rho * rho)) * own


def task_correlation(data: MultiTaskData, a: str, b: str) -> float:
    """The Pearson correlation of two tasks' noise-free targets (``data.truth``) over the cases of ``data``.

    Weight-mixed tasks with shared hidden and read-out weights are the same
    task; with *unrelated* weights (``rho=0``, lecture A4's defaults otherwise)
    the two functions are still correlated by chance (over seeds 0--19 the
    correlation has a standard deviation of about 0.16):

    >>> _, test = make_related_regression(rho=1.0, readout_rho=1.0, n_test=500)
    >>> round(task_correlation(test, "A", "B"), 6)
    1.0
    >>> _, test = make_related_regression(rho=0.0)
    >>> round(task_correlation(test, "A", "B"), 2)
    -0.2
    """
    if data.truth is None or a not in data.truth or b not in data.truth:
        raise KeyError(
            f"task_correlation needs the truth of tasks {a!r} and {b!r}; "
            f"the data have the truth of {list(data.truth or {})}"
        )
    return float(np.corrcoef(np.ravel(data.truth[a]), np.ravel(data.truth[b]))[0, 1])


class TrainValTest(NamedTuple):
    """A training, a validation and a test set."""

    train: MultiTaskData
    val: MultiTaskData
    test: MultiTaskData


class TrainTest(NamedTuple):
    """A training and a test set."""

    train: MultiTaskData
    test: MultiTaskData


def _names(tasks: Sequence[str]) -> tuple[str, ...]:
    tasks = tuple(tasks)
    if len(tasks) < 1 or len(set(tasks)) != len(tasks):
        raise ValueError(f"need at least one task and unique task names, got {tasks}")
    return tasks


def _one_label_per_case(values: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """``values`` (n, T), ``NaN`` except in column ``t`` of the ``counts[t]`` rows of task ``t`` (stacked in order)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return np.where(owner[:, None] == np.arange(len(counts))[None, :], values, np.nan)


def _data(x: np.ndarray, targets: np.ndarray, truth: np.ndarray, tasks: Sequence[str], info: dict) -> MultiTaskData:
    """Columns ``(n, T)`` as one ``(n, 1)`` target and truth per task."""
    return MultiTaskData(
        x,
        {t: targets[:, i : i + 1] for i, t in enumerate(tasks)},
        truth={t: truth[:, i : i + 1] for i, t in enumerate(tasks)},
        info=info,
    )


# -- rho mixes the functions (lecture A3) ---------------------------------------------------------------------
@dataclass(frozen=True)
class TanhTeacher:
    r"""One teacher network :math:`g(x) = v^\top \tanh(Wx) / s`: ``W`` (n_hidden, d), ``v`` (n_hidden,), ``scale``."""

    W: np.ndarray
    v: np.ndarray
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self.W.T) @ self.v / self.scale


@dataclass(frozen=True)
class FunctionMixture:
    r"""The task functions :math:`f_t = \rho f_1 + \sqrt{1-\rho^2}\, g_t^\perp` (``RhoMixes = "functions"``).

    Each teacher is :math:`g(x) = v^\top \tanh(Wx) / s` with
    :math:`W_{kj} \sim \mathcal N(0, \gamma^2/d)`, :math:`v_k \sim \mathcal N(0, 1)`
    and :math:`s` the standard deviation of :math:`v^\top\tanh(Wx)`.
    ``anchor`` is :math:`f_1`; ``others[t]`` is the teacher :math:`g_t`.
    :math:`g_t^\perp = (g_t - \sum_s c_{ts} u_s)/r_t` is :math:`g_t` made
    uncorrelated with :math:`f_1` and with the :math:`g_s^\perp` of the
    tasks before it (Gram--Schmidt on a fixed reference sample of 100,000
    inputs): ``coefficients[t]`` are its projections :math:`c_{ts}`,
    ``residual[t]`` the standard deviation :math:`r_t` of what is left.
    Every :math:`f_t` then has unit variance and correlation exactly
    :math:`\rho` with the anchor on the reference sample (within about 0.01
    on fresh inputs); two non-anchor tasks are correlated :math:`\rho^2`.
    """

    tasks: tuple[str, ...]
    rho: float
    anchor: TanhTeacher
    others: Mapping[str, TanhTeacher]
    coefficients: Mapping[str, tuple[float, ...]]
    residual: Mapping[str, float]

    @property
    def overlap(self) -> dict[str, float]:
        r""":math:`c_t = \operatorname{corr}(g_t, f_1)` on the reference sample."""
        return {t: c[0] for t, c in self.coefficients.items()}

    def orthogonal(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The basis ``[f_1, g_2^perp, g_3^perp, ...]`` at ``x``, keyed by task."""
        basis = {self.tasks[0]: self.anchor(x)}
        for t in self.tasks[1:]:
            previous = list(basis.values())
            value = self.others[t](x) - sum(c * u for c, u in zip(self.coefficients[t], previous, strict=True))
            basis[t] = value / self.residual[t]
        return basis

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The noise-free targets ``{t: f_t(x)}``, each ``(n,)``."""
        basis = self.orthogonal(x)
        f1 = basis[self.tasks[0]]
        return {t: f1 if i == 0 else mix(f1, basis[t], self.rho) for i, t in enumerate(self.tasks)}


def _check_rho(rho: float) -> None:
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"relatedness rho must lie in [0, 1] (1: identical tasks, 0: unrelated), got {rho!r}")


def _random_teacher(
    rng: np.random.Generator, n_features: int, n_hidden: int, gain: float, reference: np.ndarray
) -> TanhTeacher:
    W = rng.normal(0.0, gain / math.sqrt(n_features), size=(n_hidden, n_features))
    v = rng.normal(size=n_hidden)
    W.setflags(write=False)
    v.setflags(write=False)
    return TanhTeacher(W, v, float(np.std(np.tanh(reference @ W.T) @ v)))


@functools.lru_cache(maxsize=8)
def _reference(n_features: int) -> np.ndarray:
    """The fixed reference inputs on which the teachers are standardised (read-only)."""
    reference = np.random.default_rng(_REFERENCE_SEED).normal(size=(_REFERENCE_SIZE, n_features))
    reference.setflags(write=False)
    return reference


@functools.lru_cache(maxsize=64)
def _teachers(seed: int, tasks: tuple[str, ...], n_features: int, n_hidden: int, gain: float) -> tuple:
    """The random teachers of a seed and their Gram--Schmidt coefficients (they do not depend on rho; cached)."""
    reference = _reference(n_features)
    rng = np.random.default_rng([seed, 0])
    anchor = _random_teacher(rng, n_features, n_hidden, gain, reference)
    basis = [anchor(reference)]  # unit variance on the reference sample by construction
    others, coefficients, residual = {}, {}, {}
    for t in tasks[1:]:
        others[t] = _random_teacher(rng, n_features, n_hidden, gain, reference)
        g = others[t](reference)
        coefficients[t] = tuple(float(np.mean(g * u)) for u in basis)
        left = g - sum(c * u for c, u in zip(coefficients[t], basis, strict=True))
        residual[t] = float(left.std())
        basis.append(left / residual[t])
    return anchor, tuple(others.items()), tuple(coefficients.items()), tuple(residual.items())


def function_mixture(
    rho: float,
    seed: int,
    tasks: Sequence[str] = ("a", "b"),
    n_features: int = 4,
    n_hidden: int = 4,
    gain: float = 1.5,
) -> FunctionMixture:
    r"""Task functions whose correlation with the anchor is exactly ``rho`` (see :class:`FunctionMixture`).

    ``gain`` :math:`\gamma` sets the pre-activations' standard deviation, so
    that the tanh units work in their non-linear range. The teachers depend
    on ``seed``, not on ``rho``.

    >>> teacher = function_mixture(rho=1.0, seed=0)
    >>> x = np.random.default_rng(1).normal(size=(5, 4))
    >>> f = teacher(x); bool(np.allclose(f["a"], f["b"]))
    True
    """
    _check_rho(rho)
    tasks = _names(tasks)
    anchor, others, coefficients, residual = _teachers(int(seed), tasks, int(n_features), int(n_hidden), float(gain))
    return FunctionMixture(tasks, float(rho), anchor, dict(others), dict(coefficients), dict(residual))


def function_correlation(teacher: FunctionMixture, n: int = 100_000, seed: int = 0) -> dict[tuple[str, str], float]:
    """Pearson correlation of the noise-free task functions over fresh inputs :math:`x \\sim N(0, I)`, per task pair.

    >>> abs(function_correlation(function_mixture(rho=0.3, seed=0))[("a", "b")] - 0.3) < 0.02
    True
    """
    d = teacher.anchor.W.shape[1]
    f = teacher(np.random.default_rng(seed).normal(size=(n, d)))
    names = list(f)
    return {(a, b): float(np.corrcoef(f[a], f[b])[0, 1]) for i, a in enumerate(names) for b in names[i + 1 :]}


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def make_related_tasks(
    n_train: int,
    rho: float,
    seed: int,
    *,
    n_val: int | None = None,
    n_test: int = 500,
    shared_inputs: bool = False,
    tasks: Sequence[str] = ("a", "b"),
    n_features: int = 4,
    n_hidden: int = 4,
    noise: float = 0.5,
    gain: float = 1.5,
) -> TrainValTest:
    r"""Train / validation / test sets of ``len(tasks)`` tasks whose functions are correlated ``rho`` (``"functions"``).

    Each task has ``n_train`` labelled training cases and ``n_val`` (default
    ``n_train``) validation cases, with label noise of standard deviation
    ``noise``. With ``shared_inputs=False`` (default) every task has its own
    cases -- separate cohorts, each annotated for one task -- stacked into
    one set whose targets are ``NaN`` on the other tasks' cases; with
    ``shared_inputs=True`` one set of cases carries a label for every task.
    The ``n_test`` test cases are shared, and their targets *are* the
    noise-free truth (a test MSE measures the error against the function).
    ``info`` holds ``rho``, ``rho_mixes="functions"`` and the ``teacher``
    (:class:`FunctionMixture`).

    Inputs and noise depend on ``seed`` and the sizes, not on ``rho``
    (common random numbers: a sweep over :math:`\rho` changes nothing but
    the relatedness); the first ``n`` training cases of a task are the same
    for every ``n_train >= n``, so that larger training sets extend smaller ones.

    >>> train, val, test = make_related_tasks(n_train=20, rho=0.5, seed=0)
    >>> train.x.shape, test.truth["b"].shape, train.tasks
    ((40, 4), (500, 1), ('a', 'b'))
    >>> train.n_labelled()  # each task its own 20 cases
    {'a': 20, 'b': 20}
    """
    _positive_int("n_train", n_train)
    _positive_int("n_test", n_test)
    n_val = n_train if n_val is None else n_val
    _positive_int("n_val", n_val)
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise!r}")
    teacher = function_mixture(rho, seed, tasks, n_features, n_hidden, gain)
    names = teacher.tasks
    info = {"rho": float(rho), "rho_mixes": "functions", "teacher": teacher}

    def draw(stream: int, n: int, noisy: bool, shared: bool) -> MultiTaskData:
        # row-major draws from separate streams: a larger set extends a smaller one, whatever rho is
        groups = [0] if shared else list(range(len(names)))
        x = np.concatenate([np.random.default_rng([seed, stream, 0, g]).normal(size=(n, n_features)) for g in groups])
        eps = np.concatenate([np.random.default_rng([seed, stream, 1, g]).normal(size=(n, len(names))) for g in groups])
        truth = np.stack(list(teacher(x).values()), axis=1)
        targets = truth + noise * eps if noisy else truth + 0.0
        if not shared:
            targets = _one_label_per_case(targets, [n] * len(names))
        return _data(x, targets, truth, names, info)

    return TrainValTest(
        draw(1, n_train, True, shared_inputs), draw(2, n_val, True, shared_inputs), draw(3, n_test, False, True)
    )


# -- rho mixes the hidden weights (lectures A4, A5) ----------------------------------------------------------------
@dataclass(frozen=True)
class WeightMixture:
    r"""Teachers whose hidden weights are mixed (``RhoMixes = "weights"``).

    :math:`f_t(x) = (v_t^\top \tanh(g W_t x/\sqrt d) - \mu_t)/s_t`, with
    ``hidden_weights`` (T, k, d) with :math:`W_t = \rho_t W_0 + \sqrt{1-\rho_t^2} W'_t`
    (i.i.d. :math:`N(0, 1)` entries: every entry of :math:`W_t` is again
    :math:`N(0, 1)` with correlation :math:`\rho_t` to the same entry of
    :math:`W_0`), ``output_weights`` (T, k) mixed the same way with their own
    ``readout_rho``, ``offset`` and ``scale`` (T,) the standardisation,
    ``gain`` :math:`g` (how non-linear the tanh is), ``noise`` :math:`\sigma`.
    """

    hidden_weights: np.ndarray
    output_weights: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    gain: float
    noise: float
    task_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self.hidden_weights.shape[2]

    @property
    def n_tasks(self) -> int:
        return self.hidden_weights.shape[0]

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Un-standardised outputs :math:`v_t^\\top \\tanh(g W_t x / \\sqrt d)`, shape (n, T)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"the teacher takes inputs of shape (n, {self.n_features}), got {X.shape}")
        hidden = np.tanh(self.gain * np.einsum("nd,tkd->ntk", X, self.hidden_weights) / math.sqrt(self.n_features))
        return np.einsum("ntk,tk->nt", hidden, self.output_weights)

    def signal(self, X: np.ndarray) -> np.ndarray:
        """The noise-free targets :math:`f_t(x)` (mean 0, variance 1 per task), shape (n, T)."""
        return (self.raw(X) - self.offset) / self.scale


def _per_task(name: str, value: float | Sequence[float], n_tasks: int) -> list[float]:
    """A relatedness given once for all tasks 1..T-1, or once per task 1..T-1."""
    values = [float(value)] * (n_tasks - 1) if np.isscalar(value) else [float(v) for v in value]  # type: ignore[union-attr, arg-type]
    if len(values) != n_tasks - 1:
        raise ValueError(
            f"{name} must be one number or one per task after the first ({n_tasks - 1} values), got {value!r}"
        )
    for v in values:
        if not -1.0 <= v <= 1.0 or math.isnan(v):
            raise ValueError(f"{name} must lie in [-1, 1], got {v}")
    return values


def _check_weight_mixture_args(
    n_samples: list[int], n_features: int, n_hidden: int, n_test: int, noise: float, gain: float
) -> None:
    if len(n_samples) < 1 or any(n < 1 for n in n_samples):
        raise ValueError(f"n_samples must hold one positive count per task, got {n_samples}")
    if n_features < 1 or n_hidden < 1 or n_test < 1:
        raise ValueError(f"need n_features, n_hidden, n_test >= 1; got {n_features}, {n_hidden}, {n_test}")
    if not (noise >= 0 and math.isfinite(noise)) or not (gain > 0 and math.isfinite(gain)):
        raise ValueError(f"need noise >= 0 and gain > 0 (finite), got noise={noise}, gain={gain}")


def _letters(n_tasks: int, task_names: Sequence[str] | None) -> tuple[str, ...]:
    if task_names is None:
        if n_tasks > 26:
            raise ValueError(f"name the tasks yourself when there are more than 26 (got {n_tasks})")
        task_names = [chr(ord("A") + t) for t in range(n_tasks)]
    task_names = tuple(task_names)
    if len(task_names) != n_tasks or len(set(task_names)) != n_tasks:
        raise ValueError(f"need {n_tasks} distinct task names, got {task_names}")
    return task_names


def weight_mixture(
    rng: np.random.Generator,
    rhos: Sequence[float],
    readout_rhos: Sequence[float],
    n_features: int,
    n_hidden: int,
    gain: float,
    noise: float,
    task_names: tuple[str, ...],
) -> WeightMixture:
    """Draw a :class:`WeightMixture` from ``rng`` (reference weights, then each further task's) and standardise it."""
    n_tasks = len(task_names)
    reference_hidden = rng.standard_normal((n_hidden, n_features))
    reference_readout = rng.standard_normal(n_hidden)
    hidden, readout = [reference_hidden], [reference_readout]
    for r, r_out in zip(rhos, readout_rhos, strict=True):
        hidden.append(mix(reference_hidden, rng.standard_normal((n_hidden, n_features)), r))
        readout.append(mix(reference_readout, rng.standard_normal(n_hidden), r_out))
    unit = np.zeros(n_tasks), np.ones(n_tasks)
    raw_teacher = WeightMixture(np.stack(hidden), np.stack(readout), *unit, float(gain), float(noise), task_names)
    reference = raw_teacher.raw(rng.standard_normal((_STANDARDISE_SAMPLES, n_features)))
    scale = reference.std(axis=0)
    if np.any(scale < 1e-12):
        raise ValueError("a teacher output is constant (all read-out weights zero?); change the seed")
    return WeightMixture(
        raw_teacher.hidden_weights,
        raw_teacher.output_weights,
        reference.mean(axis=0),
        scale,
        float(gain),
        float(noise),
        task_names,
    )


def make_related_regression(
    n_samples: Sequence[int] = (2000, 100),
    rho: float | Sequence[float] = 0.9,
    n_features: int = 20,
    n_hidden: int = 4,
    gain: float = 2.0,
    noise: float = 0.1,
    readout_rho: float | Sequence[float] = 0.0,
    n_test: int = 2000,
    seed: int = 0,
    task_names: Sequence[str] | None = None,
) -> TrainTest:
    r"""A training set (task ``t`` labels ``n_samples[t]`` inputs of its own) and a fully labelled test set.

    :math:`\rho` mixes the hidden weights (``RhoMixes = "weights"``).

    The default is lecture A4's demo: :math:`x \in \mathbb{R}^{20}`, task A
    with 2000 samples, a data-starved task B with 100 samples whose hidden
    weights are :math:`\rho W_A + \sqrt{1 - \rho^2} W'` (:class:`WeightMixture`).
    ``rho`` and ``readout_rho`` are one number for every task after the
    first, or one per such task. ``noise`` is :math:`\sigma` (targets have
    unit signal variance); the test set's targets are noisy labels too.
    ``info`` holds ``rho``, ``rho_mixes="weights"`` and the ``teacher``.

    >>> train, test = make_related_regression(rho=1.0, seed=0)
    >>> train.x.shape, train.targets["B"].shape, test.n_labelled()
    ((2100, 20), (2100, 1), {'A': 2000, 'B': 2000})
    >>> W = train.info["teacher"].hidden_weights
    >>> bool(np.array_equal(W[0], W[1]))
    True
    """
    n_samples = [int(n) for n in n_samples]
    _check_weight_mixture_args(n_samples, n_features, n_hidden, n_test, noise, gain)
    n_tasks = len(n_samples)
    rhos = _per_task("rho", rho, n_tasks)
    readout_rhos = _per_task("readout_rho", readout_rho, n_tasks)
    names = _letters(n_tasks, task_names)
    rng = np.random.default_rng(seed)
    teacher = weight_mixture(rng, rhos, readout_rhos, n_features, n_hidden, gain, noise, names)
    info = {"rho": rho, "rho_mixes": "weights", "teacher": teacher}

    # training set: task t labels its own n_samples[t] inputs
    X = rng.standard_normal((sum(n_samples), n_features))
    signal = teacher.signal(X)
    noisy = signal + noise * rng.standard_normal(signal.shape)
    train = _data(X, _one_label_per_case(noisy, n_samples), signal, names, info)

    # test set: every input labelled for every task
    X_test = rng.standard_normal((n_test, n_features))
    signal_test = teacher.signal(X_test)
    Y_test = signal_test + noise * rng.standard_normal(signal_test.shape)
    return TrainTest(train, _data(X_test, Y_test, signal_test, names, info))

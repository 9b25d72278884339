r"""Regression tasks of controlled relatedness, from identical to unrelated (lecture A3).

Every task is a noisy read-out of a random *teacher* network with one hidden
layer of ``n_hidden`` tanh units, :math:`x \sim \mathcal N(0, I_d)`:

.. math::

    g(x) = \frac{1}{s}\, v^\top \tanh(W x), \qquad W_{kj} \sim \mathcal N(0, \gamma^2/d),\ v_k \sim \mathcal N(0, 1),

with :math:`s` the standard deviation of :math:`v^\top\tanh(Wx)`, so that
:math:`g` has unit variance. The first ("anchor") task is one teacher,
:math:`f_1 = g_1`. Every other task :math:`t` mixes the anchor with an
independent teacher :math:`g_t`, first made exactly uncorrelated with
:math:`f_1`:

.. math::

    f_t = \rho\, f_1 + \sqrt{1 - \rho^2}\; g_t^{\perp}, \qquad
    g_t^{\perp} = \frac{g_t - c_t f_1}{\sqrt{1 - c_t^2}}, \quad c_t = \operatorname{corr}(g_t, f_1),

(with more than two tasks, :math:`g_t^\perp` is also made uncorrelated with
the :math:`g_s^\perp` of the earlier tasks, Gram--Schmidt), and the labels
are :math:`y_t = f_t(x) + \varepsilon_t`,
:math:`\varepsilon_t \sim \mathcal N(0, \sigma^2)`. Every :math:`f_t` has
unit variance and **correlation exactly** :math:`\rho` **with the anchor**
(population moments are estimated once on a fixed reference sample of
100,000 inputs; on fresh inputs the correlation is within about 0.01 of :math:`\rho`).
:math:`\rho = 1` gives identical functions (the tasks differ only in their
label noise); :math:`\rho = 0` unrelated ones: task :math:`t` then needs
hidden features that task 1 does not have. (Two non-anchor tasks are
correlated :math:`\rho^2`.) A test MSE of 1 means "no better than
predicting 0".

Why mix functions rather than weights? Mixing the teachers' hidden weights,
:math:`W_t = \rho W_1 + \sqrt{1-\rho^2} W'`, is the other common choice, but
two *independent* random tanh networks on a few inputs are correlated by
chance (their near-linear parts are two random directions; with 4 inputs
the correlation has a standard deviation of about 0.5), so
":math:`\rho = 0`" would not mean "unrelated".

For a given ``seed`` the teachers, the inputs and the noise do not depend on
:math:`\rho`, so a sweep over :math:`\rho` changes nothing but the
relatedness (common random numbers). By default each task has its own
training cases (two cohorts, each annotated for one task); optionally one
set of cases carries a label for every task, as when one scan is annotated
for several findings.

*Stands in for* pairs of clinical prediction targets computed from the same
measurements, whose dependence on the inputs ranges from the same mechanism
to unrelated mechanisms. It keeps the point lecture A3 needs: sharing
parameters can only help as far as the tasks share their function, and here
that relatedness is one known number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_REFERENCE_SEED = 12345
_REFERENCE_SIZE = 100_000


@dataclass(frozen=True)
class RegressionSet:
    """Inputs ``x`` (n, d), noisy ``targets`` (``NaN``: no label for that task) and noise-free ``truth``, each ``{task: (n,)}``."""

    x: np.ndarray
    targets: Mapping[str, np.ndarray]
    truth: Mapping[str, np.ndarray]

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.targets)


@dataclass(frozen=True)
class RelatedTasks:
    """A train / validation / test split of related regression tasks (see the module docstring)."""

    train: RegressionSet
    val: RegressionSet
    test: RegressionSet
    rho: float
    teacher: TeacherNetworks

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.train.tasks


@dataclass(frozen=True)
class Teacher:
    r"""One teacher network :math:`g(x) = v^\top \tanh(Wx) / s`: ``W`` (n_hidden, d), ``v`` (n_hidden,), ``scale`` :math:`s`."""

    W: np.ndarray
    v: np.ndarray
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self.W.T) @ self.v / self.scale


@dataclass(frozen=True)
class TeacherNetworks:
    r"""The task functions :math:`f_t = \rho f_1 + \sqrt{1-\rho^2}\, g_t^\perp` (see the module docstring).

    ``anchor`` is :math:`f_1`; ``others[t]`` is the teacher :math:`g_t`.
    :math:`g_t^\perp` is :math:`g_t` made uncorrelated with :math:`f_1` and
    with the :math:`g_s^\perp` of the tasks before it (Gram--Schmidt on the
    reference sample): ``coefficients[t]`` are its projections on those,
    ``residual[t]`` the standard deviation of what is left.
    """

    tasks: tuple[str, ...]
    rho: float
    anchor: Teacher
    others: Mapping[str, Teacher]
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
        """The noise-free targets ``{t: f_t(x)}``."""
        basis = self.orthogonal(x)
        f1 = basis[self.tasks[0]]
        mixing = math.sqrt(max(0.0, 1.0 - self.rho**2))
        return {t: f1 if i == 0 else self.rho * f1 + mixing * basis[t] for i, t in enumerate(self.tasks)}


def mix(anchor: np.ndarray, own: np.ndarray, rho: float) -> np.ndarray:
    r""":math:`\rho\,a + \sqrt{1-\rho^2}\,b`: for uncorrelated unit-variance ``a``, ``b`` it has unit variance and correlation :math:`\rho` with ``a``.

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(2, 200_000))
    >>> m = mix(a, b, 0.6)
    >>> round(float(m.std()), 2), round(float(np.corrcoef(a, m)[0, 1]), 2)
    (1.0, 0.6)
    """
    _check_rho(rho)
    return rho * anchor + math.sqrt(max(0.0, 1.0 - rho * rho)) * own


def _check_rho(rho: float) -> None:
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"relatedness rho must lie in [0, 1] (1: identical tasks, 0: unrelated), got {rho!r}")


def _random_teacher(
    rng: np.random.Generator, n_features: int, n_hidden: int, gain: float, reference: np.ndarray
) -> Teacher:
    W = rng.normal(0.0, gain / math.sqrt(n_features), size=(n_hidden, n_features))
    v = rng.normal(size=n_hidden)
    W.setflags(write=False)
    v.setflags(write=False)
    return Teacher(W, v, float(np.std(np.tanh(reference @ W.T) @ v)))


@functools.lru_cache(maxsize=8)
def _reference(n_features: int) -> np.ndarray:
    """The fixed reference inputs on which the teachers are standardised (read-only)."""
    reference = np.random.default_rng(_REFERENCE_SEED).normal(size=(_REFERENCE_SIZE, n_features))
    reference.setflags(write=False)
    return reference


def make_teacher(
    rho: float,
    seed: int,
    tasks: Sequence[str] = ("a", "b"),
    n_features: int = 4,
    n_hidden: int = 4,
    gain: float = 1.5,
) -> TeacherNetworks:
    r"""Task functions of relatedness ``rho`` (see the module docstring).

    ``gain`` :math:`\gamma` sets the pre-activations' standard deviation, so
    that the tanh units work in their non-linear range.

    >>> teacher = make_teacher(rho=1.0, seed=0)
    >>> x = np.random.default_rng(1).normal(size=(5, 4))
    >>> f = teacher(x); bool(np.allclose(f["a"], f["b"]))
    True
    """
    _check_rho(rho)
    tasks = tuple(tasks)
    if len(tasks) < 1 or len(set(tasks)) != len(tasks):
        raise ValueError(f"need at least one task and unique task names, got {tasks}")
    anchor, others, coefficients, residual = _teachers(int(seed), tasks, int(n_features), int(n_hidden), float(gain))
    return TeacherNetworks(tasks, float(rho), anchor, dict(others), dict(coefficients), dict(residual))


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
) -> RelatedTasks:
    r"""Train / validation / test sets of ``len(tasks)`` related regression tasks.

    Each task has ``n_train`` labelled training cases and ``n_val`` (default
    ``n_train``) validation cases, with label noise of standard deviation
    ``noise``. With ``shared_inputs=False`` (default) every task has its own
    cases -- separate cohorts, each annotated for one task -- stacked into
    one set whose targets are ``NaN`` on the other tasks' cases (the
    course's convention for a missing label); with ``shared_inputs=True``
    one set of cases carries a label for every task. The ``n_test`` test
    cases are shared and carry the noise-free ``truth`` of every task.

    Inputs and noise depend on ``seed`` and the sizes, not on ``rho``; the
    first ``n`` training cases of a task are the same for every
    ``n_train >= n``, so that larger training sets extend smaller ones.

    >>> data = make_related_tasks(n_train=20, rho=0.5, seed=0)
    >>> data.train.x.shape, data.test.truth["b"].shape, data.tasks
    ((40, 4), (500,), ('a', 'b'))
    >>> [int(np.isnan(data.train.targets[t]).sum()) for t in data.tasks]  # the other task's 20 cases
    [20, 20]
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    n_val = n_train if n_val is None else n_val
    if not isinstance(n_val, (int, np.integer)) or n_val < 1:
        raise ValueError(f"n_val must be a positive int, got {n_val!r}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise!r}")
    teacher = make_teacher(rho, seed, tasks, n_features, n_hidden, gain)
    names = teacher.tasks

    def draw(stream: int, n: int, noisy: bool, shared: bool) -> RegressionSet:
        # row-major draws from separate streams: a larger set extends a smaller one, whatever rho is
        groups = [0] if shared else list(range(len(names)))
        x = np.concatenate([np.random.default_rng([seed, stream, 0, g]).normal(size=(n, n_features)) for g in groups])
        eps = np.concatenate([np.random.default_rng([seed, stream, 1, g]).normal(size=(n, len(names))) for g in groups])
        truth = teacher(x)
        targets = {}
        for i, t in enumerate(names):
            y = truth[t] + (noise * eps[:, i] if noisy else 0.0)
            if not shared:
                y = np.where(np.repeat(np.arange(len(names)), n) == i, y, np.nan)
            targets[t] = y
        return RegressionSet(x, targets, truth)

    return RelatedTasks(
        draw(1, n_train, True, shared_inputs),
        draw(2, n_val, True, shared_inputs),
        draw(3, n_test, False, True),
        float(rho),
        teacher,
    )


def function_correlation(teacher: TeacherNetworks, n: int = 100_000, seed: int = 0) -> dict[tuple[str, str], float]:
    """Pearson correlation of the noise-free task functions over fresh inputs :math:`x \\sim N(0, I)`, per task pair.

    >>> abs(function_correlation(make_teacher(rho=0.3, seed=0))[("a", "b")] - 0.3) < 0.02
    True
    """
    d = teacher.anchor.W.shape[1]
    f = teacher(np.random.default_rng(seed).normal(size=(n, d)))
    names = list(f)
    return {(a, b): float(np.corrcoef(f[a], f[b])[0, 1]) for i, a in enumerate(names) for b in names[i + 1 :]}

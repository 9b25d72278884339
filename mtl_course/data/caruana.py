r"""Seeded problems that isolate *why* multi-task learning works (lecture A2).

Caruana (Machine Learning 28:41--75, 1997, doi:10.1023/A:1007379606734,
Section 3.2) names the mechanisms by which a shared hidden layer helps a main
task: statistical data amplification, attribute selection, eavesdropping and
representation bias; Ruder ("An overview of multi-task learning in deep
neural networks", arXiv 1706.05098, 2017, Section 3) renames them implicit
data augmentation, attention focusing, eavesdropping and representation bias
and adds regularisation. Each problem below isolates one of them.

* :class:`CaruanaProblem` -- the main demo and implicit data augmentation:
  :math:`F(x) = \sin(2x_1) + x_2^2 + x_3x_4` on :math:`x \sim U(-1.5, 1.5)^{10}`,
  main target :math:`F + \varepsilon_0`, extra tasks
  :math:`F + s\,x_{4+k} + \varepsilon_k` (``extra_slope`` :math:`s = 0.3`;
  :math:`s = 0` makes them noisy copies of :math:`F`: pure amplification).
* :class:`AttentionProblem` -- attention focusing (attribute selection): the
  same :math:`F` on 4 of 20 inputs; extra tasks are *other* functions of the
  same 4 inputs, uncorrelated with :math:`F`.
* :class:`HintProblem` -- eavesdropping: the main task is :math:`|G(x)|`
  with :math:`G(x) = x_1x_2 + x_3x_4`, which hides the sign of :math:`G`;
  the hint task's target is :math:`G` itself (Abu-Mostafa's catalytic hints).
* :class:`EnvironmentProblem` -- representation bias and Baxter's environment
  of related tasks: every task is a random linear read-out of the same
  non-linear features :math:`\phi(x)`.
* :func:`load_breast_cancer_tasks` -- the negative control: scikit-learn's
  Wisconsin diagnostic breast cancer data, the 10 "mean" features as inputs
  and the 20 "error"/"worst" features as training-only extra tasks.
* :func:`pneumonia_table` -- Caruana's Table 3 (pneumonia risk, STL vs MTL),
  as printed.

Every synthetic problem has ``sample(n, rng)``, which returns
:class:`~mtl_course.data.tasks.MultiTaskData` with the main task
``"main"`` first and one ``(n, 1)`` target per task; the noise-free targets
(``truth``) are returned as well, so that test error can be measured
against the function instead of against noisy labels.
:func:`shuffle_extra_tasks` is Caruana's shuffle test (Section 3.1).

*Stands in for* the clinical setting of Caruana's pneumonia study: a main
prediction from measurements available at admission, plus extra training
signals (later lab results) that exist for the training cases only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mtl_course.data.tasks import MultiTaskData

MAIN = "main"


def extra_tasks(data: MultiTaskData) -> list[str]:
    """The tasks other than the main task, in order."""
    return [t for t in data.tasks if t != MAIN]


def _tasks(x: np.ndarray, truth: Mapping[str, np.ndarray], noisy: Mapping[str, np.ndarray]) -> MultiTaskData:
    """``MultiTaskData`` with one ``(n, 1)`` column per task: targets ``noisy``, noise-free ``truth``."""
    column = {t: y[:, None] for t, y in noisy.items()}
    return MultiTaskData(x, column, truth={t: y[:, None] for t, y in truth.items()})


def _check(n: int, rng: np.random.Generator) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")


def caruana_function(x: np.ndarray) -> np.ndarray:
    r"""The main demo's function :math:`F(x) = \sin(2x_1) + x_2^2 + x_3x_4` (1-based indices).

    >>> caruana_function(np.array([[0.0, 1.0, 2.0, 3.0, 9.0]]))
    array([7.])
    """
    return np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + x[:, 2] * x[:, 3]


@dataclass(frozen=True)
class CaruanaProblem:
    r"""Main task :math:`F + \varepsilon_0`; extra task :math:`k` is :math:`F + s\,x_{4+k} + \varepsilon_k`.

    :math:`x \sim U(-1.5, 1.5)^{d}`, :math:`\varepsilon_k \sim N(0, \sigma^2)`
    independent, :math:`F` = :func:`caruana_function`. The extra tasks share
    the feature :math:`F` with the main task but not its noise, and each
    adds a small, different linear term; with ``extra_slope=0`` they are
    noisy copies of :math:`F`, and a shared hidden layer can average
    :math:`F` through ``1 + n_extra`` independent noise processes
    (statistical data amplification, Caruana 1997, Section 3.2.1).

    The draws happen in a fixed order (x, main noise, extra noises), so two
    problems that differ only in ``extra_slope`` give the same inputs, main
    labels and noises for the same ``rng`` state.

    >>> data = CaruanaProblem().sample(5, np.random.default_rng(0))
    >>> data.x.shape, data.tasks
    ((5, 10), ('main', 'extra_1', 'extra_2', 'extra_3', 'extra_4'))
    >>> bool(np.allclose(data.truth["main"][:, 0], caruana_function(data.x)))
    True
    """

    n_features: int = 10
    n_extra: int = 4
    extra_slope: float = 0.3
    noise: float = 1.0
    low: float = -1.5
    high: float = 1.5

    def __post_init__(self) -> None:
        if self.n_features < 4 + self.n_extra:
            raise ValueError(
                f"n_features must be at least 4 + n_extra = {4 + self.n_extra} (F uses x1..x4 and extra task k "
                f"uses x_(4+k)), got {self.n_features}"
            )
        if self.noise < 0 or self.low >= self.high:
            raise ValueError(
                f"need noise >= 0 and low < high, got noise={self.noise}, low={self.low}, high={self.high}"
            )

    def sample(self, n: int, rng: np.random.Generator) -> MultiTaskData:
        _check(n, rng)
        x = rng.uniform(self.low, self.high, size=(n, self.n_features))
        f = caruana_function(x)
        truth = {MAIN: f, **{f"extra_{k}": f + self.extra_slope * x[:, 3 + k] for k in range(1, self.n_extra + 1)}}
        targets = {t: y + self.noise * rng.standard_normal(n) for t, y in truth.items()}
        return _tasks(x, truth, targets)


def attention_extra_functions(x: np.ndarray) -> dict[str, np.ndarray]:
    r"""The extra tasks of :class:`AttentionProblem`: other functions of :math:`x_1..x_4`.

    :math:`\cos(2x_1)\,x_2`, :math:`x_1x_3 + x_4`, :math:`x_2x_4 - x_3`,
    :math:`\sin(2x_4)\,x_1`. Each is a product of an odd and an even factor
    (or odd in one variable that :math:`F` uses evenly), so each is
    uncorrelated with :math:`F` under the symmetric input distribution:
    they carry no information about the *values* of :math:`F`, only about
    *which* inputs matter.

    >>> sorted(attention_extra_functions(np.zeros((2, 4))))
    ['extra_1', 'extra_2', 'extra_3', 'extra_4']
    """
    x1, x2, x3, x4 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
    return {
        "extra_1": np.cos(2 * x1) * x2,
        "extra_2": x1 * x3 + x4,
        "extra_3": x2 * x4 - x3,
        "extra_4": np.sin(2 * x4) * x1,
    }


@dataclass(frozen=True)
class AttentionProblem:
    r"""Attention focusing: :math:`F` on 4 of ``n_features`` inputs, noisy; extra tasks flag the same 4 inputs.

    Main target :math:`F(x) + \varepsilon_0` with a large noise
    (``noise``); extra targets are the functions of
    :func:`attention_extra_functions` plus a small noise
    (``extra_noise``). With few training cases and many distractor inputs,
    a network learning only the main task cannot tell the 4 relevant inputs
    from the rest; the extra tasks, uncorrelated with :math:`F`, tell it
    which inputs matter (Caruana 1997, Section 3.2.2; Ruder 2017, Section 3.2).

    >>> data = AttentionProblem().sample(1000, np.random.default_rng(0))
    >>> data.x.shape
    (1000, 20)
    >>> all(abs(np.corrcoef(data.truth["main"][:, 0], data.targets[t][:, 0])[0, 1]) < 0.1 for t in extra_tasks(data))
    True
    """

    n_features: int = 20
    noise: float = 0.5
    extra_noise: float = 0.1
    low: float = -1.5
    high: float = 1.5

    #: Indices of the inputs every task uses.
    relevant: tuple[int, ...] = field(default=(0, 1, 2, 3), init=False)

    def __post_init__(self) -> None:
        if self.n_features < 4:
            raise ValueError(f"n_features must be at least 4, got {self.n_features}")

    def sample(self, n: int, rng: np.random.Generator) -> MultiTaskData:
        _check(n, rng)
        x = rng.uniform(self.low, self.high, size=(n, self.n_features))
        truth = {MAIN: caruana_function(x), **attention_extra_functions(x)}
        noise = {t: self.noise if t == MAIN else self.extra_noise for t in truth}
        return _tasks(x, truth, {t: y + noise[t] * rng.standard_normal(n) for t, y in truth.items()})


def hint_feature(x: np.ndarray) -> np.ndarray:
    r"""The eavesdropping feature :math:`G(x) = x_1x_2 + x_3x_4`.

    >>> hint_feature(np.array([[1.0, 2.0, 3.0, 4.0]]))
    array([14.])
    """
    return x[:, 0] * x[:, 1] + x[:, 2] * x[:, 3]


@dataclass(frozen=True)
class HintProblem:
    r"""Eavesdropping: the main task is :math:`|G(x)|`, the hint task :math:`G(x)` itself.

    :math:`x \sim U(-1, 1)^{d}`, :math:`G` = :func:`hint_feature`. The main
    target :math:`|G| + \varepsilon_0` hides the sign of :math:`G`: cases
    with opposite :math:`G` have the same label, so the main task's error
    gives only sign-ambiguous evidence about the feature :math:`G`, and a
    network trained on it alone hardly finds it. The hint target
    :math:`G + \varepsilon_h` is a smooth, sign-consistent signal that
    teaches the shared layer :math:`G`, and the main head can *eavesdrop* on
    it (Caruana 1997, Section 3.2.3; the hint task is Abu-Mostafa's
    catalytic hint, J. Complexity 6:192--198, 1990). The main noise is small,
    so there is little noise for amplification to average out.

    >>> data = HintProblem().sample(4, np.random.default_rng(0))
    >>> data.tasks, bool(np.allclose(data.targets["hint"][:, 0], hint_feature(data.x), atol=0.5))
    (('main', 'hint'), True)
    """

    n_features: int = 10
    noise: float = 0.1
    hint_noise: float = 0.1

    def __post_init__(self) -> None:
        if self.n_features < 4:
            raise ValueError(f"n_features must be at least 4, got {self.n_features}")
        if self.noise < 0 or self.hint_noise < 0:
            raise ValueError(f"noise levels must be >= 0, got {self.noise} and {self.hint_noise}")

    @staticmethod
    def main_function(x: np.ndarray) -> np.ndarray:
        r""":math:`|G(x)|`."""
        return np.abs(hint_feature(x))

    def sample(self, n: int, rng: np.random.Generator) -> MultiTaskData:
        _check(n, rng)
        x = rng.uniform(-1.0, 1.0, size=(n, self.n_features))
        truth = {MAIN: self.main_function(x), "hint": hint_feature(x)}
        noise = {MAIN: self.noise, "hint": self.hint_noise}
        return _tasks(x, truth, {t: y + noise[t] * rng.standard_normal(n) for t, y in truth.items()})


def environment_features(x: np.ndarray) -> np.ndarray:
    r"""The shared features :math:`\phi(x)` of :class:`EnvironmentProblem`, standardised, shape (n, 6).

    :math:`\sin(2x_1),\ x_2^2,\ x_3x_4,\ \cos(2x_5),\ x_6x_7,\ |x_8|`,
    each centred and scaled to unit variance under :math:`U(-1.5, 1.5)`
    (closed-form moments), so that a random read-out weighs them equally.

    >>> rng = np.random.default_rng(0)
    >>> phi = environment_features(rng.uniform(-1.5, 1.5, size=(200_000, 10)))
    >>> bool(np.allclose(phi.mean(0), 0, atol=0.01) and np.allclose(phi.std(0), 1, atol=0.01))
    True
    """
    a = 1.5
    raw = np.stack(
        [
            np.sin(2 * x[:, 0]),
            x[:, 1] ** 2,
            x[:, 2] * x[:, 3],
            np.cos(2 * x[:, 4]),
            x[:, 5] * x[:, 6],
            np.abs(x[:, 7]),
        ],
        axis=1,
    )
    # moments of u ~ U(-a, a): E sin^2(2u) = 1/2 - sin(4a)/(8a); E cos(2u) = sin(2a)/(2a)
    # E cos^2(2u) = 1/2 + sin(4a)/(8a); E u^2 = a^2/3; E u^4 = a^4/5; E|u| = a/2
    mean = np.array([0.0, a**2 / 3, 0.0, np.sin(2 * a) / (2 * a), 0.0, a / 2])
    var = np.array(
        [
            0.5 - np.sin(4 * a) / (8 * a),
            a**4 / 5 - (a**2 / 3) ** 2,
            (a**2 / 3) ** 2,
            0.5 + np.sin(4 * a) / (8 * a) - (np.sin(2 * a) / (2 * a)) ** 2,
            (a**2 / 3) ** 2,
            a**2 / 3 - (a / 2) ** 2,
        ]
    )
    return (raw - mean) / np.sqrt(var)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@dataclass(frozen=True)
class EnvironmentProblem:
    r"""Baxter's environment of related tasks: task :math:`t` is :math:`a_t^\top \phi(x) + \varepsilon_t`.

    :math:`\phi` = :func:`environment_features` (6 features of 10 inputs),
    :math:`a_t` a random unit vector drawn once from ``task_seed`` (so every
    task has unit signal variance). ``n_tasks`` training tasks are
    ``main, task_2, ...``; :meth:`novel_tasks` draws read-outs of tasks the
    network never sees, to measure how well a learnt representation serves
    *new* tasks from the same environment (Baxter, JAIR 12:149--198, 2000,
    arXiv 1106.0245).

    ``truth`` holds every training task's noise-free value (:meth:`clean_targets`).

    >>> problem = EnvironmentProblem(n_tasks=3, task_seed=0)
    >>> data = problem.sample(5, np.random.default_rng(1))
    >>> data.tasks, problem.coefficients.shape
    (('main', 'task_2', 'task_3'), (3, 6))
    """

    n_tasks: int = 8
    noise: float = 0.3
    task_seed: int = 0
    n_features: int = 10

    def __post_init__(self) -> None:
        if self.n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {self.n_tasks}")
        if self.n_features < 8:
            raise ValueError(f"n_features must be at least 8 (phi uses x1..x8), got {self.n_features}")

    @property
    def task_names(self) -> list[str]:
        return [MAIN, *[f"task_{t}" for t in range(2, self.n_tasks + 1)]]

    @property
    def coefficients(self) -> np.ndarray:
        """(n_tasks, 6) read-out weights :math:`a_t` of the training tasks."""
        return _unit_rows(np.random.default_rng(self.task_seed).standard_normal((self.n_tasks, 6)))

    def novel_tasks(self, n_novel: int, seed: int) -> np.ndarray:
        """(n_novel, 6) unit read-out weights of new tasks from the same environment."""
        return _unit_rows(np.random.default_rng([self.task_seed, seed, 1]).standard_normal((n_novel, 6)))

    def clean_targets(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The noise-free value of every training task at ``x``."""
        values = environment_features(x) @ self.coefficients.T
        return {name: values[:, t] for t, name in enumerate(self.task_names)}

    def sample(self, n: int, rng: np.random.Generator) -> MultiTaskData:
        _check(n, rng)
        x = rng.uniform(-1.5, 1.5, size=(n, self.n_features))
        clean = self.clean_targets(x)
        return _tasks(x, clean, {name: y + self.noise * rng.standard_normal(n) for name, y in clean.items()})


def shuffle_extra_tasks(data: MultiTaskData, rng: np.random.Generator) -> MultiTaskData:
    """Caruana's shuffle test: re-assign the extra tasks' training signals at random across the cases.

    One permutation moves the extra signals of case ``i`` (all of them
    together) to case ``pi(i)``; inputs and main targets stay put. This
    breaks the relation between the main task and the extra tasks but keeps
    the extra tasks' (joint) distribution unchanged (Caruana 1997, Section 3.1).

    >>> data = CaruanaProblem().sample(50, np.random.default_rng(0))
    >>> shuffled = shuffle_extra_tasks(data, np.random.default_rng(1))
    >>> bool(np.array_equal(shuffled.targets["main"], data.targets["main"]))
    True
    >>> bool(np.array_equal(np.sort(shuffled.targets["extra_1"], 0), np.sort(data.targets["extra_1"], 0)))
    True
    """
    order = rng.permutation(data.n)
    return data.with_targets({t: (y if t == MAIN else y[order]) for t, y in data.targets.items()})


def drop_extra_tasks(data: MultiTaskData) -> MultiTaskData:
    """Single-task learning: every extra task's signal is missing (``NaN``), the main task is kept."""
    return data.with_targets(
        {t: (y if t == MAIN else np.full_like(y, np.nan, dtype=float)) for t, y in data.targets.items()}
    )


def average_labels(data: MultiTaskData, tasks: Sequence[str] | None = None) -> MultiTaskData:
    """Single-task learning on the average of the main and the extra labels (explicit amplification).

    When the extra tasks are noisy copies of the main task's function, the
    average of ``1 + K`` labels has ``1/(1 + K)`` of the noise variance:
    this is what a perfect statistical amplification could achieve.
    """
    tasks = data.tasks if tasks is None else list(tasks)
    mean = np.mean([data.targets[t] for t in tasks], axis=0)
    single = drop_extra_tasks(data)
    return single.with_targets({**single.targets, MAIN: mean})


#: The 10 "mean" features of the Wisconsin data (inputs of the negative control).
BREAST_CANCER_MEAN = 10


def load_breast_cancer_tasks(standardize: bool = True) -> MultiTaskData:
    """Negative control: the Wisconsin diagnostic breast cancer data (569 cases, scikit-learn).

    Inputs are the 10 "mean" features of the cell nuclei (radius, texture,
    ..., fractal dimension); the main task is the diagnosis (the ``main``
    target and its ``truth``: 1 = malignant, 0 = benign); the 20 "error" and
    "worst" features are extra regression tasks, available for training
    cases only. Street, Wolberg & Mangasarian, *Nuclear feature extraction
    for breast tumor diagnosis*, Proc. SPIE 1905, 1993,
    doi:10.1117/12.148698. With ``standardize`` every column (input and
    extra target) is z-scored over the whole set (a fixed, label-free
    transform).

    >>> data = load_breast_cancer_tasks()
    >>> data.x.shape, len(extra_tasks(data)), int(data.truth["main"].sum())
    ((569, 10), 20, 212)
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    features = np.asarray(bunch.data, dtype=float)
    if standardize:
        features = (features - features.mean(0)) / features.std(0)
    malignant = (np.asarray(bunch.target) == 0).astype(float)  # scikit-learn codes malignant as 0
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    targets = {MAIN: malignant, **{names[j]: features[:, j] for j in range(BREAST_CANCER_MEAN, features.shape[1])}}
    return _tasks(features[:, :BREAST_CANCER_MEAN], {MAIN: malignant}, targets)


def pneumonia_table():
    """Caruana (1997), Table 3: error rates on the Medis pneumonia data, STL vs MTL with rankprop.

    Error rate = fraction of deaths among the patients a model ranks as the
    lowest-risk fraction of the population (FOP). 14,199 cases from 78
    hospitals (Medis Pneumonia Database, Fine et al. 1993); mean of ten runs;
    the extra MTL outputs are 35 lab results available only after admission.
    Returns a pandas DataFrame indexed by FOP with the columns ``stl``,
    ``mtl`` and ``printed_change_pct`` (the paper's "% Change" row), and the
    attribute ``significant`` (FOPs the paper marks significant at 0.05:
    0.3, 0.4, 0.5). The caption says "MTL makes 5-10% fewer errors than STL".

    Source: R. Caruana, "Multitask Learning", Machine Learning 28:41--75,
    1997, doi:10.1023/A:1007379606734, Section 2.3, Table 3 (p. 49).

    >>> pneumonia_table().loc[0.1].tolist()
    [0.0083, 0.0074, -10.8]
    """
    import pandas as pd

    table = pd.DataFrame(
        {
            "stl": [0.0083, 0.0144, 0.0210, 0.0289, 0.0386],
            "mtl": [0.0074, 0.0127, 0.0197, 0.0269, 0.0364],
            "printed_change_pct": [-10.8, -11.8, -6.2, -6.9, -5.7],
        },
        index=pd.Index([0.1, 0.2, 0.3, 0.4, 0.5], name="fop"),
    )
    table.attrs["significant"] = (0.3, 0.4, 0.5)
    return table

"""Related linear regression tasks: a seeded generator and two bundled data sets.

Lecture A1 compares separate lassos with the multi-task lasso on

* :func:`make_sparse_linear_tasks`: synthetic tasks whose true coefficients are
  known, so that support recovery can be scored;
* :func:`load_diabetes_tasks`: scikit-learn's diabetes data (Efron et al.,
  *Annals of Statistics* 32, 2004), one task;
* :func:`load_linnerud_tasks`: scikit-learn's Linnerud data (Tenenhaus, 1998),
  three physiological targets of 20 men.

All three return :class:`~mtl_course.data.tasks.MultiTaskData`: inputs ``x``
(n, p), one target vector (n,) per task, ``info["feature_names"]`` and, for
the synthetic tasks, the noise-free targets in ``truth`` and the true
coefficients (p, T) in ``info["coefficients"]``. :func:`target_matrix` gives
the targets as the matrix ``Y`` (n, T) of the lecture, :func:`random_split` a
seeded train/test split. scikit-learn is imported only inside the loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtl_course.data.tasks import MultiTaskData


def target_matrix(data: MultiTaskData) -> np.ndarray:
    """The targets as one matrix ``Y`` (n, T), a column per task in the order of ``data.tasks``.

    The estimators of :mod:`mtl_course.linear` read ``X = data.x`` (n, p) and
    this ``Y``: the one place where the per-task targets become a matrix.

    >>> target_matrix(make_sparse_linear_tasks(n_samples=5, n_features=3, n_tasks=2, n_informative=1)).shape
    (5, 2)
    """
    return np.column_stack([np.asarray(data.targets[t]) for t in data.tasks])


def random_split(data: MultiTaskData, n_train: int, seed: int = 0) -> tuple[MultiTaskData, MultiTaskData]:
    """A seeded random split into ``n_train`` training rows and the rest (``info`` is kept by both).

    >>> train, test = random_split(make_sparse_linear_tasks(n_samples=30, seed=0), 20, seed=1)
    >>> train.n, test.n
    (20, 10)
    """
    if not 0 < n_train < data.n:
        raise ValueError(f"n_train must be between 1 and {data.n - 1}, got {n_train}")
    order = np.random.default_rng(seed).permutation(data.n)
    return data.take(order[:n_train]), data.take(order[n_train:])


def _linear_tasks(
    X: np.ndarray,
    Y: np.ndarray,
    feature_names: Sequence[str],
    task_names: Sequence[str],
    signal: np.ndarray | None = None,
    coefficients: np.ndarray | None = None,
) -> MultiTaskData:
    """``X`` (n, p) and the columns of ``Y`` (and of the noise-free ``signal``) (n, T) as :class:`MultiTaskData`."""
    if len(feature_names) != X.shape[1] or len(task_names) != Y.shape[1]:
        raise ValueError(
            f"{len(feature_names)} feature names for {X.shape[1]} columns of X, "
            f"{len(task_names)} task names for {Y.shape[1]} columns of Y"
        )
    info: dict[str, Any] = {"feature_names": tuple(feature_names)}
    if coefficients is not None:
        info["coefficients"] = coefficients
    return MultiTaskData(
        X,
        {t: Y[:, k] for k, t in enumerate(task_names)},
        truth=None if signal is None else {t: signal[:, k] for k, t in enumerate(task_names)},
        info=info,
    )


def make_sparse_linear_tasks(
    n_samples: int = 100,
    n_features: int = 50,
    n_tasks: int = 4,
    n_informative: int = 5,
    shared_support: bool = True,
    noise: float = 1.0,
    seed: int = 0,
) -> MultiTaskData:
    r"""``n_tasks`` linear regression tasks on the same Gaussian inputs, with sparse true coefficients.

    :math:`X_{ij} \sim N(0, 1)` and :math:`Y = XB + \sigma E` with
    :math:`E_{it} \sim N(0, 1)`. Each task has ``n_informative`` non-zero
    coefficients of random sign and magnitude in [0.5, 1.5].

    *Stands in for* several clinical outcomes of the same patients (e.g.
    scores of one disease) predicted from many candidate measurements
    (biomarkers, image-derived features) of which few matter. With
    ``shared_support=True`` the same measurements drive every outcome (the
    multi-task lasso's assumption: the tasks are related through *which*
    features matter, not through equal coefficients); with ``False`` each
    task draws its own informative features (the assumption fails).

    The tasks are named ``task 0``, ``task 1``, ...; ``truth`` holds
    :math:`XB` per task and ``info["coefficients"]`` the matrix :math:`B`
    (p, T).

    >>> data = make_sparse_linear_tasks(n_samples=20, n_features=8, n_tasks=3, n_informative=2, seed=0)
    >>> support = data.info["coefficients"] != 0
    >>> data.x.shape, target_matrix(data).shape, support.sum(axis=0).tolist()
    ((20, 8), (20, 3), [2, 2, 2])
    >>> bool((support == support[:, :1]).all())  # the same rows for every task
    True
    """
    if not 0 < n_informative <= n_features:
        raise ValueError(f"n_informative must be in 1..n_features={n_features}, got {n_informative}")
    if n_samples < 1 or n_tasks < 1 or noise < 0:
        raise ValueError(f"need n_samples >= 1, n_tasks >= 1, noise >= 0; got {n_samples}, {n_tasks}, {noise}")
    rng = np.random.default_rng(seed)
    coef = np.zeros((n_features, n_tasks))
    shared = rng.choice(n_features, n_informative, replace=False)
    for t in range(n_tasks):
        rows = shared if shared_support else rng.choice(n_features, n_informative, replace=False)
        coef[rows, t] = rng.choice([-1.0, 1.0], n_informative) * rng.uniform(0.5, 1.5, n_informative)
    X = rng.standard_normal((n_samples, n_features))
    signal = X @ coef
    Y = signal + noise * rng.standard_normal((n_samples, n_tasks))
    return _linear_tasks(
        X,
        Y,
        [f"x{j}" for j in range(n_features)],
        [f"task {t}" for t in range(n_tasks)],
        signal=signal,
        coefficients=coef,
    )


def load_diabetes_tasks() -> MultiTaskData:
    """scikit-learn's diabetes data: 442 patients, 10 baseline variables, one task.

    The target is a quantitative measure of disease progression one year
    after baseline; the inputs (age, sex, body-mass index ``bmi``, mean blood
    pressure ``bp`` and six blood serum measurements ``s1``..``s6``) are
    mean-centred and scaled by scikit-learn so that each column has unit
    Euclidean norm. Efron, Hastie, Johnstone & Tibshirani, "Least angle
    regression", *Annals of Statistics* 32(2), 2004, doi:10.1214/009053604000000067.

    >>> data = load_diabetes_tasks()
    >>> data.x.shape, data.info["feature_names"][:4], data.tasks
    ((442, 10), ('age', 'sex', 'bmi', 'bp'), ('progression',))
    """
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return _linear_tasks(bunch.data, bunch.target[:, None], bunch.feature_names, ["progression"])


def load_linnerud_tasks() -> MultiTaskData:
    """scikit-learn's Linnerud data: 20 middle-aged men, 3 exercises → 3 physiological targets.

    Inputs: chin-ups, sit-ups and jumps; tasks: weight (lb), waist (in) and
    resting pulse (beats/min). Tenenhaus, *La régression PLS*, Technip, 1998.
    With n = 20 and three inputs, any comparison of estimators on it is noisy;
    use leave-one-out cross-validation and read differences with care.

    >>> data = load_linnerud_tasks()
    >>> data.x.shape, data.tasks
    ((20, 3), ('Weight', 'Waist', 'Pulse'))
    """
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    return _linear_tasks(bunch.data, bunch.target, bunch.feature_names, bunch.target_names)

"""Related linear regression tasks: a seeded generator and two bundled data sets.

Lecture A1 compares separate lassos with the multi-task lasso on

* :func:`make_sparse_linear_tasks`: synthetic tasks whose true coefficients are
  known, so that support recovery can be scored;
* :func:`load_diabetes_tasks`: scikit-learn's diabetes data (Efron et al.,
  *Annals of Statistics* 32, 2004), one task;
* :func:`load_linnerud_tasks`: scikit-learn's Linnerud data (Tenenhaus, 1998),
  three physiological targets of 20 men.

All three return a :class:`LinearTasks`; :meth:`LinearTasks.split` makes a
seeded train/test split. scikit-learn is imported only inside the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearTasks:
    """Inputs ``X`` (n, p) shared by ``T`` regression tasks with targets ``Y`` (n, T).

    ``coef`` (p, T) holds the true coefficients when the data are synthetic
    (``None`` for real data).
    """

    X: np.ndarray
    Y: np.ndarray
    feature_names: tuple[str, ...]
    task_names: tuple[str, ...]
    coef: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.Y.ndim != 2 or self.X.shape[0] != self.Y.shape[0]:
            raise ValueError(f"need X (n, p) and Y (n, T) with the same n, got {self.X.shape} and {self.Y.shape}")
        if len(self.feature_names) != self.X.shape[1] or len(self.task_names) != self.Y.shape[1]:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {self.X.shape[1]} columns of X, "
                f"{len(self.task_names)} task names for {self.Y.shape[1]} columns of Y"
            )

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def y(self) -> np.ndarray:
        """The target vector (n,) of a single-task data set."""
        if self.Y.shape[1] != 1:
            raise ValueError(f"y is defined for one task; this data set has tasks {list(self.task_names)}")
        return self.Y[:, 0]

    @property
    def support(self) -> np.ndarray:
        """Boolean (p, T) mask of the truly non-zero coefficients (synthetic data only)."""
        if self.coef is None:
            raise ValueError("the true support is known only for synthetic data (coef is None)")
        return self.coef != 0

    def split(self, n_train: int, seed: int = 0) -> tuple[LinearTasks, LinearTasks]:
        """A seeded random split into ``n_train`` training rows and the rest.

        >>> train, test = make_sparse_linear_tasks(n_samples=30, seed=0).split(20, seed=1)
        >>> train.n_samples, test.n_samples
        (20, 10)
        """
        if not 0 < n_train < self.n_samples:
            raise ValueError(f"n_train must be between 1 and {self.n_samples - 1}, got {n_train}")
        order = np.random.default_rng(seed).permutation(self.n_samples)
        parts = order[:n_train], order[n_train:]
        return tuple(  # type: ignore[return-value]
            LinearTasks(self.X[rows], self.Y[rows], self.feature_names, self.task_names, self.coef) for rows in parts
        )


def make_sparse_linear_tasks(
    n_samples: int = 100,
    n_features: int = 50,
    n_tasks: int = 4,
    n_informative: int = 5,
    shared_support: bool = True,
    noise: float = 1.0,
    seed: int = 0,
) -> LinearTasks:
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

    >>> data = make_sparse_linear_tasks(n_samples=20, n_features=8, n_tasks=3, n_informative=2, seed=0)
    >>> data.X.shape, data.Y.shape, data.support.sum(axis=0).tolist()
    ((20, 8), (20, 3), [2, 2, 2])
    >>> bool((data.support == data.support[:, :1]).all())  # the same rows for every task
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
    Y = X @ coef + noise * rng.standard_normal((n_samples, n_tasks))
    return LinearTasks(
        X=X,
        Y=Y,
        feature_names=tuple(f"x{j}" for j in range(n_features)),
        task_names=tuple(f"task {t}" for t in range(n_tasks)),
        coef=coef,
    )


def load_diabetes_tasks() -> LinearTasks:
    """scikit-learn's diabetes data: 442 patients, 10 baseline variables, one task.

    The target is a quantitative measure of disease progression one year
    after baseline; the inputs (age, sex, body-mass index ``bmi``, mean blood
    pressure ``bp`` and six blood serum measurements ``s1``..``s6``) are
    mean-centred and scaled by scikit-learn so that each column has unit
    Euclidean norm. Efron, Hastie, Johnstone & Tibshirani, "Least angle
    regression", *Annals of Statistics* 32(2), 2004, doi:10.1214/009053604000000067.

    >>> data = load_diabetes_tasks()
    >>> data.X.shape, data.feature_names[:4], data.task_names
    ((442, 10), ('age', 'sex', 'bmi', 'bp'), ('progression',))
    """
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return LinearTasks(bunch.data, bunch.target[:, None], tuple(bunch.feature_names), ("progression",))


def load_linnerud_tasks() -> LinearTasks:
    """scikit-learn's Linnerud data: 20 middle-aged men, 3 exercises → 3 physiological targets.

    Inputs: chin-ups, sit-ups and jumps; tasks: weight (lb), waist (in) and
    resting pulse (beats/min). Tenenhaus, *La régression PLS*, Technip, 1998.
    With n = 20 and three inputs, any comparison of estimators on it is noisy;
    use leave-one-out cross-validation and read differences with care.

    >>> data = load_linnerud_tasks()
    >>> data.X.shape, data.task_names
    ((20, 3), ('Weight', 'Waist', 'Pulse'))
    """
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    return LinearTasks(bunch.data, bunch.target, tuple(bunch.feature_names), tuple(bunch.target_names))

r"""Linear regression tasks whose weight vectors have a known task correlation (lecture B10).

Task :math:`t` is :math:`y_t = x^\top w_t + \sigma\varepsilon` with
:math:`x \sim \mathcal N(0, I_d)`. The weights of all tasks form a matrix
:math:`W \in \mathbb R^{d \times T}` drawn from the matrix-normal
distribution that Multilinear Relationship Networks assume (Long et al., NIPS
2017, arXiv 1506.02117):

.. math::

    \operatorname{vec}(W) \sim \mathcal N\big(0,\ I_d / d \otimes C\big),
    \qquad\text{i.e. every row of } W \sim \mathcal N(0, C/d),

so the correlation of two tasks' weights is :math:`C_{st}` in expectation
(the realised weights, only :math:`d` rows, scatter around it), and every
task has signal variance about 1. The default :math:`C`
(:func:`relationship_correlation`) has a correlated block (A, B, C:
:math:`+0.8`), an anti-correlated pair (D, E: :math:`-0.8`) and an
unrelated task (F); task C is data-starved.

*Stands in for* several clinical outcomes predicted from the same imaging or
lab features, some driven by the same factors (a block), some in opposition
(a marker that raises one risk and lowers another), some unrelated, and one
outcome recorded for few patients. It keeps what the paper's prior can
exploit -- correlated task weights -- and leaves out everything deep: the
features are given, not learned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.teachers import TrainTest, _data, _one_label_per_case

#: The tasks of the default problem: a correlated block, an anti-correlated pair, an unrelated task.
RELATIONSHIP_TASKS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F")
#: Labelled training cases per task by default: task C is data-starved.
RELATIONSHIP_SAMPLES: tuple[int, ...] = (60, 60, 8, 60, 60, 60)


def relationship_correlation(block: float = 0.8, pair: float = -0.8) -> np.ndarray:
    """The default true task correlation: ``block`` within A, B, C; ``pair`` between D and E; F unrelated.

    >>> relationship_correlation()[[0, 3, 5], :].round(1).tolist()
    [[1.0, 0.8, 0.8, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, -0.8, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]
    """
    if not (-0.5 < block < 1 and -1 < pair < 1):  # the 3 x 3 block is positive definite for block in (-1/2, 1)
        raise ValueError(f"need block in (-0.5, 1) and pair in (-1, 1) for a valid correlation, got {block}, {pair}")
    C = np.eye(6)
    C[:3, :3] = np.where(np.eye(3, dtype=bool), 1.0, block)
    C[3, 4] = C[4, 3] = pair
    return C


def _check_correlation(correlation: np.ndarray, n_tasks: int) -> np.ndarray:
    C = np.asarray(correlation, dtype=float)
    if C.shape != (n_tasks, n_tasks):
        raise ValueError(f"the task correlation must be ({n_tasks}, {n_tasks}) for {n_tasks} tasks, got {C.shape}")
    if not np.all(np.isfinite(C)) or not np.allclose(C, C.T) or not np.allclose(np.diag(C), 1.0):
        raise ValueError("the task correlation must be finite and symmetric with ones on the diagonal")
    smallest = np.linalg.eigvalsh(C).min()
    if smallest <= 0:
        raise ValueError(f"the task correlation must be positive definite; its smallest eigenvalue is {smallest:.3g}")
    return C


def make_relationship_tasks(
    n_samples: Sequence[int] = RELATIONSHIP_SAMPLES,
    correlation: np.ndarray | None = None,
    n_features: int = 20,
    noise: float = 0.5,
    n_test: int = 1000,
    seed: int = 0,
    tasks: Sequence[str] = RELATIONSHIP_TASKS,
) -> TrainTest:
    r"""A training set (task ``t`` labels ``n_samples[t]`` cases of its own, ``NaN`` elsewhere) and a test set.

    Every test case is labelled for every task with the noise-free target
    (a test MSE is the error against the function; the noise floor of a
    training MSE is :math:`\sigma^2`). ``info`` holds ``correlation``
    (:math:`C`), ``weights`` (:math:`W`, ``(d, T)``) and ``noise``.

    >>> train, test = make_relationship_tasks(seed=0)
    >>> train.x.shape, train.n_labelled()["C"], test.n_labelled()["C"]
    ((308, 20), 8, 1000)
    >>> W = train.info["weights"]; (W ** 2).sum(0).round(1).tolist()  # signal variance per task, 1 on average
    [1.4, 1.4, 1.4, 1.2, 1.0, 0.8]
    """
    tasks = tuple(tasks)
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"task names must be unique, got {list(tasks)}")
    n_samples = [int(n) for n in n_samples]
    if len(n_samples) != len(tasks) or any(n < 1 for n in n_samples):
        raise ValueError(f"need one positive sample count per task {list(tasks)}, got {n_samples}")
    if n_features < 1 or n_test < 1:
        raise ValueError(f"need n_features >= 1 and n_test >= 1, got {n_features}, {n_test}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    C = _check_correlation(relationship_correlation() if correlation is None else correlation, len(tasks))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_features, len(tasks))) @ np.linalg.cholesky(C).T / np.sqrt(n_features)
    info = {"correlation": C, "weights": W, "noise": float(noise)}

    X = rng.standard_normal((sum(n_samples), n_features))
    signal = X @ W
    noisy = signal + noise * rng.standard_normal(signal.shape)
    train = _data(X, _one_label_per_case(noisy, n_samples), signal, tasks, info)
    X_test = rng.standard_normal((n_test, n_features))
    return TrainTest(train, _data(X_test, X_test @ W, X_test @ W, tasks, info))


def weight_correlation(data: MultiTaskData) -> np.ndarray:
    """The correlation of the realised true weights across their ``d`` features (:math:`C` scatters around it).

    >>> train, _ = make_relationship_tasks(n_features=2000, seed=0)
    >>> round(float(weight_correlation(train)[0, 1]), 1), round(float(weight_correlation(train)[3, 4]), 1)
    (0.8, -0.8)
    """
    if "weights" not in data.info:
        raise KeyError(f"the data carry no true weights (info has {list(data.info)}); use make_relationship_tasks")
    W = data.info["weights"]
    second_moment = W.T @ W  # zero-mean prior: the uncentred correlation, like the prior's
    sd = np.sqrt(np.diag(second_moment))
    return second_moment / np.outer(sd, sd)

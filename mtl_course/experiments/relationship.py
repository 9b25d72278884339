r"""Multilinear Relationship Networks against independent training and a wrong fixed prior (lecture B10).

Three conditions train the same linear model,
:class:`~mtl_course.models.relationship.MultilinearRelationshipNetwork`
without a trunk, on :func:`~mtl_course.data.task_relationship.make_relationship_tasks`,
with the same penalty weight :math:`\lambda` on the same tensor-normal prior;
only the task covariance :math:`\Sigma_3` differs:

* ``STL`` -- :math:`\Sigma_3 = I` fixed: :math:`-\ln p` is
  :math:`\tfrac12\lVert\mathcal W\rVert^2` plus a constant, an independent
  ridge penalty per task (the sceptic's baseline: equal capacity, equal
  regularisation, no transfer);
* ``MRN`` -- :math:`\Sigma_3` re-estimated by flip-flop after every step
  (trace fixed to :math:`T`), the official code's variant (task covariance
  only; feature and class covariances stay :math:`I`);
* ``ALIKE`` -- :math:`\Sigma_3` fixed to "all tasks alike" (every
  correlation :math:`+\rho`): the prior a hard- or mean-sharing model
  assumes, wrong for the anti-correlated and the unrelated tasks;
* ``MRN_FULL`` (not in :data:`CONDITIONS`; pass it in ``conditions``) --
  the paper's full flip-flop: feature, class and task covariance learned.

The test MSE is measured against the noise-free targets, after a fixed
number of full-batch Adam epochs (no validation set, no early stopping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mtl_course.data.task_relationship import RELATIONSHIP_SAMPLES, make_relationship_tasks
from mtl_course.experiments.engine import ExperimentResult, Run, train_each
from mtl_course.experiments.labels import STL
from mtl_course.losses import mse_loss
from mtl_course.models.relationship import MultilinearRelationshipNetwork
from mtl_course.models.tensor_normal import correlation
from mtl_course.train import Task

#: The learned task covariance (flip-flop), the official code's variant.
MRN = "MRN"
#: A fixed prior that takes every pair of tasks to be alike.
ALIKE = "all alike"
#: The paper's full flip-flop: feature, class and task covariance learned.
MRN_FULL = "MRN, all three"
CONDITIONS: tuple[str, ...] = (STL, MRN, ALIKE)


def alike_covariance(n_tasks: int, rho: float = 0.8) -> torch.Tensor:
    """The "all tasks alike" task covariance: ones on the diagonal, ``rho`` everywhere else.

    >>> alike_covariance(3, 0.5)
    tensor([[1.0000, 0.5000, 0.5000],
            [0.5000, 1.0000, 0.5000],
            [0.5000, 0.5000, 1.0000]])
    """
    if n_tasks < 2:
        raise ValueError(f"an equicorrelation needs at least 2 tasks, got {n_tasks}")
    if not -1 / (n_tasks - 1) < rho < 1:
        raise ValueError(
            f"an equicorrelation of {n_tasks} tasks is positive definite for rho in "
            f"({-1 / (n_tasks - 1):.3g}, 1), got {rho}"
        )
    return torch.full((n_tasks, n_tasks), float(rho)).fill_diagonal_(1.0)


def build_model(
    condition: str, n_features: int, tasks: Sequence[str], eps: float = 1e-3
) -> MultilinearRelationshipNetwork:
    """The linear model of a condition (:data:`CONDITIONS` or :data:`MRN_FULL`): the same weights, another prior."""
    outputs = dict.fromkeys(tasks, 1)
    if condition == STL:
        return MultilinearRelationshipNetwork.mlp(n_features, [], outputs, update_every=0)
    if condition == MRN:
        return MultilinearRelationshipNetwork.mlp(n_features, [], outputs, update=("task",), eps=eps)
    if condition == MRN_FULL:
        return MultilinearRelationshipNetwork.mlp(n_features, [], outputs, update=("feature", "class", "task"), eps=eps)
    if condition == ALIKE:
        return MultilinearRelationshipNetwork.mlp(
            n_features, [], outputs, task_covariance=alike_covariance(len(tasks)), update_every=0
        )
    raise ValueError(f"unknown condition {condition!r}; choose one of {[*CONDITIONS, MRN_FULL]}")


def structure_recovery(learned: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation between the off-diagonal entries of two task correlation matrices.

    >>> C = np.array([[1.0, 0.8, -0.5], [0.8, 1.0, 0.0], [-0.5, 0.0, 1.0]])
    >>> structure_recovery(C, C), round(structure_recovery(C, -C + 2 * np.eye(3)), 6)
    (1.0, -1.0)
    """
    learned, true = np.asarray(learned, dtype=float), np.asarray(true, dtype=float)
    if learned.shape != true.shape or learned.ndim != 2 or learned.shape[0] != learned.shape[1]:
        raise ValueError(f"need two square matrices of one shape, got {learned.shape} and {true.shape}")
    if not (np.isfinite(learned).all() and np.isfinite(true).all()):
        raise ValueError("the task correlation matrices contain NaN or infinite entries")
    if learned.shape[0] < 3:
        raise ValueError("need at least 3 tasks (3 off-diagonal pairs) for a correlation of the pairs")
    upper = np.triu_indices(learned.shape[0], k=1)
    return float(np.corrcoef(learned[upper], true[upper])[0, 1])


def map_penalty(noise: float, n_features: int, n_labelled: int) -> float:
    r"""The penalty weight that makes ``sum_t mse_t + lam * (-ln p(W))`` the MAP objective: :math:`2\sigma^2 d / n`.

    The data's weights have prior covariance :math:`(I_d / d) \otimes C`,
    the model's prior :math:`I_d \otimes \Sigma_3` with
    :math:`\operatorname{tr}\Sigma_3 = T`, so the true precision is
    :math:`d` times the model's. The negative log-posterior
    :math:`\sum_t \frac{n}{2\sigma^2}\,\mathrm{mse}_t + \frac d2\, q(\mathcal W)`
    divided by :math:`n / (2\sigma^2)` is :math:`\sum_t \mathrm{mse}_t + \lambda \cdot \tfrac12 q`
    with :math:`\lambda = 2\sigma^2 d / n` (for tasks of :math:`n` labelled cases each).

    >>> round(map_penalty(noise=0.5, n_features=20, n_labelled=60), 4)
    0.1667
    """
    if not (noise > 0 and n_features >= 1 and n_labelled >= 1):
        raise ValueError(f"need noise > 0, n_features >= 1, n_labelled >= 1; got {noise}, {n_features}, {n_labelled}")
    return 2 * noise**2 * n_features / n_labelled


def run_relationship(
    seeds: Sequence[int],
    *,
    n_samples: Sequence[int] = RELATIONSHIP_SAMPLES,
    n_features: int = 20,
    noise: float = 0.5,
    epochs: int = 300,
    lr: float = 0.05,
    penalty: float | None = None,
    conditions: Sequence[str] = CONDITIONS,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train every condition on every seed's data (the seed draws the data and the initial weights).

    ``summary`` gets, per MRN run, ``recovery``: :func:`structure_recovery` of
    the final learned task correlation against the true :math:`C` (``NaN`` for the fixed priors);
    ``records`` hold the task covariance after every epoch (epoch 0: before).
    ``penalty`` defaults to :func:`map_penalty` for the most common sample size.
    """
    if len(seeds) == 0:
        raise ValueError("run_relationship needs at least one seed, got none")
    if penalty is None:
        penalty = map_penalty(noise, n_features, int(np.median(n_samples)))
    runs = []
    for seed in seeds:
        train, test = make_relationship_tasks(n_samples, n_features=n_features, noise=noise, seed=seed)
        runs += [Run(c, seed, train, None, test) for c in conditions]
    tasks = [Task(t, mse_loss) for t in runs[0].train.tasks]
    result = train_each(
        runs,
        lambda run: build_model(run.condition, n_features, run.train.tasks),
        tasks,
        epochs=epochs,
        lr=lr,
        penalty=penalty,
        record=lambda model: model.task_covariance.detach().cpu().numpy().copy(),
        measure_every=epochs,
        device=device,
    )
    result.summary["recovery"] = [
        structure_recovery(correlation(torch.as_tensor(r[-1])).numpy(), run.train.info["correlation"])
        if run.condition in (MRN, MRN_FULL)
        else np.nan  # a fixed prior recovers nothing
        for run, r in zip(result.runs, result.records, strict=True)
    ]
    return result


def per_task_table(result: ExperimentResult) -> pd.DataFrame:
    """Long table ``condition, seed, task, test`` (test MSE against the noise-free targets)."""
    tasks = result.runs[0].train.tasks
    rows = [
        {"condition": row.condition, "seed": row.seed, "task": t, "test": row[f"test_{t}"]}
        for _, row in result.summary.iterrows()
        for t in tasks
    ]
    return pd.DataFrame(rows)

r"""Hard versus soft parameter sharing, swept over relatedness, data size and penalty (lecture A3).

Three ways to train two (or more) tasks with multilayer perceptrons:

* **STL** -- one independent network per task
  (:class:`~mtl_course.models.SingleTask`);
* **hard sharing** -- one trunk for all tasks, one head per task
  (:class:`~mtl_course.models.HardSharing`; Caruana, Machine Learning 28,
  1997, doi:10.1023/A:1007379606734);
* **soft sharing** -- one column per task plus the penalty
  :math:`\lambda\,\Omega` on the distance between the columns
  (:class:`~mtl_course.models.SoftSharing`; squared L2 after Duong, Cohn,
  Bird & Cook, ACL 2015, doi:10.3115/v1/P15-2139; trace norm after Yang &
  Hospedales, ICLR 2017 workshop, arXiv 1606.04038). The objective is

  .. math::

      \sum_t \mathcal L_t(\theta_t, \phi_t) + \lambda\, \Omega(\theta_1, \dots, \theta_T),
      \qquad \Omega_{\ell_2} = \sum_{i<j} \lVert \theta_i - \theta_j \rVert_2^2 ,

  with columns :math:`\theta_t` and (unpenalised) heads :math:`\phi_t`.
  :math:`\lambda = 0` is STL; as :math:`\lambda \to \infty` the columns are
  forced equal, which is hard sharing of the whole column.

:func:`column_distance` measures how far apart the columns are,
:func:`sharing_sweep` runs the lecture's experiment: one
:class:`~mtl_course.experiments.engine.Run` per (method, :math:`\rho`,
:math:`n`, seed) on the tasks of
:func:`~mtl_course.data.teachers.make_related_tasks` (:math:`\rho` is the
correlation of the task *functions*), trained all at once by
:func:`~mtl_course.experiments.engine.train_replicated` as the replicas of a
:class:`~mtl_course.experiments.replicate.ReplicatedColumns` (each with its
own columns, heads, penalty strength :math:`\lambda_r`, data and seed; a
hard-sharing replica runs task 1's column for every task).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mtl_course.data.teachers import make_related_tasks
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_replicated
from mtl_course.experiments.labels import HARD, STL, soft
from mtl_course.experiments.replicate import ReplicatedColumns, replica_mse_loss
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.soft_sharing import SoftSharing, squared_l2_penalty, stacked_parameters
from mtl_course.train import Task


# -- distance between the task networks -------------------------------------------------
def column_distance(columns: Mapping[str, nn.Module] | SoftSharing, relative: bool = True) -> float:
    r"""How far apart the task columns are.

    Absolute: :math:`\sqrt{\Omega_{\ell_2}} = \big(\sum_{i<j}\lVert\theta_i - \theta_j\rVert_2^2\big)^{1/2}`
    over all column parameters (:func:`~mtl_course.models.squared_l2_penalty`).
    Relative (default): divided by :math:`\big((T-1)\sum_t \lVert\theta_t\rVert_2^2\big)^{1/2}`,
    which is 0 for identical columns and close to 1 for independently
    initialised ones; for :math:`T = 2`:
    :math:`\lVert\theta_1-\theta_2\rVert / \sqrt{\lVert\theta_1\rVert^2 + \lVert\theta_2\rVert^2}`.

    >>> cols = {"a": nn.Linear(1, 1, bias=False), "b": nn.Linear(1, 1, bias=False)}
    >>> with torch.no_grad():
    ...     _ = cols["a"].weight.fill_(3.0), cols["b"].weight.fill_(4.0)
    >>> column_distance(cols, relative=False), column_distance(cols)  # |3 - 4|, 1 / 5
    (1.0, 0.2)
    """
    if isinstance(columns, SoftSharing):
        columns = columns.columns
    with torch.no_grad():
        absolute = float(squared_l2_penalty(columns)) ** 0.5
        if not relative:
            return absolute
        stacked = stacked_parameters(columns)
        T = next(iter(stacked.values())).shape[0]
        norm2 = sum(float(w.detach().cpu().double().pow(2).sum()) for w in stacked.values())
    return absolute / math.sqrt((T - 1) * norm2) if norm2 > 0 else 0.0


# -- the sweep ----------------------------------------------------------------------------------
def method_label(method: str, lam: float) -> str:
    """The condition name of a method (:mod:`mtl_course.experiments.labels`): ``"STL"``, ``"hard"`` or ``"soft λ=…"``.

    >>> method_label("stl", 0.0), method_label("hard", float("nan")), method_label("soft", 0.01)
    ('STL', 'hard', 'soft λ=0.01')
    """
    if method not in ("stl", "soft", "hard"):
        raise ValueError(f"method must be 'stl', 'soft' or 'hard', got {method!r}")
    return {"stl": STL, "hard": HARD}.get(method) or soft(lam)


def _parameters(hidden: Sequence[int], d: int, tasks: Mapping[str, int], method: str) -> int:
    with torch.random.fork_rng(devices=[]):
        if method == "hard":
            return HardSharing.mlp(d, hidden, tasks).parameter_counts()["total"]
        return SoftSharing.mlp(d, hidden, tasks).parameter_counts()["total"]


def _runs(
    n: int, rhos: Sequence[float], methods: Sequence[tuple[str, float]], seeds: Sequence[int], n_test: int, data_kwargs
) -> list[Run]:
    """One run per (seed, rho, method) at training-set size ``n``; the methods of a (seed, rho) share their data."""
    runs = []
    for seed in seeds:
        for rho in rhos:
            train, val, test = make_related_tasks(int(n), float(rho), int(seed), n_test=n_test, **data_kwargs)
            for method, lam in methods:
                info = {"method": method, "lam": lam, "rho": float(rho), "n_train": int(n)}
                runs.append(Run(method_label(method, lam), int(seed), train, val, test, info))
    return runs


def sharing_sweep(
    rhos: Sequence[float],
    n_train: int | Sequence[int],
    lams: Sequence[float],
    seeds: Sequence[int],
    *,
    hard: bool = True,
    hidden: Sequence[int] = (16, 8),
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 10,
    n_test: int = 300,
    penalty: str = "l2",
    data_kwargs: Mapping[str, object] | None = None,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    r"""Train STL, soft sharing and hard sharing on related tasks; one run per (method, :math:`\rho`, :math:`n`, seed).

    ``lams`` are the penalty strengths (``0`` is STL); ``hard=True`` adds
    hard sharing. Data come from
    :func:`~mtl_course.data.teachers.make_related_tasks` (``data_kwargs``
    go there; validation sets have ``n_train`` cases per task, test sets
    ``n_test`` shared cases with noise-free targets). Every run of one seed
    starts from the same weights; every run of one (seed, :math:`\rho`, :math:`n`)
    sees the same data. Full-batch Adam (``lr``) for ``steps`` steps, with
    equal task weights, the penalty :math:`\lambda\,\Omega` of each
    replica, and the engine's measurements every ``eval_every`` steps (the
    best epoch has the lowest validation MSE summed over the tasks). One
    :func:`~mtl_course.experiments.engine.train_replicated` call per
    training-set size.

    The summary has, besides the engine's columns (``condition`` is the
    label: ``"STL"``, ``"soft λ=…"``, ``"hard"``), ``method`` (``"stl"``,
    ``"soft"``, ``"hard"``), ``lam`` (``NaN`` for hard sharing), ``rho``,
    ``n_train``, ``parameters`` of one such model, ``distance`` (the relative
    column distance at the best epoch) and ``final_distance``; the curves
    gain ``distance`` too.
    """
    if steps % eval_every:
        raise ValueError(f"steps ({steps}) must be a multiple of eval_every ({eval_every})")
    if not rhos or not lams and not hard or not seeds:
        raise ValueError("need at least one rho, one seed and one method (a lam or hard=True)")
    sizes = [n_train] if isinstance(n_train, (int, np.integer)) else list(n_train)
    methods = [("stl" if lam == 0 else "soft", float(lam)) for lam in lams] + ([("hard", math.nan)] if hard else [])
    parts = []
    for n in sizes:
        runs = _runs(int(n), rhos, methods, seeds, n_test, dict(data_kwargs or {}))
        d, outputs = runs[0].train.x.shape[1], dict.fromkeys(runs[0].train.tasks, 1)

        def build(runs: Sequence[Run], d=d, outputs=outputs) -> ReplicatedColumns:
            lams_ = [0.0 if r.info["method"] == "hard" else r.info["lam"] for r in runs]
            hard_ = [r.info["method"] == "hard" for r in runs]
            return ReplicatedColumns.from_seeds(d, hidden, outputs, [r.seed for r in runs], lams_, hard_, penalty)

        part = train_replicated(
            runs,
            build,
            [Task(t, replica_mse_loss) for t in outputs],
            epochs=steps // eval_every,
            lr=lr,
            steps_per_epoch=eval_every,
            penalty=1.0,
            record=lambda stack: stack.distances().cpu().numpy(),
            device=device,
        )
        params = {m: _parameters(hidden, d, outputs, m) for m in ("stl", "soft", "hard")}
        part.summary["parameters"] = [params[r.info["method"]] for r in runs]
        parts.append(part)
    return _with_distances(concat_results(parts))


def _with_distances(result: ExperimentResult) -> ExperimentResult:
    """Add the recorded column distances to the summary (at the best epoch, and final) and to the curves."""
    distances = np.array(result.records, dtype=float)  # (runs, epochs + 1)
    best = result.summary["best_epoch"].to_numpy()
    result.summary["distance"] = distances[np.arange(len(best)), best]
    result.summary["final_distance"] = distances[:, -1]
    keys = np.stack([result.curves["run"].to_numpy(), result.curves["epoch"].to_numpy()])
    result.curves["distance"] = distances[keys[0], keys[1]]
    return result

r"""UberNet's training on partially labelled data, and its memory trade: the experiments of lecture B8.

Kokkinos, "UberNet: Training a 'Universal' Convolutional Neural Network for
Low-, Mid-, and High-Level Vision using Diverse Datasets and Limited Memory",
CVPR 2017, arXiv 1609.02132.

**The recipe** (:func:`run_ubernet`). On
:func:`~mtl_course.data.partial_digits.make_partial_digits` (each training
image labelled for one task of ``digit``, ``parity``, ``ink``; a fully
labelled test set), every run trains one model with
:func:`~mtl_course.experiments.engine.train_each`: Adam, shuffled
mini-batches, the equal weighting (the plain sum of the task losses), no
validation set (the weights after the last epoch are scored), and on the
test set the accuracy of ``digit`` and ``parity`` and the Dice of ``ink``
(``test_<task>`` in the summary). Three conditions per label split and seed,
on the same data and initial random state:

* :data:`LABELLED_MEAN` -- one :func:`~mtl_course.models.ubernet.ubernet` on
  the union of the partially labelled sets, each task's loss averaged over
  its labelled items (the course's masked losses, UberNet's
  :math:`\delta_{t,i}`);
* :data:`BATCH_MEAN` -- the same network, each task's loss averaged over the
  whole batch (:class:`~mtl_course.losses.BatchMean`): task :math:`t` weighted
  by its labelled share :math:`n_t / B` of the batch;
* :data:`~mtl_course.experiments.labels.STL` -- one network of the same
  architecture per task (:func:`~mtl_course.models.ubernet.ubernet_single_task`),
  each trained only on its own labels.

**The memory trade** (:func:`saved_activation_bytes`, :func:`memory_profile`):
the bytes of activations a forward pass keeps for the backward pass, with
and without :class:`~mtl_course.models.ubernet.Checkpointed` task heads, as
the number of heads grows, and the time of one training step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import pandas as pd
import torch

from mtl_course.data.partial_digits import make_partial_digits
from mtl_course.device import get_device
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.experiments.labels import STL
from mtl_course.losses import BatchMean, cross_entropy
from mtl_course.metrics import accuracy, dice
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.ubernet import ubernet, ubernet_single_task
from mtl_course.train import Task

#: One network, each task's loss averaged over its labelled items (UberNet's masked loss).
LABELLED_MEAN = "UberNet, labelled mean"
#: One network, each task's loss averaged over the whole batch.
BATCH_MEAN = "UberNet, batch mean"
#: The conditions of lecture B8, in the order of its tables.
CONDITIONS: tuple[str, ...] = (LABELLED_MEAN, BATCH_MEAN, STL)
#: The tasks and their numbers of outputs; ``ink`` is dense (two classes per pixel).
OUTPUTS = {"digit": 10, "parity": 2, "ink": 2}
DENSE = ("ink",)


def ubernet_tasks(average: str = "labelled") -> list[Task]:
    """The three tasks with the masked cross-entropy averaged over the ``"labelled"`` items or the ``"batch"``.

    Each task has one metric, ``score``: the accuracy for ``digit`` and
    ``parity``, the Dice of the ink class for ``ink``.

    >>> [repr(t.loss) for t in ubernet_tasks("batch")][0]
    'BatchMean(cross_entropy)'
    """
    if average not in ("labelled", "batch"):
        raise ValueError(f"average must be 'labelled' or 'batch', got {average!r}")
    loss = cross_entropy if average == "labelled" else BatchMean(cross_entropy)
    return [Task(t, loss, {"score": dice if t in DENSE else accuracy}) for t in OUTPUTS]


def build_model(condition: str, channels: Sequence[int] = (16, 16, 16), hidden: int = 8) -> MultiTaskModel:
    """A freshly initialised model of ``condition`` (one of :data:`CONDITIONS`).

    >>> build_model(STL).parameter_counts()["total"] > build_model(LABELLED_MEAN).parameter_counts()["total"]
    True
    """
    if condition in (LABELLED_MEAN, BATCH_MEAN):
        return ubernet(1, list(channels), OUTPUTS, DENSE, hidden)
    if condition == STL:
        return ubernet_single_task(1, list(channels), OUTPUTS, DENSE, hidden)
    raise ValueError(f"unknown condition {condition!r}; choose one of {list(CONDITIONS)}")


def effective_weights(n_labelled: dict[str, int], batch: int) -> pd.DataFrame:
    r"""Per task, the weight of its loss and of one labelled item in the objective, under both averages.

    Averaging over the :math:`n_t` labelled items gives the task weight 1 and
    each item :math:`1/n_t`; averaging over the batch of :math:`B` gives the
    task :math:`n_t / B` and each item :math:`1/B`
    (:class:`~mtl_course.losses.BatchMean`).

    >>> effective_weights({"a": 90, "b": 10}, 100).round(3).to_dict("index")["b"]
    {'labelled: task': 1.0, 'labelled: item': 0.1, 'batch: task': 0.1, 'batch: item': 0.01}
    """
    if batch < 1 or any(n < 1 or n > batch for n in n_labelled.values()):
        raise ValueError(f"need 1 <= n_t <= B for every task, got n_t = {n_labelled} and B = {batch}")
    rows = {
        t: {"labelled: task": 1.0, "labelled: item": 1 / n, "batch: task": n / batch, "batch: item": 1 / batch}
        for t, n in n_labelled.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def run_ubernet(
    seeds: Sequence[int],
    splits: Sequence[Sequence[float]],
    *,
    n_train: int = 450,
    n_test: int = 300,
    epochs: int = 12,
    lr: float = 1e-2,
    batch_size: int | None = 75,
    channels: Sequence[int] = (16, 16, 16),
    hidden: int = 8,
    conditions: Sequence[str] = CONDITIONS,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """The lecture's experiment: every condition at every label split (``fractions`` of digit, parity, ink) and seed.

    The data of seed ``s`` and split ``f``: ``make_partial_digits(n_train, n_test, f, seed=s)``; the runs of
    one split and seed share them and their initial random state. The summary has the columns ``split`` (the
    split's index), ``fraction_<task>`` and, per task, ``test_<task>`` (see the module docstring).
    ``batch_size=None`` trains on the whole training set at every step.
    """
    if not seeds or not splits:
        raise ValueError(f"run_ubernet needs at least one seed and one label split, got {seeds} and {splits}")
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}; choose from {list(CONDITIONS)}")
    runs: dict[str, list[Run]] = {c: [] for c in conditions}
    for k, fractions in enumerate(splits):
        for seed in seeds:
            train, test = make_partial_digits(n_train, n_test, fractions, seed=seed)
            info = {"split": k, **{f"fraction_{t}": float(f) for t, f in zip(OUTPUTS, fractions, strict=True)}}
            for condition in conditions:
                runs[condition].append(Run(condition, seed, train, None, test, info))
    options = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "metric": "score", "measure_every": epochs}
    results = []
    for condition in conditions:
        average = "batch" if condition == BATCH_MEAN else "labelled"
        results.append(
            train_each(
                runs[condition],
                lambda run: build_model(run.condition, channels, hidden),
                ubernet_tasks(average),
                device=device,
                **options,
            )
        )
    return concat_results(results)


# -- memory ---------------------------------------------------------------------------------------
def saved_activation_bytes(model: MultiTaskModel, x: torch.Tensor) -> int:
    """Bytes of the activations that one forward pass of ``model`` keeps for the backward pass (which is not run).

    Counts every distinct storage that autograd saves while the summed outputs
    are computed, except the model's parameters (they are kept anyway).
    Activations inside a :class:`~mtl_course.models.ubernet.Checkpointed`
    module are not saved, so they do not count; the backward pass
    recomputes them, one module at a time.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sum(y.float().square().mean() for y in model(x).values())  # the graph is freed on return
    return sum(saved.values())


def memory_profile(
    heads: Sequence[int] = (1, 2, 4, 8),
    *,
    batch: int = 256,
    channels: Sequence[int] = (16, 16),
    hidden: int = 32,
    repeats: int = 5,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """Activation memory and step time of :func:`~mtl_course.models.ubernet.ubernet` with ``T`` dense heads.

    For every ``T`` in ``heads`` and with and without checkpointed heads: ``saved_MB``
    (:func:`saved_activation_bytes` / 2**20, on 8 x 8 inputs of ``batch`` images) and ``step_ms``, the median
    wall time of ``repeats`` forward and backward passes. Both models of one ``T`` have the same weights.
    """
    if not heads or min(heads) < 1 or repeats < 1:
        raise ValueError(f"need head counts >= 1 and repeats >= 1, got heads={list(heads)}, repeats={repeats}")
    device = get_device() if device is None else torch.device(device)
    x = torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed)).to(device)
    rows = []
    for n in heads:
        tasks = {f"ink{k}": 2 for k in range(n)}
        for checkpointed in (False, True):
            torch.manual_seed(seed)
            model = ubernet(1, list(channels), tasks, dense=list(tasks), hidden=hidden, checkpoint_heads=checkpointed)
            model.to(device)
            saved = saved_activation_bytes(model, x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                sum(y.square().mean() for y in model(x).values()).backward()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
            rows.append(
                {
                    "heads": n,
                    "checkpointed": checkpointed,
                    "saved_MB": saved / 2**20,
                    "step_ms": 1e3 * statistics.median(times),
                }
            )
    return pd.DataFrame(rows)

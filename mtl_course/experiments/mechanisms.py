r"""Why does multi-task learning work? One small experiment per mechanism (lecture A2).

Caruana (Machine Learning 28:41--75, 1997, doi:10.1023/A:1007379606734)
explains the gains of a shared hidden layer by mechanisms (Section 3.2), and
rules out "extra outputs just add noise or restrict capacity" with the
*shuffle test* (Section 3.1). Ruder (arXiv 1706.05098, 2017, Section 3) names
them implicit data augmentation, attention focusing, eavesdropping,
representation bias and regularisation. This module runs them:

* :func:`caruana_experiment` -- STL vs MTL vs shuffled extra tasks on
  :class:`~mtl_course.data.caruana.CaruanaProblem`, with early stopping, plus
  the implicit-data-augmentation runs (:func:`amplification_runs`: noisy
  copies of the main function; STL on averaged labels) and the
  regularisation runs (:func:`random_label_runs`: pure-noise main labels);
* :func:`attention_experiment` -- attention focusing on
  :class:`~mtl_course.data.caruana.AttentionProblem`, with the share of
  first-layer weight on the relevant inputs (:func:`input_weight_share`);
* :func:`eavesdropping_experiment` -- a hint task (:class:`~mtl_course.data.caruana.HintProblem`);
* :func:`representation_experiment` -- representation bias and Baxter's
  environment: train on :math:`K` tasks, then fit only a linear read-out for
  novel tasks on the frozen shared layer (:func:`linear_probe_error`);
* :func:`breast_cancer_experiment` -- the negative control.

Every experiment is a list of :class:`~mtl_course.experiments.engine.Run`\ s
(a condition on one seed, with its own training, validation and test
cases) trained by :func:`~mtl_course.experiments.engine.train_replicated`:
one replica of ``HardSharing.mlp`` per run
(:class:`~mtl_course.experiments.replicate.ReplicatedMLP`), full-batch Adam,
the engine's early stopping on the main task's validation loss, the test
error measured against the noise-free main function. Single-task learning is
the same network whose extra heads receive no labels (``NaN`` targets): the
extra heads then get no gradient and the trunk only the main task's, as in an
STL network with one output. The extra tasks' one-unit linear heads are
stored side by side as one linear layer (output ``"extra"``, trained with
:func:`~mtl_course.experiments.replicate.replica_column_mse_loss`), which is the same
model with fewer, larger kernel calls. Tables over seeds come from
:mod:`mtl_course.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch

from mtl_course.data.caruana import (
    MAIN,
    AttentionProblem,
    CaruanaProblem,
    EnvironmentProblem,
    HintProblem,
    average_labels,
    drop_extra_tasks,
    environment_features,
    extra_tasks,
    load_breast_cancer_tasks,
    shuffle_extra_tasks,
)
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, train_replicated
from mtl_course.experiments.labels import MTL, SHUFFLED, STL
from mtl_course.experiments.replicate import ReplicatedMLP, replica_bce_loss, replica_column_mse_loss, replica_mse_loss
from mtl_course.metrics import auc
from mtl_course.train import Task

#: Name of the output that holds every extra task (one unit per extra task).
EXTRA = "extra"
#: Implicit data augmentation: MTL whose extra tasks are noisy copies of the main function.
MTL_COPIES = "MTL copies"
#: Explicit amplification: STL trained on the average of the main and the extra labels.
STL_AVERAGE = "STL average"

#: The main task of a regression problem: its MSE is the training, validation and test loss.
REGRESSION = Task(MAIN, replica_mse_loss)
#: The main task of the negative control: binary cross-entropy, test AUC (:func:`mtl_course.metrics.auc`).
CLASSIFICATION = Task(MAIN, replica_bce_loss, {"auc": auc})

Condition = Callable[[MultiTaskData, np.random.Generator], MultiTaskData]

#: The standard conditions: single-task, multi-task, and Caruana's shuffle test.
SHUFFLE_TEST_CONDITIONS: dict[str, Condition] = {
    STL: lambda data, rng: drop_extra_tasks(data),
    MTL: lambda data, rng: data,
    SHUFFLED: shuffle_extra_tasks,
}


def two_outputs(data: MultiTaskData) -> MultiTaskData:
    """The main task and one ``"extra"`` target ``(n, K)`` holding the ``K`` extra tasks side by side (and their
    truth, where every extra task has one): the two outputs of the model.

    >>> data = two_outputs(CaruanaProblem(n_extra=3, n_features=8).sample(5, np.random.default_rng(0)))
    >>> data.tasks, data.targets["extra"].shape
    (('main', 'extra'), (5, 3))
    """
    extras = extra_tasks(data)
    if not extras:
        return data
    targets = {MAIN: data.targets[MAIN], EXTRA: np.concatenate([data.targets[t] for t in extras], axis=1)}
    truth = dict(data.truth or {})
    together = {MAIN: truth[MAIN]} if MAIN in truth else {}
    if all(t in truth for t in extras):
        together[EXTRA] = np.concatenate([truth[t] for t in extras], axis=1)
    return MultiTaskData(data.x, targets, truth=together or None, info=data.info)


def against_truth(data: MultiTaskData) -> MultiTaskData:
    """The same cases with the noise-free truth as targets: the engine then scores the error against the function."""
    if data.truth is None:
        raise ValueError("against_truth needs data with a truth, got none")
    return data.with_targets(dict(data.truth))


def _run(condition: str, seed: int, train: MultiTaskData, val: MultiTaskData, test: MultiTaskData, info) -> Run:
    return Run(
        condition, seed, two_outputs(train), two_outputs(val), two_outputs(against_truth(test)), dict(info or {})
    )


def _splits(problem, seed: int, n_train: int, n_val: int, n_test: int) -> tuple[MultiTaskData, ...]:
    rng = np.random.default_rng(seed)
    return problem.sample(n_train, rng), problem.sample(n_val, rng), problem.sample(n_test, rng)


def make_runs(
    problem,
    seeds: Sequence[int],
    conditions: Mapping[str, Condition] = SHUFFLE_TEST_CONDITIONS,
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Run]:
    """One run per (seed, condition): every condition of a seed sees the same cases.

    ``problem.sample(n, rng)`` draws the training, validation and test cases
    from ``np.random.default_rng(seed)`` in that order; each condition then
    turns the training data into its training signals (the shuffle uses
    ``np.random.default_rng([seed, 7])``). Test targets are the noise-free truth.
    """
    runs = []
    for seed in seeds:
        train, val, test = _splits(problem, seed, n_train, n_val, n_test)
        for name, condition in conditions.items():
            runs.append(_run(name, seed, condition(train, np.random.default_rng([seed, 7])), val, test, info))
    return runs


def amplification_runs(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Run]:
    r"""Implicit data augmentation, on the main demo's inputs, main labels and noises.

    ``"MTL copies"``: the extra tasks are noisy copies :math:`F + \varepsilon_k`
    (:class:`~mtl_course.data.caruana.CaruanaProblem` with ``extra_slope=0``);
    ``"STL average"``: a single-task network trained on the average of the
    five labels, whose noise variance is :math:`\sigma^2/5`: what perfect
    amplification could achieve.
    """
    conditions = {MTL_COPIES: SHUFFLE_TEST_CONDITIONS[MTL], STL_AVERAGE: lambda data, rng: average_labels(data)}
    return make_runs(CaruanaProblem(extra_slope=0.0), seeds, conditions, n_train, n_val, n_test, info)


def random_label_runs(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    info: Mapping[str, object] | None = None,
) -> list[Run]:
    """Regularisation as a smaller capacity to fit noise: the main labels are replaced by pure noise.

    The main task's training and validation labels become independent
    :math:`N(0, 1)` draws (they carry no information about the inputs); the
    extra tasks are the main demo's. How well a network fits such labels
    in a fixed training budget measures its capacity to memorise noise (the
    idea behind the Rademacher complexity that Ruder cites). Conditions:
    STL, MTL and shuffled extra tasks.
    """

    def with_noise_labels(data: MultiTaskData, seed: int, salt: int) -> MultiTaskData:
        noise = np.random.default_rng([seed, salt]).standard_normal(data.n)[:, None]
        return data.with_targets({**data.targets, MAIN: noise})

    return [
        Run(
            run.condition,
            run.seed,
            with_noise_labels(run.train, run.seed, 3),
            with_noise_labels(run.val, run.seed, 5),
            run.test,
            run.info,
        )
        for run in make_runs(CaruanaProblem(), seeds, SHUFFLE_TEST_CONDITIONS, n_train, n_val, n_test, info)
    ]


def train_mlp_replicas(
    runs: Sequence[Run],
    hidden: Sequence[int] = (32, 32),
    steps: int = 600,
    lr: float = 3e-3,
    eval_every: int = 10,
    main: Task = REGRESSION,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train one ``HardSharing.mlp(d, hidden, {"main": 1, "extra": K})`` replica per run, all at once.

    Full-batch Adam for ``steps`` steps, measured every ``eval_every``
    steps (one epoch of the engine); the best epoch is chosen on the main
    task's validation loss (``main.loss``); the test metric is
    ``main.metrics["auc"]`` for :data:`CLASSIFICATION`, else the loss. The
    weighting is ``"equal"``: the main loss plus the sum of the extra tasks'
    MSEs, as in Caruana's backprop nets, which sum the errors of all
    outputs. The seed of a run sets its replica's initial weights, so runs
    of one seed start from the same network.
    """
    if steps % eval_every:
        raise ValueError(f"steps ({steps}) must be a multiple of eval_every ({eval_every})")
    if not runs:
        raise ValueError("train_mlp_replicas needs at least one run, got none")
    first = runs[0].train
    outputs = {MAIN: 1, EXTRA: first.targets[EXTRA].shape[1]} if EXTRA in first.targets else {MAIN: 1}
    tasks = [main] + ([Task(EXTRA, replica_column_mse_loss)] if EXTRA in outputs else [])

    def build(runs: Sequence[Run]) -> ReplicatedMLP:
        return ReplicatedMLP.mlp(first.x.shape[1], hidden, outputs, [run.seed for run in runs])

    metric = "auc" if "auc" in main.metrics else None
    return train_replicated(
        runs,
        build,
        tasks,
        epochs=steps // eval_every,
        lr=lr,
        steps_per_epoch=eval_every,
        metric=metric,
        select=[MAIN],
        device=device,
    )


def caruana_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 600,
    lr: float = 3e-3,
    eval_every: int = 10,
    amplification: bool = True,
    random_labels: bool = True,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    r"""The main demo and its controls, trained together (column ``experiment``).

    * ``experiment="main"``: STL, MTL and shuffled extra tasks on
      :class:`~mtl_course.data.caruana.CaruanaProblem` (MLP 10-32-32, one
      linear head per task, full-batch Adam, early stopping on the main
      task's validation MSE), and with ``amplification`` the runs of
      :func:`amplification_runs` (same inputs, main labels and noises);
    * ``experiment="random labels"``: :func:`random_label_runs` when ``random_labels``.
    """
    runs = make_runs(CaruanaProblem(), seeds, SHUFFLE_TEST_CONDITIONS, n_train, n_val, n_test, {"experiment": "main"})
    if amplification:
        runs += amplification_runs(seeds, n_train, n_val, n_test, {"experiment": "main"})
    if random_labels:
        runs += random_label_runs(seeds, n_train, n_val, n_test, {"experiment": "random labels"})
    return train_mlp_replicas(runs, steps=steps, lr=lr, eval_every=eval_every, device=device)


def input_weight_mass(model: ReplicatedMLP) -> np.ndarray:
    r"""Per replica, each input's share of the first layer's squared weights, ``(R, in_features)``, rows summing to 1.

    :math:`m_i = \lVert W^{(1)}_{i\cdot} \rVert^2 / \sum_j \lVert W^{(1)}_{j\cdot} \rVert^2`, where row
    :math:`i` of the first weight matrix holds input :math:`i`'s outgoing weights.
    """
    w = model.trunk_weights[0].detach().float().cpu()  # (R, in, hidden)
    mass = (w**2).sum(-1)
    return (mass / mass.sum(1, keepdim=True)).numpy()


def input_weight_share(model: ReplicatedMLP, relevant: Sequence[int]) -> np.ndarray:
    r"""Per replica, the share of first-layer weight mass on the ``relevant`` inputs.

    :math:`\sum_{i \in \text{rel}} m_i`, where :math:`m_i` is :func:`input_weight_mass`. At initialisation the share is
    about ``len(relevant) / in_features``.

    >>> model = ReplicatedMLP.mlp(4, [3], {"main": 1}, seeds=[0])
    >>> with torch.no_grad():
    ...     _ = model.trunk_weights[0].copy_(torch.tensor([[[1.0] * 3, [0.0] * 3, [1.0] * 3, [2.0] * 3]]))
    >>> [round(float(v), 3) for v in input_weight_share(model, [0, 2])]  # (3 + 3) / (3 + 0 + 3 + 12)
    [0.333]
    """
    return input_weight_mass(model)[:, list(relevant)].sum(1)


def _initial(result: ExperimentResult) -> ReplicatedMLP:
    """The stack of ``result`` as it was before training (the same seeds)."""
    stack = result.stack
    return ReplicatedMLP.mlp(stack.in_features, stack.hidden, stack.out_features, [run.seed for run in result.runs])


def attention_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: AttentionProblem | None = None,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Attention focusing on :class:`~mtl_course.data.caruana.AttentionProblem`: STL vs MTL vs shuffled.

    The summary gains the column ``relevant_share``: :func:`input_weight_share`
    of the early-stopped network on the relevant inputs, and
    ``relevant_share_init`` at initialisation.
    """
    problem = AttentionProblem() if problem is None else problem
    result = train_mlp_replicas(
        make_runs(problem, seeds, SHUFFLE_TEST_CONDITIONS, n_train, n_val, n_test),
        steps=steps,
        lr=lr,
        eval_every=eval_every,
        device=device,
    )
    result.summary["relevant_share"] = input_weight_share(result.stack, problem.relevant)
    result.summary["relevant_share_init"] = input_weight_share(_initial(result), problem.relevant)
    return result


def eavesdropping_experiment(
    seeds: Sequence[int],
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    steps: int = 400,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: HintProblem | None = None,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Eavesdropping on :class:`~mtl_course.data.caruana.HintProblem`: STL vs MTL with the hint vs shuffled hint."""
    problem = HintProblem() if problem is None else problem
    runs = make_runs(problem, seeds, SHUFFLE_TEST_CONDITIONS, n_train, n_val, n_test)
    return train_mlp_replicas(runs, steps=steps, lr=lr, eval_every=eval_every, device=device)


@torch.no_grad()
def predict(result: ExperimentResult, split: Literal["train", "val", "test"] = "test") -> np.ndarray:
    """The main-task output of every run on its own ``split`` cases, ``(R, n)`` (logits for classification)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    stack = result.stack
    x, _ = stack.stack([getattr(run, split) for run in result.runs], stack.trunk_weights[0].device)
    was_training = stack.training
    stack.eval()
    out = stack(x)[MAIN][..., 0].float().cpu().numpy()
    stack.train(was_training)
    return out


def linear_probe_error(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, ridge: float = 0.1
) -> float:
    r"""Test MSE of a ridge regression on frozen features: a new task's read-out from a learnt representation.

    The features are standardised with the training cases' mean and standard
    deviation (constant features, e.g. dead ReLU units, are set to 0), then

    :math:`\hat\beta = \arg\min_\beta \lVert y - \beta_0 - Z\beta\rVert^2 + \lambda n \lVert\beta\rVert^2`

    (intercept unpenalised) is solved in closed form; the function returns
    :math:`\frac{1}{m}\lVert y_{test} - \hat y_{test}\rVert^2`. On standardised
    features this is scikit-learn's ``Ridge(alpha=lambda * n)``. With
    targets of shape ``(n, T)`` every column is one task, fitted separately,
    and the mean test MSE over the tasks is returned.
    """
    mu_z, sd_z = z_train.mean(0), z_train.std(0)
    sd_z = np.where(sd_z > 1e-8, sd_z, np.inf)
    zs, zt = (z_train - mu_z) / sd_z, (z_test - mu_z) / sd_z
    mu_y = y_train.mean(0)
    n, p = zs.shape
    beta = np.linalg.solve(zs.T @ zs + ridge * n * np.eye(p), zs.T @ (y_train - mu_y))
    pred = zt @ beta + mu_y
    return float(np.mean((y_test - pred) ** 2))


def representation_experiment(
    seeds: Sequence[int],
    task_counts: Sequence[int] = (1, 2, 4, 8),
    n_train: int = 200,
    n_val: int = 100,
    n_test: int = 500,
    n_probe: int = 100,
    n_novel: int = 20,
    ridge: float = 0.1,
    steps: int = 400,
    lr: float = 3e-3,
    eval_every: int = 10,
    problem: EnvironmentProblem | None = None,
    device: torch.device | str | None = None,
) -> tuple[ExperimentResult, pd.DataFrame]:
    r"""Representation bias in Baxter's environment: train on :math:`T` tasks, read out novel ones.

    Every run sees the same ``n_train`` cases of a seed; the run with
    :math:`T` tasks (condition ``"T=k"``, column ``tasks``) has the labels of
    the first :math:`T` training tasks of
    :class:`~mtl_course.data.caruana.EnvironmentProblem` (the others
    ``NaN``; :math:`T = 1` is STL). After training (every replica's
    early-stopped weights), ``n_novel`` new tasks of the same environment
    are each fitted with a ridge read-out (:func:`linear_probe_error`) on
    ``n_probe`` fresh labelled cases of the frozen shared layer and scored
    on clean test targets. Returns the training result (``test`` is the
    main task's early-stopped test MSE) and a table with the columns
    ``tasks``, ``seed``, ``novel_mse`` (mean over the novel tasks) and
    ``untrained_mse`` (the same read-out on the replica's initial, random
    shared layer). Every task has unit variance, so predicting the mean
    scores about 1.
    """
    problem = EnvironmentProblem() if problem is None else problem
    if max(task_counts) > problem.n_tasks or min(task_counts) < 1:
        raise ValueError(f"task_counts {list(task_counts)} must lie in 1..{problem.n_tasks} (the problem's n_tasks)")
    runs = []
    for seed in seeds:
        train, val, test = _splits(problem, seed, n_train, n_val, n_test)
        for k in task_counts:
            kept = set(problem.task_names[:k])
            targets = {t: (y if t in kept else np.full_like(y, np.nan)) for t, y in train.targets.items()}
            runs.append(_run(f"T={k}", seed, train.with_targets(targets), val, test, {"tasks": k}))
    result = train_mlp_replicas(runs, steps=steps, lr=lr, eval_every=eval_every, device=device)
    return result, _novel_task_errors(result, problem, n_probe, n_novel, ridge)


def _novel_task_errors(
    result: ExperimentResult, problem: EnvironmentProblem, n_probe: int, n_novel: int, ridge: float
) -> pd.DataFrame:
    """Per run: the ridge read-out's test MSE on novel tasks from the trained and from the initial shared layer."""
    device = result.stack.trunk_weights[0].device
    x_probe, y_probe, y_test = [], [], []
    for run in result.runs:
        rng = np.random.default_rng([run.seed, 11])
        xp = rng.uniform(-1.5, 1.5, size=(n_probe, problem.n_features))
        coef = problem.novel_tasks(n_novel, run.seed)
        x_probe.append(xp)
        y_probe.append(environment_features(xp) @ coef.T + problem.noise * rng.standard_normal((n_probe, n_novel)))
        y_test.append(environment_features(run.test.x) @ coef.T)
    xs = np.stack([np.concatenate([xp, run.test.x]) for xp, run in zip(x_probe, result.runs, strict=True)])
    xs = torch.as_tensor(xs, dtype=torch.float32, device=device)
    with torch.no_grad():
        z_trained = result.stack.encode(xs).cpu().numpy()
        z_initial = _initial(result).to(device).encode(xs).cpu().numpy()
    rows = []
    for i, run in enumerate(result.runs):
        errors = {
            label: linear_probe_error(z[i, :n_probe], y_probe[i], z[i, n_probe:], y_test[i], ridge)
            for label, z in (("novel_mse", z_trained), ("untrained_mse", z_initial))
        }
        rows.append({"tasks": run.info["tasks"], "seed": run.seed, **errors})
    return pd.DataFrame(rows)


def breast_cancer_experiment(
    seeds: Sequence[int],
    n_train: int = 30,
    n_val: int = 30,
    steps: int = 300,
    lr: float = 3e-3,
    eval_every: int = 20,
    hidden: Sequence[int] = (32, 32),
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """The negative control: STL vs MTL vs shuffled on the Wisconsin breast cancer data (test AUC, higher is better).

    Per seed, ``n_train`` training and ``n_val`` validation cases are drawn
    at random, stratified by diagnosis; all other cases are the test set.
    Inputs: the 10 "mean" features; main task: malignant (binary
    cross-entropy); extra tasks: the 20 "error"/"worst" features (MSE),
    used only in training. Early stopping on the validation cross-entropy;
    ``test`` is the early-stopped test AUC.
    """
    data = load_breast_cancer_tasks()
    label = data.truth[MAIN][:, 0]
    malignant_share = float(np.mean(label == 1.0))
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        train_rows: list[int] = []
        val_rows: list[int] = []
        for value, share in ((0.0, 1 - malignant_share), (1.0, malignant_share)):
            rows = rng.permutation(np.flatnonzero(label == value))
            k_train, k_val = round(n_train * share), round(n_val * share)
            train_rows += rows[:k_train].tolist()
            val_rows += rows[k_train : k_train + k_val].tolist()
        rest = np.setdiff1d(np.arange(data.n), np.array(train_rows + val_rows))
        train, val, test = data.take(train_rows), data.take(val_rows), data.take(rest)
        for name, condition in SHUFFLE_TEST_CONDITIONS.items():
            runs.append(_run(name, seed, condition(train, np.random.default_rng([seed, 7])), val, test, {}))
    return train_mlp_replicas(
        runs, hidden=hidden, steps=steps, lr=lr, eval_every=eval_every, main=CLASSIFICATION, device=device
    )


def first_step_below(curves: pd.DataFrame, column: str, threshold: float) -> pd.Series:
    """Per run, the first recorded step at which ``column`` falls below ``threshold`` (``inf`` if it never does).

    >>> c = pd.DataFrame({"run": [0, 0, 0, 1, 1, 1], "step": [10, 20, 30] * 2, "loss": [0.5, 0.05, 0.0, 0.9, 0.8, 0.7]})
    >>> first_step_below(c, "loss", 0.1).tolist()
    [20.0, inf]
    """
    below = curves[curves[column] < threshold].groupby("run")["step"].min()
    return below.reindex(sorted(curves["run"].unique())).astype(float).fillna(math.inf)

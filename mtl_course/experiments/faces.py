r"""Recipes of the face lectures HyperFace (B4), TCDCN (B5) and Devries et al. (B7) on :func:`make_faces`.

Each trains a :class:`~mtl_course.models.hyperface.HyperFace` network
(hyperfeatures, or the same trunk reading its last layer only) with the
engine (:func:`~mtl_course.experiments.engine.train_each`) on synthetic faces
whose labels are exact:

* :func:`run_hyperface` -- Ranjan, Patel & Chellappa (IEEE TPAMI 2019, arXiv
  1603.01249): detection, landmarks with visibility, visibility, pose and
  gender, :math:`L = \lambda_D L_D + \lambda_L L_L + \lambda_V L_V +
  \lambda_P L_P + \lambda_G L_G` with fixed :math:`\lambda`
  (:class:`~mtl_course.weighting.FixedWeighting`); fused versus last-layer
  features, and a sweep of :math:`\lambda_L`.
* :func:`run_tcdcn` -- Zhang, Luo, Loy & Tang (ECCV 2014): landmarks as the
  main task, head pose, gender, glasses and smiling as auxiliary tasks;
  landmarks alone, every task to the end, and task-wise early stopping
  (:class:`~mtl_course.train.TaskEarlyStopping`).

* :func:`run_devries` -- Devries, Biswaranjan & Taylor (CRV 2014): expression
  recognition as the main task, landmarks as the auxiliary,
  :math:`C = C_e + \lambda C_l` with the landmark term weighted by
  visibility; expression accuracy against :math:`\lambda` and against the
  number of expression labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from mtl_course.data.faces import make_faces
from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, train_each
from mtl_course.losses import binary_cross_entropy, cross_entropy, mse_loss, visible_landmark_loss
from mtl_course.metrics import accuracy, landmark_error, mse
from mtl_course.models.hyperface import HyperFace
from mtl_course.train import Task, TaskEarlyStopping
from mtl_course.weighting import FixedWeighting

#: Output size of every face task's head.
FACE_OUTPUTS = {
    "face": 2,
    "landmarks": 10,
    "visibility": 5,
    "pose": 3,
    "pose_bin": 5,
    "gender": 2,
    "glasses": 2,
    "smile": 2,
    "expression": 4,
}
#: HyperFace's tasks and loss weights as printed on the course slides (λ_D, λ_L, λ_V, λ_P, λ_G).
HYPERFACE_LAMBDAS = {"face": 1.0, "landmarks": 5.0, "visibility": 0.5, "pose": 5.0, "gender": 2.0}
#: TCDCN's main task and auxiliary tasks.
TCDCN_TASKS = ("landmarks", "pose_bin", "gender", "glasses", "smile")
#: The condition names of the three lectures.
FUSED, LAST = "hyperfeatures", "last layer"
MAIN_ONLY, TO_THE_END, EARLY_STOP = "landmarks only", "all tasks to the end", "task-wise early stopping"
#: Devries et al.'s main task and auxiliary task.
DEVRIES_TASKS = ("expression", "landmarks")


def _visibility_error(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Fraction of labelled landmarks whose visibility is misread (logit sign against ``v``)."""
    labelled = ~torch.isnan(target)
    if mask is not None:
        labelled &= mask.bool().reshape(-1, *[1] * (target.ndim - 1)).expand_as(target)
    wrong = ((logits > 0).float() != target) & labelled
    return wrong.sum().item() / max(labelled.sum().item(), 1)


def _error_rate(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    return 1.0 - accuracy(logits, target, mask)


def face_task(name: str) -> Task:
    """The :class:`~mtl_course.train.Task` of a face task, with one test metric ``"error"`` (lower is better).

    Landmarks: :func:`~mtl_course.losses.visible_landmark_loss` and
    :func:`~mtl_course.metrics.landmark_error`; visibility: sigmoid
    cross-entropy and the fraction misread; pose: squared error (radians²);
    the class tasks: cross-entropy and the error rate.

    >>> face_task("landmarks").loss.__name__, list(face_task("gender").metrics)
    ('visible_landmark_loss', ['error'])
    """
    if name not in FACE_OUTPUTS:
        raise KeyError(f"unknown face task {name!r}; the face tasks are {list(FACE_OUTPUTS)}")
    if name == "landmarks":
        return Task(name, visible_landmark_loss, {"error": landmark_error})
    if name == "visibility":
        return Task(name, binary_cross_entropy, {"error": _visibility_error})
    if name == "pose":
        return Task(name, mse_loss, {"error": mse})
    return Task(name, cross_entropy, {"error": _error_rate})


def select_tasks(data: MultiTaskData, tasks: Sequence[str]) -> MultiTaskData:
    """``data`` with the targets of ``tasks`` only, in that order.

    >>> select_tasks(make_faces(2), ["gender", "face"]).tasks
    ('gender', 'face')
    """
    missing = [t for t in tasks if t not in data.targets]
    if missing or not tasks:
        raise KeyError(f"cannot select the tasks {list(tasks)}: missing {missing}; the data has {list(data.tasks)}")
    return data.with_targets({t: data.targets[t] for t in tasks})


def face_model(tasks: Sequence[str], fuse: bool, channels: Sequence[int] = (6, 12, 12, 24)) -> HyperFace:
    """A :class:`HyperFace` network on 32 × 32 faces with one head per task (sizes from :data:`FACE_OUTPUTS`)."""
    return HyperFace({t: FACE_OUTPUTS[t] for t in tasks}, size=32, channels=channels, fuse=fuse)


def _splits(seed: int, n_train: int, n_val: int, n_test: int, **faces: float) -> tuple[MultiTaskData, ...]:
    """Training, validation and test faces of one seed (three generator seeds per data seed)."""
    return tuple(make_faces(n, seed=1000 * seed + k, **faces) for k, n in enumerate((n_train, n_val, n_test)))


def _fixed(weights: Mapping[str, float]) -> Callable[[Run], FixedWeighting]:
    def make(run: Run) -> FixedWeighting:
        return FixedWeighting(list(weights), {t: run.info.get(f"lambda_{t}", w) for t, w in weights.items()})

    return make


def run_hyperface(
    seeds: Sequence[int] = (0, 1, 2),
    *,
    conditions: Sequence[str] = (FUSED, LAST),
    lambda_landmarks: Sequence[float] | None = None,
    n_train: int = 500,
    n_test: int = 500,
    epochs: int = 20,
    lr: float = 4e-3,
    batch_size: int = 100,
    measure_every: int = 5,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    r"""HyperFace's five tasks with the slides' :data:`HYPERFACE_LAMBDAS`, per seed and condition.

    ``conditions`` are :data:`FUSED` and/or :data:`LAST`; ``lambda_landmarks``
    replaces :math:`\lambda_L` by each value in turn (run info
    ``lambda_landmarks``). A quarter of the patches hold no face (the
    detection task's negatives; the other tasks are unlabelled there). The
    best epoch is chosen on the validation loss of every task; the test
    metric is each task's ``"error"`` (:func:`face_task`).
    """
    for condition in conditions:
        if condition not in (FUSED, LAST):
            raise ValueError(f"unknown HyperFace condition {condition!r}; expected {FUSED!r} or {LAST!r}")
    names = list(HYPERFACE_LAMBDAS)
    runs = []
    for seed in seeds:
        train, val, test = (select_tasks(d, names) for d in _splits(seed, n_train, n_train // 2, n_test, non_face=0.25))
        for condition in conditions:
            for lam in lambda_landmarks or [HYPERFACE_LAMBDAS["landmarks"]]:
                info = {"lambda_landmarks": float(lam)}
                runs.append(Run(condition, seed, train, val, test, info))
    return train_each(
        runs,
        lambda run: face_model(names, fuse=run.condition == FUSED),
        [face_task(t) for t in names],
        weighting=_fixed(HYPERFACE_LAMBDAS),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        metric="error",
        measure_every=measure_every,
        device=device,
    )


def errors_by_group(
    model: HyperFace, test: MultiTaskData, task: str, groups: np.ndarray, metric: str = "error"
) -> dict[int, float]:
    """The test metric of ``task`` on the cases of each group label in ``groups`` ``(n,)`` (e.g. a pose bin)."""
    groups = np.asarray(groups)
    if groups.shape != (test.n,):
        raise ValueError(f"groups must hold one label per test case, shape ({test.n},), got {groups.shape}")
    spec = face_task(task)
    model.eval()
    with torch.no_grad():
        x, y = test.batch(next(model.parameters()).device)[:2]
        out = model(x)[task]
    return {
        int(g): spec.metrics[metric](out[groups == g], y[task][torch.as_tensor(groups == g)]) for g in np.unique(groups)
    }


def run_tcdcn(
    seeds: Sequence[int] = (0, 1, 2),
    *,
    conditions: Sequence[str] = (MAIN_ONLY, TO_THE_END, EARLY_STOP),
    aux_weight: float = 0.1,
    k: int = 5,
    epsilon: float | None = None,
    n_train: int = 300,
    n_test: int = 500,
    epochs: int = 30,
    lr: float = 4e-3,
    batch_size: int = 50,
    measure_every: int = 5,
    device: torch.device | str | None = None,
) -> tuple[ExperimentResult, dict[tuple[str, int], list[TaskEarlyStopping]]]:
    r"""TCDCN: landmarks (main) with pose, gender, glasses and smiling (auxiliary), three conditions per seed.

    The landmark loss is TCDCN's squared error (every landmark counts: the
    visibility column is set to 1), each auxiliary a cross-entropy weighted
    by ``aux_weight`` (the :math:`\lambda_a` of the objective and of the
    criterion). :data:`MAIN_ONLY` leaves the auxiliary labels out (the
    single-task network of the same size); :data:`EARLY_STOP` stops each
    auxiliary task with :class:`~mtl_course.train.TaskEarlyStopping` (window
    ``k``, threshold ``epsilon``, default ``5 k`` as calibrated in lecture A6).
    The best epoch is chosen on the landmarks' validation loss. Returns the
    result and, per ``(condition, seed)`` of the early-stopping runs, the
    callbacks (their ``stopped_epoch`` and criterion ``values``).
    """
    unknown = [c for c in conditions if c not in (MAIN_ONLY, TO_THE_END, EARLY_STOP)]
    if unknown:
        raise ValueError(f"unknown TCDCN condition(s) {unknown}; expected {[MAIN_ONLY, TO_THE_END, EARLY_STOP]}")
    epsilon = 5.0 * k if epsilon is None else epsilon
    auxiliaries = list(TCDCN_TASKS[1:])
    runs = []
    for seed in seeds:
        train, val, test = (
            _all_landmarks(select_tasks(d, TCDCN_TASKS)) for d in _splits(seed, n_train, n_train // 2, n_test)
        )
        for condition in conditions:
            data = _without(train, auxiliaries) if condition == MAIN_ONLY else train
            runs.append(Run(condition, seed, data, val, test))
    stoppers: dict[tuple[str, int], list[TaskEarlyStopping]] = {}

    def callbacks(run: Run) -> list[TaskEarlyStopping]:
        if run.condition != EARLY_STOP:
            return []
        made = [TaskEarlyStopping(t, k=k, epsilon=epsilon, lam=aux_weight) for t in auxiliaries]
        stoppers[run.condition, run.seed] = made
        return made

    result = train_each(
        runs,
        lambda run: face_model(TCDCN_TASKS, fuse=False),
        [face_task(t) for t in TCDCN_TASKS],
        weighting=_fixed({"landmarks": 1.0, **dict.fromkeys(auxiliaries, aux_weight)}),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        metric="error",
        select=["landmarks"],
        callbacks=callbacks,
        measure_every=measure_every,
        device=device,
    )
    return result, stoppers


def _all_landmarks(data: MultiTaskData) -> MultiTaskData:
    """Every landmark counted in the loss (visibility column 1): TCDCN regresses all five points."""
    landmarks = data.targets["landmarks"].clone()
    landmarks[..., 2] = torch.where(torch.isnan(landmarks[..., 2]), landmarks[..., 2], 1.0)
    return data.with_targets({**data.targets, "landmarks": landmarks})


def _without(data: MultiTaskData, tasks: Sequence[str], keep: int = 0) -> MultiTaskData:
    """``data`` with the labels of ``tasks`` removed from every case after the first ``keep`` ones."""
    targets = dict(data.targets)
    for t in tasks:
        y = targets[t].clone()
        y[keep:] = IGNORE_INDEX if not y.is_floating_point() else torch.nan
        targets[t] = y
    return data.with_targets(targets)


def run_devries(
    seeds: Sequence[int] = (0, 1, 2),
    *,
    labels: Sequence[int] = (20, 60, 200),
    lambdas: Sequence[float] = (0.0, 30.0),
    n_train: int = 200,
    n_test: int = 400,
    epochs: int = 30,
    lr: float = 5e-3,
    batch_size: int = 50,
    expression_strength: float = 3.0,
    max_yaw: float = 10.0,
    occlusion: float = 0.1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    r"""Devries et al.: expression (main) and visible landmarks (auxiliary), :math:`C = C_e + \lambda C_l`.

    Per seed, ``n_train`` faces all carry their landmarks (with visibility,
    :func:`~mtl_course.losses.visible_landmark_loss`); only the first ``n``
    of them carry an expression label, for each ``n`` in ``labels``; each
    ``(n, \lambda)`` of ``labels`` × ``lambdas`` is one run (condition
    ``"λ = <value>"``, run info ``n_labels`` and ``lambda_landmarks``).
    :math:`\lambda = 0` is the sceptic's baseline: the same network trained
    on the expressions alone. The faces (:func:`make_faces`) have a stronger
    expression geometry (``expression_strength``), a yaw within
    ±``max_yaw`` degrees and occluders with probability ``occlusion``. With
    a handful of labels there is nothing to spare for choosing an epoch: the
    last epoch is scored (test metric: each task's ``"error"``, for the
    expression the error rate).
    """
    if not labels or any(not 0 < n <= n_train for n in labels):
        raise ValueError(f"labels must be numbers of expression labels in [1, n_train={n_train}], got {list(labels)}")
    if not lambdas or any(not lam >= 0 for lam in lambdas):
        raise ValueError(f"lambdas must be weights >= 0 of the landmark term, got {list(lambdas)}")
    faces = {"expression_strength": expression_strength, "max_yaw": max_yaw, "occlusion": occlusion}
    runs = []
    for seed in seeds:
        train, test = (
            select_tasks(make_faces(n, seed=1000 * seed + k, **faces), DEVRIES_TASKS)
            for k, n in ((0, n_train), (2, n_test))
        )
        for n in labels:
            few = _without(train, ["expression"], keep=n)
            for lam in lambdas:
                runs.append(Run(f"λ = {lam:g}", seed, few, None, test, {"n_labels": n, "lambda_landmarks": float(lam)}))
    return train_each(
        runs,
        lambda run: devries_model(),
        [face_task(t) for t in DEVRIES_TASKS],
        weighting=_fixed({"expression": 1.0, "landmarks": 1.0}),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        metric="error",
        measure_every=epochs,
        device=device,
    )


def devries_model() -> HyperFace:
    """The small CNN of lecture B7: three stages (8, 16, 16 channels) on 32 × 32 faces, a shared layer of 32 units."""
    return HyperFace(
        {t: FACE_OUTPUTS[t] for t in DEVRIES_TASKS},
        size=32,
        channels=(8, 16, 16),
        fuse=False,
        fused_channels=16,
        hidden=32,
    )

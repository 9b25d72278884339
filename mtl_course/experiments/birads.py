r"""BI-RADS descriptors as auxiliary tasks for a breast-ultrasound diagnosis (lecture B12).

Liu et al. (MICCAI 2018) train a CNN to tell malignant from benign breast
lesions in ultrasound images, with the BI-RADS descriptors a radiologist
reports (shape, orientation, margin, echo pattern, posterior features) as
auxiliary tasks: extra heads on the shared network, trained during training
only. At test time the network sees the image alone.

**The recipe** (:func:`run_birads`). Data from
:func:`~mtl_course.data.breast_lesions.make_breast_lesions` (:func:`birads_splits`:
a training set, a validation set as large as it, a test set). One network,
:func:`build_birads_network` (a hard-sharing CNN, one logit per task), in two
conditions of equal capacity:

* :data:`~mtl_course.experiments.labels.STL` -- only the diagnosis is
  trained (the descriptor labels are removed, ``NaN``): the diagnosis loss
  :math:`L_{\text{diag}}` alone;
* :data:`~mtl_course.experiments.labels.MTL` -- the diagnosis and the five
  descriptors, :math:`L = L_{\text{diag}} + \sum_{k=1}^{5} L_k`, every term a
  :func:`~mtl_course.losses.binary_cross_entropy` (``weighting="equal"``).

Every run is trained with :func:`~mtl_course.experiments.engine.train_each`
(Adam, full batch); the epoch with the lowest *diagnosis* validation loss is
kept (the descriptors never choose it). The runs of one seed share their data
and initial weights.

**The measurements** (:func:`diagnosis_metrics`): on the test set, the
diagnosis AUC (:func:`~mtl_course.metrics.auc`) and the expected calibration
error (:func:`~mtl_course.metrics.expected_calibration_error`), against the
test set's noisy labels, as a clinical test set would be scored; and the
Bayes ceiling, the AUC of the rule's own probability on the same labels.

**The leak** (:func:`descriptor_input_auc`): a logistic regression that
*reads* the descriptors instead of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtl_course.data.breast_lesions import DESCRIPTORS, DIAGNOSIS, make_breast_lesions
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.experiments.labels import MTL, STL
from mtl_course.losses import binary_cross_entropy
from mtl_course.metrics import auc, expected_calibration_error
from mtl_course.models.blocks import CNNTrunk, LinearHead
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.train import Task

#: Every task of the lecture: the diagnosis first, then the five descriptors.
BIRADS_TASKS: tuple[str, ...] = (DIAGNOSIS, *DESCRIPTORS)
#: Bins of the reliability diagram and of the expected calibration error.
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class BiradsSetting:
    """One cell of the experiment: a name, the rule's ``hardness``, the number of labelled training images, the epochs.

    A larger training set takes more optimiser steps per epoch (mini-batches), so it needs fewer epochs.
    """

    name: str
    hardness: float
    n_train: int
    epochs: int


def birads_tasks() -> list[Task]:
    """One binary task per entry of :data:`BIRADS_TASKS`: sigmoid cross-entropy, AUC and ECE as metrics."""
    metrics = {"auc": auc, "ece": expected_calibration_error}
    return [Task(name, binary_cross_entropy, metrics) for name in BIRADS_TASKS]


def build_birads_network(channels: Sequence[int] = (8, 16, 16), tasks: Sequence[str] = BIRADS_TASKS) -> HardSharing:
    """A :class:`~mtl_course.models.hard_sharing.HardSharing` CNN: one shared trunk, one logit ``(N,)`` per task.

    The trunk is a :class:`~mtl_course.models.blocks.CNNTrunk`; each head a
    globally pooled :class:`~mtl_course.models.blocks.LinearHead` with one
    output, flattened to ``(N,)`` like the targets.

    >>> net = build_birads_network()
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(2, 1, 32, 32)).items()}["malignancy"]
    (2,)
    """
    channels = list(channels)
    trunk = CNNTrunk(1, channels)
    heads = {task: nn.Sequential(LinearHead(channels[-1], 1), nn.Flatten(0)) for task in tasks}
    return HardSharing(trunk, heads)


def without_descriptors(data: MultiTaskData) -> MultiTaskData:
    """The same cases with every descriptor label removed (``NaN``): the single-task training set."""
    missing = {
        t: torch.full_like(torch.as_tensor(y, dtype=torch.float32), float("nan")) for t, y in data.targets.items()
    }
    return data.with_targets({t: data.targets[t] if t == DIAGNOSIS else missing[t] for t in data.targets})


def birads_splits(
    setting: BiradsSetting, seed: int, *, n_test: int = 400, sharpness: float = 8.0, size: int = 32
) -> tuple[MultiTaskData, MultiTaskData, MultiTaskData]:
    """``(train, val, test)`` for one setting and seed; validation as large as training, from other seeds.

    The images and descriptors of a seed do not depend on the hardness, only
    the malignancy labels do (the rule is applied to the same lesions).
    """
    if setting.n_train < 2:
        raise ValueError(f"setting {setting.name!r}: need at least 2 training images, got n_train={setting.n_train}")

    def draw(n: int, offset: int) -> MultiTaskData:
        return make_breast_lesions(n, setting.hardness, sharpness, size, seed=offset + seed)

    return draw(setting.n_train, 0), draw(setting.n_train, 10_000), draw(n_test, 20_000)


def diagnosis_metrics(model: nn.Module, test: MultiTaskData) -> dict[str, float]:
    """The diagnosis ``auc`` and ``ece`` of ``model`` on ``test``, and the rule's ``bayes_auc`` on the same labels."""
    if DIAGNOSIS not in test.targets or test.truth is None or DIAGNOSIS not in test.truth:
        raise KeyError(f"the test set needs a {DIAGNOSIS!r} target and truth; it has targets {list(test.targets)}")
    logits = diagnosis_logits(model, test)
    y = torch.as_tensor(test.targets[DIAGNOSIS])
    return {
        "auc": auc(logits, y),
        "ece": expected_calibration_error(logits, y, bins=CALIBRATION_BINS),
        "bayes_auc": auc(torch.as_tensor(test.truth[DIAGNOSIS]), y),
    }


@torch.no_grad()
def diagnosis_logits(model: nn.Module, data: MultiTaskData) -> torch.Tensor:
    """The model's diagnosis logits on the whole set, on the CPU (model in eval mode, then restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(data.x, dtype=torch.float32).to(device)
    logits = model(x)[DIAGNOSIS].float().cpu()
    model.train(was_training)
    return logits


def run_birads(
    seeds: Sequence[int],
    settings: Sequence[BiradsSetting],
    *,
    lr: float = 3e-3,
    batch_size: int = 32,
    channels: Sequence[int] = (8, 16, 16),
    n_test: int = 400,
    sharpness: float = 8.0,
    size: int = 32,
    measure_every: int = 1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train STL and MTL on every setting and seed; the summary gains ``auc``, ``ece`` and ``bayes_auc``.

    ``info`` columns: ``setting``, ``hardness``, ``n_train``. Shuffled mini-batches of ``batch_size``
    images, ``setting.epochs`` epochs. See the module docstring for the recipe.
    """
    if not seeds or not settings:
        raise ValueError(f"run_birads needs seeds and settings, got seeds={list(seeds)}, settings={list(settings)}")
    parts = []
    for setting in settings:
        runs = []
        for seed in seeds:
            train, val, test = birads_splits(setting, seed, n_test=n_test, sharpness=sharpness, size=size)
            info = {"setting": setting.name, "hardness": setting.hardness, "n_train": setting.n_train}
            runs.append(Run(STL, seed, without_descriptors(train), val, test, info))
            runs.append(Run(MTL, seed, train, val, test, info))
        part = train_each(
            runs,
            lambda run: build_birads_network(channels),
            birads_tasks(),
            epochs=setting.epochs,
            lr=lr,
            batch_size=batch_size,
            metric="auc",
            select=[DIAGNOSIS],
            measure_every=measure_every,
            device=device,
        )
        parts.append(part)
    result = concat_results(parts)
    scores = [diagnosis_metrics(model, run.test) for model, run in zip(result.models, result.runs, strict=True)]
    for key in ("auc", "ece", "bayes_auc"):
        result.summary[key] = [s[key] for s in scores]
    return result


def descriptor_input_auc(train: MultiTaskData, test: MultiTaskData) -> float:
    """Test AUC of a logistic regression that reads the five descriptor labels instead of the image (the leak).

    Fitted on ``train``'s labelled diagnoses (scikit-learn's
    ``LogisticRegression``, default L2 penalty), scored on ``test``'s
    descriptors against its diagnosis labels. The descriptors are the very
    variables the rule reads, so this AUC sits at the rule's ceiling however
    little the image shows.
    """
    from sklearn.linear_model import LogisticRegression

    def table(data: MultiTaskData) -> tuple[np.ndarray, np.ndarray]:
        missing = [t for t in BIRADS_TASKS if t not in data.targets]
        if missing:
            raise KeyError(f"the descriptor-input model needs the targets {missing}; the set has {list(data.targets)}")
        x = np.stack([np.asarray(data.targets[t], dtype=float) for t in DESCRIPTORS], axis=1)
        y = np.asarray(data.targets[DIAGNOSIS], dtype=float)
        keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
        if not keep.any():
            raise ValueError("the descriptor-input model needs cases with a diagnosis and every descriptor, got none")
        return x[keep], y[keep]

    x_train, y_train = table(train)
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"the training diagnoses hold one class only ({np.unique(y_train).tolist()}); need both")
    x_test, y_test = table(test)
    model = LogisticRegression().fit(x_train, y_train)
    return auc(torch.as_tensor(model.decision_function(x_test)), torch.as_tensor(y_test))

r"""Y-Net's recipe on synthetic biopsies: two-stage joint training against a classifier alone (lecture B14).

Mehta, Mercan, Bartlett, Weaver, Elmore & Shapiro, "Y-Net: Joint
Segmentation and Classification for Diagnosis of Breast Biopsy Images",
MICCAI 2018, arXiv 1806.01313.

**The losses** (public code, ``stage2/main.py``): the segmentation loss is
the class-weighted cross-entropy
:class:`~mtl_course.losses.WeightedCrossEntropy` with the weights
:func:`~mtl_course.losses.class_balance_weights` of the training tissue
maps; the classification loss the plain cross-entropy
:func:`~mtl_course.losses.cross_entropy`. The code back-propagates both in
one step (``loss1.backward(retain_graph=True); loss.backward()``), i.e. the
gradient of their sum: the ``"equal"`` weighting.

**The two stages** (:func:`two_stage_runs`): stage 1 trains the
encoder-decoder for segmentation alone (``stage1/``); stage 2 starts from
those weights and trains segmentation and classification jointly
(``stage2/``, which loads the stage-1 model).

**The conditions** (:func:`run_ynet`), on the same few labelled images:

* :data:`CLASSIFIER` -- the same network trained on the diagnoses alone
  (its tissue maps hidden), for as many epochs as both Y-Net stages;
* :data:`YNET` -- Y-Net's classification branch after the two stages;
* :data:`MASK` -- the diagnosis read from Y-Net's predicted tissue map
  (:func:`tissue_fractions`, then :func:`fit_fraction_classifier`): a small
  version of the paper's "discriminative segmentation masks", whose tissue
  frequencies feed a separate diagnostic classifier.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from mtl_course.data.biopsy import DIAGNOSIS_NAMES, TISSUE_NAMES, make_biopsy
from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.losses import WeightedCrossEntropy, class_balance_weights, cross_entropy
from mtl_course.metrics import accuracy
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.ynet import y_net
from mtl_course.train import Task

#: The classifier alone: Y-Net's network trained on the diagnoses only.
CLASSIFIER = "classifier"
#: Y-Net's classification branch after two-stage training.
YNET = "Y-Net"
#: The diagnosis read from Y-Net's predicted tissue map.
MASK = "Y-Net tissue map"
#: The tasks, in the order of the model's outputs.
TASKS = ("segmentation", "diagnosis")


def ynet_tasks(weights: torch.Tensor) -> list[Task]:
    """Y-Net's two tasks: class-weighted segmentation cross-entropy (``weights``) and diagnostic cross-entropy."""
    return [
        Task("segmentation", WeightedCrossEntropy(weights), {"accuracy": accuracy}),
        Task("diagnosis", cross_entropy, {"accuracy": accuracy}),
    ]


def hide(data: MultiTaskData, task: str) -> MultiTaskData:
    """``data`` with every label of ``task`` marked missing (``-100``): what a condition does not train on."""
    if task not in data.targets:
        raise KeyError(f"no task {task!r} to hide; the data have {list(data.tasks)}")
    targets = dict(data.targets)
    targets[task] = torch.full_like(torch.as_tensor(targets[task]), IGNORE_INDEX)
    return data.with_targets(targets)


def tissue_fractions(logits: torch.Tensor) -> torch.Tensor:
    r"""The share of pixels predicted as each tissue, ``(N, K)`` from segmentation logits ``(N, K, H, W)``,

    .. math:: q_{nk} = \frac{1}{HW} \sum_{p} [\arg\max_j z_{njp} = k] .

    >>> tissue_fractions(torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]]))
    tensor([[0.5000, 0.5000]])
    """
    if logits.ndim != 4:
        raise ValueError(f"tissue_fractions expects segmentation logits (N, K, H, W), got shape {tuple(logits.shape)}")
    labels = logits.argmax(dim=1)
    return torch.stack([(labels == k).float().mean(dim=(1, 2)) for k in range(logits.shape[1])], dim=1)


def fit_fraction_classifier(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float = 1e-3, steps: int = 100
) -> torch.nn.Linear:
    r"""Multinomial logistic regression of ``labels`` on tissue ``features`` (L-BFGS, ``l2`` on the weights),

    .. math:: \min_{W, b}\; \frac1n \sum_i -\log \operatorname{softmax}(W q_i + b)_{y_i} + \lambda \|W\|^2 .

    The second stage of the mask pipeline: a small diagnostic classifier on
    the tissue frequencies of the predicted map (the paper feeds tissue
    frequency and co-occurrence features of its discriminative masks to a
    separate classifier; here the frequencies only).
    """
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"need features (n, d) and labels (n,), got {tuple(features.shape)} and {tuple(labels.shape)}")
    if features.shape[0] == 0:
        raise ValueError("fit_fraction_classifier needs at least one labelled image, got none")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("fit_fraction_classifier got NaN or infinite features")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        linear = torch.nn.Linear(features.shape[1], n_classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = cross_entropy(linear(features), labels) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear.requires_grad_(False)


@dataclass
class YNetResult:
    """What :func:`run_ynet` returns: ``summary`` (one row per condition and seed: ``diagnosis`` accuracy,
    ``segmentation`` pixel accuracy where the condition segments), the two stages' and the classifier's
    :class:`~mtl_course.experiments.engine.ExperimentResult`, and the class weights of every seed."""

    summary: pd.DataFrame
    stage1: ExperimentResult
    stage2: ExperimentResult
    classifier: ExperimentResult
    weights: dict[int, torch.Tensor]


def two_stage_runs(train: MultiTaskData, test: MultiTaskData, seed: int) -> tuple[Run, Run, Run]:
    """The runs of one seed: stage 1 (segmentation only), stage 2 (both tasks), the classifier (diagnoses only)."""
    return (
        Run("stage 1", seed, hide(train, "diagnosis"), None, test),
        Run(YNET, seed, train, None, test),
        Run(CLASSIFIER, seed, hide(train, "segmentation"), None, test),
    )


def run_ynet(
    seeds: Sequence[int],
    n_train: int = 24,
    n_test: int = 300,
    *,
    channels: Sequence[int] = (8, 16, 32),
    stage_epochs: tuple[int, int] = (80, 40),
    lr: float = 3e-3,
    noise: float = 0.25,
    device: torch.device | str | None = None,
) -> YNetResult:
    """Train the three conditions on ``n_train`` labelled images per seed and score them on ``n_test``.

    Every seed draws its own training images (``seed``) and test images
    (``10_000 + seed``); the classifier trains for ``sum(stage_epochs)``
    full-batch epochs (Adam, ``lr``), as many as Y-Net's two stages together.
    """
    if not seeds:
        raise ValueError("run_ynet needs at least one seed, got none")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need n_train >= 1 and n_test >= 1, got {n_train} and {n_test}")
    epochs_1, epochs_2 = stage_epochs

    def build(run: Run) -> MultiTaskModel:
        return y_net(1, channels, len(TISSUE_NAMES), len(DIAGNOSIS_NAMES))

    stage1, stage2, classifier, weights, rows = [], [], [], {}, []
    for seed in seeds:
        train, test = make_biopsy(n_train, noise=noise, seed=seed), make_biopsy(n_test, noise=noise, seed=10_000 + seed)
        weights[seed] = class_balance_weights(torch.as_tensor(train.targets["segmentation"]), len(TISSUE_NAMES))
        tasks = ynet_tasks(weights[seed])
        first, joint, alone = two_stage_runs(train, test, seed)
        common = {"lr": lr, "metric": "accuracy", "device": device, "measure_every": 40}
        r1 = train_each([first], build, tasks, epochs=epochs_1, **common)
        r2 = train_each([joint], lambda run, m=r1.models[0]: copy.deepcopy(m), tasks, epochs=epochs_2, **common)
        rc = train_each([alone], build, tasks, epochs=epochs_1 + epochs_2, **common)
        stage1.append(r1), stage2.append(r2), classifier.append(rc)
        rows += [
            {"condition": CLASSIFIER, "seed": seed, "diagnosis": rc.summary.test_diagnosis[0], "segmentation": None},
            {
                "condition": YNET,
                "seed": seed,
                "diagnosis": r2.summary.test_diagnosis[0],
                "segmentation": r2.summary.test_segmentation[0],
            },
            {"condition": MASK, "seed": seed, "diagnosis": mask_diagnosis_accuracy(r2.models[0], train, test)},
        ]
    summary = pd.DataFrame(rows)
    return YNetResult(summary, concat_results(stage1), concat_results(stage2), concat_results(classifier), weights)


@torch.no_grad()
def mask_diagnosis_accuracy(model: MultiTaskModel, train: MultiTaskData, test: MultiTaskData) -> float:
    """Diagnostic accuracy on ``test`` of a classifier fit to the tissue fractions of ``model``'s predicted maps."""
    model.eval()
    device = next(model.parameters()).device
    x_train, y_train = train.batch(device)[:2]
    x_test, y_test = test.batch(device)[:2]
    features = tissue_fractions(model(x_train)["segmentation"]).cpu()
    linear = fit_fraction_classifier(features, y_train["diagnosis"].cpu(), len(DIAGNOSIS_NAMES))
    scores = linear(tissue_fractions(model(x_test)["segmentation"]).cpu())
    return accuracy(scores, y_test["diagnosis"].cpu())

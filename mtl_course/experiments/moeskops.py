r"""One network for three modalities against three dedicated networks (lecture B2).

Moeskops, Wolterink, van der Velden, Gilhuijs, Leiner, Viergever & Išgum,
"Deep Learning for Multi-Task Medical Image Segmentation in Multiple
Modalities", MICCAI 2016, arXiv 1704.03379: one CNN, not told the modality,
segments brain MRI, breast MRI and cardiac CTA into the union of their labels
plus a shared background, as well as a CNN trained for each task alone.

**The recipe** (:func:`moeskops_experiment`). Data from
:func:`~mtl_course.data.modalities.make_modalities` (:func:`splits`). The
*one network* (condition :data:`~mtl_course.experiments.labels.MTL`) is a
:class:`~mtl_course.models.union_segmentation.UnionSegmentationNet` with one
task per modality, trained on the mixed images; each task's loss is the
per-pixel cross-entropy over the union labels on that modality's images only
(:func:`~mtl_course.losses.cross_entropy`), and the task losses are combined
by a weighting method (``"equal"``: their sum). Each *dedicated* network
(:data:`~mtl_course.experiments.labels.STL`) is the same class, the same
size, with one task, trained on its modality's images only
(:func:`one_modality`). Every network is trained with
:func:`~mtl_course.experiments.engine.train_each` (Adam, shuffled
mini-batches) for the same number of epochs, so every training image is seen
equally often in both conditions and the three dedicated networks together
take as many optimiser steps as the one network. The weights after the last
epoch are scored (no early stopping).

**The measurements** (:func:`evaluate_modalities`): per modality and class the Dice
coefficient on the test images of that modality, pooled over the images
(:func:`~mtl_course.metrics.dice_scores`); the modality confusion matrix and
the cross-modality rate (:func:`~mtl_course.metrics.modality_confusion`,
:func:`~mtl_course.metrics.cross_modality_rate`); parameters and the CPU and
wall seconds of training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from mtl_course.data.modalities import CLASS_NAMES, LABEL_SETS, MODALITIES, N_CLASSES, make_modalities, modality_index
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, timed_train_each
from mtl_course.experiments.labels import MTL, STL
from mtl_course.losses import cross_entropy
from mtl_course.metrics import cross_modality_rate, dice_scores, modality_confusion
from mtl_course.models.union_segmentation import UnionSegmentationNet
from mtl_course.train import Task

#: The lecture's network: four 3 x 3 convolutions with these dilations (receptive field 17 pixels).
DILATIONS: tuple[int, ...] = (1, 1, 2, 4)


def splits(
    n_train: int | Mapping[str, int], seed: int, *, n_val: int = 8, n_test: int = 16, size: int = 24
) -> tuple[MultiTaskData, MultiTaskData, MultiTaskData]:
    """``(train, val, test)`` images of the three modalities; test and validation sets have every modality.

    Each split has its own generator seed derived from ``seed``
    (``3 * seed``, ``+ 1``, ``+ 2``), so the splits of one seed never share an image.
    """
    return (
        make_modalities(n_train, size=size, seed=3 * seed),
        make_modalities(n_val, size=size, seed=3 * seed + 1),
        make_modalities(n_test, size=size, seed=3 * seed + 2),
    )


def one_modality(data: MultiTaskData, modality: str) -> MultiTaskData:
    """The images of ``modality`` only, with that modality as the one task (a dedicated network's data)."""
    if modality not in data.tasks:
        raise KeyError(f"unknown modality {modality!r}; the data have {list(data.tasks)}")
    rows = (modality_index(data) == data.tasks.index(modality)).nonzero()[:, 0]
    if rows.numel() == 0:
        raise ValueError(f"the data have no {modality} images")
    subset = data.take(rows)
    return subset.with_targets({modality: subset.targets[modality]})


def build_union_network(tasks: Sequence[str], width: int = 8) -> UnionSegmentationNet:
    """The lecture's :class:`UnionSegmentationNet`: ``width`` channels per convolution, 2 x ``width`` hidden."""
    return UnionSegmentationNet(tasks, 1, [width] * len(DILATIONS), DILATIONS, 2 * width, N_CLASSES)


@torch.no_grad()
def segment(model: UnionSegmentationNet, x: torch.Tensor) -> torch.Tensor:
    """The predicted union label of every pixel, ``(B, H, W)`` (eval mode; every task reads the same output)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits = model(torch.as_tensor(x).to(device))[model.tasks[0]]
    model.train(was_training)
    return logits.argmax(1).cpu()


def evaluate_modalities(model: UnionSegmentationNet, test: MultiTaskData) -> tuple[pd.DataFrame, torch.Tensor]:
    """Per modality of ``model.tasks`` and class of its label set, the pooled Dice on its test images.

    Returns ``(dice, confusion)``: a table with columns ``modality``,
    ``class``, ``dice``, and the :func:`~mtl_course.metrics.modality_confusion`
    matrix over every test image (rows of modalities the model was not trained
    for are included: a dedicated network sees only its own modality, so
    only its row is filled).
    """
    which = modality_index(test)
    predicted = segment(model, test.x)
    rows = []
    for m in model.tasks:
        mine = which == test.tasks.index(m)
        target = torch.as_tensor(test.targets[m])[mine]
        for c, score in zip(LABEL_SETS[m], dice_scores(predicted[mine], target, LABEL_SETS[m]).tolist(), strict=True):
            rows.append({"modality": m, "class": CLASS_NAMES[c], "dice": score})
    trained = torch.isin(which, torch.tensor([test.tasks.index(m) for m in model.tasks]))
    confusion = modality_confusion(predicted[trained], which[trained], LABEL_SETS)
    return pd.DataFrame(rows), confusion


@dataclass
class ModalityExperiment:
    """What :func:`moeskops_experiment` measured.

    ``dice``: one row per (seed, condition, modality, class) with the pooled
    test Dice; ``rates``: one row per (seed, condition, modality) with the
    cross-modality rate; ``confusion``: the modality confusion matrix per
    ``(condition, seed)``; ``cost``: one row per trained network with
    ``parameters``, ``cpu_s`` and ``wall_s`` of training; ``results``: the
    engine's results, one per trained network.
    """

    dice: pd.DataFrame
    rates: pd.DataFrame
    confusion: dict[tuple[str, int], torch.Tensor]
    cost: pd.DataFrame
    results: list[ExperimentResult]


def _merge_rows(confusion: dict[tuple[str, int], torch.Tensor], key: tuple[str, int], matrix: torch.Tensor) -> None:
    """Store ``matrix`` under ``key``, or fill in its measured rows (the dedicated networks fill one row each)."""
    if key not in confusion:
        confusion[key] = matrix.clone()
        return
    measured = ~torch.isnan(matrix[:, 0])
    confusion[key][measured] = matrix[measured]


def moeskops_experiment(
    seeds: Sequence[int],
    n_train: int | Mapping[str, int] = 32,
    *,
    epochs: int = 40,
    batch_size: int = 16,
    lr: float = 1e-2,
    width: int = 8,
    size: int = 24,
    joint: bool = True,
    dedicated: Sequence[str] = MODALITIES,
    dedicated_epochs: int | None = None,
    dedicated_label: str = STL,
    weighting: str = "equal",
    device: torch.device | str | None = None,
) -> ModalityExperiment:
    """Train, per seed, the one network (if ``joint``) and a dedicated network per modality in ``dedicated``.

    ``n_train`` images per modality (or ``{modality: n}``: e.g. far fewer of
    one); the dedicated networks train for ``dedicated_epochs`` (default
    ``epochs``) and are labelled ``dedicated_label``. See the module
    docstring for the recipe; ``weighting`` names the method of
    :mod:`mtl_course.weighting` that combines the one network's task losses.
    """
    if not seeds:
        raise ValueError("need at least one seed, got none")
    unknown = [m for m in dedicated if m not in MODALITIES]
    if unknown:
        raise KeyError(f"no modality {unknown}; the modalities are {list(MODALITIES)}")
    if not joint and not dedicated:
        raise ValueError("nothing to train: joint=False and no dedicated modality")
    dice, rates, cost, confusion, results = [], [], [], {}, []
    for seed in seeds:
        train, val, test = splits(n_train, seed, size=size)
        runs = [(MTL, Run(MTL, seed, train, val, test), epochs)] if joint else []
        for m in dedicated:
            run = Run(dedicated_label, seed, one_modality(train, m), one_modality(val, m), one_modality(test, m))
            runs.append((dedicated_label, run, dedicated_epochs or epochs))
        for condition, run, n_epochs in runs:
            result, cpu_s, wall_s = timed_train_each(
                [run],
                lambda r: build_union_network(r.train.tasks, width),
                [Task(m, cross_entropy) for m in run.train.tasks],
                epochs=n_epochs,
                lr=lr,
                batch_size=batch_size,
                weighting=weighting,
                measure_every=n_epochs,
                device=device,
            )
            model = result.models[0]
            table, matrix = evaluate_modalities(model, test)
            dice.append(table.assign(seed=seed, condition=condition))
            for m, rate in zip(MODALITIES, cross_modality_rate(matrix).tolist(), strict=True):
                if m in model.tasks:
                    rates.append({"seed": seed, "condition": condition, "modality": m, "rate": rate})
            _merge_rows(confusion, (condition, seed), matrix)
            label = "all" if condition == MTL else model.tasks[0]
            parameters = model.parameter_counts()["total"]
            cost.append(
                {"seed": seed, "condition": condition, "modality": label, "parameters": parameters}
                | {"images": run.train.n, "epochs": n_epochs, "cpu_s": cpu_s, "wall_s": wall_s}
            )
            results.append(result)
    columns = ["seed", "condition", "modality", "class", "dice"]
    return ModalityExperiment(
        pd.concat(dice, ignore_index=True)[columns], pd.DataFrame(rates), confusion, pd.DataFrame(cost), results
    )

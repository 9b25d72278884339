"""Per-class Dice and the cross-modality confusion of lecture B2 (mtl_course.metrics, appended section).

Each formula against an independent computation: a brute-force pixel loop, scikit-learn's ``f1_score``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from mtl_course.data import IGNORE_INDEX
from mtl_course.metrics import cross_modality_rate, dice, dice_scores, modality_confusion


def _random_maps(seed: int, shape=(5, 7, 6), classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    predicted = torch.randint(0, classes, shape, generator=g)
    target = torch.randint(0, classes, shape, generator=g)
    target[torch.rand(shape, generator=g) < 0.1] = IGNORE_INDEX
    return predicted, target


def _brute_force(predicted: torch.Tensor, target: torch.Tensor, c: int) -> float:
    both = p = y = 0
    for pi, yi in zip(predicted.reshape(-1).tolist(), target.reshape(-1).tolist(), strict=True):
        if yi == IGNORE_INDEX:
            continue
        p += pi == c
        y += yi == c
        both += pi == c and yi == c
    return 2 * both / (p + y) if p + y else math.nan


@pytest.mark.parametrize("seed", range(5))
def test_pooled_dice_is_a_brute_force_count_and_sklearns_f1(seed: int) -> None:
    predicted, target = _random_maps(seed)
    scores = dice_scores(predicted, target, range(4))
    labelled = target != IGNORE_INDEX
    reference = f1_score(target[labelled].numpy(), predicted[labelled].numpy(), labels=range(4), average=None)
    for c in range(4):
        assert scores[c].item() == pytest.approx(_brute_force(predicted, target, c), abs=1e-12)
    np.testing.assert_allclose(scores.numpy(), reference, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_per_image_dice_is_the_mean_of_each_images_dice(seed: int) -> None:
    predicted, target = _random_maps(seed, classes=6)
    per_image = dice_scores(predicted, target, [1, 5], reduction="per_image")
    for k, c in enumerate([1, 5]):
        values = [_brute_force(predicted[i], target[i], c) for i in range(predicted.shape[0])]
        assert per_image[k].item() == pytest.approx(np.nanmean(values), abs=1e-12)


def test_the_empty_class_convention() -> None:
    target = torch.tensor([[[0, 1], [1, 0]], [[0, 0], [0, 0]]])
    predicted = torch.tensor([[[0, 1], [0, 0]], [[0, 0], [0, 0]]])
    # class 2 is neither predicted nor present: undefined, NaN (sklearn would report 0 with a warning)
    assert torch.isnan(dice_scores(predicted, target, [2])).all()
    # class 1 is absent from image 2 in both maps: image 2 is skipped by the per-image mean
    assert dice_scores(predicted, target, [1], reduction="per_image").item() == pytest.approx(2 / 3)
    # the mean Dice over foreground classes skips the undefined ones (and is 1 if all are)
    logits = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    assert dice(logits, target) == pytest.approx(2 / 3)
    assert dice(torch.zeros(2, 3, 2, 2), torch.zeros_like(target)) == 1.0


def test_dice_is_one_for_a_perfect_prediction_and_zero_for_a_disjoint_one() -> None:
    target = torch.tensor([[0, 1, 1, 2]])
    assert dice_scores(target, target, [1, 2]).tolist() == [1.0, 1.0]
    assert dice_scores(torch.tensor([[1, 0, 0, 0]]), target, [1]).tolist() == [0.0]


def test_dice_bad_inputs_are_named() -> None:
    labels = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(3, 2\)"):
        dice_scores(labels, labels.T, [1])
    with pytest.raises(ValueError, match="at least one class, got an empty list"):
        dice_scores(labels, labels, [])
    with pytest.raises(TypeError, match="integer label maps, got torch.float32"):
        dice_scores(labels.float(), labels, [1])
    with pytest.raises(ValueError, match="reduction must be 'pooled' or 'per_image'"):
        dice_scores(labels, labels, [1], reduction="mean")


SETS = {"brain": [1, 2], "breast": [3], "cta": [4]}


@pytest.mark.parametrize("seed", range(3))
def test_modality_confusion_is_a_brute_force_count(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    predicted = torch.randint(0, 5, (6, 4, 4), generator=g)
    modality = torch.tensor([0, 1, 2, 0, 1, 2])
    matrix = modality_confusion(predicted, modality, SETS)
    group_of = {0: 3, 1: 0, 2: 0, 3: 1, 4: 2}
    for m in range(3):
        counts = [0] * 4
        for i in range(6):
            if modality[i] == m:
                for label in predicted[i].reshape(-1).tolist():
                    counts[group_of[label]] += 1
        expected = [k / sum(counts) for k in counts]
        np.testing.assert_allclose(matrix[m].numpy(), expected, atol=1e-12)
        assert cross_modality_rate(matrix)[m].item() == pytest.approx(
            sum(expected[k] for k in range(3) if k != m), abs=1e-12
        )
    np.testing.assert_allclose(matrix.sum(1).numpy(), 1.0)


def test_perfect_modality_recognition_has_rate_zero_and_a_missing_modality_a_nan_row() -> None:
    predicted = torch.tensor([[1, 0], [3, 3]])
    matrix = modality_confusion(predicted, torch.tensor([0, 1]), SETS)
    assert cross_modality_rate(matrix)[:2].tolist() == [0.0, 0.0]
    assert torch.isnan(matrix[2]).all()


def test_modality_confusion_bad_inputs_are_named() -> None:
    predicted = torch.zeros(2, 3, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="non-empty label set"):
        modality_confusion(predicted, torch.tensor([0, 1]), {"a": [1], "b": []})
    with pytest.raises(ValueError, match=r"one index per image of predicted \(2, 3, 3\), got shape \(3,\)"):
        modality_confusion(predicted, torch.tensor([0, 1, 1]), SETS)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\), got \[0, 7\]"):
        modality_confusion(predicted, torch.tensor([0, 7]), SETS)
    with pytest.raises(ValueError, match=r"\(M, M \+ 1\) modality confusion matrix, got shape \(3, 3\)"):
        cross_modality_rate(torch.zeros(3, 3))

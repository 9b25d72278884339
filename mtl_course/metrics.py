"""Per-task metrics and the multi-task delta against single-task baselines.

Metrics take ``(prediction, target, mask=None)`` like the losses of
:mod:`mtl_course.losses` (missing labels: ``mask`` false, ``NaN`` targets or
class ``-100``) and return a Python float. :data:`HIGHER_IS_BETTER` records
each metric's direction.

The multi-task delta (Maninis et al., CVPR 2019; Vandenhende et al., TPAMI
2021, arXiv 2004.13379) compares a multi-task model with single-task
baselines:

    Delta = (1/T) sum_t (-1)^{l_t} (M_t - M_STL,t) / M_STL,t,

``l_t = 1`` when lower is better. With several metrics per task, libraries
differ: :func:`multitask_delta` averages within each task first
(``average="task"``) or over all metrics at once (``average="metric"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch

from mtl_course.losses import IGNORE_INDEX, expand_mask

#: Direction of each metric of this module: ``True`` when higher is better.
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "mse": False, "mae": False, "auc": True, "dice": True}


def _labelled(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    labelled = ~torch.isnan(target) if target.is_floating_point() else target != IGNORE_INDEX
    return labelled if mask is None else labelled & expand_mask(mask.bool(), target.shape)


def accuracy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Fraction of labelled items whose arg-max class over dim 1 equals the label.

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0, -100]))
    0.5
    """
    labelled = _labelled(target, mask)
    correct = (logits.argmax(dim=1) == target) & labelled
    return correct.sum().item() / max(labelled.sum().item(), 1)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean squared error over the labelled items.

    >>> mse(torch.tensor([1.0, 2.0]), torch.tensor([0.0, float("nan")]))
    1.0
    """
    labelled = _labelled(target, mask)
    return ((pred.float() - target.float())[labelled] ** 2).mean().item()


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean absolute error over the labelled items.

    >>> mae(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]))
    1.0
    """
    labelled = _labelled(target, mask)
    return (pred.float() - target.float())[labelled].abs().mean().item()


def auc(score: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Area under the ROC curve of a binary task (Mann--Whitney U, ties count 1/2).

    ``AUC = (sum of the positives' ranks - P(P+1)/2) / (P N)`` with average
    ranks for tied scores. ``score`` is any monotone score (logit or probability).

    >>> auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    0.75
    """
    labelled = _labelled(target, mask)
    s, y = score.reshape(-1)[labelled.reshape(-1)].double(), target.reshape(-1)[labelled.reshape(-1)] > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUC needs both classes among the labelled items, got {n_pos} positives and {n_neg} negatives"
        )
    order = torch.sort(s).values
    # average rank (1-based) of each score: mean of its first and last position among equal scores
    lo = torch.searchsorted(order, s, right=False).double()
    hi = torch.searchsorted(order, s, right=True).double()
    ranks = (lo + 1 + hi) / 2
    return ((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def dice(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean Dice ``2|P_c & Y_c| / (|P_c| + |Y_c|)`` over the foreground classes ``c >= 1``.

    ``logits`` is ``(B, C, ...)`` (``P`` = arg-max over dim 1), ``target``
    ``(B, ...)`` with class indices. Classes absent from both prediction and
    label are skipped; if all are, the Dice is 1. Each class's Dice is
    :func:`dice_scores` pooled over the batch.

    >>> logits = torch.tensor([[[5.0, 5.0, 0.0, 0.0]], [[0.0, 0.0, 5.0, 5.0]]]).transpose(0, 1)
    >>> dice(logits, torch.tensor([[0, 1, 1, 1]]))  # 2*2 / (2 + 3)
    0.8
    """
    target = torch.where(_labelled(target, mask), target, IGNORE_INDEX)
    scores = dice_scores(logits.argmax(dim=1), target, range(1, logits.shape[1]))
    present = scores[~torch.isnan(scores)]
    return present.mean().item() if present.numel() else 1.0


def multitask_delta(
    mtl: Mapping[str, Mapping[str, float]],
    stl: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, Mapping[str, bool]],
    average: Literal["task", "metric"] = "task",
) -> float:
    """The multi-task delta ``(1/T) sum_t (-1)^{l_t} (M_t - M_STL,t) / M_STL,t`` as a fraction.

    ``mtl``, ``stl`` and ``higher_is_better`` map task -> metric -> value
    (or direction); the single-task baseline is an explicit input. With
    ``average="task"`` the relative changes are averaged within each task,
    then over tasks; with ``"metric"`` over all metrics at once. Multiply by
    100 for the percentages papers print.

    >>> mtl = {"seg": {"miou": 0.55}, "depth": {"abs": 0.50, "rel": 0.20}}
    >>> stl = {"seg": {"miou": 0.50}, "depth": {"abs": 0.40, "rel": 0.25}}
    >>> hib = {"seg": {"miou": True}, "depth": {"abs": False, "rel": False}}
    >>> round(multitask_delta(mtl, stl, hib), 4)  # (0.1 + (-0.25 + 0.2) / 2) / 2
    0.0375
    >>> round(multitask_delta(mtl, stl, hib, average="metric"), 4)  # (0.1 - 0.25 + 0.2) / 3
    0.0167
    """
    if average not in ("task", "metric"):
        raise ValueError(f"average must be 'task' or 'metric', got {average!r}")
    if set(mtl) != set(stl) or set(mtl) != set(higher_is_better):
        raise KeyError(
            f"the multi-task results, baselines and directions must name the same tasks; "
            f"got {sorted(mtl)}, {sorted(stl)} and {sorted(higher_is_better)}"
        )
    per_task: list[list[float]] = []
    for task in mtl:
        if set(mtl[task]) != set(stl[task]) or set(mtl[task]) != set(higher_is_better[task]):
            raise KeyError(
                f"task {task!r}: the metrics differ: multi-task {sorted(mtl[task])}, "
                f"baseline {sorted(stl[task])}, directions {sorted(higher_is_better[task])}"
            )
        changes = []
        for metric, value in mtl[task].items():
            base = stl[task][metric]
            if base == 0:
                raise ZeroDivisionError(f"task {task!r}: the single-task baseline of {metric!r} is 0")
            sign = 1.0 if higher_is_better[task][metric] else -1.0
            changes.append(sign * (value - base) / base)
        per_task.append(changes)
    if average == "task":
        return sum(sum(c) / len(c) for c in per_task) / len(per_task)
    flat = [c for changes in per_task for c in changes]
    return sum(flat) / len(flat)


# -- depth, surface normals and semantic labels (Eigen & Fergus, lecture B1) ----------
# The error measures of Eigen & Fergus (ICCV 2015, arXiv 1411.4734), Tables 1-4, on the pixels with ground truth.
# Depths are given as log depths (B, H, W), as the depth loss takes them; normals as (B, 3, H, W).
HIGHER_IS_BETTER.update(
    {
        "delta_1.25": True,
        "abs_rel": False,
        "rmse_log": False,
        "mean_angle": False,
        "median_angle": False,
        "within_11.25": True,
        "within_22.5": True,
        "within_30": True,
        "mean_iou": True,
    }
)


def _log_depth_pairs(
    log_pred: torch.Tensor, log_target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The predicted and true log depths of the pixels with ground truth (finite target, ``mask`` true), flat."""
    if log_pred.shape != log_target.shape:
        raise ValueError(
            f"depth metrics need prediction and target of the same shape, got {tuple(log_pred.shape)} "
            f"and {tuple(log_target.shape)}"
        )
    valid = torch.isfinite(log_target)
    if mask is not None:
        valid &= expand_mask(mask.bool(), log_target.shape)
    if not valid.any():
        raise ValueError("depth metrics need at least one pixel with ground truth, got none")
    return log_pred[valid].double(), log_target[valid].double()


def depth_delta(
    log_pred: torch.Tensor, log_target: torch.Tensor, mask: torch.Tensor | None = None, threshold: float = 1.25
) -> float:
    r"""Threshold accuracy: the fraction of pixels with :math:`\max(D_i / D^*_i, D^*_i / D_i) < \text{threshold}`.

    In log depths: :math:`|\log D_i - \log D^*_i| < \log(\text{threshold})`.

    >>> depth_delta(torch.log(torch.tensor([1.0, 1.3, 2.0])), torch.zeros(3))
    0.3333333333333333
    """
    lp, lt = _log_depth_pairs(log_pred, log_target, mask)
    return ((lp - lt).abs() < torch.log(torch.tensor(threshold, dtype=lp.dtype))).double().mean().item()


def depth_abs_rel(log_pred: torch.Tensor, log_target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""Absolute relative difference :math:`\frac{1}{n} \sum_i |D_i - D^*_i| / D^*_i`.

    >>> round(depth_abs_rel(torch.log(torch.tensor([1.5, 2.0])), torch.log(torch.tensor([1.0, 4.0]))), 6)
    0.5
    """
    lp, lt = _log_depth_pairs(log_pred, log_target, mask)
    d, d_true = lp.exp(), lt.exp()
    return ((d - d_true).abs() / d_true).mean().item()


def depth_rmse_log(log_pred: torch.Tensor, log_target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""RMSE of the log depth :math:`\sqrt{\frac{1}{n} \sum_i (\log D_i - \log D^*_i)^2}`.

    >>> depth_rmse_log(torch.tensor([2.0, -2.0, 5.0]), torch.tensor([0.0, 0.0, float("nan")]))  # sqrt((4 + 4) / 2)
    2.0
    """
    lp, lt = _log_depth_pairs(log_pred, log_target, mask)
    return ((lp - lt) ** 2).mean().sqrt().item()


def normal_angle_errors(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The angles :math:`\arccos(\hat N_i \cdot \hat N^*_i)` in degrees of the pixels with ground truth, flat.

    Both normals are scaled to unit length first; a pixel with a ``NaN``
    target component or ``mask`` false (``(B,)``, ``(B, H, W)`` or
    ``(B, 3, H, W)``) is left out.

    >>> n = torch.zeros(1, 3, 1, 2); n[0, 2] = 1.0
    >>> t = n.clone(); t[0, :, 0, 1] = torch.tensor([1.0, 0.0, 0.0])
    >>> normal_angle_errors(n, t).tolist()
    [0.0, 90.0]
    """
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise ValueError(
            f"normal metrics expect normals of shape (B, 3, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    valid = ~torch.isnan(target).any(dim=1)
    if mask is not None:
        mask = mask.bool()
        valid &= mask.all(dim=1) if mask.dim() == 4 else expand_mask(mask, valid.shape)
    if not valid.any():
        raise ValueError("normal metrics need at least one pixel with ground truth, got none")
    p = torch.nn.functional.normalize(pred.double(), dim=1).permute(0, 2, 3, 1)[valid]
    t = torch.nn.functional.normalize(target.double(), dim=1).permute(0, 2, 3, 1)[valid]
    return torch.rad2deg(torch.arccos((p * t).sum(dim=1).clamp(-1.0, 1.0)))


def normal_mean_angle(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """The mean angle error in degrees (:func:`normal_angle_errors`)."""
    return normal_angle_errors(pred, target, mask).mean().item()


def normal_median_angle(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """The median angle error in degrees (the mean of the two middle values for an even count, as NumPy's)."""
    return torch.quantile(normal_angle_errors(pred, target, mask), 0.5).item()


def normal_within(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, degrees: float = 11.25
) -> float:
    """The fraction of pixels whose angle error is below ``degrees`` (the paper reports 11.25, 22.5 and 30)."""
    return (normal_angle_errors(pred, target, mask) < degrees).double().mean().item()


def mean_iou(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""Mean intersection over union :math:`\frac{1}{|C|} \sum_c |P_c \cap Y_c| / |P_c \cup Y_c|`.

    ``logits`` ``(B, C, ...)`` (:math:`P_c`: the pixels whose arg-max is
    :math:`c`), ``target`` ``(B, ...)``; over the labelled pixels, and over
    the classes :math:`C` present in the prediction or the label (as
    scikit-learn's ``jaccard_score(average="macro")``). The pixel accuracy
    is :func:`accuracy`.

    >>> logits = torch.tensor([[[5.0, 5.0, 0.0, 0.0]], [[0.0, 0.0, 5.0, 5.0]]]).transpose(0, 1)
    >>> mean_iou(logits, torch.tensor([[0, 1, 1, 1]]))  # (1/2 + 2/3) / 2
    0.5833333333333333
    """
    labelled = _labelled(target, mask)
    if not labelled.any():
        raise ValueError("mean_iou needs at least one labelled pixel, got none")
    predicted = logits.argmax(dim=1)[labelled]
    truth = target[labelled]
    scores = []
    for c in range(logits.shape[1]):
        p, y = predicted == c, truth == c
        union = (p | y).sum().item()
        if union:
            scores.append((p & y).sum().item() / union)
    return sum(scores) / len(scores)


# -- per-class Dice and cross-modality confusion (Moeskops et al., lecture B2) --------------------------
def dice_scores(
    predicted: torch.Tensor,
    target: torch.Tensor,
    classes: Iterable[int],
    reduction: Literal["pooled", "per_image"] = "pooled",
) -> torch.Tensor:
    r"""The Dice coefficient of every class in ``classes``, as a float64 tensor in their order.

    For class :math:`c` with predicted set :math:`P_c` and labelled set :math:`Y_c`,

    .. math:: \mathrm{Dice}_c = \frac{2\,|P_c \cap Y_c|}{|P_c| + |Y_c|},

    the F1 score of the pixels of class :math:`c` (Dice, Ecology 26, 1945,
    doi:10.2307/1932409; lecture B2 scores each tissue with it). ``predicted`` and
    ``target`` are label maps ``(B, ...)``; pixels whose target is
    ``IGNORE_INDEX`` count in neither set. Two ways to take a batch:

    * ``"pooled"`` -- count :math:`|P_c \cap Y_c|`, :math:`|P_c|`, :math:`|Y_c|`
      over every pixel of the batch, then take the ratio (one big image;
      equals scikit-learn's ``f1_score`` on the flattened labels);
    * ``"per_image"`` -- the ratio in each image, then the mean over the
      images (each image weighs the same, however large its structure).

    The empty-class convention: where :math:`|P_c| + |Y_c| = 0` (the class is
    neither predicted nor present) the Dice is undefined, ``NaN``, and a
    per-image mean skips those images; it is ``NaN`` when every image does.

    >>> target = torch.tensor([[0, 1, 1, 2]])
    >>> dice_scores(torch.tensor([[1, 1, 0, 0]]), target, [1, 2, 3]).tolist()  # 2*1/(2+2), 0/(0+1), 0/0
    [0.5, 0.0, nan]
    """
    classes = list(classes)
    if not classes:
        raise ValueError("dice_scores needs at least one class, got an empty list")
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target label maps must have the same shape, got {tuple(predicted.shape)} "
            f"and {tuple(target.shape)}"
        )
    if predicted.is_floating_point() or target.is_floating_point():
        raise TypeError(f"dice_scores compares integer label maps, got {predicted.dtype} and {target.dtype}")
    if reduction not in ("pooled", "per_image"):
        raise ValueError(f"reduction must be 'pooled' or 'per_image', got {reduction!r}")
    labelled = target != IGNORE_INDEX
    dims = tuple(range(predicted.dim())) if reduction == "pooled" else tuple(range(1, predicted.dim()))
    scores = []
    for c in classes:
        p, y = (predicted == c) & labelled, target == c
        overlap = (p & y).sum(dims).double()
        total = (p.sum(dims) + y.sum(dims)).double()
        ratio = 2 * overlap / total  # 0/0 = NaN: the empty-class convention
        scores.append(ratio if reduction == "pooled" else ratio.nanmean())
    return torch.stack(scores)


def modality_confusion(
    predicted: torch.Tensor, modality: torch.Tensor, label_sets: Mapping[str, Iterable[int]]
) -> torch.Tensor:
    r"""Row-normalised confusion between modalities: which label *set* each modality's pixels are given.

    ``predicted`` ``(B, ...)`` holds union labels, ``modality`` ``(B,)`` the
    index of each image's modality into ``label_sets`` (name -> that
    modality's foreground labels; the labels of no set are the shared
    background). Entry :math:`(m, k)` of the returned ``(M, M + 1)`` float64
    matrix is the fraction of the pixels of modality :math:`m`'s images that
    are predicted with a label of set :math:`k`; the last column is the shared
    background. Rows of modalities without images are ``NaN``.

    >>> predicted = torch.tensor([[0, 1, 1, 3], [2, 2, 0, 0]])
    >>> modality_confusion(predicted, torch.tensor([0, 1]), {"a": [1], "b": [2, 3]}).tolist()
    [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]]
    """
    sets = {name: list(labels) for name, labels in label_sets.items()}
    if not sets or any(not labels for labels in sets.values()):
        raise ValueError(f"every modality needs a non-empty label set, got {sets}")
    if modality.dim() != 1 or modality.shape[0] != predicted.shape[0]:
        raise ValueError(
            f"modality must be (B,) with one index per image of predicted {tuple(predicted.shape)}, "
            f"got shape {tuple(modality.shape)}"
        )
    if modality.numel() and (int(modality.min()) < 0 or int(modality.max()) >= len(sets)):
        raise ValueError(f"modality indices must lie in [0, {len(sets)}), got {modality.unique().tolist()}")
    group = torch.full_like(predicted, len(sets))  # the shared background
    for k, labels in enumerate(sets.values()):
        group[torch.isin(predicted, torch.as_tensor(labels, device=predicted.device))] = k
    matrix = torch.full((len(sets), len(sets) + 1), float("nan"), dtype=torch.float64)
    for m in range(len(sets)):
        pixels = group[modality == m].reshape(-1)
        if pixels.numel():
            matrix[m] = torch.bincount(pixels, minlength=len(sets) + 1).double().cpu() / pixels.numel()
    return matrix


def cross_modality_rate(confusion: torch.Tensor) -> torch.Tensor:
    r"""Per modality, the fraction of its pixels predicted with a label of *another* modality's set.

    From a :func:`modality_confusion` matrix :math:`C` (``(M, M + 1)``, last
    column the background): :math:`r_m = \sum_{k \ne m,\,k < M} C_{mk}`.

    >>> cross_modality_rate(torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]], dtype=torch.float64)).tolist()
    [0.25, 0.0]
    """
    M = confusion.shape[0]
    if confusion.shape != (M, M + 1):
        raise ValueError(f"expected an (M, M + 1) modality confusion matrix, got shape {tuple(confusion.shape)}")
    return confusion[:, :M].sum(1) - confusion.diagonal()


# -- rare binary lesions: sensitivity and false positives (Playout et al., lecture B13) -------------
def _binary_outcomes(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted, positive)`` booleans over the labelled items: logit above 0 (probability above 1/2), target 1."""
    if logits.shape != target.shape:
        raise ValueError(
            f"logits and target must have the same shape, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    labelled = _labelled(target, mask)
    if not labelled.any():
        raise ValueError("no labelled item to score: every target is missing (NaN) or masked")
    return (logits > 0)[labelled], (target > 0.5)[labelled]


def sensitivity(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""The true-positive rate :math:`TP / (TP + FN)` of a binary prediction (logit > 0), NaN without positives.

    Playout, Duval & Cheriet (MICCAI 2018, doi:10.1007/978-3-030-00934-2_37)
    report lesion segmentation by sensitivity (and specificity, :func:`false_positive_rate`).

    >>> sensitivity(torch.tensor([2.0, -1.0, 3.0, 1.0]), torch.tensor([1.0, 1.0, 0.0, float("nan")]))
    0.5
    """
    predicted, positive = _binary_outcomes(logits, target, mask)
    n_positive = int(positive.sum())
    return (predicted & positive).sum().item() / n_positive if n_positive else float("nan")


def false_positive_rate(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""The false-positive rate :math:`FP / (FP + TN)` (one minus the specificity), NaN without negatives.

    >>> false_positive_rate(torch.tensor([2.0, -1.0, 3.0, -2.0]), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    0.3333333333333333
    """
    predicted, positive = _binary_outcomes(logits, target, mask)
    n_negative = int((~positive).sum())
    return (predicted & ~positive).sum().item() / n_negative if n_negative else float("nan")

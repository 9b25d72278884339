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

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch

from mtl_course.losses import IGNORE_INDEX, expand_mask, labelled_faces

#: Direction of each metric of this module: ``True`` when higher is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "mse": False,
    "mae": False,
    "auc": True,
    "dice": True,
    "landmark_error": False,
}


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


# -- task affinity and task grouping (Lu et al., fully-adaptive feature sharing) --------------
# Lu, Kumar, Zhai, Cheng, Javidi & Feris, "Fully-adaptive Feature Sharing in Multi-Task Networks with Applications in
# Person Attribute Classification", CVPR 2017, arXiv 1611.05377. The formulas below follow the authors' reference
# implementation (github.com/luyongxi/deep_share, lib/solvers/classification_sw.py, commit 5286384); lecture B9 says
# which parts of the paper's text could be checked.
def _matrix(values: object, what: str, ndim: int = 2) -> np.ndarray:
    """``values`` as a finite float64 array of ``ndim`` dimensions, or an error naming ``what`` was wrong."""
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{what} must be a non-empty {ndim}-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite, got NaN or infinite values")
    return array


def error_margins(
    outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], tasks: Sequence[str]
) -> torch.Tensor:
    r"""Per example and task the error margin :math:`m_{nt} = 1 - p_t(y_{nt} \mid x_n)`, an ``(N, T)`` tensor.

    :math:`p_t` is the softmax over dim 1 of task ``t``'s logits ``(N, C)``, :math:`y_{nt}` the class label. For two
    classes this is the reference code's margin :math:`|y - \sigma(z)|` of a sigmoid output. Labels must be present.

    >>> out = {"a": torch.tensor([[0.0, 0.0], [2.0, 0.0]])}
    >>> margins = error_margins(out, {"a": torch.tensor([1, 1])}, ["a"])
    >>> [round(m, 4) for m in margins.squeeze(1).tolist()]  # 1 - 1/2, 1 - 1/(1 + e^2)
    [0.5, 0.8808]
    """
    columns = []
    for task in tasks:
        if task not in outputs or task not in targets:
            raise KeyError(
                f"task {task!r} needs an output and a target; outputs have {list(outputs)}, targets {list(targets)}"
            )
        logits, y = outputs[task], targets[task]
        if logits.ndim != 2 or y.shape != logits.shape[:1]:
            raise ValueError(
                f"task {task!r}: expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(y.shape)}"
            )
        if bool(((y < 0) | (y >= logits.shape[1])).any()):
            raise ValueError(
                f"task {task!r}: every label must be a class 0..{logits.shape[1] - 1}, got a missing "
                "or out-of-range label"
            )
        p = torch.softmax(logits.float(), dim=1).gather(1, y.long().unsqueeze(1)).squeeze(1)
        columns.append(1.0 - p)
    if not columns:
        raise ValueError("error_margins needs at least one task, got none")
    return torch.stack(columns, dim=1)


def task_affinity(difficult: object) -> np.ndarray:
    r"""Lu et al.'s task affinity from an ``(N, T)`` table of difficult (1) and simple (0) examples.

    .. math::

        A_{ij} = P(e \text{ difficult for } i \text{ and } j) + P(e \text{ simple for } i \text{ and } j)
               = \frac{1}{N}\big(D^\top D + (1 - D)^\top (1 - D)\big)_{ij},

    the probability that two tasks agree about an example being hard; :math:`A_{ii} = 1`.

    >>> task_affinity([[1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]]).round(2).tolist()
    [[1.0, 0.5, 0.75], [0.5, 1.0, 0.25], [0.75, 0.25, 1.0]]
    """
    d = _matrix(difficult, "the table of difficult examples")
    if not np.isin(d, (0.0, 1.0)).all():
        raise ValueError("the table of difficult examples must hold only 0 (simple) and 1 (difficult)")
    return (d.T @ d + (1 - d).T @ (1 - d)) / d.shape[0]


class AffinityEstimate:
    r"""Lu et al.'s running estimate of the task affinity during training, with exponential forgetting.

    Each :meth:`update` takes the error margins of a batch, ``(N, T)``. It updates the running mean margin
    :math:`\bar m_t` of every task, calls an example *difficult* for task :math:`t` when
    :math:`m_{nt} \ge \bar m_t`, and updates the running joint probabilities of "difficult for both" and
    "simple for both"; their sum is the affinity :math:`A` (:func:`task_affinity`). Every running value is the
    weighted mean :math:`\sum_k \gamma^{K-k} v_k / \sum_k \gamma^{K-k}` over the batches :math:`k = 1..K` so far
    (``decay`` :math:`\gamma`). The reference code classifies a batch with the mean margin of the batches
    *before* it (starting from 0, so the first batch counts as difficult for every task); here the running
    mean includes the current batch.

    >>> est = AffinityEstimate(decay=0.5)
    >>> est.update(torch.tensor([[0.9, 0.8], [0.1, 0.2]])).affinity.tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(self, decay: float = 0.9) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.weight = 0.0
        self.mean_margin: np.ndarray | None = None
        self.both_difficult: np.ndarray | None = None
        self.both_simple: np.ndarray | None = None

    def _average(self, old: np.ndarray | None, new: np.ndarray, weight: float) -> np.ndarray:
        return new if old is None else (self.decay * self.weight * old + new) / weight

    def update(self, margins: object) -> AffinityEstimate:
        """Add one batch of error margins ``(N, T)``; returns ``self``."""
        m = _matrix(margins, "the error margins")
        if self.mean_margin is not None and m.shape[1] != self.mean_margin.size:
            raise ValueError(f"the error margins have {m.shape[1]} tasks, earlier batches had {self.mean_margin.size}")
        weight = self.decay * self.weight + 1.0
        self.mean_margin = self._average(self.mean_margin, m.mean(0), weight)
        d = (m >= self.mean_margin).astype(np.float64)
        self.both_difficult = self._average(self.both_difficult, d.T @ d / len(d), weight)
        self.both_simple = self._average(self.both_simple, (1 - d).T @ (1 - d) / len(d), weight)
        self.weight = weight
        return self

    @property
    def affinity(self) -> np.ndarray:
        """The current affinity matrix :math:`A`, ``(T, T)``."""
        if self.both_difficult is None or self.both_simple is None:
            raise ValueError("the affinity estimate has seen no batch yet; call update(margins) first")
        return self.both_difficult + self.both_simple


Partition = list[list[int]]


def _check_partition(partition: Sequence[Sequence[int]], size: int) -> Partition:
    groups = [sorted(int(i) for i in group) for group in partition]
    flat = sorted(i for group in groups for i in group)
    if any(not group for group in groups) or flat != list(range(size)):
        raise ValueError(f"the groups must split 0..{size - 1} into non-empty disjoint groups, got {partition}")
    return groups


def _affinity_matrix(affinity: object) -> np.ndarray:
    a = _matrix(affinity, "the affinity matrix")
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"the affinity matrix must be square, got shape {a.shape}")
    return a


def group_affinity(affinity: object, partition: Sequence[Sequence[int]]) -> np.ndarray:
    r"""The affinity between groups of tasks (branches): a pessimistic average of the task affinities.

    .. math::

        \tilde A_{kl} = \tfrac12\big(b_{kl} + b_{lk}\big), \qquad
        b_{kl} = \frac{1}{|g_k|}\sum_{i \in g_k} \min_{j \in g_l} A_{ij},

    every task of group :math:`k` paired with its *least* related task of group :math:`l`. The diagonal
    :math:`\tilde A_{kk}` is the group's own cohesion (1 for a single task).

    >>> A = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.4], [0.2, 0.4, 1.0]])
    >>> group_affinity(A, [[0, 1], [2]]).round(4).tolist()  # b_01 = (0.2 + 0.4) / 2, b_10 = 0.2
    [[0.9, 0.25], [0.25, 1.0]]
    """
    a = _affinity_matrix(affinity)
    groups = _check_partition(partition, len(a))
    b = np.array([[a[np.ix_(gk, gl)].min(axis=1).mean() for gl in groups] for gk in groups])
    return (b + b.T) / 2


def separation_cost(affinity: object, partition: Sequence[Sequence[int]]) -> float:
    r"""How badly a grouping keeps unrelated tasks together: :math:`\frac1C \sum_{k=1}^{C} (1 - \tilde A_{kk})`.

    >>> A = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.4], [0.2, 0.4, 1.0]])
    >>> round(separation_cost(A, [[0, 1], [2]]), 4), round(separation_cost(A, [[0, 1, 2]]), 4)
    (0.05, 0.7333)
    """
    return float(np.mean(1.0 - np.diag(group_affinity(affinity, partition))))


def branching_loss(
    affinity: object, partition: Sequence[Sequence[int]], branch_cost: float, separation_weight: float
) -> float:
    r"""The criterion that picks the number of branches :math:`C` at a layer:

    .. math:: L(C) = (C - 1)\, c_\ell + \alpha\, \frac1C \sum_{k=1}^{C} \big(1 - \tilde A_{kk}\big),

    the cost :math:`c_\ell` of every branch added at layer :math:`\ell` against the separation cost
    (:func:`separation_cost`) weighted by :math:`\alpha` (``separation_weight``).

    >>> A = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.4], [0.2, 0.4, 1.0]])
    >>> round(branching_loss(A, [[0, 1], [2]], branch_cost=0.1, separation_weight=1.0), 4)  # 0.1 + 0.05
    0.15
    """
    if not (branch_cost >= 0 and separation_weight >= 0 and math.isfinite(branch_cost + separation_weight)):
        raise ValueError(
            f"branch_cost and separation_weight must be finite and >= 0, got {branch_cost} and {separation_weight}"
        )
    c = len(_check_partition(partition, len(_affinity_matrix(affinity))))
    return (c - 1) * branch_cost + separation_weight * separation_cost(affinity, partition)


def cluster_tasks(affinity: object, n_groups: int, repeats: int = 5, seed: int = 0) -> Partition:
    """Split the tasks into ``n_groups`` groups by spectral clustering of the affinity matrix.

    As in the reference code: scikit-learn's ``SpectralClustering(affinity="precomputed")``, repeated with
    ``repeats`` random states, keeping the split with the lowest :func:`separation_cost`. Groups are sorted by
    their first task.

    >>> A = np.array([[1, .9, .1, .1], [.9, 1, .1, .1], [.1, .1, 1, .8], [.1, .1, .8, 1]])
    >>> cluster_tasks(A, 2)
    [[0, 1], [2, 3]]
    """
    from sklearn.cluster import SpectralClustering

    a = _affinity_matrix(affinity)
    if not 1 <= n_groups <= len(a):
        raise ValueError(f"n_groups must be between 1 and the number of tasks {len(a)}, got {n_groups}")
    if n_groups in (1, len(a)):
        return [list(range(len(a)))] if n_groups == 1 else [[i] for i in range(len(a))]
    best: Partition = []
    best_cost = math.inf
    for r in range(repeats):
        spectral = SpectralClustering(n_clusters=n_groups, affinity="precomputed", random_state=seed + r)
        labels = spectral.fit_predict((a + a.T) / 2)
        groups = sorted([list(np.flatnonzero(labels == k)) for k in range(n_groups)], key=min)
        groups = [[int(i) for i in g] for g in groups if g]
        cost = separation_cost(a, groups) if len(groups) == n_groups else math.inf
        if cost < best_cost:
            best, best_cost = groups, cost
    return best


def propose_grouping(
    affinity: object, branch_cost: float, separation_weight: float, max_groups: int | None = None, seed: int = 0
) -> tuple[Partition, list[float]]:
    """The grouping with the lowest :func:`branching_loss` over ``C = 1 .. max_groups`` groups.

    Returns the partition and the loss of every ``C`` (the best :func:`cluster_tasks` split for each).

    >>> A = np.array([[1, .9, .1, .1], [.9, 1, .1, .1], [.1, .1, 1, .8], [.1, .1, .8, 1]])
    >>> groups, losses = propose_grouping(A, branch_cost=0.2, separation_weight=1.0)
    >>> groups, [round(v, 3) for v in losses]
    ([[0, 1], [2, 3]], [0.9, 0.35, 0.433, 0.6])
    """
    a = _affinity_matrix(affinity)
    max_groups = len(a) if max_groups is None else max_groups
    if not 1 <= max_groups <= len(a):
        raise ValueError(f"max_groups must be between 1 and the number of tasks {len(a)}, got {max_groups}")
    candidates = [cluster_tasks(a, c, seed=seed) for c in range(1, max_groups + 1)]
    losses = [branching_loss(a, groups, branch_cost, separation_weight) for groups in candidates]
    return candidates[int(np.argmin(losses))], losses


# -- binary outcomes on logits (Pinto & Gupta, lecture B6) ---------------------------------------
def binary_accuracy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""Fraction of labelled items whose predicted outcome :math:`[z_i > 0]` (probability above 1/2) equals the
    label :math:`y_i \in \{0, 1\}`, e.g. grasp success (Pinto & Gupta, ICRA 2017, arXiv 1609.09025).

    ``logits`` and ``target`` have the same shape; ``NaN`` targets (or ``mask`` false) are missing.

    >>> binary_accuracy(torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([1.0, 1.0, 0.0, float("nan")]))
    0.3333333333333333
    """
    if logits.shape != target.shape:
        raise ValueError(
            f"binary_accuracy needs logits and targets of one shape, got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    labelled = _labelled(target, mask)
    if not labelled.any():
        raise ValueError("binary_accuracy got no labelled item (every target is NaN or masked out)")
    correct = ((logits > 0) == (target > 0.5)) & labelled
    return correct.sum().item() / labelled.sum().item()


HIGHER_IS_BETTER["binary_accuracy"] = True


# -- faces --------------------------------------------------------------------------------------
def landmark_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    r"""Mean landmark distance over the inter-ocular distance, averaged over the labelled faces.

    ``pred`` is ``(B, 2N)`` flat, ``target`` ``(B, N, 3)`` with rows ``(x, y, v)``
    (:func:`mtl_course.data.faces.make_faces`); landmarks 0 and 1 are the eyes.
    Per face, :math:`\frac{1}{N} \sum_i \lVert p_i - t_i \rVert_2 / \lVert t_0 - t_1 \rVert_2`
    over every landmark, visible or not (the synthetic positions are exact);
    the normalised mean error that TCDCN (Zhang et al., ECCV 2014) reports.
    A face whose target holds a ``NaN`` (no face) or that ``mask`` marks false is left out.

    >>> target = torch.tensor([[[0.0, 0.0, 1.0], [2.0, 0.0, 1.0]]])
    >>> landmark_error(torch.tensor([[0.0, 1.0, 2.0, 0.0]]), target)  # (1 + 0) / 2 / 2
    0.25
    """
    labelled = labelled_faces(pred, target, mask, "landmark_error", min_landmarks=2)
    if not labelled.any():
        return float("nan")
    t = target[labelled][..., :2].float()
    p = pred[labelled].float().reshape(t.shape)
    interocular = (t[:, 0] - t[:, 1]).norm(dim=-1)
    return ((p - t).norm(dim=-1).mean(-1) / interocular).mean().item()


# -- calibration of a binary diagnosis (Liu et al., lecture B12) -------------------------------------
# A diagnosis reported as a probability must be calibrated as well as ranked: the AUC (:func:`auc`) is blind to
# any monotone distortion of the scores. Reliability diagram and expected calibration error (ECE) with equal-width
# bins, as in Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017, arXiv
# 1706.04599 (Section 2), here for the predicted probability of the positive class.
HIGHER_IS_BETTER["ece"] = False


def reliability_bins(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, bins: int = 10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per bin of the predicted probability :math:`\hat p = \sigma(z)`: its mean, the fraction positive, the count.

    Bin :math:`b = 1, \dots, M` holds the labelled items with
    :math:`\hat p \in ((b-1)/M, b/M]` (the first bin also holds
    :math:`\hat p = 0`). Returns ``(confidence, frequency, count)``, each
    ``(M,)``; empty bins have ``NaN`` confidence and frequency. Plotting
    ``frequency`` against ``confidence`` gives the reliability diagram.

    >>> p, y = torch.tensor([0.1, 0.15, 0.9]), torch.tensor([0, 1, 1])
    >>> conf, freq, count = reliability_bins(torch.logit(p), y, bins=2)
    >>> [round(c, 3) for c in conf.tolist()], freq.tolist(), count.tolist()
    ([0.125, 0.9], [0.5, 1.0], [2, 1])
    """
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if logits.shape != target.shape:
        raise ValueError(
            f"calibration needs one logit per label: logits {tuple(logits.shape)}, target {tuple(target.shape)}"
        )
    labelled = _labelled(target, mask).reshape(-1)
    if not bool(labelled.any()):
        raise ValueError("calibration needs at least one labelled item, got none")
    p = torch.sigmoid(logits.reshape(-1)[labelled].double())
    if bool(torch.isnan(p).any()):
        raise ValueError("the logits of labelled items contain NaN")
    y = target.reshape(-1)[labelled].double()
    index = (torch.ceil(p * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins)
    total_p = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, p)
    total_y = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, y)
    nonempty = count > 0
    nan = torch.full((bins,), math.nan, dtype=torch.float64)
    confidence = torch.where(nonempty, total_p / count.clamp_min(1), nan)
    frequency = torch.where(nonempty, total_y / count.clamp_min(1), nan)
    return confidence, frequency, count


def expected_calibration_error(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, bins: int = 10
) -> float:
    r"""Expected calibration error of a binary task, with ``bins`` equal-width bins of :math:`\hat p = \sigma(z)`,

    .. math:: \mathrm{ECE} = \sum_{b=1}^{M} \frac{n_b}{n}\, \big| \bar y_b - \bar p_b \big| ,

    :math:`\bar p_b` the mean predicted probability and :math:`\bar y_b` the
    fraction of positives among the :math:`n_b` labelled items of bin
    :math:`b` (:func:`reliability_bins`); 0 is perfect calibration.

    >>> p, y = torch.tensor([0.1, 0.15, 0.9]), torch.tensor([0, 1, 1])
    >>> round(expected_calibration_error(torch.logit(p), y, bins=2), 4)  # (2/3)|0.5 - 0.125| + (1/3)|1 - 0.9|
    0.2833
    """
    confidence, frequency, count = reliability_bins(logits, target, mask, bins)
    nonempty = count > 0
    weights = count[nonempty].double() / count.sum()
    return float((weights * (frequency[nonempty] - confidence[nonempty]).abs()).sum())


# -- landmark positions and measurements (Xu et al., lecture B11) -----------------------------------
def heatmap_soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    r"""The expected landmark position under each heat map's softmax, ``(B, K, 2)`` as ``(x, y)`` in image units.

    With :math:`P_k(c) = \operatorname{softmax}_c z_k(c)` over the cells of an
    :math:`h \times w` heat map and :math:`\mu_c` the centre of cell :math:`c`
    (:math:`((j + \tfrac12)/w, (r + \tfrac12)/h)` for row :math:`r`, column :math:`j`),

    .. math:: \hat p_k = \sum_c P_k(c)\, \mu_c .

    >>> z = torch.full((1, 1, 2, 2), -1e4); z[0, 0, 1, 0] = 0.0  # all mass in row 1, column 0
    >>> heatmap_soft_argmax(z).tolist()
    [[[0.25, 0.75]]]
    """
    if logits.dim() != 4:
        raise ValueError(f"heatmap_soft_argmax expects heat maps (B, K, h, w), got {tuple(logits.shape)}")
    h, w = logits.shape[-2:]
    prob = logits.flatten(2).softmax(-1).view_as(logits)
    cols = (torch.arange(w, device=logits.device, dtype=prob.dtype) + 0.5) / w
    rows = (torch.arange(h, device=logits.device, dtype=prob.dtype) + 0.5) / h
    return torch.stack([(prob.sum(-2) * cols).sum(-1), (prob.sum(-1) * rows).sum(-1)], -1)


def measurement_error(points: torch.Tensor, true_points: torch.Tensor) -> torch.Tensor:
    r"""Per image, the absolute error of the measured length (the distance between the two landmarks),

    .. math:: e = \big|\, \|\hat p_1 - \hat p_2\| - \|p_1 - p_2\| \,\big| .

    The measurement of a view in Xu et al. (MICCAI 2018, arXiv 1805.10376) is
    the distance between its two landmarks (an organ's axis); ``points`` and
    ``true_points`` are ``(B, 2, 2)`` (two landmarks, ``(x, y)``), in any one
    unit, which the error keeps.

    >>> measurement_error(torch.tensor([[[0.0, 0.0], [3.0, 4.0]]]), torch.tensor([[[1.0, 1.0], [1.0, 7.0]]]))
    tensor([1.])
    """
    if points.shape != true_points.shape or points.shape[-2:] != (2, 2):
        raise ValueError(
            "measurement_error expects two landmarks (x, y) per image, (B, 2, 2), for the prediction and the truth; "
            f"got {tuple(points.shape)} and {tuple(true_points.shape)}"
        )
    length = (points[:, 0] - points[:, 1]).norm(dim=-1)
    true_length = (true_points[:, 0] - true_points[:, 1]).norm(dim=-1)
    return (length - true_length).abs()


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

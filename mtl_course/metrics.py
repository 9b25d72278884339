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

from collections.abc import Mapping
from typing import Literal

import torch

from mtl_course.losses import IGNORE_INDEX, expand_mask

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
    label are skipped; if all are, the Dice is 1.

    >>> logits = torch.tensor([[[5.0, 5.0, 0.0, 0.0]], [[0.0, 0.0, 5.0, 5.0]]]).transpose(0, 1)
    >>> dice(logits, torch.tensor([[0, 1, 1, 1]]))  # 2*2 / (2 + 3)
    0.8
    """
    labelled = _labelled(target, mask)
    predicted = logits.argmax(dim=1)
    scores = []
    for c in range(1, logits.shape[1]):
        p, y = (predicted == c) & labelled, (target == c) & labelled
        total = p.sum().item() + y.sum().item()
        if total:
            scores.append(2 * (p & y).sum().item() / total)
    return sum(scores) / len(scores) if scores else 1.0


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
    if (
        target.ndim != 3
        or target.shape[-1] != 3
        or target.shape[1] < 2
        or pred.shape
        != (
            target.shape[0],
            2 * target.shape[1],
        )
    ):
        raise ValueError(
            "landmark_error expects pred (B, 2N) and target (B, N, 3) with rows (x, y, visibility), N >= 2; "
            f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    labelled = ~torch.isnan(target).flatten(1).any(1)
    if mask is not None:
        labelled = labelled & mask.bool().reshape(-1)
    if not labelled.any():
        return float("nan")
    t = target[labelled][..., :2].float()
    p = pred[labelled].float().reshape(t.shape)
    interocular = (t[:, 0] - t[:, 1]).norm(dim=-1)
    return ((p - t).norm(dim=-1).mean(-1) / interocular).mean().item()

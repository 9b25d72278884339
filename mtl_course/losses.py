"""The task losses of the course, with label masks for partially labelled data.

Every loss takes ``(prediction, target, mask=None)`` and returns a 0-dim
tensor. ``mask`` marks the labelled items; it may cover only the leading
dimensions of the target (a per-sample mask for a per-pixel target). Losses
average over the labelled items only, as UberNet requires (Kokkinos, CVPR
2017, arXiv 1609.02132: the loss of a task sums over the samples that carry
its label, ``delta_{t,i} = 1``). Missing regression targets may also be
``NaN``, missing class labels ``-100`` (PyTorch's ``ignore_index``).

A batch without a single label for a task yields a loss of 0 that is still
connected to the graph (its gradient is 0), never NaN.

>>> import torch
>>> pred = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> mse_loss(pred, torch.tensor([0.0, float("nan"), 1.0]))  # (1 + 4) / 2 labelled items
tensor(2.5000, grad_fn=<DivBackward0>)
>>> mse_loss(pred, torch.full((3,), float("nan"))).backward(); pred.grad
tensor([0., 0., 0.])
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


# -- masking ----------------------------------------------------------------------
def expand_mask(mask: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Broadcast a mask over the *leading* dimensions of ``shape`` to all of it.

    >>> expand_mask(torch.tensor([True, False]), (2, 3)).sum().item()
    3
    """
    shape = tuple(shape)
    if tuple(mask.shape) != shape[: mask.dim()]:
        raise ValueError(
            f"a label mask must match the leading dimensions of the target {shape}, "
            f"got a mask of shape {tuple(mask.shape)}"
        )
    return mask.reshape(*mask.shape, *([1] * (len(shape) - mask.dim()))).expand(shape)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the items where ``mask`` is true; 0 (with a graph) when there are none.

    >>> masked_mean(torch.tensor([1.0, 2.0, 6.0]), torch.tensor([True, False, True]))
    tensor(3.5000)
    """
    if mask is None:
        return values.mean()
    mask = expand_mask(mask.bool(), values.shape)
    zeros = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(mask, values, zeros).sum() / mask.sum().clamp_min(1)


def _regression_mask(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    labelled = ~torch.isnan(target)
    return labelled if mask is None else labelled & expand_mask(mask.bool(), target.shape)


# -- classification and regression -----------------------------------------------
def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Softmax cross-entropy ``-(1/n) sum_i log softmax(z_i)[y_i]`` over the labelled items.

    ``logits`` is ``(B, C, ...)``, ``target`` ``(B, ...)`` with class indices
    (``ignore_index`` marks a missing label). Eigen & Fergus's semantic loss
    ``-(1/n) sum_i C*_i log C_i`` is this loss on one-hot ``C*``.

    >>> cross_entropy(torch.zeros(2, 4), torch.tensor([1, -100]))  # log 4
    tensor(1.3863)
    """
    labelled = target != ignore_index
    if mask is not None:
        labelled = labelled & expand_mask(mask.bool(), target.shape)
    safe_target = torch.where(labelled, target, torch.zeros_like(target))
    per_item = F.cross_entropy(logits, safe_target, reduction="none")
    return masked_mean(per_item, labelled)


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid cross-entropy on logits over the labelled items (``NaN`` target = missing).

    >>> binary_cross_entropy(torch.zeros(3), torch.tensor([1.0, 0.0, float("nan")]))  # log 2
    tensor(0.6931)
    """
    labelled = _regression_mask(target, mask)
    safe_target = torch.where(labelled, target, torch.zeros_like(target))
    per_item = F.binary_cross_entropy_with_logits(logits, safe_target, reduction="none")
    return masked_mean(per_item, labelled)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error ``(1/n) sum_i (y_i - t_i)^2`` over the labelled items (``NaN`` = missing)."""
    labelled = _regression_mask(target, mask)
    safe_target = torch.where(labelled, target, pred.detach())
    return masked_mean((pred - safe_target) ** 2, labelled)


class ScaledMSE:
    r"""A scaled mean squared error :math:`s\,\mathrm{MSE}` (picklable, unlike a lambda).

    .. math:: L(y, t) = \frac{s}{n} \sum_{i=1}^{n} (y_i - t_i)^2

    over the labelled items (:func:`mse_loss` times ``scale``). It makes a
    task's loss larger by a constant factor, as a loss summed over 100
    outputs instead of averaged would be: the scale mismatch of the
    conflicting pair of lecture A6
    (:func:`~mtl_course.data.toy_regression.make_conflicting_regressions`).

    >>> ScaledMSE(100.0)(torch.ones(2, 1), torch.zeros(2, 1)).item()
    100.0
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.scale * mse_loss(pred, target, mask)

    def __repr__(self) -> str:
        return f"ScaledMSE({self.scale:g})"


def l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error ``(1/n) sum_i |y_i - t_i|`` over the labelled items (``NaN`` = missing).

    >>> l1_loss(torch.tensor([1.0, 5.0]), torch.tensor([3.0, float("nan")]))
    tensor(2.)
    """
    labelled = _regression_mask(target, mask)
    safe_target = torch.where(labelled, target, pred.detach())
    return masked_mean((pred - safe_target).abs(), labelled)


# -- landmarks (HyperFace, Devries et al.) ------------------------------------------
def landmark_loss(
    pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Visibility-weighted landmark loss of HyperFace (Ranjan et al., arXiv 1603.01249):

        L_L = 1/(2N) sum_{i=1}^{N} v_i ((x_i - a_i)^2 + (y_i - b_i)^2)

    per sample, with ``N`` landmarks and ``v_i`` = 1 for a visible landmark,
    0 for an occluded one; averaged over the samples that ``mask`` marks as
    labelled. ``pred`` and ``target`` are ``(B, N, 2)``, ``visibility``
    ``(B, N)``. Devries et al. (CRV 2014) weight their landmark term the same way.

    >>> pred = torch.zeros(1, 2, 2); target = torch.tensor([[[1.0, 1.0], [3.0, 0.0]]])
    >>> landmark_loss(pred, target, torch.tensor([[1.0, 0.0]]))  # (1 + 1) / (2 * 2)
    tensor(0.5000)
    """
    if pred.shape != target.shape or pred.shape[-1] != 2 or visibility.shape != pred.shape[:-1]:
        raise ValueError(
            "landmark_loss expects pred and target of shape (B, N, 2) and visibility (B, N); "
            f"got {tuple(pred.shape)}, {tuple(target.shape)}, {tuple(visibility.shape)}"
        )
    n_landmarks = pred.shape[-2]
    squared = ((pred - target) ** 2).sum(dim=-1)
    per_sample = (visibility * squared).sum(dim=-1) / (2 * n_landmarks)
    return masked_mean(per_sample, mask)


# -- dense geometry (Eigen & Fergus) -------------------------------------------------
def surface_normal_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, normalize: bool = True
) -> torch.Tensor:
    """Eigen & Fergus's normals loss ``L = -(1/n) sum_i N_i . N*_i`` (ICCV 2015, arXiv 1411.4734).

    ``pred`` and ``target`` are ``(B, 3, H, W)``, ``mask`` ``(B, H, W)``
    marks pixels with ground truth. With ``normalize`` the predicted normals
    are first scaled to unit length, so ``L`` lies in ``[-1, 1]``.

    >>> n = torch.zeros(1, 3, 1, 2); n[:, 2] = 1.0
    >>> surface_normal_loss(n, n)
    tensor(-1.)
    """
    if normalize:
        pred = F.normalize(pred, dim=1)
    return masked_mean(-(pred * target).sum(dim=1), mask)


def scale_invariant_depth_loss(
    log_pred: torch.Tensor,
    log_target: torch.Tensor,
    mask: torch.Tensor | None = None,
    gradient_weight: float = 1.0,
) -> torch.Tensor:
    """Eigen & Fergus's depth loss (ICCV 2015, arXiv 1411.4734, eq. 1 with the gradient term):

        d_i = log D_i - log D*_i,
        L   = (1/n) sum_i d_i^2 - 1/(2 n^2) (sum_i d_i)^2
              + (1/n) sum_i [(grad_x d)_i^2 + (grad_y d)_i^2]

    per image, averaged over the images with at least one valid pixel.
    ``log_pred`` and ``log_target`` are log depths ``(B, H, W)``; ``mask``
    ``(B, H, W)`` marks pixels with ground truth. Missing pixels leave ``n``
    and every sum (a difference counts only when both its pixels are valid),
    the masking the slides describe [unchecked in the paper].
    ``gradient_weight=0`` gives the scale-invariant error of Eigen et al.
    (NIPS 2014) with lambda = 1/2.

    >>> d = torch.zeros(1, 2, 2)
    >>> scale_invariant_depth_loss(d + 1.0, d)  # a global scale e costs 1 - 1/2: lambda = 1/2
    tensor(0.5000)
    """
    if log_pred.shape != log_target.shape or log_pred.dim() != 3:
        raise ValueError(
            f"depth loss expects log depths of shape (B, H, W), got {tuple(log_pred.shape)} "
            f"and {tuple(log_target.shape)}"
        )
    valid = torch.isfinite(log_target)
    if mask is not None:
        valid = valid & expand_mask(mask.bool(), log_target.shape)
    d = torch.where(valid, log_pred - torch.where(valid, log_target, log_pred.detach()), 0.0)
    n = valid.sum(dim=(1, 2))
    n_safe = n.clamp_min(1)
    sum_d = d.sum(dim=(1, 2))
    loss = (d**2).sum(dim=(1, 2)) / n_safe - sum_d**2 / (2 * n_safe**2)
    if gradient_weight:
        valid_x = valid[:, :, 1:] & valid[:, :, :-1]
        valid_y = valid[:, 1:, :] & valid[:, :-1, :]
        grad_x = torch.where(valid_x, d[:, :, 1:] - d[:, :, :-1], 0.0)
        grad_y = torch.where(valid_y, d[:, 1:, :] - d[:, :-1, :], 0.0)
        loss = loss + gradient_weight * ((grad_x**2).sum(dim=(1, 2)) + (grad_y**2).sum(dim=(1, 2))) / n_safe
    return masked_mean(loss, n > 0)


# -- rare-lesion segmentation (Playout et al.) ---------------------------------------
def soft_kappa_loss(
    prob: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-7
) -> torch.Tensor:
    """``1 - kappa`` with Cohen's kappa from soft counts (Playout et al., MICCAI 2018).

    With ``p`` the predicted foreground probabilities and ``y`` the binary
    labels, ``TP = sum p y``, ``FP = sum p (1-y)``, ``FN = sum (1-p) y``,
    ``TN = sum (1-p)(1-y)``; ``p_o = (TP + TN) / N``,
    ``p_e = [(TP + FP)(TP + FN) + (FN + TN)(FP + TN)] / N^2`` and
    ``kappa = (p_o - p_e) / (1 - p_e + eps)``. On hard 0/1 predictions this is
    Cohen's kappa (up to ``eps``). The loss form is as on the slides [unchecked
    in the paper].

    >>> y = torch.tensor([0.0, 0.0, 0.0, 1.0])
    >>> round(float(soft_kappa_loss(torch.zeros(4), y)), 4)  # all background: kappa = 0
    1.0
    """
    if mask is not None:
        keep = expand_mask(mask.bool(), target.shape)
        prob, target = prob[keep], target[keep]
    p, y = prob.reshape(-1), target.reshape(-1).to(prob.dtype)
    n = p.new_tensor(float(p.numel()))
    tp, fp = (p * y).sum(), (p * (1 - y)).sum()
    fn, tn = ((1 - p) * y).sum(), ((1 - p) * (1 - y)).sum()
    p_o = (tp + tn) / n
    p_e = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    return 1 - (p_o - p_e) / (1 - p_e + eps)


# -- motion (Qin et al.) ----------------------------------------------------------------
def flow_smoothness(flow: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    """Charbonnier (Huber-like) smoothness of a flow field (Qin et al., MICCAI 2018, arXiv 1806.04066):

        L_smooth = mean_pixels sqrt(eps + sum_{c in (u, v)} (d_x f_c)^2 + (d_y f_c)^2)

    with forward differences on ``flow`` of shape ``(B, 2, H, W)``. The
    Charbonnier form and ``eps = 0.01`` follow the slides [unchecked in the
    paper; the two official implementations weight the term differently].

    >>> round(float(flow_smoothness(torch.ones(1, 2, 3, 3), eps=0.04)), 6)  # a constant flow costs sqrt(eps)
    0.2
    """
    if flow.dim() != 4:
        raise ValueError(f"flow_smoothness expects a flow of shape (B, C, H, W), got {tuple(flow.shape)}")
    dx = flow[:, :, :-1, 1:] - flow[:, :, :-1, :-1]
    dy = flow[:, :, 1:, :-1] - flow[:, :, :-1, :-1]
    return torch.sqrt(eps + (dx**2 + dy**2).sum(dim=1)).mean()


# -- penalties ------------------------------------------------------------------------
def successive_regularization(
    params: Iterable[torch.Tensor], snapshot: Iterable[torch.Tensor], delta: float
) -> torch.Tensor:
    """``delta ||theta - theta'||^2`` of the Joint Many-Task model (Hashimoto et al., EMNLP 2017, arXiv 1611.01587).

    ``theta'`` is a snapshot of the lower layers taken before the current
    task trained (:func:`parameter_snapshot`); the penalty keeps a higher
    task from destroying what a lower task learned.

    >>> theta = [torch.tensor([1.0, 2.0])]
    >>> successive_regularization(theta, [torch.tensor([0.0, 0.0])], delta=0.1)
    tensor(0.5000)
    """
    params, snapshot = list(params), list(snapshot)
    if len(params) != len(snapshot):
        raise ValueError(f"successive regularisation got {len(params)} parameters but {len(snapshot)} snapshots")
    return delta * sum(((p - s) ** 2).sum() for p, s in zip(params, snapshot, strict=True))


def parameter_snapshot(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Detached copies ``theta'`` of ``params`` for :func:`successive_regularization`."""
    return [p.detach().clone() for p in params]

r"""The task losses of the course, with label masks for partially labelled data.

Every loss takes ``(prediction, target, mask=None)`` and returns a 0-dim
tensor. ``mask`` marks the labelled items; it may cover only the leading
dimensions of the target (a per-sample mask for a per-pixel target). Losses
average over the labelled items only, as UberNet requires (Kokkinos, CVPR
2017, arXiv 1609.02132: the loss of task :math:`t` sums over the samples
:math:`i` that carry its label, :math:`\delta_{t,i} = 1`; see
:func:`masked_mean`). Missing regression targets may also be ``NaN``,
missing class labels ``-100`` (PyTorch's ``ignore_index``).

A batch without a single label for a task yields a loss of 0 that is still
connected to the graph (its gradient is 0), never NaN.

Masking costs several small kernels per task and step, which a small model
on the CPU feels (about 35 µs per task and step, over a tenth of a step of
the lectures' small three-task MLPs). So on the CPU, a batch without a mask
first takes PyTorch's fused loss in :func:`mse_loss` and :func:`l1_loss`;
its value answers "is any label missing?" (a ``NaN`` target makes it
``NaN``), and only then does the masked path run. For a fully labelled
batch the value is the same bit for bit, and so is the gradient of the loss
alone; a loss that enters the objective with a weight other than 1 gets a
gradient that may differ in the last bit (the fused backward multiplies in
another order). The classification losses keep the masked path: their fused
forms sum in another order and round differently. On a GPU the masked path
runs always: reading the loss would stall the device.

>>> import torch
>>> pred = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> mse_loss(pred, torch.tensor([0.0, float("nan"), 1.0]))  # (1 + 4) / 2 labelled items
tensor(2.5000, grad_fn=<DivBackward0>)
>>> mse_loss(pred, torch.full((3,), float("nan"))).backward(); pred.grad
tensor([0., 0., 0.])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from mtl_course.data.tasks import IGNORE_INDEX


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
    r"""Mean of ``values`` over the labelled items; 0 (with a graph) when there are none.

    With :math:`\delta_i = 1` where ``mask`` is true (UberNet's
    :math:`\delta_{t,i}`; Kokkinos, CVPR 2017, arXiv 1609.02132),

    .. math:: \bar v = \frac{\sum_i \delta_i v_i}{\max\big(1, \sum_i \delta_i\big)} .

    >>> masked_mean(torch.tensor([1.0, 2.0, 6.0]), torch.tensor([True, False, True]))
    tensor(3.5000)
    """
    if mask is None:
        return values.mean()
    mask = expand_mask(mask.bool(), values.shape)
    return _labelled_average(torch.where(mask, values, 0.0).sum(), mask)


def _labelled_average(total: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """:func:`masked_mean`'s division: ``total`` (a sum over the labelled items) over ``max(1, sum(labelled))``."""
    return total / labelled.sum().clamp_min(1)


def _pointwise_regression_loss(
    loss: Callable[..., torch.Tensor], pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``loss`` (PyTorch's ``F.mse_loss`` or ``F.l1_loss``) averaged over the labelled items only.

    The masked path sums the error over the labelled items (a missing target is replaced by the detached
    prediction, so its error and gradient are exactly 0) and divides by their number.

    On the CPU, a batch without a mask first takes the fused mean ``loss(pred, target)``: a ``NaN`` target makes
    it ``NaN``, so reading it answers "is any label missing?" without an extra kernel, and only then does the
    masked path run. A ``NaN`` loss for another reason (a ``NaN`` prediction) takes the masked path too, which
    gives the same ``NaN``, only slower. On a GPU the masked path runs always: reading the loss would
    synchronise the device every step.
    """
    _check_same_shape(pred, target)
    if mask is None and target.is_cpu:
        fused = loss(pred, target)
        if not math.isnan(fused.item()):
            return fused
    labelled = _regression_mask(target, mask)
    total = loss(pred, _safe_target(pred, target, labelled), reduction="sum")
    return _labelled_average(total, labelled)


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"the prediction and the target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def _regression_mask(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    labelled = ~torch.isnan(target)
    return labelled if mask is None else labelled & expand_mask(mask.bool(), target.shape)


def _safe_target(pred: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """``target`` with every missing item replaced by the detached prediction: its error and gradient are exactly 0."""
    return torch.where(labelled, target, pred.detach())


# -- classification and regression -----------------------------------------------
def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    r"""Softmax cross-entropy over the :math:`n` labelled items,

    .. math:: L = -\frac{1}{n} \sum_{i} \log \operatorname{softmax}(z_i)_{y_i} .

    ``logits`` :math:`z` is ``(B, C, ...)``, ``target`` :math:`y` ``(B, ...)``
    with class indices (``ignore_index`` marks a missing label). Eigen &
    Fergus's semantic loss :math:`-\frac1n \sum_i C^*_i \cdot \log C_i`
    (ICCV 2015, arXiv 1411.4734) is this loss on one-hot :math:`C^*`.

    >>> cross_entropy(torch.zeros(2, 4), torch.tensor([1, -100]))  # log 4
    tensor(1.3863)
    """
    labelled = target != ignore_index
    if mask is not None:
        labelled = labelled & expand_mask(mask.bool(), target.shape)
        target = torch.where(labelled, target, ignore_index)
    per_item = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")  # 0 where ignored
    return _labelled_average(per_item.sum(), labelled)


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Sigmoid cross-entropy on logits :math:`z_i` over the :math:`n` labelled items (``NaN`` target = missing),

    .. math:: L = -\frac{1}{n} \sum_i \big[ y_i \log \sigma(z_i) + (1 - y_i) \log\big(1 - \sigma(z_i)\big) \big] .

    >>> binary_cross_entropy(torch.zeros(3), torch.tensor([1.0, 0.0, float("nan")]))  # log 2
    tensor(0.6931)
    """
    labelled = _regression_mask(target, mask)
    safe_target = torch.where(labelled, target, 0.0)
    weight = labelled.to(safe_target.dtype)  # 1 for a labelled item, 0 for a missing one
    total = F.binary_cross_entropy_with_logits(logits, safe_target, weight=weight, reduction="sum")
    return _labelled_average(total, labelled)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean squared error over the :math:`n` labelled items (``NaN`` target = missing),

    .. math:: L = \frac{1}{n} \sum_i (y_i - t_i)^2 .

    >>> mse_loss(torch.tensor([1.0, 2.0]), torch.tensor([3.0, float("nan")]))
    tensor(4.)
    """
    return _pointwise_regression_loss(F.mse_loss, pred, target, mask)


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
    r"""Mean absolute error over the :math:`n` labelled items (``NaN`` target = missing),

    .. math:: L = \frac{1}{n} \sum_i |y_i - t_i| .

    >>> l1_loss(torch.tensor([1.0, 5.0]), torch.tensor([3.0, float("nan")]))
    tensor(2.)
    """
    return _pointwise_regression_loss(F.l1_loss, pred, target, mask)


# -- landmarks (HyperFace, Devries et al.) ------------------------------------------
def landmark_loss(
    pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Visibility-weighted landmark loss of HyperFace (Ranjan, Patel & Chellappa, IEEE TPAMI 2019, arXiv 1603.01249),

    .. math:: L_L = \frac{1}{2N} \sum_{i=1}^{N} v_i \big( (x_i - a_i)^2 + (y_i - b_i)^2 \big)

    per sample, with :math:`N` landmarks at predicted :math:`(x_i, y_i)` and
    true :math:`(a_i, b_i)`, and :math:`v_i = 1` for a visible landmark, 0 for
    an occluded one; averaged over the samples that ``mask`` marks as
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
    r"""Eigen & Fergus's surface-normal loss (ICCV 2015, arXiv 1411.4734),

    .. math:: L = -\frac{1}{n} \sum_i N_i \cdot N^*_i

    over the :math:`n` pixels with ground truth, :math:`N_i` the predicted and
    :math:`N^*_i` the true normal. ``pred`` and ``target`` are
    ``(B, 3, H, W)``. A pixel whose target normal has a ``NaN`` component (a
    hole of the depth sensor) leaves :math:`n` and the sum, and so does a
    pixel that ``mask`` (``(B,)``, ``(B, H, W)`` or ``(B, 3, H, W)``, as the
    training loop expands it) marks as unlabelled; a missing pixel gets a zero
    target before the product, so its gradient is exactly 0, not ``NaN``. With
    ``normalize`` the predicted normals are first scaled to unit length, so
    :math:`L \in [-1, 1]`.

    >>> n = torch.zeros(1, 3, 1, 2); n[:, 2] = 1.0
    >>> surface_normal_loss(n, n)
    tensor(-1.)
    >>> t = n.clone(); t[0, :, 0, 1] = float("nan")  # a hole: one pixel with ground truth is left
    >>> surface_normal_loss(n, t)
    tensor(-1.)
    """
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise ValueError(
            "surface_normal_loss expects normals of shape (B, 3, H, W) for prediction and target, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    labelled = ~torch.isnan(target).any(dim=1)
    if mask is not None:
        mask = mask.bool()
        labelled = labelled & (mask.all(dim=1) if mask.dim() == 4 else expand_mask(mask, labelled.shape))
    if normalize:
        pred = F.normalize(pred, dim=1)
    target = torch.where(labelled[:, None], target, 0.0)
    return masked_mean(-(pred * target).sum(dim=1), labelled)


def scale_invariant_depth_loss(
    log_pred: torch.Tensor,
    log_target: torch.Tensor,
    mask: torch.Tensor | None = None,
    gradient_weight: float = 1.0,
) -> torch.Tensor:
    r"""Eigen & Fergus's scale-invariant depth loss with the gradient term (ICCV 2015, arXiv 1411.4734, Eq. 1),

    .. math::

        d_i = \log D_i - \log D^*_i, \qquad
        L = \frac{1}{n} \sum_i d_i^2 - \frac{1}{2n^2} \Big(\sum_i d_i\Big)^2
            + \frac{1}{n} \sum_i \big[ (\nabla_x d)_i^2 + (\nabla_y d)_i^2 \big]

    per image (the last term times ``gradient_weight``), averaged over the
    images with at least one valid pixel.
    ``log_pred`` and ``log_target`` are log depths ``(B, H, W)``; ``mask``
    ``(B, H, W)`` marks pixels with ground truth. Missing pixels leave ``n``
    and every sum (a difference counts only when both its pixels are valid),
    the masking the slides describe [unchecked in the paper].
    ``gradient_weight=0`` gives the scale-invariant error of Eigen, Puhrsch &
    Fergus (NIPS 2014, arXiv 1406.2283) with :math:`\lambda = 1/2`.

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
    r""":math:`1 - \kappa` with Cohen's kappa from soft counts (Playout, Duval & Cheriet, MICCAI 2018).

    With :math:`p` the predicted foreground probabilities and :math:`y` the
    binary labels of :math:`N` pixels,

    .. math::

        TP = \sum p y, \quad FP = \sum p (1 - y), \quad FN = \sum (1 - p) y, \quad
        TN = \sum (1 - p)(1 - y),

    .. math::

        p_o = \frac{TP + TN}{N}, \qquad
        p_e = \frac{(TP + FP)(TP + FN) + (FN + TN)(FP + TN)}{N^2}, \qquad
        L = 1 - \frac{p_o - p_e}{1 - p_e + \varepsilon} .

    On hard 0/1 predictions this is Cohen's kappa (up to :math:`\varepsilon`).
    The loss form is as on the slides [unchecked in the paper]. Pixels whose
    target is ``NaN`` or whose ``mask`` is false are left out; with none left
    the loss is 0, still connected to the graph.

    >>> y = torch.tensor([0.0, 0.0, 0.0, 1.0])
    >>> round(float(soft_kappa_loss(torch.zeros(4), y)), 4)  # all background: kappa = 0
    1.0
    """
    _check_same_shape(prob, target)
    if not bool(((prob >= 0) & (prob <= 1)).all()):  # one check (NaN fails both comparisons), one device sync
        raise ValueError(
            "soft_kappa_loss takes probabilities in [0, 1] (apply a sigmoid to logits first), "
            f"got values in [{prob.min().item():.3g}, {prob.max().item():.3g}]"
            + (" and NaN" if torch.isnan(prob).any() else "")
        )
    keep = _regression_mask(target, mask)
    if not keep.all():
        prob, target = prob[keep], target[keep]
    if prob.numel() == 0:
        return prob.sum() * 0.0
    p, y = prob.reshape(-1), target.reshape(-1).to(prob.dtype)
    n = p.new_tensor(float(p.numel()))
    tp, fp = (p * y).sum(), (p * (1 - y)).sum()
    fn, tn = ((1 - p) * y).sum(), ((1 - p) * (1 - y)).sum()
    p_o = (tp + tn) / n
    p_e = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    return 1 - (p_o - p_e) / (1 - p_e + eps)


# -- motion (Qin et al.) ----------------------------------------------------------------
def flow_smoothness(flow: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    r"""Charbonnier (Huber-like) smoothness of a flow field (Qin et al., MICCAI 2018, arXiv 1806.04066),

    .. math::

        L_{\text{smooth}} = \operatorname{mean}_{\text{pixels}}
        \sqrt{\varepsilon + \sum_{c \in \{u, v\}} \big[(\partial_x f_c)^2 + (\partial_y f_c)^2\big]}

    with forward differences on ``flow`` of shape ``(B, 2, H, W)``. The
    Charbonnier form and :math:`\varepsilon = 0.01` follow the slides
    [unchecked in the paper; the two official implementations weight the
    term differently].

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
    r"""Successive regularisation of the Joint Many-Task model (Hashimoto et al., EMNLP 2017, arXiv 1611.01587),

    .. math:: R = \delta\, \|\theta - \theta'\|^2,

    where :math:`\theta'` is a snapshot of the lower layers taken before the
    current task trained (:func:`parameter_snapshot`); the penalty keeps a
    higher task from destroying what a lower task learned.

    >>> theta = [torch.tensor([1.0, 2.0])]
    >>> successive_regularization(theta, [torch.tensor([0.0, 0.0])], delta=0.1)
    tensor(0.5000)
    """
    params, snapshot = list(params), list(snapshot)
    if len(params) != len(snapshot):
        raise ValueError(f"successive regularisation got {len(params)} parameters but {len(snapshot)} snapshots")
    if not delta >= 0:  # also refuses NaN
        raise ValueError(f"successive regularisation needs a weight delta >= 0, got {delta}")
    for i, (p, s) in enumerate(zip(params, snapshot, strict=True)):
        if p.shape != s.shape:
            raise ValueError(
                f"parameter {i} has shape {tuple(p.shape)} but its snapshot {tuple(s.shape)}; "
                "take the snapshot of the same parameters, in the same order (parameter_snapshot)"
            )
    return delta * sum(((p - s) ** 2).sum() for p, s in zip(params, snapshot, strict=True))


def parameter_snapshot(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    r"""Detached copies :math:`\theta'` of ``params`` for :func:`successive_regularization`."""
    return [p.detach().clone() for p in params]


# -- faces: landmark targets that carry their visibility (HyperFace, TCDCN, Devries et al.) -------------------
def labelled_faces(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, caller: str, min_landmarks: int = 1
) -> torch.Tensor:
    """The faces ``(B,)`` that carry landmarks, after checking a face head's ``pred`` ``(B, 2N)`` against ``target``.

    ``target`` is ``(B, N, 3)`` with rows ``(x, y, visibility)``; a face whose target holds a ``NaN`` (no face)
    or that ``mask`` marks false is unlabelled. ``caller`` names the function in the error.

    >>> labelled_faces(torch.zeros(2, 2), torch.tensor([[[1.0, 2.0, 1.0]], [[float("nan")] * 3]]), None, "f")
    tensor([ True, False])
    """
    n = target.shape[1] if target.ndim == 3 else 0
    if target.ndim != 3 or target.shape[-1] != 3 or n < min_landmarks or pred.shape != (target.shape[0], 2 * n):
        at_least = f", N >= {min_landmarks}" if min_landmarks > 1 else ""
        raise ValueError(
            f"{caller} expects pred (B, 2N) and target (B, N, 3) with rows (x, y, visibility){at_least}; "
            f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    labelled = ~torch.isnan(target).flatten(1).any(1)
    return labelled if mask is None else labelled & mask.bool().reshape(-1)


def visible_landmark_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r""":func:`landmark_loss` for a task head: ``pred`` ``(B, 2N)`` flat, ``target`` ``(B, N, 3)`` rows ``(a, b, v)``.

    The third column of the target is the visibility :math:`v_i` of HyperFace's
    :math:`L_L = \frac{1}{2N} \sum_i v_i \big((x_i - a_i)^2 + (y_i - b_i)^2\big)`
    (as :func:`mtl_course.data.faces.make_faces` stores it). A sample whose target
    holds a ``NaN`` (no face) or that ``mask`` marks false is unlabelled: it adds
    nothing, and the mean runs over the labelled samples. With every :math:`v_i = 1`
    this is TCDCN's squared landmark error :math:`\frac{1}{2N}\lVert y - f(x) \rVert^2`
    (Zhang et al., ECCV 2014) averaged over the batch.

    >>> target = torch.tensor([[[1.0, 1.0, 1.0], [3.0, 0.0, 0.0]], [[float("nan")] * 3] * 2])
    >>> visible_landmark_loss(torch.zeros(2, 4), target)  # sample 0 as in landmark_loss; sample 1 unlabelled
    tensor(0.5000)
    """
    labelled = labelled_faces(pred, target, mask, "visible_landmark_loss")
    points = pred.reshape(target.shape[0], target.shape[1], 2)
    safe = torch.where(labelled[:, None, None], target, 0.0)
    position = torch.where(labelled[:, None, None], safe[..., :2], points.detach())
    return landmark_loss(points, position, safe[..., 2], labelled)


# -- UberNet: averaging over the labelled items or over the whole batch ----------------
def labelled_fraction(target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The share of the target's items that carry a label, :math:`\sum_i \delta_i / N`, as a 0-dim tensor.

    An item is missing where ``mask`` (over the leading dimensions) is false,
    where a floating target is ``NaN`` or where a class target is ``-100``,
    the conventions of every loss of this module.

    >>> labelled_fraction(torch.tensor([3, -100, 1, -100]))
    tensor(0.5000)
    >>> labelled_fraction(torch.zeros(4, 2, 2), torch.tensor([True, False, False, False]))
    tensor(0.2500)
    """
    if target.numel() == 0:
        raise ValueError(f"labelled_fraction needs a non-empty target, got shape {tuple(target.shape)}")
    labelled = ~torch.isnan(target) if target.is_floating_point() else target != IGNORE_INDEX
    if mask is not None:
        labelled = labelled & expand_mask(mask.bool(), target.shape)
    return labelled.sum() / labelled.numel()


class BatchMean:
    r"""A masked task loss averaged over the **whole batch** instead of over the task's labelled items.

    Every loss of this module averages over the :math:`n_t` items that carry
    task :math:`t`'s label (:func:`masked_mean`, UberNet's :math:`\delta_{t,i}`;
    Kokkinos, CVPR 2017, arXiv 1609.02132). Dividing the same sum by the
    number :math:`N` of all items of the batch instead gives

    .. math::

        L^{\text{batch}}_t = \frac{1}{N} \sum_{i=1}^{N} \delta_{t,i}\, \ell_{t,i}
        = \frac{n_t}{N}\, \underbrace{\frac{1}{n_t} \sum_{i} \delta_{t,i}\, \ell_{t,i}}_{L_t},

    so the choice is a task weight :math:`n_t / N`, the task's labelled
    fraction of the batch (:func:`labelled_fraction`): a task labelled on 5 %
    of the images counts 5 % as much as under :math:`L_t`. ``BatchMean(loss)``
    wraps any loss of this module; it is picklable, unlike a lambda.

    >>> BatchMean(cross_entropy)(torch.zeros(4, 2), torch.tensor([0, -100, -100, -100]))  # log 2 / 4
    tensor(0.1733)
    """

    def __init__(self, loss: Callable[..., torch.Tensor]) -> None:
        if not callable(loss):
            raise TypeError(f"BatchMean wraps a loss function (pred, target, mask) -> tensor, got {loss!r}")
        self.loss = loss

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss(pred, target, mask) * labelled_fraction(target, mask)

    def __repr__(self) -> str:
        return f"BatchMean({getattr(self.loss, '__name__', repr(self.loss))})"


# -- landmark heat maps (Xu et al., lecture B11) ---------------------------------------------
def heatmap_cells(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    r"""The heat-map cell that holds each landmark: ``row * width + col``, or ``-100`` (missing) for a ``NaN`` point.

    ``points`` is ``(..., 2)`` with ``(x, y)`` in units of the image size
    (:math:`[0, 1)`); on an ``height`` x ``width`` grid the cell is
    :math:`(\lfloor y h \rfloor, \lfloor x w \rfloor)`, clamped to the grid.

    >>> heatmap_cells(torch.tensor([[0.0, 0.0], [0.99, 0.5], [float("nan"), 0.2]]), 4, 4).tolist()
    [0, 11, -100]
    """
    if points.shape[-1] != 2:
        raise ValueError(f"landmark points must have (x, y) in the last dimension, got shape {tuple(points.shape)}")
    missing = torch.isnan(points).any(-1)
    safe = torch.where(torch.isnan(points), 0.0, points)
    col = (safe[..., 0] * width).floor().long().clamp(0, width - 1)
    row = (safe[..., 1] * height).floor().long().clamp(0, height - 1)
    return torch.where(missing, IGNORE_INDEX, row * width + col)


def heatmap_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Cross-entropy of landmark heat maps over the labelled landmarks; the loss of the shared landmark decoder (B11).

    Xu et al. (MICCAI 2018, arXiv 1805.10376) decode the landmarks of every
    view with one shared decoder, one heat map per landmark, and train each
    landmark only on the images of its own view. Here each heat map
    :math:`z_k \in \mathbb R^{h \times w}` is a distribution over its cells,
    :math:`P_k(c) = \operatorname{softmax}_c z_k(c)`, and the loss is

    .. math:: L_{\mathrm{lm}} = -\frac{1}{n} \sum_{(i, k) \in \mathcal M} \log P_{ik}(c^*_{ik}),

    where :math:`\mathcal M` holds the :math:`n` pairs of image :math:`i` and
    landmark :math:`k` that carry a label (the landmarks of the image's own
    view: the other rows of the target are ``NaN``) and :math:`c^*_{ik}` is the
    cell of the true landmark (:func:`heatmap_cells`). It is
    :func:`cross_entropy` with the cells as the classes, so an unlabelled
    landmark adds nothing and its heat map gets a zero gradient. The paper's
    own heat-map loss and its coordinate and adversarial regularisers are not
    reproduced [unchecked in the paper].

    ``logits`` is ``(B, K, h, w)``, ``target`` ``(B, K, 2)`` (``(x, y)`` in
    units of the image size), ``mask`` ``(B,)`` or ``(B, K)``.

    >>> z = torch.zeros(1, 2, 2, 2)  # two flat heat maps of 4 cells
    >>> heatmap_cross_entropy(z, torch.tensor([[[0.1, 0.1], [float("nan"), 0.0]]]))  # one labelled landmark: log 4
    tensor(1.3863)
    """
    if logits.dim() != 4 or target.shape != (*logits.shape[:2], 2):
        raise ValueError(
            "heatmap_cross_entropy expects logits (B, K, h, w) and target (B, K, 2); "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    cells = heatmap_cells(target, logits.shape[-2], logits.shape[-1])
    return cross_entropy(logits.flatten(2).transpose(1, 2), cells, mask)


# -- motion and segmentation (Qin et al., lecture B16) ------------------------------------------------
class MotionLoss:
    r"""The unsupervised motion loss of Qin et al. (MICCAI 2018, arXiv 1806.04066): warped-image MSE plus smoothness,

    .. math::

        L_m = \operatorname{mean}_{\text{pixels}} \big(\hat I_t - I_t\big)^2
              + \lambda\, L_{\text{smooth}}(f), \qquad \hat I_t = \operatorname{warp}(I_s, f),

    with :math:`L_{\text{smooth}}` the Charbonnier term :func:`flow_smoothness`.
    ``pred`` is ``(B, 3, H, W)``: channel 0 the warped source :math:`\hat I_t`,
    channels 1-2 the flow :math:`f` in pixels (the output ``"motion"`` of
    :class:`~mtl_course.models.motion_segmentation.MotionSegmentationNet`);
    ``target`` is the target frame :math:`I_t`, ``(B, 1, H, W)``. A row whose
    target holds a ``NaN``, or that ``mask`` marks false, adds nothing to
    either term. ``smoothness`` is :math:`\lambda` (the official Lasagne code
    uses 0.001, its PyTorch port 0.01, each on its own form of the term).

    >>> pred = torch.zeros(1, 3, 4, 4); pred[:, 1] = 2.0  # a perfect warp by a constant flow
    >>> round(float(MotionLoss(smoothness=0.5)(pred, torch.zeros(1, 1, 4, 4))), 6)  # 0 + 0.5 * sqrt(0.01)
    0.05
    """

    def __init__(self, smoothness: float = 0.01) -> None:
        if not smoothness >= 0:  # also refuses NaN
            raise ValueError(f"the smoothness weight must be >= 0, got {smoothness}")
        self.smoothness = float(smoothness)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if pred.dim() != 4 or pred.shape[1] != 3 or target.shape != (pred.shape[0], 1, *pred.shape[2:]):
            raise ValueError(
                "MotionLoss expects pred (B, 3, H, W) (warped image, flow u, flow v) and target (B, 1, H, W); "
                f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
            )
        image_term = mse_loss(pred[:, :1], target, mask)
        labelled = ~torch.isnan(target).flatten(1).any(1)
        if mask is not None:
            labelled = labelled & mask.bool().reshape(pred.shape[0], -1).all(1)
        if self.smoothness == 0 or not bool(labelled.any()):
            return image_term
        return image_term + self.smoothness * flow_smoothness(pred[labelled, 1:])

    def __repr__(self) -> str:
        return f"MotionLoss(smoothness={self.smoothness:g})"


# -- class-weighted segmentation (Y-Net, Mehta et al.) --------------------------------------------
def class_balance_weights(labels: torch.Tensor, n_classes: int, c: float = 1.10) -> torch.Tensor:
    r"""The class weights of Y-Net's public code (Mehta et al., MICCAI 2018, arXiv 1806.01313),

    .. math:: w_k = \frac{1}{\ln(c + p_k)}, \qquad p_k = \frac{\#\{i : y_i = k\}}{\#\{i : y_i \ne -100\}},

    from the labelled items' class frequencies :math:`p_k` (``c = 1.10``, as
    in the code's ``normVal``). A rare class gets a weight up to
    :math:`1/\ln c \approx 10.5`; a class covering everything
    :math:`1/\ln(1 + c) \approx 1.35`.

    >>> class_balance_weights(torch.tensor([0, 0, 0, 1]), 2)
    tensor([1.6255, 3.3322])
    """
    labelled = labels[labels != IGNORE_INDEX]
    if labelled.numel() == 0:
        raise ValueError("class_balance_weights needs at least one labelled item, got none")
    if labelled.min() < 0 or labelled.max() >= n_classes:
        raise ValueError(
            f"class labels must lie in 0..{n_classes - 1} (or be {IGNORE_INDEX}), got "
            f"{int(labelled.min())}..{int(labelled.max())}"
        )
    if not c > 1:
        raise ValueError(f"c must exceed 1 so that every weight is positive and finite, got {c}")
    frequency = torch.bincount(labelled.flatten(), minlength=n_classes).double() / labelled.numel()
    return (1.0 / torch.log(c + frequency)).float()


class WeightedCrossEntropy:
    r"""Softmax cross-entropy with class weights :math:`w`, averaged by the weights (PyTorch's ``weight=``):

    .. math:: L = -\frac{\sum_i w_{y_i} \log \operatorname{softmax}(z_i)_{y_i}}{\sum_i w_{y_i}}

    over the labelled items :math:`i` (pixels). Y-Net's segmentation loss
    (Mehta et al., MICCAI 2018, arXiv 1806.01313; public code,
    ``CrossEntropyLoss2d(weight)``) with :func:`class_balance_weights`.
    Equal weights give :func:`cross_entropy`.

    >>> WeightedCrossEntropy(torch.tensor([1.0, 3.0]))(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor(0.6931)
    """

    def __init__(self, weights: torch.Tensor) -> None:
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if weights.ndim != 1 or not bool(torch.isfinite(weights).all()) or not bool((weights > 0).all()):
            raise ValueError(f"class weights must be a 1-D tensor of positive finite numbers, got {weights}")
        self.weights = weights

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if logits.ndim < 2 or logits.shape[1] != self.weights.numel():
            raise ValueError(
                f"WeightedCrossEntropy has {self.weights.numel()} class weights but the logits have shape "
                f"{tuple(logits.shape)} (classes on dim 1)"
            )
        labelled = target != IGNORE_INDEX
        if mask is not None:
            labelled = labelled & expand_mask(mask.bool(), target.shape)
        safe = torch.where(labelled, target, 0)
        weight = self.weights.to(logits.device)[safe] * labelled
        per_item = F.cross_entropy(logits, safe, reduction="none")
        return (weight * per_item).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)

    def __repr__(self) -> str:
        return f"WeightedCrossEntropy({[round(w, 3) for w in self.weights.tolist()]})"

r"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016, arXiv 1604.03539).

One network ("column") per task; between two stages a cross-stitch unit
replaces the activation maps of the :math:`T` columns by linear combinations
of them, at every location (batch element, pixel) of the maps:

.. math::

    \tilde x_i = \sum_{j=1}^{T} \alpha_{ij}\, x_j, \qquad i = 1, \dots, T.

With :math:`T = 2` this is the paper's Eq. 1,
:math:`[\tilde x_A; \tilde x_B] = [[\alpha_{AA}, \alpha_{AB}], [\alpha_{BA}, \alpha_{BB}]]\,[x_A; x_B]`.
There is either one :math:`T \times T` matrix per channel ("per channel", the
paper's NYU-v2 networks) or one for the whole layer ("per layer", the paper's
detection + attributes networks, where per channel was unstable).

**Backward pass.** Write the columns at one channel as the rows of a matrix
:math:`X \in \mathbb{R}^{T \times P}` (:math:`P` = batch size times number of
pixels, the locations), so that the unit is :math:`\tilde X = A X` with
:math:`A = (\alpha_{ij})`. For a loss :math:`\mathcal L` with
:math:`G = \partial \mathcal L / \partial \tilde X`,

.. math::

    \frac{\partial \mathcal L}{\partial x_j} = \sum_i \alpha_{ij}\,
    \frac{\partial \mathcal L}{\partial \tilde x_i}
    \quad (\text{i.e. } A^\top G), \qquad
    \frac{\partial \mathcal L}{\partial \alpha_{ij}} = \sum_{\text{locations}}
    \frac{\partial \mathcal L}{\partial \tilde x_i}\, x_j
    \quad (\text{i.e. } G X^\top),

summed over the batch and the spatial positions (per channel when per
channel). The first is the paper's Eq. 2, as printed, for general :math:`T`.
The second corrects the paper's Eq. 3 as printed (arXiv v1, §3.3): Eq. 3 omits
the sum over locations, and its formula for :math:`\partial\mathcal L/\partial\alpha_{AB}`,
:math:`\partial\mathcal L/\partial\tilde x_B^{ij}\, x_A^{ij}`, is the derivative for
:math:`\alpha_{BA}` under Eq. 1's convention (the indices are swapped);
lecture A4 checks both against autograd.
:class:`CrossStitchFunction` implements exactly these two lines;
:func:`cross_stitch_reference` is the forward pass written with ``einsum``
whose gradients autograd derives, so the two can be compared.

Initialisation: :math:`\alpha_{ii} = \alpha_S`, :math:`\alpha_{ij} = \alpha_D`
(:math:`i \ne j`), default :math:`(\alpha_S, \alpha_D) = (0.9, 0.1)`, the best
row of the paper's Table 1. A convex combination is only the starting
point, not a constraint. For :math:`T > 2` this module uses :math:`\alpha_D`
for *every* pair, so a row sums to :math:`\alpha_S + (T-1)\alpha_D` (1.1 for
three tasks); pass ``alpha_init=(0.9, 0.1 / (T - 1))`` for rows that sum to 1.

Learning rate of the :math:`\alpha`: the paper multiplies it by
:math:`10^2`--:math:`10^3` (Caffe ``lr_mult``, Table 2) because the
:math:`\alpha` start one to two orders of magnitude larger than the network
weights. :meth:`~mtl_course.models.base.MultiTaskModel.parameter_groups`
(``mixing_lr_scale``) gives :meth:`CrossStitchNetwork.mixing_parameters`
their own learning rate; with Adam a factor of about 10 is a reasonable
analogue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtl_course.models.blocks import StagedEncoder
from mtl_course.models.columns import MixedColumnNetwork


def cross_stitch_init(
    num_columns: int, alpha_init: tuple[float, float] = (0.9, 0.1), num_channels: int | None = None
) -> torch.Tensor:
    """The initial ``alpha``: ``alpha_S`` on the diagonal, ``alpha_D`` everywhere else.

    Shape ``(T, T)``, or ``(C, T, T)`` (one matrix per channel) when
    ``num_channels`` is given.

    >>> cross_stitch_init(3, (0.9, 0.1))
    tensor([[0.9000, 0.1000, 0.1000],
            [0.1000, 0.9000, 0.1000],
            [0.1000, 0.1000, 0.9000]])
    """
    if len(alpha_init) != 2:
        raise ValueError(f"alpha_init must be a pair (alpha_S, alpha_D), got {alpha_init!r}")
    alpha_same, alpha_diff = (float(a) for a in alpha_init)
    alpha = torch.full((num_columns, num_columns), alpha_diff)
    alpha.fill_diagonal_(alpha_same)
    if num_channels is not None:
        alpha = alpha.expand(num_channels, num_columns, num_columns).clone()
    return alpha


def _stack_columns(xs: Sequence[torch.Tensor], alpha: torch.Tensor) -> torch.Tensor:
    """Check that ``xs`` fit ``alpha`` and stack them into ``(T, N, C, ...)``."""
    if isinstance(xs, torch.Tensor):
        raise TypeError("pass the columns as a list of T tensors, not one tensor")
    num_columns = alpha.shape[-1]
    if alpha.ndim not in (2, 3) or alpha.shape[-2] != num_columns:
        raise ValueError(f"alpha must have shape (T, T) or (C, T, T), got {tuple(alpha.shape)}")
    if len(xs) != num_columns:
        raise ValueError(
            f"this cross-stitch unit mixes {num_columns} columns (alpha is {tuple(alpha.shape)}), got {len(xs)} inputs"
        )
    first = xs[0]
    for j, x in enumerate(xs):
        if x.shape != first.shape:
            raise ValueError(
                "cross-stitch inputs must all have the same shape; "
                f"column 0 has {tuple(first.shape)}, column {j} has {tuple(x.shape)}"
            )
        if x.device != first.device:
            raise ValueError(
                f"cross-stitch inputs must be on one device; column 0 is on {first.device}, column {j} on {x.device}"
            )
    if first.ndim < 2:
        raise ValueError(f"cross-stitch inputs must have shape (N, C, ...), got {tuple(first.shape)}")
    if alpha.ndim == 3 and alpha.shape[0] != first.shape[1]:
        raise ValueError(
            f"per-channel alpha has {alpha.shape[0]} channels but the inputs have "
            f"{first.shape[1]} (shape {tuple(first.shape)})"
        )
    return torch.stack(list(xs))


def _channel_rows(stacked: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """``(T, N, C, ...)`` -> ``(C, T, L)`` per channel, ``(1, T, L)`` per layer: one X per matrix."""
    num_columns = stacked.shape[0]
    if per_channel:
        return stacked.movedim(2, 0).reshape(stacked.shape[2], num_columns, -1)
    return stacked.reshape(1, num_columns, -1)


def _from_channel_rows(rows: torch.Tensor, shape: torch.Size, per_channel: bool) -> torch.Tensor:
    """Inverse of :func:`_channel_rows`."""
    if per_channel:
        channels_first = (shape[2], shape[0], shape[1], *shape[3:])
        return rows.reshape(channels_first).movedim(0, 2)
    return rows.reshape(shape)


class CrossStitchFunction(torch.autograd.Function):
    r"""The cross-stitch unit with its backward pass written by hand.

    ``CrossStitchFunction.apply(stacked, alpha)``: ``stacked`` holds the
    :math:`T` columns, shape ``(T, N, C, ...)``; ``alpha`` is ``(T, T)``
    (per layer) or ``(C, T, T)`` (per channel). With :math:`X` the columns
    as rows (one :math:`X` per channel when per channel),

    * forward: :math:`\tilde X = A X`;
    * backward: :math:`\partial\mathcal L/\partial X = A^\top G` and
      :math:`\partial\mathcal L/\partial A = G X^\top`, :math:`G = \partial\mathcal L/\partial\tilde X`.

    All inputs must share one dtype; :func:`cross_stitch` takes care of that
    (and of autocast) before it calls this function.
    """

    @staticmethod
    def forward(ctx, stacked: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        per_channel = alpha.ndim == 3
        ctx.save_for_backward(stacked, alpha)
        ctx.per_channel = per_channel
        matrices = alpha if per_channel else alpha.unsqueeze(0)
        mixed = matrices @ _channel_rows(stacked, per_channel)
        return _from_channel_rows(mixed, stacked.shape, per_channel)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad_output: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        stacked, alpha = ctx.saved_tensors
        per_channel = ctx.per_channel
        matrices = alpha if per_channel else alpha.unsqueeze(0)
        grad_rows = _channel_rows(grad_output, per_channel)  # G
        grad_stacked = grad_alpha = None
        with torch.autocast(grad_output.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                # dL/dx_j = sum_i alpha_ij dL/dx~_i  ->  A^T G
                grad_stacked = _from_channel_rows(matrices.mT @ grad_rows, stacked.shape, per_channel)
            if ctx.needs_input_grad[1]:
                # dL/dalpha_ij = sum over locations of dL/dx~_i * x_j  ->  G X^T
                grad_matrices = grad_rows @ _channel_rows(stacked, per_channel).mT
                grad_alpha = grad_matrices if per_channel else grad_matrices[0]
        return grad_stacked, grad_alpha


def cross_stitch(xs: Sequence[torch.Tensor], alpha: torch.Tensor) -> list[torch.Tensor]:
    """Mix ``T`` columns with ``alpha`` through :class:`CrossStitchFunction`.

    ``xs``: ``T`` tensors of one shape ``(N, C, ...)``; ``alpha``: ``(T, T)``
    or ``(C, T, T)``. Under autocast the unit computes in the autocast dtype
    (it is a matrix product, which autocast runs in low precision);
    otherwise in the inputs' dtype, to which ``alpha`` is cast.

    >>> a, b = torch.ones(1, 2), torch.zeros(1, 2)
    >>> cross_stitch([a, b], cross_stitch_init(2, (0.9, 0.1)))
    [tensor([[0.9000, 0.9000]]), tensor([[0.1000, 0.1000]])]
    """
    stacked = _stack_columns(xs, alpha)
    device_type = stacked.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
    else:
        dtypes = {x.dtype for x in xs}
        if len(dtypes) > 1:
            raise TypeError(
                f"cross-stitch inputs must share one dtype outside autocast, got {sorted(map(str, dtypes))}"
            )
        dtype = stacked.dtype
    with torch.autocast(device_type, enabled=False):
        mixed = CrossStitchFunction.apply(stacked.to(dtype), alpha.to(dtype))
    return list(mixed.unbind(0))


def cross_stitch_reference(xs: Sequence[torch.Tensor], alpha: torch.Tensor) -> list[torch.Tensor]:
    """The plain forward pass, ``x~_i = sum_j alpha_ij x_j``, for autograd to differentiate.

    Same arguments as :func:`cross_stitch`; used to check the hand-written
    backward pass of :class:`CrossStitchFunction`.

    >>> _ = torch.manual_seed(0)
    >>> xs, alpha = [torch.randn(4, 3), torch.randn(4, 3)], torch.rand(3, 2, 2)
    >>> all(torch.allclose(p, q) for p, q in zip(cross_stitch(xs, alpha), cross_stitch_reference(xs, alpha)))
    True
    """
    stacked = _stack_columns(xs, alpha)
    if alpha.ndim == 2:
        mixed = torch.einsum("ij,j...->i...", alpha, stacked)
    else:
        mixed = torch.einsum("cij,jnc...->inc...", alpha, stacked)
    return list(mixed.unbind(0))


class CrossStitchUnit(nn.Module):
    """A learnable cross-stitch unit between one stage of ``num_columns`` columns.

    ``per_channel=True`` learns one ``T x T`` matrix per channel (``alpha``
    has shape ``(C, T, T)``); ``per_channel=False`` one for the whole layer
    (``(T, T)``). See the module docstring for the initialisation.

    >>> unit = CrossStitchUnit(num_columns=2, num_channels=4)
    >>> tuple(unit.alpha.shape)
    (4, 2, 2)
    >>> [tuple(y.shape) for y in unit([torch.zeros(8, 4), torch.zeros(8, 4)])]
    [(8, 4), (8, 4)]
    """

    def __init__(
        self,
        num_columns: int,
        num_channels: int,
        per_channel: bool = True,
        alpha_init: tuple[float, float] = (0.9, 0.1),
    ) -> None:
        super().__init__()
        if num_columns < 2:
            raise ValueError(f"a cross-stitch unit mixes at least 2 columns, got num_columns={num_columns}")
        self.num_columns = num_columns
        self.num_channels = num_channels
        self.per_channel = per_channel
        self.alpha_init = tuple(alpha_init)
        self.alpha = nn.Parameter(cross_stitch_init(num_columns, alpha_init, num_channels if per_channel else None))

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(xs) and xs[0].ndim >= 2 and xs[0].shape[1] != self.num_channels:
            raise ValueError(
                f"this cross-stitch unit was built for {self.num_channels} channels, "
                f"got inputs of shape {tuple(xs[0].shape)}"
            )
        return cross_stitch(xs, self.alpha)

    def extra_repr(self) -> str:
        return (
            f"num_columns={self.num_columns}, num_channels={self.num_channels}, "
            f"per_channel={self.per_channel}, alpha_init={self.alpha_init}"
        )


class CrossStitchNetwork(MixedColumnNetwork):
    """One column per task with a :class:`CrossStitchUnit` after every stage, then one head per task.

    Misra et al., CVPR 2016, arXiv 1604.03539. ``columns`` are
    :class:`~mtl_course.models.blocks.StagedEncoder` s with identical stage
    widths; ``heads`` map each column's last mixed state to the task's
    output. The columns, the stage loop, the factories ``.mlp`` / ``.cnn``
    (whose keyword options ``per_channel`` and ``alpha_init`` come here) and
    the parameter split come from
    :class:`~mtl_course.models.columns.MixedColumnNetwork`: the columns and
    the ``alpha`` are shared, the heads task-specific, and
    :meth:`mixing_parameters` are the ``alpha``, which
    :meth:`~mtl_course.models.base.MultiTaskModel.parameter_groups` gives
    their own learning rate:

    >>> net = CrossStitchNetwork.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 1})
    >>> [(len(group["params"]), group["lr"]) for group in net.parameter_groups(lr=1e-3, mixing_lr_scale=10)]
    [(12, 0.001), (2, 0.01)]
    >>> {task: tuple(y.shape) for task, y in net(torch.zeros(8, 20)).items()}
    {'a': (8, 1), 'b': (8, 1)}
    """

    architecture = "a cross-stitch network"

    def __init__(
        self,
        columns: Mapping[str, StagedEncoder],
        heads: Mapping[str, nn.Module],
        per_channel: bool = True,
        alpha_init: tuple[float, float] = (0.9, 0.1),
    ) -> None:
        def unit(num_tasks: int, width: int) -> CrossStitchUnit:
            return CrossStitchUnit(num_tasks, width, per_channel=per_channel, alpha_init=alpha_init)

        super().__init__(columns, heads, unit)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        last = self.mixed_states(x)[-1]
        return {task: self.heads[task](h) for task, h in zip(self.tasks, last, strict=True)}

    def extra_repr(self) -> str:
        per_channel = self.units[0].per_channel
        return self.describe_sharing(
            shared=f"columns (mixed after every stage) + alpha ({'per channel' if per_channel else 'per layer'})",
            task_specific="heads.<task>",
        )

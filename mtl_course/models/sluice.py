r"""Sluice networks (Ruder, Bingel, Augenstein & Søgaard, arXiv 1705.08142; AAAI 2019 as
"Latent Multi-task Architecture Learning").

:math:`M` tasks, one column each, :math:`K` layers (stages) per column. Three
learned parts generalise cross-stitch networks:

**α (subspace mixing).** After layer :math:`k`, the hidden state
:math:`h_{m,k} \in \mathbb{R}^C` of task :math:`m` is split into :math:`S`
subspaces :math:`h_{m,k,s}` (contiguous blocks of :math:`C/S` channels), and
one :math:`MS \times MS` matrix :math:`\alpha_k` mixes all subspaces of all
tasks, at every location:

.. math::

    \tilde h_{m,k,s} = \sum_{m'=1}^{M} \sum_{s'=1}^{S}
        \alpha_k[(m,s),(m',s')]\; h_{m',k,s'},

rows and columns ordered task-major (index :math:`mS + s`). With
:math:`S = 1` this is a per-layer cross-stitch unit, one scalar per task
pair; the mixing itself runs through
:class:`~mtl_course.models.cross_stitch.CrossStitchFunction` with the
:math:`MS` subspaces as its columns.

**β (layer stitch).** Task :math:`m`'s head sees a learned weighted sum of
the (mixed) outputs of all layers of its column,
:math:`\sum_k \beta_{m,k}\, \tilde h_{m,k}`; this needs all layers to have
the same width.

**Orthogonality penalty.** With :math:`W_{m,k}` the weight matrix of layer
:math:`k` of task :math:`m` (PyTorch layout: output x input; a convolution
kernel flattened to output x (input * kernel)), :math:`G_{m,k,s}` is the block
of its rows that produces subspace :math:`s`, and

.. math::

    \mathcal L_c = \sum_{m=1}^{M} \sum_{k=1}^{K} \lVert G_{m,k,1}^\top G_{m,k,2} \rVert_F^2,

summed over all pairs :math:`s < s'` when :math:`S > 2`. As in the official
code (``sluice_net.py``), :math:`G` are blocks of the *weight matrices*, not of
the activations, and the product is :math:`G_1^\top G_2` (input x input);
the official code penalises two of the weight matrices of each LSTM layer,
an MLP or convolutional stage here has one.
Two differences, both deliberate: the official DyNet code splits the rows
after a column-major reshape, which as far as we can tell makes the two
blocks the even and the odd rows; here they are the contiguous blocks that
produce the subspaces the α mix. And :math:`G_1 G_2^\top` (orthogonal row
spaces) would be an equally natural reading of the paper; we follow the code.

**Initialisation.** ``"balanced"`` α is :math:`1/(MS)` everywhere, as in the
official code. ``"imbalanced"`` (the default, as in the official code) puts
0.9 on the diagonal and spreads 0.1 evenly over the rest of each row; for
:math:`S = 1` this is exactly the official ``0.9`` and ``0.1/(M-1)``. For
:math:`S > 1` the official code uses a 0.95/0.05 pattern laid out on its
column-major reshape, which does not map onto (task, subspace) blocks; we
do not copy it. β is ``"balanced"`` (:math:`1/K`, the official default) or
``"imbalanced"`` (0.9 on the last layer, 0.1 spread over the others).

**This module follows the paper, not the official code's behaviour.** Read
with DyNet's column-major ``reshape``, the official code's α pools
neighbouring units rather than steering the flow between tasks, and its β
weights positions within groups of adjacent units rather than layers;
Lecture A5 replays that code in NumPy
(:mod:`mtl_course.experiments.sluice`) and shows it. The official training
script also defaults to balanced α and imbalanced β, the opposite of the
class defaults used here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from mtl_course.models.blocks import StagedEncoder
from mtl_course.models.columns import MixedColumnNetwork
from mtl_course.models.cross_stitch import cross_stitch

Init = Literal["balanced", "imbalanced"]
INITS: tuple[str, ...] = ("balanced", "imbalanced")
IMBALANCED_SELF_WEIGHT = 0.9


def _check_init(what: str, scheme: str) -> None:
    if scheme not in INITS:
        raise ValueError(f"unknown {what} initialisation {scheme!r}; choose one of {list(INITS)}")


def sluice_alpha_init(num_tasks: int, num_subspaces: int, scheme: Init = "imbalanced") -> torch.Tensor:
    """The initial ``(M*S, M*S)`` alpha (see the module docstring).

    >>> sluice_alpha_init(2, 1)
    tensor([[0.9000, 0.1000],
            [0.1000, 0.9000]])
    >>> sluice_alpha_init(2, 2, "balanced")[0]
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    _check_init("alpha", scheme)
    size = num_tasks * num_subspaces
    if scheme == "balanced":
        return torch.full((size, size), 1.0 / size)
    alpha = torch.full((size, size), (1.0 - IMBALANCED_SELF_WEIGHT) / (size - 1))
    return alpha.fill_diagonal_(IMBALANCED_SELF_WEIGHT)


def layer_stitch_init(num_layers: int, scheme: Init = "balanced") -> torch.Tensor:
    """The initial beta of one task over its ``num_layers`` layers.

    >>> layer_stitch_init(4)
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    >>> layer_stitch_init(3, "imbalanced")
    tensor([0.0500, 0.0500, 0.9000])
    """
    _check_init("beta", scheme)
    if scheme == "balanced":
        return torch.full((num_layers,), 1.0 / num_layers)
    if num_layers < 2:
        raise ValueError(f"'imbalanced' beta needs at least 2 layers, got {num_layers}; use 'balanced'")
    beta = torch.full((num_layers,), (1.0 - IMBALANCED_SELF_WEIGHT) / (num_layers - 1))
    beta[-1] = IMBALANCED_SELF_WEIGHT
    return beta


def subspace_orthogonality(weight: torch.Tensor, num_subspaces: int) -> torch.Tensor:
    """``sum_{s<t} ||G_s^T G_t||_F^2`` for the row blocks ``G_s`` of one weight matrix.

    ``weight`` is ``(out, in)`` (or a kernel ``(out, in, ...)``, flattened to
    ``(out, in * ...)``); its rows are split into ``num_subspaces`` contiguous
    blocks.

    >>> w = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> subspace_orthogonality(w, 2)  # G_1 = [[1, 0]], G_2 = [[0, 2]]: G_1^T G_2 = [[0, 2], [0, 0]]
    tensor(4.)
    """
    matrix = weight.flatten(1)
    if matrix.shape[0] % num_subspaces:
        raise ValueError(
            f"cannot split a weight with {matrix.shape[0]} output rows into {num_subspaces} equal subspaces"
        )
    blocks = matrix.split(matrix.shape[0] // num_subspaces, dim=0)
    total = matrix.new_zeros(())
    for s in range(num_subspaces):
        for t in range(s + 1, num_subspaces):
            total = total + (blocks[s].mT @ blocks[t]).pow(2).sum()
    return total


def stage_weight(stage: nn.Module) -> torch.Tensor:
    """The weight of the stage's last ``Linear`` or ``Conv`` layer: the one producing its output channels."""
    layers = [m for m in stage.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    if not layers:
        raise ValueError(
            f"the orthogonality penalty needs a Linear or Conv layer in every stage; this stage has none:\n{stage}"
        )
    return layers[-1].weight


class SluiceUnit(nn.Module):
    """Mixes the ``S`` subspaces of the ``M`` tasks' hidden states with one ``(M*S, M*S)`` alpha.

    >>> unit = SluiceUnit(num_tasks=2, num_subspaces=2, num_channels=4)
    >>> tuple(unit.alpha.shape)
    (4, 4)
    >>> [tuple(h.shape) for h in unit([torch.zeros(8, 4), torch.zeros(8, 4)])]
    [(8, 4), (8, 4)]
    """

    def __init__(self, num_tasks: int, num_subspaces: int, num_channels: int, alpha_init: Init = "imbalanced") -> None:
        super().__init__()
        if num_tasks < 2:
            raise ValueError(f"a sluice unit mixes at least 2 tasks, got num_tasks={num_tasks}")
        if num_subspaces < 1 or num_channels % num_subspaces:
            raise ValueError(
                f"cannot split {num_channels} channels into {num_subspaces} equal subspaces; "
                "choose a width divisible by num_subspaces"
            )
        self.num_tasks = num_tasks
        self.num_subspaces = num_subspaces
        self.num_channels = num_channels
        self.alpha = nn.Parameter(sluice_alpha_init(num_tasks, num_subspaces, alpha_init))

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(xs) != self.num_tasks:
            raise ValueError(f"this sluice unit mixes {self.num_tasks} tasks, got {len(xs)} inputs")
        for m, x in enumerate(xs):
            if x.ndim < 2 or x.shape[1] != self.num_channels:
                raise ValueError(
                    f"this sluice unit expects inputs of shape (N, {self.num_channels}, ...), "
                    f"got {tuple(x.shape)} for task {m}"
                )
        width = self.num_channels // self.num_subspaces
        subspaces = [h for x in xs for h in x.split(width, dim=1)]  # index m*S + s
        mixed = cross_stitch(subspaces, self.alpha)
        s = self.num_subspaces
        return [torch.cat(mixed[m * s : (m + 1) * s], dim=1) for m in range(self.num_tasks)]

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, num_subspaces={self.num_subspaces}, num_channels={self.num_channels}"


class SluiceNetwork(MixedColumnNetwork):
    """Columns with a :class:`SluiceUnit` after every stage, β layer stitching and one head per task.

    Ruder, Bingel, Augenstein & Søgaard, arXiv 1705.08142 (AAAI 2019). See
    the module docstring for α, β, :meth:`penalty` and the
    initialisation. ``layer_stitch=False`` drops β (each head sees the last
    layer), for the α / α+β / α+β+orthogonality ablation. The training loop
    adds ``lam * model.penalty()`` to the loss.

    The columns, the stage loop :meth:`mixed_states`, the factories
    ``.mlp`` / ``.cnn`` (whose keyword options come here) and the parameter
    split come from :class:`~mtl_course.models.columns.MixedColumnNetwork`:
    as for cross-stitch networks, the columns and the α are shared in the
    sense of the model contract; ``task_parameters(t)`` are head ``t`` and
    its β.

    >>> net = SluiceNetwork.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 1})
    >>> {t: tuple(y.shape) for t, y in net(torch.zeros(8, 20)).items()}
    {'a': (8, 1), 'b': (8, 1)}
    >>> [tuple(p.shape) for p in net.cross_stitch_parameters()]
    [(4, 4), (4, 4)]
    """

    architecture = "a sluice network"

    def __init__(
        self,
        columns: Mapping[str, StagedEncoder],
        heads: Mapping[str, nn.Module],
        num_subspaces: int = 2,
        alpha_init: Init = "imbalanced",
        beta_init: Init = "balanced",
        layer_stitch: bool = True,
    ) -> None:
        def unit(num_tasks: int, width: int) -> SluiceUnit:
            return SluiceUnit(num_tasks, num_subspaces, width, alpha_init)

        super().__init__(columns, heads, unit)
        widths = self.stage_widths
        if layer_stitch and len(set(widths)) > 1:
            raise ValueError(
                f"layer stitching (beta) sums the outputs of all layers, so they need one width; got {widths}. "
                "Use equal hidden widths or layer_stitch=False"
            )
        self.num_subspaces = num_subspaces
        self.layer_stitch = layer_stitch
        self.betas = nn.ParameterDict(
            {task: nn.Parameter(layer_stitch_init(len(widths), beta_init)) for task in self.tasks}
            if layer_stitch
            else {}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        layers = self.mixed_states(x)
        if not self.layer_stitch:
            return {task: self.heads[task](h) for task, h in zip(self.tasks, layers[-1], strict=True)}
        if len({layer[0].shape for layer in layers}) > 1:
            raise ValueError(
                "layer stitching (beta) sums the outputs of all layers, so they need one shape; got "
                f"{[tuple(layer[0].shape) for layer in layers]} (e.g. use CNNTrunk(..., pool=False))"
            )
        outputs = {}
        for m, task in enumerate(self.tasks):
            beta = self.betas[task]
            outputs[task] = self.heads[task](sum(beta[k] * layer[m] for k, layer in enumerate(layers)))
        return outputs

    def penalty(self) -> torch.Tensor:
        """``L_c = sum_m sum_k sum_{s<s'} ||G_{m,k,s}^T G_{m,k,s'}||_F^2`` over the columns' weight matrices."""
        return sum(
            subspace_orthogonality(stage_weight(stage), self.num_subspaces)
            for task in self.tasks
            for stage in self.columns[task].stages
        )

    def cross_stitch_parameters(self) -> Iterator[nn.Parameter]:
        """The α of every unit."""
        return super().mixing_parameters()

    def layer_stitch_parameters(self) -> Iterator[nn.Parameter]:
        """The β of every task (empty with ``layer_stitch=False``)."""
        yield from self.betas.values()

    def mixing_parameters(self) -> Iterator[nn.Parameter]:
        """Every α, then every β: what decides how much the tasks share."""
        yield from self.cross_stitch_parameters()
        yield from self.layer_stitch_parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from super().task_parameters(task)
        if self.layer_stitch:
            yield self.betas[task]

    def extra_repr(self) -> str:
        beta = " + beta.<task>" if self.layer_stitch else ""
        return self.describe_sharing(
            shared=f"columns (mixed after every stage) + alpha over {self.num_subspaces} subspaces per task",
            task_specific=f"heads.<task>{beta}",
        )

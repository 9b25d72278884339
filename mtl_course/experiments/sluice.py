r"""Sluice networks: the ablation of lecture A5 and a NumPy reading of the official code.

Ruder, Bingel, Augenstein & Søgaard, "Latent Multi-task Architecture
Learning", AAAI 2019, arXiv 1705.08142 (first circulated as "Sluice networks:
Learning what to share between loosely related tasks"). The architecture
itself lives in :mod:`mtl_course.models.sluice`; this module holds what the
lecture does with it.

**The ablation.** :data:`ABLATION_ARMS` lists the models the lecture
compares on the data-starved pair of teacher tasks of lecture A4:
single-task networks, hard sharing, a per-layer cross-stitch network (a
sluice network with :math:`S = 1` and no :math:`\beta`), and a sluice network
with two subspaces per layer, first with :math:`\alpha` only, then with the
layer-stitch :math:`\beta`, then with :math:`\beta` and the orthogonality
penalty, i.e. the objective

.. math::

    \sum_t \mathcal L_t + \lambda \mathcal L_c, \qquad
    \mathcal L_c = \sum_{m}\sum_{k} \lVert G_{m,k,1}^\top G_{m,k,2} \rVert_F^2

(:meth:`~mtl_course.models.SluiceNetwork.penalty`).
:func:`run_ablation` trains every arm on every draw of the data with lecture
A4's recipe (:func:`~mtl_course.experiments.cross_stitch.train_runs`: full
batch, Adam, the :math:`\alpha` and :math:`\beta` at ``mixing_lr_scale``
times the learning rate, ``lam * model.penalty()`` added to the loss) and
records :func:`sluice_snapshot` after every epoch: :math:`\alpha`,
:math:`\beta` and :math:`\lVert G_{m,k,1}^\top G_{m,k,2}\rVert_F`
(read them back with :func:`~mtl_course.experiments.cross_stitch.trace`).
To read a trained network: :func:`subspace_overlaps`,
:func:`cross_subspace_cosine` and :func:`effective_rank` (what the penalty
does to the subspaces) and :func:`layer_contributions` (what the
:math:`\beta` do).

**The official code, read with DyNet's semantics.** The authors' DyNet code
(github.com/sebastianruder/sluice-networks, ``predictors.py`` and
``sluice_net.py``) builds its :math:`\alpha` and :math:`\beta` units with
``dynet.reshape``, which is column-major ("without changing the underlying
layout of the data. The layout of the data in DyNet is column-major", DyNet's
documentation). :func:`official_cross_stitch`, :func:`official_layer_stitch`
and :func:`official_subspace_blocks` replay those lines in NumPy with
``order="F"``; :func:`official_alpha_init` and :func:`official_beta_init`
copy the initialisations. We could not run DyNet itself; these functions are
our reading of the code, and the tests check them against index formulas
derived by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from mtl_course.experiments.cross_stitch import TeacherData, mixing_snapshot, train_conditions
from mtl_course.experiments.engine import ExperimentResult, Run
from mtl_course.experiments.labels import CROSS_STITCH, HARD, SLUICE, STL
from mtl_course.models import HardSharing, SingleTask, SluiceNetwork
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.sluice import stage_weight, subspace_orthogonality

ArmKind = Literal["stl", "hard", "sluice"]


# -- the arms of the ablation ------------------------------------------------------------------
@dataclass(frozen=True)
class AblationArm:
    """One model of the ablation; ``label`` is its condition name in the result tables.

    ``kind`` is ``"stl"`` (:class:`~mtl_course.models.SingleTask`), ``"hard"``
    (:class:`~mtl_course.models.HardSharing`) or ``"sluice"``
    (:class:`~mtl_course.models.SluiceNetwork` with ``num_subspaces``
    subspaces, ``layer_stitch`` for :math:`\\beta`, and the penalty weight
    ``orthogonality`` :math:`\\lambda`).
    """

    label: str
    kind: ArmKind
    num_subspaces: int = 2
    layer_stitch: bool = False
    orthogonality: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("stl", "hard", "sluice"):
            raise ValueError(f"arm {self.label!r}: kind must be 'stl', 'hard' or 'sluice', got {self.kind!r}")
        if self.orthogonality < 0 or not math.isfinite(self.orthogonality):
            raise ValueError(f"arm {self.label!r}: the penalty weight must be >= 0, got {self.orthogonality}")
        if self.orthogonality > 0 and (self.kind != "sluice" or self.num_subspaces < 2):
            raise ValueError(
                f"arm {self.label!r}: the orthogonality penalty needs a sluice network, num_subspaces >= 2"
            )

    def build(self, in_features: int, hidden: Sequence[int], tasks: Mapping[str, int]) -> MultiTaskModel:
        """A freshly initialised model of this arm (``.mlp`` factories)."""
        if self.kind == "stl":
            return SingleTask.mlp(in_features, list(hidden), dict(tasks))
        if self.kind == "hard":
            return HardSharing.mlp(in_features, list(hidden), dict(tasks))
        return SluiceNetwork.mlp(
            in_features, list(hidden), dict(tasks), num_subspaces=self.num_subspaces, layer_stitch=self.layer_stitch
        )


#: The penalty weight :math:`\lambda` of the last arm: the official README's example uses ``--constraint-weight 0.1``.
DEFAULT_ORTHOGONALITY = 0.1

ABLATION_ARMS: tuple[AblationArm, ...] = (
    AblationArm(STL, "stl"),
    AblationArm(HARD, "hard"),
    AblationArm(f"{CROSS_STITCH} (S=1)", "sluice", num_subspaces=1),
    AblationArm(f"{SLUICE} α", "sluice"),
    AblationArm(f"{SLUICE} α+β", "sluice", layer_stitch=True),
    AblationArm(f"{SLUICE} α+β+⊥", "sluice", layer_stitch=True, orthogonality=DEFAULT_ORTHOGONALITY),
)


def effective_rank(matrix: torch.Tensor | np.ndarray) -> float:
    r"""The participation ratio of the singular values, :math:`(\sum_i \sigma_i)^2 / \sum_i \sigma_i^2`.

    It equals :math:`r` for a matrix with :math:`r` equal non-zero singular
    values and lies between 1 and the rank otherwise: a smooth count of the
    directions a matrix really uses.

    >>> effective_rank(np.diag([2.0, 2.0, 0.0]))
    2.0
    """
    s = np.linalg.svd(np.asarray(torch.as_tensor(matrix).detach().cpu(), dtype=float), compute_uv=False)
    if not (s**2).sum() > 0:
        raise ValueError("the effective rank of a zero matrix is undefined")
    return float(s.sum() ** 2 / (s**2).sum())


def cross_subspace_cosine(weight: torch.Tensor, num_subspaces: int = 2, samples: int = 512, seed: int = 0) -> float:
    r"""Mean :math:`|\cos|` between :math:`G_1 x` and :math:`G_2 y` for independent Gaussian inputs :math:`x, y`.

    :math:`G_1, G_2` are the first two row blocks of ``weight`` (as in
    :func:`~mtl_course.models.sluice.subspace_orthogonality`). Since
    :math:`\langle G_1 x, G_2 y\rangle = x^\top G_1^\top G_2 y`, the penalty
    :math:`\lVert G_1^\top G_2\rVert_F^2 = 0` makes every such pair of
    pre-activation vectors orthogonal: the cosine is then 0. Two unrelated
    random blocks give about :math:`\sqrt{2/(\pi d)}` for :math:`d` rows.
    """
    w = weight.detach().flatten(1).double().cpu()
    if w.shape[0] % num_subspaces or num_subspaces < 2:
        raise ValueError(f"cannot split {w.shape[0]} rows into {num_subspaces} >= 2 equal subspaces")
    g1, g2 = w.split(w.shape[0] // num_subspaces)[:2]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(w.shape[1], samples, generator=gen, dtype=torch.float64)
    y = torch.randn(w.shape[1], samples, generator=gen, dtype=torch.float64)
    a, b = g1 @ x, g2 @ y
    return float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0))).abs().mean())


def layer_contributions(model: SluiceNetwork, x: torch.Tensor) -> pd.DataFrame:
    r"""How much each layer contributes to each task's head input :math:`z_m = \sum_k \beta_{m,k}\tilde h_{m,k}`.

    Share of layer :math:`k`:
    :math:`\lVert\beta_{m,k}\tilde h_{m,k}\rVert / \sum_{k'}\lVert\beta_{m,k'}\tilde h_{m,k'}\rVert`
    (Frobenius norms over the batch ``x``; :math:`\tilde h` from
    :meth:`~mtl_course.models.SluiceNetwork.mixed_states`). Unlike the raw
    :math:`\beta`, the shares account for the layers' different activation
    scales. Rows: tasks, columns: ``layer 1`` ... ``layer K``.
    """
    if not model.layer_stitch:
        raise ValueError("layer contributions need a sluice network with layer_stitch=True")
    with torch.no_grad():
        states = model.mixed_states(x)
    rows = {}
    for m, task in enumerate(model.tasks):
        beta = model.betas[task].detach()
        norms = np.array([float((beta[k] * layer[m]).norm()) for k, layer in enumerate(states)])
        rows[task] = norms / norms.sum()
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"layer {k + 1}" for k in range(len(states))])


def subspace_overlaps(model: SluiceNetwork) -> np.ndarray:
    r""":math:`\lVert G_{m,k,1}^\top G_{m,k,2}\rVert_F` for every task :math:`m` (rows) and layer :math:`k` (columns).

    The square root of each term of :math:`\mathcal L_c` (summed over subspace
    pairs when :math:`S > 2`), computed with
    :func:`~mtl_course.models.sluice.subspace_orthogonality` on the weight of
    each stage's last linear layer.
    """
    if model.num_subspaces < 2:
        raise ValueError("subspace overlaps need a sluice network with num_subspaces >= 2")

    def overlap(stage: torch.nn.Module) -> float:
        return float(subspace_orthogonality(stage_weight(stage), model.num_subspaces).sqrt())

    with torch.no_grad():
        return np.array([[overlap(stage) for stage in model.columns[t].stages] for t in model.tasks])


def sluice_snapshot(model: MultiTaskModel) -> dict[str, np.ndarray]:
    """:func:`~mtl_course.experiments.cross_stitch.mixing_snapshot` plus ``"overlap"``, :func:`subspace_overlaps`.

    The overlap is recorded for sluice networks with at least two subspaces.

    >>> sorted(sluice_snapshot(SluiceNetwork.mlp(3, [4, 4], {"a": 1, "b": 1})))
    ['betas.a', 'betas.b', 'overlap', 'units.0.alpha', 'units.1.alpha']
    """
    snapshot = mixing_snapshot(model)
    if isinstance(model, SluiceNetwork) and model.num_subspaces >= 2:
        snapshot["overlap"] = subspace_overlaps(model)
    return snapshot


def run_ablation(
    data: TeacherData,
    arms: Sequence[AblationArm] = ABLATION_ARMS,
    *,
    hidden: Sequence[int] = (32, 32),
    epochs: int = 100,
    curves: bool | Callable[[Run], bool] = True,
    lr: float = 1e-2,
    mixing_lr_scale: float = 10.0,
    record: bool = True,
    measure_every: int = 1,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Train every arm on every ``(rho, seed)`` of ``data`` with lecture A4's recipe.

    The runs are those of :func:`~mtl_course.experiments.cross_stitch.train_conditions`,
    each with its arm's label as condition and its arm's penalty weight;
    ``record`` stores :func:`sluice_snapshot`, after every step for the runs
    selected by ``curves`` (as in ``train_conditions``), before and after
    training for the others; ``measure_every`` as in ``train_conditions``.
    """
    labels = [arm.label for arm in arms]
    if len(set(labels)) != len(labels):
        raise ValueError(f"arm labels must be unique, got {labels}")
    by_label = {arm.label: arm for arm in arms}

    def build(run: Run) -> MultiTaskModel:
        return by_label[run.condition].build(run.train.x.shape[1], hidden, dict.fromkeys(run.train.tasks, 1))

    return train_conditions(
        data,
        labels,
        build,
        epochs=epochs,
        curves=curves,
        penalty={arm.label: arm.orthogonality for arm in arms},
        lr=lr,
        mixing_lr_scale=mixing_lr_scale,
        record=sluice_snapshot if record else None,
        measure_every=measure_every,
        device=device,
    )


# -- the official DyNet code, replayed in NumPy ---------------------------------------------------
def column_major_reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``dynet.reshape``: the same data read in column-major (Fortran) order.

    >>> column_major_reshape(np.array([[1, 2, 3], [4, 5, 6]]), (3, 2))
    array([[1, 5],
           [4, 3],
           [2, 6]])
    """
    return np.reshape(np.asarray(x), tuple(shape), order="F")


def official_cross_stitch(states: Sequence[np.ndarray], alpha: np.ndarray, num_subspaces: int) -> list[np.ndarray]:
    """``CrossStitchLayer.stitch`` of the official code (``predictors.py``) for one time step.

    ``states``: the ``M`` tasks' hidden states, each of length ``h``;
    ``alpha``: ``(M*S, M*S)``. The code stacks the states as the columns of
    an ``(h, M)`` matrix (``concatenate_cols``), reshapes it to
    ``(M*S, h/S)``, multiplies by ``alpha``, reshapes the product to
    ``(M, h)`` when ``S > 1``, and hands row ``m`` to task ``m``'s next layer.
    Every reshape is column-major (:func:`column_major_reshape`).
    """
    states = [np.asarray(s, dtype=float) for s in states]
    m, h = len(states), states[0].shape[0]
    if any(s.shape != (h,) for s in states) or h % num_subspaces:
        raise ValueError(f"need {m} state vectors of one length divisible by {num_subspaces}")
    if alpha.shape != (m * num_subspaces, m * num_subspaces):
        raise ValueError(f"alpha must be ({m * num_subspaces}, {m * num_subspaces}), got {alpha.shape}")
    concat = np.stack(states, axis=1)  # concatenate_cols: (h, M)
    product = alpha @ column_major_reshape(concat, (m * num_subspaces, h // num_subspaces))
    if num_subspaces != 1:
        product = column_major_reshape(product, (m, h))
    return [product[i] for i in range(m)]  # iterating a DyNet expression picks its rows


def official_layer_stitch(layer_states: Sequence[np.ndarray], beta: np.ndarray) -> np.ndarray:
    """``LayerStitchLayer.stitch`` of the official code for one time step.

    ``layer_states``: the ``K`` layers' states of one task, each of length
    ``h``. The code stacks them as columns ``(h, K)``, reshapes to ``(K, h)``
    (column-major) and multiplies by :math:`\\beta^\\top`.
    """
    layer_states = [np.asarray(s, dtype=float) for s in layer_states]
    k, h = len(layer_states), layer_states[0].shape[0]
    if beta.shape != (k,):
        raise ValueError(f"beta must have one entry per layer ({k}), got shape {beta.shape}")
    concat = np.stack(layer_states, axis=1)  # (h, K)
    return (beta[None, :] @ column_major_reshape(concat, (k, h))).reshape(h)


def official_subspace_blocks(weight: np.ndarray, num_subspaces: int = 2) -> list[np.ndarray]:
    """The subspaces ``W_subspaces[s]`` into which ``sluice_net.py`` splits an LSTM weight matrix.

    ``dynet.reshape(W, (S, rows/S, cols))`` followed by picking index ``s``.
    """
    weight = np.asarray(weight, dtype=float)
    rows, cols = weight.shape
    if rows % num_subspaces:
        raise ValueError(f"cannot split {rows} rows into {num_subspaces} subspaces")
    blocks = column_major_reshape(weight, (num_subspaces, rows // num_subspaces, cols))
    return [blocks[s] for s in range(num_subspaces)]


def official_orthogonality(weight: np.ndarray) -> float:
    """The official code's penalty term for one matrix: ``sum_elems(square(transpose(G_1) * G_2))``."""
    g1, g2 = official_subspace_blocks(weight, 2)
    return float(((g1.T @ g2) ** 2).sum())


def official_alpha_init(num_tasks: int, num_subspaces: int, scheme: str) -> np.ndarray:
    """The initial alpha of ``CrossStitchLayer.__init__`` (``"balanced"`` or ``"imbalanced"``), copied line by line."""
    size = num_tasks * num_subspaces
    alpha = np.full((size, size), 1.0 / size)
    if scheme == "balanced":
        return alpha
    if scheme != "imbalanced":
        raise ValueError(f"unknown scheme {scheme!r}; the code knows 'balanced' and 'imbalanced'")
    if num_subspaces == 1:
        alpha = np.full((num_tasks, num_tasks), 0.1 / (num_tasks - 1))
        np.fill_diagonal(alpha, 0.9)
        return alpha
    for (x, y), _ in np.ndenumerate(alpha):
        if (
            (y + 1) % num_subspaces == 0
            and x not in range(num_tasks, num_tasks + num_subspaces)
            or (y + num_subspaces) % num_subspaces == 0
            and x in range(num_tasks, num_tasks + num_subspaces)
        ):
            alpha[x, y] = 0.95
        else:
            alpha[x, y] = 0.05
    return alpha


def official_beta_init(num_layers: int, scheme: str) -> np.ndarray:
    """The initial beta of ``LayerStitchLayer.__init__``, copied line by line."""
    if scheme == "imbalanced":
        beta = np.full(num_layers, 0.1 / (num_layers - 1))
        beta[-1] = 0.9
        return beta
    if scheme == "balanced":
        return np.full(num_layers, 1.0 / num_layers)
    raise ValueError(f"unknown scheme {scheme!r}; the code knows 'balanced' and 'imbalanced'")

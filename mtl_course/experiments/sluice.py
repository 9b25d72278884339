r"""Sluice networks: the ablation of lecture A5 and a NumPy reading of the official code.

Ruder, Bingel, Augenstein & Søgaard, "Latent Multi-task Architecture
Learning", AAAI 2019, arXiv 1705.08142 (first circulated as "Sluice networks:
Learning what to share between loosely related tasks"). The architecture
itself lives in :mod:`mtl_course.models.sluice`; this module holds what the
lecture does with it.

**The ablation.** :data:`ABLATION_ARMS` lists the models the lecture
compares on the data-starved pair of :mod:`mtl_course.data.related_tasks`:
single-task networks, hard sharing, a per-layer cross-stitch network (a
sluice network with :math:`S = 1` and no :math:`\beta`), and a sluice network
with two subspaces per layer, first with :math:`\alpha` only, then with the
layer-stitch :math:`\beta`, then with :math:`\beta` and the orthogonality
penalty, i.e. the objective

.. math::

    \sum_t \mathcal L_t + \lambda \mathcal L_c, \qquad
    \mathcal L_c = \sum_{m}\sum_{k} \lVert G_{m,k,1}^\top G_{m,k,2} \rVert_F^2

(:meth:`~mtl_course.models.SluiceNetwork.penalty`).
:func:`train_sluice` trains one model full-batch with Adam through
:func:`mtl_course.train.fit` (the :math:`\alpha` and :math:`\beta` in their
own parameter group) and records :math:`\alpha`, :math:`\beta` and
:math:`\lVert G_{m,k,1}^\top G_{m,k,2}\rVert_F` after every epoch;
:func:`run_ablation` runs every arm for every seed and returns a DataFrame.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from mtl_course.data.related_tasks import RelatedRegression, make_related_regression
from mtl_course.models import HardSharing, SingleTask, SluiceNetwork
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.sluice import stage_weight, subspace_orthogonality
from mtl_course.train import Callback, Task, TrainState, evaluate, fit

Kind = Literal["stl", "hard", "sluice"]


# -- the arms of the ablation ------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One model of the ablation.

    ``kind`` is ``"stl"`` (:class:`~mtl_course.models.SingleTask`), ``"hard"``
    (:class:`~mtl_course.models.HardSharing`) or ``"sluice"``
    (:class:`~mtl_course.models.SluiceNetwork` with ``num_subspaces``
    subspaces, ``layer_stitch`` for :math:`\\beta`, and the penalty weight
    ``orthogonality`` :math:`\\lambda`). ``label`` is for tables and figures.
    """

    name: str
    label: str
    kind: Kind
    num_subspaces: int = 2
    layer_stitch: bool = False
    orthogonality: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("stl", "hard", "sluice"):
            raise ValueError(f"arm {self.name!r}: kind must be 'stl', 'hard' or 'sluice', got {self.kind!r}")
        if self.orthogonality < 0 or not math.isfinite(self.orthogonality):
            raise ValueError(f"arm {self.name!r}: the penalty weight must be >= 0, got {self.orthogonality}")
        if self.kind == "sluice" and self.orthogonality > 0 and self.num_subspaces < 2:
            raise ValueError(f"arm {self.name!r}: the orthogonality penalty needs num_subspaces >= 2")

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

ABLATION_ARMS: tuple[Arm, ...] = (
    Arm("stl", "STL", "stl"),
    Arm("hard", "hard sharing", "hard"),
    Arm("cross_stitch", "cross-stitch (S=1)", "sluice", num_subspaces=1),
    Arm("alpha", "sluice α", "sluice"),
    Arm("alpha_beta", "sluice α+β", "sluice", layer_stitch=True),
    Arm("alpha_beta_orth", "sluice α+β+⊥", "sluice", layer_stitch=True, orthogonality=DEFAULT_ORTHOGONALITY),
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


def mixed_layer_outputs(model: SluiceNetwork, x: torch.Tensor) -> list[list[torch.Tensor]]:
    r"""The mixed states :math:`\tilde h_{m,k}` of a forward pass on ``x``.

    ``outputs[k][m]`` is layer ``k`` of task ``m`` (after the layer's sluice unit).
    """
    outputs: list[list[torch.Tensor]] = []
    hooks = [
        unit.register_forward_hook(lambda _m, _i, out: outputs.append([o.detach() for o in out]))
        for unit in model.units
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def layer_contributions(model: SluiceNetwork, x: torch.Tensor) -> pd.DataFrame:
    r"""How much each layer contributes to each task's head input :math:`z_m = \sum_k \beta_{m,k}\tilde h_{m,k}`.

    Share of layer :math:`k`:
    :math:`\lVert\beta_{m,k}\tilde h_{m,k}\rVert / \sum_{k'}\lVert\beta_{m,k'}\tilde h_{m,k'}\rVert`
    (Frobenius norms over the batch ``x``). Unlike the raw :math:`\beta`,
    the shares account for the layers' different activation scales. Rows:
    tasks, columns: ``layer 1`` ... ``layer K``.
    """
    if not model.layer_stitch:
        raise ValueError("layer contributions need a sluice network with layer_stitch=True")
    outputs = mixed_layer_outputs(model, x)
    rows = {}
    for m, task in enumerate(model.tasks):
        beta = model.betas[task].detach()
        norms = np.array([float((beta[k] * outputs[k][m]).norm()) for k in range(len(outputs))])
        rows[task] = norms / norms.sum()
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"layer {k + 1}" for k in range(len(outputs))])


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


class SluiceRecorder(Callback):
    """Record ``alpha`` (one array per unit), ``beta`` (per task) and :func:`subspace_overlaps` after every epoch.

    Call :meth:`snapshot` once before training for epoch 0.
    """

    def __init__(self) -> None:
        self.alphas: list[list[np.ndarray]] = []
        self.betas: list[dict[str, np.ndarray]] = []
        self.overlaps: list[np.ndarray] = []

    def snapshot(self, model: MultiTaskModel) -> None:
        if not isinstance(model, SluiceNetwork):
            return
        with torch.no_grad():
            self.alphas.append([a.detach().cpu().numpy().copy() for a in model.cross_stitch_parameters()])
            self.betas.append({t: b.detach().cpu().numpy().copy() for t, b in model.betas.items()})
        if model.num_subspaces >= 2:
            self.overlaps.append(subspace_overlaps(model))

    def on_epoch_end(self, state: TrainState) -> None:
        self.snapshot(state.model)


@dataclass
class SluiceRun:
    """What :func:`train_sluice` returns.

    ``test_mse`` per task (``NaN`` when training diverged); ``history`` is
    :func:`~mtl_course.train.fit`'s DataFrame; ``alphas[e][u]`` the
    :math:`\\alpha` of unit ``u`` after epoch ``e`` (epoch 0 = initialisation);
    ``betas[e][task]``; ``overlaps[e]`` the ``(tasks, layers)`` array of
    :func:`subspace_overlaps`. The recordings are empty for models without
    them. ``model`` is the trained model.
    """

    test_mse: dict[str, float]
    history: pd.DataFrame | None
    model: MultiTaskModel
    alphas: list[list[np.ndarray]] = field(default_factory=list)
    betas: list[dict[str, np.ndarray]] = field(default_factory=list)
    overlaps: list[np.ndarray] = field(default_factory=list)
    diverged: bool = False

    def alpha(self, unit: int) -> np.ndarray:
        """The recorded :math:`\\alpha` of one unit over training, shape ``(epochs + 1, M*S, M*S)``."""
        if not self.alphas:
            raise ValueError("no alpha was recorded (not a sluice network, or record=False)")
        return np.stack([epoch[unit] for epoch in self.alphas])

    def beta(self, task: str) -> np.ndarray:
        """The recorded :math:`\\beta` of one task over training, shape ``(epochs + 1, layers)``."""
        if not self.betas or task not in self.betas[0]:
            raise ValueError(f"no beta was recorded for task {task!r} (no layer stitching, or record=False)")
        return np.stack([epoch[task] for epoch in self.betas])

    def overlap(self) -> np.ndarray:
        """The recorded overlaps over training, shape ``(epochs + 1, tasks, layers)``."""
        if not self.overlaps:
            raise ValueError("no overlaps were recorded (needs num_subspaces >= 2 and record=True)")
        return np.stack(self.overlaps)


def train_sluice(
    model: MultiTaskModel,
    train: RelatedRegression,
    test: RelatedRegression,
    *,
    epochs: int = 100,
    lr: float = 1e-2,
    mix_lr_scale: float = 10.0,
    orthogonality: float = 0.0,
    record: bool = True,
    device: torch.device | str | None = None,
) -> SluiceRun:
    """Train ``model`` full-batch with Adam through :func:`mtl_course.train.fit` and score it on ``test``.

    One step per epoch on the whole training set, equal weighting of the task
    losses (each averaged over its own labelled samples). For a sluice
    network the :math:`\\alpha` and :math:`\\beta` get the learning rate
    ``mix_lr_scale * lr`` in their own parameter group (as lecture A4 does
    for cross-stitch units) and ``orthogonality`` > 0 adds
    ``orthogonality * model.penalty()`` to every step's loss.
    ``record`` stores :math:`\\alpha`, :math:`\\beta` and the subspace
    overlaps after every epoch. A non-finite loss returns ``diverged=True``
    and ``NaN`` errors instead of raising.
    """
    from mtl_course.device import get_device
    from mtl_course.losses import mse_loss
    from mtl_course.metrics import mse

    device = get_device() if device is None else torch.device(device)
    if list(model.tasks) != list(train.task_names):
        raise KeyError(f"the model has tasks {model.tasks} but the data have {list(train.task_names)}")
    sluice = isinstance(model, SluiceNetwork)
    if orthogonality and not (sluice and model.num_subspaces >= 2):
        raise ValueError("the orthogonality penalty needs a SluiceNetwork with num_subspaces >= 2")
    if not (mix_lr_scale > 0 and math.isfinite(mix_lr_scale)):
        raise ValueError(f"mix_lr_scale must be a positive number, got {mix_lr_scale}")
    model.to(device)
    optimizer = None
    if sluice:
        mixing = [*model.cross_stitch_parameters(), *model.layer_stitch_parameters()]
        ids = {id(p) for p in mixing}
        optimizer = torch.optim.Adam(
            [
                {"params": [p for p in model.parameters() if id(p) not in ids]},
                {"params": mixing, "lr": mix_lr_scale * lr},
            ],
            lr=lr,
        )
    recorder = SluiceRecorder()
    if record:
        recorder.snapshot(model)
    tasks = [Task(t, mse_loss, {"mse": mse}) for t in train.task_names]
    try:
        history = fit(
            model,
            tasks,
            "equal",
            [train.batch(device)],
            epochs=epochs,
            lr=lr,
            optimizer=optimizer,
            device=device,
            penalty=orthogonality,
            callbacks=[recorder] if record else [],
            progress=False,
        )
    except FloatingPointError:
        return SluiceRun(
            dict.fromkeys(train.task_names, math.nan),
            None,
            model,
            recorder.alphas,
            recorder.betas,
            recorder.overlaps,
            diverged=True,
        )
    scores = evaluate(model, tasks, [test.batch(device)], device=device)
    return SluiceRun(
        {t: scores[f"{t}/val_mse"] for t in train.task_names},
        history,
        model,
        recorder.alphas,
        recorder.betas,
        recorder.overlaps,
    )


@dataclass
class SluiceAblation:
    """What :func:`run_ablation` returns.

    ``scores``: one row per arm and seed with the columns ``arm``, ``label``,
    ``seed``, ``rho``, ``mse_<task>`` (test MSE) and ``diverged``; ``runs``:
    the :class:`SluiceRun` of every ``(arm name, seed)``.
    """

    scores: pd.DataFrame
    runs: dict[tuple[str, int], SluiceRun]

    def paired_differences(self, reference: str = "stl", task: str | None = None) -> pd.DataFrame:
        """Per arm: mean and sd over seeds of ``mse(arm) - mse(reference)`` on the same data (paired by seed).

        ``task`` defaults to the last task (the data-starved one). Columns
        ``mean``, ``sd``, ``n``; one row per arm label, in arm order.
        """
        columns = [c for c in self.scores if c.startswith("mse_")]
        column = f"mse_{task}" if task is not None else columns[-1]
        if column not in self.scores:
            raise KeyError(f"no task {task!r}; the tasks are {[c[4:] for c in columns]}")
        table = self.scores.pivot(index="seed", columns="arm", values=column)
        if reference not in table:
            raise KeyError(f"no arm {reference!r}; the arms are {list(table)}")
        diff = table.sub(table[reference], axis=0)
        labels = self.scores.drop_duplicates("arm").set_index("arm")["label"]
        order = list(labels.index)
        return pd.DataFrame({"mean": diff.mean()[order], "sd": diff.std()[order], "n": diff.count()[order]}).set_axis(
            labels[order].to_list()
        )

    def summary(self, digits: int = 3) -> pd.DataFrame:
        """Mean ± sd over seeds per arm (in arm order), as strings."""
        columns = [c for c in self.scores if c.startswith("mse_")]
        grouped = self.scores.groupby("label", sort=False)[columns]
        mean, sd = grouped.mean(), grouped.std()
        return pd.DataFrame(
            {c: mean[c].map(f"{{:.{digits}f}}".format) + " ± " + sd[c].map(f"{{:.{digits}f}}".format) for c in columns}
        )


def run_ablation(
    arms: Iterable[Arm] = ABLATION_ARMS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    rho: float = 0.5,
    hidden: Sequence[int] = (32, 32),
    epochs: int = 100,
    lr: float = 1e-2,
    mix_lr_scale: float = 10.0,
    record: bool = True,
    data: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
) -> SluiceAblation:
    """Train every arm on the data of every seed (:func:`~mtl_course.data.related_tasks.make_related_regression`).

    ``rho`` and ``data`` (further keyword arguments of the generator, e.g.
    ``n_samples``) set the tasks; the data of one seed are shared by all
    arms, and the model of arm and seed is initialised with
    :func:`~mtl_course.device.seed_everything` ``(seed)``.
    """
    from mtl_course.device import seed_everything

    arms = list(arms)
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    rows, runs = [], {}
    for seed in seeds:
        train, test = make_related_regression(rho=rho, seed=seed, **dict(data or {}))
        task_dims = dict.fromkeys(train.task_names, 1)
        for arm in arms:
            seed_everything(seed)
            model = arm.build(train.X.shape[1], hidden, task_dims)
            run = train_sluice(
                model,
                train,
                test,
                epochs=epochs,
                lr=lr,
                mix_lr_scale=mix_lr_scale,
                orthogonality=arm.orthogonality,
                record=record,
                device=device,
            )
            runs[arm.name, seed] = run
            rows.append(
                {
                    "arm": arm.name,
                    "label": arm.label,
                    "seed": seed,
                    "rho": rho,
                    **{f"mse_{t}": v for t, v in run.test_mse.items()},
                    "diverged": run.diverged,
                }
            )
    return SluiceAblation(pd.DataFrame(rows), runs)


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

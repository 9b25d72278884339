r"""Related non-linear regression tasks with a data-starved task (lectures A3--A5).

A *teacher* network generates every task. Task :math:`t` sees inputs
:math:`x \in \mathbb{R}^{d}`, :math:`x \sim N(0, I)`, and has the target

.. math::

    y_t = f_t(x) + \sigma\varepsilon, \qquad
    f_t(x) = \frac{v_t^\top \tanh(g\, W_t x / \sqrt d) - \mu_t}{s_t}, \qquad
    \varepsilon \sim N(0, 1),

with :math:`k` hidden units (:math:`W_t \in \mathbb{R}^{k \times d}`),
a gain :math:`g` that sets how non-linear the tanh is, and :math:`\mu_t, s_t`
chosen so that :math:`f_t(x)` has mean 0 and variance 1 (so a test MSE is in
units of the signal's variance and the noise floor is :math:`\sigma^2`).

**Relatedness.** Task 0 is the reference. Every other task draws its hidden
weights as

.. math::

    W_t = \rho_t W_0 + \sqrt{1 - \rho_t^2}\, W'_t, \qquad W_0, W'_t \text{ with i.i.d. } N(0, 1) \text{ entries},

so every entry of :math:`W_t` is again :math:`N(0, 1)` and has correlation
:math:`\rho_t` with the same entry of :math:`W_0`: :math:`\rho = 1` means the
tasks read the same hidden features, :math:`\rho = 0` that their features are
unrelated. The read-outs :math:`v_t` are related the same way with their own
``readout_rho`` (default 0: at :math:`\rho = 1` the tasks combine the same
hidden features differently, they are not the same task).

Each training sample carries the label of exactly one task (task :math:`t`
has its own ``n_samples[t]`` inputs), as when two outcomes were measured in
different cohorts; the pooled training set marks the missing labels with
``NaN``, which :mod:`mtl_course.losses` skips. The test set labels every
input for every task.

*Stands in for* two clinical outcomes predicted from the same 20 measurements
(imaging-derived features, lab values): outcome A was recorded for 2000
patients, outcome B -- a rare or expensive label -- for 100. Both outcomes
depend on a few latent physiological factors (the teacher's hidden units);
:math:`\rho` says how far the factors behind B are those behind A. It keeps
the point of Misra et al. (CVPR 2016, arXiv 1604.03539), that a data-starved
task profits from a related, data-rich one through shared features, while
the ground truth (the teacher) stays known.

:func:`fit_and_score` is the experiment these lectures run on such data:
train a model with :func:`mtl_course.train.fit` on the one full batch, score
it on the test set, optionally with its own learning rate for the
cross-stitch :math:`\alpha` and a record of how the :math:`\alpha` evolve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover - for type hints only
    import pandas as pd

    from mtl_course.models.base import MultiTaskModel

#: Monte-Carlo sample size used to standardise each teacher output.
_STANDARDISE_SAMPLES = 50_000


def _related(reference: np.ndarray, fresh: np.ndarray, rho: float) -> np.ndarray:
    """``rho * reference + sqrt(1 - rho^2) * fresh`` (entry-wise correlation ``rho``)."""
    return rho * reference + math.sqrt(max(0.0, 1.0 - rho * rho)) * fresh


def _per_task(name: str, value: float | Sequence[float], n_tasks: int) -> list[float]:
    """A relatedness given once for all tasks 1..T-1, or once per task 1..T-1."""
    if np.isscalar(value):
        values = [float(value)] * (n_tasks - 1)  # type: ignore[arg-type]
    else:
        values = [float(v) for v in value]  # type: ignore[union-attr]
    if len(values) != n_tasks - 1:
        raise ValueError(
            f"{name} must be one number or one per task after the first ({n_tasks - 1} values), got {value!r}"
        )
    for v in values:
        if not -1.0 <= v <= 1.0 or math.isnan(v):
            raise ValueError(f"{name} must lie in [-1, 1], got {v}")
    return values


@dataclass(frozen=True)
class Teacher:
    r"""The network that generates the tasks: :math:`f_t(x) = (v_t^\top \tanh(g W_t x/\sqrt d) - \mu_t)/s_t`.

    ``hidden_weights`` (T, k, d), ``output_weights`` (T, k), ``offset`` and
    ``scale`` (T,) the standardisation, ``gain`` :math:`g`, ``noise``
    :math:`\sigma`.
    """

    hidden_weights: np.ndarray
    output_weights: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    gain: float
    noise: float
    task_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self.hidden_weights.shape[2]

    @property
    def n_tasks(self) -> int:
        return self.hidden_weights.shape[0]

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Un-standardised outputs :math:`v_t^\\top \\tanh(g W_t x / \\sqrt d)`, shape (n, T)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"the teacher takes inputs of shape (n, {self.n_features}), got {X.shape}")
        hidden = np.tanh(self.gain * np.einsum("nd,tkd->ntk", X, self.hidden_weights) / math.sqrt(self.n_features))
        return np.einsum("ntk,tk->nt", hidden, self.output_weights)

    def signal(self, X: np.ndarray) -> np.ndarray:
        """The noise-free targets :math:`f_t(x)` (mean 0, variance 1 per task), shape (n, T)."""
        return (self.raw(X) - self.offset) / self.scale


@dataclass(frozen=True)
class RelatedRegression:
    """Inputs ``X`` (n, d) with targets ``Y`` (n, T); ``NaN`` marks a label a sample does not have.

    ``signal`` (n, T) holds the noise-free targets of every sample for every
    task (known because the data are synthetic); ``teacher`` generated them.
    """

    X: np.ndarray
    Y: np.ndarray
    signal: np.ndarray
    teacher: Teacher

    def __post_init__(self) -> None:
        n, T = self.Y.shape
        if self.X.shape[0] != n or self.signal.shape != (n, T) or self.teacher.n_tasks != T:
            raise ValueError(
                f"inconsistent shapes: X {self.X.shape}, Y {self.Y.shape}, signal {self.signal.shape}, "
                f"{self.teacher.n_tasks} tasks"
            )

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.teacher.task_names

    @property
    def n_labelled(self) -> dict[str, int]:
        """Number of labelled samples per task.

        >>> train, test = make_related_regression(n_samples=(20, 5), n_test=7)
        >>> train.n_labelled, test.n_labelled
        ({'A': 20, 'B': 5}, {'A': 7, 'B': 7})
        """
        return {t: int(np.isfinite(self.Y[:, i]).sum()) for i, t in enumerate(self.task_names)}

    def batch(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole set as one batch ``(x, {task: y})`` for :func:`mtl_course.train.fit`.

        ``y`` has shape (n, 1); missing labels stay ``NaN`` (the course's losses skip them).

        >>> x, y = make_related_regression(n_samples=(3, 2), n_test=1)[0].batch()
        >>> tuple(x.shape), {t: int(v.isnan().sum()) for t, v in y.items()}
        ((5, 20), {'A': 2, 'B': 3})
        """
        x = torch.as_tensor(self.X, dtype=dtype, device=device)
        targets = {
            t: torch.as_tensor(self.Y[:, i : i + 1], dtype=dtype, device=device) for i, t in enumerate(self.task_names)
        }
        return x, targets


def make_related_regression(
    n_samples: Sequence[int] = (2000, 100),
    rho: float | Sequence[float] = 0.9,
    n_features: int = 20,
    n_hidden: int = 4,
    gain: float = 2.0,
    noise: float = 0.1,
    readout_rho: float | Sequence[float] = 0.0,
    n_test: int = 2000,
    seed: int = 0,
    task_names: Sequence[str] | None = None,
) -> tuple[RelatedRegression, RelatedRegression]:
    r"""A training set (task ``t`` labels ``n_samples[t]`` inputs of its own) and a fully labelled test set.

    The default is lecture A4's demo: :math:`x \in \mathbb{R}^{20}`, task A
    with 2000 samples, a data-starved task B with 100 samples whose hidden
    weights are :math:`\rho W_A + \sqrt{1 - \rho^2} W'`. ``rho`` and
    ``readout_rho`` are one number for every task after the first, or one
    per such task. ``noise`` is :math:`\sigma` (targets have unit signal
    variance). See the module docstring for the model.

    >>> train, test = make_related_regression(rho=1.0, seed=0)
    >>> train.X.shape, train.Y.shape, test.Y.shape
    ((2100, 20), (2100, 2), (2000, 2))
    >>> bool(np.array_equal(train.teacher.hidden_weights[0], train.teacher.hidden_weights[1]))
    True
    """
    n_samples = [int(n) for n in n_samples]
    n_tasks = len(n_samples)
    if n_tasks < 1 or any(n < 1 for n in n_samples):
        raise ValueError(f"n_samples must hold one positive count per task, got {n_samples}")
    if n_features < 1 or n_hidden < 1 or n_test < 1:
        raise ValueError(f"need n_features, n_hidden, n_test >= 1; got {n_features}, {n_hidden}, {n_test}")
    if not (noise >= 0 and math.isfinite(noise)) or not (gain > 0 and math.isfinite(gain)):
        raise ValueError(f"need noise >= 0 and gain > 0 (finite), got noise={noise}, gain={gain}")
    rhos = _per_task("rho", rho, n_tasks)
    readout_rhos = _per_task("readout_rho", readout_rho, n_tasks)
    if task_names is None:
        if n_tasks > 26:
            raise ValueError(f"name the tasks yourself when there are more than 26 (got {n_tasks})")
        task_names = [chr(ord("A") + t) for t in range(n_tasks)]
    task_names = tuple(task_names)
    if len(task_names) != n_tasks or len(set(task_names)) != n_tasks:
        raise ValueError(f"need {n_tasks} distinct task names, got {task_names}")

    rng = np.random.default_rng(seed)
    reference_hidden = rng.standard_normal((n_hidden, n_features))
    reference_readout = rng.standard_normal(n_hidden)
    hidden, readout = [reference_hidden], [reference_readout]
    for r, r_out in zip(rhos, readout_rhos, strict=True):
        hidden.append(_related(reference_hidden, rng.standard_normal((n_hidden, n_features)), r))
        readout.append(_related(reference_readout, rng.standard_normal(n_hidden), r_out))
    raw_teacher = Teacher(
        np.stack(hidden), np.stack(readout), np.zeros(n_tasks), np.ones(n_tasks), float(gain), float(noise), task_names
    )
    reference = raw_teacher.raw(rng.standard_normal((_STANDARDISE_SAMPLES, n_features)))
    scale = reference.std(axis=0)
    if np.any(scale < 1e-12):
        raise ValueError("a teacher output is constant (all read-out weights zero?); change the seed")
    teacher = Teacher(
        raw_teacher.hidden_weights,
        raw_teacher.output_weights,
        reference.mean(axis=0),
        scale,
        float(gain),
        float(noise),
        task_names,
    )

    # training set: task t labels its own n_samples[t] inputs
    X = rng.standard_normal((sum(n_samples), n_features))
    signal = teacher.signal(X)
    noisy = signal + noise * rng.standard_normal(signal.shape)
    owner = np.repeat(np.arange(n_tasks), n_samples)
    Y = np.where(owner[:, None] == np.arange(n_tasks)[None, :], noisy, np.nan)
    train = RelatedRegression(X, Y, signal, teacher)

    # test set: every input labelled for every task
    X_test = rng.standard_normal((n_test, n_features))
    signal_test = teacher.signal(X_test)
    Y_test = signal_test + noise * rng.standard_normal(signal_test.shape)
    return train, RelatedRegression(X_test, Y_test, signal_test, teacher)


# -- the experiment -------------------------------------------------------------------------
@dataclass
class FitResult:
    """What :func:`fit_and_score` returns.

    ``test_mse``: per task, on the noisy test labels (``NaN`` when training
    diverged); ``history``: :func:`mtl_course.train.fit`'s per-epoch
    DataFrame; ``alpha_trace``: when recorded, one list per epoch (epoch 0 =
    the initialisation) of the ``alpha`` of every cross-stitch unit as NumPy
    arrays; ``diverged``: training stopped on a non-finite loss.
    """

    test_mse: dict[str, float]
    history: pd.DataFrame | None
    alpha_trace: list[list[np.ndarray]] = field(default_factory=list)
    diverged: bool = False

    def alphas(self, unit: int) -> np.ndarray:
        """The recorded ``alpha`` of one unit over training, shape (epochs + 1, *alpha.shape)."""
        if not self.alpha_trace:
            raise ValueError(
                "no alpha was recorded; call fit_and_score(..., record_alpha=True) with a cross-stitch model"
            )
        return np.stack([epoch[unit] for epoch in self.alpha_trace])


def _alpha_snapshot(model: Any) -> list[np.ndarray]:
    return [a.detach().cpu().numpy().copy() for a in model.mixing_parameters()]


def fit_and_score(
    model: MultiTaskModel,
    train: RelatedRegression,
    test: RelatedRegression,
    *,
    epochs: int = 100,
    lr: float = 1e-2,
    alpha_lr_scale: float | None = None,
    record_alpha: bool = False,
    weighting: str = "equal",
    device: torch.device | str | None = None,
) -> FitResult:
    """Train ``model`` full-batch with Adam through :func:`mtl_course.train.fit` and score it on ``test``.

    Every epoch is one step on the whole training set (``train.batch()``;
    each task's loss averages over its own labelled samples).
    ``alpha_lr_scale`` gives the cross-stitch ``alpha``
    (``model.mixing_parameters()``) the learning rate
    ``alpha_lr_scale * lr`` in their own parameter group, the analogue of
    Caffe's ``lr_mult`` in Misra et al. (CVPR 2016, arXiv 1604.03539,
    Table 2). ``record_alpha`` stores the ``alpha`` after every epoch. A
    non-finite loss (a diverging learning rate) returns ``diverged=True``
    and ``NaN`` test errors instead of raising.
    """
    from mtl_course.device import get_device
    from mtl_course.losses import mse_loss
    from mtl_course.metrics import mse
    from mtl_course.train import Callback, Task, evaluate, fit

    device = get_device() if device is None else torch.device(device)
    if list(model.tasks) != list(train.task_names):
        raise KeyError(f"the model has tasks {model.tasks} but the data have {list(train.task_names)}")
    has_alpha = any(True for _ in model.mixing_parameters())
    if (alpha_lr_scale is not None or record_alpha) and not has_alpha:
        raise ValueError(
            f"alpha_lr_scale and record_alpha need a cross-stitch model; {type(model).__name__} has no "
            "mixing_parameters()"
        )
    model.to(device)
    optimizer = None
    if alpha_lr_scale is not None:
        if not (alpha_lr_scale > 0 and math.isfinite(alpha_lr_scale)):
            raise ValueError(f"alpha_lr_scale must be a positive number, got {alpha_lr_scale}")
        alphas = list(model.mixing_parameters())
        ids = {id(p) for p in alphas}
        optimizer = torch.optim.Adam(
            [
                {"params": [p for p in model.parameters() if id(p) not in ids]},
                {"params": alphas, "lr": alpha_lr_scale * lr},
            ],
            lr=lr,
        )
    trace: list[list[np.ndarray]] = [_alpha_snapshot(model)] if record_alpha else []

    class _RecordAlpha(Callback):
        def on_epoch_end(self, state: Any) -> None:
            trace.append(_alpha_snapshot(state.model))

    tasks = [Task(t, mse_loss, {"mse": mse}) for t in train.task_names]
    batch = [train.batch(device)]
    try:
        history = fit(
            model,
            tasks,
            weighting,
            batch,
            epochs=epochs,
            lr=lr,
            optimizer=optimizer,
            device=device,
            callbacks=[_RecordAlpha()] if record_alpha else [],
            progress=False,
        )
    except FloatingPointError:
        return FitResult(dict.fromkeys(train.task_names, math.nan), None, trace, diverged=True)
    scores = evaluate(model, tasks, [test.batch(device)], device=device)
    return FitResult({t: scores[f"{t}/val_mse"] for t in train.task_names}, history, trace)

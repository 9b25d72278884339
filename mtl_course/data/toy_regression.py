r"""Seeded regression toys for loss weighting (lecture A6): a scale-mismatched and a conflicting pair.

* :func:`make_gradnorm_toy` -- the toy of GradNorm (Chen, Badrinarayanan,
  Lee & Rabinovich, ICML 2018, arXiv 1711.02257, Section 4): :math:`T`
  regression tasks

  .. math:: f_i(x) = \sigma_i \tanh\big((B + \varepsilon_i)\,x\big),
            \qquad x \in \mathbb{R}^{250},\ f_i(x) \in \mathbb{R}^{100},

  with one matrix :math:`B` shared by every task and a task-specific
  :math:`\varepsilon_i`. The scales :math:`\sigma_i` make the losses differ by
  orders of magnitude (:math:`\sigma_i^2`), the point of the toy. The entries
  of :math:`B` and :math:`\varepsilon_i` are drawn i.i.d. from
  :math:`N(0, 10^2)` and :math:`N(0, 3.5^2)`, and :math:`x` uniformly from
  :math:`[-1, 1]^{250}` then scaled to unit length, as in the public
  re-implementation github.com/brianlan/pytorch-grad-norm (``dataset.py``),
  which reads the :math:`N(0, 10)` and :math:`N(0, 3.5)` it quotes from the
  paper as standard deviations (the paper's own text was not checked here).

* :class:`QuadraticTasks` -- tasks whose losses are quadratic bowls in a
  shared parameter :math:`w \in \mathbb{R}^d`,

  .. math:: L_i(w) = (w - c_i)^\top A_i (w - c_i) + m_i,

  for which the minimiser of the weighted loss :math:`\sum_i \lambda_i L_i`
  has the closed form

  .. math:: w^\star(\lambda) = \Big(\sum_i \lambda_i A_i\Big)^{-1} \sum_i \lambda_i A_i c_i .

  Sweeping :math:`\lambda` traces the Pareto front of the task losses; the
  loss-weight tuner (:class:`mtl_course.widgets.loss_weights.LossWeightTuner`)
  moves along it in microseconds.

* :func:`make_conflicting_regressions` -- the conflicting pair: :math:`T`
  linear regressions on the *same* inputs whose true coefficient vectors point
  in opposed directions, fitted by *one* shared linear model
  :math:`\hat y = x^\top w` (no task-specific parameters), so no :math:`w`
  is best for all. Each task's loss can be multiplied by a ``loss_scale``
  :math:`s_i` (e.g. a loss summed over 100 outputs instead of averaged), which
  makes the pair scale-mismatched as well. Its least-squares losses are exactly
  :class:`QuadraticTasks` (:meth:`QuadraticTasks.from_least_squares`).

*Stands in for* heterogeneous medical-imaging losses, e.g. a landmark error in
squared pixels next to a cross-entropy in nats, or two read-outs that pull a
shared layer in different directions. Everything is generated from a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from mtl_course.data.tasks import MultiTaskData


class TrainVal(NamedTuple):
    """A training and a validation split of one toy, each a :class:`~mtl_course.data.tasks.MultiTaskData`."""

    train: MultiTaskData
    val: MultiTaskData


# -- the GradNorm toy ---------------------------------------------------------------------
def gradnorm_toy_function(x: torch.Tensor, B: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``f(x) = sigma * tanh((B + eps) x)`` for a batch ``x`` (n, d_in); ``B``, ``eps`` are (d_out, d_in).

    >>> x = torch.zeros(2, 3); B = torch.ones(4, 3)
    >>> gradnorm_toy_function(x, B, torch.zeros(4, 3), 5.0).abs().sum().item()
    0.0
    """
    return sigma * torch.tanh(x @ (B + eps).T)


def task_names(n_tasks: int) -> list[str]:
    """``['t0', 't1', ...]``: the task names of the toys."""
    return [f"t{i}" for i in range(n_tasks)]


def make_gradnorm_toy(
    sigmas: Sequence[float],
    n_train: int = 1000,
    n_val: int = 500,
    in_features: int = 250,
    out_features: int = 100,
    b_std: float = 10.0,
    eps_std: float = 3.5,
    seed: int = 0,
) -> TrainVal:
    """The GradNorm toy with one task per entry of ``sigmas`` (tasks ``t0, t1, ...``).

    Targets are ``(n, out_features)`` and noise-free (so ``truth`` is not
    kept separately). ``B`` has entries ``N(0, b_std^2)``, each ``eps_i``
    entries ``N(0, eps_std^2)``; inputs are uniform on
    ``[-1, 1]^in_features`` scaled to unit norm. ``info`` holds ``sigmas``,
    ``B`` and ``eps`` (T, out_features, in_features).

    >>> toy = make_gradnorm_toy([1.0, 100.0], n_train=8, n_val=4, seed=0)
    >>> toy.train.tasks, tuple(toy.train.x.shape), tuple(toy.train.targets["t1"].shape), toy.val.info["sigmas"]
    (('t0', 't1'), (8, 250), (8, 100), (1.0, 100.0))
    >>> bool(toy.train.targets["t1"].abs().max() <= 100.0)
    True
    """
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or any(not np.isfinite(s) or s <= 0 for s in sigmas):
        raise ValueError(f"sigmas must be a non-empty list of positive numbers, got {sigmas}")
    if n_train < 1 or n_val < 1:
        raise ValueError(f"need n_train >= 1 and n_val >= 1, got {n_train} and {n_val}")
    g = torch.Generator().manual_seed(seed)
    B = b_std * torch.randn(out_features, in_features, generator=g)
    eps = eps_std * torch.randn(len(sigmas), out_features, in_features, generator=g)

    info = {"sigmas": sigmas, "B": B, "eps": eps}

    def split(n: int) -> MultiTaskData:
        x = 2 * torch.rand(n, in_features, generator=g) - 1
        x = x / x.norm(dim=1, keepdim=True)
        targets = {
            t: gradnorm_toy_function(x, B, eps[i], s)
            for i, (t, s) in enumerate(zip(task_names(len(sigmas)), sigmas, strict=True))
        }
        return MultiTaskData(x, targets, info=info)

    return TrainVal(split(n_train), split(n_val))


# -- quadratic tasks -----------------------------------------------------------------------
@dataclass(frozen=True)
class QuadraticTasks:
    """Task losses ``L_i(w) = (w - c_i)^T A_i (w - c_i) + m_i`` in a shared parameter ``w`` (see the module docstring).

    ``A`` is (T, d, d) symmetric positive semi-definite, ``centers`` (T, d) the
    task optima, ``minima`` (T,) the lowest loss of each task.

    >>> q = QuadraticTasks(("a", "b"), np.stack([np.eye(2)] * 2), np.array([[1.0, 0.0], [-1.0, 0.0]]), np.zeros(2))
    >>> q.weighted_optimum([1.0, 1.0]).tolist()  # equal weights, equal curvature: the midpoint
    [0.0, 0.0]
    >>> q.losses(np.zeros(2)).tolist()
    [1.0, 1.0]
    """

    names: tuple[str, ...]
    A: np.ndarray
    centers: np.ndarray
    minima: np.ndarray

    def __post_init__(self) -> None:
        T = len(self.names)
        if T < 1:
            raise ValueError("QuadraticTasks needs at least one task")
        d = self.centers.shape[-1] if self.centers.ndim == 2 else -1
        if self.A.shape != (T, d, d) or self.centers.shape != (T, d) or self.minima.shape != (T,):
            raise ValueError(
                f"for {T} tasks need A (T, d, d), centers (T, d), minima (T,); got {self.A.shape}, "
                f"{self.centers.shape}, {self.minima.shape}"
            )

    @classmethod
    def from_least_squares(cls, data: MultiTaskData, loss_scales: Sequence[float] | None = None) -> QuadraticTasks:
        r"""The exact quadratics of the scaled least-squares losses of a shared linear model on ``data``.

        For inputs :math:`X` (n, d), targets :math:`y_i` (n, 1) and the loss
        scales :math:`s_i` (``loss_scales``; by default those of
        ``data.info["loss_scales"]``, or 1 where ``info`` has none),

        .. math:: s_i \tfrac{1}{n}\|Xw - y_i\|^2 = (w - c_i)^\top A_i (w - c_i) + m_i

        with :math:`A_i = s_i X^\top X / n`, :math:`c_i` the least-squares
        solution and :math:`m_i` :math:`s_i` times its mean squared residual.
        """
        X = torch.as_tensor(data.x).double().numpy()
        n = X.shape[0]
        gram = X.T @ X / n
        scales = data.info.get("loss_scales", (1.0,) * len(data.tasks)) if loss_scales is None else loss_scales
        A, centers, minima = [], [], []
        for task, s in zip(data.tasks, scales, strict=True):
            y = torch.as_tensor(data.targets[task]).double().numpy()[:, 0]
            c = np.linalg.lstsq(X, y, rcond=None)[0]
            A.append(s * gram)
            centers.append(c)
            minima.append(s * float(np.mean((X @ c - y) ** 2)))
        return cls(data.tasks, np.stack(A), np.stack(centers), np.array(minima))

    @property
    def n_tasks(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return self.centers.shape[1]

    def losses(self, w: np.ndarray) -> np.ndarray:
        """``L_i(w)`` for one ``w`` (d,) -> (T,), or a batch (..., d) -> (..., T)."""
        diff = np.asarray(w, dtype=float)[..., None, :] - self.centers  # (..., T, d)
        return np.einsum("...ti,tij,...tj->...t", diff, self.A, diff) + self.minima

    def gradients(self, w: np.ndarray) -> np.ndarray:
        """``grad L_i(w) = 2 A_i (w - c_i)`` as rows (T, d)."""
        diff = np.asarray(w, dtype=float)[None, :] - self.centers
        return 2.0 * np.einsum("tij,tj->ti", self.A, diff)

    def weighted_optimum(self, weights: Sequence[float]) -> np.ndarray:
        """``argmin_w sum_i lambda_i L_i(w) = (sum lambda_i A_i)^{-1} sum lambda_i A_i c_i``.

        Only the ratios of the weights matter (they are divided by their
        maximum first). Weights must be non-negative with at least one
        positive; a singular system is solved by least squares (minimum norm).
        """
        lam = np.asarray(weights, dtype=float)
        if lam.shape != (self.n_tasks,) or not np.all(np.isfinite(lam)) or np.any(lam < 0) or not np.any(lam > 0):
            raise ValueError(
                f"need {self.n_tasks} finite non-negative weights, at least one positive, for tasks "
                f"{list(self.names)}; got {weights!r}"
            )
        lam = lam / lam.max()
        H = np.einsum("t,tij->ij", lam, self.A)
        b = np.einsum("t,tij,tj->i", lam, self.A, self.centers)
        try:
            return np.linalg.solve(H, b)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(H, b, rcond=None)[0]

    def front(self, n: int = 241, log10_ratio: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
        """Points on the Pareto front of a two-task problem: ``(ratios, losses)``.

        ``ratios`` are ``lambda_1 / lambda_2`` log-spaced over
        ``10^(-log10_ratio) .. 10^log10_ratio`` (n,); ``losses`` (n, 2). For
        ``T > 2`` use :meth:`sweep`.
        """
        if self.n_tasks != 2:
            raise ValueError(f"front() traces a two-task front; this problem has {self.n_tasks} tasks, use sweep()")
        ratios = np.logspace(-log10_ratio, log10_ratio, n)
        weights = np.stack([ratios / (1 + ratios), 1 / (1 + ratios)], axis=1)
        return ratios, self.sweep(weights)

    def sweep(self, weights: np.ndarray) -> np.ndarray:
        """Task losses at the weighted optimum for each row of ``weights`` (k, T) -> (k, T)."""
        return np.stack([self.losses(self.weighted_optimum(w)) for w in np.asarray(weights, dtype=float)])

    def optima(self) -> np.ndarray:
        """Every task's own optimum ``c_i`` and the losses there: (T, T), row i = ``L(c_i)``."""
        return np.stack([self.losses(c) for c in self.centers])


# -- the conflicting pair -------------------------------------------------------------------
def make_conflicting_regressions(
    n_train: int = 200,
    n_val: int = 200,
    n_tasks: int = 2,
    angle_deg: float = 150.0,
    radius: float = 1.0,
    loss_scales: Sequence[float] | None = None,
    anisotropy: float = 3.0,
    noise: float = 0.3,
    seed: int = 0,
) -> TrainVal:
    """Two (or more) regressions on shared 2-D inputs whose true coefficients are ``angle_deg`` apart.

    The true coefficient vectors ``a_i`` have length ``radius`` and directions
    spread evenly over ``angle_deg`` degrees, centred on the first axis (for
    two tasks: ``+-angle_deg / 2``). Inputs are Gaussian with standard
    deviations ``(1, 1/sqrt(anisotropy))`` in a frame rotated by 30 degrees,
    so the loss bowls are elongated; targets ``y_i = x a_i + noise * N(0, 1)``.
    ``loss_scales`` (default all 1) multiply each task's mean squared error
    (see :class:`mtl_course.losses.ScaledMSE`).

    Both splits hold inputs ``x`` (n, 2), targets (n, 1) (the shape of the
    shared linear model's output), the noise-free ``truth`` :math:`x a_i`,
    and in ``info`` the true ``coefficients`` :math:`a_i` (T, 2) and the
    ``loss_scales``. :meth:`QuadraticTasks.from_least_squares` gives a
    split's exact loss quadratics.

    >>> pair = make_conflicting_regressions(seed=0)
    >>> pair.train.tasks, pair.train.info["loss_scales"]
    (('t0', 't1'), (1.0, 1.0))
    >>> a = pair.train.info["coefficients"]
    >>> round(float(np.degrees(np.arccos(a[0] @ a[1]))), 1)
    150.0
    """
    if n_tasks < 1:
        raise ValueError(f"need at least one task, got n_tasks={n_tasks}")
    scales = tuple(float(s) for s in (loss_scales if loss_scales is not None else [1.0] * n_tasks))
    if len(scales) != n_tasks or any(not np.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"loss_scales must hold {n_tasks} positive numbers, got {loss_scales!r}")
    if anisotropy < 1:
        raise ValueError(f"anisotropy is a ratio of variances >= 1, got {anisotropy}")
    angles = np.radians(np.linspace(-angle_deg / 2, angle_deg / 2, n_tasks)) if n_tasks > 1 else np.zeros(1)
    coefficients = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rotation = np.array([[np.cos(np.pi / 6), -np.sin(np.pi / 6)], [np.sin(np.pi / 6), np.cos(np.pi / 6)]])
    mixing = rotation @ np.diag([1.0, 1.0 / np.sqrt(anisotropy)])
    rng = np.random.default_rng(seed)

    names = task_names(n_tasks)
    info = {"coefficients": coefficients, "loss_scales": scales}

    def column(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values[:, None].astype(np.float32))

    def split(n: int) -> MultiTaskData:
        x = rng.standard_normal((n, 2)) @ mixing.T
        signal = {t: x @ a for t, a in zip(names, coefficients, strict=True)}
        targets = {t: column(signal[t] + noise * rng.standard_normal(n)) for t in names}
        truth = {t: column(v) for t, v in signal.items()}
        return MultiTaskData(torch.from_numpy(x.astype(np.float32)), targets, truth=truth, info=info)

    return TrainVal(split(n_train), split(n_val))

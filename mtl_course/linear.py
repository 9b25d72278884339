r"""The lasso and the multi-task lasso, fitted by cyclic coordinate descent.

Lecture A1 derives both estimators; this module is their one implementation.

**Objective and scaling.** The lecture writes the lasso (Tibshirani, 1996) as

.. math:: \hat\beta = \arg\min_\beta \|y - X\beta\|_2^2 + \lambda \|\beta\|_1 .

This module, like scikit-learn's ``Lasso``, minimises instead

.. math:: \frac{1}{2n}\|y - X\beta\|_2^2 + \alpha \|\beta\|_1 ,

with ``n`` samples. Multiplying it by ``2n`` gives the lecture's form, so both
have the same minimiser when :math:`\lambda = 2n\alpha` (see
:func:`lambda_from_alpha`). Dividing by ``n`` keeps ``alpha`` comparable
across data sets of different sizes.

The **multi-task lasso** (joint covariate selection; Obozinski, Taskar &
Jordan, 2010) fits a coefficient matrix :math:`B \in \mathbb{R}^{p\times T}`,
one column per task, with the :math:`\ell_{2,1}` penalty on its rows:

.. math:: \frac{1}{2n}\|Y - XB\|_F^2 + \alpha \sum_{j=1}^p \|B_{j,:}\|_2 .

A row is zero or non-zero as a whole, so every task selects the same
features. (scikit-learn's ``MultiTaskLasso.coef_`` is :math:`B^\top`.)

**Algorithm.** Cyclic coordinate descent (Friedman, Hastie & Tibshirani,
2010, JSS 33(1), doi:10.18637/jss.v033.i01, eq. 5 with "covariance updates",
§2.2): each step minimises the objective exactly over one row
:math:`B_{j,:}`, which is a (group) soft-thresholding. One loop,
:func:`coordinate_descent`, serves both estimators; only the thresholding
differs. With the element-wise :func:`soft_threshold` on a matrix ``Y`` it
fits ``T`` *separate* lassos (the :math:`\ell_1` norm of a matrix decouples
over its columns); with :func:`group_soft_threshold` it fits the multi-task
lasso.

**Intercept.** With ``fit_intercept=True`` the columns of ``X`` and ``Y`` are
centred, the penalised problem is solved on the centred data, and the
intercept is :math:`\bar y - \bar x^\top \hat B` (the intercept is not
penalised).

This module needs only NumPy; scikit-learn is the independent reference in
the tests and the lecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: ``"l1"``: the lasso penalty :math:`\sum_{j,t} |B_{jt}|` (separate lassos for a
#: matrix ``Y``); ``"l21"``: the multi-task penalty :math:`\sum_j \|B_{j,:}\|_2`.
Penalty = Literal["l1", "l21"]


# -- proximal operators ---------------------------------------------------------
def soft_threshold(z: np.ndarray | float, t: float) -> np.ndarray:
    r"""The soft-thresholding operator :math:`S_t(z) = \operatorname{sign}(z)\,\max(|z| - t, 0)`.

    It solves the one-dimensional lasso
    :math:`\arg\min_b \tfrac12 (b - z)^2 + t|b|` and is applied element-wise.

    >>> soft_threshold(np.array([-3.0, -0.5, 0.0, 0.5, 3.0]), 1.0)
    array([-2.,  0.,  0.,  0.,  2.])
    """
    if t < 0:
        raise ValueError(f"the threshold t must be non-negative, got {t}")
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def group_soft_threshold(z: np.ndarray, t: float) -> np.ndarray:
    r"""Group soft-thresholding :math:`z \max(1 - t / \|z\|_2, 0)` (zero when :math:`\|z\|_2 \le t`).

    It solves :math:`\arg\min_b \tfrac12 \|b - z\|_2^2 + t\|b\|_2`: the whole
    vector shrinks towards zero along its own direction and vanishes at once.
    For a vector of length one it equals :func:`soft_threshold`.

    >>> group_soft_threshold(np.array([3.0, 4.0]), 2.5)
    array([1.5, 2. ])
    >>> group_soft_threshold(np.array([3.0, 4.0]), 5.0)
    array([0., 0.])
    """
    if t < 0:
        raise ValueError(f"the threshold t must be non-negative, got {t}")
    z = np.asarray(z, dtype=float)
    norm = float(np.linalg.norm(z))
    if norm <= t:
        return np.zeros_like(z)
    return (1.0 - t / norm) * z


_THRESHOLDS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "l1": soft_threshold,
    "l21": group_soft_threshold,
}


# -- results --------------------------------------------------------------------
@dataclass(frozen=True)
class LassoFit:
    """One fitted (multi-task) lasso.

    ``coef`` has shape ``(p,)`` for a vector ``y`` and ``(p, T)`` for a
    matrix ``Y``; ``intercept`` is a float or has shape ``(T,)``.
    ``duality_gap`` certifies optimality: the objective is at most this far
    above its minimum.
    """

    coef: np.ndarray
    intercept: float | np.ndarray
    alpha: float
    penalty: Penalty
    n_iter: int
    duality_gap: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions :math:`X\\hat B + b_0` for new inputs ``X`` of shape ``(m, p)``."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.coef.shape[0]:
            raise ValueError(f"X has shape {X.shape} but the model has {self.coef.shape[0]} coefficients per task")
        return X @ self.coef + self.intercept

    @property
    def support(self) -> np.ndarray:
        """Boolean mask of the non-zero coefficients (same shape as ``coef``)."""
        return self.coef != 0


@dataclass(frozen=True)
class LassoPath:
    """A regularisation path: one fit per ``alpha``, ``alphas`` in decreasing order.

    ``coefs[k]`` (shape ``(p,)`` or ``(p, T)``) and ``intercepts[k]`` belong to
    ``alphas[k]``. (scikit-learn's ``lasso_path`` puts the alpha axis last.)
    """

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    penalty: Penalty
    n_iter: np.ndarray
    duality_gaps: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions of every fit on the path, shape ``(n_alphas, m)`` or ``(n_alphas, m, T)``."""
        X = np.asarray(X, dtype=float)
        preds = np.einsum("mp,kp...->km...", X, self.coefs)
        return preds + self.intercepts[:, None, ...]


# -- the solver -----------------------------------------------------------------
def coordinate_descent(
    X: np.ndarray,
    Y: np.ndarray,
    alpha: float,
    B: np.ndarray,
    penalty: Penalty = "l1",
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, int]:
    r"""Cyclic (block) coordinate descent for :math:`\frac{1}{2n}\|Y - XB\|_F^2 + \alpha\,\mathrm{pen}(B)`.

    ``X`` (n, p) and ``Y`` (n, T) are centred; ``B`` (p, T) is the warm start
    (updated in place and returned with the number of sweeps). Each step
    minimises the objective exactly over one row :math:`B_{j,:}`:

    .. math::
        z_j = \tfrac{1}{n} x_j^\top \Big(Y - \sum_{k \ne j} x_k B_{k,:}\Big)
            = C_{j,:} - G_{j,:} B + G_{jj} B_{j,:},
        \qquad
        B_{j,:} \leftarrow \frac{\mathrm{threshold}(z_j, \alpha)}{G_{jj}},

    with :math:`G = X^\top X / n` and :math:`C = X^\top Y / n` computed once
    (Friedman et al. 2010, §2.2) and the threshold :func:`soft_threshold`
    (``"l1"``) or :func:`group_soft_threshold` (``"l21"``). A constant
    feature (:math:`G_{jj} = 0`) keeps a zero row. The loop stops when a full
    sweep changes no coefficient by more than ``tol`` times the largest
    coefficient; the caller certifies the result with :func:`duality_gap`.
    """
    threshold = _THRESHOLDS[penalty]
    n = X.shape[0]
    G = X.T @ X / n
    C = X.T @ Y / n
    rows = [(j, C[j], G[j], G[j, j]) for j in range(X.shape[1]) if G[j, j] > 0]
    for sweep in range(1, max_iter + 1):
        B_before = B.copy()
        for j, c_j, g_j, g_jj in rows:
            z = c_j - g_j @ B + g_jj * B[j]
            B[j] = threshold(z, alpha) / g_jj
        if np.abs(B - B_before).max() <= tol * np.abs(B).max():
            return B, sweep
    return B, max_iter


def duality_gap(X: np.ndarray, Y: np.ndarray, B: np.ndarray, alpha: float, penalty: Penalty = "l1") -> float:
    r"""Primal minus dual objective at ``B``: a certificate of (sub)optimality, always :math:`\ge 0`.

    ``X`` (n, p) and ``Y`` (n, T) are the centred data, ``B`` is (p, T). With
    the residual :math:`R = Y - XB`, the primal is
    :math:`P(B) = \frac{1}{2n}\|R\|_F^2 + \alpha\,\mathrm{pen}(B)` and the dual
    :math:`D(\Theta) = \frac{1}{2n}(\|Y\|_F^2 - \|Y - \Theta\|_F^2)` over
    :math:`\Theta` with :math:`\mathrm{pen}^*(X^\top\Theta) \le n\alpha`
    (dual norm: the largest :math:`|\cdot|` for ``"l1"``, the largest row norm
    for ``"l21"``). :math:`\Theta = sR` with the largest feasible
    :math:`s \le 1` is dual-feasible, so :math:`P(B) - D(sR)` bounds
    :math:`P(B) - \min P` (Boyd & Vandenberghe 2004, §5.5; scikit-learn's
    stopping rule).
    """
    n = X.shape[0]
    R = Y - X @ B
    XtR = X.T @ R
    if penalty == "l1":
        pen, dual_norm = float(np.abs(B).sum()), float(np.abs(XtR).max(initial=0.0))
    else:
        pen, dual_norm = float(np.linalg.norm(B, axis=1).sum()), float(np.linalg.norm(XtR, axis=1).max(initial=0.0))
    s = min(1.0, n * alpha / dual_norm) if dual_norm > 0 else 1.0
    primal = 0.5 / n * float(np.sum(R**2)) + alpha * pen
    dual = 0.5 / n * (float(np.sum(Y**2)) - float(np.sum((Y - s * R) ** 2)))
    return max(primal - dual, 0.0)


# -- the estimators -------------------------------------------------------------
def lambda_from_alpha(alpha: float, n_samples: int) -> float:
    r"""The lecture's :math:`\lambda` for scikit-learn's ``alpha``: :math:`\lambda = 2n\alpha`.

    The lecture puts :math:`\lambda` on the unscaled :math:`\|y - X\beta\|_2^2`,
    scikit-learn puts ``alpha`` on :math:`\frac{1}{2n}\|y - X\beta\|_2^2`.

    >>> lambda_from_alpha(0.5, n_samples=100)
    100.0
    """
    return 2.0 * n_samples * alpha


def alpha_max(X: np.ndarray, y: np.ndarray, penalty: Penalty = "l1", fit_intercept: bool = True) -> float:
    r"""The smallest ``alpha`` whose solution is all zeros.

    :math:`B = 0` is optimal iff the subgradient condition
    :math:`\mathrm{pen}^*(X^\top Y / n) \le \alpha` holds, so
    :math:`\alpha_{\max} = \|X^\top y\|_\infty / n` for the lasso and
    :math:`\max_j \|(X^\top Y)_{j,:}\|_2 / n` for the multi-task lasso
    (on centred data when ``fit_intercept``).

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> alpha_max(X, np.array([2.0, 1.0, -2.0, -1.0]))
    1.0
    """
    Xc, Yc, _, _ = _prepare(X, y, fit_intercept)
    XtY = Xc.T @ Yc / Xc.shape[0]
    if penalty == "l1":
        return float(np.abs(XtY).max(initial=0.0))
    return float(np.linalg.norm(XtY, axis=1).max(initial=0.0))


def lasso(
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    *,
    fit_intercept: bool = True,
    coef_init: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> LassoFit:
    r"""The lasso :math:`\arg\min_\beta \frac{1}{2n}\|y - X\beta\|_2^2 + \alpha\|\beta\|_1` (Tibshirani 1996).

    ``X`` has shape (n, p); ``y`` (n,) gives ``coef`` of shape (p,). A matrix
    ``y`` of shape (n, T) fits ``T`` separate lassos with the same ``alpha``.
    ``coef_init`` warm-starts the solver. The lecture's :math:`\lambda` is
    :math:`2n\alpha`. Reference: Tibshirani, JRSS-B 58(1), 1996,
    doi:10.1111/j.2517-6161.1996.tb02080.x.

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> fit = lasso(X, np.array([2.0, 1.0, -2.0, -1.0]), alpha=0.5)
    >>> fit.coef.round(6), fit.intercept
    (array([1., 0.]), 0.0)
    """
    return _fit(X, y, alpha, "l1", fit_intercept, coef_init, tol, max_iter)


def multitask_lasso(
    X: np.ndarray,
    Y: np.ndarray,
    alpha: float,
    *,
    fit_intercept: bool = True,
    coef_init: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> LassoFit:
    r"""The multi-task lasso :math:`\arg\min_B \frac{1}{2n}\|Y - XB\|_F^2 + \alpha\sum_j\|B_{j,:}\|_2`.

    ``X`` has shape (n, p) and ``Y`` (n, T); ``coef`` has shape (p, T), one
    column per task, and its rows are zero or non-zero together (joint
    covariate selection: Obozinski, Taskar & Jordan, Statistics and
    Computing 20, 2010, doi:10.1007/s11222-008-9111-x). scikit-learn's
    ``MultiTaskLasso(alpha).coef_`` equals ``coef.T``.

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> Y = np.array([[3.0, 4.0], [0.5, 0.0], [-3.0, -4.0], [-0.5, 0.0]])
    >>> multitask_lasso(X, Y, alpha=1.0).coef.round(6)
    array([[1.8, 2.4],
           [0. , 0. ]])
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"the multi-task lasso needs Y of shape (n_samples, n_tasks), got shape {Y.shape}")
    return _fit(X, Y, alpha, "l21", fit_intercept, coef_init, tol, max_iter)


def lasso_path(
    X: np.ndarray,
    y: np.ndarray,
    alphas: Sequence[float] | np.ndarray | None = None,
    *,
    n_alphas: int = 50,
    eps: float = 1e-3,
    penalty: Penalty = "l1",
    fit_intercept: bool = True,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> LassoPath:
    r"""Fits along a decreasing grid of ``alpha``, each warm-started from the previous one.

    Without ``alphas`` the grid has ``n_alphas`` values, log-spaced from
    :func:`alpha_max` (where every coefficient is zero) down to
    ``eps * alpha_max``, as in glmnet and scikit-learn. Given ``alphas`` are
    sorted in decreasing order. ``penalty="l21"`` gives the multi-task lasso
    path for a matrix ``y``.

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> path = lasso_path(X, np.array([2.0, 1.0, -2.0, -1.0]), n_alphas=3, eps=0.25)
    >>> path.alphas
    array([1.  , 0.5 , 0.25])
    >>> path.coefs.round(6)
    array([[0. , 0. ],
           [1. , 0. ],
           [1.5, 0.5]])
    """
    if penalty not in _THRESHOLDS:
        raise ValueError(f"penalty must be one of {sorted(_THRESHOLDS)}, got {penalty!r}")
    if alphas is None:
        if n_alphas < 1 or not 0 < eps <= 1:
            raise ValueError(f"need n_alphas >= 1 and 0 < eps <= 1, got n_alphas={n_alphas}, eps={eps}")
        top = alpha_max(X, y, penalty, fit_intercept)
        alphas = np.geomspace(top, top * eps, n_alphas) if top > 0 else np.zeros(n_alphas)
    alphas = np.sort(np.asarray(alphas, dtype=float).ravel())[::-1]
    fits: list[LassoFit] = []
    for alpha in alphas:
        start = fits[-1].coef if fits else None
        fits.append(_fit(X, y, float(alpha), penalty, fit_intercept, start, tol, max_iter))
    return LassoPath(
        alphas=alphas,
        coefs=np.stack([f.coef for f in fits]),
        intercepts=np.array([f.intercept for f in fits], dtype=float),
        penalty=penalty,
        n_iter=np.array([f.n_iter for f in fits]),
        duality_gaps=np.array([f.duality_gap for f in fits]),
    )


# -- helpers --------------------------------------------------------------------
def _prepare(
    X: np.ndarray, y: np.ndarray, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes and values; return centred ``X`` (n, p), ``Y`` (n, T) and their means."""
    X = np.asarray(X, dtype=float)
    Y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n_samples, n_features), got shape {X.shape}")
    if Y.ndim not in (1, 2):
        raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_tasks), got shape {Y.shape}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has shape {X.shape} and y has shape {Y.shape}: they need the same number of rows (samples)"
        )
    if X.shape[0] == 0:
        raise ValueError("X and y have no samples")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and y must be finite (no NaN or inf)")
    Y = Y.reshape(Y.shape[0], -1)
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    y_mean = Y.mean(axis=0) if fit_intercept else np.zeros(Y.shape[1])
    return X - x_mean, Y - y_mean, x_mean, y_mean


def _fit(
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    penalty: Penalty,
    fit_intercept: bool,
    coef_init: np.ndarray | None,
    tol: float,
    max_iter: int,
) -> LassoFit:
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative number, got {alpha}")
    Xc, Yc, x_mean, y_mean = _prepare(X, y, fit_intercept)
    p, n_tasks = Xc.shape[1], Yc.shape[1]
    B = np.zeros((p, n_tasks)) if coef_init is None else np.array(coef_init, dtype=float)
    if B.size != p * n_tasks:
        raise ValueError(f"coef_init has shape {B.shape} but X and y need {p} x {n_tasks} coefficients")
    B = B.reshape(p, n_tasks)
    B, n_iter = coordinate_descent(Xc, Yc, alpha, B, penalty, tol, max_iter)
    intercept = y_mean - x_mean @ B
    gap = duality_gap(Xc, Yc, B, alpha, penalty)
    if np.ndim(y) == 1:
        return LassoFit(B[:, 0], float(intercept[0]), alpha, penalty, n_iter, gap)
    return LassoFit(B, intercept, alpha, penalty, n_iter, gap)

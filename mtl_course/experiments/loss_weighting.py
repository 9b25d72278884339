r"""Every weighting method of :mod:`mtl_course.weighting` on three small problems (lecture A6).

* :func:`conflicting_pair_experiment` -- the conflicting (and optionally
  scale-mismatched) pair of :func:`~mtl_course.data.toy_regression.make_conflicting_regressions`:
  one shared linear model (:func:`shared_linear_model`, trained on the
  :func:`conflicting_pair_tasks`), full-batch gradient descent from one
  starting point; returns each method's trajectory in parameter space, so a
  figure can show where on the Pareto front each method lands.
  :func:`make_fit_retrainer` is the same recipe for fixed weights: the
  retrain function the loss-weight tuner
  (:class:`~mtl_course.widgets.loss_weights.LossWeightTuner`) receives.
* :func:`gradnorm_toy_experiment` -- the scale-mismatched toy of GradNorm
  (Chen et al., ICML 2018, arXiv 1711.02257, Section 4), scored as in the
  paper by the sum of the test-loss ratios :math:`\sum_i L_i(t)/L_i(0)`
  (lower is better).
* :func:`multidigits_experiment` -- MultiDigits
  (:func:`~mtl_course.data.multidigits.load_multidigits`), a small MLP with
  hard sharing, test accuracy per task, against single-task networks.

All training goes through :func:`mtl_course.train.fit`; every run is seeded
and returns plain numbers in a pandas DataFrame (one row per seed and method;
the single-task baseline is the condition :data:`~mtl_course.experiments.labels.STL`).
:data:`DEFAULT_HYPER` holds the hyper-parameters the lecture uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtl_course.data.multidigits import load_multidigits
from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.toy_regression import QuadraticTasks, TrainVal, make_gradnorm_toy
from mtl_course.device import get_device
from mtl_course.experiments.labels import STL
from mtl_course.losses import ScaledMSE, cross_entropy, mse_loss
from mtl_course.metrics import accuracy, mse
from mtl_course.models import HardSharing, SingleTask
from mtl_course.train import Callback, Recorder, Task, TrainState, evaluate, fit
from mtl_course.weighting import WeightingMethod, get_weighting

#: Hyper-parameters used unless a call overrides them. GradNorm's asymmetry
#: ``alpha = 0.12`` is the paper's value for its toy (Section 4).
DEFAULT_HYPER: dict[str, dict[str, Any]] = {"gradnorm": {"alpha": 0.12}}


def make_method(
    name: str,
    tasks: Sequence[str],
    seed: int = 0,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    fixed_weights: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> WeightingMethod:
    """Build weighting method ``name`` with the lecture's defaults.

    ``fixed`` needs ``fixed_weights``; ``rlw`` and ``pcgrad`` take ``seed``
    for their random draws; ``uncertainty`` takes ``kinds`` (regression or
    classification per task). ``hyper`` overrides :data:`DEFAULT_HYPER`.

    >>> make_method("fixed", ["a", "b"], fixed_weights={"a": 1.0, "b": 0.01}).lambdas.tolist()
    [1.0, 0.009999999776482582]
    """
    kw: dict[str, Any] = dict(DEFAULT_HYPER.get(name, {}))
    kw.update((hyper or {}).get(name, {}))
    if name == "fixed":
        if fixed_weights is None:
            raise ValueError("the 'fixed' method needs fixed_weights={task: lambda}")
        kw["weights"] = dict(fixed_weights)
    if name in ("rlw", "pcgrad"):
        kw.setdefault("seed", seed)
    if name == "uncertainty" and kinds:
        kw.setdefault("kinds", dict(kinds))
    return get_weighting(name, list(tasks), **kw)


def conflicting_pair_tasks(data: MultiTaskData) -> list[Task]:
    """One :class:`~mtl_course.train.Task` per task of the conflicting pair: the scaled MSE, the plain MSE as metric.

    The loss of task ``i`` is ``ScaledMSE(s_i)`` with the scales of
    ``data.info["loss_scales"]``
    (:func:`~mtl_course.data.toy_regression.make_conflicting_regressions`).
    """
    scales = data.info["loss_scales"]
    return [Task(t, ScaledMSE(s), {"mse": mse}) for t, s in zip(data.tasks, scales, strict=True)]


def shared_linear_model(tasks: Sequence[str], dim: int, init: Sequence[float] | None = None) -> HardSharing:
    """The shared linear model ``x -> x^T w`` for every task, as a :class:`~mtl_course.models.HardSharing`.

    The trunk is one bias-free ``nn.Linear(dim, 1)`` (all the parameters,
    shared); the heads are identities. ``init`` sets ``w``.

    >>> shared_linear_model(["t0", "t1"], 2, init=[1.0, -1.0])(torch.tensor([[2.0, 1.0]]))["t1"].item()
    1.0
    """
    trunk = nn.Linear(dim, 1, bias=False)
    if init is not None:
        with torch.no_grad():
            trunk.weight.copy_(torch.as_tensor(np.asarray(init, dtype=np.float32)).reshape(1, dim))
    return HardSharing(trunk, {t: nn.Identity() for t in tasks})


def _shared_vector(model: nn.Module) -> np.ndarray:
    """The shared parameters of ``model`` as one flat float64 vector ``w``."""
    return torch.cat([p.detach().reshape(-1).double().cpu() for p in model.shared_parameters()]).numpy()


def conflicting_pair_experiment(
    pair: TrainVal,
    methods: Sequence[str],
    init: Sequence[float] = (0.0, -1.0),
    steps: int = 60,
    lr: float = 0.1,
    seed: int = 0,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """Full-batch SGD on the shared linear model from ``init``: ``{method: path (steps + 1, d)}``.

    Plain gradient descent (no momentum, no Adam) keeps the geometry of each
    method visible: the step is the method's combined gradient times ``lr``.
    ``fixed`` uses ``lambda_i = 1 / L_i(init)`` (normalising each loss by its
    starting value). Row 0 of a path is the starting point (``init`` in
    float32, the model's precision).
    """
    device = get_device() if device is None else torch.device(device)
    data = pair.train
    start = QuadraticTasks.from_least_squares(data).losses(np.asarray(init, dtype=float))
    fixed = {t: 1.0 / float(v) for t, v in zip(data.tasks, start, strict=True)}
    loader = data.loader(shuffle=False, device=device)
    paths = {}
    for name in methods:
        torch.manual_seed(seed)
        model = shared_linear_model(data.tasks, data.x.shape[1], init=init)
        method = make_method(name, data.tasks, seed=seed, hyper=hyper, fixed_weights=fixed)
        optimizer = torch.optim.SGD([*model.parameters(), *method.parameters()], lr=lr)
        recorder = Recorder(_shared_vector)
        fit(
            model,
            conflicting_pair_tasks(data),
            method,
            loader,
            epochs=steps,
            optimizer=optimizer,
            device=device,
            callbacks=[recorder],
            progress=False,
        )
        paths[name] = np.stack(recorder.values)
    return paths


class _ReportProgress(Callback):
    """Calls ``report(epoch, epochs)`` about twenty times during training (for a progress bar)."""

    def __init__(self, report: Callable[[int, int], None], epochs: int) -> None:
        self.report, self.epochs = report, epochs

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % max(self.epochs // 20, 1) == 0 or state.epoch == self.epochs:
            self.report(state.epoch, self.epochs)


def make_fit_retrainer(
    pair: TrainVal, epochs: int = 200, device: torch.device | str | None = None
) -> Callable[[Mapping[str, float], Callable[[int, int], None]], np.ndarray]:
    r"""The retrain function of the loss-weight tuner: fixed weights, full-batch gradient descent with ``fit``.

    ``retrain(weights, progress)`` trains :func:`shared_linear_model` from
    :math:`w = 0` on ``pair.train`` with the fixed weights
    (:class:`~mtl_course.weighting.FixedWeighting`) for ``epochs`` steps,
    reports ``progress(done, epochs)``, and returns the final :math:`w`. The
    weighted loss is the quadratic :math:`\sum_i \lambda_i L_i`; gradient
    descent with step :math:`1 / \lambda_{\max}(H)`, where
    :math:`H = 2 \sum_i \lambda_i A_i` is its Hessian, converges to the
    closed-form optimum linearly.
    """
    data = pair.train
    quad = QuadraticTasks.from_least_squares(data)
    tasks = conflicting_pair_tasks(data)

    def retrain(weights: Mapping[str, float], progress: Callable[[int, int], None]) -> np.ndarray:
        lam = np.array([weights[t] for t in quad.names], dtype=float)
        hessian = 2 * np.einsum("t,tij->ij", lam, quad.A)
        step = 1.0 / float(np.linalg.eigvalsh(hessian).max())
        model = shared_linear_model(data.tasks, quad.dim, init=np.zeros(quad.dim))
        method = get_weighting("fixed", list(data.tasks), weights={t: float(weights[t]) for t in data.tasks})
        optimizer = torch.optim.SGD(model.parameters(), lr=step)
        progress(0, epochs)
        fit(
            model,
            tasks,
            method,
            data.loader(shuffle=False),
            epochs=epochs,
            optimizer=optimizer,
            device=device,
            callbacks=[_ReportProgress(progress, epochs)],
            progress=False,
        )
        return _shared_vector(model)

    return retrain


def gradnorm_toy_experiment(
    sigmas: Sequence[float],
    methods: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 80,
    n_train: int = 500,
    n_val: int = 1000,
    in_features: int = 16,
    out_features: int = 16,
    hidden: Sequence[int] = (64, 64),
    lr: float = 1e-2,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    r"""Train a hard-sharing MLP on the GradNorm toy with each method; score :math:`\sum_i L_i(t)/L_i(0)`.

    ``L_i(0)`` and ``L_i(t)`` are validation losses before and after
    ``epochs`` full-batch Adam steps (rate ``lr``). Columns: ``seed``,
    ``method``, ``score``, ``ratio/<task>`` and ``weight/<task>`` (the mean
    effective weight of the last epoch). ``fixed`` uses
    ``lambda_i = 1 / L_i(0)`` on the training set.
    """
    device = get_device() if device is None else torch.device(device)
    rows = []
    for seed in seeds:
        toy = make_gradnorm_toy(
            sigmas, n_train=n_train, n_val=n_val, in_features=in_features, out_features=out_features, seed=seed
        )
        names = list(toy.train.tasks)
        specs = [Task(t, mse_loss) for t in names]
        train = toy.train.loader(shuffle=False, device=device)
        val = toy.val.loader(shuffle=False, device=device)
        for name in methods:
            torch.manual_seed(seed)
            model = HardSharing.mlp(in_features, list(hidden), dict.fromkeys(names, out_features)).to(device)
            before = evaluate(model, specs, val, device)
            start = evaluate(model, specs, train, device)
            fixed = {t: 1.0 / start[f"{t}/val_loss"] for t in names}
            method = make_method(name, names, seed=seed, hyper=hyper, fixed_weights=fixed)
            history = fit(model, specs, method, train, epochs=epochs, lr=lr, device=device, progress=False)
            after = evaluate(model, specs, val, device)
            ratios = {t: after[f"{t}/val_loss"] / before[f"{t}/val_loss"] for t in names}
            row = {"seed": seed, "method": name, "score": sum(ratios.values())}
            row.update({f"ratio/{t}": r for t, r in ratios.items()})
            row.update({f"weight/{t}": float(history[f"{t}/weight"].iloc[-1]) for t in names})
            rows.append(row)
    return pd.DataFrame(rows)


def multidigits_experiment(
    methods: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 8,
    batch_size: int = 128,
    hidden: Sequence[int] = (128, 64),
    lr: float = 3e-3,
    n_train: int = 1000,
    n_test: int = 500,
    single_task: bool = True,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """Test accuracy on MultiDigits for each method (hard sharing) and, with ``single_task``, for :data:`STL`.

    The model is ``HardSharing.mlp(144, hidden, {"left": 10, "right": 10})``
    (STL: ``SingleTask.mlp`` with the same widths per task), trained with Adam
    on mini-batches. Uncertainty weighting uses the classification form.
    Columns: ``seed``, ``method``, ``left``, ``right`` (test accuracies),
    ``mean``, and ``left_loss``, ``right_loss`` (test cross-entropies).
    """
    device = get_device() if device is None else torch.device(device)
    tasks = ["left", "right"]
    specs = [Task(t, cross_entropy, {"accuracy": accuracy}) for t in tasks]
    rows = []
    conditions = ([STL] if single_task else []) + list(methods)
    for seed in seeds:
        train, test = load_multidigits(n_train=n_train, n_test=n_test, seed=seed, flat=True)
        n_inputs = train.x.shape[1]
        for name in conditions:
            torch.manual_seed(seed)
            loader = train.loader(batch_size, shuffle=True, seed=seed, device=device)
            test_loader = test.loader(shuffle=False, device=device)
            if name == STL:
                model = SingleTask.mlp(n_inputs, list(hidden), dict.fromkeys(tasks, 10))
                method = make_method("equal", tasks)
            else:
                model = HardSharing.mlp(n_inputs, list(hidden), dict.fromkeys(tasks, 10))
                method = make_method(
                    name,
                    tasks,
                    seed=seed,
                    hyper=hyper,
                    fixed_weights=dict.fromkeys(tasks, 1.0),
                    kinds=dict.fromkeys(tasks, "classification"),
                )
            fit(model, specs, method, loader, epochs=epochs, lr=lr, device=device, progress=False)
            result = evaluate(model, specs, test_loader, device)
            row = {"seed": seed, "method": name}
            row.update({t: result[f"{t}/val_accuracy"] for t in tasks})
            row["mean"] = (row["left"] + row["right"]) / 2
            row.update({f"{t}_loss": result[f"{t}/val_loss"] for t in tasks})
            rows.append(row)
    return pd.DataFrame(rows)


def pareto_stationarity(gradients: np.ndarray) -> float:
    """``min_{alpha in simplex} ||sum_i alpha_i g_i||``: zero exactly at a Pareto-stationary point.

    Sener & Koltun (NeurIPS 2018, arXiv 1810.04650, Section 3.1): a point is
    Pareto stationary when some convex combination of the task gradients
    vanishes; the min-norm element (:func:`mtl_course.weighting.mgda.min_norm_element`)
    measures how far from that a point is.

    >>> pareto_stationarity(np.array([[1.0, 0.0], [-1.0, 0.0]]))  # opposed gradients: stationary
    0.0
    """
    from mtl_course.weighting.mgda import min_norm_element

    g = np.asarray(gradients, dtype=float)
    alpha = min_norm_element(torch.from_numpy(g @ g.T)).numpy()
    return float(np.linalg.norm(alpha @ g))


def tcdcn_curve(train_errors: Sequence[float], val_errors: Sequence[float], k: int, lam: float = 1.0) -> np.ndarray:
    """:func:`mtl_course.train.tcdcn_criterion` at every epoch ``t`` (``NaN`` while ``t < k + 1``).

    >>> tcdcn_curve([1.0, 1.0, 1.0, 1.0], [1.5, 1.5, 1.5, 1.5], k=2).tolist()
    [nan, nan, 1.0, 1.0]
    """
    from mtl_course.train import tcdcn_criterion

    values = np.full(len(train_errors), np.nan)
    for t in range(k + 1, len(train_errors) + 1):
        values[t - 1] = tcdcn_criterion(list(train_errors[:t]), float(val_errors[t - 1]), k, lam)
    return values

r"""Every weighting method of :mod:`mtl_course.weighting` on three small problems (lecture A6).

* :func:`conflicting_pair_experiment` -- the conflicting (and optionally
  scale-mismatched) pair of :func:`~mtl_course.data.toy_regression.make_conflicting_regressions`:
  one shared linear model, full-batch gradient descent from one starting
  point; returns each method's trajectory in parameter space, so a figure can
  show where on the Pareto front each method lands.
* :func:`gradnorm_toy_experiment` -- the scale-mismatched toy of GradNorm
  (Chen et al., ICML 2018, arXiv 1711.02257, Section 4), scored as in the
  paper by the sum of the test-loss ratios :math:`\sum_i L_i(t)/L_i(0)`
  (lower is better).
* :func:`multidigits_experiment` -- MultiDigits
  (:func:`~mtl_course.data.multidigits.load_multidigits`), a small MLP with
  hard sharing, test accuracy per task, against single-task networks.

All training goes through :func:`mtl_course.train.fit`; every run is seeded
and returns plain numbers in a pandas DataFrame (one row per seed and method).
:data:`DEFAULT_HYPER` holds the hyper-parameters the lecture uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtl_course.data.loaders import TensorLoader
from mtl_course.data.multidigits import load_multidigits
from mtl_course.data.toy_regression import ConflictingRegressions, make_gradnorm_toy
from mtl_course.device import get_device
from mtl_course.losses import cross_entropy, mse_loss
from mtl_course.metrics import accuracy
from mtl_course.models import HardSharing, SingleTask
from mtl_course.train import Callback, Task, TrainState, evaluate, fit
from mtl_course.weighting import WeightingMethod, available_methods, get_weighting

#: Name of the single-task baseline in the result tables (not a weighting method).
SINGLE_TASK = "single-task"

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


class ParameterRecorder(Callback):
    """Records a flat copy of ``model.shared_parameters()`` after every epoch (for trajectories)."""

    def __init__(self, initial: np.ndarray) -> None:
        self.path: list[np.ndarray] = [np.asarray(initial, dtype=float)]

    def on_epoch_end(self, state: TrainState) -> None:
        flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in state.model.shared_parameters()])
        self.path.append(flat.numpy())


def conflicting_pair_experiment(
    pair: ConflictingRegressions,
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
    starting value).
    """
    device = get_device() if device is None else torch.device(device)
    quad = pair.quadratic("train")
    start = quad.losses(np.asarray(init, dtype=float))
    fixed = {t: 1.0 / float(v) for t, v in zip(pair.tasks, start, strict=True)}
    loader = TensorLoader(pair.train.x, pair.train.targets, shuffle=False, device=device)
    paths = {}
    for name in methods:
        torch.manual_seed(seed)
        model = pair.model(init=init)
        method = make_method(name, pair.tasks, seed=seed, hyper=hyper, fixed_weights=fixed)
        optimizer = torch.optim.SGD([*model.parameters(), *method.parameters()], lr=lr)
        recorder = ParameterRecorder(np.asarray(init, dtype=float))
        fit(
            model,
            pair.task_specs(),
            method,
            loader,
            epochs=steps,
            optimizer=optimizer,
            device=device,
            callbacks=[recorder],
            progress=False,
        )
        paths[name] = np.stack(recorder.path)
    return paths


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
        names = toy.tasks
        specs = [Task(t, mse_loss) for t in names]
        train = TensorLoader(toy.train.x, toy.train.targets, shuffle=False, device=device)
        val = TensorLoader(toy.val.x, toy.val.targets, shuffle=False, device=device)
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
    """Test accuracy on MultiDigits for each method (hard sharing) and, with ``single_task``, for STL.

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
    arms = ([SINGLE_TASK] if single_task else []) + list(methods)
    for seed in seeds:
        train, test = load_multidigits(n_train=n_train, n_test=n_test, seed=seed)
        x_train, x_test = train.flat(), test.flat()
        for name in arms:
            torch.manual_seed(seed)
            loader = TensorLoader(
                x_train, train.targets(), batch_size=batch_size, shuffle=True, seed=seed, device=device
            )
            test_loader = TensorLoader(x_test, test.targets(), shuffle=False, device=device)
            if name == SINGLE_TASK:
                model = SingleTask.mlp(x_train.shape[1], list(hidden), dict.fromkeys(tasks, 10))
                method = make_method("equal", tasks)
            else:
                model = HardSharing.mlp(x_train.shape[1], list(hidden), dict.fromkeys(tasks, 10))
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


def mean_sd_table(results: pd.DataFrame, columns: Sequence[str], digits: int = 3, by: str = "method") -> pd.DataFrame:
    """``"mean ± sd"`` (sample sd over seeds) of ``columns`` per ``by``, in first-seen order.

    >>> df = pd.DataFrame({"method": ["a", "a", "b", "b"], "x": [1.0, 3.0, 2.0, 2.0]})
    >>> mean_sd_table(df, ["x"], digits=1).to_dict()
    {'x': {'a': '2.0 ± 1.4', 'b': '2.0 ± 0.0'}}
    """
    order = list(dict.fromkeys(results[by]))
    grouped = results.groupby(by, sort=False)[list(columns)]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    table = pd.DataFrame(
        {c: [f"{mean.loc[m, c]:.{digits}f} ± {sd.loc[m, c]:.{digits}f}" for m in order] for c in columns},
        index=order,
    )
    table.index.name = by
    return table


def all_methods() -> list[str]:
    """Every registered weighting method (:func:`mtl_course.weighting.available_methods`)."""
    return available_methods()


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

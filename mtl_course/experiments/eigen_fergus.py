r"""Depth, surface normals and semantic labels from one network: the experiment of lecture B1.

Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a
Common Multi-Scale Convolutional Architecture", ICCV 2015, arXiv 1411.4734.
The network is :class:`~mtl_course.models.multiscale.MultiScaleNet`, the data
:func:`~mtl_course.data.indoor_scenes.make_indoor_scenes`.

**The recipe.** Every run trains with
:func:`~mtl_course.experiments.engine.train_each`: Adam on mini-batches,
equal weighting of the task losses (:func:`scene_tasks`: the scale-invariant
log-depth loss with its gradient term, the normals loss, the per-pixel
cross-entropy; missing ground truth left out), no validation set, the
weights after the last epoch.

**The comparison** (:func:`run_eigen_fergus`, per seed): one network for the
three tasks (:data:`~mtl_course.experiments.labels.MTL`); one network of the
same trunk per task (:data:`~mtl_course.experiments.labels.STL`, the
sceptic's baseline of equal capacity per task); and the depth network trained
without the gradient term (:data:`NO_GRADIENT`). Runs of one seed share
their initial random state. :func:`scene_metrics` scores every model on the
test set with the paper's error measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd
import torch

from mtl_course.data.indoor_scenes import CLASSES, depth_edges, discontinuities
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, concat_results, train_each
from mtl_course.experiments.labels import MTL, STL
from mtl_course.losses import cross_entropy, scale_invariant_depth_loss, surface_normal_loss
from mtl_course.metrics import (
    accuracy,
    depth_abs_rel,
    depth_delta,
    depth_rmse_log,
    mean_iou,
    normal_mean_angle,
    normal_median_angle,
    normal_within,
)
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.multiscale import MultiScaleNet
from mtl_course.train import Task

#: The tasks of the paper, in the order of its sections.
TASKS: tuple[str, ...] = ("depth", "normals", "semantic")
#: The depth network trained without the gradient term of the depth loss.
NO_GRADIENT = "STL, no gradient term"

#: The metrics of :func:`scene_metrics`, by task, in the order of the paper's tables.
METRICS: dict[str, tuple[str, ...]] = {
    "depth": ("delta_1.25", "abs_rel", "rmse_log"),
    "normals": ("mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"),
    "semantic": ("pixel_accuracy", "mean_iou"),
}
_METRIC_FNS = {
    "delta_1.25": depth_delta,
    "abs_rel": depth_abs_rel,
    "rmse_log": depth_rmse_log,
    "mean_angle": normal_mean_angle,
    "median_angle": normal_median_angle,
    "within_11.25": partial(normal_within, degrees=11.25),
    "within_22.5": partial(normal_within, degrees=22.5),
    "within_30": partial(normal_within, degrees=30.0),
    "pixel_accuracy": accuracy,
    "mean_iou": mean_iou,
}


def scene_tasks(names: Sequence[str] = TASKS, gradient_weight: float = 1.0) -> list[Task]:
    """One :class:`~mtl_course.train.Task` per name with its loss; ``gradient_weight`` scales the depth loss's
    gradient term (0: the scale-invariant error alone).

    >>> [(t.name, getattr(t.loss, "__name__", "partial")) for t in scene_tasks(["normals", "semantic"])]
    [('normals', 'surface_normal_loss'), ('semantic', 'cross_entropy')]
    """
    losses = {
        "depth": partial(scale_invariant_depth_loss, gradient_weight=gradient_weight),
        "normals": surface_normal_loss,
        "semantic": cross_entropy,
    }
    unknown = [t for t in names if t not in losses]
    if unknown or not names:
        raise KeyError(f"scene_tasks takes a non-empty subset of the tasks {list(TASKS)}, got {list(names)}")
    return [Task(name, losses[name]) for name in names]


def build_scene_network(data: MultiTaskData, names: Sequence[str], width: int = 8) -> MultiScaleNet:
    """A :class:`MultiScaleNet` for the tasks ``names`` of ``data`` (its image size, its number of classes).

    >>> from mtl_course.data.indoor_scenes import make_indoor_scenes
    >>> build_scene_network(make_indoor_scenes(2, size=16), ["semantic"]).tasks
    ['semantic']
    """
    channels = {"depth": 1, "normals": 3, "semantic": len(CLASSES)}
    _, in_channels, size, _ = np.shape(data.x)
    return MultiScaleNet(
        in_channels, size, {t: channels[t] for t in names}, unit=[t for t in names if t == "normals"], width=width
    )


def _only(data: MultiTaskData, names: Sequence[str]) -> MultiTaskData:
    return data.with_targets({t: data.targets[t] for t in names})


def run_eigen_fergus(
    train: MultiTaskData,
    test: MultiTaskData,
    seeds: Sequence[int],
    *,
    epochs: int = 25,
    batch_size: int = 32,
    lr: float = 5e-3,
    width: int = 8,
    device: torch.device | str | None = None,
) -> ExperimentResult:
    """Per seed: the three-task network (MTL), one network per task (STL) and the depth network without the
    gradient term (:data:`NO_GRADIENT`); the recipe of the module docstring. The summary has a ``tasks`` column."""
    if not seeds:
        raise ValueError("run_eigen_fergus needs at least one seed, got none")
    arms: list[tuple[str, tuple[str, ...], float]] = [(MTL, TASKS, 1.0)]
    arms += [(STL, (t,), 1.0) for t in TASKS]
    arms.append((NO_GRADIENT, ("depth",), 0.0))
    results = []
    for condition, names, gradient_weight in arms:
        runs = [
            Run(condition, seed, _only(train, names), None, _only(test, names), {"tasks": "+".join(names)})
            for seed in seeds
        ]
        results.append(
            train_each(
                runs,
                lambda run, names=names: build_scene_network(run.train, names, width),
                scene_tasks(names, gradient_weight),
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                measure_every=epochs,
                device=device,
            )
        )
    return concat_results(results)


@torch.no_grad()
def scene_metrics(model: MultiTaskModel, data: MultiTaskData) -> dict[str, float]:
    """The paper's error measures (:data:`METRICS`) of ``model`` on ``data``, for every task the model has,
    on the pixels with ground truth (``data.targets``)."""
    device = next(model.parameters()).device
    x, targets, *_ = data.batch(device)
    model.eval()
    out = model(x)
    return {
        f"{task}/{metric}": _METRIC_FNS[metric](out[task].float(), targets[task])
        for task in model.tasks
        for metric in METRICS[task]
    }


def metrics_table(result: ExperimentResult, test: MultiTaskData) -> pd.DataFrame:
    """One row per condition and seed, one column per ``task/metric``; the STL row joins the three networks."""
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for r, run in enumerate(result.runs):
        rows.setdefault((run.condition, run.seed), {}).update(scene_metrics(result.models[r], test))
    return pd.DataFrame([{"condition": c, "seed": s, **values} for (c, s), values in rows.items()])


@torch.no_grad()
def edge_errors(model: MultiTaskModel, data: MultiTaskData) -> dict[str, float]:
    r"""How well ``model`` predicts the depth at its discontinuities, against the complete ``truth["depth"]``.

    ``"edge"`` and ``"flat"``: the RMSE of the log depth on the pixels next to
    a discontinuity (:func:`~mtl_course.data.indoor_scenes.depth_edges`) and on
    all others; ``"step"``: the RMS error of the log-depth *step* across the
    discontinuous neighbour pairs (:func:`~mtl_course.data.indoor_scenes.discontinuities`),
    :math:`\sqrt{\operatorname{mean} (\Delta \log D - \Delta \log D^*)^2}`, which
    is blind to a global scale and large for a blurred edge (a step predicted as a ramp).
    """
    if data.truth is None or "depth" not in data.truth:
        raise KeyError("edge_errors needs data with the complete depth in truth['depth']")
    truth = np.asarray(data.truth["depth"], dtype=np.float64)
    device = next(model.parameters()).device
    model.eval()
    pred = model(torch.as_tensor(data.x).to(device))["depth"].double().cpu().numpy()
    edges = depth_edges(truth)
    down, across = discontinuities(truth)
    d = pred - truth
    steps = np.concatenate([np.diff(d, axis=1)[down], np.diff(d, axis=2)[across]])
    return {
        "edge": float(np.sqrt(np.mean(d[edges] ** 2))),
        "flat": float(np.sqrt(np.mean(d[~edges] ** 2))),
        "step": float(np.sqrt(np.mean(steps**2))),
    }

r"""One network for view classification and every view's landmarks, against separate networks (lecture B11).

Xu, Huo, Park, Landman, Milkowski, Grbic & Zhou, "Less is More: Simultaneous
View Classification and Landmark Detection for Abdominal Ultrasound Images"
(MICCAI 2018, arXiv 1805.10376).

**The recipe** (:func:`less_is_more_experiment`). Data from
:func:`~mtl_course.data.ultrasound_views.make_ultrasound_views`
(:func:`splits`). Two designs per seed:

* :data:`JOINT` -- one :class:`~mtl_course.models.less_is_more.ViewLandmarkNet`
  with the ``view`` head and one shared decoder of :math:`2V` heat maps,
  trained on every image with the sum of the view cross-entropy and the heat-map
  cross-entropy masked to each image's own view
  (:func:`~mtl_course.losses.heatmap_cross_entropy`);
* :data:`SEPARATE` -- :math:`V + 1` networks of the same layers: a view
  classifier trained on every image, and per view a landmark network (two heat
  maps) trained on that view's images only (:func:`one_view`).

Every network is trained with :func:`~mtl_course.experiments.engine.train_each`
(Adam, shuffled mini-batches) for the same number of epochs, so every image
is seen equally often by the networks that use it, and the weights after the
last epoch are scored.

**The measurements** (:func:`measure`): per test image, the predicted view,
and the measurement error (:func:`~mtl_course.metrics.measurement_error`, in
pixels) of the landmarks read from the heat maps of the **true** view (the
*oracle* view) and of the **predicted** view; the landmarks are the soft-argmax
of the heat maps (:func:`~mtl_course.metrics.heatmap_soft_argmax`). Also the
parameters and the CPU seconds of training per design.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from mtl_course.data.tasks import MultiTaskData
from mtl_course.data.ultrasound_views import LANDMARKS_PER_VIEW, VIEWS, make_ultrasound_views, view_rows
from mtl_course.experiments.engine import ExperimentResult, Run, timed_train_each
from mtl_course.experiments.labels import JOINT
from mtl_course.losses import cross_entropy, heatmap_cross_entropy
from mtl_course.metrics import heatmap_soft_argmax, measurement_error
from mtl_course.models.less_is_more import ViewLandmarkNet
from mtl_course.train import Task

#: A view classifier and one landmark network per view.
SEPARATE = "separate"
#: The layers' widths of every network of the lecture.
CHANNELS: tuple[int, ...] = (8, 16)


def splits(n_train: int, seed: int, *, n_test: int = 200, size: int = 32) -> tuple[MultiTaskData, MultiTaskData]:
    """``(train, test)`` images with every view in equal numbers; the test set from the seed ``2 * seed + 1``."""
    return make_ultrasound_views(n_train, size=size, seed=2 * seed), make_ultrasound_views(
        n_test, size=size, seed=2 * seed + 1
    )


def view_tasks() -> list[Task]:
    """The joint model's tasks: the view (cross-entropy) and the landmarks (the masked heat-map cross-entropy)."""
    return [Task("view", cross_entropy), Task("landmarks", heatmap_cross_entropy)]


def one_view(data: MultiTaskData, view: str) -> MultiTaskData:
    """The images of ``view`` only, with that view's two landmarks as the one task (a separate network's data)."""
    if view not in VIEWS:
        raise KeyError(f"unknown view {view!r}; the views are {list(VIEWS)}")
    v = VIEWS.index(view)
    rows = (torch.as_tensor(data.targets["view"]) == v).nonzero()[:, 0]
    if rows.numel() == 0:
        raise ValueError(f"the data have no {view} images")
    subset = data.take(rows)
    return subset.with_targets({"landmarks": subset.targets["landmarks"][:, view_rows(v)]})


def classification_only(data: MultiTaskData) -> MultiTaskData:
    """Every image with the view as the one task (the separate view classifier's data)."""
    return data.with_targets({"view": data.targets["view"]})


@torch.no_grad()
def _outputs(model: ViewLandmarkNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {t: y.cpu() for t, y in model(torch.as_tensor(x).to(device)).items()}
    model.train(was_training)
    return out


def _read(points: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Each image's two landmarks from the rows of ``view``: ``points`` ``(B, 2V, 2)`` -> ``(B, 2, 2)``."""
    return points[torch.arange(len(view))[:, None], view_rows(view)]


def measure(test: MultiTaskData, predicted_view: torch.Tensor, points: dict[str, torch.Tensor]) -> pd.DataFrame:
    """One row per test image: ``view``, ``predicted``, ``correct``, ``error_oracle`` and ``error_predicted`` (pixels).

    ``points[reading]`` (``reading`` in ``"oracle"``, ``"predicted"``) holds
    every image's two landmarks read with the true or the predicted view,
    ``(B, 2, 2)`` in image units; they are scored against ``info["points"]``.
    """
    size = test.info["size"]
    view = torch.as_tensor(test.targets["view"])
    truth = test.info["points"]
    return pd.DataFrame(
        {
            "view": [VIEWS[v] for v in view.tolist()],
            "predicted": [VIEWS[v] for v in predicted_view.tolist()],
            "correct": (predicted_view == view).tolist(),
            **{f"error_{r}": measurement_error(points[r] * size, truth).tolist() for r in ("oracle", "predicted")},
        }
    )


def measure_joint(model: ViewLandmarkNet, test: MultiTaskData) -> pd.DataFrame:
    """:func:`measure` for the joint model: its view, and the landmarks of its shared decoder."""
    out = _outputs(model, test.x)
    predicted = out["view"].argmax(1)
    points = heatmap_soft_argmax(out["landmarks"])
    view = torch.as_tensor(test.targets["view"])
    return measure(test, predicted, {"oracle": _read(points, view), "predicted": _read(points, predicted)})


def measure_separate(
    classifier: ViewLandmarkNet, landmark_nets: Sequence[ViewLandmarkNet], test: MultiTaskData
) -> pd.DataFrame:
    """:func:`measure` for the separate networks: the classifier's view, and the landmarks of each view's network."""
    if len(landmark_nets) != len(VIEWS):
        raise ValueError(f"need one landmark network per view ({len(VIEWS)}), got {len(landmark_nets)}")
    predicted = _outputs(classifier, test.x)["view"].argmax(1)
    points = torch.cat([heatmap_soft_argmax(_outputs(net, test.x)["landmarks"]) for net in landmark_nets], 1)
    view = torch.as_tensor(test.targets["view"])
    return measure(test, predicted, {"oracle": _read(points, view), "predicted": _read(points, predicted)})


@dataclass
class LessIsMoreResult:
    """What :func:`less_is_more_experiment` measured.

    ``images``: one row per (seed, design, test image) with the columns of
    :func:`measure`; ``cost``: one row per trained network with ``seed``,
    ``design``, ``network``, ``parameters``, ``cpu_s`` and ``wall_s``;
    ``models``: per ``(design, seed)`` the trained networks (the joint model,
    or the classifier followed by one landmark network per view); ``results``: the engine's result of every
    trained network, in training order (its ``summary`` holds the final training loss of each task).
    """

    images: pd.DataFrame
    cost: pd.DataFrame
    models: dict[tuple[str, int], list[ViewLandmarkNet]]
    results: list[ExperimentResult]


def less_is_more_experiment(
    seeds: Sequence[int],
    n_train: int = 240,
    *,
    n_test: int = 200,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = 1e-2,
    channels: Sequence[int] = CHANNELS,
    size: int = 32,
    designs: Sequence[str] = (JOINT, SEPARATE),
    weighting: str = "equal",
    device: torch.device | str | None = None,
) -> LessIsMoreResult:
    """Train, per seed, the joint network and the separate networks (see the module docstring) and measure them.

    ``weighting`` names the method of :mod:`mtl_course.weighting` that combines the joint network's two losses
    (``"equal"``: their sum); the separate networks have one loss each.
    """
    if not seeds:
        raise ValueError("need at least one seed, got none")
    unknown = [d for d in designs if d not in (JOINT, SEPARATE)]
    if unknown or not designs:
        raise ValueError(f"designs must be a non-empty subset of {[JOINT, SEPARATE]}, got {list(designs)}")
    n_landmarks = LANDMARKS_PER_VIEW * len(VIEWS)
    images, cost, models, results = [], [], {}, []

    def train(
        design: str, network: str, seed: int, run: Run, build: Callable[[Run], ViewLandmarkNet], tasks: list[Task]
    ) -> ViewLandmarkNet:
        method = weighting if design == JOINT else "equal"
        result, cpu_s, wall_s = timed_train_each(
            [run],
            build,
            tasks,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weighting=method,
            measure_every=epochs,
            device=device,
        )
        model = result.models[0]
        parameters = model.parameter_counts()["total"]
        cost.append(
            {"seed": seed, "design": design, "network": network, "parameters": parameters}
            | {"images": run.train.n, "cpu_s": cpu_s, "wall_s": wall_s}
        )
        results.append(result)
        return model

    for seed in seeds:
        train_set, test = splits(n_train, seed, n_test=n_test, size=size)
        if JOINT in designs:
            joint = train(
                JOINT,
                "view + all landmarks",
                seed,
                Run(JOINT, seed, train_set, None, test),
                lambda r: ViewLandmarkNet(len(VIEWS), n_landmarks, channels),
                view_tasks(),
            )
            images.append(measure_joint(joint, test).assign(seed=seed, design=JOINT))
            models[JOINT, seed] = [joint]
        if SEPARATE in designs:
            classifier = train(
                SEPARATE,
                "view",
                seed,
                Run(SEPARATE, seed, classification_only(train_set), None, classification_only(test)),
                lambda r: ViewLandmarkNet(len(VIEWS), None, channels),
                view_tasks()[:1],
            )
            nets = [
                train(
                    SEPARATE,
                    f"landmarks of {v}",
                    seed,
                    Run(SEPARATE, seed, one_view(train_set, v), None, one_view(test, v)),
                    lambda r: ViewLandmarkNet(None, LANDMARKS_PER_VIEW, channels),
                    view_tasks()[1:],
                )
                for v in VIEWS
            ]
            images.append(measure_separate(classifier, nets, test).assign(seed=seed, design=SEPARATE))
            models[SEPARATE, seed] = [classifier, *nets]
    columns = ["seed", "design", "view", "predicted", "correct", "error_oracle", "error_predicted"]
    return LessIsMoreResult(pd.concat(images, ignore_index=True)[columns], pd.DataFrame(cost), models, results)

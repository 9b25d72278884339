r"""Joint motion estimation and segmentation on synthetic cine sequences: the experiment of lecture B16.

Qin et al., "Joint Learning of Motion Estimation and Segmentation for Cardiac
MR Image Sequences", MICCAI 2018, arXiv 1806.04066. The network is
:class:`~mtl_course.models.motion_segmentation.MotionSegmentationNet`, the data
:func:`~mtl_course.data.cine.make_cine`.

**The recipe.** Every run trains with
:func:`~mtl_course.experiments.engine.train_each`: Adam on the whole training
set per step, equal weights for the two losses (:func:`motion_segmentation_tasks`:
:class:`~mtl_course.losses.MotionLoss` with smoothness weight :math:`\lambda`,
the per-pixel cross-entropy on the labelled frames), no validation set, the
weights after the last epoch.

**The comparison** (:func:`run_motion_segmentation`, per seed): the joint
model trained on every frame of every training subject (:data:`JOINT`: the
motion loss on all frames, the cross-entropy on ED and ES), and the same
network trained on the labelled frames alone with the segmentation loss
alone (:data:`SEG_ONLY`: the sceptic's baseline, the same encoder and
segmentation branch). :func:`cine_scores` scores both on new subjects: the
Dice on the unlabelled frames (the paper's point), on the labelled ones, and
the motion's warp error and flow roughness. :func:`smoothness_sweep` trains
the joint model at several :math:`\lambda`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mtl_course.data.cine import CINE_CLASSES, make_cine
from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, train_each
from mtl_course.experiments.labels import JOINT
from mtl_course.losses import MotionLoss, cross_entropy, flow_smoothness, mse_loss
from mtl_course.metrics import dice
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.motion_segmentation import MotionSegmentationNet
from mtl_course.train import Task

#: The baseline: the same network, segmentation loss alone, on the labelled frames alone.
SEG_ONLY = "segmentation only"


def motion_segmentation_tasks(smoothness: float = 0.01) -> list[Task]:
    """The tasks ``motion`` (:class:`MotionLoss`, weight ``smoothness``) and ``segmentation`` (cross-entropy)."""
    return [Task("motion", MotionLoss(smoothness)), Task("segmentation", cross_entropy, {"dice": dice})]


def labelled_frames_only(data: MultiTaskData) -> MultiTaskData:
    """The rows with a segmentation label, without motion targets (``NaN``): the baseline's training set."""
    labelled = (data.targets["segmentation"] != IGNORE_INDEX).reshape(data.n, -1).any(axis=1)
    if not labelled.any():
        raise ValueError("the data have no labelled frame, so a segmentation-only baseline has nothing to learn")
    rows = data.take(np.flatnonzero(labelled))
    motion = np.full_like(rows.targets["motion"], np.nan)
    return rows.with_targets({"motion": motion, "segmentation": rows.targets["segmentation"]})


@torch.no_grad()
def cine_scores(
    model: MultiTaskModel, data: MultiTaskData, device: torch.device | str | None = None
) -> dict[str, float]:
    r"""A trained model on cine ``data`` (from :func:`make_cine`, with ``truth``): segmentation and motion scores.

    ``dice_unlabelled`` / ``dice_labelled``: the mean foreground :func:`~mtl_course.metrics.dice`
    (myocardium, cavity) against the true maps of the frames without / with a
    label; ``warp_mse``: the MSE between the warped ED frame and the target
    frame; ``no_motion_mse``: the same with no warp (the flow 0);
    ``roughness``: the mean flow-gradient magnitude
    :math:`\operatorname{mean}\lVert\nabla f\rVert` (:func:`~mtl_course.losses.flow_smoothness` with
    :math:`\varepsilon = 0`).
    """
    if data.truth is None or "segmentation" not in data.truth:
        raise ValueError("cine_scores needs the true label maps of every frame (data.truth['segmentation'])")
    if len(data.info.get("frame", ())) != data.n:
        raise ValueError(
            f"cine_scores needs info['frame'] with one frame index per row ({data.n} rows), as make_cine returns it; "
            f"got {len(data.info.get('frame', ()))} (take() keeps the info of the whole set)"
        )
    was_training = model.training
    model.eval()
    x = torch.as_tensor(data.x, device=device)
    out = model(x)
    model.train(was_training)
    truth = torch.as_tensor(data.truth["segmentation"], device=device)
    labelled = torch.as_tensor(np.isin(data.info["frame"], data.info["labelled"]), device=device)
    logits, motion = out["segmentation"], out["motion"]
    target = x[:, 1:]
    return {
        "dice_unlabelled": dice(logits[~labelled], truth[~labelled]),
        "dice_labelled": dice(logits[labelled], truth[labelled]),
        "warp_mse": float(mse_loss(motion[:, :1], target)),
        "no_motion_mse": float(mse_loss(x[:, :1], target)),
        "roughness": float(flow_smoothness(motion[:, 1:], eps=0.0)),
    }


def _runs(seeds: Sequence[int], n_subjects: int, n_test: int, conditions: Sequence[str]) -> list[Run]:
    runs = []
    for seed in seeds:
        train = make_cine(n_subjects, seed=1000 + seed)
        test = make_cine(n_test, seed=2000 + seed)
        for condition in conditions:
            data = train if condition == JOINT else labelled_frames_only(train)
            runs.append(Run(condition, seed, data, None, test))
    return runs


def _train(
    runs: Sequence[Run],
    smoothness: float,
    channels: Sequence[int],
    epochs: int,
    lr: float,
    device: torch.device | str | None,
) -> ExperimentResult:
    return train_each(
        runs,
        lambda run: MotionSegmentationNet(channels, n_classes=len(CINE_CLASSES)),
        motion_segmentation_tasks(smoothness),
        epochs=epochs,
        lr=lr,
        measure_every=epochs,
        device=device,
    )


def _score_table(result: ExperimentResult, device: torch.device | str | None, **columns: object) -> pd.DataFrame:
    rows = []
    for run, model in zip(result.runs, result.models, strict=True):
        rows.append({"condition": run.condition, "seed": run.seed, **columns, **cine_scores(model, run.test, device)})
    return pd.DataFrame(rows)


def run_motion_segmentation(
    seeds: Sequence[int],
    *,
    n_subjects: int = 6,
    n_test: int = 6,
    smoothness: float = 0.01,
    channels: Sequence[int] = (8, 16),
    epochs: int = 60,
    lr: float = 5e-3,
    device: torch.device | str | None = None,
) -> tuple[ExperimentResult, pd.DataFrame]:
    """:data:`JOINT` and :data:`SEG_ONLY` per seed; the result and the :func:`cine_scores` of every run.

    Per seed, ``n_subjects`` training and ``n_test`` test subjects of
    :func:`make_cine` (10 frames each; the training subjects' ED and ES
    frames are labelled); both conditions start from the same weights.
    """
    if not seeds:
        raise ValueError("run_motion_segmentation needs at least one seed, got none")
    result = _train(_runs(seeds, n_subjects, n_test, (SEG_ONLY, JOINT)), smoothness, channels, epochs, lr, device)
    return result, _score_table(result, device)


def smoothness_sweep(
    seeds: Sequence[int],
    weights: Sequence[float],
    *,
    n_subjects: int = 6,
    n_test: int = 6,
    channels: Sequence[int] = (8, 16),
    epochs: int = 60,
    lr: float = 5e-3,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """The joint model at every smoothness weight :math:`\\lambda` in ``weights``: its :func:`cine_scores` per seed."""
    if not seeds or not weights:
        raise ValueError(f"smoothness_sweep needs seeds and weights, got seeds={list(seeds)}, weights={list(weights)}")
    tables = []
    for weight in weights:
        result = _train(_runs(seeds, n_subjects, n_test, (JOINT,)), weight, channels, epochs, lr, device)
        tables.append(_score_table(result, device, smoothness=weight))
    return pd.concat(tables, ignore_index=True)

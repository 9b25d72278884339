r"""Bright and red lesions with one encoder, two decoders and a presence classifier (lecture B13).

Playout, Duval & Cheriet, "A multitask learning architecture for
simultaneous segmentation of bright and red lesions in fundus images",
MICCAI 2018, doi:10.1007/978-3-030-00934-2_37.

**The recipe** (:func:`playout_experiment`). Data from
:func:`~mtl_course.data.fundus.make_fundus` (:func:`splits`). Each *arm*
(:data:`ARMS`) names a network and a lesion loss:

* the network: :func:`~mtl_course.models.lesion_network.lesion_network`
  (one encoder, a decoder per lesion kind, with or without the presence
  classifier) or the sceptic's baseline
  :func:`~mtl_course.models.lesion_network.separate_lesion_networks`
  (a whole U-Net per lesion kind);
* the lesion loss (:data:`LESION_LOSSES`), the same for both lesion kinds:
  pixel cross-entropy on the logits (``CE``,
  :func:`~mtl_course.losses.binary_cross_entropy`), :math:`1 - \kappa` on the
  sigmoid probabilities (``kappa``, :func:`~mtl_course.losses.soft_kappa_loss`)
  or their sum (``CE+kappa``); the presence classifier always learns with
  cross-entropy.

The task losses are summed (weighting ``"equal"``) and every network trains
full batch with Adam for the same number of steps
(:func:`~mtl_course.experiments.engine.train_each`); the weights after the
last step are scored.

**The measurements** (:func:`lesion_scores`), on the test images, per lesion
kind, with the pixel threshold probability 1/2: sensitivity, false-positive
rate (:func:`~mtl_course.metrics.sensitivity`,
:func:`~mtl_course.metrics.false_positive_rate`), Dice
(:func:`~mtl_course.metrics.dice_scores`) and Cohen's kappa of the hard
prediction; per image, the area under the ROC curve of lesion detection
(:func:`~mtl_course.metrics.auc`), scored by the presence classifier's
logit where the network has one and by the largest pixel probability of
either lesion map otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from mtl_course.data.fundus import make_fundus
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.engine import ExperimentResult, Run, train_each
from mtl_course.experiments.labels import MTL, STL
from mtl_course.losses import binary_cross_entropy, soft_kappa_loss
from mtl_course.metrics import auc, dice_scores, false_positive_rate, sensitivity
from mtl_course.models.base import MultiTaskModel
from mtl_course.models.lesion_network import LESION_TASKS, PRESENCE_TASK, lesion_network, separate_lesion_networks
from mtl_course.train import Task

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def kappa_on_logits(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r""":func:`~mtl_course.losses.soft_kappa_loss` of the sigmoid probabilities :math:`\sigma(z)` of pixel logits."""
    return soft_kappa_loss(torch.sigmoid(logits), target, mask)


def ce_plus_kappa(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Cross-entropy plus :math:`1 - \kappa`, both on the same logits."""
    return binary_cross_entropy(logits, target, mask) + kappa_on_logits(logits, target, mask)


#: The lesion losses compared, by name.
LESION_LOSSES: dict[str, LossFn] = {"CE": binary_cross_entropy, "kappa": kappa_on_logits, "CE+kappa": ce_plus_kappa}


@dataclass(frozen=True)
class Arm:
    """One condition: a ``network`` (``"shared"`` or ``"separate"``), a lesion ``loss`` and the presence classifier."""

    name: str
    network: str
    loss: str
    presence: bool

    def __post_init__(self) -> None:
        if self.network not in ("shared", "separate"):
            raise ValueError(f"arm {self.name!r}: network must be 'shared' or 'separate', got {self.network!r}")
        if self.loss not in LESION_LOSSES:
            raise ValueError(f"arm {self.name!r}: unknown lesion loss {self.loss!r}; known: {list(LESION_LOSSES)}")
        if self.network == "separate" and self.presence:
            raise ValueError(
                f"arm {self.name!r}: the separate networks have no shared encoder for a presence classifier"
            )

    @property
    def tasks(self) -> list[str]:
        """The arm's task names: the lesion kinds, and ``presence`` if it has the classifier."""
        return [*LESION_TASKS, PRESENCE_TASK] if self.presence else list(LESION_TASKS)

    def build(self, channels: Sequence[int]) -> MultiTaskModel:
        """The arm's freshly initialised network."""
        if self.network == "separate":
            return separate_lesion_networks(channels)
        return lesion_network(channels, presence=self.presence)


#: The lecture's arms: the three losses on the paper's network, the network without the classifier, and STL.
ARMS: tuple[Arm, ...] = (
    Arm(f"{MTL} CE", "shared", "CE", True),
    Arm(f"{MTL} kappa", "shared", "kappa", True),
    Arm(f"{MTL} CE+kappa", "shared", "CE+kappa", True),
    Arm(f"{MTL} kappa, no presence", "shared", "kappa", False),
    Arm(f"{STL} kappa", "separate", "kappa", False),
)


def splits(seed: int, n_train: int = 24, n_test: int = 64, size: int = 24) -> tuple[MultiTaskData, MultiTaskData]:
    """``(train, test)`` fundus images of one seed (generator seeds ``2 * seed`` and ``2 * seed + 1``)."""
    return make_fundus(n_train, size=size, seed=2 * seed), make_fundus(n_test, size=size, seed=2 * seed + 1)


def _tasks(arm: Arm) -> list[Task]:
    lesion_loss = LESION_LOSSES[arm.loss]
    tasks = [Task(t, lesion_loss) for t in LESION_TASKS]
    return [*tasks, Task(PRESENCE_TASK, binary_cross_entropy)] if arm.presence else tasks


@torch.no_grad()
def lesion_scores(model: MultiTaskModel, test: MultiTaskData) -> dict[str, float]:
    """The measurements of the module docstring, as ``{"<lesion>_<measure>": value, "detection_auc": value}``."""
    missing = [t for t in (*LESION_TASKS, PRESENCE_TASK) if t not in test.targets]
    if missing:
        raise KeyError(f"the test data lack the target(s) {missing}; they have {list(test.targets)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {t: y.cpu() for t, y in model(torch.as_tensor(test.x).to(device)).items()}
    model.train(was_training)
    scores: dict[str, float] = {}
    for t in LESION_TASKS:
        logits, target = out[t], torch.as_tensor(test.targets[t])
        hard = (logits > 0).to(target.dtype)
        scores[f"{t}_sensitivity"] = sensitivity(logits, target)
        scores[f"{t}_fpr"] = false_positive_rate(logits, target)
        scores[f"{t}_dice"] = float(dice_scores(hard.long(), target.long(), [1])[0].nan_to_num(1.0))
        scores[f"{t}_kappa"] = 1 - float(soft_kappa_loss(hard.double(), target.double(), eps=0.0).nan_to_num(1.0))
    if PRESENCE_TASK in out:
        image_score = out[PRESENCE_TASK][:, 0]
    else:
        image_score = torch.stack([out[t].amax((1, 2, 3)) for t in LESION_TASKS]).amax(0)
    scores["detection_auc"] = auc(image_score, torch.as_tensor(test.targets[PRESENCE_TASK])[:, 0])
    return scores


def playout_experiment(
    seeds: Sequence[int],
    arms: Sequence[Arm] = ARMS,
    *,
    n_train: int = 24,
    n_test: int = 64,
    size: int = 24,
    channels: Sequence[int] = (4, 8),
    steps: int = 100,
    lr: float = 2e-2,
    device: torch.device | str | None = None,
) -> tuple[pd.DataFrame, list[ExperimentResult]]:
    """Train every arm on every seed (see the module docstring); one row of :func:`lesion_scores` per run.

    Returns ``(scores, results)``: the table has columns ``seed``,
    ``condition`` (the arm's name) and the measurements; ``results`` holds the
    engine's result of every run (its ``models[0]`` is the trained network).
    """
    if not seeds:
        raise ValueError("need at least one seed, got none")
    if not arms:
        raise ValueError("need at least one arm, got none")
    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps}")
    rows, results = [], []
    for seed in seeds:
        train, test = splits(seed, n_train, n_test, size)
        for arm in arms:
            keep = {t: train.targets[t] for t in arm.tasks}
            run = Run(
                arm.name, seed, train.with_targets(keep), None, test.with_targets({t: test.targets[t] for t in keep})
            )
            result = train_each(
                [run], lambda _run, arm=arm: arm.build(channels), _tasks(arm), epochs=steps, lr=lr,
                measure_every=steps, device=device,
            )  # fmt: skip
            rows.append({"seed": seed, "condition": arm.name, **lesion_scores(result.models[0], test)})
            results.append(result)
    return pd.DataFrame(rows), results

"""The recipe of lecture B13 (Playout, Duval & Cheriet, MICCAI 2018): arms, scores, one tiny run."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data.fundus import make_fundus
from mtl_course.experiments.playout import ARMS, Arm, lesion_scores, playout_experiment
from mtl_course.models.lesion_network import lesion_network, separate_lesion_networks


def test_the_arms_build_their_networks():
    names = [arm.name for arm in ARMS]
    assert len(set(names)) == len(names)
    for arm in ARMS:
        net = arm.build([4, 8])
        assert net.tasks == arm.tasks
    assert isinstance(Arm("x", "separate", "CE", False).build([4, 8]), type(separate_lesion_networks([4, 8])))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"network": "tree", "loss": "CE", "presence": True}, "network must be 'shared' or 'separate'"),
        ({"network": "shared", "loss": "dice", "presence": True}, "unknown lesion loss 'dice'"),
        ({"network": "separate", "loss": "CE", "presence": True}, "no shared encoder"),
    ],
)
def test_bad_arms_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Arm("bad", **kwargs)


def test_scores_of_an_oracle_network():
    """A network whose logits are the true masks (±10) scores sensitivity 1, FPR 0, Dice 1, kappa 1, AUC 1."""
    test = make_fundus(12, size=16, seed=4)

    class Oracle(torch.nn.Module):
        tasks = ["bright", "red"]

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return {t: self.w * (20 * test.targets[t] - 10) for t in self.tasks}

    scores = lesion_scores(Oracle(), test)
    for t in ("bright", "red"):
        assert scores[f"{t}_sensitivity"] == 1 and scores[f"{t}_fpr"] == 0
        assert scores[f"{t}_dice"] == 1 and scores[f"{t}_kappa"] == pytest.approx(1.0)
    assert scores["detection_auc"] == 1.0


def test_scores_need_every_target():
    test = make_fundus(4, size=16, seed=0)
    with pytest.raises(KeyError, match=r"lack the target\(s\) \['presence'\]"):
        lesion_scores(lesion_network([4, 8]), test.with_targets({t: test.targets[t] for t in ("bright", "red")}))


def test_a_tiny_experiment_gives_one_row_per_seed_and_arm():
    arms = [ARMS[1], ARMS[-1]]
    scores, results = playout_experiment([0], arms, n_train=8, n_test=12, size=16, steps=3, device="cpu")
    assert list(scores.condition) == [a.name for a in arms] and len(results) == 2
    assert all(math.isfinite(v) for v in scores.drop(columns=["condition"]).to_numpy().ravel())
    assert results[0].models[0].tasks == ["bright", "red", "presence"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"seeds": []}, "at least one seed"), ({"seeds": [0], "arms": []}, "at least one arm"),
     ({"seeds": [0], "steps": 0}, "steps must be a positive int")],
)  # fmt: skip
def test_bad_experiment_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        playout_experiment(**kwargs)

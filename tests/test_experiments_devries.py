"""Lecture B7's recipe (Devries, Biswaranjan & Taylor, CRV 2014) and the generator option it uses."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data import make_faces
from mtl_course.data.faces import EXPRESSIONS
from mtl_course.experiments import DEVRIES_TASKS, devries_model, run_devries

TINY = {"n_train": 24, "n_test": 16, "epochs": 2, "batch_size": 12, "device": "cpu"}


def test_expression_strength_scales_every_offset_from_neutral_linearly() -> None:
    # orthographic projection is affine in the 3-D points, so positions move linearly with the strength
    at = {s: make_faces(40, seed=5, expression_strength=s).targets["landmarks"][..., :2] for s in (0.0, 1.0, 2.5)}
    torch.testing.assert_close(at[2.5] - at[0.0], 2.5 * (at[1.0] - at[0.0]), atol=1e-5, rtol=0)
    neutral = make_faces(40, seed=5).targets["expression"] == EXPRESSIONS.index("neutral")
    for s in (0.0, 2.5):
        torch.testing.assert_close(at[s][neutral], at[1.0][neutral], atol=1e-6, rtol=0)
    moved = (at[2.5] - at[1.0])[~neutral].abs().amax(dim=(1, 2))
    assert bool((moved > 1e-3).all()), "every non-neutral face must change its landmarks with the strength"


def test_expression_strength_one_is_the_default_bit_for_bit() -> None:
    default, explicit = (
        make_faces(30, seed=3, non_face=0.2),
        make_faces(30, seed=3, non_face=0.2, expression_strength=1.0),
    )
    assert torch.equal(default.x, explicit.x)
    for task, target in default.targets.items():
        assert torch.equal(torch.nan_to_num(target, nan=-7.0), torch.nan_to_num(explicit.targets[task], nan=-7.0))


@pytest.mark.parametrize("bad", [-0.5, 3.5, math.nan])
def test_expression_strength_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="expression_strength must lie in"):
        make_faces(4, expression_strength=bad)


def test_run_devries_one_row_per_seed_label_count_and_lambda_with_the_labels_it_promises() -> None:
    result = run_devries((0, 1), labels=(4, 24), lambdas=(0.0, 2.0), **TINY)
    summary = result.summary
    assert len(summary) == 2 * 2 * 2
    assert sorted(set(summary["n_labels"])) == [4, 24] and sorted(set(summary["lambda_landmarks"])) == [0.0, 2.0]
    for run in result.runs:
        assert list(run.train.tasks) == list(DEVRIES_TASKS)
        labelled = int((run.train.targets["expression"] != -100).sum())
        assert labelled == run.info["n_labels"], "only the first n_e faces keep their expression"
        assert not torch.isnan(run.train.targets["landmarks"]).any(), "every training face keeps its landmarks"
    assert summary["test_expression"].between(0, 1).all()


def test_lambda_zero_is_the_expression_network_alone() -> None:
    # λ = 0: the landmark head gets no gradient, so Adam leaves it at its initial weights
    result = run_devries((3,), labels=(8,), lambdas=(0.0, 1.0), **TINY)
    torch.manual_seed(3)
    initial = devries_model().heads["landmarks"].state_dict()
    for run, model in zip(result.runs, result.models, strict=True):
        same = all(torch.equal(initial[k], v) for k, v in model.heads["landmarks"].state_dict().items())
        assert same == (run.info["lambda_landmarks"] == 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ()}, "labels must be numbers of expression labels"),
        ({"labels": (0,)}, "labels must be numbers of expression labels"),
        ({"labels": (25,)}, "n_train=24"),
        ({"lambdas": ()}, "lambdas must be weights >= 0"),
        ({"lambdas": (-1.0,)}, "lambdas must be weights >= 0"),
        ({"lambdas": (math.nan,)}, "lambdas must be weights >= 0"),
    ],
)
def test_run_devries_refuses_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_devries((0,), **{"labels": (4,), **kwargs, **TINY})

"""Y-Net's recipe: hiding labels, the two stages, the mask pipeline and the summary."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.biopsy import make_biopsy
from mtl_course.experiments.ynet import (
    CLASSIFIER,
    MASK,
    YNET,
    fit_fraction_classifier,
    hide,
    run_ynet,
    tissue_fractions,
    two_stage_runs,
)


def test_hide_marks_every_label_missing() -> None:
    data = make_biopsy(5, seed=0)
    hidden = hide(data, "segmentation")
    assert torch.all(hidden.targets["segmentation"] == -100)
    assert torch.equal(hidden.targets["diagnosis"], data.targets["diagnosis"])
    assert hidden.n_labelled()["segmentation"] == 0
    with pytest.raises(KeyError, match="no task 'depth' to hide"):
        hide(data, "depth")


def test_two_stage_runs_hide_the_right_task() -> None:
    data = make_biopsy(4, seed=0)
    first, joint, alone = two_stage_runs(data, data, seed=3)
    assert first.train.n_labelled() == {"segmentation": 4, "diagnosis": 0}
    assert joint.train.n_labelled() == {"segmentation": 4, "diagnosis": 4}
    assert alone.train.n_labelled() == {"segmentation": 0, "diagnosis": 4}
    assert (joint.condition, alone.condition, first.seed) == (YNET, CLASSIFIER, 3)


def test_tissue_fractions_equal_a_loop() -> None:
    logits = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    q = tissue_fractions(logits)
    for n in range(3):
        for k in range(4):
            count = sum(int(logits[n, :, i, j].argmax() == k) for i in range(5) for j in range(6))
            assert q[n, k].item() == pytest.approx(count / 30)
    assert torch.allclose(q.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match=r"\(N, K, H, W\), got shape \(3, 4\)"):
        tissue_fractions(torch.zeros(3, 4))


def test_fraction_classifier_separates_separable_data() -> None:
    features = torch.tensor([[0.0], [0.01], [0.1], [0.12], [0.3], [0.28]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    linear = fit_fraction_classifier(features * 10, labels, 3)
    assert torch.equal(linear(features * 10).argmax(1), labels)
    with pytest.raises(ValueError, match="NaN"):
        fit_fraction_classifier(torch.tensor([[float("nan")]]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="at least one labelled image"):
        fit_fraction_classifier(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"labels \(n,\)"):
        fit_fraction_classifier(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), 2)


def test_run_ynet_small(device: torch.device) -> None:
    result = run_ynet([0, 1], n_train=6, n_test=10, channels=(4, 8), stage_epochs=(2, 2), device=device)
    summary = result.summary
    assert sorted(summary.condition.unique()) == sorted([CLASSIFIER, YNET, MASK])
    assert len(summary) == 6 and summary.diagnosis.between(0, 1).all()
    assert summary[summary.condition == YNET].segmentation.between(0, 1).all()
    assert list(result.classifier.curves.epoch.unique())[-1] == 4  # as many epochs as both stages
    assert set(result.weights) == {0, 1}
    with pytest.raises(ValueError, match="at least one seed"):
        run_ynet([])
    with pytest.raises(ValueError, match="n_train >= 1"):
        run_ynet([0], n_train=0)


def test_stage_two_starts_from_stage_one(device: torch.device) -> None:
    result = run_ynet([0], n_train=4, n_test=4, channels=(4, 8), stage_epochs=(3, 1), device=device)
    curves = result.stage2.curves
    start = curves[(curves.epoch == 0) & (curves.task == "segmentation")].train.item()
    end_1 = result.stage1.curves
    end_1 = end_1[(end_1.epoch == 3) & (end_1.task == "segmentation")].train.item()
    assert start == pytest.approx(end_1, rel=1e-5)

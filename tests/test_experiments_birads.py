"""mtl_course.experiments.birads: BI-RADS descriptors as auxiliary tasks (lecture B12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data.breast_lesions import DESCRIPTORS, DIAGNOSIS, make_breast_lesions
from mtl_course.experiments.birads import (
    BIRADS_TASKS,
    BiradsSetting,
    birads_splits,
    birads_tasks,
    build_birads_network,
    descriptor_input_auc,
    diagnosis_logits,
    diagnosis_metrics,
    run_birads,
    without_descriptors,
)
from mtl_course.experiments.labels import MTL, STL
from mtl_course.metrics import auc, expected_calibration_error
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [BiradsSetting("hard", 1.0, 16, 2), BiradsSetting("easy", 0.0, 16, 2)]


@pytest.fixture(scope="module")
def result():
    return run_birads([0, 1], TINY, batch_size=8, n_test=40, size=16, channels=(4, 8), device="cpu")


def test_one_stl_and_one_mtl_run_per_setting_and_seed(result) -> None:
    summary = result.summary
    assert len(summary) == 8
    assert sorted(summary.condition.unique()) == sorted([STL, MTL])
    assert set(summary.setting) == {"hard", "easy"} and set(summary.n_train) == {16}
    assert summary[["auc", "ece", "bayes_auc"]].notna().all().all()
    assert ((summary.ece >= 0) & (summary.ece <= 1)).all()


def test_stl_runs_see_no_descriptor_label_and_mtl_runs_see_all(result) -> None:
    for run in result.runs:
        n = run.train.n_labelled()
        assert n[DIAGNOSIS] == 16
        for name in DESCRIPTORS:
            assert n[name] == (0 if run.condition == STL else 16)


def test_the_summary_metrics_are_the_metrics_of_the_kept_model(result) -> None:
    r = 3
    model, run = result.models[r], result.runs[r]
    z, y = diagnosis_logits(model, run.test), torch.as_tensor(run.test.targets[DIAGNOSIS])
    assert result.summary.auc[r] == pytest.approx(auc(z, y))
    assert result.summary.ece[r] == pytest.approx(expected_calibration_error(z, y))
    assert result.summary.bayes_auc[r] == pytest.approx(auc(torch.as_tensor(run.test.truth[DIAGNOSIS]), y))
    # the engine's test metric at the best epoch is the same AUC
    assert result.summary.test_malignancy[r] == pytest.approx(result.summary.auc[r])


def test_runs_of_one_seed_start_from_the_same_network() -> None:
    torch.manual_seed(0)
    a = build_birads_network((4, 8))
    torch.manual_seed(0)
    b = build_birads_network((4, 8))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert list(a(torch.zeros(3, 1, 16, 16))) == list(BIRADS_TASKS)


def test_splits_share_images_across_hardness_and_differ_across_sets() -> None:
    train_h, val_h, test_h = birads_splits(BiradsSetting("h", 1.0, 10, 1), 0, n_test=12, size=16)
    train_e, _, _ = birads_splits(BiradsSetting("e", 0.0, 10, 1), 0, n_test=12, size=16)
    assert torch.equal(train_h.x, train_e.x)
    assert (train_h.n, val_h.n, test_h.n) == (10, 10, 12)
    assert not torch.equal(train_h.x, val_h.x)


def test_without_descriptors_keeps_the_diagnosis_and_removes_the_rest() -> None:
    data = make_breast_lesions(6, size=16, seed=1)
    stl = without_descriptors(data)
    assert torch.equal(stl.targets[DIAGNOSIS], data.targets[DIAGNOSIS]) and torch.equal(stl.x, data.x)
    assert all(bool(torch.isnan(stl.targets[t]).all()) for t in DESCRIPTORS)


def test_descriptor_input_auc_reaches_the_rules_ceiling() -> None:
    train = make_breast_lesions(300, hardness=1.0, size=16, seed=1)
    test = make_breast_lesions(2000, hardness=1.0, size=16, seed=2)
    bayes = auc(test.truth[DIAGNOSIS], test.targets[DIAGNOSIS])
    assert descriptor_input_auc(train, test) == pytest.approx(bayes, abs=0.01)


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "fixed"])
def test_the_network_trains_with_every_weighting_method(method: str) -> None:
    """The sum of the six unweighted task losses on the training images falls (every method weights differently)."""
    data = make_breast_lesions(32, hardness=0.0, size=16, seed=0)
    x, targets = data.batch()
    torch.manual_seed(0)
    model = build_birads_network((4, 8))
    tasks = birads_tasks()

    def total() -> float:
        with torch.no_grad():
            out = model(x)
            return sum(float(t.loss(out[t.name], targets[t.name], None)) for t in tasks)

    before = total()
    fit(model, tasks, get_weighting(method, list(BIRADS_TASKS)), [(x, targets)], epochs=60, lr=1e-2, progress=False)
    after = total()
    assert math.isfinite(after) and after < 0.98 * before, f"{method}: summed loss {before:.3f} -> {after:.3f}"


def test_bad_input_names_what_was_wrong() -> None:
    data = make_breast_lesions(10, size=16, seed=0)
    with pytest.raises(ValueError, match="need at least 2 training images, got n_train=1"):
        birads_splits(BiradsSetting("x", 1.0, 1, 1), 0)
    with pytest.raises(ValueError, match="needs seeds and settings"):
        run_birads([], TINY)
    with pytest.raises(KeyError, match="needs the targets \\['margin'\\]"):
        descriptor_input_auc(data.with_targets({t: y for t, y in data.targets.items() if t != "margin"}), data)
    one_class = data.with_targets({**data.targets, DIAGNOSIS: torch.zeros(10)})
    with pytest.raises(ValueError, match="one class only"):
        descriptor_input_auc(one_class, data)
    nan_labels = data.with_targets({**data.targets, DIAGNOSIS: torch.full((10,), float("nan"))})
    with pytest.raises(ValueError, match="got none"):
        descriptor_input_auc(nan_labels, data)
    with pytest.raises(KeyError, match="needs a 'malignancy' target and truth"):
        diagnosis_metrics(build_birads_network((4, 8)), data.with_targets({"shape": data.targets["shape"]}))
    assert np.isfinite(diagnosis_metrics(build_birads_network((4, 8)), data)["auc"])

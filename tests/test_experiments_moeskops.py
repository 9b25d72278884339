"""mtl_course.experiments.moeskops: one network for three modalities against dedicated networks (lecture B2)."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.modalities import LABEL_SETS, MODALITIES, make_modalities, modality_index
from mtl_course.experiments.labels import MTL, STL
from mtl_course.experiments.moeskops import (
    build_union_network,
    evaluate_modalities,
    moeskops_experiment,
    one_modality,
    segment,
    splits,
)
from mtl_course.metrics import cross_modality_rate, dice_scores, modality_confusion

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def experiment():
    return moeskops_experiment([0, 1], 6, epochs=2, batch_size=6, width=4, size=16)


def test_tables_have_one_row_per_seed_condition_modality_and_class(experiment) -> None:
    n_classes = sum(len(v) for v in LABEL_SETS.values())
    assert len(experiment.dice) == 2 * 2 * n_classes
    assert set(experiment.dice.condition) == {MTL, STL}
    assert len(experiment.rates) == 2 * 2 * 3
    cost = experiment.cost
    assert list(cost[cost.seed == 0].modality) == ["all", *MODALITIES]
    assert cost.parameters.nunique() == 1  # the dedicated networks have the one network's size
    assert list(cost[cost.seed == 0].images) == [18, 6, 6, 6]
    assert (cost.cpu_s > 0).all() and len(experiment.results) == 8


def test_dedicated_networks_fill_one_row_each_of_their_confusion_matrix(experiment) -> None:
    for condition in (MTL, STL):
        matrix = experiment.confusion[condition, 1]
        assert matrix.shape == (3, 4) and not torch.isnan(matrix).any()
        torch.testing.assert_close(matrix.sum(1), torch.ones(3, dtype=torch.float64))


def test_evaluate_is_the_metrics_on_each_modalitys_test_images() -> None:
    torch.manual_seed(0)
    model = build_union_network(MODALITIES, width=4)
    test = make_modalities(3, size=16, seed=5)
    table, matrix = evaluate_modalities(model, test)
    predicted, which = segment(model, test.x), modality_index(test)
    cta = which == 2
    expected = dice_scores(predicted[cta], test.targets["cta"][cta], [8]).item()
    assert table[table.modality == "cta"].dice.item() == pytest.approx(expected, nan_ok=True)
    torch.testing.assert_close(matrix, modality_confusion(predicted, which, LABEL_SETS))
    assert cross_modality_rate(matrix).shape == (3,)


def test_one_modality_keeps_that_modalitys_images_and_task() -> None:
    data = make_modalities({"brain": 2, "breast": 3, "cta": 1}, size=16, seed=0)
    breast = one_modality(data, "breast")
    assert breast.tasks == ("breast",) and breast.n == 3
    assert bool((breast.targets["breast"] != -100).all())
    with pytest.raises(KeyError, match="unknown modality 'liver'"):
        one_modality(data, "liver")
    with pytest.raises(ValueError, match="no cta images"):
        one_modality(make_modalities({"brain": 1}, size=16), "cta")


def test_splits_share_no_image() -> None:
    train, val, test = splits(2, seed=0, n_val=2, n_test=2, size=16)
    assert not torch.equal(train.x, val.x) and not torch.equal(val.x, test.x)


def test_a_scarce_modality_and_a_dedicated_only_run() -> None:
    result = moeskops_experiment(
        [0],
        {"brain": 4, "breast": 4, "cta": 1},
        epochs=1,
        batch_size=4,
        width=4,
        size=16,
        joint=False,
        dedicated=["cta"],
        dedicated_epochs=3,
        dedicated_label="STL long",
    )
    assert list(result.cost.modality) == ["cta"] and list(result.cost.epochs) == [3]
    assert set(result.dice.condition) == {"STL long"} and list(result.cost.images) == [1]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="at least one seed"):
        moeskops_experiment([])
    with pytest.raises(KeyError, match=r"no modality \['liver'\]"):
        moeskops_experiment([0], dedicated=["liver"])
    with pytest.raises(ValueError, match="nothing to train"):
        moeskops_experiment([0], joint=False, dedicated=[])

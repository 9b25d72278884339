"""mtl_course.experiments.less_is_more: the joint network against separate networks per view and task (B11)."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.ultrasound_views import VIEWS, make_ultrasound_views
from mtl_course.experiments.less_is_more import (
    JOINT,
    SEPARATE,
    classification_only,
    less_is_more_experiment,
    measure_joint,
    one_view,
    splits,
)
from mtl_course.metrics import heatmap_soft_argmax, measurement_error

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def experiment():
    return less_is_more_experiment([0, 1], n_train=16, n_test=8, epochs=2, batch_size=8, size=16)


def test_one_row_per_seed_design_and_test_image_and_one_cost_row_per_network(experiment) -> None:
    assert len(experiment.images) == 2 * 2 * 8
    assert experiment.cost.groupby(["seed", "design"]).size().to_dict() == {
        (s, d): n for s in (0, 1) for d, n in ((JOINT, 1), (SEPARATE, 1 + len(VIEWS)))
    }
    params = experiment.cost.groupby(["seed", "design"])["parameters"].sum()
    assert params[0, SEPARATE] > 2.5 * params[0, JOINT]
    assert len(experiment.models[SEPARATE, 1]) == 1 + len(VIEWS)


def test_with_the_true_view_the_oracle_and_predicted_errors_agree(experiment) -> None:
    rows = experiment.images
    right = rows[rows.correct]
    assert (right.error_oracle == right.error_predicted).all()
    assert ((rows.view == rows.predicted) == rows.correct).all()


def test_measure_joint_is_the_metric_on_the_true_views_heat_maps() -> None:
    torch.manual_seed(0)
    from mtl_course.models import ViewLandmarkNet

    net = ViewLandmarkNet(4, 8, channels=(4, 4))
    test = make_ultrasound_views(6, size=16, seed=3)
    table = measure_joint(net, test)
    with torch.no_grad():
        points = heatmap_soft_argmax(net.eval()(test.x)["landmarks"])
    v = test.targets["view"]
    own = torch.stack([points[i, 2 * int(v[i]) : 2 * int(v[i]) + 2] for i in range(6)])
    expected = measurement_error(own * 16, test.info["points"])
    assert table.error_oracle.tolist() == pytest.approx(expected.tolist())


def test_one_view_and_classification_only_keep_one_task() -> None:
    data = make_ultrasound_views(12, size=16, seed=0)
    liver = one_view(data, "liver")
    assert liver.tasks == ("landmarks",) and liver.n == 3
    assert liver.targets["landmarks"].shape == (3, 2, 2) and not liver.targets["landmarks"].isnan().any()
    assert classification_only(data).tasks == ("view",)


def test_splits_share_no_image() -> None:
    train, test = splits(8, 0, n_test=8, size=16)
    assert not torch.equal(train.x, test.x)


def test_bad_arguments_are_named() -> None:
    data = make_ultrasound_views(4, size=16, seed=0, views=["liver"])
    with pytest.raises(KeyError, match="unknown view 'heart'"):
        one_view(data, "heart")
    with pytest.raises(ValueError, match="no spleen images"):
        one_view(data, "spleen")
    with pytest.raises(ValueError, match="at least one seed"):
        less_is_more_experiment([])
    with pytest.raises(ValueError, match="designs must be"):
        less_is_more_experiment([0], designs=["ensemble"])


def test_the_weighting_method_reaches_the_joint_network_only() -> None:
    kwargs = {"n_train": 16, "n_test": 8, "epochs": 2, "batch_size": 8, "size": 16}
    equal = less_is_more_experiment([0], designs=[JOINT], **kwargs)
    uncertainty = less_is_more_experiment([0], designs=[JOINT], weighting="uncertainty", **kwargs)
    assert not equal.images.error_oracle.equals(uncertainty.images.error_oracle)
    with pytest.raises((KeyError, ValueError), match="nonsense"):
        less_is_more_experiment([0], designs=[JOINT], weighting="nonsense", **kwargs)

"""mtl_course.data.ultrasound_views: ultrasound-like views with the two landmarks of each view's measurement (B11)."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data.ultrasound_views import LANDMARKS_PER_VIEW, VIEWS, fan_mask, make_ultrasound_views, view_rows


@pytest.fixture(scope="module")
def data():
    return make_ultrasound_views(40, size=32, seed=0)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (make_ultrasound_views(6, size=16, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x, b.x) and torch.equal(a.targets["view"], b.targets["view"])
    assert not torch.equal(a.x, c.x)


def test_views_are_balanced_and_each_image_has_only_its_own_views_landmarks(data) -> None:
    view, landmarks = data.targets["view"], data.targets["landmarks"]
    assert torch.bincount(view, minlength=len(VIEWS)).tolist() == [10] * len(VIEWS)
    labelled = ~landmarks.isnan().any(-1)  # (n, 2V)
    expected = torch.zeros_like(labelled)
    expected[torch.arange(len(view))[:, None], view_rows(view)] = True
    assert torch.equal(labelled, expected)
    assert landmarks.shape == (40, LANDMARKS_PER_VIEW * len(VIEWS), 2)


def test_landmarks_are_the_ends_of_the_measured_axis_left_first_and_inside_the_fan(data) -> None:
    points, size = data.info["points"], data.info["size"]
    lengths = (points[:, 0] - points[:, 1]).norm(dim=-1)
    torch.testing.assert_close(lengths, data.info["lengths"])
    assert bool((points[:, 0, 0] < points[:, 1, 0]).all())
    own = data.targets["landmarks"][torch.arange(data.n)[:, None], view_rows(data.targets["view"])]
    torch.testing.assert_close(own * size, points)
    fan = fan_mask(size)
    pixel = points.floor().long()
    assert bool(fan[pixel[..., 1], pixel[..., 0]].all())


def test_images_are_zero_outside_the_fan_and_speckled_inside(data) -> None:
    fan = fan_mask(32)
    assert bool((data.x[:, 0, ~fan] == 0).all())
    inside = data.x[:, 0, fan]
    assert inside.min() >= 0 and inside.std() > 0.1
    # the fan is a sector: narrow at the top, wide at the bottom, empty corners
    assert fan[6].sum() < fan[24].sum() and not fan[0, 0] and not fan[31, 31]


def test_the_views_differ_as_stated(data) -> None:
    lengths, view = data.info["lengths"], data.targets["view"]
    mean = {v: float(lengths[view == k].mean()) for k, v in enumerate(VIEWS)}
    assert mean["kidney_long"] > mean["kidney_trans"] and mean["liver"] > mean["spleen"]
    x = data.x[:, 0]
    centre = data.info["points"].mean(1).floor().long()
    centre_value = x[torch.arange(data.n), centre[:, 1], centre[:, 0]]
    assert centre_value[view <= 1].mean() > 0.5  # the bright kidney sinus at the centre


def test_a_subset_of_views_keeps_the_class_indices() -> None:
    d = make_ultrasound_views(6, size=16, seed=0, views=["liver"])
    assert set(d.targets["view"].tolist()) == {VIEWS.index("liver")}
    assert not d.targets["landmarks"][:, view_rows(2)].isnan().any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "at least one image"),
        ({"n": 4, "size": 4}, "at least 8 x 8"),
        ({"n": 4, "views": ["heart"]}, "non-empty subset"),
        ({"n": 4, "views": []}, "non-empty subset"),
        ({"n": 4, "attenuation": math.nan}, "attenuation"),
    ],
)
def test_bad_arguments_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_ultrasound_views(**kwargs)


def test_view_rows_refuses_an_unknown_view() -> None:
    with pytest.raises(ValueError, match=r"view indices must lie in \[0, 3\], got \[4\]"):
        view_rows(torch.tensor([4]))

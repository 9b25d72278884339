"""The simulated tabletop of lecture B6 (Pinto & Gupta, ICRA 2017, arXiv 1609.09025): geometry against brute force,
one label per interaction, prefixes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_course.data import make_tabletop
from mtl_course.data.tabletop import (
    inside_polygon,
    object_polygon,
    object_width,
    push_outcome,
    radius_of_gyration,
    ray_contact,
    render,
)


def _dense_boundary(polygon: np.ndarray, per_edge: int = 400) -> np.ndarray:
    t = np.linspace(0, 1, per_edge, endpoint=False)[:, None]
    ends = np.roll(polygon, -1, axis=0)
    return np.concatenate([a + t * (b - a) for a, b in zip(polygon, ends, strict=True)])


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_width_equals_the_extent_of_densely_sampled_boundary_points(kind: int) -> None:
    polygon = object_polygon(kind, np.array([0.3, -0.2]), 0.7, 1.1)
    angles = np.linspace(0, np.pi, 13)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    boundary = _dense_boundary(polygon) @ directions.T
    np.testing.assert_allclose(object_width(polygon, directions), boundary.max(0) - boundary.min(0), atol=1e-9)


def test_the_bar_is_ten_by_three_and_polygons_are_counter_clockwise() -> None:
    bar = object_polygon(0, np.zeros(2), math.pi / 2, 1.0)
    np.testing.assert_allclose(object_width(bar, np.eye(2)), [3.0, 10.0], atol=1e-12)
    for kind in range(3):
        p = object_polygon(kind, np.zeros(2), 0.3, 1.0)
        signed_area = 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
        assert signed_area > 0


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_ray_contact_matches_marching_along_the_ray(kind: int) -> None:
    polygon = object_polygon(kind, np.zeros(2), 0.4, 1.0)
    rng = np.random.default_rng(kind)
    steps = np.arange(0, 20, 1e-3)
    for _ in range(20):
        start = rng.uniform(-8, 8, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        hits = inside_polygon(start + steps[:, None] * direction, polygon)
        got = ray_contact(start, direction, polygon)
        if not hits.any():
            assert got is None or got > 19.99
        else:
            assert got == pytest.approx(steps[hits.argmax()], abs=2e-3)


def test_radius_of_gyration_closed_forms_and_a_monte_carlo_triangle() -> None:
    bar = object_polygon(0, np.array([2.0, 1.0]), 0.5, 1.0)  # a 10 x 3 rectangle: (a² + b²) / 12
    assert radius_of_gyration(bar) ** 2 == pytest.approx((10**2 + 3**2) / 12)
    triangle = object_polygon(2, np.zeros(2), 0.0, 1.0)
    rng = np.random.default_rng(0)
    points = rng.uniform(-4, 4, size=(400_000, 2))
    inside = points[inside_polygon(points, triangle)]
    assert radius_of_gyration(triangle) ** 2 == pytest.approx(((inside - inside.mean(0)) ** 2).sum(1).mean(), rel=1e-2)


def test_push_outcomes_a_centred_push_moves_an_off_centre_push_turns_a_miss_does_nothing() -> None:
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    right = np.array([1.0, 0.0])
    move, turn = push_outcome(square, np.zeros(2), np.zeros(2), right, reach=3.0)
    assert move > 0 and turn == pytest.approx(0.0, abs=1e-12)
    up, down = (push_outcome(square, np.zeros(2), np.array([0.0, y]), right, reach=3.0) for y in (0.8, -0.8))
    assert up[1] == pytest.approx(-down[1]) and up[1] != 0 and up[0] < move
    assert push_outcome(square, np.zeros(2), np.array([0.0, 5.0]), right, reach=3.0) == (0.0, 0.0)


def test_render_covers_the_polygon_area() -> None:
    bar = object_polygon(0, np.zeros(2), 0.3, 1.0)
    patch = render(bar, np.zeros(2), 24, supersample=4)
    assert patch.sum() == pytest.approx(30.0, rel=0.03)  # 10 x 3 pixels


def test_one_label_per_interaction_and_the_grasp_rule() -> None:
    data = make_tabletop(40, 30, seed=1)
    grasp, push = data.targets["grasp"], data.targets["push"]
    has_grasp = ~torch.isnan(grasp).all(1)
    has_push = ~torch.isnan(push).all(2).all(1)
    assert has_grasp.sum() == 40 and has_push.sum() == 30 and not (has_grasp & has_push).any()
    assert ((~torch.isnan(grasp)).sum(1)[has_grasp] == 1).all(), "a grasp interaction tries one angle"
    assert ((~torch.isnan(push).all(2)).sum(1)[has_push] == 1).all(), "a push interaction tries one direction"
    rows = np.flatnonzero(data.info["task"] == "grasp")
    tried = data.targets["grasp"][rows, data.info["action"][rows]]
    torch.testing.assert_close(tried, data.truth["grasp"][rows, data.info["action"][rows]])
    assert set(torch.unique(data.truth["grasp"]).tolist()) <= {0.0, 1.0}
    assert 0.2 < data.truth["grasp"].mean() < 0.6, "both outcomes must be common"


def test_a_smaller_budget_is_a_prefix_of_a_larger_one() -> None:
    small, large = make_tabletop(5, 2, seed=3), make_tabletop(9, 6, seed=3)
    torch.testing.assert_close(small.x[:5], large.x[:5], equal_nan=True)
    torch.testing.assert_close(small.x[5:], large.x[9:11])
    torch.testing.assert_close(small.targets["grasp"][:5], large.targets["grasp"][:5], equal_nan=True)
    assert not torch.equal(make_tabletop(5, 0, seed=4).x, small.x[:5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_grasp": 0, "n_push": 0}, "at least one interaction"),
        ({"n_grasp": -1, "n_push": 3}, "n_grasp must be an int >= 0, got -1"),
        ({"n_grasp": 2, "n_push": 2.5}, "n_push must be an int >= 0, got 2.5"),
        ({"n_grasp": 2, "n_push": 2, "size": 4}, "size must be an int >= 8, got 4"),
        ({"n_grasp": 2, "n_push": 2, "grasp_angles": 0}, "grasp_angles must be an int >= 1"),
        ({"n_grasp": 2, "n_push": 2, "noise": float("nan")}, "noise must be a finite number >= 0, got nan"),
        ({"n_grasp": 2, "n_push": 2, "opening": -1.0}, "opening must be a finite number > 0, got -1.0"),
    ],
)
def test_bad_input_names_what_was_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_tabletop(**kwargs)


def test_an_unknown_object_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="object kind must be 0, 1 or 2"):
        object_polygon(3, np.zeros(2), 0.0, 1.0)

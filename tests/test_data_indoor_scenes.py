"""The synthetic indoor scenes of lecture B1: exact geometry by construction, sensor holes, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.data.indoor_scenes import _CAMERA_HEIGHT, _FOCAL, CLASSES, FLOOR, WALL, depth_edges, make_indoor_scenes


@pytest.fixture(scope="module")
def scenes():
    return make_indoor_scenes(24, size=16, seed=3)


def test_shapes_types_and_classes(scenes) -> None:
    assert scenes.tasks == ("depth", "normals", "semantic")
    assert scenes.x.shape == (24, 3, 16, 16) and scenes.targets["semantic"].dtype == np.int64
    assert set(np.unique(scenes.targets["semantic"])) <= set(range(len(CLASSES)))


def test_the_normals_are_unit_vectors_facing_the_camera(scenes) -> None:
    n = scenes.truth["normals"]
    np.testing.assert_allclose((n**2).sum(1), 1.0, atol=1e-5)
    # a visible surface faces the camera: its normal points against the ray (x_u, y_v, 1)
    size = 16
    c = (np.arange(size) + 0.5) / size * 2 - 1
    xu, yv = np.meshgrid(c / _FOCAL, c / _FOCAL, indexing="xy")
    cos = n[:, 0] * xu + n[:, 1] * yv + n[:, 2]
    assert (cos < 1e-6).all()


def test_floor_depth_is_the_closed_form_of_the_ray_plane_intersection(scenes) -> None:
    """A floor pixel at image row v sees the plane y = h at depth h / y_v (brute force against the geometry)."""
    size = 16
    yv = ((np.arange(size) + 0.5) / size * 2 - 1) / _FOCAL
    floor = scenes.targets["semantic"] == FLOOR
    expected = np.broadcast_to(np.log(_CAMERA_HEIGHT / np.where(yv > 0, yv, np.nan))[None, :, None], floor.shape)
    np.testing.assert_allclose(scenes.truth["depth"][floor], expected[floor], rtol=1e-5)
    np.testing.assert_allclose(scenes.truth["normals"][:, 1][floor], -1.0)
    assert (scenes.targets["semantic"][:, : size // 2] != FLOOR).all()  # the floor is below the horizon
    assert (scenes.targets["semantic"] == WALL).any()


def test_holes_are_nan_in_depth_and_normals_together_and_truth_is_complete(scenes) -> None:
    holes = np.isnan(scenes.targets["depth"])
    assert 0 < holes.mean() < 0.3
    np.testing.assert_array_equal(np.isnan(scenes.targets["normals"]).any(1), holes)
    assert np.isfinite(scenes.truth["depth"]).all()
    np.testing.assert_array_equal(scenes.targets["depth"][~holes], scenes.truth["depth"][~holes])


def test_seeded() -> None:
    a, b = make_indoor_scenes(3, size=8, seed=5), make_indoor_scenes(3, size=8, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, make_indoor_scenes(3, size=8, seed=6).x)


def test_depth_edges_marks_jumps_not_creases() -> None:
    step = np.array([[[0.0, 0.0, 0.0, 0.5, 0.5]]])
    assert depth_edges(step).astype(int).tolist() == [[[0, 0, 1, 1, 0]]]
    crease = np.array([[[0.0, 0.2, 0.4, 0.5, 0.5]]])  # a slope meets a flat part: continuous
    assert not depth_edges(crease).any()
    assert depth_edges(step.transpose(0, 2, 1))[0, :, 0].astype(int).tolist() == [0, 0, 1, 1, 0]
    at_border = np.array([[[0.0, 0.0, 0.0, 0.0, 0.5]]])  # one step, no neighbour on its right: never counted
    assert not depth_edges(at_border).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n >= 1"),
        ({"n": 2, "size": 2}, "size >= 4"),
        ({"n": 2, "edge_drop": 2.0}, "edge_drop"),
        ({"n": 2, "noise": float("nan")}, "noise"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_indoor_scenes(**kwargs)

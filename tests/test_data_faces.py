"""The synthetic faces of lectures B4, B5 and B7: exact geometry, visibility that agrees with the pose, exact labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mtl_course.data import IGNORE_INDEX, make_faces
from mtl_course.data.faces import EXPRESSIONS, LANDMARKS, YAW_BINS, rotation_matrix, yaw_bin


def test_shapes_ranges_and_balanced_expressions() -> None:
    data = make_faces(40, size=32, seed=1)
    assert tuple(data.x.shape) == (40, 1, 32, 32)
    assert tuple(data.targets["landmarks"].shape) == (40, len(LANDMARKS), 3)
    assert data.targets["expression"].bincount().tolist() == [10] * len(EXPRESSIONS)
    assert (data.targets["face"] == 1).all()
    position = data.targets["landmarks"][..., :2]
    assert (position.abs() < 1).all(), "every landmark of a face lies inside the patch"
    degrees = torch.rad2deg(data.targets["pose"])
    assert (degrees.abs() <= torch.tensor([60.0, 20.0, 15.0]) + 1e-4).all()
    for task in ("gender", "glasses", "smile"):
        assert set(data.targets[task].tolist()) <= {0, 1}


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = make_faces(8, seed=3), make_faces(8, seed=3), make_faces(8, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.targets["landmarks"], b.targets["landmarks"])
    assert not torch.equal(a.x, c.x)


def test_rotation_matrix_matches_scipy() -> None:
    yaw, pitch, roll = torch.tensor([0.4, -1.0]), torch.tensor([0.2, 0.3]), torch.tensor([-0.1, 0.7])
    ours = rotation_matrix(yaw, pitch, roll)
    for i in range(2):
        # R = Rz(roll) Ry(yaw) Rx(pitch) is scipy's intrinsic "ZYX" sequence with the angles in that order
        want = Rotation.from_euler("ZYX", [roll[i].item(), yaw[i].item(), pitch[i].item()]).as_matrix()
        np.testing.assert_allclose(ours[i].numpy(), want, atol=1e-6)


def test_without_yaw_the_eye_line_is_tilted_by_the_roll() -> None:
    """Closed form: at yaw 0 the eyes differ only in x in 3-D; pitch keeps that, roll turns the line by -roll in
    the image (y points down)."""
    data = make_faces(30, max_yaw=0.0, seed=2)
    eyes = data.targets["landmarks"][:, :2, :2]
    dx, dy = (eyes[:, 1] - eyes[:, 0]).unbind(-1)
    torch.testing.assert_close(torch.atan2(-dy, dx), data.targets["pose"][:, 2], atol=1e-5, rtol=0)


def test_self_occlusion_hides_only_the_far_side_and_only_under_a_large_yaw() -> None:
    data = make_faces(400, occlusion=0.0, seed=5)
    yaw, v = data.targets["pose"][:, 0], data.targets["visibility"]
    hidden = v == 0
    assert hidden.any(), "a yaw up to 60 degrees must hide some far eyes or mouth corners"
    left, right = [0, 3], [1, 4]
    assert (yaw[hidden[:, left].any(1)] < 0).all(), "a left landmark hides only when the head turns right (yaw < 0)"
    assert (yaw[hidden[:, right].any(1)] > 0).all()
    assert (v[:, 2] == 1).all(), "the nose tip faces the camera at every yaw up to 60 degrees"
    small = make_faces(200, occlusion=0.0, max_yaw=30.0, seed=5)
    assert (small.targets["visibility"] == 1).all()


def test_occluders_hide_landmarks_and_cover_them_with_a_flat_patch() -> None:
    data = make_faces(200, occlusion=1.0, max_yaw=30.0, noise=0.0, seed=6)
    v = data.targets["visibility"]
    assert (v == 0).float().mean() > 0.2
    # a hidden landmark (no self-occlusion at |yaw| <= 30) sits under the flat rectangle: its pixel equals a neighbour's
    size = data.x.shape[-1]
    pixel = ((data.targets["landmarks"][..., :2] + 1) * size / 2).floor().long().clamp(1, size - 2)
    flat = 0
    hidden = (v == 0).nonzero().tolist()
    for i, k in hidden:
        x, y = pixel[i, k].tolist()
        patch = data.x[i, 0, y - 1 : y + 2, x - 1 : x + 2]
        flat += bool(patch.max() - patch.min() < 1e-6)
    assert flat >= 0.6 * len(hidden), f"only {flat} of {len(hidden)} hidden landmarks lie in a flat patch"


def test_visible_eyes_are_drawn_dark() -> None:
    data = make_faces(100, occlusion=0.0, max_yaw=30.0, noise=0.0, seed=7)
    size = data.x.shape[-1]
    pixel = ((data.targets["landmarks"][:, :2, :2] + 1) * size / 2).floor().long()
    eye = data.x[torch.arange(100)[:, None], 0, pixel[..., 1], pixel[..., 0]]
    nose_cheek = ((data.targets["landmarks"][:, 2, :2] + data.targets["landmarks"][:, 0, :2]) / 2 + 1) * size / 2
    cheek = data.x[torch.arange(100), 0, nose_cheek[:, 1].long() + 2, nose_cheek[:, 0].long()]
    assert (eye.mean(1) < cheek).float().mean() > 0.9


def test_labels_follow_the_definitions() -> None:
    data = make_faces(80, seed=8)
    t = data.targets
    assert torch.equal(t["smile"], (t["expression"] == EXPRESSIONS.index("happy")).long())
    assert torch.equal(t["visibility"], t["landmarks"][..., 2])
    assert torch.equal(t["pose_bin"], yaw_bin(torch.rad2deg(t["pose"][:, 0])))
    # happy mouth corners sit higher (smaller y) relative to the nose than sad ones, pose aside: rotate back
    rotation = rotation_matrix(*t["pose"].unbind(1))
    image = t["landmarks"][..., :2]
    frontal = torch.stack([image[..., 0], -image[..., 1]], -1) @ rotation[:, :2, :2]  # roll is the only mixing term
    corner_height = frontal[:, 3:, 1].mean(1) - frontal[:, 2, 1]
    happy, sad = t["expression"] == 1, t["expression"] == 3
    assert corner_height[happy].mean() > corner_height[sad].mean() + 0.05


def test_yaw_bin_matches_a_loop() -> None:
    yaw = torch.linspace(-60, 60, 97)
    expected = [sum(y >= b for b in YAW_BINS[1:-1]) for y in yaw.tolist()]
    assert yaw_bin(yaw).tolist() == expected


def test_non_faces_carry_only_the_detection_label() -> None:
    data = make_faces(200, non_face=0.5, seed=9)
    no = data.targets["face"] == 0
    assert 60 < int(no.sum()) < 140
    for task, y in data.targets.items():
        if task == "face":
            continue
        missing = torch.isnan(y) if y.is_floating_point() else y == IGNORE_INDEX
        missing = missing.reshape(len(y), -1)
        assert missing[no].all() and not missing[~no].any(), task
    assert data.n_labelled()["landmarks"] == int((~no).sum())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive int"),
        ({"n": 4, "size": 8}, "size must be an int >= 16"),
        ({"n": 4, "non_face": 1.5}, "non_face is a probability"),
        ({"n": 4, "occlusion": math.nan}, "occlusion is a probability"),
        ({"n": 4, "max_yaw": 90.0}, "max_yaw must lie in"),
        ({"n": 4, "noise": -1.0}, "noise must be >= 0"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_faces(**kwargs)

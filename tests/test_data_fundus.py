"""The synthetic fundus images of lecture B13 (Playout, Duval & Cheriet, MICCAI 2018)."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.fundus import LESIONS, PRESENCE, lesion_fraction, make_fundus


@pytest.fixture(scope="module")
def data():
    return make_fundus(60, size=24, seed=3)


def test_shapes_dtypes_and_binary_targets(data):
    assert data.tasks == (*LESIONS, PRESENCE)
    assert tuple(data.x.shape) == (60, 3, 24, 24)
    for t in LESIONS:
        y = data.targets[t]
        assert tuple(y.shape) == (60, 1, 24, 24) and y.dtype == torch.float32
        assert bool(((y == 0) | (y == 1)).all())
    assert tuple(data.targets[PRESENCE].shape) == (60, 1)


def test_lesions_are_rare_and_presence_says_whether_an_image_has_any(data):
    fractions = lesion_fraction(data)
    assert all(0 < f < 0.01 for f in fractions.values()), fractions
    any_lesion = (data.targets["bright"] + data.targets["red"]).flatten(1).amax(1)
    assert torch.equal(data.targets[PRESENCE][:, 0], any_lesion)
    assert 0.2 < data.targets[PRESENCE].mean().item() < 0.95  # both kinds of image occur


def test_lesions_lie_in_the_field_of_view_and_off_the_optic_disc(data):
    field, disc = data.info["field_of_view"], data.info["optic_disc"]
    for t in LESIONS:
        y = data.targets[t][:, 0]
        assert (y * (1 - field)).sum() == 0
        assert (y * disc).sum() == 0


def test_colours_separate_bright_from_red_lesions(data):
    """Bright lesions are brighter in green than the background, red lesions darker in red."""
    green, red = data.x[:, 1], data.x[:, 0]
    field = data.info["field_of_view"].bool().expand_as(green)
    background = field & (data.targets["bright"][:, 0] == 0) & (data.targets["red"][:, 0] == 0)
    assert green[data.targets["bright"][:, 0] > 0].mean() > green[background].mean() + 0.3
    assert red[data.targets["red"][:, 0] > 0].mean() < red[background].mean() - 0.3


def test_same_seed_same_images_other_seed_other_images():
    a, b, c = make_fundus(4, size=16, seed=1), make_fundus(4, size=16, seed=1), make_fundus(4, size=16, seed=2)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)


def test_without_lesions_every_target_is_zero():
    data = make_fundus(5, size=16, p_lesion=0.0, seed=0)
    assert all(float(torch.as_tensor(y).sum()) == 0 for y in data.targets.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive int"),
        ({"n": 2, "size": 8}, "size must be an int >= 16"),
        ({"n": 2, "p_lesion": 1.5}, r"p_lesion is a probability"),
        ({"n": 2, "max_lesions": 0}, "max_lesions must be a positive int"),
        ({"n": 2, "radius": (2.0, 1.0)}, "radius range"),
        ({"n": 2, "noise": float("nan")}, "noise must be a finite sd"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_fundus(**kwargs)


def test_lesion_fraction_names_a_missing_lesion_target(data):
    with pytest.raises(KeyError, match=r"missing \['red'\]"):
        lesion_fraction(data.with_targets({"bright": data.targets["bright"]}))

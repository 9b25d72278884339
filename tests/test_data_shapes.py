"""mtl_course.data.shapes: the toy segmentation + classification images."""

from __future__ import annotations

import math

import pytest
import torch
from _data_digest import digest

from mtl_course.data.shapes import make_shapes


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = make_shapes(16, seed=3), make_shapes(16, seed=3), make_shapes(16, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.targets["segmentation"], b.targets["segmentation"])
    assert not torch.equal(a.x, c.x)


def test_the_numbers_are_bit_identical_to_the_generator_before_the_common_container() -> None:
    """A digest of what make_shapes made when it returned ShapesData (commit f1f8bec)."""
    data = make_shapes(50, seed=3)
    assert data.tasks == ("segmentation", "diagnosis") and data.n == 50
    targets = data.targets
    assert digest(data.x, targets["segmentation"], targets["diagnosis"], data.info["shape"]) == "bd2afc5d86755881"


def test_masks_are_discs_and_squares_of_similar_area() -> None:
    data = make_shapes(400, size=24, radius=(4.0, 8.0), seed=0)
    masks, shape = data.targets["segmentation"], data.info["shape"]
    area = masks.sum((1, 2)).float()
    disc, square = area[shape == 0], area[shape == 1]
    # same radius distribution and equal-area construction: mean areas agree within 10 %
    assert abs(disc.mean() / square.mean() - 1) < 0.1

    # a disc fills about pi/4 of its bounding box; a square fills all of it
    def fill(mask: torch.Tensor) -> float:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        return float(mask.sum() / box)

    disc_fill = sum(fill(m) for m in masks[shape == 0]) / int((shape == 0).sum())
    square_fill = sum(fill(m) for m in masks[shape == 1]) / int((shape == 1).sum())
    assert abs(disc_fill - math.pi / 4) < 0.08 and square_fill > 0.95


def test_image_is_mask_plus_noise_of_the_given_scale() -> None:
    data = make_shapes(200, noise=0.5, seed=1)
    residual = data.x.squeeze(1) - data.targets["segmentation"].float()
    assert abs(float(residual.std()) - 0.5) < 0.02
    assert abs(float(residual.mean())) < 0.02


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="radius"):
        make_shapes(4, size=12, radius=(2.0, 7.0))
    with pytest.raises(ValueError, match="n=0"):
        make_shapes(0)


def test_diagnosis_is_the_area_threshold_and_roughly_balanced() -> None:
    data = make_shapes(1000, seed=2)
    area = data.targets["segmentation"].sum((1, 2))
    diagnosis = data.targets["diagnosis"]
    assert torch.equal(diagnosis, (area > 42).long())
    assert 0.35 < float(diagnosis.float().mean()) < 0.65

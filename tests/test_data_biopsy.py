"""The synthetic biopsy generator: shapes, the diagnosis as a function of the tissue map, textures, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data.biopsy import ATYPICAL, ATYPICAL_DISCS, make_biopsy, tissue_textures


def test_shapes_labels_and_determinism() -> None:
    data = make_biopsy(30, size=16, seed=4)
    assert tuple(data.x.shape) == (30, 1, 16, 16)
    assert tuple(data.targets["segmentation"].shape) == (30, 16, 16)
    assert set(data.targets["segmentation"].unique().tolist()) <= {0, 1, 2}
    assert set(data.targets["diagnosis"].tolist()) == {0, 1, 2}
    again = make_biopsy(30, size=16, seed=4)
    assert torch.equal(data.x, again.x) and torch.equal(data.targets["diagnosis"], again.targets["diagnosis"])
    assert not torch.equal(data.x, make_biopsy(30, size=16, seed=5).x)


def test_the_diagnosis_follows_the_atypical_tissue() -> None:
    data = make_biopsy(300, seed=0)
    fraction, diagnosis = data.info["atypical_fraction"], data.targets["diagnosis"]
    seg = data.targets["segmentation"]
    assert torch.allclose(fraction, (seg == ATYPICAL).float().mean(dim=(1, 2)))
    assert torch.all(fraction[diagnosis == 0] == 0)
    assert torch.all(fraction[diagnosis > 0] > 0)
    # malignant images hold three discs, atypia one: more atypical tissue on average
    assert fraction[diagnosis == 2].mean() > 2 * fraction[diagnosis == 1].mean()
    assert ATYPICAL_DISCS[2][0] > ATYPICAL_DISCS[1][0] > ATYPICAL_DISCS[0][0] == 0


def test_textures_have_equal_mean_and_contrast() -> None:
    """Only the texture separates the tissues: mean 0 and root-mean-square 1/sqrt(2) for each (period 4)."""
    textures = tissue_textures(16, 2 * math.pi * torch.rand(3, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(textures.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(textures.pow(2).mean(dim=(1, 2)).sqrt(), torch.full((3,), 2**-0.5), atol=1e-5)


def test_noise_free_images_are_the_textures_of_the_map() -> None:
    data = make_biopsy(5, noise=0.0, seed=2)
    for i in range(5):
        values = data.x[i, 0]
        assert values.abs().max() <= math.sqrt(2) + 1e-5


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        make_biopsy(0)
    with pytest.raises(ValueError, match="size >= 12"):
        make_biopsy(3, size=8)
    with pytest.raises(ValueError, match="noise must be a finite"):
        make_biopsy(3, noise=float("nan"))
    with pytest.raises(ValueError, match=r"one phase per tissue, shape \(3,\), got \(2,\)"):
        tissue_textures(8, torch.zeros(2))

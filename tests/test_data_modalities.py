"""mtl_course.data.modalities: three synthetic modalities in one union label space (lecture B2)."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data import IGNORE_INDEX
from mtl_course.data.modalities import (
    CLASS_NAMES,
    LABEL_SETS,
    MODALITIES,
    N_CLASSES,
    make_modalities,
    modality_index,
)


@pytest.fixture(scope="module")
def data():
    return make_modalities(12, size=24, seed=0)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (make_modalities(3, size=16, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[m], b.targets[m]) for m in MODALITIES)
    assert not torch.equal(a.x, c.x)


def test_label_sets_are_disjoint_and_cover_the_union_with_one_shared_background() -> None:
    labels = [c for m in MODALITIES for c in LABEL_SETS[m]]
    assert len(labels) == len(set(labels)) and sorted(labels) == list(range(1, N_CLASSES))
    assert CLASS_NAMES[0] == "background" and len(LABEL_SETS["brain"]) == 6


def test_each_image_is_labelled_for_its_own_modality_only_and_with_its_own_labels(data) -> None:
    which = modality_index(data)
    assert torch.bincount(which, minlength=3).tolist() == [12, 12, 12]
    for k, m in enumerate(MODALITIES):
        target = data.targets[m]
        assert bool((target[which != k] == IGNORE_INDEX).all())
        present = set(target[which == k].unique().tolist())
        assert present == {0, *LABEL_SETS[m]}, f"{m}: labels {present}"
        # every image of the modality shows every one of its structures
        for c in LABEL_SETS[m]:
            assert bool((target[which == k] == c).flatten(1).any(1).all()), f"{m}: an image lacks {CLASS_NAMES[c]}"


def test_modalities_have_their_own_intensity_statistics(data) -> None:
    which = modality_index(data)
    x = data.x.squeeze(1)
    brain, breast, cta = (data.targets[m] for m in MODALITIES)
    white, ventricles = x[brain == 3], x[brain == 5]
    assert white.mean() > 0.7 and ventricles.mean() < 0.2  # T1-like: white matter bright, CSF dark
    muscle, breast_tissue = x[breast == 7], x[(breast == 0) & (which == 1)[:, None, None]]
    assert muscle.mean() < 0.4 < float(x[which == 1].max())
    arteries = x[cta == 8]
    assert arteries.mean() > 0.8  # contrast-filled lumen
    # the CTA noise is the strongest: sd of the artery pixels around their mean
    assert arteries.std() > white.std()
    assert breast_tissue.numel() > 0


def test_the_aorta_is_bright_but_not_labelled(data) -> None:
    which = modality_index(data)
    x, target = data.x.squeeze(1)[which == 2], data.targets["cta"][which == 2]
    bright_background = (x > 0.8) & (target == 0)
    assert bright_background.flatten(1).sum(1).min() >= 10  # every CTA image has an unlabelled bright aorta


def test_the_arteries_are_thin(data) -> None:
    """A vessel pixel has few vessel neighbours: the tree is one to two pixels wide."""
    which = modality_index(data)
    artery = (data.targets["cta"][which == 2] == 8).float().unsqueeze(1)
    neighbours = torch.nn.functional.conv2d(artery, torch.ones(1, 1, 3, 3), padding=1) - artery
    assert float(neighbours[artery > 0].mean()) < 4.5


def test_counts_per_modality_and_a_modality_left_out() -> None:
    data = make_modalities({"brain": 2, "cta": 3}, size=16, seed=0)
    assert data.n == 5 and data.n_labelled() == {"brain": 2, "breast": 0, "cta": 3}
    assert torch.bincount(modality_index(data), minlength=3).tolist() == [2, 0, 3]


def test_the_modality_survives_take(data) -> None:
    rows = [5, 0, 17]
    assert torch.equal(modality_index(data.take(rows)), modality_index(data)[rows])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(KeyError, match=r"unknown modality \['liver'\]"):
        make_modalities({"liver": 3})
    with pytest.raises(ValueError, match="number of brain images must be an int >= 0, got -1"):
        make_modalities({"brain": -1})
    with pytest.raises(ValueError, match="at least one image"):
        make_modalities(0)
    with pytest.raises(ValueError, match="at least 16 x 16"):
        make_modalities(2, size=8)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0, got nan"):
        make_modalities(2, noise=float("nan"))


def test_modality_index_rejects_images_labelled_for_no_or_two_modalities(data) -> None:
    brain, breast = data.targets["brain"], data.targets["breast"]
    twice = {**data.targets, "breast": torch.where(brain != IGNORE_INDEX, brain, breast)}
    with pytest.raises(ValueError, match=r"image \d+ is labelled for 2 modalities; each image needs exactly one"):
        modality_index(data.with_targets(twice))
    never = {**data.targets, "breast": torch.full_like(breast, IGNORE_INDEX)}
    with pytest.raises(ValueError, match=r"image \d+ is labelled for 0 modalities"):
        modality_index(data.with_targets(never))

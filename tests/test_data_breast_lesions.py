"""mtl_course.data.breast_lesions: descriptors first, malignancy from a known rule, images from them (B12)."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data.breast_lesions import (
    DESCRIPTORS,
    DIAGNOSIS,
    VOTE_WEIGHTS,
    make_breast_lesions,
    malignancy_probability,
    render_lesions,
    rule_weights,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("hardness", [0.0, 0.3, 1.0])
def test_rule_weights_are_a_convex_mix_of_the_salient_descriptor_and_the_vote(hardness: float) -> None:
    w = rule_weights(hardness)
    expected = [hardness * v for v in VOTE_WEIGHTS]
    expected[DESCRIPTORS.index("echo")] += 1 - hardness
    assert w.tolist() == pytest.approx(expected)
    assert float(w.sum()) == pytest.approx(1.0) and bool((w >= 0).all())


def test_malignancy_probability_against_a_loop_over_the_formula() -> None:
    d = (torch.rand(40, 5, generator=torch.Generator().manual_seed(1)) < 0.5).long()
    hardness, sharpness = 0.6, 5.0
    got = malignancy_probability(d, hardness, sharpness)
    w = rule_weights(hardness).tolist()
    for i in range(40):
        score = sum(w[k] * int(d[i, k]) for k in range(5))
        assert float(got[i]) == pytest.approx(1 / (1 + math.exp(-sharpness * (score - 0.5))), rel=1e-12)


def test_the_labels_follow_the_rule_and_the_descriptors_are_the_targets() -> None:
    data = make_breast_lesions(4000, hardness=1.0, sharpness=8.0, size=16, seed=3)
    p, y = data.truth[DIAGNOSIS], data.targets[DIAGNOSIS]
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    # the label frequency matches the rule's probability within sampling error, in two halves of p
    for low, high in [(0.0, 0.5), (0.5, 1.0)]:
        inside = (p >= low) & (p < high)
        se = math.sqrt(0.25 / int(inside.sum()))
        assert abs(float(y[inside].mean() - p[inside].mean())) < 4 * se
    for k, name in enumerate(DESCRIPTORS):
        assert torch.equal(data.targets[name], data.info["descriptors"][:, k].float())
        assert abs(float(data.targets[name].mean()) - 0.5) < 0.05


def test_the_hardness_changes_only_the_labels_not_the_images() -> None:
    easy, hard = make_breast_lesions(20, hardness=0.0, seed=7), make_breast_lesions(20, hardness=1.0, seed=7)
    assert torch.equal(easy.x, hard.x)
    assert torch.equal(easy.info["descriptors"], hard.info["descriptors"])
    assert not torch.equal(easy.truth[DIAGNOSIS], hard.truth[DIAGNOSIS])


def test_the_descriptors_are_visible_in_the_images() -> None:
    """Posterior shadowing darkens the rows below the lesion; orientation changes its aspect; echo adds bright blobs."""
    n, size = 200, 32
    d = (torch.rand(n, 5, generator=torch.Generator().manual_seed(0)) < 0.5).long()
    x = render_lesions(d, size=size, speckle=0.0, generator=torch.Generator().manual_seed(1))[:, 0]
    posterior, echo, orientation = d[:, 4] == 1, d[:, 3] == 1, d[:, 1] == 1
    below = x[:, 26:, 12:20].mean((1, 2))
    assert float(below[~posterior].mean() - below[posterior].mean()) > 0.05
    dark = x < 0.3
    height = dark.any(2).sum(1).float()
    width = dark.any(1).sum(1).float()
    assert float((height - width)[orientation].mean()) > 2 > float((height - width)[~orientation].mean())
    centre = x[:, 12:16, 14:18].mean((1, 2))
    assert float(centre[echo].mean() - centre[~echo].mean()) > 0.1


def test_make_breast_lesions_is_reproducible_and_shaped() -> None:
    a, b = make_breast_lesions(5, size=20, seed=4), make_breast_lesions(5, size=20, seed=4)
    assert torch.equal(a.x, b.x) and tuple(a.x.shape) == (5, 1, 20, 20)
    assert a.tasks == (DIAGNOSIS, *DESCRIPTORS)
    assert not torch.equal(a.x, make_breast_lesions(5, size=20, seed=5).x)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rule_weights(1.5), "hardness must be a number in \\[0, 1\\]"),
        (lambda: rule_weights(float("nan")), "hardness must be a number"),
        (lambda: malignancy_probability(torch.zeros(3, 4), 0.5, 8.0), "shape \\(n, 5\\).*got \\(3, 4\\)"),
        (lambda: malignancy_probability(torch.full((2, 5), 2), 0.5, 8.0), "must be 0 .* or 1"),
        (lambda: malignancy_probability(torch.zeros(2, 5), 0.5, float("nan")), "sharpness .* got nan"),
        (lambda: render_lesions(torch.zeros(2, 3)), "shape \\(n, 5\\), got \\(2, 3\\)"),
        (lambda: render_lesions(torch.zeros(2, 5), size=8), "size >= 16"),
        (lambda: make_breast_lesions(0), "need n >= 1"),
    ],
)
def test_bad_input_names_what_was_wrong(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()

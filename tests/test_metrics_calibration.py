"""mtl_course.metrics: the AUC against scikit-learn, the ECE and reliability bins against brute force (lecture B12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mtl_course.metrics import auc, expected_calibration_error, reliability_bins


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_scikit_learn_with_and_without_ties(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(300, generator=g) < 0.35).long()
    for scores in (torch.randn(300, generator=g) + labels, torch.randint(0, 4, (300,), generator=g).double()):
        assert auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)


def _brute_force(p: np.ndarray, y: np.ndarray, bins: int) -> tuple[list[float], list[float], list[int], float]:
    conf, freq, count, ece = [], [], [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(len(p)) if (lo < p[i] <= hi) or (b == 0 and p[i] == 0.0)]
        count.append(len(members))
        if members:
            conf.append(sum(p[i] for i in members) / len(members))
            freq.append(sum(y[i] for i in members) / len(members))
            ece += len(members) / len(p) * abs(freq[-1] - conf[-1])
        else:
            conf.append(float("nan"))
            freq.append(float("nan"))
    return conf, freq, count, ece


@pytest.mark.parametrize(("seed", "bins"), [(0, 10), (1, 5), (2, 15)])
def test_reliability_bins_and_ece_against_a_brute_force_loop(seed: int, bins: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(400, generator=g, dtype=torch.float64)
    y = (torch.rand(400, generator=g, dtype=torch.float64) < torch.sigmoid(0.7 * logits)).double()
    conf, freq, count, ece = _brute_force(torch.sigmoid(logits).numpy(), y.numpy(), bins)
    got_conf, got_freq, got_count = reliability_bins(logits, y, bins=bins)
    np.testing.assert_allclose(got_conf.numpy(), conf, rtol=1e-12)
    np.testing.assert_allclose(got_freq.numpy(), freq, rtol=1e-12)
    assert got_count.tolist() == count
    assert expected_calibration_error(logits, y, bins=bins) == pytest.approx(ece, rel=1e-12)


def test_ece_is_zero_when_every_bin_matches_and_ignores_missing_labels() -> None:
    logits = torch.logit(torch.tensor([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75], dtype=torch.float64))
    y = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    assert expected_calibration_error(logits, y) == pytest.approx(0.0, abs=1e-12)
    y_missing = torch.cat([y, torch.tensor([float("nan")])])
    logits_more = torch.cat([logits, torch.tensor([5.0], dtype=torch.float64)])
    assert expected_calibration_error(logits_more, y_missing) == pytest.approx(0.0, abs=1e-12)


def test_a_monotone_rescaling_keeps_the_auc_and_changes_the_ece() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(500, generator=g, dtype=torch.float64)
    y = (torch.rand(500, generator=g, dtype=torch.float64) < torch.sigmoid(logits)).double()
    assert auc(3 * logits, y) == pytest.approx(auc(logits, y))
    assert expected_calibration_error(3 * logits, y) > expected_calibration_error(logits, y) + 0.05


@pytest.mark.parametrize(
    ("logits", "target", "kwargs", "message"),
    [
        (torch.zeros(3), torch.zeros(4), {}, "one logit per label: logits \\(3,\\), target \\(4,\\)"),
        (torch.zeros(2), torch.full((2,), float("nan")), {}, "at least one labelled item, got none"),
        (torch.tensor([float("nan"), 0.0]), torch.tensor([1.0, 0.0]), {}, "contain NaN"),
        (torch.zeros(2), torch.zeros(2), {"bins": 0}, "bins must be a positive int, got 0"),
    ],
)
def test_bad_input_names_what_was_wrong(logits, target, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(logits, target, **kwargs)

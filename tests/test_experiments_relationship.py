"""The B10 recipe: STL, MRN and a wrong fixed prior on tasks of known correlation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.experiments import (
    ALIKE,
    MRN,
    MRN_FULL,
    STL,
    alike_covariance,
    map_penalty,
    per_task_table,
    run_relationship,
    structure_recovery,
)
from mtl_course.experiments.relationship import build_model


@pytest.fixture(scope="module")
def result():
    return run_relationship([0], epochs=150, device="cpu")


def test_one_row_per_condition_with_recovery_and_records(result) -> None:
    assert list(result.summary.condition) == [STL, MRN, ALIKE]
    assert len(result.records[1]) == 151
    stl, mrn, alike = result.records[0][-1], result.records[1][-1], result.records[2][-1]
    assert np.array_equal(stl, np.eye(6)) and np.array_equal(alike, alike_covariance(6).numpy())
    assert np.trace(mrn) == pytest.approx(6.0, rel=1e-5)
    assert result.summary.recovery[1] > 0.5  # the learned correlation follows the true one
    table = per_task_table(result)
    assert len(table) == 18 and set(table.task) == set("ABCDEF")


def test_the_starved_task_gains_and_the_wrong_prior_hurts_the_anticorrelated_pair(result) -> None:
    row = result.summary.set_index("condition")
    assert row.loc[MRN, "test_C"] < 0.8 * row.loc[STL, "test_C"]
    assert row.loc[ALIKE, "test_D"] > row.loc[STL, "test_D"] and row.loc[ALIKE, "test_E"] > row.loc[STL, "test_E"]


def test_build_model_conditions_differ_only_in_the_task_covariance() -> None:
    models = {c: build_model(c, 5, list("abc")) for c in (STL, MRN, ALIKE)}
    assert models[STL].update_every == 0 and models[ALIKE].update_every == 0 and models[MRN].update == ("task",)
    assert torch.equal(models[ALIKE].task_covariance, alike_covariance(3))
    full = build_model(MRN_FULL, 5, list("abc"))
    assert full.update == ("feature", "class", "task") and full.update_every == 1
    with pytest.raises(ValueError, match="unknown condition 'x'"):
        build_model("x", 5, list("abc"))


def test_map_penalty_matches_the_posterior_scaling() -> None:
    """lam * q/2 equals (sigma^2 d / n) q, the prior term of the negative log-posterior divided by n / (2 sigma^2)."""
    noise, d, n = 0.5, 20, 60
    q = 3.7
    posterior_prior_term = 0.5 * d * q  # prior precision d times the model's
    assert map_penalty(noise, d, n) * 0.5 * q == pytest.approx(posterior_prior_term / (n / (2 * noise**2)))
    with pytest.raises(ValueError, match="noise > 0"):
        map_penalty(0.0, d, n)


def test_structure_recovery_and_alike_covariance_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="two square matrices"):
        structure_recovery(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="at least 3 tasks"):
        structure_recovery(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="positive definite for rho"):
        alike_covariance(3, -0.6)


def test_more_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one seed"):
        run_relationship([])
    with pytest.raises(ValueError, match="at least 2 tasks"):
        alike_covariance(1)
    with pytest.raises(ValueError, match="NaN"):
        structure_recovery(np.full((3, 3), np.nan), np.eye(3))

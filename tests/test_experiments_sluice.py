"""Tests of :mod:`mtl_course.experiments.sluice`: the NumPy reading of the official code and the ablation.

The official DyNet code reshapes in column-major order; every expectation
below is derived by hand from that rule (an element ``(i, j)`` of an
``(R, C)`` matrix sits at flat position ``i + R * j``), independently of
NumPy's ``order="F"``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_experiments_cross_stitch import starved_pair

from mtl_course.experiments.cross_stitch import find_run, trace
from mtl_course.experiments.sluice import (
    ABLATION_ARMS,
    AblationArm,
    column_major_reshape,
    official_alpha_init,
    official_beta_init,
    official_cross_stitch,
    official_layer_stitch,
    official_orthogonality,
    official_subspace_blocks,
    run_ablation,
    sluice_snapshot,
    subspace_overlaps,
)
from mtl_course.models import SingleTask, SluiceNetwork
from mtl_course.models.sluice import sluice_alpha_init

RNG = np.random.default_rng(0)


def _flat_column_major(matrix: np.ndarray) -> list[float]:
    rows, cols = matrix.shape
    return [matrix[i, j] for j in range(cols) for i in range(rows)]


def _reshape_by_hand(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    flat = _flat_column_major(matrix)
    return np.array([[flat[i + rows * j] for j in range(cols)] for i in range(rows)])


def test_column_major_reshape_matches_the_index_rule() -> None:
    x = RNG.standard_normal((6, 4))
    assert np.array_equal(column_major_reshape(x, (3, 8)), _reshape_by_hand(x, 3, 8))
    assert np.array_equal(column_major_reshape(x, (8, 3)), _reshape_by_hand(x, 8, 3))


@pytest.mark.parametrize("num_subspaces", [1, 2])
def test_official_cross_stitch_matches_the_index_rule(num_subspaces: int) -> None:
    h, m = 8, 2
    states = [RNG.standard_normal(h) for _ in range(m)]
    alpha = RNG.standard_normal((m * num_subspaces, m * num_subspaces))
    concat = np.stack(states, axis=1)  # (h, M): concatenate_cols
    product = alpha @ _reshape_by_hand(concat, m * num_subspaces, h // num_subspaces)
    if num_subspaces > 1:
        product = _reshape_by_hand(product, m, h)
    for got, expected in zip(official_cross_stitch(states, alpha, num_subspaces), product, strict=True):
        assert np.allclose(got, expected)


def test_official_cross_stitch_with_identity_does_not_separate_the_tasks() -> None:
    h = 8
    a, b = np.arange(h, dtype=float), 100 + np.arange(h, dtype=float)
    for s in (1, 2):
        new_a, new_b = official_cross_stitch([a, b], np.eye(2 * s), s)
        # task A's next layer reads the even units of both tasks, task B the odd ones
        assert np.array_equal(new_a, np.concatenate([a[0::2], b[0::2]]))
        assert np.array_equal(new_b, np.concatenate([a[1::2], b[1::2]]))


def test_official_layer_stitch_weights_positions_not_layers() -> None:
    h, k = 9, 3
    layers = [RNG.standard_normal(h) for _ in range(k)]
    beta = RNG.standard_normal(k)
    flat = np.concatenate(layers)
    expected = np.array([sum(beta[i] * flat[k * j + i] for i in range(k)) for j in range(h)])
    assert np.allclose(official_layer_stitch(layers, beta), expected)
    # with beta = (1, 0, 0) the output is every third unit of the concatenated layers
    assert np.array_equal(official_layer_stitch(layers, np.array([1.0, 0.0, 0.0])), flat[0::3])


def test_official_subspace_blocks_are_even_and_odd_rows() -> None:
    w = RNG.standard_normal((6, 5))
    even, odd = official_subspace_blocks(w, 2)
    assert np.array_equal(even, w[0::2]) and np.array_equal(odd, w[1::2])
    assert math.isclose(official_orthogonality(w), float(((w[0::2].T @ w[1::2]) ** 2).sum()))


def test_official_initialisations() -> None:
    assert np.allclose(official_alpha_init(2, 1, "imbalanced"), sluice_alpha_init(2, 1).numpy())
    assert np.allclose(official_alpha_init(3, 1, "imbalanced"), sluice_alpha_init(3, 1).numpy())
    assert np.allclose(official_alpha_init(2, 2, "balanced"), 0.25)
    # the pattern drawn in the code's comment "0 1 0 1 / 0 1 0 1 / 1 0 1 0 / 1 0 1 0"
    expected = np.array([[0.05, 0.95, 0.05, 0.95]] * 2 + [[0.95, 0.05, 0.95, 0.05]] * 2)
    assert np.allclose(official_alpha_init(2, 2, "imbalanced"), expected)
    assert np.allclose(official_beta_init(3, "imbalanced"), [0.05, 0.05, 0.9])
    assert np.allclose(official_beta_init(4, "balanced"), 0.25)
    with pytest.raises(ValueError, match="unknown scheme"):
        official_alpha_init(2, 2, "random")


def test_subspace_overlaps_are_the_roots_of_the_penalty_terms() -> None:
    torch.manual_seed(0)
    net = SluiceNetwork.mlp(5, [4, 4], {"a": 1, "b": 1})
    overlaps = subspace_overlaps(net)
    assert overlaps.shape == (2, 2)
    assert math.isclose(float((overlaps**2).sum()), float(net.penalty().detach()), rel_tol=1e-5)
    with pytest.raises(ValueError, match="num_subspaces >= 2"):
        subspace_overlaps(SluiceNetwork.mlp(5, [4, 4], {"a": 1, "b": 1}, num_subspaces=1))


def test_run_ablation_records_and_the_penalty_shrinks_the_overlap() -> None:
    arms = [AblationArm(f"λ={lam}", "sluice", layer_stitch=True, orthogonality=lam) for lam in (0.0, 1.0)]
    result = run_ablation({(0.5, 0): starved_pair(0, (200, 50))}, arms, hidden=[8, 8], epochs=60, device="cpu")
    assert list(result.summary.condition) == ["λ=0.0", "λ=1.0"] and list(result.summary.run) == [0, 1]
    assert np.isfinite(result.summary[["test_A", "test_B"]].to_numpy()).all()
    overlap = {lam: trace(result, "overlap", condition=f"λ={lam}") for lam in (0.0, 1.0)}
    assert overlap[1.0].shape == (61, 2, 2)
    assert trace(result, "units.0.alpha", condition="λ=1.0").shape == (61, 4, 4)
    assert trace(result, "betas.B", condition="λ=1.0").shape == (61, 2)
    assert np.allclose(trace(result, "units.1.alpha", condition="λ=1.0")[0], sluice_alpha_init(2, 2).numpy())
    assert (overlap[1.0][-1] < 0.2 * overlap[1.0][0]).all()
    assert overlap[1.0][-1].max() < overlap[0.0][-1].min()
    # the model of a run is the trained one: its overlap is the last one recorded
    model = result.models[find_run(result, condition="λ=1.0")]
    assert np.allclose(subspace_overlaps(model), overlap[1.0][-1])


def test_run_ablation_returns_one_row_per_arm_and_seed() -> None:
    data = {(0.5, seed): starved_pair(seed, (100, 20), 50) for seed in (0, 1)}
    result = run_ablation(data, ABLATION_ARMS, hidden=[8, 8], epochs=3, record=False, device="cpu")
    assert len(result.summary) == len(result.models) == 2 * len(ABLATION_ARMS)
    assert {"condition", "seed", "rho", "test_A", "test_B", "diverged"} <= set(result.summary)
    labels = [a.label for a in ABLATION_ARMS]
    # one engine call per penalty weight: the arms without the penalty first, seed by seed
    assert list(result.summary.condition) == labels[:-1] * 2 + labels[-1:] * 2
    assert list(result.summary.run) == list(range(len(result.summary)))
    assert result.records == [[] for _ in result.models]


def test_arms_without_curves_reach_the_same_final_numbers() -> None:
    data = {(0.5, 0): starved_pair(0, (100, 20), 50)}
    arms = [ABLATION_ARMS[0], ABLATION_ARMS[3]]
    every_step = run_ablation(data, arms, hidden=[8, 8], epochs=6, device="cpu")
    ends_only = run_ablation(
        data, arms, hidden=[8, 8], epochs=6, curves=lambda run: run.condition == arms[0].label, device="cpu"
    )
    columns = ["condition", "test_A", "test_B", "best_step"]
    assert every_step.summary[columns].equals(ends_only.summary[columns])
    curve, ends = (trace(r, "units.1.alpha", condition=arms[1].label) for r in (every_step, ends_only))
    assert curve.shape == (7, 4, 4) and ends.shape == (2, 4, 4)
    assert np.array_equal(ends, curve[[0, -1]])


def test_sluice_snapshot_adds_the_overlap_where_there_is_one() -> None:
    net = SluiceNetwork.mlp(5, [4, 4], {"a": 1, "b": 1})
    snapshot = sluice_snapshot(net)
    assert np.array_equal(snapshot["overlap"], subspace_overlaps(net))
    assert np.array_equal(snapshot["betas.a"], net.betas["a"].detach().numpy())
    assert "overlap" not in sluice_snapshot(SluiceNetwork.mlp(5, [4, 4], {"a": 1, "b": 1}, num_subspaces=1))
    assert sluice_snapshot(SingleTask.mlp(5, [4], {"a": 1, "b": 1})) == {}


def test_arm_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        AblationArm("x", "soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_subspaces >= 2"):
        AblationArm("x", "sluice", num_subspaces=1, orthogonality=0.1)
    with pytest.raises(ValueError, match="needs a sluice network"):
        AblationArm("x", "hard", orthogonality=0.1)
    with pytest.raises(ValueError, match="unique"):
        run_ablation({(0.5, 0): starved_pair(0)}, [ABLATION_ARMS[0], ABLATION_ARMS[0]], epochs=1)


def test_effective_rank() -> None:
    from mtl_course.experiments.sluice import effective_rank

    q, _ = np.linalg.qr(RNG.standard_normal((6, 6)))
    assert math.isclose(effective_rank(q[:, :3] * 5.0), 3.0)
    assert 1.0 <= effective_rank(RNG.standard_normal((8, 5))) <= 5.0
    with pytest.raises(ValueError, match="zero matrix"):
        effective_rank(np.zeros((3, 3)))


def test_cross_subspace_cosine_is_zero_for_orthogonal_ranges() -> None:
    from mtl_course.experiments.sluice import cross_subspace_cosine

    q, _ = np.linalg.qr(RNG.standard_normal((4, 4)))
    # G_1 maps into span(q_0, q_1), G_2 into span(q_2, q_3): G_1^T G_2 = 0
    g1 = q[:, :2] @ RNG.standard_normal((2, 6))
    g2 = q[:, 2:] @ RNG.standard_normal((2, 6))
    weight = torch.tensor(np.vstack([g1, g2]))
    assert np.allclose(g1.T @ g2, 0.0)
    assert cross_subspace_cosine(weight) < 1e-12
    assert cross_subspace_cosine(torch.randn(8, 6, generator=torch.Generator().manual_seed(0))) > 0.1


def test_layer_contributions_match_a_direct_computation() -> None:
    from mtl_course.experiments.sluice import layer_contributions

    torch.manual_seed(0)
    net = SluiceNetwork.mlp(5, [4, 4], {"a": 1, "b": 1}, layer_stitch=True)
    with torch.no_grad():
        net.betas["a"].copy_(torch.tensor([2.0, -1.0]))
        x = torch.randn(16, 5)
        outputs = net.mixed_states(x)
        assert len(outputs) == 2 and outputs[0][0].shape == (16, 4)
        # the head of task a sees sum_k beta_k h~_k
        head_input = 2.0 * outputs[0][0] - 1.0 * outputs[1][0]
        assert torch.allclose(net(x)["a"], net.heads["a"](head_input), atol=1e-6)
    shares = layer_contributions(net, x)
    norms = np.array([2.0 * float(outputs[0][0].norm()), float(outputs[1][0].norm())])
    assert np.allclose(shares.loc["a"].to_numpy(), norms / norms.sum())
    assert np.allclose(shares.sum(axis=1), 1.0)

"""MGDA, PCGrad, CAGrad and IMTL-G against brute force and closed forms on small gradients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtl_course.weighting import MGDA, CAGrad, PCGrad
from mtl_course.weighting.imtl import IMTLG, imtl_g_coefficients
from mtl_course.weighting.mgda import gradient_normalizers, min_norm_element
from mtl_course.weighting.pcgrad import pcgrad_coefficients

pytestmark = pytest.mark.usefixtures("one_thread")


def _grads(n_tasks, dim, seed):
    return torch.randn(n_tasks, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _simplex_grid(n, steps):
    for counts in itertools.product(range(steps + 1), repeat=n - 1):
        if sum(counts) <= steps:
            yield np.array([*counts, steps - sum(counts)]) / steps


# -- MGDA -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_two_task_closed_form_matches_a_grid_over_the_simplex(seed):
    g = _grads(2, 5, seed)
    if seed == 0:
        g[1] = -0.5 * g[0]  # opposed gradients: the min-norm point is 0
    alpha = min_norm_element(g @ g.T)
    gammas = torch.linspace(0, 1, 20001, dtype=torch.float64)
    norms = ((gammas[:, None] * g[0] + (1 - gammas[:, None]) * g[1]) ** 2).sum(dim=1)
    best = gammas[norms.argmin()]
    assert abs(float(alpha[0]) - float(best)) < 1e-4
    assert float(((alpha @ g) ** 2).sum()) <= float(norms.min()) + 1e-9


@pytest.mark.parametrize(("scale", "gamma"), [(2.0, 1.0), (5.0, 1.0), (0.5, 0.0), (0.2, 0.0)])
@pytest.mark.parametrize("seed", range(3))
def test_two_task_closed_form_clips_one_sided_pairs_to_a_vertex(scale, gamma, seed):
    # g_2 = scale * g_1 plus a small orthogonal part: the unclipped line search leaves [0, 1], and the min-norm
    # point of the segment is its shorter end, g_1 (gamma = 1) for scale > 1 and g_2 (gamma = 0) for scale < 1
    g = _grads(2, 5, seed)
    orthogonal = g[1] - (g[1] @ g[0]) / (g[0] @ g[0]) * g[0]
    g[1] = scale * g[0] + 0.05 * orthogonal / orthogonal.norm() * g[0].norm()
    alpha = min_norm_element(g @ g.T)
    gammas = torch.linspace(0, 1, 20001, dtype=torch.float64)
    norms = ((gammas[:, None] * g[0] + (1 - gammas[:, None]) * g[1]) ** 2).sum(dim=1)
    assert float(gammas[norms.argmin()]) == gamma  # the grid's best point is the vertex
    assert alpha.tolist() == [gamma, 1.0 - gamma]  # exactly, not a value outside [0, 1]
    swapped = min_norm_element(g.flip(0) @ g.flip(0).T)  # the same pair in the other order
    assert swapped.tolist() == [1.0 - gamma, gamma]


@pytest.mark.parametrize(("n_tasks", "seed"), [(3, 0), (3, 1), (4, 2), (4, 3), (5, 0), (5, 3)])
def test_frank_wolfe_matches_scipy_on_random_gradients(n_tasks, seed):
    g = _grads(n_tasks, 10, seed)
    gram = (g @ g.T).numpy()
    alpha = min_norm_element(g @ g.T).numpy()
    result = minimize(
        lambda a: a @ gram @ a,
        np.full(n_tasks, 1 / n_tasks),
        method="SLSQP",
        bounds=[(0, 1)] * n_tasks,
        constraints=({"type": "eq", "fun": lambda a: a.sum() - 1},),
        options={"ftol": 1e-14},
    )
    assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0)
    assert alpha @ gram @ alpha == pytest.approx(result.fun, rel=1e-6)
    # the min-norm point is no longer than any single gradient (each is a vertex of the hull)
    assert alpha @ gram @ alpha <= np.diag(gram).min() + 1e-12


def test_frank_wolfe_from_the_papers_uniform_start_converges_slowly_to_a_zero_weight():
    g = _grads(4, 10, 1)  # the min-norm point gives task 3 zero weight
    gram = g @ g.T
    alpha = min_norm_element(gram)
    assert float(alpha[2]) == 0.0
    best = float(alpha @ gram @ alpha)
    gaps = [float(a @ gram @ a) - best for a in (min_norm_element(gram, k, 0.0, "uniform") for k in (10, 100, 1000))]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 0.05 * gaps[0]


def test_gradient_normalizers_follow_the_official_definitions():
    g = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    gram = g @ g.T
    assert gradient_normalizers(gram, losses, "none").tolist() == [1.0, 1.0]
    assert gradient_normalizers(gram, losses, "l2").tolist() == [5.0, 2.0]
    assert gradient_normalizers(gram, losses, "loss").tolist() == [2.0, 0.5]
    assert gradient_normalizers(gram, losses, "loss+").tolist() == [10.0, 1.0]
    with pytest.raises(ValueError, match="normalization must be one of"):
        MGDA(["a", "b"], normalization="L2")


def test_mgda_l2_normalisation_solves_on_unit_gradients():
    g = torch.tensor([[10.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    losses = torch.ones(2, dtype=torch.float64)
    # unit gradients e1, e2 are symmetric: alpha = 1/2 each (applied to the raw gradients)
    assert MGDA(["a", "b"], normalization="l2").combine(g @ g.T, losses).tolist() == [0.5, 0.5]
    alpha = MGDA(["a", "b"]).combine(g @ g.T, losses)
    assert alpha[0] == pytest.approx(1 / 101)  # argmin 100 a^2 + (1-a)^2


# -- PCGrad --------------------------------------------------------------------------------
def _pcgrad_reference(g: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Algorithm 1 of Yu et al. on the vectors themselves."""
    projected = []
    for i in range(g.shape[0]):
        g_i = g[i].clone()
        for j in torch.randperm(g.shape[0], generator=generator).tolist():
            if j == i:
                continue
            dot = g_i @ g[j]
            if dot < 0:
                g_i = g_i - dot / (g[j] @ g[j]) * g[j]
        projected.append(g_i)
    return torch.stack(projected).sum(dim=0)


def test_pcgrad_leaves_non_conflicting_gradients_unchanged():
    g = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.1], [0.0, 0.3, 2.0]], dtype=torch.float64)
    assert pcgrad_coefficients(g @ g.T).tolist() == [1.0, 1.0, 1.0]


def test_pcgrad_two_conflicting_gradients_become_orthogonal_to_the_other():
    g = torch.tensor([[1.0, 0.0], [-1.0, 2.0]], dtype=torch.float64)
    g1_pc = g[0] - (g[0] @ g[1]) / (g[1] @ g[1]) * g[1]
    g2_pc = g[1] - (g[1] @ g[0]) / (g[0] @ g[0]) * g[0]
    assert abs(float(g1_pc @ g[1])) < 1e-12 and abs(float(g2_pc @ g[0])) < 1e-12
    torch.testing.assert_close(pcgrad_coefficients(g @ g.T) @ g, g1_pc + g2_pc)


@pytest.mark.parametrize("seed", range(4))
def test_pcgrad_matches_the_vector_algorithm_with_the_same_random_order(seed):
    g = _grads(4, 3, seed)  # 4 gradients in 3-D: some always conflict
    coefficients = pcgrad_coefficients(g @ g.T, torch.Generator().manual_seed(seed))
    expected = _pcgrad_reference(g, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(coefficients @ g, expected)


def test_pcgrad_is_reproducible_with_its_seed():
    g = _grads(4, 3, 7)
    a = PCGrad(list("abcd"), seed=5).combine(g @ g.T, torch.ones(4))
    b = PCGrad(list("abcd"), seed=5).combine(g @ g.T, torch.ones(4))
    assert torch.equal(a, b)


# -- CAGrad -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "c"), [(0, 0.5), (1, 0.5), (2, 0.2), (3, 0.9)])
def test_cagrad_dual_solution_matches_a_grid_for_two_tasks(seed, c):
    g = _grads(2, 6, seed)
    g0 = g.mean(dim=0)
    ws = torch.linspace(0, 1, 20001, dtype=torch.float64)
    gw = ws[:, None] * g[0] + (1 - ws[:, None]) * g[1]
    dual = gw @ g0 + c * g0.norm() * gw.norm(dim=1)
    w_best = ws[dual.argmin()]
    gw_best = w_best * g[0] + (1 - w_best) * g[1]
    d_expected = (g0 + c * g0.norm() / gw_best.norm() * gw_best) / (1 + c**2)

    d = CAGrad(["a", "b"], c=c).combine(g @ g.T, torch.ones(2)) @ g
    torch.testing.assert_close(d, d_expected, rtol=2e-3, atol=2e-4)
    # primal feasibility: (1 + c^2) d lies in the ball ||d - g0|| <= c ||g0||
    assert float(((1 + c**2) * d - g0).norm()) <= c * float(g0.norm()) + 1e-6


def test_cagrad_with_c_zero_is_the_average_gradient():
    g = _grads(3, 4, 0)
    torch.testing.assert_close(CAGrad(list("abc"), c=0.0).combine(g @ g.T, torch.ones(3)) @ g, g.mean(dim=0))


# -- IMTL-G -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_tasks", "seed"), [(2, 0), (3, 1), (4, 2), (5, 3)])
def test_imtl_g_has_equal_projections_on_every_unit_gradient(n_tasks, seed):
    g = _grads(n_tasks, 8, seed) * torch.linspace(0.1, 10, n_tasks, dtype=torch.float64)[:, None]
    alpha = imtl_g_coefficients(g @ g.T)
    update = alpha @ g
    projections = g @ update / g.norm(dim=1)
    assert float(alpha.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(projections, projections[0].expand(n_tasks))


def test_imtl_g_names_a_task_whose_gradient_is_zero() -> None:
    """A task without labels in the batch has a zero gradient; IMTL-G would divide by its norm."""
    gram = torch.tensor([[8.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # g_a = (2, 2), g_b = 0
    with pytest.raises(ValueError, match=r"task\(s\) \['b'\] have a zero gradient"):
        IMTLG(["a", "b"]).combine(gram, torch.zeros(2, dtype=torch.float64))

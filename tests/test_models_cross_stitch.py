"""Cross-stitch units and networks (Misra et al., CVPR 2016, arXiv 1604.03539)."""

from __future__ import annotations

import pytest
import torch

from mtl_course.models import (
    CrossStitchFunction,
    CrossStitchNetwork,
    CrossStitchUnit,
    LinearHead,
    MLPTrunk,
    cross_stitch,
    cross_stitch_reference,
)
from mtl_course.models.cross_stitch import cross_stitch_init

SHAPES = [(4, 3), (2, 3, 3), (2, 3, 2, 3)]  # (N, C), (N, C, L), (N, C, H, W)


def make_inputs(
    shape: tuple[int, ...],
    num_columns: int,
    per_channel: bool,
    device: torch.device,
    dtype: torch.dtype = torch.float64,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    xs = [torch.randn(shape, generator=generator, dtype=dtype).to(device).requires_grad_() for _ in range(num_columns)]
    alpha_shape = (shape[1], num_columns, num_columns) if per_channel else (num_columns, num_columns)
    alpha = torch.randn(alpha_shape, generator=generator, dtype=dtype).to(device).requires_grad_()
    return xs, alpha


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("num_columns", [2, 3])
def test_hand_written_backward_passes_gradcheck(
    shape: tuple[int, ...], per_channel: bool, num_columns: int, device: torch.device
) -> None:
    xs, alpha = make_inputs(shape, num_columns, per_channel, device)
    stacked = torch.stack(xs).detach().requires_grad_()
    assert torch.autograd.gradcheck(CrossStitchFunction.apply, (stacked, alpha), eps=1e-6, atol=1e-8)
    # and through the list interface the units use
    assert torch.autograd.gradcheck(lambda a, *x: torch.stack(cross_stitch(x, a)), (alpha, *xs), fast_mode=True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("num_columns", [2, 3])
def test_hand_written_backward_matches_autograd_on_the_einsum_reference(
    shape: tuple[int, ...], per_channel: bool, num_columns: int, device: torch.device
) -> None:
    xs, alpha = make_inputs(shape, num_columns, per_channel, device, dtype=torch.float32)
    upstream = [torch.randn_like(x) for x in xs]
    results = []
    for fn in (cross_stitch, cross_stitch_reference):
        out = fn(xs, alpha)
        loss = sum((o * u).sum() for o, u in zip(out, upstream, strict=True))
        results.append((out, torch.autograd.grad(loss, [alpha, *xs])))
    (out, grads), (ref_out, ref_grads) = results
    for got, want in zip([*out, *grads], [*ref_out, *ref_grads], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_forward_mixes_every_location_with_the_channels_own_matrix(device: torch.device) -> None:
    """x~_i[n, c, h, w] = sum_j alpha[c, i, j] x_j[n, c, h, w], written as a loop."""
    xs, alpha = make_inputs((2, 3, 4, 5), 3, per_channel=True, device=device)
    out = cross_stitch(xs, alpha)
    for i in range(3):
        for c in range(3):
            expected = sum(alpha[c, i, j] * xs[j][:, c] for j in range(3))
            torch.testing.assert_close(out[i][:, c], expected)


def test_printed_backward_formulas_hold_for_two_tasks(device: torch.device) -> None:
    """The paper's Eq. 2-3 for networks A and B, element by element, per channel."""
    (x_a, x_b), alpha = make_inputs((3, 2, 4, 4), 2, per_channel=True, device=device)
    g_a, g_b = torch.randn_like(x_a), torch.randn_like(x_b)  # dL/dx~_A, dL/dx~_B
    out_a, out_b = cross_stitch([x_a, x_b], alpha)
    d_alpha, d_xa, d_xb = torch.autograd.grad((out_a * g_a).sum() + (out_b * g_b).sum(), [alpha, x_a, x_b])
    aa, ab, ba, bb = alpha[:, 0, 0], alpha[:, 0, 1], alpha[:, 1, 0], alpha[:, 1, 1]
    per_channel = lambda v: v.view(1, -1, 1, 1)  # noqa: E731
    # Eq. 2: dL/dx_A = alpha_AA dL/dx~_A + alpha_BA dL/dx~_B (and symmetrically for B)
    torch.testing.assert_close(d_xa, per_channel(aa) * g_a + per_channel(ba) * g_b)
    torch.testing.assert_close(d_xb, per_channel(ab) * g_a + per_channel(bb) * g_b)
    # Eq. 3: dL/dalpha_ij = sum over batch and pixels of dL/dx~_i * x_j, for each channel
    for (i, g), (j, x) in [((0, g_a), (0, x_a)), ((0, g_a), (1, x_b)), ((1, g_b), (0, x_a)), ((1, g_b), (1, x_b))]:
        torch.testing.assert_close(d_alpha[:, i, j], (g * x).sum(dim=(0, 2, 3)))


def test_a_frozen_alpha_gets_no_gradient_and_the_inputs_still_do() -> None:
    xs, alpha = make_inputs((4, 3), 2, per_channel=False, device=torch.device("cpu"))
    alpha = alpha.detach()
    out = cross_stitch(xs, alpha)
    grads = torch.autograd.grad(sum(o.sum() for o in out), xs)
    # d/dx_j of sum_i sum(x~_i) = sum_i alpha_ij
    for j, g in enumerate(grads):
        torch.testing.assert_close(g, torch.full_like(g, float(alpha[:, j].sum())))


def test_init_puts_alpha_s_on_the_diagonal_and_alpha_d_on_every_pair() -> None:
    unit = CrossStitchUnit(num_columns=3, num_channels=5, per_channel=True, alpha_init=(0.7, 0.2))
    assert tuple(unit.alpha.shape) == (5, 3, 3)
    expected = torch.tensor([[0.7, 0.2, 0.2], [0.2, 0.7, 0.2], [0.2, 0.2, 0.7]])
    torch.testing.assert_close(unit.alpha.detach(), expected.expand(5, 3, 3))
    layer = CrossStitchUnit(num_columns=2, num_channels=5, per_channel=False)
    torch.testing.assert_close(layer.alpha.detach(), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    # the per-channel matrices are independent parameters, not views of one
    with torch.no_grad():
        unit.alpha[0, 0, 0] = 5.0
    assert unit.alpha[1, 0, 0].item() == pytest.approx(0.7)


def test_identity_alpha_turns_the_network_into_independent_columns(device: torch.device) -> None:
    torch.manual_seed(0)
    net = CrossStitchNetwork.mlp(in_features=6, hidden=[8, 8], tasks={"a": 1, "b": 2}).to(device)
    x = torch.randn(5, 6, device=device)
    stitched = net(x)
    with torch.no_grad():
        for alpha in net.mixing_parameters():
            alpha.copy_(cross_stitch_init(2, (1.0, 0.0), alpha.shape[0]))
    out = net(x)
    for task in net.tasks:
        torch.testing.assert_close(out[task], net.heads[task](net.columns[task](x)))
    assert not torch.allclose(stitched["a"], out["a"])  # with the default init the columns do mix


def test_cross_stitch_parameters_are_the_alphas_and_can_get_their_own_learning_rate() -> None:
    net = CrossStitchNetwork.mlp(in_features=6, hidden=[8, 4, 4], tasks={"a": 1, "b": 1}, per_channel=True)
    alphas = list(net.mixing_parameters())
    assert [tuple(a.shape) for a in alphas] == [(8, 2, 2), (4, 2, 2), (4, 2, 2)]
    assert {id(a) for a in alphas} <= {id(p) for p in net.shared_parameters()}
    assert {id(p) for p in net.column_parameters("a")}.isdisjoint({id(a) for a in alphas})
    ids = {id(a) for a in alphas}
    rest = [p for p in net.parameters() if id(p) not in ids]
    lr = 1e-3
    optimizer = torch.optim.SGD([{"params": rest}, {"params": alphas, "lr": 100 * lr}], lr=lr)
    before = [p.detach().clone() for p in (alphas[0], rest[0])]
    loss = sum(y.sum() for y in net(torch.randn(3, 6)).values())
    loss.backward()
    optimizer.step()
    for p, old, rate in [(alphas[0], before[0], 100 * lr), (rest[0], before[1], lr)]:
        torch.testing.assert_close(p.detach() - old, -rate * p.grad)


def test_last_shared_layer_is_the_last_layer_of_every_column() -> None:
    net = CrossStitchNetwork.mlp(in_features=6, hidden=[8, 4], tasks={"a": 1, "b": 1})
    expected = [id(p) for t in ("a", "b") for p in net.columns[t].stages[-1][0].parameters()]
    assert [id(p) for p in net.last_shared_layer()] == expected


def test_unit_errors_name_the_mismatch() -> None:
    unit = CrossStitchUnit(num_columns=2, num_channels=4)
    with pytest.raises(ValueError, match="mixes 2 columns .* got 3 inputs"):
        unit([torch.zeros(1, 4)] * 3)
    with pytest.raises(ValueError, match=r"same shape; column 0 has \(2, 4\), column 1 has \(3, 4\)"):
        unit([torch.zeros(2, 4), torch.zeros(3, 4)])
    with pytest.raises(ValueError, match=r"built for 4 channels, got inputs of shape \(2, 5\)"):
        unit([torch.zeros(2, 5), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match="at least 2 columns"):
        CrossStitchUnit(num_columns=1, num_channels=4)
    with pytest.raises(TypeError, match="list of T tensors"):
        cross_stitch(torch.zeros(2, 3, 4), torch.eye(2))
    with pytest.raises(TypeError, match="share one dtype"):
        cross_stitch([torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)], torch.eye(2))
    with pytest.raises(ValueError, match=r"shape \(T, T\) or \(C, T, T\), got \(2, 3\)"):
        cross_stitch([torch.zeros(2, 3)] * 3, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="per-channel alpha has 4 channels but the inputs have 3"):
        cross_stitch([torch.zeros(2, 3)] * 2, torch.zeros(4, 2, 2))


def test_network_errors_name_the_mismatch() -> None:
    heads = {"a": LinearHead(8, 1), "b": LinearHead(8, 1)}
    with pytest.raises(ValueError, match=r"column 'a' has stage widths \[8\], column 'b' has \[8, 8\]"):
        CrossStitchNetwork({"a": MLPTrunk(3, [8]), "b": MLPTrunk(3, [8, 8])}, heads)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        CrossStitchNetwork({"a": MLPTrunk(3, [8])}, {"a": LinearHead(8, 1)})
    with pytest.raises(ValueError, match=r"heads must have one entry per task \['a', 'b'\]"):
        CrossStitchNetwork({"a": MLPTrunk(3, [8]), "b": MLPTrunk(3, [8])}, {"a": LinearHead(8, 1)})
    with pytest.raises(TypeError, match="column 'a' must be a StagedEncoder"):
        CrossStitchNetwork({"a": torch.nn.Linear(3, 8), "b": MLPTrunk(3, [8])}, heads)  # type: ignore[dict-item]
    net = CrossStitchNetwork.mlp(in_features=20, hidden=[8], tasks={"a": 1, "b": 1})
    with pytest.raises(ValueError, match=r"\(N, 20\), got \(8, 19\)"):
        net(torch.zeros(8, 19))

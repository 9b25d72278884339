"""Device and dtype agnosticism: mixed precision, float64, torch.compile, no hard-coded device.

With ``MTL_COURSE_TEST_DEVICE=cuda`` the autocast tests run fp16 on the GPU;
on the CPU they run bf16.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch
import torch.nn.functional as F
from test_models_contract import ARCHITECTURES, IMAGE_ARCHITECTURES, build, penalty

from mtl_course.device import autocast
from mtl_course.models import CrossStitchNetwork, cross_stitch

MIXED = [*ARCHITECTURES, "cross_stitch_cnn", "sluice_cnn", "hard_sharing_unet"]
assert set(MIXED) <= set(ARCHITECTURES) | set(IMAGE_ARCHITECTURES)


@pytest.mark.parametrize("name", MIXED)
def test_every_architecture_runs_forward_and_backward_under_autocast(name: str, device: torch.device) -> None:
    model, x, _ = build(name)
    model.to(device)
    x = x.to(device)
    reference = model(x)
    with autocast(device) as context:
        out = model(x)
        loss = sum(y.float().square().mean() for y in out.values()) + 1e-3 * penalty(model)
    loss.backward()
    low = context.fast_dtype
    for task, y in out.items():
        assert y.dtype == low, f"{name}/{task}: output is {y.dtype}, expected {low}"
        scale = reference[task].abs().max().item() + 1e-3
        torch.testing.assert_close(y.float(), reference[task], atol=0.05 * scale, rtol=0.05)
    for p in model.parameters():
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("per_channel", [True, False])
def test_cross_stitch_runs_in_the_autocast_dtype_and_returns_float32_alpha_gradients(
    per_channel: bool, device: torch.device
) -> None:
    torch.manual_seed(0)
    xs = [torch.randn(4, 3, 5, 5, device=device, requires_grad=True) for _ in range(2)]
    alpha = torch.randn((3, 2, 2) if per_channel else (2, 2), device=device, requires_grad=True)
    expected = torch.autograd.grad(sum(y.sum() for y in cross_stitch(xs, alpha)), [alpha, *xs])
    with autocast(device) as context:
        out = cross_stitch(xs, alpha)
    assert all(y.dtype == context.fast_dtype for y in out)
    grads = torch.autograd.grad(sum(y.float().sum() for y in out), [alpha, *xs])
    for got, want in zip(grads, expected, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0.05 * want.abs().max().item(), rtol=0.05)


@pytest.mark.parametrize("name", ["cross_stitch_per_channel", "sluice", "soft_sharing_trace"])
def test_models_follow_the_dtype_and_device_of_their_parameters_and_inputs(name: str, device: torch.device) -> None:
    model, x, _ = build(name)
    model.to(device=device, dtype=torch.float64)
    out = model(x.to(device=device, dtype=torch.float64))
    assert all(y.dtype == torch.float64 and y.device.type == device.type for y in out.values())


@pytest.mark.parametrize("name", ["soft_sharing_l2", "soft_sharing_trace", "sluice"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_penalties_follow_the_dtype_and_device_of_the_parameters(
    name: str, dtype: torch.dtype, device: torch.device
) -> None:
    model, _, _ = build(name)
    model.to(device=device, dtype=dtype)
    value = penalty(model)
    assert value.ndim == 0 and value.dtype == dtype and value.device.type == device.type


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_cross_stitch_network_compiles_with_its_custom_autograd_function(backend: str, device: torch.device) -> None:
    """aot_eager traces the hand-written backward in seconds; inductor also generates code (~30 s cold, 2 CPUs)."""
    torch.manual_seed(0)
    model = CrossStitchNetwork.mlp(in_features=8, hidden=[16, 16], tasks={"a": 1, "b": 2}).to(device)
    x = torch.randn(16, 8, device=device)
    y_a, y_b = torch.randn(16, 1, device=device), torch.randint(0, 2, (16,), device=device)

    def loss_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(out["a"], y_a) + F.cross_entropy(out["b"], y_b)

    eager = torch.autograd.grad(loss_of(model(x)), list(model.parameters()))
    compiled = torch.compile(model, backend=backend)
    out = compiled(x)
    grads = torch.autograd.grad(loss_of(out), list(model.parameters()))
    reference = model(x)
    for task in model.tasks:
        torch.testing.assert_close(out[task], reference[task], atol=1e-5, rtol=1e-4)
    for got, want in zip(grads, eager, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_the_models_package_hard_codes_no_device() -> None:
    package = pathlib.Path(__file__).resolve().parents[1] / "mtl_course" / "models"
    pattern = re.compile(r"\.cuda\(|device\s*=\s*['\"]cuda|torch\.device\(['\"]cuda")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(package.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []

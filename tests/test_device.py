"""mtl_course.device: device choice, seeding, run budget."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mtl_course.device import autocast, get_budget, get_device, seed_everything


def test_override_and_environment_choose_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("MTL_COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_without_override_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTL_COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("mtl_course.device._mps_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr("mtl_course.device._mps_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_unavailable_cuda_is_an_error_not_a_silent_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cuda"):
        get_device("cuda")


def test_seed_everything_makes_python_numpy_and_torch_repeat() -> None:
    def draw() -> tuple[float, float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen))

    gen = seed_everything(123)
    first = draw()
    gen = seed_everything(123)
    assert draw() == first
    gen = seed_everything(124)
    assert draw() != first


def test_seed_everything_rejects_bad_seeds() -> None:
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_deterministic_flag_switches_torch_to_deterministic_algorithms() -> None:
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_budget_defaults_to_quick_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTL_COURSE_BUDGET", raising=False)
    assert get_budget().quick
    monkeypatch.setenv("MTL_COURSE_BUDGET", "full")
    assert get_budget().pick(quick=1, full=2) == 2
    monkeypatch.setenv("MTL_COURSE_BUDGET", "fast")
    with pytest.raises(ValueError, match="fast"):
        get_budget()


def test_autocast_picks_a_lower_precision_on_cpu() -> None:
    layer = torch.nn.Linear(4, 4)
    with autocast("cpu"):
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16

"""Devices, seeds and the run budget shared by every lecture and test.

Three environment variables steer a run without touching code:

``MTL_COURSE_DEVICE``
    Forces the device, e.g. ``cpu``, ``cuda``, ``cuda:1`` or ``mps``.
``MTL_COURSE_BUDGET``
    ``quick`` (the default, about a minute per notebook on a laptop CPU) or
    ``full`` (longer training, closer to the papers' settings).
``MTL_COURSE_DETERMINISTIC``
    ``1`` asks :func:`seed_everything` for deterministic algorithms.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

DEVICE_ENV = "MTL_COURSE_DEVICE"
BUDGET_ENV = "MTL_COURSE_BUDGET"
DETERMINISTIC_ENV = "MTL_COURSE_DETERMINISTIC"

T = TypeVar("T")


def get_device(override: str | None = None) -> torch.device:
    """Return the device to compute on: CUDA, then Apple MPS, then the CPU.

    ``override`` (or, when it is ``None``, the ``MTL_COURSE_DEVICE``
    environment variable) names a device explicitly. Asking for a device that
    is not available raises an error instead of silently using the CPU.

    >>> get_device("cpu")
    device(type='cpu')
    """
    name = override if override is not None else os.environ.get(DEVICE_ENV, "").strip()
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} was requested (argument or ${DEVICE_ENV}) "
                "but torch.cuda.is_available() is False; "
                f"this torch is {torch.__version__}"
            )
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {name!r} was requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int, deterministic: bool | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and every CUDA device).

    With ``deterministic=True`` (or ``MTL_COURSE_DETERMINISTIC=1``) torch is
    asked for deterministic algorithms, which makes some CUDA kernels slower.
    Returns a ``torch.Generator`` seeded with ``seed`` for code that prefers an
    explicit generator (data loaders, samplers).

    >>> g = seed_everything(0)
    >>> a = torch.rand(2); _ = seed_everything(0); b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic is None:
        deterministic = os.environ.get(DETERMINISTIC_ENV, "") == "1"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@dataclass(frozen=True)
class Budget:
    """How much compute a run may spend: ``quick`` (default) or ``full``.

    Lectures choose their sizes through :meth:`pick`, so the stored outputs
    come from the quick mode and the full mode is one switch away.

    >>> Budget("quick").pick(quick=30, full=300)
    30
    >>> Budget("full").pick(quick=30, full=300)
    300
    """

    mode: Literal["quick", "full"] = "quick"

    def __post_init__(self) -> None:
        if self.mode not in ("quick", "full"):
            raise ValueError(f"budget mode must be 'quick' or 'full', got {self.mode!r}")

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def pick(self, *, quick: T, full: T) -> T:
        """Return ``quick`` in quick mode and ``full`` in full mode."""
        return quick if self.quick else full


def get_budget(mode: str | None = None) -> Budget:
    """Return the run budget: ``mode``, else ``$MTL_COURSE_BUDGET``, else quick.

    >>> get_budget("full").mode
    'full'
    """
    chosen = mode if mode is not None else os.environ.get(BUDGET_ENV, "quick").strip() or "quick"
    if chosen not in ("quick", "full"):
        raise ValueError(f"${BUDGET_ENV} must be 'quick' or 'full', got {chosen!r}")
    return Budget(chosen)  # type: ignore[arg-type]


def autocast(device: torch.device | str, dtype: torch.dtype | None = None, enabled: bool = True):
    """Mixed-precision context for ``device``: bf16 on the CPU, fp16 on CUDA by default.

    A thin wrapper over :class:`torch.autocast` that picks a dtype the device
    supports, so that callers can write ``with autocast(x.device): ...``.
    """
    device = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)

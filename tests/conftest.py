"""Shared test fixtures.

The test device comes from ``MTL_COURSE_TEST_DEVICE`` (default ``cpu``), so
the same suite runs on a GPU with ``MTL_COURSE_TEST_DEVICE=cuda make test``.
"""

from __future__ import annotations

import os

import pytest
import torch

TEST_DEVICE_ENV = "MTL_COURSE_TEST_DEVICE"


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the tests compute on (``$MTL_COURSE_TEST_DEVICE``, default CPU)."""
    name = os.environ.get(TEST_DEVICE_ENV, "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"${TEST_DEVICE_ENV}={name} but CUDA is not available")
    return dev

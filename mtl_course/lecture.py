"""The set-up every lecture runs first: threads, figure style, seed, device and budget, in one call.

>>> setup = setup_lecture(seed=0, threads=1, verbose=False)
>>> setup.seed, setup.threads, setup.budget.mode in ("quick", "full")
(0, 1, True)
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from mtl_course.device import Budget, get_budget, get_device, seed_everything
from mtl_course.plots import use_course_style

#: Environment variable that overrides the number of CPU threads a lecture uses.
THREADS_ENV = "MTL_COURSE_THREADS"


class LectureSetup(NamedTuple):
    """What :func:`setup_lecture` chose: unpack it (``device, budget, *_ = setup``) or read its fields."""

    device: torch.device
    budget: Budget
    seed: int
    threads: int


def setup_lecture(seed: int = 0, threads: int | None = 1, *, verbose: bool = True) -> LectureSetup:
    """Prepare a lecture: CPU threads, the course's figure style, every seed, the device and the budget.

    ``threads`` limits torch's CPU threads (the environment variable
    ``MTL_COURSE_THREADS`` overrides it; ``None`` keeps torch's default). The
    course's networks are tiny: one thread avoids the threading overhead that
    makes them many times slower on a busy 2-core laptop, so every lecture
    uses one by default and behaves the same way under load. The device
    comes from :func:`~mtl_course.device.get_device` (``MTL_COURSE_DEVICE``),
    the budget from :func:`~mtl_course.device.get_budget` (``MTL_COURSE_BUDGET``).
    Prints one line with what was chosen unless ``verbose=False``.
    """
    override = os.environ.get(THREADS_ENV)
    if override is not None:
        try:
            threads = int(override)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {override!r}") from None
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads}")
        torch.set_num_threads(threads)
    use_course_style()
    device = get_device()
    budget = get_budget()
    seed_everything(seed)
    setup = LectureSetup(device, budget, seed, torch.get_num_threads())
    if verbose:
        print(
            f"torch {torch.__version__} | device: {device} | budget: {budget.mode} "
            f"| CPU threads: {setup.threads} | seed: {seed}"
        )
    return setup

"""Overhead of :func:`mtl_course.train.fit` against a hand-written PyTorch loop, on the course's typical models.

Each row trains the same model from the same initial weights on the same
batches (two :class:`~mtl_course.data.loaders.TensorLoader` s with the same
seed) with the same optimiser (Adam, ``foreach=True``, ``fit``'s default):
with a hand-written loop (``F.mse_loss`` / ``F.cross_entropy`` summed,
``loss.backward()``, ``optimizer.step()``), with ``fit`` and equal weighting
on the same plain losses (the loop's own overhead), and with ``fit`` on the
course's masked losses (:func:`mtl_course.losses.mse_loss`,
:func:`~mtl_course.losses.cross_entropy`), as the lectures train. A run is one
call of ``fit`` (or of the hand loop) for ``--epochs`` epochs of ``--steps``
batches, so ``fit``'s set-up, its once-per-epoch bookkeeping and the history
DataFrame it returns are part of what is measured. The default run, 8 epochs
of 16 steps (128 steps), is the lectures' typical call: counted on 2026-12-07
by wrapping ``fit`` while the lectures' code ran, the median call of A0, A2,
A3, A6, B2, B4, B5 and B7 took 140, 300, 180, 60, 120, 100, 180 and 120
steps. ``--epochs 4`` measures A6's short calls (40-60 steps), where the
fixed cost of a call weighs twice as much. The three loops alternate run by
run (the order reverses every repeat), the first repeat warms up, and the
medians over ``--repeats`` are compared in CPU time (``time.process_time``;
robust on a shared machine) and in wall time. Budget (COURSE_DESIGN.md
section 6): ``fit`` on the course's losses at most 10 % slower than the hand
loop in CPU time, at every row.

Where ``fit``'s extra time goes, timed inside the runs (2026-12-07, on the
20-32-32 MLP, the table's smallest model, a 0.55 ms step): per call,
about 0.2 ms of set-up and 0.6 ms to build the history DataFrame; per epoch,
about 10 µs to build the history row; per step, 25-30 µs of Python
bookkeeping (the batch's checks and moves, the weighting's checks, reading
the step's losses and weights). A small model's step waits for its Python,
and Python that runs between the kernels runs cold: the same code costs
several times what it costs in a tight loop.

Rows: the shared MLPs 64-256-256 and 20-32-32 with three regression heads
(:meth:`~mtl_course.models.HardSharing.mlp`) at batch sizes 32 to 512, the
small CNN with two classification heads of ``_bench_models`` at batch 32, and
the 20-32-32 MLP trained full-batch (one step per epoch, ``--steps * --epochs``
epochs), as the lectures train their small tabular problems: there fit's
once-per-epoch bookkeeping weighs on every step.

    python benchmarks/bench_train_overhead.py [--repeats 15] [--steps 16] [--epochs 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_models import SmallCNN

from mtl_course.data.loaders import TensorLoader
from mtl_course.losses import cross_entropy, mse_loss
from mtl_course.models import HardSharing
from mtl_course.models.base import MultiTaskModel
from mtl_course.train import Task, fit

BATCH_SIZES = (32, 64, 128, 256, 512)
BUDGET = 0.10
REGRESSION_TASKS = ("a", "b", "c")
CLASSIFICATION_TASKS = ("left", "right")


@dataclass(frozen=True)
class Case:
    """One row: a model, its data, the plain loss of the hand loop and the course's loss of ``fit``."""

    name: str
    batch_size: int
    model: Callable[[], MultiTaskModel]
    data: Callable[[int, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    plain_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    course_loss: Callable[..., torch.Tensor]


def mlp_case(in_features: int, hidden: int, batch_size: int) -> Case:
    """A shared MLP ``in -> hidden -> hidden`` with three scalar regression heads."""

    def data(n: int, g: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return torch.randn(n, in_features, generator=g), {t: torch.randn(n, 1, generator=g) for t in REGRESSION_TASKS}

    return Case(
        f"MLP {in_features}-{hidden}-{hidden}, 3 regression heads",
        batch_size,
        lambda: HardSharing.mlp(in_features, [hidden, hidden], dict.fromkeys(REGRESSION_TASKS, 1)),
        data,
        F.mse_loss,
        mse_loss,
    )


def cnn_case(batch_size: int) -> Case:
    """The small CNN of ``_bench_models`` on 16x16 images with two 10-class heads."""

    def data(n: int, g: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        labels = {t: torch.randint(0, 10, (n,), generator=g) for t in CLASSIFICATION_TASKS}
        return torch.randn(n, 1, 16, 16, generator=g), labels

    return Case(
        "small CNN, 2 classification heads",
        batch_size,
        lambda: SmallCNN(list(CLASSIFICATION_TASKS)),
        data,
        F.cross_entropy,
        cross_entropy,
    )


def hand_loop(model, optimizer, loader, loss_fn, epochs: int) -> None:
    """What a student writes: the summed plain losses, ``backward`` and ``step``."""
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = sum(loss_fn(out[t], target) for t, target in y.items())
            loss.backward()
            optimizer.step()


def measure(case: Case, repeats: int, steps: int, epochs: int) -> dict[str, dict[str, float]]:
    """Median seconds per step of the three loops, ``{"hand" | "fit plain" | "fit": {"cpu": ..., "wall": ...}}``."""
    x, targets = case.data(steps * case.batch_size, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    template = case.model()
    models = {k: copy.deepcopy(template) for k in ("hand", "fit plain", "fit")}
    loaders = {k: TensorLoader(x, targets, batch_size=case.batch_size, shuffle=True, seed=0) for k in models}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True) for k, m in models.items()}
    tasks = {
        # F.mse_loss(pred, target, None) and F.cross_entropy(logits, target, None) ignore the third argument
        "fit plain": [Task(t, case.plain_loss) for t in targets],
        "fit": [Task(t, case.course_loss) for t in targets],
    }

    def run_fit(name: str) -> None:
        fit(
            models[name],
            tasks[name],
            "equal",
            loaders[name],
            epochs=epochs,
            optimizer=optimizers[name],
            device="cpu",
            progress=False,
        )

    runs = {
        "hand": lambda: hand_loop(models["hand"], optimizers["hand"], loaders["hand"], case.plain_loss, epochs),
        "fit plain": lambda: run_fit("fit plain"),
        "fit": lambda: run_fit("fit"),
    }
    times: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "wall": []} for k in runs}
    for repeat in range(repeats + 1):  # the first repeat warms up
        order = list(runs) if repeat % 2 else list(reversed(runs))
        for name in order:
            cpu, wall = time.process_time(), time.perf_counter()
            runs[name]()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if repeat:
                times[name]["cpu"].append(cpu)
                times[name]["wall"].append(wall)
    per_step = steps * epochs
    return {k: {clock: statistics.median(v) / per_step for clock, v in t.items()} for k, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=16, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per call of fit (or of the hand loop)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        *(mlp_case(64, 256, b) for b in BATCH_SIZES),
        *(mlp_case(20, 32, b) for b in BATCH_SIZES),
        cnn_case(32),
    ]
    print(
        f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s), {args.epochs} epochs of "
        f"{args.steps} steps per run, {args.repeats} interleaved repeats, medians\n"
    )
    print(
        "| model | batch | hand loop (ms/step, CPU) | fit, plain losses: overhead CPU | fit, course losses: "
        "overhead CPU | (wall) | ≤ 10 % |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    # full-batch training (one step per epoch), as the lectures train their small tabular problems:
    # the same number of steps per run, so the per-epoch bookkeeping of fit weighs most here
    full_batch = [mlp_case(20, 32, args.steps * b) for b in (8, 16)]
    runs = [(case, args.steps, args.epochs) for case in cases]
    runs += [(case, 1, args.steps * args.epochs) for case in full_batch]
    for case, steps, epochs in runs:
        t = measure(case, args.repeats, steps, epochs)
        plain, cpu, wall = (
            t[k][clock] / t["hand"][clock] - 1 for k, clock in (("fit plain", "cpu"), ("fit", "cpu"), ("fit", "wall"))
        )
        met = "yes" if cpu <= BUDGET else "**no**"
        batch = f"{case.batch_size} (full)" if steps == 1 else f"{case.batch_size}"
        print(
            f"| {case.name} | {batch} | {1e3 * t['hand']['cpu']:.3f} | {100 * plain:+.1f} % "
            f"| {100 * cpu:+.1f} % | {100 * wall:+.1f} % | {met} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Overhead of :func:`mtl_course.train.fit` against a hand-written PyTorch loop.

Same model (a small CNN with two classification heads), same batches, same
optimiser, one epoch per repeat; the two loops alternate repeat by repeat and
the medians are compared. Budget (COURSE_DESIGN.md section 6): at most 10 %.
Two rows: ``fit`` with the same plain losses as the hand loop (the loop's own
overhead), and ``fit`` with the course's masked losses (what lectures use).

    python benchmarks/bench_train_overhead.py [--repeats 15] [--batches 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_models import SmallCNN, synthetic_batches

from mtl_course.losses import cross_entropy
from mtl_course.train import Task, fit

TASKS = ["left", "right"]


def plain_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``F.cross_entropy`` with the loss signature of :mod:`mtl_course.losses` (no masking)."""
    return F.cross_entropy(logits, target)


def hand_loop(model, optimizer, batches) -> None:
    model.train()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out["left"], y["left"]) + F.cross_entropy(out["right"], y["right"])
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = [
        (x.to(device), {t: v.to(device) for t, v in y.items()}) for x, y in synthetic_batches(TASKS, args.batches)
    ]
    torch.manual_seed(0)
    template = SmallCNN(TASKS).to(device)
    runs = {
        "hand-written loop": None,
        "fit, plain losses": [Task(t, plain_cross_entropy) for t in TASKS],
        "fit, course masked losses": [Task(t, cross_entropy) for t in TASKS],
    }
    models = {name: copy.deepcopy(template) for name in runs}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats + 1):  # the first repeat warms up
        for name, tasks in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            if tasks is None:
                hand_loop(models[name], optimizers[name], batches)
            else:
                fit(
                    models[name],
                    tasks,
                    "equal",
                    batches,
                    epochs=1,
                    optimizer=optimizers[name],
                    device=device,
                    progress=False,
                )
            if device.type == "cuda":
                torch.cuda.synchronize()
            if repeat:
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["hand-written loop"])
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s), "
        f"{args.batches} batches of 32 per epoch, {args.repeats} interleaved repeats, medians\n"
    )
    print("| loop | epoch time (ms) | overhead vs hand-written | budget <= 10 % met |")
    print("|---|---|---|---|")
    for name in runs:
        median = statistics.median(times[name])
        overhead = median / base - 1
        met = "-" if name == "hand-written loop" else ("yes" if overhead <= 0.10 else "**no**")
        print(f"| {name} | {1e3 * median:.1f} | {100 * overhead:+.1f} % | {met} |")


if __name__ == "__main__":
    main()

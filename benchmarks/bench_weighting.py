"""Step time of every weighting method relative to equal weighting, for T = 2, 3, 5 tasks.

One step = forward, ``method.backward``, optimiser step, on a small CNN with
batches of 32 16x16 images (CPU by default). Methods are interleaved round
by round and the medians compared, so machine noise hits all alike. Budget
(COURSE_DESIGN.md section 6): a method that needs T per-task gradients takes
at most (T + 0.5) x the step time of equal weighting.

    python benchmarks/bench_weighting.py [--rounds 15] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_models import SmallCNN, synthetic_batches

from mtl_course.losses import cross_entropy
from mtl_course.weighting import available_methods, get_weighting

PER_TASK_GRADIENTS = {"gradnorm", "mgda", "mgda_ub", "pcgrad", "cagrad", "imtl_g"}


def make_step(name: str, tasks: list[str], device: torch.device):
    torch.manual_seed(0)
    model = SmallCNN(tasks).to(device)
    hyper = {"weights": dict.fromkeys(tasks, 1.0)} if name == "fixed" else {}
    method = get_weighting(name, tasks, **hyper).to(device)
    optimizer = torch.optim.SGD([*model.parameters(), *method.parameters()], lr=1e-3)
    x, y = synthetic_batches(tasks, 1)[0]
    x, y = x.to(device), {t: v.to(device) for t, v in y.items()}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if method.requires_representation:
            z = model.encode(x)
            out = model.decode(z)
        else:
            z, out = None, model(x)
        losses = {t: cross_entropy(out[t], y[t]) for t in tasks}
        method.backward(losses, model, representation=z)
        optimizer.step()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3, help="steps timed together per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = available_methods()
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s), "
        f"{args.rounds} rounds x {args.steps} steps, medians\n"
    )
    header = "| method | " + " | ".join(f"T={t} ratio" for t in (2, 3, 5)) + " | budget (T+0.5) met |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    results: dict[str, dict[int, float]] = {m: {} for m in methods}
    base_ms: dict[int, float] = {}
    for n_tasks in (2, 3, 5):
        tasks = [f"t{i}" for i in range(n_tasks)]
        steps = {m: make_step(m, tasks, device) for m in methods}
        for step in steps.values():  # warm-up
            step()
        times: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(args.rounds):
            for m, step in steps.items():
                sync(device)
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                sync(device)
                times[m].append((time.perf_counter() - start) / args.steps)
        base = statistics.median(times["equal"])
        base_ms[n_tasks] = 1e3 * base
        for m in methods:
            results[m][n_tasks] = statistics.median(times[m]) / base
    for m in methods:
        ratios = " | ".join(f"{results[m][t]:.2f}" for t in (2, 3, 5))
        if m in PER_TASK_GRADIENTS:
            met = "yes" if all(results[m][t] <= t + 0.5 for t in (2, 3, 5)) else "**no**"
        else:
            met = "n/a"
        print(f"| {m} | {ratios} | {met} |")
    print("\nequal weighting step time: " + ", ".join(f"T={t}: {ms:.2f} ms" for t, ms in base_ms.items()))


if __name__ == "__main__":
    main()

"""The generic replicator (``stack_module_state`` + ``vmap(functional_call)``) against hand-batched replicas.

Lectures A2 and A3 train many tiny networks at once. Two ways to stack them:
:class:`mtl_course.experiments.replicate.Replicated` maps any ordinary model
(``HardSharing.mlp``, ``SoftSharing.mlp``) with ``torch.func.vmap`` (in
``_replicated_by_vmap.py``); the hand-written ``ReplicatedMLP`` /
``ReplicatedColumns`` of :mod:`mtl_course.experiments.replicate` write the
batched matrix products out. Both use the same replica losses (the course's
losses mapped with ``vmap``) and train the
lectures' sizes with :func:`mtl_course.train.fit` (full batch, Adam, the
same number of steps); the two alternate repeat by repeat and the medians
of steps per second are compared.

    python benchmarks/bench_replicate.py [--repeats 5] [--steps 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _replicated_by_vmap import Replicated

from mtl_course.experiments.replicate import ReplicatedColumns, ReplicatedMLP, per_column, summed_over_replicas
from mtl_course.losses import mse_loss
from mtl_course.models import HardSharing, SoftSharing
from mtl_course.train import Task, fit


def _seeded(build: Callable[[], torch.nn.Module], seeds: list[int]) -> list[torch.nn.Module]:
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build())
    return models


def a2_case(replicas: int, extra: int = 4, n: int = 200, d: int = 10, hidden=(32, 32)):
    """Lecture A2's main experiment: ``HardSharing.mlp`` with a main head and one head holding the extra tasks."""
    outputs = {"main": 1, "extra": extra}
    models = _seeded(lambda: HardSharing.mlp(d, list(hidden), outputs), list(range(replicas)))
    x = torch.randn(replicas, n, d)
    y = {"main": torch.randn(replicas, n, 1), "extra": torch.randn(replicas, n, extra)}
    tasks = [Task("main", summed_over_replicas(mse_loss)), Task("extra", summed_over_replicas(per_column(mse_loss)))]
    return {"hand": (ReplicatedMLP(models), tasks, x, y), "vmap": (Replicated(models), tasks, x, y)}


def a3_case(replicas: int, n: int = 32, d: int = 4, hidden=(16, 8)):
    """Lecture A3's sweep: ``SoftSharing.mlp`` with the l2 penalty, each task its own ``n`` cases (NaN elsewhere)."""
    tasks = {"a": 1, "b": 1}
    models = _seeded(lambda: SoftSharing.mlp(d, list(hidden), tasks), list(range(replicas)))
    lams = [0.01] * replicas
    x_own = torch.randn(replicas, 2, n, d)  # hand-written: every column computes only its own task's cases
    y_own = torch.randn(replicas, n, 2)
    hand = ReplicatedColumns(models, lams)
    y_hand = {"a": y_own[..., :1], "b": y_own[..., 1:]}
    x_pooled = x_own.reshape(replicas, 2 * n, d)  # generic: the pooled cases, NaN where a case has no label
    nan = torch.full((replicas, n, 1), float("nan"))
    y_pooled = {"a": torch.cat([y_own[..., :1], nan], 1), "b": torch.cat([nan, y_own[..., 1:]], 1)}
    losses = [Task(t, summed_over_replicas(mse_loss)) for t in tasks]
    return {"hand": (hand, losses, x_own, y_hand), "vmap": (Replicated(models, lams), losses, x_pooled, y_pooled)}


def steps_per_second(model, tasks, x, y, steps: int, penalty: float) -> float:
    start = time.perf_counter()
    fit(model, tasks, "equal", [(x, y)] * steps, epochs=1, lr=1e-3, penalty=penalty, device="cpu", progress=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = {
        "A2 main (HardSharing 10-32-32, n=200)": (a2_case(24), 0.0),
        "A3 small (SoftSharing 4-16-8, n=32/task)": (a3_case(120), 1.0),
        "A3 large (SoftSharing 4-16-8, n=256/task)": (a3_case(45, n=256), 1.0),
    }
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps x {args.repeats} repeats")
    print("| case | R | hand-written steps/s | vmap steps/s | vmap / hand |")
    print("| --- | --- | --- | --- | --- |")
    for name, (case, penalty) in cases.items():
        rates: dict[str, list[float]] = {"hand": [], "vmap": []}
        for _ in range(args.repeats):
            for kind in ("hand", "vmap"):
                rates[kind].append(steps_per_second(*case[kind], args.steps, penalty))
        hand, generic = statistics.median(rates["hand"]), statistics.median(rates["vmap"])
        replicas = case["hand"][2].shape[0]
        print(f"| {name} | {replicas} | {hand:.0f} | {generic:.0f} | {generic / hand:.2f} |")


if __name__ == "__main__":
    main()

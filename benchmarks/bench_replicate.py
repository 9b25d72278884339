"""The generic replicator (``stack_module_state`` + ``vmap(functional_call)``) against hand-batched replicas.

Lectures A2 and A3 train many tiny networks at once. Two ways to stack them:
``Replicated`` (in ``_replicated_by_vmap.py``) maps any ordinary model
(``HardSharing.mlp``, ``SoftSharing.mlp``) with ``torch.func.vmap``; the
hand-written ``ReplicatedMLP`` / ``ReplicatedColumns`` of
:mod:`mtl_course.experiments.replicate` write the batched matrix products
out. Both use the same replica losses and train the lectures' sizes with
:func:`mtl_course.train.fit` (full batch, Adam, the same number of steps);
the two alternate repeat by repeat and the medians of steps per second are
compared. A second table times the replica losses alone (forward and
backward): the course's ``mse_loss`` mapped with ``vmap`` against
``replica_mse_loss``.

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
from torch.func import vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _replicated_by_vmap import Replicated

from mtl_course.experiments.replicate import (
    ReplicatedColumns,
    ReplicatedMLP,
    replica_column_mse_loss,
    replica_mse_loss,
    summed,
)
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
    tasks = [Task("main", summed(replica_mse_loss)), Task("extra", summed(replica_column_mse_loss))]
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
    losses = [Task(t, summed(replica_mse_loss)) for t in tasks]
    return {"hand": (hand, losses, x_own, y_hand), "vmap": (Replicated(models, lams), losses, x_pooled, y_pooled)}


def steps_per_second(model, tasks, x, y, steps: int, penalty: float) -> float:
    start = time.perf_counter()
    fit(model, tasks, "equal", [(x, y)] * steps, epochs=1, lr=1e-3, penalty=penalty, device="cpu", progress=False)
    return steps / (time.perf_counter() - start)


def loss_microseconds(loss, pred: torch.Tensor, target: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        loss(pred, target).sum().backward()
    return 1e6 * (time.perf_counter() - start) / calls


def losses_table(repeats: int, calls: int = 200) -> None:
    pred = torch.randn(24, 200, 1, requires_grad=True)  # lecture A2's main experiment: 24 replicas, 200 cases
    target = torch.randn(24, 200, 1)
    target[:8] = float("nan")  # some replicas without labels, as STL's extra tasks
    candidates = {"vmap(mse_loss)": vmap(mse_loss), "replica_mse_loss": replica_mse_loss}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, loss in candidates.items():
            times[name].append(loss_microseconds(loss, pred, target, calls))
    print("\n| replica loss, R=24, n=200 (forward + backward) | µs per call |")
    print("| --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.0f} |")


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
    losses_table(args.repeats)


if __name__ == "__main__":
    main()

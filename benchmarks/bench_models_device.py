"""Run every architecture of mtl_course.models forward + backward on the CPU and, when present, on CUDA.

For each architecture the script

1. runs one forward + backward pass (loss: mean of squared outputs plus the
   model's penalty) on the CPU in float32, and on CUDA in float32 with TF32
   disabled, from the same weights and batch, and compares outputs and
   parameter gradients: they match when
   ``|cuda - cpu| <= ATOL + RTOL * |cpu|`` elementwise (ATOL = 1e-4,
   RTOL = 1e-3);
2. checks one step under mixed precision (bf16 autocast on the CPU, fp16
   autocast on CUDA) gives finite gradients;
3. measures the throughput of forward + backward (samples per second, the
   median over repeated steps) on each device.

Without CUDA it says so and runs the CPU part; it exits 0 unless a CUDA
comparison or a mixed-precision step fails (exit 1). About 30-60 s on 2 CPU
cores; machines shared with other jobs are noisy, so compare ratios
within one run.

    python benchmarks/bench_models_device.py [--batch-size 256] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch

from mtl_course.device import autocast
from mtl_course.experiments import build_birads_network
from mtl_course.models import (
    BranchedNetwork,
    CrossStitchNetwork,
    GraspPushNetwork,
    HardSharing,
    HyperFace,
    JointManyTask,
    MotionSegmentationNet,
    MultilinearRelationshipNetwork,
    MultiScaleNet,
    MultiTaskModel,
    SingleTask,
    SluiceNetwork,
    SoftSharing,
    UnionSegmentationNet,
    ViewLandmarkNet,
    lesion_network,
    ubernet,
    y_net,
)

ATOL, RTOL = 1e-4, 1e-3
TASKS = {"a": 1, "b": 10}
IN_FEATURES, HIDDEN = 64, [128, 128]
IMAGE = (1, 16, 16)
IMAGE_BATCH_DIVISOR = 4  # image models use batch_size // 4 to keep the CPU part short
VOCAB, SENTENCE_PAIR = 32, (2, 11)  # JointManyTask reads pairs of sentences of word indices
#: name -> input for the models whose input is not a float tensor: (batch size, generator) -> x
INPUTS: dict[str, Callable[[int, torch.Generator], torch.Tensor]] = {
    "JointManyTask": lambda batch, g: torch.randint(1, VOCAB, (batch, *SENTENCE_PAIR), generator=g),
}

#: name -> (builder, input shape without the batch dimension)
ARCHITECTURES: dict[str, tuple[Callable[[], MultiTaskModel], tuple[int, ...]]] = {
    "SingleTask.mlp": (lambda: SingleTask.mlp(IN_FEATURES, HIDDEN, TASKS), (IN_FEATURES,)),
    "HardSharing.mlp": (lambda: HardSharing.mlp(IN_FEATURES, HIDDEN, TASKS), (IN_FEATURES,)),
    "SoftSharing.mlp l2": (lambda: SoftSharing.mlp(IN_FEATURES, HIDDEN, TASKS, penalty="l2"), (IN_FEATURES,)),
    "SoftSharing.mlp trace": (lambda: SoftSharing.mlp(IN_FEATURES, HIDDEN, TASKS, penalty="trace"), (IN_FEATURES,)),
    "CrossStitch.mlp channel": (lambda: CrossStitchNetwork.mlp(IN_FEATURES, HIDDEN, TASKS), (IN_FEATURES,)),
    "CrossStitch.mlp layer": (
        lambda: CrossStitchNetwork.mlp(IN_FEATURES, HIDDEN, TASKS, per_channel=False),
        (IN_FEATURES,),
    ),
    "SluiceNetwork.mlp": (lambda: SluiceNetwork.mlp(IN_FEATURES, HIDDEN, TASKS), (IN_FEATURES,)),
    "BranchedNetwork.mlp": (
        lambda: BranchedNetwork(IN_FEATURES, HIDDEN, [[list(TASKS)], [[t] for t in TASKS]], TASKS),
        (IN_FEATURES,),
    ),
    "HardSharing.cnn": (lambda: HardSharing.cnn(IMAGE[0], [16, 32], TASKS), IMAGE),
    "CrossStitch.cnn": (lambda: CrossStitchNetwork.cnn(IMAGE[0], [16, 32], TASKS), IMAGE),
    "HardSharing.unet": (lambda: HardSharing.unet(IMAGE[0], [8, 16, 32], {"seg": 3, "depth": 1}), IMAGE),
    "HyperFace": (lambda: HyperFace({"face": 2, "landmarks": 10, "pose": 3}, size=16, channels=[8, 16]), IMAGE),
    "JointManyTask": (lambda: JointManyTask(VOCAB, {"pos": 5, "chunk": 4, "relation": 3}, hidden=32), SENTENCE_PAIR),
    "MotionSegmentationNet": (lambda: MotionSegmentationNet([8, 16]), (2, *IMAGE[1:])),
    "MultiScaleNet": (lambda: MultiScaleNet(IMAGE[0], IMAGE[1], {"seg": 3, "depth": 1}), IMAGE),
    "BI-RADS HardSharing (B12)": (lambda: build_birads_network(), IMAGE),
    "UnionSegmentationNet": (
        lambda: UnionSegmentationNet(["brain", "breast", "cta"], IMAGE[0], [8, 8, 8, 8], [1, 1, 2, 4], 16, 9),
        IMAGE,
    ),
    "GraspPushNetwork": (lambda: GraspPushNetwork(16, [8, 16]), IMAGE),
    "Y-Net": (lambda: y_net(IMAGE[0], [8, 16, 32], n_tissues=3, n_classes=3), IMAGE),
    "MRN.mlp": (  # MultilinearRelationshipNetwork: one output size for every task: the weights form one tensor
        lambda: MultilinearRelationshipNetwork.mlp(IN_FEATURES, HIDDEN, {"a": 10, "b": 10, "c": 10}),
        (IN_FEATURES,),
    ),
    "UberNet": (lambda: ubernet(IMAGE[0], [16, 16, 16], {"cls": 10, "mask": 2}, dense=["mask"]), IMAGE),
    "UberNet checkpointed": (
        lambda: ubernet(IMAGE[0], [16, 16, 16], {"cls": 10, "mask": 2}, dense=["mask"], checkpoint_heads=True),
        IMAGE,
    ),
    "ViewLandmarkNet": (lambda: ViewLandmarkNet(views=4, landmarks=8), IMAGE),
    "lesion_network (B13)": (lambda: lesion_network([8, 16, 32], in_channels=IMAGE[0]), IMAGE),
}


def loss_of(model: MultiTaskModel, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean of squared outputs plus ``1e-3`` times the model's own penalty (zero for most models)."""
    return sum(y.float().square().mean() for y in out.values()) + 1e-3 * model.penalty()


def step(model: MultiTaskModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward + backward pass; returns the outputs (gradients stay in ``.grad``)."""
    model.zero_grad(set_to_none=True)
    out = model(x)
    loss_of(model, out).backward()
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(model: MultiTaskModel, x: torch.Tensor, seconds: float, mixed: bool = False) -> float:
    """Samples per second of forward + backward: batch size over the median step time."""
    device = x.device
    for _ in range(2):  # warm-up (allocator, cuDNN autotuning, lazy init)
        with autocast(device, enabled=mixed):
            step(model, x)
    synchronize(device)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        with autocast(device, enabled=mixed):
            step(model, x)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def max_mismatch(got: torch.Tensor, want: torch.Tensor) -> tuple[float, bool]:
    """Largest |got - want| and whether every element is within ATOL + RTOL * |want|."""
    diff = (got.detach().cpu().double() - want.detach().double()).abs()
    ok = bool((diff <= ATOL + RTOL * want.detach().double().abs()).all())
    return float(diff.max()), ok


def mixed_precision_ok(model: MultiTaskModel, x: torch.Tensor) -> bool:
    """One step under autocast (bf16 on the CPU, fp16 on CUDA) gives finite gradients."""
    with autocast(x.device):
        step(model, x)
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per throughput measurement")
    args = parser.parse_args()

    has_cuda = torch.cuda.is_available()
    cuda = torch.device("cuda") if has_cuda else None
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch size {args.batch_size} "
        f"(image models: {max(args.batch_size // IMAGE_BATCH_DIVISOR, 1)} images of {IMAGE})"
    )
    if has_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        gpu_name = torch.cuda.get_device_name(cuda)
        print(f"CUDA: {gpu_name}; comparing with the CPU at atol={ATOL}, rtol={RTOL} (TF32 off)")
    else:
        print("CUDA: not available -- running the CPU part only (no CUDA comparison, no CUDA throughput)")
    print()

    header = f"{'architecture':<24} {'params':>8} {'CPU fp32':>10} {'CPU bf16':>10}"
    if has_cuda:
        header += f" {'CUDA fp32':>10} {'CUDA fp16':>10} {'max|d out|':>10} {'max|d grad|':>11} {'match':>5}"
    print("throughput in samples/s (forward + backward, median step)")
    print(header)
    print("-" * len(header))

    failures = []
    for name, (builder, shape) in ARCHITECTURES.items():
        torch.manual_seed(0)
        model = builder()
        batch = args.batch_size if len(shape) == 1 else max(args.batch_size // IMAGE_BATCH_DIVISOR, 1)
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))
        if name in INPUTS:
            x = INPUTS[name](batch, torch.Generator().manual_seed(1))
        row = f"{name:<24} {model.parameter_counts()['total']:>8,}"
        cpu_out = step(model, x)
        cpu_grads = [p.grad.clone() for p in model.parameters()]
        row += f" {throughput(model, x, args.seconds):>10,.0f}"
        row += f" {throughput(model, x, args.seconds, mixed=True):>10,.0f}"
        if not mixed_precision_ok(model, x):
            failures.append(f"{name}: non-finite gradients under bf16 autocast on the CPU")
        if cuda is not None:
            torch.manual_seed(0)
            gpu_model = builder().to(cuda)
            gpu_model.load_state_dict(copy.deepcopy(model.state_dict()))
            x_gpu = x.to(cuda)
            gpu_out = step(gpu_model, x_gpu)
            d_out, ok_out = zip(*(max_mismatch(gpu_out[t], cpu_out[t]) for t in model.tasks), strict=True)
            d_grad, ok_grad = zip(
                *(max_mismatch(p.grad, g) for p, g in zip(gpu_model.parameters(), cpu_grads, strict=True)), strict=True
            )
            match = all(ok_out) and all(ok_grad)
            if not match:
                failures.append(f"{name}: CUDA and CPU differ beyond atol={ATOL}, rtol={RTOL}")
            row += f" {throughput(gpu_model, x_gpu, args.seconds):>10,.0f}"
            row += f" {throughput(gpu_model, x_gpu, args.seconds, mixed=True):>10,.0f}"
            row += f" {max(d_out):>10.1e} {max(d_grad):>11.1e} {'yes' if match else 'NO':>5}"
            if not mixed_precision_ok(gpu_model, x_gpu):
                failures.append(f"{name}: non-finite gradients under fp16 autocast on CUDA")
        print(row, flush=True)

    print()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all architectures ran" + (" and CUDA matches the CPU" if has_cuda else " on the CPU"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

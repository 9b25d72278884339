"""Architecture and weighting are orthogonal: every model trains with every method.

For each architecture of :mod:`mtl_course.models` and each registered
weighting method, a few full-batch steps of :func:`mtl_course.train.fit` on a
small two-task regression problem must lower the sum of the task losses, or,
where the combination cannot work, fail with an error that names the model
and the reason: MGDA-UB needs one shared representation (hard sharing), and
GradNorm needs a shared layer, which single-task and soft-sharing models lack.
"""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.loaders import TensorLoader
from mtl_course.losses import mse_loss
from mtl_course.models import CrossStitchNetwork, HardSharing, SingleTask, SluiceNetwork, SoftSharing
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = {"a": 1, "b": 1}
ARCHITECTURES = {
    "single_task": lambda: SingleTask.mlp(in_features=6, hidden=[16, 16], tasks=TASKS),
    "hard_sharing": lambda: HardSharing.mlp(in_features=6, hidden=[16, 16], tasks=TASKS),
    "soft_sharing": lambda: SoftSharing.mlp(in_features=6, hidden=[16, 16], tasks=TASKS),
    "cross_stitch": lambda: CrossStitchNetwork.mlp(in_features=6, hidden=[16, 16], tasks=TASKS),
    "sluice": lambda: SluiceNetwork.mlp(in_features=6, hidden=[16, 16], tasks=TASKS),
}
PENALTIES = {"soft_sharing": 1e-3, "sluice": 1e-3}
METHODS = [m for m in available_methods() if m != "fixed"]
#: (architecture, method) pairs that cannot work, and the error that says why.
INCOMPATIBLE = {
    **{(a, "mgda_ub"): (ValueError, "has none") for a in ARCHITECTURES if a != "hard_sharing"},
    ("single_task", "gradnorm"): (NotImplementedError, "SingleTask does not define a last shared layer"),
    ("soft_sharing", "gradnorm"): (NotImplementedError, "SoftSharing does not define a last shared layer"),
}


def _data(device: torch.device) -> TensorLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    w = torch.randn(6, generator=g)
    targets = {"a": (x @ w).unsqueeze(1), "b": (x @ w + x[:, 0] ** 2).unsqueeze(1)}
    return TensorLoader(x, targets, device=device)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_every_architecture_trains_with_every_method(architecture: str, method: str, device: torch.device) -> None:
    torch.manual_seed(0)
    model = ARCHITECTURES[architecture]()
    tasks = [Task("a", mse_loss), Task("b", mse_loss)]
    weighting = get_weighting(method, ["a", "b"])
    if (architecture, method) in INCOMPATIBLE:
        error, message = INCOMPATIBLE[architecture, method]
        with pytest.raises(error, match=message):
            fit(model, tasks, weighting, _data(device), epochs=1, device=device, progress=False)
        return
    history = fit(
        model,
        tasks,
        weighting,
        _data(device),
        epochs=40,
        lr=1e-2,
        device=device,
        penalty=PENALTIES.get(architecture, 0.0),
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.7 * first, f"{architecture} + {method}: loss {first:.3f} -> {last:.3f} did not fall"


@pytest.mark.parametrize("architecture", ["soft_sharing", "cross_stitch", "sluice"])
def test_a_gradient_method_with_equal_coefficients_gives_the_gradient_of_the_sum(
    architecture: str, device: torch.device
) -> None:
    """With coefficients (1, 1), a gradient method must write exactly grad(L_a + L_b),
    including the cross-task terms through coupled columns."""

    class Sum(get_weighting("pcgrad", ["a", "b"]).__class__.__mro__[1]):  # GradientWeighting
        def combine(self, gram: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
            return torch.ones(len(losses), dtype=gram.dtype)

    torch.manual_seed(0)
    model = ARCHITECTURES[architecture]().to(device)
    x, targets = next(iter(_data(device)))
    outputs = model(x)
    losses = {t: mse_loss(outputs[t], targets[t]) for t in TASKS}
    expected = torch.autograd.grad(sum(losses.values()), list(model.parameters()), retain_graph=True, allow_unused=True)
    Sum(["a", "b"]).backward(losses, model)
    for (name, p), g in zip(model.named_parameters(), expected, strict=True):
        want = torch.zeros_like(p) if g is None else g
        got = torch.zeros_like(p) if p.grad is None else p.grad
        torch.testing.assert_close(got, want, msg=lambda m, name=name: f"{architecture}: {name}: {m}")

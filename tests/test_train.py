"""The training loop: histories, partial labels, errors, callbacks, any method with any model."""

from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch
from _toy_models import ToyHardSharing, ToyNoRepresentation

from mtl_course.losses import cross_entropy, mse_loss
from mtl_course.metrics import accuracy, mse
from mtl_course.train import (
    BestWeights,
    Task,
    TaskEarlyStopping,
    _epoch_row,
    _EpochTotals,
    evaluate,
    fit,
    split_batch,
    tcdcn_criterion,
)
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = [Task("reg", mse_loss, {"mse": mse}), Task("cls", cross_entropy, {"accuracy": accuracy})]
NAMES = ["reg", "cls"]


def _data(n=64, seed=0, batch=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    reg = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(n, generator=g)
    cls = (x[:, 0] + x[:, 1] > 0).long()
    return [(x[i : i + batch], {"reg": reg[i : i + batch], "cls": cls[i : i + batch]}) for i in range(0, n, batch)]


def _model(cls=ToyHardSharing, seed=0):
    torch.manual_seed(seed)
    return cls(NAMES, out_dims={"cls": 2})


def _hyper(name):
    return {"weights": {"reg": 1.0, "cls": 0.5}} if name == "fixed" else {}


def test_history_has_the_documented_columns_and_loss_falls(device):
    history = fit(
        _model(), TASKS, "equal", _data(), val_loader=_data(seed=1), epochs=8, lr=0.01, device=device, progress=False
    )
    assert list(history["epoch"]) == list(range(1, 9))
    for column in [
        "reg/train_loss",
        "cls/train_loss",
        "reg/weight",
        "reg/val_loss",
        "reg/val_mse",
        "cls/val_accuracy",
        "val_loss",
        "train_loss",
        "time_s",
    ]:
        assert column in history
    assert history["reg/train_loss"].iloc[-1] < 0.5 * history["reg/train_loss"].iloc[0]
    assert (history["reg/weight"] == 1.0).all()


@pytest.mark.parametrize("name", available_methods())
def test_every_method_trains_the_hard_sharing_model(name, device):
    method = get_weighting(name, NAMES, **_hyper(name))
    history = fit(_model(), TASKS, method, _data(), epochs=3, lr=0.01, device=device, progress=False)
    assert history[["reg/train_loss", "cls/train_loss"]].notna().all().all()
    assert history["reg/train_loss"].iloc[-1] < history["reg/train_loss"].iloc[0]


def test_train_losses_are_epoch_means_of_the_batch_losses(device):
    data = _data()
    model = _model()
    reference = copy.deepcopy(model).to(device)
    history = fit(model, TASKS, "equal", data, epochs=1, lr=0.01, device=device, progress=False)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    batch_losses = []
    for x, y in data:
        out = reference(x.to(device))
        losses = [mse_loss(out["reg"], y["reg"].to(device)), cross_entropy(out["cls"], y["cls"].to(device))]
        optimizer.zero_grad()
        sum(losses).backward()
        optimizer.step()
        batch_losses.append([loss.item() for loss in losses])
    assert history["reg/train_loss"].iloc[0] == pytest.approx(statistics.mean(b[0] for b in batch_losses), rel=1e-5)
    assert history["cls/train_loss"].iloc[0] == pytest.approx(statistics.mean(b[1] for b in batch_losses), rel=1e-5)


def test_partially_labelled_batches_dicts_masks_and_nan(device):
    data = _data()
    partial = [
        {"x": data[0][0], "targets": {"reg": data[0][1]["reg"]}},  # no class labels at all
        (data[1][0], {"cls": data[1][1]["cls"]}),  # no regression labels
        (data[2][0], data[2][1], {"cls": torch.tensor([True, False] * 8)}),  # half the class labels
        (
            data[3][0],
            {"reg": torch.where(torch.arange(16) < 8, data[3][1]["reg"], float("nan")), "cls": data[3][1]["cls"]},
        ),
    ]
    for name in ["equal", "mgda_ub", "pcgrad"]:
        history = fit(_model(), TASKS, name, partial, val_loader=partial, epochs=2, device=device, progress=False)
        assert history.notna().all().all(), name


def test_nan_loss_names_task_epoch_and_step(device):
    data = _data()
    data[2][1]["reg"] = data[2][1]["reg"].clone()
    data[2][1]["reg"][0] = float("inf")
    with pytest.raises(FloatingPointError, match="task 'reg' is not finite at epoch 1, step 2"):
        fit(_model(), TASKS, "equal", data, epochs=1, device=device, progress=False)


def _totals(on_host, names, active, step_losses, step_weights):
    totals = _EpochTotals(names, active, on_host)
    for losses, weights in zip(step_losses, step_weights, strict=True):
        totals.labelled_batches = dict.fromkeys(active, len(step_losses))
        totals.add(dict(zip(active, losses, strict=True)), weights)
    return totals


@pytest.mark.parametrize("kind", [True, False], ids=["host", "device"])
def test_epoch_row_names_the_first_task_in_order_and_its_first_non_finite_step(kind):
    # the error names the first active task with a non-finite loss, and that task's first bad step, as a loop over
    # tasks would; the device totals reach the host in one transfer, the host totals are floats from the start
    losses = torch.ones(5, 3)
    losses[3, 0], losses[1, 2], losses[4, 2] = float("nan"), float("inf"), float("nan")
    totals = _totals(kind, list("abc"), list("abc"), losses, [torch.ones(3)] * 5)
    with pytest.raises(FloatingPointError, match="task 'a' is not finite at epoch 7, step 3"):
        _epoch_row(7, totals)
    totals = _totals(kind, list("abc"), list("bc"), losses[:, 1:], [torch.tensor([1.0, 0.0, 1.0])] * 5)
    with pytest.raises(FloatingPointError, match="task 'c' is not finite at epoch 7, step 1"):
        _epoch_row(7, totals)
    overflow = torch.full((2, 1), torch.finfo(torch.float32).max)  # every step finite, their float32 sum is not
    if not kind:  # on the device the sums are float32
        with pytest.raises(FloatingPointError, match="task 'a' is not finite at epoch 1, its sum over the steps"):
            _epoch_row(1, _totals(kind, ["a"], ["a"], overflow, [torch.ones(1)] * 2))


@pytest.mark.parametrize("steps", [1, 7])  # 1: full-batch training, where the host path skips the sums
def test_host_and_device_totals_give_the_same_row(steps):
    # the CPU path reads floats at every step and sums in double precision; the accelerator path stacks tensors
    # and sums in single precision: the rows agree to float32 rounding, a deactivated task included
    g = torch.Generator().manual_seed(0)
    losses, weights = torch.rand(steps, 2, generator=g), [torch.rand(3, generator=g) for _ in range(steps)]
    (host, host_means), (device, _) = (
        _epoch_row(2, _totals(k, list("abc"), ["a", "c"], losses, weights)) for k in (True, False)
    )
    assert host.keys() == device.keys()
    assert host == pytest.approx(device, rel=1e-6, nan_ok=True)
    assert host["a/train_loss"] == pytest.approx(float(losses[:, 0].double().mean()), rel=1e-12)
    assert host["b/weight"] == pytest.approx(float(torch.stack(weights)[:, 1].double().mean()), rel=1e-12)
    assert math.isnan(host["b/train_loss"]) and host["train_loss"] == host["a/train_loss"] + host["c/train_loss"]
    assert host_means == {"a": host["a/train_loss"], "c": host["c/train_loss"]}  # what the weighting method reads
    empty, _ = _epoch_row(1, _EpochTotals(["a"], ["a"], on_host=True))
    assert empty["a/train_loss"] != empty["a/train_loss"] and empty["a/weight"] != empty["a/weight"]  # NaN


def test_mismatched_tasks_and_targets_are_explained(device):
    with pytest.raises(KeyError, match=r"the weighting method has tasks \['reg', 'other'\]"):
        fit(_model(), TASKS, get_weighting("equal", ["reg", "other"]), _data(), epochs=1, device=device, progress=False)
    with pytest.raises(KeyError, match=r"targets for unknown task\(s\) \['seg'\]"):
        fit(
            _model(),
            TASKS,
            "equal",
            [(torch.zeros(2, 4), {"seg": torch.zeros(2)})],
            epochs=1,
            device=device,
            progress=False,
        )
    with pytest.raises(ValueError, match="ToyNoRepresentation has none"):
        fit(_model(ToyNoRepresentation), TASKS, "mgda_ub", _data(), epochs=1, device=device, progress=False)
    with pytest.raises(TypeError, match="a batch must be"):
        split_batch(torch.zeros(3))


def test_optimizer_must_update_learnable_weights(device):
    model = _model()
    with pytest.raises(ValueError, match=r"learnable parameters \['log_var'\]"):
        fit(
            model,
            TASKS,
            "uncertainty",
            _data(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            device=device,
            progress=False,
        )


def test_uncertainty_weights_are_learned_by_fit(device):
    method = get_weighting("uncertainty", NAMES, kinds={"cls": "classification"})
    history = fit(_model(), TASKS, method, _data(), epochs=3, lr=0.05, device=device, progress=False)
    assert not torch.equal(method.log_var.detach().cpu(), torch.zeros(2))
    assert history["reg/weight"].iloc[-1] != history["reg/weight"].iloc[0]


def test_penalty_gradient_is_added_each_step(device):
    class WeightDecayed(ToyHardSharing):
        """The test model with its own regulariser: the squared norm of the shared weights."""

        def penalty(self) -> torch.Tensor:
            return sum((p**2).sum() for p in self.shared_parameters())

    data = _data()[:1]
    model = _model(WeightDecayed)
    reference = copy.deepcopy(model).to(device)
    fit(
        model,
        TASKS,
        "equal",
        data,
        epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        penalty=0.3,
        device=device,
        progress=False,
    )
    x, y = data[0]
    out = reference(x.to(device))
    total = (
        mse_loss(out["reg"], y["reg"].to(device))
        + cross_entropy(out["cls"], y["cls"].to(device))
        + 0.3 * reference.penalty()
    )
    total.backward()
    with torch.no_grad():
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p, q - 0.1 * q.grad)


def test_best_weights_restores_the_best_epoch(device):
    model = _model()
    best = BestWeights(monitor="reg/val_loss")
    snapshots = []

    class Snapshot(BestWeights):
        def on_epoch_end(self, state):
            snapshots.append(copy.deepcopy(state.model.state_dict()))

    history = fit(
        model,
        TASKS,
        "equal",
        _data(),
        val_loader=_data(seed=2),
        epochs=6,
        lr=0.3,
        device=device,
        callbacks=[Snapshot(), best],
        progress=False,
    )
    best_epoch = int(history["reg/val_loss"].idxmin()) + 1
    assert best.best_epoch == best_epoch
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[best_epoch - 1][key])
    assert evaluate(model, TASKS, _data(seed=2), device)["reg/val_loss"] == pytest.approx(
        history["reg/val_loss"].min(), rel=1e-5
    )


def test_tcdcn_criterion_as_printed():
    errors = [2.0, 1.2, 1.0, 0.9, 0.95]
    k, lam, val = 3, 0.5, 1.4
    window = errors[-4:]
    med = sorted(window)[1:3]
    med = (med[0] + med[1]) / 2
    expected = (k * med / (sum(window) - k * med)) * ((val - min(errors)) / (lam * min(errors)))
    assert tcdcn_criterion(errors, val, k, lam) == pytest.approx(expected)
    with pytest.raises(ValueError, match="k \\+ 1 = 4 training errors, got 2"):
        tcdcn_criterion(errors[:2], val, k, lam)


def test_task_early_stopping_deactivates_the_auxiliary_task(device):
    stopper = TaskEarlyStopping("cls", k=2, epsilon=0.0)  # epsilon 0: stops at the first check with E_val > min E_tr
    method = get_weighting("equal", NAMES)
    flipped = [(x, {"reg": y["reg"], "cls": 1 - y["cls"]}) for x, y in _data(seed=3)]  # the auxiliary task overfits
    history = fit(
        _model(),
        TASKS,
        method,
        _data(),
        val_loader=flipped,
        epochs=5,
        lr=0.01,
        device=device,
        callbacks=[stopper],
        progress=False,
    )
    assert len(stopper.values) == 1 and stopper.values[0] > 0
    assert stopper.stopped_epoch == 3 and method.active == ["reg"]
    assert history["cls/weight"].iloc[3:].eq(0).all() and history["cls/train_loss"].iloc[3:].isna().all()
    assert history["reg/train_loss"].iloc[3:].notna().all()


def test_bf16_autocast_and_progress_bar_run(device, capsys):
    history = fit(_model(), TASKS, "pcgrad", _data(), val_loader=_data(seed=4), epochs=2, device=device, amp="bf16")
    assert history[["reg/train_loss", "cls/val_accuracy"]].notna().all().all()
    assert "epochs" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a GradScaler needs CUDA")
@pytest.mark.parametrize("name", ["equal", "uncertainty", "gradnorm", "mgda", "cagrad"])
def test_fp16_with_grad_scaler_on_cuda(name):
    history = fit(
        _model(), TASKS, get_weighting(name, NAMES), _data(), epochs=3, device="cuda", amp="fp16", progress=False
    )
    assert history["reg/train_loss"].notna().all()


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device"):
        fit(_model(), TASKS, "equal", _data(), device="cpu", amp="fp16", progress=False)


def test_per_task_history_averages_over_the_batches_that_label_the_task_and_over_every_step():
    """``<task>/train_loss`` is the mean over the batches that carry the task's labels (DWA reads it);
    ``<task>/weight`` is the mean of the weights of every step of the epoch (not the last step's)."""
    seen: dict[str, list[float]] = {"reg": [], "cls": []}

    def recording(name, loss):
        def wrapped(pred, target, mask=None):
            value = loss(pred, target, mask)
            seen[name].append(float(value.detach()))
            return value

        return wrapped

    class RecordingRLW(type(get_weighting("rlw", NAMES))):
        """Random loss weighting that keeps the weights it returned at every step."""

        returned: list[list[float]] = []

        def backward(self, losses, model, representation=None, grad_scale=None):
            weights = super().backward(losses, model, representation=representation, grad_scale=grad_scale)
            self.returned.append(weights.tolist())
            return weights

    batches = _data(n=48, batch=16)
    batches[1] = (batches[1][0], {"reg": batches[1][1]["reg"]})  # the second batch has no "cls" labels
    tasks = [Task("reg", recording("reg", mse_loss)), Task("cls", recording("cls", cross_entropy))]
    torch.manual_seed(0)
    rlw = RecordingRLW(NAMES)
    history = fit(_model(), tasks, rlw, batches, epochs=1, lr=0.01, device="cpu", progress=False)
    assert len(seen["reg"]) == 3 and len(seen["cls"]) == 2
    assert history["reg/train_loss"].iloc[0] == pytest.approx(statistics.mean(seen["reg"]), rel=1e-6)
    assert history["cls/train_loss"].iloc[0] == pytest.approx(statistics.mean(seen["cls"]), rel=1e-6)
    assert len(rlw.returned) == 3 and len({tuple(w) for w in rlw.returned}) == 3  # random weights per step
    for i, name in enumerate(NAMES):
        assert history[f"{name}/weight"].iloc[0] == pytest.approx(statistics.mean(w[i] for w in rlw.returned))

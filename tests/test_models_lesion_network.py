"""The one-encoder, two-decoder lesion network with a presence classifier (Playout et al., lecture B13)."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_course.data.fundus import make_fundus
from mtl_course.losses import binary_cross_entropy, soft_kappa_loss
from mtl_course.models.lesion_network import lesion_network, separate_lesion_networks
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting


def test_outputs_and_parameter_partition():
    net = lesion_network([4, 8])
    out = net(torch.zeros(2, 3, 16, 16))
    assert {t: tuple(y.shape) for t, y in out.items()} == {
        "bright": (2, 1, 16, 16),
        "red": (2, 1, 16, 16),
        "presence": (2, 1),
    }
    ids = [id(p) for p in net.shared_parameters()] + [id(p) for t in net.tasks for p in net.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())  # every parameter exactly once


def test_the_presence_classifier_reads_the_bottleneck_only():
    """Its gradient reaches the encoder but neither decoder."""
    net = lesion_network([4, 8])
    net(torch.randn(2, 3, 8, 8))["presence"].sum().backward()
    assert all(p.grad is None for t in ("bright", "red") for p in net.task_parameters(t))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.shared_parameters())


@pytest.mark.parametrize("prior", [0.005, 0.2])
def test_the_untrained_network_predicts_the_prior_everywhere_before_the_bias(prior):
    """With the decoders' weights zeroed, sigmoid(logit) is exactly the prior (the bias alone)."""
    for net in (lesion_network([4, 8], prior=prior), separate_lesion_networks([4, 8], prior=prior)):
        for t in ("bright", "red"):
            head = net.heads[t].head.conv if hasattr(net, "heads") else net.networks[t][1].head.conv
            torch.nn.init.zeros_(head.weight)
        out = net(torch.randn(2, 3, 8, 8))
        for t in ("bright", "red"):
            torch.testing.assert_close(torch.sigmoid(out[t]), torch.full_like(out[t], prior))
    assert math.isclose(net.networks["red"][1].head.conv.bias.item(), math.log(prior / (1 - prior)), rel_tol=1e-6)


def test_separate_networks_share_nothing_and_are_at_least_as_large():
    shared, separate = lesion_network([4, 8], presence=False), separate_lesion_networks([4, 8])
    assert separate.parameter_counts()["shared"] == 0
    assert separate.parameter_counts()["total"] > shared.parameter_counts()["total"]


def test_bad_arguments_and_input_are_named():
    with pytest.raises(ValueError, match=r"prior .* must lie in \(0, 1\)"):
        lesion_network([4, 8], prior=1.0)
    with pytest.raises(ValueError, match="channels must be a non-empty list"):
        lesion_network([])
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\)"):
        lesion_network([4, 8])(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="divisible by 2"):
        lesion_network([4, 8])(torch.zeros(2, 3, 9, 9))
    with pytest.raises(KeyError, match="unknown task 'vessels'"):
        list(lesion_network([4, 8]).task_parameters("vessels"))


METHODS = [m for m in available_methods() if m != "fixed"]
#: MGDA-UB needs one shared tensor z; the U-Net encoder hands its decoders a list of feature maps.
INCOMPATIBLE = {"mgda_ub": (ValueError, "has none")}


def _kappa(logits, target, mask=None):
    return soft_kappa_loss(torch.sigmoid(logits), target, mask)


@pytest.mark.parametrize("method", METHODS)
def test_trains_with_every_weighting_method(method):
    torch.manual_seed(0)
    data = make_fundus(16, size=16, seed=0)
    net = lesion_network([4, 8])
    tasks = [Task("bright", _kappa), Task("red", binary_cross_entropy), Task("presence", binary_cross_entropy)]
    weighting = get_weighting(method, net.tasks)
    loader = [data.batch()]
    if method in INCOMPATIBLE:
        error, message = INCOMPATIBLE[method]
        with pytest.raises(error, match=message):
            fit(net, tasks, weighting, loader, epochs=1, progress=False)
        return
    history = fit(net, tasks, weighting, loader * 25, epochs=1, lr=1e-2, progress=False)
    loss = history["train_loss"].iloc[-1]
    assert math.isfinite(loss)
    with torch.no_grad():
        out = net(data.x)
        after = sum(t.loss(out[t.name], data.targets[t.name]).item() for t in tasks)
    fresh = lesion_network([4, 8])
    with torch.no_grad():
        out = fresh(data.x)
        before = sum(t.loss(out[t.name], data.targets[t.name]).item() for t in tasks)
    assert after < before, f"{method}: summed loss {before:.3f} -> {after:.3f} did not fall"

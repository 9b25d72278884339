"""mtl_course.models.blocks and the helpers of mtl_course.models.base."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtl_course.models.base import check_same_tasks, check_task_outputs, last_layer_parameters
from mtl_course.models.blocks import (
    BottleneckHead,
    CNNTrunk,
    DenseHead,
    LinearHead,
    MLPTrunk,
    StagedEncoder,
    UNetDecoder,
    UNetEncoder,
)


def test_mlp_trunk_runs_its_stages_in_order(device: torch.device) -> None:
    torch.manual_seed(0)
    trunk = MLPTrunk(in_features=20, hidden=[32, 16]).to(device)
    x = torch.randn(8, 20, device=device)
    stages = trunk.forward_stages(x)
    assert [tuple(h.shape) for h in stages] == [(8, 32), (8, 16)]
    first = trunk.stages[0][0]
    torch.testing.assert_close(stages[0], torch.relu(x @ first.weight.T + first.bias))
    torch.testing.assert_close(trunk(x), stages[-1])
    assert trunk.out_channels == [32, 16] and trunk.out_features == 16 and len(trunk) == 2


def test_mlp_trunk_names_the_expected_and_the_given_width() -> None:
    trunk = MLPTrunk(in_features=20, hidden=[32])
    with pytest.raises(ValueError, match=r"\(N, 20\), got \(8, 19\).*in_features is 20 but the batch has 19"):
        trunk(torch.zeros(8, 19))
    with pytest.raises(ValueError, match=r"got \(2, 4, 20\)"):
        trunk(torch.zeros(2, 4, 20))


@pytest.mark.parametrize("bad", [[], [32, 0], [32, 2.5]])
def test_trunks_reject_bad_widths(bad: list) -> None:
    with pytest.raises(ValueError, match="hidden must be a non-empty list of positive ints"):
        MLPTrunk(in_features=4, hidden=bad)


def test_staged_encoder_needs_one_width_per_stage() -> None:
    with pytest.raises(ValueError, match="2 stages, 1 out_channels"):
        StagedEncoder([nn.Linear(2, 2), nn.Linear(2, 2)], out_channels=[2])


@pytest.mark.parametrize(("pool", "size"), [(True, 4), (False, 16)])
def test_cnn_trunk_shapes(device: torch.device, pool: bool, size: int) -> None:
    trunk = CNNTrunk(in_channels=3, channels=[4, 8], pool=pool).to(device)
    out = trunk(torch.zeros(2, 3, 16, 16, device=device))
    assert tuple(out.shape) == (2, 8, size, size)


def test_cnn_trunk_names_the_expected_channels() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(2, 1, 16, 16\)"):
        CNNTrunk(in_channels=3, channels=[4])(torch.zeros(2, 1, 16, 16))


def test_unet_encoder_returns_every_scale_and_checks_divisibility(device: torch.device) -> None:
    enc = UNetEncoder(in_channels=2, channels=[4, 8, 16]).to(device)
    feats = enc(torch.zeros(3, 2, 16, 8, device=device))
    assert [tuple(f.shape) for f in feats] == [(3, 4, 16, 8), (3, 8, 8, 4), (3, 16, 4, 2)]
    with pytest.raises(ValueError, match="divisible by 4, got an image of 16x6"):
        enc(torch.zeros(1, 2, 16, 6, device=device))


def test_unet_decoders_use_the_skip_connections(device: torch.device) -> None:
    torch.manual_seed(0)
    enc = UNetEncoder(1, [4, 8, 16]).to(device)
    decoders = [UNetDecoder([4, 8, 16], out_channels=c).to(device) for c in (3, 1)]
    feats = [f.detach().requires_grad_() for f in enc(torch.randn(2, 1, 8, 8, device=device))]
    outs = [dec(feats) for dec in decoders]  # several decoders on one encoder
    assert [tuple(o.shape) for o in outs] == [(2, 3, 8, 8), (2, 1, 8, 8)]
    grads = torch.autograd.grad(outs[0].square().sum(), feats)
    # every scale, the finest skip included, reaches the output
    assert all(g.abs().sum() > 0 for g in grads)


def test_unet_decoder_names_what_it_expects() -> None:
    dec = UNetDecoder([4, 8], out_channels=1)
    with pytest.raises(ValueError, match="list of 2 feature maps .* got one tensor"):
        dec(torch.zeros(1, 8, 2, 2))
    with pytest.raises(ValueError, match="got 3 feature maps"):
        dec([torch.zeros(1, 4, 4, 4)] * 3)


def test_linear_head_pools_images_globally(device: torch.device) -> None:
    torch.manual_seed(0)
    head = LinearHead(in_features=8, out_features=3, hidden=[5]).to(device)
    feats = torch.randn(2, 8, 4, 4, device=device)
    torch.testing.assert_close(head(feats), head(feats.mean(dim=(2, 3))))
    assert [m.out_features for m in head.layers if isinstance(m, nn.Linear)] == [5, 3]
    with pytest.raises(ValueError, match=r"\(N, 8\) or \(N, 8, H, W\), got \(2, 7\)"):
        head(torch.zeros(2, 7, device=device))


def test_bottleneck_head_reads_the_deepest_feature_map_of_a_unet_encoder() -> None:
    torch.manual_seed(0)
    enc, head = UNetEncoder(1, [4, 8]), BottleneckHead(8, 3)
    feats = enc(torch.randn(2, 1, 8, 8))
    torch.testing.assert_close(head(feats), head.layers(feats[-1].mean(dim=(2, 3))))
    with pytest.raises(ValueError, match="list of feature maps of a UNetEncoder, got one tensor"):
        head(feats[-1])


def test_dense_head_is_a_per_pixel_linear_map(device: torch.device) -> None:
    torch.manual_seed(0)
    head = DenseHead(in_channels=4, out_channels=2).to(device)
    x = torch.randn(2, 4, 3, 5, device=device)
    weight, bias = head.conv.weight[:, :, 0, 0], head.conv.bias
    expected = torch.einsum("oc,nchw->nohw", weight, x) + bias.view(1, -1, 1, 1)
    torch.testing.assert_close(head(x), expected)


def test_last_layer_parameters_are_the_last_linear() -> None:
    trunk = MLPTrunk(4, [3, 2])
    last = trunk.stages[-1][0]
    assert [id(p) for p in last_layer_parameters(trunk)] == [id(last.weight), id(last.bias)]
    with pytest.raises(ValueError, match="ReLU has no parameters"):
        last_layer_parameters(nn.ReLU())


def test_task_mappings_are_validated() -> None:
    assert check_task_outputs({"a": 1, "b": 4}) == {"a": 1, "b": 4}
    with pytest.raises(ValueError, match="task 'b': output dimension must be a positive int, got 0"):
        check_task_outputs({"a": 1, "b": 0})
    with pytest.raises(TypeError, match="must map task name"):
        check_task_outputs(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"heads must have one entry per task \['a', 'b'\], got keys \['a'\]"):
        check_same_tasks("heads", {"a": 1}, ["a", "b"])

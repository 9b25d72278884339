"""HyperFace's hyperfeatures: the model contract, the fusion, bad input, and training with every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data import make_faces
from mtl_course.experiments.faces import face_task, select_tasks
from mtl_course.models import HyperFace, HyperFeatures
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting

TASKS = {"face": 2, "landmarks": 10, "pose": 3}


@pytest.mark.parametrize("fuse", [True, False])
def test_contract_every_parameter_once_and_one_output_per_task(fuse: bool) -> None:
    model = HyperFace(TASKS, size=32, channels=(4, 8, 8, 8), fuse=fuse)
    out = model(torch.zeros(3, 1, 32, 32))
    assert {t: tuple(y.shape) for t, y in out.items()} == {"face": (3, 2), "landmarks": (3, 10), "pose": (3, 3)}
    ids = [id(p) for p in model.shared_parameters()] + [id(p) for t in TASKS for p in model.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert model.last_shared_layer() == list(model.trunk.fc.parameters())
    z = model.encode(torch.zeros(3, 1, 32, 32))
    torch.testing.assert_close(model.decode(z)["pose"], out["pose"])


def test_fusion_reads_every_stage_and_the_ablation_only_the_last() -> None:
    fused = HyperFeatures(1, [4, 8, 8, 8], size=32)
    last = HyperFeatures(1, [4, 8, 8, 8], size=32, fuse=False)
    assert fused.fused_stages == [0, 1, 2, 3] and last.fused_stages == [3]
    assert fused.mix.in_channels == 4 + 8 + 8 + 8 and last.mix.in_channels == 8
    # the fused output changes when only an early stage's resize weights change; the ablation has none
    x = torch.randn(2, 1, 32, 32)
    before = fused(x)
    with torch.no_grad():
        fused.resize[0].weight.add_(1.0)
    assert not torch.allclose(before, fused(x))
    assert len(last.resize) == 0


def test_bad_input_names_the_expected_shape() -> None:
    model = HyperFace(TASKS, size=32, channels=(4, 8, 8, 8))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 32, 32\), got \(2, 1, 24, 24\)"):
        model(torch.zeros(2, 1, 24, 24))
    with pytest.raises(ValueError, match="must be divisible by 2 \\*\\* 4"):
        HyperFeatures(1, [4, 8, 8, 8], size=24)
    with pytest.raises(ValueError, match="output dimension must be a positive int"):
        HyperFace({"face": 0}, size=32)


METHODS = [m for m in available_methods() if m != "fixed"] + ["fixed"]


@pytest.mark.parametrize("method", METHODS)
def test_hyperface_trains_with_every_weighting_method(method: str) -> None:
    data = select_tasks(make_faces(64, non_face=0.25, seed=0), list(TASKS))
    names = list(TASKS)
    hyper = {"weights": dict.fromkeys(names, 1.0)} if method == "fixed" else {}
    torch.manual_seed(0)
    model = HyperFace(TASKS, size=32, channels=(4, 8, 8, 8))
    history = fit(
        model,
        [face_task(t) for t in names],
        get_weighting(method, names, **hyper),
        data.loader(),
        epochs=30,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.9 * first, f"HyperFace + {method}: loss {first:.3f} -> {last:.3f} did not fall"

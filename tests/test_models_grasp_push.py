"""The grasp-and-push network (Pinto & Gupta, ICRA 2017, arXiv 1609.09025): contract, shapes, bad input, and
training with every weighting method."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data import make_tabletop
from mtl_course.experiments import grasp_push_tasks
from mtl_course.models import ActionHead, GraspPushNetwork
from mtl_course.train import fit
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_and_the_parameter_partition(device: torch.device) -> None:
    torch.manual_seed(0)
    net = GraspPushNetwork(16, [8, 16], grasp_angles=6, push_directions=4).to(device)
    out = net(torch.zeros(3, 1, 16, 16, device=device))
    assert {t: tuple(y.shape) for t, y in out.items()} == {"grasp": (3, 6), "push": (3, 4, 2)}
    ids = [id(p) for p in net.shared_parameters()] + [id(p) for t in net.tasks for p in net.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()), "shared + task parameters must cover each once"
    assert net.has_shared_representation and tuple(net.encode(torch.zeros(1, 1, 16, 16, device=device)).shape) == (
        1,
        16,
        4,
        4,
    )


def test_the_heads_read_where_the_features_are_not_only_their_average() -> None:
    """A flattening head tells two feature maps with the same spatial mean apart; a pooling head cannot."""
    torch.manual_seed(0)
    head = ActionHead((2, 2, 2), actions=3)
    a, b = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    a[0, 0, 0, 0], b[0, 0, 1, 1] = 1.0, 1.0
    assert not torch.allclose(head(a), head(b))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GraspPushNetwork(12, [8, 16, 32]), "needs size divisible by 8, got size=12"),
        (lambda: ActionHead((4, 2), 3), r"in_shape must be a feature map's \(C, H, W\), got \(4, 2\)"),
        (lambda: ActionHead((4, 2, 2), 0), "actions must be a positive int, got 0"),
        (lambda: ActionHead((4, 2, 2), 3, outputs=0), "outputs must be a positive int, got 0"),
    ],
)
def test_bad_construction_names_what_was_wrong(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_wrong_input_shape_names_the_expected_one() -> None:
    net = GraspPushNetwork(16, [8, 16])
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\), got \(2, 3, 16, 16\)"):
        net(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"ActionHead expects features of shape \(N, 16, 4, 4\), got \(2, 16, 2, 2\)"):
        net(torch.zeros(2, 1, 8, 8))


METHODS = [m for m in available_methods() if m != "fixed"]


@pytest.mark.parametrize("method", METHODS)
def test_the_network_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    """Partially labelled batches (each interaction labels one action of one task), every weighting method."""
    data = make_tabletop(48, 48, seed=0)
    torch.manual_seed(0)
    net = GraspPushNetwork(16, [8, 16])
    history = fit(
        net,
        grasp_push_tasks(),
        get_weighting(method, net.tasks),
        [data.batch(device)] * 4,
        epochs=10,
        lr=1e-2,
        device=device,
        progress=False,
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.9 * first, f"{method}: loss {first:.3f} -> {last:.3f} did not fall"

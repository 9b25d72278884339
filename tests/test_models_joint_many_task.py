"""The Joint Many-Task model (Hashimoto et al., EMNLP 2017, arXiv 1611.01587): contract, hierarchy, label embeddings."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data import make_toy_language
from mtl_course.losses import cross_entropy
from mtl_course.models import JointManyTask, pair_features
from mtl_course.train import Task, fit
from mtl_course.weighting import available_methods, get_weighting

pytestmark = pytest.mark.usefixtures("one_thread")
TASKS = {"pos": 5, "chunk": 4, "relation": 3}


def _model(hierarchy: bool = True, **kw) -> JointManyTask:
    torch.manual_seed(0)
    return JointManyTask(30, TASKS, hierarchy=hierarchy, **kw)


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 30, (3, 2, 6), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("hierarchy", [True, False])
def test_shapes_and_the_parameter_partition(hierarchy: bool, device: torch.device) -> None:
    model = _model(hierarchy).to(device)
    out = model(_x().to(device))
    assert {t: tuple(y.shape) for t, y in out.items()} == {
        "pos": (3, 5, 2, 6),
        "chunk": (3, 4, 2, 6),
        "relation": (3, 3),
    }
    ids = [id(p) for p in model.shared_parameters()] + [id(p) for t in TASKS for p in model.task_parameters(t)]
    assert sorted(ids) == sorted(id(p) for p in model.parameters()), "shared + task parameters must cover each once"


def test_shortcuts_and_label_embeddings_widen_every_layer_input() -> None:
    E, H, D = 16, 16, 8
    widths = [layer.input_size for layer in _model(embedding_dim=E, hidden=H, label_dim=D).layers]
    assert widths == [E, 2 * H + E + D, 2 * H + E + 2 * D]
    assert [layer.input_size for layer in _model(False).layers] == [E, 2 * H + E, 2 * H + E]


def test_label_embedding_is_the_probability_weighted_average_of_the_label_vectors() -> None:
    model = _model()
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    p = torch.softmax(logits, dim=-1)
    vectors = model.label_embeddings["pos"].weight.T  # (classes, label_dim): row c is the embedding of label c
    brute = torch.stack([sum(p[i, c] * vectors[c] for c in range(5)) for i in range(4)])
    torch.testing.assert_close(model.label_embedding("pos", logits), brute)


def test_pair_features_match_a_loop() -> None:
    g = torch.Generator().manual_seed(2)
    h, mask = torch.randn(4, 5, 3, generator=g), torch.rand(4, 5, generator=g) > 0.3
    mask[:, 0] = True
    pooled = [torch.stack([h[i, t] for t in range(5) if mask[i, t]]).max(0).values for i in range(4)]
    expected = torch.stack(
        [torch.cat([(pooled[2 * i] - pooled[2 * i + 1]).abs(), pooled[2 * i] * pooled[2 * i + 1]]) for i in range(2)]
    )
    torch.testing.assert_close(pair_features(h, mask, 2), expected)


@pytest.mark.parametrize("hierarchy", [True, False])
def test_a_task_depends_on_the_layers_below_it_only_in_the_hierarchy(hierarchy: bool) -> None:
    model, x = _model(hierarchy), _x()
    before = model(x)
    with torch.no_grad():
        for p in model.layers[2].parameters():
            p.add_(0.5)
    after = model(x)
    assert torch.equal(before["pos"], after["pos"]) == hierarchy
    assert torch.equal(before["chunk"], after["chunk"]) == hierarchy
    assert not torch.equal(before["relation"], after["relation"])


def test_up_to_runs_only_the_lower_layers_and_agrees_with_the_full_pass() -> None:
    model, x = _model(), _x()
    full = model(x)
    with model.up_to("chunk"):
        part = model(x)
    assert list(part) == ["pos", "chunk"] and all(torch.equal(part[t], full[t]) for t in part)
    assert list(model(x)) == list(TASKS), "leaving the context restores the full pass"
    with _model(False).up_to("pos"):
        assert list(_model(False)(x)) == list(TASKS)


def test_lower_parameters_grow_with_depth() -> None:
    model = _model()
    sizes = [sum(p.numel() for p in model.lower_parameters(t)) for t in TASKS]
    assert sizes[0] == model.embedding.weight.numel() and sizes[0] < sizes[1] < sizes[2]


def test_bad_inputs_name_what_was_wrong() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"shape \(B, 2, L\).*got \(3, 6\)"):
        model(torch.ones(3, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="integer word indices, got dtype torch.float32"):
        model(torch.ones(3, 2, 6))
    with pytest.raises(KeyError, match="unknown task 'ner'"):
        list(model.lower_parameters("ner"))
    with pytest.raises(ValueError, match="needs a word-level task and a pair task"):
        JointManyTask(10, {"relation": 3})
    with pytest.raises(ValueError, match="at least one task"):
        JointManyTask(10, {})
    with pytest.raises(ValueError, match="hidden must be positive, got 0"):
        JointManyTask(10, TASKS, hidden=0)
    with pytest.raises(ValueError, match="output dimension must be a positive int"):
        JointManyTask(10, {"pos": 0, "relation": 3})


def test_nan_logits_give_nan_label_embeddings_that_the_training_loop_reports() -> None:
    data = make_toy_language(12, seed=0)
    model = JointManyTask(len(data.info["vocabulary"]), TASKS)
    with torch.no_grad():
        model.heads["pos"].weight.fill_(float("nan"))
    tasks = [Task(t, cross_entropy) for t in TASKS]
    with pytest.raises(FloatingPointError, match="task 'pos' is not finite"):
        fit(model, tasks, "equal", [data.batch()], epochs=1, progress=False, device="cpu")


METHODS = [m for m in available_methods() if m != "fixed"]


@pytest.mark.parametrize("method", METHODS)
def test_it_trains_with_every_weighting_method(method: str, device: torch.device) -> None:
    data = make_toy_language(24, seed=0)
    tasks = [Task(t, cross_entropy) for t in TASKS]
    model = JointManyTask(len(data.info["vocabulary"]), TASKS, hidden=8, embedding_dim=8, label_dim=4)
    loader = [data.batch(device)]
    if method == "mgda_ub":
        with pytest.raises(ValueError, match="JointManyTask has none"):
            fit(model, tasks, get_weighting(method, list(TASKS)), loader, epochs=1, progress=False, device=device)
        return
    history = fit(
        model, tasks, get_weighting(method, list(TASKS)), loader, epochs=30, lr=2e-2, progress=False, device=device
    )
    first, last = history["train_loss"].iloc[0], history["train_loss"].iloc[-1]
    assert last < 0.8 * first, f"{method}: loss {first:.3f} -> {last:.3f} did not fall"

"""The Joint Many-Task training turns (Hashimoto et al., EMNLP 2017, arXiv 1611.01587)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from mtl_course.data import make_toy_language
from mtl_course.experiments import JMT, STL, TOP, forgetting, jmt_tasks, run_joint_many_task, train_turns, turn_task
from mtl_course.losses import cross_entropy
from mtl_course.models import JointManyTask

pytestmark = pytest.mark.usefixtures("one_thread")
CLASSES = {"pos": 5, "chunk": 4, "relation": 3}


def _setup(hierarchy: bool = True):
    data = make_toy_language(30, seed=0)
    torch.manual_seed(0)
    return JointManyTask(len(data.info["vocabulary"]), CLASSES, hidden=8, hierarchy=hierarchy), data


def test_the_turn_objective_is_the_loss_plus_delta_times_the_squared_distance_to_the_snapshot() -> None:
    model, data = _setup()
    task = jmt_tasks()[1]
    turn = turn_task(task, model, delta=0.5)
    x, ys = data.batch()
    assert turn.loss(model(x)["chunk"], ys["chunk"]).item() == pytest.approx(
        cross_entropy(model(x)["chunk"], ys["chunk"]).item()
    )
    with torch.no_grad():
        for p in model.lower_parameters("chunk"):
            p.add_(0.1)
        moved = sum(p.numel() for p in model.lower_parameters("chunk"))
        direct = cross_entropy(model(x)["chunk"], ys["chunk"]).item() + 0.5 * moved * 0.1**2
    assert turn.loss(model(x)["chunk"], ys["chunk"]).item() == pytest.approx(direct, rel=1e-5)


def test_a_turn_moves_only_the_parameters_its_task_reaches() -> None:
    model, data = _setup()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = train_turns(model, data, data, epochs=1, delta=0.0, turns=["pos"], device="cpu")
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {n for n in before if n.startswith(("embedding", "layers.0", "heads.pos"))}
    assert list(history.turn) == ["init", "pos"] and list(history.epoch) == [0, 1]


def test_a_large_delta_keeps_the_lower_layers_at_their_snapshot() -> None:
    """Six steps per turn: the first step of a turn starts at the snapshot (the term and its gradient are 0 there),
    the later ones are pulled back to it."""
    drift = {}
    for delta in (0.0, 1e4):
        model, data = _setup()
        lower = [p.detach().clone() for p in model.lower_parameters("relation")]
        train_turns(model, data, data, epochs=1, delta=delta, turns=["relation"], batch_size=5, device="cpu")
        drift[delta] = sum(
            float((p.detach() - q).pow(2).sum()) for p, q in zip(model.lower_parameters("relation"), lower, strict=True)
        )
    assert drift[1e4] < 0.1 * drift[0.0]


def test_every_turn_is_measured_in_order() -> None:
    model, data = _setup()
    history = train_turns(model, data, data, epochs=2, delta=0.1, device="cpu")
    assert list(history.turn) == ["init"] + ["pos", "chunk", "relation"] * 2
    assert history[["pos", "chunk", "relation"]].stack().between(0, 1).all()


def test_forgetting_is_the_drop_after_the_own_turn() -> None:
    turns = pd.DataFrame(
        {
            "epoch": [0, 1, 1, 1, 2, 2, 2],
            "turn": ["init", "pos", "chunk", "relation"] * 1 + ["pos", "chunk", "relation"],
            "chunk": [0.1, 0.2, 0.9, 0.7, 0.7, 0.95, 0.95],
        }
    )
    assert forgetting(turns, "chunk").round(2).tolist() == [0.2, 0.0]


def test_the_experiment_has_one_row_per_condition_and_seed() -> None:
    result = run_joint_many_task([0], [0.0, 1.0], top_delta=1.0, n_train=12, n_test=9, epochs=1, hidden=4, device="cpu")
    s = result.summary
    assert list(zip(s.condition, s.delta, strict=True)) == [(JMT, 0.0), (JMT, 1.0), (TOP, 1.0), (STL, 0.0)]
    assert s[["pos", "chunk", "relation"]].notna().all().all()
    assert math.isnan(s.loc[s.condition == STL, "forgetting_pos"].item())
    assert set(result.turns.condition) == {JMT, TOP, STL}


def test_bad_settings_are_refused() -> None:
    model, data = _setup()
    with pytest.raises(ValueError, match="delta must be a finite number >= 0, got -1"):
        turn_task(jmt_tasks()[0], model, delta=-1.0)
    with pytest.raises(ValueError, match="got nan"):
        turn_task(jmt_tasks()[0], model, delta=float("nan"))
    with pytest.raises(KeyError, match="unknown task 'ner'"):
        train_turns(model, data, data, epochs=1, delta=0.0, turns=["ner"])
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_turns(model, data, data, epochs=0, delta=0.0)
    with pytest.raises(ValueError, match="at least one seed and one delta"):
        run_joint_many_task([], [0.0], top_delta=0.0)

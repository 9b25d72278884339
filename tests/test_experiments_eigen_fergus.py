"""The recipe of lecture B1 on a tiny problem: the arms, the metric table, the edge errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.data.indoor_scenes import depth_edges, make_indoor_scenes
from mtl_course.data.tasks import MultiTaskData
from mtl_course.experiments.eigen_fergus import (
    METRICS,
    NO_GRADIENT,
    edge_errors,
    metrics_table,
    run_eigen_fergus,
    scene_tasks,
)


@pytest.fixture(scope="module")
def tiny():
    train, test = make_indoor_scenes(8, size=8, seed=0), make_indoor_scenes(6, size=8, seed=1)
    return train, test, run_eigen_fergus(train, test, [0, 1], epochs=2, batch_size=4)


def test_every_arm_and_seed_is_trained(tiny) -> None:
    _, _, result = tiny
    counts = result.summary.groupby(["condition", "tasks"]).size().to_dict()
    assert counts == {
        ("MTL", "depth+normals+semantic"): 2,
        ("STL", "depth"): 2,
        ("STL", "normals"): 2,
        ("STL", "semantic"): 2,
        (NO_GRADIENT, "depth"): 2,
    }


def test_metrics_table_joins_the_single_task_networks(tiny) -> None:
    _, test, result = tiny
    table = metrics_table(result, test)
    columns = [f"{t}/{m}" for t, ms in METRICS.items() for m in ms]
    stl = table[table.condition == "STL"]
    assert len(stl) == 2 and stl[columns].notna().all().all()
    assert table[table.condition == NO_GRADIENT][columns[3:]].isna().all().all()


def test_edge_errors_against_a_direct_computation(tiny) -> None:
    _, test, result = tiny
    model = result.models[0]
    with torch.no_grad():
        pred = model(torch.as_tensor(test.x))["depth"].numpy()
    edges = depth_edges(test.truth["depth"])
    sq = (pred - test.truth["depth"]) ** 2
    got = edge_errors(model, test)
    assert got["edge"] == pytest.approx(np.sqrt(sq[edges].mean()), rel=1e-5)
    assert got["flat"] == pytest.approx(np.sqrt(sq[~edges].mean()), rel=1e-5)


def test_bad_input_names_the_problem(tiny) -> None:
    train, test, result = tiny
    with pytest.raises(KeyError, match="subset of the tasks"):
        scene_tasks(["depth", "albedo"])
    with pytest.raises(ValueError, match="at least one seed"):
        run_eigen_fergus(train, test, [])
    with pytest.raises(KeyError, match="truth"):
        edge_errors(result.models[0], MultiTaskData(test.x, test.targets))


def test_step_error_is_blind_to_a_global_scale_and_sees_a_blurred_edge(tiny) -> None:
    """A model that predicts the truth times a global scale has step error 0; one that blurs the truth does not."""
    _, test, result = tiny

    class Predict(torch.nn.Module):
        tasks = ["depth"]

        def __init__(self, depth: np.ndarray) -> None:
            super().__init__()
            self.depth = torch.as_tensor(depth)
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"depth": self.depth}

    truth = np.asarray(test.truth["depth"], dtype=np.float64)
    scaled = edge_errors(Predict(truth + 0.3), test)
    assert scaled["step"] == pytest.approx(0.0, abs=1e-12) and scaled["edge"] == pytest.approx(0.3)
    blurred = (truth + np.roll(truth, 1, axis=2) + np.roll(truth, -1, axis=2)) / 3
    assert edge_errors(Predict(blurred), test)["step"] > 0.05

"""The face recipes (B4, B5, B7) on tiny budgets, and the engine's per-run weighting and callbacks they use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.data import make_faces
from mtl_course.experiments import Run, train_each
from mtl_course.experiments.faces import (
    EARLY_STOP,
    FUSED,
    LAST,
    MAIN_ONLY,
    TCDCN_TASKS,
    TO_THE_END,
    errors_by_group,
    face_model,
    face_task,
    run_hyperface,
    run_tcdcn,
    select_tasks,
)
from mtl_course.weighting import FixedWeighting

TINY = {"n_train": 40, "n_test": 40, "epochs": 2, "batch_size": 20, "device": "cpu"}


def test_run_hyperface_gives_one_row_per_seed_condition_and_lambda() -> None:
    result = run_hyperface(seeds=(0,), lambda_landmarks=(0.5, 5.0), measure_every=1, **TINY)
    s = result.summary
    assert sorted(zip(s["condition"], s["lambda_landmarks"], strict=True)) == [
        (FUSED, 0.5),
        (FUSED, 5.0),
        (LAST, 0.5),
        (LAST, 5.0),
    ]
    assert np.isfinite(s["test_landmarks"]).all() and (s["test_face"] <= 1).all()
    with pytest.raises(ValueError, match="unknown HyperFace condition"):
        run_hyperface(seeds=(0,), conditions=("fused",), **TINY)


def test_run_tcdcn_stops_auxiliaries_only_in_the_early_stopping_condition() -> None:
    result, stoppers = run_tcdcn(seeds=(0,), k=1, epsilon=-1.0, **TINY)  # epsilon < 0: stop at the first chance
    assert set(result.summary["condition"]) == {MAIN_ONLY, TO_THE_END, EARLY_STOP}
    assert list(stoppers) == [(EARLY_STOP, 0)]
    assert [s.stopped_epoch for s in stoppers[EARLY_STOP, 0]] == [2, 2, 2, 2]
    main_only = next(r for r in result.runs if r.condition == MAIN_ONLY)
    assert main_only.train.n_labelled() == {"landmarks": 40, **dict.fromkeys(TCDCN_TASKS[1:], 0)}
    assert (main_only.test.targets["landmarks"][..., 2] == 1).all(), "TCDCN counts every landmark"
    with pytest.raises(ValueError, match="unknown TCDCN condition"):
        run_tcdcn(seeds=(0,), conditions=("main",), **TINY)


def test_errors_by_group_match_the_metric_on_each_subset() -> None:
    test = select_tasks(make_faces(30, seed=3), ["landmarks", "gender"])
    torch.manual_seed(0)
    model = face_model(["landmarks", "gender"], fuse=False)
    groups = np.arange(30) % 3
    by_group = errors_by_group(model, test, "landmarks", groups)
    with torch.no_grad():
        out = model(test.x)["landmarks"]
    metric = face_task("landmarks").metrics["error"]
    for g in range(3):
        assert by_group[g] == pytest.approx(metric(out[groups == g], test.targets["landmarks"][groups == g]))
    with pytest.raises(ValueError, match=r"one label per test case, shape \(30,\)"):
        errors_by_group(model, test, "landmarks", groups[:5])


def test_face_task_and_select_tasks_name_what_is_missing() -> None:
    with pytest.raises(KeyError, match="unknown face task 'age'"):
        face_task("age")
    with pytest.raises(KeyError, match=r"missing \['age'\]"):
        select_tasks(make_faces(2), ["gender", "age"])
    with pytest.raises(KeyError, match="cannot select the tasks"):
        select_tasks(make_faces(2), [])


def test_train_each_takes_a_fresh_weighting_per_run_and_refuses_callbacks_without_validation() -> None:
    data = select_tasks(make_faces(20, seed=0), ["gender", "glasses"])
    runs = [Run("a", 0, data, data, data, {"w": 1.0}), Run("b", 0, data, data, data, {"w": 0.0})]
    made = []

    def weighting(run: Run) -> FixedWeighting:
        made.append(FixedWeighting(["gender", "glasses"], {"gender": 1.0, "glasses": run.info["w"]}))
        return made[-1]

    tasks = [face_task("gender"), face_task("glasses")]
    train_each(
        runs,
        lambda run: face_model(["gender", "glasses"], fuse=False),
        tasks,
        epochs=1,
        weighting=weighting,
        device="cpu",
    )
    assert [float(m.lambdas[1]) for m in made] == [1.0, 0.0]
    with pytest.raises(ValueError, match="has callbacks but no validation set"):
        train_each(
            [Run("a", 0, data, None, data)],
            lambda run: face_model(["gender", "glasses"], fuse=False),
            tasks,
            epochs=1,
            callbacks=lambda run: [object()],
            device="cpu",
        )

"""The recipe of lecture B8: effective weights, the experiment on a tiny scale, the memory measurement."""

from __future__ import annotations

import pytest
import torch

from mtl_course.experiments import BATCH_MEAN, LABELLED_MEAN, STL, effective_weights, run_ubernet
from mtl_course.experiments.ubernet import build_model, memory_profile, saved_activation_bytes, ubernet_tasks
from mtl_course.models import ubernet

pytestmark = pytest.mark.usefixtures("one_thread")


def test_effective_weights_closed_form() -> None:
    table = effective_weights({"rare": 5, "common": 95}, 100)
    assert table.loc["rare"].to_dict() == pytest.approx(
        {"labelled: task": 1.0, "labelled: item": 0.2, "batch: task": 0.05, "batch: item": 0.01}
    )
    assert table.loc["common", "batch: task"] == pytest.approx(0.95)


@pytest.mark.parametrize("counts", [{"a": 0}, {"a": 101}])
def test_effective_weights_refuses_impossible_counts(counts: dict) -> None:
    with pytest.raises(ValueError, match="1 <= n_t <= B"):
        effective_weights(counts, 100)


def test_tiny_experiment_has_every_condition_split_and_seed() -> None:
    result = run_ubernet(
        [0, 1],
        [(1 / 3, 1 / 3, 1 / 3), (0.1, 0.45, 0.45)],
        n_train=60,
        n_test=30,
        epochs=1,
        channels=(4,),
        hidden=2,
        device="cpu",
    )
    summary = result.summary
    assert len(summary) == 3 * 2 * 2
    assert set(summary.condition) == {LABELLED_MEAN, BATCH_MEAN, STL}
    assert summary.groupby(["condition", "split"]).size().eq(2).all()
    assert summary["fraction_digit"].round(2).isin([0.33, 0.1]).all()
    for task in ("digit", "parity", "ink"):
        assert summary[f"test_{task}"].between(0, 1).all()


def test_with_balanced_labels_and_the_full_batch_the_two_averages_train_alike() -> None:
    """Equal label counts make the batch mean the labelled mean / 3 for every task; Adam ignores the scale."""
    result = run_ubernet(
        [0],
        [(1 / 3, 1 / 3, 1 / 3)],
        n_train=60,
        n_test=40,
        epochs=5,
        batch_size=None,
        channels=(4,),
        hidden=2,
        conditions=[LABELLED_MEAN, BATCH_MEAN],
        device="cpu",
    )
    a, b = (result.select(condition=c).iloc[0] for c in (LABELLED_MEAN, BATCH_MEAN))
    for task in ("digit", "parity", "ink"):
        assert abs(a[f"test_{task}"] - b[f"test_{task}"]) < 1e-3


def test_bad_arguments_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="at least one seed and one label split"):
        run_ubernet([], [(1 / 3, 1 / 3, 1 / 3)])
    with pytest.raises(ValueError, match="unknown condition"):
        run_ubernet([0], [(1 / 3, 1 / 3, 1 / 3)], conditions=["hard"])
    with pytest.raises(ValueError, match="unknown condition"):
        build_model("hard")
    with pytest.raises(ValueError, match="'labelled' or 'batch'"):
        ubernet_tasks("mean")
    with pytest.raises(ValueError, match="head counts >= 1"):
        memory_profile([0])


def test_saved_bytes_closed_form_with_and_without_checkpointed_heads() -> None:
    """Each plain dense head keeps its hidden map (B, h, H, W) and its output; a checkpointed one only its output."""
    batch, hidden, x = 16, 6, torch.randn(16, 1, 8, 8)
    per_output, per_hidden = batch * 2 * 64 * 4, batch * hidden * 64 * 4
    saved = {}
    for n in (1, 2, 3):
        for ckpt in (False, True):
            tasks = {f"ink{k}": 2 for k in range(n)}
            model = ubernet(1, [4, 4], tasks, dense=list(tasks), hidden=hidden, checkpoint_heads=ckpt)
            saved[n, ckpt] = saved_activation_bytes(model, x)
    for n in (1, 2):
        assert saved[n + 1, False] - saved[n, False] == per_hidden + per_output
        assert saved[n + 1, True] - saved[n, True] == per_output


def test_memory_profile_table() -> None:
    table = memory_profile([1, 3], batch=8, channels=(4,), hidden=4, repeats=1, device="cpu")
    assert list(table.columns) == ["heads", "checkpointed", "saved_MB", "step_ms"]
    assert len(table) == 4 and (table.step_ms > 0).all()
    plain, ckpt = (table[table.checkpointed == c].set_index("heads").saved_MB for c in (False, True))
    assert (ckpt < plain).all() and plain[3] - plain[1] > ckpt[3] - ckpt[1]

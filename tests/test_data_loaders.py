"""mtl_course.data.loaders.TensorLoader."""

from __future__ import annotations

import pytest
import torch

from mtl_course.data.loaders import TensorLoader
from mtl_course.data.tasks import MultiTaskData


def test_an_epoch_visits_every_sample_once_and_keeps_rows_aligned() -> None:
    x = torch.arange(23.0).unsqueeze(1)
    loader = TensorLoader(x, {"a": 3 * x, "b": -x}, {"a": x > 5}, batch_size=5, seed=1)
    seen = []
    for xb, yb, mb in loader:
        assert torch.equal(yb["a"], 3 * xb) and torch.equal(yb["b"], -xb) and torch.equal(mb["a"], xb > 5)
        seen += xb.squeeze(1).tolist()
    assert sorted(seen) == list(range(23)) and len(loader) == 5


def test_shuffling_is_seeded_and_changes_between_epochs() -> None:
    x = torch.arange(50.0).unsqueeze(1)
    first = [xb.squeeze(1).tolist() for xb, _ in TensorLoader(x, {"a": x}, batch_size=50, seed=7)]
    again = [xb.squeeze(1).tolist() for xb, _ in TensorLoader(x, {"a": x}, batch_size=50, seed=7)]
    assert first == again
    loader = TensorLoader(x, {"a": x}, batch_size=50, seed=7)
    epoch1, epoch2 = (next(iter(loader))[0].squeeze(1).tolist() for _ in range(2))
    assert epoch1 != epoch2 and sorted(epoch1) == sorted(epoch2)


def test_full_batch_by_default() -> None:
    x = torch.zeros(9, 2)
    assert len(TensorLoader(x, {"a": x})) == 1


def test_mismatched_rows_are_named() -> None:
    with pytest.raises(ValueError, match="task 'b' has 3 rows but x has 4"):
        TensorLoader(torch.zeros(4, 1), {"a": torch.zeros(4), "b": torch.zeros(3)})


def test_n_labelled_counts_a_case_when_any_entry_of_its_target_is_labelled() -> None:
    """An image with sensor holes, or an interaction that labels one action of several, still counts."""
    dense = torch.zeros(4, 3, 3)
    dense[0] = float("nan")  # no pixel labelled: does not count
    dense[1, 0, 0] = float("nan")  # one hole: counts
    classes = torch.tensor([[1, -100], [-100, -100], [0, 2], [-100, 1]])
    data = MultiTaskData(
        torch.zeros(4, 2), {"depth": dense, "actions": classes}, masks={"depth": torch.tensor([1, 1, 1, 0])}
    )
    assert data.n_labelled() == {"depth": 2, "actions": 3}

"""Kernel-side tests of the soft-sharing explorer: controls, extremes, static fallback, latency."""

from __future__ import annotations

import base64
import itertools
import math
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from mtl_course.experiments.sharing import sharing_sweep
from mtl_course.widgets.soft_sharing import SoftSharingExplorer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LAMS = [0.001, 0.01, 0.1, 1.0]


def synthetic_summary() -> pd.DataFrame:
    """A sweep summary with known numbers: distance 1 - log-position / 4, errors linear in log10(lam)."""
    rows = []
    for rho in (1.0, 0.0):
        for seed in (0, 1):
            rows.append(
                {
                    "method": "stl",
                    "lam": 0.0,
                    "rho": rho,
                    "seed": seed,
                    "distance": 1.0,
                    "val_a": 0.5,
                    "val_b": 0.6,
                    "test_a": 0.4,
                    "test_b": 0.5,
                }
            )
            for lam in LAMS:
                k = np.log10(lam) + 4  # 1 .. 4
                slope = -0.05 if rho == 1.0 else 0.05
                rows.append(
                    {
                        "method": "soft",
                        "lam": lam,
                        "rho": rho,
                        "seed": seed,
                        "distance": 1.0 - k / 4 + 0.01,
                        "val_a": 0.5 + slope * k,
                        "val_b": 0.6 + slope * k,
                        "test_a": 0.4 + slope * k,
                        "test_b": 0.5 + slope * k,
                    }
                )
            rows.append(
                {
                    "method": "hard",
                    "lam": math.nan,
                    "rho": rho,
                    "seed": seed,
                    "distance": 0.0,
                    "val_a": 0.3 if rho == 1.0 else 0.8,
                    "val_b": 0.35 if rho == 1.0 else 0.9,
                    "test_a": 0.3,
                    "test_b": 0.3,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def explorer() -> SoftSharingExplorer:
    return SoftSharingExplorer(synthetic_summary())


def test_left_end_is_lambda_zero_single_task_learning(explorer: SoftSharingExplorer) -> None:
    state = explorer.set(log10_lam=explorer.x_min, rho=1.0).state
    assert state.lam == 0.0 and state.distance == pytest.approx(1.0)
    assert state.error == pytest.approx({"a": 0.5, "b": 0.6}) and state.error == state.stl
    assert "λ = 0" in explorer.summary and "single-task learning" in explorer.summary


def test_right_end_reports_nearly_tied_columns(explorer: SoftSharingExplorer) -> None:
    state = explorer.set(log10_lam=explorer.x_max, rho=1.0).state
    assert state.lam == pytest.approx(1.0) and state.distance == pytest.approx(0.01)
    assert "nearly tied" in explorer.summary and "hard sharing" in explorer.summary
    assert state.hard == pytest.approx({"a": 0.3, "b": 0.35})


def test_distance_falls_as_the_penalty_grows(explorer: SoftSharingExplorer) -> None:
    grid = np.linspace(explorer.x_min, explorer.x_max, 17)
    distances = [explorer.set(log10_lam=float(v)).state.distance for v in grid]
    assert all(a >= b for a, b in itertools.pairwise(distances)), distances
    assert distances[0] == pytest.approx(1.0) and distances[-1] < 0.05


def test_values_interpolate_in_log_lambda(explorer: SoftSharingExplorer) -> None:
    state = explorer.set(log10_lam=-1.5, rho=1.0).state  # halfway between 0.01 and 0.1
    assert state.lam == pytest.approx(10**-1.5)
    assert state.error["a"] == pytest.approx(0.5 - 0.05 * 2.5)
    assert state.distance == pytest.approx(1.0 - 2.5 / 4 + 0.01)


def test_relatedness_buttons_switch_the_curves(explorer: SoftSharingExplorer) -> None:
    related = explorer.set(log10_lam=0.0, rho=1.0)
    text_related, error_related = related.summary, dict(related.state.error)
    unrelated = explorer.set(rho=0.0)
    assert unrelated.state.rho == 0.0 and unrelated.summary != text_related
    assert unrelated.state.error["a"] > error_related["a"]  # the synthetic unrelated tasks get worse with lam
    assert "ρ = 0" in unrelated.summary


def test_relatedness_labels_fit_their_buttons() -> None:
    """Each toggle label ("ρ = 0.5") fits its button: width measured by matplotlib's text layout, in em."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    explorer = SoftSharingExplorer(pd.concat([synthetic_summary(), synthetic_summary().assign(rho=0.5)]))
    toggle = explorer.controls["rho"]
    labels = [label for label, _ in toggle.options]
    assert labels == ["ρ = 1", "ρ = 0.5", "ρ = 0"]
    width_em = float(toggle.style.button_width.removesuffix("em"))
    size = 10.0  # one em
    for label in labels:
        text_em = (
            TextPath((0, 0), label, size=size, prop=FontProperties(family="DejaVu Sans")).get_extents().width / size
        )
        assert width_em >= text_em + 1.5, f"{label!r} needs {text_em:.2f} em plus padding, the button has {width_em} em"


def test_legends_are_readable_at_80_dpi(explorer: SoftSharingExplorer) -> None:
    explorer.set(log10_lam=-2.0, rho=1.0)
    legends = [ax.get_legend() for ax in explorer.figure.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    assert explorer.figure.dpi == 80
    assert min(t.get_fontsize() for legend in legends for t in legend.get_texts()) >= 9


def test_out_of_range_and_non_finite_slider_values_never_fail(explorer: SoftSharingExplorer) -> None:
    for value in (-100.0, 100.0, float("nan"), float("inf"), float("-inf")):
        state = explorer.compute(log10_lam=value, rho=1.0)
        assert math.isfinite(state.distance) and all(math.isfinite(v) for v in state.error.values())
    assert explorer.compute(log10_lam=-100.0).lam == 0.0
    assert explorer.compute(log10_lam=100.0).lam == pytest.approx(1.0)


def test_summaries_never_show_nan(explorer: SoftSharingExplorer) -> None:
    for rho in (1.0, 0.0):
        for value in np.linspace(explorer.x_min, explorer.x_max, 9):
            assert "nan" not in explorer.set(log10_lam=float(value), rho=rho).summary.lower()


def test_static_fallback_has_png_and_summary(explorer: SoftSharingExplorer) -> None:
    explorer.set(log10_lam=-2.0, rho=1.0)
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == explorer.summary
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)


def test_median_latency_of_a_slider_move() -> None:
    """CPU time, not wall time: other processes on a busy machine must not fail the test
    (benchmarks/bench_widgets.py reports wall times on a quiet machine)."""
    explorer = SoftSharingExplorer(synthetic_summary())
    explorer.set(log10_lam=-1.0)  # warm up matplotlib
    times = []
    for value in np.linspace(explorer.x_min, explorer.x_max, 15):
        start = time.process_time()
        explorer.set(log10_lam=float(value))
        times.append(time.process_time() - start)
    assert statistics.median(times) < 0.25, f"median {statistics.median(times) * 1e3:.0f} ms"


def test_metric_test_reads_the_test_columns() -> None:
    explorer = SoftSharingExplorer(synthetic_summary(), metric="test")
    state = explorer.set(log10_lam=explorer.x_min, rho=1.0).state
    assert state.error == pytest.approx({"a": 0.4, "b": 0.5})
    assert "test MSE" in explorer.summary


def test_without_hard_arm_or_relatedness_choice() -> None:
    summary = synthetic_summary()
    summary = summary[(summary.method != "hard") & (summary.rho == 1.0)]
    explorer = SoftSharingExplorer(summary)
    assert set(explorer.controls) == {"log10_lam"}
    assert explorer.set(log10_lam=explorer.x_max).state.hard == {}
    assert ", hard " not in explorer.summary


def test_a_real_sweep_drives_the_explorer() -> None:
    result = sharing_sweep(rhos=[1.0, 0.0], n_train=8, lams=[0, 0.01, 1.0], seeds=[0], steps=20, eval_every=10)
    explorer = SoftSharingExplorer(result)
    assert set(explorer.controls) == {"log10_lam", "rho"}
    near, far = explorer.set(log10_lam=explorer.x_min).state, explorer.set(log10_lam=explorer.x_max).state
    assert near.distance > far.distance
    assert explorer.png().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.drop(columns="distance"), "lacks the columns"),
        (lambda s: s.assign(n_train=np.arange(len(s)) % 2 * 10 + 8), "mixes training-set sizes"),
        (lambda s: s[(s.method != "soft") | (s.lam == 1.0)], "at least two positive"),
        (lambda s: s[s.method != "stl"], "single-task arms"),
        (lambda s: s.assign(val_a=np.nan), "missing"),
        (lambda s: s.drop(columns=["val_a", "val_b"]), "no per-task columns"),
    ],
)
def test_bad_sweeps_are_reported(mutate, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SoftSharingExplorer(mutate(synthetic_summary()))


def test_unknown_metric_and_control_are_named() -> None:
    with pytest.raises(ValueError, match="metric must be"):
        SoftSharingExplorer(synthetic_summary(), metric="train")
    with pytest.raises(KeyError, match="log10_lam"):
        SoftSharingExplorer(synthetic_summary()).set(lam=1.0)

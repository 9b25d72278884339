"""Latency of every explorer in ``mtl_course/widgets/``: programmatic slider moves, median and 95th percentile.

Budget (COURSE_DESIGN.md section 6): a slider move updates the view in at most
100 ms (median), measured in the kernel. For each explorer that exists, its
first slider is moved ``--moves`` times across its range (log-spaced for a
``FloatLogSlider``) with ``explorer.set(...)``, exactly what a slider move
triggers. Two timings per move:

* **update** -- ``set()``: compute the state and redraw the figure's artists;
* **update + PNG** -- ``set()`` followed by ``png()``: the image a live view
  or the static fallback shows. Explorers that encode their PNG inside
  ``update`` (the current base ``Explorer`` and the loss-weight tuner, which
  redraws only its moving artists on a cached background) give the same
  number in both columns; the column keeps a lazily rendering explorer honest.

Explorers are discovered by importing the modules of lectures A1 (lasso), A3
(soft sharing), A4 (cross-stitch) and A6 (loss weights); a module that does
not exist yet, or fails to build its explorer, gets a row that says why.
Prints a markdown table.

    python benchmarks/bench_widgets.py [--moves 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_MS = 100.0


def build_lasso():
    from mtl_course.data.linear_tasks import load_diabetes_tasks, random_split
    from mtl_course.widgets.lasso import LassoExplorer

    train, val = random_split(load_diabetes_tasks(), 300, seed=0)
    return LassoExplorer.from_data(train, val)


def build_soft_sharing():
    from mtl_course.experiments.sharing import sharing_sweep
    from mtl_course.widgets.soft_sharing import SoftSharingExplorer

    result = sharing_sweep(rhos=[1.0], n_train=8, lams=[0, 0.01, 0.1, 1.0], seeds=[0], steps=20)
    return SoftSharingExplorer(result)


def build_cross_stitch():
    from mtl_course.widgets.cross_stitch import CrossStitchExplorer

    return CrossStitchExplorer()


def build_loss_weights():
    from mtl_course.data.toy_regression import make_conflicting_regressions
    from mtl_course.experiments.loss_weighting import make_fit_retrainer
    from mtl_course.widgets.loss_weights import LossWeightTuner

    pair = make_conflicting_regressions(loss_scales=(1.0, 100.0), seed=0)
    return LossWeightTuner.from_regressions(pair, retrain=make_fit_retrainer(pair, device="cpu"))


#: (name, lecture, module, builder)
EXPLORERS: list[tuple[str, str, str, Callable]] = [
    ("LassoExplorer", "A1", "mtl_course.widgets.lasso", build_lasso),
    ("SoftSharingExplorer", "A3", "mtl_course.widgets.soft_sharing", build_soft_sharing),
    ("CrossStitchExplorer", "A4", "mtl_course.widgets.cross_stitch", build_cross_stitch),
    ("LossWeightTuner", "A6", "mtl_course.widgets.loss_weights", build_loss_weights),
]


def slider_values(control, moves: int) -> tuple[list[float], str]:
    """``moves`` values across the control's range (log-spaced for a FloatLogSlider)."""
    import ipywidgets as W

    if isinstance(control, W.FloatLogSlider):
        return list(np.logspace(control.min, control.max, moves, base=control.base)), "log"
    return list(np.linspace(control.min, control.max, moves)), "linear"


def first_slider(explorer) -> str:
    import ipywidgets as W

    for name, control in explorer.controls.items():
        if isinstance(control, (W.FloatSlider, W.FloatLogSlider, W.IntSlider)):
            return name
    raise ValueError(f"{type(explorer).__name__} has no slider among its controls {list(explorer.controls)}")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(explorer, moves: int) -> dict[str, float | str]:
    name = first_slider(explorer)
    values, spacing = slider_values(explorer.controls[name], moves)
    values = values[1::2] + values[0::2]  # alternate halves so consecutive moves differ
    explorer.set(**{name: values[-1]})  # warm-up (first draw, font cache)
    explorer.png()
    update, with_png = [], []
    for value in values:
        start = time.perf_counter()
        explorer.set(**{name: value})
        middle = time.perf_counter()
        explorer.png()
        end = time.perf_counter()
        update.append((middle - start) * 1e3)
        with_png.append((end - start) * 1e3)
    return {
        "control": f"{name} ({spacing})",
        "median": statistics.median(update),
        "p95": percentile(update, 95),
        "median_png": statistics.median(with_png),
        "p95_png": percentile(with_png, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from mtl_course.plots import use_course_style

    use_course_style()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.moves} slider moves per explorer, "
        f"times in ms; budget: median update + PNG <= {BUDGET_MS:.0f} ms\n"
    )
    print(
        "| explorer | lecture | control moved | update median | update p95 | update + PNG median | "
        "update + PNG p95 | budget met |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|")
    for name, lecture, module, build in EXPLORERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            print(f"| {name} | {lecture} | not available: {err} | | | | | |")
            continue
        try:
            explorer = build()
            r = measure(explorer, args.moves)
        except Exception as err:  # report, keep benchmarking the others
            print(f"| {name} | {lecture} | failed: {type(err).__name__}: {err} | | | | | |")
            continue
        met = "yes" if r["median_png"] <= BUDGET_MS else "no"
        print(
            f"| {name} | {lecture} | {r['control']} | {r['median']:.1f} | {r['p95']:.1f} | "
            f"{r['median_png']:.1f} | {r['p95_png']:.1f} | {met} |"
        )


if __name__ == "__main__":
    main()

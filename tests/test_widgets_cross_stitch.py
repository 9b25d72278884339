"""The cross-stitch explorer of lecture A4: values, extremes, static fallback, latency."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mtl_course.widgets.cross_stitch import (
    ENTRIES,
    CrossStitchExplorer,
    demo_maps,
    describe_alpha,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # a slider move computes on 24 x 24 maps: one thread


@pytest.fixture(scope="module")
def explorer() -> CrossStitchExplorer:
    return CrossStitchExplorer()


def _independent(alpha: np.ndarray) -> dict[str, np.ndarray]:
    """Forward and backward of the unit written out entry by entry (not through torch)."""
    maps = demo_maps()
    x = np.stack([maps["x_A"], maps["x_B"]])
    r = np.stack([maps["r_A"], maps["r_B"]])  # dL/dx~ for L = <r_A, x~_A> + <r_B, x~_B>
    mixed = np.stack([alpha[i, 0] * x[0] + alpha[i, 1] * x[1] for i in range(2)])
    to_networks = np.stack([alpha[0, j] * r[0] + alpha[1, j] * r[1] for j in range(2)])
    grad_alpha = np.array([[(r[i] * x[j]).sum() for j in range(2)] for i in range(2)])
    return {"mixed": mixed, "to_networks": to_networks, "grad_alpha": grad_alpha}


@pytest.mark.parametrize(
    "alpha",
    [[[0.9, 0.1], [0.1, 0.9]], [[0.3, -0.7], [1.6, 0.2]], [[-1.0, 2.0], [2.0, -1.0]]],
)
def test_state_matches_the_unit_written_out(explorer: CrossStitchExplorer, alpha: list) -> None:
    alpha = np.array(alpha)
    explorer.set(**dict(zip(ENTRIES, alpha.ravel().tolist(), strict=True)))
    state, expected = explorer.state, _independent(alpha)
    assert state.valid and np.array_equal(state.alpha, alpha)
    np.testing.assert_allclose(state.mixed, expected["mixed"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state.to_networks, expected["to_networks"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state.grad_alpha, expected["grad_alpha"], rtol=1e-10)
    rms = np.sqrt((expected["mixed"] ** 2).mean(axis=(1, 2)) / (state.inputs**2).mean(axis=(1, 2)))
    np.testing.assert_allclose(state.scale, rms, rtol=1e-10)


def test_identity_passes_features_and_gradients_through(explorer: CrossStitchExplorer) -> None:
    state = explorer.set_alpha(1.0, 0.0).state
    np.testing.assert_allclose(state.mixed, state.inputs)
    np.testing.assert_allclose(state.to_networks, state.upstream)
    assert "α = I" in state.message and "α = I" in explorer.summary


def test_moving_alpha_ba_changes_only_what_it_should(explorer: CrossStitchExplorer) -> None:
    base = explorer.set_alpha(0.9, 0.1).state
    moved = explorer.set(alpha_BA=0.6).state
    # alpha_BA mixes x_A into x~_B and sends task B's gradient into network A
    np.testing.assert_allclose(moved.mixed[0], base.mixed[0])
    np.testing.assert_allclose(moved.mixed[1] - base.mixed[1], 0.5 * base.inputs[0], atol=1e-12)
    np.testing.assert_allclose(moved.to_networks[1], base.to_networks[1])
    np.testing.assert_allclose(moved.to_networks[0] - base.to_networks[0], 0.5 * base.upstream[1], atol=1e-12)
    np.testing.assert_allclose(moved.grad_alpha, base.grad_alpha)  # linear unit: dL/dalpha does not depend on alpha


def test_shared_and_all_ones(explorer: CrossStitchExplorer) -> None:
    state = explorer.set_alpha(0.5, 0.5).state
    np.testing.assert_allclose(state.mixed[0], state.mixed[1])
    assert "hard sharing" in state.message
    state = explorer.set_alpha(1.0, 1.0).state
    np.testing.assert_allclose(state.mixed[0], state.inputs.sum(axis=0))
    assert "rows sum to 2.00" in state.message
    assert (state.scale > 1.5).all()  # the activation scale nearly doubles


def test_zero_alpha_gives_a_message_not_nan(explorer: CrossStitchExplorer) -> None:
    state = explorer.set_alpha(0.0, 0.0).state
    assert np.all(state.mixed == 0) and np.all(state.to_networks == 0)
    assert np.isfinite(state.scale).all() and (state.scale == 0).all()
    assert "α = 0" in explorer.summary and "nan" not in explorer.summary.lower()


@pytest.mark.parametrize("value", ["min", "max"])
def test_slider_extremes(explorer: CrossStitchExplorer, value: str) -> None:
    v = getattr(explorer.controls["alpha_AA"], value)
    explorer.set(**dict.fromkeys(ENTRIES, v))
    state = explorer.state
    assert state.valid and np.isfinite(state.mixed).all() and np.isfinite(state.to_networks).all()
    assert "nan" not in explorer.summary.lower()


def test_non_finite_alpha_is_reported(explorer: CrossStitchExplorer) -> None:
    state = explorer.compute(alpha_AA=float("nan"), alpha_AB=0.1, alpha_BA=float("inf"), alpha_BB=0.9)
    assert not state.valid and "must be finite" in state.message
    fig = matplotlib.pyplot.figure()
    assert "must be finite" in explorer.draw(state, fig)  # draws without raising
    matplotlib.pyplot.close(fig)


def test_unknown_control_names_the_known_ones(explorer: CrossStitchExplorer) -> None:
    with pytest.raises(KeyError, match="alpha_AA"):
        explorer.set(alpha_S=0.5)


def test_static_fallback(explorer: CrossStitchExplorer) -> None:
    explorer.set_alpha(0.9, 0.1)
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == explorer.summary and bundle["text/plain"].startswith("α = [[0.90, 0.10]")
    assert explorer.png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.parametrize(
    "alpha, words",
    [
        (np.zeros((2, 2)), "α = 0"),
        (np.eye(2), "α = I"),
        (np.array([[0.0, 1.0], [1.0, 0.0]]), "only the other network"),
        (np.array([[1.0, 2.0], [0.5, 1.0]]), "det α = 0"),
        (np.array([[0.8, 0.0], [0.0, 1.2]]), "no cross-talk"),
        (np.array([[0.9, 0.1], [0.1, 0.9]]), ""),
    ],
)
def test_describe_alpha(alpha: np.ndarray, words: str) -> None:
    text = describe_alpha(alpha)
    assert (words in text) if words else text == ""


def test_demo_maps_reject_tiny_images() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        demo_maps(4)


def test_slider_move_latency(explorer: CrossStitchExplorer, assert_fast_moves) -> None:
    """Median reaction to a slider move (compute, redraw, PNG for the live view); COURSE_DESIGN asks for <= 100 ms."""
    assert_fast_moves(lambda value: explorer.set(alpha_AB=value), np.linspace(-0.5, 1.5, 11))


def test_every_text_is_readable_at_80_dpi(explorer: CrossStitchExplorer) -> None:
    """Tick labels, titles and the RMS labels at 9 pt or more (7 and 8 pt cannot be read without zooming)."""
    figure = explorer.figure
    texts = [t for ax in figure.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts, ax.title]]
    texts += figure.texts  # the suptitle
    assert len(texts) > 10
    assert min(t.get_fontsize() for t in texts) >= 9

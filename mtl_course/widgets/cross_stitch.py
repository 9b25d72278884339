r"""The α explorer of lecture A4: move the entries of a cross-stitch unit, watch features and gradients mix.

A cross-stitch unit (Misra, Shrivastava, Gupta & Hebert, CVPR 2016, arXiv
1604.03539, Eq. 1) replaces the activation maps :math:`x_A, x_B` of two
networks at every location by

.. math::

    \begin{bmatrix}\tilde x_A \\ \tilde x_B\end{bmatrix} =
    \begin{bmatrix}\alpha_{AA} & \alpha_{AB} \\ \alpha_{BA} & \alpha_{BB}\end{bmatrix}
    \begin{bmatrix}x_A \\ x_B\end{bmatrix},

and in the backward pass sends :math:`\partial L/\partial x = \alpha^\top\,\partial L/\partial \tilde x`
to the two networks (Eq. 2), while :math:`\partial L/\partial\alpha_{ij} = \sum_{\text{locations}}
\partial L/\partial \tilde x_i \, x_j`.

:class:`CrossStitchExplorer` shows this on one fixed input: a synthetic
24 x 24 image of three "cells". Network A's activation map responds to their
boundaries (an edge filter, as a segmentation network would), network B's to
their bodies (a blob filter, as a detection or counting network would). The
layers above the unit are fixed linear read-outs :math:`L = \langle r_A, \tilde x_A\rangle +
\langle r_B, \tilde x_B\rangle`, so the upstream gradients are :math:`r_A` (task A
cares about the left cell) and :math:`r_B` (task B about the right cells). Every
slider move runs the course's :func:`~mtl_course.models.cross_stitch.cross_stitch`
forward and its hand-written backward (:class:`~mtl_course.models.cross_stitch.CrossStitchFunction`)
on these maps; nothing is precomputed except the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from mtl_course.models.cross_stitch import cross_stitch
from mtl_course.widgets.base import Explorer

#: The controls, in the order of the matrix entries.
ENTRIES = ("alpha_AA", "alpha_AB", "alpha_BA", "alpha_BB")


def _gaussian(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, s: float) -> np.ndarray:
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))


def demo_maps(size: int = 24) -> dict[str, np.ndarray]:
    """The fixed input of the explorer: activation maps ``x_A``, ``x_B`` and read-outs ``r_A``, ``r_B``.

    ``image``: three Gaussian "cells" on a dark background; ``x_A``: its
    gradient magnitude (boundaries); ``x_B``: the image smoothed (bodies);
    both scaled to maximum 1. ``r_A`` weights the left cell, ``r_B`` the two
    right cells (task A's and task B's read-out of the next layer).

    >>> maps = demo_maps(16)
    >>> sorted(maps), maps["x_A"].shape, float(maps["x_B"].max())
    (['image', 'r_A', 'r_B', 'x_A', 'x_B'], (16, 16), 1.0)
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cells = [(0.35, 0.25, 0.14), (0.3, 0.72, 0.10), (0.72, 0.62, 0.12)]
    image = sum(_gaussian(yy, xx, cy * size, cx * size, s * size) for cy, cx, s in cells)
    gy, gx = np.gradient(image)
    x_a = np.hypot(gx, gy)
    x_b = sum(_gaussian(yy, xx, cy * size, cx * size, 1.4 * s * size) for cy, cx, s in cells)
    r_a = _gaussian(yy, xx, cells[0][0] * size, cells[0][1] * size, 0.22 * size)
    r_b = -0.8 * (
        _gaussian(yy, xx, cells[1][0] * size, cells[1][1] * size, 0.18 * size)
        + _gaussian(yy, xx, cells[2][0] * size, cells[2][1] * size, 0.18 * size)
    )
    return {"image": image, "x_A": x_a / x_a.max(), "x_B": x_b / x_b.max(), "r_A": r_a, "r_B": r_b}


@dataclass(frozen=True)
class CrossStitchState:
    """What the view shows for one ``alpha``.

    ``inputs``, ``mixed``, ``upstream`` and ``to_networks`` have shape
    (2, H, W) (rows: A, B): the activation maps :math:`x`, the unit's
    outputs :math:`\\tilde x`, the gradients :math:`\\partial L/\\partial\\tilde x`
    from above and the gradients :math:`\\partial L/\\partial x` that reach the
    two networks. ``grad_alpha`` is :math:`\\partial L/\\partial\\alpha` (2, 2);
    ``scale`` the RMS of each output over the RMS of the same network's input;
    ``message`` explains special or invalid ``alpha`` (empty otherwise).
    """

    alpha: np.ndarray
    inputs: np.ndarray
    mixed: np.ndarray
    upstream: np.ndarray
    to_networks: np.ndarray
    grad_alpha: np.ndarray
    scale: np.ndarray
    message: str
    valid: bool = True


def _mosaic(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Tile (2, H, W) maps ``left`` and ``right`` into a (2H+1, 2W+1) image with NaN gaps."""
    _, h, w = left.shape
    out = np.full((2 * h + 1, 2 * w + 1), np.nan)
    for row in range(2):
        out[row * (h + 1) : row * (h + 1) + h, :w] = left[row]
        out[row * (h + 1) : row * (h + 1) + h, w + 1 :] = right[row]
    return out


def describe_alpha(alpha: np.ndarray, tol: float = 1e-9) -> str:
    """Name what a 2 x 2 ``alpha`` does, or ``""`` for a generic mix.

    >>> describe_alpha(np.eye(2))
    'α = I: each network keeps its own features (no cross-talk, two single-task networks at this layer)'
    >>> describe_alpha(np.full((2, 2), 0.5))
    'equal rows: x̃_A = x̃_B, both tasks read one shared representation (hard sharing at this layer)'
    """
    alpha = np.asarray(alpha, dtype=float)
    notes = []
    if np.all(np.abs(alpha) <= tol):
        return "α = 0: the unit outputs zeros; the layers above see nothing and no gradient reaches either network"
    if np.allclose(alpha, np.eye(2), atol=tol):
        return "α = I: each network keeps its own features (no cross-talk, two single-task networks at this layer)"
    if np.allclose(alpha[0], alpha[1], atol=tol):
        notes.append("equal rows: x̃_A = x̃_B, both tasks read one shared representation (hard sharing at this layer)")
    elif abs(np.linalg.det(alpha)) <= tol:
        notes.append("det α = 0: x̃_A and x̃_B are multiples of one map; the unit has lost a direction")
    elif abs(alpha[0, 1]) <= tol and abs(alpha[1, 0]) <= tol:
        notes.append("α_AB = α_BA = 0: no cross-talk, the networks stay task-specific (rescaled)")
    if np.all(np.abs(alpha.diagonal()) <= tol):
        notes.append("α_AA = α_BB = 0: each network gets only the other network's features")
    sums = alpha.sum(axis=1)
    if np.any(np.abs(sums - 1) > 0.25):
        notes.append(
            f"rows sum to {sums[0]:.2f} and {sums[1]:.2f}, not 1: the activation scale changes "
            "(all α = 1 doubles it, as LibMTL's initialisation does)"
        )
    return "; ".join(notes)


class CrossStitchExplorer(Explorer):
    """Four sliders (the entries of α) → mixed activation maps and the gradients reaching each network.

    The figure has two panels with one row per network (A, B): on the left
    the network's activation map :math:`x` and the unit's output
    :math:`\\tilde x`, on the right the gradient :math:`\\partial L/\\partial \\tilde x`
    from the layers above and the gradient
    :math:`\\partial L/\\partial x = \\alpha^\\top \\partial L/\\partial\\tilde x` that flows into the network.
    The summary gives α, its row sums and determinant, the activation scale
    and :math:`\\partial L/\\partial\\alpha`.

    >>> explorer = CrossStitchExplorer()
    >>> explorer.set_alpha(0.5, 0.5).state.message
    'equal rows: x̃_A = x̃_B, both tasks read one shared representation (hard sharing at this layer)'
    >>> bool(np.allclose(explorer.state.mixed[0], explorer.state.mixed[1]))
    True
    """

    figsize = (8.4, 4.0)

    def __init__(
        self,
        alpha: tuple[float, float, float, float] = (0.9, 0.1, 0.1, 0.9),
        size: int = 24,
        value_range: tuple[float, float] = (-1.0, 2.0),
    ) -> None:
        maps = demo_maps(size)
        self.cell_image = maps["image"]
        self.inputs = torch.tensor(np.stack([maps["x_A"], maps["x_B"]]), dtype=torch.float64)
        self.readouts = torch.tensor(np.stack([maps["r_A"], maps["r_B"]]), dtype=torch.float64)
        self._input_rms = self.inputs.pow(2).mean(dim=(1, 2)).sqrt().numpy()
        lo, hi = value_range
        style = {"description_width": "52px"}
        sliders = {
            name: W.FloatSlider(
                value=float(v),
                min=lo,
                max=hi,
                step=0.05,
                description=label,
                readout_format=".2f",
                continuous_update=True,
                style=style,
                layout=W.Layout(width="230px"),
            )
            for name, v, label in zip(ENTRIES, alpha, ("α_AA", "α_AB", "α_BA", "α_BB"), strict=True)
        }
        title = "A cross-stitch unit: α mixes the activations forward and the gradients backward"
        super().__init__(sliders, title=title)

    def set_alpha(self, alpha_s: float, alpha_d: float) -> CrossStitchExplorer:
        """Set the paper's parametrisation: ``alpha_AA = alpha_BB = alpha_s``, ``alpha_AB = alpha_BA = alpha_d``."""
        self.set(alpha_AA=alpha_s, alpha_BB=alpha_s, alpha_AB=alpha_d, alpha_BA=alpha_d)
        return self

    def compute(self, alpha_AA: float, alpha_AB: float, alpha_BA: float, alpha_BB: float) -> CrossStitchState:
        """Run the unit forward and backward on the fixed maps (about a millisecond)."""
        entries = np.array([[alpha_AA, alpha_AB], [alpha_BA, alpha_BB]], dtype=float)
        if np.all(np.isfinite(entries)):
            # slider values snap to min + k * step: drop the float noise (0.9000000000000001)
            entries = entries.round(10)
        else:
            zeros = torch.zeros_like(self.inputs).numpy()
            return CrossStitchState(
                entries,
                self.inputs.numpy(),
                zeros,
                self.readouts.numpy(),
                zeros,
                np.full((2, 2), np.nan),
                np.full(2, np.nan),
                f"α must be finite, got {entries.tolist()}: nothing to show",
                valid=False,
            )
        alpha = torch.tensor(entries, dtype=torch.float64, requires_grad=True)
        # the two columns as (N=1, C=1, H, W) maps; one alpha for the layer
        xs = [self.inputs[i][None, None].clone().requires_grad_(True) for i in range(2)]
        mixed = cross_stitch(xs, alpha)
        loss = sum((r * m[0, 0]).sum() for r, m in zip(self.readouts, mixed, strict=True))
        loss.backward()
        mixed_np = torch.stack([m[0, 0] for m in mixed]).detach().numpy()
        to_networks = torch.stack([x.grad[0, 0] for x in xs]).numpy()
        scale = np.sqrt((mixed_np**2).mean(axis=(1, 2))) / self._input_rms
        return CrossStitchState(
            entries,
            self.inputs.numpy(),
            mixed_np,
            self.readouts.numpy(),
            to_networks,
            alpha.grad.numpy().copy(),
            scale,
            describe_alpha(entries),
        )

    def draw(self, state: CrossStitchState, fig: plt.Figure) -> str:
        """Draw ``state`` onto ``fig`` (two mosaics, rows: networks A and B) and return the summary."""
        self._artists = self._build(fig, state.inputs.shape[-1])
        self.moving_artists = self._moving()
        return self.move(state)

    def move(self, state: CrossStitchState) -> str:
        """A slider move swaps only the mosaics' pixel data and the texts (see :meth:`Explorer.move`)."""
        self._apply(self._artists, state)
        return self._summary(state)

    def _moving(self) -> list:
        """The artists a slider move changes: the two mosaics, the RMS labels, the title."""
        a = self._artists
        return [a["act"], a["grad"], *a["rms"], a["title"]]

    @staticmethod
    def _build(fig: plt.Figure, size: int) -> dict:
        ax_act, ax_grad = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.08, right=0.99, top=0.80, bottom=0.03, wspace=0.12)
        blank = np.zeros((2 * size + 1, 2 * size + 1))
        artists: dict = {}
        panels = (
            ("act", ax_act, "viridis", ("x (network's map)", "x̃ = αx (unit output)"), "Activations (forward)"),
            ("grad", ax_grad, "RdBu_r", ("∂L/∂x̃ (from above)", "∂L/∂x = αᵀ∂L/∂x̃"), "Gradients (backward)"),
        )
        for key, ax, cmap, labels, title in panels:
            artists[key] = ax.imshow(blank, cmap=cmap, interpolation="nearest")
            ax.set_xticks([size / 2 - 0.5, 1.5 * size + 0.5], labels, fontsize=9)
            ax.xaxis.tick_top()
            ax.set_yticks([size / 2 - 0.5, 1.5 * size + 0.5], ["network A", "network B"], fontsize=9)
            ax.tick_params(length=0)
            ax.set_title(title, fontsize=9, pad=18)
            for spine in ax.spines.values():
                spine.set_visible(False)
        artists["rms"] = [
            ax_act.text(2 * size, row * (size + 1) + size - 1, "", ha="right", va="bottom", fontsize=9, color="w")
            for row in range(2)
        ]
        artists["title"] = fig.suptitle("", fontsize=9, y=0.99)
        return artists

    @staticmethod
    def _apply(artists: dict, state: CrossStitchState) -> None:
        act_lo = min(0.0, float(state.mixed.min())) if state.valid else 0.0
        act_hi = max(1.0, float(state.mixed.max())) if state.valid else 1.0
        grad_max = float(np.abs(state.upstream).max())
        if state.valid:
            grad_max = max(grad_max, float(np.abs(state.to_networks).max()))
        artists["act"].set_data(_mosaic(state.inputs, state.mixed))
        artists["act"].set_clim(act_lo, act_hi)
        artists["grad"].set_data(_mosaic(state.upstream, state.to_networks))
        artists["grad"].set_clim(-grad_max, grad_max)
        for row, text in enumerate(artists["rms"]):
            text.set_text(f"RMS ×{state.scale[row]:.2f}" if state.valid else "")
        a = state.alpha
        artists["title"].set_text(
            f"α = [[{a[0, 0]:.2f}, {a[0, 1]:.2f}], [{a[1, 0]:.2f}, {a[1, 1]:.2f}]]  "
            "(one colour scale per panel; gradients symmetric around 0)"
            if state.valid
            else "α must be finite: nothing to show"
        )

    def _summary(self, state: CrossStitchState) -> str:
        if not state.valid:
            return state.message
        a, g = state.alpha, state.grad_alpha
        sums = a.sum(axis=1)
        text = (
            f"α = [[{a[0, 0]:.2f}, {a[0, 1]:.2f}], [{a[1, 0]:.2f}, {a[1, 1]:.2f}]]: row sums "
            f"{sums[0]:.2f}/{sums[1]:.2f}, det {np.linalg.det(a):.2f}; RMS of x̃_A, x̃_B = "
            f"×{state.scale[0]:.2f}, ×{state.scale[1]:.2f} of the inputs; "
            f"∂L/∂α = [[{g[0, 0]:.1f}, {g[0, 1]:.1f}], [{g[1, 0]:.1f}, {g[1, 1]:.1f}]]"
        )
        return f"{text}. {state.message}." if state.message else text

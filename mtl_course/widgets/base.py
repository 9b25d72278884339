"""The explorer pattern: controls → a pure ``compute`` → a figure and a summary.

An explorer subclass declares its controls (ipywidgets sliders, toggles) and
implements two methods:

``compute(**values) -> state``
    The numbers the view shows, from the current control values. It must be
    fast (a closed form or a lookup in a precomputed sweep): a slider move
    should update the view in well under 100 ms.
``draw(state, fig) -> str``
    Draws ``state`` onto a fresh figure and returns a one-line summary.
    Extreme inputs (all weights zero, a single task) are reported in the
    summary, never raised: ``compute`` returns a state with a ``message``.

Displaying an explorer emits one output with three representations: the live
widget (``application/vnd.jupyter.widget-view+json``) for JupyterLab, a PNG of
the current figure for static viewers (nbval, GitHub, the website without a
widget manager), and the summary as ``text/plain``. Front ends pick the
richest one they can render.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ipywidgets as W
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage


class Explorer:
    """Base class of the course's interactive explorers (see the module docstring)."""

    #: Size of the figure in inches, and its resolution (the course style's 80 dpi,
    #: whatever the notebook's rcParams say: the PNG's size sets the redraw cost).
    figsize: tuple[float, float] = (7.0, 3.2)
    dpi: int = 80

    def __init__(self, controls: Mapping[str, W.ValueWidget], title: str = "") -> None:
        self.controls: dict[str, W.ValueWidget] = dict(controls)
        self.title = title
        # The live view shows the figure as a PNG in an Image widget: its bytes
        # live in the widget state, so the website's widget manager shows them
        # too, and no output routing is involved when a slider moves.
        self.image = W.Image(format="png")
        self._png = b""
        self._background: Any = None
        self.moving_artists: list[Any] = []
        self.summary_label = W.HTML()
        self.state: Any = None
        self.summary: str = ""
        self.figure: Figure | None = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        self.widget = W.VBox([*header, W.HBox(list(self.controls.values())), self.summary_label, self.image])
        self.update()

    # -- to implement ---------------------------------------------------------
    def compute(self, **values: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self, state: Any, fig: Figure) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- machinery ------------------------------------------------------------
    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values: Any) -> Explorer:
        """Set controls programmatically (as a slider move would) and update once."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"unknown control(s) {sorted(unknown)}; this explorer has {sorted(self.controls)}")
        with self._hold():
            for name, value in values.items():
                self.controls[name].value = value
        self.update()
        return self

    def move(self, state: Any) -> str | None:
        """Optional fast path for a slider move; the default redraws everything.

        A subclass whose :meth:`draw` stores the artists that depend on the
        controls in ``self.moving_artists`` may update those artists in place
        for ``state`` and return the summary. The rest of the figure is then
        not drawn again: it was kept as a bitmap after the last full draw, and
        only the moving artists are painted over it (matplotlib blitting).
        Returning ``None`` asks for a full redraw (e.g. when the axes change).
        """
        return None

    def update(self) -> None:
        """Recompute the state from the controls and redraw the view."""
        self.state = self.compute(**self.values)
        summary = self.move(self.state) if self._background is not None else None
        if summary is None:
            summary = self._draw_everything()
        else:
            canvas = self.figure.canvas
            canvas.restore_region(self._background)
            for artist in self.moving_artists:
                self.figure.draw_artist(artist)
        self.summary = summary
        self.summary_label.value = f"<code>{html.escape(summary)}</code>"
        self._png = self._encode_png()
        self.image.value = self._png

    def _draw_everything(self) -> str:
        if self.figure is None:
            # one figure for the explorer's life, outside pyplot (so no notebook shows it twice)
            self.figure = Figure(figsize=self.figsize, dpi=self.dpi)
            FigureCanvasAgg(self.figure)
        self.figure.clear()
        self.moving_artists = []
        summary = self.draw(self.state, self.figure)
        blit = bool(self.moving_artists) and type(self).move is not Explorer.move
        for artist in self.moving_artists:
            artist.set_animated(blit)
        self.figure.canvas.draw()
        self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox) if blit else None
        if blit:
            for artist in self.moving_artists:
                self.figure.draw_artist(artist)
        return summary

    def _encode_png(self) -> bytes:
        canvas = self.figure.canvas
        width, height = canvas.get_width_height()
        image = PILImage.frombuffer("RGBA", (width, height), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def png(self) -> bytes:
        """The current figure as PNG bytes (the static fallback), the image the live view shows."""
        return self._png

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        bundle["text/plain"] = self.summary
        return bundle

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if not getattr(self, "_holding", False):
            self.update()

    @contextmanager
    def _hold(self) -> Iterator[None]:
        """Suppress per-control updates while several controls change at once."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

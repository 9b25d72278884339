"""Interactive explorers for the lectures (ipywidgets), each with a static fallback.

Every explorer is an :class:`~mtl_course.widgets.base.Explorer`: displaying it
emits the live widget for JupyterLab *and* a PNG of its current state plus a
one-line text summary, so nbval, GitHub and the static website show a
meaningful figure where no widget front end runs.
"""

from mtl_course.widgets.base import Explorer

__all__ = ["Explorer"]

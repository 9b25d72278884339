"""Interactive explorers for the lectures (ipywidgets), each with a static fallback.

Every explorer is an :class:`~mtl_course.widgets.base.Explorer`: displaying it
emits the live widget for JupyterLab *and* a PNG of its current state plus a
one-line text summary, so nbval, GitHub and the static website show a
meaningful figure where no widget front end runs. The names below are imported
on first use (``import mtl_course.widgets`` does not import ipywidgets).
"""

from mtl_course._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "base": ["Explorer"],
        "lasso": ["LINE_COLORS", "LassoExplorer"],
        "soft_sharing": ["SoftSharingExplorer"],
        "cross_stitch": ["CrossStitchExplorer"],
        "loss_weights": ["LossWeightTuner"],
    },
)

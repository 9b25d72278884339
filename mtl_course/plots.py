"""The figure style every lecture shares.

One colour-blind-safe palette (seaborn's ``colorblind``, after Wong, *Nature
Methods* 8:441, 2011) and a few defaults, so that figures look the same in
every notebook. seaborn is imported here, not at ``import mtl_course``.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

#: Colour-blind-safe palette (seaborn "colorblind"), as hex strings.
PALETTE: tuple[str, ...] = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)


def use_course_style() -> None:
    """Apply the course style: seaborn's ``ticks`` theme, the palette, compact figures."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="ticks", palette=list(PALETTE))
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "axes.titlesize": "medium",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def task_colors(tasks: list[str]) -> dict[str, str]:
    """A stable colour per task name, in the order given.

    >>> task_colors(["seg", "cls"])
    {'seg': '#0173b2', 'cls': '#de8f05'}
    """
    return {task: PALETTE[i % len(PALETTE)] for i, task in enumerate(tasks)}


def close(fig: plt.Figure) -> None:
    """Close ``fig`` so that a notebook shows it once (the caller displays it)."""
    plt.close(fig)

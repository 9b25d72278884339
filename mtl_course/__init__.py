"""mtl_course: the teaching library of the multi-task learning course.

The package holds every formula the lectures derive, so that a notebook calls
(or shows with :func:`inspect.getsource`) one implementation instead of keeping
a second copy. Importing it is light: the names below are loaded on first use,
and no submodule imports seaborn, ipywidgets or scikit-learn until it needs
them.

>>> import mtl_course
>>> mtl_course.__version__
'0.1.0'
>>> mtl_course.get_budget("quick").pick(quick=1, full=10)
1
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Budget": "mtl_course.device",
    "get_budget": "mtl_course.device",
    "get_device": "mtl_course.device",
    "seed_everything": "mtl_course.device",
    "LectureSetup": "mtl_course.lecture",
    "setup_lecture": "mtl_course.lecture",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtl_course' has no attribute {name!r}")

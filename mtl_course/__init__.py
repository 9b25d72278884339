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

from mtl_course._lazy import lazy_exports

__version__ = "0.1.0"

_exports, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "device": ["Budget", "get_budget", "get_device", "seed_everything"],
        "lecture": ["LectureSetup", "setup_lecture"],
    },
)
__all__ = ["__version__", *_exports]

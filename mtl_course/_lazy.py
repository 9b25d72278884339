"""Lazily imported public faces: ``from mtl_course.data import make_shapes`` imports only ``data.shapes``.

A package lists ``{module: [names]}``; :func:`lazy_exports` returns the module-level
``__getattr__`` and ``__dir__`` that import a name's module on first use, so that
``import mtl_course.widgets`` does not import ipywidgets until an explorer is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``modules[m]`` from ``package.m``.

    >>> names, getattr_, _ = lazy_exports("mtl_course", {"device": ["get_budget"]})
    >>> names, getattr_("get_budget")("full").mode
    (['get_budget'], 'full')
    """
    origin = {name: f"{package}.{module}" for module, names in modules.items() for name in names}
    if len(origin) != sum(len(names) for names in modules.values()):
        raise ValueError(f"{package}: a name is exported from two modules")

    def __getattr__(name: str) -> Any:
        if name in origin:
            return getattr(importlib.import_module(origin[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(origin)

    return sorted(origin), __getattr__, __dir__

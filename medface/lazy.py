"""Packages whose public names are imported on first use (PEP 562), so importing them is cheap.

::

    __getattr__, __dir__ = lazy_exports(__name__, {"Screener": "screening", ...})

``exports`` maps a public name to the submodule (relative to the package) that defines it;
``modules`` names submodules that are themselves public. A name is imported once and then kept
in the package's namespace.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable, Iterable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str],
                 modules: Iterable[str] = ()) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for names defined in its submodules."""
    modules = frozenset(modules)

    def __getattr__(name: str):
        if name in modules:
            return import_module(f".{name}", package)
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports) | modules)

    return __getattr__, __dir__

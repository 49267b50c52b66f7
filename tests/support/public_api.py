"""The public API of gradtx, found by walking the package: what the docs tests check name by name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from typing import Any

import gradtx


def public_modules() -> list[types.ModuleType]:
    """``gradtx`` and every module below it whose dotted name has no ``_``-prefixed part."""
    names = [
        m.name
        for m in pkgutil.walk_packages(gradtx.__path__, "gradtx.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    return [gradtx, *(importlib.import_module(name) for name in names)]


def importable_names(module: types.ModuleType) -> list[str]:
    """What ``from module import *`` gives, or every non-underscore non-module name when there is no ``__all__``."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType) and type(obj).__name__ != "_Feature"
    ]


def public_objects() -> dict[str, Any]:
    """``{qualified name: object}`` for each distinct public object, named where it is first found.

    ``gradtx`` comes first, so a name re-exported flat is named ``gradtx.<name>``.
    """
    found: dict[int, tuple[str, Any]] = {}
    for module in public_modules():
        for name in importable_names(module):
            obj = getattr(module, name)
            found.setdefault(id(obj), (f"{module.__name__}.{name}", obj))
    return dict(found.values())


def is_gradtx_callable(obj: Any) -> bool:
    """A function or class that gradtx defines (not a typing alias such as ``Any`` or ``Callable[...]``)."""
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.split(".")[0] == "gradtx"


def is_record(obj: Any) -> bool:
    """A state or info named tuple, or a typing protocol: documented by its fields, not by an example."""
    return inspect.isclass(obj) and (issubclass(obj, tuple) or bool(getattr(obj, "_is_protocol", False)))


def own_docstring(obj: Any) -> str:
    """The docstring written for ``obj``; ``""`` for a named tuple's generated ``Name(field, ...)``."""
    doc = inspect.getdoc(obj) or ""
    fields = getattr(obj, "_fields", None)
    if inspect.isclass(obj) and fields is not None and doc == f"{obj.__name__}({', '.join(fields)})":
        return ""
    return doc

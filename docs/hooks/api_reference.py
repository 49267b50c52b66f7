"""The API reference, generated from the package itself at build time (an mkdocs hook).

One page per public namespace: ``gradtx`` itself (the names that live only there) and every public
subpackage or module of ``gradtx`` (``gradtx.transforms``, ``gradtx.optimizers``, ...), found by walking
the package, so a new namespace or a new name gets its entry without editing the docs. On each page the
names are grouped by the private module that defines them (titled by that module's docstring), one
mkdocstrings ``:::`` block per name. ``tests/test_docs_site.py`` checks that every public name lands on a
page and has a docstring; ``make docs`` (``mkdocs build --strict``) checks that every block renders.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from typing import Any

import gradtx

ROOT = "gradtx"
API_DIR = "api"


def public_namespaces() -> list[str]:
    """``gradtx`` and each of its public modules (no ``_`` in any part of the dotted name), at any depth."""
    subs = sorted(
        m.name
        for m in pkgutil.walk_packages(gradtx.__path__, f"{ROOT}.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )
    return [ROOT, *subs]


def public_names(module: types.ModuleType) -> list[str]:
    """The names a user may import from ``module``: its ``__all__``, else its non-underscore, non-module names."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and not isinstance(obj, types.ModuleType)
            and type(obj).__name__ != "_Feature"  # `from __future__ import annotations`
        ]
    return list(names)


def _same(module: types.ModuleType, name: str, obj: Any) -> bool:
    return name in public_names(module) and getattr(module, name, None) is obj


def home(obj: Any) -> str | None:
    """The public namespace whose page documents ``obj``: the deepest one containing the module that
    defines it (``gradtx._combine.chain``: the root; ``gradtx.wrappers._accumulate.MultiSteps``:
    ``gradtx.wrappers``). ``None`` for objects without a defining module (type aliases, constants)."""
    owner = getattr(obj, "__module__", None) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    if not owner or not (owner == ROOT or owner.startswith(ROOT + ".")):
        return None
    inside = [ns for ns in public_namespaces()[1:] if owner == ns or owner.startswith(ns + ".")]
    return max(inside, key=len) if inside else ROOT


def page_members(namespace: str) -> list[str]:
    """The names documented on ``namespace``'s page.

    Each object is documented once, on its :func:`home` page: a namespace that re-exports another's
    object under the same name (``gradtx.transforms.MultiSteps``, ``gradtx.transforms.chain``) leaves
    it to that page, so links and search lead to one entry. The root page documents the core (the
    transform type, ``chain``, ``partition``, ...); every other flat name ``gradtx.X`` is the same
    object as ``gradtx.<namespace>.X`` and is documented there. An object without a home (a type
    alias, an alias) is documented where it is exported, the root page leaving it to a namespace that has it.
    """
    module = importlib.import_module(namespace)
    names = public_names(module)
    subs = [importlib.import_module(ns) for ns in public_namespaces()[1:]]
    members = []
    for name in names:
        obj = getattr(module, name)
        # An alias (`compat.TransformInitFn` is `InitFn`) is documented where it is exported, not at home.
        where = home(obj) if getattr(obj, "__name__", name) == name else None
        if where is None:
            if namespace == ROOT and any(_same(sub, name, obj) for sub in subs):
                continue
        elif where != namespace and _same(importlib.import_module(where), name, obj):
            continue  # documented under this name on its home page
        members.append(name)
    return members


def page_path(namespace: str) -> str:
    return f"{API_DIR}/{namespace.removeprefix(ROOT + '.').replace('.', '/') if namespace != ROOT else 'index'}.md"


def _family(obj: Any, namespace: str) -> str:
    """The private module of gradtx that defines ``obj`` when it lies inside ``namespace``; else ``""``."""
    owner = getattr(obj, "__module__", None) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    if not owner or owner == namespace or not owner.startswith(ROOT + "."):
        return ""
    return owner if namespace == ROOT or owner.startswith(namespace + ".") else ""


def _family_title(owner: str) -> str:
    """A short section title from the first sentence of the defining module's docstring."""
    doc = inspect.getdoc(importlib.import_module(owner)) or owner
    title = doc.split("\n\n")[0].replace("\n", " ").strip().split(". ")[0].rstrip(".")
    for cut in (": ", ", ", " (", " and "):
        if cut == ": " or len(title) > 60:
            title = title.split(cut)[0]
    return title


def render_page(namespace: str) -> str:
    """The Markdown of ``namespace``'s page: its docstring, then its names grouped by family."""
    module = importlib.import_module(namespace)
    groups: dict[str, list[str]] = {}
    for name in page_members(namespace):
        groups.setdefault(_family(getattr(module, name), namespace), []).append(name)
    for names in groups.values():  # functions first, then the classes (mostly state types) they use
        names.sort(key=lambda n: inspect.isclass(getattr(module, n)))
    lines = [
        f"::: {namespace}",
        "    options:",
        "      members: false",
        "      heading_level: 1",
        "      show_root_full_path: true",
        "      show_symbol_type_heading: false",
        "",
    ]
    if namespace == ROOT:
        subs = ", ".join(f"[`{ns}`]({page_path(ns).removeprefix(API_DIR + '/')})" for ns in public_namespaces()[1:])
        lines += [
            f"The names of {subs} are documented on their own pages; most are also importable flat"
            " (`gradtx.adam` is `gradtx.optimizers.adam`). This page documents the names that live only here.",
            "",
        ]
    level = 3
    if list(groups) == [""]:  # a plain module: no families, no section headings
        level = 2
    for owner, names in sorted(groups.items(), key=lambda item: (item[0] == "", item[0])):
        if level == 3:
            title = _family_title(owner) if owner else ("Types" if namespace == ROOT else "Other names")
            lines += [f"## {title}", ""]
        for name in names:
            lines += [f"::: {namespace}.{name}", "    options:", f"      heading_level: {level}", ""]
    return "\n".join(lines)


# --- mkdocs hook events --------------------------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Append the generated pages to the nav, under "API reference"."""
    entries = [{ns: page_path(ns)} for ns in public_namespaces()]
    nav = config.get("nav")
    if nav is not None:
        nav.append({"API reference": entries})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add one generated Markdown file per namespace."""
    from mkdocs.structure.files import File

    for namespace in public_namespaces():
        files.append(File.generated(config, page_path(namespace), content=render_page(namespace)))
    return files

"""The docs site: its API reference covers every public name, and its nav lists only pages that exist.

The reference pages are generated at build time by ``docs/hooks/api_reference.py`` (one page per public
namespace); ``make docs`` builds the site with ``mkdocs build --strict``, which fails when a page's block does not
render. These tests check, without building, that the pages leave no public name out: every name a user can import
from ``gradtx`` or from any public module below it (found by walking the package, so new namespaces are included).
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import re
from typing import Any

from tests.support.public_api import importable_names, public_modules

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_hook() -> Any:
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "docs" / "hooks" / "api_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


api_reference = _load_hook()


def documented() -> list[tuple[str, Any]]:
    """``(qualified name, object)`` of every entry on a reference page."""
    entries = []
    for namespace in api_reference.public_namespaces():
        module = importlib.import_module(namespace)
        entries += [(f"{namespace}.{name}", getattr(module, name)) for name in api_reference.page_members(namespace)]
    return entries


def test_every_public_namespace_has_a_page():
    pages = set(api_reference.public_namespaces())
    missing = [m.__name__ for m in public_modules() if m.__name__ not in pages]
    assert not missing, f"public modules without an API page: {missing}"


def test_every_public_name_is_on_an_api_page():
    entries = documented()
    by_short_name: dict[str, list[Any]] = {}
    for qualified, obj in entries:
        by_short_name.setdefault(qualified.rpartition(".")[2], []).append(obj)
    missing = []
    for module in public_modules():
        for name in importable_names(module):
            obj = getattr(module, name)
            if not any(doc is obj for doc in by_short_name.get(name, [])):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"public names on no API page: {missing}"


def test_api_page_markdown_renders_one_block_per_name():
    page = api_reference.render_page("gradtx.optimizers")
    assert "::: gradtx.optimizers.adamw" in page
    assert page.count(":::") == len(api_reference.page_members("gradtx.optimizers")) + 1  # + the module docstring


def test_mkdocs_nav_lists_existing_pages_and_every_page_is_listed():
    config = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, flags=re.MULTILINE))
    missing = sorted(p for p in listed if not (ROOT / "docs" / p).exists())
    assert not missing, f"mkdocs.yml lists pages that do not exist: {missing}"
    unlisted = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in listed)
    assert not unlisted, f"docs pages missing from the nav of mkdocs.yml: {unlisted}"

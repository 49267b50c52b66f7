"""A griffe extension: the reST roles of gradtx's docstrings, as Markdown that mkdocstrings renders.

The docstrings read well in ``help()`` and keep Sphinx's roles; on the site ``:func:`gradtx.adam``` becomes a
link to the name's entry in the API reference (a code span when it has none), ``:math:`x``` inline math and a
``.. math::`` directive a display block (both rendered by pymdownx.arithmatex).
"""

from __future__ import annotations

import functools
import importlib
import pathlib
import re
import sys
import textwrap
from typing import Any

import griffe

sys.path.insert(0, str(pathlib.Path(__file__).parent))
api_reference = importlib.import_module("api_reference")

ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|obj|exc):`(~?)([^`]+)`")
MATH = re.compile(r":math:`([^`]+)`")
MATH_DIRECTIVE = re.compile(r"^( *)\.\. math::[ \t]*\n((?:\1 +\S.*\n|[ \t]*\n)+)", flags=re.MULTILINE)
MATH_DIRECTIVE_INLINE = re.compile(r"^( *)\.\. math:: *(\S.*\n(?:\1 +\S.*\n)*)", flags=re.MULTILINE)  # `.. math:: x`


@functools.cache
def anchors() -> dict[str, str]:
    """Every way a docstring names a documented object (``gradtx.X``, ``gradtx.ns.X``, ``X``) -> its anchor."""
    table: dict[str, str] = {}
    flat = importlib.import_module(api_reference.ROOT)
    for namespace in api_reference.public_namespaces():
        module = importlib.import_module(namespace)
        table.setdefault(namespace, namespace)
        for name in api_reference.page_members(namespace):
            anchor = f"{namespace}.{name}"
            table[anchor] = anchor
            table.setdefault(name, anchor)
            if getattr(flat, name, None) is getattr(module, name):
                table.setdefault(f"{api_reference.ROOT}.{name}", anchor)
    return table


def resolve(target: str) -> str | None:
    table = anchors()
    target = target.strip().rstrip("()")
    if target in table:
        return table[target]
    head, _, attr = target.rpartition(".")  # a method or field of a documented class
    if head in table and attr and table[head] not in api_reference.public_namespaces():
        return f"{table[head]}.{attr}"
    return None


def _role(match: re.Match[str]) -> str:
    _, short, target = match.groups()
    label = target.strip().rstrip("()").rpartition(".")[2] if short else target.strip()
    anchor = resolve(target)
    return f"[`{label}`][{anchor}]" if anchor else f"`{label}`"


def _math_block(match: re.Match[str]) -> str:
    # One $$ block per equation: a blank line inside one ends it for arithmatex (Sphinx splits too).
    indent, body = match.group(1), textwrap.dedent(match.group(2)).strip("\n")
    equations = [e.strip("\n") for e in re.split(r"\n\s*\n", body) if e.strip()]
    return "".join(f"{indent}$$\n" + textwrap.indent(e, indent) + f"\n{indent}$$\n\n" for e in equations)


def _math_inline_block(match: re.Match[str]) -> str:
    indent, body = match.group(1), match.group(2)
    lines = [line.strip() for line in body.splitlines()]
    return f"{indent}$$\n" + "".join(f"{indent}{line}\n" for line in lines) + f"{indent}$$\n"


def convert(text: str) -> str:
    text = MATH_DIRECTIVE.sub(_math_block, text + "\n")
    # reST's "text::" before a literal block is "text:" once rendered (the block itself is indented code).
    text = re.sub(r"(?<=\S)::$", ":", text, flags=re.MULTILINE)
    text = MATH_DIRECTIVE_INLINE.sub(_math_inline_block, text)
    text = MATH.sub(lambda m: f"${m.group(1)}$", text)
    return ROLE.sub(_role, text).rstrip("\n")


class RstRoles(griffe.Extension):
    """Rewrite each loaded docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()

        def visit(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # pyright: ignore[reportArgumentType]

        visit(pkg)

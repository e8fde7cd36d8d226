"""A griffe extension: the Sphinx roles of xpnet's docstrings (``:func:`fit```,
``:class:`~xpnet.engine.Run```) become links into the API reference.

A name is looked up where the docstring stands (its class, then its module), then from the
package's root. An object the reference shows (public and documented) becomes a link
(mkdocs-autorefs checks it, and the strict build fails on a link that leads nowhere); one it
leaves out stays code. A name found nowhere is a broken reference: the build stops and says
where.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([\w.]+)`")


def _find(pkg: Any, path: str) -> Any:
    try:
        return pkg.modules_collection[path]
    except KeyError:
        return None


def _lookup(pkg: Any, obj: Any, name: str) -> Any:
    scopes = []
    scope = obj
    while scope is not None:
        scopes.append(scope.path)
        scope = scope.parent
    for base in scopes:
        found = _find(pkg, f"{base}.{name}")
        if found is not None:
            return found
    return _find(pkg, name) or _find(pkg, f"{pkg.path}.{name}")


def _shown(obj: Any) -> bool:
    """Whether the reference renders ``obj``: public, and documented (the reference leaves out
    what has no docstring)."""
    private = any(part.startswith("_") and not part.startswith("__")
                  for part in obj.path.split("."))  # fmt: skip
    return not private and (obj.docstring is not None or obj.is_module)


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: Any, loader: Any, **kwargs: Any) -> None:
        broken = []

        def visit(obj: Any) -> None:
            if obj.is_alias:
                return
            if obj.docstring is not None:

                def link(match: re.Match[str]) -> str:
                    short, name = match.group(1), match.group(2)
                    shown = name.split(".")[-1] if short else name
                    target = _lookup(pkg, obj, name)
                    if target is None:
                        broken.append(f"{obj.path}: {match.group(0)}")
                        return f"`{shown}`"
                    if target.is_alias:
                        try:
                            target = target.final_target
                        except Exception:
                            return f"`{shown}`"
                    if not _shown(target):
                        return f"`{shown}`"
                    return f"[`{shown}`][{target.path}]"

                obj.docstring.value = ROLE.sub(link, obj.docstring.value)
            for member in obj.members.values():
                visit(member)

        visit(pkg)
        if broken:
            raise RuntimeError("docstrings name what does not exist:\n  " + "\n  ".join(broken))

"""Trees of arrays: nested dicts, tuples and NamedTuples (parameters, optimizer states).

One home for walking them: moving a tree between host and device (:func:`map_leaves`) and
writing it to, or reading it from, a flat ``{path: array}`` dict as model files store it
(:func:`flatten`, :func:`unflatten`). Leaves are arrays, numbers or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xpnet._typing import Tree


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def map_leaves(fn: Callable[[Any], Any], tree: Tree) -> Tree:
    """Return ``tree`` with ``fn`` applied to every leaf (None leaves stay None)."""
    if isinstance(tree, Mapping):
        return {k: map_leaves(fn, v) for k, v in tree.items()}
    if _is_namedtuple(tree):
        return type(tree)(*(map_leaves(fn, v) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_leaves(fn, v) for v in tree)
    return None if tree is None else fn(tree)


def _items(tree: Tree, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        return [i for k, v in tree.items() for i in _items(v, f"{prefix}{k}.")]
    if _is_namedtuple(tree):
        return [
            i for k, v in zip(tree._fields, tree, strict=True) for i in _items(v, f"{prefix}{k}.")
        ]
    if isinstance(tree, (tuple, list)):
        return [i for j, v in enumerate(tree) for i in _items(v, f"{prefix}{j}.")]
    return [] if tree is None else [(prefix[:-1], tree)]


def flatten(tree: Tree, prefix: str = "") -> dict[str, Any]:
    """Return ``{path: leaf}``, paths joined by dots (``"1.mu.W1"``), each prefixed by ``prefix``."""
    return {f"{prefix}{path}": leaf for path, leaf in _items(tree, "")}


def unflatten(template: Tree, flat: Mapping[str, Any], prefix: str = "") -> Tree:
    """Return ``template`` with each leaf replaced by ``flat[prefix + path]`` (its shape checked
    by the caller); raise KeyError naming the first path missing from ``flat``."""
    paths = iter(flatten(template))

    def take(_: Any) -> Any:
        return flat[prefix + next(paths)]

    return map_leaves(take, template)

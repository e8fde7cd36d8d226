"""The shape of a model file's JSON description, written as data and checked in one place.

A schema is a Python value: a type or a tuple of types (``int`` takes no ``bool``; ``float``
takes an ``int`` and refuses NaN and the infinities unless :class:`Real` allows them), a
:class:`Real` or :class:`Int` with bounds, a :class:`OneOf` of allowed values, :class:`Maybe`
(None allowed), a one-element list ``[spec]`` (a list of such items) or a dict ``{key: spec}``
(an object with those keys; a key written ``"?key"`` may be missing; keys the schema does not
name are ignored). :func:`check` raises :class:`Invalid` naming the first value that breaks it by
its path (``training.plan.epochs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class Invalid(ValueError):
    """A description that does not fit its schema: ``str()`` names the path and what is wrong."""


@dataclass(frozen=True)
class Real:
    """A number in ``[low, high]`` (an int is one too), finite unless ``finite=False``."""

    low: float = -math.inf
    high: float = math.inf
    finite: bool = True


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) in ``[low, high]``."""

    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Maybe:
    spec: Any


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: Any, spec: Any, where: str = "") -> None:
    """Raise :class:`Invalid` unless ``value`` fits ``spec`` (see the module's docstring)."""
    at = where or "the description"
    if isinstance(spec, Maybe):
        if value is not None:
            check(value, spec.spec, where)
        return
    if isinstance(spec, OneOf):
        if not any(type(value) is type(v) and value == v for v in spec.values):
            raise Invalid(f"{at} must be one of {', '.join(map(repr, spec.values))}; got "
                          f"{_shown(value)}")  # fmt: skip
        return
    if isinstance(spec, Int) or spec is int:
        low, high = (spec.low, spec.high) if isinstance(spec, Int) else (-math.inf, math.inf)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Invalid(f"{at} must be an integer{_bounds(low, high)}; got {_shown(value)}")
        return
    if isinstance(spec, Real) or spec is float:
        real = spec if isinstance(spec, Real) else Real()
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and math.isnan(value):
            ok = not real.finite
        elif ok:
            ok = (not real.finite or math.isfinite(value)) and real.low <= value <= real.high
        if not ok:
            finite = " finite" if real.finite else ""
            raise Invalid(f"{at} must be a{finite} number{_bounds(real.low, real.high)}; got "
                          f"{_shown(value)}")  # fmt: skip
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise Invalid(f"{at} must be a list; got {_shown(value)}")
        for i, item in enumerate(value):
            check(item, spec[0], f"{where}[{i}]")
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise Invalid(f"{at} must be an object; got {_shown(value)}")
        for key, sub in spec.items():
            name = key.removeprefix("?")
            path = f"{where}.{name}" if where else name
            if name in value:
                check(value[name], sub, path)
            elif not key.startswith("?"):
                raise Invalid(f"{path} is missing")
        return
    types = spec if isinstance(spec, tuple) else (spec,)
    if (bool not in types and isinstance(value, bool)) or not isinstance(value, types):
        names = " or ".join(_type_name(t) for t in types)
        raise Invalid(f"{at} must be {names}; got {_shown(value)}")


def _bounds(low: float, high: float) -> str:
    if low > -math.inf and high < math.inf:
        return f" in [{low:g}, {high:g}]"
    if low > -math.inf:
        return f" >= {low:g}"
    return f" <= {high:g}" if high < math.inf else ""


def _type_name(t: type) -> str:
    return {str: "text", bool: "true or false", dict: "an object", list: "a list",
            int: "an integer", float: "a number"}.get(t, t.__name__)  # fmt: skip

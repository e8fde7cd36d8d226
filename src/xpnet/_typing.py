"""The types xpnet's modules share, defined once.

``Array`` is an array of whichever library the selected backend uses (its namespace is
``Namespace``); ``Params`` maps parameter names (``W1``, ``b1``...) to such arrays; ``HostParams``
to NumPy arrays; a ``Tree`` is any nesting of dicts, tuples and NamedTuples with arrays (or
numbers) at its leaves, such as an optimizer state.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeAlias

Array: TypeAlias = Any
Namespace: TypeAlias = ModuleType
Params: TypeAlias = dict[str, Array]
HostParams: TypeAlias = dict[str, Any]  # values are numpy.ndarray (NumPy is not imported here)
Tree: TypeAlias = Any

"""The types xpnet's modules share, defined once.

``Array`` is an array of whichever library the selected backend uses; ``Params`` maps parameter
names (``W1``, ``b1``...) to such arrays; ``HostParams`` to NumPy arrays; a ``Tree`` is any
nesting of dicts, tuples and NamedTuples with arrays (or numbers) at its leaves, such as an
optimizer state. A training program's ``Carry`` is ``(params, optimizer state)``; a ``Step``
takes one gradient step on the rows it is given (:func:`xpnet.train.make_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

Array: TypeAlias = Any
Params: TypeAlias = dict[str, Array]
HostParams: TypeAlias = dict[str, Any]  # values are numpy.ndarray (NumPy is not imported here)
Tree: TypeAlias = Any
Carry: TypeAlias = tuple[Params, Tree]
Step: TypeAlias = Callable[..., tuple[Carry, Array | None]]
"""``step(carry, X, T, w, draw=None) -> (carry, loss)`` (see :func:`xpnet.train.make_step`)."""

"""The memory a run needs on its device, estimated from its sizes before anything is allocated."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backends import Backend
from xpnet.errors import ConfigError


def memory_needed(
    spec: Any, rows: int, batch_rows: int, itemsize: int, resident: bool, dropout: bool = False
) -> dict[str, float]:
    """Bytes a run needs on its device, roughly: the parameters four times over (themselves,
    their gradients, an update, and up to two optimizer moments counted as one more copy each),
    one step's activations and deltas for ``batch_rows`` rows (three arrays a layer), and, when
    the data is ``resident`` there, the ``rows`` rows of inputs and targets; with ``dropout``,
    two more arrays a hidden layer (its multiplier and the activation before it)."""
    params = sum((i + 1) * o for i, o in zip(spec.sizes, spec.sizes[1:], strict=False))
    need = {"parameters": 5.0 * params * itemsize,
            "activations": 3.0 * batch_rows * sum(spec.sizes[1:]) * itemsize,
            "data": float(rows * (spec.sizes[0] + spec.sizes[-1]) * itemsize) if resident else 0.0,
            "dropout": 2.0 * batch_rows * sum(spec.sizes[1:-1]) * itemsize if dropout else 0.0}  # fmt: skip
    return need


def shown(n: float) -> str:
    """Bytes as a person reads them: 1.2 GB."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_memory(backend: Backend, spec: Any, rows: int, batch_rows: int | None = None,
                 resident: bool = True, dropout: bool = False) -> None:  # fmt: skip
    """Raise ConfigError, before anything is allocated, when a run cannot fit the device's memory
    (:func:`memory_needed` against :meth:`Backend.memory_bytes`), saying what takes the room."""
    have = backend.memory_bytes()
    itemsize = np.dtype(backend.dtype_name).itemsize
    need = memory_needed(spec, rows, rows if batch_rows is None else batch_rows, itemsize, resident,
                         dropout)  # fmt: skip
    if have is None or sum(need.values()) <= have:
        return
    parts = ", ".join(f"{k} {shown(v)}" for k, v in need.items() if v)
    raise ConfigError(f"this run needs about {shown(sum(need.values()))} of memory ({parts}) and "
                      f"the {backend.device_label} has {shown(have)}: use smaller hidden layers "
                      "(--hidden) or mini-batches (--batch-size)")  # fmt: skip

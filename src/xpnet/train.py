"""Full-batch training: a pure step, run in chunks by the backend's loop.

``step((params, opt_state)) -> ((params, opt_state), loss_before_update)``. A chunk runs n steps
with ``backend.scan`` (a compiled ``lax.scan`` on JAX, a plain loop elsewhere) and keeps the losses
on the device; the host sees them once per chunk, which is also where printing, the divergence
check and Ctrl-C happen. Nothing here converts or validates: the caller did that once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from xpnet import mlp
from xpnet.backends import Backend
from xpnet.errors import ConfigError, DivergenceError
from xpnet.optim import Optimizer

Array = Any
Params = dict[str, Array]
RECORDS = ("after", "before")
"""``after``: the loss of pass i is measured after update i (seed 000); ``before``: from the forward
pass of update i itself (seed 001)."""
DEFAULT_CHUNK = 1000

ChunkCallback = Callable[[int, np.ndarray, Params], None]
"""``on_chunk(first_pass, losses, params)``: losses (n,) of passes first_pass.. on the host."""


class History(NamedTuple):
    losses: np.ndarray
    """(epochs,) float64 loss of every pass, as ``record`` defines it."""
    seconds: float
    """Wall time of the training loop, device work included."""


def make_step(
    xp: Any, spec: mlp.Spec, reg: float, reduction: str, optimizer: Optimizer
) -> Callable[[Any, Array, Array], tuple[Any, Array]]:
    """Return the pure step ``(carry, X, T) -> (carry, loss)`` with ``carry = (params, opt_state)``."""

    def step(carry: Any, X: Array, T: Array) -> tuple[Any, Array]:
        params, state = carry
        value, grads = mlp.loss_and_grads(xp, params, X, T, spec, reg, reduction)
        params, state = optimizer.update(grads, state, params)
        return (params, state), value

    return step


def make_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]:
    """Return ``chunk(carry, X, T, n) -> (carry, losses (n,), end_loss)``, compiled where possible.
    ``end_loss`` is the loss at the final parameters (needed for ``record="after"``)."""
    xp = backend.xp
    step = make_step(xp, spec, reg, reduction, optimizer)

    def chunk(carry: Any, X: Array, T: Array, n: int) -> tuple[Any, Array, Array]:
        carry, before = backend.scan(lambda c: step(c, X, T), carry, n)
        if record == "after":
            end = mlp.loss(xp, carry[0], X, T, spec, reg)
        else:
            end = xp.zeros((), dtype=before.dtype)
        return carry, before, end

    return backend.jit(chunk, static_argnums=(3,))


_MAX_COMPILED = 16
_COMPILED: dict[tuple[Any, ...], Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]] = {}


def cached_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]:
    """Return :func:`make_chunk`'s function, reusing one built for the same backend, device, dtype,
    architecture and settings, so that a second fit on JAX does not compile again."""
    if not optimizer.config:
        return make_chunk(backend, spec, optimizer, reg, reduction, record)
    key: tuple[Any, ...] = (backend.name, backend.device_label, backend.dtype_name, spec)
    key += (optimizer.config, reg, reduction, record)
    if key not in _COMPILED:
        if len(_COMPILED) >= _MAX_COMPILED:  # bounded: many distinct settings must not leak
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = make_chunk(backend, spec, optimizer, reg, reduction, record)
    return _COMPILED[key]


def fit(
    backend: Backend,
    spec: mlp.Spec,
    params: Params,
    X: Array,
    T: Array,
    *,
    optimizer: Optimizer,
    epochs: int,
    reg: float = 0.0,
    reduction: str = "sum",
    record: str = "after",
    chunk_size: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> tuple[Params, History]:
    """Train ``params`` (device arrays) on X (n, n_in) and targets T (n, n_out) for ``epochs``
    full-batch passes. Return the final parameters and the per-pass :class:`History`.

    Raises :class:`DivergenceError` (with the parameters at the start of the failing chunk, whose
    losses were finite) as soon as a chunk holds a NaN or infinite loss.
    """
    if record not in RECORDS:
        raise ConfigError(f"unknown record {record!r}; valid: {', '.join(RECORDS)}")
    if reduction not in mlp.REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(mlp.REDUCTIONS)}")
    size = chunk_size or DEFAULT_CHUNK
    run = cached_chunk(backend, spec, optimizer, reg, reduction, record)
    carry = (params, optimizer.init(params))
    pieces: list[np.ndarray] = []
    done = 0
    start = time.perf_counter()
    while done < epochs:
        n = min(size, epochs - done)
        new_carry, before, end = run(carry, X, T, n)
        host = backend.to_numpy(before).astype(np.float64)
        if record == "after":
            host = np.concatenate([host[1:], backend.to_numpy(end).reshape(1)])
        bad = np.flatnonzero(~np.isfinite(host))
        if bad.size:
            first = done + int(bad[0])
            raise DivergenceError(
                f"training diverged: the loss is {host[bad[0]]} at pass {first}; "
                "try a smaller learning rate (--lr)",
                pass_index=first,
                params=carry[0],
            )
        carry = new_carry
        pieces.append(host)
        if on_chunk is not None:
            on_chunk(done, host, carry[0])
        done += n
    backend.sync(carry[0])
    seconds = time.perf_counter() - start
    losses = np.concatenate(pieces) if pieces else np.zeros(0)
    return carry[0], History(losses, seconds)

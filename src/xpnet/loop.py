"""The host-side training driver: runs :mod:`xpnet.train`'s chunks, gathers each chunk's losses
once, checks them, and calls back. Printing, the divergence check and Ctrl-C happen between chunks.
Nothing here converts or validates data: the caller did that once.
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
from xpnet.train import DEFAULT_CHUNK, RECORDS, cached_chunk

Array = Any
Params = dict[str, Array]

ChunkCallback = Callable[[int, np.ndarray, Params], None]
"""``on_chunk(first_pass, losses, params)``: losses (n,) of passes first_pass.. on the host."""


class History(NamedTuple):
    losses: np.ndarray
    """(epochs,) float64 loss of every pass, as ``record`` defines it."""
    seconds: float
    """Wall time of the training loop, device work included."""


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

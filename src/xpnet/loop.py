"""The host-side training driver: runs :mod:`xpnet.train`'s chunks, gathers each chunk's losses
once, checks them, and calls back. Printing, the divergence check and Ctrl-C happen between chunks.
Nothing here converts or validates data: the caller did that once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from xpnet import mlp
from xpnet.backends import Backend
from xpnet.errors import ConfigError, DivergenceError, TrainingInterrupted
from xpnet.optim import Optimizer
from xpnet.train import DEFAULT_CHUNK, GROWTH_LIMIT, RECORDS, Chunk, cached_chunk

Array = Any
Params = dict[str, Array]

PREDICT_BATCH = 65536
"""Rows per batch in :func:`predict`."""

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
    stop: Callable[[], bool] | None = None,
    weights: Array | None = None,
) -> tuple[Params, History]:
    """Train ``params`` (device arrays) on X (n, n_in) and targets T (n, n_out) (with sample
    ``weights`` (n,) if given, e.g. from :meth:`Backend.asarray_rows`) for ``epochs``
    full-batch passes. Return the final parameters and the per-pass :class:`History`.

    Raises :class:`DivergenceError` as soon as a chunk holds a NaN, infinite or runaway loss (above
    ``GROWTH_LIMIT * max(initial loss, 1)``), carrying the parameters of the last good pass, and
    :class:`TrainingInterrupted` (with the parameters so far) when ``stop()`` is true after a chunk.
    """
    if record not in RECORDS:
        raise ConfigError(f"unknown record {record!r}; valid: {', '.join(RECORDS)}")
    if reduction not in mlp.REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(mlp.REDUCTIONS)}")
    size = chunk_size or DEFAULT_CHUNK
    run = cached_chunk(backend, spec, optimizer, reg, reduction, record)
    carry = (params, optimizer.init(backend.xp, params))
    start_loss = float(backend.to_numpy(mlp.loss(backend.xp, params, X, T, spec, reg, weights)))
    limit = GROWTH_LIMIT * max(start_loss, 1.0) if np.isfinite(start_loss) else -np.inf
    pieces: list[np.ndarray] = []
    done = 0
    start = time.perf_counter()
    while done < epochs:
        n = min(size, epochs - done)
        new_carry, losses, bad = run(carry, X, T, n, limit, weights)
        host = backend.to_numpy(losses).astype(np.float64)
        j = int(backend.to_numpy(bad))
        if j >= 0:
            data = (X, T, weights)
            raise _diverged(run, carry, data, limit, record, done, j, host, pieces)
        carry = new_carry
        pieces.append(host)
        if on_chunk is not None:
            on_chunk(done, host, carry[0])
        done += n
        if stop is not None and stop() and done < epochs:
            raise TrainingInterrupted(passes_done=done, params=carry[0], losses=_joined(pieces))
    backend.sync(carry[0])
    seconds = time.perf_counter() - start
    return carry[0], History(_joined(pieces), seconds)


def _diverged(
    run: Chunk,
    carry: Any,
    data: tuple[Array, Array, Array | None],
    limit: float,
    record: str,
    done: int,
    j: int,
    host: np.ndarray,
    pieces: list[np.ndarray],
) -> DivergenceError:
    """The error for loss ``host[j]`` of the chunk starting at pass ``done``, carrying the
    parameters of the last pass whose loss was fine (replayed from the chunk's start)."""
    value = host[j]
    kept = j if record == "after" else max(j - 1, 0)  # passes of this chunk to keep
    if kept:
        X, T, weights = data
        carry = run(carry, X, T, kept, limit, weights)[0]
    what = (
        f"the loss is {value}"
        if not np.isfinite(value)
        else f"the loss grew to {value:.4g} (over {GROWTH_LIMIT:g} times its start)"
    )
    return DivergenceError(
        f"training diverged: {what} at pass {done + j}; try a smaller learning rate (--lr)",
        pass_index=done + j,
        params=carry[0],
        losses=_joined([*pieces, host[:kept]]),
    )


def predict(
    backend: Backend,
    spec: mlp.Spec,
    params: Params,
    X: np.ndarray,
    batch_size: int = PREDICT_BATCH,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Return the network's outputs (n, n_out) as float64 NumPy for host inputs X (n, n_in),
    ``batch_size`` rows at a time (``prepare`` applied to each batch first, e.g. scaling), so
    memory beyond X and the result stays bounded. ``params`` are device arrays."""
    out = np.empty((X.shape[0], spec.sizes[-1]))
    for start in range(0, X.shape[0], batch_size):
        rows = X[start : start + batch_size]
        batch = backend.asarray(rows if prepare is None else prepare(rows))
        out[start : start + batch_size] = backend.to_numpy(
            mlp.predict_proba(backend.xp, params, batch, spec)
        )
    return out


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pieces) if pieces else np.zeros(0)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopper:
    """``stopper()`` is True once a stop signal arrived; ``signum`` says which (else None)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def stop_signals() -> Iterator[Stopper]:
    """Within the block, the first Ctrl-C (SIGINT) or SIGTERM only records itself in the returned
    :class:`Stopper`, so training can stop after the current chunk; a second one acts at once
    (KeyboardInterrupt, or the process ends). Outside the main thread, where handlers cannot be
    installed, the stopper stays False and signals behave as usual."""
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous: dict[int, Any] = {int(s): signal.getsignal(s) for s in STOP_SIGNALS}
    for s, old in previous.items():
        if old is None:  # installed outside Python: restore Python's default
            previous[s] = signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL

    def handler(signum: int, frame: Any) -> None:
        stopper.signum = signum
        signal.signal(signum, previous[signum])  # a second one is not deferred

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield stopper
    finally:
        for s, old in previous.items():
            signal.signal(s, old)

"""Mini-batch epochs over data that stays on the host: in memory or a memory-mapped ``.npy``.

An epoch visits the rows in a given order, ``batch_size`` at a time with a smaller last batch (as
scikit-learn does). Consecutive batches are grouped into *blocks* of about :data:`BLOCK_BYTES` of
inputs; a worker thread gathers the next block's rows on the host (reading them from disk for a
memory map) and sends it to the device (split over the devices when data-parallel) while the
current block trains (on an accelerator; see :data:`PREFETCH`), so the device holds three blocks
at most, whatever the size of the data. On CUDA (CuPy, PyTorch) those copies come from pinned
host memory on a stream of their own (:meth:`~xpnet.backends.Backend.put_async`), so they run
beside the computation; the computation waits for them on the device, not on the host.
The steps of a block run as one call of :func:`xpnet.train.block` (compiled on JAX); the engine's
:class:`~xpnet.feeds.Batches` feed drives epochs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

import numpy as np

from xpnet._typing import Array
from xpnet.backends import Backend


class Place(NamedTuple):
    """Where a block is in its epoch: the batches before it, and (where asked for: dropout
    draws by row) its rows' indices in the data set (b, k) on the device, else None."""

    first: int
    rows: Array | None


Block = Callable[[Any, Array, Array, Array | None, Place], tuple[Any, Array]]
"""``block(carry, X, T, w, place) -> (carry, losses (k,))`` for a block X (b, k, n_in), T (b, k,
n_out) and weights w (b,) or (b, k) or None (see :func:`xpnet.train.block`) at ``place``."""

BLOCK_BYTES = 32 * 2**20
"""Inputs sent to the device at a time (rounded to whole batches; at least one batch)."""
PREFETCH: int | None = None
"""Blocks prepared ahead of the one training; None: 1 on an accelerator (its copy engine sends
the next block while the current one computes), 0 on the CPU, where the worker thread would
compete with the computation for the same cores (benchmarks/streaming.py, 2 cores, page cache
warm: no faster, and up to 15% slower on JAX and PyTorch)."""


def plan(order: np.ndarray, batch_size: int, batches_per_block: int) -> list[np.ndarray]:
    """Return the blocks of an epoch visiting rows in ``order`` (n,): index arrays (b, k) of k
    batches of b rows, ``batch_size`` rows a batch but the last (n % batch_size rows, alone in
    its block), at most ``batches_per_block`` batches a block."""
    n = order.shape[0]
    n_full = n // batch_size
    grid = order[: n_full * batch_size].reshape(n_full, batch_size)
    blocks = [grid[i : i + batches_per_block].T for i in range(0, n_full, batches_per_block)]
    if n % batch_size:
        blocks.append(order[n_full * batch_size :, None])
    return blocks


def batches_per_block(batch_size: int, row_bytes: int, budget: int) -> int:
    """Return how many batches of ``batch_size`` rows of ``row_bytes`` fit ``budget`` (>= 1)."""
    return max(1, budget // max(1, batch_size * row_bytes))


class _Ready(NamedTuple):
    X: Array
    T: Array
    weights: Array | None
    rows: int
    """Real rows a batch (the padding for data-parallel splitting excluded)."""
    ids: Array | None
    """The rows' indices in the data set (b, k), int32, where asked for."""
    tokens: list[Any]
    """Copies still running (:meth:`Backend.put_async`): waited for before the block trains."""


def rows(X: Any, index: np.ndarray | slice) -> np.ndarray:
    """Return the rows ``index`` of host X as a dense ndarray: X an ndarray, a memory map or a
    SciPy sparse matrix (CSR; densified here, a block at a time)."""
    part = X[index]
    return part.toarray() if hasattr(part, "toarray") else np.asarray(part)


def _prepared(
    backend: Backend,
    X: Any,
    T: np.ndarray,
    blocks: list[np.ndarray],
    weights: np.ndarray | None = None,
    with_rows: bool = False,
) -> Generator[_Ready, None, None]:
    """Gather each block's rows on the host and put them on the device, in order (with
    ``with_rows``, their indices too)."""
    for index in blocks:
        b, k = index.shape
        flat = np.sort(index.reshape(-1))  # read a memory map front to back ...
        where = np.searchsorted(flat, index.reshape(-1))  # ... then lay the rows out as asked
        parts: list[np.ndarray] = [rows(X, flat)[where].reshape(b, k, X.shape[1]),
                                   np.asarray(T[flat])[where].reshape(b, k, T.shape[1])]  # fmt: skip
        if weights is not None:  # one column a batch; padding rows get weight 0 as data
            parts.append(np.asarray(weights[flat])[where].reshape(b, k))
        tokens: list[Any] = []
        arrays, padding = backend.asarray_rows(*parts, tokens=tokens)
        w = arrays[2] if weights is not None else padding
        ids = None
        if with_rows:
            ids = backend.asarray_rows(index, tokens=tokens, dtype=np.int32)[0][0]
        yield _Ready(arrays[0], arrays[1], w, b, ids, tokens)


def _ahead(
    backend: Backend, items: Generator[_Ready, None, None], depth: int
) -> Generator[_Ready, None, None]:
    """Yield ``items``, produced by a worker thread up to ``depth`` ahead of the consumer (with
    the backend's device current there too). An error in the worker is raised in the consumer;
    leaving the loop early stops the worker."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            with backend.activate():
                for item in items:
                    if not put(("item", item)):
                        return
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
            return
        put(("end", None))

    worker = threading.Thread(target=work, name="xpnet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def epoch(
    backend: Backend,
    block: Block,
    carry: Any,
    X: Any,
    T: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    *,
    weights: np.ndarray | None = None,
    budget: int | None = None,
    prefetch: int | None = None,
    with_rows: bool = False,
) -> tuple[Any, Array]:
    """Run one mini-batch epoch over host X (n, n_in) (an ndarray, a ``numpy.memmap`` or a SciPy
    CSR matrix: see :func:`rows`) and T (n, n_out), with sample weights (n,) or None, in the
    order of ``order`` (n,). Return the
    carry and the 0-d mean loss on the device (batch losses weighted by batch size). Blocks
    hold about ``budget`` bytes of inputs (default :data:`BLOCK_BYTES`); ``prefetch`` blocks
    are prepared ahead by a thread (0: none, one block at a time; default :data:`PREFETCH`);
    ``with_rows``: each block's :class:`Place` holds its rows' indices."""
    if prefetch is None:
        prefetch = PREFETCH if PREFETCH is not None else int(backend.is_accelerator)
    n = order.shape[0]
    row_bytes = X.shape[1] * np.dtype(backend.dtype_name).itemsize
    per_block = batches_per_block(batch_size, row_bytes, budget or BLOCK_BYTES)
    blocks = plan(order, batch_size, per_block)
    ready = _prepared(backend, X, T, blocks, weights, with_rows)
    items = _ahead(backend, ready, prefetch) if prefetch else ready
    total = None
    first = 0
    try:
        for item in items:
            for token in item.tokens:  # the device waits for the copy, the host does not
                backend.ready(token)
            carry, losses = block(carry, item.X, item.T, item.weights, Place(first, item.ids))
            first += item.X.shape[1]
            part = backend.xp.sum(losses) * item.rows
            total = part if total is None else total + part
            backend.retire((item.X, item.T, item.weights, item.ids))  # queued kernels read it
    finally:
        items.close()  # on an error too: the worker stops now, not when the traceback goes
    return carry, total / n

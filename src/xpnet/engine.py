"""The training engine: one driver for every way xpnet trains.

:func:`fit` advances a :class:`Run` (parameters, optimizer state, epochs done, loss history) epoch
by epoch until ``epochs``, a chunk of epochs at a time, through a *feed* that says where the data
comes from:

- :class:`FullBatch`: the data on the device (split over a mesh when data-parallel, each
  process's own rows in a multi-process job); an epoch is one pass, a chunk many passes in one
  compiled program, the loss computed only where it is recorded;
- :class:`Batches`: mini-batch epochs in an order drawn on the host, the data on the device or
  streamed from host memory or a memory map block by block (:mod:`xpnet.stream`);
- :class:`LBFGS`: full-batch L-BFGS iterations (:func:`xpnet.optim.lbfgs`), SciPy's search fed
  by xpnet's loss and gradient on the backend (:mod:`xpnet.lbfgs`); it may end before
  ``epochs`` (converged).

Between chunks the driver gathers the chunk's losses (one sync), applies the one divergence rule
(a NaN, infinite or runaway loss stops training, keeps the last finite parameters and raises
:class:`~xpnet.errors.DivergenceError`), records the history and calls the plug-ins
(:mod:`xpnet.callbacks`: progress, checkpoints, early stopping, adaptive rate, Ctrl-C). Front-ends
(``Network``, the estimators, the command line) only translate their settings into a run, a feed
and plug-ins. Nothing here converts or validates data: the front-end did that once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from xpnet import lbfgs, mlp, optim, stream, train, trees, validation
from xpnet._typing import Array, HostParams, Params, Tree
from xpnet.backends import Backend
from xpnet.errors import ConfigError, DataError, DivergenceError, TrainingInterrupted

if TYPE_CHECKING:
    from xpnet.callbacks import Callback

Carry = tuple[Params, Tree]

GROWTH_LIMIT = 1e3
"""A loss above ``GROWTH_LIMIT * max(first recorded loss, 1)`` counts as diverged, like a NaN or
inf: the seeds' bounded cycle (seed 000) and spikes (seed 001) stay far below it."""
CHUNK_SECONDS = 1.0
"""Where the caller leaves the chunk size to the engine, a chunk of full-batch passes lasts about
this long at most: a stop signal (Ctrl-C, SIGTERM) acts between chunks."""
FIRST_RATE = 5e7
"""FLOP/s assumed for the first chunk, before anything is measured: a slow backend's
(array-api-strict runs seed 000 at about this rate)."""


class History:
    """The recorded losses of a run: ``passes`` (int, increasing) and their ``losses``."""

    def __init__(self, passes: Any = (), losses: Any = ()) -> None:
        self._pieces = [(np.asarray(passes, dtype=np.int64), np.asarray(losses, dtype=np.float64))]
        self._joined: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, passes: np.ndarray, losses: np.ndarray) -> None:
        self._pieces.append((passes, losses))
        self._joined = None

    def _join(self) -> tuple[np.ndarray, np.ndarray]:
        if self._joined is None:
            self._joined = (np.concatenate([p for p, _ in self._pieces]),
                            np.concatenate([v for _, v in self._pieces]))  # fmt: skip
            self._pieces = [self._joined]
        return self._joined

    @property
    def passes(self) -> np.ndarray:
        return self._join()[0]

    @property
    def losses(self) -> np.ndarray:
        return self._join()[1]


@dataclass
class Run:
    """One training run's state, advanced by :func:`fit` and seen by the plug-ins."""

    backend: Backend
    objective: train.Objective
    optimizer: optim.Optimizer
    params: Params
    """Device arrays."""
    opt_state: Tree
    """Device arrays (see :mod:`xpnet.optim`)."""
    epoch: int = 0
    """Epochs (full-batch passes) done."""
    history: History = field(default_factory=History)
    reference: float | None = None
    """The run's first recorded loss: the base of :data:`GROWTH_LIMIT`."""
    seconds: float = 0.0
    """Wall time spent in :func:`fit`, device work included."""
    stop: str | None = None
    """Set by a plug-in to end training after the current chunk (the reason)."""
    signum: int | None = None
    """Set by :class:`~xpnet.callbacks.Interrupt`: the signal that asked to stop."""

    @classmethod
    def start(
        cls,
        backend: Backend,
        objective: train.Objective,
        optimizer: optim.Optimizer,
        params: HostParams,
        opt_state: Tree = None,
        **restored: Any,
    ) -> Run:
        """A run from host parameters and optimizer state (None: a fresh state), moved to the
        device; ``restored`` sets ``epoch``, ``history``, ``reference`` (resuming)."""
        device = backend.tree_asarray(params)
        if opt_state is None:
            state = optimizer.init(backend.xp, device)
        else:
            state = trees.map_leaves(backend.asarray, opt_state)
        return cls(backend, objective, optimizer, device, state, **restored)

    def host_params(self) -> HostParams:
        return self.backend.tree_to_numpy(self.params)

    def host_state(self) -> Tree:
        return trees.map_leaves(self.backend.to_numpy, self.opt_state)


class Chunk(NamedTuple):
    """What a feed returns for a chunk of epochs."""

    carry: Carry
    passes: np.ndarray
    """The recorded epochs."""
    losses: np.ndarray
    """Their losses."""
    check: np.ndarray
    """Every loss the chunk measured: what the divergence rule looks at."""
    per_epoch: np.ndarray | None
    """One loss per epoch of the chunk in order (plus, for losses before the update, the loss at
    the final parameters), where the chunk measured them all; else None."""
    done: int | None = None
    """Epochs the chunk ran, where the feed stopped before the chunk's end; None: all of them."""
    stopped: str | None = None
    """Why the feed stopped before the chunk's end (L-BFGS converged), else None."""


def _host(backend: Backend, values: Array) -> np.ndarray:
    return np.asarray(backend.to_numpy(values), dtype=np.float64).reshape(-1)


class FullBatch:
    """Full-batch passes on data that lives on the device: X (n, n_in), targets T (n, n_out) and
    optional sample ``weights`` (n,) on the host, moved once (split over the devices, padded with
    zero-weight rows, where the backend is data-parallel; ``rows`` is the data set's size when a
    multi-process job's process holds only its own rows). ``record``: a pass's loss after its
    update or before it."""

    unit = "pass"
    default_chunk = 1000
    timed = True
    """Chunks are cut to :data:`CHUNK_SECONDS` when the caller leaves their size to the engine."""

    def __init__(
        self,
        backend: Backend,
        X: Any,
        T: Any,
        *,
        rows: int | None = None,
        record: str = "after",
        weights: np.ndarray | None = None,
    ) -> None:
        self.record = validation.one_of(train.RECORDS, record, "record")
        self.rows = int(rows if rows is not None else np.shape(X)[0])
        if weights is None:
            (self.X, self.T), self.weights = backend.asarray_rows(X, T, rows=rows)
        else:  # the sample weights (n,) of the same rows; padding rows get weight 0
            (self.X, self.T, self.weights), _ = backend.asarray_rows(X, T, weights, rows=rows)

    def _program(self, run: Run, plan: train.Plan) -> Any:
        return train.full_batch(run.backend, run.objective, run.optimizer, plan)

    def run(self, run: Run, first: int, n: int, wanted: np.ndarray) -> Chunk:
        offsets = wanted - first
        before = offsets if self.record == "before" else offsets[offsets + 1 < n] + 1
        plan = train.plan_full_batch(n, tuple(int(o) for o in before))
        carry, out = self._program(run, plan)((run.params, run.opt_state), self.X, self.T,
                                              self.weights)  # fmt: skip
        host = _host(run.backend, out)
        losses = host[: before.size]
        if self.record == "after" and offsets.size and offsets[-1] == n - 1:
            losses = np.append(losses, host[-1])  # the last pass's: the final measurement
        dense = before.size == (n if self.record == "before" else n - 1)
        return Chunk(carry, wanted, losses, host, host if dense else None)

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        """The loss of every pass of a chunk run again from ``carry`` (see :attr:`Chunk.per_epoch`)."""
        program = self._program(run, (("L", n), ("M",)))
        host = _host(run.backend, program(carry, self.X, self.T, self.weights)[1])
        return host if self.record == "before" else host[1:]

    def close(self) -> None:
        """Nothing to release: the data stays with the caller's arrays."""

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        """The carry after ``n`` passes from ``carry``."""
        return self._program(run, (("P", n), ("M",)))(carry, self.X, self.T, self.weights)[0]  # type: ignore[no-any-return]

    def keep(self, bad: int) -> int:
        """Passes of a chunk to keep when the loss of its pass ``bad`` is the first bad one: a
        loss after an update condemns that update; one before it, the update before."""
        return bad if self.record == "after" else max(bad - 1, 0)


class Batches:
    """Mini-batch epochs over host data X (n, n_in), T (n, n_out) and optional sample ``weights``
    (n,): each epoch visits the rows in an order drawn from ``rng`` on the host (scikit-learn's:
    the previous order shuffled again, when ``shuffle``), ``batch_size`` rows a step and a
    smaller last batch. The data goes to the device once, or with ``stream`` a block of batches
    at a time (:mod:`xpnet.stream`; always on a data-parallel backend, which splits each batch
    over its devices, and for SciPy sparse X, densified a block at a time)."""

    unit = "epoch"
    default_chunk = 1
    timed = False  # an epoch is not cut: a chunk is one epoch unless asked otherwise

    def __init__(
        self,
        backend: Backend,
        X: Any,
        T: Any,
        batch_size: int,
        *,
        rng: np.random.RandomState,
        shuffle: bool = True,
        order: np.ndarray | None = None,
        stream: bool = False,
        weights: np.ndarray | None = None,
        budget: int | None = None,
        prefetch: int | None = None,
    ) -> None:
        self.n = self.rows = int(X.shape[0])
        self.batch_size = min(validation.integer("batch_size", batch_size), self.n)
        self.rng, self.shuffle = rng, shuffle
        self.order = np.arange(self.n) if order is None else np.asarray(order, dtype=np.int64)
        self.stream = stream or backend.shards > 1 or hasattr(X, "toarray")
        self.budget, self.prefetch = budget, prefetch
        if self.stream:
            self.X, self.T, self.weights = X, T, weights
            self.zero = backend.asarray(np.zeros((), np.int32), dtype=np.int32)
        else:
            self.X, self.T = backend.asarray(X), backend.asarray(T)
            self.weights = None if weights is None else backend.asarray(weights)
        self._orders: list[np.ndarray] = []
        self._start_order = self.order

    def _next_order(self) -> np.ndarray:
        if self.shuffle:  # as scikit-learn shuffles: the same rng calls, the same order
            idx = np.arange(self.n)
            self.rng.shuffle(idx)
            self.order = self.order[idx]
        return self.order

    def _epoch(self, run: Run, carry: Carry, order: np.ndarray) -> tuple[Carry, Array]:
        backend = run.backend
        if self.stream:
            blocks = train.block(backend, run.objective, run.optimizer)

            def block(c: Carry, Xb: Array, Tb: Array, w: Array | None) -> tuple[Carry, Array]:
                return blocks(c, Xb, Tb, w, self.zero)

            return stream.epoch(backend, block, carry, self.X, self.T, order, self.batch_size,
                                weights=self.weights, budget=self.budget,
                                prefetch=self.prefetch)  # fmt: skip
        epoch = train.epoch(backend, run.objective, run.optimizer, self.n, self.batch_size)
        return epoch(carry, self.X, self.T, backend.asarray(order, dtype=np.int32), self.weights)

    def run(self, run: Run, first: int, n: int, wanted: np.ndarray) -> Chunk:
        self._start_order = self.order
        self._orders = [self._next_order() for _ in range(n)]
        carry, values = (run.params, run.opt_state), []
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked by the driver
            for order in self._orders:
                carry, value = self._epoch(run, carry, order)
                values.append(run.backend.xp.reshape(value, (1,)))
        host = _host(run.backend, values[0] if n == 1 else run.backend.xp.concat(values))
        return Chunk(carry, wanted, host[wanted - first], host, host)

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        raise AssertionError("mini-batch chunks measure every epoch")

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        with np.errstate(over="ignore", invalid="ignore"):
            for order in self._orders[:n]:
                carry = self._epoch(run, carry, order)[0]
        return carry

    def keep(self, bad: int) -> int:
        """Epochs of a chunk to keep when epoch ``bad``'s loss is the first bad one (that epoch's
        updates are condemned); the batch order goes back to where those epochs left it."""
        self.order = self._orders[bad - 1] if bad else self._start_order
        return bad

    def close(self) -> None:
        """Nothing to release: a streamed epoch ends its own worker."""

    def state(self) -> dict[str, Any]:
        """What resuming needs: the current order and the generator's state."""
        return {"order": self.order, "rng": self.rng.get_state()}


class LBFGS:
    """Full-batch L-BFGS on host data X (n, n_in), T (n, n_out) and optional sample ``weights``
    (n,): an epoch is one iteration of SciPy's L-BFGS-B (:class:`xpnet.lbfgs.Iterations`), with
    the run's optimizer :func:`xpnet.optim.lbfgs` for its settings. Every iteration's loss is
    measured (after it; for ``record="before"`` the one before it is recorded). Training ends
    early where SciPy stops (converged, or its evaluations spent; the chunk says why). The
    search starts afresh in each :func:`fit` (resuming forgets its curvature memory)."""

    unit = "iteration"
    default_chunk = 1 << 30
    timed = True

    def __init__(
        self,
        backend: Backend,
        X: Any,
        T: Any,
        *,
        record: str = "after",
        weights: np.ndarray | None = None,
    ) -> None:
        self.record = validation.one_of(train.RECORDS, record, "record")
        self.rows = int(np.shape(X)[0])
        self.X, self.T, self.weights = X, T, weights
        self._search: lbfgs.Iterations | None = None
        self._params: list[HostParams] = []
        self._before = np.nan

    def run(self, run: Run, first: int, n: int, wanted: np.ndarray) -> Chunk:
        if self._search is None:
            _, tol, max_fun = run.optimizer.config  # type: ignore[misc]
            self._search = lbfgs.Iterations(run.backend, run.objective, run.host_params(),
                                            self.X, self.T, self.weights, max_fun=max_fun,
                                            tol=tol)  # fmt: skip
            if self.record == "before":
                self._before = self._search.initial_loss()
        self._params, after = [], []
        for _ in range(n):
            got = self._search.step()
            if got is None:
                break
            self._params.append(got[0])
            after.append(got[1])
        done = len(after)
        losses = np.asarray(after)
        if self.record == "before":
            losses = np.concatenate([[self._before], losses])  # one more: at the final params
            self._before = float(losses[-1])
        recorded = (wanted - first)[wanted - first < done]
        if done < n and done and (not recorded.size or recorded[-1] != done - 1):
            recorded = np.append(recorded, done - 1)  # the last epoch's loss, as at a run's end
        carry = (run.params, run.opt_state)
        if done:
            carry = (run.backend.tree_asarray(self._params[-1]), run.opt_state)
        check = losses if losses.size else np.array([self._search.initial_loss()])
        return Chunk(carry, first + recorded, losses[recorded], check, losses, done,
                     self._search.message if done < n else None)  # fmt: skip

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        raise AssertionError("L-BFGS chunks measure every iteration")

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        return run.backend.tree_asarray(self._params[n - 1]), carry[1]

    def keep(self, bad: int) -> int:
        """Iterations to keep when the loss ``bad`` is the first bad one (see
        :meth:`FullBatch.keep`)."""
        return bad if self.record == "after" else max(bad - 1, 0)

    def close(self) -> None:
        """End the search and its thread."""
        if self._search is not None:
            self._search.close()


Feed = FullBatch | Batches | LBFGS


def wanted(first: int, n: int, every: int, last: bool) -> np.ndarray:
    """The epochs of the chunk ``[first, first + n)`` whose loss is recorded: multiples of
    ``every``, and the run's last epoch when the chunk ends the run (``last``)."""
    passes = np.arange(-(-first // every) * every, first + n, every, dtype=np.int64)
    if last and (not passes.size or passes[-1] != first + n - 1):
        passes = np.append(passes, first + n - 1)
    return passes


def _diverged(
    run: Run, feed: Feed, carry: Carry, first: int, n: int, out: Chunk, hint: str
) -> DivergenceError | None:
    """The one divergence rule: None if every loss the chunk measured is finite and below the
    growth limit; else put the run at the last good epoch and return the error to raise."""
    if run.reference is None:
        run.reference = float(out.losses[0] if out.losses.size else out.check[0])
    ref = run.reference
    limit = GROWTH_LIMIT * max(ref, 1.0) if np.isfinite(ref) else -np.inf
    if np.all(np.isfinite(out.check) & (out.check <= limit)):
        return None
    per_epoch = out.per_epoch if out.per_epoch is not None else feed.per_epoch(run, carry, first, n)
    bad_mask = ~np.isfinite(per_epoch) | (per_epoch > limit)
    j = int(np.argmax(bad_mask))
    value = per_epoch[j]
    kept = feed.keep(j)
    if kept:
        carry = feed.replay(run, carry, first, kept)
    run.params, run.opt_state = carry
    run.epoch = first + kept
    keep = out.passes < run.epoch
    run.history.add(out.passes[keep], out.losses[keep])
    what = (
        f"the loss is {value}"
        if not np.isfinite(value)
        else f"the loss grew to {value:.4g} (over {GROWTH_LIMIT:g} times its start)"
    )
    return DivergenceError(f"training diverged: {what} at {feed.unit} {first + j}; {hint}",
                           pass_index=first + j, params=run.params,
                           losses=run.history.losses, value=float(value))  # fmt: skip


def fit(
    run: Run,
    feed: Feed,
    *,
    epochs: int,
    loss_every: int = 1,
    chunk_size: int | None = None,
    callbacks: Sequence[Callback] = (),
    hint: str = "try a smaller learning rate (--lr)",
) -> Run:
    """Advance ``run`` through ``feed`` until ``epochs`` epochs in all; return it.

    Epochs run ``chunk_size`` at a time (default: the feed's, and for full batch at most about
    :data:`CHUNK_SECONDS` of work, so that a stop signal acts within about a second), cut where
    a plug-in asks to be called (its ``every``). The loss is recorded every ``loss_every``
    epochs and at the last.
    Raises :class:`~xpnet.errors.DivergenceError` (the run then holds the last good epoch's
    state; ``hint`` ends the message) and :class:`~xpnet.errors.TrainingInterrupted` when a plug-in
    caught a stop signal before the end (the run holds the state after the last whole chunk)."""
    validation.integer("epochs", epochs)
    every = validation.integer("loss_every", loss_every)
    size = validation.optional(validation.integer, "chunk_size", chunk_size) or feed.default_chunk
    timed = chunk_size is None and feed.timed
    seconds = mlp.flops(run.objective.spec, feed.rows) / FIRST_RATE  # a pass, until measured
    aligned = [cb.every for cb in callbacks if cb.every]
    with run.backend.activate():
        for cb in callbacks:
            cb.on_train_begin(run)
        start = time.perf_counter()
        try:
            while run.epoch < epochs and run.stop is None:
                first = run.epoch
                n = min([size, epochs - first, *(a - first % a for a in aligned)])
                if timed:  # at most a power of two of passes (few compiled shapes) in the time
                    n = min(n, 1 << max(int(CHUNK_SECONDS / seconds), 1).bit_length() - 1)
                carry = (run.params, run.opt_state)
                began = time.perf_counter()
                out = feed.run(run, first, n, wanted(first, n, every, first + n == epochs))
                seconds = (time.perf_counter() - began) / n  # compiling included: cautious
                error = _diverged(run, feed, carry, first, n, out, hint)
                if error is not None:
                    raise error
                run.params, run.opt_state = out.carry
                run.epoch = first + (n if out.done is None else out.done)
                run.stop = out.stopped
                run.history.add(out.passes, out.losses)
                for cb in callbacks:
                    cb.on_chunk_end(run, out.passes, out.losses)
                if run.signum is not None and run.epoch < epochs:
                    raise TrainingInterrupted(passes_done=run.epoch, params=run.params,
                                              losses=run.history.losses, signum=run.signum)  # fmt: skip
            run.backend.sync(run.params)
        finally:
            run.seconds += time.perf_counter() - start
            feed.close()
        for cb in callbacks:
            cb.on_train_end(run)
    return run


def memory_needed(
    spec: Any, rows: int, batch_rows: int, itemsize: int, resident: bool
) -> dict[str, float]:
    """Bytes a run needs on its device, roughly: the parameters four times over (themselves,
    their gradients, an update, and up to two optimizer moments counted as one more copy each),
    one step's activations and deltas for ``batch_rows`` rows (three arrays a layer), and, when
    the data is ``resident`` there, the ``rows`` rows of inputs and targets."""
    params = sum((i + 1) * o for i, o in zip(spec.sizes, spec.sizes[1:], strict=False))
    need = {"parameters": 5.0 * params * itemsize,
            "activations": 3.0 * batch_rows * sum(spec.sizes[1:]) * itemsize,
            "data": float(rows * (spec.sizes[0] + spec.sizes[-1]) * itemsize) if resident else 0.0}  # fmt: skip
    return need


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_memory(backend: Backend, spec: Any, rows: int, batch_rows: int | None = None,
                 resident: bool = True) -> None:  # fmt: skip
    """Raise ConfigError, before anything is allocated, when a run cannot fit the device's memory
    (:func:`memory_needed` against :meth:`Backend.memory_bytes`), saying what takes the room."""
    have = backend.memory_bytes()
    itemsize = np.dtype(backend.dtype_name).itemsize
    need = memory_needed(spec, rows, rows if batch_rows is None else batch_rows, itemsize, resident)
    if have is None or sum(need.values()) <= have:
        return
    parts = ", ".join(f"{k} {_size(v)}" for k, v in need.items() if v)
    raise ConfigError(f"this run needs about {_size(sum(need.values()))} of memory ({parts}) and "
                      f"the {backend.device_label} has {_size(have)}: use smaller hidden layers "
                      "(--hidden) or mini-batches (--batch-size)")  # fmt: skip


PREDICT_BATCH = 65536
"""Rows per batch in :func:`predict`."""


def predict(
    backend: Backend,
    spec: Any,
    params: Params,
    X: np.ndarray,
    batch_size: int = PREDICT_BATCH,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Return the network's outputs (n, n_out) as float64 NumPy for host inputs X (n, n_in)
    (dense, or SciPy sparse: densified a batch at a time), ``batch_size`` rows at a time
    (``prepare`` applied to each batch first, e.g. scaling), so memory beyond X and the result
    stays bounded. ``params`` are device arrays; ``spec`` is the :class:`xpnet.mlp.Spec`."""
    out = np.empty((X.shape[0], spec.sizes[-1]))
    with backend.activate(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, X.shape[0], batch_size):
            rows = stream.rows(X, slice(start, start + batch_size))
            batch = backend.asarray(rows if prepare is None else prepare(rows))
            out[start : start + batch_size] = backend.to_numpy(
                mlp.predict_proba(backend.xp, params, batch, spec)
            )
    if not np.all(np.isfinite(out)):  # never hand back NaN as if it were a prediction
        row = int(np.argwhere(~np.isfinite(out))[0, 0])
        raise DataError(f"the model's outputs are NaN or infinite (first for row {row}): its "
                        "parameters are not finite, or the inputs lie far outside its training "
                        "data")  # fmt: skip
    return out

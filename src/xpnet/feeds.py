"""Feeds: where a run's data comes from and how a chunk of epochs is computed on it.

The engine (:func:`xpnet.engine.fit`) asks a feed to run a chunk of epochs and gets a
:class:`Chunk` back; it never asks which feed it has.

- :class:`FullBatch`: the data on the device (split over a mesh when data-parallel, each
  process's own rows in a multi-process job); an epoch is one pass, a chunk many passes in one
  compiled program, the loss computed only where it is recorded;
- :class:`Batches`: mini-batch epochs in an order drawn on the host, the data on the device or
  streamed from host memory or a memory map block by block (:mod:`xpnet.stream`);
- :class:`LBFGS`: full-batch L-BFGS iterations, SciPy's search fed by xpnet's loss and gradient
  on the backend (:mod:`xpnet.lbfgs`); it may end before ``epochs`` (converged).

:func:`streams` is the one decision whether mini-batches stay on the host (the memory check asks
it too). Nothing here validates data: the front-end did that once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from xpnet import dropout, lbfgs, stream, train, validation
from xpnet._typing import Array, Carry, HostParams
from xpnet.backends import Backend
from xpnet.run import Run
from xpnet.settings import RECORDS


def streams(backend: Backend, X: Any, stream: bool) -> bool:
    """Whether mini-batches of X are sent from the host a block at a time rather than kept on
    the device: when asked (``stream``), always on a data-parallel backend (it splits each batch
    over its devices) and for SciPy sparse X (densified a block at a time)."""
    return bool(stream or backend.shards > 1 or hasattr(X, "toarray"))


class Chunk(NamedTuple):
    """What a feed returns for a chunk of epochs."""

    carry: Carry
    passes: np.ndarray
    """The recorded epochs whose loss the chunk measured."""
    losses: np.ndarray
    """Their losses."""
    check: np.ndarray
    """Every loss the chunk measured: what the divergence rule looks at."""
    per_epoch: np.ndarray | None
    """Where the chunk measured them all, the losses :meth:`FullBatch.blame` (and the others')
    indexes: one per epoch in order (full batch: the loss before each pass, and the loss at the
    final parameters where measured); else None."""
    done: int | None = None
    """Epochs the chunk ran, where the feed stopped before the chunk's end; None: all of them."""
    stopped: str | None = None
    """Why the feed stopped before the chunk's end (L-BFGS converged), else None."""
    start: float | None = None
    """The loss at the chunk's starting parameters, where it was asked for and measured."""
    pending: int | None = None
    """A recorded epoch whose loss the chunk left to be measured: the loss after its last pass,
    which the next chunk's first pass computes (see :meth:`FullBatch.run`)."""
    final: Callable[[], float] | None = None
    """Where the chunk did not measure the loss at its final parameters: what computes it."""


def _host(backend: Backend, values: Array) -> np.ndarray:
    return np.asarray(backend.to_numpy(values), dtype=np.float64).reshape(-1)


class Noise:
    """A feed's dropout draws (:mod:`xpnet.dropout`): from ``seed``, the step counted from
    ``steps_before`` steps taken before the run's epoch 0 (an estimator's earlier fits); the
    seed's words and the unit indices go to the device once."""

    def __init__(self, seed: int = 0, steps_before: int = 0) -> None:
        self.seed, self.steps_before = int(seed), int(steps_before)
        self._arrays: tuple[Array, Array] | None = None

    def draw(self, run: Run, step: int, rows: Array | None) -> dropout.Draw | None:
        """The draw of the run's gradient step ``step`` (None without dropout)."""
        spec = run.objective.spec
        if not run.objective.dropout:
            return None
        backend = run.backend
        if self._arrays is None:
            words = np.array(dropout.seed_words(self.seed), np.int32)
            units = np.arange(max(spec.sizes[1:-1]), dtype=np.int32)
            self._arrays = (backend.asarray(words, np.int32), backend.asarray(units, np.int32))
        seed, units = self._arrays
        at = np.array((self.steps_before + step) % dropout.PERIOD, np.int32)
        return dropout.Draw(seed, backend.asarray(at, np.int32), rows, units)


class FullBatch:
    """Full-batch passes on data that lives on the device: X (n, n_in), targets T (n, n_out) and
    optional sample ``weights`` (n,) on the host, moved once (split over the devices, padded with
    zero-weight rows, where the backend is data-parallel; ``rows`` is the data set's size when a
    multi-process job's process holds only its own rows). ``record``: a pass's loss after its
    update or before it."""

    unit = "pass"
    default_chunk = 1000
    timed = True
    """Chunks are cut to :data:`xpnet.engine.CHUNK_SECONDS` when the caller leaves their size to the engine."""

    def __init__(
        self,
        backend: Backend,
        X: Any,
        T: Any,
        *,
        rows: int | None = None,
        record: str = "after",
        weights: np.ndarray | None = None,
        noise: Noise | None = None,
    ) -> None:
        self.record = validation.one_of(RECORDS, record, "record")
        self.rows = int(rows if rows is not None else np.shape(X)[0])
        self.noise = noise or Noise()
        self._ids: Array | None = None
        self._host: tuple[Any, Any, Any, int | None] | None = (X, T, weights, rows)
        self._place(backend)
        if backend.lazy:  # it never defers a loss (see xpnet.engine.fit): nothing to keep
            self._host = None

    def _place(self, backend: Backend) -> None:
        assert self._host is not None
        X, T, weights, rows = self._host
        if weights is None:
            (self.X, self.T), self.weights = backend.asarray_rows(X, T, rows=rows)
        else:  # the sample weights (n,) of the same rows; padding rows get weight 0
            (self.X, self.T, self.weights), _ = backend.asarray_rows(X, T, weights, rows=rows)
        backend.sync((self.X, self.T, self.weights))  # copied: a fit's clock counts no copy

    def _program(self, run: Run, plan: train.Plan, first: int) -> Any:
        """The chunk ``plan`` from pass ``first``: ``program(carry)``."""
        program = train.full_batch(run.backend, run.objective, run.transform, plan)
        if run.objective.dropout and self._ids is None:  # the rows' indices, laid out as X
            self._ids = run.backend.row_index(self.rows)
        draw = self.noise.draw(run, first, self._ids)

        def go(carry: Carry) -> Any:
            with np.errstate(over="ignore", invalid="ignore"):  # the driver checks divergence
                return program(carry, self.X, self.T, self.weights, draw)

        return go

    def run(
        self, run: Run, first: int, n: int, wanted: np.ndarray, start: bool = False,
        defer: bool = False,
    ) -> Chunk:  # fmt: skip
        """Passes ``[first, first + n)``, measuring the losses recorded at ``wanted``. A chunk
        measures the loss before its first pass (it costs a reduction, not a forward pass: the
        pass computes it anyway), which is the loss at the starting parameters (``start``) or
        after the previous chunk's last pass. With ``defer`` it leaves out the loss at its final
        parameters, a forward pass of its own: its last update is then checked by the next
        chunk's first loss (or :func:`xpnet.train.all_finite`), and where that loss is recorded
        (``record="after"``) it is ``pending``, given by the next chunk's ``start`` or computed
        by ``final`` when read."""
        offsets = wanted - first
        after = self.record == "after"
        before = offsets[offsets + 1 < n] + 1 if after else offsets
        backend, first_loss = run.backend, None
        head = not backend.lazy  # inside the chunk: on a lazy backend it holds activations there
        if start and backend.lazy:
            first_loss = self.loss_at(run, (run.params, run.opt_state), first)
        extra = head and not (before.size and before[0] == 0)  # the loss before pass 0 too
        asked = np.concatenate([[0], before]) if extra else before
        plan = train.plan_full_batch(n, tuple(int(o) for o in asked), final=not defer)
        carry, out = self._program(run, plan, first)((run.params, run.opt_state))
        measured = _host(backend, out)
        host = measured[1:] if extra else measured
        losses, passes, pending = host[: before.size], wanted, None
        if after and offsets.size and offsets[-1] == n - 1:  # the last pass's: the final loss
            if defer:
                passes, pending = wanted[:-1], int(wanted[-1])
            else:
                losses = np.append(losses, host[-1])
        if head:
            first_loss = float(measured[0])
        dense = head and asked.size == n
        final = (lambda: self.loss_at(run, carry, first + n)) if defer else None
        return Chunk(carry, passes, losses, measured, measured if dense else None,
                     start=first_loss, pending=pending, final=final)  # fmt: skip

    def loss_at(self, run: Run, carry: Carry, at: int) -> float:
        """The loss at ``carry``'s parameters (with dropout: pass ``at``'s masks); after
        :meth:`close` the data is moved to the device again for it (the feed holds the host
        arrays it was given until then)."""
        closed = self.X is None
        if closed:
            self._place(run.backend)
        try:
            measure = self._program(run, (("M",),), at)
            return float(_host(run.backend, measure(carry)[1])[0])
        finally:
            if closed:  # and let them go again
                self.close()

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        """The loss before every pass of a chunk run again from ``carry``, and the loss at its
        final parameters (see :attr:`Chunk.per_epoch`)."""
        program = self._program(run, (("L", n), ("M",)), first)
        return _host(run.backend, program(carry)[1])

    def close(self) -> None:
        """Let the device arrays go (the host data stays, for :meth:`loss_at`)."""
        self.X = self.T = self.weights = self._ids = None

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        """The carry after ``n`` passes from ``carry``."""
        return self._program(run, (("P", n), ("M",)), first)(carry)[0]  # type: ignore[no-any-return]

    def blame(self, bad: int) -> tuple[int, int]:
        """Where :attr:`Chunk.per_epoch`'s loss ``bad`` (the loss before pass ``bad``) is the
        first bad one: ``(passes of the chunk to keep, the offset of the epoch whose recorded
        loss it is)``. It condemns the update before it, which for ``bad == 0`` is the
        previous chunk's last (-1 passes to keep)."""
        return bad - 1, bad - 1 if self.record == "after" else bad


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
        noise: Noise | None = None,
    ) -> None:
        self.n = self.rows = int(X.shape[0])
        self.batch_size = min(validation.integer("batch_size", batch_size), self.n)
        self.steps = -(-self.n // self.batch_size)
        """Steps an epoch."""
        self.noise = noise or Noise()
        self.rng, self.shuffle = rng, shuffle
        self.order = np.arange(self.n) if order is None else np.asarray(order, dtype=np.int64)
        self.stream = streams(backend, X, stream)
        self.budget, self.prefetch = budget, prefetch
        if self.stream:
            self.X, self.T, self.weights = X, T, weights
            self.zero = backend.asarray(np.zeros((), np.int32), dtype=np.int32)
        else:
            self.X, self.T = backend.asarray(X), backend.asarray(T)
            self.weights = None if weights is None else backend.asarray(weights)
            backend.sync((self.X, self.T, self.weights))  # as FullBatch's
        self._orders: list[np.ndarray] = []
        self._start_order = self.order

    def _next_order(self) -> np.ndarray:
        if self.shuffle:  # as scikit-learn shuffles: the same rng calls, the same order
            idx = np.arange(self.n)
            self.rng.shuffle(idx)
            self.order = self.order[idx]
        return self.order

    def _epoch(self, run: Run, carry: Carry, order: np.ndarray, index: int) -> tuple[Carry, Array]:
        """Epoch ``index`` of the run, visiting the rows in ``order``."""
        backend = run.backend
        first = index * self.steps  # the epoch's first step (dropout draws by step)
        if self.stream:
            blocks = train.block(backend, run.objective, run.transform)
            dropping = bool(run.objective.dropout)

            def block(
                c: Carry, Xb: Array, Tb: Array, w: Array | None, place: stream.Place
            ) -> tuple[Carry, Array]:
                draw = self.noise.draw(run, first + place.first, place.rows) if dropping else None
                return blocks(c, Xb, Tb, w, self.zero, draw)

            return stream.epoch(backend, block, carry, self.X, self.T, order, self.batch_size,
                                weights=self.weights, budget=self.budget,
                                prefetch=self.prefetch, with_rows=dropping)  # fmt: skip
        epoch = train.epoch(backend, run.objective, run.transform, self.n, self.batch_size)
        rows = backend.asarray(order, dtype=np.int32)
        draw = self.noise.draw(run, first, rows)
        return epoch(carry, self.X, self.T, rows, self.weights, draw)

    def run(
        self, run: Run, first: int, n: int, wanted: np.ndarray, start: bool = False,
        defer: bool = False,
    ) -> Chunk:  # fmt: skip
        """Epochs ``[first, first + n)``; each epoch's loss is measured while it runs (``start``
        and ``defer`` change nothing)."""
        self._start_order = self.order
        self._orders = [self._next_order() for _ in range(n)]
        carry, values = (run.params, run.opt_state), []
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked by the driver
            for i, order in enumerate(self._orders):
                carry, value = self._epoch(run, carry, order, first + i)
                values.append(run.backend.xp.reshape(value, (1,)))
        host = _host(run.backend, values[0] if n == 1 else run.backend.xp.concat(values))
        return Chunk(carry, wanted, host[wanted - first], host, host)

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        raise AssertionError("mini-batch chunks measure every epoch")

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        with np.errstate(over="ignore", invalid="ignore"):
            for i, order in enumerate(self._orders[:n]):
                carry = self._epoch(run, carry, order, first + i)[0]
        return carry

    def blame(self, bad: int) -> tuple[int, int]:
        """Epochs of a chunk to keep when epoch ``bad``'s loss is the first bad one (that epoch's
        updates are condemned), and that epoch's offset; the batch order goes back to where
        the kept epochs left it."""
        self.order = self._orders[bad - 1] if bad else self._start_order
        return bad, bad

    def close(self) -> None:
        """Nothing to release: a streamed epoch ends its own worker."""

    def state(self) -> dict[str, Any]:
        """What resuming needs: the current order and the generator's state."""
        return {"order": self.order, "rng": self.rng.get_state()}


class LBFGS:
    """Full-batch L-BFGS on host data X (n, n_in), T (n, n_out) and optional sample ``weights``
    (n,): an epoch is one iteration of SciPy's L-BFGS-B (:class:`xpnet.lbfgs.Iterations`),
    stopping where the largest gradient entry falls to ``tol`` or after ``max_fun`` loss
    evaluations (scikit-learn's settings). Every iteration's loss is
    measured (after it; for ``record="before"`` the one before it is recorded). Training ends
    early where SciPy stops (converged, or its evaluations spent; the chunk says why). The
    search starts afresh in each :func:`xpnet.engine.fit` (resuming forgets its curvature memory)."""

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
        tol: float = 1e-4,
        max_fun: int = 15000,
    ) -> None:
        self.record = validation.one_of(RECORDS, record, "record")
        self.rows = int(np.shape(X)[0])
        self.X, self.T, self.weights = X, T, weights
        self.tol = validation.number("tol", tol, 0)
        self.max_fun = validation.integer("max_fun", max_fun)
        self._search: lbfgs.Iterations | None = None
        self._params: list[HostParams] = []
        self._before = np.nan

    def run(
        self, run: Run, first: int, n: int, wanted: np.ndarray, start: bool = False,
        defer: bool = False,
    ) -> Chunk:  # fmt: skip
        """Up to ``n`` iterations; each one's loss is measured (``start`` and ``defer`` change
        nothing)."""
        if self._search is None:
            self._search = lbfgs.Iterations(run.backend, run.objective, run.host_params(),
                                            self.X, self.T, self.weights, max_fun=self.max_fun,
                                            tol=self.tol)  # fmt: skip
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

    @property
    def converged(self) -> bool:
        """Whether SciPy stopped by itself because it converged."""
        return self._search is not None and self._search.converged

    def per_epoch(self, run: Run, carry: Carry, first: int, n: int) -> np.ndarray:
        raise AssertionError("L-BFGS chunks measure every iteration")

    def replay(self, run: Run, carry: Carry, first: int, n: int) -> Carry:
        return run.backend.tree_asarray(self._params[n - 1]), carry[1]

    def blame(self, bad: int) -> tuple[int, int]:
        """Iterations to keep when the loss ``bad`` is the first bad one, and the offset of
        the iteration it is recorded for: a loss after an update condemns that update; one
        before it (``record="before"``), the update before."""
        return (bad, bad) if self.record == "after" else (max(bad - 1, 0), bad)

    def close(self) -> None:
        """End the search and its thread."""
        if self._search is not None:
            self._search.close()


Feed = FullBatch | Batches | LBFGS

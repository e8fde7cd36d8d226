"""The training engine: one driver for every way xpnet trains.

:func:`fit` advances a :class:`~xpnet.run.Run` (parameters, optimizer state, epochs done, loss
history) epoch by epoch until ``epochs``, a chunk of epochs at a time, through a *feed*
(:mod:`xpnet.feeds`) that says where the data comes from: full batch on the device, mini-batches
resident or streamed, L-BFGS iterations.

Between chunks the driver gathers the chunk's losses (one sync), applies the one divergence rule
(a NaN, infinite or runaway loss stops training, keeps the last finite parameters and raises
:class:`~xpnet.errors.DivergenceError`), records the history and calls the plug-ins
(:mod:`xpnet.callbacks`: progress, checkpoints, early stopping, adaptive rate, Ctrl-C). The
trainer (:mod:`xpnet.trainer`) builds the run, the feed and the plug-ins from a plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from xpnet import mlp, scratch, train, validation
from xpnet._typing import Carry
from xpnet.callbacks import Callback
from xpnet.errors import DivergenceError, TrainingInterrupted
from xpnet.feeds import Chunk, Feed
from xpnet.run import Run

GROWTH_LIMIT = 1e3
"""A loss above ``GROWTH_LIMIT * max(reference, 1)`` counts as diverged, like a NaN or inf; the
reference is the loss at the starting parameters (full batch; mini-batch epochs: the first
epoch's), so a first update that already blew up cannot set it: the seeds' bounded cycle (seed
000) and spikes (seed 001) stay far below it."""
CHUNK_SECONDS = 1.0
"""Where the caller leaves the chunk size to the engine, a chunk of full-batch passes lasts about
this long at most: a stop signal (Ctrl-C, SIGTERM) acts between chunks."""
FIRST_RATE = 5e7
"""FLOP/s assumed for the first chunk, before anything is measured: a slow backend's
(array-api-strict runs seed 000 at about this rate)."""


def wanted(first: int, n: int, every: int, last: bool) -> np.ndarray:
    """The epochs of the chunk ``[first, first + n)`` whose loss is recorded: multiples of
    ``every``, and the run's last epoch when the chunk ends the run (``last``)."""
    passes = np.arange(-(-first // every) * every, first + n, every, dtype=np.int64)
    if last and (not passes.size or passes[-1] != first + n - 1):
        passes = np.append(passes, first + n - 1)
    return passes


Span = tuple[Carry, int, int]
"""A chunk's starting carry, first epoch and number of epochs: what a rollback replays."""


def _limit(run: Run) -> float:
    """The loss above which the run counts as diverged (see :data:`GROWTH_LIMIT`)."""
    ref = run.reference
    assert ref is not None
    return GROWTH_LIMIT * max(ref, 1.0) if np.isfinite(ref) else -np.inf


def _first_bad(losses: np.ndarray, limit: float) -> int:
    return int(np.argmax(~np.isfinite(losses) | (losses > limit)))


def _diverged(
    run: Run, feed: Feed, span: Span, previous: Span | None, out: Chunk, hint: str
) -> DivergenceError | None:
    """The one divergence rule: None if every loss the chunk measured is finite and below the
    growth limit; else put the run at the last good epoch and return the error to raise."""
    if run.reference is None:  # the loss at the starting parameters, where the feed has it
        first_loss = out.losses[0] if out.losses.size else out.check[0]
        run.reference = float(out.start if out.start is not None else first_loss)
    limit = _limit(run)
    if np.all(np.isfinite(out.check) & (out.check <= limit)):
        return None
    carry, first, n = span
    per_epoch = out.per_epoch if out.per_epoch is not None else feed.per_epoch(run, carry, first, n)
    j = _first_bad(per_epoch, limit)
    return _undo(run, feed, span, previous, j, float(per_epoch[j]), out, hint)


def _undo(
    run: Run,
    feed: Feed,
    span: Span,
    previous: Span | None,
    bad: int,
    value: float,
    out: Chunk | None,
    hint: str,
) -> DivergenceError:
    """Put the run at the last good epoch, where loss ``bad`` of the chunk ``span`` (indexed as
    :attr:`~xpnet.feeds.Chunk.per_epoch`) is the first bad one, and return the error to raise;
    ``out``: the chunk's losses, not recorded yet (None: recorded)."""
    carry, first, n = span
    kept, offset = feed.blame(bad)
    if kept < 0 and previous is not None:  # an update of the previous chunk: find the first
        carry, first, n = previous  # (its losses from its last check on, run again)
        losses = feed.per_epoch(run, carry, first, n)
        bad = _first_bad(losses, _limit(run))
        value = float(losses[bad])
        kept, offset = feed.blame(bad)
    kept, where = max(kept, 0), first + max(offset, 0)
    if kept:
        carry = feed.replay(run, carry, first, kept)
    run.params, run.opt_state = carry
    run.epoch = first + kept
    run.history.truncate(run.epoch)  # what the undone updates recorded
    if out is not None:
        keep = out.passes < run.epoch
        run.history.add(out.passes[keep], out.losses[keep])
    what = (
        f"the loss is {value}"
        if not np.isfinite(value)
        else f"the loss grew to {value:.4g} (over {GROWTH_LIMIT:g} times its start)"
    )
    return DivergenceError(f"training diverged: {what} at {feed.unit} {where}; {hint}",
                           pass_index=where, params=run.params,
                           losses=run.history.losses, value=value)  # fmt: skip


def _finite(run: Run) -> bool:
    """Whether the run's parameters are all finite (one reduction over them)."""
    return bool(run.backend.to_numpy(train.all_finite(run.backend)(run.params)))


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
    backend = run.backend  # the loss after a chunk's last pass may wait for the next chunk:
    defer = (
        not backend.lazy and backend.processes == 1 and not any(cb.reads_losses for cb in callbacks)
    )
    previous: Span | None = None  # the chunk before, for a rollback into it
    # what measures the loss at the parameters the last chunk left, where it did not
    unchecked: Callable[[], float] | None = None
    run.history.resolve()  # an earlier fit's pending loss: its data may not be this fit's
    # the passes' large arrays are written into memory earlier passes used (xpnet.scratch)
    with run.backend.activate(), scratch.recycling(run.backend.recycler()):
        for cb in callbacks:
            cb.on_train_begin(run)
        start = time.perf_counter()
        try:
            while run.epoch < epochs and run.stop is None:
                first = run.epoch
                n = min([size, epochs - first, *(a - first % a for a in aligned)])
                if timed:  # at most a power of two of passes (few compiled shapes) in the time
                    n = min(n, 1 << max(int(CHUNK_SECONDS / seconds), 1).bit_length() - 1)
                    if run.backend.processes > 1:  # every process runs the same chunk (its
                        n = int(run.backend.gather(np.array(n)).min())  # collectives match)
                span = ((run.params, run.opt_state), first, n)
                began = time.perf_counter()
                out = feed.run(run, first, n, wanted(first, n, every, first + n == epochs),
                               start=run.reference is None, defer=defer)  # fmt: skip
                seconds = (time.perf_counter() - began) / n  # compiling included: cautious
                if run.history.pending is not None and out.start is not None:  # the loss after
                    run.history.settle(out.start)  # the previous chunk's last pass (a rollback
                error = _diverged(run, feed, span, previous, out, hint)  # truncates it if bad)
                if error is not None:
                    raise error
                run.params, run.opt_state = out.carry
                run.epoch = first + (n if out.done is None else out.done)
                run.stop = out.stopped
                run.history.add(out.passes, out.losses)
                if out.pending is not None and out.final is not None:
                    run.history.defer(out.pending, out.final)
                previous, unchecked = span, out.final
                for cb in callbacks:
                    cb.on_chunk_end(run, out.passes, out.losses)
                if run.signum is not None and run.epoch < epochs:
                    raise TrainingInterrupted(passes_done=run.epoch, params=run.params,
                                              losses=run.history.losses, signum=run.signum)  # fmt: skip
            if unchecked is not None and previous is not None and not _finite(run):
                # the last update, whose loss nothing measured: its parameters are not finite
                raise _undo(run, feed, previous, None, previous[2], unchecked(), None, hint)
            run.backend.sync(run.params)
        finally:
            run.seconds += time.perf_counter() - start
            feed.close()
        for cb in callbacks:
            cb.on_train_end(run)
    return run

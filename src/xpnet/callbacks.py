"""Plug-ins of the training engine (:func:`xpnet.engine.fit`), Keras-style.

A :class:`Callback` is told when training begins, after every chunk of epochs (with the losses the
chunk recorded) and when it ends; it reads the :class:`~xpnet.run.Run` and may set
``run.stop`` (end after this chunk), ``run.signum`` (interrupted) or ``run.optimizer`` (a new
learning rate). A callback with ``every = k`` is called at least every k epochs, at multiples of
k, with the parameters of that epoch.

- :class:`OnChunk`: a plain function ``fn(first_epoch, losses, params)``;
- :class:`At`: a function of the run at one epoch;
- :class:`Checkpoint`: save the model every k epochs;
- :class:`Interrupt` with :func:`stop_signals`: Ctrl-C / SIGTERM end training after the chunk;
- :class:`EarlyStopping`: scikit-learn's rule, on the training loss or a validation score, with
  its adaptive learning rate;
- :class:`Printer`: a line per epoch (scikit-learn's ``verbose``).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xpnet import optim, signals, validation
from xpnet._typing import HostParams, Params
from xpnet.run import Run
from xpnet.signals import STOP_SIGNALS


class Callback:
    """Does nothing; subclasses override what they need."""

    every: int | None = None
    """Call me at every multiple of this many epochs (None: whenever a chunk ends)."""
    reads_losses: bool = True
    """Whether :meth:`on_chunk_end` needs every loss the chunk recorded when it ends. Where no
    plug-in does, a full-batch chunk may leave the loss after its last pass to the next chunk
    (:meth:`xpnet.feeds.FullBatch.run`), and :meth:`on_chunk_end` gets the others."""

    def on_train_begin(self, run: Run) -> None:
        """Training starts (or resumes) at ``run.epoch``."""

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        """A chunk ended at ``run.epoch``; ``losses`` are those of epochs ``passes`` it recorded."""

    def on_train_end(self, run: Run) -> None:
        """Training reached its last epoch or was stopped by a plug-in."""


class OnChunk(Callback):
    """``fn(first_epoch, losses, params)`` after every ``every`` epochs (device ``params``;
    ``losses`` those the chunk recorded, from ``first_epoch``)."""

    def __init__(self, fn: Callable[[int, np.ndarray, Params], None], every: int | None) -> None:
        self.fn, self.every = fn, every

    def on_train_begin(self, run: Run) -> None:
        self.first = run.epoch

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        self.fn(self.first, losses, run.params)
        self.first = run.epoch


class At(Callback):
    """``fn(run)`` once, when the run is at epoch ``epoch`` (where it starts, or where a chunk
    ends: the driver cuts a chunk there)."""

    def __init__(self, epoch: int, fn: Callable[[Run], None]) -> None:
        self.epoch = self.every = validation.integer("epoch", epoch)
        self.fn = fn

    def on_train_begin(self, run: Run) -> None:
        if run.epoch == self.epoch:
            self.fn(run)

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        if run.epoch == self.epoch:
            self.fn(run)


class ValidationLoss(Callback):
    """After every epoch, the mean loss of held-out samples at the run's parameters (the data
    part only: no L2 penalty, whose scale is the training set's) in :attr:`losses` and, with
    ``score`` (a function of the host parameters: accuracy, R^2), the score in :attr:`scores`.
    X (n, n_in) and T (n, n_out) are host arrays as the network sees them (scaled, encoded);
    ``weights`` (n,) weigh the loss; ``losses``, a list to go on appending to; with
    ``patience`` the run stops once the loss has not fallen below its best for that many epochs
    in a row (Keras' ``EarlyStopping(monitor="val_loss")``). Computed on the
    host in float64 from the parameters, so every backend gives the same curve to its
    parameters' precision."""

    every = 1
    reads_losses = False  # the held-out loss, from the parameters

    def __init__(
        self,
        X: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        score: Callable[[HostParams], float] | None = None,
        losses: list[float] | None = None,
        patience: int | None = None,
    ) -> None:
        from xpnet import backends

        self.xp = backends.select("numpy").xp
        self.X, self.T = np.asarray(X, np.float64), np.asarray(T, np.float64)
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        self.score = score
        self.losses: list[float] = [] if losses is None else losses  # appended to: a fit goes on
        self.scores: list[float] = []
        self.patience = None if patience is None else validation.integer("patience", patience, 0)
        self.best, self.count = math.inf, 0

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        from xpnet import mlp

        params = {k: np.asarray(v, np.float64) for k, v in run.host_params().items()}
        spec = run.objective.spec
        self.losses.append(float(mlp.loss(self.xp, params, self.X, self.T, spec, 0.0,
                                          self.weights)))  # fmt: skip
        if self.score is not None:
            self.scores.append(float(self.score(params)))
        value = self.losses[-1]
        if value < self.best:
            self.best, self.count = value, 0
            return
        self.count += 1
        if self.patience is not None and self.count >= self.patience:
            run.stop = f"the validation loss did not fall for {self.count} epochs"


class Checkpoint(Callback):
    """``save(run)`` every ``every`` epochs (the front-end writes its model file)."""

    def __init__(self, save: Callable[[Run], None], every: int) -> None:
        self.save = save
        self.every = self.interval = validation.integer("checkpoint_every", every)

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        if run.epoch % self.interval == 0:
            self.save(run)


class Interrupt(Callback):
    """Ends training after the chunk in which a stop signal arrived (see :func:`stop_signals`);
    ``signum`` says which (else None)."""

    reads_losses = False

    def __init__(self) -> None:
        self.signum: int | None = None

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        if self.signum is not None:
            run.signum = self.signum


@contextlib.contextmanager
def stop_signals(interrupt: Interrupt) -> Iterator[Interrupt]:
    """Within the block, the first Ctrl-C (SIGINT), SIGTERM or SIGHUP only records itself in
    ``interrupt``, so training can stop after the current chunk; a second one acts at once
    (KeyboardInterrupt, or the process ends). Outside the main thread, where handlers cannot be
    installed, signals behave as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous: dict[int, Any] = {int(s): signal.getsignal(s) for s in STOP_SIGNALS}
    for s, old in previous.items():
        if old is None:  # installed outside Python: restore Python's default
            previous[s] = signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL

    def handler(signum: int, frame: Any) -> None:
        interrupt.signum = signum
        signal.signal(signum, previous[signum])  # a second one is not deferred

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    early = signals.take_pending()  # one arrived while the command was starting
    if early is not None:
        handler(early, None)  # stop after the first chunk
    try:
        yield interrupt
    finally:
        signals.started()  # training has run: a later signal acts at once
        for s, old in previous.items():
            signal.signal(s, old)


class EarlyStopping(Callback):
    """scikit-learn's stopping rule, checked every epoch. An epoch improves when its training
        loss falls below the best by ``tol`` or more or, with ``score`` (a function of the host
        parameters, higher is better: a validation score), when the score rises above the best by
        ``tol`` or more (a NaN counts as improving, as in scikit-learn). After more than
        ``patience`` epochs without improvement training stops; with ``shrink`` the learning rate is
        first divided by it (and the count restarted) for as long as it stays above ``min_lr``
        (scikit-learn's ``learning_rate="adaptive"``; an injected rate,
    :func:`xpnet.optim.inject_learning_rate`, shrinks in the optimizer's state and the compiled
    programs are used again). ``act`` False never stops (``partial_fit``;
        the rate still shrinks). With a score, :attr:`best_params` holds the parameters of the best
        one. Its state (:attr:`best`, :attr:`count`, :attr:`scores`, :attr:`best_params`) can be
        passed in to continue a previous run."""

    every = 1

    def __init__(
        self,
        patience: float = 10,
        tol: float = 1e-4,
        *,
        score: Callable[[HostParams], float] | None = None,
        shrink: float | None = None,
        min_lr: float = 1e-6,
        act: bool = True,
        best: float | None = None,
        count: int = 0,
        scores: list[float] | None = None,
        best_params: HostParams | None = None,
    ) -> None:
        self.patience = (
            patience if math.isinf(patience) else validation.integer("patience", patience)
        )
        self.tol = validation.number("tol", tol, 0)
        self.score, self.shrink, self.min_lr, self.act = score, shrink, min_lr, act
        self.best = (-math.inf if score else math.inf) if best is None else best
        self.count = count
        self.scores: list[float] = [] if scores is None else scores
        self.best_params = best_params
        self.stopped = False

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        # scikit-learn's comparisons, to the letter: a NaN score or loss counts as no worse
        if self.score is not None:
            params = run.host_params()
            value = float(self.score(params))
            self.scores.append(value)
            worse = value < self.best + self.tol
            if value > self.best:
                self.best, self.best_params = value, params
        else:
            value = float(losses[-1])
            worse = value > self.best - self.tol
            if value < self.best:
                self.best = value
        self.count = self.count + 1 if worse else 0
        if self.count <= self.patience:
            return
        rate = None if self.shrink is None else optim.rate_of(run.transform, run.opt_state)
        if self.shrink is not None and rate is not None and rate > self.min_lr:
            run.optimizer, run.opt_state = optim.with_rate(run.transform, run.opt_state,
                                                           rate / self.shrink)  # fmt: skip
            self.count = 0
            return
        if self.act:
            run.stop = "no improvement"
            self.stopped = True


class Printer(Callback):
    """Print ``line(epoch_number, loss)`` after every epoch (1-based, as scikit-learn counts)."""

    def __init__(self, line: Callable[[int, float], str], offset: int = 0) -> None:
        self.line, self.offset = line, offset

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        for p, value in zip(passes, losses, strict=True):
            print(self.line(self.offset + int(p) + 1, float(value)))

"""The trainer: one training run assembled from a plan, between the front-ends and the engine.

``Network``, the estimators and the command line only translate their settings into a
:class:`~xpnet.settings.Plan` and their data into host arrays; everything that makes a run out of
those is here, once:

- :func:`place`: the backend, spread over a mesh of devices for data-parallel training;
- :func:`optimizer`: the plan's gradient transformation (None for a solver: L-BFGS);
- :func:`start`: the memory check (made from the feed's own residency decision, before anything
  is allocated), the feed (:mod:`xpnet.feeds`) and the run (:class:`~xpnet.run.Run`, fresh or
  resumed);
- :meth:`Training.fit`: the plug-ins (the caller's, checkpoints, Ctrl-C) around the engine
  (:func:`xpnet.engine.fit`).

The front-end copies the run's state back into its fitted attributes, also when training stops
with an error (:class:`Training` holds the run and the feed for that).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xpnet import engine, feeds, memory, mlp, optim
from xpnet._typing import HostParams, Tree
from xpnet.backends import Backend, select
from xpnet.callbacks import Callback, Checkpoint, Interrupt, OnChunk, stop_signals
from xpnet.errors import ConfigError
from xpnet.run import History, Run
from xpnet.settings import Plan
from xpnet.train import Objective


def place(
    backend: Any, device: Any, dtype: str, data_parallel: bool = False, devices: int | None = None
) -> Backend:
    """The backend a run trains on: ``backend``/``device``/``dtype`` (see
    :func:`xpnet.backends.select`), spread over ``devices`` devices when ``data_parallel``
    (:func:`xpnet.parallel.data_parallel`)."""
    chosen = select(backend, device, dtype)
    if not data_parallel:
        return chosen
    from xpnet import parallel

    return parallel.data_parallel(chosen, devices)


def optimizer(plan: Plan, n_samples: int) -> optim.Optimizer | None:
    """The plan's optimizer for ``n_samples`` rows (a cosine schedule decays over every step of
    the run); None where the plan names a solver (L-BFGS searches its own steps)."""
    if plan.solver is not None:
        return None
    return optim.build(
        plan.optimizer, plan.rate, momentum=plan.momentum, weight_decay=plan.weight_decay,
        clip_norm=plan.clip_norm, schedule_name=plan.schedule, total_steps=plan.steps(n_samples),
        power_t=plan.power_t, step_size=plan.step_size, gamma=plan.gamma, warmup=plan.warmup,
    )  # fmt: skip


def resident(backend: Backend, plan: Plan, X: Any) -> bool:
    """Whether the run keeps all of X on the device (the feed's own decision)."""
    return plan.batch_size is None or not feeds.streams(backend, X, plan.stream)


def check_memory(backend: Backend, spec: mlp.Spec, plan: Plan, X: Any, rows: int) -> None:
    """Refuse a run that cannot fit the device's memory, before anything is allocated: one step
    on at most ``rows`` rows, the data counted where the feed keeps it on the device."""
    batch = rows if plan.batch_size is None else min(plan.batch_size, rows)
    dropping = any(np.atleast_1d(plan.dropout))
    memory.check_memory(backend, spec, rows, batch, resident(backend, plan, X), dropping)


def feed(
    backend: Backend,
    plan: Plan,
    X: Any,
    T: np.ndarray,
    *,
    rows: int,
    weights: np.ndarray | None = None,
    rng: np.random.RandomState | None = None,
    order: np.ndarray | None = None,
    steps_before: int = 0,
) -> feeds.Feed:
    """The feed the plan asks for, on host X (this process's rows of the ``rows`` samples in a
    multi-process job), targets T and sample weights (the same rows); dropout draws from the
    plan's seed, its step counted from ``steps_before``."""
    noise = feeds.Noise(plan.dropout_seed, steps_before)
    if plan.solver == "lbfgs":
        return feeds.LBFGS(backend, X, T, record=plan.record, weights=weights, tol=plan.tol,
                           max_fun=plan.max_fun)  # fmt: skip
    if plan.batch_size is None:
        return feeds.FullBatch(backend, X, T, rows=rows, record=plan.record, weights=weights,
                               noise=noise)  # fmt: skip
    if backend.processes > 1:
        raise ConfigError("a multi-process job trains full batch; leave out batch_size "
                          "(--batch-size)")  # fmt: skip
    return feeds.Batches(backend, X, T, plan.batch_size, shuffle=plan.shuffle, order=order,
                         stream=plan.stream, weights=weights, noise=noise,
                         rng=np.random.RandomState(plan.shuffle_seed) if rng is None else rng)  # fmt: skip


@dataclass
class Resume:
    """The state a run goes on from: the optimizer state (host), epochs done, the history so
    far and the divergence rule's reference loss."""

    opt_state: Tree = None
    epoch: int = 0
    history: History | None = None
    reference: float | None = None
    steps_before: int = 0
    """Gradient steps taken before the run's epoch 0 (an estimator's warm starts): dropout's
    step counter goes on from there."""


@dataclass
class Training:
    """A run and its feed, ready to train (see :func:`start`)."""

    run: Run
    feed: feeds.Feed
    plan: Plan

    def fit(
        self,
        epochs: int,
        *,
        loss_every: int | None = None,
        chunk_size: int | None = None,
        callbacks: Sequence[Callback] = (),
        on_chunk: Any = None,
        checkpoint: Callable[[Run], None] | None = None,
        checkpoint_every: int | None = None,
        interruptible: bool = False,
        hint: str = "try a smaller learning rate (--lr)",
    ) -> Run:
        """Train until ``epochs`` epochs in all: the caller's plug-ins, then ``on_chunk(first,
        losses, params)`` every ``chunk_size`` epochs, ``checkpoint(run)`` every
        ``checkpoint_every`` epochs, and with ``interruptible`` Ctrl-C/SIGTERM ending training
        after the current chunk (:class:`~xpnet.errors.TrainingInterrupted`)."""
        plugins = list(callbacks)
        if on_chunk is not None:
            plugins.append(OnChunk(on_chunk, chunk_size))
        if checkpoint is not None and checkpoint_every is not None:
            plugins.append(Checkpoint(checkpoint, checkpoint_every))
        interrupt = Interrupt()
        if interruptible:
            plugins.append(interrupt)
        stopping = stop_signals(interrupt) if interruptible else contextlib.nullcontext()
        with stopping:
            return engine.fit(self.run, self.feed, epochs=epochs,
                              loss_every=self.plan.loss_every if loss_every is None else loss_every,
                              chunk_size=chunk_size, callbacks=plugins, hint=hint)  # fmt: skip


def start(
    backend: Backend,
    spec: mlp.Spec,
    plan: Plan,
    params: HostParams | Callable[[], HostParams],
    X: Any,
    T: np.ndarray,
    *,
    opt: optim.Optimizer | None = None,
    rows: int | None = None,
    weights: np.ndarray | None = None,
    rng: np.random.RandomState | None = None,
    order: np.ndarray | None = None,
    resume: Resume | None = None,
) -> Training:
    """A run of ``plan`` from host ``params`` (or the function that draws them, called once the
    memory check has passed) on host X (n, n_in) and targets T (n, n_out): memory checked
    first, then the feed and the run built (``opt``: the optimizer, default
    :func:`optimizer` of the plan; ``resume``: the state to go on from; ``rng``/``order``: a
    mini-batch feed's generator and order)."""
    rows = int(np.shape(X)[0]) if rows is None else rows
    check_memory(backend, spec, plan, X, rows)
    if callable(params):
        params = params()
    if opt is None:
        opt = optimizer(plan, rows)
    state = resume or Resume()
    objective = Objective(spec, plan.reg, plan.reduction, plan.dropout)
    fed = feed(backend, plan, X, T, rows=rows, weights=weights, rng=rng, order=order,
               steps_before=state.steps_before)  # fmt: skip
    run = Run.start(backend, objective, opt, params,
                    state.opt_state, epoch=state.epoch, reference=state.reference,
                    history=state.history or History())  # fmt: skip
    return Training(run, fed, plan)

"""A training run's state: :class:`Run` (parameters, optimizer state, epochs done, loss
history) advanced by the engine (:func:`xpnet.engine.fit`) and read by the plug-ins
(:mod:`xpnet.callbacks`), and its :class:`History`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xpnet import optim, train, trees
from xpnet._typing import HostParams, Params, Tree
from xpnet.backends import Backend
from xpnet.errors import ConfigError


class History:
    """The recorded losses of a run: ``passes`` (int, increasing) and their ``losses``.

    The last recorded epoch's loss may be *pending* (:meth:`defer`): a full-batch fit does not
    pay a forward pass for the loss after its last update; the next chunk's first pass settles
    it (:meth:`settle`), or it is computed when ``losses`` is first read."""

    def __init__(self, passes: Any = (), losses: Any = ()) -> None:
        self._pieces = [(np.asarray(passes, dtype=np.int64), np.asarray(losses, dtype=np.float64))]
        self._joined: tuple[np.ndarray, np.ndarray] | None = None
        self._pending: tuple[int, Callable[[], float]] | None = None

    def add(self, passes: np.ndarray, losses: np.ndarray) -> None:
        self.resolve()
        self._pieces.append((passes, losses))
        self._joined = None

    def defer(self, epoch: int, measure: Callable[[], float]) -> None:
        """Record ``epoch`` whose loss ``measure()`` computes, unless :meth:`settle` gives it."""
        self.resolve()
        self._pending = (int(epoch), measure)

    @property
    def pending(self) -> int | None:
        """The epoch whose loss is not computed yet, else None."""
        return None if self._pending is None else self._pending[0]

    def settle(self, value: float) -> None:
        """The pending epoch's loss, measured by other work (the next pass computes it)."""
        assert self._pending is not None
        epoch, self._pending = self._pending[0], None
        self.add(np.array([epoch], np.int64), np.array([value], np.float64))

    def truncate(self, epoch: int) -> None:
        """Forget what was recorded from ``epoch`` on (those updates were undone)."""
        if self._pending is not None and self._pending[0] >= epoch:
            self._pending = None
        passes, losses = self._join()
        self._pieces, self._joined = [(passes[passes < epoch], losses[passes < epoch])], None

    def resolve(self) -> None:
        """Compute the pending loss now, if there is one."""
        if self._pending is not None:
            self.settle(float(self._pending[1]()))

    def _join(self) -> tuple[np.ndarray, np.ndarray]:
        if self._joined is None:
            self._joined = (np.concatenate([p for p, _ in self._pieces]),
                            np.concatenate([v for _, v in self._pieces]))  # fmt: skip
            self._pieces = [self._joined]
        return self._joined

    @property
    def passes(self) -> np.ndarray:
        passes = self._join()[0]
        return passes if self._pending is None else np.append(passes, self._pending[0])

    @property
    def losses(self) -> np.ndarray:
        self.resolve()
        return self._join()[1]

    def __getstate__(self) -> dict[str, Any]:
        self.resolve()  # a pending loss is a function of device arrays: computed first
        return dict(self.__dict__)


@dataclass
class Run:
    """One training run's state, advanced by :func:`xpnet.engine.fit` and seen by the plug-ins."""

    backend: Backend
    objective: train.Objective
    optimizer: optim.Optimizer | None
    """The gradient transformation; None for a solver that searches its own steps (L-BFGS)."""
    params: Params
    """Device arrays."""
    opt_state: Tree
    """Device arrays (see :mod:`xpnet.optim`)."""
    epoch: int = 0
    """Epochs (full-batch passes) done."""
    history: History = field(default_factory=History)
    reference: float | None = None
    """The loss at the starting parameters (or the first recorded one): the base of
    :data:`xpnet.engine.GROWTH_LIMIT`."""
    seconds: float = 0.0
    """Wall time spent in :func:`xpnet.engine.fit`, device work included."""
    stop: str | None = None
    """Set by a plug-in to end training after the current chunk (the reason)."""
    signum: int | None = None
    """Set by :class:`~xpnet.callbacks.Interrupt`: the signal that asked to stop."""

    @classmethod
    def start(
        cls,
        backend: Backend,
        objective: train.Objective,
        optimizer: optim.Optimizer | None,
        params: HostParams,
        opt_state: Tree = None,
        **restored: Any,
    ) -> Run:
        """A run from host parameters and optimizer state (None: a fresh state), moved to the
        device; ``restored`` sets ``epoch``, ``history``, ``reference`` (resuming)."""
        device = backend.tree_asarray(params)
        if optimizer is None:
            state: Tree = optim.EmptyState()
        elif opt_state is None:
            state = optimizer.init(backend.xp, device)
        else:
            state = trees.map_leaves(backend.asarray, opt_state)
        return cls(backend, objective, optimizer, device, state, **restored)

    @property
    def transform(self) -> optim.Optimizer:
        """The optimizer of a run of gradient steps (a solver's run has none)."""
        if self.optimizer is None:
            raise ConfigError("this run is a solver's (L-BFGS): it has no optimizer")
        return self.optimizer

    def host_params(self) -> HostParams:
        return self.backend.tree_to_numpy(self.params)

    def host_state(self) -> Tree:
        return trees.map_leaves(self.backend.to_numpy, self.opt_state)

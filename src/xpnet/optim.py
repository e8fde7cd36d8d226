"""Optimizers as pairs of pure functions, ``Optimizer(init, update)``, in the namespace ``xp``.

``state = opt.init(params)``; ``params, state = opt.update(grads, state, params)``. Nothing mutates,
so the same code runs eagerly on every backend and inside ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from xpnet.errors import ConfigError

Params = dict[str, Any]


class Optimizer(NamedTuple):
    init: Callable[[Params], Any]
    update: Callable[[Params, Any, Params], tuple[Params, Any]]
    config: tuple[Any, ...] = ()
    """Name and hyperparameters, e.g. ``("sgd", 0.01)``: equal configs make equal updates, so a
    compiled loop can be reused. Empty: never reused."""


class SGDState(NamedTuple):
    """Plain gradient descent keeps no state."""


def sgd(lr: float) -> Optimizer:
    """Gradient descent ``W <- W - lr * dW`` (the seeds' update)."""
    if not lr > 0:
        raise ConfigError(f"learning rate must be > 0; got {lr}")

    def init(params: Params) -> SGDState:
        return SGDState()

    def update(grads: Params, state: SGDState, params: Params) -> tuple[Params, SGDState]:
        return {k: p - lr * grads[k] for k, p in params.items()}, state

    return Optimizer(init, update, ("sgd", float(lr)))

"""Output layers with their losses: ``LOSSES[name] = OutputLoss(output, loss_sum, delta)``.

Each takes the output pre-activation ``z`` (n_samples, n_outputs), its activation ``a`` and the
targets ``T`` (n_samples, n_outputs) and works in sums over samples; the caller divides by n.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from xpnet.activations import sigmoid
from xpnet.errors import ConfigError

Array = Any


class OutputLoss(NamedTuple):
    output: Callable[[ModuleType, Array], Array]
    """a = output(xp, z): predicted probabilities (n, k)."""
    loss_sum: Callable[[ModuleType, Array, Array, Array], Array]
    """loss_sum(xp, z, a, T): 0-d sum of per-sample losses."""
    delta: Callable[[ModuleType, Array, Array, Array], Array]
    """delta(xp, z, a, T): d loss_sum / d z, shape (n, k)."""


def logsumexp(xp: ModuleType, z: Array) -> Array:
    """Return log(sum(exp(z), axis=1)) as (n, 1), shifting by the row maximum so exp never overflows."""
    m = xp.max(z, axis=1, keepdims=True)
    return m + xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))


def softmax(xp: ModuleType, z: Array) -> Array:
    """Return row-wise softmax probabilities (n, k), stable for any finite logits."""
    return xp.exp(z - logsumexp(xp, z))


def cross_entropy_sum(xp: ModuleType, z: Array, a: Array, T: Array) -> Array:
    # -log softmax(z)[true] = logsumexp(z) - z[true]; never takes the log of a rounded-to-0 probability.
    return xp.sum(logsumexp(xp, z)) - xp.sum(T * z)


def cross_entropy_delta(xp: ModuleType, z: Array, a: Array, T: Array) -> Array:
    # Softmax and cross-entropy together differentiate to probabilities minus one-hot targets.
    return a - T


def half_squared_error_sum(xp: ModuleType, z: Array, a: Array, T: Array) -> Array:
    r = a - T
    return xp.sum(r * r) / 2


def half_squared_error_delta(xp: ModuleType, z: Array, a: Array, T: Array) -> Array:
    # d/dz of (a - T)^2 / 2 through a = sigmoid(z): (a - T) * a * (1 - a), as seed 001 derives it.
    return (a - T) * a * (1 - a)


LOSSES: dict[str, OutputLoss] = {
    "cross_entropy": OutputLoss(softmax, cross_entropy_sum, cross_entropy_delta),
    "squared_error": OutputLoss(sigmoid, half_squared_error_sum, half_squared_error_delta),
}
"""``cross_entropy``: softmax outputs (seed 000). ``squared_error``: sigmoid outputs (seed 001)."""


def get(name: str) -> OutputLoss:
    """Return the loss called ``name`` or raise ConfigError listing the valid names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}") from None

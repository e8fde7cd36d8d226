"""Full-batch training math: a pure step and a chunk of steps, in the namespace ``xp`` only.

``step((params, opt_state)) -> ((params, opt_state), loss_before_update)``. A chunk runs n steps
with ``backend.scan`` (a compiled ``lax.scan`` on JAX, a plain loop elsewhere) and keeps the losses
on the device. The host-side driver is :mod:`xpnet.loop`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xpnet import mlp
from xpnet.backends import Backend
from xpnet.optim import Optimizer

Array = Any
Params = dict[str, Array]
RECORDS = ("after", "before")
"""``after``: the loss of pass i is measured after update i (seed 000); ``before``: from the forward
pass of update i itself (seed 001)."""
DEFAULT_CHUNK = 1000


def make_step(
    xp: Any, spec: mlp.Spec, reg: float, reduction: str, optimizer: Optimizer
) -> Callable[[Any, Array, Array], tuple[Any, Array]]:
    """Return the pure step ``(carry, X, T) -> (carry, loss)`` with ``carry = (params, opt_state)``."""

    def step(carry: Any, X: Array, T: Array) -> tuple[Any, Array]:
        params, state = carry
        value, grads = mlp.loss_and_grads(xp, params, X, T, spec, reg, reduction)
        params, state = optimizer.update(grads, state, params)
        return (params, state), value

    return step


def make_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]:
    """Return ``chunk(carry, X, T, n) -> (carry, losses (n,), end_loss)``, compiled where possible.
    ``end_loss`` is the loss at the final parameters (needed for ``record="after"``)."""
    xp = backend.xp
    step = make_step(xp, spec, reg, reduction, optimizer)

    def chunk(carry: Any, X: Array, T: Array, n: int) -> tuple[Any, Array, Array]:
        carry, before = backend.scan(lambda c: step(c, X, T), carry, n)
        if record == "after":
            end = mlp.loss(xp, carry[0], X, T, spec, reg)
        else:
            end = xp.zeros((), dtype=before.dtype)
        return carry, before, end

    return backend.jit(chunk, static_argnums=(3,))


_MAX_COMPILED = 16
_COMPILED: dict[tuple[Any, ...], Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]] = {}


def cached_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Callable[[Any, Array, Array, int], tuple[Any, Array, Array]]:
    """Return :func:`make_chunk`'s function, reusing one built for the same backend, device, dtype,
    architecture and settings, so that a second fit on JAX does not compile again."""
    if not optimizer.config:
        return make_chunk(backend, spec, optimizer, reg, reduction, record)
    key: tuple[Any, ...] = (backend.name, backend.device_label, backend.dtype_name, spec)
    key += (optimizer.config, reg, reduction, record)
    if key not in _COMPILED:
        if len(_COMPILED) >= _MAX_COMPILED:  # bounded: many distinct settings must not leak
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = make_chunk(backend, spec, optimizer, reg, reduction, record)
    return _COMPILED[key]

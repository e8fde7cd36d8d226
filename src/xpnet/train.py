"""Full-batch training math: a pure step and a chunk of steps, in the namespace ``xp`` only.

``step((params, opt_state)) -> ((params, opt_state), loss_before_update)``. A chunk runs n steps
with ``backend.scan`` (a compiled ``lax.scan`` on JAX, a plain loop elsewhere), keeps the losses
on the device and finds the first diverged pass there too, so the host syncs once per chunk. The
host-side driver is :mod:`xpnet.loop`.
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
GROWTH_LIMIT = 1e3
"""A loss above ``GROWTH_LIMIT * max(initial loss, 1)`` counts as diverged, like a NaN or inf: the
seeds' bounded cycle (seed 000) and spikes (seed 001) stay far below it."""


def make_step(
    xp: Any, spec: mlp.Spec, reg: float, reduction: str, optimizer: Optimizer
) -> Callable[[Any, Array, Array, Array | None], tuple[Any, Array]]:
    """Return the pure step ``(carry, X, T, w) -> (carry, loss)`` with ``carry = (params,
    opt_state)`` and optional sample weights ``w`` (n,) (see :func:`xpnet.mlp.loss_and_grads`)."""

    def step(carry: Any, X: Array, T: Array, w: Array | None = None) -> tuple[Any, Array]:
        params, state = carry
        value, grads = mlp.loss_and_grads(xp, params, X, T, spec, reg, reduction, w)
        params, state = optimizer.update(xp, grads, state, params)
        return (params, state), value

    return step


Chunk = Callable[[Any, Array, Array, int, float, Array | None], tuple[Any, Array, Array]]


def first_bad(xp: Any, losses: Array, limit: float) -> Array:
    """Return the 0-d index of the first loss that is NaN, infinite or above ``limit``; -1 if none."""
    bad = xp.astype(~xp.isfinite(losses) | (losses > limit), xp.int32)
    index = xp.argmax(bad)
    return (index + 1) * xp.astype(xp.max(bad), index.dtype) - 1


def make_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Chunk:
    """Return ``chunk(carry, X, T, n, limit, w) -> (carry, losses (n,), bad)``, compiled where
    possible; ``w`` are sample weights (n,) or None. ``losses`` are recorded as ``record`` says
    (for ``"after"`` the last one is measured at the final parameters); ``bad`` is
    :func:`first_bad` of them."""
    xp = backend.xp
    step = make_step(xp, spec, reg, reduction, optimizer)

    def chunk(
        carry: Any, X: Array, T: Array, n: int, limit: float, w: Array | None = None
    ) -> tuple[Any, Array, Array]:
        carry, losses = backend.scan(lambda c: step(c, X, T, w), carry, n)
        if record == "after":
            end = mlp.loss(xp, carry[0], X, T, spec, reg, w)
            losses = xp.concat([losses[1:], xp.reshape(end, (1,))])
        return carry, losses, first_bad(xp, losses, limit)

    return backend.jit(chunk, static_argnums=(3,))


_MAX_COMPILED = 16
_COMPILED: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """Return the function built for ``key`` before, or build and keep it (at most
    ``_MAX_COMPILED``: many distinct settings must not leak compiled programs)."""
    if key not in _COMPILED:
        if len(_COMPILED) >= _MAX_COMPILED:
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = build()
    return _COMPILED[key]


def _where(backend: Backend) -> tuple[str, str, str]:
    return backend.name, backend.device_label, backend.dtype_name


def cached_chunk(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    reduction: str,
    record: str,
) -> Chunk:
    """Return :func:`make_chunk`'s function, reusing one built for the same backend, device, dtype,
    architecture and settings, so that a second fit on JAX does not compile again."""
    if not optimizer.config:
        return make_chunk(backend, spec, optimizer, reg, reduction, record)
    key = ("chunk", *_where(backend), spec, optimizer.config, reg, reduction, record)
    chunk: Chunk = _cached(
        key, lambda: make_chunk(backend, spec, optimizer, reg, reduction, record)
    )
    return chunk


Epoch = Callable[[Any, Array, Array, Array], tuple[Any, Array]]


def make_epoch(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    n_samples: int,
    batch_size: int,
) -> Epoch:
    """Return ``epoch(carry, X, T, order) -> (carry, mean_loss)``: one pass of mini-batch steps
    over the rows of X (n, n_in) and T (n, n_out) in the order of ``order`` (n,) (int indices),
    ``batch_size`` rows per step and a smaller last batch, as scikit-learn does. Each batch takes a
    step on its mean loss; ``mean_loss`` weights batch losses by batch size. Compiled on JAX, the
    full batches running in one ``scan``."""
    xp = backend.xp
    n_full, tail = divmod(n_samples, batch_size)
    step = make_step(xp, spec, reg, "mean", optimizer)

    def batch(carry: Any, X: Array, T: Array, rows: Array) -> tuple[Any, Array]:
        return step(carry, xp.take(X, rows, axis=0), xp.take(T, rows, axis=0), None)

    def epoch(carry: Any, X: Array, T: Array, order: Array) -> tuple[Any, Array]:
        total = xp.zeros((), dtype=X.dtype)
        if n_full:
            grid = xp.reshape(order[: n_full * batch_size], (n_full, batch_size))

            def body(c: Any) -> tuple[Any, Array]:
                inner, b = c
                rows = xp.reshape(xp.take(grid, xp.reshape(b, (1,)), axis=0), (batch_size,))
                inner, loss = batch(inner, X, T, rows)
                return (inner, b + 1), loss

            start = xp.zeros((), dtype=order.dtype)
            (carry, _), losses = backend.scan(body, (carry, start), n_full)
            total = total + xp.sum(losses) * batch_size
        if tail:
            carry, loss = batch(carry, X, T, order[n_full * batch_size :])
            total = total + loss * tail
        return carry, total / n_samples

    return backend.jit(epoch)


def cached_epoch(
    backend: Backend,
    spec: mlp.Spec,
    optimizer: Optimizer,
    reg: float,
    n_samples: int,
    batch_size: int,
) -> Epoch:
    """Return :func:`make_epoch`'s function, reused like :func:`cached_chunk`'s."""
    key = ("epoch", *_where(backend), spec, optimizer.config, reg, n_samples, batch_size)
    epoch: Epoch = _cached(
        key, lambda: make_epoch(backend, spec, optimizer, reg, n_samples, batch_size)
    )
    return epoch


Block = Callable[[Any, Array, Array, Array | None], tuple[Any, Array]]


def make_block(backend: Backend, spec: mlp.Spec, optimizer: Optimizer, reg: float) -> Block:
    """Return ``block(carry, X, T, w) -> (carry, losses (k,))``: k mini-batch steps, one per
    column of X (b, k, n_in) and T (b, k, n_out) (batch j is ``X[:, j]``: rows stay on axis 0,
    where a data-parallel backend splits them), each on its mean loss, with sample weights w
    (b,) for every batch or None. Compiled on JAX, the k steps in one ``scan``. The host side
    that streams such blocks is :mod:`xpnet.stream`."""
    xp = backend.xp
    step = make_step(xp, spec, reg, "mean", optimizer)

    def column(a: Array, j: Array) -> Array:
        return xp.reshape(xp.take(a, xp.reshape(j, (1,)), axis=1), (a.shape[0], a.shape[2]))

    def block(carry: Any, X: Array, T: Array, w: Array | None) -> tuple[Any, Array]:
        def body(c: Any) -> tuple[Any, Array]:
            inner, j = c
            inner, loss = step(inner, column(X, j), column(T, j), w)
            return (inner, j + 1), loss

        start = xp.zeros((), dtype=xp.int32)
        (carry, _), losses = backend.scan(body, (carry, start), X.shape[1])
        return carry, losses

    return backend.jit(block)


def cached_block(backend: Backend, spec: mlp.Spec, optimizer: Optimizer, reg: float) -> Block:
    """Return :func:`make_block`'s function, reused like :func:`cached_chunk`'s."""
    key = ("block", *_where(backend), spec, optimizer.config, reg)
    block: Block = _cached(key, lambda: make_block(backend, spec, optimizer, reg))
    return block

"""Training programs: pure functions of ``(carry, data)`` built from the math, compiled on JAX.

``carry = (params, optimizer state)``. A *step* takes one gradient step on the rows it is given:
:func:`make_step` builds it from an :class:`Objective` (architecture, L2 strength, reduction) and
an optimizer, with or without the loss (the gradient alone costs less). From steps this module
builds the three programs :mod:`xpnet.engine` drives:

- :func:`full_batch`: a chunk of full-batch passes laid out by a :data:`Plan` of segments, so
  that the loss is computed only at the passes asked for (:func:`plan_full_batch`);
- :func:`epoch`: one mini-batch epoch over data on the device, in an order drawn on the host;
- :func:`block`: k mini-batch steps on a block of batches streamed from the host.

Each runs as one compiled program on JAX (``lax.scan`` loops) and as plain loops elsewhere.
Programs are cached on everything they depend on (:func:`cached`): the backend, device and dtype,
the objective, the optimizer's description (:attr:`xpnet.optim.Optimizer.key`) and their shape.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from xpnet import dropout, fused, mlp, optim, validation
from xpnet._typing import Array, Carry, Params, Step
from xpnet.backends import Backend


@dataclass(frozen=True)
class Objective:
    """What training minimises: the network ``spec``'s loss plus ``reg / 2 * sum |W|^2`` over the
    samples (see :mod:`xpnet.mlp`), stepping along its gradient (``reduction="mean"``) or n times
    it (``"sum"``, the seeds)."""

    spec: mlp.Spec
    reg: float = 0.0
    reduction: str = "mean"
    dropout: Any = ()
    """The dropout rate of each hidden layer (a rate for all, or one per layer; stored as one
    per layer, () for none: see :func:`xpnet.dropout.rates`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reg", validation.number("reg", self.reg, 0))
        validation.one_of(mlp.REDUCTIONS, self.reduction, "reduction")
        rates = self.dropout or 0.0
        object.__setattr__(self, "dropout", dropout.rates(rates, self.spec.n_layers - 1))

    def noise(self, draw: dropout.Draw | None) -> dropout.Dropout | None:
        """The dropout of a step drawn from ``draw`` (None without dropout)."""
        if draw is None or not self.dropout:
            return None
        return dropout.Dropout(self.dropout, draw)


def make_step(xp: Any, objective: Objective, optimizer: optim.Optimizer, with_loss: bool) -> Step:
    """Return the pure step ``(carry, X, T, w, draw) -> (carry, loss)``: one update on rows X (n,
    n_in), targets T (n, n_out) and sample weights w (n,) or None, with the dropout masks of
    ``draw`` (None: none); ``loss`` is the objective before the update (None without
    ``with_loss``)."""
    spec, reg, reduction = objective.spec, objective.reg, objective.reduction

    def step(
        carry: Carry, X: Array, T: Array, w: Array | None = None, draw: Any = None
    ) -> tuple[Carry, Array | None]:
        params, state = carry
        value, grads = mlp.backprop(xp, params, X, T, spec, reg, reduction, w, with_loss,
                                    objective.noise(draw))  # fmt: skip
        return optim.step(optimizer, xp, grads, state, params), value

    return step


# -- the cache -----------------------------------------------------------------------------------
MAX_COMPILED = 32
_COMPILED: dict[Hashable, Any] = {}


def cached(key: Hashable, build: Callable[[], Any]) -> Any:
    """Return the program built for ``key`` before, or build and keep it (the oldest of more
    than :data:`MAX_COMPILED` is dropped: many distinct settings must not leak programs). The
    fast paths are traced into a program: one built within :func:`xpnet.fused.generic` is kept
    apart."""
    key = (key, fused.enabled())
    if key not in _COMPILED:
        if len(_COMPILED) >= MAX_COMPILED:
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = build()
    return _COMPILED[key]


def _key(kind: str, backend: Backend, objective: Objective, optimizer: optim.Optimizer,
         *shape: Hashable) -> tuple[Hashable, ...]:  # fmt: skip
    return (kind, *backend.where(), objective, optimizer.key, *shape)


# -- full batch ----------------------------------------------------------------------------------
Segment = tuple[Any, ...]
Plan = tuple[Segment, ...]
"""A chunk of full-batch passes as segments, run in order; each loss it measures is one output:

- ``("P", n)``: n passes without the loss;
- ``("L", n)``: n passes, each giving its loss before its update;
- ``("B", m, k)``: m groups of k passes, the first of each giving its loss before its update;
- ``("M",)``: the loss at the final parameters (no pass), the last segment where asked for.

The loss after pass i is the loss before pass i + 1, or the final ``M`` for a chunk's last pass
(without it, the next chunk's first pass measures that loss, or nothing does: see
:meth:`xpnet.feeds.FullBatch.run`)."""


def _runs(targets: Sequence[int]) -> list[tuple[int, int, int]]:
    """Split increasing ints into runs ``(start, count, spacing)`` of equal spacing."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(targets):
        start, count = targets[i], 1
        gap = targets[i + 1] - start if i + 1 < len(targets) else 0
        while i + count < len(targets) and targets[i + count] - targets[i + count - 1] == gap:
            count += 1
        runs.append((start, count, gap))
        i += count
    return runs


def plan_full_batch(n: int, offsets: Sequence[int], final: bool = True) -> Plan:
    """Return the plan of a chunk of ``n`` passes giving the loss before each pass in
    ``offsets`` (increasing, in [0, n)) and, last, with ``final``, the loss at the final
    parameters."""
    segs: list[Segment] = []
    done = 0
    runs = _runs(offsets)
    for i, (start, count, gap) in enumerate(runs):
        if start > done:
            segs.append(("P", start - done))
        if gap == 1:
            segs.append(("L", count))
            done = start + count
            continue
        bound = runs[i + 1][0] if i + 1 < len(runs) else n  # the run's last group must end here
        whole = count if gap > 1 and start + count * gap <= bound else count - 1
        if whole:
            segs.append(("B", whole, gap))
        done = start + whole * gap
        if whole < count:
            segs.append(("L", 1))
            done += 1
    if done < n:
        segs.append(("P", n - done))
    if final:
        segs.append(("M",))
    return tuple(segs)


def _next(step: Array | None) -> Array | None:
    return None if step is None else step + 1


def full_batch(
    backend: Backend, objective: Objective, optimizer: optim.Optimizer, plan: Plan
) -> Callable[..., tuple[Carry, Array]]:
    """Return ``run(carry, X, T, w, draw=None) -> (carry, losses)`` doing the chunk ``plan``
    describes on X (n, n_in), T (n, n_out) and sample weights w (n,) or None; ``losses`` holds
    the plan's outputs in order. With dropout, ``draw`` (:class:`xpnet.dropout.Draw`) gives the
    first pass's step; pass i draws step + i, and the loss after a pass is measured with the
    next pass's masks (the loss that pass computes before its update). Compiled (and cached)
    per backend, objective, optimizer and plan."""

    def build() -> Any:
        xp = backend.xp
        timed = make_step(xp, objective, optimizer, with_loss=True)
        plain = make_step(xp, objective, optimizer, with_loss=False)
        spec, reg = objective.spec, objective.reg

        def run(
            carry: Carry, X: Array, T: Array, w: Array | None, draw: Any = None
        ) -> tuple[Carry, Array]:
            # the carry of the loops below is (carry, step): the step counts passes for dropout
            def at(step: Array | None) -> Any:
                return None if draw is None else draw._replace(step=step)

            def p(cs: Any) -> Any:
                c, step = cs
                return plain(c, X, T, w, at(step))[0], _next(step)

            def loss_then_step(cs: Any) -> tuple[Any, Array]:
                c, step = cs
                c, value = timed(c, X, T, w, at(step))
                return (c, _next(step)), value

            def measure(cs: Any) -> Array:
                return mlp.loss(xp, cs[0][0], X, T, spec, reg, w, objective.noise(at(cs[1])))

            def many(
                fn: Callable[[Carry], tuple[Carry, Array]], c: Carry, m: int
            ) -> tuple[Carry, Array]:
                if m == 1:
                    c, value = fn(c)
                    return c, xp.reshape(value, (1,))
                return backend.scan(fn, c, m)

            outs = []
            cs: Any = (carry, None if draw is None else draw.step)
            for seg in plan:
                kind = seg[0]
                if kind == "P":
                    cs = backend.repeat(p, cs, seg[1])
                elif kind == "L":
                    cs, values = many(loss_then_step, cs, seg[1])
                    outs.append(values)
                elif kind == "B":
                    k = seg[2]

                    def group_b(c: Any, k: int = k) -> tuple[Any, Array]:
                        c, value = loss_then_step(c)
                        return backend.repeat(p, c, k - 1), value

                    cs, values = many(group_b, cs, seg[1])
                    outs.append(values)
                else:
                    outs.append(xp.reshape(measure(cs), (1,)))
            return cs[0], outs[0] if len(outs) == 1 else xp.concat(outs)

        return backend.jit(run)

    program: Any = cached(_key("full", backend, objective, optimizer, plan), build)
    return program  # type: ignore[no-any-return]


def all_finite(backend: Backend) -> Callable[[Params], Array]:
    """Return ``finite(params) -> 0-d bool``: whether every parameter entry is finite (a check
    of the last update that costs a reduction over the parameters, not a forward pass)."""

    def build() -> Any:
        xp = backend.xp

        def run(params: Params) -> Array:
            return xp.all(xp.stack([xp.all(xp.isfinite(v)) for v in params.values()]))

        return backend.jit(run)

    return cached(("finite", *backend.where()), build)  # type: ignore[no-any-return]


# -- mini-batches --------------------------------------------------------------------------------
def epoch(
    backend: Backend,
    objective: Objective,
    optimizer: optim.Optimizer,
    n_samples: int,
    batch_size: int,
) -> Callable[..., tuple[Carry, Array]]:
    """Return ``epoch(carry, X, T, order, w=None, draw=None) -> (carry, mean_loss)``: one pass of
    mini-batch steps over the rows of X (n, n_in) and T (n, n_out), with sample weights w (n,)
    or None, in the order of ``order`` (n,) (int indices on the device), ``batch_size`` rows per
    step and a smaller last batch, as scikit-learn does; with dropout, batch b draws step
    ``draw.step + b`` on its rows' indices. Each batch takes a step on its own loss;
    ``mean_loss`` weights batch losses by batch size. Compiled on JAX, the full batches running
    in one ``scan``."""

    def build() -> Any:
        xp = backend.xp
        n_full, tail = divmod(n_samples, batch_size)
        step = make_step(xp, objective, optimizer, with_loss=True)

        def batch(
            carry: Carry, X: Array, T: Array, W: Array | None, rows: Array, draw: Any
        ) -> tuple[Carry, Array]:
            w = None if W is None else xp.take(W, rows, axis=0)
            return step(carry, xp.take(X, rows, axis=0), xp.take(T, rows, axis=0), w, draw)

        def run(
            carry: Carry,
            X: Array,
            T: Array,
            order: Array,
            W: Array | None = None,
            draw: Any = None,
        ) -> tuple[Carry, Array]:
            def at(b: Any, rows: Array) -> Any:
                return None if draw is None else draw._replace(step=draw.step + b, rows=rows)

            total: Array = None
            if n_full:
                grid = xp.reshape(order[: n_full * batch_size], (n_full, batch_size))

                def body(c: Any) -> tuple[Any, Array]:
                    inner, b = c
                    rows = xp.reshape(xp.take(grid, xp.reshape(b, (1,)), axis=0), (batch_size,))
                    inner, loss = batch(inner, X, T, W, rows, at(b, rows))
                    return (inner, b + 1), loss

                start = order[0] * 0  # index 0, made on the device the data is on
                (carry, _), losses = backend.scan(body, (carry, start), n_full)
                total = xp.sum(losses) * batch_size
            if tail:
                rows = order[n_full * batch_size :]
                carry, loss = batch(carry, X, T, W, rows, at(n_full, rows))
                total = loss * tail if total is None else total + loss * tail
            return carry, total / n_samples

        return backend.jit(run)

    program: Any = cached(
        _key("epoch", backend, objective, optimizer, n_samples, batch_size), build
    )
    return program  # type: ignore[no-any-return]


def block(
    backend: Backend, objective: Objective, optimizer: optim.Optimizer
) -> Callable[..., tuple[Carry, Array]]:
    """Return ``block(carry, X, T, w, zero, draw=None) -> (carry, losses (k,))``: k mini-batch
    steps, one per column of X (b, k, n_in) and T (b, k, n_out) (batch j is ``X[:, j]``: rows
    stay on axis 0, where a data-parallel backend splits them), each on its own loss, with
    sample weights w (b,) shared by every batch, (b, k) one column a batch, or None; ``zero`` is
    a 0-d int32 zero on the device. With dropout, ``draw.rows`` (b, k) holds the rows' indices
    and batch j draws step ``draw.step + j``. Compiled on JAX,
    the k steps in one ``scan``. The host side that streams such blocks is :mod:`xpnet.stream`."""

    def build() -> Any:
        xp = backend.xp
        step = make_step(xp, objective, optimizer, with_loss=True)

        def column(a: Array, j: Array) -> Array:
            return xp.reshape(xp.take(a, xp.reshape(j, (1,)), axis=1), (a.shape[0], a.shape[2]))

        def run(
            carry: Carry, X: Array, T: Array, w: Array | None, zero: Array, draw: Any = None
        ) -> tuple[Carry, Array]:
            def body(c: Any) -> tuple[Any, Array]:
                inner, j = c
                wj = w if w is None or w.ndim == 1 else column(w[:, :, None], j)[:, 0]
                drawn = None if draw is None else draw._replace(
                    step=draw.step + j, rows=column(draw.rows[:, :, None], j)[:, 0])  # fmt: skip
                inner, loss = step(inner, column(X, j), column(T, j), wj, drawn)
                return (inner, j + 1), loss

            (carry, _), losses = backend.scan(body, (carry, zero), X.shape[1])
            return carry, losses

        return backend.jit(run)

    program: Any = cached(_key("block", backend, objective, optimizer), build)
    return program  # type: ignore[no-any-return]

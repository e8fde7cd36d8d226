"""Optimizers as chains of small gradient transformations, the way optax builds them.

A transformation is ``Optimizer(init, update, config)``: ``state = t.init(xp, params)`` and
``updates, state = t.update(xp, updates, state, params)``, pure functions in the namespace ``xp``.
:func:`chain` runs several in turn; the updates that leave the last one are added to the
parameters (:func:`apply_updates`; :func:`step` does both, in one fused call where the chain ends
in a fixed rate: :attr:`Optimizer.descend`). Nothing mutates, so the same code runs eagerly on every
backend and inside ``jax.jit``.

The pieces: :func:`clip_by_global_norm`, :func:`trace` (momentum, Nesterov), :func:`scale_by_adam`,
:func:`add_decayed_weights` (decoupled weight decay) and :func:`scale_by_learning_rate` (a number
or a :class:`Schedule` of the step count). The optimizers are short chains of them: :func:`sgd`
(plain gradient descent is the seeds' ``W - lr * dW`` bit for bit), :func:`adam`, :func:`adamw`,
and scikit-learn's Adam (``adam(..., sklearn_eps=True)``). The formulas are PyTorch's and optax's
(tested against both). The full-batch L-BFGS solver is no transformation: it
searches its own step lengths (SciPy's), and the engine runs it as a feed of its own
(:class:`xpnet.feeds.LBFGS`).

``config`` is a hashable description of the whole chain made of names and numbers, e.g.
``("chain", ("scale_by_adam", 0.9, 0.999, 1e-08, False), ("scale_by_learning_rate",
("constant", 0.001)))``. Compiled training programs are cached on it (two optimizers share a
compiled step only if their descriptions are equal), and model files store it as JSON so that
:func:`from_config` rebuilds the optimizer to resume training. A transformation written by hand
has ``config=None``: it is never shared and cannot be saved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from xpnet import fused, validation
from xpnet._typing import Array, Params, Tree
from xpnet.errors import ConfigError

Config = tuple[Any, ...]


class Optimizer(NamedTuple):
    """A gradient transformation (optax's ``GradientTransformation``) with its description."""

    init: Callable[[Any, Params], Tree]
    update: Callable[[Any, Params, Tree, Params], tuple[Params, Tree]]
    config: Config | None = None
    """Hashable description (see the module docstring); None for a hand-written transformation."""
    descend: Callable[[Any, Params, Tree, Params], tuple[Params, Tree]] | None = None
    """``params, state = descend(xp, updates, state, params)``: :attr:`update` and
    :func:`apply_updates` in one, where the transformation ends in a step of a fixed rate (a
    fused kernel: :func:`xpnet.fused.descend`); None: the two in turn (see :func:`step`)."""

    @property
    def key(self) -> Any:
        """What compiled programs are cached on: the description, or for a hand-written
        transformation its own functions (so it is never mistaken for another)."""
        return self.config if self.config is not None else ("custom", self.init, self.update)


class Schedule(NamedTuple):
    """``fn(xp, step) -> lr``: the learning rate of update number ``step`` (a 0-d float array
    counting from 0), and its description (None for a hand-written schedule)."""

    fn: Callable[[Any, Array], Array]
    config: Config | None


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def apply_updates(params: Params, updates: Params) -> Params:
    """Return ``params + updates`` (the updates already carry the minus sign and the rate)."""
    return {k: p + updates[k] for k, p in params.items()}


def step(
    opt: Optimizer, xp: Any, grads: Params, state: Tree, params: Params
) -> tuple[Params, Tree]:
    """``(new params, new state)``: one update of ``params`` along ``grads`` (what a training
    step runs), through :attr:`Optimizer.descend` where the optimizer has it."""
    if opt.descend is not None:
        return opt.descend(xp, grads, state, params)
    updates, state = opt.update(xp, grads, state, params)
    return apply_updates(params, updates), state


def _zero(xp: Any, params: Params) -> Array:
    """A 0-d zero of the parameters' dtype, on their device (a step counter)."""
    return xp.sum(next(iter(params.values())) * 0)


# -- schedules -----------------------------------------------------------------------------------
def _lr(lr: Any) -> float:
    return validation.number("learning rate", lr, 0, low_open=True)


def constant(lr: float) -> Schedule:
    """The same rate for every step."""
    lr = _lr(lr)
    return Schedule(lambda xp, t: t * 0 + lr, ("constant", lr))


def inverse_scaling(lr: float, power_t: float = 0.5) -> Schedule:
    """``lr / (step + 1) ** power_t`` (scikit-learn's ``invscaling``, counted in updates)."""
    lr, power_t = _lr(lr), validation.number("power_t", power_t, 0)
    return Schedule(lambda xp, t: lr / (t + 1) ** power_t, ("invscaling", lr, power_t))


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``lr * gamma ** floor(step / step_size)``."""
    lr, gamma = _lr(lr), validation.number("gamma", gamma, 0, low_open=True)
    step_size = validation.integer("step_size", step_size)
    return Schedule(
        lambda xp, t: lr * gamma ** xp.floor(t / step_size), ("step", lr, step_size, gamma)
    )


def cosine(lr: float, total_steps: int, final_lr: float = 0.0, warmup: int = 0) -> Schedule:
    """Cosine decay from ``lr`` to ``final_lr`` over ``total_steps``, then ``final_lr``; with
    ``warmup`` steps, first a linear warm-up (``lr * (t + 1) / warmup`` at step t, so its last
    step is at ``lr`` and none at 0), then the decay over the remaining steps (optax's
    ``warmup_cosine_decay_schedule`` from ``lr / warmup``)."""
    lr, final_lr = _lr(lr), validation.number("final_lr", final_lr, 0)
    total_steps = validation.integer("total_steps", total_steps)
    warmup = validation.integer("warmup", warmup, 0)
    if warmup >= total_steps and warmup:
        raise ConfigError(f"warmup ({warmup} steps) must be shorter than the run it warms up "
                          f"({total_steps} steps)")  # fmt: skip
    decay = total_steps - warmup

    def fn(xp: Any, t: Array) -> Array:
        frac = (t - warmup) / decay
        frac = (frac + 1 - xp.abs(frac - 1)) / 2  # min(frac, 1) in arithmetic
        if not warmup:
            return final_lr + (lr - final_lr) * 0.5 * (1 + xp.cos(math.pi * frac))
        frac = (frac + xp.abs(frac)) / 2  # max(frac, 0): the warm-up's steps
        rate = final_lr + (lr - final_lr) * 0.5 * (1 + xp.cos(math.pi * frac))
        return xp.where(t < warmup, lr * (t + 1) / warmup, rate)

    config = ("cosine", lr, total_steps, final_lr) + ((warmup,) if warmup else ())
    return Schedule(fn, config)


def epoch_inverse_scaling(
    lr: float,
    power_t: float,
    steps_per_epoch: int,
    samples_per_epoch: int,
    start: int = 0,
    first_step: int = 0,
    plain_first: bool = True,
) -> Schedule:
    """scikit-learn's ``invscaling`` as its SGD applies it: one rate per epoch, ``lr / (t + 1) **
    power_t`` with t the samples seen before that epoch, counted in epochs of
    ``steps_per_epoch`` updates over ``samples_per_epoch`` rows from update ``first_step``,
    when ``start`` samples had been seen; with ``plain_first`` the first epoch runs at ``lr``
    itself (a new scikit-learn optimizer starts there, even on a warm start)."""
    lr, power_t = _lr(lr), validation.number("power_t", power_t, 0)
    steps = validation.integer("steps_per_epoch", steps_per_epoch)
    samples = validation.integer("samples_per_epoch", samples_per_epoch)
    start = validation.integer("start", start, 0)
    first_step = validation.integer("first_step", first_step, 0)
    plain_first = validation.flag("plain_first", plain_first)

    def fn(xp: Any, t: Array) -> Array:
        epoch = xp.floor((t - first_step) / steps)
        rate = lr / (start + epoch * samples + 1) ** power_t
        return xp.where(epoch == 0, t * 0 + lr, rate) if plain_first else rate

    config = ("epoch_invscaling", lr, power_t, steps, samples, start, first_step, plain_first)
    return Schedule(fn, config)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant, "invscaling": inverse_scaling, "step": step_decay, "cosine": cosine,
    "epoch_invscaling": epoch_inverse_scaling,
}  # fmt: skip
"""Every schedule a description (:func:`from_config`) may name."""
SCHEDULE_NAMES = ("constant", "invscaling", "step", "cosine")
"""The schedules :func:`schedule` builds from a name and a few settings."""


def schedule(
    kind: str,
    lr: float,
    *,
    power_t: float = 0.5,
    total_steps: int | None = None,
    step_size: int | None = None,
    gamma: float = 0.1,
    warmup: int = 0,
) -> Schedule:
    """The schedule called ``kind`` (one of :data:`SCHEDULE_NAMES`) starting at ``lr``:
    ``invscaling`` uses ``power_t``, ``cosine`` decays to 0 over ``total_steps`` (after
    ``warmup`` steps of linear warm-up), ``step`` multiplies by ``gamma`` every ``step_size``
    steps."""
    validation.one_of(SCHEDULE_NAMES, kind, "schedule")
    if kind == "invscaling":
        return inverse_scaling(lr, power_t)
    if kind == "cosine":
        if total_steps is None:
            raise ConfigError("the cosine schedule needs the number of steps it decays over")
        return cosine(lr, total_steps, warmup=warmup)
    if kind == "step":
        if step_size is None:
            raise ConfigError("the step schedule needs step_size (steps between decays)")
        return step_decay(lr, step_size, gamma)
    return constant(lr)


# -- transformations -----------------------------------------------------------------------------
class ScheduleState(NamedTuple):
    step: Array


def scale_by_learning_rate(lr: float | Schedule) -> Optimizer:
    """Updates ``-lr * u``: the last link of every optimizer. A number keeps no state (so plain
    gradient descent is the seeds' update bit for bit); a :class:`Schedule` counts steps (a
    constant one is a number: equal descriptions must mean equal state layouts)."""
    if isinstance(lr, Schedule) and lr.config is not None and lr.config[0] == "constant":
        lr = lr.config[1]
    if not isinstance(lr, Schedule):
        rate = -_lr(lr)

        def init_constant(xp: Any, params: Params) -> EmptyState:
            return EmptyState()

        def update_constant(
            xp: Any, updates: Params, state: EmptyState, params: Params
        ) -> tuple[Params, EmptyState]:
            return {k: rate * u for k, u in updates.items()}, state

        def descend_constant(
            xp: Any, updates: Params, state: EmptyState, params: Params
        ) -> tuple[Params, EmptyState]:  # p + rate * u: update_constant's, then applied
            return fused.descend(xp, params, updates, rate), state

        config = ("scale_by_learning_rate", ("constant", -rate))
        return Optimizer(init_constant, update_constant, config, descend_constant)
    sched = lr

    def init(xp: Any, params: Params) -> ScheduleState:
        return ScheduleState(_zero(xp, params))

    def update(
        xp: Any, updates: Params, state: ScheduleState, params: Params
    ) -> tuple[Params, ScheduleState]:
        rate = -sched.fn(xp, state.step)
        return {k: rate * u for k, u in updates.items()}, ScheduleState(state.step + 1)

    described = None if sched.config is None else ("scale_by_learning_rate", sched.config)
    return Optimizer(init, update, described)


class RateState(NamedTuple):
    rate: Array
    """The learning rate, a 0-d float64 array (cast to the updates' dtype where it is used)."""


def inject_learning_rate(lr: float) -> Optimizer:
    """Updates ``-rate * u`` with the rate held in the state, not in the description (optax's
    ``inject_hyperparams``): :func:`with_rate` changes it without changing the description, so
    a compiled step is used again (an adaptive rate shrinking on a plateau). ``lr`` is where it
    starts; the updates equal :func:`scale_by_learning_rate`'s at the same rate, bit for bit."""
    lr = _lr(lr)

    def init(xp: Any, params: Params) -> RateState:
        return RateState(xp.astype(_zero(xp, params), xp.float64) + lr)

    def update(
        xp: Any, updates: Params, state: RateState, params: Params
    ) -> tuple[Params, RateState]:
        out = {}
        for k, u in updates.items():
            out[k] = -xp.astype(state.rate, u.dtype) * u
        return out, state

    return Optimizer(init, update, ("inject_learning_rate", lr))


def _injected(config: Config | None) -> int | None:
    """Where in a chain's state the injected rate is (-1: the optimizer is that transform)."""
    if config is None:
        return None
    if config[0] == "inject_learning_rate":
        return -1
    if config[0] == "chain":
        for i, c in enumerate(config[1:]):
            if c[0] == "inject_learning_rate":
                return i
    return None


def rate_of(opt: Optimizer, state: Tree) -> float:
    """The learning rate the next update uses: the injected one in ``state``, else the
    description's (a schedule's start)."""
    i = _injected(opt.config)
    if i is None:
        return learning_rate(opt)
    held = state if i == -1 else state[i]
    return float(held.rate)


def with_rate(opt: Optimizer, state: Tree, lr: float) -> tuple[Optimizer, Tree]:
    """``(opt, state)`` going on at rate ``lr``: an injected rate changes in the state (the
    same description: the same compiled programs), another in a new description."""
    i = _injected(opt.config)
    if i is None:
        return with_learning_rate(opt, lr), state
    lr = _lr(lr)
    held = state if i == -1 else state[i]
    new = RateState(held.rate * 0 + lr)
    if i == -1:
        return opt, new
    return opt, tuple(new if j == i else s for j, s in enumerate(state))


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Scale all updates by ``max_norm / max(norm, max_norm)`` (their joint L2 norm)."""
    max_norm = validation.number("clip_norm", max_norm, 0, low_open=True)

    def init(xp: Any, params: Params) -> EmptyState:
        return EmptyState()

    def update(
        xp: Any, updates: Params, state: EmptyState, params: Params
    ) -> tuple[Params, EmptyState]:
        total = None
        for g in updates.values():
            s = xp.sum(g * g)
            total = s if total is None else total + s
        ratio = xp.sqrt(total) / max_norm
        factor = 2 / (ratio + 1 + xp.abs(ratio - 1))  # 1 / max(ratio, 1) in arithmetic
        return {k: g * factor for k, g in updates.items()}, state

    return Optimizer(init, update, ("clip_by_global_norm", max_norm))


class TraceState(NamedTuple):
    buffer: Params


def trace(momentum: float, nesterov: bool = False) -> Optimizer:
    """Momentum (PyTorch's and optax's form): ``b = m b + u``, passing on ``b``, or ``u + m b``
    with Nesterov."""
    momentum = validation.number("momentum", momentum, 0, 1, high_open=True)
    nesterov = validation.flag("nesterov", nesterov)
    if nesterov and not momentum:
        raise ConfigError("nesterov needs momentum > 0")

    def init(xp: Any, params: Params) -> TraceState:
        return TraceState({k: p * 0 for k, p in params.items()})

    def update(
        xp: Any, updates: Params, state: TraceState, params: Params
    ) -> tuple[Params, TraceState]:
        buffer = {k: momentum * state.buffer[k] + g for k, g in updates.items()}
        out = {k: g + momentum * buffer[k] for k, g in updates.items()} if nesterov else buffer
        return out, TraceState(buffer)

    return Optimizer(init, update, ("trace", momentum, nesterov))


class AdamState(NamedTuple):
    step: Array
    mu: Params
    nu: Params


def scale_by_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, sklearn_eps: bool = False
) -> Optimizer:
    """Adam's direction from bias-corrected moments: ``(mu / c1) / (sqrt(nu / c2) + eps)``; with
    ``sklearn_eps``, scikit-learn's placement of ``eps``: ``sqrt(c2) / c1 * mu / (sqrt(nu) + eps)``."""
    b1 = validation.number("b1", b1, 0, 1, high_open=True)
    b2 = validation.number("b2", b2, 0, 1, high_open=True)
    eps = validation.number("eps", eps, 0, low_open=True)
    sklearn_eps = validation.flag("sklearn_eps", sklearn_eps)

    def init(xp: Any, params: Params) -> AdamState:
        zeros = {k: p * 0 for k, p in params.items()}
        return AdamState(_zero(xp, params), zeros, dict(zeros))

    def update(
        xp: Any, updates: Params, state: AdamState, params: Params
    ) -> tuple[Params, AdamState]:
        t = state.step + 1
        mu = {k: b1 * state.mu[k] + (1 - b1) * g for k, g in updates.items()}
        nu = {k: b2 * state.nu[k] + (1 - b2) * (g * g) for k, g in updates.items()}
        c1, c2 = 1 - b1**t, 1 - b2**t
        if sklearn_eps:
            out = {k: (xp.sqrt(c2) / c1) * mu[k] / (xp.sqrt(nu[k]) + eps) for k in mu}
        else:
            out = {k: (mu[k] / c1) / (xp.sqrt(nu[k] / c2) + eps) for k in mu}
        return out, AdamState(t, mu, nu)

    return Optimizer(init, update, ("scale_by_adam", b1, b2, eps, sklearn_eps))


def add_decayed_weights(weight_decay: float) -> Optimizer:
    """``u + weight_decay * p``: decoupled weight decay (AdamW's), scaled by the rate after it."""
    weight_decay = validation.number("weight_decay", weight_decay, 0)

    def init(xp: Any, params: Params) -> EmptyState:
        return EmptyState()

    def update(
        xp: Any, updates: Params, state: EmptyState, params: Params
    ) -> tuple[Params, EmptyState]:
        return {k: u + weight_decay * params[k] for k, u in updates.items()}, state

    return Optimizer(init, update, ("add_decayed_weights", weight_decay))


def chain(*transforms: Optimizer) -> Optimizer:
    """Run ``transforms`` in turn; the state is the tuple of theirs. One transform is returned
    as it is."""
    if len(transforms) == 1:
        return transforms[0]

    def init(xp: Any, params: Params) -> tuple[Tree, ...]:
        return tuple(t.init(xp, params) for t in transforms)

    def through(
        links: Sequence[Optimizer], xp: Any, updates: Params, state: Sequence[Tree], params: Params
    ) -> tuple[Params, tuple[Tree, ...]]:  # the updates through ``links`` in turn
        states = []
        for t, s in zip(links, state, strict=True):
            updates, s = t.update(xp, updates, s, params)
            states.append(s)
        return updates, tuple(states)

    def update(
        xp: Any, updates: Params, state: tuple[Tree, ...], params: Params
    ) -> tuple[Params, tuple[Tree, ...]]:
        return through(transforms, xp, updates, state, params)

    last = transforms[-1].descend
    descend = None
    if last is not None:

        def descend(
            xp: Any, updates: Params, state: tuple[Tree, ...], params: Params
        ) -> tuple[Params, tuple[Tree, ...]]:  # the links before the last, then its descend
            updates, states = through(transforms[:-1], xp, updates, state[:-1], params)
            assert last is not None
            params, s = last(xp, updates, state[-1], params)
            return params, (*states, s)

    configs = [t.config for t in transforms]
    config = None if any(c is None for c in configs) else ("chain", *configs)
    return Optimizer(init, update, config, descend)


# -- optimizers ----------------------------------------------------------------------------------
def _clipped(clip_norm: float | None, *rest: Optimizer) -> Optimizer:
    head = () if clip_norm is None else (clip_by_global_norm(clip_norm),)
    return chain(*head, *rest)


def sgd(
    lr: float | Schedule,
    momentum: float = 0.0,
    nesterov: bool = False,
    clip_norm: float | None = None,
) -> Optimizer:
    """Gradient descent ``W <- W - lr * dW`` (the seeds' update, bit for bit, when ``lr`` is a
    number and nothing else is set); with ``momentum`` in (0, 1) heavy-ball or Nesterov momentum."""
    momentum = validation.number("momentum", momentum, 0, 1, high_open=True)
    if nesterov and not momentum:
        raise ConfigError("nesterov needs momentum > 0")
    middle = (trace(momentum, nesterov),) if momentum else ()
    return _clipped(clip_norm, *middle, scale_by_learning_rate(lr))


def adam(
    lr: float | Schedule = 0.001,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    sklearn_eps: bool = False,
) -> Optimizer:
    """Adam; with ``weight_decay`` > 0 AdamW (decay decoupled from the gradient, scaled by lr);
    ``sklearn_eps``: scikit-learn's Adam (see :func:`scale_by_adam`)."""
    decay = validation.number("weight_decay", weight_decay, 0)
    middle = (add_decayed_weights(decay),) if decay else ()
    return _clipped(clip_norm, scale_by_adam(b1, b2, eps, sklearn_eps), *middle,
                    scale_by_learning_rate(lr))  # fmt: skip


def adamw(
    lr: float | Schedule = 0.001,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    clip_norm: float | None = None,
) -> Optimizer:
    """AdamW with PyTorch's default decay 0.01 (optax's default is 1e-4: pass it to compare)."""
    return adam(lr, b1, b2, eps, weight_decay, clip_norm)


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
"""The names :func:`build` accepts (the training plan's ``optimizer`` setting adds the solvers,
:data:`xpnet.settings.SOLVERS`)."""


def build(
    name: str,
    lr: float,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.01,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    clip_norm: float | None = None,
    schedule_name: str = "constant",
    total_steps: int | None = None,
    power_t: float = 0.5,
    step_size: int | None = None,
    gamma: float = 0.1,
    warmup: int = 0,
    sklearn_eps: bool = False,
) -> Optimizer:
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`) at rate ``lr`` following
    ``schedule_name`` (see :func:`schedule`); ``momentum`` applies to momentum and nesterov,
    ``weight_decay`` to adamw, ``b1``/``b2``/``eps`` to adam and adamw; ``power_t``,
    ``total_steps``, ``step_size``, ``gamma`` and ``warmup`` to the schedules that use them."""
    validation.one_of(OPTIMIZERS, name, "optimizer")
    rate = schedule(schedule_name, lr, power_t=power_t, total_steps=total_steps,
                    step_size=step_size, gamma=gamma, warmup=warmup)  # fmt: skip
    if name == "sgd":
        return sgd(rate, clip_norm=clip_norm)
    if name in ("momentum", "nesterov"):
        return sgd(rate, momentum, nesterov=name == "nesterov", clip_norm=clip_norm)
    if name == "adam":
        return adam(rate, b1, b2, eps, clip_norm=clip_norm, sklearn_eps=sklearn_eps)
    return adamw(rate, b1, b2, eps, weight_decay, clip_norm)


# -- descriptions --------------------------------------------------------------------------------
_TRANSFORMS: dict[str, Callable[..., Optimizer]] = {
    "clip_by_global_norm": clip_by_global_norm, "trace": trace, "scale_by_adam": scale_by_adam,
    "add_decayed_weights": add_decayed_weights, "inject_learning_rate": inject_learning_rate,
}  # fmt: skip


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _check_numbers(config: Any) -> None:
    """A description is a name followed by finite numbers, flags or nested descriptions; raise
    ConfigError on anything else (text where a rate goes, NaN, objects)."""
    if not isinstance(config, tuple) or not config or not isinstance(config[0], str):
        raise ConfigError(f"unknown optimizer description {config!r}")
    for arg in config[1:]:
        if isinstance(arg, tuple):
            _check_numbers(arg)
        elif not isinstance(arg, (int, float)) or not math.isfinite(arg):
            raise ConfigError(f"optimizer description {config!r} holds {arg!r} where a finite "
                              "number or a flag goes")  # fmt: skip


def from_config(config: Sequence[Any]) -> Optimizer:
    """Rebuild an optimizer from its :attr:`Optimizer.config` (or that config read back from
    JSON, lists for tuples). Raises ConfigError on a description it does not know."""
    config = _tuples(config)
    _check_numbers(config)
    try:
        name, *args = config
        if name == "chain":
            return chain(*(from_config(c) for c in args))
        if name == "scale_by_learning_rate":
            kind, lr, *more = args[0]
            if kind == "constant":
                return scale_by_learning_rate(lr)
            return scale_by_learning_rate(SCHEDULES[kind](lr, *more))
        return _TRANSFORMS[name](*args)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"unknown optimizer description {config!r}") from None


def _rate_config(config: Config) -> Config | None:
    if config[0] == "scale_by_learning_rate":
        return config[1]  # type: ignore[no-any-return]
    if config[0] == "inject_learning_rate":
        return ("constant", config[1])
    if config[0] == "chain":
        for c in config[1:]:
            found = _rate_config(c)
            if found is not None:
                return found
    return None


def learning_rate(opt: Optimizer) -> float:
    """The (initial) learning rate of a described optimizer."""
    found = None if opt.config is None else _rate_config(opt.config)
    if found is None:
        raise ConfigError("this optimizer does not describe its learning rate (written by hand)")
    return float(found[1])


def with_learning_rate(opt: Optimizer, lr: float) -> Optimizer:
    """The same optimizer (same state layout) with its learning rate (a schedule's start) set to
    ``lr``: what an adaptive rate does on a plateau."""
    learning_rate(opt)  # raises for a hand-written optimizer
    lr = _lr(lr)

    def swap(config: Any) -> Any:
        if not isinstance(config, tuple) or not config:
            return config
        if config[0] == "scale_by_learning_rate":
            kind, _, *more = config[1]
            return ("scale_by_learning_rate", (kind, lr, *more))
        return tuple(swap(c) for c in config)

    assert opt.config is not None
    return from_config(swap(opt.config))

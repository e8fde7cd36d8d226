"""Optimizers as pairs of pure functions, ``Optimizer(init, update)``, in the namespace ``xp``.

``state = opt.init(xp, params)``; ``params, state = opt.update(xp, grads, state, params)``. Nothing mutates,
so the same code runs eagerly on every backend and inside ``jax.jit``. The formulas are PyTorch's
and optax's (tested against both): SGD with momentum ``b = m b + g``, step ``b`` (Nesterov:
``g + m b``); Adam with bias-corrected moments and ``eps`` outside the square root; AdamW with
decoupled weight decay ``p -= lr * wd * p``. A learning rate is a number or a :class:`Schedule` of
the step count; ``clip_norm`` rescales the gradients to at most that global L2 norm first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from xpnet.errors import ConfigError, check_number

Params = dict[str, Any]
Array = Any


class Optimizer(NamedTuple):
    init: Callable[[Any, Params], Any]
    update: Callable[[Any, Params, Any, Params], tuple[Params, Any]]
    config: tuple[Any, ...] = ()
    """Name and hyperparameters, e.g. ``("sgd", 0.01)``: equal configs make equal updates, so a
    compiled loop can be reused. Empty: never reused."""


class Schedule(NamedTuple):
    """``fn(xp, step) -> lr``: the learning rate of update number ``step`` (a 0-d float array
    counting from 0)."""

    fn: Callable[[Any, Array], Array]
    config: tuple[Any, ...]


# -- schedules -----------------------------------------------------------------------------------
def constant(lr: float) -> Schedule:
    """The same rate for every step."""
    lr = check_number("learning rate", lr)
    return Schedule(lambda xp, t: t * 0 + lr, ("constant", lr))


def inverse_scaling(lr: float, power_t: float = 0.5) -> Schedule:
    """``lr / (step + 1) ** power_t`` (scikit-learn's ``invscaling``, counted in updates)."""
    lr, power_t = (
        check_number("learning rate", lr),
        check_number("power_t", power_t, inclusive=True),
    )
    return Schedule(lambda xp, t: lr / (t + 1) ** power_t, ("invscaling", lr, power_t))


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``lr * gamma ** floor(step / step_size)``."""
    lr, gamma = check_number("learning rate", lr), check_number("gamma", gamma)
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
        raise ConfigError(f"step_size must be a positive integer; got {step_size!r}")
    return Schedule(
        lambda xp, t: lr * gamma ** xp.floor(t / step_size), ("step", lr, step_size, gamma)
    )


def cosine(lr: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    """Cosine decay from ``lr`` to ``final_lr`` over ``total_steps``, then ``final_lr``."""
    lr, final_lr = (
        check_number("learning rate", lr),
        check_number("final_lr", final_lr, inclusive=True),
    )
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ConfigError(f"total_steps must be a positive integer; got {total_steps!r}")

    def fn(xp: Any, t: Array) -> Array:
        frac = t / total_steps
        frac = (frac + 1 - xp.abs(frac - 1)) / 2  # min(frac, 1) in arithmetic
        return final_lr + (lr - final_lr) * 0.5 * (1 + xp.cos(math.pi * frac))

    return Schedule(fn, ("cosine", lr, total_steps, final_lr))


SCHEDULES = {"constant": constant, "invscaling": inverse_scaling, "step": step_decay,
             "cosine": cosine}  # fmt: skip


def _schedule(lr: float | Schedule) -> Schedule:
    return lr if isinstance(lr, Schedule) else constant(lr)


# -- building blocks -----------------------------------------------------------------------------
def _zero(xp: Any, params: Params) -> Array:
    """A 0-d zero of the parameters' dtype, on their device."""
    return xp.sum(next(iter(params.values())) * 0)


def clip_by_global_norm(xp: Any, grads: Params, max_norm: float) -> Params:
    """Scale all gradients by ``max_norm / max(norm, max_norm)`` (their joint L2 norm)."""
    total = None
    for g in grads.values():
        s = xp.sum(g * g)
        total = s if total is None else total + s
    ratio = xp.sqrt(total) / max_norm
    factor = 2 / (ratio + 1 + xp.abs(ratio - 1))  # 1 / max(ratio, 1) in arithmetic
    return {k: g * factor for k, g in grads.items()}


def _clipped(xp: Any, grads: Params, clip_norm: float | None) -> Params:
    return grads if clip_norm is None else clip_by_global_norm(xp, grads, clip_norm)


def _check_clip(clip_norm: float | None) -> float | None:
    return None if clip_norm is None else check_number("clip_norm", clip_norm)


# -- optimizers ----------------------------------------------------------------------------------
class SGDState(NamedTuple):
    """Plain gradient descent keeps no state."""


class MomentumState(NamedTuple):
    step: Array
    buffer: Params


def sgd(
    lr: float | Schedule,
    momentum: float = 0.0,
    nesterov: bool = False,
    clip_norm: float | None = None,
) -> Optimizer:
    """Gradient descent ``W <- W - lr * dW`` (the seeds' update, bit for bit, when ``lr`` is a
    number and nothing else is set); with ``momentum`` in (0, 1) heavy-ball or Nesterov momentum."""
    if isinstance(lr, Schedule) or momentum or clip_norm is not None:
        return _momentum_sgd(_schedule(lr), momentum, nesterov, clip_norm)
    if nesterov:
        raise ConfigError("nesterov needs momentum > 0")
    rate = check_number("learning rate", lr)

    def init(xp: Any, params: Params) -> SGDState:
        return SGDState()

    def update(xp: Any, grads: Params, state: SGDState, params: Params) -> tuple[Params, SGDState]:
        return {k: p - rate * grads[k] for k, p in params.items()}, state

    return Optimizer(init, update, ("sgd", rate))


def _momentum_sgd(
    schedule: Schedule, momentum: float, nesterov: bool, clip_norm: float | None
) -> Optimizer:
    momentum = check_number("momentum", momentum, inclusive=True)
    if momentum >= 1:
        raise ConfigError(f"momentum must be in [0, 1); got {momentum}")
    if nesterov and not momentum:
        raise ConfigError("nesterov needs momentum > 0")
    clip_norm = _check_clip(clip_norm)

    def init(xp: Any, params: Params) -> MomentumState:
        return MomentumState(_zero(xp, params), {k: p * 0 for k, p in params.items()})

    def update(
        xp: Any, grads: Params, state: MomentumState, params: Params
    ) -> tuple[Params, MomentumState]:
        grads = _clipped(xp, grads, clip_norm)
        lr = schedule.fn(xp, state.step)
        buffer = {k: momentum * state.buffer[k] + g for k, g in grads.items()}
        steps = {k: g + momentum * buffer[k] for k, g in grads.items()} if nesterov else buffer
        new = {k: p - lr * steps[k] for k, p in params.items()}
        return new, MomentumState(state.step + 1, buffer)

    name = "nesterov" if nesterov else "momentum"
    return Optimizer(init, update, (name, schedule.config, momentum, clip_norm))


class AdamState(NamedTuple):
    step: Array
    mu: Params
    nu: Params


def adam(
    lr: float | Schedule = 0.001,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    sklearn_eps: bool = False,
) -> Optimizer:
    """Adam; with ``weight_decay`` > 0 AdamW (decay decoupled from the gradient, scaled by lr).
    ``sklearn_eps`` adds ``eps`` where scikit-learn's Adam does, to ``sqrt(nu)`` before the bias
    correction: ``lr * sqrt(1 - b2**t) / (1 - b1**t) * mu / (sqrt(nu) + eps)``."""
    schedule = _schedule(lr)
    for name, value in (("b1", b1), ("b2", b2)):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ConfigError(f"{name} must be in [0, 1); got {value!r}")
    eps = check_number("eps", eps)
    weight_decay = check_number("weight_decay", weight_decay, inclusive=True)
    clip_norm = _check_clip(clip_norm)

    def init(xp: Any, params: Params) -> AdamState:
        zeros = {k: p * 0 for k, p in params.items()}
        return AdamState(_zero(xp, params), zeros, dict(zeros))

    def update(
        xp: Any, grads: Params, state: AdamState, params: Params
    ) -> tuple[Params, AdamState]:
        grads = _clipped(xp, grads, clip_norm)
        t = state.step + 1
        lr = schedule.fn(xp, state.step)
        mu = {k: b1 * state.mu[k] + (1 - b1) * g for k, g in grads.items()}
        nu = {k: b2 * state.nu[k] + (1 - b2) * (g * g) for k, g in grads.items()}
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = {}
        for k, p in params.items():
            if sklearn_eps:
                step = (xp.sqrt(c2) / c1) * mu[k] / (xp.sqrt(nu[k]) + eps)
            else:
                step = (mu[k] / c1) / (xp.sqrt(nu[k] / c2) + eps)
            if weight_decay:
                step = step + weight_decay * p
            new[k] = p - lr * step
        return new, AdamState(t, mu, nu)

    name = ("adamw" if weight_decay else "adam") + ("-sklearn" if sklearn_eps else "")
    return Optimizer(init, update, (name, schedule.config, b1, b2, eps, weight_decay, clip_norm))


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


OPTIMIZERS = {"sgd": sgd, "adam": adam, "adamw": adamw}
"""By name; momentum and Nesterov are ``sgd(lr, momentum=..., nesterov=True)``."""

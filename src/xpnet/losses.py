"""Output layers with their losses: ``LOSSES[name] = OutputLoss(output, evaluate)``.

Each takes the output pre-activation ``z`` (n_samples, n_outputs), the targets ``T``
(n_samples, n_outputs) and optional sample weights ``w`` (n_samples, 1), and works in (weighted)
sums over samples; the caller divides by n (or the total weight).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

from xpnet import validation
from xpnet._typing import Array
from xpnet.activations import sigmoid
from xpnet.fused import softmax, softmax_lse


class OutputLoss(NamedTuple):
    output: Callable[[ModuleType, Array], Array]
    """a = output(xp, z): predicted probabilities (n, k)."""
    evaluate: Callable[..., tuple[Array, Array | None, Array]]
    """evaluate(xp, z, T, w, with_loss=True) -> (a, loss_sum, delta): probabilities (n, k), the
    0-d sum of per-sample losses (each times its weight in w (n, 1), if w is not None; None when
    ``with_loss`` is False, for a step whose loss nobody reads) and d loss_sum / d z (n, k),
    sharing their intermediate results."""
    options: tuple[str, ...] = ()
    """The keyword settings ``evaluate`` takes (huber's ``delta``, quantile's ``quantile``)."""


def logsumexp(xp: ModuleType, z: Array) -> Array:
    """Return log(sum(exp(z), axis=1)) as (n, 1), shifting by the row maximum so exp never
    overflows (:func:`xpnet.fused.softmax_lse`'s)."""
    return softmax_lse(xp, z)[1]


def _weighted(
    xp: ModuleType, terms: Array | None, delta: Array, w: Array | None
) -> tuple[Array | None, Array]:
    """Return ``(sum of terms, delta)`` (n, k), each row times its weight when w (n, 1) is given;
    no sum when ``terms`` is None."""
    if w is None:
        return (None if terms is None else xp.sum(terms)), delta
    # a row of weight 0 is absent, whatever it holds: even an output that overflowed (exp) or
    # is not a number must add nothing, and inf * 0 would not be 0
    absent = w == 0
    zero = xp.zeros_like(delta)
    total = None if terms is None else xp.sum(xp.where(absent, zero, terms * w))
    return total, xp.where(absent, zero, delta * w)


def softmax_cross_entropy(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    if with_loss:
        a, lse = softmax_lse(xp, z)
        # -sum_k T_k log softmax(z)_k = sum_k T_k (logsumexp(z) - z_k): never the log of a
        # probability rounded to 0. T's rows are one-hot (or any distribution).
        terms = T * (lse - z)
    else:  # the same probabilities to the last bit, fused where the backend can
        a, terms = softmax(xp, z), None
    # Softmax and cross-entropy together differentiate to probabilities minus one-hot targets.
    loss_sum, delta = _weighted(xp, terms, a - T, w)
    return a, loss_sum, delta


def sigmoid_half_squared_error(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    a = sigmoid(xp, z)
    r = a - T
    # d/dz of (a - T)^2 / 2 through a = sigmoid(z): (a - T) * a * (1 - a), as seed 001 derives it.
    twice, delta = _weighted(xp, r * r if with_loss else None, r * a * (1 - a), w)
    return a, None if twice is None else twice / 2, delta


def identity_output(xp: ModuleType, z: Array) -> Array:
    return z


def half_squared_error(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    r = z - T
    twice, delta = _weighted(xp, r * r if with_loss else None, r, w)
    return z, None if twice is None else twice / 2, delta


def sigmoid_cross_entropy(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    a = sigmoid(xp, z)
    # -T log a - (1 - T) log(1 - a) = softplus(z) - T z, with softplus(z) = max(z, 0) +
    # log1p(exp(-|z|)): no log of a probability rounded to 0 or 1, no overflow.
    terms = None
    if with_loss:
        terms = xp.where(z > 0, z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z))) - T * z
    loss_sum, delta = _weighted(xp, terms, a - T, w)  # sigmoid and its log loss: a - T
    return a, loss_sum, delta


def exp_output(xp: ModuleType, z: Array) -> Array:
    return xp.exp(z)


def half_poisson_deviance(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    a = xp.exp(z)
    terms = None
    if with_loss:
        # T log(T / a) - T + a with log a = z; T log T is 0 where T is 0
        positive = T > 0
        zero = xp.zeros_like(T)
        t_log_t = xp.where(positive, T * xp.log(xp.where(positive, T, zero + 1)), zero)
        terms = t_log_t - T * z - T + a
    loss_sum, delta = _weighted(xp, terms, a - T, w)  # the log link's canonical delta
    return a, loss_sum, delta


def absolute_error(
    xp: ModuleType, z: Array, T: Array, w: Array | None = None, with_loss: bool = True
) -> tuple[Array, Array | None, Array]:
    """|z - T| (scikit-learn's ``absolute_error``); its derivative sign(z - T), 0 at z = T."""
    r = z - T
    total, delta = _weighted(xp, xp.abs(r) if with_loss else None, xp.sign(r), w)
    return z, total, delta


def huber(
    xp: ModuleType,
    z: Array,
    T: Array,
    w: Array | None = None,
    with_loss: bool = True,
    *,
    delta: float = 1.0,
) -> tuple[Array, Array | None, Array]:
    """Huber's loss: r^2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond (r = z - T;
    scikit-learn's SGDRegressor ``huber`` with its epsilon, PyTorch's HuberLoss); its
    derivative r clipped to [-delta, delta]."""
    r = z - T
    a = xp.abs(r)
    terms = xp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)) if with_loss else None
    total, grad = _weighted(xp, terms, xp.clip(r, -delta, delta), w)
    return z, total, grad


def quantile_loss(
    xp: ModuleType,
    z: Array,
    T: Array,
    w: Array | None = None,
    with_loss: bool = True,
    *,
    quantile: float = 0.5,
) -> tuple[Array, Array | None, Array]:
    """The pinball loss of the ``quantile`` q: q (T - z) where T >= z, (1 - q) (z - T) below
    (scikit-learn's ``quantile`` loss; its minimiser is the q-quantile of T); its derivative
    -q above the target, 1 - q below (that of T >= z at z = T)."""
    r = T - z
    above = r >= 0
    terms = xp.where(above, quantile * r, (quantile - 1) * r) if with_loss else None
    grad = xp.where(above, xp.full_like(r, -quantile), xp.full_like(r, 1 - quantile))
    total, delta = _weighted(xp, terms, grad, w)
    return z, total, delta


LOSSES: dict[str, OutputLoss] = {
    "cross_entropy": OutputLoss(softmax, softmax_cross_entropy),
    "squared_error": OutputLoss(sigmoid, sigmoid_half_squared_error),
    "mse": OutputLoss(identity_output, half_squared_error),
    "binary_cross_entropy": OutputLoss(sigmoid, sigmoid_cross_entropy),
    "poisson": OutputLoss(exp_output, half_poisson_deviance),
    "absolute_error": OutputLoss(identity_output, absolute_error),
    "huber": OutputLoss(identity_output, huber, ("delta",)),
    "quantile": OutputLoss(identity_output, quantile_loss, ("quantile",)),
}
"""``cross_entropy``: softmax outputs (seed 000). ``squared_error``: sigmoid outputs (seed 001).
``mse``: identity outputs and half squared error, for regression. ``binary_cross_entropy``:
independent sigmoid outputs and their log loss (one unit for two classes, or one per label of a
multilabel problem: scikit-learn's MLPClassifier). ``poisson``: exponential outputs and half the
Poisson deviance, for counts (MLPRegressor's ``loss="poisson"``). ``absolute_error``,
``huber`` (``delta``) and ``quantile`` (``quantile``): identity outputs and robust losses for
regression."""

REGRESSION = ("mse", "poisson", "absolute_error", "huber", "quantile")
"""The losses whose targets are numbers rather than classes."""

OPTIONS = {"delta": 1.0, "quantile": 0.5}
"""The losses' own settings and their defaults: huber's ``delta``, quantile's ``quantile``."""


_OPTION_BOUNDS = {"delta": (0.0, float("inf"), True, False), "quantile": (0.0, 1.0, True, True)}


def check_option(name: str, value: float, shown: str | None = None) -> float:
    """A loss's own setting ``name`` checked (ConfigError naming it ``shown``, default its
    name): huber's ``delta`` > 0, the ``quantile`` in (0, 1)."""
    low, high, low_open, high_open = _OPTION_BOUNDS[name]
    return validation.number(shown or name, value, low, high, low_open=low_open,
                             high_open=high_open)  # fmt: skip


def check_options(delta: float, quantile: float) -> dict[str, float]:
    """The losses' own settings checked (see :func:`check_option`)."""
    return {"delta": check_option("delta", delta), "quantile": check_option("quantile", quantile)}


def get(name: str, **options: float) -> OutputLoss:
    """Return the loss called ``name`` (its own settings of ``options`` bound: see
    :data:`OPTIONS`) or raise ConfigError listing the valid names."""
    loss = validation.choice(LOSSES, name, "loss", "losses")
    used = {k: v for k, v in options.items() if k in loss.options}
    if not used:
        return loss
    return loss._replace(evaluate=functools.partial(loss.evaluate, **used))

"""Initial weights, drawn on the host from a seeded NumPy generator so every backend starts from the
same bits; the caller moves them to the device once.

``INITS[name](spec, rng) -> {name: float64 ndarray}`` with the shapes of ``spec.param_shapes()``.
Biases start at zero. ``rng`` is a ``numpy.random.RandomState``: seed 001 keeps drawing from one
stream across models, so the caller owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from xpnet import validation
from xpnet._typing import HostParams
from xpnet.mlp import Spec

if TYPE_CHECKING:  # numpy.random costs ~10 ms to import: only when weights are drawn
    from numpy.random import RandomState

Draw = Callable[["RandomState", int, int], np.ndarray]


def _build(spec: Spec, rng: RandomState, draw: Draw) -> HostParams:
    params: HostParams = {}
    for name, shape in spec.param_shapes().items():
        if name.startswith("W"):
            params[name] = np.asarray(draw(rng, shape[0], shape[1]), dtype=np.float64)
        else:
            params[name] = np.zeros(shape, dtype=np.float64)
    return params


def britz(spec: Spec, rng: RandomState) -> HostParams:
    """Seed 000: ``randn(n_in, n_out) / sqrt(n_in)``, layer by layer."""
    return _build(spec, rng, lambda r, i, o: r.randn(i, o) / np.sqrt(i))


def uniform(spec: Spec, rng: RandomState) -> HostParams:
    """Seed 001: ``uniform(size=(n_in, n_out))`` in [0, 1), layer by layer."""
    return _build(spec, rng, lambda r, i, o: r.uniform(size=(i, o)))


def glorot(spec: Spec, rng: RandomState) -> HostParams:
    """Glorot/Xavier uniform: U(-l, l) with l = sqrt(6 / (n_in + n_out))."""
    return _build(spec, rng, lambda r, i, o: r.uniform(-1, 1, (i, o)) * np.sqrt(6 / (i + o)))


def he(spec: Spec, rng: RandomState) -> HostParams:
    """He/Kaiming normal: N(0, 2 / n_in)."""
    return _build(spec, rng, lambda r, i, o: r.randn(i, o) * np.sqrt(2 / i))


def lecun(spec: Spec, rng: RandomState) -> HostParams:
    """LeCun normal: N(0, 1 / n_in). Seed 000's ``britz`` draws exactly this, so the two names
    give the same weights."""
    return britz(spec, rng)


def sklearn(spec: Spec, rng: RandomState) -> HostParams:
    """scikit-learn's MLP initialisation: weights and biases U(-b, b) with b = sqrt(f / (n_in +
    n_out)), f = 2 for sigmoid units else 6, drawn layer by layer, W before b, as
    ``MLPClassifier`` draws them (the same ``random_state`` gives the same weights)."""
    factor = 2.0 if spec.activation == "sigmoid" else 6.0
    params: HostParams = {}
    for layer, (i, o) in enumerate(zip(spec.sizes, spec.sizes[1:], strict=False), 1):
        bound = np.sqrt(factor / (i + o))
        params[f"W{layer}"] = rng.uniform(-bound, bound, (i, o))
        if spec.bias:
            params[f"b{layer}"] = rng.uniform(-bound, bound, o)
    return params


AUTO_HE = ("relu", "leaky_relu", "gelu", "elu", "silu", "mish")
"""Activations ``auto`` initialises with He (relu-like: they halve the variance they pass on);
selu gets LeCun (what its self-normalisation assumes); the others (tanh, sigmoid, identity,
softplus) get Glorot."""


def auto(spec: Spec, rng: RandomState) -> HostParams:
    """An initialisation suited to the hidden activation: :func:`he` for relu-like units,
    :func:`lecun` for selu, else :func:`glorot` (the library's default; the seeds' recipes name
    their own)."""
    if spec.activation == "selu":
        return lecun(spec, rng)
    return (he if spec.activation in AUTO_HE else glorot)(spec, rng)


INITS: dict[str, Callable[[Spec, RandomState], HostParams]] = {
    "auto": auto,
    "britz": britz,
    "uniform": uniform,
    "glorot": glorot,
    "he": he,
    "lecun": lecun,
    "sklearn": sklearn,
}


def initial_params(spec: Spec, init: str = "auto", seed: int | RandomState = 0) -> HostParams:
    """Return float64 host parameters for ``spec``; ``seed`` is an int (fresh stream, as seed 000
    resets per model) or a RandomState to continue (as seed 001 does)."""
    draw = validation.choice(INITS, init, "init")
    rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
    return draw(spec, rng)

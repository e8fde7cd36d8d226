"""Hidden-layer activations: ``ACTIVATIONS[name] = Activation(fn(xp, z), grad_from_output(xp, a))``.

Derivatives are written from the activation value ``a = fn(z)`` (as in scikit-learn), so the backward
pass needs only what the forward pass kept. All functions take and return arrays of any shape.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from xpnet.errors import lookup

Array = Any


class Activation(NamedTuple):
    fn: Callable[[ModuleType, Array], Array]
    grad_from_output: Callable[[ModuleType, Array], Array]


def tanh(xp: ModuleType, z: Array) -> Array:
    return xp.tanh(z)


def tanh_grad(xp: ModuleType, a: Array) -> Array:
    return 1 - a * a


def sigmoid(xp: ModuleType, z: Array) -> Array:
    """Return 1 / (1 + exp(-z)) without overflow: exp is only taken of -|z|."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(xp: ModuleType, a: Array) -> Array:
    return a * (1 - a)


def relu(xp: ModuleType, z: Array) -> Array:
    return xp.where(z > 0, z, xp.zeros_like(z))


def relu_grad(xp: ModuleType, a: Array) -> Array:
    return xp.astype(a > 0, a.dtype)


def identity(xp: ModuleType, z: Array) -> Array:
    return z


def identity_grad(xp: ModuleType, a: Array) -> Array:
    return xp.ones_like(a)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(tanh, tanh_grad),
    "sigmoid": Activation(sigmoid, sigmoid_grad),
    "relu": Activation(relu, relu_grad),
    "identity": Activation(identity, identity_grad),
}


def get(name: str) -> Activation:
    """Return the activation called ``name`` or raise ConfigError listing the valid names."""
    return lookup(ACTIVATIONS, name, "activation")

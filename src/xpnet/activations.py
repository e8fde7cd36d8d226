"""Hidden-layer activations: ``ACTIVATIONS[name] = Activation(fn(xp, z), grad(xp, z, a))``.

Derivatives are written from the activation value ``a = fn(z)`` where that is possible (as in
scikit-learn), so the backward pass needs only what the forward pass kept; ``needs_z`` marks the
one that needs the pre-activation too (gelu, which is not monotonic), and only then does the
forward pass keep ``z``. All functions take and return arrays of any shape.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

from xpnet import validation
from xpnet._typing import Array


class Activation(NamedTuple):
    fn: Callable[[ModuleType, Array], Array]
    grad: Callable[[ModuleType, Array | None, Array], Array]
    """``grad(xp, z, a)``: d a / d z; ``z`` is None unless ``needs_z``."""
    needs_z: bool = False


def _from_output(
    f: Callable[[ModuleType, Array], Array],
) -> Callable[[ModuleType, Array | None, Array], Array]:
    return lambda xp, z, a: f(xp, a)


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


LEAKY_SLOPE = 0.01
"""Slope of leaky_relu for z < 0 (PyTorch's and JAX's default)."""


def leaky_relu(xp: ModuleType, z: Array) -> Array:
    return xp.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_grad(xp: ModuleType, a: Array) -> Array:
    return xp.where(a > 0, xp.ones_like(a), xp.full_like(a, LEAKY_SLOPE))


def softplus(xp: ModuleType, z: Array) -> Array:
    """Return log(1 + exp(z)) without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))


def softplus_grad(xp: ModuleType, a: Array) -> Array:
    """sigmoid(z) = 1 - exp(-a), written with expm1 so tiny ``a`` keeps its precision."""
    return -xp.expm1(-a)


GELU_C = 0.7978845608028654  # sqrt(2 / pi)


def gelu(xp: ModuleType, z: Array) -> Array:
    """GELU, tanh approximation (``jax.nn.gelu(approximate=True)``; erf is not in the standard)."""
    return 0.5 * z * (1 + xp.tanh(GELU_C * (z + 0.044715 * z * z * z)))


def gelu_grad(xp: ModuleType, z: Array | None, a: Array) -> Array:
    assert z is not None
    t = xp.tanh(GELU_C * (z + 0.044715 * z * z * z))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * z * z)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(tanh, _from_output(tanh_grad)),
    "sigmoid": Activation(sigmoid, _from_output(sigmoid_grad)),
    "relu": Activation(relu, _from_output(relu_grad)),
    "identity": Activation(identity, _from_output(identity_grad)),
    "leaky_relu": Activation(leaky_relu, _from_output(leaky_relu_grad)),
    "softplus": Activation(softplus, _from_output(softplus_grad)),
    "gelu": Activation(gelu, gelu_grad, needs_z=True),
}


def get(name: str) -> Activation:
    """Return the activation called ``name`` or raise ConfigError listing the valid names."""
    return validation.choice(ACTIVATIONS, name, "activation")

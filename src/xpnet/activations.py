"""Hidden-layer activations: ``ACTIVATIONS[name] = Activation(fn(xp, z), grad(xp, z, a))``.

Derivatives are written from the activation value ``a = fn(z)`` where that is possible (as in
scikit-learn), so the backward pass needs only what the forward pass kept; ``needs_z`` marks the
ones that need the pre-activation too (gelu, silu and mish, which are not monotonic), and only
then does the forward pass keep ``z``. Every form is stable: exp is taken only where it cannot
overflow (sigmoid, softplus, the ELUs' expm1 of min(z, 0)), so float32 stays finite for any
finite input. All functions take and return arrays of any shape.
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
    backward: str = ""
    """The fused kernel a backend may have for ``delta * grad`` (:mod:`xpnet.fused`), or ""."""
    forward: str = ""
    """The kernel a backend may have for ``fn`` (:func:`xpnet.fused.activation`), or ""."""


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


GELU_SATURATES = 20.0
"""Beyond it tanh's argument is over 300, where tanh is 1 exactly in float64 and float32: the
cube is taken of z clipped there, so it never overflows (an inf times the 0 of 1 - t^2 was NaN)
and every other input gives the same bits as the plain form."""


def gelu(xp: ModuleType, z: Array) -> Array:
    """GELU, tanh approximation (``jax.nn.gelu(approximate=True)``; erf is not in the standard)."""
    c = xp.clip(z, -GELU_SATURATES, GELU_SATURATES)
    return 0.5 * z * (1 + xp.tanh(GELU_C * (c + 0.044715 * c * c * c)))


def gelu_grad(xp: ModuleType, z: Array | None, a: Array) -> Array:
    assert z is not None
    c = xp.clip(z, -GELU_SATURATES, GELU_SATURATES)
    t = xp.tanh(GELU_C * (c + 0.044715 * c * c * c))
    return 0.5 * (1 + t) + 0.5 * c * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * c * c)


def elu(xp: ModuleType, z: Array) -> Array:
    """ELU with alpha 1: z for z > 0, exp(z) - 1 below (expm1 of min(z, 0): no overflow, and
    full precision near 0)."""
    return xp.where(z > 0, z, xp.expm1(xp.minimum(z, xp.zeros_like(z))))


def elu_grad(xp: ModuleType, a: Array) -> Array:
    """1 for z > 0, exp(z) = a + 1 below (a > 0 exactly where z > 0)."""
    return xp.where(a > 0, xp.ones_like(a), a + 1)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's constants (Klambauer et al. 2017; PyTorch's and JAX's)."""


def selu(xp: ModuleType, z: Array) -> Array:
    """SELU: scale * z for z > 0, scale * alpha * (exp(z) - 1) below."""
    return SELU_SCALE * xp.where(z > 0, z, SELU_ALPHA * xp.expm1(xp.minimum(z, xp.zeros_like(z))))


def selu_grad(xp: ModuleType, a: Array) -> Array:
    """scale for z > 0, scale * alpha * exp(z) = a + scale * alpha below."""
    return xp.where(a > 0, xp.full_like(a, SELU_SCALE), a + SELU_SCALE * SELU_ALPHA)


def silu(xp: ModuleType, z: Array) -> Array:
    """SiLU (swish): z * sigmoid(z), the sigmoid without overflow."""
    return z * sigmoid(xp, z)


def silu_grad(xp: ModuleType, z: Array | None, a: Array) -> Array:
    """s (1 + z (1 - s)) with s = sigmoid(z) (not monotonic: needs z)."""
    assert z is not None
    s = sigmoid(xp, z)
    return s * (1 + z * (1 - s))


def mish(xp: ModuleType, z: Array) -> Array:
    """Mish: z * tanh(softplus(z)), softplus in its stable form (no overflow for large z)."""
    return z * xp.tanh(softplus(xp, z))


def mish_grad(xp: ModuleType, z: Array | None, a: Array) -> Array:
    """tanh(sp) + z (1 - tanh(sp)^2) sigmoid(z), with sp = softplus(z) (needs z)."""
    assert z is not None
    t = xp.tanh(softplus(xp, z))
    return t + z * (1 - t * t) * sigmoid(xp, z)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(tanh, _from_output(tanh_grad), backward="tanh_backward", forward="tanh"),
    "sigmoid": Activation(sigmoid, _from_output(sigmoid_grad), backward="sigmoid_backward"),
    "relu": Activation(relu, _from_output(relu_grad), backward="relu_backward"),
    "identity": Activation(identity, _from_output(identity_grad)),
    "leaky_relu": Activation(leaky_relu, _from_output(leaky_relu_grad)),
    "softplus": Activation(softplus, _from_output(softplus_grad)),
    "gelu": Activation(gelu, gelu_grad, needs_z=True),
    "elu": Activation(elu, _from_output(elu_grad)),
    "selu": Activation(selu, _from_output(selu_grad)),
    "silu": Activation(silu, silu_grad, needs_z=True),
    "mish": Activation(mish, mish_grad, needs_z=True),
}


def get(name: str) -> Activation:
    """Return the activation called ``name`` or raise ConfigError listing the valid names."""
    return validation.choice(ACTIVATIONS, name, "activation")

"""Fused kernels where a library has them: the generic Array API body of each operation, which a
backend object may replace for its own namespace with the library's kernel (array-api-extra's
delegation pattern). The math calls these functions and stays written once; the kernels are the
backend objects' (:mod:`xpnet.backends`, which registers each library's when it is set up), and
the tests check every kernel against the body it replaces, to 1e-12 in float64 on each backend
(tests/test_fused.py). :func:`generic` turns them off.

- :func:`affine`: ``a @ W + b`` (PyTorch: ``addmm``, one kernel; NumPy: the bias added into the
  product in place, one (n, k) array less);
- :func:`activation`: a hidden layer's activation (NumPy and PyTorch: ``tanh`` into scratch
  memory, :mod:`xpnet.scratch`);
- :func:`back`: ``delta @ W.T``, the delta sent back through a layer's weights (NumPy and
  PyTorch: into scratch memory);
- :func:`weight_grad`: ``a.T @ delta + reg * W`` (PyTorch: ``addmm``, one kernel, and on the
  CPU as ``(delta.T @ a).T`` where delta is narrow, 4x faster for a 10-class output layer;
  NumPy: the penalty added into the product in place);
- :func:`activation_backward`: ``delta * f'(z)``, the delta sent back through a hidden layer's
  activation (PyTorch: ``tanh_backward``, ``sigmoid_backward``, ``threshold_backward``, one pass
  where the generic body takes three; NumPy: in place, into the delta it consumes);
- :func:`softmax`: the row-wise softmax (PyTorch: ``softmax``, one kernel where the generic body
  takes five; NumPy: in the one array it makes), and with its log-sum-exp
  (:func:`softmax_lse`, PyTorch: ``softmax`` and ``logsumexp``);
- :func:`descend`: ``params + rate * updates`` over a dict of arrays, a step of plain gradient
  descent (PyTorch: ``_foreach_add``, every parameter in one call).

Within a fit, NumPy's and PyTorch's (CPU) kernels write their large results (``affine``,
``activation``, ``back``, PyTorch's ``activation_backward``) into scratch memory that the
previous passes used (:mod:`xpnet.scratch`), where a new array would fault its pages in again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import ModuleType

from xpnet._typing import Array, Params
from xpnet.activations import Activation

Kernel = Callable[..., Array]

_KERNELS: dict[int, dict[str, Kernel]] = {}
_GENERIC: ContextVar[bool] = ContextVar("xpnet_fused_generic", default=False)


def register(xp: ModuleType, kernels: dict[str, Kernel]) -> None:
    """Let the namespace ``xp`` use ``kernels`` (by operation: ``affine``, ``tanh_backward``...)
    in place of the generic bodies; a backend object registers its library's on setup."""
    _KERNELS.setdefault(id(xp), {}).update(kernels)


def enabled() -> bool:
    """Whether the kernels run (outside :func:`generic`); a program compiled with them is not
    the one compiled without (:func:`xpnet.train.cached` keeps them apart)."""
    return not _GENERIC.get()


def kernel(xp: ModuleType, name: str) -> Kernel | None:
    """The kernel ``xp`` registered for operation ``name`` (None: the generic body runs)."""
    if not enabled():
        return None
    return _KERNELS.get(id(xp), {}).get(name)


@contextlib.contextmanager
def generic() -> Iterator[None]:
    """Within it, every operation runs its generic Array API body (what the tests compare the
    kernels with)."""
    token = _GENERIC.set(True)
    try:
        yield
    finally:
        _GENERIC.reset(token)


def affine(xp: ModuleType, a: Array, W: Array, b: Array | None) -> Array:
    """``a @ W + b``: a (n, i), W (i, k), b (k,) or None; returns (n, k)."""
    if b is not None:
        fast = kernel(xp, "affine")
        if fast is not None:
            return fast(a, W, b)
    z = a @ W
    return z if b is None else z + b


def activation(xp: ModuleType, act: Activation, z: Array) -> Array:
    """``act.fn(xp, z)``: a hidden layer's output (n, k) from its pre-activation z (n, k)."""
    fast = kernel(xp, act.forward) if act.forward else None
    if fast is not None:
        return fast(z)
    return act.fn(xp, z)


def back(xp: ModuleType, delta: Array, W: Array) -> Array:
    """``delta @ W.T`` (n, i): the delta (n, k) at a layer's output sent back through its
    weights W (i, k), before the activation below."""
    fast = kernel(xp, "back")
    if fast is not None:
        return fast(delta, W)
    return delta @ W.T


def weight_grad(
    xp: ModuleType, a: Array, delta: Array, W: Array | None = None, reg: float = 0.0
) -> Array:
    """``a.T @ delta + reg * W`` (i, k): a layer's weight gradient from its input a (n, i) and
    the delta (n, k) at its output, with the L2 penalty's part where ``reg`` (W (i, k))."""
    fast = kernel(xp, "weight_grad")
    if fast is not None:
        return fast(a, delta, W, reg)
    g = a.T @ delta
    if reg:
        assert W is not None
        g = g + reg * W
    return g


def activation_backward(
    xp: ModuleType, act: Activation, delta: Array, z: Array | None, a: Array
) -> Array:
    """``delta * act.grad(xp, z, a)`` (n, k): the delta (n, k) sent back through the activation
    whose pre-activation was z (None unless ``act.needs_z``) and output a. ``delta`` is consumed:
    a kernel may write the result into it."""
    fast = kernel(xp, act.backward) if act.backward else None
    if fast is not None:
        return fast(delta, a)
    return delta * act.grad(xp, z, a)


def softmax(xp: ModuleType, z: Array) -> Array:
    """Row-wise softmax probabilities (n, k) of z (n, k), stable for any finite logits (shifted
    by the row maximum: exp never overflows)."""
    fast = kernel(xp, "softmax")
    if fast is not None:
        return fast(z)
    _, e, s = _shifted_exp(xp, z)
    return e / s


def _shifted_exp(xp: ModuleType, z: Array) -> tuple[Array, Array, Array]:
    """The row maximum m (n, 1), ``e = exp(z - m)`` (n, k) and its row sums (n, 1): the generic
    softmax's work, which exp never overflows."""
    m = xp.max(z, axis=1, keepdims=True)
    e = xp.exp(z - m)
    return m, e, xp.sum(e, axis=1, keepdims=True)


def softmax_lse(xp: ModuleType, z: Array) -> tuple[Array, Array]:
    """``(softmax(z), log(sum(exp(z), axis=1)))``, (n, k) and (n, 1), sharing their work; the
    probabilities are :func:`softmax`'s to the last bit on every backend (a pass that measures
    the loss must step as one that does not)."""
    fast = kernel(xp, "softmax_lse")
    if fast is not None:
        both: tuple[Array, Array] = fast(z)
        return both
    m, e, s = _shifted_exp(xp, z)
    return e / s, m + xp.log(s)


def descend(xp: ModuleType, params: Params, updates: Params, rate: float) -> Params:
    """``{k: params[k] + rate * updates[k]}``: new parameters, a step of ``rate`` (a number)
    along ``updates`` (shaped like ``params``, which are not changed)."""
    fast = kernel(xp, "descend")
    if fast is not None:
        new: Params = fast(params, updates, rate)
        return new
    return {k: p + rate * updates[k] for k, p in params.items()}

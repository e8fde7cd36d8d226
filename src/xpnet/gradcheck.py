"""Check the hand-written gradients of an architecture on a backend, as a user-facing feature.

:func:`gradcheck` builds a small random problem, takes :func:`xpnet.mlp.loss_and_grads` on the
chosen backend and dtype, and compares every parameter's gradient with central finite differences
of the loss (always in float64, on the same backend) and, where a backend with autodiff is installed
(JAX), with its gradient of the same forward code (:func:`xpnet.backends.autodiff`). The error of a parameter is ``max |g - ref| / max |ref|``: the largest
deviation relative to the largest entry of that gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from xpnet import data, mlp
from xpnet.backends import Backend, autodiff, select
from xpnet.errors import BackendUnavailableError
from xpnet.init import initial_params

TOLERANCES = {"float64": 1e-6, "float32": 1e-3}
"""Default pass/fail bound per dtype (float32 carries ~1e-7 rounding per operation)."""


class GradRow(NamedTuple):
    name: str
    shape: tuple[int, ...]
    checked: int
    """How many entries were compared with finite differences."""
    fd_error: float
    autodiff_error: float | None
    """Against ``jax.grad``; None where JAX is not installed."""


def problem(
    spec: mlp.Spec, n_samples: int = 8, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Return float64 host ``(params, X (n, n_in), T (n, n_out))`` with non-zero biases."""
    rng = np.random.RandomState(seed)
    params = initial_params(spec, "glorot", rng)
    for k in params:
        if k.startswith("b"):
            params[k] = rng.uniform(-0.5, 0.5, params[k].shape)
    X = rng.randn(n_samples, spec.sizes[0])
    n_out = spec.sizes[-1]
    labels = rng.randint(0, max(n_out, 2), n_samples)
    T = labels[:, None].astype(np.float64) if n_out == 1 else data.one_hot(labels, n_out)
    return params, X, T


def rel_err(g: np.ndarray, ref: np.ndarray) -> float:
    """Largest |g - ref| relative to the largest |ref|."""
    return float(np.max(np.abs(g - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def gradcheck(
    backend: Backend,
    spec: mlp.Spec,
    *,
    n_samples: int = 8,
    reg: float = 0.01,
    reduction: str = "mean",
    seed: int = 0,
    eps: float = 1e-6,
    max_entries: int = 50,
) -> list[GradRow]:
    """Return one :class:`GradRow` per parameter of ``spec`` on ``backend``. At most
    ``max_entries`` entries per parameter (chosen with ``seed``) are compared with finite
    differences, each costing two forward passes; ``jax.grad`` compares them all."""
    params, X, T = problem(spec, n_samples, seed)
    xp = backend.xp
    _, grads = mlp.loss_and_grads(
        xp, backend.tree_asarray(params), backend.asarray(X), backend.asarray(T), spec, reg,
        reduction,
    )  # fmt: skip
    analytic = {k: backend.to_numpy(v).astype(np.float64) for k, v in grads.items()}
    factor = float(n_samples) if reduction == "sum" else 1.0

    b64 = (
        backend
        if backend.dtype_name == "float64"
        else select(backend.name, backend.device_label, "float64")
    )
    X64, T64 = b64.asarray(X), b64.asarray(T)

    def loss_at(p: dict[str, np.ndarray]) -> float:
        value = mlp.loss(b64.xp, b64.tree_asarray(p), X64, T64, spec, reg)
        return float(b64.to_numpy(value)) * factor

    oracle = _jax_grads(params, X, T, spec, reg, factor)
    rng = np.random.RandomState(seed + 1)
    rows = []
    for name, value in params.items():
        flat = np.arange(value.size)
        if value.size > max_entries:
            flat = np.sort(rng.choice(value.size, max_entries, replace=False))
        fd = np.empty(flat.size)
        got = analytic[name].reshape(-1)[flat]
        for j, idx in enumerate(flat):
            pos = np.unravel_index(idx, value.shape)
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][pos] += eps
            minus[name][pos] -= eps
            fd[j] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
        auto = None if oracle is None else rel_err(analytic[name], oracle[name])
        rows.append(GradRow(name, value.shape, int(flat.size), rel_err(got, fd), auto))
    return rows


def _jax_grads(
    params: dict[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    spec: mlp.Spec,
    reg: float,
    factor: float,
) -> dict[str, np.ndarray] | None:
    """Autodiff (``jax.grad``) of the same forward code on the CPU in float64, or None where no
    backend with autodiff is installed."""
    try:
        jb = autodiff("float64")
    except BackendUnavailableError:
        return None

    def total(p: Any) -> Any:
        return mlp.loss(jb.xp, p, jb.asarray(X), jb.asarray(T), spec, reg) * factor

    grads = jb.grad(total)(jb.tree_asarray(params))
    return {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}

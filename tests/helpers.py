"""Small host-side helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

from xpnet import data, init, mlp


def problem(spec: mlp.Spec, n: int = 7, seed: int = 1) -> tuple[dict, np.ndarray, np.ndarray]:
    """Return random host (params, X (n, n_in), T (n, n_out)) for ``spec``, biases non-zero."""
    rng = np.random.RandomState(seed)
    params = init.initial_params(spec, "glorot", rng)
    params = {
        k: v + (0.1 * rng.randn(*v.shape) if k.startswith("b") else 0) for k, v in params.items()
    }
    X = rng.randn(n, spec.sizes[0])
    n_out = spec.sizes[-1]
    y = rng.randint(0, max(n_out, 2), size=n)
    T = data.targets(y, max(n_out, 2), n_out)
    return params, X, T


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| relative to the largest |b| (or 1 when b is all zero)."""
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / scale)

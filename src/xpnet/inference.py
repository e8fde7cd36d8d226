"""Prediction: a fitted network's outputs on host inputs, a bounded batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xpnet import mlp, stream
from xpnet._typing import Params
from xpnet.backends import Backend
from xpnet.errors import DataError

PREDICT_BATCH = 65536
"""Rows per batch in :func:`predict`."""


def predict(
    backend: Backend,
    spec: Any,
    params: Params,
    X: np.ndarray,
    batch_size: int = PREDICT_BATCH,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Return the network's outputs (n, n_out) as float64 NumPy for host inputs X (n, n_in)
    (dense, or SciPy sparse: densified a batch at a time), ``batch_size`` rows at a time
    (``prepare`` applied to each batch first, e.g. scaling), so memory beyond X and the result
    stays bounded. ``params`` are device arrays; ``spec`` is the :class:`xpnet.mlp.Spec`."""
    out = np.empty((X.shape[0], spec.sizes[-1]))
    with backend.activate(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, X.shape[0], batch_size):
            rows = stream.rows(X, slice(start, start + batch_size))
            batch = backend.asarray(rows if prepare is None else prepare(rows))
            out[start : start + batch_size] = backend.to_numpy(
                mlp.predict_proba(backend.xp, params, batch, spec)
            )
    if not np.all(np.isfinite(out)):  # never hand back NaN as if it were a prediction
        row = int(np.argwhere(~np.isfinite(out))[0, 0])
        raise DataError(f"the model's outputs are NaN or infinite (first for row {row}): its "
                        "parameters are not finite, or the inputs lie far outside its training "
                        "data")  # fmt: skip
    return out

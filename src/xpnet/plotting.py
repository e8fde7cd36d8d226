"""Plots in the seeds' style. matplotlib is imported inside each function; inputs are NumPy arrays
and a ``predict(X) -> labels`` callable, so plotting never touches a backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xpnet.errors import DataError, MissingDependencyError


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "plotting needs matplotlib; pip install 'xpnet[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def boundary_grid(
    X: np.ndarray, step: float = 0.01, pad: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mesh ``(xx, yy)`` covering X (n, 2) with ``pad`` around it, spaced ``step``."""
    x_min, x_max = X[:, 0].min() - pad, X[:, 0].max() + pad
    y_min, y_max = X[:, 1].min() - pad, X[:, 1].max() + pad
    return np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))


def decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    title: str = "",
    step: float = 0.01,
) -> Path:
    """Write a PNG of predicted classes over a grid (filled Spectral contours) with the training
    points on top, as seed 000 draws it. X (n, 2), y (n,). Returns the path written."""
    if X.ndim != 2 or X.shape[1] != 2:
        raise DataError(f"a decision boundary needs 2-D inputs; X has shape {X.shape}")
    plt = _pyplot()
    xx, yy = boundary_grid(X, step)
    Z = np.asarray(predict(np.c_[xx.ravel(), yy.ravel()])).reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
    if title:
        ax.set_title(title)
    out = Path(path)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out

"""Plots in the seeds' style. matplotlib is imported inside each function; inputs are NumPy arrays
and a ``predict(X) -> labels`` callable, so plotting never touches a backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import writing
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


def formats() -> list[str]:
    """The file endings matplotlib can write (png, pdf, svg...)."""
    plt = _pyplot()
    fig = plt.figure()
    try:
        return sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)


def boundary_grid(
    X: np.ndarray, step: float = 0.01, pad: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mesh ``(xx, yy)`` covering X (n, 2) with ``pad`` around it, spaced ``step``."""
    x_min, x_max = X[:, 0].min() - pad, X[:, 0].max() + pad
    y_min, y_max = X[:, 1].min() - pad, X[:, 1].max() + pad
    return np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))


Predict = Callable[[np.ndarray], np.ndarray]


def check_2d(X: np.ndarray) -> None:
    """Refuse data a decision boundary cannot be drawn for (checked before training)."""
    if X.ndim != 2 or X.shape[1] != 2:
        raise DataError(
            f"a decision boundary needs 2-D inputs; X has shape {X.shape} (use --loss-plot)"
        )


def _draw_boundary(
    plt: Any,
    ax: Any,
    predict: Predict,
    X: np.ndarray,
    y: np.ndarray,
    step: float,
    feature_names: Sequence[str] | None,
) -> None:
    """Filled contours of the predicted class over a grid, the points on top, the axes named
    after the features (x1, x2 when unnamed) and a legend naming each class by its label."""
    xx, yy = boundary_grid(X, step)
    labels = np.asarray(predict(np.c_[xx.ravel(), yy.ravel()]))
    classes, codes = np.unique(np.concatenate([labels, np.asarray(y)]), return_inverse=True)
    Z = codes[: labels.size].reshape(xx.shape)
    top = max(int(codes.max()), 1)  # fixed colour per class, even if one class fills the grid
    levels = np.arange(top + 2) - 0.5
    ax.contourf(xx, yy, Z, levels=levels, cmap=plt.cm.Spectral, vmin=0, vmax=top, alpha=0.6)
    points = codes[labels.size :]
    for code in np.unique(points):  # one scatter a class: one legend entry each
        mask = points == code
        ax.scatter(X[mask, 0], X[mask, 1], c=np.full(mask.sum(), code), cmap=plt.cm.Spectral,
                   vmin=0, vmax=top, edgecolors="k", linewidths=0.5,
                   label=f"class {classes[code]}")  # fmt: skip
    names = list(feature_names) if feature_names is not None else ["x1", "x2"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(loc="best", fontsize="small", framealpha=0.8)


def _save(plt: Any, fig: Any, path: str | Path, dpi: int = 100) -> Path:
    out = Path(path)
    try:
        writing.replace(out, lambda fh: fig.savefig(fh, format=out.suffix.lstrip(".").lower(),
                                                    dpi=dpi, bbox_inches="tight"))  # fmt: skip
    finally:
        plt.close(fig)
    return out


def decision_boundary(
    predict: Predict,
    X: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    title: str = "",
    step: float = 0.01,
    feature_names: Sequence[str] | None = None,
) -> Path:
    """Write a PNG of predicted classes over a grid (filled Spectral contours) with the training
    points on top, as seed 000 draws it, its axes named ``feature_names`` (default x1, x2) and a
    legend of the classes. X (n, 2), y (n,). Returns the path written."""
    check_2d(X)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    _draw_boundary(plt, ax, predict, X, y, step, feature_names)
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)


def sweep_panels(
    panels: list[tuple[str, Predict]],
    X: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    step: float = 0.01,
    feature_names: Sequence[str] | None = None,
) -> Path:
    """Write seed 000's grid of decision boundaries: two panels per row, each ``(title,
    predict)``, labelled as :func:`decision_boundary` labels its one. X (n, 2), y (n,). Returns
    the path written."""
    check_2d(X)
    plt = _pyplot()
    rows = -(-len(panels) // 2)
    fig, axes = plt.subplots(rows, 2, figsize=(16, 6.4 * rows), squeeze=False)
    for ax, (title, predict) in zip(axes.ravel(), panels, strict=False):
        _draw_boundary(plt, ax, predict, X, y, step, feature_names)
        ax.set_title(title)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    return _save(plt, fig, path, dpi=60)


def loss_curve(
    losses: np.ndarray,
    path: str | Path,
    *,
    ylabel: str = "Loss",
    title: str = "",
    validation: Any = None,
) -> Path:
    """Write a PNG of the loss (passes,) against the pass number, and the ``validation`` loss
    (epochs,) beside it where given. Returns the path written."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(len(losses)), losses, linewidth=1, label="training")
    if validation is not None:
        ax.plot(np.arange(1, len(validation) + 1), validation, linewidth=1, label="validation")
        ax.legend(loc="best", fontsize="small")
    ax.set_xlabel("pass")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)

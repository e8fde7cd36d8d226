"""Data on the host: targets from class labels, scaling, R², and seed 001's toy set.

Checking a user's data is :mod:`xpnet.validation`'s job; everything here receives checked arrays,
and the front-ends move what it returns to the device once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xpnet import validation
from xpnet.errors import DataError

TOY_X = np.array([[1, 0, 0, 0], [1, 0, 1, 1], [0, 1, 0, 1]], dtype=np.float64)
"""Seed 001's toy inputs, samples × features (the seed stores their transpose)."""
TOY_Y = np.array([1, 1, 0])


def check_labels_in(y_index: np.ndarray, n_classes: int) -> None:
    """Raise DataError unless all integer labels lie in [0, n_classes)."""
    if y_index.size and (y_index.min() < 0 or y_index.max() >= n_classes):
        raise DataError(
            f"labels must lie in [0, {n_classes - 1}]; got {y_index.min()}..{y_index.max()}"
        )


def one_hot(y_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the (n, n_classes) float64 one-hot matrix of integer labels."""
    check_labels_in(y_index, n_classes)
    out = np.zeros((y_index.shape[0], n_classes))
    out[np.arange(y_index.shape[0]), y_index] = 1.0
    return out


def class_outputs(loss: str, n_classes: int) -> int:
    """The output units a classifier of ``loss`` has for ``n_classes`` classes: one per class,
    but one sigmoid unit for two classes with ``squared_error`` (seed 001)."""
    return 1 if loss == "squared_error" and n_classes == 2 else n_classes


def targets(y_index: np.ndarray, n_classes: int, n_outputs: int) -> np.ndarray:
    """Return targets (n, n_outputs): one column of 0/1 for a single sigmoid output, else one-hot."""
    if n_outputs == 1:
        check_labels_in(y_index, 2)
        return y_index.astype(np.float64)[:, None]
    return one_hot(y_index, n_classes)


def squared_residuals(T: np.ndarray, P: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Per target, the (weighted) sum of squared residuals (k,) of predictions P (n, k) of
    targets T (n, k): R²'s numerator, summed across processes where each holds some rows."""
    r = (T - P) ** 2
    return np.asarray(np.sum(r if w is None else w[:, None] * r, axis=0))


def r2(T: np.ndarray, w: np.ndarray | None, residual: np.ndarray) -> float:
    """R², the coefficient of determination, of targets T (n, k) (weights w (n,)) whose
    predictions left ``residual`` (:func:`squared_residuals`), averaged over the targets as
    scikit-learn's ``r2_score`` does: 1 - residual / total around the (weighted) mean; a
    constant target scores 1 if predicted exactly, else 0."""
    weights = np.ones(T.shape[0]) if w is None else w
    mean = weights @ T / np.sum(weights)
    total = weights @ (T - mean) ** 2
    exact = np.where(residual == 0, 1.0, 0.0)
    per_target = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), exact)
    return float(np.mean(per_target))


def r2_score(T: np.ndarray, P: np.ndarray, w: np.ndarray | None = None) -> float:
    """:func:`r2` of predictions P (n, k) of targets T (n, k), all rows at hand."""
    return r2(T, w, squared_residuals(T, P, w))


def toy() -> tuple[np.ndarray, np.ndarray]:
    """Return seed 001's toy set: X (3, 4), y (3,)."""
    return TOY_X.copy(), TOY_Y.copy()


SCALERS = ("standard", "minmax-global")
"""``standard``: each column to mean 0, standard deviation 1; ``minmax-global``: seed 001's
``X -= X.min(); X /= X.max()`` with two scalars for the whole array."""


def _alone(a: np.ndarray) -> np.ndarray:
    return a[None]


def fit_scaler(
    kind: str, X: np.ndarray, gather: Callable[[np.ndarray], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(offset (d,), factor (d,))`` such that ``(X - offset) / factor`` is scaled.
    ``gather(a) -> (parts, *a.shape)`` collects a statistic from every part of a data set split
    over processes (:meth:`xpnet.backends.Backend.gather`); X is one part. Default: X is all."""
    gather = gather or _alone
    validation.one_of(SCALERS, kind, "scale")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by column
        if kind == "standard":
            n = gather(np.array(X.shape[0])).sum()
            offset = gather(X.sum(axis=0)).sum(axis=0) / n
            factor = np.sqrt(gather(np.square(X - offset).sum(axis=0)).sum(axis=0) / n)
            factor = np.where(factor > 0, factor, 1.0)  # a constant column stays constant
        else:
            low = gather(X.min(initial=np.inf)).min()
            span = gather(X.max(initial=-np.inf)).max() - low
            offset = np.full(X.shape[1], low)
            factor = np.full(X.shape[1], span if span > 0 else 1.0)
        offset, factor = np.asarray(offset, np.float64), np.asarray(factor, np.float64)
    bad = ~(np.isfinite(offset) & np.isfinite(factor))
    if bad.any():
        column = int(np.argmax(bad))
        raise DataError(f"X column {column} cannot be scaled ({kind}): its values overflow "
                        "float64 arithmetic (magnitudes near 1e308); divide it by a large "
                        "constant first")  # fmt: skip
    return offset, factor


def apply_scale(xp: Any, X: Any, offset: Any, factor: Any) -> Any:
    """``(X - offset) / factor`` in the namespace ``xp``: the scaling a model applies to its
    inputs (on the host, and inside an exported ONNX graph)."""
    return (X - offset) / factor


def scale(X: np.ndarray, offset: np.ndarray, factor: np.ndarray, first_row: int = 0) -> np.ndarray:
    """Return :func:`apply_scale` on the host, or raise DataError naming the first value that
    comes out NaN or infinite (an input far outside the data the scaling was fitted on)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(apply_scale(np, X, offset, factor))
    if not np.all(np.isfinite(out)):
        row, col = np.argwhere(~np.isfinite(out))[0]
        raise DataError(f"X column {col} overflows when scaled (row {first_row + row}: "
                        f"{validation.show(X[row, col].item())}); its values lie far outside the "
                        "data the scaling was fitted on")  # fmt: skip
    return out


def minmax_scale_global(X: np.ndarray) -> np.ndarray:
    """Return ``(X - X.min()) / (X - X.min()).max()``: seed 001's scaling by two global scalars."""
    return scale(X, *fit_scaler("minmax-global", X))

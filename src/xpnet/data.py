"""Data at the boundary: validation, label encoding, targets, and the seeds' data sets.

Everything here works on the host with NumPy; the model moves validated arrays to the device once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xpnet.errors import ConfigError, DataError

TOY_X = np.array([[1, 0, 0, 0], [1, 0, 1, 1], [0, 1, 0, 1]], dtype=np.float64)
"""Seed 001's toy inputs, samples × features (the seed stores their transpose)."""
TOY_Y = np.array([1, 1, 0])


def check_X(
    X: Any, n_features: int | None = None, name: str = "X", rows: slice | None = None
) -> np.ndarray:
    """Return X as a float64 (n_samples, n_features) array, or raise DataError saying what is wrong.
    With ``rows``, only those rows are converted, checked for NaN/inf and returned (a
    memory-mapped X is then read in those rows only); its shape is checked whole."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} could not be read as a 2-D numeric array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}"
            + ("; use X.reshape(-1, 1) for a single feature" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(
            f"{name} is empty (shape {arr.shape}); need at least one sample and feature"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"{name} has {arr.shape[1]} features; the model expects {n_features}")
    first = 0 if rows is None else min(rows.start, arr.shape[0])
    arr = (arr if rows is None else arr[rows]).astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"{name} holds NaN or infinity (first at row {first + row}, column {col})")
    return arr


def encode_labels(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_index (n,), classes (k,))`` for class labels y of length n_samples (k >= 2)."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"y must be 1-D (n_samples,); got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise DataError(f"X has {n_samples} samples but y has {arr.shape[0]}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError("y holds NaN or infinity")
    classes, index = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        raise DataError(f"y has only one class ({classes[0]!r}); need at least two")
    return index.astype(np.int64), classes


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


def targets(y_index: np.ndarray, n_classes: int, n_outputs: int) -> np.ndarray:
    """Return targets (n, n_outputs): one column of 0/1 for a single sigmoid output, else one-hot."""
    if n_outputs == 1:
        check_labels_in(y_index, 2)
        return y_index.astype(np.float64)[:, None]
    return one_hot(y_index, n_classes)


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
    if kind == "standard":
        n = gather(np.array(X.shape[0])).sum()
        offset = gather(X.sum(axis=0)).sum(axis=0) / n
        factor = np.sqrt(gather(np.square(X - offset).sum(axis=0)).sum(axis=0) / n)
        factor = np.where(factor > 0, factor, 1.0)  # a constant column stays constant
    elif kind == "minmax-global":
        low = gather(X.min(initial=np.inf)).min()
        span = gather(X.max(initial=-np.inf)).max() - low
        offset, factor = np.full(X.shape[1], low), np.full(X.shape[1], span if span > 0 else 1.0)
    else:
        raise ConfigError(f"unknown scale {kind!r}; valid: {', '.join(SCALERS)} (or None)")
    return np.asarray(offset, dtype=np.float64), np.asarray(factor, dtype=np.float64)


def minmax_scale_global(X: np.ndarray) -> np.ndarray:
    """Return ``(X - X.min()) / (X - X.min()).max()``: seed 001's scaling by two global scalars."""
    offset, factor = fit_scaler("minmax-global", X)
    return np.asarray((X - offset) / factor)

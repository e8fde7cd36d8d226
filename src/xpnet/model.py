"""The user-facing network: choose an architecture and a backend, ``fit``, ``predict``.

``Network`` validates everything once at the boundary, moves data and the host-drawn initial weights
to the backend's device, and hands pure math to :mod:`xpnet.train`. Fitted attributes end in ``_``
and are NumPy arrays, whatever the backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xpnet import data, loop, mlp, optim
from xpnet.backends import Backend, check_dtype, select
from xpnet.errors import ConfigError, DataError, lookup
from xpnet.init import INITS, initial_params


def check_hidden(hidden: Sequence[int] | int) -> tuple[int, ...]:
    """Return hidden layer sizes as a tuple of positive ints (empty: no hidden layer)."""
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ConfigError(f"hidden layer sizes must be positive integers; got {list(sizes)}")
    return tuple(int(s) for s in sizes)


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}; got {value!r}")
    return float(value)


class Network:
    """A dense classifier trained by full-batch gradient descent with hand-written backprop.

    ``hidden`` are the hidden layer sizes (``()`` for softmax/logistic regression). ``loss`` is
    ``"cross_entropy"`` (softmax outputs, one per class) or ``"squared_error"`` (sigmoid outputs: one
    for two classes, else one per class). ``init_seed`` is an int, or a ``numpy.random.RandomState``
    to keep drawing from one stream as seed 001 does. ``backend``/``device``/``dtype`` choose where
    the math runs (see :func:`xpnet.backends.select`).
    """

    def __init__(
        self,
        hidden: Sequence[int] | int = (3,),
        *,
        activation: str = "tanh",
        loss: str = "cross_entropy",
        bias: bool = True,
        init: str = "britz",
        init_seed: int | np.random.RandomState = 0,
        backend: str | None = None,
        device: str | int | None = None,
        dtype: str = "float64",
    ) -> None:
        self.hidden = check_hidden(hidden)
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.init = init
        self.init_seed = init_seed
        self.backend = backend
        self.device = device
        self.dtype = check_dtype(dtype)
        mlp.Spec((1, *self.hidden, 1), activation, loss, bias)  # fail on bad names now, not in fit
        lookup(INITS, init, "init")

    # -- fitting -------------------------------------------------------------------------------
    def _n_outputs(self, n_classes: int) -> int:
        return 1 if self.loss == "squared_error" and n_classes == 2 else n_classes

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int = 20000,
        lr: float = 0.01,
        reg: float = 0.01,
        reduction: str = "sum",
        record: str = "after",
        chunk_size: int | None = None,
        on_chunk: loop.ChunkCallback | None = None,
    ) -> Network:
        """Train on X (n_samples, n_features) and labels y (n_samples,) for ``epochs`` full-batch
        passes of ``W -= lr * dW``. Sets ``classes_``, ``params_``, ``loss_curve_`` (epochs,),
        ``fit_seconds_`` and ``backend_``. Returns self."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be a positive integer; got {epochs!r}")
        lr = _positive("lr", lr)
        reg = _positive("reg", reg, allow_zero=True)
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size!r}")
        X_host = data.check_X(X)
        y_index, classes = data.encode_labels(y, X_host.shape[0])
        n_out = self._n_outputs(classes.size)
        spec = mlp.Spec(
            (X_host.shape[1], *self.hidden, n_out), self.activation, self.loss, self.bias
        )
        host_params = initial_params(spec, self.init, self.init_seed)
        backend = select(self.backend, self.device, self.dtype)

        self.backend_ = backend
        self.spec_ = spec
        self.classes_ = classes
        self.initial_params_ = host_params
        X_dev = backend.asarray(X_host)
        T_dev = backend.asarray(data.targets(y_index, classes.size, n_out))
        params, history = loop.fit(
            backend, spec, backend.tree_asarray(host_params), X_dev, T_dev,
            optimizer=optim.sgd(lr), epochs=epochs, reg=reg, reduction=reduction,
            record=record, chunk_size=chunk_size, on_chunk=on_chunk,
        )  # fmt: skip
        self.params_ = backend.tree_to_numpy(params)
        self.loss_curve_ = history.losses
        self.fit_seconds_ = history.seconds
        return self

    # -- using a fitted network -----------------------------------------------------------------
    def _fitted(self) -> Backend:
        if not hasattr(self, "params_"):
            raise ConfigError("this Network is not fitted yet; call fit(X, y) first")
        return self.backend_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities (n_samples, n_classes) as a NumPy array."""
        backend = self._fitted()
        X_host = data.check_X(X, self.spec_.sizes[0])
        xp = backend.xp
        out = backend.to_numpy(
            mlp.predict_proba(
                xp, backend.tree_asarray(self.params_), backend.asarray(X_host), self.spec_
            )
        ).astype(np.float64)
        if out.shape[1] == 1:  # one sigmoid unit: P(class 1)
            out = np.concatenate([1 - out, out], axis=1)
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted class labels (n_samples,) (argmax of the probabilities; 0.5 threshold
        for a single sigmoid output)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, X: Any, y: Any) -> float:
        """Return the accuracy of ``predict(X)`` against labels y."""
        y_arr = np.asarray(y)
        if y_arr.shape[0] != np.asarray(X).shape[0]:
            raise DataError(f"X has {np.asarray(X).shape[0]} samples but y has {y_arr.shape[0]}")
        return float(np.mean(self.predict(X) == y_arr))

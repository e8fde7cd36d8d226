"""The user-facing network: choose an architecture and a backend, ``fit``, ``predict``.

``Network`` validates everything once at the boundary, moves data and the host-drawn initial weights
to the backend's device, and hands pure math to :mod:`xpnet.train`. Fitted attributes end in ``_``
and are NumPy arrays, whatever the backend.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import data, loop, mlp, optim, train
from xpnet.backends import Backend, check_dtype, data_parallel, select
from xpnet.errors import (
    ConfigError,
    DataError,
    DivergenceError,
    ModelFileError,
    TrainingInterrupted,
    check_number,
    lookup,
)
from xpnet.init import INITS, initial_params


def check_hidden(hidden: Sequence[int] | int) -> tuple[int, ...]:
    """Return hidden layer sizes as a tuple of positive ints (empty: no hidden layer)."""
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ConfigError(f"hidden layer sizes must be positive integers; got {list(sizes)}")
    return tuple(int(s) for s in sizes)


class Network:
    """A dense classifier trained by full-batch gradient descent with hand-written backprop.

    ``hidden`` are the hidden layer sizes (``()`` for softmax/logistic regression). ``loss`` is
    ``"cross_entropy"`` (softmax outputs, one per class) or ``"squared_error"`` (sigmoid outputs: one
    for two classes, else one per class). ``init_seed`` is an int, or a ``numpy.random.RandomState``
    to keep drawing from one stream as seed 001 does. ``scale`` (``None``, ``"standard"`` or
    ``"minmax-global"``) is fitted on the training inputs and applied again in ``predict``.
    ``backend``/``device``/``dtype`` choose where the math runs (see :func:`xpnet.backends.select`).
    ``data_parallel=True`` (JAX) splits the samples over ``devices`` devices (default: all JAX
    sees), keeps a copy of the parameters on each and sums the gradients across them inside the
    compiled loop (see :func:`xpnet.backends.data_parallel`): the same results as one device.
    In a multi-process job (:func:`xpnet.backends.distributed`) every process passes the whole
    data set (a memory map, say) and reads, checks and trains on its own rows of X only.
    ``info`` is a JSON-serialisable dict of notes kept in model files (recipes store themselves).
    """

    fit_settings_: dict[str, Any]
    """The training settings (epochs, lr, reg, reduction, record, optimizer)."""
    trained_on_: dict[str, Any]
    """Set by :meth:`load`: the backend, version and device the file was trained on."""

    def __init__(
        self,
        hidden: Sequence[int] | int = (3,),
        *,
        activation: str = "tanh",
        loss: str = "cross_entropy",
        bias: bool = True,
        init: str = "britz",
        init_seed: int | np.random.RandomState = 0,
        scale: str | None = None,
        backend: str | None = None,
        device: str | int | None = None,
        dtype: str = "float64",
        data_parallel: bool = False,
        devices: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.hidden = check_hidden(hidden)
        self.info = dict(info or {})
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.init = init
        self.init_seed = init_seed
        if scale is not None:
            lookup(dict.fromkeys(data.SCALERS), scale, "scale")
        self.scale = scale
        self.backend = backend
        self.device = device
        self.dtype = check_dtype(dtype)
        _check_devices(devices, data_parallel)
        self.data_parallel = bool(data_parallel)
        self.devices = devices
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
        interruptible: bool = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
    ) -> Network:
        """Train on X (n_samples, n_features) and labels y (n_samples,) for ``epochs`` full-batch
        passes of ``W -= lr * dW``. Sets ``classes_``, ``params_``, ``loss_curve_`` (epochs,),
        ``fit_seconds_`` and ``backend_``. Returns self.

        ``on_chunk(first_pass, losses, params)`` is called after every ``chunk_size`` passes.
        With ``checkpoint`` and ``checkpoint_every``, the model so far is saved (atomically) to
        ``checkpoint`` every that many passes; :meth:`resume` continues from such a file. With
        ``interruptible``, Ctrl-C stops after the current chunk: the network keeps the
        parameters trained so far and :class:`~xpnet.errors.TrainingInterrupted` is raised. On
        :class:`~xpnet.errors.DivergenceError` it keeps the last good parameters likewise."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be a positive integer; got {epochs!r}")
        lr = check_number("lr", lr)
        reg = check_number("reg", reg, inclusive=True)
        _check_chunking(chunk_size, checkpoint, checkpoint_every)
        # data-parallel: placed first, for a multi-process job's processes to check their rows
        backend = self._parallel() if self.data_parallel else None
        part = _job_part(backend, X)
        X_host = _agreed(backend, lambda: data.check_X(X, rows=part))
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        y_index, classes = _agreed(backend, lambda: data.encode_labels(y, n))
        if self.scale is not None:
            gather = None if backend is None else backend.gather  # a job: statistics of all rows
            self.scale_offset_, self.scale_factor_ = data.fit_scaler(self.scale, X_host, gather)
            X_host = self._scaled(X_host)
        n_out = self._n_outputs(classes.size)
        spec = mlp.Spec(
            (X_host.shape[1], *self.hidden, n_out), self.activation, self.loss, self.bias
        )
        host_params = initial_params(spec, self.init, self.init_seed)
        self.backend_ = backend or select(self.backend, self.device, self.dtype)
        self.spec_ = spec
        self.classes_ = classes
        self.initial_params_ = host_params
        self.fit_settings_ = {"epochs": epochs, "lr": lr, "reg": reg, "reduction": reduction,
                              "record": record, "optimizer": "sgd"}  # fmt: skip
        return self._run(X_host, y_index, n, host_params, np.zeros(0), epochs, chunk_size,
                         on_chunk, interruptible, checkpoint, checkpoint_every)  # fmt: skip

    def _parallel(self) -> Backend:
        """The data-parallel backend to train on (see :func:`xpnet.backends.data_parallel`)."""
        return data_parallel(select(self.backend, self.device, self.dtype), self.devices)

    def resume(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int | None = None,
        chunk_size: int | None = None,
        on_chunk: loop.ChunkCallback | None = None,
        interruptible: bool = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
    ) -> Network:
        """Continue training a fitted or loaded network on the same X, y with its own settings
        (``fit_settings_``) until ``epochs`` passes in all (default: the epochs it was asked
        for). The result equals an uninterrupted :meth:`fit` (bit for bit on NumPy). Pass numbers
        given to ``on_chunk`` continue from ``len(loss_curve_)``. Returns self."""
        self._fitted()
        settings = self.fit_settings_
        total = settings["epochs"] if epochs is None else epochs
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ConfigError(f"epochs must be a positive integer; got {total!r}")
        _check_chunking(chunk_size, checkpoint, checkpoint_every)
        done = len(self.loss_curve_)
        if total <= done:
            raise ConfigError(f"this network has trained {done} passes already; ask for more "
                              f"than {done} epochs to resume")  # fmt: skip
        if self.data_parallel and self.backend_.shards == 1:  # a loaded network: one device
            self.backend_ = self._parallel()
        backend = self.backend_ if self.data_parallel else None
        part = _job_part(backend, X)
        X_host = _agreed(backend, lambda: data.check_X(X, self.spec_.sizes[0], rows=part))
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        y_index = _agreed(backend, lambda: self._label_index(y, n))
        self.fit_settings_ = {**settings, "epochs": total}
        return self._run(self._scaled(X_host), y_index, n, self.params_, self.loss_curve_,
                         total - done, chunk_size, on_chunk, interruptible, checkpoint,
                         checkpoint_every)  # fmt: skip

    def _run(
        self,
        X_host: np.ndarray,
        y_index: np.ndarray,
        rows: int,
        host_params: dict[str, np.ndarray],
        prior: np.ndarray,
        epochs: int,
        chunk_size: int | None,
        on_chunk: loop.ChunkCallback | None,
        interruptible: bool,
        checkpoint: str | Path | None,
        checkpoint_every: int | None,
    ) -> Network:
        """Train ``epochs`` passes after the ``prior`` losses; keep what was trained on error.
        X_host holds this process's rows of the ``rows`` samples (all of them but in a
        multi-process job); y_index the labels of all."""
        backend, spec, settings = self.backend_, self.spec_, self.fit_settings_
        part = backend.span(rows)
        T_host = data.targets(y_index[part], self.classes_.size, spec.sizes[-1])
        # split over the devices when data-parallel (padded, with weights, where rows don't divide)
        (X_dev, T_dev), weights = backend.asarray_rows(X_host, T_host, rows=rows)
        offset = prior.size
        pieces = [prior]

        def chunk_done(first: int, losses: np.ndarray, params: Any) -> None:
            pieces.append(losses)
            passes = offset + first + losses.size
            if on_chunk is not None:
                on_chunk(offset + first, losses, params)
            if checkpoint is not None and checkpoint_every and passes % checkpoint_every == 0:
                self.params_ = backend.tree_to_numpy(params)
                self.loss_curve_ = np.concatenate(pieces)
                self.save(checkpoint)

        if checkpoint is not None and checkpoint_every:  # chunks must end on checkpoint passes
            chunk_size = math.gcd(checkpoint_every, chunk_size or train.DEFAULT_CHUNK)
        try:
            with loop.stop_signals() if interruptible else _no_stop() as stopped:
                params, history = loop.fit(
                    backend, spec, backend.tree_asarray(host_params), X_dev, T_dev,
                    optimizer=optim.sgd(settings["lr"]), epochs=epochs, reg=settings["reg"],
                    reduction=settings["reduction"], record=settings["record"],
                    chunk_size=chunk_size, on_chunk=chunk_done, stop=stopped, weights=weights,
                )  # fmt: skip
        except (DivergenceError, TrainingInterrupted) as exc:
            if isinstance(exc, TrainingInterrupted):
                exc.signum = getattr(stopped, "signum", None)
            self.params_ = backend.tree_to_numpy(exc.params)  # type: ignore[arg-type]
            self.loss_curve_ = np.concatenate([prior, np.asarray(exc.losses, dtype=np.float64)])
            self.fit_seconds_ = math.nan
            raise
        self.params_ = backend.tree_to_numpy(params)
        self.loss_curve_ = np.concatenate([prior, history.losses])
        self.fit_seconds_ = history.seconds
        return self

    def _scaled(self, X_host: np.ndarray) -> np.ndarray:
        if getattr(self, "scale_offset_", None) is None:
            return X_host
        return np.asarray((X_host - self.scale_offset_) / self.scale_factor_)

    # -- using a fitted network -----------------------------------------------------------------
    def _fitted(self) -> Backend:
        if not hasattr(self, "params_"):
            raise ConfigError("this Network is not fitted yet; call fit(X, y) first")
        return self.backend_

    def _predictor(self) -> Backend:
        """Where predictions run: one device (this process's), also after data-parallel fits."""
        backend = self._fitted()
        return backend if backend.shards == 1 else select(self.backend, self.device, self.dtype)

    def predict_proba(self, X: Any, *, batch_size: int = loop.PREDICT_BATCH) -> np.ndarray:
        """Return class probabilities (n_samples, n_classes) as a float64 NumPy array, computed
        ``batch_size`` rows at a time: memory beyond X and the result stays bounded."""
        backend = self._predictor()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
        X_host = data.check_X(X, self.spec_.sizes[0])
        params = backend.tree_asarray(self.params_)
        out = loop.predict(backend, self.spec_, params, X_host, batch_size, self._scaled)
        if out.shape[1] == 1:  # one sigmoid unit: P(class 1)
            out = np.concatenate([1 - out, out], axis=1)
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted class labels (n_samples,) (argmax of the probabilities; 0.5 threshold
        for a single sigmoid output)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, X: Any, y: Any) -> float:
        """Return the accuracy of ``predict(X)`` against labels y. In a multi-process job
        (trained so), each process predicts its own rows and the counts are summed."""
        y_arr = np.asarray(y)
        n = np.shape(X)[0] if np.ndim(X) else 0
        if y_arr.shape[0] != n:
            raise DataError(f"X has {n} samples but y has {y_arr.shape[0]}")
        backend = self._fitted()
        part = _job_part(backend, X)
        if part is None:
            return float(np.mean(self.predict(X) == y_arr))
        local = _agreed(backend, lambda: data.check_X(X, self.spec_.sizes[0], rows=part))
        right = int(np.sum(self.predict(local) == y_arr[part]))
        return float(backend.gather(np.array(right)).sum() / n)

    def _label_index(self, y: Any, n_samples: int) -> np.ndarray:
        """Return the index in ``classes_`` of each label in y (n_samples,)."""
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or y_arr.shape[0] != n_samples:
            raise DataError(f"X has {n_samples} samples but y has shape {y_arr.shape}")
        index = np.searchsorted(self.classes_, y_arr)
        known = (index < self.classes_.size) & (
            self.classes_[np.minimum(index, self.classes_.size - 1)] == y_arr
        )
        if not np.all(known):
            unknown = np.unique(y_arr[~known])[:5].tolist()
            raise DataError(
                f"labels {unknown} are not among the model's classes {self.classes_.tolist()}"
            )
        return np.asarray(index, dtype=np.int64)

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Return ``{"accuracy", "loss", "n_samples"}`` on labelled data; ``loss`` is the mean data
        loss of the model's output (no weight penalty). Labels must be among ``classes_``."""
        backend = self._predictor()
        X_host = data.check_X(X, self.spec_.sizes[0])
        index = self._label_index(y, X_host.shape[0])
        proba = self.predict_proba(X_host)
        T = data.targets(index, self.classes_.size, self.spec_.sizes[-1])
        value = mlp.loss(backend.xp, backend.tree_asarray(self.params_),
                         backend.asarray(self._scaled(X_host)), backend.asarray(T), self.spec_)  # fmt: skip
        loss = float(backend.to_numpy(value))
        return {"accuracy": float(np.mean(index == proba.argmax(1))), "loss": loss,
                "n_samples": int(X_host.shape[0])}  # fmt: skip

    # -- model files ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted network to one portable file (see :mod:`xpnet.persist`): parameters,
        classes, scaling and loss curve as arrays; architecture, dtype, training settings and the
        backend it was trained on as JSON. Written atomically. Returns the path."""
        backend = self._fitted()
        classes = self.classes_
        if classes.dtype.kind not in "biufU":
            classes = classes.astype(str)
        arrays = {f"param.{k}": np.asarray(v) for k, v in self.params_.items()}
        arrays["classes"] = classes
        arrays["loss_curve"] = np.asarray(self.loss_curve_, dtype=np.float64)
        if getattr(self, "scale_offset_", None) is not None:
            arrays["scale.offset"] = self.scale_offset_
            arrays["scale.factor"] = self.scale_factor_
        meta = {
            "xpnet_version": _version(),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "architecture": {
                "sizes": list(self.spec_.sizes),
                "activation": self.activation,
                "loss": self.loss,
                "bias": self.bias,
            },
            "init": self.init,
            "init_seed": self.init_seed if isinstance(self.init_seed, int) else None,
            "scale": self.scale,
            "dtype": backend.dtype_name,
            "data_parallel": {"on": self.data_parallel, "devices": self.devices},
            "training": {**getattr(self, "fit_settings_", {}), "passes": len(self.loss_curve_)},
            "info": self.info,
            "trained_on": {
                "backend": backend.name,
                "version": backend.version,
                "device": backend.device_label,
            },
        }
        from xpnet import persist  # hashing, JSON and zip files: loaded when a file is touched

        return persist.write(path, arrays, meta)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        backend: str | None = None,
        device: str | int | None = None,
        dtype: str | None = None,
        data_parallel: bool | None = None,
        devices: int | None = None,
    ) -> Network:
        """Read a file written by :meth:`save` onto ``backend``/``device`` (default: as
        :func:`xpnet.backends.select` chooses here, whatever the file was trained on) in ``dtype``
        (default: the file's). :meth:`resume` trains data-parallel (on ``devices``) if the file
        was, unless ``data_parallel`` says otherwise; prediction always runs on one device.
        Raises :class:`~xpnet.errors.ModelFileError` on a bad file."""
        from xpnet import persist

        arrays, meta = persist.read(path)
        parallel = meta.get("data_parallel")
        if data_parallel is None:  # as the file was trained
            data_parallel = isinstance(parallel, dict) and bool(parallel.get("on"))
            if data_parallel and devices is None:
                devices = parallel.get("devices")  # type: ignore[union-attr]
        _check_devices(devices, data_parallel)
        try:
            arch = meta["architecture"]
            sizes = tuple(int(s) for s in arch["sizes"])
            net = cls(
                sizes[1:-1], activation=arch["activation"], loss=arch["loss"],
                bias=bool(arch["bias"]), init=meta.get("init", "britz"),
                init_seed=meta.get("init_seed") or 0, scale=meta.get("scale"),
                backend=backend, device=device, dtype=dtype or meta["dtype"],
                data_parallel=data_parallel, devices=devices,
                info=meta.get("info") or {},
            )  # fmt: skip
            spec = mlp.Spec(sizes, arch["activation"], arch["loss"], bool(arch["bias"]))
            params = {k: arrays[f"param.{k}"] for k in spec.param_shapes()}
            classes = arrays["classes"]
        except (KeyError, TypeError, ValueError) as exc:  # ConfigError included
            raise ModelFileError(f"{str(path)!r} has an incomplete description: {exc!r}") from None
        for k, shape in spec.param_shapes().items():
            if params[k].shape != shape:
                raise ModelFileError(f"{str(path)!r}: {k} has shape {params[k].shape}, not {shape}")
        net.backend_ = select(net.backend, net.device, net.dtype)
        net.spec_ = spec
        net.classes_ = classes
        net.params_ = {k: v.astype(net.dtype) for k, v in params.items()}
        net.loss_curve_ = arrays.get("loss_curve", np.zeros(0))
        net.fit_settings_ = dict(meta.get("training", {}))
        net.fit_seconds_ = math.nan
        net.trained_on_ = dict(meta.get("trained_on", {}))
        if "scale.offset" in arrays:
            net.scale_offset_, net.scale_factor_ = arrays["scale.offset"], arrays["scale.factor"]
        return net


def _job_part(backend: Backend | None, X: Any) -> slice | None:
    """The rows of X this process trains on in a multi-process job; None otherwise (all)."""
    if backend is None or backend.processes == 1:
        return None
    shape = np.shape(X)
    return backend.span(shape[0]) if len(shape) == 2 else None  # else check_X raises


def _agreed(backend: Backend | None, check: Callable[[], Any]) -> Any:
    """Return ``check()``; in a multi-process job, every process raises if one's data failed it
    (the others would wait for it in the first collective)."""
    if backend is None or backend.processes == 1:
        return check()
    try:
        result, failure = check(), None
    except DataError as exc:
        result, failure = None, exc
    failed = backend.gather(np.array(failure is not None))
    if failure is not None:
        raise failure
    if failed.any():
        raise DataError(f"process {int(np.argmax(failed))} of the job found its rows of the data "
                        "invalid (its error says why)")  # fmt: skip
    return result


def _check_devices(devices: int | None, data_parallel: bool) -> None:
    if devices is not None and not data_parallel:
        raise ConfigError("devices (--devices) is the device count of data-parallel training; "
                          "ask for data_parallel=True (--data-parallel) with it")  # fmt: skip


def _check_chunking(
    chunk_size: int | None, checkpoint: str | Path | None, checkpoint_every: int | None
) -> None:
    for name, value in (("chunk_size", chunk_size), ("checkpoint_every", checkpoint_every)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    if (checkpoint is None) != (checkpoint_every is None):
        raise ConfigError("checkpoint and checkpoint_every go together: give both or neither")


def _no_stop() -> contextlib.AbstractContextManager[loop.Stopper]:
    return contextlib.nullcontext(loop.Stopper())


def _version() -> str:
    from xpnet import __version__

    return __version__

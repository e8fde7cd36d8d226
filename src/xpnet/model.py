"""The user-facing network: choose an architecture and a backend, ``fit``, ``predict``.

``Network`` checks everything once at the boundary (:mod:`xpnet.validation`), draws the initial
weights on the host, and translates its settings into the training engine's terms
(:mod:`xpnet.engine`): a run, a feed (full batch by default, mini-batches with ``batch_size``) and
plug-ins (checkpoints, Ctrl-C, the caller's own). Its defaults suit any data set, as
scikit-learn's do: mean loss, an initialisation suited to the activation, a small L2 term; the
seeds' settings are recipes (:mod:`xpnet.recipes`). Fitted attributes end in ``_`` and are NumPy
arrays, whatever the backend.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import data, engine, mlp, optim, parallel, validation
from xpnet._typing import HostParams, Tree
from xpnet.backends import Backend, select
from xpnet.callbacks import Callback, Checkpoint, Interrupt, OnChunk, stop_signals
from xpnet.errors import (
    ConfigError,
    DivergenceError,
    ModelFileError,
    TrainingInterrupted,
)
from xpnet.init import INITS, initial_params
from xpnet.train import RECORDS, Objective

CLASSIFICATION_LOSSES = ("cross_entropy", "squared_error")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adam": 0.001, "adamw": 0.001}
"""The learning rate a named optimizer gets when ``lr`` is not given."""


class Network:
    """A dense classifier trained by hand-written backpropagation on any backend.

    ``hidden`` are the hidden layer sizes (``()`` for softmax/logistic regression). ``loss`` is
    ``"cross_entropy"`` (softmax outputs, one per class) or ``"squared_error"`` (sigmoid outputs: one
    for two classes, else one per class; :meth:`predict_proba` then returns the sigmoid outputs
    normalised into class probabilities). ``init`` names the initial weights (``auto``: He for
    relu-like activations, Glorot otherwise); ``init_seed`` is an int, or a
    ``numpy.random.RandomState`` to keep drawing from one stream as seed 001 does. ``scale``
    (``None``, ``"standard"`` or ``"minmax-global"``) is fitted on the training inputs and applied
    again in ``predict``. ``backend``/``device``/``dtype`` choose where the math runs (see
    :func:`xpnet.backends.select`). ``data_parallel=True`` (JAX) splits the samples over
    ``devices`` devices (default: all JAX sees), keeps a copy of the parameters on each and sums
    the gradients across them inside the compiled loop (see :func:`xpnet.parallel.data_parallel`):
    the same results as one device. In a multi-process job (:func:`xpnet.parallel.distributed`)
    every process passes the whole data set (a memory map, say) and reads, checks and trains on
    its own rows of X only (full batch). ``info`` is a JSON-serialisable dict of notes kept in
    model files (recipes store themselves).
    """

    fit_settings_: dict[str, Any]
    """The training settings: epochs, optimizer (its description), reg, reduction, record,
    batch_size, shuffle, shuffle_seed, loss_every, stream."""
    trained_on_: dict[str, Any]
    """Set by :meth:`load`: the backend, version and device the file was trained on."""

    def __init__(
        self,
        hidden: Sequence[int] | int | str = (100,),
        *,
        activation: str = "relu",
        loss: str = "cross_entropy",
        bias: bool = True,
        init: str = "auto",
        init_seed: int | np.random.RandomState = 0,
        scale: str | None = None,
        backend: str | None = None,
        device: str | int | None = None,
        dtype: str = "float64",
        data_parallel: bool = False,
        devices: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.hidden = validation.hidden(hidden)
        self.info = dict(info or {})
        self.activation = activation
        self.loss = loss
        self.bias = validation.flag("bias", bias)
        self.init = init
        if not isinstance(init_seed, np.random.RandomState):
            validation.integer("init_seed", init_seed, 0)
        self.init_seed = init_seed
        if scale is not None:
            validation.one_of(data.SCALERS, scale, "scale")
        self.scale = scale
        self.backend = backend
        self.device = device
        self.dtype = validation.dtype(dtype)
        self.data_parallel = validation.flag("data_parallel", data_parallel)
        self.devices = validation.devices(devices, self.data_parallel)
        mlp.Spec((1, *self.hidden, 1), activation, loss, bias)  # fail on bad names now, not in fit
        if loss not in CLASSIFICATION_LOSSES:
            raise ConfigError(f"loss {loss!r} is for regression (MLPRegressor); a Network classifies "
                              f"with {' or '.join(CLASSIFICATION_LOSSES)}")  # fmt: skip
        validation.choice(INITS, init, "init")

    # -- fitting -------------------------------------------------------------------------------
    def _n_outputs(self, n_classes: int) -> int:
        return 1 if self.loss == "squared_error" and n_classes == 2 else n_classes

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        epochs: int = 200,
        optimizer: str | optim.Optimizer = "sgd",
        lr: float | None = None,
        batch_size: int | None = None,
        reg: float = 1e-4,
        reduction: str = "mean",
        record: str = "after",
        shuffle: bool = True,
        shuffle_seed: int = 0,
        stream: bool = False,
        loss_every: int = 1,
        chunk_size: int | None = None,
        on_chunk: Any = None,
        callbacks: Sequence[Callback] = (),
        interruptible: bool = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
    ) -> Network:
        """Train on X (n_samples, n_features) and labels y (n_samples,) for ``epochs`` epochs.
        With ``sample_weight`` (n_samples,) each sample's part of the loss counts that many times
        (``sum_i w_i loss_i / sum_i w_i``). Returns self. Sets ``classes_``, ``params_``,
        ``opt_state_``, ``loss_curve_`` (the losses recorded) at ``loss_passes_``,
        ``passes_done_``, ``stop_reason_`` (why training ended before ``epochs``, or None),
        ``fit_seconds_`` and ``backend_``.

        Full-batch gradient descent by default: each epoch is one pass ``W -= lr * dW`` on every
        sample. ``optimizer`` is a name (``sgd``, ``momentum``, ``nesterov``, ``adam``,
        ``adamw``; ``lr`` defaults to :data:`DEFAULT_LR`) or an :class:`xpnet.optim.Optimizer`
        (its own rate, schedule and clipping; then leave ``lr`` out). ``"lbfgs"`` (or
        :func:`xpnet.optim.lbfgs` for its tolerance) is full-batch L-BFGS, an iteration an
        epoch, with its own line search (no ``lr``); it stops early once converged
        (``passes_done_`` says when), and a resumed L-BFGS run starts its search afresh. With
        ``batch_size`` each epoch is a pass of mini-batch steps in an order shuffled from
        ``shuffle_seed`` (data kept on the host with ``stream``). The loss minimised is the mean
        over samples plus ``reg / (2 n) * sum |W|^2``; ``reduction="sum"`` steps along n times
        its gradient (the seeds).
        A full-batch pass's loss is recorded ``record`` its update, every ``loss_every`` epochs
        (and at the last): passes in between cost no loss computation.

        ``on_chunk(first_epoch, losses, params)`` is called after every ``chunk_size`` epochs,
        ``callbacks`` (:mod:`xpnet.callbacks`) as the engine says. With ``checkpoint`` and
        ``checkpoint_every`` the model so far is saved (atomically) every that many epochs;
        :meth:`resume` continues from such a file. With ``interruptible``, Ctrl-C stops after
        the current chunk: the network keeps the state trained so far and
        :class:`~xpnet.errors.TrainingInterrupted` is raised. On
        :class:`~xpnet.errors.DivergenceError` it keeps the last good state likewise."""
        epochs = validation.integer("epochs", epochs)
        settings = _settings(optimizer, batch_size, reg, reduction, record, shuffle,
                             shuffle_seed, stream, loss_every)  # fmt: skip
        _check_chunking(chunk_size, checkpoint, checkpoint_every)
        # data-parallel: placed first, for a multi-process job's processes to check their rows
        backend = self._parallel() if self.data_parallel else None
        chosen = backend or select(self.backend, self.device, self.dtype)
        lazy = _lazy(chosen, X)
        if lazy:  # a namespace's own array (dask, larger than memory): kept there
            X_host = validation.namespace_features(chosen.xp, X)
            if self.scale is not None or batch_size is not None:
                raise ConfigError("a namespace's own arrays train full batch and unscaled (scale "
                                  "them with the namespace first); leave out scale and "
                                  "batch_size")  # fmt: skip
        part = parallel.local_rows(backend, X)
        if not lazy:
            X_host = parallel.agreed(backend, lambda: validation.features(X, rows=part))
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        y_index, classes = parallel.agreed(backend, lambda: validation.class_labels(y, n))
        weights = parallel.agreed(backend, lambda: validation.sample_weight(sample_weight, n))
        if self.scale is not None:
            gather = None if backend is None else backend.gather  # a job: statistics of all rows
            self.scale_offset_, self.scale_factor_ = data.fit_scaler(self.scale, X_host, gather)
        spec = mlp.Spec(
            (X_host.shape[1], *self.hidden, self._n_outputs(classes.size)),
            self.activation, self.loss, self.bias,
        )  # fmt: skip
        self.backend_ = chosen
        engine.check_memory(self.backend_, spec, n, settings["batch_size"], not settings["stream"])
        host_params = initial_params(spec, self.init, self.init_seed)
        opt = _optimizer(optimizer, lr, n, settings["batch_size"], epochs)
        if optim.is_lbfgs(opt) and (settings["batch_size"] is not None or self.data_parallel):
            raise ConfigError("lbfgs trains full batch on one device; leave out batch_size and "
                              "data_parallel")  # fmt: skip
        self.spec_, self.classes_, self.initial_params_ = spec, classes, host_params
        self.fit_settings_ = {"epochs": epochs, "optimizer": opt.config, **settings,
                              "sample_weight": weights is not None}  # fmt: skip
        self._optimizer = opt
        run = engine.Run.start(self.backend_, self._objective(), opt, host_params)
        feed = self._feed(self._scaled(X_host), y_index, n, np.random.RandomState(shuffle_seed),
                          weights=weights)  # fmt: skip
        return self._train(run, feed, epochs, chunk_size, on_chunk, callbacks, interruptible,
                           checkpoint, checkpoint_every)  # fmt: skip

    def _objective(self) -> Objective:
        s = self.fit_settings_
        return Objective(self.spec_, s["reg"], s["reduction"])

    def _parallel(self) -> Backend:
        """The data-parallel backend to train on (see :func:`xpnet.parallel.data_parallel`)."""
        return parallel.data_parallel(select(self.backend, self.device, self.dtype), self.devices)

    def _feed(
        self, X_host: np.ndarray, y_index: np.ndarray, rows: int, rng: np.random.RandomState,
        order: np.ndarray | None = None, weights: np.ndarray | None = None,
    ) -> engine.Feed:  # fmt: skip
        """The engine's feed: X_host holds this process's rows of the ``rows`` samples (all of
        them but in a multi-process job); y_index and the sample weights, those of all."""
        backend, s = self.backend_, self.fit_settings_
        mine = backend.span(rows)
        T_host = data.targets(y_index[mine], self.classes_.size, self.spec_.sizes[-1])
        w_host = None if weights is None else weights[mine]
        if optim.is_lbfgs(self._optimizer):
            return engine.LBFGS(backend, X_host, T_host, record=s["record"], weights=w_host)
        if s["batch_size"] is None:
            return engine.FullBatch(backend, X_host, T_host, rows=rows, record=s["record"],
                                    weights=w_host)  # fmt: skip
        if backend.processes > 1:
            raise ConfigError("a multi-process job trains full batch; leave out batch_size "
                              "(--batch-size)")  # fmt: skip
        return engine.Batches(backend, X_host, T_host, s["batch_size"], rng=rng,
                              shuffle=s["shuffle"], order=order, stream=s["stream"],
                              weights=w_host)  # fmt: skip

    def resume(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        epochs: int | None = None,
        loss_every: int | None = None,
        chunk_size: int | None = None,
        on_chunk: Any = None,
        callbacks: Sequence[Callback] = (),
        interruptible: bool = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
    ) -> Network:
        """Continue training a fitted or loaded network on the same X, y with its own settings
        (``fit_settings_``: optimizer and its state, batch order and shuffling state included)
        until ``epochs`` epochs in all (default: the epochs it was asked for), recording the loss
        every ``loss_every`` epochs (default: as before); a fit with ``sample_weight`` resumes
        with the same weights. The result equals an uninterrupted :meth:`fit` (bit for bit on
        NumPy). Returns self."""
        self._fitted()
        settings = self.fit_settings_
        if loss_every is not None:
            settings = {**settings, "loss_every": validation.integer("loss_every", loss_every)}
        total = validation.integer("epochs", settings["epochs"] if epochs is None else epochs)
        _check_chunking(chunk_size, checkpoint, checkpoint_every)
        done = self.passes_done_
        if total <= done:
            raise ConfigError(f"this network has trained {done} passes already; ask for more "
                              f"than {done} epochs to resume")  # fmt: skip
        opt = self._resumable_optimizer()
        if self.data_parallel and self.backend_.shards == 1:  # a loaded network: one device
            self.backend_ = self._parallel()
        backend = self.backend_ if self.data_parallel else None
        part = parallel.local_rows(backend, X)
        X_host = parallel.agreed(
            backend, lambda: validation.features(X, self.spec_.sizes[0], rows=part)
        )
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        y_index = parallel.agreed(backend, lambda: validation.label_index(y, self.classes_, n))
        weights = parallel.agreed(backend, lambda: validation.sample_weight(sample_weight, n))
        if (weights is not None) != settings["sample_weight"]:
            said = "with" if settings["sample_weight"] else "without"
            raise ConfigError(f"this network was trained {said} sample weights; resume it "
                              f"{said} them (the same sample_weight)")  # fmt: skip
        self.fit_settings_ = {**settings, "epochs": total}
        history = engine.History(self.loss_passes_, self.loss_curve_)
        run = engine.Run.start(self.backend_, self._objective(), opt, self.params_,
                               self.opt_state_, epoch=done, history=history,
                               reference=self.reference_)  # fmt: skip
        rng, order = np.random.RandomState(settings["shuffle_seed"]), None
        if self.feed_state_ is not None:
            rng.set_state(self.feed_state_["rng"])
            order = self.feed_state_["order"]
        feed = self._feed(self._scaled(X_host), y_index, n, rng, order, weights)
        return self._train(run, feed, total, chunk_size, on_chunk, callbacks, interruptible,
                           checkpoint, checkpoint_every)  # fmt: skip

    def _resumable_optimizer(self) -> optim.Optimizer:
        own = getattr(self, "_optimizer", None)
        if own is not None:
            return own  # type: ignore[no-any-return]
        config = self.fit_settings_.get("optimizer")
        if config is None:
            raise ConfigError("this model's optimizer was written by hand and not saved; "
                              "resume it in the process that trained it")  # fmt: skip
        self._optimizer = optim.from_config(config)
        return self._optimizer

    def _train(
        self,
        run: engine.Run,
        feed: engine.Feed,
        epochs: int,
        chunk_size: int | None,
        on_chunk: Any,
        plugins: Sequence[Callback],
        interruptible: bool,
        checkpoint: str | Path | None,
        checkpoint_every: int | None,
    ) -> Network:
        """Run the engine; keep the state reached, also when it stops with an error."""
        plugins = list(plugins)
        if on_chunk is not None:
            plugins.append(OnChunk(on_chunk, chunk_size))
        if checkpoint is not None and checkpoint_every is not None:

            def save(r: engine.Run) -> None:
                self._keep(r, feed)
                self.save(checkpoint)

            plugins.append(Checkpoint(save, checkpoint_every))
        interrupt = Interrupt()
        if interruptible:
            plugins.append(interrupt)
        stopping = stop_signals(interrupt) if interruptible else contextlib.nullcontext()
        try:
            with stopping:
                engine.fit(run, feed, epochs=epochs, loss_every=self.fit_settings_["loss_every"],
                           chunk_size=chunk_size, callbacks=plugins)  # fmt: skip
        except (DivergenceError, TrainingInterrupted):
            self._keep(run, feed)
            self.fit_seconds_ = math.nan
            raise
        self._keep(run, feed)
        self.fit_seconds_ = run.seconds
        return self

    def _keep(self, run: engine.Run, feed: engine.Feed) -> None:
        """Copy the run's state into the fitted attributes (host arrays)."""
        self.params_ = run.host_params()
        self.opt_state_: Tree = run.host_state()
        self.loss_passes_ = run.history.passes
        self.loss_curve_ = run.history.losses
        self.passes_done_ = run.epoch
        self.stop_reason_ = run.stop
        self.reference_ = run.reference
        self.feed_state_ = feed.state() if isinstance(feed, engine.Batches) else None
        self._optimizer = run.optimizer

    def _scaled(self, X_host: np.ndarray) -> np.ndarray:
        if getattr(self, "scale_offset_", None) is None:
            return X_host
        return data.scale(X_host, self.scale_offset_, self.scale_factor_)

    # -- using a fitted network -----------------------------------------------------------------
    def _fitted(self) -> Backend:
        if not hasattr(self, "params_"):
            raise ConfigError("this Network is not fitted yet; call fit(X, y) first")
        return self.backend_

    def _predictor(self) -> Backend:
        """Where predictions run: one device (this process's), also after data-parallel fits."""
        backend = self._fitted()
        return backend if backend.shards == 1 else select(self.backend, self.device, self.dtype)

    def predict_proba(self, X: Any, *, batch_size: int = engine.PREDICT_BATCH) -> np.ndarray:
        """Return class probabilities (n_samples, n_classes) as a float64 NumPy array, computed
        ``batch_size`` rows at a time: memory beyond X and the result stays bounded. With
        sigmoid outputs (``loss="squared_error"``), each row's outputs divided by their sum (for
        one output unit: ``1 - a, a``)."""
        backend = self._predictor()
        batch_size = validation.integer("batch_size", batch_size)
        X_host = validation.features(X, self.spec_.sizes[0])
        params = backend.tree_asarray(self.params_)
        out = engine.predict(backend, self.spec_, params, X_host, batch_size, self._scaled)
        return np.asarray(mlp.class_probabilities(np, out, self.spec_))

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted class labels (n_samples,) (argmax of the probabilities; 0.5 threshold
        for a single sigmoid output)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Return the accuracy of ``predict(X)`` against labels y (weighted by ``sample_weight``
        (n_samples,) where given). In a multi-process job (trained so), each process predicts
        its own rows and the counts are summed."""
        backend = self._fitted()
        n = np.shape(X)[0] if np.ndim(X) else 0
        y_arr = np.asarray(y)
        if y_arr.shape[:1] != (n,):
            validation.label_index(y, self.classes_, n)  # raises: the lengths differ
        w = validation.sample_weight(sample_weight, n)
        w = np.ones(n) if w is None else w
        part = parallel.local_rows(backend, X)
        if part is None:
            return float(np.sum(w * (self.predict(X) == y_arr)) / np.sum(w))
        local = parallel.agreed(
            backend, lambda: validation.features(X, self.spec_.sizes[0], rows=part)
        )
        right = float(np.sum(w[part] * (self.predict(local) == y_arr[part])))
        return float(backend.gather(np.array(right)).sum() / np.sum(w))

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Return ``{"accuracy", "loss", "n_samples"}`` on labelled data; ``loss`` is the mean data
        loss of the model's output (no weight penalty). Labels must be among ``classes_``."""
        backend = self._predictor()
        X_host = validation.features(X, self.spec_.sizes[0])
        index = validation.label_index(y, self.classes_, X_host.shape[0])
        proba = self.predict_proba(X_host)
        T = data.targets(index, self.classes_.size, self.spec_.sizes[-1])
        with backend.activate():
            value = mlp.loss(backend.xp, backend.tree_asarray(self.params_),
                             backend.asarray(self._scaled(X_host)), backend.asarray(T), self.spec_)  # fmt: skip
            loss = float(backend.to_numpy(value))
        return {"accuracy": float(np.mean(index == proba.argmax(1))), "loss": loss,
                "n_samples": int(X_host.shape[0])}  # fmt: skip

    # -- model files ----------------------------------------------------------------------------
    def to_onnx(self, path: str | Path) -> Path:
        """Write the fitted network as an ONNX model (see :mod:`xpnet.export`): its input
        scaling, probabilities and labels, in its dtype, traced from the same forward pass.
        Needs ndonnx (``pip install 'xpnet[onnx]'``). Returns the path."""
        from xpnet import export

        self._fitted()
        scale = None
        if getattr(self, "scale_offset_", None) is not None:
            scale = (self.scale_offset_, self.scale_factor_)
        model = export.onnx_model(self.spec_, self.params_, classes=self.classes_, scale=scale,
                                  metadata={"object": "Network"})  # fmt: skip
        return export.save(model, path)

    def save(self, path: str | Path, *, all_losses: bool = False) -> Path:
        """Write the fitted network to one portable file (see :mod:`xpnet.persist`): parameters,
        optimizer state, classes, scaling and loss history (at most
        :data:`~xpnet.persist.MAX_LOSSES` recorded losses, evenly spread, unless
        ``all_losses``) as arrays; architecture, dtype, training settings and the backend it was
        trained on as JSON. Written atomically. Returns the path."""
        backend = self._fitted()
        from xpnet import persist  # hashing, JSON and safetensors: loaded when a file is touched

        arrays, training = persist.pack_training(
            self.params_, self.opt_state_, (self.loss_passes_, self.loss_curve_), self.feed_state_,
            all_losses,
        )  # fmt: skip
        classes = self.classes_
        arrays["classes"] = classes if classes.dtype.kind in "biufU" else classes.astype(str)
        if getattr(self, "scale_offset_", None) is not None:
            arrays["scale.offset"] = self.scale_offset_
            arrays["scale.factor"] = self.scale_factor_
        meta = {
            **persist.header("Network"),
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
            "training": {
                **self.fit_settings_,
                **training,
                "passes": self.passes_done_,
                "reference": self.reference_,
                "stop_reason": self.stop_reason_,
            },
            "info": self.info,
            "trained_on": {
                "backend": backend.name,
                "version": backend.version,
                "device": backend.device_label,
            },
        }
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
        if meta.get("kind") != "Network":
            raise ModelFileError(f"{str(path)!r} holds an {meta.get('kind')}, not a Network; "
                                 "read it with xpnet.load(path)")  # fmt: skip
        parallel_meta = meta.get("data_parallel")
        if data_parallel is None:  # as the file was trained
            data_parallel = isinstance(parallel_meta, dict) and bool(parallel_meta.get("on"))
            if data_parallel and devices is None:
                devices = parallel_meta.get("devices")  # type: ignore[union-attr]
        validation.devices(devices, data_parallel)
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
            settings = _stored_settings(meta.get("training", {}))
            opt = (
                None if settings["optimizer"] is None else optim.from_config(settings["optimizer"])
            )
            template = None if opt is None else _host_template(opt, params)
            opt_state, history, feed_state = persist.unpack_training(
                arrays, meta["training"], template
            )
        except (KeyError, TypeError, ValueError) as exc:  # ConfigError included
            raise persist.incomplete(path, exc) from None
        for k, shape in spec.param_shapes().items():
            if params[k].shape != shape:
                raise ModelFileError(f"{str(path)!r}: {k} has shape {params[k].shape}, not {shape}")
        net.backend_ = select(net.backend, net.device, net.dtype)
        net.spec_ = spec
        net.classes_ = classes
        net.params_ = {k: v.astype(net.dtype) for k, v in params.items()}
        net.opt_state_ = opt_state
        net.loss_passes_, net.loss_curve_ = history
        net.fit_settings_ = settings
        net.passes_done_ = int(meta["training"].get("passes", history[0].size))
        net.reference_ = meta["training"].get("reference")
        net.stop_reason_ = meta["training"].get("stop_reason")
        net.feed_state_ = feed_state
        net.fit_seconds_ = math.nan
        net.trained_on_ = dict(meta.get("trained_on", {}))
        if opt is not None:
            net._optimizer = opt
        if "scale.offset" in arrays:
            net.scale_offset_, net.scale_factor_ = arrays["scale.offset"], arrays["scale.factor"]
        return net


def _lazy(backend: Backend, X: Any) -> bool:
    """Whether X is an array of the user's own namespace (:class:`~xpnet.backends.NamespaceBackend`),
    to be used where it is rather than read onto the host."""
    owns = getattr(backend, "owns_array", None)
    return bool(owns is not None and owns(X))


def _settings(
    optimizer: Any, batch_size: Any, reg: Any, reduction: Any, record: Any, shuffle: Any,
    shuffle_seed: Any, stream: Any, loss_every: Any,
) -> dict[str, Any]:  # fmt: skip
    """The training settings, checked."""
    if not isinstance(optimizer, optim.Optimizer):
        validation.one_of(optim.OPTIMIZERS, optimizer, "optimizer")
    return {
        "reg": validation.number("reg", reg, 0),
        "reduction": validation.one_of(mlp.REDUCTIONS, reduction, "reduction"),
        "record": validation.one_of(RECORDS, record, "record"),
        "batch_size": validation.optional(validation.integer, "batch_size", batch_size),
        "shuffle": validation.flag("shuffle", shuffle),
        "shuffle_seed": validation.integer("shuffle_seed", shuffle_seed, 0),
        "stream": validation.flag("stream", stream),
        "loss_every": validation.integer("loss_every", loss_every),
    }


def _optimizer(
    optimizer: str | optim.Optimizer, lr: float | None, n: int, batch_size: int | None,
    epochs: int,
) -> optim.Optimizer:  # fmt: skip
    """The optimizer object for a name (at ``lr`` or its default rate) or as given."""
    if isinstance(optimizer, optim.Optimizer):
        if lr is not None:
            raise ConfigError("lr is set inside an optimizer object; leave lr out")
        return optimizer
    if optimizer == "lbfgs":
        if lr is not None:
            raise ConfigError("lbfgs searches its own step lengths; leave lr out")
        return optim.lbfgs()
    rate = DEFAULT_LR[optimizer] if lr is None else validation.number("lr", lr, 0, low_open=True)
    steps = epochs * (1 if batch_size is None else -(-n // min(batch_size, n)))
    return optim.build(optimizer, rate, total_steps=steps)


def _stored_settings(training: dict[str, Any]) -> dict[str, Any]:
    """The training settings of a model file, version 1 (plain gradient descent) included."""
    settings = dict(training)
    opt = settings.get("optimizer")
    if opt == "sgd":  # version 1: the rate was stored beside the name
        settings["optimizer"] = optim.sgd(float(settings["lr"])).config
    defaults = {"reg": 0.0, "reduction": "sum", "record": "after", "batch_size": None,
                "shuffle": True, "shuffle_seed": 0, "stream": False, "loss_every": 1,
                "optimizer": None, "sample_weight": False}  # fmt: skip
    for key in ("passes", "reference", "stop_reason", "rng", "lr"):
        settings.pop(key, None)
    return {**defaults, **settings}


def _host_template(opt: optim.Optimizer, params: HostParams) -> Tree:
    """The structure of ``opt``'s state for ``params`` (NumPy), to read a saved state into."""
    return opt.init(select("numpy").xp, params)


def _check_chunking(
    chunk_size: int | None, checkpoint: str | Path | None, checkpoint_every: int | None
) -> None:
    validation.optional(validation.integer, "chunk_size", chunk_size)
    validation.optional(validation.integer, "checkpoint_every", checkpoint_every)
    if (checkpoint is None) != (checkpoint_every is None):
        raise ConfigError("checkpoint and checkpoint_every go together: give both or neither")

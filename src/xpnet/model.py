"""The user-facing network: choose an architecture and a backend, ``fit``, ``predict``.

``Network`` checks everything once at the boundary (the settings against their table,
:mod:`xpnet.settings`; the data with :mod:`xpnet.validation`), draws the initial weights on the
host and hands the run to the trainer (:mod:`xpnet.trainer`), which builds it from the plan. Its
defaults are the table's, suited to any data set as scikit-learn's are: mean loss, an
initialisation suited to the activation, a small L2 term; the seeds' settings are recipes
(:mod:`xpnet.recipes`). Fitted attributes end in ``_`` and are NumPy arrays, whatever the backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import data, inference, mlp, optim, parallel, settings, trainer, validation
from xpnet._typing import HostParams, Tree
from xpnet.backends import Backend, select
from xpnet.callbacks import Callback, ValidationLoss
from xpnet.errors import ConfigError, DataError, DivergenceError, TrainingInterrupted
from xpnet.init import initial_params
from xpnet.run import History, Run
from xpnet.settings import DEFAULTS, Plan


class Network:
    """A dense network trained by hand-written backpropagation on any backend: a classifier of two
    classes or more (``MLPClassifier`` fits a single class, as scikit-learn's does), or with a
    regression loss a regressor of numeric targets.

    ``hidden`` are the hidden layer sizes (``()`` for softmax/logistic regression). ``loss`` is
    ``"cross_entropy"`` (softmax outputs, one per class) or ``"squared_error"`` (sigmoid outputs: one
    for two classes, else one per class; :meth:`predict_proba` then returns the sigmoid outputs
    normalised into class probabilities); or a regression loss on identity outputs, one per
    target column of y: ``"absolute_error"``, ``"huber"`` (quadratic within ``delta`` of the
    target, linear beyond) or ``"quantile"`` (the pinball loss, whose minimiser is the
    ``quantile`` of the targets); :meth:`predict` then returns numbers, :meth:`score` R²,
    and ``classes_`` is None. ``init`` names the initial weights (``auto``: He for
    relu-like activations, Glorot otherwise); ``init_seed`` is an int, or a
    ``numpy.random.RandomState`` to keep drawing from one stream as seed 001 does. ``scale``
    (``None``, ``"standard"`` or ``"minmax-global"``) is fitted on the training inputs and applied
    again in ``predict``. ``backend``/``device``/``dtype`` choose where the math runs (see
    :func:`xpnet.backends.select`). ``data_parallel=True`` (JAX) splits the samples over
    ``devices`` devices (default: all JAX sees), keeps a copy of the parameters on each and sums
    the gradients across them inside the compiled loop (see :func:`xpnet.parallel.data_parallel`):
    the same results as one device. In a multi-process job (:func:`xpnet.parallel.distributed`)
    every process passes the whole data set (a memory map, say) and reads, checks and trains on
    its own rows of X only (full batch). ``class_weight`` (``"balanced"`` or ``{class:
    weight}``) weighs each class's samples, times any ``sample_weight`` (``class_weight_``: the
    weight of each of ``classes_``). ``info`` is a JSON-serialisable dict of notes kept in
    model files (recipes store themselves).
    """

    plan_: Plan
    """The training settings of the fit (:class:`xpnet.settings.Plan`)."""
    classes_: Any
    """The class labels (n_classes,) the fit found in y, sorted; None for a regression loss."""
    optimizer_: optim.Optimizer | None
    """The optimizer the fit went on with (None for L-BFGS)."""
    validation_loss_curve_: Any
    """With ``validation_data``: the held-out loss after every epoch of the last fit (else None)."""
    validation_scores_: Any
    """With ``validation_data``: the held-out accuracy (R² for a regression loss) after every
    epoch (else None)."""
    trained_on_: dict[str, Any]
    """Set by :meth:`load`: the backend, version and device the file was trained on."""

    def __init__(
        self,
        hidden: Sequence[int] | int | str = DEFAULTS["hidden"],
        *,
        activation: str = DEFAULTS["activation"],
        loss: str = DEFAULTS["loss"],
        delta: float = DEFAULTS["delta"],
        quantile: float = DEFAULTS["quantile"],
        bias: bool = DEFAULTS["bias"],
        init: str = DEFAULTS["init"],
        init_seed: int | np.random.RandomState = DEFAULTS["init_seed"],
        scale: str | None = DEFAULTS["scale"],
        backend: str | None = DEFAULTS["backend"],
        device: str | int | None = DEFAULTS["device"],
        dtype: str = DEFAULTS["dtype"],
        class_weight: Any = DEFAULTS["class_weight"],
        data_parallel: bool = DEFAULTS["data_parallel"],
        devices: int | None = DEFAULTS["devices"],
        info: dict[str, Any] | None = None,
    ) -> None:
        check = settings.check
        self.hidden = check("hidden", hidden)
        self.info = dict(info or {})
        self.activation = check("activation", activation)
        self.loss = check("loss", loss)
        self.delta = check("delta", delta)
        self.quantile = check("quantile", quantile)
        self.bias = check("bias", bias)
        self.init = check("init", init)
        if not isinstance(init_seed, np.random.RandomState):
            check("init_seed", init_seed)
        self.init_seed = init_seed
        self.scale = check("scale", scale)
        self.backend = backend
        self.device = device
        self.dtype = check("dtype", dtype)
        self.class_weight = check("class_weight", class_weight)
        self.data_parallel = check("data_parallel", data_parallel)
        self.devices = check("devices", devices)
        given = [k for k, v in (("devices", devices), ("class_weight", class_weight))
                 if v is not None]  # fmt: skip
        given += [k for k in ("delta", "quantile") if getattr(self, k) != DEFAULTS[k]]
        settings.apply_rules({"loss": self.loss, "data_parallel": self.data_parallel,
                              "devices": self.devices}, given)  # fmt: skip

    @property
    def loss_curve_(self) -> np.ndarray:
        """The training losses recorded at ``loss_passes_``. A full-batch fit does not pay a
        forward pass for the loss after its last pass: that one is computed when this is
        first read (not counted in ``fit_seconds_``)."""
        history = self.__dict__.pop("_history", None)
        if history is not None:
            self.__dict__["_loss_curve"] = history.losses
        if "_loss_curve" not in self.__dict__:
            raise AttributeError("'Network' object has no attribute 'loss_curve_' (not fitted)")
        return self.__dict__["_loss_curve"]  # type: ignore[no-any-return]

    @loss_curve_.setter
    def loss_curve_(self, losses: Any) -> None:
        self.__dict__.pop("_history", None)
        self.__dict__["_loss_curve"] = losses

    @property
    def _regression(self) -> bool:
        """Whether the network fits numeric targets (a regression loss) rather than classes."""
        return settings.regresses(self.loss)

    # -- fitting -------------------------------------------------------------------------------
    def _labels(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """y checked against the fitted network: the index of each label among ``classes_``
        (n,), or the regression targets (n, n_outputs)."""
        if self._regression:
            return validation.targets(y, n, self.spec_.sizes[-1], name)
        return validation.label_index(y, self.classes_, n)

    def _targets(self, y_fit: np.ndarray) -> np.ndarray:
        """The training targets (n, n_outputs) of checked labels (:meth:`_labels`)."""
        if self._regression:
            return y_fit
        return data.targets(y_fit, self.classes_.size, self.spec_.sizes[-1])

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        chunk_size: int | None = None,
        on_chunk: Any = None,
        callbacks: Sequence[Callback] = (),
        interruptible: bool = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
        plan: Plan | None = None,
        validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None,
        **training: Any,
    ) -> Network:
        """Train on X (n_samples, n_features) and labels y (n_samples,) (with a regression loss,
        numeric targets (n_samples,) or (n_samples, n_targets)). ``training`` are the
        training settings of :data:`xpnet.settings.SETTINGS` by name (the fields of
        :class:`~xpnet.settings.Plan`; each left out takes the table's default): ``epochs``,
        ``optimizer``, ``lr``, ``batch_size``, ``reg``, ``reduction``... With ``sample_weight``
        (n_samples,) each sample's part of the loss counts that many times (``sum_i w_i loss_i /
        sum_i w_i``). Returns self. Sets ``classes_`` (None for a regression loss),
        ``params_``, ``opt_state_``, ``loss_curve_`` (the losses recorded) at ``loss_passes_``,
        ``passes_done_``, ``stop_reason_`` (why training ended before ``epochs``, or None),
        ``plan_`` (the settings), ``fit_seconds_`` (the training loop's: compiling and the
        loss checks in, the data's copy to the device out) and ``backend_``.

        Full-batch gradient descent by default: each epoch is one pass ``W -= lr * dW`` on every
        sample. ``optimizer`` is a name (``sgd``, ``momentum``, ``nesterov``, ``adam``,
        ``adamw``, with ``lr`` defaulting to :data:`~xpnet.settings.DEFAULT_LR`, a
        ``schedule``, ``clip_norm``...) or an :class:`xpnet.optim.Optimizer` (its own rate,
        schedule and clipping). ``"lbfgs"`` is full-batch L-BFGS (``tol``, ``max_fun``), an
        iteration an epoch, with its own line search (no ``lr``); it stops early once converged
        (``passes_done_`` says when), and a resumed L-BFGS run starts its search afresh. With
        ``batch_size`` each epoch is a pass of mini-batch steps in an order shuffled from
        ``shuffle_seed`` (data kept on the host with ``stream``). The loss minimised is the mean
        over samples plus ``reg / (2 n) * sum |W|^2``; ``reduction="sum"`` steps along n times
        its gradient (the seeds). A full-batch pass's loss is recorded ``record`` its update,
        every ``loss_every`` epochs (and at the last): passes in between cost no loss
        computation. A setting that does not apply to the others given is refused
        (:data:`xpnet.settings.RULES`). ``plan``: a :class:`~xpnet.settings.Plan` made already
        (a recipe's), which ``training`` overrides.

        ``validation_data=(X_val, y_val)``: after every epoch the mean loss of those samples
        (no L2 penalty) goes to ``validation_loss_curve_`` and their accuracy (R² for a
        regression loss) to ``validation_scores_``; they must have X's features and y's classes
        (or as many targets). With ``patience``
        the fit stops once the validation loss has not fallen below its best for that many
        epochs in a row (``stop_reason_`` says so; the weights are the last epoch's, as Keras
        keeps them).

        ``on_chunk(first_epoch, losses, params)`` is called after every ``chunk_size`` epochs,
        ``callbacks`` (:mod:`xpnet.callbacks`) as the engine says. With ``checkpoint`` and
        ``checkpoint_every`` the model so far is saved (atomically) every that many epochs;
        :meth:`resume` continues from such a file. With ``interruptible``, Ctrl-C stops after
        the current chunk: the network keeps the state trained so far and
        :class:`~xpnet.errors.TrainingInterrupted` is raised. On
        :class:`~xpnet.errors.DivergenceError` it keeps the last good state likewise."""
        plan, custom = self._plan(training, checkpoint, checkpoint_every, plan)
        validation.optional(validation.integer, "chunk_size", chunk_size)
        chosen = trainer.place(self.backend, self.device, self.dtype, self.data_parallel,
                               self.devices)  # fmt: skip
        job = chosen if self.data_parallel else None  # a multi-process job checks its own rows
        lazy = _lazy(chosen, X)
        if lazy:  # a namespace's own array (dask, larger than memory): kept there
            X_host = validation.namespace_features(chosen.xp, X)
            if self.scale is not None or plan.batch_size is not None:
                raise ConfigError("a namespace's own arrays train full batch and unscaled (scale "
                                  "them with the namespace first); leave out scale and "
                                  "batch_size")  # fmt: skip
        part = parallel.local_rows(job, X)
        if not lazy:
            X_host = parallel.agreed(job, lambda: validation.features(X, rows=part))
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        if self._regression:
            y_fit, classes = parallel.agreed(job, lambda: validation.targets(y, n)), None
            n_outputs = y_fit.shape[1]
        else:
            y_fit, classes = parallel.agreed(job, lambda: validation.class_labels(y, n))
            n_outputs = data.class_outputs(self.loss, classes.size)
        weights = parallel.agreed(job, lambda: validation.sample_weight(sample_weight, n))
        self.weighted_ = weights is not None
        self.class_weight_ = (None if classes is None else
                              validation.class_weights(self.class_weight, y_fit, classes))  # fmt: skip
        weights = validation.by_class(weights, self.class_weight_, y_fit)
        if self.scale is not None:
            gather = None if job is None else job.gather  # a job: statistics of all rows
            self.scale_offset_, self.scale_factor_ = data.fit_scaler(self.scale, X_host, gather)
        spec = mlp.Spec((X_host.shape[1], *self.hidden, n_outputs), self.activation, self.loss,
                        self.bias, delta=self.delta, quantile=self.quantile)  # fmt: skip
        self.backend_, self.spec_, self.classes_ = chosen, spec, classes
        self.plan_ = plan

        def draw() -> HostParams:  # once the run is known to fit in memory
            self.initial_params_ = initial_params(spec, self.init, self.init_seed)
            return self.initial_params_

        held_out = self._held_out(validation_data, X_host.shape[1], spec, patience)
        training_run = self._start(draw, X_host, y_fit, n, weights, custom)
        return self._train(training_run, plan.epochs, chunk_size, on_chunk, callbacks,
                           interruptible, checkpoint, checkpoint_every, held_out)  # fmt: skip

    def _held_out(self, given: Any, n_features: int, spec: mlp.Spec,
                  patience: int | None = None) -> ValidationLoss | None:  # fmt: skip
        """The :class:`~xpnet.callbacks.ValidationLoss` of ``validation_data`` (None for None):
        its features checked against X's, its labels against the classes of y (its targets
        against y's count), scaled as X; its score accuracy (R² for regression); with
        ``patience``, the rule that stops on it."""
        if patience is not None:
            patience = validation.integer("patience", patience, 0)
            if given is None:
                raise ConfigError("patience stops on the validation loss; give validation_data "
                                  "with it")  # fmt: skip
        if given is None:
            return None
        if not isinstance(given, (tuple, list)) or len(given) != 2:
            raise ConfigError(f"validation_data must be a pair (X_val, y_val); got "
                              f"{validation.show(given)}")  # fmt: skip
        try:
            X_val = validation.features(given[0], n_features, name="X_val")
            y_val = self._labels(given[1], X_val.shape[0], "y_val")
        except DataError as exc:
            raise DataError(f"validation_data: {exc}") from None
        T_val = self._targets(y_val)

        xp = select("numpy").xp  # the host's float64 arrays

        def score(params: HostParams) -> float:
            out = mlp.predict_proba(xp, params, X, spec)
            if self._regression:
                return data.r2_score(T_val, out)
            out = mlp.class_probabilities(xp, out, spec)
            return float(np.mean(np.argmax(out, axis=1) == y_val))

        X = self._scaled(X_val)
        return ValidationLoss(X, T_val, score=score, patience=patience)

    def _plan(self, given: dict[str, Any], checkpoint: Any, checkpoint_every: Any,
              base: Plan | None = None) -> tuple[Plan, optim.Optimizer | None]:  # fmt: skip
        """The plan of ``given`` training settings (an optimizer object taken out of them),
        checked with the network's own placement and the run's checkpoints."""
        custom = given.get("optimizer")
        if isinstance(custom, optim.Optimizer):
            given = {**given, "optimizer": None}
        else:
            custom = None
        context = {"hidden": self.hidden, "data_parallel": self.data_parallel, "devices": self.devices,
                   "checkpoint": checkpoint, "checkpoint_every": checkpoint_every,
                   "optimizer_object": custom is not None}  # fmt: skip
        return settings.plan(base=base, context=context, **given), custom

    def _start(
        self,
        params: HostParams | Callable[[], HostParams],
        X_host: np.ndarray,
        y_fit: np.ndarray,
        rows: int,
        weights: np.ndarray | None,
        opt: optim.Optimizer | None,
        rng: np.random.RandomState | None = None,
        order: np.ndarray | None = None,
        resume: trainer.Resume | None = None,
    ) -> trainer.Training:
        """The trainer's run: X_host holds this process's rows of the ``rows`` samples (all of
        them but in a multi-process job); y_fit (:meth:`_labels`) and the sample weights, those
        of all."""
        backend = self.backend_
        mine = backend.span(rows)
        T_host = self._targets(y_fit[mine])
        w_host = None if weights is None else weights[mine]
        return trainer.start(backend, self.spec_, self.plan_, params, self._scaled(X_host),
                             T_host, opt=opt, rows=rows, weights=w_host, rng=rng, order=order,
                             resume=resume)  # fmt: skip

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
        validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None,
    ) -> Network:
        """Continue training a fitted or loaded network on the same X, y with its own settings
        (``plan_``: optimizer and its state, batch order and shuffling state included) until
        ``epochs`` epochs in all (default: the epochs it was asked for), recording the loss
        every ``loss_every`` epochs (default: as before); a fit with ``sample_weight`` resumes
        with the same weights. The result equals an uninterrupted :meth:`fit` (bit for bit on
        NumPy). ``validation_data`` and ``patience`` as in :meth:`fit` (the curves are this
        call's epochs).
        Returns self."""
        self._fitted()
        plan = self.plan_
        changes = {k: settings.check(k, v) for k, v in
                   (("epochs", epochs), ("loss_every", loss_every)) if v is not None}  # fmt: skip
        plan = plan.replace(**changes)
        validation.optional(validation.integer, "chunk_size", chunk_size)
        settings.apply_rules({"checkpoint": checkpoint, "checkpoint_every": checkpoint_every},
                             [])  # fmt: skip
        done = self.passes_done_
        if plan.epochs <= done:
            raise ConfigError(f"this network has trained {done} passes already; ask for more "
                              f"than {done} epochs to resume")  # fmt: skip
        opt = self._resumable_optimizer()
        if self.data_parallel and self.backend_.shards == 1:  # a loaded network: one device
            self.backend_ = trainer.place(self.backend, self.device, self.dtype, True,
                                          self.devices)  # fmt: skip
        job = self.backend_ if self.data_parallel else None
        part = parallel.local_rows(job, X)
        X_host = parallel.agreed(
            job, lambda: validation.features(X, self.spec_.sizes[0], rows=part)
        )
        n = X_host.shape[0] if part is None else int(np.shape(X)[0])
        y_fit = parallel.agreed(job, lambda: self._labels(y, n))
        weights = parallel.agreed(job, lambda: validation.sample_weight(sample_weight, n))
        if (weights is not None) != self.weighted_:
            said = "with" if self.weighted_ else "without"
            raise ConfigError(f"this network was trained {said} sample weights; resume it "
                              f"{said} them (the same sample_weight)")  # fmt: skip
        weights = validation.by_class(weights, self.class_weight_, y_fit)  # the fit's classes'
        self.plan_ = plan
        history = History(self.loss_passes_, self.loss_curve_)
        state = trainer.Resume(self.opt_state_, done, history, self.reference_)
        rng, order = np.random.RandomState(plan.shuffle_seed), None
        if self.feed_state_ is not None:
            rng.set_state(self.feed_state_["rng"])
            order = self.feed_state_["order"]
        training_run = self._start(self.params_, X_host, y_fit, n, weights, opt, rng, order,
                                   state)  # fmt: skip
        return self._train(training_run, plan.epochs, chunk_size, on_chunk, callbacks,
                           interruptible, checkpoint, checkpoint_every,
                           self._held_out(validation_data, X_host.shape[1], self.spec_,
                                          patience))  # fmt: skip

    def _resumable_optimizer(self) -> optim.Optimizer | None:
        """The optimizer to go on with (None for a solver: L-BFGS)."""
        if self.plan_.solver is not None:
            return None
        own = getattr(self, "optimizer_", None)
        if own is not None:
            return own  # type: ignore[no-any-return]
        raise ConfigError("this model's optimizer was written by hand and not saved; "
                          "resume it in the process that trained it")  # fmt: skip

    def _train(
        self,
        training: trainer.Training,
        epochs: int,
        chunk_size: int | None,
        on_chunk: Any,
        plugins: Sequence[Callback],
        interruptible: bool,
        checkpoint: str | Path | None,
        checkpoint_every: int | None,
        held_out: ValidationLoss | None = None,
    ) -> Network:
        """Run the trainer; keep the state reached, also when it stops with an error. With
        ``held_out`` its curves are ``validation_loss_curve_`` and ``validation_scores_``
        (lists while training, so a plug-in after it reads each epoch's; arrays after)."""
        self.validation_loss_curve_ = None if held_out is None else held_out.losses
        self.validation_scores_ = None if held_out is None else held_out.scores
        if held_out is not None:
            plugins = [held_out, *plugins]  # before the printer: it may show them

        def save(run: Run) -> None:
            self._keep(training)
            self.save(checkpoint)  # type: ignore[arg-type]

        try:
            training.fit(epochs, chunk_size=chunk_size, callbacks=plugins, on_chunk=on_chunk,
                         checkpoint=save if checkpoint is not None else None,
                         checkpoint_every=checkpoint_every, interruptible=interruptible)  # fmt: skip
        except (DivergenceError, TrainingInterrupted):
            self._keep(training, held_out)
            self.fit_seconds_ = math.nan
            raise
        self._keep(training, held_out)
        self.fit_seconds_ = training.run.seconds
        return self

    def _keep(self, training: trainer.Training, held_out: ValidationLoss | None = None) -> None:
        """Copy the run's state into the fitted attributes (host arrays)."""
        run, feed = training.run, training.feed
        if held_out is not None:
            self.validation_loss_curve_ = np.asarray(held_out.losses)
            self.validation_scores_ = np.asarray(held_out.scores)
        self.params_ = run.host_params()
        self.opt_state_: Tree = run.host_state()
        self.loss_passes_ = run.history.passes
        self.__dict__.pop("_loss_curve", None)  # read from the history (see loss_curve_): the
        self.__dict__["_history"] = run.history  # last loss may be computed only then
        self.passes_done_ = run.epoch
        self.stop_reason_ = run.stop
        self.reference_ = run.reference
        self.feed_state_ = feed.state() if hasattr(feed, "state") else None
        self.optimizer_ = run.optimizer

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

    def _outputs(self, X: Any, batch_size: int = inference.PREDICT_BATCH) -> np.ndarray:
        """The output layer's activations (n_samples, n_outputs) as float64 on the host, computed
        ``batch_size`` rows at a time: memory beyond X and the result stays bounded."""
        backend = self._predictor()
        batch_size = validation.integer("batch_size", batch_size)
        X_host = validation.features(X, self.spec_.sizes[0])
        params = backend.tree_asarray(self.params_)
        return inference.predict(backend, self.spec_, params, X_host, batch_size, self._scaled)

    def predict_proba(self, X: Any, *, batch_size: int = inference.PREDICT_BATCH) -> np.ndarray:
        """Return class probabilities (n_samples, n_classes) as a float64 NumPy array, computed
        ``batch_size`` rows at a time: memory beyond X and the result stays bounded. With
        sigmoid outputs (``loss="squared_error"``), each row's outputs divided by their sum (for
        one output unit: ``1 - a, a``). A regression network has none (ConfigError)."""
        self._fitted()
        if self._regression:
            raise ConfigError(f"a Network of loss {self.loss!r} regresses: it predicts numbers "
                              "(predict), not class probabilities")  # fmt: skip
        out = self._outputs(X, batch_size)
        return np.asarray(mlp.class_probabilities(np, out, self.spec_))

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted class labels (n_samples,) (argmax of the probabilities; 0.5 threshold
        for a single sigmoid output); with a regression loss the predictions (n_samples,), or
        (n_samples, n_targets) for several targets."""
        self._fitted()
        if self._regression:
            out = self._outputs(X)
            return out[:, 0] if out.shape[1] == 1 else out
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Return the accuracy of ``predict(X)`` against labels y (R², the coefficient of
        determination averaged over targets, for a regression loss: scikit-learn's
        ``r2_score``), weighted by ``sample_weight`` (n_samples,) where given. In a
        multi-process job (trained so), each process predicts its own rows and the sums are
        added."""
        backend = self._fitted()
        n = np.shape(X)[0] if np.ndim(X) else 0
        if self._regression:
            T = self._labels(y, n)
        else:
            y_arr = np.asarray(y)
            if y_arr.shape[:1] != (n,):
                validation.label_index(y, self.classes_, n)  # raises: the lengths differ
        w = validation.sample_weight(sample_weight, n)
        part = parallel.local_rows(backend, X)
        rows = slice(None) if part is None else part
        local = X if part is None else parallel.agreed(
            backend, lambda: validation.features(X, self.spec_.sizes[0], rows=part))  # fmt: skip
        w_rows = None if w is None else w[rows]
        if self._regression:
            P = self._outputs(local)
            residual = data.squared_residuals(T[rows], P, w_rows)
            if part is not None:
                residual = backend.gather(residual).reshape(-1, residual.size).sum(0)
            return data.r2(T, w, residual)
        right_rows = self.predict(local) == y_arr[rows]
        right = float(np.sum(right_rows if w_rows is None else w_rows * right_rows))
        if part is not None:
            right = float(backend.gather(np.array(right)).sum())
        return right / (n if w is None else float(np.sum(w)))

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Return ``{"accuracy", "loss", "n_samples"}`` on labelled data (``{"r2", "loss",
        "n_samples"}`` for a regression loss); ``loss`` is the mean data loss of the model's
        output (no weight penalty). Labels must be among ``classes_``."""
        backend = self._predictor()
        X_host = validation.features(X, self.spec_.sizes[0])
        fit = self._labels(y, X_host.shape[0])
        T = self._targets(fit)
        out = self._outputs(X_host)
        with backend.activate():
            value = mlp.loss(backend.xp, backend.tree_asarray(self.params_),
                             backend.asarray(self._scaled(X_host)), backend.asarray(T), self.spec_)  # fmt: skip
            loss = float(backend.to_numpy(value))
        if self._regression:
            score = {"r2": data.r2_score(T, out)}
        else:
            proba = mlp.class_probabilities(np, out, self.spec_)
            score = {"accuracy": float(np.mean(fit == proba.argmax(1)))}
        return {**score, "loss": loss, "n_samples": int(X_host.shape[0])}

    # -- pickling (joblib, multiprocessing) ----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The network's state without what lives in a process (the backend object, its
        modules, a device's arrays): a fitted network pickles as its host arrays and settings,
        and is placed again (as :meth:`load` does) when it is unpickled."""
        state = dict(self.__dict__)
        state.pop("backend_", None)
        if "optimizer_" in state:  # functions: kept as their description, rebuilt on load (a
            opt = state.pop("optimizer_")  # hand-written one has none: it then cannot resume)
            state["_optimizer_config"] = None if opt is None else opt.config
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        config = state.pop("_optimizer_config", None)
        self.__dict__.update(state)
        if "plan_" in state:
            self.optimizer_ = None if config is None else optim.from_config(config)
        if "params_" in state:
            self.backend_ = select(self.backend, self.device, self.dtype)

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
        kind = "regressor" if self._regression else "classifier"
        model = export.onnx_model(self.spec_, self.params_, kind=kind, classes=self.classes_,
                                  scale=scale, metadata={"object": "Network"})  # fmt: skip
        return export.save(model, path)

    def save(self, path: str | Path, *, all_losses: bool = False) -> Path:
        """Write the fitted network to one portable file (see :mod:`xpnet.persist`): parameters,
        optimizer state, classes, scaling and loss history (at most
        :data:`~xpnet.persist.MAX_LOSSES` recorded losses, evenly spread, unless
        ``all_losses``) as arrays; architecture, dtype, the training plan and the backend it was
        trained on as JSON. Written atomically. Returns the path."""
        self._fitted()
        from xpnet import network_files  # hashing, JSON, safetensors: loaded when a file is touched

        return network_files.write(self, path, all_losses)

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
        from xpnet import network_files

        net: Network = network_files.read(cls, path, backend=backend, device=device, dtype=dtype,
                                          data_parallel=data_parallel, devices=devices)  # fmt: skip
        return net


def _lazy(backend: Backend, X: Any) -> bool:
    """Whether X is an array of the user's own namespace (:class:`~xpnet.backends.NamespaceBackend`),
    to be used where it is rather than read onto the host."""
    owns = getattr(backend, "owns_array", None)
    return bool(owns is not None and owns(X))

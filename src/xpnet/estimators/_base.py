"""The estimators' common base: scikit-learn's parameters, checks and fitted state; training
translated into the trainer's terms (:mod:`xpnet.trainer`); predictions."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from xpnet import feeds, inference, lbfgs, mlp, optim, settings, trainer, validation
from xpnet._typing import HostParams
from xpnet.activations import ACTIVATIONS
from xpnet.backends import Backend, array_kind, namespace_name, select
from xpnet.callbacks import Callback, EarlyStopping, Printer, ValidationLoss
from xpnet.dropout import rates as dropout_rates
from xpnet.errors import ConfigError, DataError, DivergenceError
from xpnet.estimators import files
from xpnet.init import initial_params
from xpnet.run import History, Run
from xpnet.settings import Plan
from xpnet.train import Objective

ACTIVATION_NAMES = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                    **{name: name for name in ACTIVATIONS}}  # fmt: skip
"""scikit-learn's activation names, in its order (``logistic`` is sigmoid), then every other
one of xpnet's -> xpnet's name."""
OUTPUT_LOSSES = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy",
                 "identity": "mse", "exp": "poisson"}  # fmt: skip
"""scikit-learn's ``out_activation_`` -> the xpnet loss whose output it is."""
SOLVERS = ("lbfgs", "sgd", "adam", "adamw")
STOCHASTIC = ("sgd", "adam", "adamw")
LEARNING_RATES = ("constant", "invscaling", "adaptive", "cosine")
REGRESSION_LOSSES = ("squared_error", "poisson", "absolute_error", "huber", "quantile")
INITS = ("sklearn", "glorot", "he", "lecun")
FLAGS = ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "stream",
         "data_parallel")  # fmt: skip
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")  # fmt: skip
"""scikit-learn's message (a ValueError) when training ends with weights that are not finite."""


class _Rate(NamedTuple):
    """What ``_optimizer`` shows of scikit-learn's optimizer object: its current rate."""

    learning_rate: float


def _host(X: Any, dtype: str | None) -> tuple[Any, tuple[str, str] | None]:
    """NumPy (or SciPy sparse) X, and the array kind it came as (None for NumPy and lists)."""
    kind = array_kind(X)
    if kind is not None:
        X = select(kind[0], kind[1], validation.dtype(dtype or "float64")).to_numpy(X)
    return X, kind


def _peek_seed(rng: np.random.RandomState) -> int:
    """A seed for the dropout masks from ``random_state``'s generator, which it leaves as it
    was (the weights, the split and the batch order draw what they draw without dropout)."""
    copy = np.random.RandomState()
    copy.set_state(rng.get_state())
    return int(copy.randint(0, 2**32, dtype=np.uint64))


class _BaseMLP(BaseEstimator):  # type: ignore[misc]
    coefs_: list[np.ndarray]
    intercepts_: list[np.ndarray]
    _split_state: Any
    """The generator's state before the early-stopping split (to split again on resume)."""
    _feed_state: dict[str, Any] | None
    """The batch order and shuffling generator of the fit in progress."""
    _best_params: HostParams | None
    """Early stopping's best parameters (scikit-learn's ``_best_coefs``)."""

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
        warmup: int = 0,
        dropout: Any = 0.0,
        init: str = "sklearn",
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        stream: bool = False,
        data_parallel: bool = False,
        devices: int | None = None,
        checkpoint: str | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.warmup = warmup
        self.dropout = dropout
        self.init = init
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.stream = stream
        self.data_parallel = data_parallel
        self.devices = devices
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn's ``get_params``; a namespace module given as ``backend`` is reported by
        its name (``"namespace:MODULE"``), which selects the same backend and, unlike a module,
        can be copied: ``clone``, grid search and cross-validation work with it."""
        params: dict[str, Any] = super().get_params(deep)
        named = namespace_name(params.get("backend"))
        if named is not None:
            params["backend"] = named
        return params

    # -- validation -------------------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        v = validation
        sizes = v.hidden(self.hidden_layer_sizes, "hidden_layer_sizes")
        v.choice(ACTIVATION_NAMES, self.activation, "activation")
        v.one_of(SOLVERS, self.solver, "solver")
        v.one_of(LEARNING_RATES, self.learning_rate, "learning_rate", "learning_rate values")
        v.one_of(INITS, self.init, "init")
        v.number("alpha", self.alpha, 0)
        if self.batch_size != "auto":
            try:
                v.integer("batch_size", self.batch_size)
            except ConfigError:
                raise ConfigError(f"batch_size must be 'auto' or an integer in [1, inf); got "
                                  f"{v.show(self.batch_size)}") from None  # fmt: skip
        v.number("learning_rate_init", self.learning_rate_init, 0, low_open=True)
        v.number("power_t", self.power_t, 0)
        v.integer("max_iter", self.max_iter)
        v.number("tol", self.tol, 0)
        v.number("momentum", self.momentum, 0, 1)
        v.number("validation_fraction", self.validation_fraction, 0, 1, low_open=True,
                 high_open=True)  # fmt: skip
        v.number("beta_1", self.beta_1, 0, 1, high_open=True)
        v.number("beta_2", self.beta_2, 0, 1, high_open=True)
        v.number("epsilon", self.epsilon, 0, low_open=True)
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == math.inf):
            try:
                v.integer("n_iter_no_change", self.n_iter_no_change)
            except ConfigError:
                raise ConfigError(f"n_iter_no_change must be an integer in [1, inf) or numpy.inf; "
                                  f"got {v.show(self.n_iter_no_change)}") from None  # fmt: skip
        v.integer("max_fun", self.max_fun)
        if isinstance(self.verbose, (bool, np.bool_)):
            pass
        else:
            v.integer("verbose", self.verbose, 0)
        v.number("weight_decay", self.weight_decay, 0)
        v.optional(v.number, "clip_norm", self.clip_norm, 0, low_open=True)
        v.integer("warmup", self.warmup, 0)
        dropout_rates(self.dropout, len(sizes), "dropout", "hidden_layer_sizes")
        for name in FLAGS:
            v.flag(name, getattr(self, name))
        self._check_rules()
        if self.dtype is not None:
            v.dtype(self.dtype)
        return sizes

    RULED = ("stream", "data_parallel", "devices", "checkpoint", "checkpoint_every", "warmup",
             "dropout")  # fmt: skip
    """The settings the estimators share the training plan's rules on (scikit-learn's contract
    ignores the others where they do not apply: ``momentum`` with adam, ``batch_size`` with
    lbfgs...)."""

    def _check_rules(self) -> None:
        """The training plan's rules between settings (:data:`xpnet.settings.RULES`), named as
        scikit-learn names them: ``solver='lbfgs'`` with ``stream`` or ``data_parallel``,
        ``devices`` without ``data_parallel``, ``checkpoint`` without ``checkpoint_every``."""
        values = {name: getattr(self, name) for name in self.RULED}
        values["dropout"] = self._dropout()
        for name in ("devices", "checkpoint_every"):
            settings.check(name, values[name])
        values.update(optimizer=self.solver, batch_size=self.batch_size,
                      schedule=self.learning_rate)  # fmt: skip
        given = [k for k in self.RULED if values[k] is not None and values[k] is not False
                 and not (k in ("warmup", "dropout") and not values[k])]  # fmt: skip
        settings.apply_rules(values, given, settings.estimator_name)

    def _dropout(self) -> float | tuple[float, ...]:
        """``dropout`` as the training plan holds it: a rate, or a tuple of them."""
        rates = self.dropout
        return tuple(map(float, rates)) if isinstance(rates, (list, tuple)) else float(rates)

    def _class_weighted(self, T: np.ndarray, w: np.ndarray | None,
                        incremental: bool) -> np.ndarray | None:  # fmt: skip
        """The sample weights of a fit on targets T (a classifier weighs its classes too)."""
        return w

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers; "
                                 f"{self.solver} is not stochastic")  # fmt: skip
        return True

    def _batch(self, n: int) -> int:
        """Rows a mini-batch: ``batch_size``, "auto" being 200, at most ``n``."""
        return min(200 if self.batch_size == "auto" else int(self.batch_size), n)

    def _dtype_for(self, X: Any) -> str:
        """The training dtype: ``dtype`` if set, else float32 for float32 X, else float64."""
        if self.dtype is not None:
            return validation.dtype(self.dtype)
        return "float32" if X.dtype == np.float32 else "float64"

    # -- the network as scikit-learn holds it -------------------------------------------------
    @property
    def _params(self) -> HostParams:
        """``coefs_`` and ``intercepts_`` as xpnet's parameter dict (W1, b1, ...)."""
        out: HostParams = {}
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True), 1):
            out[f"W{i}"], out[f"b{i}"] = np.asarray(W), np.asarray(b)
        return out

    def _set_params(self, params: HostParams) -> None:
        layers = len(params) // 2
        self.coefs_ = [params[f"W{i}"] for i in range(1, layers + 1)]
        self.intercepts_ = [params[f"b{i}"] for i in range(1, layers + 1)]

    @property
    def _spec(self) -> mlp.Spec:
        sizes = (int(self.coefs_[0].shape[0]), *(int(W.shape[1]) for W in self.coefs_))
        validation.choice(OUTPUT_LOSSES, self.out_activation_, "out_activation_")
        return mlp.Spec(sizes, ACTIVATION_NAMES[self.activation], self._loss_name(), True,
                        **self._loss_options())  # fmt: skip

    def _loss_name(self) -> str:
        """The xpnet loss of this estimator's output (:data:`OUTPUT_LOSSES`)."""
        return OUTPUT_LOSSES[self.out_activation_]

    def _loss_options(self) -> dict[str, float]:
        """The loss's own settings (a regressor's huber ``delta``, ``quantile``)."""
        return {}

    @property
    def _optimizer(self) -> _Rate:
        """scikit-learn's ``_optimizer.learning_rate``: the rate of the next update (for Adam,
        with the bias correction folded in, as scikit-learn reports it)."""
        config = self.__dict__.get("_opt_config")
        if config is None:
            raise AttributeError("_optimizer: no stochastic fit yet")
        rate = float(self.__dict__.get("_lr", optim.learning_rate(optim.from_config(config))))
        steps = float(self.__dict__.get("_steps", 0))
        found = _rate_schedule(config)
        if found is not None and found[0] != "constant":
            rate = float(optim.SCHEDULES[found[0]](*found[1:]).fn(np, np.float64(steps)))
        if self.solver == "adam" and steps:
            rate *= math.sqrt(1 - self.beta_2**steps) / (1 - self.beta_1**steps)
        return _Rate(rate)

    # -- training -----------------------------------------------------------------------------
    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def _output_activation(self) -> str:
        raise NotImplementedError

    def _check_memory(self, backend: Backend, X: Any, T: np.ndarray,
                      sizes: tuple[int, ...]) -> None:  # fmt: skip
        """The trainer's memory check of this fit, from its sizes alone."""
        spec = mlp.Spec((X.shape[1], *sizes, T.shape[1]), ACTIVATION_NAMES[self.activation],
                        "mse", True)  # fmt: skip
        lbfgs_fit = self.solver == "lbfgs"
        plan = Plan(optimizer=self.solver, stream=bool(self.stream),
                    batch_size=None if lbfgs_fit else self._batch(X.shape[0]),
                    dropout=0.0 if lbfgs_fit else self._dropout())  # fmt: skip
        trainer.check_memory(backend, spec, plan, X, X.shape[0])

    def _initialize(self, T: np.ndarray, n_features: int, sizes: tuple[int, ...],
                    rng: np.random.RandomState, dtype: str) -> None:  # fmt: skip
        """A first fit: scikit-learn's ``_initialize`` (weights drawn as it draws them)."""
        self.n_iter_, self.t_ = 0, 0
        self.n_outputs_ = int(T.shape[1])
        self.n_layers_ = len(sizes) + 2
        self.out_activation_ = self._output_activation()
        spec = mlp.Spec((n_features, *sizes, self.n_outputs_), ACTIVATION_NAMES[self.activation],
                        self._loss_name(), True, **self._loss_options())  # fmt: skip
        params = {k: v.astype(dtype) for k, v in initial_params(spec, self.init, rng).items()}
        self._set_params(params)
        # scikit-learn's _best_coefs: early stopping keeps the initial weights until a score
        self._best_params = (
            {k: v.copy() for k, v in params.items()} if self.early_stopping else None
        )
        self.loss_curve_: list[float] = []
        self.loss_: float | None = None
        self._no_improvement_count = 0
        self._fit_epoch, self._feed_state = 0, None
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.validation_loss_curve_: list[float] | None = []
            self.best_validation_score_: float | None = -math.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_, self.validation_scores_, self.best_validation_score_ = (
                math.inf, None, None)  # fmt: skip
            self.validation_loss_curve_ = None
        self._reset_optimizer()

    def _reset_optimizer(self) -> None:
        self._opt_state_host: Any = None
        self._opt_config: Any = None
        self._steps = 0
        self._lr = float(self.learning_rate_init)

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, *, incremental: bool,
             resume: bool = False) -> None:  # fmt: skip
        sizes = self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = _host(X, self.dtype)[0], _host(y, self.dtype)[0]
        if sample_weight is not None:
            sample_weight = _host(sample_weight, self.dtype)[0]
        first_pass = not hasattr(self, "coefs_") or not (self.warm_start or incremental or resume)
        # resuming sees the classes of the interrupted fit, as partial_fit does
        X, T = self._validate_input(X, y, incremental or resume, reset=first_pass)
        if hasattr(X, "toarray"):
            X = X.tocsr()  # rows are gathered a batch at a time
        dtype = self._dtype_for(X)
        T = np.asarray(T, dtype=dtype)
        if T.ndim == 1:
            T = T.reshape(-1, 1)
        if sample_weight is not None:
            sample_weight = validation.sample_weight(sample_weight, X.shape[0], dtype)
        sample_weight = self._class_weighted(T, sample_weight, incremental)
        backend = trainer.place(self.backend, self.device, dtype, self.data_parallel, self.devices)
        if self.data_parallel and backend.processes > 1:
            raise ConfigError("the estimators train data-parallel within one process; for a "
                              "multi-process job use xpnet train (or Network)")  # fmt: skip
        rng = check_random_state(self.random_state)
        if resume and getattr(self, "_split_state", None) is not None:
            rng = np.random.RandomState()
            rng.set_state(self._split_state)
        if first_pass:
            self._check_memory(backend, X, T, sizes)  # before any weight is drawn
            self._dropout_seed = _peek_seed(rng)
            self._initialize(T, X.shape[1], sizes, rng, dtype)
        else:
            self._continue(X, T)
        if self.solver == "lbfgs":
            self._fit_lbfgs(backend, X, T, sample_weight, resume)
        else:
            self._fit_stochastic(backend, X, T, sample_weight, rng, incremental, resume)
        if not all(np.all(np.isfinite(a)) for a in (*self.coefs_, *self.intercepts_)):
            raise DivergenceError(NON_FINITE, pass_index=int(self.n_iter_), params=self._params)

    def _continue(self, X: Any, T: np.ndarray) -> None:
        """A fit that goes on from ``coefs_`` (warm start, ``partial_fit``, resume, or weights
        set by hand): the data must fit the network, and missing state starts afresh."""
        if "out_activation_" not in self.__dict__:
            self.out_activation_ = self._output_activation()
        want = (X.shape[1], T.shape[1])
        have = (int(self.coefs_[0].shape[0]), int(self.coefs_[-1].shape[1]))
        if want != have:
            raise ValueError(f"the data ({want[0]} features, {want[1]} outputs) does not fit the "
                             f"network trained before ({have[0]} features, {have[1]} outputs); "
                             "set warm_start=False")  # fmt: skip
        defaults = {"n_iter_": 0, "t_": 0, "loss_curve_": [], "loss_": None,
                    "_no_improvement_count": 0, "_best_params": None, "validation_scores_": None,
                    "validation_loss_curve_": None,
                    "best_validation_score_": None, "best_loss_": math.inf,
                    "n_outputs_": T.shape[1], "n_layers_": len(self.coefs_) + 1,
                    "_fit_epoch": 0, "_feed_state": None}  # fmt: skip
        for name, value in defaults.items():
            if name not in self.__dict__:
                setattr(self, name, value)
        if "_opt_config" not in self.__dict__:
            self._reset_optimizer()
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -math.inf
            self.best_loss_ = None
        if self.early_stopping and self.validation_loss_curve_ is None:
            self.validation_loss_curve_ = [math.nan] * len(self.validation_scores_ or ())

    def _fit_lbfgs(self, backend: Backend, X: Any, T: np.ndarray, w: np.ndarray | None,
                   resume: bool) -> None:  # fmt: skip
        """L-BFGS through the trainer and the engine like every other solver: ``verbose`` is a
        printer plug-in, checkpoints are taken between iterations (a resumed search starts
        afresh from the saved weights)."""
        plan = Plan(epochs=int(self.max_iter), optimizer="lbfgs", reg=float(self.alpha),
                    tol=float(self.tol), max_fun=int(self.max_fun))  # fmt: skip
        state = trainer.Resume()
        if resume:
            curve = np.asarray(self.loss_curve_, dtype=np.float64)
            state = trainer.Resume(
                epoch=self._fit_epoch, history=History(np.arange(curve.size), curve)
            )
        training = trainer.start(backend, self._spec, plan, self._params, X, T, weights=w,
                                 resume=state)  # fmt: skip
        plugins: list[Callback] = []
        if self.verbose:
            plugins.append(Printer(lambda i, v: f"Iteration {i}, loss = {v:.8f}"))

        def save(run: Run) -> None:
            self._keep_lbfgs(training)
            self.save(str(self.checkpoint))

        diverged: DivergenceError | None = None
        try:
            training.fit(plan.epochs, callbacks=plugins, hint="scale the data",
                         checkpoint=save if self.checkpoint is not None else None,
                         checkpoint_every=self.checkpoint_every)  # fmt: skip
        except DivergenceError as exc:
            diverged = exc
        finally:
            self._keep_lbfgs(training)
        self._fit_epoch = 0  # no fit in progress
        if diverged is not None:
            raise DivergenceError(f"{NON_FINITE} ({diverged})", pass_index=diverged.pass_index,
                                  params=self._params, losses=diverged.losses,
                                  value=diverged.value) from None  # fmt: skip
        feed = training.feed
        if not (isinstance(feed, feeds.LBFGS) and feed.converged):
            message = training.run.stop or "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
            lbfgs.warn_unconverged(self.n_iter_, int(self.max_iter), message, ConvergenceWarning)

    def _keep_lbfgs(self, training: trainer.Training) -> None:
        """Copy an L-BFGS run's state into the fitted attributes."""
        run = training.run
        self._set_params(run.host_params())
        self.loss_curve_ = [float(v) for v in run.history.losses]
        self.n_iter_ = self._fit_epoch = run.epoch
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else run.reference
        self.best_loss_ = min(self.loss_curve_, default=self.loss_)

    def _loss_grad_lbfgs(self, packed: np.ndarray, X: Any, y: np.ndarray, sample_weight: Any,
                         *unused: Any) -> tuple[float, np.ndarray]:  # fmt: skip
        """scikit-learn's objective for L-BFGS: set the weights from the flat vector ``packed``
        (every layer's weights, then the biases) and return the loss and its flat gradient on
        X and the encoded targets y (n, n_outputs_)."""
        spec = self._spec
        self._set_params(lbfgs.unpack(spec, packed, self.coefs_[0].dtype))
        backend = select(self.backend, self.device, self.coefs_[0].dtype.name)
        T = np.asarray(y, dtype=self.coefs_[0].dtype).reshape(np.shape(y)[0], -1)
        w = None if sample_weight is None else np.asarray(sample_weight)
        f = lbfgs.value_and_grad(backend, Objective(spec, float(self.alpha), "mean"), X, T, w)
        return f(lbfgs.pack(spec, self._params))

    def _make_optimizer(self, n: int, n_batches: int, incremental: bool) -> optim.Optimizer:
        """scikit-learn's optimizer for this fit; ``partial_fit`` goes on with the one before."""
        rate: float | optim.Schedule = self._lr
        sgd = self.solver == "sgd"
        if sgd and self.learning_rate == "invscaling":
            kept = _rate_schedule(self._opt_config)
            if incremental and kept is not None and tuple(kept[3:5]) == (n_batches, n):
                return optim.from_config(self._opt_config)  # the same epochs: the same program
            anchor = (self.t_, self._steps, False) if incremental and self._steps else (
                self.t_, 0, True)  # fmt: skip
            rate = optim.epoch_inverse_scaling(float(self.learning_rate_init), self.power_t,
                                               n_batches, n, *anchor)  # fmt: skip
        elif self.learning_rate == "cosine":
            rate = optim.cosine(float(self.learning_rate_init), int(self.max_iter) * n_batches,
                                warmup=int(self.warmup))  # fmt: skip
        clip = () if self.clip_norm is None else (optim.clip_by_global_norm(self.clip_norm),)
        if sgd:
            # scikit-learn's momentum carries the rate: v = m v - lr g (the same as PyTorch's
            # form for a constant rate, not when the rate changes)
            momentum = float(self.momentum)
            tail = (optim.trace(momentum, bool(self.nesterovs_momentum)),) if momentum else ()
            # an adaptive rate shrinks in the optimizer's state: the compiled epoch is kept
            adaptive = self.learning_rate == "adaptive" and not isinstance(rate, optim.Schedule)
            scale = optim.inject_learning_rate if adaptive else optim.scale_by_learning_rate
            return optim.chain(*clip, scale(rate), *tail)  # type: ignore[arg-type]
        if self.solver == "adamw":
            return optim.adamw(rate, self.beta_1, self.beta_2, self.epsilon, self.weight_decay,
                               self.clip_norm)  # fmt: skip
        return optim.adam(rate, self.beta_1, self.beta_2, self.epsilon, 0.0, self.clip_norm,
                          sklearn_eps=True)  # fmt: skip

    def _fit_stochastic(self, backend: Backend, X: Any, T: np.ndarray, w: np.ndarray | None,
                        rng: np.random.RandomState, incremental: bool, resume: bool) -> None:  # fmt: skip
        if not (incremental or resume):
            self._reset_optimizer()  # scikit-learn starts a new optimizer every fit
        if not resume:
            self._fit_epoch, self._feed_state = 0, None
            self._split_state = rng.get_state()
        early = bool(self.early_stopping)
        X_val: Any = None
        y_val: Any = None
        w_val: Any = None
        if early:
            # scikit-learn stratifies on the encoded labels of a one-output classifier (binary;
            # not multiclass or multilabel), as booleans
            stratify = T > 0.5 if is_classifier(self) and T.shape[1] == 1 else None
            parts = train_test_split(X, T, *(() if w is None else (w,)), random_state=rng,
                                     test_size=self.validation_fraction, stratify=stratify)  # fmt: skip
            X, X_val, T, T_val = parts[:4]
            if w is not None:
                w, w_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")  # fmt: skip
            y_val = self._decode(T_val)
        n = X.shape[0]
        bs = self._batch(n)
        n_batches = -(-n // bs)
        epochs = self._fit_epoch + 1 if incremental else int(self.max_iter)
        plan = Plan(epochs=epochs, optimizer=self.solver, batch_size=bs, shuffle=self.shuffle,
                    stream=bool(self.stream), reg=float(self.alpha), dropout=self._dropout(),
                    dropout_seed=int(getattr(self, "_dropout_seed", 0)))  # fmt: skip
        if resume and self._opt_config is not None:
            opt = optim.from_config(self._opt_config)  # the interrupted fit's, as it was
        else:
            opt = self._make_optimizer(n, n_batches, incremental)
        order = None
        if resume and self._feed_state is not None:
            rng.set_state(self._feed_state["rng"])
            order = self._feed_state["order"]
        training = trainer.start(backend, self._spec, plan, self._params, X, T, opt=opt,
                                 weights=w, rng=rng, order=order,
                                 resume=trainer.Resume(self._opt_state_host, self._fit_epoch,
                                                       steps_before=self.t_ - n * self._fit_epoch))  # fmt: skip
        run, feed = training.run, training.feed
        self.n_iter_ = self._fit_epoch  # scikit-learn counts the iterations of this fit

        def score(params: HostParams) -> float:
            value = self._score_params(params, X_val, y_val, w_val)
            if self.verbose:
                print(f"Validation score: {value:f}")
            return value

        stopping = EarlyStopping(
            self.n_iter_no_change,
            self.tol, score=score if early else None,
            shrink=5.0 if self.learning_rate == "adaptive" and self.solver == "sgd" else None,
            act=not incremental, count=self._no_improvement_count,
            best=self.best_validation_score_ if early else self.best_loss_,
            scores=self.validation_scores_ if early else None,
            best_params=self._best_params if early else None,
        )  # fmt: skip
        plugins: list[Callback] = []
        if self.verbose:
            plugins.append(Printer(lambda i, v: f"Iteration {i}, loss = {v:.8f}"))
        plugins.append(stopping)  # after the printer: scikit-learn prints the loss first
        if early:  # the held-out loss every epoch, beside loss_curve_ (appended in place)
            dense = X_val.toarray() if hasattr(X_val, "toarray") else X_val
            plugins.append(ValidationLoss(dense, T_val, w_val, losses=self.validation_loss_curve_))

        def save(r: Run) -> None:
            self._keep(r, feed, stopping, n, n_batches, early)
            self.save(str(self.checkpoint))

        diverged: DivergenceError | None = None
        try:
            training.fit(epochs, callbacks=plugins, hint="try a smaller learning_rate_init",
                         checkpoint=save if self.checkpoint is not None else None,
                         checkpoint_every=self.checkpoint_every)  # fmt: skip
        except DivergenceError as exc:
            diverged = exc
        finally:
            self._keep(run, feed, stopping, n, n_batches, early)
        self._fit_epoch = 0  # no fit in progress
        if diverged is not None:
            self._diverged(diverged, n, early)
        if early and self._best_params is not None:
            self._set_params({k: v.copy() for k, v in self._best_params.items()})
        if stopping.stopped and self.verbose:
            what = "Validation score" if early else "Training loss"
            print(f"{what} did not improve more than tol={self.tol:f} for "
                  f"{self.n_iter_no_change} consecutive epochs. Stopping.")  # fmt: skip
        if (
            diverged is None
            and not (stopping.stopped or incremental)
            and (self.n_iter_ >= self.max_iter)
        ):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=3)  # fmt: skip

    def _diverged(self, error: DivergenceError, n: int, early: bool) -> None:
        """A loss that stopped being finite (or ran away): without early stopping, scikit-learn's
        ValueError (the estimator keeps the last finite weights); with it, that epoch scores NaN
        (as scikit-learn scores the NaN weights it goes on with) and the best validation weights
        are kept."""
        if not early:
            what = NON_FINITE if not math.isfinite(error.value) else "Training diverged."
            raise DivergenceError(f"{what} ({error}; the estimator keeps the weights of epoch "
                                  f"{self.n_iter_})", pass_index=error.pass_index,
                                  params=self._params, losses=error.losses,
                                  value=error.value) from None  # fmt: skip
        self.loss_curve_.append(error.value)
        self.loss_ = error.value
        self.n_iter_ += 1
        self.t_ += n
        if self.validation_scores_ is not None:  # the diverged epoch's weights score nothing
            self.validation_scores_.append(math.nan)
        if self.validation_loss_curve_ is not None:
            self.validation_loss_curve_.append(math.nan)
        warnings.warn(f"{error}: training stopped there, and the weights of the best validation "
                      "score are kept", ConvergenceWarning, stacklevel=4)  # fmt: skip

    def _keep(self, run: Run, feed: Any, stopping: EarlyStopping, n: int,
              n_batches: int, early: bool) -> None:  # fmt: skip
        """Copy the run's state (since the last copy) into the fitted attributes."""
        new = run.epoch - self._fit_epoch
        self.loss_curve_ += [float(v) for v in run.history.losses[-new:]] if new else []
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.n_iter_ += new
        self.t_ += n * new
        self._steps += n_batches * new
        self._fit_epoch = run.epoch
        self._set_params(run.host_params())
        self._opt_state_host = run.host_state()
        self._opt_config = run.transform.config
        self._lr = optim.rate_of(run.transform, run.opt_state)
        self._no_improvement_count = stopping.count
        self._feed_state = feed.state()
        if early:
            self.validation_scores_ = stopping.scores
            self.best_validation_score_ = stopping.best
            self._best_params = stopping.best_params
        else:
            self.best_loss_ = stopping.best

    def resume(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Continue a fit interrupted by a crash, from the estimator loaded from its last
        checkpoint (``MLPClassifier.load(path)``), on the same X, y, until ``max_iter`` epochs:
        the result equals the uninterrupted fit (bit for bit on NumPy). Returns self."""
        check_is_fitted(self, "coefs_")
        if getattr(self, "_fit_epoch", 0) == 0:
            raise ConfigError("this estimator has no fit in progress to resume (it finished, or "
                              "was not saved by a checkpoint); call fit")  # fmt: skip
        self._fit(X, y, sample_weight, incremental=False, resume=True)
        return self

    # -- predictions --------------------------------------------------------------------------
    def _decode(self, T: np.ndarray) -> np.ndarray:
        """Targets as the user gave them, from their encoding T (n, n_outputs_)."""
        raise NotImplementedError

    def _score_function(self) -> Any:
        raise NotImplementedError

    def _score_params(self, params: HostParams, X: Any, y: Any, w: Any) -> float:
        """scikit-learn's validation score of ``params`` on X, y (NaN when they predict NaN)."""
        kept = self._params
        self._set_params(params)
        try:
            out = self._outputs(X)
        except DataError:  # outputs that are not finite
            return math.nan
        finally:
            self._set_params(kept)
        return float(self._score_function()(y, self._from_outputs(out), sample_weight=w))

    def _from_outputs(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _outputs(self, X: Any) -> np.ndarray:
        """The network's outputs (n, n_outputs_) for validated host X, in the weights' dtype."""
        dtype = np.asarray(self.coefs_[0]).dtype
        backend = select(self.backend, self.device, validation.dtype(dtype))
        out = inference.predict(backend, self._spec, backend.tree_asarray(self._params), X)
        return out.astype(dtype, copy=False)

    def _forward(self, X: Any) -> tuple[np.ndarray, Any]:
        check_is_fitted(self, "coefs_")
        X, kind = _host(X, self.dtype)
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32))  # fmt: skip
        if hasattr(X, "toarray"):
            X = X.tocsr()
        return self._outputs(X), kind

    @staticmethod
    def _as_kind(a: np.ndarray, kind: tuple[str, str] | None) -> Any:
        if kind is None or a.dtype.kind not in "iufb":
            return a
        float_dtype = "float32" if a.dtype == np.float32 else "float64"
        target = select(kind[0], kind[1], float_dtype)
        return target.asarray(a, dtype=a.dtype if a.dtype.kind in "iub" else None)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True
        return tags

    # -- model files --------------------------------------------------------------------------
    def to_onnx(self, path: str | Path) -> Path:
        """Write the fitted estimator as an ONNX model (see :mod:`xpnet.export`): ``predict``'s
        labels and ``predict_proba``'s probabilities (a regressor's predictions), in the
        weights' dtype, traced from the same forward pass. Needs ndonnx (``pip install
        'xpnet[onnx]'``). Returns the path."""
        from xpnet import export

        check_is_fitted(self, "coefs_")
        if not is_classifier(self):
            kind, classes = "regressor", None
        elif self._label_binarizer.y_type_ == "multilabel-indicator":
            kind, classes = "multilabel", None
        else:
            kind, classes = "classifier", self.classes_
        model = export.onnx_model(self._spec, self._params, kind=kind, classes=classes,
                                  metadata={"object": type(self).__name__})  # fmt: skip
        return export.save(model, path)

    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to an xpnet model file (see :mod:`xpnet.persist`; no
        pickle): its parameters (``get_params()``), weights, optimizer state and everything a
        later ``partial_fit``, warm start or :meth:`resume` needs. Returns the path."""
        check_is_fitted(self, "coefs_")
        return files.write(self, path)

    @classmethod
    def load(cls, path: str | Path, *, backend: str | None = None,
             device: str | None = None) -> Any:  # fmt: skip
        """Read an estimator written by :meth:`save` (onto ``backend``/``device`` if given, else
        those it was built with). Raises :class:`~xpnet.errors.ModelFileError` on a bad file."""
        return files.read(cls, path, backend=backend, device=device)


def _rate_schedule(config: Any) -> tuple[Any, ...] | None:
    """The schedule description inside an optimizer description (None if it has none)."""
    if not isinstance(config, (tuple, list)) or not config:
        return None
    if config[0] == "scale_by_learning_rate":
        return tuple(config[1])
    for part in config[1:]:
        found = _rate_schedule(part)
        if found is not None:
            return found
    return None

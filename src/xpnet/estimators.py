"""scikit-learn compatible estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow ``sklearn.neural_network``'s names and meanings (``hidden_layer_sizes``, ``alpha``,
``batch_size``, ``learning_rate_init``, ``max_iter``, ``early_stopping`` ...) and add ``backend``,
``device`` and ``dtype``. Training is mini-batch: the batch order is drawn on the host from
``random_state`` (the same on every backend) and each epoch runs as one compiled program on JAX
(:func:`xpnet.train.make_epoch`). With ``stream=True`` the data stays on the host (in memory or a
memory-mapped ``.npy``) and goes to the device a block of batches at a time, the next block sent
while the current one trains (:mod:`xpnet.stream`): data larger than device memory. With
``data_parallel=True`` (JAX) each batch is split over ``devices`` devices (default: all JAX
sees) and streamed so; parameters and optimizer state are replicated and XLA sums the gradients
across devices inside the compiled steps: the results are those of one device. Fitted arrays are
NumPy; ``predict`` returns arrays of the input's kind (a JAX array in, a JAX array out). Needs scikit-learn (``pip install 'xpnet[data]'``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xpnet import loop, mlp, optim, stream, train
from xpnet.backends import Backend, array_kind, check_dtype, data_parallel, select
from xpnet.errors import ConfigError, DivergenceError
from xpnet.init import initial_params

ACTIVATION_NAMES = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid",
                    "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu",
                    "softplus": "softplus", "gelu": "gelu"}  # fmt: skip
SOLVERS = ("sgd", "adam", "adamw")
LEARNING_RATES = ("constant", "invscaling", "adaptive", "cosine")
INITS = ("sklearn", "glorot", "he", "lecun")


def _bad(name: str, value: Any, valid: str) -> ConfigError:
    return ConfigError(f"{name} must be {valid}; got {value!r}")


def _number(name: str, value: Any, low: float, high: float = math.inf, *,
            low_open: bool = False, high_open: bool = False, integer: bool = False) -> None:  # fmt: skip
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open or high == math.inf else "]"
        what = "an integer" if integer else "a number"
        raise _bad(name, value, f"{what} in {lo}{low:g}, {high:g}{hi}")


class _BaseMLP(BaseEstimator):  # type: ignore[misc]
    _loss = "cross_entropy"
    _spec: mlp.Spec

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
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
        init: str = "sklearn",
        backend: str | None = None,
        device: str | None = None,
        dtype: str = "float64",
        stream: bool = False,
        data_parallel: bool = False,
        devices: int | None = None,
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
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.init = init
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.stream = stream
        self.data_parallel = data_parallel
        self.devices = devices

    # -- validation -------------------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise _bad("hidden_layer_sizes", self.hidden_layer_sizes, "positive integers")
        for name, table in (("activation", ACTIVATION_NAMES), ("solver", SOLVERS),
                            ("learning_rate", LEARNING_RATES), ("init", INITS)):  # fmt: skip
            if getattr(self, name) not in table:
                raise _bad(name, getattr(self, name), "one of " + ", ".join(table))
        _number("alpha", self.alpha, 0)
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, numbers.Integral)
                                                and not isinstance(self.batch_size, bool)
                                                and self.batch_size >= 1)):  # fmt: skip
            raise _bad("batch_size", self.batch_size, "'auto' or an integer in [1, inf)")
        _number("learning_rate_init", self.learning_rate_init, 0, low_open=True)
        _number("power_t", self.power_t, 0)
        _number("max_iter", self.max_iter, 1, integer=True)
        _number("tol", self.tol, 0)
        _number("momentum", self.momentum, 0, 1)
        _number("validation_fraction", self.validation_fraction, 0, 1, low_open=True,
                high_open=True)  # fmt: skip
        _number("beta_1", self.beta_1, 0, 1, high_open=True)
        _number("beta_2", self.beta_2, 0, 1, high_open=True)
        _number("epsilon", self.epsilon, 0, low_open=True)
        _number("n_iter_no_change", self.n_iter_no_change, 1, integer=True)
        _number("weight_decay", self.weight_decay, 0)
        if self.clip_norm is not None:
            _number("clip_norm", self.clip_norm, 0, low_open=True)
        if self.devices is not None:
            _number("devices", self.devices, 1, integer=True)
            if not self.data_parallel:
                raise ConfigError("devices is the device count of data-parallel training; set "
                                  "data_parallel=True with it")  # fmt: skip
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping",
                     "stream", "data_parallel"):  # fmt: skip
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise _bad(name, getattr(self, name), "True or False")
        check_dtype(self.dtype)
        return tuple(int(s) for s in sizes)

    def _optimizer(self, lr: float, n_batches: int) -> optim.Optimizer:
        if self.learning_rate == "invscaling":
            rate: float | optim.Schedule = optim.inverse_scaling(lr, self.power_t)
        elif self.learning_rate == "cosine":
            rate = optim.cosine(lr, self.max_iter * n_batches)
        else:
            rate = lr
        if self.solver == "sgd":
            return optim.sgd(rate, momentum=self.momentum, nesterov=bool(
                self.nesterovs_momentum and self.momentum > 0), clip_norm=self.clip_norm)  # fmt: skip
        if self.solver == "adamw":
            return optim.adam(rate, self.beta_1, self.beta_2, self.epsilon, self.weight_decay,
                              self.clip_norm)  # fmt: skip
        # "adam" means scikit-learn's Adam here: this estimator is a drop-in for its MLP
        return optim.adam(rate, self.beta_1, self.beta_2, self.epsilon, 0.0, self.clip_norm,
                          sklearn_eps=True)  # fmt: skip

    # -- data ---------------------------------------------------------------------------------
    def _host(self, X: Any) -> tuple[Any, tuple[str, str] | None]:
        kind = array_kind(X)
        if kind is not None:
            X = select(kind[0], kind[1], check_dtype(self.dtype)).to_numpy(X)
        return X, kind

    def _targets(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, *, incremental: bool) -> None:
        sizes = self._check_params()
        X, y = self._host(X)[0], self._host(y)[0]
        reset = not (incremental or self.warm_start) or not hasattr(self, "coefs_")
        streamed = bool(self.stream or self.data_parallel)
        # streamed float32 data (a memory map, say) stays as it is: rows convert when sent
        X, y = validate_data(self, X, y, reset=reset,
                             dtype=[np.float64, np.float32] if streamed else np.float64,
                             multi_output=self._loss == "mse", y_numeric=self._loss == "mse")  # fmt: skip
        T = self._targets(y)
        backend = select(self.backend, self.device, check_dtype(self.dtype))
        if self.data_parallel:
            backend = data_parallel(backend, self.devices)
            if backend.processes > 1:
                raise ConfigError("the estimators train data-parallel within one process; for a "
                                  "multi-process job use xpnet train (or Network)")  # fmt: skip
        rng = check_random_state(self.random_state)
        spec = mlp.Spec((X.shape[1], *sizes, T.shape[1]), ACTIVATION_NAMES[self.activation],
                        self._loss, True)  # fmt: skip
        if reset:
            self._params = initial_params(spec, self.init, rng)
            self.loss_curve_: list[float] = []
            self.validation_scores_: list[float] | None = [] if self.early_stopping else None
            self.best_loss_: float | None = math.inf
            self.best_validation_score_: float | None = -math.inf if self.early_stopping else None
            self.t_ = 0
            self.n_iter_ = 0
            self._no_improvement = 0
            self._lr = float(self.learning_rate_init)
            self._opt_state_host = None
        elif getattr(self, "_spec", spec) != spec:
            raise ValueError(f"the data does not fit the network trained before (sizes "
                             f"{self._spec.sizes} vs {spec.sizes}); set warm_start=False")  # fmt: skip
        self._spec = spec

        early = self.early_stopping and not incremental
        X_val: Any = None
        y_val: Any = None
        if early:
            stratify = y if self._loss == "cross_entropy" else None
            X, X_val, T, _, y, y_val = train_test_split(
                X, T, y, random_state=rng, test_size=self.validation_fraction,
                stratify=stratify,
            )  # fmt: skip
        n = X.shape[0]
        bs = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        n_batches = -(-n // bs)
        xp = backend.xp
        params = backend.tree_asarray(self._params)
        opt = self._optimizer(self._lr, n_batches)
        state = opt.init(xp, params) if self._opt_state_host is None else self._opt_state_host
        state = _tree_to(backend, state)
        epoch = _epochs(backend, spec, float(self.alpha), X, T, bs, streamed)
        run = epoch(opt)
        iterations = 1 if incremental else self.max_iter
        best_params = None
        order = np.arange(n)
        for _ in range(iterations):
            if self.shuffle:  # as scikit-learn shuffles: the same rng calls, the same order
                idx = np.arange(n)
                rng.shuffle(idx)
                order = order[idx]
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
                (params, state), loss = run((params, state), order)
            loss = float(backend.to_numpy(loss))
            if not math.isfinite(loss):
                self._params = backend.tree_to_numpy(params)
                raise DivergenceError(
                    f"training diverged at iteration {self.n_iter_ + 1} (loss {loss}); "
                    "try a smaller learning_rate_init", pass_index=self.n_iter_, losses=None,
                )  # fmt: skip
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if early:
                self._params = backend.tree_to_numpy(params)
                score = self._score_host(X_val, y_val)
                assert self.validation_scores_ is not None
                self.validation_scores_.append(score)
                assert self.best_validation_score_ is not None
                improved = score > self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = self._params
                self.best_loss_ = None
            else:
                assert self.best_loss_ is not None
                improved = loss < self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, loss)
            self._no_improvement = 0 if improved else self._no_improvement + 1
            if incremental or self._no_improvement <= self.n_iter_no_change:
                continue
            if self.learning_rate == "adaptive" and self.solver == "sgd" and self._lr > 1e-6:
                self._lr /= 5
                self._no_improvement = 0
                opt = self._optimizer(self._lr, n_batches)  # same state layout, new rate
                run = epoch(opt)
                continue
            break
        else:
            if not incremental and self.n_iter_ >= self.max_iter:
                warnings.warn(f"the optimizer reached max_iter={self.max_iter} before the loss "
                              "converged", ConvergenceWarning, stacklevel=3)  # fmt: skip
        self._params = backend.tree_to_numpy(params)
        self._opt_state_host = _tree_host(backend, state)
        if early and best_params is not None:
            self._params = best_params

    # -- fitted model -------------------------------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        check_is_fitted(self, "_params")
        return [self._params[f"W{i}"] for i in range(1, self._spec.n_layers + 1)]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        check_is_fitted(self, "_params")
        return [self._params[f"b{i}"] for i in range(1, self._spec.n_layers + 1)]

    @property
    def n_layers_(self) -> int:
        check_is_fitted(self, "_params")
        return self._spec.n_layers + 1

    @property
    def n_outputs_(self) -> int:
        check_is_fitted(self, "_params")
        return self._spec.sizes[-1]

    def _forward(self, X: Any) -> tuple[np.ndarray, tuple[str, str] | None]:
        check_is_fitted(self, "_params")
        X, kind = self._host(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        backend = select(self.backend, self.device, check_dtype(self.dtype))
        return loop.predict(backend, self._spec, backend.tree_asarray(self._params), X), kind

    @staticmethod
    def _as_kind(a: np.ndarray, kind: tuple[str, str] | None, dtype: str) -> Any:
        if kind is None:
            return a
        target = select(kind[0], kind[1], dtype)
        return target.asarray(a, dtype=a.dtype if a.dtype.kind in "iub" else None)

    def _score_host(self, X: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


Epoch = Callable[[Any, np.ndarray], tuple[Any, Any]]


def _epochs(
    backend: Backend,
    spec: mlp.Spec,
    alpha: float,
    X: np.ndarray,
    T: np.ndarray,
    batch_size: int,
    streamed: bool,
) -> Callable[[optim.Optimizer], Epoch]:
    """Return ``epoch(optimizer) -> run(carry, order) -> (carry, mean loss)`` for X (n, n_in),
    T (n, n_out) on the host: streamed from there block by block, or moved to the device once."""
    if streamed:

        def streamed_epoch(opt: optim.Optimizer) -> Epoch:
            block = train.cached_block(backend, spec, opt, alpha)
            return lambda carry, order: stream.epoch(backend, block, carry, X, T, order,
                                                     batch_size)  # fmt: skip

        return streamed_epoch
    Xd, Td = backend.asarray(X), backend.asarray(T)

    def resident_epoch(opt: optim.Optimizer) -> Epoch:
        run = train.cached_epoch(backend, spec, opt, alpha, X.shape[0], batch_size)
        return lambda carry, order: run(carry, Xd, Td, backend.asarray(order, dtype="int32"))

    return resident_epoch


def _tree_to(backend: Backend, state: Any) -> Any:
    """Move an optimizer state (NamedTuples of arrays and dicts) onto ``backend``."""
    if isinstance(state, dict):
        return {k: _tree_to(backend, v) for k, v in state.items()}
    if isinstance(state, tuple):
        return type(state)(*(_tree_to(backend, v) for v in state))
    if isinstance(state, np.ndarray):
        return backend.asarray(state)
    return state


def _tree_host(backend: Backend, state: Any) -> Any:
    """The inverse of :func:`_tree_to`: NumPy copies, so the estimator pickles."""
    if isinstance(state, dict):
        return {k: _tree_host(backend, v) for k, v in state.items()}
    if isinstance(state, tuple):
        return type(state)(*(_tree_host(backend, v) for v in state))
    if state is None or isinstance(state, (int, float)):
        return state
    return backend.to_numpy(state)


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron classifier (softmax output, cross-entropy), drop-in for
    ``sklearn.neural_network.MLPClassifier`` on any xpnet backend. See the module docstring."""

    _loss = "cross_entropy"

    def _targets(self, y: np.ndarray) -> np.ndarray:
        check_classification_targets(y)
        keep = getattr(self, "_partial", False) or (self.warm_start and hasattr(self, "_params"))
        if not keep or not hasattr(self, "classes_"):
            self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"the classifier needs samples of at least 2 classes; got 1 class "
                             f"({self.classes_[0]!r})")  # fmt: skip
        index = np.searchsorted(self.classes_, y)
        index = np.minimum(index, self.classes_.size - 1)
        if np.any(self.classes_[index] != y):
            unknown = np.setdiff1d(np.unique(y), self.classes_)[:5].tolist()
            raise ValueError(f"y holds labels {unknown} that are not in classes_ "
                             f"{self.classes_.tolist()}")  # fmt: skip
        return np.eye(self.classes_.size)[index]

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n_samples, n_features) and class labels y (n_samples,). Returns self."""
        self._partial = False
        self._fit(X, y, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on X, y. ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "coefs_") or not hasattr(self, "_params"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = np.unique(np.asarray(classes))
        self._partial = True
        try:
            self._fit(X, y, incremental=True)
            return self
        finally:
            self._partial = False

    def predict_proba(self, X: Any) -> Any:
        """Return class probabilities (n_samples, n_classes) in the input's array kind."""
        out, kind = self._forward(X)
        return self._as_kind(out, kind, check_dtype(self.dtype))

    def predict(self, X: Any) -> Any:
        """Return class labels (n_samples,) (in the input's kind for numeric labels)."""
        out, kind = self._forward(X)
        labels = self.classes_[np.argmax(out, axis=1)]
        return (
            self._as_kind(labels, kind, check_dtype(self.dtype))
            if labels.dtype.kind in "iuf"
            else labels
        )

    def _score_host(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(accuracy_score(y, self.predict(X)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron regressor (identity output, half squared error), drop-in for
    ``sklearn.neural_network.MLPRegressor`` on any xpnet backend. See the module docstring."""

    _loss = "mse"

    def _targets(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on X (n_samples, n_features) and targets y (n_samples,) or (n_samples, n_targets)."""
        self._fit(X, y, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch on X, y."""
        self._fit(X, y, incremental=True)
        return self

    def predict(self, X: Any) -> Any:
        """Return predictions (n_samples,) or (n_samples, n_targets) in the input's kind."""
        out, kind = self._forward(X)
        if self._y_1d:
            out = out[:, 0]
        return self._as_kind(out, kind, check_dtype(self.dtype))

    def _score_host(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(r2_score(y, self.predict(X)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n_samples, n_targets)
        return tags

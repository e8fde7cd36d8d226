"""scikit-learn compatible estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow ``sklearn.neural_network``'s names and meanings (``hidden_layer_sizes``, ``alpha``,
``batch_size``, ``learning_rate_init``, ``max_iter``, ``early_stopping`` ...) and add ``backend``,
``device`` and ``dtype``. They translate those settings into xpnet's training engine
(:mod:`xpnet.engine`): mini-batch epochs whose order is drawn on the host from ``random_state``
(the same on every backend), each epoch one compiled program on JAX; scikit-learn's stopping rule
and adaptive rate are the :class:`~xpnet.callbacks.EarlyStopping` plug-in. With ``stream=True``
the data stays on the host (in memory or a memory-mapped ``.npy``) and goes to the device a block
of batches at a time, the next block sent while the current one trains (:mod:`xpnet.stream`):
data larger than device memory. With ``data_parallel=True`` (JAX) each batch is split over
``devices`` devices (default: all JAX sees) and streamed so; parameters and optimizer state are
replicated and XLA sums the gradients across devices inside the compiled steps: the results are
those of one device. ``checkpoint``/``checkpoint_every`` save the estimator every that many
epochs; :meth:`~_BaseMLP.save` and ``load`` use xpnet's model files (no pickle), and
:meth:`~_BaseMLP.resume` continues an interrupted fit to the same result. Fitted arrays are
NumPy; ``predict`` returns arrays of the input's kind (a JAX array in, a JAX array out). Needs
scikit-learn (``pip install 'xpnet[data]'``).
"""

from __future__ import annotations

import datetime
import math
import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xpnet import engine, mlp, optim, parallel, persist, validation
from xpnet._typing import HostParams
from xpnet.backends import array_kind, select
from xpnet.callbacks import Callback, Checkpoint, EarlyStopping, Printer
from xpnet.errors import ConfigError, ModelFileError
from xpnet.init import initial_params
from xpnet.train import Objective

ACTIVATION_NAMES = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid",
                    "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu",
                    "softplus": "softplus", "gelu": "gelu"}  # fmt: skip
SOLVERS = ("sgd", "adam", "adamw")
LEARNING_RATES = ("constant", "invscaling", "adaptive", "cosine")
INITS = ("sklearn", "glorot", "he", "lecun")
FLAGS = ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping", "stream",
         "data_parallel")  # fmt: skip
FITTED = ("n_iter_", "t_", "best_loss_", "validation_scores_", "best_validation_score_",
          "_no_improvement", "_lr", "_fit_epoch")  # fmt: skip
"""Fitted state kept in model files beside the arrays."""


class _BaseMLP(BaseEstimator):  # type: ignore[misc]
    _loss = "cross_entropy"
    _spec: mlp.Spec
    _split_state: tuple[Any, ...]
    """The generator's state before the early-stopping split (to split again on resume)."""
    _feed_state: dict[str, Any] | None
    """The batch order and shuffling generator of the fit in progress."""
    _best_params: HostParams | None
    """Early stopping's best parameters so far, in a fit in progress."""

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
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.init = init
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.stream = stream
        self.data_parallel = data_parallel
        self.devices = devices
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

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
        v.integer("n_iter_no_change", self.n_iter_no_change)
        v.number("weight_decay", self.weight_decay, 0)
        v.optional(v.number, "clip_norm", self.clip_norm, 0, low_open=True)
        for name in FLAGS:
            v.flag(name, getattr(self, name))
        v.optional(v.integer, "devices", self.devices)
        v.devices(self.devices, self.data_parallel)
        v.optional(v.integer, "checkpoint_every", self.checkpoint_every)
        if (self.checkpoint is None) != (self.checkpoint_every is None):
            raise ConfigError("checkpoint and checkpoint_every go together: give both or neither")
        v.dtype(self.dtype)
        return sizes

    def _batch(self, n: int) -> int:
        """Rows a mini-batch: ``batch_size``, "auto" being 200, at most ``n``."""
        return min(200 if self.batch_size == "auto" else int(self.batch_size), n)

    def _optimizer(self, lr: float, n_batches: int) -> optim.Optimizer:
        if self.learning_rate == "invscaling":
            rate: float | optim.Schedule = optim.inverse_scaling(lr, self.power_t)
        elif self.learning_rate == "cosine":
            rate = optim.cosine(lr, self.max_iter * n_batches)
        else:
            rate = lr
        if self.solver == "sgd":
            nesterov = bool(self.nesterovs_momentum and self.momentum > 0)
            return optim.sgd(rate, momentum=self.momentum, nesterov=nesterov,
                             clip_norm=self.clip_norm)  # fmt: skip
        if self.solver == "adamw":
            return optim.adamw(rate, self.beta_1, self.beta_2, self.epsilon, self.weight_decay,
                               self.clip_norm)  # fmt: skip
        # "adam" means scikit-learn's Adam here: this estimator is a drop-in for its MLP
        return optim.adam(rate, self.beta_1, self.beta_2, self.epsilon, 0.0, self.clip_norm,
                          sklearn_eps=True)  # fmt: skip

    # -- data ---------------------------------------------------------------------------------
    def _host(self, X: Any) -> tuple[Any, tuple[str, str] | None]:
        kind = array_kind(X)
        if kind is not None:
            X = select(kind[0], kind[1], validation.dtype(self.dtype)).to_numpy(X)
        return X, kind

    def _targets(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, *, incremental: bool, resume: bool = False) -> None:
        sizes = self._check_params()
        X, y = self._host(X)[0], self._host(y)[0]
        reset = not (incremental or self.warm_start or resume) or not hasattr(self, "_params")
        streamed = bool(self.stream or self.data_parallel)
        # streamed float32 data (a memory map, say) stays as it is: rows convert when sent
        X, y = validate_data(self, X, y, reset=reset,
                             dtype=[np.float64, np.float32] if streamed else np.float64,
                             multi_output=self._loss == "mse", y_numeric=self._loss == "mse")  # fmt: skip
        T = self._targets(y)
        backend = select(self.backend, self.device, validation.dtype(self.dtype))
        if self.data_parallel:
            backend = parallel.data_parallel(backend, self.devices)
            if backend.processes > 1:
                raise ConfigError("the estimators train data-parallel within one process; for a "
                                  "multi-process job use xpnet train (or Network)")  # fmt: skip
        rng = check_random_state(self.random_state)
        if resume:
            rng = np.random.RandomState()
            rng.set_state(self._split_state)
        spec = mlp.Spec((X.shape[1], *sizes, T.shape[1]), ACTIVATION_NAMES[self.activation],
                        self._loss, True)  # fmt: skip
        engine.check_memory(backend, spec, X.shape[0], self._batch(X.shape[0]), not streamed)
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
        if not resume:
            self._fit_epoch, self._feed_state, self._best_params = 0, None, None
            self._split_state = rng.get_state()

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
        bs = self._batch(n)
        opt = self._optimizer(self._lr, -(-n // bs))
        run = engine.Run.start(backend, Objective(spec, float(self.alpha), "mean"), opt,
                               self._params, self._opt_state_host, epoch=self._fit_epoch)  # fmt: skip
        order = None
        if resume and self._feed_state is not None:
            rng.set_state(self._feed_state["rng"])
            order = self._feed_state["order"]
        feed = engine.Batches(backend, X, T, bs, rng=rng, shuffle=self.shuffle, order=order,
                              stream=streamed)  # fmt: skip
        if early:
            self.best_loss_ = None

            def score(params: HostParams) -> float:
                return self._score_params(params, X_val, y_val)

        stopping = EarlyStopping(
            self.n_iter_no_change, self.tol, score=score if early else None,
            shrink=5.0 if self.learning_rate == "adaptive" and self.solver == "sgd" else None,
            act=not incremental, count=self._no_improvement,
            best=self.best_validation_score_ if early else self.best_loss_,
            scores=self.validation_scores_ if early else None, best_params=self._best_params,
        )  # fmt: skip
        plugins: list[Callback] = [stopping]
        if self.verbose:
            plugins.append(Printer(lambda i, v: f"Iteration {i}, loss = {v:.8f}",
                                   self.n_iter_ - self._fit_epoch))  # fmt: skip
        if self.checkpoint is not None:

            def save(r: engine.Run) -> None:
                self._keep(r, feed, stopping, n, early)
                self.save(str(self.checkpoint))

            plugins.append(Checkpoint(save, int(self.checkpoint_every)))  # type: ignore[arg-type]
        epochs = self._fit_epoch + 1 if incremental else self.max_iter
        try:
            engine.fit(run, feed, epochs=epochs, callbacks=plugins,
                       hint="try a smaller learning_rate_init")  # fmt: skip
        finally:
            self._keep(run, feed, stopping, n, early)
        if early and stopping.best_params is not None:
            self._params = stopping.best_params
        self._fit_epoch, self._best_params = 0, None  # no fit in progress
        if not (stopping.stopped or incremental) and self.n_iter_ >= self.max_iter:
            warnings.warn(f"the optimizer reached max_iter={self.max_iter} before the loss "
                          "converged", ConvergenceWarning, stacklevel=3)  # fmt: skip

    def _keep(self, run: engine.Run, feed: engine.Batches, stopping: EarlyStopping, n: int,
              early: bool) -> None:  # fmt: skip
        """Copy the run's state (since the last copy) into the fitted attributes."""
        new = run.epoch - self._fit_epoch
        self.loss_curve_ += [float(v) for v in run.history.losses[-new:]] if new else []
        self.n_iter_ += new
        self.t_ += n * new
        self._fit_epoch = run.epoch
        self._params = run.host_params()
        self._opt_state_host = run.host_state()
        self._lr = optim.learning_rate(run.optimizer)
        self._no_improvement = stopping.count
        self._feed_state = feed.state()
        self._best_params = stopping.best_params
        if early:
            self.validation_scores_ = stopping.scores
            self.best_validation_score_ = stopping.best
        else:
            self.best_loss_ = stopping.best

    def resume(self, X: Any, y: Any) -> Any:
        """Continue a fit interrupted by a crash, from the estimator loaded from its last
        checkpoint (``MLPClassifier.load(path)``), on the same X, y, until ``max_iter`` epochs:
        the result equals the uninterrupted fit (bit for bit on NumPy). Returns self."""
        check_is_fitted(self, "_params")
        if getattr(self, "_fit_epoch", 0) == 0:
            raise ConfigError("this estimator has no fit in progress to resume (it finished, or "
                              "was not saved by a checkpoint); call fit")  # fmt: skip
        self._fit(X, y, incremental=False, resume=True)
        return self

    def _score_params(self, params: HostParams, X: np.ndarray, y: np.ndarray) -> float:
        kept, self._params = self._params, params
        try:
            return self._score_host(X, y)
        finally:
            self._params = kept

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
        backend = select(self.backend, self.device, validation.dtype(self.dtype))
        return engine.predict(backend, self._spec, backend.tree_asarray(self._params), X), kind

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

    # -- model files --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to an xpnet model file (see :mod:`xpnet.persist`; no
        pickle): its parameters (``get_params()``), weights, optimizer state and everything a
        later ``partial_fit``, warm start or :meth:`resume` needs. Returns the path."""
        check_is_fitted(self, "_params")
        curve = np.asarray(self.loss_curve_, dtype=np.float64)
        arrays, training = persist.pack_training(self._params, self._opt_state_host,
                                                 (np.arange(curve.size), curve), self._feed_state)  # fmt: skip
        split = self._split_state
        arrays["split.rng"] = np.asarray(split[1], dtype=np.uint32)
        if hasattr(self, "classes_"):
            arrays["classes"] = (
                self.classes_ if self.classes_.dtype.kind in "biufU" else self.classes_.astype(str)
            )
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names"] = np.asarray(self.feature_names_in_, dtype=str)
        params = self.get_params()
        if not isinstance(params["random_state"], (numbers.Integral, type(None))):
            params["random_state"] = None  # a generator's state is the split's and the feed's
        fitted = {k: getattr(self, k) for k in FITTED}
        meta = {
            "kind": type(self).__name__,
            "xpnet_version": _version(),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "params": params,
            "fitted": fitted,
            "sizes": list(self._spec.sizes),
            "n_features_in": int(self.n_features_in_),
            "y_1d": bool(getattr(self, "_y_1d", True)),
            "split_rng": [split[0], int(split[2]), int(split[3]), float(split[4])],
            "training": training,
        }
        if self._best_params is not None:
            arrays |= {f"best.{k}": v for k, v in self._best_params.items()}
        return persist.write(path, arrays, meta)

    @classmethod
    def load(cls, path: str | Path, *, backend: str | None = None,
             device: str | None = None) -> Any:  # fmt: skip
        """Read an estimator written by :meth:`save` (onto ``backend``/``device`` if given, else
        those it was built with). Raises :class:`~xpnet.errors.ModelFileError` on a bad file."""
        arrays, meta = persist.read(path)
        if meta.get("kind") != cls.__name__:
            raise ModelFileError(f"{str(path)!r} holds a {meta.get('kind')}, not an "
                                 f"{cls.__name__}; read it with xpnet.load(path)")  # fmt: skip
        try:
            params = dict(meta["params"])
            if isinstance(params["hidden_layer_sizes"], list):  # JSON has no tuples
                params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            if backend is not None or device is not None:
                params.update(backend=backend, device=device)
            est = cls(**params)
            sizes = tuple(int(s) for s in meta["sizes"])
            spec = mlp.Spec(sizes, ACTIVATION_NAMES[params["activation"]], cls._loss, True)
            host = {k: arrays[f"param.{k}"] for k in spec.param_shapes()}
            opt = est._optimizer(float(meta["fitted"]["_lr"]), 1)
            template = opt.init(select("numpy").xp, host)
            state, history, feed = persist.unpack_training(arrays, meta["training"], template)
            name, pos, has_gauss, cached = meta["split_rng"]
            split = (name, arrays["split.rng"], pos, has_gauss, cached)
        except (KeyError, TypeError, ValueError) as exc:
            raise persist.incomplete(path, exc) from None
        est._spec, est._params, est._opt_state_host = spec, host, state
        est._feed_state, est._split_state = feed, split
        best = {k: arrays[f"best.{k}"] for k in host if f"best.{k}" in arrays}
        est._best_params = best or None
        for k, v in meta["fitted"].items():
            setattr(est, k, v)
        est.loss_curve_ = [float(v) for v in history[1]]
        est.n_features_in_ = int(meta["n_features_in"])
        est._y_1d = bool(meta["y_1d"])
        if "classes" in arrays:
            est.classes_ = arrays["classes"]
        if "feature_names" in arrays:
            est.feature_names_in_ = arrays["feature_names"].astype(object)
        return est


def _version() -> str:
    from xpnet import __version__

    return __version__


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
                             f"({validation.show(self.classes_[0].item())})")  # fmt: skip
        index = np.searchsorted(self.classes_, y)
        index = np.minimum(index, self.classes_.size - 1)
        if np.any(self.classes_[index] != y):
            unknown = [v.item() for v in np.setdiff1d(np.unique(y), self.classes_)[:5]]
            raise ValueError(f"y holds labels {validation.show(unknown)} that are not in classes_ "
                             f"{validation.show([c.item() for c in self.classes_])}")  # fmt: skip
        return np.eye(self.classes_.size)[index]

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n_samples, n_features) and class labels y (n_samples,). Returns self."""
        self._partial = False
        self._fit(X, y, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on X, y. ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "_params"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = np.unique(np.asarray(classes))
        self._partial = True
        try:
            self._fit(X, y, incremental=True)
            return self
        finally:
            self._partial = False

    def resume(self, X: Any, y: Any) -> MLPClassifier:
        self._partial = True  # the classes are the file's
        try:
            return super().resume(X, y)  # type: ignore[no-any-return]
        finally:
            self._partial = False

    def predict_proba(self, X: Any) -> Any:
        """Return class probabilities (n_samples, n_classes) in the input's array kind."""
        out, kind = self._forward(X)
        return self._as_kind(out, kind, validation.dtype(self.dtype))

    def predict(self, X: Any) -> Any:
        """Return class labels (n_samples,) (in the input's kind for numeric labels)."""
        out, kind = self._forward(X)
        labels = self.classes_[np.argmax(out, axis=1)]
        return (
            self._as_kind(labels, kind, validation.dtype(self.dtype))
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
        return self._as_kind(out, kind, validation.dtype(self.dtype))

    def _score_host(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(r2_score(y, self.predict(X)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n_samples, n_targets)
        return tags

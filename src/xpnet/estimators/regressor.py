"""scikit-learn's ``MLPRegressor`` on every xpnet backend."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d, validate_data

from xpnet import losses, validation
from xpnet.estimators._base import REGRESSION_LOSSES, _BaseMLP


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron regressor, drop-in for ``sklearn.neural_network.MLPRegressor`` on
    any xpnet backend: identity outputs and half squared error, or with ``loss="poisson"``
    exponential outputs and half the Poisson deviance (counts); ``"absolute_error"``,
    ``"huber"`` (quadratic within ``delta``: ``epsilon`` is Adam's here, as in scikit-learn's
    MLP) and ``"quantile"`` (the pinball loss of ``quantile``) are robust losses on identity
    outputs. See the module docstring."""

    def __init__(
        self,
        loss: str = "squared_error",
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
        delta: float = 1.0,
        quantile: float = 0.5,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            weight_decay=weight_decay, clip_norm=clip_norm, warmup=warmup, dropout=dropout,
            init=init, backend=backend, device=device, dtype=dtype, stream=stream,
            data_parallel=data_parallel, devices=devices, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )  # fmt: skip
        self.loss = loss
        self.delta = delta
        self.quantile = quantile

    def _check_params(self) -> tuple[int, ...]:
        validation.one_of(REGRESSION_LOSSES, self.loss, "loss", "losses")
        losses.check_options(self.delta, self.quantile)
        return super()._check_params()

    def _loss_name(self) -> str:
        return {"squared_error": "mse"}.get(self.loss, self.loss)

    def _loss_options(self) -> dict[str, float]:
        return {"delta": self.delta, "quantile": self.quantile}

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"],
                             multi_output=True, y_numeric=True, dtype=(np.float64, np.float32))  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs targets y >= 0 (counts); y holds negative "
                             "values")  # fmt: skip
        return X, y

    def _decode(self, T: np.ndarray) -> np.ndarray:
        return T[:, 0] if T.shape[1] == 1 else T

    def _score_function(self) -> Any:
        return r2_score

    def _from_outputs(self, out: np.ndarray) -> np.ndarray:
        return out[:, 0] if out.shape[1] == 1 else out

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on X (n_samples, n_features) (dense or sparse) and targets y (n_samples,) or
        (n_samples, n_targets), with optional sample weights (n_samples,). Returns self."""
        self._fit(X, y, sample_weight, incremental=False)
        return self

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch on X, y."""
        self._fit(X, y, sample_weight, incremental=True)
        return self

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_targets) in the input's kind."""
        out, kind = self._forward(X)
        return self._as_kind(self._from_outputs(out), kind)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n_samples, n_targets)
        return tags

"""scikit-learn's ``MLPClassifier`` on every xpnet backend."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from xpnet import mlp, validation
from xpnet.estimators._base import _BaseMLP, _host


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron classifier, drop-in for ``sklearn.neural_network.MLPClassifier``
    on any xpnet backend: softmax outputs and cross-entropy for three classes or more, one
    logistic output for two, a logistic output per label for multilabel targets (an indicator
    matrix). ``class_weight`` (``"balanced"`` or ``{class: weight}``, scikit-learn's meaning)
    weighs each class's samples, times any ``sample_weight``. See the module docstring."""

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
        class_weight: Any = None,
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
        self.class_weight = class_weight

    def _check_params(self) -> tuple[int, ...]:
        validation.class_weight("class_weight", self.class_weight)
        return super()._check_params()

    def _class_weighted(self, T: np.ndarray, w: np.ndarray | None,
                        incremental: bool) -> np.ndarray | None:  # fmt: skip
        """``sample_weight`` times each sample's ``class_weight`` (:mod:`xpnet.validation`'s
        rule, as a Network weighs them); refused for multilabel targets and, balanced, in
        ``partial_fit`` (its counts are the whole data set's: scikit-learn's SGD refuses it
        too)."""
        if self.class_weight is None:
            return w
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight weighs one label per sample; multilabel targets take "
                             "sample_weight instead")  # fmt: skip
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight 'balanced' is not supported for partial_fit (its "
                             "counts are the whole data set's); give the weights as a dict")  # fmt: skip
        y_index = (T[:, 0] > 0.5).astype(np.int64) if T.shape[1] == 1 else np.argmax(T, axis=1)
        per_class = validation.class_weights(self.class_weight, y_index, self.classes_)
        out = validation.by_class(w, per_class, y_index)
        return None if out is None else out.astype(T.dtype)

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"],
                             multi_output=True, dtype=(np.float64, np.float32))  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.dtype == object:  # labels of one kind, as a Network takes them (kept as given)
            validation.one_kind(y)
        # scikit-learn's rules: a new fit learns the classes; a warm start must see the same
        # ones; partial_fit may see a part of those it was given
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")  # fmt: skip
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")  # fmt: skip
        return X, self._label_binarizer.transform(y)

    def _decode(self, T: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(T)  # type: ignore[no-any-return]

    def _score_function(self) -> Any:
        return accuracy_score

    def _from_outputs(self, out: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(out[:, 0] if out.shape[1] == 1 else out)  # type: ignore[no-any-return]

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on X (n_samples, n_features) (dense or sparse) and class labels y (n_samples,)
        or a label indicator matrix (n_samples, n_labels), with optional sample weights
        (n_samples,). Returns self."""
        self._fit(X, y, sample_weight, incremental=False)
        return self

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:  # fmt: skip
        """One epoch on X, y. ``classes`` (every label of the whole data set) is required on the
        first call; later calls may leave it out, or must give the same."""
        if classes is not None:
            wanted = unique_labels(classes)
            if hasattr(self, "classes_") and not np.array_equal(self.classes_, wanted):
                raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                                 f"partial_fit, was: {self.classes_!r}")  # fmt: skip
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            y_host = _host(y, self.dtype)[0]
            self._label_binarizer.fit(y_host if type_of_target(y_host).startswith("multilabel")
                                      else classes)  # fmt: skip
            self.classes_ = self._label_binarizer.classes_
        self._fit(X, y, sample_weight, incremental=True)
        return self

    def _proba(self, X: Any) -> tuple[np.ndarray, Any]:
        out, kind = self._forward(X)
        return np.asarray(mlp.class_probabilities(np, out, self._spec)), kind

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (n_samples, n_classes) in the input's array kind (two columns for
        a binary problem; a column per label, not summing to 1, for multilabel ones)."""
        proba, kind = self._proba(X)
        return self._as_kind(proba, kind)

    def predict_log_proba(self, X: Any) -> Any:
        """``log(predict_proba(X))``, as scikit-learn defines it (-inf where a probability
        rounds to 0)."""
        proba, kind = self._proba(X)
        with np.errstate(divide="ignore"):
            return self._as_kind(np.log(proba), kind)

    def predict(self, X: Any) -> Any:
        """Class labels (n_samples,), or an indicator matrix for multilabel models (in the
        input's kind for numeric labels)."""
        out, kind = self._forward(X)
        return self._as_kind(self._from_outputs(out), kind)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

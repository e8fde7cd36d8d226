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
    matrix). See the module docstring."""

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

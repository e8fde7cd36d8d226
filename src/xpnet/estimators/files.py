"""The estimators' model files: what of an estimator goes into a file and how it comes back
(the file format itself is :mod:`xpnet.persist`'s)."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from xpnet import optim, persist, schema, validation
from xpnet.backends import select
from xpnet.errors import ModelFileError

FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "validation_scores_", "validation_loss_curve_",
          "best_validation_score_",
          "out_activation_", "n_layers_", "n_outputs_", "_no_improvement_count", "_lr",
          "_steps", "_fit_epoch", "_opt_config", "_dropout_seed")  # fmt: skip
"""Fitted state kept in model files beside the arrays."""


def write(est: Any, path: str | Path) -> Path:
    """Write the fitted estimator ``est`` to an xpnet model file (see :mod:`xpnet.persist`):
    weights, optimizer state, early-stopping state and the split generator as tensors; its
    parameters, fitted counters and label kind as JSON. Returns the path."""
    curve = np.asarray(est.loss_curve_, dtype=np.float64)
    arrays, training = persist.pack_training(est._params, est._opt_state_host,
                                             (np.arange(curve.size), curve), est._feed_state)  # fmt: skip
    split = getattr(est, "_split_state", None)
    if split is not None:
        arrays["split.rng"] = np.asarray(split[1], dtype=np.uint32)
    if hasattr(est, "classes_"):
        arrays["classes"] = (
            est.classes_ if est.classes_.dtype.kind in "biufU" else est.classes_.astype(str)
        )
    if hasattr(est, "feature_names_in_"):
        arrays["feature_names"] = np.asarray(est.feature_names_in_, dtype=str)
    params = est.get_params()
    if not isinstance(params["random_state"], (numbers.Integral, type(None))):
        params["random_state"] = None  # a generator's state is the split's and the feed's
    if isinstance(params["n_iter_no_change"], float):
        params["n_iter_no_change"] = "inf"  # JSON has no infinity
    if isinstance(params.get("class_weight"), dict):  # JSON keys are text: pairs keep labels
        params["class_weight"] = [[k.item() if isinstance(k, np.generic) else k, float(w)]
                                  for k, w in params["class_weight"].items()]  # fmt: skip
    split_meta = None if split is None else [split[0], int(split[2]), int(split[3]),
                                             float(split[4])]  # fmt: skip
    meta = {
        **persist.header(type(est).__name__),
        "params": params,
        "fitted": {k: getattr(est, k, None) for k in FITTED},
        "n_features_in": int(est.n_features_in_),
        "label_type": getattr(getattr(est, "_label_binarizer", None), "y_type_", None),
        "split_rng": split_meta,
        "training": training,
    }
    if est._best_params is not None:
        arrays |= {f"best.{k}": v for k, v in est._best_params.items()}
    return persist.write(path, arrays, meta)


def read(cls: Any, path: str | Path, *, backend: str | None = None,
         device: str | None = None) -> Any:  # fmt: skip
    """Read an estimator of class ``cls`` written by :func:`write` (onto ``backend``/``device``
    if given, else those it was built with). Raises :class:`~xpnet.errors.ModelFileError` on a
    bad file."""
    arrays, meta = persist.read(path)
    if meta.get("kind") != cls.__name__:
        raise ModelFileError(f"{str(path)!r} holds a {meta.get('kind')}, not an "
                             f"{cls.__name__}; read it with xpnet.load(path)")  # fmt: skip
    try:
        schema.check(meta, DESCRIPTION)
        params = dict(meta["params"])
        for name in ("hidden_layer_sizes", "dropout"):  # JSON has no tuples
            if isinstance(params.get(name), list):
                params[name] = tuple(params[name])
        if params["n_iter_no_change"] == "inf":
            params["n_iter_no_change"] = math.inf
        if isinstance(params.get("class_weight"), list):  # [label, weight] pairs
            params["class_weight"] = {label: w for label, w in params["class_weight"]}
        if backend is not None or device is not None:
            params.update(backend=backend, device=device)
        est = cls(**params)
        est._check_params()  # the checks a fit makes of every parameter
        fitted = meta["fitted"]
        layers = sum(1 for k in arrays if k.startswith("param.W"))
        host = {}
        for i in range(1, layers + 1):
            host[f"W{i}"], host[f"b{i}"] = arrays[f"param.W{i}"], arrays[f"param.b{i}"]
        _check_arrays(arrays, host, meta)
        config = fitted["_opt_config"]
        template = None
        if config is not None:
            template = optim.from_config(config).init(select("numpy").xp, host)
        state, history, feed = persist.unpack_training(arrays, meta["training"], template)
        split = None
        if meta["split_rng"] is not None:
            name, pos, has_gauss, cached = meta["split_rng"]
            split = (name, arrays["split.rng"], pos, has_gauss, cached)
            persist.generator_state(split, "split_rng and split.rng")
        binarizer = None
        if "classes" in arrays:
            binarizer = _binarizer(arrays["classes"], meta["label_type"])
            if isinstance(params.get("class_weight"), dict):  # names classes it has only
                validation.class_weights(params["class_weight"], np.zeros(0, np.int64),
                                         arrays["classes"])  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError and schema.Invalid too
        raise persist.invalid(path, exc) from None
    for k, v in fitted.items():
        setattr(est, k, v)
    est._set_params(host)
    est._opt_state_host, est._feed_state = state, feed
    if split is not None:
        est._split_state = split
    best = {k: arrays[f"best.{k}"] for k in host if f"best.{k}" in arrays}
    est._best_params = best or None
    est.loss_curve_ = [float(v) for v in history[1]]
    est.n_features_in_ = int(meta["n_features_in"])
    if binarizer is not None:
        est.classes_ = arrays["classes"]
        est._label_binarizer = binarizer
    if "feature_names" in arrays:
        est.feature_names_in_ = arrays["feature_names"].astype(object)
    return est


_COUNT = schema.Int(0)
_NUMBER = schema.Maybe(schema.Real(finite=False))
DESCRIPTION = {
    "params": {"hidden_layer_sizes": [schema.Int(1, 2**31)], "n_iter_no_change": (int, float,
               str)},
    "fitted": {"n_iter_": _COUNT, "t_": _COUNT, "loss_": _NUMBER, "best_loss_": _NUMBER,
               "validation_scores_": schema.Maybe([schema.Real(finite=False)]),
               "?validation_loss_curve_": schema.Maybe([schema.Real(finite=False)]),
               "best_validation_score_": _NUMBER,
               "out_activation_": schema.OneOf(("softmax", "logistic", "identity", "exp")),
               "n_layers_": schema.Int(2), "n_outputs_": schema.Int(1),
               "?_no_improvement_count": _COUNT, "?_lr": _NUMBER, "?_steps": _COUNT,
               "?_fit_epoch": _COUNT, "_opt_config": schema.Maybe([object]),
               "?_dropout_seed": schema.Maybe(schema.Int(0, 2**32 - 1))},
    "n_features_in": schema.Int(1),
    "label_type": schema.Maybe(schema.OneOf(("binary", "multiclass", "multilabel-indicator"))),
    "split_rng": schema.Maybe([(str, int, float)]),
    "training": {},
}  # fmt: skip
"""The schema (:mod:`xpnet.schema`) of an estimator file's description; the estimators'
``_check_params`` does the rest of ``params``."""


def _check_arrays(arrays: dict[str, np.ndarray], host: dict[str, np.ndarray],
                  meta: dict[str, Any]) -> None:  # fmt: skip
    """Every invariant between an estimator file's arrays and its description (raising
    :class:`~xpnet.schema.Invalid`): layers as the parameters say, finite weights, the inputs
    and outputs the counters name, classes that fit the outputs, feature names per input."""
    fitted, params = meta["fitted"], meta["params"]
    sizes = [meta["n_features_in"], *params["hidden_layer_sizes"], fitted["n_outputs_"]]
    persist.require(len(host) // 2 == len(sizes) - 1 == fitted["n_layers_"] - 1,
                    f"the file holds {len(host) // 2} layers of weights; its parameters and "
                    f"n_layers_ {fitted['n_layers_']} say {len(sizes) - 1}")  # fmt: skip
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, len(sizes)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (sizes[i - 1], sizes[i]), (sizes[i],)
    persist.matching(arrays, "param.", shapes)
    persist.finite(arrays, "param.")
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best.")}
    if best:
        persist.matching(arrays, "best.", {k: v.shape for k, v in host.items()})
        persist.finite(arrays, "best.")
    classes = arrays.get("classes")
    if meta["kind"] == "MLPClassifier":
        persist.require(classes is not None and classes.ndim == 1, "classes is missing")
        assert classes is not None
        persist.require(np.unique(classes).size == classes.size, "classes holds a class twice")
        binary = meta["label_type"] == "binary"
        want = (1 if classes.size <= 2 else None) if binary else classes.size
        persist.require(want == fitted["n_outputs_"] and classes.size >= 1,
                        f"{classes.size} classes of kind {meta['label_type']!r} do not fit "
                        f"{fitted['n_outputs_']} outputs")  # fmt: skip
    names = arrays.get("feature_names")
    if names is not None:
        persist.require(names.shape == (meta["n_features_in"],),
                        f"feature_names has shape {names.shape}, not "
                        f"({meta['n_features_in']},)")  # fmt: skip


def _binarizer(classes: np.ndarray, label_type: str | None) -> LabelBinarizer:
    """The fitted label encoder of ``classes`` (multilabel: one indicator column each)."""
    lb = LabelBinarizer()
    if label_type == "multilabel-indicator":
        lb.fit(np.eye(len(classes), dtype=int))
    else:
        lb.fit(classes)
    return lb

"""The estimators' model files: what of an estimator goes into a file and how it comes back
(the file format itself is :mod:`xpnet.persist`'s)."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from xpnet import optim, persist
from xpnet.backends import select
from xpnet.errors import ModelFileError

FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "validation_scores_", "best_validation_score_",
          "out_activation_", "n_layers_", "n_outputs_", "_no_improvement_count", "_lr",
          "_steps", "_fit_epoch", "_opt_config")  # fmt: skip
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
        params = dict(meta["params"])
        if isinstance(params["hidden_layer_sizes"], list):  # JSON has no tuples
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if params["n_iter_no_change"] == "inf":
            params["n_iter_no_change"] = math.inf
        if backend is not None or device is not None:
            params.update(backend=backend, device=device)
        est = cls(**params)
        fitted = meta["fitted"]
        layers = sum(1 for k in arrays if k.startswith("param.W"))
        host = {}
        for i in range(1, layers + 1):
            host[f"W{i}"], host[f"b{i}"] = arrays[f"param.W{i}"], arrays[f"param.b{i}"]
        config = fitted["_opt_config"]
        template = None
        if config is not None:
            template = optim.from_config(config).init(select("numpy").xp, host)
        state, history, feed = persist.unpack_training(arrays, meta["training"], template)
        split = None
        if meta["split_rng"] is not None:
            name, pos, has_gauss, cached = meta["split_rng"]
            split = (name, arrays["split.rng"], pos, has_gauss, cached)
    except (KeyError, TypeError, ValueError) as exc:
        raise persist.incomplete(path, exc) from None
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
    if "classes" in arrays:
        est.classes_ = arrays["classes"]
        est._label_binarizer = _binarizer(est.classes_, meta["label_type"])
    if "feature_names" in arrays:
        est.feature_names_in_ = arrays["feature_names"].astype(object)
    return est


def _binarizer(classes: np.ndarray, label_type: str | None) -> LabelBinarizer:
    """The fitted label encoder of ``classes`` (multilabel: one indicator column each)."""
    lb = LabelBinarizer()
    if label_type == "multilabel-indicator":
        lb.fit(np.eye(len(classes), dtype=int))
    else:
        lb.fit(classes)
    return lb

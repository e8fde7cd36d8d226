"""ONNX export from the same math: the forward pass traced through ndonnx.

ndonnx is an Array API library whose arrays build an ONNX graph. :func:`onnx_model` runs xpnet's
own :func:`xpnet.mlp.predict_proba` (and the model's input scaling and probability rules, from
:mod:`xpnet.data` and :func:`xpnet.mlp.class_probabilities`) on ndonnx arrays: the parameters are
constants, the input ``X`` a symbolic argument of shape (N, n_features) with a dynamic batch
dimension, in the model's dtype. No second copy of the network exists; whatever xpnet computes,
the graph computes. Outputs: a classifier's ``probabilities`` (N, n_classes) and ``label`` (N,)
(the class labels themselves, numbers or strings; a multilabel model's ``label`` is the (N,
n_labels) indicator matrix), a regressor's ``predictions`` ((N,) for one target, else (N,
n_targets)). The model's metadata holds xpnet's version and the architecture (JSON). Needs
ndonnx (``pip install 'xpnet[onnx]'``); onnxruntime runs the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import data, mlp, validation, writing
from xpnet._typing import HostParams
from xpnet.errors import ConfigError, MissingDependencyError

KINDS = ("classifier", "multilabel", "regressor")


def _ndonnx() -> Any:
    try:
        import ndonnx
    except ImportError:
        raise MissingDependencyError(
            "ONNX export needs ndonnx; pip install 'xpnet[onnx]' (onnxruntime runs the model)"
        ) from None
    return ndonnx


def onnx_model(
    spec: mlp.Spec,
    params: HostParams,
    *,
    kind: str = "classifier",
    classes: Any = None,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Return the ``onnx.ModelProto`` of a fitted network: ``spec`` and host ``params`` (their
    dtype is the model's), ``kind`` one of :data:`KINDS`, ``classes`` (n_classes,) the labels of
    a classifier, ``scale`` the ``(offset, factor)`` its inputs are scaled with, ``metadata``
    more JSON-able facts to record. Raises ConfigError for what the graph cannot express."""
    ndx = _ndonnx()
    validation.one_of(KINDS, kind, "export kind", "export kinds")
    dtype = np.asarray(next(iter(params.values()))).dtype
    if dtype not in (np.float32, np.float64):
        raise ConfigError(f"ONNX export takes float32 or float64 parameters; got {dtype}")
    where = {"float32": ndx.float32, "float64": ndx.float64}[dtype.name]
    try:
        X = ndx.argument(shape=("N", spec.sizes[0]), dtype=where)
        inputs = X
        if scale is not None:
            offset, factor = (ndx.asarray(np.asarray(a, dtype=dtype)) for a in scale)
            inputs = data.apply_scale(ndx, X, offset, factor)
        device = {k: ndx.asarray(np.asarray(v, dtype=dtype)) for k, v in params.items()}
        out = mlp.predict_proba(ndx, device, inputs, spec)
        outputs = _outputs(ndx, out, spec, kind, classes)
        model = ndx.build({"X": X}, outputs)
    except (TypeError, ValueError, NotImplementedError, AttributeError) as exc:
        raise ConfigError(f"this model cannot be exported to ONNX: {exc}") from None
    facts = {"architecture": {"sizes": list(spec.sizes), "activation": spec.activation,
                              "loss": spec.loss, "bias": spec.bias},
             "kind": kind, "dtype": dtype.name, **(metadata or {})}  # fmt: skip
    if classes is not None:
        facts["classes"] = [c.item() if hasattr(c, "item") else c for c in np.asarray(classes)]
    _describe(model, facts)
    return model


def _outputs(ndx: Any, out: Any, spec: mlp.Spec, kind: str, classes: Any) -> dict[str, Any]:
    if kind == "regressor":
        return {"predictions": ndx.reshape(out, (-1,)) if spec.sizes[-1] == 1 else out}
    if kind == "multilabel":
        return {"probabilities": out, "label": ndx.astype(out > 0.5, ndx.int64)}
    proba = mlp.class_probabilities(ndx, out, spec)
    if classes is None:
        raise ConfigError("a classifier's ONNX export needs its classes")
    labels = np.asarray(classes)
    if labels.dtype.kind in "OU":
        labels = labels.astype(str)
    index = ndx.argmax(proba, axis=1)
    return {"probabilities": proba, "label": ndx.take(ndx.asarray(labels), index)}


def _describe(model: Any, facts: dict[str, Any]) -> None:
    from xpnet import __version__

    model.producer_name, model.producer_version = "xpnet", __version__
    entries = {"xpnet_version": __version__, "xpnet": json.dumps(facts)}
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def save(model: Any, path: str | Path) -> Path:
    """Write ``model`` (an ``onnx.ModelProto``) to ``path`` (checked first: a folder that exists
    and is writable). Returns the path."""
    out = validation.output("onnx", path)
    writing.replace(out, lambda fh: fh.write(model.SerializeToString()))
    return out

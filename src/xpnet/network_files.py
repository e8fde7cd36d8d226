"""Network's model files: what of a fitted :class:`~xpnet.model.Network` goes into a file and
how it comes back (the training plan included; files from before the plan still load). The file
format itself is :mod:`xpnet.persist`'s."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import data, losses, mlp, optim, persist, schema, settings, validation
from xpnet._typing import HostParams, Tree
from xpnet.backends import select
from xpnet.errors import ModelFileError
from xpnet.settings import Plan


def write(net: Any, path: str | Path, all_losses: bool = False) -> Path:
    """Write the fitted Network ``net`` to one file (see :meth:`xpnet.model.Network.save`)."""
    backend = net._fitted()

    arrays, training = persist.pack_training(
        net.params_, net.opt_state_, (net.loss_passes_, net.loss_curve_), net.feed_state_,
        all_losses,
    )  # fmt: skip
    classes = net.classes_  # None: a regression network
    if classes is not None:
        arrays["classes"] = classes if classes.dtype.kind in "biufU" else classes.astype(str)
    per_class = getattr(net, "class_weight_", None)
    if per_class is not None:
        arrays["class_weight"] = per_class
    if getattr(net, "scale_offset_", None) is not None:
        arrays["scale.offset"] = net.scale_offset_
        arrays["scale.factor"] = net.scale_factor_
    meta = {
        **persist.header("Network"),
        "architecture": {
            "sizes": list(net.spec_.sizes),
            "activation": net.activation,
            "loss": net.loss,
            "bias": net.bias,
            **{name: getattr(net.spec_, name) for name in net.spec_.out.options},
        },
        "init": net.init,
        "init_seed": net.init_seed if isinstance(net.init_seed, int) else None,
        "scale": net.scale,
        "class_weight": None
        if per_class is None
        else (net.class_weight if isinstance(net.class_weight, str) else "given"),
        "dtype": backend.dtype_name,
        "data_parallel": {"on": net.data_parallel, "devices": net.devices},
        "training": {
            "plan": net.plan_.to_dict(),
            "optimizer": None if net.optimizer_ is None else net.optimizer_.config,
            "sample_weight": net.weighted_,
            **training,
            "passes": net.passes_done_,
            "reference": net.reference_,
            "stop_reason": net.stop_reason_,
        },
        "info": net.info,
        "trained_on": {
            "backend": backend.name,
            "version": backend.version,
            "device": backend.device_label,
        },
    }
    return persist.write(path, arrays, meta)


def read(
    cls: Any,
    path: str | Path,
    *,
    backend: str | None = None,
    device: str | int | None = None,
    dtype: str | None = None,
    data_parallel: bool | None = None,
    devices: int | None = None,
) -> Any:
    """A ``cls`` (Network) read from a file :func:`write` wrote (see
    :meth:`xpnet.model.Network.load`)."""

    arrays, meta = persist.read(path)
    if meta.get("kind") != "Network":
        raise ModelFileError(f"{str(path)!r} holds an {meta.get('kind')}, not a Network; "
                             "read it with xpnet.load(path)")  # fmt: skip
    try:
        schema.check(meta, description())
        parallel_meta = meta.get("data_parallel") or {}
        if data_parallel is None:  # as the file was trained
            data_parallel = bool(parallel_meta.get("on"))
            if data_parallel and devices is None:
                devices = parallel_meta.get("devices")
        arch = meta["architecture"]
        sizes = tuple(arch["sizes"])
        options = {name: arch[name] for name in losses.OPTIONS if name in arch}
        spec = mlp.Spec(sizes, arch["activation"], arch["loss"], arch["bias"], **options)
        plan, config, weighted = _stored_plan(meta["training"])
        opt = None if config is None else optim.from_config(config)
        params = {k: arrays[f"param.{k}"] for k in spec.param_shapes()}
        _check_arrays(arrays, spec, meta)
        template = None if opt is None else _host_template(opt, params)
        opt_state, history, feed_state = persist.unpack_training(arrays, meta["training"], template)
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError and schema.Invalid included
        raise persist.invalid(path, exc) from None
    settings.apply_rules({"data_parallel": data_parallel, "devices": devices},
                         [] if devices is None else ["devices"])  # fmt: skip
    net = cls(
        sizes[1:-1], activation=arch["activation"], loss=arch["loss"], bias=arch["bias"],
        **options,
        init=meta.get("init", "britz"), init_seed=meta.get("init_seed") or 0,
        scale=meta.get("scale"), backend=backend, device=device, dtype=dtype or meta["dtype"],
        data_parallel=data_parallel, devices=devices, info=meta.get("info") or {},
    )  # fmt: skip
    net.backend_ = select(net.backend, net.device, net.dtype)
    net.spec_ = spec
    net.classes_ = arrays.get("classes")
    net.class_weight_ = arrays.get("class_weight")
    if net.class_weight_ is not None:  # as given: by name, or one weight per class
        net.class_weight = (
            meta["class_weight"]
            if meta["class_weight"] != "given"
            else {c.item(): float(w) for c, w in zip(net.classes_, net.class_weight_, strict=True)}
        )
    net.params_ = {k: v.astype(net.dtype) for k, v in params.items()}
    net.opt_state_ = opt_state
    net.loss_passes_, net.loss_curve_ = history
    net.plan_, net.optimizer_, net.weighted_ = plan, opt, weighted
    net.passes_done_ = int(meta["training"].get("passes", history[0].size))
    net.reference_ = meta["training"].get("reference")
    net.stop_reason_ = meta["training"].get("stop_reason")
    net.feed_state_ = feed_state
    net.fit_seconds_ = math.nan
    net.trained_on_ = dict(meta.get("trained_on", {}))
    if "scale.offset" in arrays:
        net.scale_offset_, net.scale_factor_ = arrays["scale.offset"], arrays["scale.factor"]
    return net


def description() -> dict[str, Any]:
    """The schema (:mod:`xpnet.schema`) of a Network file's description, every format."""
    from xpnet.activations import ACTIVATIONS
    from xpnet.data import SCALERS
    from xpnet.init import INITS

    count = schema.Int(1, 2**31)
    return {
        "architecture": {"sizes": [count], "activation": schema.OneOf(tuple(ACTIVATIONS)),
                         "loss": schema.OneOf(settings.LOSSES), "bias": bool,
                         "?delta": schema.Real(0), "?quantile": schema.Real(0, 1)},
        "?init": schema.OneOf(tuple(INITS)),
        "?init_seed": schema.Maybe(schema.Int(0, settings.SEED_MAX)),
        "?scale": schema.Maybe(schema.OneOf(SCALERS)),
        "?class_weight": schema.Maybe(schema.OneOf((*validation.CLASS_WEIGHTS, "given"))),
        "dtype": schema.OneOf(validation.DTYPES),
        "?data_parallel": {"on": bool, "devices": schema.Maybe(count)},
        "training": {"?plan": {}, "?sample_weight": bool, "?passes": schema.Int(0),
                     "?reference": schema.Maybe(schema.Real(finite=False)),
                     "?stop_reason": schema.Maybe(str), "?lr": schema.Real(0),
                     "?epochs": schema.Int(0)},
        "?info": {},
        "?trained_on": {"?backend": schema.Maybe(str), "?version": schema.Maybe(str),
                        "?device": schema.Maybe(str)},
    }  # fmt: skip


def _check_arrays(arrays: dict[str, Any], spec: mlp.Spec, meta: dict[str, Any]) -> None:
    """Every invariant between a Network file's arrays and its description (raising
    :class:`~xpnet.schema.Invalid`): weights of the architecture's shapes and finite, one class
    per output and none twice (a regression network: no classes), scaling of one finite entry
    per feature."""
    sizes = spec.sizes
    persist.matching(arrays, "param.", spec.param_shapes())
    persist.finite(arrays, "param.")
    if settings.regresses(spec.loss):
        persist.require("classes" not in arrays and "class_weight" not in arrays,
                        f"loss {spec.loss!r} regresses: the file must hold no classes")  # fmt: skip
        _check_scaling(arrays, sizes, meta)
        return
    persist.require("classes" in arrays, "a classifier's file needs its classes")
    classes = arrays["classes"]
    persist.require(
        classes.ndim == 1
        and classes.size >= 2
        and sizes[-1] == data.class_outputs(spec.loss, classes.size),
        f"classes has shape {classes.shape}; the network has {sizes[-1]} outputs",
    )
    persist.require(np.unique(classes).size == classes.size, "classes holds a class twice")
    persist.require(("class_weight" in arrays) == (meta.get("class_weight") is not None),
                    f"class_weight {meta.get('class_weight')!r} needs one weight per class, and "
                    "weights need it")  # fmt: skip
    if "class_weight" in arrays:
        persist.matching(arrays, "", {"class_weight": (classes.size,)})
        persist.finite(arrays, "class_weight")
        persist.require(bool((arrays["class_weight"] >= 0).all()),
                        "class_weight holds a negative weight")  # fmt: skip
    _check_scaling(arrays, sizes, meta)


def _check_scaling(arrays: dict[str, Any], sizes: tuple[int, ...], meta: dict[str, Any]) -> None:
    scaled = [k for k in ("scale.offset", "scale.factor") if k in arrays]
    persist.require(
        len(scaled) in ((2,) if meta.get("scale") else (0, 2)),
        f"scale {meta.get('scale')!r} needs both scale.offset and scale.factor",
    )
    if scaled:
        persist.matching(arrays, "scale.", {"offset": (sizes[0],), "factor": (sizes[0],)})
        persist.finite(arrays, "scale.")
        persist.require(
            bool((arrays["scale.factor"] > 0).all()),
            "scale.factor holds an entry that is not positive",
        )


OLD_DEFAULTS = {"reg": 0.0, "reduction": "sum", "record": "after", "batch_size": None,
                "shuffle": True, "shuffle_seed": 0, "stream": False, "loss_every": 1}  # fmt: skip
"""The settings a model file of format 1-3 left out meant these (the seeds' plain descent)."""


def _stored_plan(training: dict[str, Any]) -> tuple[Plan, Any, bool]:
    """The plan, optimizer description (None: L-BFGS or written by hand) and whether sample
    weights were used, of a model file's training record; files from before the plan (their
    settings flat, version 1's rate beside the name ``sgd``, L-BFGS as ``("lbfgs", tol,
    max_fun)``) included."""
    if "plan" in training:
        plan = Plan.from_dict(training["plan"], checked=True)
        return plan, training.get("optimizer"), bool(training.get("sample_weight", False))
    flat = {**OLD_DEFAULTS, **{k: v for k, v in training.items() if k in OLD_DEFAULTS}}
    config = training.get("optimizer")
    if config == "sgd":  # version 1: the rate was stored beside the name
        config = optim.sgd(float(training["lr"])).config
    if isinstance(config, (list, tuple)) and config and config[0] == "lbfgs":
        flat.update(optimizer="lbfgs", tol=float(config[1]), max_fun=int(config[2]))
        config = None
    if "epochs" in training:
        flat["epochs"] = int(training["epochs"])
    return Plan.from_dict(flat), config, bool(training.get("sample_weight", False))


def _host_template(opt: optim.Optimizer, params: HostParams) -> Tree:
    """The structure of ``opt``'s state for ``params`` (NumPy), to read a saved state into."""
    return opt.init(select("numpy").xp, params)

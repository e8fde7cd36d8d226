"""The boundary: every check of a user's setting or data, each with one wording.

``Network``, the estimators, the optimizers, the recipes and the command line all call these, so a
mistake reads the same wherever it is made:

- a number out of range: ``lr must be a number in (0, inf); got -1.0``
- an integer out of range: ``epochs must be an integer in [1, inf); got 0``
- a name outside a table: ``unknown activation 'swish'; valid activations: tanh, sigmoid, ...``
- a flag: ``shuffle must be True or False; got 'yes'``
- hidden layer sizes, data (X), class labels, sample weights: see the functions below.

Settings raise :class:`~xpnet.errors.ConfigError`, data :class:`~xpnet.errors.DataError`; both
are ValueErrors. Values are shown as a person would write them (``0``, not ``np.int64(0)``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xpnet.errors import ConfigError, DataError

T = TypeVar("T")

DTYPES = ("float32", "float64")


def show(value: Any) -> str:
    """Return ``value`` as a message shows it: numbers plainly, text quoted, types by name."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (tuple, list)):
        inner = ", ".join(show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low == -math.inf else "["
    right = ")" if high_open or high == math.inf else "]"
    top = (
        str(int(high)) if math.isfinite(high) and high == int(high) and high > 1e6 else f"{high:g}"
    )
    return f"{left}{low:g}, {top}{right}"


def number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number in the interval, else raise
    ConfigError ("lr must be a number in (0, inf); got -1.0"). NaN and infinity never pass."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        where = _interval(low, high, low_open, high_open)
        raise ConfigError(f"{name} must be a number in {where}; got {show(value)}")
    return float(value)


def integer(name: str, value: Any, low: int = 1, high: float = math.inf) -> int:
    """Return ``value`` as an int if it is an integer in [low, high], else raise ConfigError
    ("epochs must be an integer in [1, inf); got 0")."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not ok or not low <= int(value) <= high:
        raise ConfigError(
            f"{name} must be an integer in {_interval(low, high, False, False)}; got {show(value)}"
        )
    return int(value)


def optional(check: Callable[..., T], name: str, value: Any, *args: Any, **kwargs: Any) -> T | None:
    """Return None for None, else ``check(name, value, ...)``."""
    return None if value is None else check(name, value, *args, **kwargs)


def flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False, else raise ConfigError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False; got {show(value)}")
    return bool(value)


def _unknown(names: Iterable[str], name: Any, what: str, plural: str) -> ConfigError:
    valid = f"valid {plural or what + 's'}: {', '.join(names)}"
    return ConfigError(f"unknown {what} {show(name)}; {valid}")


def choice(table: Mapping[str, T], name: Any, what: str, plural: str = "") -> T:
    """Return ``table[name]``, else raise ConfigError naming the ``what`` and the valid names:
    "unknown activation 'swish'; valid activations: tanh, ...". ``plural`` defaults to
    ``what + "s"``."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise _unknown(table, name, what, plural)


def one_of(names: Sequence[str], name: Any, what: str, plural: str = "") -> str:
    """Return ``name`` if it is one of ``names``, else raise ConfigError as :func:`choice` does."""
    if isinstance(name, str) and name in names:
        return name
    raise _unknown(names, name, what, plural)


def switch(variable: str) -> bool:
    """Whether the environment variable ``variable`` (``0`` or ``1``; unset or empty: ``1``)
    leaves its feature on; another value is a ConfigError naming the two."""
    asked = os.environ.get(variable, "").strip() or "1"
    return one_of(("0", "1"), asked, f"${variable}", f"${variable} values") == "1"


def dtype(value: Any) -> str:
    """Return a floating dtype name xpnet computes in (float32 or float64); NumPy's dtype
    objects (``numpy.float32``, ``numpy.dtype("float64")``) stand for their names."""
    if isinstance(value, (type, np.dtype)):
        with contextlib.suppress(TypeError):  # a type that is no dtype stays itself, refused below
            value = np.dtype(value).name
    return one_of(DTYPES, value, "dtype")


def hidden(value: Any, name: str = "hidden") -> tuple[int, ...]:
    """Return hidden layer sizes as a tuple of positive ints from an int, a sequence of ints or a
    comma list ("3", "10,10"; "" or () for no hidden layer). Empty items ("3,,3", "3,") and
    anything else are refused."""
    sizes: Sequence[Any]
    if isinstance(value, str):
        text = value.strip()
        parts = [] if not text else [p.strip() for p in text.split(",")]
        sizes = [int(p) if p.lstrip("+").isdigit() else p for p in parts]  # "" and "a" stay bad
    elif isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        sizes = [value]
    elif isinstance(value, (tuple, list, np.ndarray)):
        sizes = list(value)
    else:
        sizes = [value]
    bad = [s for s in sizes
           if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1]  # fmt: skip
    if bad:
        raise ConfigError(f"{name} must be positive integers, e.g. 3 or 10,10 ('' for no hidden "
                          f"layer); got {show(value)}")  # fmt: skip
    return tuple(int(s) for s in sizes)


def devices(count: Any, data_parallel: bool) -> int | None:
    """Return the device count of data-parallel training (None: all); refuse it without
    ``data_parallel``."""
    if count is None:
        return None
    if not data_parallel:
        raise ConfigError("devices (--devices) is the device count of data-parallel training; "
                          "ask for data_parallel=True (--data-parallel) with it")  # fmt: skip
    return integer("devices", count)


def output(
    name: str, path: Any, formats: Iterable[str] | None = None, *, replaced: bool = False
) -> Path:
    """Return ``path`` as a Path if a file can be written there: not empty, not a folder, a name
    the file system takes, in a folder that exists and is writable, and (with ``formats``) with
    one of those suffixes; with ``replaced`` (written elsewhere and renamed over it, as model
    files are) nothing but a regular file may be there: a device or a pipe is never replaced.
    Else raise ConfigError ("--save '/no/dir/m.safetensors': the folder '/no/dir' does not
    exist").
    Checked before training, so that nothing trained is lost to a path discovered bad
    afterwards."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ConfigError(f"{name} must name a file; got {show(path)}")
    target = Path(path)
    where = f"{name} {show(str(path))}"
    folder = target.parent if str(target.parent) else Path(".")
    longest = 255
    with contextlib.suppress(OSError, ValueError):
        longest = os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    if len(os.fsencode(target.name)) + (24 if replaced else 0) > longest:  # + a temp suffix
        raise ConfigError(f"{where}: the file name is longer than the file system takes "
                          f"({longest} bytes{' with a temporary suffix' if replaced else ''})")  # fmt: skip
    if target.is_dir():
        raise ConfigError(f"{where} is a folder; name a file in it")
    if not folder.is_dir():
        raise ConfigError(f"{where}: the folder {show(str(folder))} does not exist")
    if replaced and (target.exists() or target.is_symlink()) and not target.is_file():
        raise ConfigError(f"{where} is not a regular file (a device, a pipe or a socket): a "
                          "model file is written beside it and renamed into place, which would "
                          "replace it; name a file")  # fmt: skip
    if not os.access(folder, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise ConfigError(f"{where} cannot be written (no permission)")
    if formats is not None:
        allowed = sorted(formats)
        suffix = target.suffix.lower().lstrip(".")
        if suffix not in allowed:
            raise ConfigError(f"{where}: unsupported format {show(suffix or '(none)')}; name a "
                              f"file ending in one of {', '.join('.' + f for f in allowed)}")  # fmt: skip
    return target


MODEL_SUFFIX = ".safetensors"
"""What a model file's name ends in: it is a safetensors file (formats 1 and 2, ``.npz``, are
read but never written)."""


def model_file(name: str, path: Any) -> Path:
    """:func:`output` for a model file (``--save``, checkpoints, ``Network.save``): replaced
    only if a regular file, and named ``*.safetensors`` (as Keras asks for ``.keras``), so that
    no tool opens it as the format another suffix names; else ConfigError
    ("--save 'run.npz': a model file is a safetensors file; name it 'run.safetensors'")."""
    target = output(name, path, replaced=True)
    if target.suffix.lower() != MODEL_SUFFIX:
        better = (
            target.with_suffix(MODEL_SUFFIX)
            if target.suffix
            else target.with_name(target.name + MODEL_SUFFIX)
        )
        raise ConfigError(f"{name} {show(str(path))}: a model file is a safetensors file; name "
                          f"it {show(str(better))}")  # fmt: skip
    return target


# -- data --------------------------------------------------------------------------------------
def namespace_features(xp: Any, X: Any, name: str = "X") -> Any:
    """:func:`features`' checks on an array of the namespace ``xp``, with its own functions (a
    lazy library such as dask computes them chunk by chunk): 2-D, not empty, numbers, finite.
    Returns X itself."""
    shape = tuple(X.shape)
    if len(shape) != 2:
        raise DataError(f"{name} must be 2-D (n_samples, n_features); got shape {shape}")
    if 0 in shape:
        raise DataError(f"{name} is empty (shape {shape}); need at least one sample and feature")
    if not xp.isdtype(X.dtype, ("real floating", "integral")):
        raise DataError(f"{name} must hold numbers; got dtype {X.dtype}")
    finite = xp.all(xp.isfinite(X), axis=1)
    if not bool(xp.all(finite)):
        row = int(xp.argmax(xp.astype(~finite, xp.int8)))
        raise DataError(f"{name} holds NaN or infinity (first in row {row})")
    return X


def _numbers(value: Any, name: str, what: str = "numbers", text: str = "") -> np.ndarray:
    """``value`` as a NumPy array of numbers (any shape), or DataError saying why not (``what``
    it must hold; ``text``: what to add when it holds text)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} could not be read as an array of numbers: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        hint = text if arr.dtype.kind in "OUS" else ""
        raise DataError(f"{name} must hold {what}; got dtype {arr.dtype}{hint}")
    return arr


def features(
    X: Any, n_features: int | None = None, name: str = "X", rows: slice | None = None
) -> np.ndarray:
    """Return X as a float64 (n_samples, n_features) array, or raise DataError saying what is wrong.
    With ``rows``, only those rows are converted, checked for NaN/inf and returned (a
    memory-mapped X is then read in those rows only); its shape is checked whole."""
    arr = _numbers(X, name)
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}"
            + ("; use X.reshape(-1, 1) for a single feature" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(
            f"{name} is empty (shape {arr.shape}); need at least one sample and feature"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"{name} has {arr.shape[1]} features; the model expects {n_features}")
    first = 0 if rows is None else min(rows.start, arr.shape[0])
    arr = (arr if rows is None else arr[rows]).astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"{name} holds NaN or infinity (first at row {first + row}, column {col})")
    return arr


def sample_weight(
    w: Any, n_samples: int, dtype: Any = np.float64, rows: slice | None = None
) -> np.ndarray | None:
    """Return sample weights as a ``dtype`` array (n_samples,) (only ``rows`` of them, where
    given), or None for None. A number stands for that weight on every sample. Raises DataError
    unless they are numbers, 1-D, one per sample, finite, not negative and not all zero."""
    if w is None:
        return None
    if isinstance(w, numbers.Real) and not isinstance(w, (bool, np.bool_)):
        w = np.full(n_samples, w)
    arr = _numbers(w, "sample_weight")
    if arr.ndim != 1:
        raise DataError(f"sample_weight must be 1-D (n_samples,); got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise DataError(f"X has {n_samples} samples but sample_weight has {arr.shape[0]}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if np.any(bad):
        raise DataError(f"sample_weight holds NaN or infinity (first at {int(np.argmax(bad))})")
    if np.any(arr < 0):
        raise DataError(f"sample_weight must not be negative (first at {int(np.argmax(arr < 0))})")
    if not np.any(arr > 0):
        raise DataError("sample_weight is zero everywhere; at least one sample must count")
    return (arr if rows is None else arr[rows]).astype(dtype)


CLASS_WEIGHTS = ("balanced",)
"""The named class weightings: ``balanced`` weighs class c by ``n / (n_classes * count_c)``
(scikit-learn's meaning)."""


def class_weight(name: str, value: Any) -> Any:
    """Check the setting ``class_weight``: None, ``"balanced"`` or a dict ``{label: weight}``
    of finite weights >= 0 (the classes it leaves out weigh 1). Returns it (a dict copied);
    else ConfigError."""
    if value is None or (isinstance(value, str) and value in CLASS_WEIGHTS):
        return value
    if isinstance(value, Mapping):
        return {label: number(f"{name}[{show(label)}]", w, 0) for label, w in value.items()}
    raise ConfigError(f"{name} must be None, 'balanced' or a dict {{class: weight}}; got "
                      f"{show(value)}")  # fmt: skip


def class_weights(
    value: Any, y_index: np.ndarray, classes: np.ndarray, name: str = "class_weight"
) -> np.ndarray | None:
    """The weight of each class (n_classes,) that the setting ``value`` (see
    :func:`class_weight`) gives labels ``y_index`` (n_samples,) of ``classes``; None for None.
    A dict naming a class that ``classes`` lacks is a DataError naming it."""
    value = class_weight(name, value)
    if value is None:
        return None
    k = classes.size
    if isinstance(value, str):  # balanced: every class present in y counts alike in all
        counts = np.bincount(y_index, minlength=k).astype(np.float64)
        return np.where(counts > 0, y_index.size / (k * np.maximum(counts, 1)), 0.0)
    index = {c.item() if isinstance(c, np.generic) else c: i for i, c in enumerate(classes)}
    out = np.ones(k)
    for label, w in value.items():
        key = label.item() if isinstance(label, np.generic) else label
        try:
            out[index[key]] = w
        except (KeyError, TypeError):
            shown = ", ".join(show(c) for c in list(index)[:10])
            raise DataError(f"{name} names the class {show(label)}, which y does not hold "
                            f"(its classes: {shown})") from None  # fmt: skip
    return out


def by_class(
    weights: np.ndarray | None, per_class: np.ndarray | None, y_index: np.ndarray
) -> np.ndarray | None:
    """Sample weights (n_samples,) times each sample's class weight (:func:`class_weights`;
    either may be None); DataError if no sample then counts."""
    if per_class is None:
        return weights
    combined: np.ndarray = per_class[y_index] * (1.0 if weights is None else weights)
    if not np.any(combined > 0):
        raise DataError("class_weight and sample_weight leave every sample at weight zero; at "
                        "least one sample must count")  # fmt: skip
    return combined.astype(np.float64 if weights is None else weights.dtype)


def one_kind(arr: np.ndarray, name: str = "y") -> np.ndarray:
    """Object-dtype labels ``arr`` as text or int64, where they are all of one kind; raise
    DataError naming the kinds they mix otherwise."""
    items = arr.ravel().tolist()
    if all(isinstance(v, str) for v in items):
        return arr.astype(str)
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        try:
            return arr.astype(np.int64)
        except OverflowError:
            raise DataError(f"{name} holds integers beyond 64 bits; class labels must fit in "
                            "int64 (or be text)") from None  # fmt: skip
    kinds = sorted({type(v).__name__ for v in items})
    raise DataError(f"{name} must hold class labels of one kind (integers or text); got "
                    f"{', '.join(kinds)}")  # fmt: skip


def _label_vector(y: Any, n_samples: int) -> np.ndarray:
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y could not be read as an array of labels: {exc}") from None
    if arr.dtype == object:
        arr = one_kind(arr)
    if arr.dtype.kind not in "biufU":
        raise DataError(f"y must hold class labels (integers or text); got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"y must be 1-D (n_samples,); got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise DataError(f"X has {n_samples} samples but y has {arr.shape[0]}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise DataError("y holds NaN or infinity")
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            shown = ", ".join(show(v) for v in np.unique(fractional)[:3])
            raise DataError(f"y holds non-integer numbers ({shown}, ...) where class labels are "
                            "expected; for continuous targets use a regression loss (huber, "
                            "absolute_error, quantile) or MLPRegressor")  # fmt: skip
    return arr


def class_labels(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_index (n,), classes (k,))`` for class labels y of length n_samples (k >= 2).
    Labels are integers or strings; numbers with a fractional part are refused (regression)."""
    arr = _label_vector(y, n_samples)
    classes, index = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        raise DataError(f"y has only one class ({show(classes[0].item())}); a Network needs at "
                        "least two (scikit-learn's estimators, xpnet.MLPClassifier too, fit one "
                        "and always predict it)")  # fmt: skip
    return index.astype(np.int64), classes


def label_index(y: Any, classes: np.ndarray, n_samples: int) -> np.ndarray:
    """Return the index in ``classes`` of each label in y (n_samples,); raise DataError naming
    labels that are not among them."""
    arr = _label_vector(y, n_samples)
    index = np.searchsorted(classes, arr)
    known = (index < classes.size) & (classes[np.minimum(index, classes.size - 1)] == arr)
    if not np.all(known):
        unknown = [v.item() for v in np.unique(arr[~known])[:5]]
        raise DataError(f"labels {show(unknown)} are not among the model's classes "
                        f"{show([c.item() for c in classes])}")  # fmt: skip
    return np.asarray(index, dtype=np.int64)


def targets(y: Any, n_samples: int, n_targets: int | None = None, name: str = "y") -> np.ndarray:
    """Regression targets y (n_samples,) or (n_samples, n_targets) as a float64 (n_samples, k)
    array; DataError unless they are finite numbers, one row per sample (``n_targets`` of
    them, where given: a fitted model's)."""
    arr = _numbers(y, name, "numbers (regression targets)",
                   "; class labels need a classification loss (cross_entropy)")  # fmt: skip
    if arr.ndim not in (1, 2):
        raise DataError(f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_targets); got "
                        f"shape {arr.shape}")  # fmt: skip
    if arr.shape[0] != n_samples:
        raise DataError(f"X has {n_samples} samples but {name} has {arr.shape[0]}")
    arr = arr.astype(np.float64).reshape(n_samples, -1)
    if arr.shape[1] == 0:
        raise DataError(f"{name} has no targets (shape {arr.shape})")
    if n_targets is not None and arr.shape[1] != n_targets:
        raise DataError(f"{name} has {arr.shape[1]} targets a row; the model predicts {n_targets}")
    if not np.all(np.isfinite(arr)):
        row = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"{name} holds NaN or infinity (first in row {row})")
    return arr

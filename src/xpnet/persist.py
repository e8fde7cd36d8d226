"""Model files: safetensors (tensors plus a JSON description), no pickle, nothing to inflate.

A file is a `safetensors <https://github.com/huggingface/safetensors>`_ file: the numeric arrays
as tensors by name and, in its string metadata under :data:`META_KEY`, a UTF-8 JSON object with
``format``, ``format_version``, a SHA-256 ``checksum`` of the arrays and of the description
itself (format 4; format 3's covered the arrays only), the ``kind`` of object that
wrote it (``Network``, ``MLPClassifier``, ``MLPRegressor``; :func:`load` gives back that object),
text arrays (class names, feature names; safetensors holds numbers only) and whatever that object
describes (architecture, dtype, training settings, backend). PyTorch, JAX and NumPy users can read
the weights with the safetensors library alone; xpnet reads them memory-mapped, its offsets
checked against the file's size by safetensors, so a file from a stranger can hold only plain
arrays and text, never code, and never costs more memory than it takes on disk.

Every kind stores its training state the same way (:func:`pack_training`,
:func:`unpack_training`): parameters ``param.W1``..., the optimizer's description (JSON) and
state ``opt.<path>``, the loss history ``history.passes``/``history.losses`` (at most
:data:`MAX_LOSSES` of them unless every one is asked for), and for mini-batch training the
current batch order and the shuffling generator's state, so that training resumed from a file
equals training never stopped.

Files are written by :func:`xpnet.writing.replace`: to a temporary name in the same folder,
flushed to disk and renamed over the target, so a crash never leaves half a file in place of a
good one. Files of xpnet 0.1 (format 1)
and of format 2 are ``.npz`` archives; they still load, each member's size checked before it is
read and a compressed member (xpnet never wrote one: it could inflate to any size) refused.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import schema, trees, validation, writing
from xpnet._typing import HostParams, Tree
from xpnet.errors import MissingDependencyError, ModelFileError

FORMAT = "xpnet-model"
FORMAT_VERSION = 4
"""4: the checksum covers the description too (3: the arrays only; 1 and 2: ``.npz``)."""
META_KEY = "__xpnet__"
MAX_META_BYTES = 64 * 2**20
"""A description larger than this is not an xpnet model's."""
MAX_LOSSES = 100_000
"""Recorded losses a file keeps by default (evenly spread, the first and last included)."""


def checksum(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> str:
    """Return the SHA-256 hex digest of the arrays' names, dtypes, shapes and bytes and, where
    given, of the description ``meta`` (its ``checksum`` entry left out) as JSON."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    if meta is not None:
        rest = json.loads(json.dumps({k: v for k, v in meta.items() if k != "checksum"}))
        digest.update(b"description|" + json.dumps(rest, sort_keys=True).encode())
    return digest.hexdigest()


def _safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:  # a dependency of xpnet's: only a broken install lacks it
        raise MissingDependencyError(
            "model files need safetensors; pip install safetensors"
        ) from None
    return safetensors


def header(kind: str) -> dict[str, str]:
    """What every model file's metadata starts with: which object wrote it (``kind``), the
    xpnet version, and when (UTC)."""
    import datetime

    from xpnet import __version__

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"kind": kind, "xpnet_version": __version__, "created": now}


def write(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; return the path."""
    st = _safetensors()
    path = validation.model_file("the model file", path)  # before anything is made
    arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}  # 0-d stays 0-d
    text = {k: v.tolist() for k, v in arrays.items() if v.dtype.kind == "U"}
    for k, v in arrays.items():
        if v.dtype.kind not in "biufU":
            raise ModelFileError(
                f"array {k!r} has dtype {v.dtype}; model files hold numbers or text"
            )
    full = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "text": text}
    full["checksum"] = checksum(arrays, full)
    tensors = {k: v for k, v in arrays.items() if k not in text}
    blob = st.numpy.save(tensors, metadata={META_KEY: json.dumps(full, sort_keys=True)})
    return writing.replace(path, lambda fh: fh.write(blob))


def read(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, meta)`` from a model file, or raise ModelFileError saying what is wrong
    (missing, a folder, not a model file, truncated or corrupt, written by a newer xpnet)."""
    path = Path(path)
    arrays, meta = _open(path, with_arrays=True)
    version = meta["format_version"]
    arrays |= {k: np.asarray(v, dtype=str).reshape(len(v)) for k, v in meta.get("text", {}).items()}
    if meta["checksum"] != checksum(arrays, meta if version >= 4 else None):
        what = "arrays" if version < 4 else "arrays or description"
        raise ModelFileError(f"{str(path)!r} is corrupt: its {what} do not match their checksum")
    return arrays, meta


def description(path: str | Path) -> dict[str, Any]:
    """A model file's description alone, checked as :func:`read` checks it but its arrays
    neither read nor compared with the checksum: enough to learn which class wrote it
    (``kind``), which then reads it whole."""
    return _open(Path(path), with_arrays=False)[1]


def _open(path: Path, with_arrays: bool) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (none unless ``with_arrays``) and the checked description of ``path``."""
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelFileError(f"model file {str(path)!r} cannot be read ({exc.strerror})") from None
    if head.startswith(b"PK"):
        arrays, meta = _read_npz(path, with_arrays)
    else:
        arrays, meta = _read_safetensors(path, head, with_arrays)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not an xpnet model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{str(path)!r} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} was written by a newer xpnet (model format {version}; this xpnet reads "
            f"up to {FORMAT_VERSION}); upgrade xpnet to load it"
        )
    try:
        schema.check(meta, DESCRIPTION)
        for k, v in meta.get("text", {}).items():
            schema.check(v, [str], f"text.{k}")
    except schema.Invalid as exc:
        raise invalid(path, exc) from None
    if version == 1:
        meta.setdefault("kind", "Network")  # version 1: only Network wrote files
    return arrays, meta


def _not_a_model(path: Path, why: str = "") -> ModelFileError:
    return ModelFileError(f"{str(path)!r} is not a readable xpnet model file{why}")


def _read_safetensors(
    path: Path, head: bytes, with_arrays: bool
) -> tuple[dict[str, np.ndarray], Any]:
    """Arrays (with ``with_arrays``) and description of a format-3 or -4 file; a header that
    cannot be one is refused before anything else is read."""
    size = path.stat().st_size
    header = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 0 < header <= min(size - 8, MAX_META_BYTES):
        raise _not_a_model(path, " (truncated, or not one at all)")
    st = _safetensors()
    try:
        with st.safe_open(str(path), framework="numpy") as f:
            blob = (f.metadata() or {}).get(META_KEY)
            keys = f.keys() if with_arrays else []
            arrays = {k: np.array(f.get_tensor(k)) for k in keys}
    except Exception as exc:  # safetensors' own error: a broken header or offsets
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _not_a_model(path, f" ({first})") from None
    if blob is None:
        raise ModelFileError(f"{str(path)!r} is a safetensors file but not an xpnet model file")
    try:
        return arrays, json.loads(blob)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{str(path)!r} has a corrupt description: {exc}") from None


def _read_npz(path: Path, with_arrays: bool) -> tuple[dict[str, np.ndarray], Any]:
    """Arrays (with ``with_arrays``) and description of a format 1 or 2 file (``.npz``): no
    member is inflated, none is larger than the file, and none holds pickled objects."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ModelFileError(f"{str(path)!r} holds a compressed member "
                                         f"{info.filename!r}; xpnet model files never do")  # fmt: skip
                if info.file_size > size:
                    raise _not_a_model(path, f" (member {info.filename!r} claims more bytes "
                                             "than the file holds)")  # fmt: skip
            if not any(i.filename == META_KEY + ".npy" for i in infos):
                raise ModelFileError(
                    f"{str(path)!r} is an .npz archive but not an xpnet model file"
                )
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files if with_arrays or k == META_KEY}
    except ModelFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ModelFileError(f"{str(path)!r} holds pickled objects, which model files never "
                                 "do; it is not loaded") from None  # fmt: skip
        raise _not_a_model(path, " (truncated or corrupt)") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError):
        raise _not_a_model(path, " (truncated or corrupt)") from None
    blob = arrays.pop(META_KEY)
    if blob.size > MAX_META_BYTES:
        raise ModelFileError(f"{str(path)!r} has a description too large for a model file")
    try:
        return arrays, json.loads(blob.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} has a corrupt description: {exc}") from None


DESCRIPTION = {"format": str, "format_version": int, "?kind": str, "checksum": str,
               "?text": {}}  # fmt: skip
"""What every model file's description holds (:mod:`xpnet.schema`); each kind checks the rest."""


def invalid(path: str | Path, exc: Exception) -> ModelFileError:
    """The error for a file whose description or arrays are not what its kind needs (``exc``
    from reading it: a missing key, a wrong type or value, an invariant broken)."""
    what = f"{exc.args[0]!s} is missing" if isinstance(exc, KeyError) and exc.args else str(exc)
    return ModelFileError(f"{str(path)!r} has an invalid description: {what}")


def require(condition: bool, message: str) -> None:
    """Raise :class:`~xpnet.schema.Invalid` with ``message`` unless ``condition`` holds (an
    invariant between a file's parts)."""
    if not condition:
        raise schema.Invalid(message)


def finite(arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Every array named ``prefix...`` is a float array with finite entries."""
    for k, v in arrays.items():
        if k.startswith(prefix):
            require(v.dtype.kind == "f", f"{k} has dtype {v.dtype}, not a floating type")
            require(bool(np.isfinite(v).all()), f"{k} holds NaN or infinite entries")


def matching(arrays: dict[str, np.ndarray], prefix: str, shapes: dict[str, Any]) -> None:
    """The arrays named ``prefix + k`` have the shapes ``shapes[k]``."""
    for k, shape in shapes.items():
        got = arrays.get(prefix + k)
        shape = tuple(shape)
        require(got is not None, f"{prefix}{k} is missing")
        require(got.shape == shape, f"{prefix}{k} has shape {got.shape}, not {shape}")  # type: ignore[union-attr]


def bounded(
    passes: np.ndarray, losses: np.ndarray, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` (default :data:`MAX_LOSSES`) entries of a loss history, evenly spread
    over it, the first and last kept."""
    limit = MAX_LOSSES if limit is None else limit
    if passes.size <= limit:
        return passes, losses
    keep = np.unique(np.linspace(0, passes.size - 1, limit).round().astype(np.int64))
    return passes[keep], losses[keep]


def pack_training(
    params: HostParams,
    opt_state: Tree,
    history: tuple[np.ndarray, np.ndarray],
    feed: dict[str, Any] | None,
    all_losses: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, meta)`` holding a training state: host parameters, host optimizer
    state, the history ``(passes, losses)`` (:func:`bounded` unless ``all_losses``) and the
    mini-batch feed's state (``order`` and the generator's ``rng`` state; None for full batch)."""
    arrays = {f"param.{k}": np.asarray(v) for k, v in params.items()}
    arrays |= {k: np.asarray(v) for k, v in trees.flatten(opt_state, "opt.").items()}
    passes = np.asarray(history[0], dtype=np.int64)
    losses = np.asarray(history[1], dtype=np.float64)
    passes, losses = (passes, losses) if all_losses else bounded(passes, losses)
    arrays["history.passes"], arrays["history.losses"] = passes, losses
    meta: dict[str, Any] = {}
    if feed is not None:
        name, keys, pos, has_gauss, cached = feed["rng"]
        arrays["feed.order"] = np.asarray(feed["order"], dtype=np.int64)
        arrays["feed.rng"] = np.asarray(keys, dtype=np.uint32)
        meta["rng"] = [name, int(pos), int(has_gauss), float(cached)]
    return arrays, meta


def generator_state(state: tuple[Any, ...], what: str) -> None:
    """Raise :class:`~xpnet.schema.Invalid` unless NumPy's legacy generator takes ``state``."""
    try:
        np.random.RandomState().set_state(state)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:  # a position past int64
        raise schema.Invalid(f"{what} are not a generator state NumPy takes ({exc})") from None


def unpack_training(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], opt_template: Tree
) -> tuple[Tree, tuple[np.ndarray, np.ndarray], dict[str, Any] | None]:
    """The inverse of :func:`pack_training` for the optimizer state (shaped like
    ``opt_template``), the history and the feed state; raises KeyError on a missing array and
    :class:`~xpnet.schema.Invalid` on parts that do not fit together."""
    state = trees.unflatten(opt_template, arrays, "opt.")
    if opt_template is not None:
        matching(arrays, "opt.", {k: np.shape(v) for k, v in trees.flatten(opt_template).items()})
        finite(arrays, "opt.")
    if "history.losses" in arrays:
        history = arrays["history.passes"], arrays["history.losses"]
    else:  # version 1: every pass's loss
        curve = arrays.get("loss_curve", np.zeros(0))
        history = np.arange(curve.size), curve
    passes, losses = history
    require(passes.ndim == 1 and passes.shape == losses.shape and passes.dtype.kind in "iu"
            and losses.dtype.kind == "f", "history.passes and history.losses must be two 1-d "
            "arrays of one length (integers, numbers)")  # fmt: skip
    require(
        bool((passes >= 0).all() and (np.diff(passes) > 0).all()),
        "history.passes must increase from 0 or more",
    )
    feed = None
    if "feed.order" in arrays:
        schema.check(meta.get("rng"), [(str, int, float)], "training.rng")
        name, pos, has_gauss, cached = meta["rng"]
        order = arrays["feed.order"]
        require(order.ndim == 1 and order.dtype.kind in "iu"
                and bool((np.sort(order) == np.arange(order.size)).all()),
                "feed.order must be an order of the rows (each row once)")  # fmt: skip
        rng = (name, arrays["feed.rng"], pos, has_gauss, cached)
        generator_state(rng, "training.rng and feed.rng")
        feed = {"order": order, "rng": rng}
    return state, history, feed

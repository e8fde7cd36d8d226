"""Model files: NumPy arrays plus a JSON description in one ``.npz`` archive, no pickle.

A file holds the arrays by name and, under :data:`META_KEY`, a UTF-8 JSON object with ``format``,
``format_version``, a SHA-256 ``checksum`` of the arrays, the ``kind`` of object that wrote it
(``Network``, ``MLPClassifier``, ``MLPRegressor``; :func:`load` gives back that object) and
whatever that object describes (architecture, dtype, training settings, backend).

Every kind stores its training state the same way (:func:`pack_training`,
:func:`unpack_training`): parameters ``param.W1``..., the optimizer's description (JSON) and
state ``opt.<path>``, the loss history ``history.passes``/``history.losses``, and for mini-batch
training the current batch order and the shuffling generator's state, so that training resumed
from a file equals training never stopped.

Files are written to a temporary name in the same folder, flushed to disk and renamed over the
target, so a crash never leaves half a file in place of a good one. Reading uses
``numpy.load(allow_pickle=False)``: a file from a stranger can hold only plain arrays and text,
never code. Version 1 files (xpnet 0.1: ``Network``, plain gradient descent) still load.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import trees
from xpnet._typing import HostParams, Tree
from xpnet.errors import ModelFileError

FORMAT = "xpnet-model"
FORMAT_VERSION = 2
META_KEY = "__xpnet__"

KINDS = {
    "Network": "xpnet.model",
    "MLPClassifier": "xpnet.estimators",
    "MLPRegressor": "xpnet.estimators",
}
"""Which class wrote a file, and where it lives."""


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """Return the SHA-256 hex digest of the arrays' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _check_plain(name: str, a: np.ndarray) -> None:
    if a.dtype.kind not in "biufU":
        raise ModelFileError(
            f"array {name!r} has dtype {a.dtype}; model files hold numbers or text"
        )


def write(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; return the path."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        _check_plain(k, v)
    full = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION}
    full["checksum"] = checksum(arrays)
    blob = np.frombuffer(json.dumps(full, sort_keys=True).encode(), dtype=np.uint8)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as other files are made here (mkstemp's is 0600)
        with os.fdopen(fd, "wb") as fh:
            payload: dict[str, Any] = {**arrays, META_KEY: blob}  # plain dtypes: no pickling
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, meta)`` from a model file, or raise ModelFileError saying what is wrong
    (missing, not a model file, truncated or corrupt, written by a newer xpnet)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(
            f"{str(path)!r} is not a readable xpnet model file (truncated or corrupt?): {exc}"
        ) from None
    blob = arrays.pop(META_KEY, None)
    if blob is None:
        raise ModelFileError(f"{str(path)!r} is an .npz archive but not an xpnet model file")
    try:
        meta = json.loads(blob.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} has a corrupt description: {exc}") from None
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
    if meta.get("checksum") != checksum(arrays):
        raise ModelFileError(f"{str(path)!r} is corrupt: its arrays do not match their checksum")
    if version == 1:
        meta.setdefault("kind", "Network")  # version 1: only Network wrote files
    return arrays, meta


def pack_training(
    params: HostParams,
    opt_state: Tree,
    history: tuple[np.ndarray, np.ndarray],
    feed: dict[str, Any] | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, meta)`` holding a training state: host parameters, host optimizer
    state, the history ``(passes, losses)`` and the mini-batch feed's state (``order`` and the
    generator's ``rng`` state; None for full batch)."""
    arrays = {f"param.{k}": np.asarray(v) for k, v in params.items()}
    arrays |= {k: np.asarray(v) for k, v in trees.flatten(opt_state, "opt.").items()}
    arrays["history.passes"] = np.asarray(history[0], dtype=np.int64)
    arrays["history.losses"] = np.asarray(history[1], dtype=np.float64)
    meta: dict[str, Any] = {}
    if feed is not None:
        name, keys, pos, has_gauss, cached = feed["rng"]
        arrays["feed.order"] = np.asarray(feed["order"], dtype=np.int64)
        arrays["feed.rng"] = np.asarray(keys, dtype=np.uint32)
        meta["rng"] = [name, int(pos), int(has_gauss), float(cached)]
    return arrays, meta


def unpack_training(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], opt_template: Tree
) -> tuple[Tree, tuple[np.ndarray, np.ndarray], dict[str, Any] | None]:
    """The inverse of :func:`pack_training` for the optimizer state (shaped like
    ``opt_template``), the history and the feed state; raises KeyError on a missing array."""
    state = trees.unflatten(opt_template, arrays, "opt.")
    if "history.losses" in arrays:
        history = arrays["history.passes"], arrays["history.losses"]
    else:  # version 1: every pass's loss
        curve = arrays.get("loss_curve", np.zeros(0))
        history = np.arange(curve.size), curve
    feed = None
    if "feed.order" in arrays:
        name, pos, has_gauss, cached = meta["rng"]
        feed = {"order": arrays["feed.order"],
                "rng": (name, arrays["feed.rng"], pos, has_gauss, cached)}  # fmt: skip
    return state, history, feed


def load(path: str | Path, **where: Any) -> Any:
    """Read a model file and return the object that wrote it (a ``Network``, an
    ``MLPClassifier`` or an ``MLPRegressor``), on the backend ``where`` names (``backend=``,
    ``device=``...; default: as :func:`xpnet.backends.select` chooses here)."""
    _, meta = read(path)
    kind = meta.get("kind")
    if kind not in KINDS:
        raise ModelFileError(f"{str(path)!r} holds a {kind!r}, which this xpnet cannot load")
    cls = getattr(importlib.import_module(KINDS[kind]), kind)
    return cls.load(path, **where)

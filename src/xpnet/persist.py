"""Model files: NumPy arrays plus a JSON description in one ``.npz`` archive, no pickle.

A file holds the arrays by name and, under :data:`META_KEY`, a UTF-8 JSON object with ``format``,
``format_version``, a SHA-256 ``checksum`` of the arrays and whatever the caller describes
(architecture, dtype, training settings, backend). Files are written to a temporary name in the same
folder, flushed to disk and renamed over the target, so a crash never leaves half a file in place
of a good one. Reading uses ``numpy.load(allow_pickle=False)``: a file from a stranger can hold only
plain arrays and text, never code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xpnet.errors import ModelFileError

FORMAT = "xpnet-model"
FORMAT_VERSION = 1
META_KEY = "__xpnet__"


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
    return arrays, meta

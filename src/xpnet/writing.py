"""Writing a file so that a failure never leaves half of it: every output xpnet writes (model
files, predictions, metrics, plots, ONNX) goes through :func:`replace`.

A regular file (or none) at the path is replaced atomically: the content goes to a temporary
file beside it, is flushed to disk and renamed over it, so a crash, a full disk or a Ctrl-C
leaves the old file (or nothing) and at most a dead ``.NAME.*.tmp``. Anything else there (a
device such as ``/dev/stdout``, a pipe) is never replaced: it is written in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from xpnet.errors import WriteError


def replace(path: str | Path, fill: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` with ``fill(fh)`` (``fh`` a binary file), atomically where a regular file
    or nothing is there; return the path. An OSError becomes WriteError naming the file and
    saying that nothing was replaced (``reason``: what the system said)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a device or a pipe: written, never replaced
            with path.open("wb") as fh:
                fill(fh)
        else:
            _atomically(path, fill)
    except OSError as exc:
        why = exc.strerror or str(exc)
        error = WriteError(f"could not write {str(path)!r}: {why}; nothing was replaced")
        error.reason = why
        raise error from None
    return path


def _atomically(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as other files are made here (mkstemp's is 0600)
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

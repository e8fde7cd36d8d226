"""Stop signals and the command line's start: nothing is lost to a signal that comes early.

:data:`STOP_SIGNALS` end training after the current chunk with the model kept
(:func:`xpnet.callbacks.stop_signals`). A training command takes seconds to start (imports, data,
compiling); :func:`early` remembers a stop signal that arrives then, and training stops after
its first chunk as if it had come then. :func:`main` is the ``xpnet`` script: it starts
remembering before the command line is even imported. Only the standard library here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))  # fmt: skip
"""Ctrl-C, a kill, and the terminal going away (SIGHUP, where the system has it)."""
TRAINING = ("train", "sweep")
"""The commands whose start-up remembers a stop signal."""
_STATE: dict[str, Any] = {"pending": [], "before": False}


def take_pending() -> int | None:
    """The first stop signal that arrived before training started (and forget it), or None."""
    pending = _STATE["pending"]
    return int(pending.pop(0)) if pending else None


def started() -> None:
    """Training has run: from now on a stop signal outside training acts at once."""
    _STATE["before"] = False


@contextlib.contextmanager
def early() -> Iterator[None]:
    """Within the block, a stop signal before training starts is remembered (see
    :func:`take_pending`); one after training acts as it would have. Outside the main thread
    nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {int(s): signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        if _STATE["before"]:
            _STATE["pending"].append(signum)
            return
        old = previous[signum]
        signal.signal(signum, signal.default_int_handler if old is None else old)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)  # as it would have acted

    _STATE.update(pending=[], before=True)
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        _STATE.update(pending=[], before=False)
        for s, old in previous.items():
            signal.signal(s, signal.SIG_DFL if old is None else old)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``xpnet`` script: :func:`xpnet.cli.main`, a training command started under
    :func:`early` before anything heavy is imported."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in TRAINING:
        from xpnet.cli import main as run

        return run(args)
    with early():
        from xpnet.cli import main as run

        return run(args)

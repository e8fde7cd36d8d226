"""Reporting training progress on the command line: log lines, a progress bar, or nothing.

The :class:`Reporter` is a plug-in of the training engine (:mod:`xpnet.callbacks`): the driver
calls it once per chunk of passes with the losses that chunk recorded, already on the host, so
reporting never adds a device sync per pass. ``mode="bar"`` draws a rich
progress bar (pass, loss, passes per second) with the log lines above it; ``"lines"`` prints only
the log lines (for pipes and files); ``"quiet"`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from xpnet.callbacks import Callback

if TYPE_CHECKING:
    from xpnet.run import Run

MODES = ("auto", "bar", "lines", "quiet")


def choose_mode(mode: str, stream: TextIO) -> str:
    """Resolve ``auto``: a bar on an interactive terminal when rich is installed, else lines."""
    if mode != "auto":
        return mode
    if not stream.isatty():
        return "lines"
    try:
        import rich  # noqa: F401
    except ImportError:
        return "lines"
    return "bar"


def plural(unit: str) -> str:
    """The plural of a unit: pass -> passes, epoch -> epochs."""
    return unit + ("es" if unit.endswith("s") else "s")


class Reporter(Callback):
    """Print ``line(i, loss)`` for every recorded pass ``i`` divisible by ``every`` and keep a bar
    of ``total`` passes up to date (mode ``bar``; ``unit`` names what it counts: a pass, an epoch,
    an iteration). Use as a context manager around training."""

    def __init__(
        self,
        total: int,
        every: int,
        line: Callable[[int, float], str],
        mode: str = "auto",
        stream: TextIO | None = None,
        unit: str = "pass",
    ) -> None:
        self.stream = stream or sys.stdout
        self.unit = unit
        self.mode = choose_mode(mode, self.stream)
        self.total, self.every, self.line = total, every, line
        self.done = self._first = 0
        self._start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Reporter:
        self._start = time.perf_counter()
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(self.unit + " {task.completed:>{task.fields[width]}}/{task.total}"),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} " + plural(self.unit) + "/s"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "train", total=self.total, loss="-", rate="-", width=len(str(self.total))
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def print(self, text: str) -> None:
        """Print a line (above the bar when one is shown)."""
        if self.mode == "quiet":
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def on_train_begin(self, run: Run) -> None:
        self._first, self._start = run.epoch, time.perf_counter()

    def on_chunk_end(self, run: Run, passes: np.ndarray, losses: np.ndarray) -> None:
        """The engine's call: ``losses`` are those of the recorded ``passes`` of a chunk."""
        if self.mode == "quiet":
            return
        for i, value in zip(passes, losses, strict=True):
            if i % self.every == 0:
                self.print(self.line(int(i), float(value)))
        self.done = run.epoch
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            self._bar.update(
                self._task,
                completed=self.done,
                loss=f"{losses[-1]:.6f}" if losses.size else "-",
                rate=f"{(self.done - self._first) / elapsed:,.0f}",
            )

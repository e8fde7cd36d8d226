"""Reporting training progress on the command line: log lines, a progress bar, or nothing.

The trainer calls :meth:`Reporter.on_chunk` once per chunk of passes with that chunk's losses
already on the host, so reporting never adds a device sync per pass. ``mode="bar"`` draws a rich
progress bar (pass, loss, passes per second) with the log lines above it; ``"lines"`` prints only
the log lines (for pipes and files); ``"quiet"`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

import numpy as np

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


class Reporter:
    """Print ``line(i, loss)`` for every pass ``i`` divisible by ``every`` and keep a bar of
    ``total`` passes up to date (mode ``bar``). Use as a context manager around training."""

    def __init__(
        self,
        total: int,
        every: int,
        line: Callable[[int, float], str],
        mode: str = "auto",
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.mode = choose_mode(mode, self.stream)
        self.total, self.every, self.line = total, every, line
        self.done = 0
        self._start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Reporter:
        self._start = time.perf_counter()
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("pass {task.completed:>{task.fields[width]}}/{task.total}"),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} passes/s"),
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

    def on_chunk(self, first: int, losses: np.ndarray, params: Any) -> None:
        """The training callback: ``losses`` (n,) are passes ``first .. first + n - 1``."""
        if self.mode == "quiet":
            return
        start = -(-first // self.every) * self.every
        for i in range(start, first + losses.size, self.every):
            self.print(self.line(i, float(losses[i - first])))
        self.done = first + losses.size
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            self._bar.update(
                self._task,
                completed=self.done,
                loss=f"{losses[-1]:.6f}",
                rate=f"{self.done / elapsed:,.0f}",
            )

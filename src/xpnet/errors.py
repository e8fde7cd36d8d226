"""The errors xpnet raises on purpose.

Every message says what was wrong and what would be valid, on one line, so that the CLI can print it
as it is and exit with status 2. Each class also derives from the builtin a user would catch.
"""

from __future__ import annotations


class XpnetError(Exception):
    """Base class of every error xpnet raises deliberately."""


class ConfigError(XpnetError, ValueError):
    """An argument has an invalid value (unknown name, non-positive size or rate, bad dtype)."""


class DataError(XpnetError, ValueError):
    """Training or prediction data is unusable (shape, NaN/inf, labels, empty)."""


class ModelFileError(XpnetError, ValueError):
    """A model file is missing, truncated, corrupt, not an xpnet model or from a newer xpnet."""


class WriteError(XpnetError, OSError):
    """A file could not be written (a full disk, a permission gone, a device that refused):
    nothing was replaced; the message names the file, ``reason`` says what the system said."""

    reason: str = ""


class BackendUnavailableError(XpnetError, RuntimeError):
    """A known backend cannot be used here (package missing, no GPU, no float64)."""


class DivergenceError(XpnetError, ValueError, RuntimeError):
    """Training produced a non-finite or runaway loss at pass ``pass_index``. ``params`` holds the
    last parameters checked to be finite and ``losses`` the per-pass losses that led to them. A
    ValueError as scikit-learn raises for non-finite weights, and a RuntimeError."""

    def __init__(
        self,
        message: str,
        *,
        pass_index: int,
        params: object = None,
        losses: object = None,
        value: float = float("nan"),
    ) -> None:
        super().__init__(message)
        self.pass_index = pass_index
        self.params = params
        self.losses = losses
        self.value = value
        """The loss that was judged to diverge (not finite, or over the growth limit)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training after a whole chunk. ``params`` are the parameters after
    ``passes_done`` passes and ``losses`` their per-pass losses. A KeyboardInterrupt, so that code
    catching ``Exception`` does not swallow it."""

    def __init__(
        self, *, passes_done: int, params: object, losses: object, signum: int | None = None
    ) -> None:
        super().__init__(f"training interrupted after {passes_done} passes")
        self.passes_done = passes_done
        self.params = params
        self.losses = losses
        self.signum = signum
        """The signal that stopped training (SIGINT for Ctrl-C, or SIGTERM)."""


class MissingDependencyError(XpnetError, ImportError):
    """An optional package (scikit-learn for data sets, matplotlib for plots) is not installed."""

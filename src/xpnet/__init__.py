"""xpnet: neural networks whose math is written once against the Python Array API standard and runs
unchanged on NumPy, array-api-strict, JAX, CuPy and PyTorch.

``import xpnet`` loads only the error classes; the public names below are imported on first use
(``xpnet.Network`` loads NumPy and the training code, ``xpnet.MLPClassifier`` scikit-learn too), so
the command line and scripts that need one part do not pay for the rest. Each backend's library is
imported only when that backend is selected.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from xpnet.errors import (
    BackendUnavailableError,
    ConfigError,
    DataError,
    DivergenceError,
    MissingDependencyError,
    ModelFileError,
    TrainingInterrupted,
    WriteError,
    XpnetError,
)

if TYPE_CHECKING:
    from xpnet.backends import BACKENDS, Backend, select
    from xpnet.estimators import MLPClassifier, MLPRegressor
    from xpnet.loading import load
    from xpnet.mlp import Spec
    from xpnet.model import Network

__version__ = "0.2.0"

_LAZY = {
    "BACKENDS": "xpnet.backends",
    "Backend": "xpnet.backends",
    "select": "xpnet.backends",
    "Spec": "xpnet.mlp",
    "Network": "xpnet.model",
    "load": "xpnet.loading",
    "MLPClassifier": "xpnet.estimators",
    "MLPRegressor": "xpnet.estimators",
}


def __getattr__(name: str) -> object:
    """Import a public name's module on first use (PEP 562). The estimators need scikit-learn,
    which ``import xpnet`` alone does not: without it they raise MissingDependencyError."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xpnet' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        if module != "xpnet.estimators":
            raise
        raise MissingDependencyError(
            f"xpnet.{name} needs scikit-learn; pip install 'xpnet[data]' ({exc})"
        ) from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "MLPClassifier",
    "MLPRegressor",
    "MissingDependencyError",
    "ModelFileError",
    "Network",
    "Spec",
    "TrainingInterrupted",
    "WriteError",
    "XpnetError",
    "__version__",
    "load",
    "select",
]

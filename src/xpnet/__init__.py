"""xpnet: neural networks whose math is written once against the Python Array API standard and runs
unchanged on NumPy, array-api-strict, JAX, CuPy and PyTorch.

``import xpnet`` needs only NumPy and array-api-compat; each backend is imported when selected.
"""

from xpnet.backends import BACKENDS, Backend, select
from xpnet.errors import (
    BackendUnavailableError,
    ConfigError,
    DataError,
    DivergenceError,
    MissingDependencyError,
    XpnetError,
)
from xpnet.mlp import Spec
from xpnet.model import Network

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "MissingDependencyError",
    "Network",
    "Spec",
    "XpnetError",
    "__version__",
    "select",
]

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


def __getattr__(name: str) -> object:
    """``xpnet.MLPClassifier`` and ``xpnet.MLPRegressor``, imported on first use (they need
    scikit-learn, which ``import xpnet`` alone does not)."""
    if name in ("MLPClassifier", "MLPRegressor"):
        try:
            from xpnet import estimators
        except ImportError as exc:
            raise MissingDependencyError(
                f"xpnet.{name} needs scikit-learn; pip install 'xpnet[data]' ({exc})"
            ) from None
        return getattr(estimators, name)
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


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
    "Network",
    "Spec",
    "XpnetError",
    "__version__",
    "select",
]

"""The shared backend matrix.

Tests take ``backend_name`` (one of the enabled backends) and build backends with
``make_backend(dtype)``. ``XPNET_TEST_BACKENDS`` (comma list) names the enabled backends; each nox
session sets it to its own backend, so no session skips. Without it, every backend is tried and
those not installed skip with the command that installs them. ``XPNET_TEST_DEVICE`` picks the
device (the GPU sessions set ``gpu``); a backend with no usable device there skips with the reason,
unless ``XPNET_TEST_REQUIRE_DEVICE=1`` (the GPU check sets it): then a missing backend or device,
or a backend that lands on the CPU when a GPU was asked for, fails the run instead of turning it
green with skips.

``numpy`` is always importable and serves as the reference the other backends are compared with.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

# scikit-learn's estimator checks also feed array-API arrays when SciPy's array API mode is on.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# JAX takes 75% of a GPU's memory at start unless told to grow on demand; the suite starts xpnet
# subprocesses and other libraries beside it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import pytest

from xpnet import backends
from xpnet.errors import BackendUnavailableError

ALL = tuple(backends.BACKENDS)
ENABLED = tuple(
    name.strip()
    for name in os.environ.get("XPNET_TEST_BACKENDS", ",".join(ALL)).split(",")
    if name.strip()
)
DEVICE = os.environ.get("XPNET_TEST_DEVICE") or None
EXPLICIT = "XPNET_TEST_BACKENDS" in os.environ
REQUIRED = os.environ.get("XPNET_TEST_REQUIRE_DEVICE") == "1"

# float32 agreement with the float64 NumPy reference: relative error of a loss or a gradient
# entry, measured against the largest entry of that gradient (documented in README and
# docs/backends.md). With $XPNET_PRECISION asking for faster products on a GPU, the matrix
# allows what they round: TF32 keeps 10 bits of mantissa, bfloat16 passes 8.
F32_RTOL = {"highest": 2e-5, "high": 5e-3, "medium": 3e-2}[backends.precision()]
F64_RTOL = 1e-12


def _installed(name: str) -> bool:
    return importlib.util.find_spec(backends.BACKENDS[name].module) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A nox session tests one backend (``XPNET_TEST_BACKENDS``). It deselects what another
    session runs: tests outside the backend matrix (data sets, CSV, model files, the CLI's error
    paths, scikit-learn's checks...) run once, where numpy is enabled, a test marked
    ``peer("torch")`` runs where its peer library is installed, and one marked
    ``only_backend("jax")`` runs for that backend of the matrix only."""
    keep, drop = [], []
    for item in items:
        only = [m.args[0] for m in item.iter_markers("only_backend")]
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend_name") if callspec is not None else None
        if only and backend not in only:
            drop.append(item)
            continue
        if not EXPLICIT:
            keep.append(item)
            continue
        peers = [m.args[0] for m in item.iter_markers("peer")]
        elsewhere = (
            "backend_name" not in getattr(item, "fixturenames", ()) and "numpy" not in ENABLED
        )
        missing = any(importlib.util.find_spec(p) is None for p in peers)
        (drop if elsewhere or missing else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", ENABLED)


@pytest.fixture
def make_backend(backend_name: str) -> Callable[[str], backends.Backend]:
    """Return ``make(dtype) -> Backend`` for the current backend, skipping where unusable."""
    if not _installed(backend_name):
        if EXPLICIT:
            pytest.fail(f"{backend_name} is enabled by XPNET_TEST_BACKENDS but not installed")
        pytest.skip(f"{backend_name} not installed: {backends.BACKENDS[backend_name].install}")

    def make(dtype: str = "float64") -> backends.Backend:
        try:
            backend = backends.select(backend_name, DEVICE, dtype)
        except BackendUnavailableError as exc:
            if REQUIRED:
                pytest.fail(
                    f"{backend_name} on {DEVICE or 'its default device'} was required: {exc}"
                )
            pytest.skip(f"{backend_name} unusable here: {exc}")
        if REQUIRED and DEVICE and DEVICE.startswith("gpu") and not backend.is_accelerator:
            pytest.fail(f"{backend_name} was asked for {DEVICE} and gave {backend.device_label}")
        return backend

    return make


@pytest.fixture
def reference() -> backends.Backend:
    """The NumPy float64 backend every other one is compared with."""
    return backends.select("numpy", None, "float64")

"""The backend selector: precedence, devices, dtypes and every failure's one-line message."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from xpnet import backends, feeds
from xpnet.errors import BackendUnavailableError, ConfigError
from xpnet.run import Run


def test_precedence_argument_over_environment_over_default(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert backends.resolve_name() == "numpy"
    monkeypatch.setenv(backends.ENV_VAR, "strict")
    assert backends.resolve_name() == "strict"
    assert backends.resolve_name("numpy") == "numpy"
    assert backends.select().name == "strict"


@pytest.mark.parametrize("bad", ["tensorflow", "nump", "gpu"])
def test_unknown_backend_lists_the_valid_ones(bad):
    with pytest.raises(ConfigError) as info:
        backends.select(bad)
    msg = str(info.value)
    assert f"unknown backend {bad!r}" in msg
    assert "valid backends: numpy, strict, jax, cupy, torch" in msg
    assert "\n" not in msg


def test_unknown_backend_from_environment_says_so(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "mxnet")
    with pytest.raises(ConfigError, match=r"unknown backend 'mxnet' \(from \$XPNET_BACKEND\)"):
        backends.select()


def test_missing_package_names_the_pip_command(monkeypatch):
    class Missing(backends.JaxBackend):
        module = "no_such_module_xpnet"

    monkeypatch.setitem(backends.BACKENDS, "jax", Missing)
    with pytest.raises(BackendUnavailableError) as info:
        backends.select("jax")
    assert str(info.value) == (
        "no_such_module_xpnet is not installed; pip install 'xpnet[jax]' "
        "(GPU: 'xpnet[jax-cuda]' for CUDA 13, 'xpnet[jax-cuda12]') or use --backend numpy"
    )


def test_cupy_without_a_gpu_is_a_clear_error(monkeypatch):
    """``import cupy`` succeeds without a driver: the selector must ask ``cupy.is_available()``."""
    fake = types.ModuleType("cupy")
    fake.is_available = lambda: False
    fake.__version__ = "0-fake"
    compat = types.ModuleType("array_api_compat.cupy")
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", compat)
    with pytest.raises(
        BackendUnavailableError, match="CuPy is installed but no usable CUDA device"
    ):
        backends.select("cupy")
    info = backends.describe("cupy")
    assert info["installed"] and not info["usable"]
    assert "no usable CUDA device" in info["why"]


@pytest.mark.parametrize("dtype", ["float16", "int32", "double", ""])
def test_bad_dtype(dtype):
    with pytest.raises(
        ConfigError, match=f"unknown dtype '{dtype}'; valid dtypes: float32, float64"
    ):
        backends.select("numpy", dtype=dtype)


def test_a_backend_is_one_class():
    """Adding a backend is one class: everything else asks the class, never the name."""
    for name, cls in backends.BACKENDS.items():
        assert issubclass(cls, backends.Backend) and cls.name == name
        assert cls.module and cls.install.startswith("pip install")
    assert [n for n, c in backends.BACKENDS.items() if c.can_shard] == ["jax"]
    assert [n for n, c in backends.BACKENDS.items() if c.has_grad] == ["jax"]


def test_zero_d_arrays_stay_zero_d(make_backend):
    """A step count (0-d) moved to the device and back keeps its shape."""
    backend = make_backend("float64")
    x = backend.asarray(np.float64(3.0))
    assert tuple(x.shape) == () and backend.to_numpy(x).shape == ()


@pytest.mark.parametrize("device", ["tpu", "gpu:x", "cuda:-1", "0.5"])
def test_bad_device_string(device):
    with pytest.raises(ConfigError, match="invalid device"):
        backends.select("numpy", device=device)


@pytest.mark.parametrize("name", ["numpy", "strict"])
@pytest.mark.parametrize("device", ["gpu", "gpu:0", 1])
def test_cpu_only_backends_refuse_a_gpu(name, device):
    with pytest.raises(BackendUnavailableError, match="runs only on the CPU"):
        backends.select(name, device=device)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arrays_really_have_the_dtype(make_backend, dtype):
    backend = make_backend(dtype)
    x = backend.asarray(np.arange(6.0).reshape(2, 3))
    assert x.dtype == backend.dtype
    back = backend.to_numpy(x * 2)
    assert str(back.dtype) == dtype
    np.testing.assert_array_equal(back, 2 * np.arange(6.0).reshape(2, 3))
    backend.sync(x)


def test_every_backend_is_described_without_raising():
    rows = [backends.describe(name) for name in backends.BACKENDS]
    assert [r["backend"] for r in rows] == list(backends.BACKENDS)
    for r in rows:
        assert r["usable"] == bool(r["devices"])
        assert r["usable"] or r["why"]
    assert rows[0]["usable"] and rows[0]["devices"] == ["cpu"]


def test_jax_float64_is_real_float64():
    jax = pytest.importorskip("jax")
    backend = backends.select("jax", "cpu", "float64")
    assert jax.config.read("jax_enable_x64")
    assert str(backend.asarray([1.0]).dtype) == "float64"


NO_GPU_MESSAGE = {
    "numpy": "the numpy backend runs only on the CPU",
    "strict": "the strict backend runs only on the CPU",
    "jax": "JAX sees no GPU; pip install 'xpnet[jax-cuda]' on a CUDA machine, or use --device cpu",
    "torch": "PyTorch sees no CUDA device; install a CUDA build of torch on a GPU machine",
}


def test_asking_for_a_missing_gpu_says_what_to_do(make_backend, backend_name):
    make_backend("float64")  # skips where the backend itself is unusable (CuPy without a GPU)
    try:
        backend = backends.select(backend_name, "gpu")
    except BackendUnavailableError as exc:
        assert str(exc).startswith(NO_GPU_MESSAGE[backend_name])
        assert "\n" not in str(exc)
    else:
        assert backend_name not in ("numpy", "strict")
        pytest.skip(f"this machine has a GPU for {backend_name}: {backend.device_label}")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("shape", [(), (5,), (200, 2), (50, 8), (7, 9), (3, 4, 7), (0, 3)])
def test_numpy_fast_reductions_equal_numpys_own(dtype, shape):
    """The NumPy backend's sum and max are numpy.sum / numpy.max bit for bit (value, dtype, type):
    row maxima of up to :data:`xpnet.backends.FOLD` columns, taken as a fold, too, NaN included."""
    xp = backends.select("numpy").xp
    x = (np.random.default_rng(0).standard_normal(shape) * 1e3).astype(dtype)
    if dtype.startswith("float") and x.ndim == 2 and x.size:
        x[1, -1] = np.nan  # a row whose maximum is NaN, wherever the NaN is
    axes = [None, *range(len(shape)), *([(0, len(shape) - 1)] if len(shape) > 1 else [])]
    for axis in axes:
        for keepdims in (False, True):
            want, got = (
                np.sum(x, axis=axis, keepdims=keepdims),
                xp.sum(x, axis=axis, keepdims=keepdims),
            )
            assert type(got) is type(want) and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
            if x.size and (axis is None or all(shape[a] for a in np.atleast_1d(axis))):
                want = np.max(x, axis=axis, keepdims=keepdims)
                got = xp.max(x, axis=axis, keepdims=keepdims)
                assert type(got) is type(want) and got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
    assert xp.sum(x, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("shape", [(), (5,), (200, 2), (0, 3)])
def test_numpy_clip_equals_array_api_compats(dtype, shape):
    """The NumPy backend's clip is array-api-compat's bit for bit (value, dtype, type), NaN and
    infinite entries and bounds included."""
    import array_api_compat.numpy as compat

    xp = backends.select("numpy").xp
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    if dtype.startswith("float") and x.size:
        x.flat[0], x.flat[-1] = np.nan, np.inf
    for lo, hi in [
        (-1.0, 1.0),
        (-1, None),
        (None, 0.5),
        (0.1, 0.1),
        (float("nan"), 1.0),
        (-float("inf"), 2),
        (np.float32(0.5), 1.0),
        (np.zeros(shape), None),
    ]:
        if dtype == "bool" or (dtype == "int32" and isinstance(lo, float)):
            continue  # what compat itself refuses or casts is compat's own (the other branch)
        want, got = compat.clip(x, lo, hi), xp.clip(x, lo, hi)
        assert type(got) is type(want) and got.dtype == want.dtype, (lo, hi)
        np.testing.assert_array_equal(got, want)


def test_numpy_namespace_offers_everything_array_api_compat_does():
    import array_api_compat.numpy as compat

    xp = backends.select("numpy").xp
    public = [k for k in vars(compat) if not k.startswith("__")]
    assert all(hasattr(xp, k) for k in public)
    assert {k for k in public if getattr(xp, k) is not getattr(compat, k)} == {
        "sum",
        "max",
        "take",
        "clip",
    }


def test_numpy_take_hands_itself_to_its_indices_array_type():
    """NumPy's take defers to an array type of its array only; xpnet's to one of its indices as
    well (a recorded step's, :mod:`xpnet.replay`), and is numpy.take otherwise."""
    xp = backends.select("numpy").xp
    x = np.arange(12.0).reshape(3, 4)
    memmapped = np.array([1, 2]).view(np.memmap)  # a subclass of ndarray: numpy.take's own
    for idx, axis in [(np.array([2, 0]), 0), (np.array([3, 1, 1]), 1), (np.array([5]), None),
                      (memmapped, 0)]:  # fmt: skip
        np.testing.assert_array_equal(xp.take(x, idx, axis=axis), np.take(x, idx, axis=axis))

    class Indices:
        def __array_function__(self, func, types, args, kwargs):
            return ("handed", func is xp.take, args[0] is x, kwargs)

    assert xp.take(x, Indices(), axis=1) == ("handed", True, True, {"axis": 1})


def test_a_gpu_run_that_cannot_reach_its_gpu_fails_instead_of_skipping(tmp_path):
    """XPNET_TEST_REQUIRE_DEVICE=1 (the GPU check sets it): a backend without its device is a
    failure, not ~1800 skips that look green."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_one.py").write_text("def test_one(make_backend):\n    make_backend()\n")
    conftest = __import__("pathlib").Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    env = {**os.environ, "XPNET_TEST_BACKENDS": "numpy", "XPNET_TEST_DEVICE": "gpu"}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={**env, "XPNET_TEST_REQUIRE_DEVICE": "1"}, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1 and "1 failed" in ran.stdout, ran.stdout[-2000:]
    assert "numpy on gpu was required: the numpy backend runs only on the CPU" in ran.stdout
    skipped = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(tmp_path)], capture_output=True, text=True, timeout=300,
                             env=env, cwd=tmp_path)  # fmt: skip
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout


def test_jax_grows_gpu_memory_on_demand_and_the_oracle_stays_on_the_cpu():
    import os

    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # set before JAX loads
    pytest.importorskip("jax")
    oracle = backends.autodiff()
    assert oracle.device_label == "cpu:0" and oracle.dtype_name == "float64"


def test_training_runs_with_the_backends_device_current(monkeypatch):
    """CuPy computes on the *current* device: the engine makes the backend's device current for
    the whole run, in the streaming worker thread too (here a backend that records where its
    device was entered)."""
    import contextlib
    import threading

    from xpnet import engine, init, mlp, optim, train

    entered = []
    backend = backends.select("numpy")

    @contextlib.contextmanager
    def activate():
        entered.append(threading.current_thread().name)
        yield

    backend.activate = activate
    spec = mlp.Spec((2, 3, 2))
    X = np.random.RandomState(0).randn(50, 2)
    T = np.eye(2)[(X[:, 0] > 0).astype(int)]
    for feed in (feeds.FullBatch(backend, X, T),
                 feeds.Batches(backend, X, T, 10, rng=np.random.RandomState(0), stream=True,
                                budget=1, prefetch=1)):  # fmt: skip
        entered.clear()
        run = Run.start(backend, train.Objective(spec), optim.sgd(0.1),
                               init.initial_params(spec, "glorot", 0))  # fmt: skip
        engine.fit(run, feed, epochs=2)
        assert entered[0] == threading.main_thread().name
        if feed.unit == "epoch":
            assert "xpnet-prefetch" in entered  # the worker that copies blocks


@pytest.mark.peer("torch")
def test_a_torch_gpu_index_beyond_the_count_is_refused_at_once(backend_name, monkeypatch):
    """gpu:N past the GPUs PyTorch sees is a clear error when the backend is selected, not a
    CUDA error at the first array (checked on the CPU with a machine of one GPU made up; runs in
    the torch session)."""
    if backend_name != "torch":
        pytest.skip("PyTorch's own check: run once, with the torch backend")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(BackendUnavailableError, match=r"PyTorch sees 1 CUDA device \(gpu:0\); "
                       r"gpu:3 is not one"):  # fmt: skip
        backends.select("torch", "gpu:3")

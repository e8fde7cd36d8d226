"""Backend registry: the only module that names numpy, array-api-strict, jax, cupy or torch.

Rules:
- A backend is one row of ``BACKENDS``: how to import it, which pip extra installs it, how to pick a
  device, move a host (NumPy) array there and back, wait for it, and run a loop of pure steps.
- Libraries are imported only when their backend is selected, so ``import xpnet`` loads none of them.
- The math elsewhere receives ``backend.xp``, an Array API namespace, and nothing else.
- Selection precedence: explicit argument > ``XPNET_BACKEND`` environment variable > ``numpy``.

Every failure is a one-line :class:`~xpnet.errors.XpnetError` that says what to do instead.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import numpy as np

from xpnet.errors import BackendUnavailableError, ConfigError

ENV_VAR = "XPNET_BACKEND"
DEFAULT_BACKEND = "numpy"
DTYPES = ("float32", "float64")

Array = Any
Step = Callable[[Any], tuple[Any, Array]]


@dataclass(frozen=True)
class Backend:
    """A selected backend: namespace ``xp``, a device and a floating dtype, plus host transfers.

    ``scan(step, carry, n)`` runs ``carry, loss = step(carry)`` n times and returns
    ``(carry, losses)`` with ``losses`` of shape (n,), on the device. ``jit(fn)`` compiles a pure
    function where the backend can (JAX) and returns it unchanged elsewhere.
    """

    name: str
    xp: ModuleType
    dtype_name: str
    device: Any
    device_label: str
    version: str
    _put: Callable[[np.ndarray], Array] = field(repr=False)
    _get: Callable[[Array], np.ndarray] = field(repr=False)
    _sync: Callable[[Any], None] = field(repr=False)
    _jit: Callable[..., Any] = field(repr=False)
    _scan: Callable[[Step, Any, int], tuple[Any, Array]] = field(repr=False)
    _grad: Callable[[Callable[..., Any]], Callable[..., Any]] | None = field(
        default=None, repr=False
    )
    _put_rows: Callable[[np.ndarray, int], Array] | None = field(default=None, repr=False)
    _span: Callable[[int], slice] | None = field(default=None, repr=False)
    _gather: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    shards: int = 1
    """Devices the rows of the data are split over (see :func:`data_parallel`)."""
    processes: int = 1
    """Processes of the multi-process job whose devices those are (see :func:`distributed`)."""

    def grad(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Return the gradient function of a scalar ``fn`` of a dict of arrays (JAX's autodiff);
        raise BackendUnavailableError on backends without autodiff."""
        if self._grad is None:
            raise BackendUnavailableError(f"the {self.name} backend has no autodiff; use jax")
        return self._grad(fn)

    @property
    def dtype(self) -> Any:
        """The namespace's floating dtype object for ``dtype_name``."""
        return getattr(self.xp, self.dtype_name)

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Return host data ``a`` as an array on this backend's device (float dtype by default)."""
        return self._put(self._host(a, dtype))

    def _host(self, a: Any, dtype: Any) -> np.ndarray:
        return np.ascontiguousarray(
            np.asarray(a, dtype=self.dtype_name if dtype is None else dtype)
        )

    def padded(self, rows: int) -> int:
        """Return ``rows`` rounded up to a multiple of :attr:`shards` (the rows on the devices)."""
        return rows + -rows % self.shards

    def span(self, rows: int) -> slice:
        """Return the rows this process hands to its devices, of a data set of ``rows`` rows
        padded to a multiple of :attr:`shards`: all of them (``slice(0, padded)``) unless the
        backend spans a multi-process job, where each process holds one contiguous part."""
        padded = self.padded(rows)
        return slice(0, padded) if self._span is None else self._span(padded)

    def gather(self, a: Any) -> np.ndarray:
        """Return every process's host array ``a`` (same shape everywhere), stacked in process
        order: (processes, *a.shape); a[None] outside a multi-process job."""
        host = np.asarray(a)
        return host[None] if self._gather is None else np.asarray(self._gather(host))

    def asarray_rows(
        self, *parts: Any, rows: int | None = None
    ) -> tuple[list[Array], Array | None]:
        """Put data arrays that share their rows (samples along axis 0: X, T...) on the device
        like :meth:`asarray`, split over the devices by rows when the backend is data-parallel.
        ``parts`` hold rows ``span(rows)`` of a data set of ``rows`` rows (default: the parts'
        own length; in a multi-process job each process passes only its own rows, fewer at the
        end of the data). Return ``(arrays, weights)``. Where ``rows`` does not divide by the
        device count, zero rows pad each array and ``weights`` (this process's padded rows,)
        holds 1 for a real row and 0 for padding, for the loss to leave the padding out; else
        ``weights`` is None."""
        hosts = [self._host(a, None) for a in parts]
        if self._put_rows is None:
            return [self._put(h) for h in hosts], None
        real = hosts[0].shape[0]
        rows = real if rows is None else rows
        part, total = self.span(rows), self.padded(rows)
        mine = part.stop - part.start  # this process's rows, padding included
        if real != min(part.stop, rows) - min(part.start, rows):
            raise ValueError(f"asarray_rows: got {real} rows for rows {part} of {rows}")
        if mine != real:
            hosts = [np.concatenate([h, np.zeros((mine - real, *h.shape[1:]), h.dtype)])
                     for h in hosts]  # fmt: skip
        arrays = [self._put_rows(h, total) for h in hosts]
        if total == rows:
            return arrays, None
        weights = np.concatenate([np.ones(real), np.zeros(mine - real)]).astype(self.dtype_name)
        return arrays, self._put_rows(weights, total)

    def to_numpy(self, x: Array) -> np.ndarray:
        """Return a NumPy copy of a backend array (any shape)."""
        return np.asarray(self._get(x))

    def tree_to_numpy(self, tree: dict[str, Array]) -> dict[str, np.ndarray]:
        """Return ``{name: NumPy array}`` for a dict of backend arrays."""
        return {k: self.to_numpy(v) for k, v in tree.items()}

    def tree_asarray(self, tree: dict[str, Any]) -> dict[str, Array]:
        """Return ``{name: backend array}`` (float dtype) for a dict of host arrays."""
        return {k: self.asarray(v) for k, v in tree.items()}

    def sync(self, x: Any = None) -> None:
        """Block until queued work on the device (or producing ``x``) has finished."""
        self._sync(x)

    def jit(self, fn: Callable[..., Any], static_argnums: Sequence[int] = ()) -> Callable[..., Any]:
        """Return ``fn`` compiled where the backend compiles, else ``fn`` itself."""
        compiled: Callable[..., Any] = self._jit(fn, tuple(static_argnums))
        return compiled

    def scan(self, step: Step, carry: Any, n: int) -> tuple[Any, Array]:
        """Run ``step`` n times from ``carry``; return the final carry and the (n,) losses."""
        return self._scan(step, carry, n)


@dataclass(frozen=True)
class _Row:
    module: str  # what must be importable
    install: str  # how to get it
    load: Callable[[str | int | None, str], Backend]


def _python_scan(xp: ModuleType) -> Callable[[Step, Any, int], tuple[Any, Array]]:
    def scan(step: Step, carry: Any, n: int) -> tuple[Any, Array]:
        losses = []
        # Overflow in a diverging run is reported by the training loop's finiteness check, once,
        # with the pass number; NumPy's per-operation warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for _ in range(n):
                carry, loss = step(carry)
                losses.append(loss)
        return carry, xp.stack(losses) if losses else xp.zeros((0,))

    return scan


def _no_jit(fn: Callable[..., Any], static_argnums: tuple[int, ...]) -> Callable[..., Any]:
    return fn


def _no_sync(x: Any) -> None:
    return None


def _parse_device(device: str | int | None) -> tuple[str | None, int | None]:
    """Return (kind, index) from None, 'cpu', 'gpu', 'cuda', 'gpu:1', '1' or 1."""
    if device is None or device == "":
        return None, None
    if isinstance(device, int) and not isinstance(device, bool):
        return None, device
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind.isdigit() and not index:
        return None, int(kind)
    if kind == "cuda":
        kind = "gpu"
    if kind not in ("cpu", "gpu") or (index and not index.isdigit()):
        raise ConfigError(f"invalid device {device!r}; use 'cpu', 'gpu', 'gpu:N' or an index N")
    return kind, int(index) if index else None


def _cpu_only(name: str, device: str | int | None) -> str:
    kind, index = _parse_device(device)
    if kind == "gpu" or (index or 0) != 0:
        raise BackendUnavailableError(
            f"the {name} backend runs only on the CPU (device {device!r}); "
            "use --backend cupy, jax or torch for a GPU"
        )
    return "cpu"


_ADD_REDUCE: Any = np.add.reduce
_MAX_REDUCE: Any = np.maximum.reduce


def _sum(x: Array, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Array:
    if dtype is None and x.dtype.kind in "fc":  # integers: numpy.sum's own upcasting
        return _ADD_REDUCE(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _max(x: Array, /, *, axis: Any = None, keepdims: bool = False) -> Array:
    return _MAX_REDUCE(x, axis=axis, keepdims=keepdims)


@functools.cache
def _numpy_namespace(compat: ModuleType) -> ModuleType:
    """``array_api_compat.numpy`` with ``sum`` and ``max`` calling the ufunc reductions that
    ``numpy.sum``/``numpy.max`` end in, without their Python argument handling (~3 us a call, a
    tenth of a small training pass). Same results bit for bit (tests/test_backends.py)."""
    xp = ModuleType("xpnet.numpy_namespace", compat.__doc__)
    vars(xp).update({k: v for k, v in vars(compat).items() if not k.startswith("__")})
    xp.sum, xp.max = _sum, _max  # type: ignore[attr-defined]
    return xp


def _load_numpy(device: str | int | None, dtype: str) -> Backend:
    import array_api_compat.numpy as compat

    label = _cpu_only("numpy", device)
    xp = _numpy_namespace(compat)
    return Backend(
        "numpy", xp, dtype, None, label, np.__version__,
        _put=lambda a: a, _get=lambda x: x, _sync=_no_sync, _jit=_no_jit, _scan=_python_scan(xp),
    )  # fmt: skip


def _strictest_flags(strict: ModuleType) -> None:
    # The oldest standard version xpnet targets, no data-dependent shapes, no extensions:
    # any call outside that subset fails the suite.
    strict.set_array_api_strict_flags(
        api_version="2023.12",
        boolean_indexing=False,
        data_dependent_shapes=False,
        enabled_extensions=(),
    )


def _load_strict(device: str | int | None, dtype: str) -> Backend:
    import array_api_strict as xp

    label = _cpu_only("strict", device)
    _strictest_flags(xp)
    return Backend(
        "strict", xp, dtype, None, label, xp.__version__,
        _put=xp.asarray, _get=np.from_dlpack, _sync=_no_sync, _jit=_no_jit, _scan=_python_scan(xp),
    )  # fmt: skip


def _load_jax(device: str | int | None, dtype: str) -> Backend:
    import jax
    import jax.numpy as jnp

    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
    got = jnp.zeros(1, dtype=getattr(jnp, dtype)).dtype
    if str(got) != dtype:
        raise BackendUnavailableError(
            f"JAX gave {got} when asked for {dtype}; set JAX_ENABLE_X64=1 before starting "
            "Python or use --dtype float32"
        )
    kind, index = _parse_device(device)
    try:
        devices = jax.local_devices(backend=kind)  # this process's (all, outside a job)
    except RuntimeError:
        raise BackendUnavailableError(
            "JAX sees no GPU; pip install 'xpnet[jax-cuda]' on a CUDA machine, or use --device cpu"
        ) from None
    if (index or 0) >= len(devices):
        raise BackendUnavailableError(
            f"JAX device index {index} is out of range; {len(devices)} device(s): {devices}"
        )
    dev = devices[index or 0]

    def scan(step: Step, carry: Any, n: int) -> tuple[Any, Array]:
        def body(c: Any, _: Any) -> tuple[Any, Array]:
            return step(c)

        result: tuple[Any, Array] = jax.lax.scan(body, carry, None, length=n)
        return result

    def sync(x: Any) -> None:
        if x is None:
            (jnp.zeros(()) + 0).block_until_ready()
        else:
            jax.block_until_ready(x)

    return Backend(
        "jax", jnp, dtype, dev, f"{dev.platform}:{dev.id}", jax.__version__,
        _put=lambda a: jax.device_put(a, dev), _get=np.asarray, _sync=sync,
        _jit=lambda fn, s: jax.jit(fn, static_argnums=s), _scan=scan, _grad=jax.grad,
    )  # fmt: skip


def _load_cupy(device: str | int | None, dtype: str) -> Backend:
    import array_api_compat.cupy as xp
    import cupy

    if not cupy.is_available():
        raise BackendUnavailableError(
            "CuPy is installed but no usable CUDA device was found; "
            "use --backend numpy (CPU) or run on a machine with an NVIDIA GPU and driver"
        )
    kind, index = _parse_device(device)
    if kind == "cpu":
        raise BackendUnavailableError("CuPy runs only on a GPU; use --backend numpy for the CPU")
    count = cupy.cuda.runtime.getDeviceCount()
    if (index or 0) >= count:
        raise BackendUnavailableError(f"CUDA device index {index} is out of range; {count} GPU(s)")
    dev = cupy.cuda.Device(index or 0)

    def put(a: np.ndarray) -> Array:
        with dev:
            return cupy.asarray(a)

    def sync(x: Any) -> None:
        dev.synchronize()

    return Backend(
        "cupy", xp, dtype, dev, f"gpu:{dev.id}", cupy.__version__,
        _put=put, _get=cupy.asnumpy, _sync=sync, _jit=_no_jit, _scan=_python_scan(xp),
    )  # fmt: skip


def _load_torch(device: str | int | None, dtype: str) -> Backend:
    import array_api_compat.torch as xp
    import torch

    kind, index = _parse_device(device)
    if kind is None and index is None:
        kind = "gpu" if torch.cuda.is_available() else "cpu"
    if kind is None:
        kind = "gpu"
    if kind == "gpu":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "PyTorch sees no CUDA device; install a CUDA build of torch on a GPU machine, "
                "or use --device cpu"
            )
        dev = torch.device("cuda", index or 0)
    else:
        if index:
            raise BackendUnavailableError("PyTorch has one CPU device; use --device cpu")
        dev = torch.device("cpu")

    def sync(x: Any) -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    return Backend(
        "torch", xp, dtype, dev, str(dev), torch.__version__,
        _put=lambda a: torch.from_numpy(a).to(dev), _get=lambda x: x.detach().cpu().numpy(),
        _sync=sync, _jit=_no_jit, _scan=_python_scan(xp),
    )  # fmt: skip


BACKENDS: dict[str, _Row] = {
    "numpy": _Row("numpy", "pip install xpnet", _load_numpy),
    "strict": _Row("array_api_strict", "pip install 'xpnet[strict]'", _load_strict),
    "jax": _Row("jax", "pip install 'xpnet[jax]' (or 'xpnet[jax-cuda]' for a GPU)", _load_jax),
    "cupy": _Row("cupy", "pip install 'xpnet[cupy]' (CUDA 12: 'xpnet[cupy-cuda12]')", _load_cupy),
    "torch": _Row("torch", "pip install 'xpnet[torch]'", _load_torch),
}


def resolve_name(name: str | None = None) -> str:
    """Return the backend name: ``name`` if given, else ``$XPNET_BACKEND``, else ``numpy``."""
    chosen = name or os.environ.get(ENV_VAR) or DEFAULT_BACKEND
    chosen = chosen.strip().lower()
    if chosen not in BACKENDS:
        source = "" if name else f" (from ${ENV_VAR})"
        raise ConfigError(
            f"unknown backend {chosen!r}{source}; valid backends: {', '.join(BACKENDS)}"
        )
    return chosen


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if it is a supported floating dtype name, else raise ConfigError."""
    if dtype not in DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}; valid dtypes: {', '.join(DTYPES)}")
    return dtype


def select(
    name: str | None = None, device: str | int | None = None, dtype: str = "float64"
) -> Backend:
    """Return the :class:`Backend` for ``name`` (see precedence above) on ``device`` in ``dtype``."""
    chosen = resolve_name(name)
    check_dtype(dtype)
    row = BACKENDS[chosen]
    try:
        importlib.import_module(row.module)
    except ImportError:
        raise BackendUnavailableError(
            f"{row.module} is not installed; {row.install} or use --backend numpy"
        ) from None
    return row.load(device, dtype)


def data_parallel(backend: Backend, devices: int | None = None) -> Backend:
    """Return ``backend`` (JAX) spread over ``devices`` of its platform (default: all it sees):
    a one-axis ``jax.sharding.Mesh`` over which data rows are split (:meth:`Backend.asarray_rows`)
    while parameters and optimizer state are replicated (:meth:`Backend.asarray`). Compiled
    steps then run on every device at once; XLA sums the gradients across devices inside them.
    """
    if backend.name != "jax":
        raise ConfigError(
            f"data-parallel training runs on the jax backend (--backend jax); {backend.name} "
            "trains on one device"
        )
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int)
                                or devices < 1):  # fmt: skip
        raise ConfigError(f"devices must be a positive integer; got {devices!r}")
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    seen = jax.devices(backend.device.platform)
    count = len(seen) if devices is None else devices
    if count > len(seen):
        hint = (
            "; to simulate devices on a CPU start Python with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={count}"
            if backend.device.platform == "cpu"
            else ""
        )
        raise BackendUnavailableError(
            f"asked for {count} {backend.device.platform} devices; JAX sees {len(seen)}{hint}"
        )
    mesh = Mesh(np.array(seen[:count]), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    by_rows = NamedSharding(mesh, PartitionSpec("data"))
    label = f"{backend.device.platform}:0-{count - 1}" if count > 1 else backend.device_label
    if jax.process_count() == 1:
        return replace(backend, device=seen[0], device_label=label, shards=count,
                       _put=lambda a: jax.device_put(a, replicated),
                       _put_rows=lambda a, rows: jax.device_put(a, by_rows))  # fmt: skip
    # A multi-process job: each process hands over its own devices' rows only.
    from jax.experimental import multihost_utils

    def span(rows: int) -> slice:
        spans = [s[0] for s in by_rows.addressable_devices_indices_map((rows,)).values() if s]
        return slice(min(s.start or 0 for s in spans), max(rows if s.stop is None else s.stop
                                                            for s in spans))  # fmt: skip

    def put(a: np.ndarray) -> Array:  # the same host data in every process
        return jax.make_array_from_process_local_data(replicated, a, a.shape)

    def put_rows(a: np.ndarray, rows: int) -> Array:
        return jax.make_array_from_process_local_data(by_rows, a, (rows, *a.shape[1:]))

    def gather(a: np.ndarray) -> np.ndarray:
        return np.asarray(multihost_utils.process_allgather(a, tiled=False))

    return replace(backend, device=seen[0], device_label=label, shards=count,
                   processes=jax.process_count(), _put=put, _put_rows=put_rows, _span=span,
                   _gather=gather)  # fmt: skip


def distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> tuple[int, int]:
    """Join a multi-process JAX job (``jax.distributed.initialize``) before any JAX work; with
    no arguments JAX detects the cluster (SLURM, Open MPI, TPU pods...). Returns ``(this
    process's index, process count)``; :func:`data_parallel` then spans every process's devices.
    """
    try:
        import jax
    except ImportError:
        raise BackendUnavailableError(
            f"multi-process training needs JAX; {BACKENDS['jax'].install}"
        ) from None
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(
            f"could not join the multi-process JAX job ({first}); give --coordinator HOST:PORT "
            "--num-processes N --process-id I, or run under SLURM or on a TPU pod"
        ) from None
    return jax.process_index(), jax.process_count()


def array_kind(x: Any) -> tuple[str, str] | None:
    """Return ``(backend name, device label)`` when x is an array of JAX, PyTorch, CuPy or
    array-api-strict, else None (NumPy arrays, lists, DataFrames...). Estimators use it to give
    outputs back in the input's kind."""
    import array_api_compat as compat

    if compat.is_jax_array(x):
        dev = next(iter(x.devices()))
        return "jax", "cpu" if dev.platform == "cpu" else f"gpu:{dev.id}"
    if compat.is_torch_array(x):
        return "torch", "cpu" if x.device.type == "cpu" else f"gpu:{x.device.index or 0}"
    if compat.is_cupy_array(x):
        return "cupy", f"gpu:{x.device.id}"
    if compat.is_array_api_obj(x) and not compat.is_numpy_array(x):
        return "strict", "cpu"
    return None


def describe(name: str) -> dict[str, Any]:
    """Return ``{backend, installed, version, devices, usable, why}`` for one backend, never raising."""
    row = BACKENDS[name]
    info: dict[str, Any] = {"backend": name, "installed": False, "version": None}
    info.update(devices=[], usable=False, why="")
    try:
        module = importlib.import_module(row.module)
    except ImportError:
        info["why"] = f"not installed: {row.install}"
        return info
    info["installed"] = True
    info["version"] = getattr(module, "__version__", None)
    try:
        backend = row.load(None, "float32")
    except Exception as exc:  # report why, do not stop the listing
        info["why"] = str(exc)
        return info
    info["usable"] = True
    info["devices"] = _device_list(name, backend)
    return info


def _device_list(name: str, backend: Backend) -> list[str]:
    if name == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]
    if name == "cupy":
        import cupy

        return [f"gpu:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]
    if name == "torch":
        import torch

        return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [backend.device_label]

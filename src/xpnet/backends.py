"""Backend registry: the only module that names numpy, array-api-strict, jax, cupy or torch.

Rules:
- A backend is one class (a row of ``BACKENDS``): how to import it, which pip extra installs it,
  how to pick a device, move a host (NumPy) array there and back, wait for it, compile and loop
  pure steps, and which devices it sees. Adding a backend is one class here, one requirements
  file in ``backends/`` and one row of the noxfile's matrix; nothing else asks a backend's name.
- Libraries are imported only when their backend is selected, so ``import xpnet`` loads none of them.
- The math elsewhere receives ``backend.xp``, an Array API namespace, and nothing else.
- Where data lives is the backend's :class:`Layout`: one device here; a mesh of devices, or a
  multi-process job, in :mod:`xpnet.parallel`.
- Selection precedence: explicit argument > ``XPNET_BACKEND`` environment variable > ``numpy``.

Every failure is a one-line :class:`~xpnet.errors.XpnetError` that says what to do instead.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from xpnet import fused, replay, scratch, validation
from xpnet._typing import Array
from xpnet.errors import BackendUnavailableError, ConfigError

ENV_VAR = "XPNET_BACKEND"
DEFAULT_BACKEND = "numpy"
DTYPES = validation.DTYPES

ScanBody = Callable[[Any], tuple[Any, Array]]
Plain = Callable[[Any], Any]

PRECISION_VAR = "XPNET_PRECISION"
PRECISIONS = ("highest", "high", "medium")
"""How float32 matrix products may round, PyTorch's names (``torch.set_float32_matmul_precision``):
``highest`` full float32 (the default, pinned whatever a library's or GPU's own default);
``high`` TF32 on NVIDIA GPUs (10 bits of mantissa in the products: JAX ``"high"``, PyTorch
``"high"``, CuPy ``CUPY_TF32=1``); ``medium`` bfloat16 passes where the hardware has them (JAX's
``"default"``, PyTorch ``"medium"``; CuPy as ``high``). float64 and the CPU are unaffected."""
_JAX_PRECISION = {"highest": "highest", "high": "high", "medium": "default"}
_precision: str | None = None


def precision() -> str:
    """The float32 matrix-product precision in force: :func:`set_precision`'s, else
    ``$XPNET_PRECISION``'s, else ``"highest"``."""
    chosen = _precision if _precision is not None else os.environ.get(PRECISION_VAR) or "highest"
    return validation.one_of(PRECISIONS, chosen, "precision", "precisions")


def set_precision(value: str | None) -> None:
    """Set the process's float32 matrix-product precision (one of :data:`PRECISIONS`; None: back
    to ``$XPNET_PRECISION`` or ``"highest"``). Programs compiled before keep theirs: set it
    before training."""
    global _precision
    _precision = None if value is None else validation.one_of(PRECISIONS, value, "precision",
                                                              "precisions")  # fmt: skip


@contextlib.contextmanager
def using_precision(value: str | None) -> Any:
    """Within the block, :func:`set_precision` ``value`` (None: as it is); restored after."""
    global _precision
    before = _precision
    if value is not None:
        set_precision(value)
    try:
        yield
    finally:
        _precision = before


class Layout:
    """Where a backend puts data: here, everything on its one device. :mod:`xpnet.parallel`
    subclasses it to split rows over a mesh of devices or the processes of a job."""

    shards = 1
    """Devices the rows of the data are split over."""
    processes = 1
    """Processes of the multi-process job whose devices those are."""

    def put(self, backend: Backend, host: np.ndarray) -> Array:
        """A host array on the device(s), whole (replicated on a mesh)."""
        return backend._put(host)

    def put_rows(
        self, backend: Backend, host: np.ndarray, rows: int, tokens: list[Any] | None = None
    ) -> Array:
        """A host array of this process's rows on the device(s), split by rows on a mesh of a
        data set of ``rows`` rows. With ``tokens``, the copy may be left running (see
        :meth:`Backend.put_async`) and its token appended there."""
        if tokens is None:
            return backend._put(host)
        array, token = backend.put_async(host)
        tokens.append(token)
        return array

    def span(self, padded: int) -> slice:
        """The rows of a data set of ``padded`` rows this process hands to its devices."""
        return slice(0, padded)

    def gather(self, host: np.ndarray) -> np.ndarray:
        """Every process's ``host`` stacked in process order: (processes, *host.shape)."""
        return host[None]


ONE_DEVICE = Layout()


def host_memory() -> int | None:
    """The host's RAM in bytes, or None where it cannot be told."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


class Backend:
    """A selected backend: namespace ``xp``, a device and a floating dtype, plus host transfers,
    compiled loops and its :class:`Layout`. Subclasses fill in the ``_setup``/``_put``/``_get``
    hooks and override what their library does better than a Python loop."""

    name: ClassVar[str] = ""
    module: ClassVar[str] = ""
    """What must be importable for the backend to load."""
    install: ClassVar[str] = ""
    """How to get it."""
    can_shard: ClassVar[bool] = False
    """Data-parallel meshes (:mod:`xpnet.parallel`) run on this backend."""
    has_grad: ClassVar[bool] = False
    """:meth:`grad` gives autodiff (the test suite's oracle)."""
    replays: ClassVar[bool] = False
    """:meth:`scan` and :meth:`repeat` record the step's library calls once and run the other
    passes as one generated loop (:mod:`xpnet.replay`): eager libraries whose per-call Python
    costs more than the math around it on small problems."""
    lazy: ClassVar[bool] = False
    """Arrays are graphs computed chunk by chunk (a namespace such as dask's): a value the
    computation does not need is measured on its own, so as not to hold intermediates."""

    xp: ModuleType
    device: Any
    device_label: str
    version: str

    def __init__(self, device: str | int | None = None, dtype: str = "float64") -> None:
        self.dtype_name = validation.dtype(dtype)
        self.layout: Layout = ONE_DEVICE
        self._setup(device)

    # -- what each library provides ------------------------------------------------------------
    def _setup(self, device: str | int | None) -> None:
        raise NotImplementedError

    def _put(self, host: np.ndarray) -> Array:
        raise NotImplementedError

    def _get(self, x: Array) -> np.ndarray:
        raise NotImplementedError

    def sync(self, x: Any = None) -> None:
        """Block until queued work on the device (or producing ``x``) has finished."""

    def jit(self, fn: Callable[..., Any], static_argnums: Sequence[int] = ()) -> Callable[..., Any]:
        """Return ``fn`` compiled where the backend compiles (JAX), else ``fn`` itself."""
        return fn

    def scan(self, step: ScanBody, carry: Any, n: int) -> tuple[Any, Array]:
        """Run ``carry, loss = step(carry)`` n >= 1 times; return the final carry and the (n,)
        losses, on the device."""
        with self._quiet():
            replayed = self._replayed(step, carry, n, True)
            if replayed is not None:
                return replayed[0], self.xp.stack(replayed[1])
            losses = []
            for _ in range(n):
                carry, loss = step(carry)
                losses.append(loss)
        return carry, self.xp.stack(losses)

    def repeat(self, step: Plain, carry: Any, n: int) -> Any:
        """Run ``carry = step(carry)`` n times; return the final carry."""
        with self._quiet():
            replayed = self._replayed(step, carry, n, False)
            if replayed is not None:
                return replayed[0]
            for _ in range(n):
                carry = step(carry)
        return carry

    def _replayed(
        self, step: Callable[[Any], Any], carry: Any, n: int, scanned: bool
    ) -> tuple[Any, list[Any]] | None:
        if not (self.replays and replay.applies(n)):
            return None
        return replay.run(self, step, carry, n, scanned)

    @staticmethod
    def _quiet() -> contextlib.AbstractContextManager[Any]:
        # Overflow in a diverging run is reported by the training driver's check, once, with the
        # pass number; NumPy's per-operation warnings would only repeat it.
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    @staticmethod
    def is_array(x: Any) -> bool:
        """Whether ``x`` is an array (of any Array API library: what a step's carry holds)."""
        import array_api_compat

        return bool(array_api_compat.is_array_api_obj(x))

    def grad(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Return the gradient function of a scalar ``fn`` of a dict of arrays; raise
        BackendUnavailableError on backends without autodiff."""
        raise BackendUnavailableError(f"the {self.name} backend has no autodiff; use jax")

    def put_async(self, host: np.ndarray) -> tuple[Array, Any]:
        """Start copying ``host`` to the device and return ``(array, token)``: the array may be
        used only after :meth:`ready` of the token. Here the copy is done at once (token None);
        CuPy and PyTorch on CUDA copy from pinned memory on a stream of their own, so that the
        streaming worker's copies overlap the computation instead of queueing behind it."""
        return self._put(host), None

    def ready(self, token: Any) -> None:
        """Make the computation wait (on the device, not the host) for a :meth:`put_async`."""

    def retire(self, arrays: Any) -> None:
        """The host is done with ``arrays`` (a streamed block), whose last readers may still be
        queued on the device: keep them until those have run. Here nothing is queued behind the
        host's back; CuPy keeps them until an event recorded now has passed (its memory pool
        would otherwise hand the memory to the next block's copy, on another stream, while
        the queued kernels still read it)."""

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which this backend's device is the current one (CuPy, PyTorch on CUDA);
        training runs inside it, its worker threads too."""
        return contextlib.nullcontext()

    def recycler(self) -> scratch.Recycler | None:
        """What lets a fit's kernels reuse their large results' memory (:mod:`xpnet.scratch`),
        or None where the library plans or caches its memory itself."""
        return None

    @classmethod
    def visible_devices(cls) -> list[str]:
        """Labels of the devices this backend could use here."""
        return ["cpu"]

    def memory_bytes(self) -> int | None:
        """The memory of the device computations run on (the host's RAM for a CPU), or None
        where it cannot be told."""
        return host_memory()

    @classmethod
    def owns(cls, x: Any) -> str | None:
        """The device label of ``x`` if it is an array of this backend's library, else None."""
        return None

    # -- shared ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        """The namespace's floating dtype object for ``dtype_name``."""
        return getattr(self.xp, self.dtype_name)

    @property
    def is_accelerator(self) -> bool:
        """True on a GPU or TPU, False on the CPU."""
        return not self.device_label.startswith("cpu")

    @property
    def shards(self) -> int:
        return self.layout.shards

    @property
    def processes(self) -> int:
        return self.layout.processes

    def where(self) -> tuple[str, str, str]:
        """(name, device label, dtype): what a compiled program is specific to."""
        return self.name, self.device_label, self.dtype_name

    def placed(self, layout: Layout, device: Any, label: str) -> Backend:
        """A copy of this backend whose data goes where ``layout`` says."""
        other = copy.copy(self)
        other.layout, other.device, other.device_label = layout, device, label
        return other

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.device_label} {self.dtype_name}>"

    def host(self, a: Any, dtype: Any = None) -> np.ndarray:
        """``a`` as a contiguous NumPy array of ``dtype`` (default: the backend's float dtype)."""
        # order="C", not ascontiguousarray: that makes a 0-d array (a step count) 1-d
        return np.asarray(a, dtype=self.dtype_name if dtype is None else dtype, order="C")

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Return host data ``a`` as an array on this backend's device (float dtype by default;
        replicated on every device of a mesh)."""
        return self.layout.put(self, self.host(a, dtype))

    def padded(self, rows: int) -> int:
        """Return ``rows`` rounded up to a multiple of :attr:`shards` (the rows on the devices)."""
        return rows + -rows % self.shards

    def span(self, rows: int) -> slice:
        """Return the rows this process hands to its devices, of a data set of ``rows`` rows
        padded to a multiple of :attr:`shards`: all of them (``slice(0, padded)``) unless the
        backend spans a multi-process job, where each process holds one contiguous part."""
        return self.layout.span(self.padded(rows))

    def gather(self, a: Any) -> np.ndarray:
        """Return every process's host array ``a`` (same shape everywhere), stacked in process
        order: (processes, *a.shape); a[None] outside a multi-process job."""
        return np.asarray(self.layout.gather(np.asarray(a)))

    def asarray_rows(
        self,
        *parts: Any,
        rows: int | None = None,
        tokens: list[Any] | None = None,
        dtype: Any = None,
    ) -> tuple[list[Array], Array | None]:
        """Put data arrays that share their rows (samples along axis 0: X, T...) on the device
        like :meth:`asarray`, split over the devices by rows when the layout is a mesh.
        ``parts`` hold rows ``span(rows)`` of a data set of ``rows`` rows (default: the parts'
        own length; in a multi-process job each process passes only its own rows, fewer at the
        end of the data). Return ``(arrays, weights)``. Where ``rows`` does not divide by the
        device count, zero rows pad each array and ``weights`` (this process's padded rows,)
        holds 1 for a real row and 0 for padding, for the loss to leave the padding out; else
        ``weights`` is None. With ``tokens`` (a list) the copies may still be running when this
        returns: pass each token appended there to :meth:`ready` before using the arrays.
        ``dtype``: of every part (default: the backend's float dtype)."""
        hosts = [self.host(a, dtype) for a in parts]
        real = hosts[0].shape[0]
        rows = real if rows is None else rows
        part, total = self.span(rows), self.padded(rows)
        mine = part.stop - part.start  # this process's rows, padding included
        if real != min(part.stop, rows) - min(part.start, rows):
            raise ValueError(f"asarray_rows: got {real} rows for rows {part} of {rows}")
        if mine != real:
            hosts = [np.concatenate([h, np.zeros((mine - real, *h.shape[1:]), h.dtype)])
                     for h in hosts]  # fmt: skip
        arrays = [self.layout.put_rows(self, h, total, tokens) for h in hosts]
        if total == rows:
            return arrays, None
        weights = np.concatenate([np.ones(real), np.zeros(mine - real)]).astype(self.dtype_name)
        return arrays, self.layout.put_rows(self, weights, total, tokens)

    def row_index(self, rows: int) -> Array:
        """Each row's index in a data set of ``rows`` rows (int32), laid out on the device(s) as
        :meth:`asarray_rows` lays out that data set's rows (padding rows: index 0)."""
        part = self.span(rows)
        mine = np.arange(min(part.start, rows), min(part.stop, rows), dtype=np.int32)
        return self.asarray_rows(mine, rows=rows, dtype=np.int32)[0][0]

    def to_numpy(self, x: Array) -> np.ndarray:
        """Return a NumPy copy of a backend array (any shape)."""
        return np.asarray(self._get(x))

    def tree_to_numpy(self, tree: dict[str, Array]) -> dict[str, np.ndarray]:
        """Return ``{name: NumPy array}`` for a dict of backend arrays."""
        return {k: self.to_numpy(v) for k, v in tree.items()}

    def tree_asarray(self, tree: dict[str, Any]) -> dict[str, Array]:
        """Return ``{name: backend array}`` (float dtype) for a dict of host arrays."""
        return {k: self.asarray(v) for k, v in tree.items()}


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


# -- NumPy ---------------------------------------------------------------------------------------
_ADD_REDUCE: Any = np.add.reduce
_MAX_REDUCE: Any = np.maximum.reduce


def _sum(x: Array, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Array:
    if dtype is None and x.dtype.kind in "fc":  # integers: numpy.sum's own upcasting
        return _ADD_REDUCE(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


FOLD = 8
"""The most columns whose row maxima NumPy takes as a fold of ``numpy.maximum``."""


def _max(x: Array, /, *, axis: Any = None, keepdims: bool = False) -> Array:
    if axis in (1, -1) and x.ndim == 2 and 1 < x.shape[1] <= FOLD:
        # numpy.maximum.reduce along a short last axis costs 5 us a call on 200 rows and 1.5 ms
        # on 60000 x 2; a fold of numpy.maximum over the columns takes the same maxima (exact:
        # no rounding, NaN propagated alike) in a fifth of that or less
        m = x[:, :1]
        for j in range(1, x.shape[1]):
            m = np.maximum(m, x[:, j : j + 1])
        return m if keepdims else m[:, 0]
    return _MAX_REDUCE(x, axis=axis, keepdims=keepdims)


def _take(x: Array, indices: Array, /, *, axis: int | None = None) -> Array:
    if not isinstance(indices, np.ndarray) and hasattr(indices, "__array_function__"):
        # numpy.take hands itself to the __array_function__ of x only: indices of another
        # array type (a recorded step's, xpnet.replay) get the call as x would
        return indices.__array_function__(_take, (type(indices),), (x, indices), {"axis": axis})
    return np.take(x, indices, axis=axis)


def _clip_of(compat: ModuleType) -> Callable[..., Array]:
    def clip(x: Array, /, min: Any = None, max: Any = None, **kwargs: Any) -> Array:
        if (not kwargs and (min is not None or max is not None) and x.dtype.kind == "f"
                and all(type(b) in (float, int) or b is None for b in (min, max))):  # fmt: skip
            # Python bounds on a float array: numpy.clip keeps x's dtype (NEP 50) and computes
            # what compat's clip computes into an array it makes, in one call
            return np.clip(x, min, max)
        return compat.clip(x, min, max, **kwargs)

    return clip


@functools.cache
def _numpy_namespace(compat: ModuleType) -> ModuleType:
    """``array_api_compat.numpy`` with ``sum`` and ``max`` calling the ufunc reductions that
    ``numpy.sum``/``numpy.max`` end in, without their Python argument handling (~3 us a call, a
    tenth of a small training pass), ``take`` handing itself to an array type of its indices as
    to one of its array, and ``clip`` of a float array by Python numbers as one
    ``numpy.clip`` (compat's makes an array and clips into it). Same results bit for bit
    (tests/test_backends.py)."""
    xp = ModuleType("xpnet.numpy_namespace", compat.__doc__)
    vars(xp).update({k: v for k, v in vars(compat).items() if not k.startswith("__")})
    xp.sum, xp.max, xp.take = _sum, _max, _take  # type: ignore[attr-defined]
    xp.clip = _clip_of(compat)  # type: ignore[attr-defined]
    return xp


BLOCK = 1 << 18
"""Entries of the largest temporary a NumPy kernel makes (1 MiB of float32): a large array's
derivative is taken a block of rows at a time."""


def _numpy_kernels() -> dict[str, fused.Kernel]:
    """NumPy's fast paths (:mod:`xpnet.fused`): the generic bodies' operations in their order
    (equal bits), written into arrays the step made anyway instead of new ones."""

    def affine_(a: Any, W: Any, b: Any) -> Any:
        z = np.matmul(a, W, out=scratch.take((a.shape[0], W.shape[1]), a, W))
        z += b
        return z

    def tanh(z: Any) -> Any:
        return np.tanh(z, out=scratch.take(z.shape, z))

    def back(delta: Any, W: Any) -> Any:
        return np.matmul(delta, W.T, out=scratch.take((delta.shape[0], W.shape[0]), delta, W))

    def blocks(delta: Any, a: Any, into: Callable[[Any, Any], None]) -> Any:
        """``into(delta rows, a rows)`` on all rows, a block of rows at a time where the arrays
        are large: the derivative's temporary then holds a block, not a whole (n, k) array."""
        if a.size <= BLOCK:
            into(delta, a)
            return delta
        step = max(BLOCK // a.shape[1], 1)
        for i in range(0, a.shape[0], step):
            into(delta[i : i + step], a[i : i + step])
        return delta

    def tanh_into(delta: Any, a: Any) -> None:
        g = a * a
        np.subtract(1, g, out=g)
        delta *= g

    def sigmoid_into(delta: Any, a: Any) -> None:
        g = 1 - a
        g *= a
        delta *= g

    def tanh_backward(delta: Any, a: Any) -> Any:
        return blocks(delta, a, tanh_into)

    def sigmoid_backward(delta: Any, a: Any) -> Any:
        return blocks(delta, a, sigmoid_into)

    def relu_backward(delta: Any, a: Any) -> Any:
        np.multiply(delta, a > 0, out=delta)  # times 1.0 or 0.0, as the generic body
        return delta

    def weight_grad(a: Any, delta: Any, W: Any, reg: float) -> Any:
        g = a.T @ delta
        if reg:
            g += reg * W
        return g

    def softmax(z: Any) -> Any:
        e = z - _max(z, axis=1, keepdims=True)
        np.exp(e, out=e)
        e /= _sum(e, axis=1, keepdims=True)
        return e

    return {"affine": affine_, "weight_grad": weight_grad, "softmax": softmax, "tanh": tanh,
            "back": back, "tanh_backward": tanh_backward, "sigmoid_backward": sigmoid_backward,
            "relu_backward": relu_backward}  # fmt: skip


class _NumpyRecycler:
    """NumPy's arrays for :mod:`xpnet.scratch`: a view holds a reference to the array it views
    (``base``), and so does whatever wraps its memory (a memoryview, a tensor made by
    ``torch.from_numpy``), so the reference count tells every holder."""

    def accepts(self, x: Any) -> bool:
        return type(x) is np.ndarray

    def empty(self, shape: tuple[int, ...], like: Array) -> Array:
        return np.empty(shape, like.dtype)

    def shared(self, x: Array) -> bool:
        return False


class NumpyBackend(Backend):
    name, module, install = "numpy", "numpy", "pip install xpnet"
    replays = True

    def _setup(self, device: str | int | None) -> None:
        import array_api_compat.numpy as compat

        self.device_label = _cpu_only(self.name, device)
        self.device = None
        self.xp = _numpy_namespace(compat)
        self.version = np.__version__
        fused.register(self.xp, _numpy_kernels())

    def _put(self, host: np.ndarray) -> Array:
        # 0-d as NumPy's own reductions give it, a scalar: a step count restored from a file
        # must take the same arithmetic path (scalar ** is not array ** bit for bit)
        return host[()] if host.ndim == 0 else host

    def _get(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def recycler(self) -> scratch.Recycler:
        return _NumpyRecycler()


# -- array-api-strict ----------------------------------------------------------------------------
class StrictBackend(Backend):
    name, module, install = "strict", "array_api_strict", "pip install 'xpnet[strict]'"

    def _setup(self, device: str | int | None) -> None:
        import array_api_strict as xp

        self.device_label = _cpu_only(self.name, device)
        self.device = None
        # The oldest standard version xpnet targets, no data-dependent shapes, no extensions:
        # any call outside that subset fails the suite.
        xp.set_array_api_strict_flags(
            api_version="2023.12",
            boolean_indexing=False,
            data_dependent_shapes=False,
            enabled_extensions=(),
        )
        self.xp, self.version = xp, xp.__version__

    def _put(self, host: np.ndarray) -> Array:
        return self.xp.asarray(host)

    def _get(self, x: Array) -> np.ndarray:
        return np.from_dlpack(x)

    @classmethod
    def owns(cls, x: Any) -> str | None:
        import array_api_compat as compat

        array = compat.is_array_api_obj(x) and not compat.is_numpy_array(x)
        return "cpu" if array and type(x).__module__.startswith("array_api_strict") else None


# -- JAX -----------------------------------------------------------------------------------------
SPLIT_ROWS = 4096
"""Rows each part of a split weight gradient holds at least (:func:`split_parts`)."""
SPLIT_MIN = 4096
"""Entries of a weight gradient below which a JAX CPU program does not split it. Measured with
jax 0.10 on a 2-core Intel Xeon: split in two, ``a.T @ delta`` over 60000 rows takes 0.55x
(784 x 10 entries) to 0.85x (256 x 256) the time of the product whole, 0.9-1.2x at 64 x 64 (8
ms: noise) and 1.05x at 256 x 10."""
TRANSPOSE_NARROW = 32
"""Outputs of a weight gradient up to which a JAX CPU program computes it transposed whatever
its rows (:func:`transposed`). Measured with jax 0.10 on a 2-core Intel Xeon: ``(delta.T @ a).T``
takes 0.4-0.7x the time of ``a.T @ delta`` for 256 inputs x 10 outputs over 32 to 60000 rows,
0.6-1.0x for 784 x 32 over 256 to 4096 rows."""
TRANSPOSE_MAX = 128
"""Outputs up to which it does too over :data:`TRANSPOSE_ROWS` rows or more: 0.94x the time
(784 x 64 over 16384 rows) to 0.8x (256 x 128 over 60000), but 1.27x for 784 x 64 over 256 rows
and 1.1x for 784 x 256 over 60000."""
TRANSPOSE_ROWS = 16384
"""Rows from which a weight gradient of up to :data:`TRANSPOSE_MAX` outputs is transposed."""

_CPU_THREADS: ContextVar[int] = ContextVar("xpnet_cpu_threads", default=0)
"""The CPU threads of the one-CPU-device JAX program being traced (0: not such a program: a
GPU's, a mesh's, work outside :meth:`JaxBackend.jit`; its weight gradients are XLA's own)."""


def cpu_threads() -> int:
    """The CPUs this process may run on (XLA's CPU thread pool is that large)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_parts(rows: int, entries: int, threads: int) -> int:
    """The parts a JAX CPU program with ``threads`` threads splits the rows of a weight
    gradient ``a.T @ delta`` of ``entries`` entries into (1: it is not split). XLA's CPU product
    shares a long contraction out to its threads badly: ``a.T @ delta`` for a (60000, 784) and
    delta (60000, 256) runs 1.4x faster on 2 cores than on one, and as two halves (one to a
    core) summed, 1.8x faster. The parts: the first of ``threads`` to ``4 * threads``, then of
    fewer, that divides ``rows`` into parts of at least :data:`SPLIT_ROWS` rows (a slice of
    ``a`` would be a copy of it: rows that divide into none are not split)."""
    if threads < 2 or entries < SPLIT_MIN:
        return 1
    counts: list[int] = [*range(threads, 4 * threads + 1), *range(threads - 1, 1, -1)]
    for parts in counts:
        if rows % parts == 0 and rows // parts >= SPLIT_ROWS:
            return parts
    return 1


def transposed(rows: int, inputs: int, outputs: int, threads: int) -> bool:
    """Whether a JAX CPU program (``threads`` > 0) computes a weight gradient ``a.T @ delta``
    over ``rows`` rows, (inputs, outputs), as ``(delta.T @ a).T``: where it has fewer outputs
    than inputs, at most :data:`TRANSPOSE_NARROW`, or at most :data:`TRANSPOSE_MAX` over
    :data:`TRANSPOSE_ROWS` rows or more. XLA folds a transpose into the product it follows, so
    the small result is transposed behind an optimization barrier: XLA's CPU product runs up to
    3x faster with the narrow side as the rows of its result."""
    if threads < 1 or outputs >= inputs:
        return False
    return outputs <= TRANSPOSE_NARROW or (outputs <= TRANSPOSE_MAX and rows >= TRANSPOSE_ROWS)


def _jax_kernels(jax: Any) -> dict[str, fused.Kernel]:
    """JAX's fast path (:mod:`xpnet.fused`) in a program for one CPU device: a weight gradient
    with a long contraction split over the CPU's threads (:func:`split_parts`) as a product
    batched over parts of the rows, summed, and a narrow one computed transposed
    (:func:`transposed`); XLA fuses the rest."""

    def weight_grad(a: Any, delta: Any, W: Any, reg: float) -> Any:
        (rows, inputs), outputs = a.shape, delta.shape[1]
        threads = _CPU_THREADS.get()
        parts = split_parts(rows, inputs * outputs, threads)
        flip = transposed(rows, inputs, outputs, threads)
        left, right = (delta, a) if flip else (a, delta)
        if parts == 1:
            g = left.T @ right
        else:  # (parts, ., .): each part's left.T @ right, one batch of one product
            each = jax.lax.dot_general(left.reshape(parts, rows // parts, -1),
                                       right.reshape(parts, rows // parts, -1),
                                       (((1,), (1,)), ((0,), (0,))))  # fmt: skip
            g = jax.numpy.sum(each, axis=0)
        if flip:
            g = jax.lax.optimization_barrier(g).T
        return g + reg * W if reg else g

    return {"weight_grad": weight_grad}


class JaxBackend(Backend):
    name, module = "jax", "jax"
    install = "pip install 'xpnet[jax]' (GPU: 'xpnet[jax-cuda]' for CUDA 13, 'xpnet[jax-cuda12]')"
    can_shard = has_grad = True

    def _setup(self, device: str | int | None) -> None:
        import jax
        import jax.numpy as jnp

        if self.dtype_name == "float64" and not jax.config.read("jax_enable_x64"):
            jax.config.update("jax_enable_x64", True)
        got = jnp.zeros(1, dtype=getattr(jnp, self.dtype_name)).dtype
        if str(got) != self.dtype_name:
            raise BackendUnavailableError(
                f"JAX gave {got} when asked for {self.dtype_name}; set JAX_ENABLE_X64=1 before "
                "starting Python or use --dtype float32"
            )
        kind, index = _parse_device(device)
        try:
            devices = jax.local_devices(backend=kind)  # this process's (all, outside a job)
        except RuntimeError:
            raise BackendUnavailableError(
                "JAX sees no GPU; pip install 'xpnet[jax-cuda]' on a CUDA machine, or use "
                "--device cpu"
            ) from None
        if (index or 0) >= len(devices):
            raise BackendUnavailableError(
                f"JAX device index {index} is out of range; {len(devices)} device(s): {devices}"
            )
        self.device = devices[index or 0]
        self.device_label = f"{self.device.platform}:{self.device.id}"
        self.xp, self.version, self._jax = jnp, jax.__version__, jax
        fused.register(jnp, _jax_kernels(jax))

    def _put(self, host: np.ndarray) -> Array:
        return self._jax.device_put(host, self.device)

    def memory_bytes(self) -> int | None:
        if self.device.platform == "cpu":
            return super().memory_bytes()
        stats = self.device.memory_stats() or {}
        limit = stats.get("bytes_limit")
        return None if limit is None else int(limit)

    def _get(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def sync(self, x: Any = None) -> None:
        if x is None:
            (self.xp.zeros(()) + 0).block_until_ready()
        else:
            self._jax.block_until_ready(x)

    def jit(self, fn: Callable[..., Any], static_argnums: Sequence[int] = ()) -> Callable[..., Any]:
        """``jax.jit`` of ``fn`` traced with the matrix-product :func:`precision` (full float32
        unless asked: a GPU's default, TF32, would round float32 products to 10 bits of
        mantissa). Per program, not process-wide."""
        jax = self._jax

        @functools.wraps(fn)
        def precise(*args: Any) -> Any:
            token = _CPU_THREADS.set(self.program_threads())
            try:
                with jax.default_matmul_precision(_JAX_PRECISION[precision()]):
                    return fn(*args)
            finally:
                _CPU_THREADS.reset(token)

        return jax.jit(precise, static_argnums=tuple(static_argnums))  # type: ignore[no-any-return]

    def program_threads(self) -> int:
        """The CPU threads of this backend's programs for the weight gradients' fast path
        (:func:`split_parts`, :func:`transposed`): the CPU's on one CPU device, else 0 (a GPU's
        products are its library's; a mesh's rows are split over its devices already)."""
        return cpu_threads() if self.shards == 1 and self.device.platform == "cpu" else 0

    def scan(self, step: ScanBody, carry: Any, n: int) -> tuple[Any, Array]:
        def body(c: Any, _: Any) -> tuple[Any, Array]:
            return step(c)

        result: tuple[Any, Array] = self._jax.lax.scan(body, carry, None, length=n)
        return result

    def repeat(self, step: Plain, carry: Any, n: int) -> Any:
        if n == 1:
            return step(carry)
        return self._jax.lax.fori_loop(0, n, lambda i, c: step(c), carry)

    def grad(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        gradient: Callable[..., Any] = self._jax.grad(fn)
        return gradient

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """The :func:`precision` of matrix products for eager work too (prediction,
        evaluation); see :meth:`jit`."""
        return self._jax.default_matmul_precision(_JAX_PRECISION[precision()])  # type: ignore[no-any-return]

    @classmethod
    def visible_devices(cls) -> list[str]:
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]

    @classmethod
    def owns(cls, x: Any) -> str | None:
        import array_api_compat as compat

        if not compat.is_jax_array(x):
            return None
        dev = next(iter(x.devices()))
        return "cpu" if dev.platform == "cpu" else f"gpu:{dev.id}"


# -- CuPy ----------------------------------------------------------------------------------------
class CupyBackend(Backend):
    name, module = "cupy", "cupy"
    install = "pip install 'xpnet[cupy]' (CUDA 13; CUDA 12: 'xpnet[cupy-cuda12]')"

    def _setup(self, device: str | int | None) -> None:
        import sys

        if "cupy" not in sys.modules:  # CuPy reads its TF32 switch from the environment
            os.environ["CUPY_TF32"] = "0" if precision() == "highest" else "1"
        import array_api_compat.cupy as xp
        import cupy

        if not cupy.is_available():
            raise BackendUnavailableError(
                "CuPy is installed but no usable CUDA device was found; "
                "use --backend numpy (CPU) or run on a machine with an NVIDIA GPU and driver"
            )
        kind, index = _parse_device(device)
        if kind == "cpu":
            raise BackendUnavailableError(
                "CuPy runs only on a GPU; use --backend numpy for the CPU"
            )
        count = cupy.cuda.runtime.getDeviceCount()
        if (index or 0) >= count:
            raise BackendUnavailableError(
                f"CUDA device index {index} is out of range; {count} GPU(s)"
            )
        self.device = cupy.cuda.Device(index or 0)
        self.device_label = f"gpu:{self.device.id}"
        self.xp, self.version, self._cupy = xp, cupy.__version__, cupy

    def _put(self, host: np.ndarray) -> Array:
        with self.device:
            return self._cupy.asarray(host)

    def _get(self, x: Array) -> np.ndarray:
        return self._cupy.asnumpy(x)  # type: ignore[no-any-return]

    def sync(self, x: Any = None) -> None:
        self.device.synchronize()

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self.device  # type: ignore[no-any-return]

    def memory_bytes(self) -> int | None:
        return int(self.device.mem_info[1])

    def put_async(self, host: np.ndarray) -> tuple[Array, Any]:
        import cupyx

        cupy = self._cupy
        with self.device:
            if not hasattr(self, "_copies"):
                self._copies = cupy.cuda.Stream(non_blocking=True)
            pinned = cupyx.empty_pinned(host.shape, host.dtype)
            pinned[...] = host
            array = cupy.empty(host.shape, host.dtype)
            array.set(pinned, stream=self._copies)
            done = self._copies.record()
        return array, (done, pinned)  # the pinned buffer lives until the copy is waited for

    def ready(self, token: Any) -> None:
        if token is not None:
            with self.device:
                self._cupy.cuda.get_current_stream().wait_event(token[0])

    def retire(self, arrays: Any) -> None:
        import collections

        retired = self.__dict__.setdefault("_retired", collections.deque())
        with self.device:
            retired.append((self._cupy.cuda.get_current_stream().record(), arrays))
        while retired and retired[0][0].done:  # their readers have run: the memory may go
            retired.popleft()

    @classmethod
    def visible_devices(cls) -> list[str]:
        import cupy

        return [f"gpu:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]

    @classmethod
    def owns(cls, x: Any) -> str | None:
        import array_api_compat as compat

        return f"gpu:{x.device.id}" if compat.is_cupy_array(x) else None


# -- PyTorch -------------------------------------------------------------------------------------
NARROW = 32
"""Below this many columns PyTorch's CPU matrix products take the narrow operand column-major:
measured with torch 2.13 on the project's 2-core AMD EPYC machines, ``a.T @ delta`` with 10
columns runs 2.8x (256 rows of 256 inputs) to 4x (60000 rows) slower than ``(delta.T @ a).T``,
and ``a @ W`` 1.3x to 2.7x slower than with W stored transposed (a classifier's output layer, as
``nn.Linear`` keeps it); from 32 columns on, the plain forms are as fast or faster, and below
:data:`NARROW_MIN` entries of ``a`` (seed 000's 200 x 3) the layout's copy costs more than it
saves."""
NARROW_MIN = 2**14


def _torch_kernels(torch: Any) -> dict[str, fused.Kernel]:
    """PyTorch's fast paths (:mod:`xpnet.fused`): its own fused kernels (what its autograd runs
    for these operations), the operands of narrow products on the CPU laid out as
    :data:`NARROW` says."""
    aten = torch.ops.aten

    def narrow(x: Any, a: Any) -> bool:
        """Whether ``x`` is the narrow operand of a CPU product with ``a`` worth laying out."""
        # the size first: a small problem's passes ask it four times and it decides them
        return bool(a.numel() >= NARROW_MIN and x.shape[1] < NARROW and x.device.type == "cpu")

    def affine_(a: Any, W: Any, b: Any) -> Any:
        out = scratch.take((a.shape[0], W.shape[1]), a, W, b)
        return torch.addmm(b, a, W.T.contiguous().T if narrow(W, a) else W, out=out)

    def back(delta: Any, W: Any) -> Any:
        return torch.mm(delta, W.T, out=scratch.take((delta.shape[0], W.shape[0]), delta, W))

    def activation_backward(kernel: Any, *extra: Any) -> fused.Kernel:
        def backward(delta: Any, a: Any) -> Any:
            out = scratch.take(delta.shape, delta, a)
            if out is None:
                return kernel(delta, a, *extra)
            return kernel.grad_input(delta, a, *extra, grad_input=out)

        return backward

    def weight_grad(a: Any, delta: Any, W: Any, reg: float) -> Any:
        if narrow(delta, a):
            return (torch.addmm(W.T, delta.T, a, beta=reg) if reg else delta.T @ a).T
        return torch.addmm(W, a.T, delta, beta=reg) if reg else a.T @ delta

    def descend(params: Any, updates: Any, rate: float) -> Any:
        keys = list(params)
        new = torch._foreach_add([params[k] for k in keys], [updates[k] for k in keys],
                                 alpha=rate)  # fmt: skip
        return dict(zip(keys, new, strict=True))

    return {
        "affine": affine_,
        "weight_grad": weight_grad,
        "softmax": lambda z: torch.softmax(z, dim=1),
        "softmax_lse": lambda z: (torch.softmax(z, dim=1), torch.logsumexp(z, 1, keepdim=True)),
        "descend": descend,
        "tanh": lambda z: torch.tanh(z, out=scratch.take(z.shape, z)),
        "back": back,
        "tanh_backward": activation_backward(aten.tanh_backward),
        "sigmoid_backward": activation_backward(aten.sigmoid_backward),
        "relu_backward": activation_backward(aten.threshold_backward, 0),
    }


class _TorchRecycler:
    """PyTorch's CPU tensors for :mod:`xpnet.scratch`. A view, or a DLPack export, holds the
    tensor itself (PyTorch then keeps a reference to its Python object: the count sees it); a
    detached tensor, or the NumPy array of ``.numpy()``, holds only its memory (the storage),
    which the storage's own count tells. Tensors autograd follows are left alone (a result
    written into ``out=`` has no gradient)."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch
        self._uses = torch._C._storage_Use_Count
        self._alone = self._count(torch.empty(1))

    def accepts(self, x: Any) -> bool:
        return type(x) is self._torch.Tensor and x.device.type == "cpu" and not x.requires_grad

    def empty(self, shape: tuple[int, ...], like: Array) -> Array:
        return self._torch.empty(shape, dtype=like.dtype)

    def _count(self, x: Any) -> int:
        return int(self._uses(x.untyped_storage()._cdata))

    def shared(self, x: Array) -> bool:
        return self._count(x) != self._alone


class TorchBackend(Backend):
    name, module, install = (
        "torch",
        "torch",
        (
            "pip install 'xpnet[torch]' (CPU only, without the CUDA libraries: first pip install "
            "torch --index-url https://download.pytorch.org/whl/cpu)"
        ),
    )
    replays = True

    def _setup(self, device: str | int | None) -> None:
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
            count = torch.cuda.device_count()
            if (index or 0) >= count:  # now, not as a CUDA error at the first array
                raise BackendUnavailableError(
                    f"PyTorch sees {count} CUDA device{'s' if count != 1 else ''} (gpu:0"
                    f"{f' to gpu:{count - 1}' if count > 1 else ''}); gpu:{index} is not one"
                )
            self.device = torch.device("cuda", index or 0)
        else:
            if index:
                raise BackendUnavailableError("PyTorch has one CPU device; use --device cpu")
            self.device = torch.device("cpu")
        self.device_label = str(self.device)
        self.xp, self.version, self._torch = xp, torch.__version__, torch
        fused.register(xp, _torch_kernels(torch))

    def _put(self, host: np.ndarray) -> Array:
        return self._torch.from_numpy(host).to(self.device)

    def _get(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()  # type: ignore[no-any-return]

    def recycler(self) -> scratch.Recycler | None:
        """On the CPU (CUDA memory comes from PyTorch's caching allocator already)."""
        if self.device.type != "cpu" or not hasattr(self._torch._C, "_storage_Use_Count"):
            return None
        return _TorchRecycler(self._torch)

    def sync(self, x: Any = None) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """The device current (CUDA) and float32 matrix products at :func:`precision` (TF32
        convolutions too), whatever ``torch.backends``' flags were; restored after."""
        return self._activated()

    @contextlib.contextmanager
    def _activated(self) -> Any:
        torch = self._torch
        wanted = precision()
        before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
        torch.set_float32_matmul_precision(wanted)
        torch.backends.cudnn.allow_tf32 = wanted != "highest"
        try:
            with (
                torch.cuda.device(self.device)
                if self.device.type == "cuda"
                else contextlib.nullcontext()
            ):
                yield
        finally:
            torch.set_float32_matmul_precision(before[0])
            torch.backends.cudnn.allow_tf32 = before[1]

    def memory_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return super().memory_bytes()
        return int(self._torch.cuda.get_device_properties(self.device).total_memory)

    def put_async(self, host: np.ndarray) -> tuple[Array, Any]:
        torch = self._torch
        if self.device.type != "cuda":
            return self._put(host), None
        if not hasattr(self, "_copies"):
            self._copies = torch.cuda.Stream(self.device)
        pinned = torch.from_numpy(host).pin_memory()
        with torch.cuda.stream(self._copies):
            array = pinned.to(self.device, non_blocking=True)
        # the computing stream uses it next: the allocator must not reuse it before then
        array.record_stream(torch.cuda.current_stream(self.device))
        return array, self._copies.record_event()

    def ready(self, token: Any) -> None:
        if token is not None:
            self._torch.cuda.current_stream(self.device).wait_event(token)

    @classmethod
    def visible_devices(cls) -> list[str]:
        import torch

        return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]

    @classmethod
    def owns(cls, x: Any) -> str | None:
        import array_api_compat as compat

        if not compat.is_torch_array(x):
            return None
        return "cpu" if x.device.type == "cpu" else f"gpu:{x.device.index or 0}"


# -- any namespace ---------------------------------------------------------------------------
NEEDED = ("asarray", "astype", "matmul", "matrix_transpose", "sum", "max", "exp", "log", "log1p",
          "abs", "sqrt", "tanh", "where", "take", "reshape", "concat", "stack", "zeros_like",
          "ones_like", "isfinite", "all", "argmax", "floor", "cos", "float32", "float64")  # fmt: skip
"""What xpnet's math and the engine call in a namespace (the activations, losses, optimizers and
transfers together)."""


class NamespaceBackend(Backend):
    """A user's own Array API namespace as the backend: ``select(xp)`` with a namespace object
    (for instance ``array_api_compat.dask.array``). The math runs in it; data moves in with its
    ``asarray`` and out with ``numpy.from_dlpack`` where the arrays support it (else
    ``numpy.asarray``); arrays already of the namespace (a dask array larger than memory, say)
    are used as they are, never gathered on the host. Steps run in a plain Python loop, and
    between steps the parameters and optimizer state (small) come to the host and go back: a
    lazy library computes each step there, chunk by chunk, instead of growing one graph without
    end. Its device is its own business (``device_label`` "cpu"; no memory check)."""

    name, module, install = "namespace", "numpy", "an Array API namespace object"
    lazy = True

    def __init__(self, xp: Any, device: str | int | None = None, dtype: str = "float64") -> None:
        self._namespace = xp
        super().__init__(device, dtype)

    def _setup(self, device: str | int | None) -> None:
        xp = self._namespace
        missing = [f for f in NEEDED if not hasattr(xp, f)]
        label = getattr(xp, "__name__", type(xp).__name__)
        if missing:
            raise ConfigError(f"the namespace {label} lacks {', '.join(missing)}, which xpnet's "
                              "math needs; pass an Array API namespace (array_api_compat wraps "
                              "NumPy, CuPy, PyTorch, dask)")  # fmt: skip
        self.xp, self.device, self.device_label = xp, device, "cpu"
        self.name = f"namespace:{label}"  # type: ignore[misc]  # what compiled programs key on
        self.version = str(getattr(xp, "__array_api_version__", "?"))

    def owns_array(self, a: Any) -> bool:
        """Whether ``a`` is already an array of this namespace (kept as it is)."""
        import array_api_compat

        if isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a):
            return False
        try:
            return array_api_compat.array_namespace(a) is self.xp
        except TypeError:
            return False

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        if self.owns_array(a):
            want = getattr(self.xp, self.dtype_name if dtype is None else np.dtype(dtype).name)
            return a if a.dtype == want else self.xp.astype(a, want)
        return super().asarray(a, dtype)

    def asarray_rows(
        self,
        *parts: Any,
        rows: int | None = None,
        tokens: list[Any] | None = None,
        dtype: Any = None,
    ) -> tuple[list[Array], Array | None]:
        if any(self.owns_array(a) for a in parts):  # one device: no padding, no split
            return [self.asarray(a, dtype) for a in parts], None
        return super().asarray_rows(*parts, rows=rows, tokens=tokens, dtype=dtype)

    def _put(self, host: np.ndarray) -> Array:
        return self.xp.asarray(host)

    def _get(self, x: Array) -> np.ndarray:
        try:
            return np.from_dlpack(x)
        except (TypeError, AttributeError, BufferError, RuntimeError):
            return np.asarray(x)

    def memory_bytes(self) -> int | None:
        return None

    def _settle(self, tree: Any) -> Any:
        """Every array of ``tree`` computed on the host and put back: a lazy namespace's graph
        ends here. The leaves of one dtype come over as one flat array, so a lazy library
        computes the step they share once, not once a leaf."""
        from xpnet import trees

        flat = trees.flatten(tree)
        groups: dict[Any, list[str]] = {}
        for path, leaf in flat.items():
            groups.setdefault(leaf.dtype, []).append(path)
        xp, settled = self.xp, {}
        for paths in groups.values():
            joined = xp.concat([xp.reshape(flat[p], (-1,)) for p in paths], axis=0)
            host, start = np.asarray(self._get(joined)), 0
            for p in paths:
                shape = tuple(flat[p].shape)
                size = int(np.prod(shape))
                settled[p] = self._put(host[start : start + size].reshape(shape))
                start += size
        return trees.unflatten(tree, settled)

    def scan(self, step: ScanBody, carry: Any, n: int) -> tuple[Any, Array]:
        losses = []
        with self._quiet():
            for _ in range(n):
                carry, loss = self._settle(step(carry))
                losses.append(loss)
        return carry, self.xp.stack(losses)

    def repeat(self, step: Plain, carry: Any, n: int) -> Any:
        with self._quiet():
            for _ in range(n):
                carry = self._settle(step(carry))
        return carry


BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (NumpyBackend, StrictBackend, JaxBackend, CupyBackend, TorchBackend)
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


def _importable(cls: type[Backend]) -> None:
    try:
        importlib.import_module(cls.module)
    except ImportError:
        raise BackendUnavailableError(
            f"{cls.module} is not installed; {cls.install} or use --backend numpy"
        ) from None


NAMESPACE_PREFIX = "namespace:"
"""``"namespace:MODULE"`` names an Array API namespace by its module (a string, so it can be
copied, cloned and typed on the command line): ``"namespace:array_api_compat.dask.array"``."""


def namespace_name(xp: Any) -> str | None:
    """``"namespace:MODULE"`` for a namespace that is an importable module, else None."""
    return NAMESPACE_PREFIX + xp.__name__ if isinstance(xp, ModuleType) else None


def select(name: Any = None, device: str | int | None = None, dtype: str = "float64") -> Backend:
    """Return the :class:`Backend` for ``name`` (see precedence above) on ``device`` in ``dtype``;
    ``name`` may also be an Array API namespace object, or ``"namespace:MODULE"`` naming one
    (:class:`NamespaceBackend`)."""
    if isinstance(name, str) and name.strip().startswith(NAMESPACE_PREFIX):
        path = name.strip()[len(NAMESPACE_PREFIX) :]
        try:
            name = importlib.import_module(path)
        except (ImportError, ValueError) as exc:
            raise BackendUnavailableError(f"could not import the namespace {path!r} ({exc}); "
                                          "name an installed module, e.g. "
                                          "namespace:array_api_compat.dask.array") from None  # fmt: skip
    if name is not None and not isinstance(name, str):
        validation.dtype(dtype)
        return NamespaceBackend(name, device, dtype)
    cls = BACKENDS[resolve_name(name)]
    validation.dtype(dtype)
    _importable(cls)
    return cls(device, dtype)


def autodiff(dtype: str = "float64") -> Backend:
    """The first installed backend with autodiff (JAX), on the CPU: the gradients' oracle.
    Raises BackendUnavailableError where none is installed."""
    for cls in BACKENDS.values():
        if cls.has_grad and importlib.util.find_spec(cls.module) is not None:
            return cls("cpu", dtype)
    raise BackendUnavailableError("no backend with autodiff is installed; pip install 'xpnet[jax]'")


def array_kind(x: Any) -> tuple[str, str] | None:
    """Return ``(backend name, device label)`` when x is an array of a backend other than NumPy
    (JAX, PyTorch, CuPy, array-api-strict), else None (NumPy arrays, lists, DataFrames...).
    Estimators use it to give outputs back in the input's kind."""
    for name, cls in BACKENDS.items():
        if cls is NumpyBackend or importlib.util.find_spec(cls.module) is None:
            continue
        label = cls.owns(x)
        if label is not None:
            return name, label
    return None


def describe(name: str) -> dict[str, Any]:
    """Return ``{backend, installed, version, devices, usable, why}`` for one backend, never raising."""
    cls = BACKENDS[name]
    info: dict[str, Any] = {"backend": name, "installed": False, "version": None}
    info.update(devices=[], usable=False, why="")
    try:
        module = importlib.import_module(cls.module)
    except ImportError:
        info["why"] = f"not installed: {cls.install}"
        return info
    info["installed"] = True
    info["version"] = getattr(module, "__version__", None)
    try:
        cls(None, "float32")
    except Exception as exc:  # report why, do not stop the listing
        info["why"] = str(exc)
        return info
    info["usable"] = True
    info["devices"] = cls.visible_devices()
    return info

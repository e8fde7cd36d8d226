"""Data-parallel and multi-process training: JAX's own multi-device, multi-host engine.

:func:`data_parallel` gives a backend whose :class:`~xpnet.backends.Layout` splits the rows of the
data over a one-axis ``jax.sharding.Mesh`` of devices while parameters and optimizer state are
replicated; compiled steps then run on every device at once and XLA sums the gradients across
devices inside them. :func:`distributed` joins a multi-process job first; the mesh then spans
every process's devices and each process hands over only its own rows. :func:`local_rows` and
:func:`agreed` are what front-ends need to read and check only their rows in such a job.

The only module besides :mod:`xpnet.backends` that imports an array library (JAX, when used).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from xpnet import validation
from xpnet._typing import Array
from xpnet.backends import BACKENDS, Backend, Layout
from xpnet.errors import BackendUnavailableError, ConfigError, DataError

T = TypeVar("T")


class Mesh(Layout):
    """Rows split over ``shards`` devices of one process; whole arrays replicated."""

    def __init__(self, mesh: Any) -> None:
        from jax.sharding import NamedSharding, PartitionSpec

        self.shards = int(mesh.devices.size)
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.by_rows = NamedSharding(mesh, PartitionSpec("data"))

    def put(self, backend: Backend, host: np.ndarray) -> Array:
        import jax

        return jax.device_put(host, self.replicated)

    def put_rows(
        self, backend: Backend, host: np.ndarray, rows: int, tokens: list[Any] | None = None
    ) -> Array:
        import jax

        return jax.device_put(host, self.by_rows)  # asynchronous already; JAX orders its use


class Job(Mesh):
    """A mesh over the devices of every process of a job: each process holds one contiguous
    part of the rows and passes only those; whole arrays are the same in every process."""

    def __init__(self, mesh: Any, processes: int) -> None:
        super().__init__(mesh)
        self.processes = processes

    def put(self, backend: Backend, host: np.ndarray) -> Array:
        import jax

        return jax.make_array_from_process_local_data(self.replicated, host, host.shape)

    def put_rows(
        self, backend: Backend, host: np.ndarray, rows: int, tokens: list[Any] | None = None
    ) -> Array:
        import jax

        return jax.make_array_from_process_local_data(self.by_rows, host, (rows, *host.shape[1:]))

    def span(self, padded: int) -> slice:
        spans = [s[0] for s in self.by_rows.addressable_devices_indices_map((padded,)).values()
                 if s]  # fmt: skip
        return slice(min(s.start or 0 for s in spans),
                     max(padded if s.stop is None else s.stop for s in spans))  # fmt: skip

    def gather(self, host: np.ndarray) -> np.ndarray:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(host, tiled=False))


def data_parallel(backend: Backend, devices: int | None = None) -> Backend:
    """Return ``backend`` (JAX) spread over ``devices`` of its platform (default: all it sees):
    data rows split over them (:meth:`Backend.asarray_rows`), everything else replicated
    (:meth:`Backend.asarray`). In a multi-process job (:func:`distributed`) the devices are those
    of every process."""
    if not backend.can_shard:
        able = ", ".join(n for n, c in BACKENDS.items() if c.can_shard)
        raise ConfigError(f"data-parallel training runs on the {able} backend (--backend {able}); "
                          f"{backend.name} trains on one device")  # fmt: skip
    validation.optional(validation.integer, "devices", devices)
    import jax

    platform = backend.device.platform
    seen = jax.devices(platform)
    count = len(seen) if devices is None else devices
    if count > len(seen):
        hint = (
            "; to simulate devices on a CPU start Python with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={count}"
            if platform == "cpu"
            else ""
        )
        raise BackendUnavailableError(f"asked for {count} {platform} devices; JAX sees "
                                      f"{len(seen)}{hint}")  # fmt: skip
    mesh = jax.sharding.Mesh(np.array(seen[:count]), ("data",))
    label = f"{platform}:0-{count - 1}" if count > 1 else backend.device_label
    processes = jax.process_count()
    layout = Mesh(mesh) if processes == 1 else Job(mesh, processes)
    return backend.placed(layout, seen[0], label)


JOB_TIMEOUT = 300
"""Seconds a process of a multi-process job waits for the others to join, and for a peer that
stops answering (JAX's heartbeat), before it ends with an error (``--job-timeout``)."""


def _coordinator(address: str | None) -> str | None:
    """``HOST:PORT`` checked (a port in 1..65535), else ConfigError naming the option."""
    if address is None:
        return None
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--coordinator must be HOST:PORT with a port in 1..65535; got "
                          f"{validation.show(address)}")  # fmt: skip
    return str(address)


def distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout: int = JOB_TIMEOUT,
) -> tuple[int, int]:
    """Join a multi-process JAX job (``jax.distributed.initialize``) before any JAX work; with
    no arguments JAX detects the cluster (SLURM, Open MPI, TPU pods...). Returns ``(this
    process's index, process count)``; :func:`data_parallel` then spans every process's devices.
    A process waits at most ``timeout`` seconds for the others to join, and ends (JAX stops it
    with an error) when a peer has not answered for that long: a job never hangs on a dead peer.
    """
    coordinator = _coordinator(coordinator)
    timeout = validation.integer("--job-timeout", timeout)
    try:
        import jax
    except ImportError:
        raise BackendUnavailableError(
            f"multi-process training needs JAX; {BACKENDS['jax'].install}"
        ) from None
    # JAX aborts a process whose job does not form in time, with a C++ stack trace: end it
    # first, with one line (status 2), a few seconds before JAX would
    watchdog = threading.Timer(timeout, _missing_peers, (timeout, num_processes))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout + 30,
                                   heartbeat_timeout_seconds=timeout)  # fmt: skip
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(
            f"could not join the multi-process JAX job within {timeout} s ({first}); give "
            "--coordinator HOST:PORT --num-processes N --process-id I, or run under SLURM or on "
            "a TPU pod"
        ) from None
    finally:
        watchdog.cancel()
    return jax.process_index(), jax.process_count()


def _missing_peers(timeout: int, count: int | None) -> None:
    """The job did not form within ``timeout`` seconds: say so and end this process."""
    import sys

    expected = f"all {count} processes" if count else "every process"
    sys.stderr.write(f"xpnet: error: the multi-process job did not start within {timeout} s: "
                     f"{expected} must join (--coordinator, --num-processes, --process-id), "
                     "or raise --job-timeout\n")  # fmt: skip
    sys.stderr.flush()
    os._exit(2)


def local_rows(backend: Backend | None, X: Any) -> slice | None:
    """The rows of X this process trains on in a multi-process job; None otherwise (all)."""
    if backend is None or backend.processes == 1:
        return None
    shape = np.shape(X)
    return backend.span(shape[0]) if len(shape) == 2 else None  # else validation raises


def agreed(backend: Backend | None, check: Callable[[], T]) -> T:
    """Return ``check()``; in a multi-process job, every process raises if one's data failed it
    (the others would wait for it in the first collective)."""
    if backend is None or backend.processes == 1:
        return check()
    try:
        result, failure = check(), None
    except DataError as exc:
        result, failure = None, exc
    failed = backend.gather(np.array(failure is not None))
    if failure is not None:
        raise failure
    if failed.any():
        raise DataError(f"process {int(np.argmax(failed))} of the job found its rows of the data "
                        "invalid (its error says why)")  # fmt: skip
    return result  # type: ignore[return-value]

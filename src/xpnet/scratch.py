"""Scratch memory: the large arrays a fit makes every pass, kept and handed out again.

An eager library (NumPy, PyTorch on a CPU) makes each pass's large arrays anew: the hidden
layers' outputs, the delta sent back. A new array of more than 32 MiB is mapped from the
operating system by every allocation (glibc's allocator maps what is larger than that, and
unmaps it when it is freed), and its first writes then fault in every 4 KiB page: 12-15 ms for
a 60000 x 256 float32 array on the project's 2-core machines, where writing one that is mapped
already takes 1.3 ms. A wide full-batch pass makes four such arrays, and the native PyTorch
loop pays for them as xpnet did (docs/benchmarks.md).

Within :func:`recycling` (the training engine opens it around a fit) the backends' kernels
(:mod:`xpnet.fused`) write their large results into arrays from a :class:`Pool`: one of the
same shape and dtype that nothing holds any more, or else a new one, which joins the pool. The
pool and its arrays go when the scope ends. What holds an array is told by the backend object's
:class:`Recycler` (reference counts: a view, a result kept by the caller or a plug-in, all count),
so an array still in use is never handed out again. The kernels compute into the array they
are given what they would compute into a new one: the same bits (tests/test_scratch.py).

Outside the scope, on a backend without a recycler (JAX's compiled programs plan their own
memory; CuPy and PyTorch on a GPU have caching allocators), for arrays under :data:`MIN_BYTES`,
for arrays a recording stands in for (:mod:`xpnet.replay`) and with ``XPNET_SCRATCH=0``,
:func:`take` gives None: the kernel makes a new array as before.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from xpnet import validation
from xpnet._typing import Array

MIN_BYTES = 1 << 20
"""The smallest result taken from the pool (1 MiB); smaller arrays are served from the
allocator's own free lists (glibc's maps arrays of more than 128 KiB to 32 MiB only until it has
freed one of that size)."""
ENV_VAR = "XPNET_SCRATCH"
"""``0``: kernels make every result anew; ``1`` (the default): a fit recycles them."""


class Recycler(Protocol):
    """What a backend object tells the pool about its library's arrays."""

    def accepts(self, x: Any) -> bool:
        """Whether ``x`` is an array of the library the pool may take the like of (its own
        array type on the CPU: not a recording's stand-in, not a tensor autograd follows)."""
        ...

    def empty(self, shape: tuple[int, ...], like: Array) -> Array:
        """A new C-contiguous array of ``shape`` and ``like``'s dtype, on its device."""
        ...

    def shared(self, x: Array) -> bool:
        """Whether the memory of ``x`` (held by the pool alone, by reference count) is used
        through another array of the library (a view the count does not see); False where
        every holder counts."""
        ...


def _refs(held: list[Array], i: int) -> int:
    """The reference count of ``held[i]``, measured as :class:`Pool` measures it."""
    return sys.getrefcount(held[i])


class Pool:
    """Arrays by (shape, dtype), each handed out again once nothing else holds it."""

    def __init__(self, recycler: Recycler) -> None:
        self.recycler = recycler
        self.arrays: dict[tuple[tuple[int, ...], Any], list[Array]] = {}
        self._small: set[tuple[int, ...]] = set()
        # an array held by the pool's list alone, counted the way take() counts (the count's
        # own references differ between Python versions)
        self._alone = _refs([object()], 0)

    def take(self, shape: tuple[int, ...], *operands: Any) -> Array | None:
        """An array of ``shape`` and the dtype of ``operands`` (arrays of one dtype) that
        nothing holds, for a kernel's result; None where the operands are not the recycler's
        or the result is under :data:`MIN_BYTES`."""
        if shape in self._small:  # first: a small problem's pass asks it every kernel call
            return None
        accepts = self.recycler.accepts
        if not all(accepts(x) for x in operands):
            return None
        first = operands[0]
        dtype = first.dtype
        if math.prod(shape) * dtype.itemsize < MIN_BYTES:
            self._small.add(shape)  # (a fit computes in one dtype)
            return None
        if any(x.dtype != dtype for x in operands):
            return None
        held = self.arrays.setdefault((shape, dtype), [])
        for i in range(len(held)):
            if _refs(held, i) == self._alone and not self.recycler.shared(held[i]):
                return held[i]
        held.append(self.recycler.empty(shape, first))
        return held[-1]


_POOL: ContextVar[Pool | None] = ContextVar("xpnet_scratch", default=None)


@contextlib.contextmanager
def recycling(recycler: Recycler | None) -> Iterator[Pool | None]:
    """Within it, :func:`take` hands out arrays of a new pool of ``recycler``'s library (None,
    or :data:`ENV_VAR` ``0``: it gives None, as outside); the pool and its arrays go at the
    end. Another value of :data:`ENV_VAR` than 0 or 1 is a ConfigError."""
    pool = Pool(recycler) if recycler is not None and validation.switch(ENV_VAR) else None
    token = _POOL.set(pool)
    try:
        yield pool
    finally:
        _POOL.reset(token)


def take(shape: tuple[int, ...], *operands: Any) -> Array | None:
    """An array to write a result of ``shape`` into, from the current :func:`recycling` scope's
    pool (see :meth:`Pool.take`), or None: the kernel makes a new array."""
    pool = _POOL.get()
    return None if pool is None else pool.take(shape, *operands)

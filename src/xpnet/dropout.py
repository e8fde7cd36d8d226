"""Dropout masks drawn by a counter-based hash written once in the Array API's integer operations.

The Array API standard has no random numbers, and a mask drawn by each library's own generator
would differ from backend to backend. Here a unit is kept or dropped by a hash of (seed, step,
layer, row, unit) alone, computed in int32 with the standard's ``&``, ``^``, ``>>``, ``+`` and
``*``, so the masks are the same bits on NumPy, array-api-strict, JAX, PyTorch and CuPy, inside
a compiled loop as outside it, on one device or split over many (rows are indexed by their place
in the whole data set, not in a batch or a shard), and a run resumed at step s draws what it
would have drawn.

The hash works on 16-bit words held in int32: every intermediate value stays below ``2**31``
(a 16-bit word times a multiplier below ``2**15``), so no operation overflows on any backend,
also where int64 is absent (JAX without x64) and where unsigned shifts are (PyTorch's uint32 on
the CPU). Each element costs two rounds of :func:`_mix`; the row and unit parts are hashed
once per row and per unit. A unit is kept where its 16-bit hash is at least ``round(rate *
2**16)``: the rate is honoured to ``2**-17``. Masks repeat after :data:`PERIOD` steps.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from xpnet import validation
from xpnet._typing import Array
from xpnet.errors import ConfigError

WORD = 0xFFFF
_M1, _M2 = 13995, 9555
"""Odd multipliers below 2**15 (so products of 16-bit words fit int32), chosen for the mix's
avalanche: flipping any input bit flips every output bit with probability 0.5 +- 0.017."""
_SALT = 0x2545
PERIOD = 2**30
"""Steps after which the masks repeat (the step counter is kept below ``2**31`` in int32)."""
RESOLUTION = 2**16
"""A unit is dropped with probability ``round(rate * RESOLUTION) / RESOLUTION``."""


def _mix(h: Array) -> Array:
    """A bijection of 16-bit values (int32 arrays holding 0..65535): xor-shift and multiply."""
    h = h ^ (h >> 8)
    h = (h * _M1) & WORD
    h = h ^ (h >> 7)
    h = (h * _M2) & WORD
    return h ^ (h >> 9)


def _absorb(h: Array, word: Any) -> Array:
    return _mix(h ^ word)


def _absorb_int(h: Array, value: Array) -> Array:
    """Absorb a non-negative int32 (below 2**31) as its two 16-bit words."""
    return _absorb(_absorb(h, value & WORD), value >> 16)


def check(value: Any, name: str = "dropout") -> float | tuple[float, ...]:
    """A rate in [0, 1), or a tuple of them (one per hidden layer, from a list or tuple)."""
    if isinstance(value, (list, tuple)):
        return tuple(validation.number(f"{name}[{i}]", v, 0, 1, high_open=True)
                     for i, v in enumerate(value))  # fmt: skip
    return validation.number(name, value, 0, 1, high_open=True)


def rates(
    value: Any, n_hidden: int, name: str = "dropout", layers: str = "hidden"
) -> tuple[float, ...]:
    """The dropout rate of each of ``n_hidden`` hidden layers from a rate or one per layer, each
    in [0, 1) (:func:`check`); () where every rate is 0 (no dropout: the plain math, bit for
    bit). Errors name the settings ``name`` and ``layers`` (the hidden layers' sizes)."""
    checked = check(value, name)
    if isinstance(checked, tuple):
        given = checked
        if len(given) != n_hidden:
            plural = "s" if n_hidden != 1 else ""
            raise ConfigError(f"{name} gives {len(given)} rate{'s' if len(given) != 1 else ''}"
                              f" for {n_hidden} hidden "
                              f"layer{plural} ({layers}): give one rate, or one per hidden "
                              "layer")  # fmt: skip
    else:
        given = (checked,) * n_hidden
    return given if any(given) else ()


class Draw(NamedTuple):
    """What one step's masks are drawn from (device arrays, int32)."""

    seed: Array
    """(2,): the seed's low and high 16-bit words."""
    step: Array
    """0-d: the step (mod :data:`PERIOD`)."""
    rows: Array
    """(n,): each row's index in the whole data set."""
    units: Array
    """(w,): 0, 1, ..., w - 1 for the widest hidden layer (a layer of k units takes the first k)."""


class Dropout(NamedTuple):
    """One step's dropout: ``rates`` per hidden layer (static) and the ``draw``."""

    rates: tuple[float, ...]
    draw: Draw


def seed_words(seed: int) -> tuple[int, int]:
    """A seed in [0, 2**32) as its two 16-bit words."""
    return seed & WORD, (seed >> 16) & WORD


def keep(xp: ModuleType, draw: Draw, layer: int, units: int, rate: float) -> Array:
    """The boolean mask (n, units) of hidden layer ``layer``: True where a unit is kept, with
    probability ``1 - rate``."""
    key = _absorb(_mix(draw.seed[0] ^ _SALT), draw.seed[1])
    key = _absorb(_absorb_int(key, draw.step), layer)
    row_key, other_key, unit_key = _absorb(key, 1), _absorb(key, 2), _absorb(key, 3)
    rows = draw.rows
    by_row = _absorb_int(row_key, rows)[:, None]
    other = _absorb_int(other_key, rows)[:, None]
    by_unit = _absorb_int(unit_key, draw.units[:units])[None, :]
    h = _mix(_mix((by_row + by_unit) & WORD) ^ other)
    return h >= round(rate * RESOLUTION)


def scale(xp: ModuleType, draw: Draw, layer: int, units: int, rate: float, dtype: Any) -> Array:
    """The inverted-dropout multiplier (n, units): ``1 / (1 - rate)`` where a unit is kept, 0
    where it is dropped, so that the expected activation is unchanged and prediction (which
    drops nothing) needs no rescaling."""
    return xp.astype(keep(xp, draw, layer, units, rate), dtype) * (1.0 / (1.0 - rate))


def of(noise: Dropout | None, layer: int) -> float:
    """The rate of hidden layer ``layer`` (1-based) under ``noise`` (0 without)."""
    return 0.0 if noise is None else noise.rates[layer - 1]

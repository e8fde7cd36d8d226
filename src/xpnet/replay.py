"""Replay: a training step recorded once and run as one generated Python loop.

On the eager backends (NumPy, PyTorch) a small problem's pass costs more in Python between the
library calls (the math's layers, dict building, kernel lookups) than in the calls themselves.
:func:`run` runs a step ``n`` times for :meth:`xpnet.backends.Backend.repeat` and ``scan`` (on
backends that set ``replays``), but the first pass runs on :class:`Traced` stand-ins for the
carry's arrays,
which do the work and write down each library call as a line of Python; the remaining passes
run those lines as one generated loop (the same calls, in the same order, on the same kind of
arguments: the same bits), with nothing of the math's Python left between them. Each value is
deleted after its last use, so a pass holds what the plain step holds.

What the recording can follow is what a compiler traces (the training programs are written to
run under ``jax.jit``): arrays' shapes and dtypes are known, their values are not. A step that
asks for a value (``bool(x)``, ``float(x)``, ``x.item()``), changes Python state, returns a carry
of another structure, writes into the carry it is given or into an array it did not compute,
or fails in any other way while it is recorded runs in the plain loop instead, from the same
carry (such writes are refused before they happen): a recording never changes what a step
computes, only how often Python runs the math around the calls. Arrays the step reads that are not in the carry (the
data) and anything computed from them alone are the recording's constants, which holds within
one call (the data does not change during it).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from types import CodeType
from typing import Any

from xpnet import trees, validation

FROM = 32
"""The fewest passes a call records and replays (below it the recording costs more than it
saves)."""
ENV_VAR = "XPNET_REPLAY"
"""``0``: every step runs in the plain loop; ``1`` (the default): loops are replayed."""


def applies(n: int) -> bool:
    """Whether a loop of ``n`` passes is recorded and replayed (:data:`FROM`, :data:`ENV_VAR`;
    another value of it than 0 or 1 is a ConfigError)."""
    return validation.switch(ENV_VAR) and n >= FROM


class ReplayError(Exception):
    """The step did something a recording cannot replay (the plain loop runs it instead)."""


Line = tuple[str | None, str, frozenset[str]]
"""A recorded line: the name it assigns (None: a statement), its expression, the names it reads."""


class _Tape:
    """The lines of one recorded pass and the constants they read."""

    def __init__(self, backend: Any) -> None:
        self.xp, self.is_array = backend.xp, backend.is_array
        self.lines: list[Line] = []
        self.consts: dict[str, Any] = {}
        self._const_names: dict[int, str] = {}
        self._count = 0

    def name(self, prefix: str = "v") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, obj: Any) -> str:
        """The name the generated code reads ``obj`` by (bound by identity)."""
        key = id(obj)
        if key not in self._const_names:
            self._const_names[key] = f"k{len(self.consts)}"
            self.consts[self._const_names[key]] = obj
        return self._const_names[key]

    def ref(self, x: Any, reads: set[str]) -> str:
        """Source text for argument ``x``; the recorded values it reads are added to ``reads``."""
        if isinstance(x, Traced):
            if x._tape is not self:
                raise ReplayError("a value of another recording")
            reads.add(x._name)
            return x._name
        if x is None or x is Ellipsis or isinstance(x, (bool, str)):
            return repr(x)
        if type(x) is int or (type(x) is float and math.isfinite(x)):
            text = repr(x)  # repr round-trips a float exactly
            return f"({text})" if text.startswith("-") else text  # (-2.0) ** v, not -(2.0 ** v)
        if type(x) is tuple:
            return "(" + "".join(self.ref(v, reads) + ", " for v in x) + ")"
        if type(x) is list:
            return "[" + ", ".join(self.ref(v, reads) for v in x) + "]"
        if type(x) is dict:
            return "{" + ", ".join(f"{k!r}: {self.ref(v, reads)}" for k, v in x.items()) + "}"
        if type(x) is slice:
            return f"slice({self.ref(x.start, reads)}, {self.ref(x.stop, reads)}, " \
                   f"{self.ref(x.step, reads)})"  # fmt: skip
        if _first(_is_traced, x) is not None:
            raise ReplayError(f"a recorded value inside a {type(x).__name__}")
        return self.const(x)

    def call(self, text: str, fn: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any], reads: set[str]) -> Any:  # fmt: skip
        """Run ``fn`` on the values behind ``args`` and write down ``text`` (the call's source)
        as the line that computes its result; return the result with its arrays recorded."""
        value = fn(*_values(args), **_values(kwargs))
        if value is None:  # called for what it writes (np.copyto, ndarray.fill): a statement
            self.lines.append((None, text, frozenset(reads)))
            return None
        return self.result(text, value, reads)

    def result(self, text: str, value: Any, reads: set[str]) -> Any:
        if not self.has_array(value):
            return value  # static (a shape, a dtype, a finfo): nothing to replay
        if self.is_array(value):
            out = self.name()
            self.lines.append((out, text, frozenset(reads)))
            return Traced(value, out, self)
        tmp = self.name("r")
        self.lines.append((tmp, text, frozenset(reads)))
        return self._unpack(value, tmp, tmp)

    def _unpack(self, value: Any, text: str, whole: str) -> Any:
        """``value``'s arrays recorded as items of ``whole`` (a tuple or dict result)."""
        if self.is_array(value):
            out = self.name()
            self.lines.append((out, text, frozenset({whole})))
            return Traced(value, out, self)
        if type(value) is dict:
            return {k: self._unpack(v, f"{text}[{k!r}]", whole) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            items = [self._unpack(v, f"{text}[{i}]", whole) for i, v in enumerate(value)]
            if hasattr(value, "_fields"):
                return type(value)(*items)
            return type(value)(items)
        if self.has_array(value):
            raise ReplayError(f"arrays inside a {type(value).__name__}")
        return value

    def has_array(self, x: Any) -> bool:
        return _first(self.is_array, x) is not None


def _first(test: Callable[[Any], bool], x: Any) -> Any:
    """``x``, or the first thing in it (dicts, tuples, lists), that passes ``test``; None."""
    if test(x):
        return x
    items = x.values() if type(x) is dict else x if isinstance(x, (tuple, list)) else ()
    for v in items:
        found = _first(test, v)
        if found is not None:
            return found
    return None


def _is_traced(x: Any) -> bool:
    return isinstance(x, Traced)


def _values(x: Any) -> Any:
    """``x`` with every :class:`Traced` replaced by the array it stands for."""
    return trees.map_leaves(lambda v: v._value if isinstance(v, Traced) else v, x)


def _call_text(tape: _Tape, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               reads: set[str]) -> str:  # fmt: skip
    parts = [tape.ref(a, reads) for a in args]
    parts += [f"{k}={tape.ref(v, reads)}" for k, v in kwargs.items()]
    return f"{fn}({', '.join(parts)})"


def _library_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A library function called on recorded arrays (NumPy's and PyTorch's dispatch protocols
    hand it here): run it on their arrays and write it down."""
    tape = _tape_of((args, kwargs))
    name = getattr(fn, "__name__", "")
    written = _as_tuple(kwargs.get("out", ()))
    if args and (name == "__setitem__" or _in_place(name) or name in _WRITES_FIRST):
        written += (args[0],)
    _writes(written, name or str(fn))
    reads: set[str] = set()
    return tape.call(_call_text(tape, tape.const(fn), args, kwargs, reads), fn, args, kwargs,
                     reads)  # fmt: skip


def _in_place(name: str) -> bool:
    """PyTorch's convention: ``add_``, ``mul_``... write into their tensor (not ``__add__``)."""
    return name.endswith("_") and not name.endswith("__")


_WRITES_FIRST = frozenset({"copyto", "put", "putmask", "place", "fill_diagonal",
                           "put_along_axis", "at"})  # fmt: skip
"""NumPy's functions (and ``ufunc.at``) that write into their first argument, not ``out=``."""
_WRITES_SELF = frozenset({"fill", "sort", "partition", "put", "itemset", "setfield", "resize"})
"""NumPy's array methods that write into their array (and return None)."""


def _writes(targets: tuple[Any, ...], what: str) -> None:
    """Refuse, before it happens, a write into an array the step did not compute (the data, a
    constant) or into the carry it was given (a failed recording leaves the carry untouched
    for the plain loop)."""
    for w in targets:
        if not isinstance(w, Traced):
            raise ReplayError(f"{what} writes into an array the step did not compute")
        if w._name.startswith("c"):
            raise ReplayError(f"{what} writes into the carry the step was given")


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else () if x is None else (x,)


def _tape_of(x: Any) -> _Tape:
    tape: _Tape = _first(_is_traced, x)._tape
    return tape


_ASKS_VALUE = frozenset({"item", "tolist", "numpy", "tobytes", "data_ptr", "storage",
                         "untyped_storage", "__array__", "__dlpack__", "__array_interface__",
                         "__array_struct__", "__cuda_array_interface__"})  # fmt: skip
"""Attributes that hand out an array's values (or its memory) to Python: not replayable."""


class Traced:
    """An array of a recorded pass: behaves as the array (``_value``) and writes down every
    operation on it as a line that computes the result (``_name`` in the generated code)."""

    __slots__ = ("_name", "_tape", "_value")

    def __init__(self, value: Any, name: str, tape: _Tape) -> None:
        self._value, self._name, self._tape = value, name, tape

    # the libraries' protocols for arrays of other types hand every call on a Traced here
    def __array_ufunc__(self, ufunc: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        return _library_call(ufunc if method == "__call__" else getattr(ufunc, method), args,
                             kwargs)  # fmt: skip

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _library_call(func, tuple(args), dict(kwargs))

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return _library_call(func, tuple(args), dict(kwargs or {}))

    def __array_namespace__(self, api_version: Any = None) -> Any:
        return self._tape.xp

    def __getattr__(self, attr: str) -> Any:
        if attr in _ASKS_VALUE:
            raise ReplayError(f"the step reads an array's values ({attr})")
        value = getattr(self._value, attr)
        tape = self._tape
        if callable(value):

            def method(*args: Any, **kwargs: Any) -> Any:
                if _in_place(attr) or attr in _WRITES_SELF:
                    _writes((self,), attr)
                reads = {self._name}
                text = _call_text(tape, f"{self._name}.{attr}", args, kwargs, reads)
                return tape.call(text, value, args, kwargs, reads)

            return method
        return tape.result(f"{self._name}.{attr}", value, {self._name})

    def __getitem__(self, key: Any) -> Any:
        reads = {self._name}
        text = f"{self._name}[{self._tape.ref(key, reads)}]"
        return self._tape.result(text, self._value[_values(key)], reads)

    def __setitem__(self, key: Any, item: Any) -> None:
        _writes((self,), "item assignment")
        reads = {self._name}
        text = f"{self._name}[{self._tape.ref(key, reads)}] = {self._tape.ref(item, reads)}"
        self._value[_values(key)] = _values(item)
        self._tape.lines.append((None, text, frozenset(reads)))

    def __len__(self) -> int:
        return len(self._value)

    def _asks(self, *_: Any) -> Any:
        raise ReplayError("the step reads an array's value (bool, int, float or iteration)")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __iter__ = _asks
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Traced({self._name}: {self._value!r})"


def _binary(symbol: str, fn: Callable[[Any, Any], Any], reflected: bool) -> Any:
    def op(self: Traced, other: Any) -> Any:
        tape, reads = self._tape, {self._name}
        a, b = (other, self) if reflected else (self, other)
        text = f"{tape.ref(a, reads)} {symbol} {tape.ref(b, reads)}"
        return tape.result(text, fn(_values(a), _values(b)), reads)

    return op


def _inplace(fn: Callable[[Any, Any], Any]) -> Any:
    def op(self: Traced, other: Any) -> Any:
        _writes((self,), fn.__name__)
        tape, reads = self._tape, set[str]()
        return tape.call(_call_text(tape, tape.const(fn), (self, other), {}, reads), fn,
                         (self, other), {}, reads)  # fmt: skip

    return op


def _unary(template: str, fn: Callable[[Any], Any]) -> Any:
    def op(self: Traced) -> Any:
        return self._tape.result(template.format(self._name), fn(self._value), {self._name})

    return op


_BINARY = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
           "pow": "**", "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<",
           "rshift": ">>"}  # fmt: skip
for _op, _symbol in _BINARY.items():
    _fn = getattr(operator, f"{_op}_" if _op in ("and", "or") else _op)
    setattr(Traced, f"__{_op}__", _binary(_symbol, _fn, False))
    setattr(Traced, f"__r{_op}__", _binary(_symbol, _fn, True))
    setattr(Traced, f"__i{_op}__", _inplace(getattr(operator, f"i{_op}")))
for _op, _symbol in {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==",
                     "ne": "!="}.items():  # fmt: skip
    setattr(Traced, f"__{_op}__", _binary(_symbol, getattr(operator, _op), False))
for _op, _template in {"neg": "-{}", "pos": "+{}", "invert": "~{}", "abs": "abs({})"}.items():
    setattr(Traced, f"__{_op}__", _unary(_template, getattr(operator, _op)))


# -- recording and replaying ---------------------------------------------------------------------
def _record(
    backend: Any, step: Callable[[Any], Any], carry: Any, scanned: bool
) -> tuple[Any, Callable[..., Any]]:
    """Run ``step`` once on stand-ins for ``carry``'s arrays; return what it returned and the
    generated ``loop(n, *leaves) -> leaves (, values)`` of n more passes."""
    tape = _Tape(backend)
    leaves = list(trees.flatten(carry).values())
    names = [f"c{i}" for i in range(len(leaves))]
    it = iter(names)  # one name a leaf, in flatten's order

    def stand_in(leaf: Any) -> Any:
        name = next(it)
        return Traced(leaf, name, tape) if tape.is_array(leaf) else leaf

    out = step(trees.map_leaves(stand_in, carry))
    new, value = out if scanned else (out, None)
    if list(trees.flatten(new)) != list(trees.flatten(carry)):
        raise ReplayError("the step returns a carry of another structure")
    outs: list[str] = []
    for old, leaf in zip(leaves, trees.flatten(new).values(), strict=True):
        if isinstance(leaf, Traced):
            outs.append(tape.ref(leaf, set()))
        elif tape.is_array(old) or tape.is_array(leaf) or not _same(old, leaf):
            raise ReplayError("the step returns a carry leaf it did not compute, or changes one")
        else:
            outs.append(tape.ref(leaf, set()))
    kept = None
    if scanned:
        if not isinstance(value, Traced):
            raise ReplayError("the step's value is not an array it computed")
        kept = value._name
    source = _source(tape, names, outs, kept)
    code = _compile(source)
    scope = dict(tape.consts)
    exec(code, scope)  # the code written above, from the recorded calls
    # taken out of the scope it is defined in, which would otherwise hold it in a cycle (the
    # constants, a block of streamed data, kept until the garbage collector runs)
    return _values(out), scope.pop("loop")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a is b or a == b)


def _source(tape: _Tape, names: list[str], outs: list[str], kept: str | None) -> str:
    """The generated loop: the recorded lines, each value deleted after its last use."""
    end = len(tape.lines)
    last = {name: i for i, (_, _, reads) in enumerate(tape.lines) for name in reads}
    last |= {name: end for name in [*outs, *([kept] if kept else [])]}
    dying: dict[int, set[str]] = {}
    for i, (target, _, _) in enumerate(tape.lines):
        if target is not None:  # read last at line i, or never (then gone at once)
            dying.setdefault(last.get(target, i), set()).add(target)
    consts = "".join(f", {k}={k}" for k in tape.consts)  # read as locals
    body = [f"def loop(n{''.join(', ' + c for c in names)}{consts}):",
            "    values = []", "    keep = values.append", "    for _ in range(n):"]  # fmt: skip
    for i, (target, text, _) in enumerate(tape.lines):
        body.append(f"        {text}" if target is None else f"        {target} = {text}")
        if i in dying:
            body.append("        del " + ", ".join(sorted(dying[i])))
    if names:
        body.append(f"        {', '.join(names)}, = {', '.join(outs)},")
    if kept:
        body.append(f"        keep({kept})")
    body.append(f"    return ({''.join(c + ', ' for c in names)}), values")
    return "\n".join(body) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(source: str) -> CodeType:
    return compile(source, "<xpnet.replay>", "exec")


def run(backend: Any, step: Callable[[Any], Any], carry: Any, n: int,
        scanned: bool) -> tuple[Any, list[Any]] | None:  # fmt: skip
    """Run ``step`` n >= 1 times on ``backend`` (a :class:`xpnet.backends.Backend`: its ``xp``
    and ``is_array``), recorded once and replayed: ``carry = step(carry)``, or with ``scanned``
    ``carry, value = step(carry)``. Return the final carry and the n values (empty without
    ``scanned``), or None where the step could not be recorded: the caller's plain loop then
    runs it from ``carry``, which the attempt left as it was. Raise :class:`ReplayError` inside
    a recording (the recorded step would hold every pass of the loop: the outer step runs
    plainly instead, and this loop records itself on each call)."""
    if _first(_is_traced, carry) is not None:
        raise ReplayError("a long loop inside a recorded step")
    try:
        first, loop = _record(backend, step, carry, scanned)
    except Exception:  # whatever stops the recording, the plain loop runs the step
        return None
    first_carry, value = first if scanned else (first, None)
    leaves, values = loop(n - 1, *trees.flatten(first_carry).values())
    it = iter(leaves)
    done = trees.map_leaves(lambda _: next(it), first_carry)
    return done, ([value, *values] if scanned else [])

"""What the benchmark scripts share: timing, FLOP counts, the GEMM peak, the machine's name, and
the table every workload prints.

A *runner* is a function ``run() -> seconds | None`` doing a fixed amount of work and returning
when it is finished (device work included); it may return the seconds of its own training loop
(xpnet's ``fit_seconds_``) or None to be timed from the outside.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

# JAX grows its GPU memory on demand here: peers and xpnet share the device in one process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from xpnet import backends
from xpnet.errors import XpnetError

Runner = Callable[[], "float | None"]


def usable_backends(names: str, dtype: str = "float64", device: str = "cpu") -> Iterator[str]:
    """Yield the names in the comma list that can run here on ``device``; print why the others
    cannot."""
    for name in names.split(","):
        if not name:
            continue
        try:
            backends.select(name, device, dtype)
        except Exception as exc:  # an xpnet refusal, or the library's own failure
            print(f"# {name}: skipped ({_why(exc) if not isinstance(exc, XpnetError) else exc})")
            continue
        yield name


def measure(run: Runner, repeats: int) -> dict[str, float]:
    """Run once to warm up (JAX compiles then), then ``repeats`` times. Returns ``seconds`` (the
    median), ``first`` (the warm-up's time) and ``compile`` (first minus median, at least 0)."""
    first = _once(run)
    times = [_once(run) for _ in range(repeats)]
    median = statistics.median(times)
    return {"seconds": median, "first": first, "compile": max(first - median, 0.0)}


def measure_interleaved(runs: dict[str, Runner], repeats: int) -> dict[str, dict[str, float]]:
    """:func:`measure` for several runners at once, their timed runs taken in turn (one of each,
    then again), so that a shared machine's drift falls on all of them alike."""
    first: dict[str, float] = {}
    for name, run in list(runs.items()):
        try:
            first[name] = _once(run)
        except Exception as exc:  # a CUDA/NVRTC error in one library: that one is left out
            print(f"# {name}: failed, left out ({_why(exc)})", flush=True)
    runs = {name: run for name, run in runs.items() if name in first}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in list(runs.items()):
            try:
                times[name].append(_once(run))
            except Exception as exc:
                print(f"# {name}: failed, left out ({_why(exc)})", flush=True)
                del runs[name], times[name]
    out = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        out[name] = {"seconds": median, "first": first[name],
                     "compile": max(first[name] - median, 0.0)}  # fmt: skip
    return out


def _why(exc: BaseException) -> str:
    """An error in one line: its type and its first line."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _once(run: Runner) -> float:
    t0 = time.perf_counter()
    inner = run()
    return time.perf_counter() - t0 if inner is None else inner


def script_parser(doc: str, quick: str, repeats: int) -> argparse.ArgumentParser:
    """The command line the timing scripts share: ``--quick`` (``quick`` says what it makes
    smaller; one repeat), ``--repeats`` (default ``repeats``) and ``--json FILE``; a script adds
    its own options. Read the repeats with :func:`repeats_of`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{quick}, one repeat")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json")
    return parser


def repeats_of(args: argparse.Namespace) -> int:
    """The timed runs a :func:`script_parser` command line asks for (one with ``--quick``)."""
    return 1 if args.quick else int(args.repeats)


def switched(run: Runner, variable: str, on: bool) -> Runner:
    """``run`` with the environment variable ``variable`` (an xpnet switch) set to 1 or 0 while
    it runs, as it was before afterwards."""

    def go() -> float | None:
        before = os.environ.get(variable)
        os.environ[variable] = "1" if on else "0"
        try:
            return run()
        finally:
            if before is None:
                del os.environ[variable]
            else:
                os.environ[variable] = before

    return go


def mlp_flops(n: int, sizes: tuple[int, ...]) -> float:
    """Matrix-multiply FLOPs of one training pass over n rows of a dense net with layer ``sizes``:
    forward ``2 n i o`` per layer, ``dW`` another ``2 n i o``, and the delta sent back ``2 n i o``
    for every layer but the first (no gradient for the input)."""
    total = 0.0
    for layer, (i, o) in enumerate(itertools.pairwise(sizes)):
        total += (4 if layer == 0 else 6) * n * i * o
    return total


def gemm_peak(library: str, dtype: str, size: int, repeats: int = 5, device: str = "cpu") -> float:
    """FLOP/s of a (size, size) @ (size, size) product through xpnet's ``library`` backend
    (numpy, torch, jax, cupy) on ``device``, median of ``repeats`` after a warm-up, waiting for the
    device before each clock reading; full float32 on JAX, as xpnet computes."""
    import numpy as np

    be = backends.select(library, device, dtype)
    rng = np.random.default_rng(0)
    a, b = (be.asarray(rng.standard_normal((size, size))) for _ in range(2))
    product = be.jit(lambda x, y: x @ y)
    with be.activate():
        seconds = measure(lambda: be.sync(product(a, b)), repeats)["seconds"]
    return 2.0 * size**3 / seconds


LIBRARIES = {"cpu": ("numpy", "torch", "jax"), "gpu": ("cupy", "torch", "jax")}
"""The libraries whose GEMM is measured on each kind of device."""


def gemm_peaks(
    size: int, device: str = "cpu", only: Iterable[str] | None = None
) -> dict[str, dict[str, float]]:
    """GFLOP/s of a square matrix product per library usable on ``device`` (those of ``only``
    among them, where given), per dtype. A library that fails (not installed, no such device, a
    CUDA error) is left out with its reason printed; the others are measured."""
    wanted = set(only) if only is not None else None
    peaks: dict[str, dict[str, float]] = {}
    for dtype in ("float32", "float64"):
        peaks[dtype] = {}
        for library in LIBRARIES[device]:
            if wanted is not None and library not in wanted:
                continue
            try:
                peaks[dtype][library] = gemm_peak(library, dtype, size, device=device) / 1e9
            except XpnetError:  # not installed, or no such device
                continue
            except Exception as exc:  # the library itself failed: report it, measure the rest
                print(f"# GEMM peak, {library} {dtype}: failed ({_why(exc)})", flush=True)
    return peaks


def device_peak(device: str, size: int) -> float:
    """The best float32 GEMM rate (FLOP/s) on ``device`` among the libraries that reach it."""
    found = gemm_peaks(size, device)["float32"]
    if not found:
        raise SystemExit(f"no library reaches the {device} here")
    return max(found.values()) * 1e9


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else platform's guess)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if found:
            return found.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def save_json(report: dict[str, Any], path: str | None) -> dict[str, Any]:
    """Write ``report`` to ``path`` as JSON (nothing without a path); return it."""
    if path:
        Path(path).write_text(json.dumps(report, indent=1))
    return report


def machine() -> str:
    """A short name for this machine in file names: ``cpu<cores>-<cpu model>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_name().lower()).strip("-")[:24]
    return f"cpu{os.cpu_count()}-{slug}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def table(rows: list[dict[str, Any]], peers: list[str]) -> str:
    """One workload's rows as text: time per pass, compile time, GFLOP/s, the share of the GEMM
    limit reached, and time relative to each peer (below 1: faster than that peer)."""
    head = f"{'implementation':<26}{'ms/pass':>10}{'compile s':>10}{'GFLOP/s':>9}{'of limit':>9}"
    head += "".join(f"{'/' + p:>11}" for p in peers)
    lines = [head]
    for r in rows:
        line = f"{r['impl']:<26}{r['ms']:>10.4g}"
        line += f"{r['compile_s']:>10.2f}" if r.get("compile_s") is not None else f"{'-':>10}"
        line += f"{r['gflops']:>9.3g}" if r.get("gflops") else f"{'-':>9}"
        line += f"{r['of_limit']:>9.1%}" if r.get("of_limit") is not None else f"{'-':>9}"
        for p in peers:
            value = r["vs"].get(p)
            line += f"{value:>11.2f}" if value is not None else f"{'-':>11}"
        lines.append(line)
    return "\n".join(lines)


def finish(
    rows: list[dict[str, Any]], flops: float | None, limit_s: float | None, peers: list[str]
) -> list[dict[str, Any]]:
    """Add ``ms``, ``gflops``, ``of_limit`` (limit time / time) and ``vs`` (time / each peer's
    time, from the same run) to rows holding ``impl`` and ``seconds`` per pass."""
    by_name = {r["impl"]: r["seconds"] for r in rows}
    for r in rows:
        r["ms"] = r["seconds"] * 1e3
        r["gflops"] = flops / r["seconds"] / 1e9 if flops else None
        r["of_limit"] = ratio(limit_s, r["seconds"])
        r["vs"] = {p: ratio(r["seconds"], by_name.get(p)) for p in peers}
    return rows

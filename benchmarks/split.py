"""JAX's weight gradients on a CPU (issue 26, :func:`xpnet.backends.split_parts` and
:func:`~xpnet.backends.transposed`): a weight gradient ``a.T @ delta`` (float32) compiled whole
(the generic body), split over the CPU's threads (every shape split, none transposed, whatever
the thresholds say) and as xpnet's kernel computes it (split and transposed where its
thresholds say), interleaved in one process, and whole again in a process held to one CPU: how
far XLA shares a long contraction out to its threads. Then the wide workload's full-batch
training (60000 x 784 -> 256 -> 10, ``Network.fit``'s clock) with each kind of weight gradient
and plain ``jax.jit``, fits of 4 and 8 passes interleaved: per training pass the slope.

    python benchmarks/split.py [--repeats 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import peers
import wide
from common import machine, measure_interleaved, save_json

from xpnet import backends, fused, train

SHAPES = [(60000, 784, 256), (60000, 784, 64), (60000, 784, 10), (60000, 256, 256),
          (60000, 256, 128), (60000, 256, 10), (60000, 64, 64), (60000, 64, 10),
          (16384, 784, 256), (8192, 784, 256), (2048, 784, 256)]  # fmt: skip
"""(rows, inputs, outputs): the wide workload's two layers, narrower and smaller ones."""

KINDS = {
    "whole": None,
    "split": {"SPLIT_MIN": 1, "SPLIT_ROWS": 1, "TRANSPOSE_NARROW": 0, "TRANSPOSE_MAX": 0},
    "kernel": {},
}
"""Each kind of product: None, the generic body; else the kernel with these thresholds."""


def runners(shapes: list[tuple[int, int, int]], kinds: list[str]) -> dict[str, Any]:
    """``{"rows x inputs x outputs|kind": run()}``, each a compiled product."""
    be = backends.select("jax", "cpu", "float32")
    rng = np.random.default_rng(0)
    out = {}
    for rows, inputs, outputs in shapes:
        a = be.asarray(rng.standard_normal((rows, inputs), dtype=np.float32))
        delta = be.asarray(rng.standard_normal((rows, outputs), dtype=np.float32))

        def grad(a: Any, delta: Any) -> Any:
            return fused.weight_grad(be.xp, a, delta)

        for kind in kinds:
            f = be.jit(grad)
            with kind_of(kind):  # traced now
                f(a, delta)
            out[f"{rows}x{inputs}x{outputs}|{kind}"] = (lambda f=f, a=a, d=delta:
                                                        be.sync(f(a, d)))  # fmt: skip
    return out


@contextlib.contextmanager
def kind_of(kind: str) -> Any:
    """Traced within: weight gradients of ``kind`` (:data:`KINDS`)."""
    thresholds = KINDS[kind]
    kept = {name: getattr(backends, name) for name in thresholds or {}}
    try:
        for name, value in (thresholds or {}).items():
            setattr(backends, name, value)
        with fused.generic() if thresholds is None else contextlib.nullcontext():
            yield
    finally:
        for name, value in kept.items():
            setattr(backends, name, value)


def training(repeats: int) -> dict[str, float]:
    """Seconds per wide full-batch pass (the slope of fits of 4 and 8 passes) of xpnet with each
    kind of weight gradient (each its own programs) and of plain ``jax.jit``."""
    p = wide.problem(60000)
    runs: dict[str, Any] = {}
    for kind in KINDS:
        programs: dict[Any, Any] = {}  # this kind's compiled programs, apart from the others'

        def fit(run: Any, kind: str = kind, programs: dict[Any, Any] = programs) -> float:
            kept, train._COMPILED = train._COMPILED, programs
            try:
                with kind_of(kind):
                    return float(run())
            finally:
                train._COMPILED = kept

        for n in (4, 8):
            runs[f"xpnet {kind}|{n}"] = functools.partial(fit, peers.xpnet_full(p, n, "jax"))
    for n in (4, 8):
        runs[f"jax.jit|{n}"] = peers.jax_full(p, n)
    t = timed(runs, repeats)
    return {k: (t[f"{k}|8"] - t[f"{k}|4"]) / 4 for k in [*(f"xpnet {k}" for k in KINDS), "jax.jit"]}


def one_core(repeats: int) -> dict[str, float]:
    """Seconds of each product whole in a child process held to one CPU."""
    done = subprocess.run([sys.executable, __file__, "--child", str(repeats)], capture_output=True,
                          text=True, check=True, timeout=900)  # fmt: skip
    return {k.split("|")[0]: v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}


def timed(runs: dict[str, Any], repeats: int) -> dict[str, float]:
    return {k: v["seconds"] for k, v in measure_interleaved(runs, repeats).items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one_core's process
    args = parser.parse_args(argv)
    if args.child:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before JAX makes its threads
        print(json.dumps(timed(runners(SHAPES, ["whole"]), args.child)))
        return {}
    threads = backends.cpu_threads()
    times = timed(runners(SHAPES, list(KINDS)), args.repeats)
    single = one_core(args.repeats) if hasattr(os, "sched_setaffinity") else {}
    print(f"weight gradients a.T @ delta, float32, on {machine()} ({threads} threads; median of "
          f"{args.repeats}, interleaved)")  # fmt: skip
    print(f"{'rows x in x out':18} {'whole ms':>9} {'split ms':>9} {'split/whole':>12} "
          f"{'1 CPU ms':>9} {'1 CPU/whole':>12} {'kernel ms':>9} {'kernel/whole':>12} "
          f"{'kernel does':>16}")  # fmt: skip
    rows_out = []
    for rows, inputs, outputs in SHAPES:
        key = f"{rows}x{inputs}x{outputs}"
        whole, split, ours = (times[f"{key}|{k}"] for k in KINDS)
        one = single.get(key)
        parts = backends.split_parts(rows, inputs * outputs, threads)
        flip = backends.transposed(rows, inputs, outputs, threads)
        rows_out.append({"shape": key, "whole_s": whole, "split_s": split, "one_cpu_s": one,
                         "kernel_s": ours, "kernel_parts": parts, "kernel_transposed": flip})  # fmt: skip
        shown = f"{one * 1e3:9.2f} {one / whole:12.2f}" if one else f"{'-':>9} {'-':>12}"
        does = " ".join([f"{parts} parts"] * (parts > 1) + ["transposed"] * flip) or "whole"
        print(f"{key:18} {whole * 1e3:9.2f} {split * 1e3:9.2f} {split / whole:12.2f} {shown} "
              f"{ours * 1e3:9.2f} {ours / whole:12.2f} {does:>16}")  # fmt: skip
    per_pass = training(args.repeats)
    print(f"\nwide full batch, per training pass (slope of 4- and 8-pass fits, median of "
          f"{args.repeats}, interleaved)")  # fmt: skip
    for name, seconds in per_pass.items():
        print(f"{name:14} {seconds * 1e3:7.1f} ms  {seconds / per_pass['jax.jit']:5.2f} x jax.jit")
    report = {"machine": machine(), "threads": threads, "rows": rows_out, "per_pass_s": per_pass}
    return save_json(report, args.json)


if __name__ == "__main__":
    main()

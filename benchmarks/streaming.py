"""Streamed mini-batch epochs (issue 7): the cost of keeping the data on the host and sending it to
the device a block of batches at a time, with and without preparing the next block while the
current one trains, against an epoch over data already on the device.

Workload: 60000 x 784 -> 256 -> 10, float32, batches of 256 (``--quick``: 8192 rows), one epoch of
plain SGD. "resident": X on the device, batches gathered there (``MLPClassifier``'s default);
"streamed": X on the host, blocks of ~32 MiB gathered and sent (``stream=True``), the next block
prepared by a worker thread ("prefetch 1") or not ("prefetch 0"); "memmap": the same from a
memory-mapped ``.npy`` (just written, so mostly in the page cache: this times the gathering and
the transfer, not a disk).

    python benchmarks/streaming.py [--quick] [--backends numpy,jax,torch] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import machine, measure, mlp_flops, usable_backends  # the script's own folder

from xpnet import backends, init, mlp, optim, stream, train

SIZES = (784, 256, 10)
BATCH = 256


def _runs(
    name: str, X: np.ndarray, X_map: np.ndarray, T: np.ndarray, device: str
) -> dict[str, Any]:
    backend = backends.select(name, device, "float32")
    spec = mlp.Spec(SIZES, "relu", "cross_entropy", True)
    opt = optim.sgd(0.01)
    host = init.initial_params(spec, "glorot", np.random.RandomState(0))
    order = np.random.RandomState(1).permutation(X.shape[0])
    n = X.shape[0]
    objective = train.Objective(spec, 0.0, "mean")
    resident = train.epoch(backend, objective, opt, n, BATCH)
    program = train.block(backend, objective, opt)
    zero = backend.asarray(np.zeros((), np.int32), dtype=np.int32)

    def block(carry: Any, Xb: Any, Tb: Any, w: Any, place: Any) -> Any:
        return program(carry, Xb, Tb, w, zero)

    Xd, Td, od = backend.asarray(X), backend.asarray(T), backend.asarray(order, dtype="int32")

    def start() -> Any:
        params = backend.tree_asarray(host)
        return params, opt.init(backend.xp, params)

    def on_device() -> None:
        with backend.activate():
            _, loss = resident(start(), Xd, Td, od)
            backend.to_numpy(loss)  # waits for the device

    def streamed(source: np.ndarray, prefetch: int) -> Any:
        def run() -> None:
            with backend.activate():
                _, loss = stream.epoch(backend, block, start(), source, T, order, BATCH,
                                       prefetch=prefetch)  # fmt: skip
                backend.to_numpy(loss)

        return run

    return {
        "resident": on_device,
        "streamed, prefetch 0": streamed(X, 0),
        "streamed, prefetch 1": streamed(X, 1),
        "memmap, prefetch 0": streamed(X_map, 0),
        "memmap, prefetch 1": streamed(X_map, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="numpy,jax,torch,cupy")
    parser.add_argument("--device", default="cpu", help="cpu or gpu")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    n = 8192 if args.quick else 60000
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, SIZES[0]), dtype=np.float32)
    T = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], n)]
    flops = mlp_flops(n, SIZES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "X.npy", X)
        X_map = np.load(Path(tmp) / "X.npy", mmap_mode="r")
        for name in usable_backends(args.backends, "float32", args.device):
            runs = _runs(name, X, X_map, T, args.device)
            base = None
            for label, run in runs.items():
                timing = measure(run, args.repeats)
                base = base or timing["seconds"]
                rows.append({"backend": name, "impl": label, **timing,
                             "gflops": flops / timing["seconds"] / 1e9,
                             "vs_resident": timing["seconds"] / base})  # fmt: skip
    print(f"streamed epochs on {machine()}: {n} x {' -> '.join(map(str, SIZES))}, float32, "
          f"batch {BATCH}, ~{stream.BLOCK_BYTES >> 20} MiB blocks")  # fmt: skip
    print(f"{'backend':<8}{'epoch':<24}{'s/epoch':>9}{'GFLOP/s':>9}{'/resident':>11}")
    for r in rows:
        print(f"{r['backend']:<8}{r['impl']:<24}{r['seconds']:>9.3f}{r['gflops']:>9.1f}"
              f"{r['vs_resident']:>11.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": n, "rows_out": rows},
                                              indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()

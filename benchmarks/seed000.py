"""Workload (a): seed 000 (moons 200, hidden 3, float64), time per full-batch pass.

Compares, in one run, the seed's hand-written NumPy loop (benchmarks/seed_numpy.py, which logs a
loss every 1000 passes) with xpnet on every usable CPU backend (which records the loss of every
pass). Prints a table; ``--json FILE`` also writes the figures. Median of ``--repeats`` runs after a
warm-up run, so JAX's compile time is reported separately.

    python benchmarks/seed000.py --passes 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import usable_backends
from seed_numpy import build_model

from xpnet import Network, datasets


def _time(fn, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()  # warm-up (and JAX compile)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="numpy,jax,torch,strict")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    n = args.passes

    rows = []
    seed_t, _ = _time(lambda: build_model(X, y, 3, num_passes=n), args.repeats)
    rows.append({"impl": "seed NumPy loop", "us_per_pass": seed_t / n * 1e6, "first_s": None})
    for name in usable_backends(args.backends):

        def fit(name: str = name) -> None:
            Network((3,), backend=name, device="cpu").fit(X, y, epochs=n, chunk_size=n)

        t, first = _time(fit, args.repeats)
        rows.append({"impl": f"xpnet {name}", "us_per_pass": t / n * 1e6, "first_s": first})

    print(f"seed 000, {n} passes, float64, {platform.node()} ({platform.processor() or 'cpu'})")
    print(f"{'implementation':<18} {'us/pass':>9} {'vs seed':>8} {'first run s':>12}")
    for r in rows:
        r["ratio_to_seed"] = r["us_per_pass"] / rows[0]["us_per_pass"]
        first = f"{r['first_s']:.2f}" if r["first_s"] is not None else "-"
        print(f"{r['impl']:<18} {r['us_per_pass']:>9.1f} {r['ratio_to_seed']:>8.2f} {first:>12}")
    if args.json:
        Path(args.json).write_text(json.dumps({"passes": n, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

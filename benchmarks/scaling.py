"""Data-parallel scaling on JAX (issue 7): strong scaling (one problem over 1, 2, 4, 8 devices) and
weak scaling (the same rows per device), time per full-batch pass.

Without a multi-device machine it runs on simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``, set here for a child process): they share
this machine's cores, so the table shows the overhead of splitting and summing, **not** a
speed-up. On a machine with several GPUs, ``--device gpu`` measures the real thing.

    python benchmarks/scaling.py [--device gpu] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np
from xpnet import Network

device, rows_strong, rows_weak, passes, counts = json.loads(sys.argv[1])

def per_pass(rows, d):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    def fit():
        net = Network((256,), activation="tanh", init="britz", backend="jax", device=device,
                      dtype="float32", data_parallel=True, devices=d)
        net.fit(X, y, epochs=passes, lr=0.1, reg=0.01, reduction="mean", chunk_size=passes,
                loss_every=passes, interruptible=False)
        return net.fit_seconds_
    fit()  # compiles
    return float(np.median([fit() for _ in range(3)])) / passes

out = []
for d in counts:
    out.append({"devices": d, "strong_s": per_pass(rows_strong, d),
                "weak_s": per_pass(rows_weak * d, d)})
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (simulated devices) or gpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows_strong, rows_weak, passes = (8192, 1024, 5) if args.quick else (65536, 8192, 10)
    env = dict(os.environ)
    counts = [1, 2, 4, 8]
    if args.device == "cpu":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    else:
        import jax

        found = len(jax.devices(args.device))
        counts = [c for c in counts if c <= found] or [1]
    setting = [args.device, rows_strong, rows_weak, passes, counts]
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(setting)], env=env,
                            capture_output=True, text=True, timeout=1800)  # fmt: skip
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    simulated = " (SIMULATED on one CPU: overhead, not speed-up)" if args.device == "cpu" else ""
    print(f"data-parallel scaling, {args.device}{simulated}; 64 -> 256 -> 3, float32, "
          f"{passes} passes a fit")  # fmt: skip
    print(f"strong: {rows_strong} rows in all; weak: {rows_weak} rows a device")
    print(
        f"{'devices':>8}{'strong ms/pass':>16}{'speed-up':>10}{'weak ms/pass':>14}{'efficiency':>12}"
    )
    base = rows[0]
    for r in rows:
        print(f"{r['devices']:>8}{r['strong_s'] * 1e3:>16.2f}{base['strong_s'] / r['strong_s']:>10.2f}"
              f"{r['weak_s'] * 1e3:>14.2f}{base['weak_s'] / r['weak_s']:>12.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "simulated": bool(simulated),
                                               "rows": rows}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()

"""What replayed loops save (issue 26, :mod:`xpnet.replay`): NumPy and PyTorch training with the
step recorded once and replayed, and with ``XPNET_REPLAY=0`` (the plain loop), interleaved in one
process with the hand-written loops of the same steps, on two small problems where the Python
between library calls is what a pass costs:

- seed 000 (moons 200 x 2, hidden 3, float64, summed gradients), per full-batch pass;
- 32-row mini-batches (moons 2000 x 2, hidden 16, float64, mean loss), per epoch (62 steps of
  32 rows, replayed, and one of 16);
- britz-gpu on the CPU (moons 5000 x 2, hidden 1000, float32, 50 passes), PyTorch against its
  native ``nn.Module`` loop: compute-bound, where replaying should change nothing.

    python benchmarks/replay.py [--quick] [--repeats 5] [--json FILE]
"""

from __future__ import annotations

from typing import Any

import britz_gpu
import numpy as np
import peers
import seed000
from common import (
    machine,
    measure_interleaved,
    repeats_of,
    save_json,
    script_parser,
    switched,
    usable_backends,
)

from xpnet import Network, datasets, replay


def _switched(run: Any, on: bool) -> Any:
    return switched(run, replay.ENV_VAR, on)


def _epoch(X: np.ndarray, y: np.ndarray, backend: str, epochs: int) -> Any:
    def run() -> float:
        net = Network((16,), activation="tanh", backend=backend)
        net.fit(X, y, epochs=epochs, batch_size=32, lr=0.05, interruptible=False)
        return float(net.fit_seconds_)

    return run


def runners(quick: bool) -> dict[str, tuple[dict[str, Any], int, str]]:
    """``{workload: ({label: run()}, passes a run, unit)}``."""
    p = seed000.problem()
    passes = 2000 if quick else 20000
    seed: dict[str, Any] = {
        "numpy loop (the seed's)": peers.numpy_loop_full(p, passes),
        "numpy clean": peers.numpy_clean_full(p, passes),
    }
    X, y = datasets.load("moons", n_samples=2000, noise=0.2, seed=0)
    epochs = 2 if quick else 10
    batches: dict[str, Any] = {}
    for name in usable_backends("numpy,torch"):
        if name == "torch":
            seed["torch manual"] = peers.torch_manual_full(p, passes)
        for on in (True, False):
            label = f"xpnet {name}, {'replayed' if on else 'plain loop'}"
            seed[label] = _switched(peers.xpnet_full(p, passes, name), on)
            batches[label] = _switched(_epoch(X, y, name, epochs), on)
    out = {"seed 000, per pass": (seed, passes, "us"),
           "32-row mini-batches, per epoch": (batches, epochs, "ms")}  # fmt: skip
    if "torch" in usable_backends("torch", "float32"):
        b, n = britz_gpu.problem(), 10 if quick else 50
        out["britz-gpu, PyTorch, per pass"] = ({
            "torch eager (nn.Module)": peers.torch_full(b, n),
            "torch manual": peers.torch_manual_full(b, n),
            "xpnet torch, replayed": _switched(peers.xpnet_full(b, n, "torch"), True),
            "xpnet torch, plain loop": _switched(peers.xpnet_full(b, n, "torch"), False),
        }, n, "ms")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = script_parser(__doc__, "fewer passes", 5).parse_args(argv)
    repeats = repeats_of(args)
    report: dict[str, Any] = {"machine": machine(), "results": {}}
    print(f"replayed loops on {machine()} (median of {repeats}, interleaved)")
    for workload, (runs, count, unit) in runners(args.quick).items():
        got = measure_interleaved(runs, repeats)
        scale = 1e6 if unit == "us" else 1e3
        times = {k: v["seconds"] / count * scale for k, v in got.items()}
        peer = next((p for p in ("numpy clean", "torch eager (nn.Module)") if p in times), None)
        base = times[peer] if peer else None
        print(f"\n== {workload}")
        print(f"{'implementation':34} {unit:>9}" + (f"  / {peer}" if peer else ""))
        for label, t in times.items():
            print(f"{label:34} {t:9.2f}" + (f"  {t / base:13.2f}" if base else ""))
        report["results"][workload] = {"unit": unit, "times": times}
    return save_json(report, args.json)


if __name__ == "__main__":
    main()

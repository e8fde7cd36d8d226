"""Workload (a): seed 000 (moons 200, hidden 3, float64, summed gradients), time per full-batch pass.

xpnet on every usable CPU backend against, in the same run: the seed's hand-written NumPy loop,
scikit-learn's ``partial_fit``, PyTorch eager and a plain ``jax.jit`` loop; the limit is the same
loop compiled from C (benchmarks/seed_loop.c, checked to compute the same weights as NumPy). On a
problem this small nothing is compute-bound: the C loop is the floor.

    python benchmarks/seed000.py [--quick] [--json FILE]
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import peers
from common import mlp_flops, usable_backends
from seed_numpy import train as seed_train

from xpnet import datasets

HERE = Path(__file__).parent


def problem(device: str = "cpu") -> peers.Problem:
    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    return peers.Problem(X, y, (3,), "float64", lr=0.01, reg=0.01, reduction="sum", device=device)


def c_loop(p: peers.Problem, passes: int, repeats: int) -> float | None:
    """Seconds per pass of benchmarks/seed_loop.c compiled with the system C compiler (median of
    ``repeats``), after checking that 500 passes of it give NumPy's weights; None (with a printed
    reason) without a compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("# C loop: left out (no C compiler on PATH)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "seed_loop"
        subprocess.run([cc, "-O3", "-march=native", "-ffast-math", "-o", str(exe), str(HERE / "seed_loop.c"),
                        "-lm"], check=True)  # fmt: skip

        def run(n_passes: int) -> tuple[float, np.ndarray]:
            n, d = p.X.shape
            head = np.array([n, d, p.hidden[0], p.k, n_passes], dtype=np.int32).tobytes()
            body = [np.array([p.lr, p.reg]), p.X, p.y.astype(np.int32)]
            body += [p.params[k] for k in ("W1", "b1", "W2", "b2")]
            blob = head + b"".join(np.ascontiguousarray(a).tobytes() for a in body)
            out = subprocess.run([str(exe)], input=blob, capture_output=True, check=True)
            values = np.array(out.stdout.split(), dtype=np.float64)
            return float(values[0]), values[1:]

        model = p.seed_model()
        seed_train(model, p.X, p.y, 500, p.lr, p.reg, print_every=0)
        want = np.concatenate([model[k].ravel() for k in ("W1", "b1", "W2", "b2")])
        got = run(500)[1]
        if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            raise SystemExit("seed_loop.c does not compute NumPy's weights")
        times = sorted(run(passes)[0] for _ in range(repeats))
        return times[len(times) // 2] / passes


def measure_workload(
    quick: bool, backends: str, repeats: int, gemm: float, device: str = "cpu"
) -> dict[str, Any]:
    """``gemm`` is unused: the limit here is the C loop (on the CPU only)."""
    p = problem(device)
    passes = 2000 if quick else 20000
    slow = passes // 10  # scikit-learn: ~4 ms a pass
    slowest = passes // 100  # array-api-strict: ~20 ms a pass
    runners: dict[str, Any] = {}
    for name in usable_backends(backends, device=device):
        count = slowest if name == "strict" else passes
        runners[f"xpnet {name}"] = (
            "xpnet",
            lambda n=name, c=count: peers.xpnet_full(p, c, n),
            count,
        )
    runners |= {
        "numpy loop": ("peer", lambda: peers.numpy_loop_full(p, passes), passes),
        "scikit-learn": ("peer", lambda: peers.sklearn_full(p, slow), slow),
        "numpy clean": ("peer", lambda: peers.numpy_clean_full(p, passes), passes),
        "torch eager": ("peer", lambda: peers.torch_full(p, passes), passes),
        "torch manual": ("peer", lambda: peers.torch_manual_full(p, passes), passes),
        "jax.jit": ("peer", lambda: peers.jax_full(p, passes), passes),
    }
    limits = {}
    c_time = c_loop(p, passes, max(repeats, 3)) if device == "cpu" else None
    if c_time is not None:
        limits["limit: C loop"] = c_time
    rows = peers.compare(runners, repeats, mlp_flops(p.n, p.sizes), limits)
    return {"name": "a: seed 000", "setting": f"moons 200x2, hidden 3, float64, {passes} passes",
            "rows": rows}  # fmt: skip


text = peers.text


def main() -> None:
    peers.script(__doc__, measure_workload, text, backends="numpy,jax,torch,strict")


if __name__ == "__main__":
    main()

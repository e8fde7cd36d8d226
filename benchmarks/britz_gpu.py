"""Workload (b): the ``britz-gpu`` recipe (moons 5000, hidden 1000, float32, mean cross-entropy),
time per full-batch pass.

xpnet on every usable CPU backend against the same peers as workload (a), in the same run; the
limit is the pass's matrix-multiply FLOPs at the GEMM peak measured in the same run (``--gemm``,
GFLOP/s; measured here when not given). On a CPU this pass is bound by tanh over 5000 x 1000
values, not by its small matrix products, so no implementation comes near that limit.

    python benchmarks/britz_gpu.py [--quick] [--json FILE]
"""

from __future__ import annotations

from typing import Any

import peers
from common import mlp_flops, usable_backends

from xpnet import datasets, recipes


def problem(device: str = "cpu") -> peers.Problem:
    r = recipes.get("britz-gpu")
    X, y = datasets.load(r.dataset, n_samples=r.n_samples, noise=r.noise, seed=r.data_seed)
    return peers.Problem(X, y, r.hidden, r.dtype, lr=r.plan.rate, reg=r.plan.reg, reduction=r.plan.reduction,
                         device=device)  # fmt: skip


def measure_workload(
    quick: bool, backends: str, repeats: int, gemm: float, device: str = "cpu"
) -> dict[str, Any]:
    p = problem(device)
    passes = 5 if quick else 50
    runners: dict[str, Any] = {
        f"xpnet {name}": ("xpnet", lambda n=name: peers.xpnet_full(p, passes, n), passes)
        for name in usable_backends(backends, p.dtype, device)
        if name != "strict"  # a test backend: ~100x slower here, it would dominate the run
    }
    runners |= {
        "numpy loop": ("peer", lambda: peers.numpy_loop_full(p, passes), passes),
        "scikit-learn": ("peer", lambda: peers.sklearn_full(p, passes), passes),
        "torch eager": ("peer", lambda: peers.torch_full(p, passes), passes),
        "torch manual": ("peer", lambda: peers.torch_manual_full(p, passes), passes),
        "jax.jit": ("peer", lambda: peers.jax_full(p, passes), passes),
    }
    flops = mlp_flops(p.n, p.sizes)
    rows = peers.compare(runners, repeats, flops, {"limit: GEMM peak": flops / gemm})
    return {"name": "b: britz-gpu", "gemm_gflops": gemm / 1e9,
            "setting": f"moons 5000x2, hidden 1000, float32, mean loss, {passes} passes",
            "rows": rows}  # fmt: skip


text = peers.text


def main() -> None:
    peers.script(__doc__, measure_workload, text)


if __name__ == "__main__":
    main()

"""Workload (c): a wide problem, 60000 x 784 inputs, hidden 256, 10 classes, float32 (synthetic
data from a seed), one full-batch pass and one epoch of 256-row mini-batches.

xpnet on every usable CPU backend against scikit-learn (``partial_fit``), PyTorch eager and plain
``jax.jit`` (and, full batch, the seed's NumPy loop), in the same run. The limit is the pass's
matrix-multiply FLOPs at the GEMM peak measured in the same run. Also reports the pass's
matrix products alone, each at the best time any library here gives its shape (what no
implementation on these libraries beats), and the peak memory of one full-batch pass against
the bytes of inputs + parameters + one pass's activations and gradients.

    python benchmarks/wide.py [--quick] [--json FILE]
"""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import numpy as np
import peers
from common import LIBRARIES, measure, measure_interleaved, mlp_flops, usable_backends

from xpnet import backends, fused, mlp, optim, scratch, train

BATCH = 256


def problem(n: int, seed: int = 0, device: str = "cpu") -> peers.Problem:
    """n rows of N(0, 1) inputs labelled by a random linear teacher (10 classes)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    y = np.argmax(X @ rng.standard_normal((784, 10), dtype=np.float32), axis=1)
    return peers.Problem(X, y, (256,), "float32", lr=0.1, reg=1e-4, reduction="mean", device=device)


def budget_bytes(p: peers.Problem) -> dict[str, int]:
    """Bytes of X and T, the parameters, one pass's activations (each layer's output) and
    gradients (each layer's delta and the parameter gradients)."""
    item = np.dtype(p.dtype).itemsize
    params = sum(v.size for v in p.params.values()) * item
    outputs = sum(p.n * s for s in p.sizes[1:]) * item
    return {"inputs": (p.X.size + p.n * p.k) * item, "params": params,
            "activations": outputs, "gradients": outputs + params}  # fmt: skip


def peak_memory(p: peers.Problem, backend: str) -> int | None:
    """Peak bytes in use during one full-batch training step on ``backend`` (CPU): NumPy's
    allocations traced by tracemalloc, plus what was in use before (inputs and parameters); for
    JAX the compiled step's own accounting (arguments + outputs + temporaries); None elsewhere."""
    be, X, T, params = p.on(backend)
    opt = optim.sgd(p.lr)
    step = train.make_step(be.xp, train.Objective(p.spec, p.reg, "mean"), opt, with_loss=True)
    carry = (params, opt.init(be.xp, params))
    before = p.X.nbytes + T.nbytes + sum(v.nbytes for v in p.params.values())
    if backend == "numpy":
        tracemalloc.start()
        step(carry, X, T)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return before + peak
    if backend == "jax":
        import jax

        stats = jax.jit(step).lower(carry, X, T).compile().memory_analysis()
        if stats is None:
            return None
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                   + stats.temp_size_in_bytes - stats.alias_size_in_bytes)  # fmt: skip
    return None


def final_loss_seconds(p: peers.Problem, backend: str, repeats: int) -> float:
    """Seconds of the forward pass for the loss after a fit's last pass, which the fit leaves
    until ``loss_curve_`` is read (not in its time)."""
    be, X, T, params = p.on(backend)
    loss = be.jit(lambda q: mlp.loss(be.xp, q, X, T, p.spec, p.reg))
    return measure(lambda: be.sync(loss(params)), repeats)["seconds"]


def product_ceiling(p: peers.Problem, repeats: int) -> dict[str, Any]:
    """Seconds of one pass's matrix products alone (the forward products, the weight gradients
    and the deltas sent back), each at the best time any library here gives its shape: the
    plain product on NumPy, PyTorch and JAX, and xpnet's kernels for it on each
    (:mod:`xpnet.fused`: the products written into memory the previous call used, as in a
    fit, where a new result faults its pages in; PyTorch's narrow layouts, JAX's split and
    transposed weight gradients). No implementation on these libraries computes the pass
    faster without a faster product. Returns ``{"products": {label: {library: seconds}},
    "seconds": the sum of each product's best}``."""
    rng = np.random.default_rng(1)
    host: dict[str, tuple[str, tuple[np.ndarray, np.ndarray]]] = {}
    for layer, (i, o) in enumerate(itertools.pairwise(p.sizes), 1):
        a, W, d = (rng.standard_normal(s, dtype=np.float32)
                   for s in ((p.n, i), (i, o), (p.n, o)))  # fmt: skip
        host[f"a{layer - 1} @ W{layer} ({p.n}x{i}x{o})"] = ("forward", (a, W))
        host[f"weight gradient {layer}"] = ("grad", (a, d))
        if layer > 1:
            host[f"delta back through W{layer}"] = ("back", (d, W))
    found: dict[str, dict[str, float]] = {label: {} for label in host}
    for library in usable_backends(",".join(LIBRARIES[p.device]), p.dtype, p.device):
        be = backends.select(library, p.device, p.dtype)
        forms = _product_forms(be.xp)
        with be.activate(), scratch.recycling(be.recycler()):
            for label, (kind, arrays) in host.items():
                args = [be.asarray(x) for x in arrays]
                for suffix, fn in forms[kind].items():
                    found[label][library + suffix] = _seconds(be, be.jit(fn), args, repeats)
    return {"products": found, "seconds": sum(min(v.values()) for v in found.values() if v)}


def _product_forms(xp: Any) -> dict[str, dict[str, Any]]:
    """Each kind of product of a pass as written plainly, and as xpnet's kernels compute it
    (the forward product ``a @ W`` as :func:`xpnet.fused.back` of ``W.T``: without the bias)."""
    kernel = " (xpnet's kernel)"
    return {
        "forward": {"": lambda a, W: a @ W, kernel: lambda a, W: fused.back(xp, a, W.T)},
        "grad": {"": lambda a, d: a.T @ d, kernel: lambda a, d: fused.weight_grad(xp, a, d)},
        "back": {"": lambda d, W: d @ W.T, kernel: lambda d, W: fused.back(xp, d, W)},
    }


def _seconds(be: backends.Backend, program: Any, args: list[Any], repeats: int) -> float:
    return measure(lambda: be.sync(program(*args)), repeats)["seconds"]


def per_training_pass(
    p: peers.Problem, passes: int, names: list[str], repeats: int
) -> dict[str, float]:
    """Seconds per full-batch pass without any cost a fit pays once (dispatch, the final
    wait, the loss before its first pass): the slope between fits of ``passes`` and ``2 * passes``
    passes, for xpnet on each backend and plain ``jax.jit``, measured in turn."""
    runs = {f"xpnet {b}": (lambda n, b=b: peers.xpnet_full(p, n, b)) for b in names}
    runs["jax.jit"] = lambda n: peers.jax_full(p, n)
    try:
        built = {f"{k}|{m}": make(m * passes) for k, make in runs.items() for m in (1, 2)}
    except (ImportError, peers.LeftOut):
        built = {f"{k}|{m}": make(m * passes) for k, make in runs.items() if k != "jax.jit"
                 for m in (1, 2)}  # fmt: skip
    t = measure_interleaved(built, repeats)
    keys = {k.split("|")[0] for k in built}
    return {k: (t[f"{k}|2"]["seconds"] - t[f"{k}|1"]["seconds"]) / passes for k in keys}


def measure_workload(
    quick: bool, backends: str, repeats: int, gemm: float, device: str = "cpu"
) -> dict[str, Any]:
    n, passes = (10000, 2) if quick else (60000, 4)
    p = problem(n, device=device)
    names = [b for b in usable_backends(backends, p.dtype, device) if b != "strict"]
    flops = mlp_flops(p.n, p.sizes)
    limit = {"limit: GEMM peak": flops / gemm}
    full: dict[str, Any] = {
        f"xpnet {b}": ("xpnet", lambda b=b: peers.xpnet_full(p, passes, b), passes) for b in names
    }
    full |= {
        "numpy loop": ("peer", lambda: peers.numpy_loop_full(p, passes), passes),
        "scikit-learn": ("peer", lambda: peers.sklearn_full(p, passes), passes),
        "numpy clean": ("peer", lambda: peers.numpy_clean_full(p, passes), passes),
        "torch eager": ("peer", lambda: peers.torch_full(p, passes), passes),
        "torch manual": ("peer", lambda: peers.torch_manual_full(p, passes), passes),
        "jax.jit": ("peer", lambda: peers.jax_full(p, passes), passes),
    }
    print("# full batch", flush=True)
    full_rows = peers.compare(full, repeats, flops, limit)
    epoch: dict[str, Any] = {
        f"xpnet {b}": ("xpnet", lambda b=b: peers.xpnet_epoch(p, BATCH, b), 1) for b in names
    }
    epoch |= {
        "scikit-learn": ("peer", lambda: peers.sklearn_epoch(p, BATCH), 1),
        "torch eager": ("peer", lambda: peers.torch_epoch(p, BATCH), 1),
        "jax.jit": ("peer", lambda: peers.jax_epoch(p, BATCH), 1),
    }
    print("# mini-batch epoch", flush=True)
    epoch_rows = peers.compare(epoch, repeats, flops, limit)
    forward = {b: final_loss_seconds(p, b, repeats) for b in names}
    steady = per_training_pass(p, passes, names, repeats)
    for r in full_rows:  # per training pass: what a fit pays once left out (slope)
        if r["impl"] in steady:
            r["seconds_steady"] = steady[r["impl"]]
    ceiling = product_ceiling(p, repeats)
    budget = budget_bytes(p)
    memory = {b: peak_memory(p, b) for b in names}
    return {
        "name": "c: wide",
        "gemm_gflops": gemm / 1e9,
        "setting": f"{n}x784 -> 256 -> 10, float32; full batch ({passes} passes a fit, the loss "
        f"recorded at the first and the last; per training pass: the slope "
        f"between fits of {passes} and {2 * passes} passes); mini-batch {BATCH}, one epoch",
        "rows": full_rows,
        "epoch_rows": epoch_rows,
        "batch": BATCH,
        "passes": passes,
        "final_loss_s": forward,
        "products": ceiling,
        "memory": {"budget": budget, "budget_total": sum(budget.values()), "peak": memory},
    }


def memory_text(result: dict[str, Any]) -> str:
    m = result["memory"]
    total = m["budget_total"]
    parts = ", ".join(f"{k} {v / 2**20:.0f}" for k, v in m["budget"].items())
    lines = [
        "loss after a fit's last pass, computed when loss_curve_ is read (one forward pass, ms; "
        "not in the fits' times above): "
        + ", ".join(f"{b} {s * 1e3:.0f}" for b, s in result["final_loss_s"].items()),
        f"per training pass (slope between fits of {result['passes']} and "
        f"{2 * result['passes']} passes):",
    ]
    peers_s = {r["impl"]: r["seconds"] for r in result["rows"]}
    steady_s = {r["impl"]: r["seconds_steady"] for r in result["rows"] if "seconds_steady" in r}
    limit, sk, jj = (
        peers_s["limit: GEMM peak"],
        peers_s.get("scikit-learn"),
        steady_s.get("jax.jit"),
    )
    for impl, steady in steady_s.items():
        vs = f", {steady / sk:.2f} x scikit-learn" if sk else ""
        vs += f", {steady / jj:.2f} x jax.jit's" if jj and impl != "jax.jit" else ""
        lines.append(f"  {impl}: {steady * 1e3:.0f} ms, {limit / steady:.1%} of the limit{vs}")
    ceiling = result.get("products")
    if ceiling:
        lines.append(f"the pass's matrix products alone, each at the best time any library here "
                     f"gives its shape: {ceiling['seconds'] * 1e3:.0f} ms, "
                     f"{limit / ceiling['seconds']:.1%} of the limit")  # fmt: skip
        for label, times in ceiling["products"].items():
            best = min(times, key=times.__getitem__)
            lines.append(
                f"  {label}: {times[best] * 1e3:.1f} ms ({best}; "
                + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in times.items())
                + ")"
            )
    lines.append(f"peak memory of one full-batch pass (MiB); budget {total / 2**20:.0f} = {parts}")
    for name, peak in m["peak"].items():
        shown = "not measured" if peak is None else f"{peak / 2**20:.0f} ({peak / total:.2f}x)"
        lines.append(f"  xpnet {name}: {shown}")
    return "\n".join(lines)


def text(result: dict[str, Any]) -> str:
    return peers.text(result) + "\n" + memory_text(result)


def main() -> None:
    peers.script(__doc__, measure_workload, text)


if __name__ == "__main__":
    main()

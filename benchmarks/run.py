"""Run every benchmark workload in one process, print one report and write it as JSON.

Workloads: (a) seed 000, (b) britz-gpu, (c) wide (full batch and mini-batch), (d) start-up. Peers
and limits are measured in the same run (the machines are shared and noisy: compare ratios, not
absolute times across runs). Writes ``benchmarks/results/<machine>-<date>.json`` and the printed
report next to it as ``.txt``; checks issue 6's targets and prints which are met.

    python benchmarks/run.py            # full run, a few minutes on 2 cores
    python benchmarks/run.py --quick    # about a minute: smaller problems, fewer repeats
    python benchmarks/run.py --device gpu --only b,c   # on a GPU: xpnet and its peers there
    nox -s bench [-- --quick]
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import io
import json
import platform
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import britz_gpu
import seed000
import startup
import wide
from common import cpu_name, gemm_peaks, machine

from xpnet import backends as xpnet_backends

RESULTS = Path(__file__).parent / "results"
WORKLOADS = {"a": seed000, "b": britz_gpu, "c": wide, "d": startup}
LIBRARIES = ["numpy", "array_api_compat", "jax", "torch", "sklearn", "array_api_strict"]


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.import_module(name).__version__
        except ImportError:
            found[name] = None
    return found


def _row(result: dict[str, Any], impl: str, rows: str = "rows") -> dict[str, Any] | None:
    return next((r for r in result.get(rows, []) if r["impl"] == impl), None)


def _check(name: str, value: float | None, goal: str, ok: bool | None) -> dict[str, Any]:
    return {"target": name, "value": value, "goal": goal, "met": ok}


def targets(results: dict[str, dict[str, Any]], device: str = "cpu") -> list[dict[str, Any]]:
    """Issue 6's targets, from this run's ratios; ``met`` is None when a part was not measured."""

    def time_of(workload: str, impl: str, rows: str = "rows") -> float | None:
        r = _row(results.get(workload, {}), impl, rows)
        return None if r is None else r["seconds"]

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    def at_least(value: float | None, bound: float) -> bool | None:
        return None if value is None else value >= bound

    out = []
    jax_a = time_of("a", "xpnet jax")
    speedup = ratio(time_of("a", "numpy loop"), jax_a)
    out.append(_check("(a) JAX speed-up over the seed's NumPy loop", speedup, ">= 15",
                      at_least(speedup, 15)))  # fmt: skip
    vs_c = ratio(jax_a, time_of("a", "limit: C loop"))
    out.append(_check("(a) JAX time / compiled C loop", vs_c, "<= 3", at_most(vs_c, 3)))
    jax_row = _row(results.get("a", {}), "xpnet jax")
    compile_s = None if jax_row is None else jax_row["compile_s"]
    out.append(_check("(a) JAX compile seconds", compile_s, "< 0.5", at_most(compile_s, 0.5)))
    numpy_a = ratio(time_of("a", "xpnet numpy"), time_of("a", "numpy loop"))
    out.append(_check("(a) NumPy backend / seed's NumPy loop (6, 14)", numpy_a, "<= 1",
                      at_most(numpy_a, 1.0)))  # fmt: skip
    share = ratio(time_of("c", "limit: GEMM peak"), time_of("c", "xpnet jax"))
    out.append(_check("(c) full batch: JAX share of the GEMM limit", share, ">= 0.85",
                      at_least(share, 0.85)))  # fmt: skip
    for backend in ("numpy", "torch"):
        r = ratio(time_of("c", f"xpnet {backend}"), time_of("c", "scikit-learn"))
        out.append(_check(f"(c) full batch: {backend} / scikit-learn", r, "<= 1", at_most(r, 1)))
    steady = {r["impl"]: r["seconds_steady"] for r in results.get("c", {}).get("rows", [])
              if "seconds_steady" in r}  # fmt: skip
    share = ratio(time_of("c", "limit: GEMM peak"), steady.get("xpnet jax"))
    out.append(_check("(c) per training pass: JAX share of the limit", share, ">= 0.85",
                      at_least(share, 0.85)))  # fmt: skip
    for backend in ("numpy", "torch"):
        r = ratio(steady.get(f"xpnet {backend}"), time_of("c", "scikit-learn"))
        out.append(_check(f"(c) per training pass: {backend} / scikit-learn", r, "<= 1",
                          at_most(r, 1)))  # fmt: skip
    r = ratio(steady.get("xpnet jax"), steady.get("jax.jit"))
    out.append(_check("(c) per training pass: JAX / plain jax.jit (14)", r, "<= 1.05",
                      at_most(r, 1.05)))  # fmt: skip
    r = ratio(time_of("c", "xpnet jax", "epoch_rows"), time_of("c", "jax.jit", "epoch_rows"))
    out.append(_check("(c) mini-batch: JAX / plain jax.jit", r, "<= 1", at_most(r, 1)))
    r = ratio(time_of("c", "xpnet numpy", "epoch_rows"), time_of("c", "scikit-learn", "epoch_rows"))
    out.append(_check("(c) mini-batch: NumPy / scikit-learn", r, "<= 1", at_most(r, 1)))
    for key, name in (("b", "britz-gpu"), ("c", "wide")):
        for backend in ("jax", "cupy"):
            share = ratio(time_of(key, "limit: GEMM peak"), time_of(key, f"xpnet {backend}"))
            if share is not None and device == "gpu":
                out.append(_check(f"({key}) GPU: {backend} share of the GEMM peak ({name})",
                                  share, ">= 0.5", at_least(share, 0.5)))  # fmt: skip
    memory = results.get("c", {}).get("memory")
    if memory:
        for backend, peak in memory["peak"].items():
            r = None if peak is None else peak / memory["budget_total"]
            out.append(_check(f"(c) peak memory, {backend} / budget", r, "<= 1.5", at_most(r, 1.5)))
    # issue 26: PyTorch at native PyTorch's speed, JAX past plain jax.jit, NumPy at a clean loop's
    for key, rows, what in (("c", "rows", "wide full batch"), ("c", "epoch_rows", "wide mini-batch"),
                            ("b", "rows", "britz-gpu")):  # fmt: skip
        r = ratio(time_of(key, "xpnet torch", rows), time_of(key, "torch eager", rows))
        out.append(_check(f"({key}) torch / native nn.Module loop, {what} (26)", r, "<= 1",
                          at_most(r, 1)))  # fmt: skip
    r = ratio(time_of("c", "xpnet torch"), time_of("c", "torch manual"))
    out.append(_check("(c) torch / hand-written torch loop (26)", r, "<= 1 (not asked)",
                      at_most(r, 1)))  # fmt: skip
    r = ratio(time_of("a", "xpnet torch"), time_of("a", "numpy loop"))
    out.append(_check("(a) torch / seed's NumPy loop (26)", r, "<= 1", at_most(r, 1)))
    r = ratio(time_of("a", "xpnet numpy"), time_of("a", "numpy clean"))
    out.append(_check("(a) NumPy backend / clean NumPy loop (26)", r, "<= 1", at_most(r, 1)))
    r = ratio(time_of("a", "xpnet jax"), time_of("a", "jax.jit"))
    out.append(_check("(a) JAX / plain jax.jit (26)", r, "<= 1.05", at_most(r, 1.05)))
    share = ratio(time_of("c", "limit: GEMM peak"), time_of("c", "xpnet jax"))
    out.append(_check("(c) JAX per fit (loss reported): share of the GEMM limit (26)", share,
                      ">= 0.8", at_least(share, 0.8)))  # fmt: skip
    r = ratio(steady.get("xpnet jax"), steady.get("jax.jit"))
    out.append(_check("(c) per training pass: JAX / plain jax.jit (26)", r, "<= 0.9",
                      at_most(r, 0.9)))  # fmt: skip
    if memory and memory["peak"].get("numpy") is not None:
        r = memory["peak"]["numpy"] / memory["budget_total"]
        out.append(_check("(c) peak memory, numpy / budget (26)", r, "<= 1.15", at_most(r, 1.15)))
    d = {r["impl"]: r["seconds"] for r in results.get("d", {}).get("rows", [])}
    r = ratio(d.get("import xpnet"), d.get("import numpy"))
    out.append(_check("(d) import xpnet / import numpy", r, "<= 1.3", at_most(r, 1.3)))
    r = ratio(d.get("from xpnet import Network"), d.get("import numpy"))
    out.append(_check("(d) from xpnet import Network / import numpy", r, "<= 1.3 (not asked)",
                      at_most(r, 1.3)))  # fmt: skip
    out.append(_check("(d) xpnet --help seconds", d.get("xpnet --help"), "< 0.5",
                      at_most(d.get("xpnet --help"), 0.5)))  # fmt: skip
    return out


def report(meta: dict[str, Any], results: dict[str, dict[str, Any]], checks: list[Any]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        print(f"xpnet benchmarks, {meta['date']}, {meta['machine']} ({meta['cpu']}, "
              f"{meta['cores']} cores){' --quick' if meta['quick'] else ''}")  # fmt: skip
        print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v))
        gemm = ", ".join(f"{dt} " + " ".join(f"{lib} {v:.1f}" for lib, v in libs.items())
                         for dt, libs in meta["gemm_gflops"].items())  # fmt: skip
        print(f"GEMM peak, GFLOP/s ({meta['gemm_size']}^3): {gemm}")
        print(f"float32 matrix products: {meta.get('precision', 'highest')} (xpnet, peers and "
              "GEMM peak alike)")  # fmt: skip
        print("columns: ms per pass (epoch), compile seconds (first run minus median), GFLOP/s of "
              "the pass's matrix products, share of the limit reached, time / each peer's time "
              "(< 1: faster)")  # fmt: skip
        for key, result in results.items():
            print(f"\n== ({key}) {result['name'][3:]}: {result['setting']}")
            print(WORKLOADS[key].text(result))
        print("\n== targets (issue 6; (14), (26): issues 14's and 26's), from this run's ratios")
        for c in checks:
            value = "-" if c["value"] is None else f"{c['value']:.3g}"
            met = {True: "met", False: "NOT MET", None: "not measured"}[c["met"]]
            print(f"{c['target']:<52}{value:>9}  {c['goal']:<20}{met}")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute: smaller problems")
    parser.add_argument("--repeats", type=int, help="timed runs after the warm-up (default 3, "
                        "quick 1)")  # fmt: skip
    parser.add_argument("--backends", default="numpy,jax,torch,strict,cupy",
                        help="xpnet backends to time (those usable on --device)")  # fmt: skip
    parser.add_argument("--only", default="a,b,c,d", help="workloads to run, e.g. a,d")
    parser.add_argument("--device", default="cpu", help="cpu, or gpu: xpnet and its peers there "
                        "against the GPU's own GEMM peak")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and text")
    parser.add_argument("--precision", choices=xpnet_backends.PRECISIONS, help="float32 matrix "
                        "products of xpnet, its peers and the GEMM peak alike (default: highest; "
                        "high: TF32 figures, reported as such)")  # fmt: skip
    args = parser.parse_args()
    xpnet_backends.set_precision(args.precision)
    repeats = args.repeats or (1 if args.quick else 3)
    only = set(args.only.split(","))
    size = 1024 if args.quick else 2048
    print("# GEMM peaks", flush=True)
    gemm = gemm_peaks(size, args.device, only=args.backends.split(","))
    if not gemm["float32"]:
        raise SystemExit(f"no library reaches the {args.device} here")
    f32 = max(gemm["float32"].values()) * 1e9
    gpu = args.device != "cpu"
    backends = ",".join(
        b for b in args.backends.split(",") if not gpu or b not in ("numpy", "strict")
    )
    meta = {"date": datetime.date.today().isoformat(), "machine": machine(), "cpu": cpu_name(),
            "cores": __import__("os").cpu_count(), "quick": args.quick, "repeats": repeats,
            "versions": versions(), "gemm_size": size, "gemm_gflops": gemm,
            "device": args.device, "precision": xpnet_backends.precision()}  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    for key, module in WORKLOADS.items():
        if key in only and key != "d":
            print(f"# ({key}) {module.__name__}", flush=True)
            results[key] = module.measure_workload(args.quick, backends, repeats, f32, args.device)
    if "d" in only:  # start-up: no backends, its own repeats
        print("# (d) startup", flush=True)
        results["d"] = startup.measure_workload(7 if args.quick else 15)
    checks = targets(results, args.device)
    text = report(meta, results, checks)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    where = f"-{args.device}" if gpu else ""
    stem = f"{meta['machine']}-{meta['date']}{where}{'-quick' if args.quick else ''}"
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "workloads": results, "targets": checks}, indent=1) + "\n"
    )
    (args.out / f"{stem}.txt").write_text(text)
    print(f"wrote {args.out / stem}.json and .txt")


if __name__ == "__main__":
    main()

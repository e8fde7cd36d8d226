"""The GPU check: what xpnet's CUDA paths do on a real GPU, in one offline run of under 8 minutes.

On a CUDA machine where CuPy, JAX with CUDA and PyTorch are already installed (no network, no nox),
from a checkout:

    PYTHONPATH=src python benchmarks/gpu.py            # writes benchmarks/results/<gpu>-<date>-gpu.*

1. finds which GPU backends work here (each probed in a subprocess with a timeout);
2. runs the test matrix on each of them (``XPNET_TEST_BACKENDS=<name> XPNET_TEST_DEVICE=gpu``,
   ``XPNET_TEST_REQUIRE_DEVICE=1``: a backend that cannot reach the GPU fails instead of
   skipping), which includes streaming (tests/test_stream.py, prefetching by default on a GPU)
   and data-parallel training over every GPU of the machine (tests/test_data_parallel.py);
3. times the GPU workloads with the benchmark runner (``benchmarks/run.py --device gpu --only
   b,c``): seed 000's GPU sequel (moons 5000, hidden 1000, float32) and the wide problem (60000 x
   784 -> 256 -> 10, float32, full batch and mini-batch), xpnet on each GPU backend beside
   PyTorch eager and plain ``jax.jit`` on the same GPU, against the GPU's own GEMM peak measured
   in the same run;
4. writes the test results to ``benchmarks/results/<gpu>-<date>-gpu.json`` (the runner writes
   its own report beside it).

Without a usable CUDA device it says so in one line and exits with status 1. Each step has a
time limit; ``--minutes`` sets the whole run's (default 8).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GPU_BACKENDS = ("cupy", "jax", "torch")

PROBE = r"""
import json, sys
name = sys.argv[1]
try:
    from xpnet import backends
    b = backends.select(name, "gpu", "float32")
    if not b.is_accelerator:
        raise RuntimeError(f"landed on {b.device_label}")
    a = b.asarray([[1.0, 2.0], [3.0, 4.0]])
    total = float(b.to_numpy(b.xp.sum(a @ a)))
    assert total == 54.0, total
    info = {"usable": True, "device": b.device_label, "version": b.version}
except Exception as exc:  # one line: why not
    info = {"usable": False, "why": (str(exc).strip().splitlines() or [type(exc).__name__])[0]}
print(json.dumps(info))
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # several processes share the GPU
    env.pop("XPNET_BACKEND", None)
    env.update(extra)
    return env


def _python(code: str, *args: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run ``code`` in a fresh interpreter; its last stdout line as JSON (None on failure) and
    one line saying what went wrong."""
    try:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              env=_env(), timeout=timeout, cwd=ROOT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"exit {done.returncode}: {tail}"
    return json.loads(lines[-1]), ""


def _pytest(backend: str, timeout: float) -> dict[str, Any]:
    """The test matrix on ``backend`` on the GPU; counts, seconds and the failures' names."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    try:
        import xdist  # noqa: F401  (the GPU image has it: the matrix runs 8 at a time)

        args += ["-n", "8"]
    except ImportError:
        pass
    env = _env(XPNET_TEST_BACKENDS=backend, XPNET_TEST_DEVICE="gpu", XPNET_TEST_REQUIRE_DEVICE="1")
    start = time.perf_counter()
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=ROOT)  # fmt: skip
        text = done.stdout + done.stderr
        status = "passed" if done.returncode == 0 else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        status = f"timed out after {timeout:.0f} s"
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)",
                                                 text.splitlines()[-1] if text else "")}  # fmt: skip
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    return {"backend": backend, "status": status, "seconds": time.perf_counter() - start,
            "counts": counts, "failures": failures[:50], "tail": text[-3000:]}  # fmt: skip


def _gpu_name() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        name = done.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        name = "gpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "gpu"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="the whole run's time limit")
    parser.add_argument("--skip-tests", action="store_true", help="timings only")
    parser.add_argument("--quick", action="store_true", help="smaller timing problems")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    probes = {}
    for name in GPU_BACKENDS:
        info, why = _python(PROBE, name, timeout=120)
        probes[name] = info or {"usable": False, "why": why}
    usable = [n for n in GPU_BACKENDS if probes[n]["usable"]]
    if not usable:
        reasons = "; ".join(f"{n}: {probes[n]['why']}" for n in GPU_BACKENDS)
        print(f"gpu check: no CUDA device usable here ({reasons})", file=sys.stderr)
        return 1
    found = ", ".join(f"{n} on {probes[n]['device']}" for n in usable)
    print(f"gpu check: {found}", flush=True)
    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "python": sys.version.split()[0],
        "probes": probes,
        "tests": [],
        "timings": {},
    }
    reserve = 180.0  # seconds kept for the timings
    for i, name in enumerate(usable if not args.skip_tests else []):
        left = deadline - time.monotonic() - reserve
        budget = max(left / (len(usable) - i), 30.0)
        result = _pytest(name, budget)
        report["tests"].append(result)
        print(f"  tests {name}: {result['status']}, {result['counts']}, "
              f"{result['seconds']:.0f} s", flush=True)  # fmt: skip
        for failure in result["failures"][:10]:
            print(f"    {failure}")
    left = max(deadline - time.monotonic(), 60.0)
    bench = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--device", "gpu", "--only",
             "b,c", "--backends", ",".join(usable), "--out", str(args.out)]  # fmt: skip
    if args.quick:
        bench.append("--quick")
    try:
        done = subprocess.run(bench, capture_output=True, text=True, env=_env(), timeout=left,
                              cwd=ROOT)  # fmt: skip
        report["timings"] = {"status": done.returncode, "report": done.stdout[-6000:],
                             "errors": done.stderr[-3000:]}  # fmt: skip
        shares = [ln for ln in done.stdout.splitlines() if "GPU:" in ln or "wrote" in ln]
        print("\n".join(f"  {ln}" for ln in shares) or f"  timings: exit {done.returncode}")
    except subprocess.TimeoutExpired:
        report["timings"] = {"status": "timed out", "seconds": left}
        print(f"  timings: timed out after {left:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{_gpu_name()}-{report['date']}-gpu"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {stem.with_suffix('.json')}")
    failed = any(t["status"] != "passed" for t in report["tests"])
    return 1 if failed or report["timings"].get("status") != 0 else 0


if __name__ == "__main__":
    sys.exit(main())

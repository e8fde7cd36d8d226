"""The GPU check: what xpnet's CUDA paths do on a real GPU, in one offline run.

On a CUDA machine where CuPy, JAX with CUDA and PyTorch are already installed (no network, no nox),
from a checkout:

    PYTHONPATH=src python benchmarks/gpu.py --out DIR      # everything it finds goes under DIR

A GPU machine without network usually lacks ``array-api-compat`` (xpnet needs it for CuPy,
PyTorch and the NumPy reference). Carry its wheel beside the checkout and install it into a
folder of its own, in one command, before the check:

    pip install --no-index --find-links wheels --target deps array-api-compat && \\
        PYTHONPATH=src:deps python benchmarks/gpu.py --out DIR

(``pip download array-api-compat -d wheels`` on any machine with the package index makes the
``wheels`` folder.) Without it the check says exactly that and stops.

The sequence, each step within its share of ``--minutes`` (default 8):

1. **dependencies**: NumPy, array-api-compat and pytest importable here;
2. **probes**: each GPU library (cupy, jax, torch) in a subprocess with a timeout: a library that
   fails says why, as that library's failure;
3. **tests**, per usable library, in order of what they prove: the shared gradient matrix, then
   the GPU-specific tests (backends, streaming, programs), then the engine and the estimators,
   the long command-line tests last, each group while time is left (workers in parallel with
   pytest-xdist on a many-core machine); ``XPNET_TEST_REQUIRE_DEVICE=1``: a library that cannot
   reach the device fails instead of skipping. Each group's whole log is kept under
   ``DIR/logs/``, and the failures are named;
4. **streaming**: a device-heavy streamed epoch (many blocks, the next sent while the current
   trains) against the same epoch with the data resident: equal to 1e-12 in float64;
5. **timings**: ``benchmarks/run.py --device DEVICE`` on the usable libraries (a library that
   fails is reported and the others measured);
6. ``DIR/<machine>-<date>-gpu.json`` holds it all.

``--device cpu`` performs the whole sequence on the CPU as a dry run (the tests' quick subset
with ``--quick``); the default test run does so (tests/test_gpu_check.py). One GPU shows
multi-GPU code nothing beyond one device: data-parallel runs over the devices present.
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
NEEDED = ("numpy", "array_api_compat", "pytest")
"""What the check needs besides the GPU libraries (array_api_compat: xpnet's CuPy and PyTorch
namespaces and the NumPy reference; pytest: the test matrix)."""
OFFLINE = ("pip install --no-index --find-links wheels --target deps array-api-compat && "
           "PYTHONPATH=src:deps python benchmarks/gpu.py")  # fmt: skip
"""The one command that prepares a machine without network (see the module docstring)."""
GROUPS = [
    ("matrix", ["tests/test_mlp.py", "tests/test_oracle.py", "tests/test_weights.py",
                "tests/test_numerics.py"]),
    ("device", ["tests/test_backends.py", "tests/test_stream.py", "tests/test_train.py",
                "tests/test_optim.py"]),
    ("engine", ["tests/test_engine.py", "tests/test_data_parallel.py", "tests/test_lbfgs.py",
                "tests/test_estimators.py", "tests/test_sklearn_dropin.py",
                "tests/test_settings.py"]),
    ("cli", ["tests/test_seeds.py", "tests/test_recipes.py", "tests/test_cli.py",
             "tests/test_cli_commands.py", "tests/test_reliability.py"]),
]  # fmt: skip
"""The test groups in the order they run: what the GPU must prove first comes first."""
QUICK = ("matrix", "-k", "2x2 and tanh and mean and float64")
"""``--quick``: the one group and the subset of it a dry run takes."""

PROBE = r"""
import json, sys
name, device, need_accelerator = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
try:
    from xpnet import backends
    b = backends.select(name, device, "float32")
    if need_accelerator and not b.is_accelerator:
        raise RuntimeError(f"landed on {b.device_label}")
    a = b.asarray([[1.0, 2.0], [3.0, 4.0]])
    total = float(b.to_numpy(b.xp.sum(a @ a)))
    assert total == 54.0, total
    info = {"usable": True, "device": b.device_label, "version": b.version}
except ModuleNotFoundError as exc:  # a dependency, named as such
    info = {"usable": False, "why": f"missing dependency: {exc.name} is not installed"}
except Exception as exc:  # one line: why not
    first = (str(exc).strip().splitlines() or [""])[0]
    info = {"usable": False, "why": f"{type(exc).__name__}: {first}" if first else type(exc).__name__}
print(json.dumps(info))
"""

STREAM = r"""
import json, sys
import numpy as np
from xpnet import backends, data, engine, feeds, init, mlp, optim, train
from xpnet.run import Run
name, device, rows, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
b = backends.select(name, device, "float64")
rng = np.random.RandomState(0)
X = rng.standard_normal((rows, width))
T = data.one_hot((X[:, 0] + X[:, 1] > 0).astype(int), 2)
spec = mlp.Spec((width, 512, 2), "tanh")
params = init.initial_params(spec, "glorot", 0)
out = {}
for streamed in (False, True):  # many blocks of 1 MiB, two sent ahead while one trains
    run = Run.start(b, train.Objective(spec), optim.adam(1e-3), params)
    feed = feeds.Batches(b, X, T, 256, rng=np.random.RandomState(1), stream=streamed,
                         budget=1 << 20, prefetch=2)
    engine.fit(run, feed, epochs=2)
    out[streamed] = run.host_params()
worst = max(float(np.max(np.abs(out[True][k] - out[False][k])) / np.abs(out[False][k]).max())
            for k in out[False])
print(json.dumps({"max_rel_diff": worst, "rows": rows, "width": width}))
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


def missing_dependencies() -> list[str]:
    """The packages of :data:`NEEDED` the interpreter that runs the checks cannot import."""
    code = ("import importlib, json, sys\nmissing = []\nfor n in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module(n)\n    except ImportError:\n        missing.append(n)\n"
            "print(json.dumps(missing))")  # fmt: skip
    found, _ = _python(code, *NEEDED, timeout=60)
    return list(NEEDED) if found is None else list(found)  # type: ignore[arg-type]


def _workers() -> list[str]:
    """pytest-xdist's workers where it is installed and the machine has cores to spare."""
    try:
        import xdist  # noqa: F401
    except ImportError:
        return []
    cores = os.cpu_count() or 1
    return ["-n", str(min(8, cores // 2))] if cores >= 4 else []


def _pytest(backend: str, device: str, group: str, files: list[str], select: list[str],
            timeout: float, logs: Path) -> dict[str, Any]:  # fmt: skip
    """One test group on ``backend`` on ``device``: counts, seconds, the failures' names; the
    whole log in ``logs``."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, *select,
            *_workers()]  # fmt: skip
    env = _env(XPNET_TEST_BACKENDS=backend, XPNET_TEST_DEVICE=device,
               XPNET_TEST_REQUIRE_DEVICE="1")  # fmt: skip
    start = time.perf_counter()
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=ROOT)  # fmt: skip
        text = done.stdout + done.stderr
        ok = done.returncode in (0, 5)  # 5: nothing selected in this group
        status = "passed" if ok else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        text = out.decode() if isinstance(out, bytes) else out
        status = f"timed out after {timeout:.0f} s"
    log = logs / f"tests-{backend}-{group}.log"
    log.write_text(text)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    counts = {k: int(v) for v, k in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|deselected)", last)}  # fmt: skip
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    return {"backend": backend, "group": group, "status": status,
            "seconds": time.perf_counter() - start, "counts": counts, "failures": failures,
            "log": str(log)}  # fmt: skip


def _machine_name(device: str) -> str:
    if device == "cpu":
        return "cpu"
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        name = done.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        name = "gpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "gpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="gpu", help="gpu (default), or cpu: a dry run")
    parser.add_argument("--minutes", type=float, default=8.0, help="the whole run's time limit")
    parser.add_argument("--skip-tests", action="store_true", help="timings only")
    parser.add_argument("--quick", action="store_true",
                        help="the first test group's subset, small problems (a dry run)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for everything")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    logs = args.out / "logs"
    gpu = args.device != "cpu"

    missing = missing_dependencies()
    if missing:
        print(f"gpu check: missing dependency: {', '.join(missing)} not installed here (xpnet "
              f"needs it before any GPU can be tried); offline: {OFFLINE}", file=sys.stderr)  # fmt: skip
        return 1
    probes = {}
    for name in GPU_BACKENDS:
        info, why = _python(PROBE, name, args.device, "1" if gpu else "0", timeout=180)
        probes[name] = info or {"usable": False, "why": why}
        state = probes[name].get("device") if probes[name]["usable"] else probes[name]["why"]
        print(f"  probe {name}: {state}", flush=True)
    usable = [n for n in GPU_BACKENDS if probes[n]["usable"]]
    if not usable:
        reasons = "; ".join(f"{n}: {probes[n]['why']}" for n in GPU_BACKENDS)
        where = "no CUDA device usable here" if gpu else "no library usable on the cpu"
        print(f"gpu check: {where} ({reasons})", file=sys.stderr)
        return 1
    print(f"gpu check on {args.device}: " + ", ".join(f"{n} on {probes[n]['device']}"
                                                      for n in usable), flush=True)  # fmt: skip
    logs.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"date": datetime.date.today().isoformat(), "device": args.device,
                              "python": sys.version.split()[0], "probes": probes, "tests": [],
                              "stream": {}, "timings": {}}  # fmt: skip
    reserve = 60.0 if args.quick else 180.0  # seconds kept for the streaming check and timings
    groups = [(QUICK[0], dict(GROUPS)[QUICK[0]], list(QUICK[1:]))] if args.quick else [
        (g, files, []) for g, files in GROUPS]  # fmt: skip
    for i, name in enumerate(usable if not args.skip_tests else []):
        for group, files, select in groups:
            left = deadline - time.monotonic() - reserve
            budget = left / (len(usable) - i)
            if budget < 20:
                report["tests"].append({"backend": name, "group": group, "status": "not run: no "
                                        "time left", "failures": []})  # fmt: skip
                continue
            result = _pytest(name, args.device, group, files, select, budget, logs)
            report["tests"].append(result)
            print(f"  tests {name} {group}: {result['status']}, {result['counts']}, "
                  f"{result['seconds']:.0f} s (log {result['log']})", flush=True)  # fmt: skip
            for failure in result["failures"][:10]:
                print(f"    {failure}")
    rows, width = (4096, 64) if args.quick else (200_000, 256)
    for name in usable:
        found, why = _python(STREAM, name, args.device, str(rows), str(width),
                             timeout=max(deadline - time.monotonic() - reserve / 2, 60))  # fmt: skip
        report["stream"][name] = found or {"error": why}
        shown = f"max relative difference {found['max_rel_diff']:.2e}" if found else why
        print(f"  streamed vs resident {name}: {shown}", flush=True)
    left = max(deadline - time.monotonic(), 60.0)
    bench = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--device", args.device,
             "--only", "b" if args.quick else "b,c", "--backends", ",".join(usable),
             "--out", str(args.out)]  # fmt: skip
    if args.quick:
        bench += ["--quick", "--repeats", "1"]
    try:
        done = subprocess.run(bench, capture_output=True, text=True, env=_env(), timeout=left,
                              cwd=ROOT)  # fmt: skip
        (logs / "timings.log").write_text(done.stdout + done.stderr)
        report["timings"] = {"status": done.returncode, "log": str(logs / "timings.log")}
        shares = [ln for ln in done.stdout.splitlines() if "GPU:" in ln or "wrote" in ln
                  or "failed" in ln]  # fmt: skip
        print("\n".join(f"  {ln}" for ln in shares) or f"  timings: exit {done.returncode}")
    except subprocess.TimeoutExpired:
        report["timings"] = {"status": "timed out", "seconds": left}
        print(f"  timings: timed out after {left:.0f} s")
    stem = args.out / f"{_machine_name(args.device)}-{report['date']}-gpu"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {stem.with_suffix('.json')}")
    failed = any(t["status"] != "passed" for t in report["tests"])
    drift = any("max_rel_diff" not in s or s["max_rel_diff"] > 1e-12
                for s in report["stream"].values())  # fmt: skip
    return 1 if failed or drift or report["timings"].get("status") != 0 else 0


if __name__ == "__main__":
    sys.exit(main())

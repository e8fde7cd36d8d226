"""The benchmarks measure what they claim: peers and limits compute xpnet's pass, the FLOP count
is right, and the runner works from a checkout (a short run, no timing asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    import common
    import peers
    import seed000
    import seed_numpy

    yield common, peers, seed000, seed_numpy
    sys.path.remove(str(BENCH))


def test_flops_count_the_matrix_products(bench):
    common = bench[0]
    # forward 2*n*(2*3 + 3*2), dW 2*n*(2*3 + 3*2), delta sent back 2*n*3*2 (not to the input)
    assert common.mlp_flops(200, (2, 3, 2)) == 2 * 200 * 12 + 2 * 200 * 12 + 2 * 200 * 6


def test_the_seeds_loop_and_xpnet_take_the_same_steps(bench):
    _, _, seed000, seed_numpy = bench
    from xpnet import Network

    p = seed000.problem()
    model = p.seed_model()
    seed_numpy.train(model, p.X, p.y, 300, p.lr, p.reg, print_every=0)
    net = Network(p.hidden, activation="tanh", init="britz", backend="numpy")
    net.fit(p.X, p.y, epochs=300, lr=p.lr, reg=p.reg, reduction=p.reduction)
    for k, v in net.params_.items():
        np.testing.assert_allclose(model[k].ravel(), v.ravel(), rtol=1e-12, atol=1e-15)


def _same_steps_as_the_seed(bench, peer):
    _, peers, seed000, seed_numpy = bench
    p = seed000.problem()
    model = p.seed_model()
    seed_numpy.train(model, p.X, p.y, 300, p.lr, p.reg, print_every=0)
    kept: dict = {}
    getattr(peers, peer)(p, 300, keep=kept)()
    assert set(kept) == set(model)
    for k, v in kept.items():
        np.testing.assert_allclose(np.ravel(v), model[k].ravel(), rtol=1e-10, atol=1e-13)


def test_the_clean_numpy_loop_takes_the_seeds_steps(bench):
    _same_steps_as_the_seed(bench, "numpy_clean_full")


@pytest.mark.only_backend("torch")
def test_the_hand_written_torch_loop_takes_the_seeds_steps(bench, backend_name, make_backend):
    make_backend("float64")
    _same_steps_as_the_seed(bench, "torch_manual_full")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_the_c_loop_computes_numpys_weights(bench):
    seed000 = bench[2]
    # c_loop compiles seed_loop.c, checks 500 passes against NumPy (else SystemExit), then times
    assert seed000.c_loop(seed000.problem(), passes=100, repeats=1) > 0


def test_the_runner_writes_a_report(tmp_path):
    out = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--only", "a", "--backends", "numpy",
         "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    assert "== targets (issue 6;" in out.stdout
    (report,) = tmp_path.glob("*-quick.json")
    data = json.loads(report.read_text())
    rows = {r["impl"]: r for r in data["workloads"]["a"]["rows"]}
    assert {"xpnet numpy", "numpy loop", "scikit-learn"} <= set(rows)
    assert all(r["seconds"] > 0 for r in rows.values())
    assert rows["numpy loop"]["vs"]["numpy loop"] == 1.0
    assert any(t["target"].startswith("(a) NumPy backend") for t in data["targets"])


def test_the_scratch_benchmark_compares_recycling_with_its_peers(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / "scratch.py"), "--quick", "--json",
                          str(tmp_path / "s.json")],
                         capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    data = json.loads((tmp_path / "s.json").read_text())
    times, faults = data["ms_per_pass"], data["mib_faulted_per_pass"]
    assert {"numpy clean", "xpnet numpy, recycled", "xpnet numpy, made anew"} <= set(times)
    assert all(t > 0 for t in times.values()) and all(f >= 0 for f in faults.values())
    assert "xpnet numpy, recycled" in out.stdout


def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu(tmp_path):
    """Where no backend reaches a CUDA device (this CI machine), benchmarks/gpu.py exits 1 with
    one line naming each backend's reason: no traceback, no hang; each library's probe says
    why it failed, as that library's."""
    out = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    if out.returncode == 0 or "gpu check: no CUDA device" not in out.stderr:
        pytest.skip(f"a GPU is usable here: {out.stdout.splitlines()[:1]}")
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert all(f"{name}: " in out.stderr for name in ("cupy", "jax", "torch"))
    probes = [ln for ln in out.stdout.splitlines() if ln.startswith("  probe ")]
    assert [ln.split(":")[0] for ln in probes] == ["  probe cupy", "  probe jax", "  probe torch"]
    assert not any(tmp_path.iterdir())  # nothing written: nothing was run


def test_the_gpu_check_names_a_missing_dependency_and_the_offline_command(tmp_path):
    """A GPU machine without network typically lacks array-api-compat: the check says so, and
    the one command that prepares it, before trying any GPU."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['array_api_compat'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(shim)}
    out = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert out.returncode == 1
    line = out.stderr.strip()
    assert line.startswith("gpu check: missing dependency: array_api_compat not installed here")
    assert "pip install --no-index --find-links wheels --target deps array-api-compat" in line
    assert "\n" not in line


def test_the_gpu_check_runs_its_whole_sequence_on_the_cpu(tmp_path):
    """``--device cpu --quick``: probes, the matrix subset, the streaming check and the
    timings, as a dry run of what a GPU machine runs; everything under --out."""
    out = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--device", "cpu", "--quick",
                          "--minutes", "6", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (report,) = tmp_path.glob("*-gpu.json")
    data = json.loads(report.read_text())
    usable = [n for n, p in data["probes"].items() if p["usable"]]
    assert usable and set(data["probes"]) == {"cupy", "jax", "torch"}
    assert all(t["status"] == "passed" and t["counts"].get("passed") for t in data["tests"])
    assert {t["backend"] for t in data["tests"]} == set(usable)
    assert all(data["stream"][n]["max_rel_diff"] <= 1e-12 for n in usable)
    assert data["timings"]["status"] == 0
    logs = {p.name for p in (tmp_path / "logs").iterdir()}
    assert {f"tests-{n}-matrix.log" for n in usable} | {"timings.log"} <= logs


@pytest.mark.parametrize("asked", ["highest", "high"])
def test_the_peers_run_at_the_precision_xpnet_runs_at(bench, asked):
    """A GPU's default would give the plain loops TF32 and xpnet full float32: the peers run
    inside the same precision (issue 27), so one run compares one precision."""
    jax = pytest.importorskip("jax")
    from xpnet import backends

    peers = bench[1]
    p = peers.Problem(np.zeros((4, 2)), np.array([0, 1, 0, 1]), (3,), "float32", 0.1, 0.0)
    with backends.using_precision(asked), peers._precise("jax", p):
        assert jax.config.jax_default_matmul_precision == asked

"""The benchmarks measure what they claim: peers and limits compute xpnet's pass, the FLOP count
is right, and the runner works from a checkout (a short run, no timing asserted)."""

from __future__ import annotations

import json
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


def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu():
    """Where no backend reaches a CUDA device (this CI machine), benchmarks/gpu.py exits 1 with
    one line naming each backend's reason: no traceback, no hang."""
    out = subprocess.run([sys.executable, str(BENCH / "gpu.py")], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    if out.returncode == 0 or "gpu check: no CUDA device" not in out.stderr:
        pytest.skip(f"a GPU is usable here: {out.stdout.splitlines()[:1]}")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert all(f"{name}: " in out.stderr for name in ("cupy", "jax", "torch"))

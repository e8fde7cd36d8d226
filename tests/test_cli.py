"""The command line, run as a user runs it: a subprocess, its output and exit status."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from helpers import xpnet
from xpnet import Network, backends


def test_train_prints_the_seed_log_and_accuracy(backend_name, make_backend, tmp_path):
    make_backend("float64")  # skips where the backend is unusable
    metrics = tmp_path / "m.json"
    device = (
        ["--device", os.environ["XPNET_TEST_DEVICE"]] if os.environ.get("XPNET_TEST_DEVICE") else []
    )
    run = xpnet("train", "--backend", backend_name, *device, "--epochs", "1001",
                "--metrics-out", str(metrics))  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["Loss after iteration 0: 0.432387", "Loss after iteration 1000: 0.068947"]
    assert lines[2].startswith("Training accuracy: ")
    m = json.loads(metrics.read_text())
    assert m["backend"] == backend_name and m["dtype"] == "float64"
    assert len(m["losses"]) == 1001 and m["final_loss"] == m["losses"][-1]
    assert round(m["losses"][1000], 6) == 0.068947
    assert m["train_seconds"] > 0 and 0.9 < m["accuracy"] <= 1
    assert {"device", "hidden", "lr", "reg", "epochs"} <= set(m)


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "moons.png"
    run = xpnet("train", "--epochs", "300", "--quiet", "--plot", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_quiet_prints_only_the_accuracy():
    run = xpnet("train", "--epochs", "10", "--quiet")
    assert run.returncode == 0
    assert run.stdout.splitlines() == [run.stdout.splitlines()[0]]
    assert run.stdout.startswith("Training accuracy: ")


def test_environment_variable_picks_the_backend(tmp_path):
    metrics = tmp_path / "m.json"
    run = xpnet("train", "--epochs", "2", "--quiet", "--metrics-out", str(metrics),
                env={"XPNET_BACKEND": "numpy"})  # fmt: skip
    assert run.returncode == 0
    assert json.loads(metrics.read_text())["backend"] == "numpy"
    bad = xpnet("train", "--epochs", "2", env={"XPNET_BACKEND": "nope"})
    assert bad.returncode == 2
    assert "unknown backend 'nope' (from $XPNET_BACKEND)" in bad.stderr


def _missing_or_unusable(name: str) -> str:
    if importlib.util.find_spec(backends.BACKENDS[name].module) is None:
        return f"{backends.BACKENDS[name].module} is not installed; pip install"
    return "CuPy is installed but no usable CUDA device"


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "tensorflow"], "xpnet: error: unknown backend 'tensorflow'; valid backends: numpy, strict, jax, cupy, torch"),
    (["--dtype", "float16"], "xpnet: error: unknown dtype 'float16'; valid dtypes: float32, float64"),
    (["--hidden", "a,b"], "xpnet: error: --hidden must be positive integers, e.g. 3 or 10,10 ('' for no hidden layer); got 'a,b'"),
    (["--hidden", "3,0"], "xpnet: error: --hidden must be positive integers, e.g. 3 or 10,10 ('' for no hidden layer); got '3,0'"),
    (["--hidden", ","], "xpnet: error: --hidden must be positive integers, e.g. 3 or 10,10 ('' for no hidden layer); got ','"),
    (["--device", "tpu"], "xpnet: error: invalid device 'tpu'"),
    (["--device", "gpu"], "xpnet: error: the numpy backend runs only on the CPU"),
    (["--activation", "swish"], "xpnet: error: unknown activation 'swish'; valid activations"),
    (["--lr", "-1"], "xpnet: error: --lr must be a number in (0, inf); got -1.0 (see 'xpnet train --help')"),
    (["--optimizer", "rmsprop"], "xpnet: error: unknown optimizer 'rmsprop'; valid optimizers: sgd, momentum, nesterov, adam, adamw, lbfgs"),
    (["--reduction", "max"], "xpnet: error: unknown reduction 'max'"),
])  # fmt: skip
def test_bad_input_is_one_line_and_status_2(args, message):
    run = xpnet("train", "--epochs", "5", *args)
    assert run.returncode == 2
    assert run.stderr.startswith(message), run.stderr
    assert run.stderr.count("\n") == 1
    assert run.stdout == ""


@pytest.mark.skipif(
    importlib.util.find_spec("cupy") is not None and __import__("cupy").is_available(),
    reason="this machine has a usable CuPy GPU",
)
def test_cupy_missing_or_without_gpu_says_what_to_do():
    run = xpnet("train", "--backend", "cupy", "--epochs", "5")
    assert run.returncode == 2
    assert run.stderr.startswith("xpnet: error: " + _missing_or_unusable("cupy"))
    assert run.stderr.count("\n") == 1


def test_argparse_errors_exit_2():
    run = xpnet("train", "--epochs", "0")
    assert run.returncode == 2
    assert run.stderr == ("xpnet: error: --epochs must be an integer in [1, inf); got 0 "
                          "(see 'xpnet train --help')\n")  # fmt: skip


def test_diverging_run_exits_3_naming_the_pass():
    run = xpnet(
        "train", "--epochs", "300", "--lr", "80", "--reg", "0", "--activation", "relu", "--quiet"
    )
    assert run.returncode == 3
    assert "training diverged" in run.stderr and "try a smaller learning rate" in run.stderr


def test_backends_command_lists_every_backend():
    run = xpnet("backends")
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert lines[0].split()[:4] == ["backend", "installed", "version", "usable"]
    assert [ln.split()[0] for ln in lines[1:6]] == list(backends.BACKENDS)
    assert lines[1].split()[1:2] == ["yes"] and lines[1].split()[-1] == "cpu"
    assert lines[-1] == "default: numpy"


def test_help_and_version():
    assert "train" in xpnet("--help").stdout
    from xpnet import __version__

    assert xpnet("--version").stdout == f"xpnet {__version__}\n"


def test_backends_refuses_a_nonsense_default():
    run = xpnet("backends", env={"XPNET_BACKEND": "nonsense"})
    assert run.returncode == 2
    assert run.stderr.startswith("xpnet: error: unknown backend 'nonsense' (from $XPNET_BACKEND)")


def test_a_closed_output_pipe_has_its_own_status():
    """`xpnet train | head -1`: the reader goes away; xpnet stops quietly with 141 (128 +
    SIGPIPE, as a shell reports it), not the gradient check's 1."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "train", "--epochs", "200000",
                             "--print-every", "1", "--progress", "lines"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader is gone
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err


def test_predict_into_a_pipe_that_closes_has_the_same_status(tmp_path):
    """`xpnet predict ... | head -1`: predictions are written a piece at a time, so a reader
    that goes away stops the command with 141 as it stops train."""
    import subprocess
    import sys

    model, points = tmp_path / "m.safetensors", tmp_path / "points.csv"
    Network((3,), backend="numpy").fit(np.array([[0.0, 0.0], [1.0, 1.0]]), [0, 1],
                                       epochs=2).save(model)  # fmt: skip
    rows = np.random.RandomState(0).rand(200_000, 2)
    points.write_text("x1,x2\n" + "\n".join(f"{a},{b}" for a, b in rows) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "predict", "--model", str(model),
                             "--input", str(points), "--backend", "numpy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"prediction,p_0,p_1\n"
    proc.stdout.close()  # the reader is gone
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err

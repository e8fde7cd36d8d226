"""Nothing lost, everything reproducible: checkpoints and resume from the command line (the
API's are in test_engine.py), kills during a save,
bit-for-bit repeat runs, bounded memory for 10 million predictions and for 1000 fits."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

from xpnet import Network, datasets


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=200, noise=0.2, seed=0)


class Crash(Exception):
    pass


def test_cli_checkpoint_and_resume(tmp_path):
    from helpers import xpnet

    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"
    assert xpnet("train", "--epochs", "1500", "--quiet", "--save", str(full)).returncode == 0
    run = xpnet("train", "--epochs", "900", "--checkpoint-every", "300", "--quiet", "--save",
                str(part))  # fmt: skip
    assert run.returncode == 0, run.stderr
    more = xpnet("train", "--resume", str(part), "--epochs", "1500", "--print-every", "300",
                 "--save", str(part))  # fmt: skip
    assert more.returncode == 0, more.stderr
    assert more.stdout.splitlines()[0].startswith("Loss after iteration 900: ")
    a, b = Network.load(full), Network.load(part)
    assert a.passes_done_ == b.passes_done_ == 1500
    for k in a.params_:
        np.testing.assert_array_equal(a.params_[k], b.params_[k])
    common = np.intersect1d(a.loss_passes_, b.loss_passes_)  # each recorded what it printed
    assert {0, 1499} <= set(common.tolist())
    np.testing.assert_array_equal(a.loss_curve_[np.isin(a.loss_passes_, common)],
                                  b.loss_curve_[np.isin(b.loss_passes_, common)])  # fmt: skip
    bad = xpnet("train", "--epochs", "5", "--checkpoint-every", "2")
    assert (
        bad.returncode == 2
        and "--checkpoint-every needs --save (the model file it writes)" in bad.stderr
    )


SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from xpnet import Network, datasets
    X, y = datasets.load("moons", n_samples=100, seed=1)
    net = Network((64, 64)).fit(X, y, epochs=1)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        net.params_["b1"][:] = i
        net.save(sys.argv[1])
""")


def test_sigkill_during_saves_never_leaves_a_broken_model(tmp_path):
    path = tmp_path / "model.safetensors"
    rng = np.random.RandomState(0)
    for _ in range(6):
        with subprocess.Popen([sys.executable, "-c", SAVER, str(path)],
                              stdout=subprocess.PIPE, text=True) as proc:  # fmt: skip
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        if path.exists():  # either the previous good file or the new one, never half of one
            net = Network.load(path)
            assert np.all(net.params_["b1"] == net.params_["b1"][0])
    assert path.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name != "model.safetensors"]
    assert all(p.name.startswith(".model.safetensors.") for p in leftovers)  # only dead temporaries


REPEAT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from xpnet import Network, datasets
    X, y = datasets.load("moons", n_samples=200, seed=0)
    net = Network((8,), init_seed=3, backend=sys.argv[1], device="cpu")
    net.fit(X, y, epochs=500, lr=0.004)
    h = hashlib.sha256(net.loss_curve_.tobytes())
    for k in sorted(net.params_):
        h.update(np.ascontiguousarray(net.params_[k]).tobytes())
    print(h.hexdigest())
""")


def test_same_seed_same_bits_run_to_run(make_backend):
    backend = make_backend("float64")
    if not backend.device_label.startswith("cpu"):
        pytest.skip("repeatability is asserted for the CPU backends")
    name = backend.name
    env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    digests = {
        subprocess.run(
            [sys.executable, "-c", REPEAT, name],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=300,
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1 and len(next(iter(digests))) == 64


def test_ten_million_predictions_in_bounded_memory(moons):
    X, y = moons
    net = Network((3,)).fit(X, y, epochs=50)
    big = np.random.RandomState(0).randn(10_000_000, 2)
    gc.collect()
    tracemalloc.start()
    try:
        labels = net.predict(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert labels.shape == (10_000_000,)
    results = big.shape[0] * (2 * 8 + 8)  # probabilities (n, 2) and labels (n,)
    checks = big.shape[0] * 2  # the isfinite mask of the input
    assert peak < results + checks + 64e6, f"peak {peak / 1e6:.0f} MB"
    np.testing.assert_array_equal(labels[:1000], net.predict(big[:1000]))


def test_a_thousand_fits_do_not_grow_memory():
    X, y = datasets.load("moons", n_samples=50, seed=2)

    def fits(n):
        for i in range(n):
            Network((4,), init_seed=i).fit(X, y, epochs=2, interruptible=True)

    fits(100)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fits(1000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200_000, f"{grown} bytes kept after 1000 fits"


def test_cli_resume_errors(tmp_path, moons):
    from helpers import xpnet

    X, y = moons
    plain = tmp_path / "plain.safetensors"
    Network((3,)).fit(X, y, epochs=5).save(plain)  # trained from Python: no recipe inside
    done = tmp_path / "done.safetensors"
    assert xpnet("train", "--epochs", "20", "--quiet", "--save", str(done)).returncode == 0
    cases = [
        (["--resume", str(tmp_path / "none.safetensors")], "model file"),
        (["--resume", str(plain)], "does not record how it was trained (no recipe); continue"),
        (["--resume", str(done), "--epochs", "10"], "has trained 20 passes already; ask for more"),
    ]
    for args, message in cases:
        run = xpnet("train", *args)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("xpnet: error: ") and message in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1


def test_estimators_without_scikit_learn_say_what_to_install():
    code = ("import sys; sys.modules['sklearn'] = None\nimport xpnet\n"
            "try:\n    xpnet.MLPClassifier\nexcept xpnet.MissingDependencyError as e:\n"
            "    print(e)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        "xpnet.MLPClassifier needs scikit-learn; pip install 'xpnet[data]'"
    )

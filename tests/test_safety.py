"""Nothing destroyed, nothing lost, one line for every refusal (issue 25): the divergence rule
measured from the starting parameters, signals during start-up, files that are not regular,
outputs that are inputs, sizes and values out of range, options that do not apply."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import xpnet
from xpnet import Network, datasets
from xpnet.errors import ConfigError, DataError, DivergenceError, XpnetError


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=200, noise=0.2, seed=0)


def _one_line(run, status=2):
    assert run.returncode == status, (run.returncode, run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpnet: "), run.stderr[-2000:]
    return lines[0]


# -- divergence -------------------------------------------------------------------------------
def test_a_first_update_that_blows_up_is_measured_from_the_start(moons):
    """lr 50: the first update already multiplies the loss by ~2000 (836 after pass 0, then
    16462 for ever); the rule's base is the loss at the starting parameters, not that."""
    X, y = moons
    net = Network((3,), activation="tanh", init="britz", backend="numpy")
    with pytest.raises(DivergenceError, match="over 1000 times its start"):
        net.fit(X, y, epochs=20000, lr=50, reg=0.01, reduction="sum")
    from xpnet import data, mlp

    T = data.targets(y, 2, 2)
    start = float(mlp.loss(np, net.initial_params_, X, T, net.spec_, 0.01))
    assert net.reference_ == pytest.approx(start, rel=1e-12)  # the untrained loss
    assert net.passes_done_ <= 1


def test_a_diverging_run_never_replaces_a_model_file(tmp_path):
    model = tmp_path / "m.safetensors"
    assert xpnet("train", "--epochs", "3", "--quiet", "--save", str(model)).returncode == 0
    before = model.read_bytes()
    run = xpnet("train", "--lr", "50", "--save", str(model))
    assert _one_line(run, 3).startswith("xpnet: error: training diverged")
    assert model.read_bytes() == before
    assert (tmp_path / "m.diverged.safetensors").is_file()


# -- signals ----------------------------------------------------------------------------------
def _listening(pid: int, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` catches SIGHUP: xpnet's start-up listening has begun (Python
    itself catches only SIGINT), before anything heavy is imported."""
    deadline = time.monotonic() + timeout
    bit = 1 << (signal.SIGHUP - 1)
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = int(
            next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt")), 16
        )
        if caught & bit:
            return
        time.sleep(0.01)
    raise AssertionError("the command never started listening for stop signals")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_a_signal_during_start_up_stops_the_run_with_the_model_saved(tmp_path, signum):
    """Sent as soon as the command listens, while it still imports and builds its run:
    remembered, and the run stops after its first chunk with the model written (SIGHUP as
    SIGTERM)."""
    model = tmp_path / "m.safetensors"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "train", "--epochs", "100000000",
                             "--save", str(model)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        _listening(proc.pid)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, err[-2000:]
    assert "the model was saved to" in err and model.is_file()
    assert Network.load(model).passes_done_ > 0


# -- files that must not be destroyed ------------------------------------------------------------
def test_a_fifo_or_a_device_is_never_replaced_by_a_model(tmp_path, moons):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = _one_line(xpnet("train", "--epochs", "3", "--save", str(fifo)))
    assert "is not a regular file" in line
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe
    X, y = moons
    net = Network((3,), backend="numpy").fit(X, y, epochs=2)
    with pytest.raises(ConfigError, match="is not a regular file"):
        net.save(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    if os.path.exists("/dev/null"):
        with pytest.raises(ConfigError, match="is not a regular file"):
            net.save("/dev/null")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_network_save_refuses_a_folder_or_a_missing_folder_in_one_line(tmp_path, moons):
    X, y = moons
    net = Network((3,), backend="numpy").fit(X, y, epochs=2)
    with pytest.raises(ConfigError, match="is a folder; name a file in it"):
        net.save(tmp_path)
    with pytest.raises(ConfigError, match=r"the folder .* does not exist"):
        net.save(tmp_path / "no" / "m.safetensors")
    with pytest.raises(ConfigError, match="longer than the file system takes"):
        net.save(tmp_path / ("m" * 400))
    with pytest.raises(ConfigError, match="is a folder"):
        net.fit(X, y, epochs=4, checkpoint=tmp_path, checkpoint_every=2)


@pytest.mark.parametrize("case", ["save-is-data", "plot-is-save", "metrics-is-resume",
                                  "loss-plot-is-plot", "predict-output-is-input",
                                  "predict-output-is-model", "onnx-is-model"])  # fmt: skip
def test_an_output_that_is_an_input_or_another_output_is_refused_before_any_work(tmp_path, case):
    data = tmp_path / "data.csv"
    X, y = datasets.load("moons", n_samples=50, noise=0.2, seed=0)
    data.write_text(
        "x1,x2,label\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(X, y, strict=True))
    )
    model = tmp_path / "m.safetensors"
    assert xpnet("train", "--epochs", "3", "--quiet", "--save", str(model)).returncode == 0
    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n0.5,0.25\n")
    keep = {p: p.read_bytes() for p in (data, model, points)}
    args = {
        "save-is-data": ["train", "--dataset", f"csv:{data}", "--save", str(data)],
        "plot-is-save": ["train", "--save", str(tmp_path / "a.png"), "--plot", str(tmp_path / "a.png")],
        "metrics-is-resume": ["train", "--resume", str(model), "--metrics-out", str(model)],
        "loss-plot-is-plot": ["train", "--plot", str(tmp_path / "b.png"), "--loss-plot",
                              str(tmp_path / "b.png")],
        "predict-output-is-input": ["predict", "--model", str(model), "--input", str(points),
                                    "--output", str(points)],
        "predict-output-is-model": ["predict", "--model", str(model), "--input", str(points),
                                    "--output", str(model)],
        "onnx-is-model": ["export", "--model", str(model), "--onnx", str(model)],
    }[case]  # fmt: skip
    line = _one_line(xpnet(*args))
    assert "writing it would destroy that; name another file" in line
    assert all(p.read_bytes() == b for p, b in keep.items())
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_resume_may_update_its_own_file(tmp_path):
    model = tmp_path / "m.safetensors"
    assert xpnet("train", "--epochs", "3", "--quiet", "--save", str(model)).returncode == 0
    run = xpnet("train", "--resume", str(model), "--epochs", "6", "--quiet", "--save", str(model))
    assert run.returncode == 0, run.stderr
    assert Network.load(model).passes_done_ == 6


# -- one line for every refusal -----------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--init-seed", str(2**32)], "--init-seed must be an integer in [0, 4294967295]"),
    (["--data-seed", str(2**40)], "--data-seed must be an integer in [0, 4294967295]"),
    (["--epochs", str(10**20)], "--epochs must be at most 2**53 = 9007199254740992"),
    (["--n-samples", str(10**12)], "moons with 1000000000000 samples needs about"),
    (["--target", "x"], "--target names a column of csv: data"),
    (["--backend", ""], "--backend must not be empty"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer 'momentum' or 'nesterov' only"),
    (["--optimizer", "adam", "--weight-decay", "0.1"], "--weight-decay applies to --optimizer 'adamw'"),
    (["--dataset", "iris", "--plot", "p.png"], "a decision boundary needs 2-D inputs"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0",
      "--data-parallel", "--backend", "jax"], "--coordinator must be HOST:PORT"),
    (["--coordinator", "localhost:99999", "--num-processes", "2", "--process-id", "0",
      "--data-parallel", "--backend", "jax"], "--coordinator must be HOST:PORT with a port in 1..65535"),
])  # fmt: skip
def test_bad_values_are_one_line_before_training(tmp_path, args, message):
    run = xpnet("train", "--epochs", "5", *args, cwd=tmp_path)
    assert message in _one_line(run)
    assert not (tmp_path / "p.png").exists()


def test_a_batch_larger_than_the_data_is_measured_as_the_data(moons):
    X, y = moons  # 200 rows: a batch of 10**9 rows is a batch of 200
    net = Network((3,), backend="numpy").fit(X, y, epochs=2, batch_size=10**9)
    assert net.passes_done_ == 2


def test_gradcheck_refuses_a_softmax_over_one_unit():
    line = _one_line(xpnet("gradcheck", "--outputs", "1"))
    assert "cross_entropy is a softmax over the outputs and needs two or more" in line


def test_a_fitted_network_pickles(moons):
    X, y = moons
    net = Network((3,), backend="numpy").fit(X, y, epochs=5, optimizer="adam", lr=0.01)
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    back.resume(X, y, epochs=8)
    net.resume(X, y, epochs=8)
    np.testing.assert_array_equal(back.params_["W1"], net.params_["W1"])


# -- anything the validation does not know is a typed error, never a crash ----------------------
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=5), st.binary(max_size=5), st.complex_numbers(),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.builds(object), st.builds(lambda: np.float16(1.5)), st.builds(lambda: np.array(["a"], dtype=object)),
)  # fmt: skip
SETTINGS_UNDER_TEST = ["epochs", "lr", "momentum", "batch_size", "reg", "reduction", "record",
                       "schedule", "clip_norm", "shuffle_seed", "optimizer"]  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name=st.sampled_from(SETTINGS_UNDER_TEST), value=ODD)
def test_any_value_of_a_setting_is_taken_or_a_typed_error(name, value):
    X, y = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]]), np.array([0, 1, 0, 1])
    try:
        Network((2,), backend="numpy").fit(X, y, **{"epochs": 2, name: value})
    except XpnetError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
    except DivergenceError:
        pass


@settings(max_examples=120, deadline=None, derandomize=True)
@given(cells=st.lists(ODD, min_size=1, max_size=6), target=ODD)
def test_any_data_is_taken_or_a_typed_error(cells, target):
    for X, y, w in ((cells, [0, 1], None), ([[0.0], [1.0]], cells, None),
                    ([[0.0], [1.0]], [0, 1], cells), ([[0.0], [1.0]], target, None)):  # fmt: skip
        try:
            Network((2,), backend="numpy").fit(X, y, sample_weight=w, epochs=1)
        except (XpnetError, DataError) as exc:
            assert str(exc).strip()


def test_npy_data_that_is_no_single_array_is_one_line(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 2)))
    np.save(tmp_path / "z.npy", np.float64(3))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    y = tmp_path / "y.npy"
    assert "is an .npz archive, not one array" in _one_line(
        xpnet("train", "--dataset", f"npy:{tmp_path / 'a.npz'},{y}")
    )
    assert "holds a single number (a 0-d array)" in _one_line(
        xpnet("train", "--dataset", f"npy:{tmp_path / 'z.npy'},{y}")
    )


def test_a_csv_that_may_never_end_is_refused(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    assert "is not a regular file (a pipe or a device)" in _one_line(
        xpnet("train", "--dataset", f"csv:{fifo}")
    )


def test_a_huge_estimator_is_refused_from_its_sizes_before_any_weight_is_drawn():
    import tracemalloc

    pytest.importorskip("sklearn")
    from xpnet import MLPClassifier

    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"this run needs about .* of memory"):
            MLPClassifier((10**9,), backend="numpy").fit([[0.0], [1.0]], [0, 1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6


def test_a_failed_write_is_a_typed_error_and_replaces_nothing(tmp_path, moons, monkeypatch):
    import errno

    from xpnet.errors import WriteError

    X, y = moons
    net = Network((3,), backend="numpy").fit(X, y, epochs=2)
    path = net.save(tmp_path / "m.safetensors")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match=r"could not write .*No space left on device; nothing was "
                       "replaced") as info:  # fmt: skip
        net.fit(X, y, epochs=3).save(path)
    assert isinstance(info.value, OSError) and path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left


@settings(max_examples=120, deadline=None, derandomize=True)
@given(labels=st.lists(ODD, min_size=4, max_size=4))
def test_any_labels_of_an_estimator_are_taken_or_a_value_error(labels):
    """The estimators take labels as scikit-learn does (a list of mixed values becomes text, as
    NumPy makes it) and refuse the rest with a ValueError (scikit-learn's contract; a
    DataError naming y where objects of several kinds are mixed) or, for bytes, scikit-learn's
    own TypeError, never another exception."""
    from xpnet.estimators import MLPClassifier

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    y = np.empty(4, dtype=object)
    y[:] = labels
    for target in (labels, y):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scikit-learn's about convergence, column vectors
                MLPClassifier((2,), max_iter=1).fit(X, target)
        except ValueError as exc:
            assert str(exc).strip()
        except TypeError as exc:  # scikit-learn's own refusal of bytes, naming the labels
            assert "labels represented as bytes" in str(exc), exc

"""Data-parallel training on JAX (issue 7): samples split over a Mesh of simulated CPU devices,
parameters replicated, gradients summed by XLA inside the compiled loop; the same results as one
device. Each multi-device check runs in a subprocess (XLA's device count is fixed at start-up)
with a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xpnet import Network, backends, datasets, parallel
from xpnet.errors import BackendUnavailableError, ConfigError

pytest.importorskip("jax")

CPU = {"JAX_PLATFORMS": "cpu"}
"""Simulated devices are CPU devices: pinned there even where a JAX GPU plugin is installed."""

# Stable steps: at a chaotic one (seed 000's lr, or lr 0.5 here) any change of rounding, such as
# summing the gradient in 8 parts, grows to 1e-2 within a few hundred passes on one device too.
SCRIPT = r"""
import itertools, json
import numpy as np
from xpnet import Network, backends, datasets, mlp, optim, parallel, train

def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))

SEED = dict(activation="tanh", init="britz")
X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
out = {}
cases = {"seed000": dict(hidden=(3,), fit=dict(epochs=600, lr=0.0025, reduction="sum")),
         "deep-mean": dict(hidden=(8, 5), fit=dict(epochs=300, lr=0.1, reduction="mean")),
         "adam-every-10": dict(hidden=(8,), fit=dict(epochs=200, optimizer="adam", lr=0.01,
                                                     loss_every=10))}
for name, case in cases.items():
    fit = dict(reg=0.01, **case["fit"])
    one = Network(case["hidden"], backend="jax", **SEED).fit(X, y, chunk_size=200, **fit)
    for d in (8, 4, 2):
        par = Network(case["hidden"], backend="jax", data_parallel=True, devices=d, **SEED)
        par.fit(X, y, chunk_size=200, **fit)
        out[f"{name}/{d}"] = {
            "params": max(rel(par.params_[k], one.params_[k]) for k in one.params_),
            "losses": rel(par.loss_curve_, one.loss_curve_),
            "label": par.backend_.device_label,
        }
# 203 samples: padded to 208 rows on 8 devices and 204 on 3, the padding weighted 0
X3, y3 = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
w3 = np.random.RandomState(3).uniform(0.0, 2.0, 203)  # sample weights: padding rows stay 0
w3[[0, 202]] = 0.0
for reduction, w in itertools.product(("sum", "mean"), (None, w3)):
    fit = dict(epochs=300, lr=0.0025 if reduction == "sum" else 0.3, reduction=reduction, reg=0.01)
    one = Network((4,), backend="jax", **SEED).fit(X3, y3, sample_weight=w, chunk_size=100, **fit)
    for d in (8, 3):
        par = Network((4,), backend="jax", data_parallel=True, devices=d, **SEED)
        par.fit(X3, y3, sample_weight=w, chunk_size=100, **fit)
        out[f"{'padded' if w is None else 'weighted'}-{reduction}/{d}"] = {
            "params": max(rel(par.params_[k], one.params_[k]) for k in one.params_),
            "losses": rel(par.loss_curve_, one.loss_curve_),
            "label": par.backend_.device_label,
        }
be = parallel.data_parallel(backends.select("jax", "cpu", "float64"))
(Xd, T), none = be.asarray_rows(X, np.eye(2)[y])
out["no_weights"] = none is None
out["devices_holding_X"] = len(Xd.sharding.device_set)
out["shard_rows"] = sorted({s.data.shape[0] for s in Xd.addressable_shards})
(Xp,), w = be.asarray_rows(X3)
out["padded"] = [Xp.shape[0], float(w.sum()), float(np.abs(np.asarray(Xp)[203:]).sum())]
out["padded_shard_rows"] = sorted({s.data.shape[0] for s in Xp.addressable_shards})
spec = mlp.Spec((2, 3, 2))
params = be.tree_asarray({k: np.ones(s) for k, s in spec.param_shapes().items()})
opt = optim.sgd(0.01)
chunk = train.full_batch(be, train.Objective(spec, 0.01, "sum"), opt, train.plan_full_batch(5, range(5)))
hlo = chunk.lower((params, opt.init(be.xp, params)), Xd, T, None).compile().as_text()
out["all_reduce"] = "all-reduce" in hlo
print(json.dumps(out))
"""


MINI_BATCH_SCRIPT = r"""
import itertools, json, warnings
import numpy as np
from sklearn.datasets import make_classification
from xpnet import Network, backends, init, mlp, optim, parallel, train
from xpnet.estimators import MLPClassifier, MLPRegressor

warnings.simplefilter("ignore")

def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))

X, y = make_classification(1003, 20, n_informative=8, n_classes=3, random_state=0)
out = {}
for kind, cls, target in (("classifier", MLPClassifier, y), ("regressor", MLPRegressor, X[:, :2])):
    for batch, solver in ((64, "adam"), (50, "sgd")):  # 1003 rows: a last batch of 43 or 3
        setup = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, backend="jax",
                     batch_size=batch, solver=solver, learning_rate_init=0.01)
        one = cls(**setup).fit(X, target)
        for d in (8, 3):
            par = cls(**setup, data_parallel=True, devices=d).fit(X, target)
            out[f"{kind}/{batch}/{d}"] = {
                "params": max(rel(a, b) for a, b in zip(par.coefs_ + par.intercepts_,
                                                         one.coefs_ + one.intercepts_)),
                "losses": rel(np.array(par.loss_curve_), np.array(one.loss_curve_)),
            }
w = np.random.RandomState(4).uniform(0.0, 2.0, X.shape[0])
for (batch, name), weights in itertools.product(((64, "adam"), (50, "nesterov")), (None, w)):
    fit = dict(epochs=4, optimizer=name, lr=0.01, batch_size=batch, sample_weight=weights)
    one = Network((16,), backend="jax").fit(X, y, **fit)
    for d in (8, 3):
        par = Network((16,), backend="jax", data_parallel=True, devices=d).fit(X, y, **fit)
        out[f"network{'' if weights is None else '-weighted'}/{batch}/{d}"] = {
            "params": max(rel(par.params_[k], one.params_[k]) for k in one.params_),
            "losses": rel(par.loss_curve_, one.loss_curve_),
        }
be = parallel.data_parallel(backends.select("jax", "cpu", "float64"), 8)
spec = mlp.Spec((20, 16, 3))
params = be.tree_asarray(init.initial_params(spec, "glorot", np.random.RandomState(0)))
opt = optim.sgd(0.01)
block = train.block(be, train.Objective(spec), opt)
(Xb, Tb), w = be.asarray_rows(np.ones((64, 5, 20)), np.ones((64, 5, 3)))
zero = be.asarray(np.zeros((), np.int32), dtype=np.int32)
out["batch_shards"] = sorted({s.data.shape for s in Xb.addressable_shards})
hlo = block.lower((params, opt.init(be.xp, params)), Xb, Tb, w, zero).compile().as_text()
out["all_reduce"] = "all-reduce" in hlo
print(json.dumps(out))
"""


def _simulated(code: str, devices: int = 8, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CPU, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    env.pop("XPNET_BACKEND", None)
    return subprocess.run([sys.executable, *args, "-c", code] if code else
                          [sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def simulated_run():
    result = _simulated(SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("case", "devices"),
    [(c, d) for c in ("seed000", "deep-mean", "adam-every-10") for d in (8, 4, 2)]
    + [
        (c, d)
        for c in ("padded-sum", "padded-mean", "weighted-sum", "weighted-mean")
        for d in (8, 3)
    ],
)
def test_data_parallel_equals_one_device(simulated_run, case, devices):
    got = simulated_run[f"{case}/{devices}"]
    assert got["label"] == f"cpu:0-{devices - 1}"
    assert got["params"] <= 1e-12
    assert got["losses"] <= 1e-12


def test_rows_are_split_and_gradients_summed_inside_the_compiled_loop(simulated_run):
    assert simulated_run["no_weights"]  # 200 rows divide by 8: no padding, no weights
    assert simulated_run["devices_holding_X"] == 8
    assert simulated_run["shard_rows"] == [25]  # 200 samples, 25 on each device
    assert simulated_run["all_reduce"]  # XLA's collective, in the compiled chunk


def test_rows_that_do_not_divide_are_padded_with_zero_weight(simulated_run):
    assert simulated_run["padded"] == [208, 203.0, 0.0]  # 5 zero rows of weight 0 after 203
    assert simulated_run["padded_shard_rows"] == [26]


def test_the_command_line_trains_data_parallel():
    args = ["-m", "xpnet", "train", "--backend", "jax", "--data-parallel", "--devices", "4",
            "--epochs", "2000"]  # fmt: skip
    result = _simulated("", 4, *args)
    assert result.returncode == 0, result.stderr
    assert "Loss after iteration 0: 0.432387" in result.stdout
    assert "Loss after iteration 1000: 0.068947" in result.stdout
    assert "Training accuracy: 0.975" in result.stdout


@pytest.fixture(scope="module")
def mini_batch_run():
    pytest.importorskip("sklearn")
    result = _simulated(MINI_BATCH_SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["classifier", "regressor", "network", "network-weighted"])
@pytest.mark.parametrize(("batch", "devices"), [(64, 8), (64, 3), (50, 8), (50, 3)])
def test_data_parallel_mini_batches_equal_one_device(mini_batch_run, kind, batch, devices):
    """The estimators and Network's mini-batches: each batch split over the devices (padded
    where it does not divide: 64 on 3, 50 on 8, and the last batches of 43 and 3 rows)."""
    got = mini_batch_run[f"{kind}/{batch}/{devices}"]
    assert got["params"] <= 1e-12
    assert got["losses"] <= 1e-12


def test_mini_batches_are_split_and_summed_inside_the_compiled_steps(mini_batch_run):
    assert mini_batch_run["batch_shards"] == [[8, 5, 20]]  # 64 rows of each of 5 batches, 8 each
    assert mini_batch_run["all_reduce"]


def test_more_devices_than_jax_sees_is_a_clear_error():
    jax = backends.select("jax", "cpu")
    seen = len(__import__("jax").devices("cpu"))
    with pytest.raises(BackendUnavailableError, match=f"JAX sees {seen}.*device_count="):
        parallel.data_parallel(jax, seen + 1)


def test_other_backends_and_stray_devices_are_refused():
    X, y = datasets.load("moons", n_samples=20)
    with pytest.raises(ConfigError, match="runs on the jax backend"):
        Network(backend="numpy", data_parallel=True).fit(X, y, epochs=1)
    with pytest.raises(
        ConfigError,
        match=r"^devices is the device count of data-parallel "
        r"training \(data_parallel\)",
    ):
        Network(backend="jax", devices=2)
    with pytest.raises(ConfigError, match=r"devices must be an integer in \[1, inf\); got 0"):
        parallel.data_parallel(backends.select("jax", "cpu"), 0)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _run_all(
    commands: list[list[str]], env: dict[str, str], timeout: float
) -> list[tuple[int, str, str]]:
    """Start every command, wait for all of them at most ``timeout`` seconds in all, and end
    every one that is left (killed, reaped, its pipes closed): a test never leaves a process
    behind. Return each one's (exit status, stdout, stderr)."""
    import time

    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for c in commands]  # fmt: skip
    deadline = time.monotonic() + timeout
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=max(deadline - time.monotonic(), 1)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()  # reaps it and closes its pipes
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


def _job(*args: str, each: dict[int, list[str]] | None = None) -> list[tuple[int, str, str]]:
    """Run ``xpnet train --backend jax --data-parallel ARGS`` as a job of 2 processes with 4
    simulated devices each on localhost (plus ``each[i]``'s options for process i); return each
    process's (exit status, stdout, stderr)."""
    port = _free_port()
    env = {**os.environ, **CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env.pop("XPNET_BACKEND", None)
    base = [sys.executable, "-m", "xpnet", "train", "--backend", "jax", "--data-parallel", *args,
            "--coordinator", f"localhost:{port}", "--num-processes", "2"]  # fmt: skip
    commands = [[*base, "--process-id", str(i), *(each or {}).get(i, [])] for i in range(2)]
    return _run_all(commands, env, timeout=600)


def test_a_job_whose_peer_never_joins_ends_in_bounded_time():
    """A process whose peers never come ends after --job-timeout with one line, status 2."""
    import time

    env = {**os.environ, **CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env.pop("XPNET_BACKEND", None)
    alone = [sys.executable, "-m", "xpnet", "train", "--backend", "jax", "--data-parallel",
             "--coordinator", f"localhost:{_free_port()}", "--num-processes", "2",
             "--process-id", "1", "--job-timeout", "3"]  # fmt: skip
    began = time.monotonic()
    [(status, _, err)] = _run_all([alone], env, timeout=120)
    assert status == 2, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "xpnet: error: the multi-process job did not start within 3 s: all 2 processes must "
        "join (--coordinator, --num-processes, --process-id), or raise --job-timeout"
    )
    assert time.monotonic() - began < 100


def test_a_job_whose_peer_dies_ends_in_bounded_time(tmp_path):
    """A peer killed mid-run: the survivor stops (JAX's coordination service sees the missing
    heartbeat within --job-timeout seconds) instead of waiting in a collective for ever."""
    import time

    port, model = _free_port(), tmp_path / "m.safetensors"
    env = {**os.environ, **CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env.pop("XPNET_BACKEND", None)
    base = [sys.executable, "-m", "xpnet", "train", "--backend", "jax", "--data-parallel",
            "--epochs", "100000000", "--quiet", "--job-timeout", "30", "--save", str(model),
            "--checkpoint-every", "200", "--coordinator", f"localhost:{port}",
            "--num-processes", "2"]  # fmt: skip
    procs = [subprocess.Popen([*base, "--process-id", str(i)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not model.exists():  # process 0's first checkpoint: the job formed and trains
            assert procs[0].poll() is None and time.monotonic() < deadline, "the job never trained"
            time.sleep(0.2)
        procs[1].kill()
        died = time.monotonic()
        procs[0].wait(timeout=200)
        assert procs[0].returncode != 0 and time.monotonic() - died < 200
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_two_processes_with_four_devices_each_equal_one_device(tmp_path):
    """A multi-process job on localhost (2 x 4 simulated devices, XLA's own CPU collectives):
    process 0 prints and saves; the saved model equals one-device training to 1e-12."""
    import numpy as np

    model = tmp_path / "m.safetensors"
    runs = _job("--epochs", "600", "--lr", "0.0025", "--print-every", "200", "--save", str(model))
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    assert "Loss after iteration 400:" in runs[0][1]
    assert f"Model written to {model}" in runs[0][1]
    assert runs[1][1] == ""  # only process 0 prints (JAX's own start-up lines included)
    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    one = Network((3,), backend="jax", activation="tanh", init="britz")
    one.fit(X, y, epochs=600, lr=0.0025, reg=0.01, reduction="sum")
    job = Network.load(model)
    assert job.trained_on_["device"] == "cpu:0-7"
    for k, v in one.params_.items():
        np.testing.assert_allclose(job.params_[k], v, rtol=1e-12, atol=1e-15)


def _poisoned(tmp_path, X, y):
    """Two copies of X.npy, one a process: NaN in every row but that process's own (203 rows,
    padded to 208 over 8 devices: process 0 holds rows 0-103, process 1 rows 104-202)."""
    import numpy as np

    for i, (lo, hi) in enumerate([(0, 104), (104, 203)]):
        poisoned = np.full_like(X, np.nan)
        poisoned[lo:hi] = X[lo:hi]
        np.save(tmp_path / f"X{i}.npy", poisoned)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return {i: ["--dataset", f"npy:{tmp_path / f'X{i}.npy'},{tmp_path / 'y.npy'}"] for i in (0, 1)}


def test_each_process_of_a_job_reads_only_its_rows(tmp_path):
    """Each process memory-maps its own copy of the data, NaN outside its rows: validation,
    standard scaling (statistics summed over the processes), training and the accuracy read
    its rows only. The model equals one process on the clean data to 1e-12."""
    import numpy as np

    from helpers import xpnet

    X, y = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
    each = _poisoned(tmp_path, X, y)
    common = ["--scale", "standard", "--epochs", "300", "--lr", "0.0025", "--print-every", "100"]
    runs = _job(*common, "--save", str(tmp_path / "job.safetensors"), each=each)
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    clean = f"npy:{tmp_path / 'X.npy'},{tmp_path / 'y.npy'}"
    alone = xpnet("train", "--backend", "jax", "--dataset", clean, *common,
                  "--save", str(tmp_path / "one.safetensors"))  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    accuracy = [line for line in alone.stdout.splitlines() if line.startswith("Training acc")]
    assert accuracy and accuracy[0] in runs[0][1]  # the job's accuracy: counts of both parts
    job, one = (
        Network.load(tmp_path / "job.safetensors"),
        Network.load(tmp_path / "one.safetensors"),
    )
    np.testing.assert_allclose(job.scale_offset_, one.scale_offset_, rtol=1e-14)
    np.testing.assert_allclose(job.scale_factor_, one.scale_factor_, rtol=1e-14)
    np.testing.assert_allclose(job.loss_curve_, one.loss_curve_, rtol=1e-12)
    for k, v in one.params_.items():
        np.testing.assert_allclose(job.params_[k], v, rtol=1e-12, atol=1e-15)


def test_bad_rows_in_one_process_stop_every_process(tmp_path):
    import numpy as np

    X, y = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
    X[150, 1] = np.inf  # in process 1's rows
    each = _poisoned(tmp_path, X, y)
    runs = _job("--epochs", "10", each=each)
    assert [r[0] for r in runs] == [2, 2]
    assert "X holds NaN or infinity (first at row 150, column 1)" in runs[1][2]
    assert "process 1 of the job found its rows of the data invalid" in runs[0][2]


def test_estimators_in_a_multi_process_job_say_where_to_go():
    code = ("import sys\nfrom xpnet import parallel\nfrom xpnet.estimators import MLPClassifier\n"
            "parallel.distributed(sys.argv[1], 2, int(sys.argv[2]))\n"
            "try:\n    MLPClassifier(backend='jax', data_parallel=True).fit([[0.0], [1.0]], [0, 1])\n"
            "except ValueError as exc:\n    print(exc)\n")  # fmt: skip
    port = _free_port()
    env = {**os.environ, **CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    runs = _run_all([[sys.executable, "-c", code, f"localhost:{port}", str(i)] for i in range(2)],
                    env, timeout=240)  # fmt: skip
    for _, out, err in runs:
        assert "the estimators train data-parallel within one process" in out, err[-2000:]


def test_a_data_parallel_run_resumes_data_parallel(tmp_path):
    """300 passes on 4 devices, saved; --resume to 600 goes on on 4 devices: equal to 600 passes
    on one device to 1e-12."""
    import numpy as np

    model = str(tmp_path / "m.safetensors")
    first = _simulated("", 4, "-m", "xpnet", "train", "--backend", "jax", "--data-parallel",
                       "--devices", "4", "--epochs", "300", "--lr", "0.0025", "--save", model)  # fmt: skip
    assert first.returncode == 0, first.stderr
    resumed = _simulated(
        "", 4, "-m", "xpnet", "train", "--resume", model, "--epochs", "600", "--print-every", "100",
        "--save", model,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "Loss after iteration 500:" in resumed.stdout
    assert "Loss after iteration 200:" not in resumed.stdout
    job = Network.load(model)
    assert job.data_parallel and job.devices == 4
    assert job.trained_on_["device"] == "cpu:0-3"
    assert job.passes_done_ == 600
    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    one = Network((3,), backend="jax", activation="tanh", init="britz")
    one.fit(X, y, epochs=600, lr=0.0025, reg=0.01, reduction="sum")
    keep = np.isin(np.arange(600), job.loss_passes_)  # the passes the job recorded
    np.testing.assert_allclose(job.loss_curve_, one.loss_curve_[keep], rtol=1e-12)
    for k, v in one.params_.items():
        np.testing.assert_allclose(job.params_[k], v, rtol=1e-12, atol=1e-15)
    single = Network.load(model, data_parallel=False)  # or on one device, if asked
    assert not single.data_parallel and single.devices is None
    with pytest.raises(
        ConfigError, match=r"device count of data-parallel training \(data_parallel\)"
    ):
        Network.load(model, data_parallel=False, devices=2)


def test_a_job_needs_every_option_and_data_parallel():
    from helpers import xpnet

    result = xpnet("train", "--backend", "jax", "--coordinator", "localhost:1", "--epochs", "1")
    assert result.returncode == 2
    assert "a multi-process job trains data-parallel: add --data-parallel" in result.stderr
    result = xpnet("train", "--backend", "jax", "--data-parallel", "--num-processes", "2",
                   "--epochs", "1")  # fmt: skip
    assert result.returncode == 2
    assert "give all of --coordinator, --num-processes and --process-id" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-parallel"], "data-parallel training runs on the jax backend (--backend jax)"),
        (["--backend", "jax", "--devices", "2"], "--devices is the device count of data-parallel training (--data-parallel)"),
        (["--backend", "jax", "--data-parallel", "--devices", "64"],
         "asked for 64 cpu devices; JAX sees 1; to simulate devices on a CPU start Python with "
         "XLA_FLAGS=--xla_force_host_platform_device_count=64"),
    ],
)  # fmt: skip
def test_data_parallel_command_line_errors(args, message):
    from helpers import xpnet

    result = xpnet("train", *args, "--epochs", "1", env={**CPU, "XLA_FLAGS": ""})
    assert result.returncode == 2
    assert result.stderr.startswith("xpnet: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_data_parallel_on_the_backends_own_devices(make_backend):
    """Every session: on its backend's own devices (one CPU here, every GPU of a CUDA
    machine), data-parallel training equals one device, full batch and mini-batch; a backend
    that cannot shard says so."""
    import numpy as np

    b = make_backend("float64")
    X, y = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
    where = dict(backend=b.name, device=b.device_label)
    if not b.can_shard:
        with pytest.raises(ConfigError, match="data-parallel training runs on the jax backend"):
            Network((4,), data_parallel=True, **where).fit(X, y, epochs=1)
        return
    for fit in (dict(epochs=50, lr=0.3), dict(epochs=3, optimizer="adam", lr=0.01, batch_size=64)):
        one = Network((4,), **where).fit(X, y, **fit)
        par = Network((4,), data_parallel=True, **where).fit(X, y, **fit)
        assert par.backend_.shards == len(__import__("jax").devices(b.device.platform))
        np.testing.assert_allclose(par.loss_curve_, one.loss_curve_, rtol=1e-12)
        for k, v in one.params_.items():
            np.testing.assert_allclose(par.params_[k], v, rtol=1e-12, atol=1e-15)


WEIGHTED_JOB = r"""
import sys
import numpy as np
from xpnet import Network, datasets, parallel

parallel.distributed(sys.argv[1], 2, int(sys.argv[2]))
X, y = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
w = np.random.RandomState(5).uniform(0.0, 2.0, X.shape[0])
net = Network((4,), backend="jax", data_parallel=True, activation="tanh", scale="standard")
net.fit(X, y, sample_weight=w, epochs=200, lr=0.3)
score = net.score(X, y, sample_weight=w)
if int(sys.argv[2]) == 0:
    np.save(sys.argv[3], np.concatenate([net.params_["W1"].ravel(), [score]]))
"""


def test_a_job_trains_and_scores_with_each_processs_sample_weights(tmp_path):
    """Network's Python API in a 2-process job (4 simulated devices each): each process trains
    on its own rows and their weights; the model and the weighted accuracy equal one process."""
    import numpy as np

    port, out = _free_port(), tmp_path / "job.npy"
    env = {**os.environ, **CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env.pop("XPNET_BACKEND", None)
    runs = _run_all([[sys.executable, "-c", WEIGHTED_JOB, f"localhost:{port}", str(i), str(out)]
                     for i in range(2)], env, timeout=600)  # fmt: skip
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    X, y = datasets.load("moons", n_samples=203, noise=0.2, seed=1)
    w = np.random.RandomState(5).uniform(0.0, 2.0, X.shape[0])
    one = Network((4,), backend="jax", activation="tanh", scale="standard")
    one.fit(X, y, sample_weight=w, epochs=200, lr=0.3)
    got = np.load(out)
    np.testing.assert_allclose(got[:-1], one.params_["W1"].ravel(), rtol=1e-12, atol=1e-15)
    assert got[-1] == pytest.approx(one.score(X, y, sample_weight=w), rel=1e-12)
    right = one.predict(X) == y
    assert got[-1] != pytest.approx(np.mean(right))  # the weights count in the score

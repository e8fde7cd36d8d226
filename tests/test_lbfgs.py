"""L-BFGS through the training engine (``Network.fit(optimizer="lbfgs")``, ``xpnet train
--optimizer lbfgs``): the same iterates as SciPy driven directly, on every backend; it stops
once converged; records, sample weights, Ctrl-C, checkpoints and resume as every other optimizer
has them; options it cannot use are refused."""

from __future__ import annotations

import os
import re
import signal
import threading
from typing import NamedTuple

import numpy as np
import pytest

from conftest import F64_RTOL
from helpers import rel_err, where, xpnet
from xpnet import Network, backends, data, datasets, lbfgs, mlp, optim
from xpnet.errors import ConfigError, TrainingInterrupted
from xpnet.train import Objective

pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=200, noise=0.2, seed=0)


class Direct(NamedTuple):
    params: dict
    losses: list
    iterations: int
    converged: bool
    loss: float


def _direct(net, X, y, iterations, weights=None, backend="numpy"):
    """SciPy's L-BFGS-B driven directly (``scipy.optimize.minimize`` with ``maxiter``, no
    engine) from the network's initial parameters on the same objective."""
    import scipy.optimize

    T = data.targets(np.searchsorted(net.classes_, y), net.classes_.size, net.spec_.sizes[-1])
    objective = Objective(net.spec_, net.plan_.reg, "mean")
    f = lbfgs.value_and_grad(backends.select(backend), objective, X, T, weights)
    losses: list[float] = []

    def record(intermediate_result):  # SciPy passes the iterate's result under this name
        losses.append(float(intermediate_result.fun))

    result = scipy.optimize.minimize(
        f, lbfgs.pack(net.spec_, net.initial_params_), method="L-BFGS-B", jac=True,
        callback=record,
        options={"maxiter": iterations, "maxfun": 15000, "gtol": 1e-4},
    )  # fmt: skip
    params = lbfgs.unpack(net.spec_, result.x)
    return Direct(params, losses, int(result.nit), result.status == 0, float(result.fun))


def _lbfgs_threads():
    return [t for t in threading.enumerate() if t.name == "xpnet-lbfgs"]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_network_lbfgs_takes_scipys_iterates(make_backend, moons, weighted):
    """Every iteration's loss equals SciPy driven directly on NumPy (the same backend: bit for
    bit; another: to 1e-12 over 20 iterations, where rounding has not yet grown)."""
    X, y = moons
    b = make_backend("float64")
    w = np.random.RandomState(0).uniform(0.0, 2.0, X.shape[0]) if weighted else None
    net = Network((8,), activation="tanh", **where(b))
    net.fit(X, y, sample_weight=w, optimizer="lbfgs", epochs=20)
    want = _direct(net, X, y, 20, w)
    assert net.passes_done_ == want.iterations == 20 and net.stop_reason_ is None
    assert list(net.loss_passes_) == list(range(20))
    if b.name == "numpy":
        assert np.array_equal(net.loss_curve_, want.losses)
        assert all(np.array_equal(net.params_[k], want.params[k]) for k in want.params)
    assert rel_err(net.loss_curve_, np.asarray(want.losses)) <= F64_RTOL
    for k, v in want.params.items():
        assert rel_err(net.params_[k], v) <= 1e-9, k
    assert not _lbfgs_threads()  # the search's thread ended with the fit


def test_lbfgs_stops_once_converged_or_out_of_evaluations(moons):
    X, y = moons
    net = Network((8,), activation="tanh", backend="numpy")
    net.fit(X, y, optimizer="lbfgs", epochs=100000, loss_every=1000)
    assert net.passes_done_ < 1000
    assert "CONVERGENCE" in net.stop_reason_
    assert net.loss_passes_[-1] == net.passes_done_ - 1  # the last iteration's loss is recorded
    want = _direct(net, X, y, 100000)
    assert want.converged and want.iterations == net.passes_done_
    assert net.loss_curve_[-1] == want.loss
    short = Network((8,), activation="tanh", backend="numpy")
    short.fit(X, y, optimizer="lbfgs", max_fun=15, epochs=1000)
    assert short.passes_done_ < 15 and "EVALUATIONS" in short.stop_reason_
    assert not _lbfgs_threads()


@pytest.mark.parametrize("record", ["after", "before"])
def test_a_start_that_has_converged_takes_no_iteration(moons, tmp_path, record):
    X, y = moons
    net = Network((3,), backend="numpy")
    net.fit(X, y, optimizer="lbfgs", tol=1e9, epochs=10, record=record)
    assert net.passes_done_ == 0 and net.loss_curve_.size == 0
    assert "CONVERGENCE" in net.stop_reason_
    assert all(np.array_equal(net.params_[k], v) for k, v in net.initial_params_.items())
    loaded = Network.load(net.save(tmp_path / "m.safetensors"))
    assert loaded.passes_done_ == 0 and loaded.score(X, y) == net.score(X, y)


def test_losses_recorded_before_each_iteration(moons):
    X, y = moons
    after = Network((5,), backend="numpy").fit(X, y, optimizer="lbfgs", epochs=12)
    before = Network((5,), backend="numpy").fit(X, y, optimizer="lbfgs", epochs=12,
                                                record="before", chunk_size=5)  # fmt: skip
    T = data.targets(y, 2, 2)
    start = mlp.loss(np, after.initial_params_, X, T, after.spec_, after.plan_.reg)
    assert before.loss_curve_[0] == pytest.approx(float(start), rel=1e-15)
    np.testing.assert_array_equal(before.loss_curve_[1:], after.loss_curve_[:-1])


def test_ctrl_c_stops_lbfgs_after_the_chunk_and_keeps_its_state(moons):
    X, y = moons
    net = Network((8,), activation="tanh", backend="numpy")

    def interrupt(first, losses, params):
        if first == 0:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        net.fit(X, y, optimizer="lbfgs", tol=0.0, epochs=10**6, chunk_size=7,
                on_chunk=interrupt)  # fmt: skip
    assert info.value.passes_done == net.passes_done_ == 7
    want = _direct(net, X, y, 7)
    assert all(np.array_equal(net.params_[k], want.params[k]) for k in want.params)
    assert not _lbfgs_threads()


def test_a_signal_during_an_iteration_stops_within_about_a_second():
    """The main thread waits for SciPy's worker thread while it computes: a SIGINT then still
    ends the run after the current chunk (about a second at most), with the thread gone."""
    import time

    X, y = datasets.load("moons", n_samples=20000, noise=0.2, seed=0)
    net = Network((64,), backend="numpy")
    sent: list[float] = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.5, interrupt).start()
    with pytest.raises(TrainingInterrupted):
        net.fit(X, y, optimizer="lbfgs", tol=0.0, max_fun=10**7, epochs=10**6)
    took = time.monotonic() - sent[0]
    assert took < 4.0, f"{took:.1f} s from the signal to the end"
    assert net.passes_done_ > 0 and np.isfinite(net.loss_curve_).all()
    assert not _lbfgs_threads()


def test_checkpoints_and_resume_start_the_search_afresh(moons, tmp_path):
    """A checkpointed L-BFGS run resumes from its saved parameters with a new search (its
    curvature memory is not saved), as documented: the loss goes on falling."""
    X, y = moons
    path = tmp_path / "lbfgs.safetensors"
    net = Network((8,), activation="tanh", backend="numpy")
    net.fit(X, y, optimizer="lbfgs", epochs=30, checkpoint=path, checkpoint_every=10)
    loaded = Network.load(path)
    assert loaded.passes_done_ == 30 and loaded.plan_.solver == "lbfgs"
    assert loaded.optimizer_ is None  # a solver, not a gradient transformation
    loaded.resume(X, y, epochs=60)
    assert loaded.passes_done_ == 60
    assert loaded.loss_curve_[-1] < net.loss_curve_[-1]
    np.testing.assert_array_equal(loaded.loss_curve_[:30], net.loss_curve_)


def test_what_lbfgs_cannot_use_is_refused(moons):
    X, y = moons
    lbfgs_rule = (
        "optimizer 'lbfgs' searches its own step lengths on the whole data set, on one device"
    )
    with pytest.raises(ConfigError, match=f"^{lbfgs_rule}; leave out lr$"):
        Network((3,)).fit(X, y, optimizer="lbfgs", lr=0.1)
    with pytest.raises(ConfigError, match=f"^{lbfgs_rule}; leave out batch_size, stream$"):
        Network((3,)).fit(X, y, optimizer="lbfgs", batch_size=10, stream=True)
    with pytest.raises(ConfigError, match=r"tol must be a number in \[0, inf\); got -1"):
        Network((3,)).fit(X, y, optimizer="lbfgs", tol=-1)
    with pytest.raises(ConfigError, match="tol and max_fun apply to optimizer 'lbfgs' only"):
        Network((3,)).fit(X, y, optimizer="adam", tol=0.1)
    assert not hasattr(optim, "lbfgs")  # a solver, not an optimizer that raises


def test_the_command_line_trains_with_lbfgs(tmp_path):
    model = tmp_path / "m.safetensors"
    result = xpnet("train", "--optimizer", "lbfgs", "--epochs", "5000", "--save", str(model))
    assert result.returncode == 0, result.stderr
    assert "Loss after iteration 0: 0.389053" in result.stdout
    # how many iterations converge differs between machines (floating-point paths): a range
    stopped = re.search(r"Stopped after (\d+) iterations: CONVERGENCE", result.stdout)
    assert stopped and 60 <= int(stopped[1]) <= 400, result.stdout
    assert "Training accuracy: 0.975" in result.stdout
    loaded = Network.load(model)
    assert loaded.passes_done_ == int(stopped[1]) and "CONVERGENCE" in loaded.stop_reason_
    refused = xpnet("train", "--optimizer", "lbfgs", "--lr", "0.1", "--schedule", "cosine")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "xpnet: error: --optimizer 'lbfgs' searches its own step lengths on the whole data set, "
        "on one device; leave out --lr, --schedule"
    )
    zero = xpnet("train", "--optimizer", "lbfgs", "--momentum", "0")  # given, though zero
    assert zero.returncode == 2 and zero.stderr.strip().endswith("leave out --momentum")
    parallel = xpnet("train", "--optimizer", "lbfgs", "--backend", "jax", "--data-parallel")
    assert parallel.returncode == 2
    assert parallel.stderr.strip().endswith("on one device; leave out --data-parallel")


def test_the_progress_bar_counts_iterations_and_metrics_leave_out_the_rate(tmp_path):
    pytest.importorskip("rich")
    import json

    metrics = tmp_path / "m.json"
    run = xpnet("train", "--optimizer", "lbfgs", "--epochs", "5000", "--progress", "bar",
                "--metrics-out", str(metrics))  # fmt: skip
    assert run.returncode == 0, run.stderr
    written = json.loads(metrics.read_text())
    assert written["optimizer"] == "lbfgs" and written["lr"] is None
    done = len(written["losses"])  # machine-dependent (see above), the same in bar and file
    assert 60 <= done <= 400 and f"iteration  {done}/5000" in run.stdout
    assert "iterations/s" in run.stdout


def test_seed_001s_output_table_after_lbfgs_converges_is_of_the_final_weights():
    """The recipe's last-forward-pass parameters (seed 001's Output / Target table) are those the
    run ended with when L-BFGS stopped before the last epoch."""
    from xpnet import recipes

    run = recipes.run(recipes.get("av-toy").replace(backend="numpy", optimizer="lbfgs"))
    assert run.net.passes_done_ < run.net.plan_.epochs
    assert all(np.array_equal(run.last_params[k], v) for k, v in run.net.params_.items())

"""The one training engine: history conventions, chunking, sparse loss recording, the one
divergence rule, optimizers and mini-batches through Network, plug-ins, and resuming any run to
the result of an uninterrupted one. Every test runs on every backend of the session."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import F64_RTOL
from helpers import SEED000_FIT, britz, where
from xpnet import Network, callbacks, datasets, engine, feeds, memory, optim
from xpnet.errors import ConfigError, DivergenceError, TrainingInterrupted
from xpnet.run import Run


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=100, noise=0.2, seed=3)


def _same(got, want, exact=False):
    """Equal parameters and histories: bit for bit, or to the float64 tolerance."""
    for k, v in want.params_.items():
        if exact:
            np.testing.assert_array_equal(got.params_[k], v, err_msg=k)
        else:
            np.testing.assert_allclose(got.params_[k], v, rtol=F64_RTOL, atol=1e-15, err_msg=k)
    np.testing.assert_array_equal(got.loss_passes_, want.loss_passes_)
    if exact:
        np.testing.assert_array_equal(got.loss_curve_, want.loss_curve_)
    else:
        np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=F64_RTOL)


# -- histories and chunks ------------------------------------------------------------------------
def test_after_history_is_before_history_shifted(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    before = britz((4,), **where(b)).fit(X, y, epochs=50, record="before", **SEED000_FIT)
    after = britz((4,), **where(b)).fit(X, y, epochs=50, record="after", **SEED000_FIT)
    np.testing.assert_allclose(after.loss_curve_[:-1], before.loss_curve_[1:], rtol=1e-12)
    for k, v in before.params_.items():
        np.testing.assert_allclose(after.params_[k], v, rtol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 50, 1000])
def test_chunk_size_does_not_change_the_result(make_backend, moons, chunk):
    X, y = moons
    b = make_backend("float64")
    seen = []
    net = britz((4,), **where(b)).fit(
        X, y, epochs=50, chunk_size=chunk, **SEED000_FIT,
        on_chunk=lambda first, losses, p: seen.append((first, losses.size)),
    )  # fmt: skip
    whole = britz((4,), **where(b)).fit(X, y, epochs=50, chunk_size=50, **SEED000_FIT)
    np.testing.assert_allclose(net.loss_curve_, whole.loss_curve_, rtol=1e-13)
    assert [f for f, _ in seen] == list(range(0, 50, chunk))
    assert sum(n for _, n in seen) == 50


@pytest.mark.parametrize("record", ["after", "before"])
@pytest.mark.parametrize(("every", "chunk"), [(10, None), (10, 7), (3, 25), (60, 1000), (1000, 40)])
def test_losses_only_where_asked_change_nothing_else(make_backend, moons, record, every, chunk):
    """Recording the loss every k passes (the others cost no loss computation) gives the same
    parameters, and the recorded passes (multiples of k and the last) hold the losses a dense
    run records there."""
    X, y = moons
    b = make_backend("float64")
    fit = dict(epochs=123, record=record, chunk_size=chunk, **SEED000_FIT)
    dense = britz((4,), **where(b)).fit(X, y, **fit)
    sparse = britz((4,), **where(b)).fit(X, y, loss_every=every, **fit)
    want = [*range(0, 123, every)] + ([] if 122 % every == 0 else [122])
    np.testing.assert_array_equal(sparse.loss_passes_, want)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_[want], rtol=F64_RTOL)
    for k, v in dense.params_.items():
        if b.name == "numpy":  # the same operations in the same order
            np.testing.assert_array_equal(sparse.params_[k], v)
        else:
            np.testing.assert_allclose(sparse.params_[k], v, rtol=F64_RTOL, atol=1e-15)


def test_repeatable_bit_for_bit(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    runs = [Network((4,), **where(b)).fit(X, y, epochs=30) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].loss_curve_, runs[1].loss_curve_)


# -- the loss after a fit's last pass --------------------------------------------------------------
@pytest.mark.parametrize("every", [1, 3])
def test_the_loss_after_the_last_pass_costs_nothing_until_it_is_read(make_backend, moons,
                                                                     monkeypatch, every):  # fmt: skip
    """No chunk pays a forward pass for the loss after its last pass: the next chunk's first
    pass measures it, and the fit's last one is computed once, when the curve is read; the
    curve equals that of a run whose plug-in reads every chunk's losses (each measured
    inside its chunk)."""
    X, y = moons
    b = make_backend("float64")
    calls = []
    measure = feeds.FullBatch.loss_at
    monkeypatch.setattr(feeds.FullBatch, "loss_at",
                        lambda self, *a: calls.append(a[-1]) or measure(self, *a))  # fmt: skip
    fit = dict(epochs=30, chunk_size=7, loss_every=every, **SEED000_FIT)
    lazy = britz((4,), **where(b)).fit(X, y, **fit)
    assert calls == [] and lazy.loss_passes_[-1] == 29
    curve = lazy.loss_curve_
    assert calls == [30] and lazy.loss_curve_ is curve  # once, at the final parameters
    seen = []
    eager = britz((4,), **where(b)).fit(X, y, on_chunk=lambda f, losses, p: seen.append(losses),
                                        **fit)  # fmt: skip
    assert calls == [30] and sum(v.size for v in seen) == curve.size
    _same(lazy, eager, exact=b.name == "numpy")


def test_a_pending_loss_survives_pickling_and_a_resumed_fit(moons):
    import pickle

    X, y = moons
    net = britz((4,)).fit(X, y, epochs=20, **SEED000_FIT)
    copy = pickle.loads(pickle.dumps(net))  # the pending loss is computed first
    np.testing.assert_array_equal(copy.loss_curve_, net.loss_curve_)
    net = britz((4,)).fit(X, y, epochs=20, **SEED000_FIT)
    net.resume(X, y, epochs=40)  # the loss after pass 19 is computed on the first fit's data
    whole = britz((4,)).fit(X, y, epochs=40, **SEED000_FIT)
    _same(net, whole, exact=True)


@pytest.mark.parametrize("record", ["after", "before"])
def test_a_last_update_to_non_finite_parameters_is_caught(make_backend, moons, record):
    """Nothing measures the loss after a fit's last update; its parameters are checked instead
    (a reduction), and a non-finite one is undone as a NaN loss would be."""
    X, y = moons
    b = make_backend("float64")
    fit = dict(lr=1e307, reg=0.0, reduction="sum", record=record)  # the first update overflows
    at = int(record == "before")  # the loss recorded for pass 0 is before its update
    for epochs in (1, 3):
        nets = [Network((3,), **where(b)) for _ in range(2)]
        for net, plug in zip(nets, [{}, {"on_chunk": lambda *a: None}], strict=True):
            with pytest.raises(DivergenceError, match=f"the loss is (nan|inf) at pass {at};"):
                net.fit(X, y, epochs=epochs, **fit, **plug)
            assert net.passes_done_ == 0 and net.loss_curve_.size == 0
        for k, v in nets[1].params_.items():  # the same as where the loss after it is measured
            np.testing.assert_array_equal(nets[0].params_[k], v)
            assert np.all(np.isfinite(v))


def test_a_history_settles_truncates_and_computes_its_pending_loss():
    from xpnet.run import History

    h = History([0, 1], [3.0, 2.0])
    h.defer(2, lambda: 1.5)
    np.testing.assert_array_equal(h.passes, [0, 1, 2])
    assert h.pending == 2
    h.settle(1.25)
    h.defer(3, lambda: 1.0)
    np.testing.assert_array_equal(h.losses, [3.0, 2.0, 1.25, 1.0])
    assert h.pending is None
    h.defer(4, lambda: 0.5)
    h.truncate(2)
    np.testing.assert_array_equal(h.passes, [0, 1])
    np.testing.assert_array_equal(h.losses, [3.0, 2.0])


# -- divergence ----------------------------------------------------------------------------------
def test_a_diverging_run_stops_with_the_pass_and_finite_params(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    net = Network((3,), activation="relu", init="he", **where(b))
    with pytest.raises(
        DivergenceError, match=r"training diverged: .* at pass \d+; try a smaller learning rate"
    ) as info:
        net.fit(X, y, epochs=400, lr=50.0, reg=0.0, reduction="sum", chunk_size=100)
    assert 0 <= info.value.pass_index < 400
    for v in b.tree_to_numpy(info.value.params).values():
        assert np.all(np.isfinite(v))
    kept = info.value.losses
    assert kept.size == info.value.pass_index and np.all(np.isfinite(kept))
    np.testing.assert_array_equal(net.loss_curve_, kept)  # the network keeps the good part


@pytest.mark.parametrize("record", ["after", "before"])
@pytest.mark.parametrize("every", [1, 4])
def test_divergence_keeps_the_parameters_of_the_last_good_pass(make_backend, moons, record, every):
    """The same pass and parameters whether every loss was recorded or only every 4th (the
    chunk is then run again, measuring each pass, to find the first bad one)."""
    X, y = moons
    b = make_backend("float64")
    setup = dict(activation="identity", init="he", **where(b))
    fit = dict(lr=0.025, reg=0.0, reduction="sum", record=record)
    net = Network((3,), **setup)
    with pytest.raises(DivergenceError) as info:  # diverges at pass 12, in the third chunk
        net.fit(X, y, epochs=400, chunk_size=5, loss_every=every, **fit)
    passes = net.passes_done_  # the parameters kept are those after this many passes
    assert passes >= 10
    again = Network((3,), **setup).fit(X, y, epochs=passes, **fit)
    for k, v in again.params_.items():
        np.testing.assert_allclose(net.params_[k], v, rtol=1e-12, atol=0)
    assert info.value.pass_index == passes + (record == "before")
    assert np.all(net.loss_passes_ < passes) and np.all(np.isfinite(net.loss_curve_))


def test_runaway_growth_counts_as_divergence_before_inf(moons):
    X, y = moons
    net = Network((3,), activation="identity", init="britz")
    with pytest.raises(DivergenceError, match=r"the loss grew to .* \(over 1000 times its start\)"):
        net.fit(X, y, epochs=2000, lr=0.5, reg=0.0, reduction="sum", chunk_size=1000)
    assert np.all(net.loss_curve_ <= 1e3 * max(net.loss_curve_[0], 1))


def test_a_diverging_mini_batch_run_keeps_the_last_good_epoch(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    fit = dict(optimizer="sgd", lr=30.0, batch_size=10, reg=0.0)
    net = Network((8,), activation="identity", **where(b))
    with pytest.raises(DivergenceError, match=r"at epoch \d+; try a smaller learning rate") as info:
        net.fit(X, y, epochs=50, **fit)
    epochs = net.passes_done_
    assert info.value.pass_index == epochs and np.all(np.isfinite(net.loss_curve_))
    again = Network((8,), activation="identity", **where(b)).fit(X, y, epochs=epochs, **fit)
    for k, v in again.params_.items():
        np.testing.assert_allclose(net.params_[k], v, rtol=F64_RTOL, atol=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, r"epochs must be an integer in \[1, inf\); got 0"),
    ({"epochs": 2.5}, r"epochs must be an integer in \[1, inf\); got 2.5"),
    ({"lr": 0.0}, r"lr must be a number in \(0, inf\); got 0.0"),
    ({"lr": float("nan")}, r"lr must be a number in \(0, inf\); got nan"),
    ({"reg": -1.0}, r"reg must be a number in \[0, inf\); got -1.0"),
    ({"reduction": "max"}, "unknown reduction 'max'; valid reductions: sum, mean"),
    ({"record": "during"}, "unknown record 'during'; valid records: after, before"),
    ({"chunk_size": 0}, r"chunk_size must be an integer in \[1, inf\)"),
    ({"loss_every": 0}, r"loss_every must be an integer in \[1, inf\)"),
    ({"batch_size": 0}, r"batch_size must be an integer in \[1, inf\)"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; valid optimizers: sgd, momentum"),
    ({"optimizer": optim.adam(0.1), "lr": 0.1},
     r"an optimizer object \(optimizer\) carries its own rate, schedule and clipping; leave out lr"),
    ({"shuffle": "yes"}, "shuffle must be True or False; got 'yes'"),
])  # fmt: skip
def test_bad_training_settings(moons, kwargs, match):
    X, y = moons
    with pytest.raises(ConfigError, match=match):
        Network((3,)).fit(X, y, **kwargs)


# -- what the estimators had: optimizers and mini-batches ---------------------------------------
OPTIMIZERS = [("sgd", 0.1), ("momentum", 0.05), ("nesterov", 0.05), ("adam", 0.01), ("adamw", 0.01)]


@pytest.mark.parametrize(("name", "lr"), OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [None, 32])
def test_every_optimizer_trains_alike_on_every_backend(make_backend, reference, moons, name, lr,
                                                       batch_size):  # fmt: skip
    X, y = moons
    b = make_backend("float64")
    fit = dict(epochs=15, optimizer=name, lr=lr, batch_size=batch_size)
    want = Network((6,), backend="numpy").fit(X, y, **fit)
    got = Network((6,), **where(b)).fit(X, y, **fit)
    _same(got, want, exact=b.name == "numpy")
    assert want.loss_curve_[-1] < want.loss_curve_[0]
    opt = optim.build(name, lr, total_steps=1)
    assert want.optimizer_.config == opt.config


def test_an_optimizer_object_takes_schedules_and_clipping(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    opt = optim.adamw(optim.cosine(0.02, 60), weight_decay=0.1, clip_norm=0.5)
    want = Network((6,), backend="numpy").fit(X, y, epochs=60, optimizer=opt)
    got = Network((6,), **where(b)).fit(X, y, epochs=60, optimizer=opt)
    _same(got, want, exact=b.name == "numpy")


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100, 500])
def test_mini_batches_follow_the_estimator_and_stream_alike(make_backend, moons, batch_size):
    """Network's mini-batches are the estimators' (scikit-learn's order and batch sizes): the
    same steps as MLPClassifier with the same optimizer; streamed from the host, the same."""
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from xpnet import MLPClassifier

    X, y = moons
    y = y + (X[:, 0] > 1.0)  # three classes: softmax outputs in both (two would be one logistic)
    b = make_backend("float64")
    net = Network((5,), activation="tanh", init="sklearn", init_seed=0, **where(b))
    net.fit(X, y, epochs=4, optimizer="sgd", lr=0.05, batch_size=batch_size, reg=1e-4,
            shuffle=False)  # fmt: skip
    streamed = Network((5,), activation="tanh", init="sklearn", init_seed=0, **where(b)).fit(
        X, y, epochs=4, optimizer="sgd", lr=0.05, batch_size=batch_size, reg=1e-4,
        shuffle=False, stream=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((5,), "tanh", solver="sgd", momentum=0.0, learning_rate_init=0.05,
                            batch_size=batch_size, max_iter=4, shuffle=False, random_state=0,
                            n_iter_no_change=100, **where(b)).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(net.loss_curve_, est.loss_curve_, rtol=F64_RTOL)
    np.testing.assert_allclose(net.params_["W1"], est.coefs_[0], rtol=F64_RTOL, atol=1e-15)
    _same(streamed, net)


def test_library_defaults_suit_any_data_set():
    """A Network with every default on 60000 standardised rows trains (mean loss, an
    initialisation suited to relu); the seeds' summed gradient takes steps 60000 times too
    long here: its loss runs away from where it started and the divergence rule stops it."""
    rng = np.random.RandomState(0)
    X = rng.randn(60000, 8)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    net = Network().fit(X, y, epochs=20)
    assert net.loss_curve_[-1] < 0.5 * net.loss_curve_[0] and net.score(X, y) > 0.8
    with pytest.raises(DivergenceError) as info:  # measured from its start, it runs away
        britz((100,)).fit(X, y, epochs=20, **SEED000_FIT)
    assert info.value.value > 100 * net.loss_curve_[0]


# -- resuming ------------------------------------------------------------------------------------
class Crash(Exception):
    pass


def _crash_at(epoch):
    def on_chunk(first, losses, params):
        if first + 1 >= epoch:
            raise Crash

    return on_chunk


@pytest.mark.parametrize(("name", "batch_size", "stream"), [
    ("adam", None, False), ("momentum", None, False), ("adam", 16, False), ("nesterov", 16, False),
    ("adam", 16, True), ("nesterov", 16, True),
])  # fmt: skip
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(make_backend, moons, tmp_path, name,
                                                              batch_size, stream):  # fmt: skip
    """The optimizer's state, the batch order and the shuffling generator go into the file."""
    X, y = moons
    b = make_backend("float64")
    fit = dict(epochs=30, optimizer=name, lr=0.01, batch_size=batch_size, stream=stream)
    whole = Network((5,), **where(b)).fit(X, y, **fit)
    path = tmp_path / "ck.safetensors"
    with pytest.raises(Crash):
        Network((5,), **where(b)).fit(X, y, **fit, checkpoint=path, checkpoint_every=10,
                                       chunk_size=1, on_chunk=_crash_at(25))  # fmt: skip
    resumed = Network.load(path, **where(b))
    assert resumed.passes_done_ == 20  # the last checkpoint before the crash
    resumed.resume(X, y)
    _same(resumed, whole, exact=b.name == "numpy")


def test_resume_refuses_nonsense(moons, tmp_path):
    X, y = moons
    net = Network((3,)).fit(X, y, epochs=10)
    with pytest.raises(ConfigError, match="trained 10 passes already"):
        net.resume(X, y)
    with pytest.raises(
        ConfigError, match=r"checkpoint needs checkpoint_every \(how often to write it\)"
    ):
        Network((3,)).fit(X, y, epochs=5, checkpoint=tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"labels \[7\] are not among the model's classes"):
        net.resume(X, np.where(y == 1, 7, 0), epochs=20)
    with pytest.raises(ConfigError, match="not fitted"):
        Network((3,)).resume(X, y)


# -- plug-ins ------------------------------------------------------------------------------------
def test_early_stopping_and_an_adaptive_rate_plug_into_network(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    stop = callbacks.EarlyStopping(patience=3, tol=1e-3, shrink=5.0)
    net = Network((8,), **where(b)).fit(X, y, epochs=3000, lr=1.0, callbacks=[stop])
    assert stop.stopped and net.passes_done_ < 3000
    assert optim.learning_rate(net.optimizer_) < 1.0 / 5**3  # shrunk, then stopped
    plain = Network((8,), **where(b)).fit(X, y, epochs=net.passes_done_, lr=1.0)
    assert not np.allclose(plain.params_["W1"], net.params_["W1"])  # the rate did change


def test_a_plug_in_sees_every_chunk_and_can_stop(moons):
    X, y = moons
    seen = []

    class Stop(callbacks.Callback):
        every = 4

        def on_chunk_end(self, run, passes, losses):
            seen.append(run.epoch)
            if run.epoch == 12:
                run.stop = "enough"

    net = Network((3,)).fit(X, y, epochs=100, chunk_size=10, callbacks=[Stop()])
    assert seen == [4, 8, 12] and net.passes_done_ == 12  # chunks cut at multiples of 4


def test_an_interrupt_keeps_the_state_of_the_last_chunk(moons):
    X, y = moons
    interrupt = callbacks.Interrupt()

    class Press(callbacks.Callback):  # Ctrl-C during the chunk that ends at pass 30
        def on_chunk_end(self, run, passes, losses):
            if run.epoch == 30:
                interrupt.signum = 2

    net = Network((3,))
    with pytest.raises(TrainingInterrupted) as info:
        net.fit(X, y, epochs=100, chunk_size=10, callbacks=[Press(), interrupt],
                interruptible=False)  # fmt: skip
    assert info.value.passes_done == net.passes_done_ == 30 and info.value.signum == 2
    net.resume(X, y)
    _same(net, Network((3,)).fit(X, y, epochs=100), exact=True)


def test_the_engine_runs_without_a_front_end(reference, moons):
    """Run + feed + fit: what Network and the estimators translate their settings into."""
    from xpnet import data, init, mlp, train

    X, y = moons
    spec = mlp.Spec((2, 4, 2), "tanh")
    run = Run.start(reference, train.Objective(spec, 0.0, "mean"), optim.adam(0.01),
                           init.initial_params(spec, "glorot", 0))  # fmt: skip
    feed = feeds.Batches(reference, X, data.one_hot(y, 2), 20, rng=np.random.RandomState(0))
    engine.fit(run, feed, epochs=5, loss_every=2)
    np.testing.assert_array_equal(run.history.passes, [0, 2, 4])
    assert run.epoch == 5 and run.history.losses[-1] < run.history.losses[0]


def test_a_run_that_cannot_fit_in_memory_is_refused_before_allocating(moons):
    import tracemalloc

    X, y = moons
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"this run needs about .* of memory \(parameters .*"
                           r"activations .*\) and the cpu has .*: use smaller hidden layers"):  # fmt: skip
            Network(100_000_000).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # refused from the sizes alone: no weights were drawn
    from xpnet import mlp

    need = memory.memory_needed(mlp.Spec((2, 8, 2)), 1000, 10, 8, resident=True)
    assert need["activations"] == 3 * 10 * (8 + 2) * 8 and need["data"] == 1000 * 4 * 8


def test_a_feed_holds_its_data_on_the_device_before_training(make_backend, monkeypatch):
    """A copy to the device may still run when it returns (JAX's does): a feed waits for its
    copies, so that ``fit_seconds_`` counts training, not the copy of the data."""
    be = make_backend("float64")
    synced = []
    monkeypatch.setattr(be, "sync", lambda x=None: synced.append(x))
    X = np.random.RandomState(0).randn(50, 2)
    T = np.eye(2)[(X[:, 0] > 0).astype(int)]
    w = np.ones(50)
    made = [lambda: feeds.FullBatch(be, X, T), lambda: feeds.FullBatch(be, X, T, weights=w),
            lambda: feeds.Batches(be, X, T, 10, rng=np.random.RandomState(0))]  # fmt: skip
    for make in made:
        feed = make()
        (waited,) = synced
        assert waited[0] is feed.X and waited[1] is feed.T and waited[2] is feed.weights
        synced.clear()

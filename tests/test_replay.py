"""Replay (issue 26): a step recorded once and run as one generated loop
(:mod:`xpnet.replay`) computes what the plain loop computes, bit for bit, on every backend that
replays, for every kind of training run; a step it cannot follow runs in the plain loop; the loop
holds no more memory than the plain one."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from xpnet import Network, backends, datasets, replay

NESTED = "a long loop inside a recorded step"


@pytest.fixture
def recordings(monkeypatch):
    """Every call's outcome: True where a step was recorded and replayed, else why it ran in
    the plain loop instead."""
    outcomes: list[bool | str] = []
    record = replay._record

    def spy(*args, **kwargs):
        try:
            got = record(*args, **kwargs)
        except Exception as exc:
            outcomes.append(str(exc) or type(exc).__name__)
            raise
        outcomes.append(True)
        return got

    monkeypatch.setattr(replay, "_record", spy)
    return outcomes


@pytest.fixture
def short(monkeypatch):
    """Loops of 2 passes or more are recorded (the tests' loops are short)."""
    monkeypatch.setattr(replay, "FROM", 2)


X_CLS, Y_CLS = datasets.load("blobs", n_samples=90, noise=1.0, seed=0)
RUNS = {
    # what the seed runs: summed gradients, L2, full batch, the loss every few passes
    "seed 000": ({"hidden": (3,), "init": "britz"},
                 {"epochs": 60, "lr": 0.01, "reg": 0.01, "reduction": "sum", "loss_every": 7}),
    "every loss": ({"hidden": (5,)}, {"epochs": 40, "loss_every": 1}),
    "mini-batch adam relu": ({"hidden": (8, 6), "activation": "relu"},
                             {"epochs": 3, "batch_size": 2, "optimizer": "adam", "lr": 0.01}),
    "dropout momentum sigmoid": ({"hidden": (8,), "activation": "sigmoid"},
                                 {"epochs": 40, "dropout": 0.3, "dropout_seed": 3,
                                  "optimizer": "momentum", "lr": 0.1}),
    "weights nesterov": ({"hidden": (6,)}, {"epochs": 40, "optimizer": "nesterov", "lr": 0.05,
                                            "weights": True}),
    "minibatch dropout weights adamw": ({"hidden": (6,)},
                                        {"epochs": 2, "batch_size": 2, "optimizer": "adamw",
                                         "dropout": 0.2, "weights": True}),
    "squared error no bias": ({"hidden": (4,), "loss": "squared_error", "bias": False},
                              {"epochs": 40, "lr": 0.05}),
}  # fmt: skip


def _fit(backend_name, net_kw, fit_kw):
    fit_kw = dict(fit_kw)
    weights = np.linspace(0.5, 2.0, len(Y_CLS)) if fit_kw.pop("weights", False) else None
    net = Network(backend=backend_name, **net_kw)
    return net.fit(X_CLS, Y_CLS, sample_weight=weights, interruptible=False, **fit_kw)


@pytest.mark.parametrize("run", list(RUNS))
def test_a_replayed_run_is_the_plain_run_bit_for_bit(backend_name, make_backend, monkeypatch,
                                                     recordings, run):  # fmt: skip
    be = make_backend("float64")
    net_kw, fit_kw = RUNS[run]
    monkeypatch.setattr(replay, "FROM", 10**9)
    plain = _fit(backend_name, net_kw, fit_kw)
    assert recordings == []
    monkeypatch.setattr(replay, "FROM", 2)
    replayed = _fit(backend_name, net_kw, fit_kw)
    if be.replays:  # every step recorded, but a group of passes whose long loop records itself
        assert recordings and {r for r in recordings if r is not True} <= {NESTED}, recordings
        assert True in recordings
    else:
        assert recordings == []
    np.testing.assert_array_equal(replayed.loss_curve_, plain.loss_curve_)
    for k, v in plain.params_.items():
        np.testing.assert_array_equal(replayed.params_[k], v, err_msg=k)


def test_which_backends_replay():
    assert backends.BACKENDS["numpy"].replays and backends.BACKENDS["torch"].replays
    assert not backends.BACKENDS["strict"].replays  # the proof of the math runs it plainly
    assert not backends.BACKENDS["jax"].replays  # compiled: lax.scan


def test_below_the_threshold_or_switched_off_nothing_is_recorded(recordings, monkeypatch):
    X, y = datasets.load("moons", n_samples=50, noise=0.2, seed=0)
    Network((3,), backend="numpy").fit(X, y, epochs=replay.FROM - 1, interruptible=False)
    assert recordings == []
    monkeypatch.setenv("XPNET_REPLAY", "0")
    Network((3,), backend="numpy").fit(X, y, epochs=replay.FROM + 1, interruptible=False)
    assert recordings == []
    monkeypatch.delenv("XPNET_REPLAY")
    Network((3,), backend="numpy").fit(X, y, epochs=replay.FROM + 1, interruptible=False)
    assert recordings == [True]


# -- steps the recording cannot follow run in the plain loop ----------------------------------------
def _counting(xp):
    return {"x": xp.asarray(np.arange(6.0).reshape(2, 3)), "n": 0}


STEPS = {
    # reads a value: the plain loop's result depends on it
    "reads a value": lambda c: {"x": c["x"] * 0.5 if float(c["x"][0, 0]) > 1 else c["x"] + 1,
                                "n": c["n"]},
    # branches on a value
    "branches on a value": lambda c: {"x": c["x"] + 1 if c["x"][0, :1] > 100 else c["x"] - 1,
                                      "n": c["n"]},
    # changes a carry leaf that is no array (Python state)
    "counts in Python": lambda c: {"x": c["x"] + 1, "n": c["n"] + 1},
    # returns a carry of another structure
    "changes the structure": lambda c: {"x": c["x"] + 1, "n": c["n"], "extra": 1},
}  # fmt: skip


@pytest.mark.parametrize("name", list(STEPS))
def test_a_step_it_cannot_follow_runs_in_the_plain_loop(recordings, short, name):
    be = backends.select("numpy")
    step = STEPS[name]
    want = _counting(be.xp)
    for _ in range(5):
        want = step(want)
    got = be.repeat(step, _counting(be.xp), 5)
    assert len(recordings) == 1 and recordings[0] is not True
    assert got.keys() == want.keys()
    np.testing.assert_array_equal(got["x"], want["x"])
    assert got["n"] == want["n"]


def _doubling_in_place(c):
    np.multiply(c, 2, out=c)  # into the carry it was given, then a value read: not replayable
    return c + float(c[0] > 100)


def _halving_in_place(c):
    c *= 0.5
    return c + float(c[0] > 100)


@pytest.mark.parametrize("step", [_doubling_in_place, _halving_in_place])
def test_a_step_that_writes_into_its_carry_runs_plainly_from_the_carry_as_it_was(
    recordings, short, step
):
    be = backends.select("numpy")
    want = np.ones(2)
    for _ in range(3):
        want = step(want)
    got = be.repeat(step, np.ones(2), 3)
    assert len(recordings) == 1 and "carry" in recordings[0]
    np.testing.assert_array_equal(got, want)


def test_a_step_that_writes_into_its_data_runs_in_the_plain_loop(recordings, short):
    be = backends.select("numpy")
    data = np.ones(3)

    def step(c):
        np.add(data, c, out=data)  # into an array the step did not compute: not replayable
        return c * 2

    got = be.repeat(step, np.ones(3), 4)
    assert len(recordings) == 1 and recordings[0] is not True
    np.testing.assert_array_equal(got, np.full(3, 16.0))
    np.testing.assert_array_equal(data, np.full(3, 1 + 1 + 2 + 4 + 8.0))  # written 4 times, once


def test_numbers_in_the_recorded_lines_keep_their_meaning(recordings, short):
    """A negative number keeps its sign under ``**``; floats are written exactly; an int
    subclass (bool) and non-finite floats are read as constants."""
    be = backends.select("numpy")

    def step(c):
        return c + (-2.0) ** (c * 0 + 2) + 0.1 * c + np.minimum(c * 0, float("inf")) + True

    want = np.array([1.0, -3.0])
    for _ in range(3):
        want = step(want)
    got = be.repeat(step, np.array([1.0, -3.0]), 3)
    assert recordings == [True]
    np.testing.assert_array_equal(got, want)


def test_scan_gives_every_pass_value_and_the_same_carry(recordings, short):
    be = backends.select("numpy")
    xp = be.xp

    def step(c):
        new = xp.tanh(c @ W) + b
        return new, xp.sum(new * new)

    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((4, 4)), rng.standard_normal(4)
    c0 = rng.standard_normal((3, 4))
    want, values = c0, []
    for _ in range(9):
        want, v = step(want)
        values.append(v)
    got, got_values = be.scan(step, c0, 9)
    assert recordings == [True]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_values, np.stack(values))


def test_the_replayed_loop_holds_what_the_plain_loop_holds(recordings, short):
    """Each value is deleted after its last use: the loop's peak memory is the plain step's."""
    be = backends.select("numpy")
    xp = be.xp
    rng = np.random.default_rng(1)
    W = rng.standard_normal((400, 400)) / 20

    def step(c):
        a = xp.tanh(c @ W)
        b = a * a
        d = (1 - b) @ W.T
        return c - 0.01 * d

    c0 = rng.standard_normal((2000, 400))

    def peak(run):
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def plain():
        c = c0
        for _ in range(6):
            c = step(c)

    base = peak(plain)
    replayed = peak(lambda: be.repeat(step, c0, 6))
    assert recordings == [True]
    assert replayed <= 1.05 * base, (replayed, base)


def _adding(a):
    return lambda c: c + a


def test_a_finished_replay_keeps_nothing_it_read(short):
    """The generated loop and its constants (a streamed block of data) are freed when the call
    returns, without waiting for the garbage collector."""
    be = backends.select("numpy")
    data = np.ones(3)
    gone = weakref.ref(data)
    gc.disable()
    try:
        step = _adding(data)
        got = be.repeat(step, np.zeros(3), 5)
        del data, step
        assert gone() is None
    finally:
        gc.enable()
    np.testing.assert_array_equal(got, np.full(3, 5.0))


def test_a_long_loop_inside_a_recorded_step_records_itself(recordings, short):
    """A group of passes (one measuring the loss, the rest a loop of their own): the outer step
    runs plainly and each call of the inner loop is recorded, instead of one recording holding
    every pass of it."""
    be = backends.select("numpy")

    def group(c):
        c = be.repeat(lambda x: x * 0.5 + 1, c, 3)
        return c, be.xp.sum(c)

    def plain(c):
        for _ in range(3):
            c = c * 0.5 + 1
        return c, np.sum(c)

    got, values = be.scan(group, np.zeros(2), 4)
    want, want_values = np.zeros(2), []
    for _ in range(4):
        want, v = plain(want)
        want_values.append(v)
    assert recordings == [NESTED, True, True, True, True]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(values, np.stack(want_values))


@pytest.mark.only_backend("torch")
def test_a_pytorch_step_writing_in_place_into_its_data_runs_in_the_plain_loop(
    backend_name, make_backend, recordings, short
):
    """PyTorch's in-place methods (``add_``) on an array the step did not compute are refused
    before they write, as NumPy's ``out=`` is."""
    be = make_backend("float64")
    data = be.asarray(np.ones(3))

    def step(c):
        data.add_(c)  # a tensor method with a recorded argument: __torch_function__
        return c * 2

    got = be.repeat(step, be.asarray(np.ones(3)), 4)
    assert len(recordings) == 1 and "did not compute" in recordings[0]
    np.testing.assert_array_equal(be.to_numpy(got), np.full(3, 16.0))
    np.testing.assert_array_equal(be.to_numpy(data), np.full(3, 1 + 1 + 2 + 4 + 8.0))


# -- writes that return nothing -------------------------------------------------------------------
def _zero_negatives_copyto(c):
    z = c - 1.0
    np.copyto(z, 0.0, where=z < 0)  # written into z, returns None
    return z * 1.5


def _zero_negatives_putmask(c):
    z = c - 1.0
    np.putmask(z, z < 0, 0.0)
    return z * 1.5


def _filled_method(c):
    z = c * 1.0
    z.fill(2.0)  # a method that writes into its array and returns None
    return c + z


def _sorted_method(c):
    z = c - 1.0
    z.sort()
    return z * 1.5


def _ufunc_at(c):
    z = c * 1.0
    np.add.at(z, [0, 0], 1.0)
    return z - 0.5


@pytest.mark.parametrize(
    "step", [_zero_negatives_copyto, _zero_negatives_putmask, _filled_method, _sorted_method,
             _ufunc_at],
)  # fmt: skip
def test_a_write_that_returns_nothing_is_replayed(recordings, short, step):
    """``np.copyto``, ``np.putmask``, ``ufunc.at`` and NumPy's in-place methods (``fill``,
    ``sort``) write into an array the step computed and return None: the replayed loop makes
    the same write every pass (it was once left out of the generated loop)."""
    be = backends.select("numpy")
    c0 = np.array([3.0, -1.0, 0.5, 2.0])
    want = c0
    for _ in range(4):
        want = step(want)
    got = be.repeat(step, c0.copy(), 4)
    assert recordings == [True]
    np.testing.assert_array_equal(got, want)


def _copyto_carry(c):
    np.copyto(c, 0.0, where=c < 0)
    return c * 2


def _putmask_carry(c):
    np.putmask(c, c < 0, 0.0)
    return c * 2


def _fill_carry(c):
    c.fill(1.0)
    return c * 2


def _at_carry(c):
    np.add.at(c, [0], 1.0)
    return c * 2


@pytest.mark.parametrize("step", [_copyto_carry, _putmask_carry, _fill_carry, _at_carry])
def test_a_write_into_the_carry_by_any_function_runs_plainly(recordings, short, step):
    """Writes through a function's first argument (not ``out=``) into the carry are refused
    before they happen, as ``out=`` and in-place operators are: the plain loop runs from the
    carry as it was."""
    be = backends.select("numpy")
    c0 = np.array([-1.0, 2.0, 0.5])
    want = c0.copy()
    for _ in range(3):
        want = step(want)
    got = be.repeat(step, c0.copy(), 3)
    assert len(recordings) == 1 and "carry" in recordings[0], recordings
    np.testing.assert_array_equal(got, want)

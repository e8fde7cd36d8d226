"""Mini-batch epochs streamed from the host (issue 7): blocks of batches gathered from memory or a
memory-mapped ``.npy`` and sent to the device while the previous block trains. The same steps as
device-resident epochs on every backend; bounded memory; worker errors reach the caller."""

from __future__ import annotations

import threading
import tracemalloc
import warnings

import numpy as np
import pytest

from conftest import F64_RTOL
from xpnet import init, mlp, optim, stream, train

SPEC = mlp.Spec((6, 9, 3), "tanh", "cross_entropy", True)


def _problem(n: int = 1003, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, SPEC.sizes[0])
    T = np.eye(3)[rng.randint(0, 3, n)]
    return X, T, rng.permutation(n)


def _block(backend, opt, reg):
    """The streamed block program as stream.epoch calls it: ``block(carry, X, T, w, place)``."""
    program = train.block(backend, train.Objective(SPEC, reg, "mean"), opt)
    zero = backend.asarray(np.zeros((), np.int32), dtype=np.int32)
    return lambda carry, Xb, Tb, w, place: program(carry, Xb, Tb, w, zero)


def _sgd_epoch_parts(backend, n):
    """X, T, order, a plain-SGD block function and a starting carry for ``n`` rows."""
    X, T, order = _problem(n)
    block = _block(backend, optim.sgd(0.05), 0.0)
    params = init.initial_params(SPEC, "glorot", np.random.RandomState(0))
    return X, T, order, block, (params, optim.EmptyState())


@pytest.mark.parametrize("n", [7, 100, 1000, 1003])
@pytest.mark.parametrize("per_block", [1, 3, 1000])
def test_the_plan_visits_every_row_once_in_order(n, per_block):
    order = np.random.RandomState(1).permutation(n)
    blocks = stream.plan(order, 100, per_block)
    visited = np.concatenate([b.T.reshape(-1) for b in blocks])
    np.testing.assert_array_equal(visited, order)  # batch after batch, in the order asked
    sizes = [b.shape[0] for b in blocks for _ in range(b.shape[1])]
    assert sizes == [100] * (n // 100) + ([n % 100] if n % 100 else [])
    assert all(b.shape[1] <= per_block for b in blocks)
    if n % 100:
        assert blocks[-1].shape == (n % 100, 1)  # the short batch goes alone


@pytest.mark.parametrize("opt", [optim.sgd(0.1, momentum=0.9), optim.adam(0.01)],
                         ids=["sgd-momentum", "adam"])  # fmt: skip
@pytest.mark.parametrize("budget", [1, 6 * 8 * 300, None], ids=["batch", "3-batches", "all"])
@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_streamed_epoch_equals_a_resident_epoch(make_backend, opt, budget, prefetch):
    backend = make_backend("float64")
    X, T, order = _problem()
    host = init.initial_params(SPEC, "glorot", np.random.RandomState(2))
    resident = train.epoch(backend, train.Objective(SPEC, 0.01, "mean"), opt, X.shape[0], 100)
    block = _block(backend, opt, 0.01)
    carry = carry2 = None
    for _ in range(2):  # two epochs: the optimizer state carries over
        params = backend.tree_asarray(host)
        carry = carry or (params, opt.init(backend.xp, params))
        carry2 = carry2 or (params, opt.init(backend.xp, params))
        carry, want = resident(carry, backend.asarray(X), backend.asarray(T),
                               backend.asarray(order, dtype="int32"))  # fmt: skip
        carry2, got = stream.epoch(backend, block, carry2, X, T, order, 100, budget=budget,
                                   prefetch=prefetch)  # fmt: skip
    assert float(backend.to_numpy(got)) == pytest.approx(float(backend.to_numpy(want)),
                                                         rel=F64_RTOL)  # fmt: skip
    for k in host:
        a, b = backend.to_numpy(carry2[0][k]), backend.to_numpy(carry[0][k])
        np.testing.assert_allclose(a, b, rtol=F64_RTOL, atol=1e-15)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_estimators_stream_to_the_same_model(make_backend, kind):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from xpnet.estimators import MLPClassifier, MLPRegressor

    backend = make_backend("float64")
    X, T, _ = _problem(403)
    y = T.argmax(1) if kind == "classifier" else X @ np.arange(6.0)
    cls = MLPClassifier if kind == "classifier" else MLPRegressor
    setup = dict(hidden_layer_sizes=(7,), max_iter=4, batch_size=50, random_state=0,
                 backend=backend.name, device=backend.device_label)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        want = cls(**setup).fit(X, y)
        got = cls(**setup, stream=True).fit(X, y)
    np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=F64_RTOL)
    for a, b in zip(got.coefs_ + got.intercepts_, want.coefs_ + want.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=F64_RTOL, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_memory_mapped_file_trains_in_bounded_host_memory(tmp_path, monkeypatch, dtype):
    """16-32 MB of inputs on disk, 1 MiB blocks: the fit allocates a few blocks (one training, one
    ready, one being gathered, each gathered in two steps), not the data, and learns what the
    same data in memory teaches."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from xpnet.estimators import MLPClassifier

    rng = np.random.RandomState(0)
    n, d = 40000, 100
    X = rng.randn(n, d).astype(dtype)
    y = (X[:, :3].sum(1) > 0).astype(int)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    monkeypatch.setattr(stream, "BLOCK_BYTES", 2**20)
    monkeypatch.setattr(stream, "PREFETCH", 1)  # the most it holds: a worker gathering ahead
    # float64 training: float32 rows are converted as each block is sent, not all at once
    setup = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=256, random_state=0,
                 backend="numpy", dtype="float64")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tracemalloc.start()
        try:
            got = MLPClassifier(**setup, stream=True).fit(mapped, y)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        want = MLPClassifier(**setup).fit(X, y)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.0f} MiB"
    np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=F64_RTOL)
    assert got.score(X, y) > 0.9


def test_the_device_holds_a_few_blocks_at_most():
    jax = pytest.importorskip("jax")
    from xpnet import backends

    backend = backends.select("jax", "cpu", "float64")
    X, T, order = _problem(8000)
    opt = optim.sgd(0.05)
    params = backend.tree_asarray(init.initial_params(SPEC, "glorot", np.random.RandomState(0)))
    compiled = _block(backend, opt, 0.0)
    budget = 6 * 8 * 100  # one batch of 100 rows a block: 80 blocks
    before = sum(a.nbytes for a in jax.live_arrays())
    live = []

    def block(carry, Xb, Tb, w, place):
        live.append(sum(a.nbytes for a in jax.live_arrays()) - before)
        return compiled(carry, Xb, Tb, w, place)

    stream.epoch(backend, block, (params, optim.EmptyState()), X, T, order, 100, budget=budget,
                 prefetch=1)  # fmt: skip
    block_bytes = 100 * (6 + 3) * 8
    assert len(live) == 80
    assert max(live) <= 3 * block_bytes + 4096  # the one training, one ready, one being sent
    assert X.nbytes + T.nbytes > 20 * max(live)  # 576 kB of data, 3 blocks of 7.2 kB


@pytest.mark.parametrize(("setting", "label", "worker"), [
    (None, "cpu", False), (None, "gpu:0", True), (None, "cpu:0-7", False), (1, "cpu", True),
    (0, "gpu:0", False),
])  # fmt: skip
def test_prefetching_by_default_on_accelerators_only(monkeypatch, setting, label, worker):
    from xpnet import backends

    monkeypatch.setattr(stream, "PREFETCH", setting)
    numpy = backends.select("numpy")
    backend = numpy.placed(numpy.layout, numpy.device, label)
    X, T, order, compiled, carry = _sgd_epoch_parts(backend, 300)
    seen = []

    def block(carry, Xb, Tb, w, place):
        seen.append(any(t.name == "xpnet-prefetch" for t in threading.enumerate()))
        return compiled(carry, Xb, Tb, w, place)

    stream.epoch(backend, block, carry, X, T, order, 100, budget=1)
    assert seen[0] is worker


class _Failing:
    """Rows of X until the ``fail_at``-th read, then an OSError (a disk error, say)."""

    def __init__(self, X: np.ndarray, fail_at: int) -> None:
        self.X, self.shape, self.reads, self.fail_at = X, X.shape, 0, fail_at

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        self.reads += 1
        if self.reads >= self.fail_at:
            raise OSError("read error on the data file")
        return self.X[rows]


@pytest.mark.parametrize("prefetch", [0, 1])
def test_a_failing_read_reaches_the_caller_and_stops_the_worker(prefetch):
    from xpnet import backends

    backend = backends.select("numpy")
    X, T, order, block, carry = _sgd_epoch_parts(backend, 1000)
    with pytest.raises(OSError, match="read error on the data file"):
        stream.epoch(backend, block, carry, _Failing(X, 4), T, order, 100, budget=1,
                     prefetch=prefetch)  # fmt: skip
    assert not [t for t in threading.enumerate() if t.name == "xpnet-prefetch"]


def test_leaving_early_stops_the_worker():
    from xpnet import backends

    backend = backends.select("numpy")
    X, T, order, compiled, carry = _sgd_epoch_parts(backend, 1000)
    calls = []

    def block(carry, Xb, Tb, w, place):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return compiled(carry, Xb, Tb, w, place)

    with pytest.raises(KeyboardInterrupt):
        stream.epoch(backend, block, carry, X, T, order, 100, budget=1, prefetch=2)
    assert not [t for t in threading.enumerate() if t.name == "xpnet-prefetch"]


class _LateCopies:
    """NumPy whose copies to the "device" finish only when waited for, as CUDA copies on a copy
    stream do: an array used before :meth:`ready` of its token holds garbage (NaN)."""

    def __new__(cls, log):
        from xpnet import backends

        backend = backends.select("numpy")
        pending = {}

        def put_async(host):
            array = np.full(host.shape, np.nan, host.dtype)[()]  # the copy has not landed yet
            token = object()
            pending[id(token)] = (array, np.array(host, copy=True))
            log.append("copy")
            return array, token

        def ready(token):
            array, host = pending.pop(id(token))
            array[...] = host
            log.append("wait")

        backend.put_async, backend.ready = put_async, ready
        return backend


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_copies_left_running_are_waited_for_before_their_block_trains(prefetch):
    """The streaming worker starts each block's copies without waiting; the epoch waits for them
    (on the device) just before that block trains: same blocks, same order, same results."""
    from xpnet import backends

    log = []
    late = _LateCopies(log)
    X, T, order, block, carry = _sgd_epoch_parts(late, 1000)
    seen = []

    def spying(c, Xb, Tb, w, place):
        seen.append(np.asarray(Xb).copy())
        return block(c, Xb, Tb, w, place)

    got, loss = stream.epoch(late, spying, carry, X, T, order, 100, budget=6 * 8 * 300,
                             prefetch=prefetch)  # fmt: skip
    want, want_loss = stream.epoch(backends.select("numpy"), block, carry, X, T, order, 100,
                                   budget=6 * 8 * 300, prefetch=0)  # fmt: skip
    assert log.count("copy") == log.count("wait") == 2 * len(seen)  # X and T of every block
    assert all(np.all(np.isfinite(b)) for b in seen)  # never trained on a copy still running
    blocks = stream.plan(order, 100, 3)
    for b, rows in zip(seen, blocks, strict=True):
        np.testing.assert_array_equal(b, X[rows])
    assert float(loss) == float(want_loss)
    for k in want[0]:
        np.testing.assert_array_equal(got[0][k], want[0][k])

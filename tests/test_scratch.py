"""Scratch memory (issue 26): within a fit, NumPy's and PyTorch's (CPU) kernels write their large
results into arrays earlier passes used (:mod:`xpnet.scratch`); an array that anything still
holds, through a reference or a view, is never handed out again; a fit computes the same bits
with and without; the pool goes with its scope."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from xpnet import Network, activations, backends, datasets, fused, replay, scratch


def recycling_backends(test):
    """The backend-matrix test runs for the backends whose fits recycle (on the CPU)."""
    return pytest.mark.only_backend("numpy")(pytest.mark.only_backend("torch")(test))


TANH = activations.get("tanh")


@pytest.fixture
def small(monkeypatch):
    """Results of 64 bytes or more are taken from the pool (the tests' arrays are small)."""
    monkeypatch.setattr(scratch, "MIN_BYTES", 64)


def _recycler(make_backend, dtype="float64"):
    be = make_backend(dtype)
    recycler = be.recycler()
    if recycler is None:
        pytest.skip(f"{be.name} on {be.device_label} keeps its library's caching allocator")
    return be, recycler


def test_which_backends_recycle(backend_name, make_backend):
    be = make_backend("float64")
    recycles = backend_name == "numpy" or (backend_name == "torch" and be.device_label == "cpu")
    assert (be.recycler() is not None) == recycles


def test_outside_a_fit_or_switched_off_nothing_is_taken(monkeypatch, small):
    be = backends.select("numpy")
    x = be.asarray(np.ones((4, 4)))
    assert scratch.take((10, 10), x) is None
    with scratch.recycling(None):
        assert scratch.take((10, 10), x) is None
    with scratch.recycling(be.recycler()):
        assert scratch.take((10, 10), x) is not None
    monkeypatch.setenv("XPNET_SCRATCH", "0")
    with scratch.recycling(be.recycler()):
        assert scratch.take((10, 10), x) is None


@recycling_backends
def test_small_foreign_or_mixed_operands_get_none(backend_name, make_backend):
    be, recycler = _recycler(make_backend)
    x64 = be.asarray(np.ones((3, 3)))
    x32 = be.xp.astype(x64, be.xp.float32)
    with scratch.recycling(recycler):
        assert scratch.take((2, 2), x64) is None  # under MIN_BYTES
        assert scratch.take((1000, 1000), x64, x32) is None  # two dtypes
        assert scratch.take((1000, 1000), [1.0, 2.0]) is None  # not the library's array
        # a recording's stand-in (xpnet.replay): the replayed loop must not write into a constant
        traced = replay.Traced(x64, "c0", replay._Tape(be))
        assert scratch.take((1000, 1000), traced) is None
        assert scratch.take((1000, 1000), x64).shape == (1000, 1000)


def _holders(be):
    """Ways of holding an array: a reference, and views of it."""
    ways = {"reference": lambda b: b, "transpose": lambda b: b.T, "slice": lambda b: b[1:],
            "reshape": lambda b: be.xp.reshape(b, (-1,))}  # fmt: skip
    if be.name == "numpy":
        ways["memoryview"] = memoryview
    else:  # PyTorch: the same memory with no reference to the tensor (the storage's count)
        ways |= {"detach": lambda b: b.detach(), "numpy": lambda b: b.numpy(),
                 "dlpack": np.from_dlpack}  # fmt: skip
    return ways


@recycling_backends
def test_an_array_is_handed_out_again_only_when_nothing_holds_it(backend_name, make_backend,
                                                                 small):  # fmt: skip
    be, recycler = _recycler(make_backend)
    like = be.asarray(np.ones((2, 2)))
    with scratch.recycling(recycler) as pool:
        for way, hold in _holders(be).items():
            first = scratch.take((6, 5), like)
            kept = hold(first)
            first_id = id(first)
            del first
            second = scratch.take((6, 5), like)
            assert id(second) != first_id, way  # still held: a new array
            del second
            again = scratch.take((6, 5), like)
            assert id(again) != first_id, way  # the second one, free again
            del again, kept
            assert id(scratch.take((6, 5), like)) == first_id, way  # nothing holds it now
            assert len(pool.arrays[((6, 5), like.dtype)]) == 2, way


@recycling_backends
def test_the_pool_goes_with_its_scope(backend_name, make_backend, small):
    be, recycler = _recycler(make_backend)
    like = be.asarray(np.ones((2, 2)))
    gc.disable()  # freed by reference counting, not by the collector
    try:
        with scratch.recycling(recycler):
            gone = weakref.ref(scratch.take((8, 8), like))
            assert gone() is not None
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("how", ["reference", "view"])
@recycling_backends
def test_results_kept_across_passes_are_never_written_over(backend_name, make_backend, small,
                                                           monkeypatch, how):  # fmt: skip
    """A plain loop whose step keeps each pass's hidden output (as a plug-in keeping
    predictions would), by a reference or through a view alone: every kept array still holds
    what its pass computed."""
    be, recycler = _recycler(make_backend)
    monkeypatch.setattr(replay, "FROM", 10**9)  # the plain loop: the kernels run every pass
    xp = be.xp
    rng = np.random.default_rng(0)
    W_host, c0 = rng.standard_normal((5, 5)) / 2, rng.standard_normal((7, 5))
    W = be.asarray(W_host)
    kept = []

    def step(c):
        a = fused.activation(xp, TANH, fused.affine(xp, c, W, W[0]))
        kept.append(a if how == "reference" else a[:, 1:])  # a view holds it alone
        return a + 0.5

    with scratch.recycling(recycler) as pool:
        be.repeat(step, be.asarray(c0), 6)
        assert len(pool.arrays[((7, 5), W.dtype)]) >= 6  # none of the kept ones reused
    c, want = c0, []
    for _ in range(6):
        a = np.tanh(c @ W_host + W_host[0])
        want.append(a if how == "reference" else a[:, 1:])
        c = a + 0.5
    for i, (got, expected) in enumerate(zip(kept, want, strict=True)):
        np.testing.assert_allclose(be.to_numpy(got), expected, rtol=1e-12, err_msg=str(i))


X_CLS, Y_CLS = datasets.load("blobs", n_samples=120, noise=1.0, seed=0)
RUNS = {
    "full batch tanh, two layers, validation": (
        {"hidden": (16, 8)},
        {"epochs": 12, "loss_every": 3, "validation_data": (X_CLS[:30], Y_CLS[:30])}),
    "seed 000 settings": ({"hidden": (5,), "init": "britz"},
                          {"epochs": 20, "lr": 0.01, "reg": 0.01, "reduction": "sum"}),
    "relu momentum": ({"hidden": (12,), "activation": "relu"},
                      {"epochs": 10, "optimizer": "momentum", "lr": 0.05}),
    "sigmoid weights": ({"hidden": (12,), "activation": "sigmoid"},
                        {"epochs": 10, "weights": True}),
    "dropout": ({"hidden": (12, 6)}, {"epochs": 10, "dropout": 0.2, "dropout_seed": 1}),
    "mini-batch adam": ({"hidden": (12,)},
                        {"epochs": 3, "batch_size": 40, "optimizer": "adam", "lr": 0.01}),
    "lbfgs": ({"hidden": (10,)}, {"epochs": 15, "optimizer": "lbfgs"}),
    "replayed": ({"hidden": (12,)}, {"epochs": 40, "replay": True}),
}  # fmt: skip


def _fit(backend_name, net_kw, fit_kw):
    fit_kw = dict(fit_kw)
    weights = np.linspace(0.5, 2.0, len(Y_CLS)) if fit_kw.pop("weights", False) else None
    fit_kw.pop("replay", None)
    net = Network(backend=backend_name, **net_kw)
    return net.fit(X_CLS, Y_CLS, sample_weight=weights, interruptible=False, **fit_kw)


@pytest.mark.parametrize("run", list(RUNS))
@recycling_backends
def test_a_fit_is_the_same_bits_with_recycling_and_without(backend_name, make_backend, small,
                                                           monkeypatch, run):  # fmt: skip
    _recycler(make_backend)
    net_kw, fit_kw = RUNS[run]
    monkeypatch.setattr(replay, "FROM", 2 if fit_kw.get("replay") else 10**9)
    reused = []
    real = scratch.Pool.take

    def spy(self, shape, *operands):
        sizes = {k: len(v) for k, v in self.arrays.items()}
        got = real(self, shape, *operands)
        if got is not None and sizes == {k: len(v) for k, v in self.arrays.items()}:
            reused.append(shape)  # handed out again, not made
        return got

    monkeypatch.setattr(scratch.Pool, "take", spy)
    monkeypatch.setenv("XPNET_SCRATCH", "0")
    plain = _fit(backend_name, net_kw, fit_kw)
    assert reused == []
    monkeypatch.setenv("XPNET_SCRATCH", "1")
    recycled = _fit(backend_name, net_kw, fit_kw)
    if not fit_kw.get("replay"):  # (a replayed loop's kernels run only while it is recorded)
        assert reused, "nothing was handed out again"
    np.testing.assert_array_equal(recycled.loss_curve_, plain.loss_curve_)
    for k, v in plain.params_.items():
        np.testing.assert_array_equal(recycled.params_[k], v, err_msg=k)
    if "validation_data" in fit_kw:
        np.testing.assert_array_equal(recycled.validation_loss_curve_,
                                      plain.validation_loss_curve_)  # fmt: skip


def test_a_recycling_fit_holds_no_more_than_a_plain_one(monkeypatch):
    """NumPy's peak memory over a fit of wide passes (20000 x 256 float64 hidden arrays, 40 MiB,
    above :data:`xpnet.scratch.MIN_BYTES` as they are): the pool keeps what a pass needs at
    once, not an array a pass."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 20))
    y = (X[:, 0] > 0).astype(int)

    def peak():
        net = Network((256,), backend="numpy")
        tracemalloc.start()
        try:
            net.fit(X, y, epochs=4, interruptible=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    monkeypatch.setenv("XPNET_SCRATCH", "0")
    plain = peak()
    monkeypatch.setenv("XPNET_SCRATCH", "1")
    recycled = peak()
    assert recycled <= 1.05 * plain, (recycled, plain)

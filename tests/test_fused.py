"""Fast paths (issue 26): every fused kernel a backend registers (:mod:`xpnet.fused`) equals the
generic Array API body it replaces, to 1e-12 in float64 (the float32 tolerance in float32), on
narrow and wide shapes; whole training runs agree with the fast paths and without; and the
namespace that proves the math written once (array-api-strict) has none."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from conftest import F32_RTOL, F64_RTOL
from xpnet import Network, activations, datasets, fused

SHAPES = [(7, 5, 3), (600, 33, 10), (64, 12, 40), (3000, 8, 100)]
"""(rows, inputs, outputs): small; an output layer below :data:`xpnet.backends.NARROW` on more
than :data:`xpnet.backends.NARROW_MIN` inputs (laid out); one above it; a delta of more than
:data:`xpnet.backends.BLOCK` entries (NumPy: a block of rows at a time, the last one short)."""


def _case(be, shape, dtype):
    rng = np.random.default_rng(sum(shape))
    n, i, k = shape
    host = {"a": rng.standard_normal((n, i)), "W": rng.standard_normal((i, k)),
            "b": rng.standard_normal(k), "delta": rng.standard_normal((n, k)),
            "z": rng.standard_normal((n, k)) * 3}  # fmt: skip
    return {name: be.asarray(v.astype(dtype)) for name, v in host.items()}


def _flat(xp, tree):
    return xp.concat([xp.reshape(v, (-1,)) for v in tree.values()])


def _both(be, run):
    """``run()`` with the backend's kernels and with the generic bodies, as host arrays."""
    with be.activate():
        fast = be.to_numpy(run())
        with fused.generic():
            plain = be.to_numpy(run())
    return fast, plain


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_every_kernel_equals_the_body_it_replaces(make_backend, shape, dtype):
    be = make_backend(dtype)
    xp, c = be.xp, _case(be, shape, dtype)
    rtol = F64_RTOL if dtype == "float64" else F32_RTOL
    runs = {
        "affine": lambda: fused.affine(xp, c["a"], c["W"], c["b"]),
        "weight_grad": lambda: fused.weight_grad(xp, c["a"], c["delta"]),
        "weight_grad/L2": lambda: fused.weight_grad(xp, c["a"], c["delta"], c["W"], 0.3),
        "back": lambda: fused.back(xp, c["delta"], c["W"]),
        "softmax": lambda: fused.softmax(xp, c["z"] * 40),  # exp(z) alone would overflow
        "softmax_lse/p": lambda: fused.softmax_lse(xp, c["z"] * 40)[0],
        "softmax_lse/lse": lambda: fused.softmax_lse(xp, c["z"] * 40)[1],
        "descend": lambda: _flat(xp, fused.descend(
            xp, {"W": c["W"], "b": c["b"]}, {"W": c["W"] * 2, "b": c["b"] + 1}, -0.01)),
    }  # fmt: skip
    for name, act in activations.ACTIVATIONS.items():
        if act.forward:
            runs[f"forward/{name}"] = lambda act=act: fused.activation(xp, act, c["z"])
        if not act.backward:
            continue

        def back(act=act):  # a fresh delta each time: a kernel may write into it
            a = act.fn(xp, c["z"])
            return fused.activation_backward(xp, act, c["delta"] * 1, c["z"], a)

        runs[f"backward/{name}"] = back
    for name, run in runs.items():
        fast, plain = _both(be, run)
        scale = max(float(np.max(np.abs(plain))), 1.0)
        np.testing.assert_allclose(fast, plain, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_kernels_consume_only_the_delta_they_are_given(make_backend):
    be = make_backend("float64")
    xp, c = be.xp, _case(be, (9, 4, 6), "float64")
    before = {k: be.to_numpy(v).copy() for k, v in c.items()}
    with be.activate():
        fused.affine(xp, c["a"], c["W"], c["b"])
        fused.weight_grad(xp, c["a"], c["delta"])
        fused.weight_grad(xp, c["a"], c["delta"], c["W"], 0.5)
        fused.softmax(xp, c["z"])
        fused.back(xp, c["delta"], c["W"])
        fused.activation(xp, activations.get("tanh"), c["z"])
        new = fused.descend(xp, {"W": c["W"]}, {"W": c["W"] * 2}, -0.1)
        assert new["W"] is not c["W"]
        act = activations.get("tanh")
        fused.activation_backward(xp, act, c["delta"] * 1, None, act.fn(xp, c["z"]))
    for k, v in c.items():
        np.testing.assert_array_equal(be.to_numpy(v), before[k], err_msg=k)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_pass_that_measures_the_loss_steps_as_one_that_does_not(make_backend, dtype):
    """The probabilities that come with the log-sum-exp are :func:`fused.softmax`'s to the last
    bit, kernels and generic bodies alike: recording a loss must not move the parameters."""
    be = make_backend(dtype)
    xp, c = be.xp, _case(be, (600, 33, 10), dtype)
    with be.activate():
        for generic in (False, True):
            with fused.generic() if generic else contextlib.nullcontext():
                alone = be.to_numpy(fused.softmax(xp, c["z"]))
                paired = be.to_numpy(fused.softmax_lse(xp, c["z"])[0])
            np.testing.assert_array_equal(paired, alone, err_msg=f"generic={generic}")


def test_numpy_takes_a_large_derivative_a_block_at_a_time():
    """The delta sent back through a wide layer needs no temporary of its size."""
    import tracemalloc

    from xpnet import backends

    be = backends.select("numpy")
    rng = np.random.default_rng(0)
    delta, a = rng.standard_normal((40000, 100)), np.tanh(rng.standard_normal((40000, 100)))
    want = delta * (1 - a * a)
    for name in ("tanh", "sigmoid"):
        act = activations.get(name)
        got = delta.copy()
        tracemalloc.start()
        fused.activation_backward(be.xp, act, got, None, a)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= 2 * backends.BLOCK * 8 < delta.nbytes / 4, name
        if name == "tanh":
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_training_is_the_same_with_the_fast_paths_and_without(backend_name, make_backend,
                                                              activation):  # fmt: skip
    make_backend("float64")
    X, y = datasets.load("blobs", n_samples=120, noise=1.0, seed=0)

    def fit():
        net = Network((16, 8), activation=activation, backend=backend_name)
        return net.fit(X, y, epochs=6, batch_size=32, optimizer="adam", lr=0.01, dropout=0.1,
                       dropout_seed=2)  # fmt: skip

    fast = fit()
    with fused.generic():
        plain = fit()
    np.testing.assert_allclose(fast.loss_curve_, plain.loss_curve_, rtol=F64_RTOL)
    for k, v in plain.params_.items():
        np.testing.assert_allclose(fast.params_[k], v, rtol=1e-11, atol=1e-13, err_msg=k)
    if backend_name == "numpy":  # NumPy's kernels run the generic bodies' operations in order
        np.testing.assert_array_equal(fast.loss_curve_, plain.loss_curve_)


def test_which_namespaces_have_kernels():
    from xpnet import backends

    numpy = backends.select("numpy")
    assert fused.kernel(numpy.xp, "affine") is not None
    with fused.generic():
        assert fused.kernel(numpy.xp, "affine") is None
    strict = pytest.importorskip("array_api_strict")
    assert fused.kernel(strict, "affine") is None  # the proof of the generic bodies
    assert fused.kernel(backends.select("strict").xp, "tanh_backward") is None


# -- JAX's split weight gradients ---------------------------------------------------------------
@pytest.mark.parametrize(
    "rows, entries, threads, parts",
    [
        (60000, 784 * 256, 2, 2),  # the wide workload's first layer: a half to each core
        (60000, 784 * 256, 1, 1),  # one thread: nothing to share out
        (60000, 256 * 10, 2, 1),  # a gradient too small to gain
        (59999, 784 * 256, 2, 1),  # no part count from 2 to 8 divides the rows: a slice copies
        (3 * 4097, 784 * 256, 2, 3),  # odd rows: three parts
        (8191, 784 * 256, 2, 1),  # two parts would hold fewer than SPLIT_ROWS rows
        (8192, 4096, 2, 2),  # both thresholds just met
        (60000, 784 * 256, 16, 12),  # 16 to 64 parts hold too few rows: fewer parts
    ],
)
def test_a_weight_gradient_is_split_where_its_rows_divide(rows, entries, threads, parts):
    from xpnet import backends

    assert backends.split_parts(rows, entries, threads) == parts


@pytest.fixture
def split(monkeypatch):
    """JAX CPU programs traced from now on split the weight gradients of 8 rows or more over
    two threads (the thresholds made small, the machine's CPUs made two); returns the list of
    the parts each weight gradient traced was split into (1: not split)."""
    from xpnet import backends, train

    monkeypatch.setattr(backends, "SPLIT_ROWS", 4)
    monkeypatch.setattr(backends, "SPLIT_MIN", 1)
    monkeypatch.setattr(backends, "cpu_threads", lambda: 2)
    monkeypatch.setattr(train, "_COMPILED", {})  # programs traced before did not split
    seen: list[int] = []
    real = backends.split_parts

    def spy(*args):
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(backends, "split_parts", spy)
    return seen


@pytest.mark.only_backend("jax")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rows", [64, 63, 7])
@pytest.mark.parametrize("inputs, outputs", [(9, 5), (5, 9)])
def test_a_split_weight_gradient_equals_the_product_whole(
    make_backend, split, dtype, rows, inputs, outputs
):
    """Inside a compiled program (where JAX's kernel splits), in halves (64 rows), in thirds (63)
    and whole (7 rows: too few), transposed (fewer outputs than inputs) and not, with and
    without the L2 part."""
    be = make_backend(dtype)
    c = _case(be, (rows, inputs, outputs), dtype)
    cpu = be.program_threads() > 1
    rtol = F64_RTOL if dtype == "float64" else F32_RTOL
    for reg in (0.0, 0.3):

        def grad(a, delta, W, reg=reg):
            return fused.weight_grad(be.xp, a, delta, W, reg)

        args = (c["a"], c["delta"], c["W"])
        fast = be.to_numpy(be.jit(grad)(*args))
        with fused.generic():
            plain = be.to_numpy(be.jit(grad)(*args))
        assert fast.shape == plain.shape == (inputs, outputs)
        scale = float(np.max(np.abs(plain)))
        np.testing.assert_allclose(fast, plain, rtol=rtol, atol=rtol * scale, err_msg=f"{reg}")
    parts = {64: 2, 63: 3, 7: 1}[rows] if cpu else 1  # a GPU's products are its library's
    assert split == [parts] * 2
    import jax

    flipped = cpu and outputs < inputs
    traced = str(jax.make_jaxpr(be.jit(grad))(*args))
    assert ("optimization_barrier" in traced) == flipped, traced
    rows_, cols = (outputs, inputs) if flipped else (inputs, outputs)
    batched = f"f{dtype[-2:]}[{parts},{rows_},{cols}] = dot_general"  # one batch over the parts
    assert (batched in traced) == (parts > 1), traced


@pytest.mark.parametrize(
    "rows, inputs, outputs, threads, flipped",
    [
        (60000, 256, 10, 2, True),  # the wide workload's output layer: 0.3x the time
        (32, 256, 10, 2, True),  # narrow: over few rows too
        (256, 784, 32, 1, True),  # one thread too
        (256, 784, 33, 2, False),  # wider than TRANSPOSE_NARROW over few rows: 1.27x at 64
        (16384, 784, 128, 2, True),  # up to TRANSPOSE_MAX over TRANSPOSE_ROWS rows
        (16383, 784, 128, 2, False),
        (60000, 784, 129, 2, False),  # wider than TRANSPOSE_MAX
        (60000, 10, 256, 2, False),  # fewer inputs than outputs: already the narrow side first
        (60000, 64, 64, 2, False),
        (60000, 256, 10, 0, False),  # not a one-CPU-device program
    ],
)
def test_a_narrow_weight_gradient_is_computed_transposed(rows, inputs, outputs, threads, flipped):
    from xpnet import backends

    assert backends.transposed(rows, inputs, outputs, threads) is flipped


@pytest.mark.only_backend("jax")
@pytest.mark.parametrize("batch_size", [None, 32])
def test_jax_training_with_split_gradients_is_training_without(make_backend, split, batch_size):
    """Full batch and mini-batches (the last one short), compiled with JAX's kernels and with
    the generic bodies (traced apart: :func:`xpnet.train.cached` keys them apart), agree."""
    be = make_backend("float64")
    X, y = datasets.load("blobs", n_samples=120, noise=1.0, seed=0)

    def fit():
        net = Network((16, 8), backend=be.name, device=be.device_label)
        return net.fit(X, y, epochs=6, batch_size=batch_size, optimizer="adam", lr=0.01)

    from xpnet import train

    fast = fit()
    traced, programs = len(split), len(train._COMPILED)
    with fused.generic():
        plain = fit()
    assert len(train._COMPILED) > programs  # compiled again, without the kernels
    assert len(split) == traced
    assert max(split) == (2 if be.program_threads() > 1 else 1)
    np.testing.assert_allclose(fast.loss_curve_, plain.loss_curve_, rtol=F64_RTOL)
    for k, v in plain.params_.items():
        np.testing.assert_allclose(fast.params_[k], v, rtol=1e-11, atol=1e-13, err_msg=k)


def test_a_mesh_or_a_gpu_changes_no_gradient(monkeypatch):
    """A data-parallel backend's rows are split over its devices already; a GPU's products are
    its library's: their programs have no CPU threads for the kernel."""
    pytest.importorskip("jax")
    from xpnet import backends

    monkeypatch.setattr(backends, "cpu_threads", lambda: 4)
    be = backends.select("jax", "cpu", "float32")
    assert be.program_threads() == 4
    mesh = backends.Layout()
    mesh.shards = 2
    assert be.placed(mesh, be.device, "cpu:0-1").program_threads() == 0
    gpu = be.placed(be.layout, type("Device", (), {"platform": "gpu"})(), "gpu:0")
    assert gpu.program_threads() == 0


def test_programs_built_with_and_without_the_kernels_are_kept_apart(monkeypatch):
    from xpnet import train

    monkeypatch.setattr(train, "_COMPILED", {})
    fast = train.cached("program", object)
    with fused.generic():
        plain = train.cached("program", object)
        assert train.cached("program", object) is plain
    assert plain is not fast and train.cached("program", object) is fast


def test_lbfgs_searches_in_the_fits_context(monkeypatch):
    """SciPy's search runs in a worker thread: :func:`fused.generic` holds there as in the
    caller (so does a fit's scratch memory, tests/test_scratch.py)."""
    seen = []
    real = fused.kernel

    def spy(xp, name):
        seen.append(fused.enabled())
        return real(xp, name)

    monkeypatch.setattr(fused, "kernel", spy)
    X, y = datasets.load("blobs", n_samples=60, noise=1.0, seed=0)
    with fused.generic():
        Network((4,), backend="numpy").fit(X, y, epochs=3, optimizer="lbfgs")
    assert seen and not any(seen)

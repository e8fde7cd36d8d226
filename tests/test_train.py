"""The training programs: full-batch plans that compute the loss only where asked, compiled
loops on JAX, and a cache that never hands one optimizer's program to another."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import F64_RTOL
from xpnet import Network, datasets, feeds, mlp, optim, train
from xpnet.gradcheck import problem
from xpnet.run import Run

SPEC = mlp.Spec((3, 5, 2), "tanh", "cross_entropy", True)
OBJ = train.Objective(SPEC, 0.01, "sum")


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=100, noise=0.2, seed=3)


@pytest.mark.parametrize(("n", "offsets"), [
    (1, []), (1, [0]), (5, [0, 1, 2, 3, 4]), (7, [3]), (10, [0, 2, 4, 5, 6, 9]),
    (12, [0, 4, 8]), (12, [1, 5, 9]), (12, [0, 4, 8, 11]), (9, [2, 3, 7]),
])  # fmt: skip
def test_a_plan_measures_the_losses_it_promises(make_backend, n, offsets):
    """Any plan gives the losses before the passes asked for and at the end, and the same
    parameters as a chunk that measures every pass."""
    backend = make_backend("float64")
    params, X, T = problem(SPEC, 16, seed=2)
    opt = optim.sgd(0.05, momentum=0.9)
    data = backend.asarray(X), backend.asarray(T), None

    def start():
        p = backend.tree_asarray(params)
        return p, opt.init(backend.xp, p)

    dense_run = train.full_batch(backend, OBJ, opt, (("L", n), ("M",)))
    (want_p, _), dense = dense_run(start(), *data)
    dense = backend.to_numpy(dense)
    plan = train.plan_full_batch(n, offsets)
    assert plan[-1] == ("M",)
    (got_p, _), out = train.full_batch(backend, OBJ, opt, plan)(start(), *data)
    np.testing.assert_allclose(backend.to_numpy(out), dense[[*offsets, n]], rtol=F64_RTOL)
    for k in params:
        np.testing.assert_allclose(backend.to_numpy(got_p[k]), backend.to_numpy(want_p[k]),
                                   rtol=F64_RTOL, atol=1e-15)  # fmt: skip


def test_plans_group_regular_losses():
    assert train.plan_full_batch(1000, range(0, 1000, 100)) == (("B", 10, 100), ("M",))
    assert train.plan_full_batch(5, range(5)) == (("L", 5), ("M",))
    assert train.plan_full_batch(1000, [0]) == (("L", 1), ("P", 999), ("M",))
    assert train.plan_full_batch(7, []) == (("P", 7), ("M",))


def test_jax_runs_the_chunk_as_one_compiled_program():
    jax = pytest.importorskip("jax")
    from xpnet import backends

    b = backends.select("jax", "cpu", "float64")
    spec = mlp.Spec((2, 3, 2))
    opt = optim.sgd(0.01)
    run = train.full_batch(b, train.Objective(spec, 0.01, "sum"), opt, (("B", 10, 100), ("M",)))
    params = b.tree_asarray({k: np.ones(s) for k, s in spec.param_shapes().items()})
    X, T = b.asarray(np.eye(2)), b.asarray(np.eye(2))
    text = run.lower((params, opt.init(b.xp, params)), X, T, None).as_text()
    assert "while" in text  # lax.scan lowers to loops, not 1000 unrolled steps
    assert isinstance(run, jax.stages.Wrapped)


def _sgd_by_hand(lr):
    """Plain gradient descent written as a hand-made transformation (no description)."""

    def init_fn(xp, params):
        return ()

    def update_fn(xp, grads, state, params):
        return {k: -lr * g for k, g in grads.items()}, state

    return optim.Optimizer(init_fn, update_fn)


def test_a_second_fit_reuses_the_compiled_programs(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    train._COMPILED.clear()  # an empty cache: a miss would show as a new entry
    setup = dict(backend=b.name, device=b.device_label)
    first = Network((4,), **setup).fit(X, y, epochs=20, lr=0.004)
    built = dict(train._COMPILED)
    second = Network((4,), **setup).fit(X, y, epochs=20, lr=0.004)
    assert train._COMPILED.keys() == built.keys()
    assert all(train._COMPILED[k] is v for k, v in built.items())
    np.testing.assert_array_equal(first.loss_curve_, second.loss_curve_)
    other = Network((4,), **setup).fit(X, y, epochs=20, lr=0.005)
    assert not np.array_equal(other.loss_curve_, first.loss_curve_)  # lr is part of the key
    assert len(train._COMPILED) > len(built)


@pytest.mark.parametrize(("batch_size", "stream"), [(None, False), (16, False), (33, False),
                                                    (16, True), (33, True)])  # fmt: skip
def test_two_optimizers_never_share_a_program(make_backend, moons, batch_size, stream):
    """Two hand-written optimizers (no description to tell them apart) train one after the
    other on the same data: each must give its own result, that of the described optimizer
    doing the same thing. A program reused across them would give the first one's."""
    X, y = moons
    b = make_backend("float64")
    setup = dict(backend=b.name, device=b.device_label)
    fit = dict(epochs=6, batch_size=batch_size, stream=stream)
    got = [Network((4,), **setup).fit(X, y, optimizer=_sgd_by_hand(lr), **fit) for lr in (0.1, 0.3)]
    want = [Network((4,), **setup).fit(X, y, optimizer=optim.sgd(lr), **fit) for lr in (0.1, 0.3)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.loss_curve_, w.loss_curve_, rtol=F64_RTOL)
        for k in w.params_:
            np.testing.assert_allclose(g.params_[k], w.params_[k], rtol=F64_RTOL, atol=1e-15)
    assert not np.allclose(got[0].params_["W1"], got[1].params_["W1"])


def test_descriptions_tell_optimizers_apart():
    same = [optim.adam(0.01), optim.adam(0.01)]
    assert same[0].key == same[1].key and same[0].key is not None
    different = [optim.adam(0.01), optim.adam(0.02), optim.adamw(0.01), optim.sgd(0.01),
                 optim.sgd(0.01, momentum=0.9), optim.sgd(optim.inverse_scaling(0.01)),
                 optim.adam(0.01, sklearn_eps=True), optim.adam(0.01, clip_norm=1.0)]  # fmt: skip
    assert len({o.key for o in different}) == len(different)
    hand = [_sgd_by_hand(0.1), _sgd_by_hand(0.1)]
    assert hand[0].config is None and hand[0].key != hand[1].key
    # a constant schedule is a number: the same description, the same state layout
    assert optim.sgd(optim.constant(0.1)).key == optim.sgd(0.1).key


class _OtherDevice:
    """array-api-strict with the data on its second device ("device1"): any array a program
    makes without taking the data's device (``xp.zeros(())`` lands on the default one) fails
    to combine with the data, as a CPU index fails with CUDA data on PyTorch."""

    def __new__(cls):
        xp = pytest.importorskip("array_api_strict")
        from xpnet import backends

        backend = backends.select("strict")
        device = xp.Device("device1")
        backend._put = lambda host: xp.asarray(host, device=device)  # type: ignore[method-assign]
        return backend


@pytest.mark.parametrize("opt", [optim.sgd(0.1), optim.sgd(optim.cosine(0.1, 50), 0.9, True),
                                 optim.adam(0.01, clip_norm=1.0), optim.adamw(0.01)],
                         ids=["sgd", "nesterov-cosine", "adam-clip", "adamw"])  # fmt: skip
def test_every_array_a_program_makes_is_on_the_datas_device(opt):
    from xpnet import engine

    backend = _OtherDevice()
    params, X, T = problem(SPEC, 40, seed=1)
    made = [feeds.FullBatch(backend, X, T, record="after"),
            feeds.FullBatch(backend, X, T, record="before")]  # fmt: skip
    for stream in (False, True):
        rng = np.random.RandomState(0)
        made.append(feeds.Batches(backend, X, T, 16, rng=rng, stream=stream, prefetch=0))
    for feed in made:
        run = Run.start(backend, OBJ, opt, params)
        engine.fit(run, feed, epochs=5, loss_every=2)
        assert run.epoch == 5
        assert all(v.device == backend.xp.Device("device1") for v in run.params.values())


@pytest.mark.parametrize("kind", ["full", "epoch", "block"])
def test_jax_programs_ask_for_full_float32_matrix_products(kind):
    """A GPU computes float32 products in TF32 by default (10 bits of mantissa): every program
    xpnet compiles asks for full precision, so the float32 tolerances hold on GPUs too."""
    import re

    pytest.importorskip("jax")
    from xpnet import backends

    b = backends.select("jax", "cpu", "float32")
    spec, opt = mlp.Spec((2, 3, 2)), optim.sgd(0.1)
    params = b.tree_asarray({k: np.ones(s) for k, s in spec.param_shapes().items()})
    carry = (params, opt.init(b.xp, params))
    X, order = b.asarray(np.eye(2)), b.asarray(np.arange(2), dtype="int32")
    if kind == "full":
        full = train.full_batch(b, train.Objective(spec), opt, (("L", 2), ("M",)))
        lowered = full.lower(carry, X, X, None)
    elif kind == "epoch":
        lowered = train.epoch(b, train.Objective(spec), opt, 2, 1).lower(carry, X, X, order)
    else:
        zero = b.asarray(np.zeros((), np.int32), dtype="int32")
        block = train.block(b, train.Objective(spec), opt)
        lowered = block.lower(carry, X[:, None], X[:, None], None, zero)
    text = lowered.as_text()
    assert text.count("dot_general") >= 4
    assert set(re.findall(r"precision = \[\w+, \w+\]", text)) == {"precision = [HIGHEST, HIGHEST]"}

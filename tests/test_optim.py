"""Optimizers and schedules against optax (JAX) and PyTorch: the same parameters after 100 steps
to 1e-12 in float64, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet import backends, feeds, mlp, optim
from xpnet.errors import ConfigError
from xpnet.gradcheck import problem
from xpnet.run import Run

SPEC = mlp.Spec((3, 5, 3))
STEPS = 100

# (id, xpnet optimizer, optax builder, torch builder)
CONFIGS = [
    ("sgd", lambda: optim.sgd(0.05), lambda ox: ox.sgd(0.05), lambda t, p: t.optim.SGD(p, lr=0.05)),
    ("momentum", lambda: optim.sgd(0.05, momentum=0.9),
     lambda ox: ox.sgd(0.05, momentum=0.9), lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("nesterov", lambda: optim.sgd(0.05, momentum=0.9, nesterov=True),
     lambda ox: ox.sgd(0.05, momentum=0.9, nesterov=True),
     lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda: optim.adam(0.01), lambda ox: ox.adam(0.01),
     lambda t, p: t.optim.Adam(p, lr=0.01)),
    ("adamw", lambda: optim.adamw(0.01, weight_decay=0.05),
     lambda ox: ox.adamw(0.01, weight_decay=0.05),
     lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.05)),
    ("adam-clipped", lambda: optim.adam(0.01, clip_norm=0.1),
     lambda ox: ox.chain(ox.clip_by_global_norm(0.1), ox.adam(0.01)), None),
    ("adam-cosine", lambda: optim.adam(optim.cosine(0.02, 80)),
     lambda ox: ox.adam(ox.cosine_decay_schedule(0.02, 80)), None),
    ("sgd-step", lambda: optim.sgd(optim.step_decay(0.1, 30, 0.5)),
     # optax's exponential_decay rounds the rate to float32, so the schedule is written out here
     lambda ox: ox.sgd(lambda count: 0.1 * 0.5 ** (count // 30)), None),
]  # fmt: skip


def _ours(backend, make_opt):
    params, X, T = problem(SPEC, 16, seed=4)
    xp = backend.xp
    p = backend.tree_asarray(params)
    Xd, Td = backend.asarray(X), backend.asarray(T)
    opt = make_opt()
    state = opt.init(xp, p)
    for _ in range(STEPS):
        _, grads = mlp.loss_and_grads(xp, p, Xd, Td, SPEC, 0.0, "mean")
        p, state = optim.step(opt, xp, grads, state, p)  # what a training step runs
    return backend.tree_to_numpy(p)


@pytest.mark.parametrize(
    ("name", "make", "make_optax", "make_torch"), CONFIGS, ids=[c[0] for c in CONFIGS]
)
def test_matches_optax(make_backend, name, make, make_optax, make_torch):
    optax = pytest.importorskip("optax")
    jb = backends.select("jax", "cpu", "float64")
    got = _ours(make_backend("float64"), make)
    params, X, T = problem(SPEC, 16, seed=4)
    p = jb.tree_asarray(params)
    tx = make_optax(optax)
    state = tx.init(p)
    for _ in range(STEPS):
        _, grads = mlp.loss_and_grads(jb.xp, p, jb.asarray(X), jb.asarray(T), SPEC, 0.0, "mean")
        updates, state = tx.update(grads, state, p)
        p = optax.apply_updates(p, updates)
    for k, v in jb.tree_to_numpy(p).items():
        np.testing.assert_allclose(got[k], v, rtol=1e-12, atol=1e-14, err_msg=k)
        assert not np.allclose(v, params[k])  # the parameters did move


@pytest.mark.peer("torch")
@pytest.mark.parametrize(
    ("name", "make", "make_optax", "make_torch"),
    [c for c in CONFIGS if c[3]],
    ids=[c[0] for c in CONFIGS if c[3]],
)
def test_matches_pytorch(make_backend, name, make, make_optax, make_torch):
    torch = pytest.importorskip("torch")
    got = _ours(make_backend("float64"), make)
    tb = backends.select("torch", "cpu", "float64")
    params, X, T = problem(SPEC, 16, seed=4)
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    opt = make_torch(torch, list(tensors.values()))
    for _ in range(STEPS):
        with torch.no_grad():
            _, grads = mlp.loss_and_grads(tb.xp, {k: t.detach() for k, t in tensors.items()},
                                          tb.asarray(X), tb.asarray(T), SPEC, 0.0, "mean")  # fmt: skip
        for k, t in tensors.items():
            t.grad = grads[k].clone()
        opt.step()
    for k, t in tensors.items():
        np.testing.assert_allclose(got[k], t.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


def test_plain_sgd_is_the_seeds_update_bit_for_bit(reference):
    params = problem(SPEC, 8)[0]
    opt = optim.sgd(0.3)
    grads = {k: np.random.RandomState(0).randn(*v.shape) for k, v in params.items()}
    updates, state = opt.update(np, grads, opt.init(np, params), params)
    new = optim.apply_updates(params, updates)
    for k, v in params.items():
        np.testing.assert_array_equal(new[k], v - 0.3 * grads[k])
    assert state == optim.EmptyState()


@pytest.mark.parametrize("make", [c[1] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_a_fused_step_is_the_update_then_applied(make_backend, make):
    """:attr:`optim.Optimizer.descend` (plain gradient descent's last link, fused where the
    backend has a kernel) gives what ``update`` and ``apply_updates`` give: bit for bit in
    NumPy, to 1e-12 elsewhere; the state alike."""
    be = make_backend("float64")
    xp, opt = be.xp, make()
    params, X, T = problem(SPEC, 16, seed=5)
    p = be.tree_asarray(params)
    _, grads = mlp.loss_and_grads(xp, p, be.asarray(X), be.asarray(T), SPEC, 0.0, "mean")
    state = opt.init(xp, p)
    fused_p, fused_state = optim.step(opt, xp, grads, state, p)
    updates, plain_state = opt.update(xp, grads, state, p)
    plain_p = optim.apply_updates(p, updates)
    last = opt.config[-1] if opt.config[0] == "chain" else opt.config
    assert (opt.descend is not None) == (last[0] == "scale_by_learning_rate"
                                         and last[1][0] == "constant")  # fmt: skip
    for k in params:
        got, want = be.to_numpy(fused_p[k]), be.to_numpy(plain_p[k])
        if be.name == "numpy":
            np.testing.assert_array_equal(got, want, err_msg=k)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=k)
    for a, b in zip(_leaves(fused_state), _leaves(plain_state), strict=True):
        np.testing.assert_array_equal(be.to_numpy(a), be.to_numpy(b))


def _leaves(tree):
    """The arrays of an optimizer state (tuples and named tuples of dicts of arrays)."""
    if isinstance(tree, dict):
        return [v for k in sorted(tree) for v in _leaves(tree[k])]
    if isinstance(tree, tuple):
        return [v for t in tree for v in _leaves(t)]
    return [tree]


def test_schedules(reference):
    xp = reference.xp
    t = np.arange(0.0, 200.0)
    np.testing.assert_allclose(optim.constant(0.1).fn(xp, t), 0.1)
    np.testing.assert_allclose(optim.inverse_scaling(0.1, 0.5).fn(xp, t), 0.1 / np.sqrt(t + 1))
    np.testing.assert_allclose(optim.step_decay(0.1, 50, 0.5).fn(xp, t), 0.1 * 0.5 ** (t // 50))
    cos = optim.cosine(0.1, 100, 0.01).fn(xp, t)
    assert cos[0] == pytest.approx(0.1) and cos[50] == pytest.approx(0.055)
    np.testing.assert_allclose(cos[100:], 0.01)
    assert math.isclose(cos[25], 0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi / 4)))
    np.testing.assert_array_equal(optim.cosine(0.1, 100, 0.01, warmup=0).fn(xp, t), cos)
    warm = optim.cosine(0.1, 100, 0.01, warmup=10).fn(xp, t)  # 10 up to 0.1, 90 down
    np.testing.assert_allclose(warm[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-15)
    np.testing.assert_allclose(warm[10:101], 0.01 + 0.09 * 0.5 * (1 + np.cos(np.pi * np.arange(91) / 90)),
                               rtol=1e-14)  # fmt: skip
    np.testing.assert_allclose(warm[100:], 0.01)
    with pytest.raises(ConfigError, match=r"warmup \(100 steps\) must be shorter"):
        optim.cosine(0.1, 100, warmup=100)


def test_global_norm_clipping(reference):
    xp = reference.xp
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # norm 5
    clipped, _ = optim.clip_by_global_norm(1.0).update(xp, grads, optim.EmptyState(), grads)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    same, _ = optim.clip_by_global_norm(10.0).update(xp, grads, optim.EmptyState(), grads)
    np.testing.assert_array_equal(same["a"], grads["a"])


@pytest.mark.parametrize("make", [c[1] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_a_description_rebuilds_the_optimizer(reference, make):
    """What model files store (JSON of the description) rebuilds an optimizer that makes the
    same updates from the same state."""
    import json

    opt = make()
    again = optim.from_config(json.loads(json.dumps(opt.config)))
    assert again.config == opt.config
    np.testing.assert_array_equal(_ours(reference, lambda: again)["W1"],
                                  _ours(reference, make)["W1"])  # fmt: skip


def test_a_new_learning_rate_keeps_the_rest():
    opt = optim.sgd(optim.cosine(0.1, 50), momentum=0.9, clip_norm=2.0)
    assert optim.learning_rate(opt) == 0.1
    slower = optim.with_learning_rate(opt, 0.02)
    assert optim.learning_rate(slower) == 0.02
    assert slower.config == optim.sgd(optim.cosine(0.02, 50), momentum=0.9, clip_norm=2.0).config
    with pytest.raises(ConfigError, match="unknown optimizer description"):
        optim.from_config(("scale_by_magic", 1.0))


@pytest.mark.parametrize("config", [
    ["scale_by_learning_rate", ["constant", "fast"]], ["trace", None, False],
    ["chain", ["scale_by_adam", float("nan"), 0.999, 1e-8, False]], [], "sgd", [3, 0.1],
    ["add_decayed_weights", {"w": 1}],
])  # fmt: skip
def test_a_description_holds_names_and_finite_numbers_only(config):
    """A description read from a file that holds text, None, NaN or an object where a number
    goes is refused when it is read, not when training resumes from it."""
    with pytest.raises(ConfigError, match="optimizer description"):
        optim.from_config(config)


@pytest.mark.parametrize(("build", "match"), [
    (lambda: optim.sgd(0.0), r"learning rate must be a number in \(0, inf\); got 0.0"),
    (lambda: optim.sgd(0.1, momentum=1.0), r"momentum must be a number in \[0, 1\); got 1.0"),
    (lambda: optim.sgd(0.1, momentum=-0.1), r"momentum must be a number in \[0, 1\)"),
    (lambda: optim.sgd(0.1, nesterov=True), "nesterov needs momentum > 0"),
    (lambda: optim.adam(0.1, b1=1.0), r"b1 must be a number in \[0, 1\)"),
    (lambda: optim.adam(0.1, b2=-0.5), r"b2 must be a number in \[0, 1\)"),
    (lambda: optim.adam(0.1, eps=0.0), r"eps must be a number in \(0, inf\)"),
    (lambda: optim.adamw(0.1, weight_decay=-1.0), r"weight_decay must be a number in \[0, inf\)"),
    (lambda: optim.adam(0.1, clip_norm=0.0), r"clip_norm must be a number in \(0, inf\)"),
    (lambda: optim.step_decay(0.1, 0), r"step_size must be an integer in \[1, inf\)"),
    (lambda: optim.cosine(0.1, 0), r"total_steps must be an integer in \[1, inf\)"),
    (lambda: optim.inverse_scaling(float("nan")), r"learning rate must be a number in \(0, inf\); got nan"),
    (lambda: optim.build("rmsprop", 0.1), "unknown optimizer 'rmsprop'; valid optimizers: sgd, momentum, nesterov, adam, adamw"),
    (lambda: optim.build("sgd", 0.1, schedule_name="cosine"), "the cosine schedule needs the number of steps"),
])  # fmt: skip
def test_invalid_hyperparameters(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_optimizers_run_inside_the_compiled_loop(make_backend):
    from xpnet import engine, train

    backend = make_backend("float64")
    params, X, T = problem(SPEC, 16, seed=4)
    outs = []
    for size in (100, 7):
        run = Run.start(backend, train.Objective(SPEC, 0.0, "mean"), optim.adam(0.01),
                               params)  # fmt: skip
        engine.fit(run, feeds.FullBatch(backend, X, T), epochs=STEPS, chunk_size=size)
        outs.append(run.host_params())
    want = _ours(backend, lambda: optim.adam(0.01))
    for k in want:
        np.testing.assert_allclose(outs[0][k], want[k], rtol=1e-12)
        np.testing.assert_allclose(outs[1][k], want[k], rtol=1e-12)  # state carried across chunks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_injected_rate_updates_as_a_described_one_and_changes_in_the_state(dtype):
    backend = backends.select("numpy", dtype=dtype)
    xp = backend.xp
    rng = np.random.RandomState(0)
    params = {k: backend.asarray(rng.normal(size=(3, 4))) for k in ("W1", "W2")}
    grads = {k: backend.asarray(rng.normal(size=(3, 4))) for k in params}
    plain, injected = optim.scale_by_learning_rate(0.0123), optim.inject_learning_rate(0.0123)
    want, _ = plain.update(xp, grads, plain.init(xp, params), params)
    state = injected.init(xp, params)
    got, state = injected.update(xp, grads, state, params)
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
    opt, state = optim.with_rate(injected, state, 0.0123 / 5)
    assert opt.config == injected.config and optim.rate_of(opt, state) == 0.0123 / 5
    again, _ = optim.scale_by_learning_rate(0.0123 / 5).update(xp, grads, (), params)
    shrunk, _ = opt.update(xp, grads, state, params)
    assert all(np.array_equal(shrunk[k], again[k]) for k in again)
    described, same = optim.with_rate(plain, (), 0.5)  # a described rate: a new description
    assert optim.learning_rate(described) == 0.5 and same == ()
    assert optim.from_config(injected.config).config == injected.config

"""Sample weights in the math (data-parallel padding rests on them): the weighted loss and its
gradients on every backend, against central differences and ``jax.grad``; weights of 1 change
nothing and rows of weight 0 count as absent."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import F64_RTOL
from helpers import problem, rel_err
from xpnet import mlp

CASES = [
    pytest.param(mlp.Spec(sizes, act, loss, bias), red,
                 id=f"{'x'.join(map(str, sizes))}-{act}-{loss}-{'b' if bias else 'nob'}-{red}")
    for sizes, act, loss, bias, red in itertools.product(
        [(3, 4, 2), (2, 5, 3, 1)], ["tanh", "relu"], ["cross_entropy", "squared_error", "mse", "binary_cross_entropy", "poisson"],
        [True, False], ["sum", "mean"],
    )
    if not (loss == "cross_entropy" and sizes[-1] == 1)
]  # fmt: skip
N = 9


def _weights(seed: int = 1) -> np.ndarray:
    w = np.random.RandomState(seed).uniform(0.2, 3.0, N)
    w[[2, 7]] = 0.0  # two absent rows
    return w


def _run(backend, spec, params, X, T, reg, reduction, weights):
    w = None if weights is None else backend.asarray(weights)
    value, grads = mlp.loss_and_grads(backend.xp, backend.tree_asarray(params), backend.asarray(X),
                                      backend.asarray(T), spec, reg, reduction, w)  # fmt: skip
    return float(backend.to_numpy(value)), backend.tree_to_numpy(grads)


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_unit_weights_change_nothing(make_backend, spec, reduction):
    backend = make_backend("float64")
    params, X, T = problem(spec, N)
    plain = _run(backend, spec, params, X, T, 0.02, reduction, None)
    ones = _run(backend, spec, params, X, T, 0.02, reduction, np.ones(N))
    assert ones[0] == pytest.approx(plain[0], rel=F64_RTOL)
    for k in params:
        assert rel_err(ones[1][k], plain[1][k]) <= F64_RTOL, k
    if backend.name == "numpy":  # one more multiply by 1.0 and the count as a float: exact
        assert ones[0] == plain[0]
        assert all(np.array_equal(ones[1][k], plain[1][k]) for k in params)


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_zero_weight_rows_count_as_absent(make_backend, spec, reduction):
    backend = make_backend("float64")
    params, X, T = problem(spec, N)
    weights = np.ones(N)
    weights[[0, 4, 8]] = 0.0
    X_junk = X.copy()
    X_junk[[0, 4, 8]] = 1e3  # whatever the padding holds (finite), it must not count
    kept = weights > 0
    want = _run(backend, spec, params, X[kept], T[kept], 0.02, reduction, None)
    with np.errstate(over="ignore", invalid="ignore"):  # junk may overflow exp (poisson)
        got = _run(backend, spec, params, X_junk, T, 0.02, reduction, weights)
    assert got[0] == pytest.approx(want[0], rel=F64_RTOL)
    for k in params:
        assert rel_err(got[1][k], want[1][k]) <= F64_RTOL, k


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_weighted_grads_match_central_differences(make_backend, spec, reduction):
    backend = make_backend("float64")
    xp = backend.xp
    params, X, T = problem(spec, N)
    weights = _weights()
    reg = 0.03
    _, grads = _run(backend, spec, params, X, T, reg, reduction, weights)
    Xd, Td, wd = backend.asarray(X), backend.asarray(T), backend.asarray(weights)
    scale = weights.sum() if reduction == "sum" else 1.0
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            ends = []
            for sign in (1, -1):
                moved = {**params, name: value.copy()}
                moved[name][idx] += sign * h
                loss = mlp.loss(xp, backend.tree_asarray(moved), Xd, Td, spec, reg, wd)
                ends.append(float(backend.to_numpy(loss)))
            fd[idx] = scale * (ends[0] - ends[1]) / (2 * h)
        assert rel_err(grads[name], fd) <= 1e-6, name


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_weighted_grads_match_jax_grad(make_backend, spec, reduction):
    jax = pytest.importorskip("jax", reason="the autodiff oracle needs jax")
    from test_oracle import oracle_loss

    backend = make_backend("float64")
    params, X, T = problem(spec, N)
    weights = _weights(2)
    reg = 0.02
    jnp = jax.numpy
    want_loss, want = jax.value_and_grad(oracle_loss)(
        {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(X), jnp.asarray(T), spec, reg,
        jnp.asarray(weights),
    )  # fmt: skip
    got_loss, grads = _run(backend, spec, params, X, T, reg, reduction, weights)
    scale = weights.sum() if reduction == "sum" else 1.0
    assert got_loss == pytest.approx(float(want_loss), rel=1e-12)
    for k in params:
        assert rel_err(grads[k], scale * np.asarray(want[k])) <= 1e-12, k


# -- sample weights through Network: full batch, mini-batches, resume, score ---------------------
def _moons(n: int = 60):
    from xpnet import datasets

    return datasets.load("moons", n_samples=n, noise=0.2, seed=0)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("batch_size", [None, 1000], ids=["full-batch", "one-mini-batch"])
def test_a_network_weight_is_a_repeated_row(make_backend, reduction, batch_size):
    """Weight 2 is a row given twice, weight 0 a row left out (mini-batches hold every row in
    one batch, so their order does not matter)."""
    from helpers import where
    from xpnet import Network

    b = make_backend("float64")
    X, y = _moons()
    w = np.random.RandomState(0).randint(0, 3, X.shape[0])
    fit = dict(epochs=25, lr=0.01 if reduction == "sum" else 0.5, reduction=reduction,
               batch_size=batch_size)  # fmt: skip
    if batch_size is not None:  # mini-batches in order (full batch has no order to shuffle)
        fit["shuffle"] = False
    setup = dict(hidden=(5,), activation="tanh", **where(b))
    weighted = Network(**setup).fit(X, y, sample_weight=w, **fit)
    repeated = Network(**setup).fit(np.repeat(X, w, axis=0), np.repeat(y, w), **fit)
    for k, v in repeated.params_.items():
        assert rel_err(weighted.params_[k], v) <= 1e-10, k
    assert rel_err(weighted.loss_curve_, repeated.loss_curve_) <= 1e-10
    plain = Network(**setup).fit(X, y, **fit)
    ones = Network(**setup).fit(X, y, sample_weight=np.ones(X.shape[0]), **fit)
    assert rel_err(ones.params_["W1"], plain.params_["W1"]) <= F64_RTOL
    assert rel_err(weighted.params_["W1"], plain.params_["W1"]) > 1e-3  # the weights count


def test_a_weighted_network_resumes_as_if_uninterrupted_and_scores_weighted(make_backend, tmp_path):
    from helpers import where
    from xpnet import Network
    from xpnet.errors import ConfigError

    b = make_backend("float64")
    X, y = _moons(90)
    w = np.random.RandomState(2).uniform(0.0, 2.0, X.shape[0])
    fit = dict(epochs=6, optimizer="adam", lr=0.01, batch_size=16)
    whole = Network((6,), **where(b)).fit(X, y, sample_weight=w, **fit)
    half = Network((6,), **where(b)).fit(X, y, sample_weight=w, **{**fit, "epochs": 3})
    half.save(tmp_path / "half.safetensors")
    loaded = Network.load(tmp_path / "half.safetensors", **where(b))
    with pytest.raises(ConfigError, match="trained with sample weights"):
        loaded.resume(X, y, epochs=6)
    loaded.resume(X, y, sample_weight=w, epochs=6)
    for k, v in whole.params_.items():
        assert rel_err(loaded.params_[k], v) <= F64_RTOL, k
    with pytest.raises(ConfigError, match="trained without sample weights"):
        Network((6,), **where(b)).fit(X, y, epochs=2).resume(X, y, sample_weight=w, epochs=3)
    right = whole.predict(X) == y
    assert whole.score(X, y, sample_weight=w) == pytest.approx(np.sum(w * right) / np.sum(w))
    assert whole.score(X, y) == pytest.approx(np.mean(right))


def test_weighted_mini_batches_streamed_equal_device_resident(make_backend):
    from helpers import where
    from xpnet import Network

    b = make_backend("float64")
    X, y = _moons(90)
    w = np.random.RandomState(3).uniform(0.0, 2.0, X.shape[0])
    fit = dict(sample_weight=w, batch_size=16, epochs=3, optimizer="adam", lr=0.01)
    resident = Network((6,), **where(b)).fit(X, y, **fit)
    streamed = Network((6,), **where(b)).fit(X, y, stream=True, **fit)
    for k, v in resident.params_.items():
        assert rel_err(streamed.params_[k], v) <= F64_RTOL, k
    assert rel_err(streamed.loss_curve_, resident.loss_curve_) <= F64_RTOL
    unweighted = Network((6,), **where(b)).fit(X, y, stream=True, **{**fit, "sample_weight": None})
    assert rel_err(streamed.params_["W1"], unweighted.params_["W1"]) > 1e-3  # the weights count

"""Dropout: masks drawn by a counter-based hash in the standard's integer operations, the same
bits on every backend; the thinned network's loss and gradients equal across backends and
against central differences and ``jax.grad`` with the mask fixed; training with it on every
front-end, resumable, streamed and data-parallel alike; dropout 0 the plain math, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import F32_RTOL, F64_RTOL
from helpers import problem, rel_err
from xpnet import Network, backends, dropout, mlp, train
from xpnet.errors import ConfigError

SPECS = [mlp.Spec((3, 6, 2), "tanh"), mlp.Spec((4, 5, 7, 3), "relu"),
         mlp.Spec((2, 8, 8, 1), "gelu", "binary_cross_entropy", bias=False)]  # fmt: skip
RATES = [(0.5,), (0.3, 0.6), (0.0, 0.25)]


def _draw(backend, n, seed=12345, step=7, width=8, rows=None):
    rows = np.arange(n, dtype=np.int32) if rows is None else np.asarray(rows, np.int32)
    put = lambda a: backend.asarray(np.asarray(a, np.int32), np.int32)  # noqa: E731
    return dropout.Draw(put(dropout.seed_words(seed)), put(step), put(rows),
                        put(np.arange(width)))  # fmt: skip


def _moons(n=200):
    from sklearn.datasets import make_moons

    return make_moons(n, noise=0.2, random_state=0)


# -- the masks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_masks_are_the_same_bits_on_every_backend(make_backend, reference, dtype):
    backend = make_backend(dtype)  # float32 JAX runs without x64: the hash is int32 throughout
    rows = [0, 1, 2, 65535, 65536, 2**31 - 1, 123456789]
    for seed, step, layer, rate in [(0, 0, 1, 0.5), (2**32 - 1, 2**30 - 1, 3, 0.1),
                                    (42, 65536, 2, 0.9)]:  # fmt: skip
        want = reference.to_numpy(dropout.keep(reference.xp, _draw(reference, 0, seed, step,
                                                                   rows=rows), layer, 8, rate))  # fmt: skip
        got = backend.to_numpy(dropout.keep(backend.xp, _draw(backend, 0, seed, step, rows=rows),
                                            layer, 8, rate))  # fmt: skip
        assert got.dtype == bool and got.shape == (len(rows), 8)
        np.testing.assert_array_equal(got, want)


def test_masks_keep_units_at_the_rate_and_independently(reference):
    xp = reference.xp
    n, width = 4000, 64

    def mask(seed=7, step=3, layer=1, rate=0.5, rows=None):
        return reference.to_numpy(dropout.keep(xp, _draw(reference, n, seed, step, width, rows),
                                               layer, width, rate)).astype(float)  # fmt: skip

    for rate in (0.1, 0.5, 0.9):  # kept with probability 1 - rate, within 5 sigma
        kept = mask(rate=rate).mean()
        assert abs(kept - (1 - rate)) <= 5 * np.sqrt(rate * (1 - rate) / (n * width))
    m = mask()
    corr = lambda a, b: abs(np.corrcoef(a.ravel(), b.ravel())[0, 1])  # noqa: E731
    bound = 5 / np.sqrt(m.size)
    assert corr(m[:, :-1], m[:, 1:]) <= bound  # neighbouring units
    assert corr(m[:-1], m[1:]) <= bound  # neighbouring rows
    for other in (mask(step=4), mask(seed=8), mask(layer=2), mask(rows=np.arange(n) + n)):
        assert corr(m, other) <= bound  # another step, seed, layer, rows: fresh masks
    pairs = np.corrcoef(m.T)  # no two units move together across the rows
    np.fill_diagonal(pairs, 0)
    assert np.abs(pairs).max() <= 5.5 / np.sqrt(n)


def test_rates_are_checked_and_spread_over_the_hidden_layers():
    assert dropout.rates(0.2, 3) == (0.2, 0.2, 0.2)
    assert dropout.rates([0.1, 0.0], 2) == (0.1, 0.0)
    assert dropout.rates(0.0, 2) == () and dropout.rates((0, 0), 2) == ()
    for bad in (1.0, -0.1, float("nan"), "half", True):
        with pytest.raises(ConfigError, match="dropout"):
            dropout.rates(bad, 2)
    with pytest.raises(ConfigError, match=r"dropout gives 3 rates for 2 hidden layers \(hidden\)"):
        dropout.rates((0.1, 0.2, 0.3), 2)


# -- the math: loss and gradients of the thinned network ------------------------------------------
def _thinned(backend, spec, rates, n=9):
    params, X, T = problem(spec, n)
    noise = dropout.Dropout(rates, _draw(backend, n, width=max(spec.sizes[1:-1])))
    return params, X, T, noise


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("spec", "rates"), list(zip(SPECS, RATES, strict=True)))
def test_thinned_loss_and_grads_are_equal_on_every_backend(make_backend, reference, spec, rates,
                                                           dtype):  # fmt: skip
    backend = make_backend(dtype)
    params, X, T, noise = _thinned(backend, spec, rates)
    _, _, _, ref_noise = _thinned(reference, spec, rates)
    want_loss, want = mlp.loss_and_grads(reference.xp, reference.tree_asarray(params),
                                         reference.asarray(X), reference.asarray(T), spec, 0.01,
                                         noise=ref_noise)  # fmt: skip
    loss, grads = mlp.loss_and_grads(backend.xp, backend.tree_asarray(params), backend.asarray(X),
                                     backend.asarray(T), spec, 0.01, noise=noise)  # fmt: skip
    tol = F64_RTOL if dtype == "float64" else F32_RTOL
    assert abs(float(backend.to_numpy(loss)) - float(want_loss)) <= tol * abs(float(want_loss))
    for k in params:
        assert rel_err(backend.to_numpy(grads[k]), reference.to_numpy(want[k])) <= tol, k
    plain, _ = mlp.loss_and_grads(reference.xp, reference.tree_asarray(params),
                                  reference.asarray(X), reference.asarray(T), spec, 0.01)  # fmt: skip
    assert float(want_loss) != float(plain)  # the masks changed the network


@pytest.mark.parametrize(("spec", "rates"), list(zip(SPECS, RATES, strict=True)))
def test_thinned_grads_match_central_differences(make_backend, spec, rates):
    backend = make_backend("float64")
    xp = backend.xp
    params, X, T, noise = _thinned(backend, spec, rates, 5)
    Xd, Td = backend.asarray(X), backend.asarray(T)
    _, grads = mlp.loss_and_grads(xp, backend.tree_asarray(params), Xd, Td, spec, 0.03,
                                  noise=noise)  # fmt: skip
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            out = []
            for sign in (1, -1):
                moved = {**params, name: value.copy()}
                moved[name][idx] += sign * h
                out.append(float(backend.to_numpy(mlp.loss(xp, backend.tree_asarray(moved), Xd,
                                                           Td, spec, 0.03, noise=noise))))  # fmt: skip
            fd[idx] = (out[0] - out[1]) / (2 * h)
        assert rel_err(backend.to_numpy(grads[name]), fd) <= 1e-6, name


@pytest.mark.parametrize(("spec", "rates"), list(zip(SPECS, RATES, strict=True)))
def test_thinned_grads_match_jax_grad(make_backend, reference, spec, rates, monkeypatch):
    jax = pytest.importorskip("jax", reason="the autodiff oracle needs jax")
    jax.config.update("jax_enable_x64", True)
    from test_oracle import oracle_loss

    backend = make_backend("float64")
    params, X, T, noise = _thinned(backend, spec, rates)
    _, _, _, ref_noise = _thinned(reference, spec, rates)
    masks = {}  # the fixed masks, as multipliers, from the reference: no xpnet code below
    for layer, rate in enumerate(rates, 1):
        if rate:
            masks[layer] = reference.to_numpy(dropout.scale(reference.xp, ref_noise.draw, layer,
                                                            spec.sizes[layer], rate, "float64"))  # fmt: skip
    hidden = {"tanh": jax.numpy.tanh, "relu": jax.nn.relu,
              "gelu": lambda z: jax.nn.gelu(z, approximate=True)}[spec.activation]  # fmt: skip
    layer_of = iter(range(1, spec.n_layers))

    def thinned(z):
        layer = next(layer_of)
        a = hidden(z)
        return a * masks[layer] if layer in masks else a

    import test_oracle

    monkeypatch.setitem(test_oracle.HIDDEN, spec.activation, thinned)  # the oracle, thinned
    want = jax.grad(lambda p: oracle_loss(p, X, T, spec, 0.01))(
        {k: jax.numpy.asarray(v) for k, v in params.items()})  # fmt: skip
    _, grads = mlp.loss_and_grads(backend.xp, backend.tree_asarray(params), backend.asarray(X),
                                  backend.asarray(T), spec, 0.01, noise=noise)  # fmt: skip
    for k in params:
        assert rel_err(backend.to_numpy(grads[k]), np.asarray(want[k])) <= 1e-10, k


# -- training -------------------------------------------------------------------------------------
FEEDS = {"full": {}, "batches": {"batch_size": 32}, "streamed": {"batch_size": 32, "stream": True}}


@pytest.mark.parametrize("feed", list(FEEDS))
def test_training_with_dropout_is_the_same_on_every_backend(make_backend, feed):
    backend = make_backend("float64")
    X, y = _moons()

    def fit(name):
        net = Network(hidden=(16, 8), activation="tanh", backend=name)
        return net.fit(X, y, epochs=15, lr=0.3, dropout=(0.3, 0.1), dropout_seed=5, **FEEDS[feed])

    want, got = fit("numpy"), fit(backend.name)
    assert rel_err(np.asarray(got.loss_curve_), np.asarray(want.loss_curve_)) <= 1e-10
    plain = Network(hidden=(16, 8), activation="tanh").fit(X, y, epochs=15, lr=0.3,
                                                           **FEEDS[feed])  # fmt: skip
    assert not np.allclose(want.loss_curve_, plain.loss_curve_)


def test_streamed_and_resident_batches_draw_the_same_masks():
    X, y = _moons()
    nets = [Network(hidden=(8,), backend="numpy").fit(X, y, epochs=6, batch_size=50, dropout=0.4,
                                                      stream=s) for s in (False, True)]  # fmt: skip
    np.testing.assert_array_equal(nets[0].loss_curve_, nets[1].loss_curve_)


@pytest.mark.parametrize("feed", ["full", "batches"])
def test_resuming_draws_what_the_run_would_have_drawn(tmp_path, feed):
    X, y = _moons()
    kw = {"lr": 0.3, "dropout": 0.3, **FEEDS[feed]}
    whole = Network(hidden=(8,)).fit(X, y, epochs=20, **kw)
    half = Network(hidden=(8,)).fit(X, y, epochs=10, **kw)
    half.save(tmp_path / "half.safetensors")
    resumed = Network.load(tmp_path / "half.safetensors").resume(X, y, epochs=20)
    assert resumed.loss_curve_ == pytest.approx(whole.loss_curve_, rel=1e-13)
    assert resumed.plan_.dropout == 0.3


def test_dropout_zero_is_the_plain_math_bit_for_bit():
    X, y = _moons()
    assert train.Objective(SPECS[0], dropout=0.0).dropout == ()
    for feed in FEEDS.values():
        plain = Network(hidden=(8,)).fit(X, y, epochs=5, **feed)
        zero = Network(hidden=(8,)).fit(X, y, epochs=5, dropout=0.0, **feed)
        np.testing.assert_array_equal(zero.loss_curve_, plain.loss_curve_)
        assert all(np.array_equal(zero.params_[k], plain.params_[k]) for k in plain.params_)


def test_prediction_drops_nothing():
    X, y = _moons()
    net = Network(hidden=(16,), activation="tanh").fit(X, y, epochs=30, dropout=0.5)
    be = backends.select("numpy")
    want = be.to_numpy(mlp.predict_proba(be.xp, be.tree_asarray(net.params_), be.asarray(X),
                                         net.spec_))  # fmt: skip
    np.testing.assert_array_equal(net.predict_proba(X), net.predict_proba(X))
    np.testing.assert_allclose(net.predict_proba(X), want, rtol=1e-12)


def test_the_estimators_train_with_dropout_and_keep_it_in_their_files(tmp_path):
    import xpnet
    from xpnet.estimators import MLPClassifier, MLPRegressor

    X, y = _moons()
    clf = MLPClassifier((16, 8), dropout=[0.2, 0.1], random_state=0, max_iter=5)
    with pytest.warns(Warning):
        clf.fit(X, y)
    plain = MLPClassifier((16, 8), random_state=0, max_iter=5)
    with pytest.warns(Warning):
        plain.fit(X, y)
    assert clf.loss_curve_ != plain.loss_curve_
    clf.save(tmp_path / "c.safetensors")
    back = xpnet.load(tmp_path / "c.safetensors")
    assert back.dropout == (0.2, 0.1) and back._dropout_seed == clf._dropout_seed
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    with pytest.warns(Warning):  # the random_state decides the masks: the same fit again
        again = MLPClassifier((16, 8), dropout=[0.2, 0.1], random_state=0, max_iter=5).fit(X, y)
    assert again.loss_curve_ == clf.loss_curve_
    reg = MLPRegressor(hidden_layer_sizes=(8,), dropout=0.2, random_state=0, max_iter=3)
    with pytest.warns(Warning):
        reg.fit(X, y.astype(float))
    assert np.isfinite(reg.loss_curve_).all()


@pytest.mark.parametrize(("call", "message"), [
    (lambda X, y: Network(hidden=(4,)).fit(X, y, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (lambda X, y: Network(hidden=(4,)).fit(X, y, dropout=(0.1, 0.2)), "2 rates for 1 hidden layer"),
    (lambda X, y: Network(hidden=(4,)).fit(X, y, optimizer="lbfgs", dropout=0.1),
     "needs the same loss for its whole line search"),
    (lambda X, y: Network(hidden=(4,)).fit(X, y, dropout_seed=3), "dropout_seed seeds the masks"),
    (lambda X, y: __import__("xpnet").MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y),
     "dropout draws new masks every step, and solver 'lbfgs'"),
    (lambda X, y: __import__("xpnet").MLPClassifier((4, 4), dropout=[0.1]).fit(X, y),
     r"dropout gives 1 rate for 2 hidden layers \(hidden_layer_sizes\)"),
])  # fmt: skip
def test_bad_dropout_settings_are_refused_before_training(call, message):
    X, y = _moons(50)
    with pytest.raises(ConfigError, match=message):
        call(X, y)


def test_the_command_line_trains_with_dropout(tmp_path, capsys):
    from xpnet import cli

    out = tmp_path / "m.json"
    assert cli.main(["train", "--epochs", "300", "--dropout", "0.2", "--dropout-seed", "4",
                     "--metrics-out", str(out), "--quiet"]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert 0.5 < metrics["accuracy"] <= 1.0
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--dropout", "1.5"])
    assert stop.value.code == 2
    assert "--dropout must be a number in [0, 1)" in capsys.readouterr().err


SIMULATED = r"""
import json, numpy as np
from sklearn.datasets import make_moons
from xpnet import Network
X, y = make_moons(203, noise=0.2, random_state=0)
out = {}
for name, kw in {"full": {}, "batches": {"batch_size": 50}}.items():
    fits = [Network(hidden=(16, 8), activation="tanh", backend="jax", data_parallel=dp,
                    **({"devices": 3} if dp else {})).fit(X, y, epochs=8, lr=0.2, dropout=0.3, **kw)
            for dp in (False, True)]
    a, b = (np.asarray(f.loss_curve_) for f in fits)
    out[name] = float(np.max(np.abs(a - b) / np.abs(a)))
print(json.dumps(out))
"""


def test_data_parallel_training_draws_the_one_device_masks():
    """Rows are indexed by their place in the whole data set, so 3 devices (203 rows, padded)
    draw what one device draws."""
    pytest.importorskip("jax")
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=3"}  # fmt: skip
    env.pop("XPNET_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", SIMULATED], capture_output=True, text=True,
                            env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["full"] <= 1e-12 and got["batches"] <= 1e-12


@pytest.mark.parametrize(("feed", "steps"), [("full", None), ("batches", [0, 7, 14, 21])])
def test_every_step_of_a_run_draws_its_own_step(monkeypatch, feed, steps):
    """A mini-batch epoch of 7 batches starts at step 7 * epoch (each batch adds its index in
    the compiled epoch); full-batch chunks start at their first pass, resumed runs go on."""
    from xpnet import feeds

    seen = []
    draw = feeds.Noise.draw
    monkeypatch.setattr(feeds.Noise, "draw",
                        lambda self, run, step, rows: seen.append(step) or draw(self, run, step, rows))  # fmt: skip
    X, y = _moons()
    Network(hidden=(8,)).fit(X, y, epochs=4, dropout=0.2, **FEEDS[feed])
    if steps is None:  # chunks of passes: each starts where the last ended
        assert seen[0] == 0 and seen == sorted(seen) and len(set(seen)) == len(seen)
    else:
        assert seen == steps

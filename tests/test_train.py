"""The training loop: history conventions, chunking, divergence, compiled loops."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import Network, datasets, mlp, optim, train
from xpnet.errors import ConfigError, DivergenceError


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=100, noise=0.2, seed=3)


def test_after_history_is_before_history_shifted(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    before = Network((4,), backend=b.name, device=b.device_label).fit(
        X, y, epochs=50, record="before"
    )
    after = Network((4,), backend=b.name, device=b.device_label).fit(
        X, y, epochs=50, record="after"
    )
    np.testing.assert_allclose(after.loss_curve_[:-1], before.loss_curve_[1:], rtol=1e-12)
    for k, v in before.params_.items():
        np.testing.assert_allclose(after.params_[k], v, rtol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 50, 1000])
def test_chunk_size_does_not_change_the_result(make_backend, moons, chunk):
    X, y = moons
    b = make_backend("float64")
    seen = []
    net = Network((4,), backend=b.name, device=b.device_label)
    net.fit(
        X,
        y,
        epochs=50,
        chunk_size=chunk,
        on_chunk=lambda first, losses, p: seen.append((first, losses.size)),
    )
    whole = Network((4,), backend=b.name, device=b.device_label).fit(X, y, epochs=50, chunk_size=50)
    np.testing.assert_allclose(net.loss_curve_, whole.loss_curve_, rtol=1e-13)
    assert [f for f, _ in seen] == list(range(0, 50, chunk))
    assert sum(n for _, n in seen) == 50


def test_a_diverging_run_stops_with_the_pass_and_finite_params(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    net = Network((3,), activation="relu", init="he", backend=b.name, device=b.device_label)
    with pytest.raises(
        DivergenceError, match=r"training diverged: .* at pass \d+; try a smaller learning rate"
    ) as info:
        net.fit(X, y, epochs=400, lr=50.0, reg=0.0, chunk_size=100)
    assert 0 <= info.value.pass_index < 400
    for v in b.tree_to_numpy(info.value.params).values():
        assert np.all(np.isfinite(v))
    kept = info.value.losses
    assert kept.size == info.value.pass_index and np.all(np.isfinite(kept))
    np.testing.assert_array_equal(net.loss_curve_, kept)  # the network keeps the good part


@pytest.mark.parametrize("record", ["after", "before"])
def test_divergence_keeps_the_parameters_of_the_last_good_pass(make_backend, moons, record):
    X, y = moons
    b = make_backend("float64")
    setup = dict(activation="identity", init="he", backend=b.name, device=b.device_label)
    net = Network((3,), **setup)
    with pytest.raises(DivergenceError) as info:  # diverges at pass 12, in the third chunk
        net.fit(X, y, epochs=400, lr=0.025, reg=0.0, chunk_size=5, record=record)
    passes = net.loss_curve_.size  # the parameters kept are those after this many passes
    assert passes >= 10
    again = Network((3,), **setup).fit(X, y, epochs=passes, lr=0.025, reg=0.0, record=record)
    for k, v in again.params_.items():
        np.testing.assert_allclose(net.params_[k], v, rtol=1e-12, atol=0)
    assert info.value.pass_index == passes + (record == "before")


def test_runaway_growth_counts_as_divergence_before_inf(moons):
    X, y = moons
    net = Network((3,), activation="identity")
    with pytest.raises(DivergenceError, match=r"the loss grew to .* \(over 1000 times its start\)"):
        net.fit(X, y, epochs=2000, lr=0.5, reg=0.0, chunk_size=1000)
    assert np.all(net.loss_curve_ <= 1e3 * max(net.loss_curve_[0], 1))


def test_first_bad_is_found_on_the_device(make_backend):
    b = make_backend("float64")
    xp = b.xp
    cases = [([0.1, 0.2, 0.3], -1), ([0.1, np.nan, np.inf], 1), ([np.inf, 0.1, 0.1], 0),
             ([0.1, 0.2, 5e3], 2)]  # fmt: skip
    for losses, want in cases:
        assert int(b.to_numpy(train.first_bad(xp, b.asarray(losses), 1e3))) == want


def test_repeatable_bit_for_bit(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    runs = [
        Network((4,), backend=b.name, device=b.device_label).fit(X, y, epochs=30) for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].loss_curve_, runs[1].loss_curve_)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"reg": -1.0}, "reg must be a finite number >= 0"),
    ({"reduction": "max"}, "valid: sum, mean"),
    ({"record": "during"}, "valid: after, before"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
])  # fmt: skip
def test_bad_training_settings(moons, kwargs, match):
    X, y = moons
    with pytest.raises(ConfigError, match=match):
        Network((3,)).fit(X, y, **kwargs)


def test_jax_runs_the_chunk_as_one_compiled_program():
    jax = pytest.importorskip("jax")
    from xpnet import backends

    b = backends.select("jax", "cpu", "float64")
    spec = mlp.Spec((2, 3, 2))
    run = train.make_chunk(b, spec, optim.sgd(0.01), 0.01, "sum", "after")
    params = {k: b.asarray(v) for k, v in {"W1": np.ones((2, 3)), "b1": np.zeros(3),
                                           "W2": np.ones((3, 2)), "b2": np.zeros(2)}.items()}  # fmt: skip
    X, T = b.asarray(np.eye(2)), b.asarray(np.eye(2))
    text = run.lower((params, optim.SGDState()), X, T, 100, 1e3).as_text()
    assert "while" in text  # lax.scan lowers to a single while loop, not 100 unrolled steps
    assert isinstance(run, jax.stages.Wrapped)


def test_a_second_fit_reuses_the_compiled_loop(make_backend, moons):
    X, y = moons
    b = make_backend("float64")
    first = Network((4,), backend=b.name, device=b.device_label).fit(X, y, epochs=20, lr=0.004)
    key_count = len(train._COMPILED)
    second = Network((4,), backend=b.name, device=b.device_label).fit(X, y, epochs=20, lr=0.004)
    assert len(train._COMPILED) == key_count
    np.testing.assert_array_equal(first.loss_curve_, second.loss_curve_)
    other = Network((4,), backend=b.name, device=b.device_label).fit(X, y, epochs=20, lr=0.005)
    assert not np.array_equal(other.loss_curve_, first.loss_curve_)  # lr is part of the key

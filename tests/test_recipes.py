"""Each recipe reproduces its seed's printed numbers (shared/REFERENCE.md) on every backend.

av-moons leaves its 0.25 plateau at about epoch 3900, and that exit amplifies rounding: backends
agree to 1e-12 until then and on every printed line (5 decimals) up to epoch 6000; later losses
are compared by what is stable (accuracy 0.986, and small but for spikes: its full-batch steps at
lr 0.1 overshoot now and then, up to 0.23, at epochs that move with the last bits of the
arithmetic, so a printed line of epoch 7000 can fall on one).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import mlp, recipes
from xpnet.errors import ConfigError
from xpnet.settings import Plan

AV_TOY_PRINTED = [0.11553, 0.11082, 0.10606, 0.09845, 0.08483, 0.06396, 0.04206, 0.02641,
                  0.01719, 0.01190]  # fmt: skip
AV_MOONS_PRINTED = [0.23478, 0.25, 0.25, 0.25, 0.05129, 0.02163, 0.01157]


def _on(recipe_name, backend, **changes):
    return recipes.get(recipe_name).replace(
        backend=backend.name, device=backend.device_label, **changes
    )


def test_av_toy(make_backend):
    run = recipes.run(_on("av-toy", make_backend("float64")))
    untrained = mlp.predict_proba(np, run.manual.initial_params_, run.X, run.manual.spec_)[:, 0]
    np.testing.assert_allclose(untrained, [0.68334694, 0.72697078, 0.71257368], atol=5e-9)
    printed = [round(float(v), 5) for v in run.net.loss_curve_[::100]]
    assert printed == AV_TOY_PRINTED
    np.testing.assert_allclose(run.net.predict_proba(run.X)[:, 1], [0.91570304, 0.89658138,
                               0.18582268], atol=1e-7)  # fmt: skip
    assert run.net.score(run.X, run.y) == 1.0


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_seed_001s_manual_step_is_gradient_descent_whatever_the_run_trains_with(optimizer):
    """The seed's one hand-written step stays ``W += -epsilon * dW`` when the run itself uses
    another optimizer (``xpnet train --recipe av-toy --optimizer adam``)."""
    plain = recipes.run(recipes.get("av-toy").replace(backend="numpy", epochs=2))
    other = recipes.run(recipes.get("av-toy").replace(backend="numpy", epochs=2,
                                                      optimizer=optimizer))  # fmt: skip
    for k, v in plain.manual.params_.items():
        np.testing.assert_array_equal(other.manual.params_[k], v)


def test_av_moons(make_backend, reference):
    backend = make_backend("float64")
    run = recipes.run(_on("av-moons", backend))
    curve = run.net.loss_curve_
    assert curve.size == 10000
    assert [round(float(v), 5) for v in curve[:7000:1000]] == AV_MOONS_PRINTED
    assert np.all(np.abs(curve[1000:3500] - 0.25) < 1e-5)  # the saturated plateau
    late = curve[7000:]  # small but for spikes, whose epochs move with the last bits
    assert np.median(late) < 0.01 and np.mean(late < 0.01) > 0.9, (np.median(late), late.max())
    assert run.net.score(run.X, run.y) == 0.986
    if backend.name != "numpy":
        want = recipes.run(_on("av-moons", reference, epochs=3800)).net.loss_curve_
        np.testing.assert_allclose(curve[:3800], want, rtol=1e-12, atol=0)


def test_av_moons_draws_its_weights_after_the_toy_models():
    rng = np.random.RandomState(42)
    rng.uniform(size=(4, 3)), rng.uniform(size=(3, 1)), rng.uniform(size=(4, 3))
    rng.uniform(size=(3, 1))
    W1 = rng.uniform(size=(2, 10))
    net = recipes.network(recipes.get("av-moons"), recipes.init_stream(recipes.get("av-moons")))
    net.fit(np.eye(2), [0, 1], epochs=1, lr=0.1, reg=0.0)
    np.testing.assert_array_equal(net.initial_params_["W1"], W1)


def test_britz_gpu_runs_in_float32(make_backend, reference):
    backend = make_backend("float32")
    short = dict(epochs=3, n_samples=500)
    got = recipes.run(_on("britz-gpu", backend, **short)).net
    want = recipes.run(_on("britz-gpu", reference, dtype="float64", **short)).net
    assert got.params_["W1"].dtype == np.float32 and got.spec_.sizes == (2, 1000, 2)
    np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=2e-5)


def test_recipes_are_listed_and_overridable():
    assert set(recipes.RECIPES) == {"britz", "britz-gpu", "av-toy", "av-moons"}
    britz = recipes.get("britz")
    assert (britz.hidden, britz.activation, britz.init, britz.init_seed) == (
        (3,),
        "tanh",
        "britz",
        0,
    )
    assert britz.plan == Plan(epochs=20000, optimizer="sgd", lr=0.01, reg=0.01, reduction="sum")
    # the seeds' settings are the recipes', not the defaults underneath
    assert recipes.Recipe().plan == Plan() and recipes.Recipe().init == "auto"
    r = recipes.get("av-toy").replace(epochs=7, lr=0.5)
    assert (r.plan.epochs, r.plan.lr, r.activation) == (7, 0.5, "sigmoid")
    assert recipes.Recipe.from_dict(r.to_dict()) == r  # as model files keep it
    with pytest.raises(ConfigError, match="unknown recipe 'nope'; valid recipes: britz"):
        recipes.get("nope")
    with pytest.raises(ConfigError, match="unknown recipe settings: epoch"):
        recipes.get("britz").replace(epoch=3)


def test_log_lines_are_the_seeds():
    assert recipes.get("britz").log_line(1000, 0.0689471) == "Loss after iteration 1000: 0.068947"
    assert recipes.get("av-toy").log_line(100, 0.110824) == "Error at epoch 100 is 0.11082"

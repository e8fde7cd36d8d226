"""Validation curves (issue 24): ``Network.fit(validation_data=...)`` and the estimators'
``validation_fraction`` record the held-out loss every epoch (``validation_loss_curve_``) and
the score (``validation_scores_``); the same curve on every backend; nothing else changes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from helpers import where
from xpnet import Network, backends, datasets, mlp
from xpnet.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def split():
    X, y = datasets.load("moons", n_samples=200, noise=0.3, seed=0)
    X_val, y_val = datasets.load("moons", n_samples=80, noise=0.3, seed=1)
    return X, y, X_val, y_val


FIT = {"epochs": 12, "optimizer": "adam", "lr": 0.01, "batch_size": 50}


def test_the_curve_is_each_epochs_held_out_loss_on_every_backend(make_backend, split):
    backend = make_backend("float64")
    X, y, X_val, y_val = split
    net = Network((6,), scale="standard", **where(backend))
    net.fit(X, y, validation_data=(X_val, y_val), **FIT)
    assert net.validation_loss_curve_.shape == net.validation_scores_.shape == (12,)
    xp = backends.select("numpy").xp
    T = np.eye(2)[np.searchsorted(net.classes_, y_val)]
    last = float(mlp.loss(xp, net.params_, net._scaled(X_val), T, net.spec_))
    np.testing.assert_allclose(net.validation_loss_curve_[-1], last, rtol=1e-12)
    assert net.validation_scores_[-1] == net.score(X_val, y_val)
    reference = Network((6,), scale="standard", backend="numpy").fit(
        X, y, validation_data=(X_val, y_val), **FIT)  # fmt: skip
    np.testing.assert_allclose(net.validation_loss_curve_, reference.validation_loss_curve_,
                               rtol=1e-12)  # fmt: skip
    assert net.validation_loss_curve_[-1] < net.validation_loss_curve_[0]
    plain = Network((6,), scale="standard", **where(backend)).fit(X, y, **FIT)
    assert plain.validation_loss_curve_ is None
    for k, v in plain.params_.items():  # held-out data changes nothing of the fit
        np.testing.assert_allclose(net.params_[k], v, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("given", "error", "message"), [
    (lambda X, y: (X[:, :1], y), DataError, "validation_data: X_val has 1 features; the model "
     "expects 2"),
    (lambda X, y: (X, y + 2), DataError, r"validation_data: labels \[2, 3\] are not among the "
     r"model's classes \[0, 1\]"),
    (lambda X, y: (X, y[:-1]), DataError, "validation_data: "),
    (lambda X, y: X, ConfigError, r"validation_data must be a pair \(X_val, y_val\)"),
])  # fmt: skip
def test_a_validation_set_unlike_the_training_set_is_refused(split, given, error, message):
    X, y, X_val, y_val = split
    with pytest.raises(error, match=message):
        Network((3,)).fit(X, y, epochs=2, validation_data=given(X_val, y_val))


def test_the_estimators_record_the_validation_loss_beside_the_scores(split, tmp_path):
    pytest.importorskip("sklearn")
    import xpnet
    from xpnet import MLPClassifier, MLPRegressor

    X, y, _, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((8,), early_stopping=True, max_iter=15, random_state=0,
                            learning_rate_init=0.01).fit(X, y)  # fmt: skip
        reg = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=15,
                           random_state=0, learning_rate_init=0.01).fit(X, X[:, 0] + y)  # fmt: skip
        plain = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    for est in (clf, reg):
        curve = est.validation_loss_curve_
        assert len(curve) == len(est.validation_scores_) == est.n_iter_
        assert np.all(np.isfinite(curve)) and curve[-1] < curve[0], curve
    assert plain.validation_loss_curve_ is None
    clf.save(tmp_path / "c.safetensors")
    assert (
        xpnet.load(tmp_path / "c.safetensors").validation_loss_curve_ == clf.validation_loss_curve_
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.set_params(warm_start=True, max_iter=5).fit(X, y)  # goes on appending
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_)


def test_the_command_line_holds_out_logs_writes_and_resumes(tmp_path, capsys):
    import json

    from xpnet import cli

    metrics, model = tmp_path / "m.json", tmp_path / "m.safetensors"
    args = ["train", "--validation-fraction", "0.25", "--print-every", "100"]
    assert cli.main([*args, "--epochs", "300", "--metrics-out", str(metrics)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Loss after iteration 0: ") and "(validation: " in out[0], out
    assert out[-1].startswith("Validation accuracy: "), out
    written = json.loads(metrics.read_text())
    assert len(written["validation_losses"]) == len(written["losses"]) == 300
    assert 0.5 < written["validation_accuracy"] <= 1.0
    # a resumed run trains on the same 150 rows and goes on holding out the same 50
    assert cli.main([*args, "--epochs", "200", "--quiet", "--save", str(model)]) == 0
    assert cli.main(["train", "--resume", str(model), "--epochs", "300", "--quiet",
                     "--metrics-out", str(metrics)]) == 0  # fmt: skip
    resumed = json.loads(metrics.read_text())
    np.testing.assert_allclose(resumed["losses"][-1], written["losses"][-1], rtol=1e-12)
    np.testing.assert_allclose(resumed["validation_losses"], written["validation_losses"][200:],
                               rtol=1e-12)  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--validation-fraction", "1.5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        "--validation-fraction must be a number in (0, 1); got 1.5" in err and err.count("\n") == 1
    )


def test_patience_stops_once_the_validation_loss_stops_falling(split, capsys):
    from xpnet import cli

    X, y, X_val, y_val = split
    net = Network((32,)).fit(X, y, epochs=3000, optimizer="adam", lr=0.05,
                             validation_data=(X_val, y_val), patience=40)  # fmt: skip
    curve = net.validation_loss_curve_
    best = int(np.argmin(curve))
    assert net.passes_done_ == curve.size == best + 41 < 3000  # 40 epochs without a new best
    assert net.stop_reason_ == "the validation loss did not fall for 40 epochs"
    assert np.all(curve[best + 1 :] >= curve[best])
    with pytest.raises(ConfigError, match="patience stops on the validation loss; give "
                       "validation_data with it"):  # fmt: skip
        Network((3,)).fit(X, y, epochs=2, patience=3)
    assert cli.main(["train", "--validation-fraction", "0.25", "--patience", "100", "--epochs",
                     "5000", "--quiet"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "the validation loss did not fall for 100 epochs" in out, out
    assert cli.main(["train", "--patience", "3"]) == 2
    assert "--patience stops on the validation loss; give --validation-fraction with it" in (
        capsys.readouterr().err)  # fmt: skip


def test_the_held_out_rows_are_a_stratified_share_the_same_every_time():
    from xpnet import recipes

    recipe = recipes.get(recipes.DEFAULT_RECIPE).replace(validation_fraction=0.25)
    X, y, (X_val, y_val) = recipes.load_split(recipe)
    assert (X.shape, X_val.shape) == ((150, 2), (50, 2))
    assert np.bincount(y).tolist() == [75, 75] and np.bincount(y_val).tolist() == [25, 25]
    whole, _ = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    together = np.concatenate([X, X_val])
    assert sorted(map(tuple, together)) == sorted(map(tuple, whole))  # a split, nothing lost
    again = recipes.load_split(recipe)
    np.testing.assert_array_equal(again[0], X)
    np.testing.assert_array_equal(recipes.load_data(recipe)[0], X)  # training rows only

"""Robust regression losses (issue 24): ``absolute_error``, ``huber`` (``delta``) and
``quantile`` (``quantile``) in MLPRegressor, Network and the command line. Their gradients are
in the shared matrix (test_mlp.py, test_oracle.py); here: what each is for, the same run on every
backend, files, and bad values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning

import xpnet
from conftest import F64_RTOL
from xpnet import MLPRegressor, Network, cli, losses, mlp
from xpnet.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def noisy():
    """y = sin(x) plus noise, and 5% of the targets thrown far off."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, (300, 1))
    clean = np.sin(X[:, 0])
    y = clean + 0.1 * rng.randn(300)
    y[:15] += 20.0
    return X, y, clean


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        settings = {"hidden_layer_sizes": (16,), "max_iter": 300, "random_state": 0,
                    "learning_rate_init": 0.01, **params}  # fmt: skip
        return MLPRegressor(**settings).fit(X, y)


def test_robust_losses_ignore_outliers_that_squared_error_follows(noisy):
    X, y, clean = noisy
    error = {}
    for loss, params in [("squared_error", {}), ("absolute_error", {}), ("huber", {"delta": 0.5})]:
        fit = _fit(X, y, loss=loss, **params)
        error[loss] = float(np.median(np.abs(fit.predict(X)[15:] - clean[15:])))
    assert error["squared_error"] > 0.5  # pulled up by the outliers: about 1 here
    assert error["absolute_error"] < 0.15 and error["huber"] < 0.15, error


@pytest.mark.parametrize("q", [0.1, 0.9])
def test_the_quantile_loss_fits_that_quantile(noisy, q):
    X, _, clean = noisy
    y = clean + 0.3 * np.random.RandomState(1).randn(clean.size)  # no outliers here
    below = float(np.mean(y <= _fit(X, y, loss="quantile", quantile=q).predict(X)))
    assert abs(below - q) < 0.1, below


def test_files_keep_the_loss_and_its_setting(noisy, tmp_path):
    X, y, _ = noisy
    fit = _fit(X, y, loss="huber", delta=0.25, max_iter=5)
    fit.save(tmp_path / "h.safetensors")
    back = xpnet.load(tmp_path / "h.safetensors")
    assert (back.loss, back.delta) == ("huber", 0.25) and back._spec.delta == 0.25
    np.testing.assert_array_equal(back.predict(X), fit.predict(X))


@pytest.mark.parametrize(("params", "message"), [
    ({"loss": "huber", "delta": 0.0}, r"delta must be a number in \(0, inf\); got 0.0"),
    ({"loss": "quantile", "quantile": 1.0}, r"quantile must be a number in \(0, 1\); got 1.0"),
    ({"loss": "quantile", "quantile": "high"}, r"quantile must be a number in \(0, 1\)"),
    ({"loss": "hinge"}, r"unknown loss 'hinge'; valid losses: squared_error, poisson, "
     "absolute_error, huber, quantile"),
])  # fmt: skip
def test_bad_loss_settings_are_one_clear_error(noisy, params, message):
    X, y, _ = noisy
    with pytest.raises(ValueError, match=message):
        MLPRegressor(max_iter=1, **params).fit(X, y)


# -- Network: the same losses on numbers -------------------------------------------------------
ROBUST = [("absolute_error", {}), ("huber", {"delta": 0.5}), ("quantile", {"quantile": 0.8})]


def _net(loss, options, **kw):
    return Network((8,), activation="tanh", loss=loss, **options, **kw)


def test_a_network_ignores_outliers_and_fits_quantiles(noisy):
    X, y, clean = noisy
    for loss, options in ROBUST[:2]:
        net = _net(loss, options).fit(X, y, epochs=600, optimizer="adam", lr=0.02)
        assert float(np.median(np.abs(net.predict(X)[15:] - clean[15:]))) < 0.15, loss
    y = clean + 0.3 * np.random.RandomState(1).randn(clean.size)
    for q in (0.1, 0.9):
        net = _net("quantile", {"quantile": q}).fit(X, y, epochs=600, optimizer="adam", lr=0.02)
        assert abs(float(np.mean(y <= net.predict(X))) - q) < 0.1, q


@pytest.mark.parametrize(("loss", "options"), ROBUST, ids=[r[0] for r in ROBUST])
def test_the_first_loss_is_the_loss_of_the_first_weights(noisy, loss, options):
    """The plumbing: targets as given, the loss's own setting reaching the math."""
    X, y, _ = noisy
    net = _net(loss, options).fit(X, y, epochs=1, record="before", reg=0.0)
    z = mlp.predict_proba(np, net.initial_params_, X, net.spec_)  # identity outputs
    _, total, _ = losses.get(loss, **options).evaluate(np, z, y[:, None])
    assert net.loss_curve_[0] == pytest.approx(float(total) / y.size, rel=1e-14)
    for name, value in options.items():
        assert getattr(net.spec_, name) == value


@pytest.mark.parametrize(("loss", "options"), ROBUST, ids=[r[0] for r in ROBUST])
@pytest.mark.parametrize("batch", [None, 64])
def test_every_backend_trains_the_same_regression(make_backend, reference, backend_name, noisy,
                                                  loss, options, batch):  # fmt: skip
    make_backend("float64")
    X, y, _ = noisy
    kw = {"epochs": 4, "optimizer": "adam", "lr": 0.01, "batch_size": batch, "dropout": 0.2,
          "dropout_seed": 3}  # fmt: skip
    ours = _net(loss, options, backend=backend_name).fit(X, y, **kw)
    numpy = _net(loss, options, backend="numpy").fit(X, y, **kw)
    np.testing.assert_allclose(ours.loss_curve_, numpy.loss_curve_, rtol=F64_RTOL)
    np.testing.assert_allclose(ours.predict(X), numpy.predict(X), rtol=1e-11, atol=1e-12)


def test_regression_scores_predictions_files_and_refusals(noisy, tmp_path):
    from sklearn.metrics import r2_score

    X, y, _ = noisy
    Y = np.column_stack([y, -2 * y + 1])  # two targets
    net = _net("huber", {"delta": 0.5}, scale="standard").fit(X, Y, epochs=50, optimizer="adam",
                                                              lr=0.01)  # fmt: skip
    assert net.classes_ is None and net.spec_.sizes[-1] == 2
    predicted = net.predict(X)
    assert predicted.shape == (300, 2)
    w = np.random.RandomState(2).uniform(0, 2, 300)
    assert net.score(X, Y) == pytest.approx(r2_score(Y, predicted), rel=1e-12)
    assert net.score(X, Y, w) == pytest.approx(r2_score(Y, predicted, sample_weight=w), rel=1e-12)
    result = net.evaluate(X, Y)
    assert set(result) == {"r2", "loss", "n_samples"}
    assert result["r2"] == pytest.approx(net.score(X, Y), rel=1e-12)
    path = net.save(tmp_path / "h.safetensors")
    back = Network.load(path)
    assert (back.loss, back.delta, back.spec_.delta, back.classes_) == ("huber", 0.5, 0.5, None)
    np.testing.assert_array_equal(back.predict(X), predicted)
    with pytest.raises(ConfigError, match="a Network of loss 'huber' regresses: it predicts"):
        net.predict_proba(X)
    with pytest.raises(DataError, match="y has 1 targets a row; the model predicts 2"):
        net.score(X, y)
    with pytest.raises(DataError, match=r"validation_data: y_val has 1 targets a row"):
        net.fit(X, Y, epochs=1, validation_data=(X, y))
    one = _net("absolute_error", {}).fit(X, y, epochs=2)
    assert one.predict(X).shape == (300,)


def test_validation_scores_are_r2_and_resume_equals_one_fit(noisy):
    X, y, _ = noisy
    held = (X[:60], y[:60])
    kw = {"optimizer": "adam", "lr": 0.01, "batch_size": 50, "validation_data": held}
    whole = _net("quantile", {"quantile": 0.8}).fit(X[60:], y[60:], epochs=6, **kw)
    assert whole.validation_scores_.shape == (6,)
    assert whole.validation_scores_[-1] == pytest.approx(whole.score(*held), rel=1e-12)
    part = _net("quantile", {"quantile": 0.8}).fit(X[60:], y[60:], epochs=3, **kw)
    part.resume(X[60:], y[60:], epochs=6)
    np.testing.assert_array_equal(part.loss_curve_, whole.loss_curve_)
    np.testing.assert_array_equal(part.params_["W1"], whole.params_["W1"])


def test_the_command_line_trains_a_regression(tmp_path, capsys):
    model, metrics = tmp_path / "h.safetensors", tmp_path / "m.json"
    args = ["train", "--dataset", "diabetes", "--scale", "standard", "--hidden", "8", "--loss",
            "huber", "--delta", "20", "--optimizer", "adam", "--lr", "0.5", "--epochs", "60",
            "--validation-fraction", "0.2", "--quiet", "--save", str(model), "--metrics-out",
            str(metrics)]  # fmt: skip
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Training R^2: " in out and "Validation R^2: " in out and "accuracy" not in out
    written = __import__("json").loads(metrics.read_text())
    assert -1 < written["r2"] <= 1 and -1 < written["validation_r2"] <= 1
    assert "accuracy" not in written and "validation_accuracy" not in written
    net = Network.load(model)
    assert (net.loss, net.delta) == ("huber", 20.0)
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "diabetes"]) == 0
    shown = capsys.readouterr().out
    assert "r2: " in shown and "accuracy" not in shown

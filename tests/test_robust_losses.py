"""Robust regression losses (issue 24): ``absolute_error``, ``huber`` (``delta``) and
``quantile`` (``quantile``) in MLPRegressor. Their gradients are in the shared matrix
(test_mlp.py, test_oracle.py); here: what each is for, files, and bad values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning

import xpnet
from xpnet import MLPRegressor


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

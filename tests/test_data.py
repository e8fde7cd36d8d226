"""Bad data is refused at the boundary with a message naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import Network, data, datasets
from xpnet.errors import ConfigError, DataError

X_OK = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
Y_OK = np.array([0, 1, 1, 0])


@pytest.mark.parametrize(("X", "y", "match"), [
    (np.zeros(4), Y_OK, r"X must be 2-D .* got shape \(4,\); use X.reshape\(-1, 1\)"),
    (np.zeros((2, 2, 2)), Y_OK[:2], "X must be 2-D"),
    (np.zeros((0, 2)), np.zeros(0), "X is empty"),
    (np.array([["a", "b"]] * 4), Y_OK, "X must hold numbers"),
    (np.where(np.eye(4, 2) == 1, np.nan, 0.0), Y_OK, r"NaN or infinity \(first at row 0, column 0\)"),
    (np.full((4, 2), np.inf), Y_OK, "NaN or infinity"),
    (X_OK, Y_OK[:3], "X has 4 samples but y has 3"),
    (X_OK, np.zeros((4, 2)), r"y must be 1-D"),
    (X_OK, np.zeros(4), "only one class"),
    (X_OK, np.array([0.0, 1.0, np.nan, 0.0]), "y holds NaN"),
])  # fmt: skip
def test_fit_refuses_bad_data(X, y, match):
    with pytest.raises(DataError, match=match):
        Network((2,)).fit(X, y, epochs=1)


def test_labels_out_of_range_for_a_single_output():
    with pytest.raises(DataError, match=r"labels must lie in \[0, 1\]"):
        data.targets(np.array([0, 1, 2]), 3, 1)


def test_string_labels_round_trip():
    y = np.array(["no", "yes", "yes", "no"])
    net = Network((2,)).fit(X_OK, y, epochs=5)
    assert list(net.classes_) == ["no", "yes"]
    assert set(net.predict(X_OK)) <= {"no", "yes"}


def test_predict_checks_its_input():
    with pytest.raises(ConfigError, match="not fitted yet"):
        Network((2,)).predict(X_OK)
    net = Network((2,)).fit(X_OK, Y_OK, epochs=5)
    with pytest.raises(DataError, match="X has 3 features; the model expects 2"):
        net.predict(np.zeros((2, 3)))
    with pytest.raises(DataError, match="X has 4 samples but y has 2"):
        net.score(X_OK, Y_OK[:2])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"hidden": (0,)}, r"hidden must be positive integers, e.g. 3 or 10,10 \('' for no hidden layer\); got \(0\)"),
    ({"hidden": (2.5,)}, r"hidden must be positive integers.*; got \(2.5\)"),
    ({"hidden": "3,,3"}, r"hidden must be positive integers.*; got '3,,3'"),
    ({"hidden": None}, r"hidden must be positive integers.*; got None"),
    ({"loss": "mse"}, "loss 'mse' is MLPRegressor's"),
    ({"bias": "no"}, "bias must be True or False"),
    ({"init_seed": -1}, r"init_seed must be an integer in \[0, 4294967295\]; got -1"),
    ({"activation": "swish"}, "valid activations"),
    ({"loss": "hinge"}, "valid losses"),
    ({"init": "zeros"}, "valid inits: auto, britz, uniform, glorot, he, lecun, sklearn"),
    ({"dtype": "float16"}, "valid dtypes"),
])  # fmt: skip
def test_constructor_refuses_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Network(**kwargs)


def test_no_hidden_layer_is_softmax_regression():
    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    net = Network(()).fit(X, y, epochs=2000, lr=0.001, reduction="sum")
    assert net.spec_.sizes == (2, 2)
    assert 0.8 <= net.score(X, y) <= 0.9  # a linear boundary on moons


def test_global_minmax_scaling():
    X = np.array([[1.0, 5.0], [3.0, 2.0]])
    np.testing.assert_allclose(data.minmax_scale_global(X), [[0.0, 1.0], [0.5, 0.25]])


def test_numpy_dtypes_stand_for_their_names():
    assert Network((2,), dtype=np.float32).dtype == "float32"
    with pytest.raises(ConfigError, match="unknown dtype 'int64'; valid dtypes: float32, float64"):
        Network((2,), dtype=np.int64)

"""Initialisations draw the documented distributions from the given seed."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import init, mlp

SPEC = mlp.Spec((400, 300, 10))


@pytest.mark.parametrize(("name", "variance"), [
    ("britz", lambda i, o: 1 / i), ("lecun", lambda i, o: 1 / i), ("he", lambda i, o: 2 / i),
    ("glorot", lambda i, o: 2 / (i + o)), ("uniform", lambda i, o: 1 / 12),
])  # fmt: skip
def test_weight_variance(name, variance):
    params = init.initial_params(SPEC, name, 0)
    W = params["W1"]
    assert W.shape == (400, 300) and not params["b1"].any()
    assert W.var() == pytest.approx(variance(400, 300), rel=0.02)
    if name == "glorot":
        assert np.abs(W).max() <= np.sqrt(6 / 700)
    if name == "uniform":
        assert W.min() >= 0 and W.max() < 1


def test_same_seed_same_weights_and_lecun_is_britz():
    a = init.initial_params(SPEC, "he", 7)
    b = init.initial_params(SPEC, "he", 7)
    c = init.initial_params(SPEC, "he", 8)
    np.testing.assert_array_equal(a["W2"], b["W2"])
    assert not np.array_equal(a["W2"], c["W2"])
    np.testing.assert_array_equal(init.initial_params(SPEC, "lecun", 3)["W1"],
                                  init.initial_params(SPEC, "britz", 3)["W1"])  # fmt: skip

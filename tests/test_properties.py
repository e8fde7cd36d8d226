"""Property tests (hypothesis) on the numpy and strict backends: random shapes, architectures and
values, extreme logits, constant inputs, one sample, one feature. Nothing crashes except with a
documented error, losses and gradients stay finite, and gradients equal finite differences."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xpnet import Network, backends, mlp  # noqa: E402
from xpnet.errors import XpnetError  # noqa: E402
from xpnet.gradcheck import rel_err  # noqa: E402

PROPERTY_BACKENDS = ("numpy", "strict")
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def problems(draw, max_scale=1e3):
    """(spec, params, X, T) with every size from 1 up and weights up to ``max_scale``."""
    n_in = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 5), min_size=0, max_size=2))
    loss = draw(st.sampled_from(["cross_entropy", "squared_error"]))
    n_out = draw(st.integers(2, 4)) if loss == "cross_entropy" else draw(st.integers(1, 3))
    spec = mlp.Spec((n_in, *hidden, n_out), draw(st.sampled_from(["tanh", "sigmoid", "relu",
                    "identity"])), loss, draw(st.booleans()))  # fmt: skip
    n = draw(st.integers(1, 6))
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1e-3, 0.3, 1.0, 3.0, max_scale]))
    params = {k: rng.randn(*shape) * scale for k, shape in spec.param_shapes().items()}
    if draw(st.booleans()):
        X = np.full((n, n_in), draw(st.floats(-10, 10)))  # constant inputs
    else:
        X = rng.randn(n, n_in) * draw(st.sampled_from([1.0, 100.0]))
    labels = rng.randint(0, max(n_out, 2), n)
    T = np.eye(max(n_out, 2))[labels][:, :n_out] if n_out > 1 else labels[:, None] * 1.0
    return spec, params, X, T


@pytest.fixture(params=PROPERTY_BACKENDS)
def backend(request):
    return backends.select(request.param, None, "float64")


def test_extreme_values_give_finite_losses_and_gradients(backend):
    @SETTINGS
    @given(problems(max_scale=1e3), st.sampled_from(["sum", "mean"]))
    def check(problem, reduction):
        spec, params, X, T = problem
        value, grads = mlp.loss_and_grads(backend.xp, backend.tree_asarray(params),
                                          backend.asarray(X), backend.asarray(T), spec, 0.01,
                                          reduction)  # fmt: skip
        assert np.isfinite(backend.to_numpy(value))
        for k, g in grads.items():
            assert np.all(np.isfinite(backend.to_numpy(g))), k

    check()


def test_gradients_equal_finite_differences(backend):
    @SETTINGS
    @given(problems(max_scale=3.0))
    def check(problem):
        spec, params, X, T = problem
        X = np.clip(X, -5, 5)
        _, grads = mlp.loss_and_grads(backend.xp, backend.tree_asarray(params),
                                      backend.asarray(X), backend.asarray(T), spec, 0.01, "mean")  # fmt: skip

        def loss_at(p):
            return float(backend.to_numpy(mlp.loss(backend.xp, backend.tree_asarray(p),
                                                   backend.asarray(X), backend.asarray(T), spec, 0.01)))  # fmt: skip

        eps = 1e-6
        for name, value in params.items():
            got = backend.to_numpy(grads[name]).reshape(-1)
            fd = np.empty(value.size)
            for i in range(value.size):
                plus = {k: v.copy() for k, v in params.items()}
                minus = {k: v.copy() for k, v in params.items()}
                plus[name].reshape(-1)[i] += eps
                minus[name].reshape(-1)[i] -= eps
                fd[i] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
            if np.max(np.abs(fd)) > 1e-6:  # a relu kink or saturation can zero a whole gradient
                assert rel_err(got, fd) < 1e-4, name
            else:
                assert np.max(np.abs(got)) < 1e-5, name

    check()


def test_fit_either_trains_or_raises_a_documented_error(backend):
    @SETTINGS
    @given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
           st.sampled_from([0.0, 1.0, 1e6]), st.integers(0, 2**31 - 1))  # fmt: skip
    def check(n, d, k, spread, seed):
        rng = np.random.RandomState(seed)
        X = rng.randn(n, d) * spread
        y = rng.randint(0, k, n)
        try:
            net = Network((3,), backend=backend.name).fit(X, y, epochs=3, lr=0.01)
        except XpnetError as exc:
            assert isinstance(exc, (ValueError, RuntimeError))
            return
        assert np.all(np.isfinite(net.loss_curve_))
        assert net.predict(X).shape == (n,)

    check()

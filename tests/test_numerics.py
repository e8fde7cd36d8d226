"""Activations and output losses: derivatives from the output, and no overflow on huge logits."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import activations, losses


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_derivative_matches_central_differences(make_backend, name):
    backend = make_backend("float64")
    act = activations.ACTIVATIONS[name]
    z_host = np.linspace(-3.0, 3.0, 13).reshape(13, 1) + 0.037  # keeps relu's kink off the grid
    h = 1e-6
    up = backend.to_numpy(act.fn(backend.xp, backend.asarray(z_host + h)))
    down = backend.to_numpy(act.fn(backend.xp, backend.asarray(z_host - h)))
    z = backend.asarray(z_host)
    a = act.fn(backend.xp, z)
    got = backend.to_numpy(act.grad(backend.xp, z if act.needs_z else None, a))
    np.testing.assert_allclose(got, (up - down) / (2 * h), atol=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_and_softmax_do_not_overflow(make_backend, dtype):
    backend = make_backend(dtype)
    xp = backend.xp
    z = backend.asarray([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [3e3, 3e3 - 1.0]])
    s = backend.to_numpy(activations.sigmoid(xp, z))
    np.testing.assert_array_equal(s[:2], [[1, 0], [0, 1]])
    np.testing.assert_allclose(s[2], [0.5, 0.5])
    p = backend.to_numpy(losses.softmax(xp, z))
    assert np.all(np.isfinite(p))
    # logits near 3e3 are spaced 2.4e-4 apart in float32: the probabilities are only that exact
    rtol = 1e-3 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=rtol)
    p1 = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(p[3], [p1, 1 - p1], rtol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_is_exact_for_huge_logits(make_backend, dtype):
    backend = make_backend(dtype)
    xp = backend.xp
    z = backend.asarray([[1e4, 0.0], [0.0, 1e4]])
    T = backend.asarray([[0.0, 1.0], [0.0, 1.0]])  # first sample is wrong by 1e4, second right
    a, total, delta = losses.LOSSES["cross_entropy"].evaluate(xp, z, T)
    assert float(backend.to_numpy(total)) == pytest.approx(1e4, rel=1e-6)
    np.testing.assert_allclose(backend.to_numpy(a), [[1, 0], [0, 1]], atol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(delta), [[1, -1], [0, 0]], atol=1e-6)
    lse = backend.to_numpy(losses.logsumexp(xp, z))
    np.testing.assert_allclose(lse, [[1e4], [1e4]], rtol=1e-6)


def test_tables_reject_unknown_names():
    with pytest.raises(ValueError, match="valid activations: tanh, sigmoid, relu, identity, leaky"):
        activations.get("swish")
    with pytest.raises(ValueError, match="valid losses: cross_entropy, squared_error, mse"):
        losses.get("hinge")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softplus_and_gelu_stay_finite_and_accurate_at_the_extremes(make_backend, dtype):
    backend = make_backend(dtype)
    xp = backend.xp
    z_host = np.array([-1e4, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1e4])
    z = backend.asarray(z_host)
    sp = backend.to_numpy(activations.softplus(xp, z)).astype(np.float64)
    want = np.logaddexp(0.0, z_host)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(sp, want, rtol=rtol, atol=0)
    grad = backend.to_numpy(activations.softplus_grad(xp, activations.softplus(xp, z)))
    np.testing.assert_allclose(grad, np.exp(-np.logaddexp(0.0, -z_host)), rtol=1e-5, atol=1e-30)
    g = backend.to_numpy(activations.gelu(xp, z)).astype(np.float64)
    assert np.all(np.isfinite(g)) and g[-1] == 1e4 and g[0] == 0.0


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_no_activation_overflows_in_float32(make_backend, name):
    """Inputs up to float32's largest give finite values and derivatives in float32, equal to
    float64's of the same inputs (whose derivatives match central differences above)."""
    act = activations.ACTIVATIONS[name]
    z_host = np.array([[-3e38], [-1e4], [-100.0], [-30.0], [-3.0], [0.5], [30.0], [1e4], [3e38]])
    got = {}
    for dtype in ("float32", "float64"):
        backend = make_backend(dtype)
        z = backend.asarray(z_host.astype(dtype))
        a = act.fn(backend.xp, z)
        got[dtype] = [backend.to_numpy(a).astype(np.float64),
                      backend.to_numpy(act.grad(backend.xp, z if act.needs_z else None, a))]  # fmt: skip
    for (a32, d32), (a64, d64) in [(got["float32"], got["float64"])]:
        assert np.all(np.isfinite(a32)) and np.all(np.isfinite(d32)), (a32, d32)
        np.testing.assert_allclose(a32, a64, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-6)

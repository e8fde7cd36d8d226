"""Gradients against an independent autodiff oracle: ``jax.grad`` of a loss written here with
``jax.nn`` (no xpnet code), float64, on every backend of the matrix."""

from __future__ import annotations

import pytest

from helpers import problem, rel_err
from test_mlp import CASES
from xpnet import mlp

jax = pytest.importorskip("jax", reason="the autodiff oracle needs jax: pip install 'xpnet[jax]'")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

HIDDEN = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "identity": lambda z: z,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.01),
    "softplus": jax.nn.softplus,
    "gelu": lambda z: jax.nn.gelu(z, approximate=True),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "mish": lambda z: z * jnp.tanh(jax.nn.softplus(z)),
}


def oracle_loss(params, X, T, spec, reg, weights=None):
    a = X
    for layer in range(1, spec.n_layers + 1):
        z = a @ params[f"W{layer}"] + params.get(f"b{layer}", 0.0)
        a = HIDDEN[spec.activation](z) if layer < spec.n_layers else z
    if spec.loss == "cross_entropy":
        per_sample = -jnp.sum(T * jax.nn.log_softmax(a, axis=1), axis=1)
    elif spec.loss == "squared_error":
        per_sample = 0.5 * jnp.sum((jax.nn.sigmoid(a) - T) ** 2, axis=1)
    elif spec.loss == "binary_cross_entropy":  # independent sigmoid units, log loss
        p = jax.nn.sigmoid(a)
        per_sample = -jnp.sum(T * jnp.log(p) + (1 - T) * jnp.log1p(-p), axis=1)
    elif spec.loss == "poisson":  # exp output, half Poisson deviance
        # T log(T / mu) - T + mu with log mu = a (T log T is a constant, 0 where T is 0)
        per_sample = jnp.sum(jax.scipy.special.xlogy(T, T) - T * a - T + jnp.exp(a), axis=1)
    elif spec.loss == "absolute_error":
        per_sample = jnp.sum(jnp.abs(a - T), axis=1)
    elif spec.loss == "huber":  # optax's form: 0.5 r^2 inside delta, linear outside
        r = jnp.abs(a - T)
        d = spec.delta
        per_sample = jnp.sum(jnp.where(r <= d, 0.5 * r**2, d * r - 0.5 * d**2), axis=1)
    elif spec.loss == "quantile":  # pinball: max(q r, (q - 1) r), r = T - a
        r = T - a
        q = spec.quantile
        per_sample = jnp.sum(jnp.maximum(q * r, (q - 1) * r), axis=1)
    else:  # mse: identity output
        assert spec.loss == "mse", spec.loss
        per_sample = 0.5 * jnp.sum((a - T) ** 2, axis=1)
    penalty = sum(jnp.sum(params[f"W{i}"] ** 2) for i in range(1, spec.n_layers + 1))
    if weights is None:
        return (jnp.sum(per_sample) + reg / 2 * penalty) / X.shape[0]
    return (jnp.sum(weights * per_sample) + reg / 2 * penalty) / jnp.sum(weights)


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_grads_match_jax_grad(make_backend, spec, reduction):
    backend = make_backend("float64")
    params, X, T = problem(spec)
    reg = 0.02
    want_loss, want = jax.value_and_grad(oracle_loss)(
        {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(X), jnp.asarray(T), spec, reg
    )
    assert want_loss.dtype == jnp.float64
    loss, grads = mlp.loss_and_grads(
        backend.xp, backend.tree_asarray(params), backend.asarray(X), backend.asarray(T),
        spec, reg, reduction,
    )  # fmt: skip
    scale = X.shape[0] if reduction == "sum" else 1.0
    assert float(backend.to_numpy(loss)) == pytest.approx(float(want_loss), rel=1e-12)
    for name in params:
        assert (
            rel_err(backend.to_numpy(grads[name]), scale * jax.device_get(want[name])) <= 1e-12
        ), name

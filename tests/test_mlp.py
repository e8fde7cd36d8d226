"""The shared matrix: the same loss and gradients on every backend, and against central finite
differences, over depths, widths, activations, losses, biases and reductions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import F32_RTOL, F64_RTOL
from helpers import problem, rel_err
from xpnet import activations, losses, mlp

SIZES = [(2, 2), (2, 3, 2), (4, 3, 1), (3, 5, 4, 3), (2, 4, 4, 4, 2)]
LOSS_OPTIONS = {"delta": 0.3, "quantile": 0.3}  # off their defaults: the settings reach the math


def _cases():
    """Every activation x loss x bias x reduction, each on two of the layer sizes in turn (so
    every activation and every loss meets every depth and width): a covering design of the
    product, as large as the full product was before the robust losses and new activations."""
    combos = itertools.product(list(activations.ACTIVATIONS), list(losses.LOSSES), [True, False],
                               ["sum", "mean"])  # fmt: skip
    for i, (act, loss, bias, red) in enumerate(combos):
        for sizes in (SIZES[i % len(SIZES)], SIZES[(i + 2) % len(SIZES)]):
            if loss == "cross_entropy" and sizes[-1] == 1:
                sizes = (
                    SIZES[(i + 1) % len(SIZES)] if SIZES[(i + 1) % len(SIZES)][-1] > 1 else (2, 2)
                )
            yield pytest.param(
                mlp.Spec(sizes, act, loss, bias, **LOSS_OPTIONS),
                red,
                id=f"{'x'.join(map(str, sizes))}-{act}-{loss}-{'b' if bias else 'nob'}-{red}",
            )


CASES = list(_cases())


def _numpy_reference(reference, spec, params, X, T, reg, reduction):
    xp = reference.xp
    loss, grads = mlp.loss_and_grads(
        xp, reference.tree_asarray(params), xp.asarray(X), xp.asarray(T), spec, reg, reduction
    )
    return float(loss), reference.tree_to_numpy(grads)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_same_loss_and_grads_on_every_backend(make_backend, reference, spec, reduction, dtype):
    backend = make_backend(dtype)
    params, X, T = problem(spec)
    reg = 0.01
    want_loss, want_grads = _numpy_reference(reference, spec, params, X, T, reg, reduction)
    loss, grads = mlp.loss_and_grads(
        backend.xp, backend.tree_asarray(params), backend.asarray(X), backend.asarray(T),
        spec, reg, reduction,
    )  # fmt: skip
    tol = F64_RTOL if dtype == "float64" else F32_RTOL
    got = backend.to_numpy(loss)
    assert got.shape == ()
    assert str(got.dtype) == dtype
    assert abs(float(got) - want_loss) <= tol * abs(want_loss)
    assert set(grads) == set(params)
    for name, g in grads.items():
        host = backend.to_numpy(g)
        assert host.shape == params[name].shape, name
        assert str(host.dtype) == dtype, name
        assert rel_err(host, want_grads[name]) <= tol, name


@pytest.mark.parametrize(("spec", "reduction"), CASES)
def test_grads_match_central_differences(make_backend, spec, reduction):
    backend = make_backend("float64")
    xp = backend.xp
    params, X, T = problem(spec, 5)
    reg = 0.03
    X_dev, T_dev = backend.asarray(X), backend.asarray(T)
    _, grads = mlp.loss_and_grads(
        xp, backend.tree_asarray(params), X_dev, T_dev, spec, reg, reduction
    )
    scale = X.shape[0] if reduction == "sum" else 1.0  # "sum" grads are n times the loss gradient
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            losses = []
            for sign in (1, -1):
                moved = {**params, name: value.copy()}
                moved[name][idx] += sign * h
                loss = mlp.loss(xp, backend.tree_asarray(moved), X_dev, T_dev, spec, reg)
                losses.append(float(backend.to_numpy(loss)))
            fd[idx] = scale * (losses[0] - losses[1]) / (2 * h)
        got = backend.to_numpy(grads[name])
        # relu's kink makes FD meaningless within h of zero; the random problem keeps clear of it
        assert rel_err(got, fd) <= 1e-6, name


@pytest.mark.parametrize("bias", [True, False])
def test_loss_without_regularisation_ignores_weights_penalty(make_backend, bias):
    backend = make_backend("float64")
    spec = mlp.Spec((2, 3, 2), bias=bias)
    params, X, T = problem(spec)
    p, Xd, Td = backend.tree_asarray(params), backend.asarray(X), backend.asarray(T)
    plain = float(backend.to_numpy(mlp.loss(backend.xp, p, Xd, Td, spec, 0.0)))
    reg = float(backend.to_numpy(mlp.loss(backend.xp, p, Xd, Td, spec, 0.5)))
    penalty = sum(float(np.sum(v * v)) for k, v in params.items() if k.startswith("W"))
    assert reg - plain == pytest.approx(0.25 * penalty / X.shape[0], rel=1e-12)


def test_spec_rejects_bad_sizes_and_names():
    with pytest.raises(ValueError, match="positive integers"):
        mlp.Spec((2, 0, 2))
    with pytest.raises(ValueError, match="positive integers"):
        mlp.Spec((2,))
    with pytest.raises(
        ValueError,
        match="valid activations: tanh, sigmoid, relu, identity, leaky_relu, softplus, gelu, elu, "
        "selu, silu, mish",
    ):
        mlp.Spec((2, 2), activation="swish")  # scikit-learn's #16827 name: xpnet calls it silu
    with pytest.raises(ValueError, match="valid losses: cross_entropy, squared_error, mse"):
        mlp.Spec((2, 2), loss="hinge")


def test_unknown_reduction_is_rejected(reference):
    spec = mlp.Spec((2, 2))
    params, X, T = problem(spec)
    with pytest.raises(ValueError, match="unknown reduction 'max'; valid reductions: sum, mean"):
        mlp.loss_and_grads(reference.xp, params, X, T, spec, 0.0, "max")


def test_a_spec_pickles_as_what_defines_it():
    import pickle

    spec = mlp.Spec((3, 4, 2), "gelu", "squared_error", False)
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)
    assert again.act is spec.act and again.out is spec.out and again.n_layers == 2

"""The user-facing gradient check measures what it claims: small on correct gradients, large on a
wrong one; and the progress reporter prints exactly the requested passes."""

from __future__ import annotations

import io

import numpy as np
import pytest

from xpnet import gradcheck, mlp, progress


def test_rel_err_is_relative_to_the_largest_entry():
    assert gradcheck.rel_err(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert gradcheck.rel_err(np.array([1.0, 2.5]), np.array([1.0, 2.0])) == 0.25
    assert gradcheck.rel_err(np.array([0.1, 4.0]), np.array([0.0, 4.0])) == pytest.approx(0.025)


@pytest.mark.parametrize("spec", [
    mlp.Spec((3, 4, 2)),
    mlp.Spec((2, 5, 3, 1), "sigmoid", "squared_error", bias=False),
    mlp.Spec((4, 3), "relu"),
])  # fmt: skip
def test_correct_gradients_pass(make_backend, spec):
    rows = gradcheck.gradcheck(make_backend("float64"), spec)
    assert [r.name for r in rows] == list(spec.param_shapes())
    assert all(r.fd_error < 1e-6 for r in rows)
    assert all(r.autodiff_error is None or r.autodiff_error < 1e-12 for r in rows)


def test_a_wrong_gradient_is_caught(reference, monkeypatch):
    honest = mlp.loss_and_grads

    def off_by_a_bit(*args, **kwargs):
        value, grads = honest(*args, **kwargs)
        return value, {**grads, "b1": grads["b1"] * 1.01}

    monkeypatch.setattr(mlp, "loss_and_grads", off_by_a_bit)
    rows = {r.name: r for r in gradcheck.gradcheck(reference, mlp.Spec((3, 4, 2)))}
    assert rows["b1"].fd_error > 1e-3 and rows["W1"].fd_error < 1e-6
    if rows["b1"].autodiff_error is not None:
        assert rows["b1"].autodiff_error > 1e-3


def test_reporter_prints_the_multiples_of_every_across_chunks():
    from types import SimpleNamespace

    out = io.StringIO()
    with progress.Reporter(10, 3, lambda i, v: f"{i}:{v:g}", "lines", out) as r:
        for first, end in ((0, 4), (4, 8), (8, 10)):  # the engine's chunks, every loss recorded
            passes = np.arange(first, end)
            r.on_chunk_end(SimpleNamespace(epoch=end), passes, passes.astype(float))
        r.on_chunk_end(SimpleNamespace(epoch=20), np.array([12, 19]), np.array([12.0, 19.0]))
    assert out.getvalue().split() == ["0:0", "3:3", "6:6", "9:9", "12:12"]  # 19 is not a multiple
    quiet = io.StringIO()
    with progress.Reporter(4, 1, str, "quiet", quiet) as r:
        r.on_chunk_end(SimpleNamespace(epoch=4), np.arange(4), np.zeros(4))
    assert quiet.getvalue() == ""
    assert progress.choose_mode("auto", io.StringIO()) == "lines"  # not a terminal

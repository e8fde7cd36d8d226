"""Matrix-product precision (issue 27): full float32 is pinned by default on every backend,
inside compiled programs and eager work alike; ``precision`` (``set_precision``,
``$XPNET_PRECISION``, ``--precision``) asks for TF32 or bfloat16 speed instead. A CPU computes
the same either way, so these tests read what each library was told."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import backends, cli
from xpnet.errors import ConfigError


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    monkeypatch.delenv(backends.PRECISION_VAR, raising=False)
    with backends.using_precision(None):
        yield
    backends.set_precision(None)


def test_the_precision_comes_from_the_call_then_the_environment_then_highest(monkeypatch):
    assert backends.precision() == "highest"
    monkeypatch.setenv(backends.PRECISION_VAR, "medium")
    assert backends.precision() == "medium"
    with backends.using_precision("high"):
        assert backends.precision() == "high"
    assert backends.precision() == "medium"
    monkeypatch.setenv(backends.PRECISION_VAR, "tf32")
    with pytest.raises(ConfigError, match="unknown precision 'tf32'; valid precisions: highest, "
                       "high, medium"):  # fmt: skip
        backends.precision()


@pytest.mark.parametrize(("asked", "hlo"), [("highest", "HIGHEST"), ("high", "HIGH"),
                                            ("medium", None)])  # fmt: skip
@pytest.mark.only_backend("jax")
def test_jax_programs_and_eager_work_use_the_precision(make_backend, asked, hlo):
    backend = make_backend("float32")
    import jax

    x = backend.asarray(np.ones((4, 4), np.float32))
    with backends.using_precision(asked):
        text = jax.jit(backend.jit(lambda a: a @ a)).lower(x).as_text()
        with backend.activate():
            eager = jax.config.jax_default_matmul_precision
    assert eager == {"highest": "highest", "high": "high", "medium": "default"}[asked]
    if hlo is None:
        assert "precision = [HIGH" not in text and "HIGHEST" not in text, text
    else:
        assert f"precision = [{hlo}, {hlo}]" in text, text


@pytest.mark.parametrize("asked", ["highest", "high", "medium"])
@pytest.mark.only_backend("torch")
def test_torch_runs_at_the_precision_and_restores_its_flags(make_backend, asked):
    backend = make_backend("float32")
    import torch

    torch.set_float32_matmul_precision("high")  # what a user's code may have left
    torch.backends.cudnn.allow_tf32 = True
    try:
        with backends.using_precision(asked), backend.activate():
            assert torch.get_float32_matmul_precision() == asked
            assert torch.backends.cudnn.allow_tf32 == (asked != "highest")
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = True


def test_the_command_line_takes_a_precision_for_its_run_only(capsys):
    assert cli.main(["train", "--precision", "high", "--epochs", "3", "--quiet"]) == 0
    assert backends.precision() == "highest"  # the command's, not the process's after it
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--precision", "tf32"])
    assert info.value.code == 2
    assert (
        "invalid choice: 'tf32' (choose from 'highest', 'high', 'medium')"
        in capsys.readouterr().err
    )

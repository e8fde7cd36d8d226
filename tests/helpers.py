"""Helpers shared by the test modules: random problems and the relative error of a gradient
(xpnet.gradcheck's, tested in test_gradcheck.py), seed 000's settings (the recipe ``britz``; no
longer the library's defaults), and the command line run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from xpnet import Network
from xpnet.gradcheck import problem, rel_err

__all__ = ["SEED000_FIT", "britz", "problem", "rel_err", "where", "xpnet"]

SEED000_NET = {"activation": "tanh", "init": "britz"}
SEED000_FIT = {"lr": 0.01, "reg": 0.01, "reduction": "sum"}
"""Seed 000's architecture and training settings beyond the hidden size and epochs."""


def where(backend: Any) -> dict[str, Any]:
    """The ``backend=``/``device=`` settings that select a test's backend object."""
    return {"backend": backend.name, "device": backend.device_label}


def britz(hidden: Any = (3,), **kwargs: Any) -> Network:
    """A Network with seed 000's tanh units and initial weights; fit it with ``SEED000_FIT``."""
    return Network(hidden, **{**SEED000_NET, **kwargs})


def xpnet(
    *args: str, env: dict[str, str] | None = None, cwd: Any = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m xpnet ARGS`` (in ``cwd``) with $XPNET_BACKEND cleared unless ``env`` sets
    it."""
    full_env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "xpnet", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )

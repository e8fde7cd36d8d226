"""Helpers shared by the test modules: random problems and the relative error of a gradient
(xpnet.gradcheck's, tested in test_gradcheck.py), and the command line run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from xpnet.gradcheck import problem, rel_err

__all__ = ["problem", "rel_err", "xpnet"]


def xpnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m xpnet ARGS`` with $XPNET_BACKEND cleared unless ``env`` sets it."""
    full_env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "xpnet", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )

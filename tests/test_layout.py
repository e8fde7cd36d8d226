"""Architecture rules: light import, math modules free of NumPy, one module names the backends."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xpnet"
MATH = ["activations", "losses", "mlp", "optim", "train", "trees", "_typing"]
HEAVY = ["matplotlib", "jax", "cupy", "torch", "sklearn", "array_api_strict", "scipy", "rich"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("statement", ["import xpnet", "from xpnet import Network, Spec, select"])
def test_import_xpnet_loads_no_heavy_library(statement):
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_xpnet_alone_loads_only_the_errors():
    code = "import sys, xpnet; print(sorted(m for m in sys.modules if m.startswith('xpnet')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['xpnet', 'xpnet.errors']"


def test_every_public_name_resolves():
    import xpnet

    for name in xpnet.__all__:
        assert getattr(xpnet, name) is not None, name
    assert set(xpnet.__all__) <= set(dir(xpnet))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xpnet.nope  # noqa: B018


@pytest.mark.parametrize("module", MATH)
def test_math_modules_use_only_the_namespace(module):
    assert "numpy" not in _imports(SRC / f"{module}.py")


def test_only_backends_names_the_array_libraries():
    """backends.py holds one class per library; parallel.py is JAX's multi-device engine."""
    allowed = {"backends.py": None, "parallel.py": {"jax"}}
    for path in SRC.glob("*.py"):
        named = _imports(path) & {"jax", "cupy", "torch", "array_api_strict", "array_api_compat"}
        if path.name in allowed:
            assert allowed[path.name] is None or named <= allowed[path.name], path.name
            continue
        assert not named, f"{path.name} imports {named}"


def test_no_module_asks_a_backend_its_name():
    """Capabilities (can_shard, has_grad, is_accelerator) are asked of the backend object;
    nothing outside backends.py branches on a backend's name."""
    import re

    for path in SRC.glob("*.py"):
        if path.name == "backends.py":
            continue
        text = path.read_text()
        assert not re.search(r"""\.name\s*[!=]=\s*["'](numpy|strict|jax|cupy|torch)""", text), (
            path.name
        )
        assert not re.search(r"""select\(\s*["'](jax|cupy|torch|strict)""", text), path.name

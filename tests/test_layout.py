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


def _module_imports() -> dict[str, set[str]]:
    """xpnet's modules and the xpnet modules each imports when it is imported (module-level
    statements only: not under ``if TYPE_CHECKING``, not inside functions)."""
    modules = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:  # top level only
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xpnet"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("xpnet")}
        # a submodule's import of its own package is the package being initialised: no edge
        graph[name] = {m for m in found if m in modules and not name.startswith(m + ".")} - {name}
    return graph


def test_no_import_cycles():
    graph = _module_imports()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, n]))
            if n not in state:
                visit(n, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_shared_types_are_defined_once():
    """Carry, Step, HostParams, Params, Tree, Array: only in _typing.py; no dead Namespace."""
    for path in SRC.rglob("*.py"):
        if path.name == "_typing.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets.append(node.target.id)
            assert not set(targets) & {"Carry", "Step", "HostParams", "Params", "Tree", "Array"}, (
                path
            )
    assert "Namespace" not in (SRC / "_typing.py").read_text()


def test_the_math_defaults_are_not_the_seeds():
    """The seeds' settings are recipes: the math's and the initialisation's defaults are the
    library's (mean reduction, auto initialisation)."""
    import inspect

    from xpnet import init, mlp

    assert inspect.signature(init.initial_params).parameters["init"].default == "auto"
    for fn in (mlp.loss_and_grads, mlp.backprop, mlp.loss):
        reduction = inspect.signature(fn).parameters.get("reduction")
        assert reduction is None or reduction.default in ("mean", inspect.Parameter.empty), fn

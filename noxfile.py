"""Test sessions: one per backend, plus lint, typecheck, docs and package.

``nox`` runs every CPU session (numpy, strict, jax, torch, lint, typecheck, docs: the site built
strictly, package: the wheel checked and installed alone); the GPU sessions
(``tests-cupy``, ``tests-jax-cuda``, ``tests-torch-cuda``) install their backend from the package
index and skip cleanly without a CUDA device. They use the Python that runs nox (a GPU machine's
own). Where a GPU machine cannot reach the index, ``PYTHONPATH=src python benchmarks/gpu.py`` runs
the same matrix on the CuPy, JAX and PyTorch already installed there, offline. Each backend's
packages are listed in ``backends/<name>.txt``. Environments are reused (``-R``) and built with uv
when it is installed. ``nox -s bench`` runs the benchmarks (not by default).
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "tests-numpy",
    "tests-strict",
    "tests-jax",
    "tests-torch",
    "lint",
    "typecheck",
    "docs",
    "package",
]

PYTHON = "3.11"
# CuPy wheels are built per CUDA major version: XPNET_CUDA_MAJOR=12 picks backends/cupy-cuda12.txt.
CUDA_MAJOR = os.environ.get("XPNET_CUDA_MAJOR", "13")
# (session suffix, requirement files, XPNET_TEST_BACKENDS, XPNET_TEST_DEVICE, Python)
MATRIX = [
    ("numpy", ["numpy"], "numpy", "", PYTHON),
    ("strict", ["strict"], "strict", "", PYTHON),
    ("jax", ["jax"], "jax", "", PYTHON),
    ("torch", ["torch"], "torch", "cpu", PYTHON),
    ("cupy", [f"cupy-cuda{CUDA_MAJOR}"], "cupy", "gpu", None),
    ("jax-cuda", ["jax-cuda"], "jax", "gpu", None),
    ("torch-cuda", ["torch-cuda"], "torch", "gpu", None),
]


def _install_env() -> dict[str, str]:
    # uv ignores pip's configuration; carry the machine's local wheel folder across if it has one.
    links = os.environ.get("PIP_FIND_LINKS")
    env = {"UV_FIND_LINKS": links} if links and "UV_FIND_LINKS" not in os.environ else {}
    # uv installs no bytecode (pip does): where PYTHONDONTWRITEBYTECODE is set, as on CI, every
    # process the tests start then compiled scikit-learn and SciPy from source again (4 s for
    # `xpnet train --backend tensorflow`; 2 s with bytecode).
    env.setdefault("UV_COMPILE_BYTECODE", "1")
    return env


def _tests(session: nox.Session, files: list[str], backend: str, device: str) -> None:
    session.install(*(f"-r=backends/{f}.txt" for f in files), env=_install_env())
    session.install("-e", ".[test]", env=_install_env())
    env = {"XPNET_TEST_BACKENDS": backend}
    if device:
        env["XPNET_TEST_DEVICE"] = device
    session.run("pytest", *session.posargs, env=env)


for _name, _files, _backend, _device, _python in MATRIX:

    @nox.session(name=f"tests-{_name}", python=_python)
    def _session(
        session: nox.Session,
        files: list[str] = _files,
        backend: str = _backend,
        device: str = _device,
    ) -> None:
        _tests(session, files, backend, device)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    where = ["src", "tests", "benchmarks", "docs/hooks.py", "docs/griffe_roles.py", "noxfile.py"]
    session.run("ruff", "check", *where)
    session.run("ruff", "format", "--check", *where)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("mypy>=1.11", "-e", ".", env=_install_env())
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ (strict: a broken link, a missing reference or a
    docstring that does not render fails it). ``nox -s docs -- serve`` serves it instead."""
    session.install("-e", ".[docs]", env=_install_env())
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, check them with twine (strict), install the wheel alone into a
    fresh environment and run it there: ``xpnet --help``, the version, the type marker."""
    import shutil
    import tempfile

    session.install("build>=1.2", "twine>=5", env=_install_env())
    out = tempfile.mkdtemp(prefix="xpnet-dist-")
    session.run("python", "-m", "build", "--outdir", out)
    dists = sorted(os.path.join(out, f) for f in os.listdir(out))
    session.run("twine", "check", "--strict", *dists)
    venv = os.path.join(out, "venv")
    session.run("python", "-m", "venv", venv)
    python = os.path.join(venv, "bin", "python")
    wheel = next(d for d in dists if d.endswith(".whl"))
    session.run(python, "-m", "pip", "install", "--quiet", wheel, external=True,
                env=_install_env())  # fmt: skip
    session.run(os.path.join(venv, "bin", "xpnet"), "--help", external=True)
    check = ("import importlib.metadata as m, importlib.resources as r, xpnet; "
             "assert m.version('xpnet') == xpnet.__version__, (m.version('xpnet'), xpnet.__version__); "
             "assert r.files('xpnet').joinpath('py.typed').is_file(); "
             "print('xpnet', xpnet.__version__, 'installs alone; py.typed shipped')")  # fmt: skip
    session.run(python, "-c", check, external=True)
    shutil.rmtree(out)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Issue 6's benchmarks (not in the default run): every CPU backend and peer, one report.
    ``nox -s bench -- --quick`` for the one-minute version; results in benchmarks/results/."""
    session.install(*(f"-r=backends/{f}.txt" for f in ("jax", "torch", "strict")),
                    env=_install_env())  # fmt: skip
    session.install("-e", ".[data]", env=_install_env())
    session.run("python", "benchmarks/run.py", *session.posargs)

"""The package as published: one version, its type marker, its changelog, every error a user
must catch importable from ``xpnet`` (``nox -s package`` builds, checks and installs the wheel)."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import xpnet
from xpnet import errors

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/xpnet/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", xpnet.__version__)
    assert f"## {xpnet.__version__} " in (ROOT / "CHANGELOG.md").read_text()


def test_the_wheel_ships_its_type_marker():
    assert (ROOT / "src" / "xpnet" / "py.typed").is_file()


def test_every_error_is_public():
    raised = {name for name, obj in inspect.getmembers(errors, inspect.isclass)
              if issubclass(obj, BaseException) and obj.__module__ == errors.__name__}  # fmt: skip
    assert raised <= set(xpnet.__all__), raised - set(xpnet.__all__)
    assert {"ModelFileError", "TrainingInterrupted", "DivergenceError"} <= raised
    for name in xpnet.__all__:
        assert getattr(xpnet, name) is not None, name

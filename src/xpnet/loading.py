"""``xpnet.load``: the object a model file holds, whichever front-end wrote it.

The file format (:mod:`xpnet.persist`) knows nothing of the classes that use it; this module
knows which class wrote a file and hands the file to that class's ``load``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from xpnet import persist
from xpnet.errors import ModelFileError

KINDS = {
    "Network": "xpnet.model",
    "MLPClassifier": "xpnet.estimators",
    "MLPRegressor": "xpnet.estimators",
}
"""Which class wrote a file, and where it lives."""


def load(path: str | Path, **where: Any) -> Any:
    """Read a model file and return the object that wrote it (a ``Network``, an
    ``MLPClassifier`` or an ``MLPRegressor``), on the backend ``where`` names (``backend=``,
    ``device=``...; default: as :func:`xpnet.backends.select` chooses here)."""
    kind = persist.description(path).get("kind")  # the class's load reads it whole, once
    if kind not in KINDS:
        raise ModelFileError(f"{str(path)!r} holds a {kind!r}, which this xpnet cannot load")
    cls = getattr(importlib.import_module(KINDS[kind]), kind)
    return cls.load(path, **where)

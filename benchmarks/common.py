"""What the benchmark scripts share."""

from __future__ import annotations

from collections.abc import Iterator

from xpnet import backends
from xpnet.errors import XpnetError


def usable_backends(names: str, dtype: str = "float64") -> Iterator[str]:
    """Yield the names in the comma list that can run here on the CPU; print why the others
    cannot."""
    for name in names.split(","):
        try:
            backends.select(name, "cpu", dtype)
        except XpnetError as exc:
            print(f"# {name}: skipped ({exc})")
            continue
        yield name

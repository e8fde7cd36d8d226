"""Named data sets and CSV files, loaded on the host as ``(X (n, d) float64, y (n,))``.

``load("moons", n_samples=200, noise=0.2, seed=0)`` draws scikit-learn's generators the way the
seeds do; ``iris``, ``wine``, ``breast-cancer`` and ``digits`` are the tables that ship with
scikit-learn; ``toy`` is seed 001's 3-sample set; ``csv:PATH`` reads a file (see :func:`read_csv`);
``npy:X.npy,y.npy`` memory-maps X from a NumPy file (see :func:`read_npy`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from xpnet import data, validation, writing
from xpnet.errors import DataError, MissingDependencyError

XY = tuple[np.ndarray, np.ndarray]


def _sklearn_datasets() -> Any:
    try:
        import sklearn.datasets
    except ImportError:
        raise MissingDependencyError(
            "this data set comes from scikit-learn; pip install 'xpnet[data]'"
        ) from None
    return sklearn.datasets


def _generated(fn_name: str) -> Callable[[int, float, int], XY]:
    def draw(n_samples: int, noise: float, seed: int) -> XY:
        validation.integer("n_samples", n_samples, 2)
        validation.number("noise", noise, 0)
        validation.integer("seed", seed, 0)
        fn = getattr(_sklearn_datasets(), fn_name)
        rng = np.random.RandomState(seed)
        if fn_name == "make_blobs":  # noise is the clusters' standard deviation here
            X, y = fn(n_samples, centers=3, cluster_std=max(noise, 1e-12), random_state=rng)
        elif fn_name == "make_circles":
            X, y = fn(n_samples, noise=noise, factor=0.5, random_state=rng)
        else:
            X, y = fn(n_samples, noise=noise, random_state=rng)
        return np.asarray(X, dtype=np.float64), np.asarray(y)

    return draw


def _bundled(fn_name: str) -> Callable[[int, float, int], XY]:
    def read(n_samples: int, noise: float, seed: int) -> XY:
        X, y = getattr(_sklearn_datasets(), fn_name)(return_X_y=True)
        return np.asarray(X, dtype=np.float64), np.asarray(y)

    return read


def _toy(n_samples: int, noise: float, seed: int) -> XY:
    return data.toy()


GENERATED = ("moons", "circles", "blobs")
"""Data sets drawn from ``n_samples``, ``noise`` and ``seed``; the others are fixed tables
(scikit-learn's bundled ones: ``diabetes`` has numeric targets, for a regression loss)."""

DATASETS: dict[str, Callable[[int, float, int], XY]] = {
    "moons": _generated("make_moons"),
    "circles": _generated("make_circles"),
    "blobs": _generated("make_blobs"),
    "iris": _bundled("load_iris"),
    "wine": _bundled("load_wine"),
    "breast-cancer": _bundled("load_breast_cancer"),
    "digits": _bundled("load_digits"),
    "diabetes": _bundled("load_diabetes"),
    "toy": _toy,
}


def load(
    name: str,
    *,
    n_samples: int = 200,
    noise: float = 0.2,
    seed: int = 0,
    target: str | int | None = None,
) -> XY:
    """Return ``(X, y)`` for a name in :data:`DATASETS`, ``"csv:PATH"`` (``target`` picks the
    label column there) or ``"npy:X.npy,y.npy"``. ``n_samples``, ``noise`` and ``seed`` apply to
    the generated sets."""
    if isinstance(name, str) and name.startswith("csv:"):
        return read_csv(name[4:], target=target)
    if isinstance(name, str) and name.startswith("npy:"):
        return read_npy(name[4:])
    draw = validation.choice(DATASETS, name, "dataset", "datasets (or csv:PATH, npy:X.npy,y.npy)")
    if name in GENERATED:
        _check_generated(name, n_samples)
    return draw(n_samples, noise, seed)


GENERATED_BYTES = 96
"""Bytes a generated sample takes at most while it is made (two float64 features, a label and
the generator's temporaries)."""


def _check_generated(name: str, n_samples: int) -> None:
    """Refuse, before anything is allocated, a generated set larger than the host's memory."""
    from xpnet.backends import host_memory
    from xpnet.memory import shown

    have = host_memory()
    need = n_samples * GENERATED_BYTES
    if have is not None and need > have:
        raise DataError(f"{name} with {n_samples} samples needs about {shown(need)} of memory "
                        f"and this machine has {shown(have)}: ask for fewer (--n-samples)")  # fmt: skip


def files(name: str) -> list[str]:
    """The files a data set name reads (``csv:PATH``, ``npy:X.npy,y.npy``; none for the others)."""
    if name.startswith("csv:"):
        return [name[4:]]
    if name.startswith("npy:"):
        return [p.strip() for p in name[4:].split(",") if p.strip()]
    return []


def read_npy(paths: str) -> XY:
    """Return ``(X, y)`` from ``"X.npy,y.npy"``: X (n, d) memory-mapped, so that only the rows
    used are read (each process of a multi-process job reads its own), y (n,) loaded whole."""
    names = [p.strip() for p in paths.split(",")]
    if len(names) != 2 or not all(names):
        raise DataError(f"npy: takes two files, the inputs and the labels: npy:X.npy,y.npy; "
                        f"got {paths!r}")  # fmt: skip
    try:
        X = np.load(names[0], mmap_mode="r", allow_pickle=False)
        y = np.load(names[1], allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        why = "not a .npy file (numpy.save writes them)" if "pickle" in str(exc) else str(exc)
        raise DataError(f"could not read {paths!r} as two .npy files: {why}") from None
    for name, a in zip(names, (X, y), strict=True):
        if not isinstance(a, np.ndarray):  # numpy.load of an .npz archive: a mapping of arrays
            if hasattr(a, "close"):
                a.close()
            raise DataError(f"{name!r} is an .npz archive, not one array: give two .npy files "
                            "(numpy.save writes them)")  # fmt: skip
        if a.ndim == 0:
            raise DataError(f"{name!r} holds a single number (a 0-d array); npy: takes X (n, "
                            "d) and y (n,)")  # fmt: skip
    return X, y


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


CSV_FACTOR = 12
"""Memory a CSV file takes while it is read, in multiples of its size (Python's rows of text)."""


def _rows(path: Path) -> list[list[str]]:
    from xpnet.backends import host_memory
    from xpnet.memory import shown

    if path.exists() and not path.is_file():  # a pipe, a device: it may never end
        raise DataError(f"CSV file {str(path)!r} is not a regular file (a pipe or a device); "
                        "save the data to a file first")  # fmt: skip
    have = host_memory()
    size = path.stat().st_size if path.is_file() else 0
    if have is not None and size * CSV_FACTOR > have:
        raise DataError(f"CSV file {str(path)!r} ({shown(size)}) is too large to read into "
                        f"memory ({shown(have)} here); save it as .npy and give "
                        "npy:X.npy,y.npy (memory-mapped, read as it is used)")  # fmt: skip
    try:
        with path.open(newline="") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t ")
            except csv.Error:
                dialect = csv.excel
            rows = [[c.strip() for c in row] for row in csv.reader(fh, dialect)]
    except FileNotFoundError:
        raise DataError(f"CSV file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"CSV file {str(path)!r} could not be read: {exc}") from None
    return [row for row in rows if any(row)]


def _is_index(target: str | int | None) -> bool:
    return isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit())


def _is_header(first: list[str], target: str | int | None, labels: bool) -> bool:
    """A first row is a header when it holds the target's name or a non-numeric feature cell."""
    if labels and target is not None and not _is_index(target):
        return target in first or any(_number(c) is None for c in first)
    skip = None
    if labels:
        skip = (int(target) if target is not None else -1) % len(first)
    return any(_number(c) is None for j, c in enumerate(first) if j != skip)


def _column_index(
    target: str | int | None, header: list[str] | None, width: int, path: Path
) -> int:
    if target is None:
        return width - 1
    if _is_index(target):
        index = int(target)
        if not -width <= index < width:
            raise DataError(f"--target {index} is outside the {width} columns of {str(path)!r}")
        return index % width
    if header is None:
        raise DataError(
            f"--target {target!r} names a column but {str(path)!r} has no header row; "
            "give the column's index instead"
        )
    if target not in header:
        raise DataError(f"{str(path)!r} has no column {target!r}; columns: {', '.join(header)}")
    return header.index(target)


def read_csv(path: str | Path, target: str | int | None = None, *, labels: bool = True) -> XY:
    """Read a CSV file of numbers with an optional header row (detected: a first row with a
    non-numeric feature cell). With ``labels`` the column ``target`` (a header name or an index,
    default the last) holds the class labels and y is returned; without, every column is a
    feature and y is empty. Non-numeric or missing cells raise DataError naming row and column."""
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise DataError(f"CSV file {str(path)!r} is empty")
    width = len(rows[0])
    has_header = _is_header(rows[0], target if labels else None, labels)
    header = rows[0] if has_header else None
    body = rows[1:] if has_header else rows
    first_line = 2 if has_header else 1
    if not body:
        raise DataError(f"CSV file {str(path)!r} has a header but no data rows")
    t = _column_index(target, header, width, path) if labels else -1
    names = header or [str(j) for j in range(width)]

    X = np.empty((len(body), width - (1 if labels else 0)))
    y: list[str] = []
    for i, row in enumerate(body):
        line = first_line + i
        if len(row) != width:
            raise DataError(
                f"{str(path)!r} row {line} has {len(row)} cells; the first row has {width}"
            )
        k = 0
        for j, cell in enumerate(row):
            if j == t:
                if cell == "":
                    raise DataError(f"{str(path)!r} row {line}, column {names[j]!r}: missing label")
                y.append(cell)
                continue
            value = _number(cell) if cell != "" else None
            if value is None or not np.isfinite(value):
                what = "missing value" if cell == "" else f"{cell!r} is not a finite number"
                raise DataError(f"{str(path)!r} row {line}, column {names[j]!r}: {what}")
            X[i, k] = value
            k += 1
    return X, _label_array(y) if labels else np.empty(0)


def feature_names(name: str, target: str | int | None = None) -> list[str] | None:
    """The names of the features of data set ``name`` (as :func:`load` takes it), where it has
    them: a CSV file's header (less the label column), scikit-learn's bundled sets' own; else None
    (plots then call them x1, x2)."""
    if name.startswith("csv:"):
        path = Path(name[4:])
        rows = _rows(path)
        if not rows or not _is_header(rows[0], target, True):
            return None
        t = _column_index(target, rows[0], len(rows[0]), path)
        return [cell for j, cell in enumerate(rows[0]) if j != t]
    bundled = {
        "iris": "load_iris",
        "wine": "load_wine",
        "breast-cancer": "load_breast_cancer",
        "diabetes": "load_diabetes",
    }
    if name in bundled:
        return [str(n) for n in getattr(_sklearn_datasets(), bundled[name])().feature_names]
    return None


def _label_array(cells: list[str]) -> np.ndarray:
    """Integers when every label is an integer, numbers when every label is a number (which
    classification refuses unless they are whole: see :func:`xpnet.validation.class_labels`),
    else the strings themselves."""
    numbers = [_number(c) for c in cells]
    if any(v is None for v in numbers):
        return np.array(cells)
    values = np.array(numbers, dtype=np.float64)
    whole = np.isfinite(values) & (values == np.round(values))
    return values.astype(np.int64) if np.all(whole) else values


def csv_text(header: list[str], columns: list[np.ndarray], rows: int = 10_000) -> Iterator[str]:
    """The CSV text of equally long ``columns`` under ``header``, ``rows`` rows a piece."""
    yield ",".join(header) + "\n"
    n = len(columns[0]) if columns else 0
    for start in range(0, n, rows):
        part = [c[start : start + rows] for c in columns]
        yield "".join(",".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in row)
                      + "\n" for row in zip(*part, strict=True))  # fmt: skip


def write_csv(out: str | Path | TextIO, header: list[str], columns: list[np.ndarray]) -> None:
    """Write a CSV of equally long columns to the file ``out`` names (atomically:
    :func:`xpnet.writing.replace`), or to the text stream ``out`` a piece at a time (a reader
    that goes away stops it at the next piece)."""
    if isinstance(out, (str, Path)):
        writing.replace(out, lambda fh: fh.writelines(
            piece.encode() for piece in csv_text(header, columns)))  # fmt: skip
        return
    for piece in csv_text(header, columns):
        out.write(piece)
        out.flush()

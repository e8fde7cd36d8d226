"""Named data sets and CSV files: shapes, labels, and a clear error for every bad file."""

from __future__ import annotations

import io

import numpy as np
import pytest

from xpnet import datasets
from xpnet.errors import ConfigError, DataError

pytest.importorskip("sklearn")


@pytest.mark.parametrize(("name", "shape", "n_classes"), [
    ("moons", (50, 2), 2), ("circles", (50, 2), 2), ("blobs", (50, 2), 3),
    ("iris", (150, 4), 3), ("wine", (178, 13), 3), ("breast-cancer", (569, 30), 2),
    ("digits", (1797, 64), 10), ("toy", (3, 4), 2),
])  # fmt: skip
def test_named_sets(name, shape, n_classes):
    X, y = datasets.load(name, n_samples=50, noise=0.1, seed=1)
    assert X.shape == shape and X.dtype == np.float64 and y.shape == (shape[0],)
    assert np.unique(y).size == n_classes


def test_generated_sets_follow_their_seed():
    a = datasets.load("circles", n_samples=40, seed=3)
    b = datasets.load("circles", n_samples=40, seed=3)
    c = datasets.load("circles", n_samples=40, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "mnist"}, "unknown dataset 'mnist'; valid datasets \\(or csv:PATH, npy:X.npy,y.npy\\): moons, "),
    ({"name": "moons", "n_samples": 1}, "n_samples must be an integer in \\[2, inf\\); got 1"),
    ({"name": "moons", "noise": -1.0}, "noise must be a number in \\[0, inf\\); got -1.0"),
])  # fmt: skip
def test_bad_dataset_arguments(kwargs, match):
    with pytest.raises((ConfigError, DataError), match=match):
        datasets.load(**kwargs)


def test_npy_files_memory_map_the_inputs(tmp_path):
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 1, 0])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    got_X, got_y = datasets.load(f"npy:{tmp_path / 'X.npy'},{tmp_path / 'y.npy'}")
    assert isinstance(got_X, np.memmap)  # read from disk in the rows used
    np.testing.assert_array_equal(got_X, X)
    np.testing.assert_array_equal(got_y, y)


@pytest.mark.parametrize(("spec", "match"), [
    ("X.npy", "npy: takes two files, the inputs and the labels: npy:X.npy,y.npy"),
    ("X.npy,", "npy: takes two files"),
    ("missing.npy,y.npy", "could not read .* as two .npy files"),
    ("objects.npy,y.npy", "could not read .* as two .npy files"),
    ("text.npy,y.npy", "could not read .* as two .npy files"),
])  # fmt: skip
def test_bad_npy_files(tmp_path, monkeypatch, spec, match):
    monkeypatch.chdir(tmp_path)
    np.save("y.npy", np.zeros(3))
    np.save("objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not a numpy file")
    with pytest.raises(DataError, match=match):
        datasets.load("npy:" + spec)


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "target", "X", "y"), [
    ("1,2,0\n3,4,1\n", None, [[1, 2], [3, 4]], [0, 1]),
    ("a,b,label\n1,2,0\n3,4,1\n", None, [[1, 2], [3, 4]], [0, 1]),
    ("a,b,label\n1,2,cat\n3,4,dog\n", "label", [[1, 2], [3, 4]], ["cat", "dog"]),
    ("label,a,b\n0,1,2\n1,3,4\n", "label", [[1, 2], [3, 4]], [0, 1]),
    ("0,1,2\n1,3,4\n", "0", [[1, 2], [3, 4]], [0, 1]),
    ("1;2;yes\n3;4;no\n", None, [[1, 2], [3, 4]], ["yes", "no"]),
    ("x,y,c\n1.5e0, -2 ,0\n\n3,4,1\n", None, [[1.5, -2], [3, 4]], [0, 1]),
])  # fmt: skip
def test_csv_reads(tmp_path, text, target, X, y):
    got_X, got_y = datasets.load("csv:" + _csv(tmp_path, text), target=target)
    np.testing.assert_array_equal(got_X, X)
    assert got_y.tolist() == y


@pytest.mark.parametrize(("text", "target", "match"), [
    ("a,b,c\n1,x,0\n", None, r"row 2, column 'b': 'x' is not a finite number"),
    ("1,2,0\n3,,1\n", None, r"row 2, column '1': missing value"),
    ("1,2,0\n3,nan,1\n", None, r"row 2, column '1': 'nan' is not a finite number"),
    ("1,2,0\n3,4\n", None, "row 2 has 2 cells; the first row has 3"),
    ("1,2,0\n3,4,\n", None, "row 2, column '2': missing label"),
    ("a,b,c\n", None, "has a header but no data rows"),
    ("", None, "is empty"),
    ("a,b,c\n1,2,0\n", "d", "has no column 'd'; columns: a, b, c"),
    ("1,2,0\n", "label", "names a column but .* has no header row"),
    ("1,2,0\n", "5", "--target 5 is outside the 3 columns"),
])  # fmt: skip
def test_csv_errors_name_row_and_column(tmp_path, text, target, match):
    with pytest.raises(DataError, match=match):
        datasets.load("csv:" + _csv(tmp_path, text), target=target)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        datasets.load(f"csv:{tmp_path / 'none.csv'}")


def test_csv_features_only_and_write_back(tmp_path):
    X, y = datasets.read_csv(_csv(tmp_path, "f1,f2\n1,2\n3,4\n"), labels=False)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y.size == 0
    out = tmp_path / "out.csv"
    columns = [np.array([1, 2, 3]), np.array([0.5, 0.25, 1 / 3])]
    datasets.write_csv(out, ["a", "b"], columns)
    stream = io.StringIO()
    datasets.write_csv(stream, ["a", "b"], columns)
    assert out.read_text() == stream.getvalue() == "a,b\n1,0.5\n2,0.25\n3,0.3333333333\n"
    assert list(datasets.csv_text(["a", "b"], columns, rows=2)) == ["a,b\n", "1,0.5\n2,0.25\n",
                                                                    "3,0.3333333333\n"]  # fmt: skip

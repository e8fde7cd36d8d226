"""Any Array API namespace as a backend (issue 18): xpnet's math in a library it has never heard of.
dask.array chunked by rows trains seed 000 to the NumPy backend's result, with the data never
gathered on the host; a namespace missing what the math needs is refused by name."""

from __future__ import annotations

import tracemalloc
import types

import numpy as np
import pytest

from xpnet import Network, backends, datasets
from xpnet.errors import BackendUnavailableError, ConfigError, DataError

da = pytest.importorskip("dask.array")
dxp = pytest.importorskip("array_api_compat.dask.array")

SEED000 = {"activation": "tanh", "init": "britz"}
FIT = {"lr": 0.01, "reg": 0.01, "reduction": "sum"}


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=200, noise=0.2, seed=0)


def _close(a, b, tol=1e-12):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b))) <= tol


def test_seed_000_on_dask_chunked_by_rows_equals_numpy(moons):
    X, y = moons
    want = Network((3,), **SEED000, backend="numpy").fit(X, y, epochs=120, **FIT)
    chunked = da.from_array(X, chunks=(50, 2))  # four blocks of rows
    got = Network((3,), **SEED000, backend=dxp).fit(chunked, y, epochs=120, **FIT)
    assert got.backend_.name == "namespace:array_api_compat.dask.array"
    assert _close(got.loss_curve_, want.loss_curve_)
    assert all(_close(got.params_[k], want.params_[k]) for k in want.params_)
    assert got.score(chunked, y) == want.score(X, y) == got.score(X, y)


def test_sample_weights_with_a_namespaces_own_arrays(moons):
    X, y = moons
    w = np.random.RandomState(0).uniform(0.0, 2.0, X.shape[0])
    want = Network((3,), **SEED000, backend="numpy").fit(X, y, sample_weight=w, epochs=20, **FIT)
    chunked = da.from_array(X, chunks=(50, 2))
    got = Network((3,), **SEED000, backend=dxp).fit(chunked, y, sample_weight=w, epochs=20, **FIT)
    assert _close(got.loss_curve_, want.loss_curve_)
    assert all(_close(got.params_[k], want.params_[k]) for k in want.params_)


@pytest.mark.parametrize("namespace", ["array_api_compat.numpy", "array_api_strict"])
def test_eager_namespaces_as_objects(moons, namespace):
    """A namespace handed over as an object trains as its named backend does."""
    xp = pytest.importorskip(namespace)
    X, y = moons
    want = Network((4,), **SEED000, backend="numpy").fit(X, y, epochs=200, **FIT)
    got = Network((4,), **SEED000, backend=xp).fit(X, y, epochs=200, **FIT)
    assert _close(got.loss_curve_, want.loss_curve_) and got.score(X, y) == want.score(X, y)


def test_data_larger_than_what_it_allocates(tmp_path):
    """61 MiB of inputs made by dask in blocks of rows: the fit never holds them (peak under half
    their size; the labels and their one-hot targets are on the host)."""
    X = da.random.RandomState(0).standard_normal((400_000, 20), chunks=(20_000, 20))
    y = (X[:, 0] + X[:, 1] > 0).astype(int).compute()
    tracemalloc.start()
    try:
        net = Network((8,), backend=dxp).fit(X, y, epochs=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 2, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.0f} MiB"
    assert net.loss_curve_[-1] < net.loss_curve_[0]


def test_what_a_namespace_lacks_is_named(moons):
    X, y = moons
    partial = types.SimpleNamespace(**{f: getattr(np, f) for f in ("asarray", "sum", "exp")})
    with pytest.raises(ConfigError, match=r"lacks astype, matmul, .*which xpnet's math needs"):
        Network((3,), backend=partial).fit(X, y, epochs=1)
    with pytest.raises(ConfigError, match="lacks"):
        backends.select(types.SimpleNamespace())


def test_a_namespaces_own_arrays_are_checked_there(moons):
    X, y = moons
    bad = np.array(X)
    bad[17, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN or infinity .*row 17"):
        Network((3,), backend=dxp).fit(da.from_array(bad, chunks=(50, 2)), y, epochs=1)
    lazy = da.from_array(X, chunks=(50, 2))
    with pytest.raises(ConfigError, match="full batch and unscaled"):
        Network((3,), backend=dxp, scale="standard").fit(lazy, y, epochs=1)
    with pytest.raises(ConfigError, match="full batch and unscaled"):
        Network((3,), backend=dxp).fit(lazy, y, epochs=1, batch_size=10)


def test_a_namespace_named_by_its_module(moons):
    """``"namespace:MODULE"``: the same backend as the module object, as a string the command
    line and scikit-learn's clone can carry."""
    X, y = moons
    named = backends.select("namespace:array_api_compat.dask.array")
    assert named.name == backends.select(dxp).name == "namespace:array_api_compat.dask.array"
    want = Network((3,), **SEED000, backend=dxp).fit(X, y, epochs=30, **FIT)
    got = Network((3,), **SEED000, backend="namespace:array_api_compat.dask.array")
    got.fit(X, y, epochs=30, **FIT)
    assert np.array_equal(got.loss_curve_, want.loss_curve_)
    for bad in ("namespace:no_such_module", "namespace:"):
        with pytest.raises(BackendUnavailableError, match="could not import the namespace"):
            backends.select(bad)


def test_estimators_with_a_namespace_module_clone_and_cross_validate(moons):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_val_score

    from xpnet import MLPClassifier

    X, y = moons
    setup = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    clf = MLPClassifier(**setup, backend=dxp)
    assert clf.backend is dxp  # kept as given; reported by name
    assert clf.get_params()["backend"] == "namespace:array_api_compat.dask.array"
    assert clone(clf).get_params() == clf.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        got = cross_val_score(clf, X, y, cv=3)
        want = cross_val_score(MLPClassifier(**setup, backend="numpy"), X, y, cv=3)
    np.testing.assert_array_equal(got, want)


def test_the_command_line_takes_a_namespace_by_name():
    from helpers import xpnet

    run = xpnet("train", "--backend", "namespace:array_api_strict", "--epochs", "1001")
    assert run.returncode == 0, run.stderr
    assert "Loss after iteration 1000: 0.068947" in run.stdout
    bad = xpnet("train", "--backend", "namespace:no_such_module")
    assert bad.returncode == 2 and "could not import the namespace 'no_such_module'" in bad.stderr

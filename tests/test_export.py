"""ONNX export (issue 18): the graph traced from xpnet's own forward pass through ndonnx, run by
onnxruntime, equals predict_proba/predict to 1e-12 in float64 and 1e-6 in float32, over depths,
every activation and output, biases on and off and any batch size; errors are one line."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest

pytest.importorskip("ndonnx")
ort = pytest.importorskip("onnxruntime")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from helpers import xpnet as run_cli  # noqa: E402
from xpnet import MLPClassifier, MLPRegressor, Network, activations, datasets  # noqa: E402
from xpnet.errors import ConfigError, MissingDependencyError  # noqa: E402

TOL = {"float64": 1e-12, "float32": 1e-6}
ACTIVATIONS = list(activations.ACTIVATIONS)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(path, X, names):
    return _session(path).run(names, {"X": X})


def _quiet(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


@pytest.fixture(scope="module")
def three_classes():
    X, y = datasets.load("blobs", n_samples=150, noise=1.0, seed=0)
    return X * 3 + 10, y  # far from 0: the scaling inside the graph matters


@pytest.mark.parametrize(("hidden", "activation", "bias", "dtype"), [
    *[((4,), a, True, "float64") for a in ACTIVATIONS],
    ((), "tanh", True, "float64"), ((5, 4, 3), "relu", False, "float64"),
    ((6,), "gelu", False, "float32"), ((3, 3), "softplus", True, "float32"),
])  # fmt: skip
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_a_network_exports_what_it_predicts(tmp_path, three_classes, hidden, activation, bias,
                                            dtype, loss):  # fmt: skip
    X, y = three_classes
    net = Network(hidden, activation=activation, loss=loss, bias=bias, scale="standard",
                  dtype=dtype, backend="numpy").fit(X, y, epochs=30, lr=0.1)  # fmt: skip
    path = net.to_onnx(tmp_path / "net.onnx")
    for rows in (slice(0, 1), slice(0, 7), slice(None)):
        Xb = X[rows].astype(dtype)
        proba, label = _run(path, Xb, ["probabilities", "label"])
        assert proba.dtype == np.dtype(dtype)
        np.testing.assert_allclose(proba, net.predict_proba(X[rows]), rtol=TOL[dtype],
                                   atol=TOL[dtype])  # fmt: skip
        np.testing.assert_array_equal(label, net.predict(X[rows]))


def test_one_sigmoid_unit_and_string_labels(tmp_path):
    X, y = datasets.load("moons", n_samples=100, noise=0.2, seed=0)
    names = np.array(["left", "right"])[y]
    net = Network((4,), loss="squared_error", backend="numpy").fit(X, names, epochs=50, lr=0.5)
    clf = MLPClassifier((4,), solver="lbfgs", random_state=0, backend="numpy")
    _quiet(clf, X, names)
    assert clf.n_outputs_ == 1  # one logistic unit
    for model in (net, clf):
        proba, label = _run(model.to_onnx(tmp_path / "m.onnx"), X, ["probabilities", "label"])
        np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-12, atol=1e-12)
        assert label.tolist() == model.predict(X).tolist()


@pytest.mark.parametrize("targets", [1, 2])
def test_a_regression_network_exports_its_predictions(tmp_path, three_classes, targets):
    X, _ = three_classes
    y = np.column_stack([np.sin(X[:, 0]), X[:, 1] / 10])[:, :targets]
    net = Network((5,), activation="tanh", loss="huber", delta=0.3, scale="standard",
                  backend="numpy").fit(X, y[:, 0] if targets == 1 else y, epochs=20)  # fmt: skip
    (predictions,) = _run(net.to_onnx(tmp_path / "r.onnx"), X, ["predictions"])
    np.testing.assert_allclose(predictions, net.predict(X), rtol=1e-12, atol=1e-12)
    assert predictions.shape == ((150,) if targets == 1 else (150, 2))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_estimators_export_every_kind(tmp_path, dtype):
    from sklearn.datasets import make_multilabel_classification, make_regression

    X, y = datasets.load("blobs", n_samples=120, noise=1.0, seed=1)
    Xm, Ym = make_multilabel_classification(n_samples=80, random_state=0)
    Xr, yr = make_regression(80, 4, n_targets=2, random_state=0)
    cases = [
        (MLPClassifier((5,), activation="tanh", max_iter=20, random_state=0), X, y),
        (MLPClassifier((5,), max_iter=20, random_state=0), X, y == 0),
        (MLPClassifier((5,), max_iter=20, random_state=0), Xm, Ym),
        (MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0), Xr, yr / yr.std()),
        (MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0), Xr, yr[:, 0] / 100),
        (MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), max_iter=20, random_state=0), X,
         y.astype(float)),
    ]  # fmt: skip
    for est, A, b in cases:
        A = A.astype(dtype)
        _quiet(est.set_params(backend="numpy", dtype=dtype), A, b)
        path = est.to_onnx(tmp_path / "est.onnx")
        session = _session(path)
        names = [o.name for o in session.get_outputs()]
        got = dict(zip(names, session.run(None, {"X": A}), strict=True))
        tol = TOL[dtype] * (10 if isinstance(est, MLPRegressor) else 1)
        if isinstance(est, MLPRegressor):
            np.testing.assert_allclose(got["predictions"], est.predict(A), rtol=tol, atol=tol)
        else:
            np.testing.assert_allclose(got["probabilities"], est.predict_proba(A), rtol=tol,
                                       atol=tol)  # fmt: skip
            np.testing.assert_array_equal(got["label"], est.predict(A))


def test_seed_001s_single_sigmoid_unit(tmp_path):
    from xpnet import recipes

    run = recipes.run(recipes.get("av-toy"))
    assert run.net.spec_.sizes == (4, 3, 1) and not run.net.bias
    proba, label = _run(run.net.to_onnx(tmp_path / "toy.onnx"), run.X, ["probabilities", "label"])
    np.testing.assert_allclose(proba, run.net.predict_proba(run.X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(label, run.net.predict(run.X))


def test_the_model_says_what_it_is(tmp_path):
    X, y = datasets.load("moons", n_samples=60, noise=0.2, seed=0)
    net = Network((3,), activation="tanh", backend="numpy").fit(X, y, epochs=5)
    meta = _session(net.to_onnx(tmp_path / "m.onnx")).get_modelmeta()
    facts = json.loads(meta.custom_metadata_map["xpnet"])
    from xpnet import __version__

    assert meta.custom_metadata_map["xpnet_version"] == __version__
    assert facts["architecture"] == {"sizes": [2, 3, 2], "activation": "tanh",
                                     "loss": "cross_entropy", "bias": True}  # fmt: skip
    assert facts["classes"] == [0, 1] and facts["dtype"] == "float64"
    inputs = _session(tmp_path / "m.onnx").get_inputs()
    assert inputs[0].name == "X" and inputs[0].shape[1] == 2 and isinstance(inputs[0].shape[0], str)


def test_export_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not fitted"):
        Network((3,)).to_onnx(tmp_path / "m.onnx")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().to_onnx(tmp_path / "m.onnx")
    X, y = datasets.load("moons", n_samples=60, noise=0.2, seed=0)
    net = Network((3,), backend="numpy").fit(X, y, epochs=5)
    with pytest.raises(ConfigError, match="does not exist"):
        net.to_onnx(tmp_path / "no" / "m.onnx")
    monkeypatch.setitem(__import__("sys").modules, "ndonnx", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'xpnet\[onnx\]'"):
        net.to_onnx(tmp_path / "m.onnx")


def test_the_command_line_exports_a_saved_model(tmp_path):
    model, onnx = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    assert run_cli("train", "--epochs", "50", "--quiet", "--save", str(model)).returncode == 0
    done = run_cli("export", "--model", str(model), "--onnx", str(onnx))
    assert done.returncode == 0 and done.stdout == f"ONNX model written to {onnx}\n"
    net = Network.load(model, backend="numpy")
    X, _ = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    np.testing.assert_allclose(_run(onnx, X, ["probabilities"])[0], net.predict_proba(X),
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    bad = run_cli("export", "--model", str(tmp_path / "none"), "--onnx", str(onnx))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_every_architecture_of_the_matrix_traces():
    """Every activation and loss the math has is expressible in the graph."""
    from xpnet import activations, losses, mlp
    from xpnet.export import onnx_model

    for act, loss in itertools.product(activations.ACTIVATIONS, losses.LOSSES):
        spec = mlp.Spec((3, 4, 2), act, loss)
        params = {k: np.ones(s) * 0.1 for k, s in spec.param_shapes().items()}
        kind = "regressor" if loss in losses.REGRESSION else "classifier"
        classes = None if kind == "regressor" else np.arange(2)
        assert onnx_model(spec, params, kind=kind, classes=classes).graph.node

"""The scikit-learn estimators: scikit-learn's own estimator checks, the same model on every
backend, arrays of the input's kind back, and a ValueError naming every bad constructor argument."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

import xpnet
from xpnet.estimators import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(max_iter=50, random_state=0, backend="numpy"),
                          MLPRegressor(max_iter=50, random_state=0, backend="numpy")])  # fmt: skip
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short runs on purpose
        check(estimator)


SAMPLE_WEIGHT_CHECKS = sorted(name for name in dir(estimator_checks)
                              if name.startswith(("check_sample_weight", "check_all_zero_sample")))  # fmt: skip


@pytest.mark.parametrize("check", SAMPLE_WEIGHT_CHECKS)
@pytest.mark.parametrize("estimator", [
    # the settings scikit-learn checks its own MLPs' sample weights with
    MLPClassifier(solver="lbfgs", random_state=0, backend="numpy"),
    MLPRegressor(solver="sgd", tol=1e-2, random_state=42, backend="numpy"),
], ids=["classifier-lbfgs", "regressor-sgd"])  # fmt: skip
def test_sklearn_sample_weight_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        getattr(estimator_checks, check)(type(estimator).__name__, estimator)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_same_model_same_predictions_on_every_backend(make_backend, reference, iris):
    X, y = iris
    backend = make_backend("float64")
    setup = dict(hidden_layer_sizes=(8, 6), max_iter=30, random_state=1, batch_size=32)
    want = _quiet_fit(MLPClassifier(**setup, backend="numpy"), X, y)
    got = _quiet_fit(
        MLPClassifier(**setup, backend=backend.name, device=backend.device_label), X, y
    )
    np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=1e-11)
    for a, b in zip(got.coefs_, want.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.predict_proba(X), want.predict_proba(X), rtol=1e-10, atol=1e-12)


def test_outputs_come_back_in_the_input_kind(make_backend, iris):
    X, y = iris
    backend = make_backend("float64")
    net = _quiet_fit(MLPClassifier((5,), max_iter=20, random_state=0, backend=backend.name,
                                   device=backend.device_label), X, y)  # fmt: skip
    X_dev = backend.asarray(X)
    proba = net.predict_proba(X_dev)
    labels = net.predict(X_dev)
    if backend.name != "numpy":
        assert type(proba) is type(X_dev) and type(labels) is type(X_dev)
    np.testing.assert_allclose(backend.to_numpy(proba), net.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(labels), net.predict(X))
    again = _quiet_fit(MLPClassifier((5,), max_iter=20, random_state=0, backend="numpy"), X_dev,
                       backend.asarray(y, dtype="int64"))  # fmt: skip
    np.testing.assert_allclose(again.coefs_[0], net.coefs_[0], rtol=1e-10)


def test_string_labels_partial_fit_and_warm_start(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    net = _quiet_fit(
        MLPClassifier((10,), max_iter=200, learning_rate_init=0.01, random_state=0), X, names
    )
    assert net.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert net.score(X, names) > 0.9 and set(net.predict(X)) <= set(names)
    part = MLPClassifier((10,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        part.partial_fit(X, names)
    part.partial_fit(X[:50], names[:50], classes=np.unique(names))
    for _ in range(30):
        part.partial_fit(X, names)
    # scikit-learn counts the iterations of the last call (one) and the samples of them all
    assert part.n_iter_ == 1 and part.t_ == 50 + 30 * 150 and part.score(X, names) > 0.8
    warm = _quiet_fit(MLPClassifier((10,), max_iter=5, random_state=0, warm_start=True), X, y)
    first = warm.coefs_[0].copy()
    _quiet_fit(warm, X, y)
    # each fit counts its own iterations (scikit-learn's n_iter_); t_ counts every sample seen
    assert warm.n_iter_ == 5 and warm.t_ == 10 * 150 and not np.array_equal(first, warm.coefs_[0])


def test_early_stopping_keeps_the_best_validation_weights(iris):
    X, y = iris
    net = MLPClassifier((20,), solver="sgd", learning_rate_init=0.1, max_iter=300,
                        early_stopping=True, n_iter_no_change=5, random_state=0).fit(X, y)  # fmt: skip
    scores = net.validation_scores_
    assert len(scores) == net.n_iter_ < 300
    assert net.best_validation_score_ == max(scores) and net.best_loss_ is None


def test_training_loss_stopping_and_adaptive_rate(iris):
    X, y = iris
    net = MLPClassifier((10,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.5,
                        max_iter=500, tol=1e-3, n_iter_no_change=3, random_state=0).fit(X, y)  # fmt: skip
    assert net.n_iter_ < 500 and net._lr < 0.5  # the rate was divided by 5 at least once
    assert net.best_loss_ == min(net.loss_curve_)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "cosine"])
def test_every_solver_and_schedule_learns(iris, solver, learning_rate):
    X, y = iris
    # scikit-learn's invscaling divides by sqrt(samples seen) after each epoch: a larger start
    lr = (0.05 if solver == "sgd" else 0.01) * (20 if learning_rate == "invscaling" else 1)
    net = _quiet_fit(MLPClassifier((16,), solver=solver, learning_rate=learning_rate,
                                   learning_rate_init=lr, max_iter=150, random_state=0), X, y)  # fmt: skip
    assert net.score(X, y) > 0.85
    assert net.loss_curve_[-1] < net.loss_curve_[0]


def test_regressor(make_backend):
    X, y = make_regression(200, 5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(0)
    backend = make_backend("float64")
    net = _quiet_fit(MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01, random_state=0,
                                  backend=backend.name, device=backend.device_label), X, y)  # fmt: skip
    assert net.predict(X).shape == (200, 2) and net.score(X, y) > 0.95
    one = _quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0), X, y[:, 0])
    assert one.predict(X).shape == (200,)


def test_lazy_top_level_names():
    assert xpnet.MLPClassifier is MLPClassifier and xpnet.MLPRegressor is MLPRegressor
    with pytest.raises(AttributeError):
        xpnet.NoSuchThing  # noqa: B018


@pytest.mark.parametrize(("name", "value", "valid"), [
    ("hidden_layer_sizes", (10, 0), "positive integers"),
    ("activation", "swish", "valid activations: identity, logistic"),
    ("solver", "newton", "valid solvers: lbfgs, sgd, adam, adamw"),
    ("max_fun", 0, r"an integer in \[1, inf\)"),
    ("verbose", -1, r"an integer in \[0, inf\)"),
    ("n_iter_no_change", 2.5, r"an integer in \[1, inf\) or numpy.inf"),
    ("alpha", -1.0, r"a number in \[0, inf\)"),
    ("batch_size", 0, r"'auto' or an integer in \[1, inf\)"),
    ("learning_rate", "fast", "valid learning_rate values: constant, invscaling, adaptive, cosine"),
    ("learning_rate_init", 0.0, r"a number in \(0, inf\)"),
    ("power_t", -0.5, r"a number in \[0, inf\)"),
    ("max_iter", 0, r"an integer in \[1, inf\)"),
    ("tol", -1e-3, r"a number in \[0, inf\)"),
    ("momentum", 1.5, r"a number in \[0, 1\]"),
    ("validation_fraction", 1.0, r"a number in \(0, 1\)"),
    ("beta_1", 1.0, r"a number in \[0, 1\)"),
    ("beta_2", -0.1, r"a number in \[0, 1\)"),
    ("epsilon", 0.0, r"a number in \(0, inf\)"),
    ("n_iter_no_change", 0, r"an integer in \[1, inf\)"),
    ("weight_decay", -0.1, r"a number in \[0, inf\)"),
    ("clip_norm", 0.0, r"a number in \(0, inf\)"),
    ("shuffle", "yes", "True or False"),
    ("early_stopping", 1, "True or False"),
    ("init", "zeros", "valid inits: sklearn, glorot, he, lecun"),
    ("dtype", "float16", "valid dtypes: float32, float64"),
    ("stream", "yes", "True or False"),
    ("data_parallel", 1, "True or False"),
    ("devices", 0, r"an integer in \[1, inf\)"),
])  # fmt: skip
def test_every_bad_constructor_argument_names_itself(iris, name, value, valid):
    X, y = iris
    with pytest.raises(ValueError, match=f"{name}|dtype") as info:
        MLPClassifier(**{name: value}).fit(X, y)
    assert name in str(info.value) or name == "dtype"
    assert __import__("re").search(valid, str(info.value)), str(info.value)


def test_devices_need_data_parallel_and_data_parallel_needs_jax(iris):
    X, y = iris
    with pytest.raises(
        ValueError,
        match=r"^devices is the device count of data-parallel "
        r"training \(data_parallel\); leave out devices$",
    ):
        MLPClassifier(devices=2).fit(X, y)
    with pytest.raises(ValueError, match=r"runs on the jax backend \(--backend jax\)"):
        MLPClassifier(data_parallel=True, backend="numpy").fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_follows_scikit_learn_update_for_update(iris, solver):
    """Same weights drawn, same batches, same updates: scikit-learn's own numbers (multiclass)."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    X, y = iris
    setup = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=25, batch_size=32,
                 random_state=0, learning_rate_init=0.01)  # fmt: skip
    ours = _quiet_fit(MLPClassifier(**setup, nesterovs_momentum=False), X, y)
    theirs = _quiet_fit(SklearnMLP(**setup, nesterovs_momentum=False), X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_one_fitted_model_predicts_alike_on_every_backend(make_backend, iris):
    X, y = iris
    backend = make_backend("float64")
    net = _quiet_fit(MLPClassifier((6,), max_iter=30, random_state=0, backend="numpy"), X, y)
    want = net.predict_proba(X)
    net.set_params(backend=backend.name, device=backend.device_label)
    np.testing.assert_allclose(net.predict_proba(X), want, rtol=1e-12, atol=1e-15)


def test_a_diverging_fit_is_a_divergence_error(iris):
    X, y = iris
    with pytest.raises(xpnet.DivergenceError, match="try a smaller learning_rate_init"):
        MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0, momentum=0.0,
                     max_iter=50).fit(X * 100, y * 1e3)  # fmt: skip


class Crash(Exception):
    pass


@pytest.mark.parametrize(("solver", "early", "rate"), [
    ("adam", False, "constant"), ("sgd", False, "adaptive"), ("adam", True, "constant"),
    ("sgd", True, "invscaling"),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_a_checkpointed_fit_resumes_to_the_same_model(make_backend, iris, tmp_path, monkeypatch,
                                                      solver, early, rate, stream):  # fmt: skip
    """A fit that saves every 10 epochs and crashes in epoch 26, loaded from its last
    checkpoint and resumed, ends where the uninterrupted fit ends: weights, loss curve,
    validation scores, counts (the optimizer state, batch order, shuffling generator,
    early-stopping split and best weights are in the file)."""
    from xpnet import feeds

    X, y = iris
    b = make_backend("float64")
    setup = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=40, random_state=0,
                 batch_size=32, early_stopping=early, learning_rate=rate,
                 # adaptive: a plateau every 4 epochs (the rate shrinks); else no early stop
                 n_iter_no_change=3 if rate == "adaptive" else 30,
                 tol=0.5 if rate == "adaptive" else 1e-4, learning_rate_init=0.05,
                 stream=stream, backend=b.name, device=b.device_label)  # fmt: skip
    whole = _quiet_fit(MLPClassifier(**setup), X, y)
    path = tmp_path / "ck.safetensors"
    epoch, calls = feeds.Batches._epoch, []

    def crashing(self, *args):
        calls.append(1)
        if len(calls) == 26:
            raise Crash
        return epoch(self, *args)

    monkeypatch.setattr(feeds.Batches, "_epoch", crashing)
    with pytest.raises(Crash):
        _quiet_fit(MLPClassifier(**setup, checkpoint=str(path), checkpoint_every=10), X, y)
    monkeypatch.setattr(feeds.Batches, "_epoch", epoch)
    resumed = MLPClassifier.load(path)
    assert resumed.n_iter_ == 20 and resumed.checkpoint == str(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        resumed.resume(X, y)
    assert resumed.n_iter_ == whole.n_iter_ and resumed.t_ == whole.t_
    exact = b.name == "numpy"
    check = np.testing.assert_array_equal if exact else (
        lambda a, w: np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-15))  # fmt: skip
    check(resumed.loss_curve_, whole.loss_curve_)
    if early:
        check(resumed.validation_scores_, whole.validation_scores_)
    for a, w in zip(resumed.coefs_ + resumed.intercepts_, whole.coefs_ + whole.intercepts_,
                    strict=True):  # fmt: skip
        check(a, w)
    assert resumed._lr == whole._lr
    with pytest.raises(ValueError, match="no fit in progress to resume"):
        resumed.resume(X, y)


def test_a_saved_estimator_predicts_alike_on_every_backend(make_backend, iris, tmp_path):
    import xpnet as package

    X, y = iris
    b = make_backend("float64")
    clf = _quiet_fit(MLPClassifier((6,), max_iter=20, random_state=0, backend="numpy"), X, y)
    clf.save(tmp_path / "clf.safetensors")
    there = package.load(tmp_path / "clf.safetensors", backend=b.name, device=b.device_label)
    assert there.backend == b.name
    np.testing.assert_allclose(there.predict_proba(X), clf.predict_proba(X), rtol=1e-12,
                               atol=1e-15)  # fmt: skip
    more = _quiet_fit(there.set_params(warm_start=True, max_iter=5), X, y)  # trains on from there
    assert more.n_iter_ == 5 and more.t_ == 25 * 150


def test_an_adaptive_rate_shrinks_in_the_optimizers_state_and_keeps_the_compiled_epoch(
    iris, monkeypatch
):
    """scikit-learn's learning_rate="adaptive" divides the rate by 5 on every plateau: the rate
    lives in the optimizer's state, so every shrink trains on with the program compiled first
    (before, each new rate was a new description and a new compiled epoch)."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from xpnet import train

    X, y = iris
    built: list[object] = []
    original = train.cached

    def counting(key, build):
        return original(key, lambda: built.append(key) or build())

    monkeypatch.setattr(train, "cached", counting)
    setup = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate="adaptive", tol=10.0,
                 n_iter_no_change=2, learning_rate_init=0.0987654, max_iter=60, batch_size=50,
                 random_state=0)  # fmt: skip
    ours = _quiet_fit(MLPClassifier(**setup, backend="numpy"), X, y)
    theirs = _quiet_fit(SklearnMLP(**setup), X, y)
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate < 1e-6  # 8 shrinks
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    epochs = [k for k in built if "epoch" in repr(k)[:40]]
    assert 1 <= len(epochs) <= 2, built  # full batches (and a last partial one): compiled once

"""xpnet's estimators as a drop-in for scikit-learn's MLPs (issue 16): scikit-learn's own test file
for its MLPs run against them (read from the installed scikit-learn, so it follows its upgrades),
and each behaviour that file and users rely on, on every backend: the same trajectories as
scikit-learn for the same seed, L-BFGS, one logistic output for two classes, multilabel and
multi-output targets, sample weights, sparse inputs, float32, Poisson loss and the edge cases."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from scipy import sparse
from sklearn import neural_network as sk
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import xpnet
from helpers import where
from xpnet import MLPClassifier, MLPRegressor

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


# -- scikit-learn's own tests -------------------------------------------------------------------
def test_scikit_learns_own_mlp_tests_pass(tmp_path):
    """Copy sklearn/neural_network/tests/test_mlp.py, change only its import line, run it: every
    test passes (scikit-learn's classes pass them all; the issue asks for 54 of 59 at least)."""
    source = Path(sk.__file__).parent / "tests" / "test_mlp.py"
    text = source.read_text()
    assert text.count(IMPORT) == 1, "scikit-learn's test file imports its MLPs differently now"
    adapted = tmp_path / "test_mlp_xpnet.py"
    adapted.write_text(text.replace(IMPORT, "from xpnet import MLPClassifier, MLPRegressor"))
    env = {k: v for k, v in __import__("os").environ.items() if k != "XPNET_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider",
         "-rf", str(adapted)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.M)
    assert passed >= 59 and not failed, done.stdout[-4000:]


# -- the same trajectories as scikit-learn ---------------------------------------------------------
def _cases():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    binary = (y == 2).astype(int)
    Xm, Ym = make_multilabel_classification(n_samples=120, random_state=0)
    Xr, yr = make_regression(150, 5, noise=1.0, random_state=0)
    return {
        "binary-sgd-invscaling-momentum": ("MLPClassifier", X, binary, dict(
            solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, batch_size=32)),
        "multiclass-adam-early-stopping": ("MLPClassifier", X, y, dict(
            early_stopping=True, learning_rate_init=0.01)),
        "binary-sgd-early-stopping-stratified": ("MLPClassifier", X, binary, dict(
            solver="sgd", early_stopping=True, learning_rate_init=0.1, batch_size=16)),
        "regression-sgd-adaptive": ("MLPRegressor", Xr, yr / yr.std(), dict(
            solver="sgd", learning_rate="adaptive", learning_rate_init=0.01, tol=0.5,
            n_iter_no_change=2)),
        "multilabel-sgd": ("MLPClassifier", Xm, Ym, dict(
            solver="sgd", learning_rate_init=0.05, activation="logistic")),
        "poisson-adam": ("MLPRegressor", X, y.astype(float), dict(
            loss="poisson", learning_rate_init=0.01)),
        "multiclass-lbfgs": ("MLPClassifier", X, y, dict(solver="lbfgs")),
        "binary-lbfgs-tanh": ("MLPClassifier", X, binary, dict(solver="lbfgs", activation="tanh")),
    }  # fmt: skip


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_seed_trains_the_same_model_as_scikit_learn(make_backend, case):
    """Weights, loss curve, validation scores, iteration counts and the learning rate after the
    fit equal scikit-learn's: the same initial draws, split, batch order, output units, losses,
    optimizers and schedules (per epoch by samples seen), and L-BFGS's same iterates."""
    name, X, y, settings = CASES[case]
    settings = dict(hidden_layer_sizes=(7,), random_state=0, max_iter=20, **settings)
    b = make_backend("float64")
    want = _quiet(getattr(sk, name)(**settings), X, y)
    got = _quiet(getattr(xpnet, name)(**settings, **where(b)), X, y)
    rtol = 1e-9 if b.name == "numpy" else 1e-7
    assert got.n_iter_ == want.n_iter_ and got.out_activation_ == want.out_activation_
    assert got.n_outputs_ == want.n_outputs_ and got.n_layers_ == want.n_layers_
    for a, w in zip(got.coefs_ + got.intercepts_, want.coefs_ + want.intercepts_, strict=True):
        assert a.shape == w.shape and a.dtype == w.dtype
        np.testing.assert_allclose(a, w, rtol=rtol, atol=rtol * np.abs(w).max())
    assert got.loss_ == pytest.approx(want.loss_, rel=rtol)
    if hasattr(want, "loss_curve_"):
        np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=rtol)
        assert got._optimizer.learning_rate == pytest.approx(
            want._optimizer.learning_rate, rel=rtol
        )
        assert got.t_ == want.t_ and got._no_improvement_count == want._no_improvement_count
    if getattr(want, "validation_scores_", None) is not None:
        np.testing.assert_allclose(got.validation_scores_, want.validation_scores_, rtol=rtol)
        assert got.best_validation_score_ == pytest.approx(want.best_validation_score_, rel=rtol)
        assert got.best_loss_ is None
    if name == "MLPClassifier":
        np.testing.assert_array_equal(got.predict(X), want.predict(X))
    else:
        np.testing.assert_allclose(got.predict(X), want.predict(X), rtol=rtol)


def test_multi_output_regression_loss_counts_every_output(iris):
    """The one documented difference: with several targets scikit-learn reports the squared error
    averaged over them but steps along its sum's gradient; xpnet reports the loss it steps on
    (the sum), so the weights match and the data part of the loss is n_outputs times larger."""
    X, y = make_regression(150, 5, n_targets=2, random_state=0)
    y = y / y.std(0)
    settings = dict(hidden_layer_sizes=(7,), random_state=0, max_iter=5, solver="sgd",
                    learning_rate_init=0.01, alpha=0.0)  # fmt: skip
    want = _quiet(sk.MLPRegressor(**settings), X, y)
    got = _quiet(MLPRegressor(**settings), X, y)
    np.testing.assert_allclose(got.coefs_[0], want.coefs_[0], rtol=1e-10)
    np.testing.assert_allclose(got.loss_curve_, 2 * np.asarray(want.loss_curve_), rtol=1e-10)


# -- L-BFGS ------------------------------------------------------------------------------------------
def test_lbfgs_on_every_backend_and_its_limits(make_backend, iris):
    X, y = iris
    b = make_backend("float64")
    net = MLPClassifier((10,), solver="lbfgs", max_iter=300, random_state=0, **where(b)).fit(X, y)
    assert net.score(X, y) > 0.97 and net.n_iter_ <= 300 and net.loss_ == net.loss_curve_[-1]
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        short = MLPClassifier((10,), solver="lbfgs", max_fun=5, random_state=0, **where(b))
        short.fit(X, y)
    assert short.n_iter_ <= 5
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(
        ValueError,
        match="solver 'lbfgs' searches its own step lengths on the "
        "whole data set, on one device; leave out stream",
    ):
        MLPClassifier(solver="lbfgs", stream=True).fit(X, y)


def test_the_lbfgs_objective_gradient_is_exact(make_backend, iris):
    """``_loss_grad_lbfgs`` (scikit-learn's name) against central differences."""
    X, y = iris
    b = make_backend("float64")
    net = _quiet(MLPClassifier((4,), solver="lbfgs", max_iter=1, random_state=0, **where(b)), X, y)
    T = net._label_binarizer.transform(y)
    theta = np.hstack([a.ravel() for a in net.coefs_ + net.intercepts_])
    value, grad = net._loss_grad_lbfgs(theta, X, T, None)
    h, numeric = 1e-6, np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        numeric[i] = (net._loss_grad_lbfgs(theta + e, X, T, None)[0]
                      - net._loss_grad_lbfgs(theta - e, X, T, None)[0]) / (2 * h)  # fmt: skip
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert value == pytest.approx(net.loss_, rel=1e-2)


# -- outputs and attributes --------------------------------------------------------------------------
def test_binary_is_one_logistic_unit(make_backend, iris):
    X, y = iris
    b = make_backend("float64")
    net = _quiet(MLPClassifier((5,), max_iter=30, random_state=0, **where(b)), X, y == 2)
    assert net.coefs_[-1].shape == (5, 1) and net.n_outputs_ == 1
    assert net.out_activation_ == "logistic" and net.classes_.tolist() == [False, True]
    proba, log = net.predict_proba(X), net.predict_log_proba(X)
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(log, np.log(proba))  # scikit-learn's definition
    np.testing.assert_array_equal(net.predict(X), proba[:, 1] > 0.5)


def test_attributes_as_scikit_learn_defines_them(make_backend, iris, capsys):
    X, y = iris
    b = make_backend("float64")
    net = MLPClassifier((5,), solver="sgd", max_iter=4, verbose=2, random_state=0, **where(b))
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        net.fit(X, y)
    assert capsys.readouterr().out.count("Iteration") == 4
    assert net.loss_ == net.loss_curve_[-1] and net.best_loss_ == min(net.loss_curve_)
    assert net.validation_scores_ is None and net.best_validation_score_ is None
    assert net.out_activation_ == "softmax" and net.n_layers_ == 3
    net.set_params(warm_start=True)
    _quiet(net, X, y)
    assert net.n_iter_ == 4 and net.t_ == 8 * 150  # n_iter_ counts this fit, t_ every sample
    forever = MLPClassifier((5,), solver="sgd", max_iter=30, tol=1e9, n_iter_no_change=np.inf,
                            random_state=0, **where(b))  # fmt: skip
    _quiet(forever, X, y)
    assert forever.n_iter_ == 30 and forever._no_improvement_count == 29


def test_multilabel_and_multi_output_targets(make_backend):
    b = make_backend("float64")
    X, Y = make_multilabel_classification(n_samples=80, random_state=0)
    clf = _quiet(MLPClassifier((30,), solver="lbfgs", random_state=0, **where(b)), X, Y)
    proba = clf.predict_proba(X)
    assert clf.out_activation_ == "logistic" and proba.shape == Y.shape
    assert not np.allclose(proba.sum(1), 1.0)  # independent labels, not a softmax
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9
    Xr, yr = make_regression(100, 4, n_targets=3, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0, **where(b))
    assert _quiet(reg, Xr, yr).predict(Xr).shape == (100, 3) and reg.score(Xr, yr) > 0.9


def test_float32_data_trains_in_float32(make_backend, iris):
    X, y = iris
    b = make_backend("float32")
    X32 = X.astype(np.float32)
    reg = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=30, random_state=0, **where(b)),
                 X32, y.astype(np.float32))  # fmt: skip
    assert all(a.dtype == np.float32 for a in reg.coefs_ + reg.intercepts_)
    assert reg.predict(X32).dtype == np.float32
    wide = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=30, random_state=0,
                               dtype="float64"), X32, y)  # fmt: skip
    assert wide.coefs_[0].dtype == np.float64
    np.testing.assert_allclose(reg.predict(X32), wide.predict(X), rtol=2e-3, atol=2e-3)


def test_poisson_regression_matches_the_glm(make_backend):
    """No hidden nonlinearity and no penalty: the network is a Poisson GLM, fitted alike."""
    from sklearn.linear_model import PoissonRegressor

    b = make_backend("float64")
    rng = np.random.default_rng(0)
    X = np.linspace(0, 1, 100).reshape(-1, 1)
    y = rng.poisson(np.exp(X[:, 0] + 1))
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
    net = MLPRegressor(loss="poisson", hidden_layer_sizes=(1,), activation="identity", alpha=0,
                       solver="lbfgs", tol=1e-7, random_state=1, **where(b)).fit(X, y)  # fmt: skip
    assert net.out_activation_ == "exp"
    np.testing.assert_allclose(net.predict(X), glm.predict(X), rtol=1e-4)
    with pytest.raises(ValueError, match="y >= 0"):
        MLPRegressor(loss="poisson").fit(X, -y)


# -- sample weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_a_weight_is_a_repeated_row(make_backend, iris, solver):
    """Weight 2 is a row given twice, weight 0 a row left out (one batch holds all the rows,
    so the order of rows does not matter)."""
    X, y = iris
    b = make_backend("float64")
    w = np.random.RandomState(0).randint(0, 3, X.shape[0])
    settings = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=15, random_state=0,
                    batch_size=500, shuffle=False, **where(b))  # fmt: skip
    weighted = _quiet(MLPClassifier(**settings), X, y, sample_weight=w)
    repeated = _quiet(MLPClassifier(**settings), np.repeat(X, w, axis=0), np.repeat(y, w))
    for a, r in zip(weighted.coefs_, repeated.coefs_, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-8, atol=1e-10)
    ones = _quiet(MLPClassifier(**settings), X, y, sample_weight=np.ones(X.shape[0]))
    plain = _quiet(MLPClassifier(**settings), X, y)
    np.testing.assert_allclose(ones.coefs_[0], plain.coefs_[0], rtol=1e-12)


def test_weights_in_partial_fit_streaming_and_early_stopping(make_backend, iris):
    X, y = iris
    b = make_backend("float64")
    w = np.random.RandomState(1).uniform(0.5, 2.0, X.shape[0])
    settings = dict(hidden_layer_sizes=(5,), solver="sgd", random_state=0, batch_size=32,
                    **where(b))  # fmt: skip
    part = MLPClassifier(**settings).partial_fit(X, y, sample_weight=w, classes=[0, 1, 2])
    fit = _quiet(MLPClassifier(**settings, max_iter=1), X, y, sample_weight=w)
    np.testing.assert_allclose(part.coefs_[0], fit.coefs_[0], rtol=1e-12)
    streamed = _quiet(MLPClassifier(**settings, max_iter=3, stream=True), X, y, sample_weight=w)
    resident = _quiet(MLPClassifier(**settings, max_iter=3), X, y, sample_weight=w)
    np.testing.assert_allclose(streamed.loss_curve_, resident.loss_curve_, rtol=1e-12)
    early = dict(settings, early_stopping=True, max_iter=10)
    ones = _quiet(MLPRegressor(**early), X, y * 1.0, sample_weight=np.ones(150))
    none = _quiet(MLPRegressor(**early), X, y * 1.0)
    np.testing.assert_allclose(ones.predict(X), none.predict(X), rtol=1e-12)
    with pytest.raises(ValueError, match="sample_weight must not be negative"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(150))


def test_sample_weight_travels_by_metadata_routing(iris):
    from sklearn import config_context
    from sklearn.model_selection import cross_validate

    X, y = iris
    seen = []

    class Spy(MLPClassifier):
        def fit(self, X, y, sample_weight=None):
            seen.append(sample_weight)
            return super().fit(X, y, sample_weight=sample_weight)

    with config_context(enable_metadata_routing=True):
        est = Spy((4,), max_iter=5, random_state=0).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cross_validate(est, X, y, cv=3, params={"sample_weight": np.arange(150.0)})
    assert len(seen) == 3 and all(s is not None and s.shape == (100,) for s in seen)


# -- sparse inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_sparse_inputs_train_as_dense_ones_a_batch_at_a_time(make_backend, iris, solver,
                                                             monkeypatch):  # fmt: skip
    from xpnet import lbfgs, stream

    X, y = iris
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    b = make_backend("float64")
    settings = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=10, random_state=0,
                    batch_size=16, **where(b))  # fmt: skip
    dense = _quiet(MLPClassifier(**settings), X, y)
    densified = []
    rows = stream.rows

    def spying(A, index):
        out = rows(A, index)
        densified.append(out.shape[0])
        return out

    monkeypatch.setattr(stream, "rows", spying)
    monkeypatch.setattr(lbfgs, "BLOCK_ROWS", 64)
    for make in (sparse.csr_matrix, sparse.csc_matrix):
        got = _quiet(MLPClassifier(**settings), make(X), y)
        np.testing.assert_allclose(got.coefs_[0], dense.coefs_[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(got.predict(make(X)), dense.predict(X))
    if solver == "adam":
        assert densified and max(densified) <= 16 * 16  # blocks of batches, never all rows
    else:
        monkeypatch.setattr(lbfgs, "BLOCK_ROWS", 64)
        assert _quiet(MLPClassifier(**settings), sparse.csr_matrix(X), y).n_iter_ == 10


# -- edge cases --------------------------------------------------------------------------------------
def test_edge_cases_behave_as_in_scikit_learn(make_backend, iris):
    X, y = iris
    b = make_backend("float64")
    at = where(b)
    early = MLPClassifier((4,), early_stopping=True, max_iter=5, random_state=0, **at)
    _quiet(early, X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        early.partial_fit(X, y)
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPRegressor(early_stopping=True, **at).fit(X[:3], y[:3])
    part = MLPClassifier((4,), **at).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="is not the same as on last call"):
        part.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=re.escape("`y` has classes not in `self.classes_`")):
        part.partial_fit(X[:3], [5, 5, 5])
    warm = _quiet(MLPClassifier((4,), warm_start=True, max_iter=3, **at), X, y)
    with pytest.raises(ValueError, match=re.escape("Previously got [0 1 2], `y` has [0 1]")):
        warm.fit(X[:100], y[:100])
    huge = np.finfo(np.float64).max * np.random.RandomState(0).uniform(size=(10, 2))
    with (pytest.raises(ValueError, match="Solver produced non-finite parameter weights"),
          warnings.catch_warnings()):  # fmt: skip
        warnings.simplefilter("ignore")
        MLPRegressor(**at).fit(huge, y[:10])


def test_a_diverging_run_with_early_stopping_keeps_its_best_weights(make_backend, iris):
    X, y = iris
    b = make_backend("float64")
    net = MLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                       learning_rate_init=1, max_iter=20, early_stopping=True, random_state=0,
                       **where(b))  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="diverged"):
        net.fit(X, y)
    assert np.isnan(net.validation_scores_[-1]) and len(net.loss_curve_) == net.n_iter_
    assert all(np.all(np.isfinite(a)) for a in net.coefs_)
    assert np.isfinite(net.best_validation_score_)


def test_a_dataframe_with_early_stopping_warns_nothing(make_backend):
    pd = pytest.importorskip("pandas")
    b = make_backend("float64")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(40, 2), columns=["a", "b"])
    y = pd.Series((X["a"] > 0).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(early_stopping=True, max_iter=5, **where(b)).fit(X, y).predict(X)
        MLPRegressor(early_stopping=True, max_iter=5, **where(b)).fit(X, y * 1.0).predict(X)


def test_weights_set_by_hand_train_on(make_backend):
    """scikit-learn's worked example: weights written into ``coefs_`` and ``intercepts_``, one
    partial_fit step, the hand-computed result."""
    b = make_backend("float64")
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
                        random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0,
                        **where(b))  # fmt: skip
    mlp.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    mlp.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    mlp.n_features_in_, mlp.out_activation_ = 3, "logistic"
    mlp.partial_fit(np.array([[0.6, 0.8, 0.7]]), np.array([0]), classes=[0, 1])
    np.testing.assert_allclose(mlp.coefs_[1], [[0.04706], [0.154089]], atol=1e-3)
    assert mlp.predict_proba(np.array([[0.6, 0.8, 0.7]]))[0, 1] == pytest.approx(0.739, abs=1e-3)


def test_a_saved_estimator_keeps_what_scikit_learn_would_pickle(tmp_path, iris):
    X, y = iris
    for est in (MLPClassifier((4,), solver="lbfgs", max_iter=20, random_state=0),
                MLPClassifier((4,), max_iter=3, random_state=0, n_iter_no_change=np.inf),
                MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=3)):  # fmt: skip
        target = y == 2 if est.solver == "lbfgs" else (y if is_classifier(est) else y * 1.0)
        _quiet(est, X, target)
        back = type(est).load(est.save(tmp_path / "m.safetensors"))
        assert back.out_activation_ == est.out_activation_ and back.n_outputs_ == est.n_outputs_
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        assert back.get_params() == est.get_params()


def is_classifier(est):
    return isinstance(est, MLPClassifier)

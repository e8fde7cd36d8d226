"""Class weights (issue 24): ``class_weight="balanced"`` or ``{class: weight}`` in Network, the
estimators and ``--class-weight``; each trains exactly as the sample weights it stands for, on
every backend, times any sample_weight; files keep them; bad values are one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import where
from xpnet import MLPClassifier, Network, cli
from xpnet.errors import ConfigError, DataError

sklearn_utils = pytest.importorskip("sklearn.utils")


@pytest.fixture(scope="module")
def uneven():
    """Three classes of 90, 40 and 20 samples: balancing changes the fit."""
    return _blobs()


def _blobs():
    rng = np.random.RandomState(0)
    counts = (90, 40, 20)
    X = np.concatenate([rng.randn(c, 2) + 1.5 * k for k, c in enumerate(counts)])
    y = np.repeat(np.array(["a", "b", "c"]), counts)
    return X, y


def _balanced(y):
    return sklearn_utils.compute_sample_weight("balanced", y)


FIT = {"epochs": 30, "optimizer": "adam", "lr": 0.01}


def test_balanced_trains_as_its_sample_weights_on_every_backend(make_backend, uneven):
    backend = make_backend("float64")
    X, y = uneven
    weighted = Network((5,), **where(backend)).fit(X, y, sample_weight=_balanced(y), **FIT)
    balanced = Network((5,), class_weight="balanced", **where(backend)).fit(X, y, **FIT)
    for k, v in weighted.params_.items():
        np.testing.assert_array_equal(balanced.params_[k], v)
    np.testing.assert_array_equal(balanced.loss_curve_, weighted.loss_curve_)
    np.testing.assert_allclose(balanced.class_weight_, [150 / (3 * 90), 150 / (3 * 40),
                                                        150 / (3 * 20)], rtol=1e-15)  # fmt: skip
    plain = Network((5,), **where(backend)).fit(X, y, **FIT)
    assert not np.array_equal(plain.params_["W1"], balanced.params_["W1"])


def test_a_dict_multiplies_the_sample_weights(uneven):
    X, y = uneven
    w = np.random.RandomState(1).uniform(0.5, 2.0, y.size)
    given = {"a": 0.5, "c": 3.0}  # b left out: weight 1
    factor = np.select([y == "a", y == "c"], [0.5, 3.0], 1.0)
    one = Network((4,), class_weight=given).fit(X, y, sample_weight=w, **FIT)
    other = Network((4,)).fit(X, y, sample_weight=w * factor, **FIT)
    np.testing.assert_array_equal(one.params_["W1"], other.params_["W1"])


def test_the_estimator_balances_as_scikit_learn_weighs(uneven):
    X, y = uneven
    common = {"hidden_layer_sizes": (5,), "max_iter": 20, "random_state": 0}
    with pytest.warns(Warning):  # stops at max_iter
        a = MLPClassifier(class_weight="balanced", **common).fit(X, y)
    with pytest.warns(Warning):
        b = MLPClassifier(**common).fit(X, y, sample_weight=_balanced(y))
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)
    with pytest.warns(Warning):
        c = MLPClassifier(class_weight={"a": 1.0, "b": 2.25, "c": 4.5}, **common).fit(X, y)
    with pytest.warns(Warning):
        d = MLPClassifier(**common).fit(X, y, sample_weight=np.select(
            [y == "b", y == "c"], [2.25, 4.5], 1.0))  # fmt: skip
    np.testing.assert_array_equal(c.coefs_[0], d.coefs_[0])


def test_files_keep_the_class_weights(tmp_path, uneven):
    import xpnet

    X, y = uneven
    net = Network((4,), class_weight={"a": 0.5}).fit(X, y, epochs=5)
    net.save(tmp_path / "n.safetensors")
    back = Network.load(tmp_path / "n.safetensors")
    assert back.class_weight == {"a": 0.5, "b": 1.0, "c": 1.0}
    np.testing.assert_array_equal(back.class_weight_, [0.5, 1.0, 1.0])
    more = Network((4,), class_weight={"a": 0.5}).fit(X, y, epochs=8)
    np.testing.assert_array_equal(back.resume(X, y, epochs=8).params_["W1"], more.params_["W1"])
    with pytest.warns(Warning):  # stops at max_iter
        clf = MLPClassifier((3,), class_weight={"a": 2.0}, max_iter=3, random_state=0).fit(X, y)
    clf.save(tmp_path / "c.safetensors")
    assert xpnet.load(tmp_path / "c.safetensors").class_weight == {"a": 2.0}
    bal = Network((4,), class_weight="balanced").fit(X, y, epochs=5)
    bal.save(tmp_path / "b.safetensors")
    assert Network.load(tmp_path / "b.safetensors").class_weight == "balanced"


def test_the_command_line_balances(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    assert cli.main(["train", "--class-weight", "balanced", "--epochs", "5", "--quiet",
                     "--save", str(model)]) == 0  # fmt: skip
    net = Network.load(model)
    assert net.class_weight == "balanced"
    np.testing.assert_allclose(net.class_weight_, [1.0, 1.0])  # moons: 100 and 100
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--class-weight", "even", "--epochs", "5"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("xpnet: error: --class-weight takes 'balanced' on the command line; "
                          "got 'even' (weights per class are Python's"), err  # fmt: skip


@pytest.mark.parametrize(("value", "error", "message"), [
    ({"d": 1.0}, DataError, r"class_weight names the class 'd', which y does not hold \(its "
     r"classes: 'a', 'b', 'c'\)"),
    ({"a": -1.0}, ConfigError, r"class_weight\['a'\] must be a number in \[0, inf\); got -1.0"),
    ({"a": float("nan")}, ConfigError, r"class_weight\['a'\] must be a number"),
    ("even", ConfigError, r"class_weight must be None, 'balanced' or a dict"),
    ({"a": 0.0, "b": 0.0, "c": 0.0}, DataError, "leave every sample at weight zero"),
])  # fmt: skip
def test_bad_class_weights_are_one_clear_error(uneven, value, error, message):
    X, y = uneven
    with pytest.raises(error, match=message):
        Network((3,), class_weight=value).fit(X, y, epochs=1)
    with pytest.raises(ValueError, match=message):
        MLPClassifier((3,), class_weight=value, max_iter=1).fit(X, y)


def test_the_estimator_refuses_what_it_cannot_weigh(uneven):
    X, y = uneven
    with pytest.raises(ValueError, match="class_weight weighs one label per sample"):
        MLPClassifier((3,), class_weight={0: 2.0}, max_iter=1).fit(X, np.eye(3)[[0, 1, 2] * 50])
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        MLPClassifier((3,), class_weight="balanced").partial_fit(X, y, classes=["a", "b", "c"])

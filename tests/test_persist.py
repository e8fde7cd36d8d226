"""Model files: a round trip onto every backend, no pickle, atomic writes, and a clear error for
every bad file."""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpnet
from xpnet import Network, datasets, persist, writing
from xpnet.errors import ModelFileError, XpnetError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    X, y = datasets.load("moons", n_samples=120, noise=0.2, seed=5)
    labels = np.array(["left", "right"])[y]
    net = Network((4,), scale="standard", backend="numpy").fit(X, labels, epochs=300, lr=0.01)
    path = tmp_path_factory.mktemp("model") / "moons.safetensors"
    net.save(path)
    return net, X, labels, path


def test_round_trip_onto_every_backend(trained, make_backend):
    net, X, _, path = trained
    backend = make_backend("float64")
    loaded = Network.load(path, backend=backend.name, device=backend.device_label)
    assert loaded.backend_.name == backend.name
    assert loaded.classes_.tolist() == ["left", "right"]
    assert loaded.trained_on_["backend"] == "numpy"
    assert loaded.plan_.epochs == 300 and loaded.passes_done_ == 300
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-12, atol=0)
    assert loaded.predict(X).tolist() == net.predict(X).tolist()
    np.testing.assert_array_equal(loaded.loss_curve_, net.loss_curve_)


def test_float32_model_loads_as_float32_and_as_float64(tmp_path):
    X, y = datasets.load("moons", n_samples=60, seed=1)
    net = Network((3,), dtype="float32").fit(X, y, epochs=50)
    net.save(tmp_path / "m.safetensors")
    assert Network.load(tmp_path / "m.safetensors").params_["W1"].dtype == np.float32
    assert (
        Network.load(tmp_path / "m.safetensors", dtype="float64").params_["W1"].dtype == np.float64
    )


def test_the_file_is_safetensors_with_a_json_description(trained):
    """Plain safetensors: the weights read with the safetensors library alone (PyTorch's, JAX's
    and NumPy's loaders), xpnet's description in its metadata."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    _, _, _, path = trained
    tensors = load_file(path)
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()[persist.META_KEY])
    assert {"param.W1", "param.b1", "param.W2", "param.b2", "scale.offset"} <= set(tensors)
    assert tensors["param.W1"].shape == (2, 4) and tensors["param.W1"].dtype == np.float64
    assert meta["format"] == "xpnet-model" and meta["format_version"] == 4
    assert meta["kind"] == "Network" and meta["text"]["classes"] == ["left", "right"]
    assert meta["architecture"] == {"sizes": [2, 4, 2], "activation": "relu",
                                    "loss": "cross_entropy", "bias": True}  # fmt: skip
    assert meta["dtype"] == "float64" and meta["trained_on"]["backend"] == "numpy"
    assert meta["training"]["optimizer"] == ["scale_by_learning_rate", ["constant", 0.01]]
    assert {"history.passes", "history.losses"} <= set(tensors) and len(meta["checksum"]) == 64


def _parts(path):
    """(tensors, meta) of a format-3 file, read with the safetensors library."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()[persist.META_KEY])  # noqa: SIM118


def _rewrite(src, dst, change_meta=None, change_arrays=None, sign=False):
    """Write ``src`` again to ``dst`` with its description or arrays changed: its checksum kept,
    or (``sign``) made again for what was changed, as a hand that edits on purpose does."""
    from safetensors.numpy import save_file

    tensors, meta = _parts(src)
    if change_arrays:
        change_arrays(tensors)
    if change_meta:
        change_meta(meta)
    if sign:
        text = {k: np.asarray(v, dtype=str) for k, v in meta["text"].items()}
        meta["checksum"] = persist.checksum({**tensors, **text}, meta)
    save_file(tensors, str(dst), metadata={persist.META_KEY: json.dumps(meta)})


def _version_2(src, dst, extra=None):
    """The same model as an .npz of format 2 (what xpnet wrote before safetensors)."""
    tensors, meta = _parts(src)
    arrays = {**tensors, **{k: np.array(v) for k, v in meta.pop("text").items()}}
    meta["format_version"] = 2
    meta["checksum"] = persist.checksum(arrays)
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(dst, **arrays, **{persist.META_KEY: blob})
    if extra:
        with zipfile.ZipFile(dst, "a") as z:
            for name, data in extra.items():
                z.writestr(name, data)


def test_bad_files_give_clear_errors(trained, tmp_path):
    _, _, _, path = trained
    good = path.read_bytes()
    cases = {
        "missing.npz": (None, "does not exist"),
        "truncated.npz": (good[: len(good) // 2], "not a readable xpnet model file"),
        "garbage.npz": (b"hello, not a zip", "not a readable xpnet model file"),
        "empty.npz": (b"", "not a readable xpnet model file"),
        "words.txt": (b"just some text\nin a file\n", "not a readable xpnet model file"),
    }
    for name, (content, match) in cases.items():
        target = tmp_path / name
        if content is not None:
            target.write_bytes(content)
        with pytest.raises(ModelFileError, match=match) as info:
            Network.load(target)
        assert "pickle" not in str(info.value)  # never suggest loading it with allow_pickle
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        Network.load(tmp_path)

    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"an \.npz archive but not an xpnet model file"):
        Network.load(plain)
    from safetensors.numpy import save_file

    save_file({"a": np.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelFileError, match="a safetensors file but not an xpnet model file"):
        Network.load(tmp_path / "plain.safetensors")

    def newer(meta):
        meta["format_version"] = 99

    _rewrite(path, tmp_path / "newer.safetensors", change_meta=newer)
    with pytest.raises(
        ModelFileError, match=r"newer xpnet \(model format 99; .* up to 4\); upgrade"
    ):
        Network.load(tmp_path / "newer.safetensors")

    def flip(arrays):
        arrays["param.W1"] = arrays["param.W1"] + 1e-9

    _rewrite(path, tmp_path / "tampered.safetensors", change_arrays=flip)
    with pytest.raises(ModelFileError, match="do not match their checksum"):
        Network.load(tmp_path / "tampered.safetensors")

    def drop(meta):
        del meta["architecture"]

    _rewrite(path, tmp_path / "unsigned.safetensors", change_meta=drop)
    with pytest.raises(ModelFileError, match="arrays or description do not match their checksum"):
        Network.load(tmp_path / "unsigned.safetensors")
    _rewrite(path, tmp_path / "incomplete.safetensors", change_meta=drop, sign=True)
    with pytest.raises(ModelFileError, match="invalid description: architecture is missing"):
        Network.load(tmp_path / "incomplete.safetensors")


def test_format_2_files_load_and_pickles_in_them_are_refused(tmp_path, trained):
    net, X, _, path = trained
    _version_2(path, tmp_path / "v2.npz")
    np.testing.assert_array_equal(Network.load(tmp_path / "v2.npz").predict_proba(X),
                                  net.predict_proba(X))  # fmt: skip
    buf = io.BytesIO()
    np.save(buf, np.array([print], dtype=object), allow_pickle=True)
    _version_2(path, tmp_path / "evil.npz", {"payload.npy": buf.getvalue()})
    with pytest.raises(ModelFileError, match="holds pickled objects, which model files never do"):
        Network.load(tmp_path / "evil.npz")


def test_a_member_that_would_inflate_is_refused_at_once(tmp_path, trained):
    """A 1 MB .npz whose member inflates to 1 GiB: refused before anything is inflated, in
    bounded time and memory."""
    import time
    import tracemalloc

    _, _, _, path = trained
    bomb = tmp_path / "bomb.npz"
    _version_2(path, bomb)
    header = (
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (134217728,), }"
    )
    header += b" " * (117 - len(header)) + b"\n"
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as z, z.open("extra.npy", "w", force_zip64=True) as f:  # fmt: skip
        f.write(header)
        for _ in range(2**30 // 2**24):
            f.write(bytes(2**24))
    assert bomb.stat().st_size < 5e6
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=r"holds a compressed member 'extra\.npy'"):
            Network.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2 and peak < 20e6


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    net = trained[0]
    target = tmp_path / "model.safetensors"
    net.save(target)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writing.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        net.save(target)
    assert target.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left behind


def test_a_file_keeps_a_bounded_loss_history_unless_asked(tmp_path, monkeypatch):
    X, y = datasets.load("moons", n_samples=40, seed=2)
    monkeypatch.setattr(persist, "MAX_LOSSES", 10)
    net = Network((3,)).fit(X, y, epochs=95)
    net.save(tmp_path / "some.safetensors")
    some = Network.load(tmp_path / "some.safetensors")
    assert some.loss_passes_.size == 10 and some.loss_passes_[[0, -1]].tolist() == [0, 94]
    np.testing.assert_array_equal(some.loss_curve_, net.loss_curve_[some.loss_passes_])
    net.save(tmp_path / "all.safetensors", all_losses=True)
    assert Network.load(tmp_path / "all.safetensors").loss_passes_.size == 95


def test_unfitted_network_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        Network((3,)).save(tmp_path / "x.safetensors")


def test_version_1_files_still_load(tmp_path, trained):
    """A file as xpnet 0.1 wrote it (plain gradient descent, every pass's loss, no kind)."""
    net, X, labels, _ = trained
    arrays = {f"param.{k}": v for k, v in net.params_.items()}
    arrays |= {
        "classes": net.classes_,
        "loss_curve": net.loss_curve_,
        "scale.offset": net.scale_offset_,
        "scale.factor": net.scale_factor_,
    }
    meta = {
        "format": persist.FORMAT,
        "format_version": 1,
        "checksum": persist.checksum(arrays),
        "architecture": {
            "sizes": [2, 4, 2],
            "activation": "relu",
            "loss": "cross_entropy",
            "bias": True,
        },
        "init": "auto",
        "init_seed": 0,
        "scale": "standard",
        "dtype": "float64",
        "training": {
            "epochs": 300,
            "lr": 0.01,
            "reg": 1e-4,
            "reduction": "mean",
            "record": "after",
            "optimizer": "sgd",
            "passes": 300,
        },
    }
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays, **{persist.META_KEY: blob})
    old = Network.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(old.predict_proba(X), net.predict_proba(X))
    assert old.passes_done_ == 300 and old.loss_passes_.tolist() == list(range(300))
    old.resume(X, labels, epochs=310)  # plain gradient descent at the stored rate
    assert old.passes_done_ == 310


def test_xpnet_load_returns_whatever_wrote_the_file(tmp_path, trained):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import xpnet

    _, X, labels, path = trained
    assert isinstance(xpnet.load(path), Network)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = xpnet.MLPClassifier((5,), max_iter=5, random_state=0).fit(X, labels)
        reg = xpnet.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(
            X, X[:, 0]
        )
    for est in (clf, reg):
        est.save(tmp_path / "e.safetensors")
        back = xpnet.load(tmp_path / "e.safetensors")
        assert type(back) is type(est) and back.get_params() == est.get_params()
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
    with pytest.raises(ModelFileError, match=r"not a Network; read it with xpnet.load\(path\)"):
        Network.load(tmp_path / "e.safetensors")
    with pytest.raises(ModelFileError, match="not an MLPClassifier"):
        xpnet.MLPClassifier.load(path)


def test_format_3_files_load(tmp_path, trained):
    """Files written before the checksum covered the description (format 3) still load."""
    net, X, _, path = trained

    def three(meta):
        meta["format_version"] = 3
        tensors, _ = _parts(path)
        text = {k: np.asarray(v, dtype=str) for k, v in meta["text"].items()}
        meta["checksum"] = persist.checksum({**tensors, **text})

    _rewrite(path, tmp_path / "v3.safetensors", change_meta=three)
    old = Network.load(tmp_path / "v3.safetensors")
    np.testing.assert_array_equal(old.predict_proba(X), net.predict_proba(X))


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    """A Network with every part a file can hold: scaling, text classes, a momentum state, a
    mini-batch order and its generator."""
    X, y = datasets.load("moons", n_samples=60, noise=0.2, seed=2)
    labels = np.array(["a", "b"])[y]
    net = Network((3,), scale="standard").fit(X, labels, epochs=3, optimizer="momentum",
                                             batch_size=16)  # fmt: skip
    path = tmp_path_factory.mktemp("resumable") / "m.safetensors"
    net.save(path)
    return net, X, labels, path


def _set(key, value):
    def change(parts):
        *where, last = key.split(".")
        for k in where:
            parts = parts[k]
        parts[last] = value

    return change


def _put(name, value):
    def change(arrays):
        arrays[name] = value

    return change


EDITS = [
    # (what is changed, in the description or the arrays, and what the message names)
    ("sizes as text", _set("architecture.sizes", "2,3,2"), None, "architecture.sizes must be a list"),
    ("an unknown activation", _set("architecture.activation", "swoosh"), None,
     "architecture.activation must be one of"),
    ("a bias of 1", _set("architecture.bias", 1), None, "architecture.bias must be true or false"),
    ("negative epochs", _set("training.plan.epochs", -3), None, "epochs must be an integer"),
    ("a rate of text", _set("training.plan.lr", "fast"), None, "lr must be"),
    ("a seed too large", _set("init_seed", 2**40), None, "init_seed must be an integer in"),
    ("an unknown dtype", _set("dtype", "float16"), None, "dtype must be one of"),
    ("an optimizer nobody knows", _set("training.optimizer", ["warp", 9]), None,
     "unknown optimizer description"),
    ("a rate of text in the optimizer", _set("training.optimizer", ["scale_by_learning_rate",
     ["constant", "fast"]]), None, "holds 'fast' where a finite number"),
    ("a generator state of the wrong kind", _set("training.rng", ["PCG64", 1, 0, 0.0]), None,
     "training"),
    ("a generator state of text", _set("training.rng", "MT19937"), None, "training.rng must be"),
    ("text arrays of numbers", _set("text.classes", [1, 2]), None, "text.classes[0] must be text"),
    ("a class twice", _set("text.classes", ["a", "a"]), None, "classes holds a class twice"),
    ("fewer classes than outputs", _set("text.classes", ["a"]), None, "classes has shape (1,)"),
    ("a scaling vector too short", None, _put("scale.factor", np.ones(1)),
     "scale.factor has shape (1,), not (2,)"),
    ("a non-finite scaling", None, _put("scale.offset", np.array([0.0, np.inf])),
     "scale.offset holds NaN or infinite entries"),
    ("a zero scaling", None, _put("scale.factor", np.array([1.0, 0.0])), "scale.factor holds an entry"),
    ("NaN weights", None, _put("param.W1", np.full((2, 3), np.nan)), "param.W1 holds NaN"),
    ("integer weights", None, _put("param.b1", np.zeros(3, np.int64)), "param.b1 has dtype int64"),
    ("a batch order out of range", None, _put("feed.order", np.arange(60) + 5),
     "feed.order must be an order of the rows"),
    ("a batch order with a row twice", None, _put("feed.order", np.zeros(60, np.int64)),
     "feed.order must be an order of the rows"),
    ("a generator key of the wrong length", None, _put("feed.rng", np.zeros(5, np.uint32)), "training"),
    ("a momentum state of another shape", None, _put("opt.0.buffer.W2", np.zeros((2, 2))),
     "opt.0.buffer.W2 has shape (2, 2), not (3, 2)"),
    ("a history of two lengths", None, _put("history.losses", np.zeros(1)), "history.passes and"),
]  # fmt: skip


@pytest.mark.parametrize(("change_meta", "change_arrays", "named"),
                         [e[1:] for e in EDITS if e[1] or e[2]],
                         ids=[e[0] for e in EDITS if e[1] or e[2]])  # fmt: skip
def test_an_edited_file_is_refused_naming_the_file_and_the_part(
    resumable, tmp_path, change_meta, change_arrays, named
):
    """Signed again after the edit (so the checksum does not catch it), each inconsistent
    description or array is refused on load, naming the file and what is wrong."""
    _, _, _, path = resumable
    target = tmp_path / "edited.safetensors"
    _rewrite(path, target, change_meta=change_meta, change_arrays=change_arrays, sign=True)
    with pytest.raises(ModelFileError) as info:
        Network.load(target)
    assert str(target) in str(info.value) and named in str(info.value), str(info.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=5,
)  # fmt: skip
"""Any JSON value (NaN and the infinities included, as Python's json writes them)."""


def _places(value, at=()):
    """Every place in a JSON tree, as its path of keys and indices (the root left out)."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for k, v in items:
        yield (*at, k)
        yield from _places(v, (*at, k))


@pytest.fixture(scope="module")
def every_kind(resumable, tmp_path_factory):
    """A file of each kind that writes them, and data to predict with."""
    from xpnet.estimators import MLPClassifier, MLPRegressor

    _net, X, labels, path = resumable
    folder = tmp_path_factory.mktemp("kinds")
    files = [path]
    for est, y in ((MLPClassifier((3,), max_iter=3, early_stopping=True), labels),
                   (MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X[:, 0])):  # fmt: skip
        files.append(folder / f"{type(est).__name__}.safetensors")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # three iterations do not converge: not the point
            est.fit(X, y)
        est.save(files[-1])
    for name, loss, y in (("huber", "huber", np.column_stack([X[:, 0], X[:, 1]])),
                          ("one_sigmoid", "squared_error", labels)):  # fmt: skip
        files.append(folder / f"{name}.safetensors")
        Network((3,), loss=loss).fit(X, y, epochs=2).save(files[-1])
    return files, X, folder


@pytest.mark.parametrize("position", [2**64, 2**70])
def test_a_generator_state_numpy_refuses_is_a_bad_file(position):
    """A shuffling generator's position edited past int64 (an OverflowError in NumPy: found by
    the property test below) is an invalid description, not a crash."""
    from xpnet import schema

    keys = np.random.RandomState(0).get_state()[1]
    with pytest.raises(schema.Invalid, match="not a generator state NumPy takes"):
        persist.generator_state(("MT19937", keys, position, 0, 0.0), "feed.rng")


def test_one_sigmoid_unit_and_regression_networks_load_as_they_were(every_kind):
    files, X, _ = every_kind
    for path in files[-2:]:
        back = Network.load(path)
        assert back.spec_.sizes[-1] in (1, 2) and back.predict(X).shape[0] == X.shape[0]
    regression, one_unit = Network.load(files[-2]), Network.load(files[-1])
    assert regression.classes_ is None and regression.predict(X).shape == (X.shape[0], 2)
    assert one_unit.spec_.sizes[-1] == 1 and one_unit.classes_.size == 2


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_any_edit_of_a_description_is_refused_or_loads_a_model_that_predicts(every_kind, data):
    """Property: a description edited anywhere (any place, any JSON value), signed again so the
    checksum does not catch it, either loads as a model that predicts or is refused with a
    ModelFileError naming the file; never another exception."""
    files, X, folder = every_kind
    source = data.draw(st.sampled_from(files))
    tensors, meta = _parts(source)
    place = data.draw(st.sampled_from([p for p in _places(meta) if p != ("checksum",)]))
    value = data.draw(JSON)
    parent = meta
    for k in place[:-1]:
        parent = parent[k]
    parent[place[-1]] = value
    try:
        text = {k: np.asarray(v, dtype=str) for k, v in meta["text"].items()}
        meta["checksum"] = persist.checksum({**tensors, **text}, meta)
    except (TypeError, ValueError, AttributeError, KeyError):
        pass  # text no longer a mapping of lists: the checksum stays the old one
    from safetensors.numpy import save_file

    target = folder / "edited.safetensors"
    save_file(tensors, str(target), metadata={persist.META_KEY: json.dumps(meta)})
    try:
        model = xpnet.load(target, backend="numpy")
    except ModelFileError as exc:
        assert str(target) in str(exc)
        return
    try:
        out = model.predict(X)
    except XpnetError:  # a stored setting that is valid but not usable here (say, a device)
        return
    assert len(out) == X.shape[0]


def test_a_file_is_read_whole_once_to_load_it(trained, tmp_path, monkeypatch, capsys):
    """``xpnet.load`` and ``xpnet train --resume`` learn which class wrote a file from its
    description alone, then read it whole once: one checksum, not two."""
    import xpnet
    from xpnet import cli

    path = trained[3]
    calls = []
    real = persist.checksum
    monkeypatch.setattr(persist, "checksum", lambda *a: calls.append(1) or real(*a))
    assert persist.description(path)["kind"] == "Network" and not calls
    xpnet.load(path)
    assert len(calls) == 1
    run = tmp_path / "run.safetensors"
    assert cli.main(["train", "--epochs", "3", "--quiet", "--save", str(run)]) == 0
    calls.clear()
    assert cli.main(["train", "--resume", str(run), "--epochs", "4", "--quiet"]) == 0
    assert len(calls) == 1, calls
    capsys.readouterr()

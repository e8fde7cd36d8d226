"""Model files: a round trip onto every backend, no pickle, atomic writes, and a clear error for
every bad file."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from xpnet import Network, datasets, persist
from xpnet.errors import ModelFileError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    X, y = datasets.load("moons", n_samples=120, noise=0.2, seed=5)
    labels = np.array(["left", "right"])[y]
    net = Network((4,), scale="standard", backend="numpy").fit(X, labels, epochs=300, lr=0.01)
    path = tmp_path_factory.mktemp("model") / "moons.npz"
    net.save(path)
    return net, X, labels, path


def test_round_trip_onto_every_backend(trained, make_backend):
    net, X, _, path = trained
    backend = make_backend("float64")
    loaded = Network.load(path, backend=backend.name, device=backend.device_label)
    assert loaded.backend_.name == backend.name
    assert loaded.classes_.tolist() == ["left", "right"]
    assert loaded.trained_on_["backend"] == "numpy"
    assert loaded.fit_settings_["epochs"] == 300 and loaded.passes_done_ == 300
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-12, atol=0)
    assert loaded.predict(X).tolist() == net.predict(X).tolist()
    np.testing.assert_array_equal(loaded.loss_curve_, net.loss_curve_)


def test_float32_model_loads_as_float32_and_as_float64(tmp_path):
    X, y = datasets.load("moons", n_samples=60, seed=1)
    net = Network((3,), dtype="float32").fit(X, y, epochs=50)
    net.save(tmp_path / "m.npz")
    assert Network.load(tmp_path / "m.npz").params_["W1"].dtype == np.float32
    assert Network.load(tmp_path / "m.npz", dtype="float64").params_["W1"].dtype == np.float64


def test_the_file_is_plain_npz_with_a_json_description(trained):
    _, _, _, path = trained
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        meta = json.loads(z[persist.META_KEY].tobytes())
    assert {"param.W1", "param.b1", "param.W2", "param.b2", "classes", "scale.offset"} <= files
    assert meta["format"] == "xpnet-model" and meta["format_version"] == 2
    assert meta["kind"] == "Network"
    assert meta["architecture"] == {"sizes": [2, 4, 2], "activation": "relu",
                                    "loss": "cross_entropy", "bias": True}  # fmt: skip
    assert meta["dtype"] == "float64" and meta["trained_on"]["backend"] == "numpy"
    assert meta["training"]["optimizer"] == ["scale_by_learning_rate", ["constant", 0.01]]
    assert {"history.passes", "history.losses"} <= files and len(meta["checksum"]) == 64


def _rewrite(src, dst, change_meta=None, change_arrays=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop(persist.META_KEY).tobytes())
    if change_arrays:
        change_arrays(arrays)
    if change_meta:
        change_meta(meta)
    arrays[persist.META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)


def test_bad_files_give_clear_errors(trained, tmp_path):
    _, _, _, path = trained
    good = path.read_bytes()
    cases = {
        "missing.npz": (None, "does not exist"),
        "truncated.npz": (good[: len(good) // 2], "not a readable xpnet model file"),
        "garbage.npz": (b"hello, not a zip", "not a readable xpnet model file"),
        "empty.npz": (b"", "not a readable xpnet model file"),
    }
    for name, (content, match) in cases.items():
        target = tmp_path / name
        if content is not None:
            target.write_bytes(content)
        with pytest.raises(ModelFileError, match=match):
            Network.load(target)

    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an xpnet model file"):
        Network.load(plain)

    def newer(meta):
        meta["format_version"] = 99

    _rewrite(path, tmp_path / "newer.npz", change_meta=newer)
    with pytest.raises(
        ModelFileError, match=r"newer xpnet \(model format 99; .* up to 2\); upgrade"
    ):
        Network.load(tmp_path / "newer.npz")

    def flip(arrays):
        arrays["param.W1"] = arrays["param.W1"] + 1e-9

    _rewrite(path, tmp_path / "tampered.npz", change_arrays=flip)
    with pytest.raises(ModelFileError, match="do not match their checksum"):
        Network.load(tmp_path / "tampered.npz")

    def drop(meta):
        del meta["architecture"]

    def recheck(arrays):  # keep the checksum valid so the missing field is what fails
        pass

    _rewrite(path, tmp_path / "incomplete.npz", change_meta=drop, change_arrays=recheck)
    with pytest.raises(ModelFileError, match="incomplete description"):
        Network.load(tmp_path / "incomplete.npz")


def test_a_pickled_array_is_refused_not_executed(tmp_path, trained):
    _, _, _, path = trained
    evil = tmp_path / "evil.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item))
        buf = io.BytesIO()
        np.save(buf, np.array([print], dtype=object), allow_pickle=True)
        dst.writestr("payload.npy", buf.getvalue())
    with pytest.raises(ModelFileError, match="pickle"):
        Network.load(evil)


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    net = trained[0]
    target = tmp_path / "model.npz"
    net.save(target)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        net.save(target)
    assert target.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left behind


def test_unfitted_network_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        Network((3,)).save(tmp_path / "x.npz")


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
        reg = xpnet.MLPRegressor((5,), max_iter=5, random_state=0).fit(X, X[:, 0])
    for est in (clf, reg):
        est.save(tmp_path / "e.npz")
        back = xpnet.load(tmp_path / "e.npz")
        assert type(back) is type(est) and back.get_params() == est.get_params()
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
    with pytest.raises(ModelFileError, match=r"not a Network; read it with xpnet.load\(path\)"):
        Network.load(tmp_path / "e.npz")
    with pytest.raises(ModelFileError, match="not an MLPClassifier"):
        xpnet.MLPClassifier.load(path)

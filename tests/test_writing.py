"""Every output is written whole or not at all (xpnet.writing): a failure while writing keeps
the file that was there, leaves no temporary behind and is one typed error naming the file; a
device is written in place, never replaced."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from xpnet import Network, cli, datasets, writing
from xpnet.errors import WriteError


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    X, y = datasets.load("moons", n_samples=100, noise=0.2, seed=0)
    path = tmp_path_factory.mktemp("writing") / "m.safetensors"
    Network((4,)).fit(X, y, epochs=20).save(path)
    return path


def _points(folder):
    points = folder / "points.csv"
    points.write_text("x1,x2\n0.5,0.25\n-1.0,1.0\n")
    return points


# (what is written, the command that writes it into {out}, the file name)
OUTPUTS = [
    ("predictions", ["predict", "--model", "{model}", "--input", "{points}", "--output", "{out}"],
     "predictions.csv"),
    ("metrics", ["train", "--epochs", "5", "--quiet", "--metrics-out", "{out}"], "metrics.json"),
    ("a model file", ["train", "--epochs", "5", "--quiet", "--save", "{out}"], "run.safetensors"),
    ("a plot", ["train", "--epochs", "5", "--quiet", "--plot", "{out}"], "moons.png"),
]  # fmt: skip


def _argv(template, model, points, out):
    values = {"{model}": str(model), "{points}": str(points), "{out}": str(out)}
    return [values.get(a, a) for a in template]


@pytest.mark.parametrize(("what", "template", "name"), OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_a_failed_write_keeps_the_old_file(what, template, name, model, tmp_path, monkeypatch,
                                           capsys):  # fmt: skip
    if what == "a plot":
        pytest.importorskip("matplotlib")
    out = tmp_path / name
    out.write_bytes(b"the old content")
    before = set(tmp_path.iterdir())

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writing.os, "fsync", full_disk)
    status = cli.main(_argv(template, model, _points(tmp_path), out))
    err = capsys.readouterr().err
    assert out.read_bytes() == b"the old content", what
    assert set(tmp_path.iterdir()) - before <= {tmp_path / "points.csv"}  # no temporary left
    assert str(out) in err and "No space left on device" in err, err
    assert status == 2 and err.startswith("xpnet: error: ") and err.count("\n") == 1, err
    if what == "a model file":  # its fallback in the temporary folder failed too: both said
        assert "nor the fallback" in err and "the trained model was not saved" in err, err


@pytest.mark.parametrize(("what", "template", "name"), OUTPUTS[:2], ids=[o[0] for o in OUTPUTS[:2]])
def test_an_output_is_written_whole(what, template, name, model, tmp_path):
    out = tmp_path / name
    out.write_text("x" * 100_000)  # longer than what replaces it: nothing of it may remain
    assert cli.main(_argv(template, model, _points(tmp_path), out)) == 0
    text = out.read_text()
    assert "x" not in text and text.endswith("\n"), text[-50:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "points.csv"])


def test_a_device_is_written_in_place_not_replaced(model, tmp_path, capsys):
    """``--output /dev/stdout`` prints; a pipe given as the output is written, and stays one."""
    assert cli.main(["predict", "--model", str(model), "--input", str(_points(tmp_path)),
                     "--output", "/dev/stdout"]) == 0  # fmt: skip
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(
        fifo, os.O_RDONLY | os.O_NONBLOCK
    )  # a reader, so that opening to write won't block
    try:
        writing.replace(fifo, lambda fh: fh.write(b"through the pipe\n"))
        assert os.read(reader, 100) == b"through the pipe\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_write_error_names_the_file_and_keeps_what_was_there(tmp_path, monkeypatch):
    target = tmp_path / "keep.bin"
    target.write_bytes(b"kept")

    def fails(fh):
        fh.write(b"half")
        raise OSError(5, "Input/output error")

    with pytest.raises(WriteError, match=r"could not write '.*keep.bin': Input/output error; "
                       "nothing was replaced") as info:  # fmt: skip
        writing.replace(target, fails)
    assert info.value.reason == "Input/output error"
    assert target.read_bytes() == b"kept" and [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
    np.testing.assert_equal(
        writing.replace(tmp_path / "new.bin", lambda fh: fh.write(b"1")).read_bytes(), b"1"
    )

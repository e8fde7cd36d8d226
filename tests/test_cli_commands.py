"""The commands beyond ``train``'s defaults, run as a user runs them: recipes, sweep, model files
with predict/evaluate, gradcheck, progress, Ctrl-C and every bad-input path's status and message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from helpers import xpnet
from xpnet import Network

PNG = b"\x89PNG\r\n\x1a\n"


def test_recipes_lists_each_with_one_line():
    run = xpnet("recipes")
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["britz", "britz-gpu", "av-toy", "av-moons"]
    assert lines[0].endswith("(default)")


def test_av_toy_prints_the_seed(backend_name, make_backend):
    make_backend("float64")
    run = xpnet("train", "--recipe", "av-toy", "--backend", backend_name)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == [
        "Untrained output: 0.68334694 0.72697078 0.71257368",
        "Error before one manual step at lr 0.01: 0.11376",
        "Error at epoch 0 is 0.11553",
    ]
    assert (
        lines[3] == "Error at epoch 100 is 0.11082" and lines[11] == "Error at epoch 900 is 0.01190"
    )
    # the outputs of the last epoch's forward pass, before its update, as the seed prints them
    assert lines[12:16] == ["Output      Target", "0.91557790  1", "0.89643511  1", "0.18608711  0"]
    assert lines[16] == "Training accuracy: 1.000"


def test_a_recipe_only_sets_defaults():
    run = xpnet("train", "--recipe", "av-toy", "--epochs", "250", "--print-every", "50",
                "--lr", "0.2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    printed = [ln for ln in run.stdout.splitlines() if ln.startswith("Error at epoch")]
    assert [ln.split()[3] for ln in printed] == ["0", "50", "100", "150", "200"]


def test_train_writes_plots_and_a_model_that_predict_and_evaluate_read(tmp_path):
    pytest.importorskip("matplotlib")
    model, boundary, curve = tmp_path / "m.safetensors", tmp_path / "b.png", tmp_path / "l.png"
    run = xpnet("train", "--epochs", "400", "--quiet", "--save", str(model), "--plot",
                str(boundary), "--loss-plot", str(curve))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert boundary.read_bytes()[:8] == PNG and curve.read_bytes()[:8] == PNG
    assert f"Model written to {model}" in run.stdout

    inputs = tmp_path / "in.csv"
    inputs.write_text("x1,x2\n-1.0,0.5\n2.0,0.0\n")
    out = tmp_path / "out.csv"
    pred = xpnet("predict", "--model", str(model), "--input", str(inputs), "--output", str(out),
                 "--backend", "numpy")  # fmt: skip
    assert pred.returncode == 0, pred.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "prediction,p_0,p_1" and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    p = np.array([[float(c) for c in r.split(",")[1:]] for r in rows[1:]])
    np.testing.assert_allclose(p.sum(1), 1.0)
    to_stdout = xpnet("predict", "--model", str(model), "--input", str(inputs))
    assert to_stdout.stdout == out.read_text()

    ev = xpnet("evaluate", "--model", str(model), "--dataset", "moons")
    assert ev.returncode == 0, ev.stderr
    lines = ev.stdout.splitlines()
    assert lines[0] == "samples: 200" and lines[1].startswith("accuracy: 0.9")
    assert 0 < float(lines[2].split()[1]) < 0.5


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_and_evaluate_read_estimator_files(tmp_path, capsys):
    """An estimator's file serves predict and evaluate as a Network's does (export took them
    already): labels and class probabilities, or one column per output of a regressor."""
    from xpnet import cli, datasets
    from xpnet.estimators import MLPClassifier, MLPRegressor

    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    inputs = tmp_path / "in.csv"
    inputs.write_text("x1,x2\n-1.0,0.5\n2.0,0.0\n")
    clf, reg = tmp_path / "clf.safetensors", tmp_path / "reg.safetensors"
    MLPClassifier((8,), max_iter=300, random_state=0).fit(X, y).save(clf)
    MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(
        X, np.stack([X[:, 0], y], 1)).save(reg)  # fmt: skip
    assert cli.main(["predict", "--model", str(clf), "--input", str(inputs)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "prediction,p_0,p_1" and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert cli.main(["evaluate", "--model", str(clf), "--dataset", "moons"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "samples: 200" and float(lines[1].split()[1]) > 0.8, lines
    assert lines[2].startswith("loss: ") and 0 < float(lines[2].split()[1]) < 0.7
    assert cli.main(["predict", "--model", str(reg), "--input", str(inputs)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "prediction_0,prediction_1" and len(rows) == 3
    assert cli.main(["evaluate", "--model", str(clf), "--dataset", "iris"]) == 2
    err = capsys.readouterr().err  # 4 features against 2, or labels it never saw: one line
    assert err.startswith("xpnet: error: ") and err.count("\n") == 1, err
    assert cli.main(["train", "--resume", str(clf)]) == 2
    err = capsys.readouterr().err
    assert "--resume continues runs that xpnet train saved" in err and "MLPClassifier" in err


def test_model_trained_on_one_backend_predicts_on_another(tmp_path, backend_name, make_backend):
    make_backend("float64")
    model = tmp_path / "m.safetensors"
    assert xpnet("train", "--epochs", "200", "--quiet", "--save", str(model)).returncode == 0
    inputs = tmp_path / "in.csv"
    inputs.write_text("0.5,0.25\n1.5,-0.5\n")
    here = xpnet("predict", "--model", str(model), "--input", str(inputs), "--backend", "numpy")
    there = xpnet("predict", "--model", str(model), "--input", str(inputs), "--backend",
                  backend_name)  # fmt: skip
    assert there.returncode == 0, there.stderr
    a = np.array([r.split(",") for r in here.stdout.splitlines()[1:]], dtype=float)
    b = np.array([r.split(",") for r in there.stdout.splitlines()[1:]], dtype=float)
    np.testing.assert_allclose(b, a, rtol=1e-9)


def test_csv_training_with_string_labels_and_scaling(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3) * [1, 100, 0.01]
    names = np.where(X[:, 0] + X[:, 1] / 100 > 0, "yes", "no")
    data = tmp_path / "train.csv"
    data.write_text(
        "a,b,c,answer\n"
        + "".join(f"{a},{b},{c},{n}\n" for (a, b, c), n in zip(X, names, strict=True))
    )
    model = tmp_path / "m.safetensors"
    run = xpnet("train", "--dataset", f"csv:{data}", "--target", "answer", "--scale", "standard",
                "--hidden", "5", "--epochs", "500", "--quiet", "--save", str(model))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.splitlines()[0].split()[-1]) >= 0.9
    net = Network.load(model)
    assert net.classes_.tolist() == ["no", "yes"] and net.scale == "standard"
    ev = xpnet("evaluate", "--model", str(model), "--dataset", f"csv:{data}", "--target", "answer")
    assert ev.stdout.splitlines()[1] == f"accuracy: {net.score(X, names):.4f}"


def test_sweep_trains_one_model_per_size_and_draws_the_grid(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep.png"
    run = xpnet("sweep", "--hidden", "1,3,5", "--epochs", "300", "--plot", str(out))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["hidden", "final", "loss", "accuracy", "seconds"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["1", "3", "5"]
    assert out.read_bytes()[:8] == PNG


def test_gradcheck_passes_and_fails_by_tolerance():
    ok = xpnet("gradcheck", "--hidden", "3", "--activation", "sigmoid")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[1].split()[:3] == ["param", "shape", "checked"]
    assert [ln.split()[0] for ln in lines[2:6]] == ["W1", "b1", "W2", "b2"]
    assert lines[-1].startswith("PASS: largest error")
    strict = xpnet("gradcheck", "--tol", "1e-15")
    assert strict.returncode == 1 and strict.stdout.splitlines()[-1].startswith("FAIL")


def test_progress_lines_and_bar(tmp_path):
    lines = xpnet("train", "--epochs", "2001", "--progress", "lines").stdout.splitlines()
    assert lines[:2] == ["Loss after iteration 0: 0.432387", "Loss after iteration 1000: 0.068947"]
    assert lines[2].startswith("Loss after iteration 2000: 0.06")  # chaotic from here: see README
    assert lines[3].startswith("Training accuracy: ") and len(lines) == 4
    pytest.importorskip("rich")
    bar = xpnet("train", "--epochs", "2001", "--progress", "bar")
    assert bar.returncode == 0, bar.stderr
    assert "Loss after iteration 1000: 0.068947" in bar.stdout
    assert "passes/s" in bar.stdout and "pass 2001/2001" in bar.stdout


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_any_run_within_about_a_second_and_saves(tmp_path, signum, status,
                                                                backend_name, make_backend):  # fmt: skip
    """Whatever --print-every asks (here a line every 50,000,000 passes of a 100,000,000-pass
    run), a chunk of training lasts about a second at most: Ctrl-C or SIGTERM stops the run
    after it and the model trained so far is saved."""
    import time

    make_backend("float64")
    model = tmp_path / "m.safetensors"
    env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpnet", "train", "--backend", backend_name, "--epochs",
         "100000000", "--print-every", "50000000", "--progress", "lines", "--save", str(model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first chunk is done: training runs
        assert first.startswith("Loss after iteration 0:"), first
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert took < 6.0, f"{took:.1f} s from the signal to the end (saving included)"
    assert "xpnet: interrupted: training interrupted after" in err
    assert f"saved to {model}" in err
    passes = int(err.split("after ")[1].split()[0])
    net = Network.load(model)
    assert 0 < net.passes_done_ == passes < 100_000_000
    assert net.loss_passes_.tolist() == [0]  # the only printed pass so far


def test_diverging_run_saves_the_last_finite_parameters(tmp_path):
    model = tmp_path / "m.safetensors"
    run = xpnet("train", "--epochs", "3000", "--lr", "80", "--reg", "0", "--activation", "relu",
                "--print-every", "10", "--quiet", "--save", str(model))  # fmt: skip
    assert run.returncode == 3
    assert "the last good parameters were saved to" in run.stderr
    net = Network.load(model)
    assert all(np.isfinite(v).all() for v in net.params_.values())
    assert np.isfinite(net.loss_curve_).all()


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--recipe", "nope"], "unknown recipe 'nope'; valid recipes: britz, britz-gpu, av-toy, av-moons"),
    (["train", "--dataset", "mnist"], "unknown dataset 'mnist'; valid datasets (or csv:PATH, npy:X.npy,y.npy): moons"),
    (["train", "--dataset", "csv:/nonexistent.csv"], "CSV file '/nonexistent.csv' does not exist"),
    (["train", "--dataset", "npy:/nonexistent.npy,/y.npy"], "could not read '/nonexistent.npy,/y.npy' as two .npy files"),
    (["train", "--dataset", "npy:X.npy"], "npy: takes two files, the inputs and the labels: npy:X.npy,y.npy; got 'X.npy'"),
    (["train", "--scale", "log"], "unknown scale 'log'; valid scales: standard, minmax-global"),
    (["train", "--noise", "-1"], "--noise must be a number in [0, inf); got -1.0"),
    (["train", "--dataset", "iris", "--plot", "{tmp}/x.png"], "a decision boundary needs 2-D inputs; X has shape (150, 4)"),
    (["predict", "--model", "/nonexistent.safetensors", "--input", "x.csv"], "model file '/nonexistent.safetensors' does not exist"),
    (["evaluate", "--model", "/nonexistent.safetensors", "--dataset", "moons"], "model file '/nonexistent.safetensors' does not exist"),
    (["gradcheck", "--hidden", "x"], "--hidden must be positive integers"),
    (["gradcheck", "--tol", "-1"], "--tol must be a number in (0, inf); got -1.0"),
    (["sweep", "--hidden", ""], "--hidden must list at least one size"),
])  # fmt: skip
def test_bad_input_paths(args, message, tmp_path):
    if "--plot" in args:
        pytest.importorskip("matplotlib")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    short = ["--epochs", "5", "--quiet"] if args[0] in ("train", "sweep") else []
    run = xpnet(*args, *short)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.startswith(f"xpnet: error: {message}"), run.stderr
    assert run.stderr.count("\n") == 1


def test_bad_model_and_csv_files(tmp_path):
    model = tmp_path / "m.safetensors"
    assert xpnet("train", "--epochs", "5", "--quiet", "--save", str(model)).returncode == 0
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(model.read_bytes()[:-200])
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("x1,x2\n1,2\n3,oops\n")
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3\n")
    cases = [
        (["predict", "--model", str(corrupt), "--input", str(wide)], "is not a readable xpnet model file"),
        (["predict", "--model", str(model), "--input", str(bad_csv)], "row 3, column 'x2': 'oops' is not a finite number"),
        (["predict", "--model", str(model), "--input", str(wide)], "X has 3 features; the model expects 2"),
        (["evaluate", "--model", str(model), "--dataset", "iris"], "X has 4 features; the model expects 2"),
        (["train", "--resume", str(model), "--devices", "2"], "--devices is the device count of data-parallel training (--data-parallel); leave out --devices"),
    ]  # fmt: skip
    for args, message in cases:
        run = xpnet(*args)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("xpnet: error: ") and message in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1


def test_metrics_name_the_recipe(tmp_path):
    out = tmp_path / "m.json"
    assert (
        xpnet("train", "--recipe", "av-toy", "--quiet", "--metrics-out", str(out)).returncode == 0
    )
    m = json.loads(out.read_text())
    assert m["recipe"] == "av-toy" and m["dataset"] == "toy" and len(m["losses"]) == 1000


@pytest.mark.parametrize("extra", [["--optimizer", "adam", "--lr", "0.01"],
                                   ["--optimizer", "nesterov", "--lr", "0.05", "--batch-size", "32",
                                    "--clip-norm", "1.0", "--schedule", "invscaling"]],
                         ids=["adam", "nesterov-mini-batch"])  # fmt: skip
def test_resume_of_an_optimizer_run_equals_an_uninterrupted_one(tmp_path, backend_name,
                                                                make_backend, extra):  # fmt: skip
    """The optimizer's state (and the batch order) go into the model file: 40 + 40 epochs
    resumed equal 80 epochs in one go, bit for bit on NumPy."""
    make_backend("float64")
    common = ["--backend", backend_name, "--hidden", "6", "--reduction", "mean", *extra]
    whole = tmp_path / "whole.safetensors"
    run = xpnet("train", *common, "--epochs", "80", "--quiet", "--save", str(whole))
    assert run.returncode == 0, run.stderr
    cut = tmp_path / "cut.safetensors"
    cut_run = xpnet("train", *common, "--epochs", "40", "--quiet", "--save", str(cut))
    assert cut_run.returncode == 0, cut_run.stderr
    more = xpnet("train", "--resume", str(cut), "--epochs", "80", "--print-every", "20",
                 "--backend", backend_name, "--save", str(cut))  # fmt: skip
    assert more.returncode == 0, more.stderr
    assert more.stdout.splitlines()[0].startswith("Loss after iteration 40: ")
    want, got = Network.load(whole), Network.load(cut)
    assert got.passes_done_ == 80 and got.optimizer_.config == want.optimizer_.config
    for k, v in want.params_.items():
        if backend_name == "numpy":
            np.testing.assert_array_equal(got.params_[k], v)
        else:
            np.testing.assert_allclose(got.params_[k], v, rtol=1e-12, atol=1e-15)


def test_optimizer_options_reach_the_optimizer(tmp_path):
    model = tmp_path / "m.safetensors"
    run = xpnet("train", "--optimizer", "adamw", "--lr", "0.02", "--weight-decay", "0.1",
                "--clip-norm", "2", "--schedule", "invscaling", "--batch-size", "50",
                "--epochs", "3", "--quiet", "--save", str(model))  # fmt: skip
    assert run.returncode == 0, run.stderr
    from xpnet import optim

    want = optim.adamw(optim.inverse_scaling(0.02), weight_decay=0.1, clip_norm=2.0)
    net = Network.load(model)
    assert net.plan_.batch_size == 50
    assert net.optimizer_.config == want.config


def test_a_model_that_cannot_be_written_at_the_end_is_rescued(tmp_path, monkeypatch, capsys):
    """The folder was fine when training began; at the end the disk is full: the model goes to
    a file in the temporary folder, which the one-line error names."""
    import re
    from pathlib import Path

    from xpnet import cli, persist

    target, real = tmp_path / "m.safetensors", persist.write

    def disk_full(path, *args, **kwargs):
        if Path(path) == target:
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(persist, "write", disk_full)
    status = cli.main(["train", "--epochs", "5", "--quiet", "--save", str(target)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"xpnet: error: could not write '{target}' (No space left on device)")
    rescued = Path(re.search(r"written to '([^']+)' instead", err).group(1))
    try:
        assert Network.load(rescued).passes_done_ == 5 and not target.exists()
    finally:
        rescued.unlink()


def test_a_diverged_run_never_replaces_a_file(tmp_path):
    keep = tmp_path / "keep.safetensors"
    assert xpnet("train", "--epochs", "50", "--quiet", "--save", str(keep)).returncode == 0
    good = keep.read_bytes()
    run = xpnet("train", "--epochs", "3000", "--lr", "80", "--reg", "0", "--activation", "relu",
                "--quiet", "--save", str(keep))  # fmt: skip
    assert run.returncode == 3 and run.stderr.count("\n") == 1
    beside = tmp_path / "keep.diverged.safetensors"
    assert f"the last good parameters were saved to {beside}" in run.stderr
    assert keep.read_bytes() == good  # the good model is untouched
    net = Network.load(beside)
    assert all(np.isfinite(v).all() for v in net.params_.values())


def test_model_files_follow_the_umask(tmp_path):
    import stat

    path = tmp_path / "m.safetensors"
    old = os.umask(0o022)
    try:
        Network((2,)).fit([[0.0], [1.0]], [0, 1], epochs=1).save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_resume_refuses_what_it_cannot_honour_and_writes_only_where_asked(tmp_path):
    run_file = tmp_path / "run.safetensors"
    assert xpnet("train", "--epochs", "20", "--quiet", "--save", str(run_file)).returncode == 0
    before = run_file.read_bytes()
    bad = xpnet(
        "train", "--resume", str(run_file), "--lr", "0.5", "--hidden", "7", "--epochs", "40"
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "cannot change --lr, --hidden (leave them out, or train a new run)" in bad.stderr
    more = xpnet("train", "--resume", str(run_file), "--epochs", "40", "--quiet")
    assert more.returncode == 0, more.stderr
    assert run_file.read_bytes() == before  # no --save: the file it resumed is not rewritten
    out = tmp_path / "more.safetensors"
    again = xpnet(
        "train", "--resume", str(run_file), "--epochs", "40", "--quiet", "--save", str(out)
    )
    assert again.returncode == 0 and Network.load(out).passes_done_ == 40


@pytest.mark.parametrize(("dataset", "accuracy"), [("iris", 0.95), ("breast-cancer", 0.95),
                                                   ("digits", 0.75)])  # fmt: skip
def test_a_data_set_other_than_the_recipes_gets_settings_that_train_it(dataset, accuracy):
    """The seed's unscaled inputs and summed gradient suit its moons only: another data set gets
    standard scaling, the mean loss and lr 0.1 (reached chance accuracy before)."""
    run = xpnet("train", "--dataset", dataset, "--epochs", "3000", "--quiet")
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.split("Training accuracy: ")[1].split()[0]) >= accuracy
    kept = xpnet("train", "--dataset", dataset, "--epochs", "5", "--quiet", "--reduction", "sum",
                 "--scale", "none", "--lr", "0.01", "--metrics-out", os.devnull)  # fmt: skip
    assert kept.returncode == 0  # what is given on the command line stays as given


def test_data_that_overflows_when_scaled_is_refused_by_column(tmp_path):
    data = tmp_path / "big.csv"
    data.write_text("a,b,label\n1,1e308,0\n2,-1e308,1\n3,1e308,0\n4,5,1\n")
    run = xpnet("train", "--dataset", f"csv:{data}", "--scale", "standard", "--epochs", "5")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "X column 1 cannot be scaled (standard): its values overflow" in run.stderr
    model = tmp_path / "m.safetensors"
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    Network((3,), scale="standard").fit(X, [0, 1, 0, 1], epochs=5).save(model)
    far = tmp_path / "far.csv"
    far.write_text("1e308,-1e308\n")
    pred = xpnet("predict", "--model", str(model), "--input", str(far))  # scaled: ~1e308, finite
    assert pred.returncode == 2 and pred.stdout == "" and pred.stderr.count("\n") == 1
    assert "the model's outputs are NaN or infinite (first for row 0)" in pred.stderr
    farther = tmp_path / "farther.csv"
    farther.write_text("0,1.7e308\n")  # column 1's factor is 0.71: beyond float64 when scaled
    ev = xpnet("predict", "--model", str(model), "--input", str(farther))
    assert ev.returncode == 2 and "X column 1 overflows when scaled (row 0: 1.7e+308)" in ev.stderr


def test_sweep_reports_each_model_as_asked():
    """The table on standard output; each model's log lines (--print-every, --progress) on
    standard error; --quiet leaves only the table."""
    lines = xpnet("sweep", "--hidden", "1,3", "--epochs", "300", "--print-every", "100",
                  "--progress", "lines")  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    assert [ln.split()[0] for ln in lines.stdout.splitlines()] == ["hidden", "1", "3"]
    assert [ln.rsplit(": ", 1)[0] for ln in lines.stderr.splitlines()] == [
        f"hidden {h}: Loss after iteration {i}" for h in (1, 3) for i in (0, 100, 200)
    ]
    quiet = xpnet("sweep", "--hidden", "1,3", "--epochs", "300", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""

    def table(out):  # all but the seconds
        return [ln.split()[:-1] for ln in out.splitlines()]

    assert table(quiet.stdout) == table(lines.stdout)

"""Every bad input, once from the Python API and once from the command line.

Each row: the input, the xpnet error class and message from the API, and the CLI arguments that
feed the same mistake with the message printed on one line and exit status 2. ``{csv:NAME}`` in
CLI arguments is replaced by a file from :data:`CSV`. Rows without CLI arguments cannot be written
on the command line (the CLI builds those arrays itself); the reason is given in the row.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from helpers import xpnet
from xpnet import Network, backends, datasets, validation
from xpnet.errors import BackendUnavailableError, ConfigError, DataError, XpnetError

X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
Y = np.array([0, 1, 1, 0])

CSV = {
    "nan": "a,b,c\n1,2,0\n3,nan,1\n",
    "inf": "a,b,c\n1,-inf,0\n3,4,1\n",
    "text": "a,b,c\n1,2,0\n3,abc,1\n",
    "missing": "a,b,c\n1,2,0\n3,,1\n",
    "ragged": "a,b,c\n1,2,0\n3,1\n",
    "empty": "a,b,c\n",
    "one_class": "a,b,c\n1,2,0\n3,4,0\n",
    "three_features": "1,2,3\n",
    "continuous": "a,b,c\n1,2,0.5\n3,4,1.7\n",
    "text_labels": "a,b,c\n1,2,yes\n3,4,no\n",
}


TMP = tempfile.gettempdir()  # where a refused model file would have gone


def _fit(**kw):
    def call():
        Network(**kw.pop("net", {})).fit(kw.pop("X", X), kw.pop("y", Y), **{"epochs": 2, **kw})

    return call


ROWS = [
    # (name, api call, error class, API message, CLI args or reason, CLI message)
    ("X of rank 1", _fit(X=np.zeros(4)), DataError, "X must be 2-D", None, "the CLI reads 2-D tables"),
    ("X of rank 3", _fit(X=np.zeros((4, 2, 2))), DataError, "X must be 2-D", None, "the CLI reads 2-D tables"),
    ("rows of unequal length", lambda: datasets.load("csv:{ragged}"), DataError, "row 3 has 2 cells",
     ["train", "--dataset", "csv:{ragged}"], "row 3 has 2 cells; the first row has 3"),
    ("mismatched sample counts", _fit(y=Y[:3]), DataError, "X has 4 samples but y has 3", None,
     "X and y come from one file on the CLI"),
    ("wrong feature count", lambda: Network((2,)).fit(X, Y, epochs=1).predict(np.zeros((2, 3))),
     DataError, "X has 3 features; the model expects 2",
     ["predict", "--model", "{model}", "--input", "{three_features}"], "X has 3 features; the model expects 2"),
    ("empty data", _fit(X=np.zeros((0, 2)), y=np.zeros(0)), DataError, "X is empty",
     ["train", "--dataset", "csv:{empty}"], "has a header but no data rows"),
    ("NaN in inputs", _fit(X=np.where(X == 1, np.nan, 0)), DataError, "NaN or infinity",
     ["train", "--dataset", "csv:{nan}"], "row 3, column 'b': 'nan' is not a finite number"),
    ("infinity in inputs", _fit(X=np.full((4, 2), np.inf)), DataError, "NaN or infinity",
     ["train", "--dataset", "csv:{inf}"], "row 2, column 'b': '-inf' is not a finite number"),
    ("non-numeric cell", lambda: datasets.load("csv:{text}"), DataError, "row 3, column 'b': 'abc'",
     ["train", "--dataset", "csv:{text}"], "row 3, column 'b': 'abc' is not a finite number"),
    ("missing cell", lambda: datasets.load("csv:{missing}"), DataError, "row 3, column 'b': missing value",
     ["train", "--dataset", "csv:{missing}"], "row 3, column 'b': missing value"),
    ("labels of one class", _fit(y=np.zeros(4)), DataError, "only one class",
     ["train", "--dataset", "csv:{one_class}"], "y has only one class"),
    ("labels out of range", lambda: Network((2,)).fit(X, Y, epochs=1).evaluate(X, Y + 5), DataError,
     r"labels \[5, 6\] are not among the model's classes \[0, 1\]",
     ["evaluate", "--model", "{model}", "--dataset", "csv:{one_class}", "--target", "a"],
     "labels [3] are not among the model's classes [0, 1]"),
    ("NaN labels", _fit(y=np.array([0.0, 1.0, np.nan, 0.0])), DataError, "y holds NaN", None,
     "CSV labels are text; 'nan' is a class name there"),
    ("sample weights of another length", _fit(sample_weight=np.ones(3)), DataError,
     "X has 4 samples but sample_weight has 3", None, "the CLI trains without sample weights"),
    ("negative sample weights", _fit(sample_weight=np.array([1.0, -1, 1, 1])), DataError,
     r"sample_weight must not be negative \(first at 1\)", None, "the CLI trains without sample weights"),
    ("NaN sample weights", _fit(sample_weight=np.array([1.0, 1, np.nan, 1])), DataError,
     r"sample_weight holds NaN or infinity \(first at 2\)", None, "the CLI trains without sample weights"),
    ("sample weights all zero", _fit(sample_weight=np.zeros(4)), DataError, "zero everywhere", None,
     "the CLI trains without sample weights"),
    ("2-D sample weights", _fit(sample_weight=np.ones((4, 1))), DataError, "sample_weight must be 1-D",
     None, "the CLI trains without sample weights"),
    ("text sample weights", _fit(sample_weight=["a", "b", "c", "d"]), DataError,
     "sample_weight must hold numbers", None, "the CLI trains without sample weights"),
    ("unknown dtype", lambda: Network(dtype="float16"), ConfigError, "valid dtypes: float32, float64",
     ["train", "--dtype", "float16"], "unknown dtype 'float16'; valid dtypes: float32, float64"),
    ("learning rate 0", _fit(lr=0.0), ConfigError, r"lr must be a number in \(0, inf\); got 0.0",
     ["train", "--lr", "0"], "--lr must be a number in (0, inf); got 0.0"),
    ("negative learning rate", _fit(lr=-1.0), ConfigError, r"lr must be a number in \(0, inf\)",
     ["train", "--lr", "-1"], "--lr must be a number in (0, inf); got -1.0"),
    ("learning rate not a number", _fit(lr="fast"), ConfigError, r"lr must be a number in \(0, inf\); got 'fast'",
     ["train", "--lr", "fast"], "--lr must be a number in (0, inf); got 'fast'"),
    ("epochs 0", _fit(epochs=0), ConfigError, r"epochs must be an integer in \[1, inf\); got 0",
     ["train", "--epochs", "0"], "--epochs must be an integer in [1, inf); got 0"),
    ("batch size 0", _fit(batch_size=0), ConfigError, r"batch_size must be an integer in \[1, inf\); got 0",
     ["train", "--batch-size", "0"], "--batch-size must be an integer in [1, inf); got 0"),
    ("momentum 1", lambda: __import__("xpnet").optim.sgd(0.1, momentum=1.0), ConfigError,
     r"momentum must be a number in \[0, 1\); got 1.0",
     ["train", "--optimizer", "momentum", "--momentum", "1"], "--momentum must be a number in [0, 1); got 1.0"),
    ("hidden size 0", lambda: Network((0,)), ConfigError, "hidden must be positive integers",
     ["train", "--hidden", "0"], "--hidden must be positive integers, e.g. 3 or 10,10 ('' for no hidden layer); got '0'"),
    ("an empty item in hidden sizes", lambda: Network("3,,3"), ConfigError, "hidden must be positive integers",
     ["train", "--hidden", "3,,3"], "--hidden must be positive integers, e.g. 3 or 10,10 ('' for no hidden layer); got '3,,3'"),
    ("a trailing comma in hidden sizes", lambda: Network("3,"), ConfigError, "got '3,'",
     ["train", "--hidden", "3,"], "got '3,'"),
    ("unknown activation", lambda: Network(activation="swish"), ConfigError,
     "unknown activation 'swish'; valid activations", ["train", "--activation", "swish"],
     "unknown activation 'swish'; valid activations"),
    ("unknown loss", lambda: Network(loss="hinge"), ConfigError, "unknown loss 'hinge'",
     ["train", "--loss", "hinge"], "unknown loss 'hinge'"),
    ("unknown init", lambda: Network(init="zeros"), ConfigError, "unknown init 'zeros'",
     ["train", "--init", "zeros"], "unknown init 'zeros'"),
    ("unknown reduction", _fit(reduction="max"), ConfigError, "unknown reduction 'max'",
     ["train", "--reduction", "max"], "unknown reduction 'max'"),
    ("unknown optimizer", _fit(optimizer="rmsprop"), ConfigError,
     "unknown optimizer 'rmsprop'; valid optimizers: sgd, momentum, nesterov, adam, adamw",
     ["train", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; valid optimizers: sgd, momentum"),
    ("unknown schedule", lambda: __import__("xpnet").optim.build("sgd", 0.1, schedule_name="warm"),
     ConfigError, "unknown schedule 'warm'; valid schedules: constant, invscaling, step, cosine",
     ["train", "--schedule", "warm"], "unknown schedule 'warm'; valid schedules"),
    ("unknown solver", lambda: __import__("xpnet").MLPClassifier(solver="newton").fit(X, Y),
     ConfigError, "unknown solver 'newton'; valid solvers: lbfgs, sgd, adam, adamw", None,
     "solver is the estimators' name; the CLI's --optimizer has its own row"),
    ("continuous labels", _fit(y=np.array([0.5, 1.7, 0.5, 1.7])), DataError,
     r"y holds non-integer numbers \(0.5, 1.7, ...\) where class labels are expected; for "
     r"continuous targets use a regression loss \(huber, absolute_error, quantile\) or "
     r"MLPRegressor", ["train", "--dataset", "csv:{continuous}"],
     "y holds non-integer numbers (0.5, 1.7, ...) where class labels are expected"),
    ("a regressor's loss a Network lacks", lambda: Network(loss="mse"), ConfigError,
     "loss 'mse' is MLPRegressor's; a Network regresses with absolute_error, huber, quantile",
     ["train", "--loss", "mse"], "--loss 'mse' is MLPRegressor's; a Network regresses with"),
    ("a regression loss with class weights", lambda: Network(loss="huber", class_weight="balanced"),
     ConfigError, "class_weight weighs classes, and a regression loss has none; leave out "
     "class_weight", ["train", "--loss", "huber", "--class-weight", "balanced"],
     "--class-weight weighs classes, and a regression --loss has none; leave out --class-weight"),
    ("delta without huber", lambda: Network(loss="quantile", delta=0.5), ConfigError,
     "delta applies to loss 'huber' only; leave out delta", ["train", "--delta", "0.5"],
     "--delta applies to --loss 'huber' only; leave out --delta"),
    ("quantile without its loss", lambda: Network(loss="huber", quantile=0.9), ConfigError,
     "quantile applies to loss 'quantile' only; leave out quantile",
     ["train", "--loss", "huber", "--quantile", "0.9"],
     "--quantile applies to --loss 'quantile' only; leave out --quantile"),
    ("a quantile outside (0, 1)", lambda: Network(loss="quantile", quantile=1.0), ConfigError,
     r"quantile must be a number in \(0, 1\); got 1.0", ["train", "--loss", "quantile",
     "--quantile", "1"], "--quantile must be a number in (0, 1); got 1.0"),
    ("huber's delta not positive", lambda: Network(loss="huber", delta=0), ConfigError,
     r"delta must be a number in \(0, inf\); got 0", ["train", "--loss", "huber", "--delta",
     "-1"], "--delta must be a number in (0, inf); got -1.0"),
    ("class labels as regression targets", _fit(y=np.array(["a", "b", "a", "b"]), net={"loss": "huber"}),
     DataError, r"y must hold numbers \(regression targets\); got dtype <U1; class labels need "
     r"a classification loss", ["train", "--dataset", "csv:{text_labels}", "--loss", "huber"],
     "y must hold numbers (regression targets); got dtype"),
    ("regression targets holding NaN", _fit(y=np.array([0.5, np.nan, 1.0, 2.0]),
                                            net={"loss": "huber"}),
     DataError, r"y holds NaN or infinity \(first in row 1\)", None,
     "the CSV reader refuses a label it cannot read as a number: its own rows"),
    ("unknown backend", lambda: backends.select("tensorflow"), ConfigError, "unknown backend 'tensorflow'",
     ["train", "--backend", "tensorflow"], "unknown backend 'tensorflow'; valid backends"),
    ("unknown dataset", lambda: datasets.load("mnist"), ConfigError, "unknown dataset 'mnist'",
     ["train", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    ("missing CSV file", lambda: datasets.load("csv:/no/such.csv"), DataError, "does not exist",
     ["train", "--dataset", "csv:/no/such.csv"], "CSV file '/no/such.csv' does not exist"),
    ("numpy on a GPU", lambda: backends.select("numpy", "gpu"), BackendUnavailableError,
     "runs only on the CPU", ["train", "--device", "gpu"], "the numpy backend runs only on the CPU"),
    ("hidden sizes None", lambda: Network(None), ConfigError, "hidden must be positive integers.*; got None",
     None, "the CLI's --hidden is text, checked in its own rows"),
    ("a text file as npy: data", lambda: datasets.load("npy:{nan},{nan}"), DataError,
     r"not a \.npy file \(numpy\.save writes them\)", ["train", "--dataset", "npy:{nan},{nan}"],
     "not a .npy file (numpy.save writes them)"),
    ("a folder as a model", lambda: Network.load("{folder}"), __import__("xpnet").ModelFileError,
     "is a folder, not a model file", ["predict", "--model", "{folder}", "--input", "{three_features}"],
     "is a folder, not a model file"),
    ("a text file as a model", lambda: Network.load("{nan}"), __import__("xpnet").ModelFileError,
     "is not a readable xpnet model file", ["evaluate", "--model", "{nan}", "--dataset", "moons"],
     "is not a readable xpnet model file"),
    ("a resume that would change settings", None, None, None,
     ["train", "--resume", "{model}", "--lr", "0.5"], "cannot change --lr (leave them out, or train a new run)"),
    # outputs: checked before the first pass, so that nothing trained is lost to them
    ("save into a missing folder", lambda: validation.output("--save", "/no/such/dir/m.safetensors"),
     ConfigError, "the folder '/no/such/dir' does not exist", ["train", "--save", "/no/such/dir/m.safetensors"],
     "--save '/no/such/dir/m.safetensors': the folder '/no/such/dir' does not exist"),
    ("a model file named as another format", lambda: Network((2,)).fit(X, Y, epochs=1).save(f"{TMP}/run.npz"),
     ConfigError, "a model file is a safetensors file; name it '.*run.safetensors'",
     ["train", "--save", "{folder}/run.npz"], "a model file is a safetensors file; name it"),
    ("a checkpoint named as another format", _fit(checkpoint=f"{TMP}/ck.pt", checkpoint_every=1), ConfigError,
     "checkpoint '.*ck.pt': a model file is a safetensors file; name it '.*ck.safetensors'", None,
     "the CLI's checkpoint is --save's file"),
    ("save onto a folder", lambda: validation.output("--save", "/tmp"), ConfigError,
     "'/tmp' is a folder; name a file in it", ["train", "--save", "{folder}"], "is a folder; name a file in it"),
    ("save to an empty name", lambda: validation.output("--save", ""), ConfigError,
     "--save must name a file; got ''", ["train", "--save", ""], "--save must name a file; got ''"),
    ("plot in a format matplotlib cannot write", lambda: validation.output("--plot", "p.txt", ["png"]),
     ConfigError, "unsupported format 'txt'", ["train", "--plot", "{folder}/p.txt"], "unsupported format 'txt'; name a file ending in one of"),
    ("loss plot into a missing folder", lambda: validation.output("--loss-plot", "/no/dir/l.png"),
     ConfigError, "does not exist", ["train", "--loss-plot", "/no/dir/l.png"], "--loss-plot '/no/dir/l.png': the folder '/no/dir' does not exist"),
    ("metrics into a missing folder", lambda: validation.output("--metrics-out", "/no/dir/m.json"),
     ConfigError, "does not exist", ["train", "--metrics-out", "/no/dir/m.json"], "--metrics-out '/no/dir/m.json': the folder '/no/dir' does not exist"),
    ("sweep plot into a missing folder", lambda: validation.output("--plot", "/no/dir/s.png"),
     ConfigError, "does not exist", ["sweep", "--plot", "/no/dir/s.png"], "--plot '/no/dir/s.png': the folder '/no/dir' does not exist"),
    ("predictions onto a folder", lambda: validation.output("--output", "/tmp"), ConfigError,
     "is a folder", ["predict", "--model", "{model}", "--input", "{three_features}", "--output", "{folder}"],
     "is a folder; name a file in it"),
]  # fmt: skip


@pytest.fixture
def files(tmp_path):
    """``{name: path}`` for every CSV text and a saved two-class ``model``."""
    paths = {}
    for name, text in CSV.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    paths["model"] = tmp_path / "model.safetensors"
    Network((2,)).fit(X, Y, epochs=1).save(paths["model"])
    paths["folder"] = tmp_path
    return paths


def _fill(text, files):
    for key, path in files.items():
        text = text.replace("{" + key + "}", str(path))
    return text


API_ROWS = [r for r in ROWS if r[1] is not None]


@pytest.mark.parametrize(
    ("name", "call", "error", "api_message"), [r[:4] for r in API_ROWS],
    ids=[r[0] for r in API_ROWS],
)  # fmt: skip
def test_python_api(name, call, error, api_message, files, monkeypatch):
    original, load = datasets.load, Network.load
    monkeypatch.setattr(datasets, "load", lambda name, **kw: original(_fill(name, files), **kw))
    monkeypatch.setattr(Network, "load", lambda path, **kw: load(_fill(str(path), files), **kw))
    with pytest.raises(error, match=api_message) as info:
        call()
    assert isinstance(info.value, XpnetError)
    assert isinstance(info.value, (ValueError, RuntimeError))


CLI_ROWS = [r for r in ROWS if isinstance(r[4], list)]


@pytest.mark.parametrize(
    ("args", "message"), [(r[4], r[5]) for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS]
)
def test_command_line(args, message, files):
    filled = [_fill(a, files) for a in args]
    short = (
        ["--epochs", "2", "--quiet"] if filled[0] == "train" and "--epochs" not in filled else []
    )
    run = xpnet(*filled, *short)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.startswith("xpnet") and message in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1
    assert run.stdout == ""
    assert sorted(p.name for p in files["folder"].iterdir()) == sorted(
        p.name for p in files.values() if p != files["folder"]
    )  # nothing written


def test_every_row_without_cli_says_why():
    for row in ROWS:
        assert isinstance(row[4], list) or (isinstance(row[5], str) and len(row[5]) > 10), row[0]
        assert row[1] is not None or isinstance(row[4], list), row[0]  # one of the two at least


# -- xpnet's switches in the environment ($XPNET_REPLAY, $XPNET_SCRATCH: validation.switch) -------
SWITCHES = [("XPNET_REPLAY", "off"), ("XPNET_REPLAY", "yes"), ("XPNET_SCRATCH", "yes")]


@pytest.mark.parametrize("variable, value", SWITCHES)
def test_a_bad_switch_is_a_clear_error(monkeypatch, variable, value):
    from xpnet import replay

    monkeypatch.setenv(variable, value)
    X, y = datasets.load("moons", n_samples=50, noise=0.2, seed=0)
    with pytest.raises(ConfigError, match=rf"unknown \${variable} '{value}'; valid \${variable} "
                       r"values: 0, 1"):  # fmt: skip
        Network((3,), backend="numpy").fit(X, y, epochs=replay.FROM, interruptible=False)


@pytest.mark.parametrize("variable, value", SWITCHES)
def test_a_bad_switch_on_the_command_line_is_one_line_and_status_2(variable, value):
    run = xpnet("train", "--epochs", "50", env={variable: value})
    assert run.returncode == 2
    assert run.stderr == (
        f"xpnet: error: unknown ${variable} '{value}'; valid ${variable} values: 0, 1\n"
    ), run.stderr
    assert run.stdout == ""

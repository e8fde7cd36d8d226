"""The training plan (:mod:`xpnet.settings`): one table of settings, the command line generated
from it, and one wording for every rule between settings on every front-end."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from xpnet import cli, datasets, optim, settings
from xpnet.errors import ConfigError
from xpnet.settings import SETTINGS, Plan

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def moons():
    return datasets.load("moons", n_samples=60, noise=0.2, seed=0)


def _train_parser() -> argparse.ArgumentParser:
    parser = cli._build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_the_tables_the_settings_choose_from_are_the_codes_own():
    from xpnet.activations import ACTIVATIONS
    from xpnet.backends import BACKENDS
    from xpnet.init import INITS

    assert SETTINGS["activation"].choices == tuple(ACTIVATIONS)
    assert SETTINGS["init"].choices == tuple(INITS)  # auto and sklearn included
    assert SETTINGS["optimizer"].choices == (*optim.OPTIMIZERS, "lbfgs")
    assert SETTINGS["schedule"].choices == optim.SCHEDULE_NAMES
    assert SETTINGS["backend"].choices == tuple(BACKENDS)
    assert {f.name for f in dataclasses.fields(Plan)} == set(settings.names("training"))


CHOICES = [(name, choice) for name, s in SETTINGS.items() if s.cli == "value"
           for choice in s.choices]  # fmt: skip


@pytest.mark.parametrize(("name", "choice"), CHOICES)
def test_every_choice_is_accepted_by_the_parser_and_listed_in_the_help(name, choice):
    parser = _train_parser()
    option = SETTINGS[name].option
    parsed = parser.parse_args([option, choice])
    assert getattr(parsed, name) == choice
    action = next(a for a in parser._actions if option in a.option_strings)
    assert choice in action.help.split("one of: ")[1], (option, choice)
    shown = " ".join(parser.format_help().split())  # as printed, wrapped lines joined
    assert " ".join(action.help.replace("%%", "%").split()) in shown.replace("- ", "-")


def test_every_setting_on_the_command_line_is_an_option_of_train():
    parser = _train_parser()
    options = {o for a in parser._actions for o in a.option_strings}
    for s in SETTINGS.values():
        assert (s.option in options) == (s.cli != "none"), s.name
    refused = parser.parse_args(["--lr", "-1"]) if False else None  # parsed in test_cli too
    assert refused is None


def test_the_help_says_what_each_option_defaults_to():
    text = " ".join(_train_parser().format_help().split())
    assert "--lr LR learning rate (epsilon); default: 0.1 for sgd" in text
    assert "(default: the recipe's, 0.01)" in text  # seed 000's rate, the default recipe's
    assert "--init INIT initial weights" in text and "auto, britz, uniform" in text


def test_schedule_step_trains_with_its_step_size(tmp_path):
    from xpnet import Network

    model = tmp_path / "m.safetensors"
    status = cli.main(["train", "--schedule", "step", "--step-size", "3", "--gamma", "0.5",
                       "--epochs", "10", "--quiet", "--save", str(model)])  # fmt: skip
    assert status == 0
    net = Network.load(model)
    assert (net.plan_.schedule, net.plan_.step_size, net.plan_.gamma) == ("step", 3, 0.5)
    assert net.optimizer_.config == ("scale_by_learning_rate", ("step", 0.01, 3, 0.5))
    rate = optim.SCHEDULES["step"](0.01, 3, 0.5).fn
    assert [float(rate(np, np.float64(t))) for t in (0, 2, 3, 6)] == [0.01, 0.01, 0.005, 0.0025]


def test_plan_checks_each_setting_and_fills_the_defaults():
    plan = settings.plan(optimizer="adam", batch_size=32)
    assert plan == Plan(optimizer="adam", batch_size=32) and plan.rate == 0.001
    assert settings.plan().rate == 0.1 and settings.plan(lr=0.5).rate == 0.5
    with pytest.raises(ConfigError, match=r"^--lr must be a number in \(0, inf\); got -1.0$"):
        settings.plan(settings.spelled, lr=-1.0)
    with pytest.raises(ConfigError, match="unknown training settings: epoch"):
        settings.plan(epoch=3)
    assert settings.plan(stream=False).stream is False  # a switch at its default asks nothing
    assert Plan.from_dict(plan.to_dict()) == plan


def _cli(capsys, *args):
    status = cli.main(["train", "--epochs", "2", "--quiet", *args])
    return status, capsys.readouterr().err.strip()


def _network(moons, init, fit):
    from xpnet import Network

    X, y = moons
    Network((3,), **init).fit(X, y, epochs=2, **fit)


def _estimator(moons, params):
    from xpnet import MLPClassifier

    X, y = moons
    MLPClassifier((3,), max_iter=2, **params).fit(X, y)


LBFGS = "{optimizer} 'lbfgs' searches its own step lengths on the whole data set, on one device"
# (what, the message as a template of spellings, CLI args, Network (init, fit), estimator params)
COMBINATIONS = [
    ("lbfgs with data-parallel training", LBFGS + "; leave out {data_parallel}",
     ["--optimizer", "lbfgs", "--backend", "jax", "--data-parallel"],
     ({"backend": "jax", "data_parallel": True}, {"optimizer": "lbfgs"}),
     {"solver": "lbfgs", "backend": "jax", "data_parallel": True}),
    ("lbfgs with streaming", LBFGS + "; leave out {stream}",
     ["--optimizer", "lbfgs", "--stream"], ({}, {"optimizer": "lbfgs", "stream": True}),
     {"solver": "lbfgs", "stream": True}),
    ("devices without data-parallel training",
     "{devices} is the device count of data-parallel training ({data_parallel}); leave out "
     "{devices}", ["--devices", "2"], ({"devices": 2}, {}), {"devices": 2}),
    ("checkpoint_every without a file",
     "{checkpoint_every} needs {checkpoint} (the model file it writes)",
     ["--checkpoint-every", "5"], ({}, {"checkpoint_every": 5}), {"checkpoint_every": 5}),
    # scikit-learn's contract: momentum is its sgd's; its schedules have no step decay
    ("momentum with plain sgd",
     "{momentum} applies to {optimizer} 'momentum' or 'nesterov' only; leave out {momentum}",
     ["--momentum", "0.5"], ({}, {"momentum": 0.5}), None),
    ("a step schedule without its step size",
     "{schedule} 'step' needs {step_size} (the steps between its decays)",
     ["--schedule", "step"], ({}, {"schedule": "step"}), None),
    ("weight decay with adam", "{weight_decay} applies to {optimizer} 'adamw' only; leave out "
     "{weight_decay}", ["--optimizer", "adam", "--weight-decay", "0.1"],
     ({}, {"optimizer": "adam", "weight_decay": 0.1}), None),
    ("warm-up without the cosine schedule", "{warmup} applies to {schedule} 'cosine' only; "
     "leave out {warmup}", ["--warmup", "5"], ({}, {"warmup": 5}), {"warmup": 5}),
]  # fmt: skip


class _Spelled(dict):
    def __init__(self, spell):
        super().__init__()
        self.spell = spell

    def __missing__(self, key):
        return self.spell(key)


CASES = [pytest.param(front_end, *c, id=f"{c[0]}-{front_end}") for c in COMBINATIONS
         for front_end in ("cli", "network", "estimator")
         if front_end != "estimator" or c[4] is not None]  # fmt: skip


@pytest.mark.parametrize(("front_end", "what", "message", "args", "network", "estimator"), CASES)
def test_one_bad_combination_reads_the_same_on_every_front_end(
    capsys, moons, front_end, what, message, args, network, estimator
):
    if front_end == "cli":
        status, err = _cli(capsys, *args)
        assert status == 2
        assert err == "xpnet: error: " + message.format_map(_Spelled(cli._spell))
        return
    if front_end == "network":
        want = message.format_map(_Spelled(settings.python_name))
        with pytest.raises(ConfigError) as info:
            _network(moons, *network)
    else:
        pytest.importorskip("sklearn")
        want = message.format_map(_Spelled(settings.estimator_name))
        with pytest.raises(ValueError) as info:
            _estimator(moons, estimator)
    assert str(info.value) == want


def test_an_optimizer_object_carries_its_own_rate(moons):
    from xpnet import Network

    X, y = moons
    with pytest.raises(ConfigError, match=r"carries its own rate, schedule and clipping; "
                       r"leave out lr, schedule$"):  # fmt: skip
        Network((3,)).fit(X, y, optimizer=optim.sgd(0.1), lr=0.1, schedule="cosine")
    net = Network((3,), backend="numpy").fit(X, y, optimizer=optim.sgd(0.1), epochs=3)
    assert net.optimizer_.config == optim.sgd(0.1).config and net.plan_.epochs == 3


def test_the_estimators_l_bfgs_runs_through_the_engine(moons):
    """No second loop: the estimators' L-BFGS is the engine's feed, its verbose lines a plug-in,
    and it takes checkpoints between iterations like every other solver."""
    pytest.importorskip("sklearn")
    from xpnet import MLPClassifier, feeds, lbfgs

    assert not hasattr(lbfgs, "minimize")
    X, y = moons
    calls = []
    original = feeds.LBFGS.run

    def counted(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    feeds.LBFGS.run = counted
    try:
        clf = MLPClassifier((5,), solver="lbfgs", max_iter=30, random_state=0,
                            backend="numpy").fit(X, y)  # fmt: skip
    finally:
        feeds.LBFGS.run = original
    assert calls and clf.n_iter_ == len(clf.loss_curve_) <= 30
    assert np.isfinite(clf.loss_)


def test_the_estimators_l_bfgs_checkpoints_and_resumes(moons, tmp_path):
    """Checkpoints between L-BFGS iterations; a resumed fit starts a fresh search from the saved
    weights (SciPy keeps no curvature memory to save), as Network's does."""
    pytest.importorskip("sklearn")
    from xpnet import MLPClassifier

    X, y = moons
    path = tmp_path / "lbfgs.safetensors"
    setup = dict(solver="lbfgs", random_state=0, backend="numpy", tol=0.0)
    clf = MLPClassifier((5,), max_iter=8, checkpoint=str(path), checkpoint_every=4, **setup)
    clf.fit(X, y)
    saved = MLPClassifier.load(path)  # written at iteration 8, while the fit was in progress
    assert saved.n_iter_ == 8 and saved.loss_curve_ == clf.loss_curve_
    saved.set_params(max_iter=12, checkpoint=None, checkpoint_every=None)
    saved.resume(X, y)
    assert saved.n_iter_ == 12 and saved.loss_curve_[:8] == clf.loss_curve_
    assert saved.loss_curve_[-1] < clf.loss_curve_[-1]
    plain = MLPClassifier((5,), max_iter=8, **setup).fit(X, y)
    assert plain.loss_curve_ == clf.loss_curve_  # checkpoints change nothing


def test_the_plans_defaults_are_the_tables():
    assert Plan().to_dict() == {name: SETTINGS[name].default for name in settings.PLAN_FIELDS}


def test_warmup_then_cosine_trains_on_every_front_end(tmp_path, moons):
    """``warmup`` steps of linear warm-up, then the cosine decay over the rest of the run: the
    same schedule from the command line, Network and the estimators, stored in the model file;
    ``warmup=0`` is the plain cosine schedule, description and all."""
    from xpnet import MLPClassifier, Network

    X, y = moons
    model = tmp_path / "m.safetensors"
    assert cli.main(["train", "--schedule", "cosine", "--warmup", "4", "--epochs", "10",
                     "--quiet", "--save", str(model)]) == 0  # fmt: skip
    net = Network.load(model)
    assert net.plan_.warmup == 4
    assert net.optimizer_.config == ("scale_by_learning_rate", ("cosine", 0.01, 10, 0.0, 4))
    fit = Network((3,), backend="numpy").fit(X, y, epochs=10, schedule="cosine", warmup=4)
    assert fit.optimizer_.config == ("scale_by_learning_rate", ("cosine", 0.1, 10, 0.0, 4))
    plain = Network((3,), backend="numpy").fit(X, y, epochs=10, schedule="cosine")
    assert plain.optimizer_.config == ("scale_by_learning_rate", ("cosine", 0.1, 10, 0.0))
    clf = MLPClassifier((3,), solver="sgd", learning_rate="cosine", warmup=6, max_iter=4,
                        batch_size=50, random_state=0).fit(X, y)  # fmt: skip
    assert clf._opt_config[1] == ("scale_by_learning_rate", ("cosine", 0.001, 8, 0.0, 6))
    with pytest.raises(ConfigError, match=r"warmup \(10 steps\) must be shorter than the run it "
                       r"warms up \(10 steps\)"):  # fmt: skip
        Network((3,)).fit(X, y, epochs=10, schedule="cosine", warmup=10)

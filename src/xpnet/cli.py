"""The ``xpnet`` command line: a thin layer over the Python API, and the only module that prints.

Commands: ``train`` (a recipe, seed 000 by default, with any setting overridden), ``sweep`` (one
model per hidden size, one picture), ``predict`` and ``evaluate`` (a saved model on any backend),
``gradcheck``, ``recipes`` and ``backends``. Every deliberate error is printed as one line
``xpnet: error: ...`` with exit status 2; a diverging run exits with 3, an interrupted one with 130,
a failed gradient check with 1, a closed output pipe with 141.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from xpnet import __version__, backends, datasets, progress, recipes, settings, validation, writing
from xpnet.errors import (
    ConfigError,
    DivergenceError,
    TrainingInterrupted,
    WriteError,
    XpnetError,
)
from xpnet.parallel import JOB_TIMEOUT

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_CHECK_FAILED = 2, 3, 130, 1
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, as a shell reports a command whose reader went away."""


def _option(check: Callable[..., Any], name: str, parse: Callable[[str], Any],
            *bounds: Any, **kw: Any) -> Callable[[str], Any]:  # fmt: skip
    """An argparse type for the options that are no training settings (data, gradcheck):
    ``parse`` the text (keeping it as it is if that fails) and check it with
    :mod:`xpnet.validation`, so an option's mistake reads as the API's does."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return check(name, value, *bounds, **kw)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def _count(name: str, low: int = 1, high: float = math.inf) -> Callable[[str], int]:
    return _option(validation.integer, name, int, low, high)


def _rate(name: str, low: float = 0.0, high: float = math.inf, **kw: Any) -> Callable[[str], float]:
    return _option(validation.number, name, float, low, high, **kw)


def _add_where(p: argparse.ArgumentParser) -> None:
    settings.add_options(p, ("backend", "device"))
    _add_precision(p)


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=backends.PRECISIONS,
                   help="float32 matrix products: highest (full float32, the default), high "
                        "(TF32 on NVIDIA GPUs), medium (bfloat16 passes where the hardware has "
                        f"them); default: ${backends.PRECISION_VAR} or highest")  # fmt: skip


def _add_data(
    p: argparse.ArgumentParser, *, required: bool = False, training: bool = False
) -> None:
    names = ", ".join(datasets.DATASETS)
    extra = (" (a data set other than the recipe's gets --scale standard --reduction mean --lr "
             "0.1 unless given: the seeds' settings suit their own data only)") if training else ""  # fmt: skip
    p.add_argument("--dataset", required=required,
                   help=f"{names}, csv:PATH or npy:X.npy,y.npy{extra}")  # fmt: skip
    p.add_argument("--target", help="CSV label column: a header name or an index (default last)")
    p.add_argument("--n-samples", type=_count("--n-samples", 2),
                   help="samples of moons/circles/blobs")  # fmt: skip
    p.add_argument("--noise", type=_rate("--noise"), help="noise of moons/circles, spread of blobs")
    p.add_argument(
        "--data-seed",
        type=_count("--data-seed", 0, settings.SEED_MAX),
        help="seed of a generated data set",
    )


def _add_validation(p: argparse.ArgumentParser) -> None:
    """train's held-out data (a sweep compares training losses only)."""
    p.add_argument("--validation-fraction", metavar="F",
                   type=_rate("--validation-fraction", 0, 1, low_open=True, high_open=True),
                   help="hold out this share of the data (stratified, from --data-seed): its "
                        "loss is logged, plotted and written every epoch")  # fmt: skip
    p.add_argument("--patience", metavar="N", type=_count("--patience", 1),
                   help="stop once the validation loss has not fallen for N epochs in a row "
                        "(needs --validation-fraction)")  # fmt: skip


RUN_OPTIONS = tuple(n for n in (*settings.names("where"), *settings.names("model"),
                                *settings.names("training"))
                    if settings.SETTINGS[n].cli != "none" and n != "hidden")  # fmt: skip
"""The settings train and sweep take as options (each a recipe field or a field of its plan)."""


def _recipe_defaults() -> dict[str, Any]:
    return recipes.get(recipes.DEFAULT_RECIPE).to_dict()


def _add_run(p: argparse.ArgumentParser) -> None:
    """Options shared by train and sweep, generated from the settings table; None means "the
    recipe's value"."""
    p.add_argument("--recipe", help=f"defaults to start from: {', '.join(recipes.RECIPES)} (see "
                   f"xpnet recipes; default {recipes.DEFAULT_RECIPE})")  # fmt: skip
    _add_data(p, training=True)
    settings.add_options(p, RUN_OPTIONS, defaults=_recipe_defaults(),
                         where="the recipe")  # fmt: skip
    _add_precision(p)
    p.add_argument("--print-every", type=_count("--print-every"), help="log interval in passes")
    p.add_argument("--quiet", action="store_true", help="no log lines and no progress bar")
    p.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                   help="auto: a bar on a terminal, plain lines otherwise")  # fmt: skip


_sizes = _option(lambda name, text: validation.hidden(text, name), "--hidden", str)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other xpnet error (status 2)."""

    def error(self, message: str) -> NoReturn:
        # the option named once: "--lr must be...", "unknown dtype 'x'; valid dtypes..."
        message = re.sub(r"^argument (\S+): (\1 |(?=unknown ))", r"\2", message)
        self.exit(EXIT_ERROR, f"xpnet: error: {message} (see '{self.prog} --help')\n")


MODEL_HELP = "a model file (xpnet train --save, Network.save, or an estimator's save)"
"""What ``--model`` takes: any model file (:func:`xpnet.load` reads whichever kind it is)."""


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xpnet",
        description="Neural networks written once, run on NumPy, JAX, CuPy or PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a recipe (seed 000 by default) and report the loss")
    _add_run(t)
    _add_validation(t)
    settings.add_options(t, ("hidden",), defaults=_recipe_defaults(), where="the recipe")
    t.add_argument("--plot", metavar="FILE", help="write the decision boundary (2-D data) as PNG")
    t.add_argument("--loss-plot", metavar="FILE", help="write the loss against pass as PNG")
    t.add_argument("--save", metavar="FILE", help="write the trained model (also on Ctrl-C)")
    settings.add_options(t, ("checkpoint_every",))
    t.add_argument("--resume", metavar="FILE",
                   help="continue a saved or checkpointed run, with its own settings, to --epochs "
                   "(default: its own); the result is written only where --save says (give "
                   "--save FILE, the same file to update it)")  # fmt: skip
    t.add_argument("--metrics-out", metavar="FILE", help="write a JSON summary with every loss")
    m = t.add_argument_group("multi-process (jax, with --data-parallel; only process 0 prints, "
                             "plots and writes files)")  # fmt: skip
    m.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address and a free port")
    m.add_argument("--num-processes", type=_count("--num-processes"), metavar="N",
                   help="processes in the job")  # fmt: skip
    m.add_argument("--process-id", type=_count("--process-id", 0), metavar="I",
                   help="this process's index, 0..N-1")  # fmt: skip
    m.add_argument("--distributed", action="store_true",
                   help="join a job JAX detects itself (SLURM, Open MPI, TPU pod)")  # fmt: skip
    m.add_argument("--job-timeout", type=_count("--job-timeout"), default=JOB_TIMEOUT,
                   metavar="S", help="seconds to wait for the other processes to join, and for a "
                   f"peer that stops answering, before ending with an error (default {JOB_TIMEOUT})")  # fmt: skip

    s = sub.add_parser("sweep", help="train one model per hidden size; one panel each")
    _add_run(s)
    s.add_argument("--hidden", type=_sizes, default=(1, 2, 3, 4, 5, 20, 50),
                   help="one hidden size per model (default 1,2,3,4,5,20,50)")  # fmt: skip
    s.add_argument("--plot", metavar="FILE", help="write the grid of decision boundaries")

    p = sub.add_parser("predict", help="predict labels of a CSV file with a saved model")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--input", required=True, help="CSV of features (header optional)")
    p.add_argument("--output", help="CSV to write (default: standard output)")
    _add_where(p)

    e = sub.add_parser("evaluate", help="accuracy and loss of a saved model on labelled data "
                       "(a regressor's: R² and squared error)")  # fmt: skip
    e.add_argument("--model", required=True, help=MODEL_HELP)
    _add_data(e, required=True)
    _add_where(e)

    x = sub.add_parser("export", help="write a saved model as an ONNX model (needs ndonnx)")
    x.add_argument("--model", required=True, help=MODEL_HELP)
    x.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write")

    g = sub.add_parser("gradcheck", help="compare the hand-written gradients with references")
    _add_where(g)
    g.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    g.add_argument("--hidden", type=_sizes, default=(4, 3), help="hidden sizes (default 4,3)")
    g.add_argument(
        "--inputs", type=_count("--inputs"), default=3, help="input features (default 3)"
    )
    g.add_argument(
        "--outputs", type=_count("--outputs"), default=3, help="output units (default 3)"
    )
    g.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    g.add_argument("--loss", default="cross_entropy", help="cross_entropy or squared_error")
    g.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True)
    g.add_argument("--reduction", default="mean", help="mean (default) or sum")
    g.add_argument("--samples", type=_count("--samples"), default=8, help="samples (default 8)")
    g.add_argument("--seed", type=_count("--seed", 0), default=0)
    g.add_argument("--tol", type=_rate("--tol", low_open=True),
                   help="largest error allowed (default 1e-6, 1e-3 float32)")  # fmt: skip

    sub.add_parser("recipes", help="list the recipes with one line each")
    sub.add_parser("backends", help="list backends: installed, version, devices, usable")
    return parser


# -- turning options into a recipe -------------------------------------------------------------
RECIPE_OPTIONS = (*RUN_OPTIONS, "dataset", "target", "n_samples", "noise", "data_seed",
                  "validation_fraction", "print_every")  # fmt: skip
"""The options that change a field of the recipe (or of its plan)."""
ANY_DATA = {"scale": "standard", "reduction": "mean", "lr": 0.1}
"""What a data set other than the recipe's gets unless the command line says otherwise: the seeds'
unscaled inputs and summed gradients (a step n times the gradient) suit only their own data."""
RESUMABLE = ("epochs", "print_every", "backend", "device", "data_parallel", "devices")
"""The options --resume honours; a resumed run's every other setting is the file's."""


def _spell(name: str) -> str:
    """How the command line spells a setting (a checkpoint file is --save's)."""
    return "--save" if name == "checkpoint" else _spelled(name)


def _recipe(args: argparse.Namespace) -> recipes.Recipe:
    """Start from ``--recipe`` and override every option given on the command line; the rules
    between settings apply to those given (:data:`xpnet.settings.RULES`)."""
    base = recipes.get(args.recipe or recipes.DEFAULT_RECIPE)
    given = [k for k in RECIPE_OPTIONS if getattr(args, k, None) is not None]
    changes: dict[str, Any] = {k: getattr(args, k) for k in given}
    if args.command == "train" and args.hidden is not None:
        changes["hidden"] = args.hidden
    if "scale" in changes:
        changes["scale"] = settings.check("scale", changes["scale"])
    if "dataset" in changes and changes["dataset"] != base.dataset:
        changes.setdefault("models_before", ())  # the seed's init stream belongs to its data
        for key, value in ANY_DATA.items():
            changes.setdefault(key, value)
    recipe = base.replace(**changes)
    _check_rules(args, recipe, given)
    _check_target(args.target, recipe.dataset)
    return recipe


def _check_target(target: str | None, dataset: str) -> None:
    if target is not None and not dataset.startswith("csv:"):
        raise ConfigError(f"--target names a column of csv: data; {dataset!r} has its labels "
                          "already: leave --target out")  # fmt: skip


def _check_rules(args: argparse.Namespace, recipe: recipes.Recipe, given: Sequence[str]) -> None:
    every = getattr(args, "checkpoint_every", None)
    values = {**recipe.to_dict(), "checkpoint": getattr(args, "save", None) if every else None,
              "checkpoint_every": every}  # fmt: skip
    given = [*given, *(["checkpoint_every"] if every else [])]
    settings.apply_rules(values, [g for g in given if g in settings.SETTINGS], _spell)


def _spelled(name: str) -> str:
    """The command-line option of a setting: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def _given(args: argparse.Namespace, names: Sequence[str]) -> str:
    """Those of the options ``names`` the command line set, as it spells them ("" for none)."""
    return ", ".join(_spelled(k) for k in names if getattr(args, k, None) is not None)


def _reporter(
    args: argparse.Namespace,
    recipe: recipes.Recipe,
    prefix: str = "",
    stream: Any = None,
    held: Callable[[], float | None] | None = None,
) -> progress.Reporter:
    """The progress reporter; ``held()``: the latest validation loss, shown after each line."""
    mode = "quiet" if args.quiet else args.progress

    def line(i: int, v: float) -> str:
        text = prefix + recipe.log_line(i, v)
        value = None if held is None else held()
        return text if value is None else f"{text} (validation: {value:.6f})"

    return progress.Reporter(recipe.plan.epochs, recipe.print_every, line, mode, stream,
                             recipe.unit)  # fmt: skip


PLOTS = ("plot", "loss_plot")


def _check_outputs(args: argparse.Namespace, *names: str) -> None:
    """Check every output the command will write before it starts (a missing folder, a folder
    given as a file, no permission, an image format matplotlib cannot write, matplotlib itself
    missing): nothing trained is lost to a path found bad afterwards."""
    for name in names:
        path = getattr(args, name, None)
        if path is None:
            continue
        kinds = None
        if name in PLOTS:
            from xpnet.plotting import formats

            kinds = formats()  # raises MissingDependencyError without matplotlib
        if name == "save":
            validation.model_file(_spelled(name), path)
        else:
            validation.output(_spelled(name), path, kinds)


def _check_paths(args: argparse.Namespace, outputs: Sequence[str], inputs: Sequence[str],
                 same: Sequence[tuple[str, str]] = ()) -> None:  # fmt: skip
    """Refuse, before any work (and before :func:`_check_outputs`: that an output would destroy
    an input is the news a user needs first), an output that is one of the inputs or another
    output (it would be destroyed): ``outputs`` and ``inputs`` are option names (``dataset`` stands for
    the files it reads); ``same`` lists the (output, input) pairs that may be one file
    (``--resume m --save m`` updates the model)."""
    seen: dict[str, str] = {}

    def key(path: str) -> str:
        return os.path.realpath(os.path.expanduser(path))

    for name in inputs:
        value = getattr(args, name, None)
        paths = datasets.files(value) if name == "dataset" and value else [value] if value else []
        for path in paths:
            seen.setdefault(key(path), f"{_spelled(name)} {path!r}")
    for name in outputs:
        path = getattr(args, name, None)
        if not path:
            continue
        other = seen.get(key(path))
        allowed = {seen.get(key(getattr(args, i) or "")) for o, i in same if o == name}
        if other is not None and other not in allowed:
            raise ConfigError(f"{_spelled(name)} {path!r} is also {other}: writing it would "
                              "destroy that; name another file")  # fmt: skip
        seen[key(path)] = f"{_spelled(name)} {path!r}"


def _beside(path: str, tag: str) -> Path:
    """``run.diverged.safetensors`` beside ``run.safetensors`` (numbered if that exists too)."""
    p = Path(path)
    candidate = p.with_name(f"{p.stem}.{tag}{p.suffix}")
    count = 2
    while candidate.exists():
        candidate = p.with_name(f"{p.stem}.{tag}-{count}{p.suffix}")
        count += 1
    return candidate


def _write_model(net: Any, path: str | Path) -> str:
    """Save ``net`` to ``path``; where that fails after all (disk full, permissions changed), to
    a file in the temporary folder. Return what was done, as the message says it."""
    try:
        net.save(path)
    except OSError as exc:
        rescue = Path(tempfile.gettempdir()) / f"xpnet-rescued-{os.getpid()}{Path(path).suffix}"
        why = getattr(exc, "reason", "") or exc.strerror or exc
        try:
            net.save(rescue)
        except OSError as again:  # the fallback too (a full disk everywhere): say both, once
            raise WriteError(f"could not write {str(path)!r} ({why}) nor the fallback "
                             f"{str(rescue)!r} ({getattr(again, 'reason', '') or again}); the "
                             "trained model was not saved") from None  # fmt: skip
        raise _Rescued(f"could not write {str(path)!r} ({why}); the trained "
                       f"model was written to {str(rescue)!r} instead") from None  # fmt: skip
    return str(path)


class _Rescued(XpnetError):
    """The model could not be written where asked and went to a fallback file."""


# -- commands ---------------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    _join_job(args)
    if args.resume:
        net, recipe = _resumed_network(args)
        _check_rules(args, recipe, [])
        save = args.save  # the resumed file changes only if --save names it
    else:
        net, recipe, save = None, _recipe(args), args.save
    _check_paths(args, ("save", "metrics_out", "plot", "loss_plot"), ("resume", "dataset"),
                 same=[("save", "resume")])  # fmt: skip
    _check_outputs(args, "save", "plot", "loss_plot", "metrics_out")
    if net is None:  # an unknown or missing backend, or a GPU not there, before any data is read
        backends.select(recipe.backend, recipe.device, recipe.dtype)
    holder: list[Any] = [net] if net is not None else []

    def held() -> float | None:  # the held-out loss of the epoch just done, while training
        curve = getattr(holder[0], "validation_loss_curve_", None) if holder else None
        return float(curve[-1]) if curve is not None and len(curve) else None

    report = _reporter(args, recipe, held=held if recipe.validation_fraction else None)
    every = args.checkpoint_every
    # the loss of every pass only where it is written out; else only the printed ones
    dense = bool(args.loss_plot or args.metrics_out)
    # chunks are the engine's (about a second each at most: a signal acts between them)
    options = dict(loss_every=1 if dense else recipe.print_every,
                   checkpoint=save if every else None, checkpoint_every=every)  # fmt: skip
    if args.patience is not None:
        if not recipe.validation_fraction:
            raise ConfigError("--patience stops on the validation loss; give "
                              "--validation-fraction with it")  # fmt: skip
        options["patience"] = args.patience
    try:
        with report:
            if net is None:
                result = recipes.run(recipe, callbacks=[report], on_network=holder.append,
                                     on_data=lambda X, y: _check_plottable(args, X, recipe),
                                     on_manual=lambda m, X: _print_manual_step(m, X, report, recipe),
                                     **options)  # fmt: skip
                net, X, y, last = result.net, result.X, result.y, result.last_params
            else:
                X, y, held_out = recipes.load_split(recipe)  # the rows the run trained on
                _check_plottable(args, X, recipe)
                last = recipes.train(net, recipe, X, y, resume=True, callbacks=[report],
                                     validation_data=held_out, **options)  # fmt: skip
    except (DivergenceError, TrainingInterrupted) as exc:
        stopped = holder[0] if holder else None
        saved = ""
        if save and stopped is not None and hasattr(stopped, "params_"):
            # a diverged run never replaces a file that exists (a good model, a checkpoint)
            diverged = isinstance(exc, DivergenceError) and Path(save).exists()
            where = _write_model(stopped, _beside(save, "diverged") if diverged else save)
            what = ("the last good parameters were" if isinstance(exc, DivergenceError)
                    else "the model was")  # fmt: skip
            saved = f"; {what} saved to {where}"
        if isinstance(exc, DivergenceError):
            print(f"xpnet: error: {exc}{saved}", file=sys.stderr)
            return EXIT_DIVERGED
        print(f"xpnet: interrupted: {exc}{saved}", file=sys.stderr)
        return 128 + exc.signum if exc.signum else EXIT_INTERRUPTED
    _report_trained(args, recipe, net, X, y, save, last)
    return 0


def _check_plottable(args: argparse.Namespace, X: Any, recipe: recipes.Recipe) -> None:
    """--plot draws a decision boundary: refuse data it cannot draw, and a regression, before
    training."""
    if getattr(args, "plot", None):
        from xpnet.plotting import check_2d

        if settings.regresses(recipe.loss):
            raise ConfigError(f"--plot draws the boundaries between classes, and --loss "
                              f"{recipe.loss} regresses: leave out --plot (--loss-plot draws "
                              "the loss curve)")  # fmt: skip

        check_2d(X)


def _join_job(args: argparse.Namespace) -> None:
    """Join a multi-process job when asked; in every process but 0, print nothing but errors and
    write no files (process 0 does)."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in explicit):
        return
    if not args.data_parallel:
        raise ConfigError("a multi-process job trains data-parallel: add --data-parallel")
    if not args.distributed and any(v is None for v in explicit):
        raise ConfigError("give all of --coordinator, --num-processes and --process-id "
                          "(or --distributed to let JAX find the job)")  # fmt: skip
    from xpnet import parallel

    index, _ = parallel.distributed(*explicit, timeout=args.job_timeout)
    if index != 0:  # the same training (chunks included: they hold collectives), no output
        args.save, args.plot, args.loss_plot, args.metrics_out = None, None, None, None
        args.checkpoint_every = None
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's and C's output


def _resumed_network(args: argparse.Namespace) -> tuple[Any, recipes.Recipe]:
    """Load ``--resume FILE`` and the recipe it was trained with; apply --epochs/--print-every.
    Any option a resumed run cannot honour (it goes on with the file's own settings) is an error
    naming it."""
    from xpnet.model import Network

    fixed = [k for k in (*RECIPE_OPTIONS, "recipe", "hidden") if k not in RESUMABLE]
    given = _given(args, fixed)
    if given:
        raise ConfigError(f"--resume goes on with the settings stored in {args.resume!r}; it "
                          f"cannot change {given} (leave them out, or train a new run)")  # fmt: skip

    from xpnet import persist

    kind = persist.description(args.resume).get("kind")  # Network.load reads it whole, once
    if kind != "Network":
        raise ConfigError(f"--resume continues runs that xpnet train saved; {args.resume!r} "
                          f"holds an {kind}, whose file does not record the data it was fitted "
                          "on (predict, evaluate and export read it)")  # fmt: skip
    net = Network.load(args.resume, backend=args.backend, device=args.device,
                       data_parallel=args.data_parallel)  # fmt: skip
    if args.devices is not None:  # the rule, as the command line spells it
        settings.apply_rules({"data_parallel": net.data_parallel, "devices": args.devices},
                             ["devices"], _spell)  # fmt: skip
        net.devices = args.devices
    stored = net.info.get("recipe")
    if not isinstance(stored, dict):
        raise ConfigError(f"{args.resume!r} does not record how it was trained (no recipe); "
                          "continue it from Python with Network.resume(X, y)")  # fmt: skip
    if net.data_parallel and args.backend is None:  # a data-parallel run goes on where it ran
        net.backend = stored.get("backend")  # Network.resume places it on the devices
    try:
        recipe = recipes.Recipe.from_dict(stored)
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError too
        raise persist.invalid(args.resume, exc) from None
    recipe = recipe.replace(backend=net.backend, device=args.device)
    changes = {k: getattr(args, k) for k in ("epochs", "print_every") if getattr(args, k)}
    return net, recipe.replace(**changes)


def _report_trained(
    args: argparse.Namespace,
    recipe: recipes.Recipe,
    net: Any,
    X: Any,
    y: Any,
    save: str | None,
    last: dict[str, Any],
) -> None:
    written = _write_model(net, save) if save else None  # first: the most valuable output
    if not args.quiet and recipe.loss == "squared_error" and X.shape[0] <= 20:
        _print_outputs(recipes.last_outputs(net, last, X), y)
    if net.passes_done_ < recipe.plan.epochs and net.stop_reason_:
        print(f"Stopped after {net.passes_done_} {progress.plural(recipe.unit)}: "
              f"{net.stop_reason_}")  # fmt: skip
    score, shown = net.score(X, y), _score_name(recipe, "R^2")
    print(f"Training {shown}: {score:.3f}")
    scores = getattr(net, "validation_scores_", None)
    if scores is not None and len(scores):
        print(f"Validation {shown}: {scores[-1]:.3f}")
    if args.metrics_out:
        _write_metrics(args.metrics_out, recipe, net, score)
    if written:
        print(f"Model written to {written}")
    if args.plot:
        from xpnet.plotting import decision_boundary

        hidden = ",".join(map(str, recipe.hidden)) or "0"
        title = f"Hidden Layer size {hidden} ({net.backend_.name})"
        decision_boundary(net.predict, X, y, args.plot, title=title,
                          feature_names=_feature_names(recipe))  # fmt: skip
        print(f"Decision boundary written to {args.plot}")
    if args.loss_plot:
        from xpnet.plotting import loss_curve

        label = "Error" if recipe.log == "error" else "Loss"
        loss_curve(net.loss_curve_, args.loss_plot, ylabel=label, title=f"{recipe.name}: {label}",
                   validation=getattr(net, "validation_loss_curve_", None))  # fmt: skip
        print(f"Loss curve written to {args.loss_plot}")


def _feature_names(recipe: recipes.Recipe) -> list[str] | None:
    """The recipe's data set's feature names, for a plot's axes (None: unnamed)."""
    from xpnet import datasets

    return datasets.feature_names(recipe.dataset, recipe.target)


def _print_manual_step(
    manual: Any, X: Any, report: progress.Reporter, recipe: recipes.Recipe
) -> None:
    import numpy as np

    from xpnet import mlp

    untrained = mlp.predict_proba(np, manual.initial_params_, manual._scaled(X), manual.spec_)
    report.print("Untrained output: " + " ".join(f"{v:.8f}" for v in untrained[:, 0]))
    report.print(f"Error before one manual step at lr {recipe.manual_step_lr}: "
                 f"{manual.loss_curve_[0]:.5f}")  # fmt: skip


def _print_outputs(outputs: Any, y: Any) -> None:
    """Seed 001's final table: the last epoch's outputs (one sigmoid unit; else the largest)."""
    print("Output      Target")
    for p, t in zip(outputs[:, 0] if outputs.shape[1] == 1 else outputs.max(1), y, strict=True):
        print(f"{p:.8f}  {t}")


def _score_name(recipe: recipes.Recipe, r2: str = "r2") -> str:
    """What a run's score is: accuracy, or R² (spelled ``r2``) for a regression loss."""
    return r2 if settings.regresses(recipe.loss) else "accuracy"


def _validation_metrics(net: Any, score: str) -> dict[str, Any]:
    """The held-out curves of a run with --validation-fraction (none without)."""
    curve = getattr(net, "validation_loss_curve_", None)
    if curve is None:
        return {}
    scores = net.validation_scores_
    return {"validation_losses": [float(v) for v in curve],
            f"validation_{score}": float(scores[-1]) if len(scores) else None}  # fmt: skip


def _write_metrics(path: str, recipe: recipes.Recipe, net: Any, score: float) -> None:
    backend = net.backend_
    metrics = {
        "recipe": recipe.name,
        "backend": backend.name,
        "backend_version": backend.version,
        "device": backend.device_label,
        "dtype": backend.dtype_name,
        "dataset": recipe.dataset,
        "hidden": list(recipe.hidden),
        "activation": recipe.activation,
        "epochs": recipe.plan.epochs,
        "optimizer": recipe.plan.optimizer,
        "batch_size": recipe.plan.batch_size,
        "lr": None if recipe.plan.solver else recipe.plan.rate,  # it searches its own steps
        "reg": recipe.plan.reg,
        "reduction": recipe.plan.reduction,
        "losses": net.loss_curve_.tolist(),
        "final_loss": float(net.loss_curve_[-1]),
        _score_name(recipe): score,
        **_validation_metrics(net, _score_name(recipe)),
        "train_seconds": net.fit_seconds_,
    }
    writing.replace(path, lambda fh: fh.write((json.dumps(metrics, indent=1) + "\n").encode()))


def _sweep(args: argparse.Namespace) -> int:
    """One model per hidden size: the table on standard output, each model's log lines or
    progress bar on standard error (``--print-every``, ``--progress``, ``--quiet``)."""
    from xpnet.sweep import models

    recipe = _recipe(args)
    sizes = args.hidden
    if not sizes:
        raise ConfigError("--hidden must list at least one size, e.g. 1,2,3,4,5,20,50")
    _check_paths(args, ("plot",), ("dataset",))
    _check_outputs(args, "plot")
    backends.select(recipe.backend, recipe.device, recipe.dtype)  # before any data is read
    X, y = recipes.load_data(recipe)
    _check_plottable(args, X, recipe)
    score = _score_name(recipe)
    print(f"{'hidden':>6} {'final loss':>10} {score:>8} {'seconds':>7}", flush=True)
    nets = []
    for size, r, net in models(recipe, sizes):
        with _reporter(args, r, f"hidden {size}: ", sys.stderr) as report:
            every = recipe.plan.epochs if report.mode == "quiet" else recipe.print_every
            recipes.train(net, r, X, y, callbacks=[report], loss_every=every)
        print(f"{size:>6} {net.loss_curve_[-1]:>10.6f} {net.score(X, y):>8.3f} "
              f"{net.fit_seconds_:>7.2f}", flush=True)  # fmt: skip
        nets.append(net)
    if args.plot:
        from xpnet.plotting import sweep_panels

        sweep_panels([(f"Hidden Layer size {s}", n.predict) for s, n in zip(sizes, nets,
                     strict=True)], X, y, args.plot, feature_names=_feature_names(recipe))  # fmt: skip
        print(f"Sweep written to {args.plot}")
    return 0


def _load_model(args: argparse.Namespace) -> Any:
    """The model ``--model`` holds: a Network or an estimator, whichever wrote the file."""
    from xpnet import loading

    return loading.load(args.model, backend=args.backend, device=args.device)


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    _check_paths(args, ("output",), ("model", "input"))
    _check_outputs(args, "output")
    model = _load_model(args)
    X, _ = datasets.read_csv(args.input, labels=False)
    predicted = np.asarray(model.predict(X))
    if predicted.ndim == 1:
        header, columns = ["prediction"], [predicted]
    else:  # several outputs (a multi-output regressor, multilabel classes): one column each
        header = [f"prediction_{i}" for i in range(predicted.shape[1])]
        columns = list(predicted.T)
    if getattr(model, "classes_", None) is not None and predicted.ndim == 1:
        header += [f"p_{c}" for c in model.classes_]
        columns += list(np.asarray(model.predict_proba(X)).T)
    datasets.write_csv(args.output or sys.stdout, header, columns)
    if args.output:
        print(f"{X.shape[0]} predictions written to {args.output}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    _check_target(args.target, args.dataset)
    model = _load_model(args)
    X, y = datasets.load(
        args.dataset,
        n_samples=args.n_samples or 200,
        noise=0.2 if args.noise is None else args.noise,
        seed=args.data_seed or 0,
        target=args.target,
    )
    result = model.evaluate(X, y) if hasattr(model, "evaluate") else _score(model, X, y)
    print(f"samples: {result['n_samples']}")
    for name in ("accuracy", "r2"):
        if name in result:
            print(f"{name}: {result[name]:.4f}")
    print(f"loss: {result['loss']:.6f}")
    return 0


def _score(model: Any, X: Any, y: Any) -> dict[str, float]:
    """What ``evaluate`` reports of an estimator: accuracy and mean log loss (a classifier),
    R² and mean squared error (a regressor); labels outside its classes refused as a
    Network refuses them."""
    import numpy as np
    from sklearn.metrics import log_loss, mean_squared_error

    n = int(np.shape(X)[0])
    if hasattr(model, "classes_"):
        validation.label_index(y, model.classes_, n)
        proba = model.predict_proba(X)
        loss = log_loss(y, proba, labels=model.classes_)
        return {"accuracy": float(model.score(X, y)), "loss": float(loss), "n_samples": n}
    loss = mean_squared_error(y, model.predict(X))
    return {"r2": float(model.score(X, y)), "loss": float(loss), "n_samples": n}


def _export(args: argparse.Namespace) -> int:
    from xpnet import loading

    _check_paths(args, ("onnx",), ("model",))  # first: destroying an input is the worse news
    validation.output("--onnx", args.onnx)  # before reading anything
    model = loading.load(args.model)  # a Network or an estimator: whichever wrote the file
    print(f"ONNX model written to {model.to_onnx(args.onnx)}")
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    from xpnet import mlp
    from xpnet.gradcheck import TOLERANCES, gradcheck

    backend = backends.select(args.backend, args.device, args.dtype)
    spec = mlp.Spec((args.inputs, *args.hidden, args.outputs),
                    args.activation, args.loss, args.bias)  # fmt: skip
    tol = TOLERANCES[backend.dtype_name] if args.tol is None else args.tol
    rows = gradcheck(backend, spec, n_samples=args.samples, reduction=args.reduction,
                     seed=args.seed)  # fmt: skip
    print(f"gradient check: {backend.name} {backend.dtype_name} on {backend.device_label}, "
          f"sizes {spec.sizes}, {spec.activation}, {spec.loss}, tolerance {tol:g}")  # fmt: skip
    print(f"{'param':<6} {'shape':<10} {'checked':>7} {'vs finite diff':>14} {'vs jax.grad':>12}")
    worst = 0.0
    for r in rows:
        auto = "-" if r.autodiff_error is None else f"{r.autodiff_error:.2e}"
        print(f"{r.name:<6} {r.shape!s:<10} {r.checked:>7} {r.fd_error:>14.2e} {auto:>12}")
        worst = max(worst, r.fd_error, r.autodiff_error or 0.0)
    ok = worst <= tol
    print(f"{'PASS' if ok else 'FAIL'}: largest error {worst:.2e} (tolerance {tol:g})")
    return 0 if ok else EXIT_CHECK_FAILED


def _recipes(args: argparse.Namespace) -> int:
    width = max(map(len, recipes.RECIPES))
    for name, r in recipes.RECIPES.items():
        default = " (default)" if name == recipes.DEFAULT_RECIPE else ""
        print(f"{name:<{width}}  {r.summary}{default}")
    return 0


def _backends(args: argparse.Namespace) -> int:
    rows = [backends.describe(name) for name in backends.BACKENDS]
    print(f"{'backend':<8} {'installed':<9} {'version':<14} {'usable':<6} devices / why not")
    for r in rows:
        detail = ", ".join(r["devices"]) if r["usable"] else r["why"]
        print(
            f"{r['backend']:<8} {'yes' if r['installed'] else 'no':<9} "
            f"{r['version'] or '-':<14} {'yes' if r['usable'] else 'no':<6} {detail}"
        )
    env = os.environ.get(backends.ENV_VAR)
    default = backends.resolve_name()  # raises on a nonsense $XPNET_BACKEND
    print(f"default: {default}" + (f" (from ${backends.ENV_VAR})" if env else ""))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train,
    "sweep": _sweep,
    "predict": _predict,
    "evaluate": _evaluate,
    "export": _export,
    "gradcheck": _gradcheck,
    "recipes": _recipes,
    "backends": _backends,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        with backends.using_precision(getattr(args, "precision", None)):
            return int(COMMANDS[args.command](args))
    except XpnetError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `xpnet train | head`: stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE

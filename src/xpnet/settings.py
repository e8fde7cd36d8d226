"""The training plan: every setting of a run defined once, with its check, default, command-line
spelling and help, and every rule between settings written once.

:data:`SETTINGS` is the one table (scikit-learn's ``_parameter_constraints`` as one object). Each
front-end only translates into it:

- :class:`~xpnet.model.Network` takes the ``model`` and ``where`` settings as constructor
  keywords and the ``training`` and ``run`` settings as :meth:`~xpnet.model.Network.fit`
  keywords, by these names;
- the command line's options, their help text and their choices are generated from the table
  (:func:`add_options`), spelled ``--batch-size`` for ``batch_size``;
- the estimators map scikit-learn's names onto these (:data:`ESTIMATOR_NAMES`) and share the rules
  that scikit-learn's contract leaves room for (see :mod:`xpnet.estimators`).

:func:`plan` checks the settings a caller gave, fills in the defaults and applies :data:`RULES`;
the :class:`Plan` it returns is what the trainer (:mod:`xpnet.trainer`) runs and what a model
file records. A rule's message names the settings as the front-end that broke it spells them
(``spell``), so one mistake reads the same everywhere: ``optimizer 'lbfgs' searches its own step
lengths on the whole data set, on one device; leave out batch_size`` from Python is ``--optimizer
lbfgs ... leave out --batch-size`` on the command line.

Adding a setting: one :class:`Setting` row here (and, where it is a training setting, a field of
:class:`Plan`), then the code that uses it; the CLI, the help and the model file follow.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from xpnet import losses, validation
from xpnet.data import SCALERS
from xpnet.errors import ConfigError
from xpnet.mlp import REDUCTIONS
from xpnet.optim import OPTIMIZERS
from xpnet.optim import SCHEDULE_NAMES as SCHEDULES

# -- the tables the settings choose from (each defined here once) ---------------------------------
SOLVERS = ("lbfgs",)
"""Solvers that search their own step lengths on the whole data set: chosen by the same
``optimizer`` setting, run by the engine as their own feed (:mod:`xpnet.feeds`)."""
OPTIMIZER_CHOICES = (*OPTIMIZERS, *SOLVERS)
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adam": 0.001, "adamw": 0.001}
"""The learning rate a named optimizer gets when ``lr`` is not given."""
RECORDS = ("after", "before")
"""A full-batch pass's loss: ``after`` its update (seed 000 prints this), or ``before`` it, from
the forward pass of the update itself (seed 001)."""
CLASSIFICATION_LOSSES = ("cross_entropy", "squared_error")
REGRESSION_LOSSES = ("absolute_error", "huber", "quantile")
"""A Network's regression losses: identity outputs, targets that are numbers (MLPRegressor has
squared error and Poisson's besides)."""
LOSSES = (*CLASSIFICATION_LOSSES, *REGRESSION_LOSSES)
NONE = "none"
"""How the command line says "no scaling"."""


def _activations() -> tuple[str, ...]:
    from xpnet.activations import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _inits() -> tuple[str, ...]:
    from xpnet.init import INITS

    return tuple(INITS)


def _backends() -> tuple[str, ...]:
    from xpnet.backends import BACKENDS

    return tuple(BACKENDS)


# -- checks ---------------------------------------------------------------------------------------
Check = Callable[[str, Any], Any]


def _integer(low: int = 1, high: float = math.inf) -> Check:
    return lambda name, v: validation.integer(name, v, low, high)


def _epochs(name: str, v: Any) -> int:
    count = validation.integer(name, v)
    if count > EPOCHS_MAX:
        raise ConfigError(f"{name} must be at most 2**53 = {EPOCHS_MAX} (what a run counts "
                          f"exactly); got {count}")  # fmt: skip
    return count


SEED_MAX = 2**32 - 1
"""The largest seed NumPy's generators take."""
EPOCHS_MAX = 2**53
"""The most epochs a run counts (exactly, in float64 as in int64)."""


def _number(low: float = 0.0, high: float = math.inf, **kw: bool) -> Check:
    return lambda name, v: validation.number(name, v, low, high, **kw)


def _optional(check: Check) -> Check:
    return lambda name, v: None if v is None else check(name, v)


def _class_weight(name: str, v: Any) -> Any:
    return validation.class_weight(name, v)


_class_weight.choices = validation.CLASS_WEIGHTS  # type: ignore[attr-defined]


def _class_weight_text(text: str) -> str:
    if text not in validation.CLASS_WEIGHTS:
        raise ConfigError(f"--class-weight takes {' or '.join(map(repr, validation.CLASS_WEIGHTS))}"
                          f" on the command line; got {text!r} (weights per class are Python's: "
                          "Network(class_weight={class: weight}))")  # fmt: skip
    return text


def _dropout(name: str, v: Any) -> float | tuple[float, ...]:
    """A rate, or one per hidden layer (their count is checked against the layers by the rules
    and when the run is built: :func:`xpnet.dropout.rates`)."""
    from xpnet.dropout import check as dropout_check

    return dropout_check(v, name)


def _dropout_text(text: str) -> Any:
    if "," not in text:
        return _float_text(text)
    return tuple(_float_text(part) for part in text.split(","))


def _flag(name: str, v: Any) -> bool:
    return validation.flag(name, v)


def _one_of(
    names: Callable[[], Sequence[str]] | Sequence[str], what: str, plural: str = ""
) -> Check:
    def check(name: str, v: Any) -> str:
        return validation.one_of(tuple(names() if callable(names) else names), v, what, plural)

    check.choices = names  # type: ignore[attr-defined]
    return check


def _loss(name: str, v: Any) -> str:
    if isinstance(v, str) and v in losses.REGRESSION and v not in REGRESSION_LOSSES:
        raise ConfigError(f"{name} {v!r} is MLPRegressor's; a Network regresses with "
                          f"{', '.join(REGRESSION_LOSSES)}")  # fmt: skip
    return validation.one_of(LOSSES, v, "loss", "losses")


_loss.choices = LOSSES  # type: ignore[attr-defined]


def regresses(loss: str) -> bool:
    """Whether a Network of ``loss`` fits numbers (regression) rather than classes."""
    return loss in REGRESSION_LOSSES


def _loss_option(option: str) -> Check:
    """The check of a loss's own setting ``option`` (huber's ``delta``, the ``quantile``)."""
    return lambda name, v: losses.check_option(option, v, name)


def _scale(name: str, v: Any) -> str | None:
    if v is None or v == NONE:
        return None
    return validation.one_of(SCALERS, v, "scale")


_scale.choices = SCALERS  # type: ignore[attr-defined]


def _text(name: str, v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"{name} must be text; got {validation.show(v)}")
    if isinstance(v, str) and not v.strip():
        raise ConfigError(f"{name} must not be empty; got {validation.show(v)}")
    return v


def _backend(name: str, v: Any) -> Any:
    return v if not isinstance(v, str) else _text(name, v)  # a namespace module stands as it is


_backend.choices = _backends  # type: ignore[attr-defined]


def _device(name: str, v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return validation.integer(name, v, 0)
    return _text(name, v)


def _hidden(name: str, v: Any) -> tuple[int, ...]:
    return validation.hidden(v, name)


def _dtype(name: str, v: Any) -> str:
    return validation.dtype(v)  # NumPy's dtype objects stand for their names


_dtype.choices = validation.DTYPES  # type: ignore[attr-defined]


def _int_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _float_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Setting:
    """One setting: ``check(name, value)`` returns the value checked (raising ConfigError in
    :mod:`xpnet.validation`'s wording); ``parse`` turns command-line text into a value for it;
    ``choices`` (a function, for tables imported late) are the names it accepts."""

    name: str
    group: str
    """``model`` (architecture, initial weights, scaling), ``where`` (backend and devices),
    ``training`` (a :class:`Plan` field) or ``run`` (how a fit is driven: checkpoints)."""
    default: Any
    help: str
    check: Check
    parse: Callable[[str], Any] = str
    cli: str = "value"
    """``value`` (takes text), ``switch`` (``--x`` alone), ``flag`` (``--x``/``--no-x``) or
    ``none`` (not on the command line)."""
    metavar: str | None = None

    @property
    def option(self) -> str:
        """The command-line spelling: ``batch_size`` is ``--batch-size``."""
        return spelled(self.name)

    @property
    def choices(self) -> tuple[str, ...]:
        names = getattr(self.check, "choices", ())
        return tuple(names() if callable(names) else names)

    def validate(self, value: Any, name: str | None = None) -> Any:
        """``value`` checked, the error naming it ``name`` (default: the setting's own name)."""
        return self.check(name or self.name, value)

    def help_text(self, default: Any = None, where: str = "") -> str:
        """The help line: what it does, the values it takes, its default (``default`` from
        ``where``, e.g. a recipe's, instead of the table's when given)."""
        text = self.help
        if self.choices:
            shown = [*self.choices, *((NONE,) if self.name == "scale" else ())]
            text += f"; one of: {', '.join(shown)}"
        if where and default is not None:
            text += f" (default: {where}'s, {_shown_default(default)})"
        elif self.default is not None and self.cli != "switch":
            value = self.default
            text += f" (default {_shown_default(value)})"
        return text.replace("%", "%%")


def _shown_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "''"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def spelled(name: str) -> str:
    """The command-line option of a setting: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


_ROWS = (
    # model: the network and its first weights
    Setting("hidden", "model", (100,), "hidden layer sizes, e.g. 3 or 10,10; '' for none",
            _hidden, cli="value", metavar="SIZES"),
    Setting("activation", "model", "relu", "hidden units' activation",
            _one_of(_activations, "activation")),
    Setting("loss", "model", "cross_entropy", "output and loss: cross_entropy (softmax) or "
            "squared_error (sigmoid) classify; absolute_error, huber and quantile (identity "
            "outputs) regress numeric targets", _loss),
    Setting("delta", "model", losses.OPTIONS["delta"], "of loss huber: quadratic within delta of "
            "the target, linear beyond", _loss_option("delta"), _float_text),
    Setting("quantile", "model", losses.OPTIONS["quantile"], "of loss quantile: the quantile in "
            "(0, 1) it predicts", _loss_option("quantile"), _float_text),
    Setting("bias", "model", True, "use biases (seed 001 has none)", _flag, cli="flag"),
    Setting("init", "model", "auto", "initial weights (auto: He for relu-like units, else "
            "Glorot)", _one_of(_inits, "init")),
    Setting("init_seed", "model", 0, "seed of the initial weights", _integer(0, SEED_MAX),
            _int_text),
    Setting("scale", "model", None, "input scaling, fitted on the training data",
            _scale),
    Setting("dtype", "model", "float64", "floating-point type of the math", _dtype),
    Setting("class_weight", "model", None, "weigh each class's samples: balanced (n / "
            "(classes * count), scikit-learn's meaning; Python also takes a dict {class: "
            "weight}), times any sample weights", _class_weight, _class_weight_text),
    # where the math runs
    Setting("backend", "where", None, "array library, or namespace:MODULE for any Array API "
            "module (default: $XPNET_BACKEND or numpy)", _backend),
    Setting("device", "where", None, "cpu, gpu, gpu:N or an index N (default: the backend's own)",
            _device),
    Setting("data_parallel", "where", False, "jax: split the samples over the devices (all JAX "
            "sees, or --devices N) and sum the gradients across them; the same results as one "
            "device", _flag, cli="switch"),
    Setting("devices", "where", None, "device count for data-parallel training",
            _optional(_integer()), _int_text),
    # training: the fields of a Plan
    Setting("epochs", "training", 200, "passes over the data (full-batch steps, epochs of "
            "mini-batches, or L-BFGS iterations: at most that many)", _epochs, _int_text),
    Setting("optimizer", "training", "sgd", "sgd, momentum, nesterov, adam, adamw: gradient "
            "steps; lbfgs: full-batch L-BFGS with its own line search, stopping once converged",
            _one_of(OPTIMIZER_CHOICES, "optimizer")),
    Setting("lr", "training", None, "learning rate (epsilon); default: 0.1 for sgd, momentum and "
            "nesterov, 0.001 for adam and adamw", _optional(_number(low_open=True)), _float_text),
    Setting("momentum", "training", 0.9, "of optimizer momentum and nesterov",
            _number(0, 1, high_open=True), _float_text),
    Setting("weight_decay", "training", 0.01, "decoupled weight decay of optimizer adamw",
            _number(), _float_text),
    Setting("schedule", "training", "constant", "learning-rate schedule (invscaling: lr / (t + "
            "1)^power_t; step: times gamma every step_size steps; cosine: to 0 at the last step, "
            "after warmup steps)", _one_of(SCHEDULES, "schedule")),
    Setting("warmup", "training", 0, "steps of linear warm-up to lr (step t at lr (t + 1) / "
            "warmup) before schedule cosine decays", _integer(0), _int_text, metavar="N"),
    Setting("power_t", "training", 0.5, "exponent of schedule invscaling", _number(),
            _float_text),
    Setting("step_size", "training", None, "steps between decays of schedule step (needed by it)",
            _optional(_integer()), _int_text),
    Setting("gamma", "training", 0.1, "factor of each decay of schedule step",
            _number(0, 1, low_open=True), _float_text),
    Setting("tol", "training", 1e-4, "lbfgs stops once the largest gradient entry is at most "
            "this", _number(), _float_text),
    Setting("max_fun", "training", 15000, "lbfgs stops after this many loss evaluations",
            _integer(), _int_text),
    Setting("clip_norm", "training", None, "scale the gradients down to at most this global L2 "
            "norm", _optional(_number(low_open=True)), _float_text),
    Setting("batch_size", "training", None, "mini-batches of N rows, reshuffled every epoch "
            "(default: full batch)", _optional(_integer()), _int_text),
    Setting("shuffle", "training", True, "reshuffle the mini-batches every epoch", _flag,
            cli="flag"),
    Setting("shuffle_seed", "training", 0, "seed of the mini-batch order", _integer(0, SEED_MAX),
            _int_text),
    Setting("stream", "training", False, "keep the data in host memory (or a memory map) and send "
            "it to the device a block of mini-batches at a time", _flag, cli="switch"),
    Setting("dropout", "training", 0.0, "drop each hidden unit with this probability at every "
            "training step (inverted: the kept ones scaled by 1 / (1 - rate); nothing dropped "
            "when predicting); one rate, or one per hidden layer, e.g. 0.5,0.2", _dropout,
            _dropout_text, metavar="RATE"),
    Setting("dropout_seed", "training", 0, "seed of the dropout masks (the same on every "
            "backend)", _integer(0, SEED_MAX), _int_text),
    Setting("reg", "training", 1e-4, "L2 strength on weights: reg / (2 n) * sum |W|^2",
            _number(), _float_text),
    Setting("reduction", "training", "mean", "the step follows the mean loss's gradient, or n "
            "times it (sum: the seeds)", _one_of(REDUCTIONS, "reduction")),
    Setting("record", "training", "after", "a full-batch pass's loss is recorded after its "
            "update or before it (seed 001)", _one_of(RECORDS, "record")),
    Setting("loss_every", "training", 1, "record the loss every N epochs (and at the last)",
            _integer(), _int_text, cli="none"),
    # run: how a fit is driven
    Setting("checkpoint", "run", None, "model file written every checkpoint_every epochs",
            _optional(validation.model_file), cli="none"),
    Setting("checkpoint_every", "run", None, "also write the model file every N epochs",
            _optional(_integer()), _int_text, metavar="N"),
)  # fmt: skip
SETTINGS: dict[str, Setting] = {s.name: s for s in _ROWS}
"""Every setting by its Python name."""


def names(group: str) -> tuple[str, ...]:
    """The settings of ``group``, in table order."""
    return tuple(s.name for s in _ROWS if s.group == group)


def check(name: str, value: Any, spell: Callable[[str], str] | None = None) -> Any:
    """``value`` checked as setting ``name`` (its error naming it as ``spell`` spells it)."""
    return SETTINGS[name].validate(value, None if spell is None else spell(name))


# -- the plan -------------------------------------------------------------------------------------
DEFAULTS: dict[str, Any] = {s.name: s.default for s in _ROWS}
"""Every setting's default by name."""


@dataclass(frozen=True)
class Plan:
    """The training settings of one run, checked and complete: a field for each ``training``
    setting of :data:`SETTINGS`, its default the table's."""

    epochs: int = DEFAULTS["epochs"]
    optimizer: str = DEFAULTS["optimizer"]
    lr: float | None = DEFAULTS["lr"]
    """None: :data:`DEFAULT_LR` of the optimizer (L-BFGS has none)."""
    momentum: float = DEFAULTS["momentum"]
    weight_decay: float = DEFAULTS["weight_decay"]
    schedule: str = DEFAULTS["schedule"]
    power_t: float = DEFAULTS["power_t"]
    step_size: int | None = DEFAULTS["step_size"]
    gamma: float = DEFAULTS["gamma"]
    warmup: int = DEFAULTS["warmup"]
    tol: float = DEFAULTS["tol"]
    max_fun: int = DEFAULTS["max_fun"]
    clip_norm: float | None = DEFAULTS["clip_norm"]
    batch_size: int | None = DEFAULTS["batch_size"]
    shuffle: bool = DEFAULTS["shuffle"]
    shuffle_seed: int = DEFAULTS["shuffle_seed"]
    stream: bool = DEFAULTS["stream"]
    dropout: float | tuple[float, ...] = DEFAULTS["dropout"]
    dropout_seed: int = DEFAULTS["dropout_seed"]
    reg: float = DEFAULTS["reg"]
    reduction: str = DEFAULTS["reduction"]
    record: str = DEFAULTS["record"]
    loss_every: int = DEFAULTS["loss_every"]

    @property
    def solver(self) -> str | None:
        """The solver that searches its own steps (``lbfgs``), or None for gradient steps."""
        return self.optimizer if self.optimizer in SOLVERS else None

    @property
    def rate(self) -> float:
        """The learning rate gradient steps start from."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def steps(self, n_samples: int) -> int:
        """Gradient steps in the whole run on ``n_samples`` rows (a cosine schedule decays
        over them)."""
        if self.batch_size is None:
            return self.epochs
        return self.epochs * -(-n_samples // min(self.batch_size, n_samples))

    def replace(self, **changes: Any) -> Plan:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (model files record the plan)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], checked: bool = False) -> Plan:
        """A plan read back from :meth:`to_dict` (unknown keys ignored, missing ones defaulted);
        ``checked``: each value checked as its setting (ConfigError naming it), as a model
        file's must be."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in fields}
        if checked:
            kept = {k: v if v is None and SETTINGS[k].default is None else check(k, v)
                    for k, v in kept.items()}  # fmt: skip
        return cls(**kept)


PLAN_FIELDS = tuple(f.name for f in dataclasses.fields(Plan))
assert set(PLAN_FIELDS) == set(names("training")), "every training setting is a Plan field"


# -- the rules between settings -------------------------------------------------------------------
class Rule(NamedTuple):
    """While ``when(values)`` holds, none of ``refused`` may be given: "{reason}; leave out ..."."""

    when: Callable[[Mapping[str, Any]], bool]
    refused: tuple[str, ...]
    reason: Callable[[Callable[[str], str]], str]


def _is_lbfgs(v: Mapping[str, Any]) -> bool:
    return v.get("optimizer") in SOLVERS


def _no_dropout(v: Mapping[str, Any]) -> bool:
    rates = v.get("dropout") or 0.0
    return not any(rates) if isinstance(rates, tuple) else not rates


GRADIENT_STEP = ("lr", "momentum", "weight_decay", "schedule", "power_t", "step_size", "gamma",
                 "warmup", "clip_norm")  # fmt: skip
"""What only gradient-step optimizers take."""
RULES: tuple[Rule, ...] = (
    Rule(lambda v: bool(v.get("optimizer_object")), GRADIENT_STEP,
         lambda s: f"an optimizer object ({s('optimizer')}) carries its own rate, schedule and "
                   "clipping"),
    Rule(_is_lbfgs, (*GRADIENT_STEP, "batch_size", "shuffle", "shuffle_seed", "stream",
                     "data_parallel"),
         lambda s: f"{s('optimizer')} 'lbfgs' searches its own step lengths on the whole data "
                   "set, on one device"),
    Rule(lambda v: not _is_lbfgs(v), ("tol", "max_fun"),
         lambda s: f"{s('tol')} and {s('max_fun')} apply to {s('optimizer')} 'lbfgs' only"),
    Rule(lambda v: v.get("optimizer", "sgd") not in ("momentum", "nesterov"), ("momentum",),
         lambda s: f"{s('momentum')} applies to {s('optimizer')} 'momentum' or 'nesterov' only"),
    Rule(lambda v: v.get("optimizer", "sgd") != "adamw", ("weight_decay",),
         lambda s: f"{s('weight_decay')} applies to {s('optimizer')} 'adamw' only"),
    Rule(lambda v: v.get("schedule", "constant") != "invscaling", ("power_t",),
         lambda s: f"{s('power_t')} applies to {s('schedule')} 'invscaling' only"),
    Rule(lambda v: v.get("schedule", "constant") != "step", ("step_size", "gamma"),
         lambda s: f"{s('step_size')} and {s('gamma')} apply to {s('schedule')} 'step' only"),
    Rule(lambda v: v.get("schedule", "constant") != "cosine", ("warmup",),
         lambda s: f"{s('warmup')} applies to {s('schedule')} 'cosine' only"),
    Rule(lambda v: v.get("batch_size") is None, ("shuffle", "shuffle_seed", "stream"),
         lambda s: f"{s('shuffle')}, {s('shuffle_seed')} and {s('stream')} apply to mini-batch "
                   f"training ({s('batch_size')}) only"),
    Rule(lambda v: _is_lbfgs(v) and not _no_dropout(v), ("dropout",),
         lambda s: f"{s('dropout')} draws new masks every step, and {s('optimizer')} 'lbfgs' "
                   "needs the same loss for its whole line search"),
    Rule(_no_dropout, ("dropout_seed",),
         lambda s: f"{s('dropout_seed')} seeds the masks of {s('dropout')}, which is 0"),
    Rule(lambda v: v.get("loss") != "huber", ("delta",),
         lambda s: f"{s('delta')} applies to {s('loss')} 'huber' only"),
    Rule(lambda v: v.get("loss") != "quantile", ("quantile",),
         lambda s: f"{s('quantile')} applies to {s('loss')} 'quantile' only"),
    Rule(lambda v: regresses(v.get("loss", "")), ("class_weight",),
         lambda s: f"{s('class_weight')} weighs classes, and a regression {s('loss')} has "
                   "none"),
    Rule(lambda v: not v.get("data_parallel"), ("devices",),
         lambda s: f"{s('devices')} is the device count of data-parallel training "
                   f"({s('data_parallel')})"),
)  # fmt: skip
NEEDS: tuple[tuple[str, str, str, str], ...] = (
    ("step_size", "schedule", "step", "the steps between its decays"),
    ("checkpoint", "checkpoint_every", "", "how often to write it"),
    ("checkpoint_every", "checkpoint", "", "the model file it writes"),
)
"""(setting, the setting it depends on, the value of that one that needs it, why): ``schedule
'step'`` needs ``step_size``; a ``checkpoint`` file needs ``checkpoint_every`` and the other
way round."""


def python_name(name: str) -> str:
    return name


def apply_rules(
    values: Mapping[str, Any],
    given: Sequence[str],
    spell: Callable[[str], str] = python_name,
    *,
    skip: Sequence[str] = (),
) -> None:
    """Raise ConfigError if the settings ``values`` break a rule; ``given`` are the settings the
    caller set (a rule refuses only those), ``skip`` those a front-end's contract exempts."""
    set_ = [g for g in given if g not in skip]
    for rule in RULES:
        if rule.when(values):
            bad = [n for n in rule.refused if n in set_]
            if bad:
                raise ConfigError(f"{rule.reason(spell)}; leave out {', '.join(map(spell, bad))}")
    rates, hidden = values.get("dropout"), values.get("hidden")
    if isinstance(rates, tuple) and hidden is not None:  # one rate per hidden layer
        from xpnet.dropout import rates as per_layer

        per_layer(rates, len(hidden), spell("dropout"), spell("hidden"))
    for name, other, value, why in NEEDS:
        if name in skip or other in skip:
            continue
        if value:  # that value of `other` needs `name`
            if values.get(other) == value and values.get(name) is None:
                raise ConfigError(f"{spell(other)} '{value}' needs {spell(name)} ({why})")
        elif values.get(name) is not None and values.get(other) is None:
            raise ConfigError(f"{spell(name)} needs {spell(other)} ({why})")


def plan(
    spell: Callable[[str], str] = python_name,
    *,
    base: Plan | None = None,
    context: Mapping[str, Any] | None = None,
    **given: Any,
) -> Plan:
    """The :class:`Plan` of the training settings ``given`` (None: not given) over ``base``
    (default: the table's defaults), each checked, and the :data:`RULES` applied to the given
    ones together with the ``context`` settings (where and run settings: data_parallel,
    checkpoint...). ``spell`` names settings in messages."""
    unknown = set(given) - set(PLAN_FIELDS)
    if unknown:
        raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}; valid "
                          f"ones: {', '.join(PLAN_FIELDS)}")  # fmt: skip
    set_ = {k: v for k, v in given.items() if v is not None}
    values = {k: check(k, v, spell) for k, v in set_.items()}
    context = {k: check(k, v, spell) if k in SETTINGS and v is not None else v
               for k, v in (context or {}).items()}  # fmt: skip
    ctx_given = [k for k, v in context.items() if v is not None and v is not False]
    # a switch given at its default (stream=False, shuffle=True) asks for nothing
    asked = [k for k, v in values.items()
             if not (SETTINGS[k].cli in ("switch", "flag") and v == SETTINGS[k].default)]  # fmt: skip
    base = base or Plan()
    apply_rules({**context, **base.to_dict(), **values}, [*asked, *ctx_given], spell)
    return base.replace(**values)


def help_table() -> list[tuple[str, str]]:
    """(option, help) of every setting on the command line (the reference documentation)."""
    return [(s.option, s.help_text()) for s in _ROWS if s.cli != "none"]


ESTIMATOR_NAMES = {
    "hidden_layer_sizes": "hidden", "solver": "optimizer", "learning_rate_init": "lr",
    "alpha": "reg", "max_iter": "epochs", "learning_rate": "schedule", "random_state": "init_seed",
}  # fmt: skip
"""scikit-learn's names for xpnet's settings (the others are spelled alike)."""
_ESTIMATOR_SPELLING = {v: k for k, v in ESTIMATOR_NAMES.items()}


def estimator_name(name: str) -> str:
    """How the estimators spell setting ``name`` (scikit-learn's names)."""
    return _ESTIMATOR_SPELLING.get(name, name)


def add_options(
    parser: Any, which: Sequence[str], *, defaults: Mapping[str, Any] | None = None, where: str = ""
) -> None:
    """Add the command-line options of the settings ``which`` to an argparse ``parser``:
    parsed and checked by the table (one-line errors in its wording), help and choices
    generated from it. An option left out is None ("not given"); ``defaults`` (from ``where``,
    e.g. "recipe britz") are what the help says it then means."""
    import argparse

    for name in which:
        s = SETTINGS[name]
        shown = s.help_text(None if defaults is None else defaults.get(name),
                            where if defaults is not None and name in defaults else "")  # fmt: skip
        kw: dict[str, Any] = {"help": shown, "default": None}
        if s.cli == "switch":
            kw.update(action="store_true")
        elif s.cli == "flag":
            kw.update(action=argparse.BooleanOptionalAction)
        else:
            kw.update(type=_converter(s), metavar=s.metavar or name.upper())
        parser.add_argument(s.option, **kw)


def _converter(s: Setting) -> Callable[[str], Any]:
    """An argparse type: parse the text and check it as the setting, so a mistake on the command
    line reads as the API's does (naming the option)."""
    import argparse

    def convert(text: str) -> Any:
        try:
            value = s.parse(text)
            checked = s.validate(value, s.option)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text if checked is None else checked  # "none" stays itself: it was given

    convert.__name__ = s.option
    return convert

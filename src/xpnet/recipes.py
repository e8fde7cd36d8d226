"""Recipes: the seeds' complete runs as named sets of defaults, and the function that runs one.

A :class:`Recipe` holds every setting of a training run (data, architecture, initialisation,
the training plan, logging, backend). ``get("av-toy").replace(backend="jax", epochs=500)`` overrides any
of them; :func:`run` loads the data, builds the network(s) and trains. The command line's ``xpnet
train --recipe NAME`` is this plus printing. The seeds' particular settings (summed gradients,
their initialisations, reg 0.01, 20000 passes) live here, not in :class:`~xpnet.model.Network`'s
defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from xpnet import datasets, mlp, settings, validation
from xpnet.callbacks import At, Callback
from xpnet.errors import ConfigError, DataError
from xpnet.init import initial_params
from xpnet.model import Network
from xpnet.settings import DEFAULTS, PLAN_FIELDS, Plan

LOG_FORMATS = {
    "loss": "Loss after iteration %i: %f",  # seed 000
    "error": "Error at epoch %i is %.5f",  # seed 001
}


@dataclass(frozen=True)
class Recipe:
    """Every setting of one training run: the data, the network (defaults: the settings table's,
    :mod:`xpnet.settings`), the training :class:`~xpnet.settings.Plan`, logging and placement.
    The recipes in :data:`RECIPES` name the settings of their seed."""

    name: str = "custom"
    summary: str = ""
    # data
    dataset: str = "moons"
    n_samples: int = 200
    noise: float = 0.2
    data_seed: int = 0
    target: str | None = None
    validation_fraction: float | None = None
    """Hold out this share of the data (from ``data_seed``, stratified by class where it
    classifies): its loss and score (accuracy, or R² for regression) are recorded every
    epoch (``Network.fit``'s ``validation_data``)."""
    scale: str | None = DEFAULTS["scale"]
    # architecture and initial weights
    hidden: tuple[int, ...] = DEFAULTS["hidden"]
    activation: str = DEFAULTS["activation"]
    loss: str = DEFAULTS["loss"]
    delta: float = DEFAULTS["delta"]
    quantile: float = DEFAULTS["quantile"]
    bias: bool = DEFAULTS["bias"]
    init: str = DEFAULTS["init"]
    init_seed: int = DEFAULTS["init_seed"]
    models_before: tuple[tuple[int, ...], ...] = ()
    """Layer sizes of earlier models drawn from the same init stream first (seed 001 keeps one
    ``np.random.seed(42)`` stream across its models)."""
    dtype: str = DEFAULTS["dtype"]
    class_weight: Any = DEFAULTS["class_weight"]
    # training
    plan: Plan = dataclasses.field(default_factory=Plan)
    manual_step_lr: float | None = None
    """If set, first take one step of plain gradient descent at this rate on a model drawn from
    the stream (seed 001), whatever the optimizer of the run."""
    # output
    print_every: int = 1000
    log: str = "loss"
    # where
    backend: str | None = DEFAULTS["backend"]
    device: str | None = DEFAULTS["device"]
    data_parallel: bool = DEFAULTS["data_parallel"]
    """JAX: split the samples over ``devices`` devices (default: all JAX sees)."""
    devices: int | None = DEFAULTS["devices"]

    def replace(self, **changes: Any) -> Recipe:
        """Return a copy with ``changes``, the plan's fields (``epochs``, ``lr``...) among them
        (unknown names raise ConfigError)."""
        own = {f.name for f in dataclasses.fields(self)} - {"plan"}
        planned = {k: changes.pop(k) for k in list(changes) if k in PLAN_FIELDS}
        unknown = set(changes) - own
        if unknown:
            raise ConfigError(f"unknown recipe settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, plan=self.plan.replace(**planned), **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values, the plan's flat beside the others (stored in
        model files)."""
        values = dataclasses.asdict(self)
        return {**{k: v for k, v in values.items() if k != "plan"}, **self.plan.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Recipe:
        """Rebuild a recipe from :meth:`to_dict` (lists back to tuples; unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"plan"}
        fixed = {k: v for k, v in values.items() if k in names}
        if "hidden" in fixed:
            fixed["hidden"] = tuple(fixed["hidden"])
        if "models_before" in fixed:
            fixed["models_before"] = tuple(tuple(m) for m in fixed["models_before"])
        return cls(**fixed, plan=Plan.from_dict(values, checked=True))

    @property
    def unit(self) -> str:
        """What one of the recipe's ``epochs`` is: a pass, an epoch, an L-BFGS iteration."""
        if self.plan.solver is not None:
            return "iteration"
        return "pass" if self.plan.batch_size is None else "epoch"

    def log_line(self, i: int, value: float) -> str:
        """Return the seed's log line for pass ``i``."""
        return validation.choice(LOG_FORMATS, self.log, "log format") % (i, value)


SEED000 = Recipe(
    name="britz",
    summary="seed 000: moons 200, tanh hidden 3, softmax, reg 0.01, epsilon 0.01, 20000 passes",
    hidden=(3,), activation="tanh", init="britz", init_seed=0,
    plan=Plan(epochs=20000, optimizer="sgd", lr=0.01, reg=0.01, reduction="sum"),
)  # fmt: skip
"""Seed 000: its data, network, initial weights and plain gradient descent with summed gradients."""
SEED001: dict[str, Any] = dict(activation="sigmoid", loss="squared_error", bias=False, init="uniform",
               init_seed=42, log="error")  # fmt: skip
"""What both of seed 001's runs share: sigmoid units without biases, uniform weights from one
``np.random.seed(42)`` stream, half squared error reported before each update, lr 0.1."""
SEED001_PLAN = Plan(optimizer="sgd", lr=0.1, reg=0.0, reduction="sum", record="before")

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        SEED000,
        SEED000.replace(
            name="britz-gpu",
            summary="seed 000's GPU sequel: moons 5000, hidden 1000, float32, mean cross-entropy",
            n_samples=5000,
            hidden=(1000,),
            dtype="float32",
            reduction="mean",
        ),
        Recipe(
            name="av-toy",
            summary="seed 001: 4-3-1 sigmoid net, no biases, toy set; one step at lr 0.01, "
            "then 1000 epochs at lr 0.1",
            dataset="toy",
            hidden=(3,),
            plan=SEED001_PLAN.replace(epochs=1000),
            manual_step_lr=0.01,
            print_every=100,
            **SEED001,
        ),
        Recipe(
            name="av-moons",
            summary="seed 001 on moons 1000 (noise 0.1, global min-max), hidden 10, "
            "lr 0.1, 10000 epochs",
            n_samples=1000,
            noise=0.1,
            data_seed=42,
            scale="minmax-global",
            hidden=(10,),
            models_before=((4, 3, 1), (4, 3, 1)),
            plan=SEED001_PLAN.replace(epochs=10000),
            print_every=1000,
            **SEED001,
        ),
    )
}
DEFAULT_RECIPE = "britz"


def get(name: str) -> Recipe:
    """Return the recipe called ``name`` (see :data:`RECIPES`)."""
    return validation.choice(RECIPES, name, "recipe")


def load_data(recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Return the recipe's training data ``(X (n, d), y (n,))`` on the host (without the rows
    ``validation_fraction`` holds out)."""
    X, y, _ = load_split(recipe)
    return X, y


def load_split(
    recipe: Recipe,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Return the recipe's training data and its held-out ``(X_val, y_val)`` (None without
    ``validation_fraction``): a split drawn from ``data_seed``, the same every time, stratified
    by class (not for a regression loss)."""
    X, y = datasets.load(
        recipe.dataset,
        n_samples=recipe.n_samples,
        noise=recipe.noise,
        seed=recipe.data_seed,
        target=recipe.target,
    )
    if recipe.validation_fraction is None:
        return X, y, None
    fraction = validation.number("validation_fraction", recipe.validation_fraction, 0, 1,
                                 low_open=True, high_open=True)  # fmt: skip
    from sklearn.model_selection import train_test_split

    try:
        strata = None if settings.regresses(recipe.loss) else y
        X, X_val, y, y_val = train_test_split(X, y, test_size=fraction, stratify=strata,
                                              random_state=recipe.data_seed)  # fmt: skip
    except ValueError as exc:  # too few rows of a class to hold some out
        raise DataError(f"validation_fraction {fraction}: {exc}") from None
    return X, y, (X_val, y_val)


def init_stream(recipe: Recipe) -> np.random.RandomState:
    """Return the recipe's init stream, advanced past ``models_before``."""
    rng = np.random.RandomState(recipe.init_seed)
    for sizes in recipe.models_before:
        initial_params(mlp.Spec(sizes, recipe.activation, recipe.loss, recipe.bias), recipe.init,
                       rng)  # fmt: skip
    return rng


def network(recipe: Recipe, rng: np.random.RandomState | int | None = None) -> Network:
    """Return an unfitted :class:`Network` with the recipe's architecture and placement."""
    return Network(
        recipe.hidden,
        activation=recipe.activation,
        loss=recipe.loss,
        delta=recipe.delta,
        quantile=recipe.quantile,
        bias=recipe.bias,
        init=recipe.init,
        init_seed=recipe.init_seed if rng is None else rng,
        scale=recipe.scale,
        backend=recipe.backend,
        device=recipe.device,
        dtype=recipe.dtype,
        class_weight=recipe.class_weight,
        data_parallel=recipe.data_parallel,
        devices=recipe.devices,
        info={"recipe": recipe.to_dict()},
    )


class RecipeRun(NamedTuple):
    net: Network
    """The trained network."""
    X: np.ndarray
    y: np.ndarray
    manual: Network | None
    """Seed 001's one manual step (``manual_step_lr``), drawn from the stream first; else None."""
    last_params: dict[str, np.ndarray]
    """The parameters the last epoch's forward pass saw (before its update)."""

    def outputs(self) -> np.ndarray:
        """The network's outputs (n, n_out) in the forward pass of the last epoch, before its
        update: what seed 001's notebook prints as its final ``output``."""
        return last_outputs(self.net, self.last_params, self.X)


def last_outputs(net: Network, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The outputs (n, n_out) of ``net`` with ``params`` on X (the recipe's scaling applied)."""
    return np.asarray(mlp.predict_proba(np, params, net._scaled(X), net.spec_))


def train(
    net: Network,
    recipe: Recipe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> dict[str, np.ndarray]:
    """Fit (or with ``resume`` continue) ``net`` on X, y as the recipe says; ``options`` go to
    :meth:`Network.fit` (chunk size, loss_every, checkpoints...). Return the parameters of the
    last epoch's forward pass (see :meth:`RecipeRun.outputs`)."""
    seen: list[dict[str, np.ndarray]] = []
    plugins = [*callbacks]
    epochs = recipe.plan.epochs
    if epochs > 1:
        plugins.append(At(epochs - 1, lambda run: seen.append(run.host_params())))
    if resume:
        net.resume(X, y, epochs=epochs, callbacks=plugins, **options)
    else:
        net.fit(X, y, plan=recipe.plan, callbacks=plugins, **options)
    if net.passes_done_ < epochs:  # stopped early (L-BFGS converged): its final state
        return net.params_
    return seen[-1] if seen else net.initial_params_


def run(
    recipe: Recipe | str,
    *,
    callbacks: Sequence[Callback] = (),
    on_network: Callable[[Network], None] | None = None,
    on_manual: Callable[[Network, np.ndarray], None] | None = None,
    on_data: Callable[[np.ndarray, np.ndarray], None] | None = None,
    **options: Any,
) -> RecipeRun:
    """Load the data, build and train the recipe's network(s); return a :class:`RecipeRun`.

    ``on_data(X, y)`` is called once the data is loaded (a caller's checks of it, before any
    training), ``on_manual(net, X)`` after seed 001's manual step, ``on_network(net)`` with the main
    network before it trains, so a caller can keep a handle on it if training is interrupted or
    diverges (the network then holds the state so far, see :meth:`Network.fit`). ``callbacks``
    and ``options`` (chunk_size, loss_every, checkpoint, checkpoint_every...) go to
    :meth:`Network.fit`."""
    if isinstance(recipe, str):
        recipe = get(recipe)
    X, y, held = load_split(recipe)
    if on_data is not None:
        on_data(X, y)
    rng = init_stream(recipe)
    manual = None
    if recipe.manual_step_lr is not None:
        plan = recipe.plan  # the seed's hand-written step: plain gradient descent
        manual = network(recipe, rng).fit(X, y, epochs=1, optimizer="sgd",
                                          lr=recipe.manual_step_lr, reg=plan.reg,
                                          reduction=plan.reduction, record=plan.record)  # fmt: skip
        if on_manual is not None:
            on_manual(manual, X)
    net = network(recipe, rng)
    if on_network is not None:
        on_network(net)
    last = train(net, recipe, X, y, callbacks=callbacks, validation_data=held, **options)
    return RecipeRun(net, X, y, manual, last)

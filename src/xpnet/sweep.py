"""Seed 000's sweep: one network per hidden layer size on the same data, trained in one process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from xpnet import recipes, validation
from xpnet.model import Network


def models(
    recipe: recipes.Recipe | str, sizes: Sequence[int]
) -> Iterator[tuple[int, recipes.Recipe, Network]]:
    """Yield ``(size, recipe, net)`` for each hidden size: the recipe with one hidden layer of
    that size and its unfitted network (fresh initial weights per model, as seed 000 draws them)."""
    if isinstance(recipe, str):
        recipe = recipes.get(recipe)
    for size in validation.hidden(tuple(sizes)):
        r = recipe.replace(hidden=(size,))
        yield size, r, recipes.network(r, recipes.init_stream(r) if r.models_before else None)


def sweep(
    recipe: recipes.Recipe | str,
    sizes: Sequence[int],
    X: np.ndarray | None = None,
    y: np.ndarray | None = None,
    *,
    on_done: Callable[[int, Network], None] | None = None,
    **options: Any,
) -> list[Network]:
    """Train the recipe's network once per hidden size in ``sizes`` (see :func:`models`) on X, y
    (default: the recipe's data). Returns the trained networks in order; ``on_done(size, net)``
    is called after each; ``options`` go to :meth:`Network.fit` (loss_every, callbacks...)."""
    if isinstance(recipe, str):
        recipe = recipes.get(recipe)
    if X is None or y is None:
        X, y = recipes.load_data(recipe)
    nets = []
    for size, r, net in models(recipe, sizes):
        recipes.train(net, r, X, y, **options)
        if on_done is not None:
            on_done(size, net)
        nets.append(net)
    return nets

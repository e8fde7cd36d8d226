"""A dense network of any depth: forward pass, loss and hand-written backpropagation.

Parameters are a dict ``{"W1": (n_in, h1), "b1": (h1,), ..., "WL": (h_{L-1}, n_out), "bL": (n_out,)}``
(biases absent when ``spec.bias`` is False). Layer l computes ``z_l = a_{l-1} @ W_l + b_l``; hidden
layers apply ``spec.activation``, the last layer the output of ``spec.loss``.

The loss is ``(sum_i loss_i + reg/2 * sum_l |W_l|^2) / n`` (seed 000's printed loss, scikit-learn's
``alpha / (2 n)`` scaling). ``reduction="mean"`` returns its gradient; ``reduction="sum"`` returns n
times it, the seeds' summed gradients. Optional sample ``weights`` (n,) make it
``(sum_i w_i loss_i + reg/2 * sum_l |W_l|^2) / sum_i w_i``: weights of 1 change nothing, a row of
weight 0 counts as absent (data-parallel training pads batches with such rows). Everything is pure
and uses only the namespace ``xp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from xpnet import activations, dropout, fused, losses, validation
from xpnet._typing import Array, Params
from xpnet.errors import ConfigError

REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Spec:
    """Architecture: ``sizes = (n_in, h1, ..., n_out)``, hidden activation, output loss, biases,
    and the loss's own settings (huber's ``delta``, quantile's ``quantile``)."""

    sizes: tuple[int, ...]
    activation: str = "tanh"
    loss: str = "cross_entropy"
    bias: bool = True
    delta: float = losses.OPTIONS["delta"]
    quantile: float = losses.OPTIONS["quantile"]
    # resolved once here, so that a training pass looks nothing up
    act: activations.Activation = field(init=False, repr=False, compare=False)
    out: losses.OutputLoss = field(init=False, repr=False, compare=False)
    n_layers: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or any(
            not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes
        ):
            raise ConfigError(
                f"layer sizes must be two or more positive integers (n_in, ..., n_out); got {sizes}"
            )
        if self.loss == "cross_entropy" and sizes[-1] < 2:
            raise ConfigError("cross_entropy is a softmax over the outputs and needs two or more "
                              f"(a softmax over one unit is always 1); got {sizes[-1]}: use "
                              "squared_error or binary_cross_entropy for one sigmoid unit")  # fmt: skip
        out = losses.get(self.loss)
        options = losses.check_options(self.delta, self.quantile)
        for name, value in options.items():  # a setting its loss lacks stays at the default,
            # so that equal math is an equal (cache-sharing) Spec
            used = value if name in out.options else losses.OPTIONS[name]
            object.__setattr__(self, name, used)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "act", activations.get(self.activation))
        object.__setattr__(self, "out", losses.get(self.loss, delta=self.delta,
                                                   quantile=self.quantile))  # fmt: skip
        object.__setattr__(self, "n_layers", len(sizes) - 1)

    def __reduce__(
        self,
    ) -> tuple[type[Spec], tuple[tuple[int, ...], str, str, bool, float, float]]:
        # pickled as what defines it: the resolved functions are looked up again on loading
        return Spec, (self.sizes, self.activation, self.loss, self.bias, self.delta,
                      self.quantile)  # fmt: skip

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Return ``{name: shape}`` in layer order, W before b."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:], strict=False), 1):
            shapes[f"W{layer}"] = (n_in, n_out)
            if self.bias:
                shapes[f"b{layer}"] = (n_out,)
        return shapes


def flops(spec: Spec, n: int) -> float:
    """Matrix-multiply FLOPs of one training pass over n rows: forward ``2 n i o`` a layer, ``dW``
    as much again, and the delta sent back for every layer but the first (no gradient for the
    input): the engine's first estimate of how long a pass takes."""
    pairs = list(zip(spec.sizes, spec.sizes[1:], strict=False))
    return float(sum((4 if k == 0 else 6) * n * i * o for k, (i, o) in enumerate(pairs)))


def _affine(xp: ModuleType, params: Params, layer: int, a: Array) -> Array:
    return fused.affine(xp, a, params[f"W{layer}"], params.get(f"b{layer}"))


def hidden_forward(
    xp: ModuleType, params: Params, X: Array, spec: Spec, noise: dropout.Dropout | None = None
) -> tuple[list[Array], Array]:
    """Return ``(acts, z_out)``: ``acts = [X, a_1, ..., a_{L-1}]`` (each (n, size); with
    ``noise``, after dropout) and the output layer's pre-activation ``z_out`` (n, n_out)."""
    acts, _, _, z_out = _forward(xp, params, X, spec, False, noise)
    return acts, z_out


Dropped = tuple[Array, Array] | None
"""A hidden layer's activation before dropout and its multiplier (see :mod:`xpnet.dropout`), or
None where nothing is dropped."""


def _forward(
    xp: ModuleType,
    params: Params,
    X: Array,
    spec: Spec,
    keep_z: bool,
    noise: dropout.Dropout | None,
) -> tuple[list[Array], list[Array | None], list[Dropped], Array]:
    """:func:`hidden_forward` plus the hidden pre-activations (None unless ``keep_z``) and, per
    hidden layer, what dropout kept (:data:`Dropped`)."""
    act, last = spec.act, spec.n_layers
    acts: list[Array] = [X]
    zs: list[Array | None] = [None]
    dropped: list[Dropped] = [None]
    a = X
    for layer in range(1, last):
        z = _affine(xp, params, layer, a)
        a = fused.activation(xp, act, z)
        rate = dropout.of(noise, layer)
        if rate:
            assert noise is not None
            m = dropout.scale(xp, noise.draw, layer, spec.sizes[layer], rate, a.dtype)
            dropped.append((a, m))
            a = a * m
        else:
            dropped.append(None)
        acts.append(a)
        zs.append(z if keep_z else None)
    return acts, zs, dropped, _affine(xp, params, last, a)


def predict_proba(xp: ModuleType, params: Params, X: Array, spec: Spec) -> Array:
    """Return the output probabilities (n, n_out)."""
    return spec.out.output(xp, hidden_forward(xp, params, X, spec)[1])


def class_probabilities(xp: ModuleType, out: Array, spec: Spec) -> Array:
    """Return class probabilities (n, k) from a classifier's outputs (n, n_out): one sigmoid unit
    is P(class 1), so ``[1 - a, a]``; seed 001's independent sigmoid units (``squared_error``)
    are divided by their row's sum (all zero: no preference); softmax outputs and a multilabel
    model's log-loss units are probabilities already. (The decisions follow ``spec``, not the
    array's shape, which a traced array may not know.)"""
    if spec.sizes[-1] == 1:
        return xp.concat([1 - out, out], axis=1)
    if spec.loss == "squared_error":
        total = xp.sum(out, axis=1, keepdims=True)
        some = total > 0
        ones = xp.ones_like(out)
        even = ones / xp.sum(ones, axis=1, keepdims=True)  # 1 / k without a static shape
        return xp.where(some, out / xp.where(some, total, xp.ones_like(total)), even)
    return out


def _weight_penalty(xp: ModuleType, params: Params, spec: Spec) -> Array:
    total = 0.0
    for layer in range(1, spec.n_layers + 1):
        W = params[f"W{layer}"]
        total = total + xp.sum(W * W)
    return total


def _mean_loss(
    xp: ModuleType, params: Params, loss_sum: Array, n: Array | int, spec: Spec, reg: float
) -> Array:
    if reg:
        loss_sum = loss_sum + (reg / 2) * _weight_penalty(xp, params, spec)
    return loss_sum / n


def _column(xp: ModuleType, weights: Array | None, T: Array) -> tuple[Array | None, Array | int]:
    """Return sample weights (n,) as a column (n, 1) (or None) and the count they stand for."""
    if weights is None:
        return None, T.shape[0]
    return xp.reshape(weights, (-1, 1)), xp.sum(weights)


def loss(
    xp: ModuleType,
    params: Params,
    X: Array,
    T: Array,
    spec: Spec,
    reg: float = 0.0,
    weights: Array | None = None,
    noise: dropout.Dropout | None = None,
) -> Array:
    """Return the 0-d loss ``(sum_i w_i loss_i + reg/2 sum |W|^2) / sum_i w_i`` (w = 1 when
    ``weights`` is None); X (n, n_in), T (n, n_out), weights (n,); with ``noise``, the loss of
    the network thinned by that dropout."""
    _, z_out = hidden_forward(xp, params, X, spec, noise)
    w, n = _column(xp, weights, T)
    _, loss_sum, _ = spec.out.evaluate(xp, z_out, T, w)
    return _mean_loss(xp, params, loss_sum, n, spec, reg)


def loss_and_grads(
    xp: ModuleType,
    params: Params,
    X: Array,
    T: Array,
    spec: Spec,
    reg: float = 0.0,
    reduction: str = "mean",
    weights: Array | None = None,
    *,
    with_loss: bool = True,
    noise: dropout.Dropout | None = None,
) -> tuple[Array | None, Params]:
    """Return ``(loss, grads)``: the 0-d loss at ``params`` (None without ``with_loss``: the
    gradients alone cost less) and a dict of gradients shaped like ``params`` (summed over
    samples for ``reduction="sum"``, averaged for ``"mean"``; each sample's part times its
    weight in ``weights`` (n,) when given), of the network thinned by ``noise`` if given."""
    validation.one_of(REDUCTIONS, reduction, "reduction")
    return backprop(xp, params, X, T, spec, reg, reduction, weights, with_loss, noise)


def backprop(
    xp: ModuleType,
    params: Params,
    X: Array,
    T: Array,
    spec: Spec,
    reg: float,
    reduction: str,
    weights: Array | None,
    with_loss: bool,
    noise: dropout.Dropout | None = None,
) -> tuple[Array | None, Params]:
    """:func:`loss_and_grads` for settings checked before (a compiled step checks nothing)."""
    act = spec.act
    acts, zs, dropped, z_out = _forward(xp, params, X, spec, act.needs_z, noise)
    w, n = _column(xp, weights, T)
    # d loss_sum / dz_L, and the loss itself where asked
    _, loss_sum, delta = spec.out.evaluate(xp, z_out, T, w, with_loss)
    value = None if loss_sum is None else _mean_loss(xp, params, loss_sum, n, spec, reg)
    scale = 1.0 / n if reduction == "mean" else None

    grads: Params = {}
    for layer in range(spec.n_layers, 0, -1):
        W = params[f"W{layer}"]
        grads[f"W{layer}"] = fused.weight_grad(xp, acts[layer - 1], delta, W, reg)
        if spec.bias:
            grads[f"b{layer}"] = xp.sum(delta, axis=0)
        if layer > 1:  # no gradient is needed for the input itself
            kept = dropped[layer - 1]
            if kept is None:
                back, a = fused.back(xp, delta, W), acts[layer - 1]
            else:  # through the multiplier, then the activation before it
                a, m = kept
                back = fused.back(xp, delta, W) * m
            delta = fused.activation_backward(xp, act, back, zs[layer - 1], a)
    if scale is not None:
        grads = {k: g * scale for k, g in grads.items()}
    return value, {k: grads[k] for k in params}

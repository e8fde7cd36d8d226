"""The peers xpnet is measured against, each written the way its users write it, and xpnet itself.

Every ``*_full(problem, passes)`` returns a runner doing ``passes`` full-batch gradient-descent
passes of a tanh MLP with a softmax cross-entropy output; every ``*_epoch(problem, batch)`` one
epoch of mini-batch steps (``batch`` rows each, shuffled). All start from the same weights
(``problem.params``) and take the same kind of step ``W -= lr * dW`` (mean gradients unless the
problem says ``reduction="sum"``, as the seed does), on the problem's ``device`` (``cpu`` or
``gpu``: xpnet, PyTorch and JAX there; the seed's loop and scikit-learn run only on the CPU and
are left out elsewhere). A runner waits for its device before it returns, and returns the seconds
of its training loop when it can time itself, else None.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import Runner, device_peak, finish, measure_interleaved, table
from seed_numpy import train as seed_train

from xpnet import Network, backends, mlp, optim, train
from xpnet.init import initial_params


@dataclass
class Problem:
    """A data set and a network: X (n, d) of ``dtype``, labels y (n,) in 0..k-1, hidden sizes."""

    X: np.ndarray
    y: np.ndarray
    hidden: tuple[int, ...]
    dtype: str
    lr: float
    reg: float
    reduction: str = "mean"
    device: str = "cpu"
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=self.dtype)
        self.k = int(self.y.max()) + 1
        self.sizes = (self.X.shape[1], *self.hidden, self.k)
        self.spec = mlp.Spec(self.sizes)
        # The seed's initial weights (as Network draws them) for every implementation.
        self.params = {
            k: v.astype(self.dtype) for k, v in initial_params(self.spec, "britz").items()
        }

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def on(self, backend: str) -> tuple[backends.Backend, Any, Any, dict[str, Any]]:
        """``(backend, X, one-hot T, params)`` moved to ``backend`` on the problem's device."""
        be = backends.select(backend, self.device, self.dtype)
        T = be.asarray(np.eye(self.k)[self.y])
        return be, be.asarray(self.X), T, be.tree_asarray(self.params)

    def seed_model(self) -> dict[str, np.ndarray]:
        """A fresh copy of the weights in the seed's layout (biases as (1, h) rows)."""
        return {k: v.reshape(1, -1).copy() if k[0] == "b" else v.copy()
                for k, v in self.params.items()}  # fmt: skip

    @property
    def step_lr(self) -> float:
        """The rate on summed gradients that makes the step ``lr`` asks for."""
        return self.lr if self.reduction == "sum" else self.lr / self.n

    @property
    def mean_lr(self) -> float:
        """The rate on mean gradients that makes the step ``lr`` asks for."""
        return self.lr * self.n if self.reduction == "sum" else self.lr


class LeftOut(Exception):
    """A peer that cannot run here (its library is missing, or it has no such device)."""


def _on_cpu(p: Problem, name: str) -> None:
    if p.device != "cpu":
        raise LeftOut(f"{name} runs only on the CPU")


# -- the seed's own NumPy style -----------------------------------------------------------------
def numpy_loop_full(p: Problem, passes: int) -> Runner:
    """The seed's hand-written loop (benchmarks/seed_numpy.py): summed gradients, in place."""
    _on_cpu(p, "the seed's NumPy loop")
    if len(p.hidden) != 1:
        raise ValueError("the seed's loop has one hidden layer")
    lr = p.step_lr  # the seed sums gradients (and adds reg * W to them): lr / n is the mean step

    def run() -> None:
        seed_train(p.seed_model(), p.X, p.y, passes, lr, p.reg, print_every=0)

    return run


def _one_hidden(p: Problem, who: str) -> None:
    if len(p.hidden) != 1:
        raise LeftOut(f"{who} has one hidden layer")


def numpy_clean_full(p: Problem, passes: int, keep: dict[str, Any] | None = None) -> Runner:
    """The same steps as the seed's loop written cleanly in NumPy, as a careful user writes
    them: the one-hot targets made once, a stable softmax, every update and most temporaries in
    place (what xpnet's NumPy backend is measured against on small problems). ``keep``: a dict
    that receives the final weights (the tests check the steps)."""
    _on_cpu(p, "the clean NumPy loop")
    _one_hidden(p, "the clean NumPy loop")
    lr, reg, X = p.step_lr, p.reg, p.X
    T = np.eye(p.k, dtype=p.dtype)[p.y]

    def run() -> None:
        W1, b1, W2, b2 = (p.params[k].copy() for k in ("W1", "b1", "W2", "b2"))
        for _ in range(passes):
            a1 = X @ W1
            a1 += b1
            np.tanh(a1, out=a1)
            z = a1 @ W2
            z += b2
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            z -= T  # the output delta, summed over samples below
            d1 = z @ W2.T
            d1 *= 1 - a1 * a1
            dW2 = a1.T @ z
            dW2 += reg * W2
            dW1 = X.T @ d1
            dW1 += reg * W1
            W1 -= lr * dW1
            b1 -= lr * d1.sum(axis=0)
            W2 -= lr * dW2
            b2 -= lr * z.sum(axis=0)
        if keep is not None:
            keep.update(W1=W1, b1=b1, W2=W2, b2=b2)

    return run


# -- scikit-learn -------------------------------------------------------------------------------
def _sklearn(p: Problem, batch: int, shuffle: bool) -> Any:
    from sklearn.neural_network import MLPClassifier

    _on_cpu(p, "scikit-learn")
    est = MLPClassifier(hidden_layer_sizes=p.hidden, activation="tanh", solver="sgd",
                        learning_rate_init=p.mean_lr, alpha=p.reg, momentum=0.0,
                        nesterovs_momentum=False, batch_size=batch, shuffle=shuffle,
                        random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(p.X, p.y, classes=np.arange(p.k))  # initialises (not timed)
    return est


def sklearn_full(p: Problem, passes: int) -> Runner:
    """``MLPClassifier(solver="sgd", momentum=0, batch_size=n).partial_fit`` once per pass."""
    est = _sklearn(p, p.n, shuffle=False)

    def run() -> None:
        for _ in range(passes):
            est.partial_fit(p.X, p.y)

    return run


def sklearn_epoch(p: Problem, batch: int) -> Runner:
    """One ``partial_fit`` call: one shuffled epoch of ``batch``-row steps."""
    est = _sklearn(p, batch, shuffle=True)
    return lambda: est.partial_fit(p.X, p.y) and None


# -- PyTorch eager ------------------------------------------------------------------------------
def _torch_device(p: Problem) -> Any:
    import torch

    return torch.device("cuda" if p.device.startswith("gpu") else "cpu")


def _torch_sync(p: Problem) -> None:
    import torch

    if p.device.startswith("gpu"):
        torch.cuda.synchronize()


def _torch_model(p: Problem) -> tuple[Any, Any, Any, Any]:
    import torch

    dtype = getattr(torch, p.dtype)
    device = _torch_device(p)
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(p.sizes, p.sizes[1:], strict=False), 1):
        lin = torch.nn.Linear(a, b, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(p.params[f"W{i}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(p.params[f"b{i}"]))
        layers += [lin, torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers[:-1]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=p.mean_lr, weight_decay=p.reg / p.n)
    X = torch.from_numpy(p.X).to(device)
    y = torch.from_numpy(p.y.astype(np.int64)).to(device)
    return model, opt, X, y


def torch_full(p: Problem, passes: int) -> Runner:
    """``nn.Sequential`` of ``nn.Linear`` + ``nn.Tanh``, ``cross_entropy``, autograd,
    ``torch.optim.SGD`` (weight decay for the L2 term)."""
    import torch

    model, opt, X, y = _torch_model(p)

    def run() -> None:
        with _precise("torch", p):
            for _ in range(passes):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(X), y).backward()
                opt.step()
            _torch_sync(p)

    return run


def torch_manual_full(p: Problem, passes: int, keep: dict[str, Any] | None = None) -> Runner:
    """The same math written by hand in PyTorch eager, no autograd: ``addmm`` forward, the
    softmax's delta, the weight gradients as products and ``tanh_backward``, in-place updates
    (what a PyTorch user writes who writes the backward pass, as xpnet does); ``keep`` as in
    :func:`numpy_clean_full`."""
    import torch

    _one_hidden(p, "the hand-written torch loop")
    device, dtype = _torch_device(p), getattr(torch, p.dtype)
    put = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device, dtype)  # noqa: E731
    X, T = put(p.X), put(np.eye(p.k)[p.y])
    lr, reg = p.step_lr, p.reg
    back = torch.ops.aten.tanh_backward

    def run() -> None:
        W1, b1, W2, b2 = (put(p.params[k]) for k in ("W1", "b1", "W2", "b2"))
        with _precise("torch", p), torch.no_grad():
            for _ in range(passes):
                a1 = torch.tanh(torch.addmm(b1, X, W1))
                delta = torch.softmax(torch.addmm(b2, a1, W2), dim=1).sub_(T)
                d1 = back(delta @ W2.T, a1)
                W2.sub_(torch.addmm(W2, a1.T, delta, beta=reg), alpha=lr)
                b2.sub_(delta.sum(0), alpha=lr)
                W1.sub_(torch.addmm(W1, X.T, d1, beta=reg), alpha=lr)
                b1.sub_(d1.sum(0), alpha=lr)
            _torch_sync(p)
        if keep is not None:
            keep.update({k: v.cpu().numpy() for k, v in zip(("W1", "b1", "W2", "b2"),
                                                            (W1, b1, W2, b2), strict=True)})  # fmt: skip

    return run


def torch_epoch(p: Problem, batch: int) -> Runner:
    import torch

    model, opt, X, y = _torch_model(p)
    gen = torch.Generator().manual_seed(0)

    def run() -> None:
        with _precise("torch", p):
            for rows in torch.randperm(p.n, generator=gen).split(batch):
                rows = rows.to(X.device)
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
                opt.step()
            _torch_sync(p)

    return run


def _precise(library: str, p: Problem) -> Any:
    """The float32 matrix-product precision xpnet runs at (:func:`xpnet.backends.precision`),
    for a peer written in ``library`` directly: every figure of a run compares one precision
    (a GPU's default would give the plain loops TF32 and xpnet full float32)."""
    return backends.select(library, p.device, p.dtype).activate()


# -- plain JAX ----------------------------------------------------------------------------------
def _jax_loss(p: Problem) -> Any:
    import jax
    import jax.numpy as jnp

    n_layers = len(p.sizes) - 1

    def loss(params: dict[str, Any], X: Any, y: Any) -> Any:
        a = X
        for i in range(1, n_layers):
            a = jnp.tanh(a @ params[f"W{i}"] + params[f"b{i}"])
        z = a @ params[f"W{n_layers}"] + params[f"b{n_layers}"]
        data = -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1).mean()
        penalty = sum(jnp.sum(params[f"W{i}"] ** 2) for i in range(1, n_layers + 1))
        return data + p.reg / (2 * X.shape[0]) * penalty

    return loss


def _jax_setup(p: Problem) -> tuple[Any, Any, Any, Any]:
    import jax

    device = backends.select("jax", p.device, p.dtype).device  # float64 enabled when asked
    params = jax.device_put(p.params, device)
    return jax, params, jax.device_put(p.X, device), jax.device_put(p.y.astype(np.int32), device)


def jax_full(p: Problem, passes: int) -> Runner:
    """``jax.grad`` of a hand-written loss, the whole loop in one ``jax.jit``-compiled
    ``lax.fori_loop``."""
    jax, params, X, y = _jax_setup(p)
    grad = jax.grad(_jax_loss(p))
    lr = p.mean_lr

    @jax.jit
    def loop(params: Any, X: Any, y: Any) -> Any:
        def body(_: Any, q: Any) -> Any:
            g = grad(q, X, y)
            return jax.tree.map(lambda w, d: w - lr * d, q, g)

        return jax.lax.fori_loop(0, passes, body, params)

    def run() -> None:
        with _precise("jax", p):  # traced (first call) and run at the precision xpnet uses
            jax.block_until_ready(loop(params, X, y))

    return run


def jax_epoch(p: Problem, batch: int) -> Runner:
    """A ``jax.jit``-compiled step called from a Python loop over shuffled batches (the data on
    the device, each batch gathered there)."""
    jax, params0, X, y = _jax_setup(p)
    grad = jax.grad(_jax_loss(p))
    lr = p.mean_lr
    rng = np.random.default_rng(0)

    @jax.jit
    def step(params: Any, rows: Any) -> Any:
        g = grad(params, X[rows], y[rows])
        return jax.tree.map(lambda w, d: w - lr * d, params, g)

    state = {"params": params0}

    def run() -> None:
        order = rng.permutation(p.n).astype(np.int32)
        params = state["params"]
        with _precise("jax", p):
            for start in range(0, p.n, batch):
                params = step(params, jax.device_put(order[start : start + batch]))
            state["params"] = jax.block_until_ready(params)

    return run


# -- xpnet --------------------------------------------------------------------------------------
def xpnet_full(p: Problem, passes: int, backend: str, loss_every: int | None = None) -> Runner:
    """``Network.fit`` on ``backend`` (CPU) with the seed's tanh units and weights, timed by its
    own ``fit_seconds_`` (the training loop: device work and the loss checks included, data
    transfer and set-up not). The loss is recorded every ``loss_every`` passes (default: the
    first and the last pass only, as the peers compute no loss either)."""

    def run() -> float:
        net = Network(p.hidden, activation="tanh", init="britz", backend=backend, device=p.device,
                      dtype=p.dtype)  # fmt: skip
        net.fit(p.X, p.y, epochs=passes, lr=p.lr, reg=p.reg, reduction=p.reduction,
                chunk_size=passes, loss_every=loss_every or passes, interruptible=False)  # fmt: skip
        return float(net.fit_seconds_)

    return run


def xpnet_epoch(p: Problem, batch: int, backend: str) -> Runner:
    """xpnet's compiled mini-batch epoch (:func:`xpnet.train.epoch`, what the engine runs for
    ``Network.fit(batch_size=...)`` and ``MLPClassifier(solver="sgd")``), the data already on
    the device."""
    be, X, T, params = p.on(backend)
    opt = optim.sgd(p.lr)
    epoch = train.epoch(be, train.Objective(p.spec, p.reg, "mean"), opt, p.n, batch)
    rng = np.random.default_rng(0)
    state = {"carry": (params, opt.init(be.xp, params))}

    def run() -> None:
        order = be.asarray(rng.permutation(p.n), dtype="int32")
        carry, loss = epoch(state["carry"], X, T, order)
        be.sync(loss)
        state["carry"] = carry

    return run


# -- one comparison -----------------------------------------------------------------------------
PEERS = ["numpy loop", "numpy clean", "scikit-learn", "torch eager", "torch manual", "jax.jit"]
"""Peer names, in table order."""
COMPILED = {"jax.jit"}
"""Peers whose first run compiles (its extra time is shown as compile time)."""


def compare(
    runners: dict[str, tuple[str, Any, int]],
    repeats: int,
    flops: float | None,
    limits: dict[str, float],
) -> list[dict[str, Any]]:
    """Measure each ``name: (kind, make, per_run)`` (``make()`` returns a runner doing
    ``per_run`` passes; kind is "xpnet" or "peer") and return rows with seconds per pass, plus
    one row per limit (seconds per pass). A runner that cannot be built here (library missing)
    is left out with a printed reason."""
    built: dict[str, Runner] = {}
    for name, (_, make, _) in runners.items():
        try:
            built[name] = make()
        except (ImportError, LeftOut) as exc:
            print(f"# {name}: left out ({exc})")
        except Exception as exc:  # the library failed (a CUDA or NVRTC error): that one only
            first = (str(exc).strip().splitlines() or [""])[0]
            print(f"# {name}: failed, left out ({type(exc).__name__}: {first})")
    times = measure_interleaved(built, repeats)  # repeats taken in turn: drift hits all alike
    rows: list[dict[str, Any]] = []
    for name, m in times.items():
        kind, _, per_run = runners[name]
        rows.append({"impl": name, "kind": kind, "seconds": m["seconds"] / per_run,
                     "compile_s": m["compile"] if kind == "xpnet" or name in COMPILED else None,
                     "first_s": m["first"]})  # fmt: skip
        print(f"#   {name}: {rows[-1]['seconds'] * 1e3:.4g} ms/pass", flush=True)
    for name, seconds in limits.items():
        rows.append({"impl": name, "kind": "limit", "seconds": seconds, "compile_s": None})
    limit = min(limits.values()) if limits else None
    return finish(rows, flops, limit, [p for p in PEERS if any(r["impl"] == p for r in rows)])


def text(result: dict[str, Any]) -> str:
    """A workload's tables (full batch, and mini-batch epochs where measured)."""
    if "epoch_rows" not in result:
        return table(result["rows"], PEERS)
    return "\n".join(["full batch, per pass", table(result["rows"], PEERS),
                      f"mini-batch {result['batch']}, per epoch",
                      table(result["epoch_rows"], PEERS)])  # fmt: skip


Measure = Callable[[bool, str, int, float, str], dict[str, Any]]


def script(doc: str, measure_workload: Measure, show: Callable[[dict[str, Any]], str],
           backends: str = "numpy,jax,torch") -> None:  # fmt: skip
    """The command line of one workload script: run it, print its tables, write ``--json``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default=backends)
    parser.add_argument("--device", default="cpu", help="cpu or gpu: xpnet and its peers there")
    parser.add_argument("--gemm", type=float, help="GEMM peak in GFLOP/s (default: measure)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    gemm = args.gemm * 1e9 if args.gemm else device_peak(args.device, 2048)
    result = measure_workload(args.quick, args.backends, args.repeats, gemm, args.device)
    print(result["setting"])
    print(show(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")

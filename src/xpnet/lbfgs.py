"""Full-batch training by L-BFGS: SciPy's L-BFGS-B drives, xpnet's math computes.

SciPy (as scikit-learn's MLP does) keeps the search on the host in float64; each evaluation
sends it the loss and gradient that :func:`xpnet.mlp.loss_and_grads` computes on the selected
backend, so only the flat parameter vector crosses between host and device. The vector packs the
weights of every layer, then the biases (scikit-learn's order), each in C order. Dense data goes to
the device once; sparse data (SciPy CSR) is densified on the host :data:`BLOCK_ROWS` rows at a time
each evaluation, so memory stays bounded. Needs SciPy (``pip install 'xpnet[data]'``).

:class:`Iterations` hands over one iteration at a time, SciPy running in a worker thread, so that
the training engine drives L-BFGS like any other solver (chunks, progress, checkpoints,
Ctrl-C), for every front-end (:class:`xpnet.feeds.LBFGS`).
"""

from __future__ import annotations

import contextvars
import queue
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from xpnet import mlp
from xpnet._typing import HostParams
from xpnet.backends import Backend
from xpnet.train import Objective, cached

BLOCK_ROWS = 65536
"""Rows densified at a time for sparse inputs."""


def names(spec: mlp.Spec) -> list[str]:
    """The parameters in packing order: W1..WL, then b1..bL."""
    shapes = spec.param_shapes()
    return [k for k in shapes if k.startswith("W")] + [k for k in shapes if k.startswith("b")]


def pack(spec: mlp.Spec, params: HostParams) -> np.ndarray:
    """Return the flat float64 vector of ``params`` (see :func:`names`)."""
    return np.concatenate([np.ravel(params[k]).astype(np.float64) for k in names(spec)])


def unpack(spec: mlp.Spec, flat: np.ndarray, dtype: Any = np.float64) -> HostParams:
    """Return the parameters of the flat vector ``flat`` (:func:`pack`'s inverse) as ``dtype``."""
    shapes, out, start = spec.param_shapes(), {}, 0
    for k in names(spec):
        size = int(np.prod(shapes[k]))
        out[k] = np.asarray(flat[start : start + size], dtype=dtype).reshape(shapes[k])
        start += size
    return {k: out[k] for k in shapes}


def _sparse(X: Any) -> bool:
    return hasattr(X, "toarray")


def value_and_grad(
    backend: Backend, objective: Objective, X: Any, T: np.ndarray, weights: np.ndarray | None
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Return ``f(flat) -> (loss, flat gradient)`` (float64 host values) of the mean objective on
    host X (n, n_in) (dense or SciPy sparse), targets T (n, n_out) and sample weights (n,) or
    None, computed on ``backend``."""
    spec, reg = objective.spec, objective.reg
    summed = Objective(spec, 0.0, "sum")

    def build() -> Any:
        xp = backend.xp

        def sums(params: Any, Xb: Any, Tb: Any, wb: Any) -> Any:
            # (sum_i w_i loss_i, its gradient): the penalty is added once, on the host
            value, grads = mlp.backprop(xp, params, Xb, Tb, spec, 0.0, "sum", wb, True)
            return value * (Tb.shape[0] if wb is None else xp.sum(wb)), grads

        return backend.jit(sums)

    program = cached(("lbfgs", *backend.where(), summed, weights is not None), build)
    total = float(T.shape[0] if weights is None else np.sum(weights))
    if _sparse(X):
        blocks = [slice(i, i + BLOCK_ROWS) for i in range(0, X.shape[0], BLOCK_ROWS)]
        data = None
    else:
        blocks = [slice(0, X.shape[0])]
        data = [backend.asarray(X), backend.asarray(T),
                None if weights is None else backend.asarray(weights)]  # fmt: skip

    def f(flat: np.ndarray) -> tuple[float, np.ndarray]:
        host = unpack(spec, flat, backend.dtype_name)
        params = backend.tree_asarray(host)
        value, grads = 0.0, {k: np.zeros(v.shape) for k, v in host.items()}
        with backend.activate(), np.errstate(over="ignore", invalid="ignore"):
            for rows in blocks:
                if data is None:
                    Xb = backend.asarray(X[rows].toarray())
                    Tb = backend.asarray(T[rows])
                    wb = None if weights is None else backend.asarray(weights[rows])
                else:
                    Xb, Tb, wb = data
                v, g = program(params, Xb, Tb, wb)
                value += float(backend.to_numpy(v))
                for k in grads:
                    grads[k] += backend.to_numpy(g[k])
            penalty = 0.0
            for k, W in host.items():
                if k.startswith("W") and reg:
                    W64 = W.astype(np.float64)
                    penalty += float(np.dot(W64.ravel(), W64.ravel()))
                    grads[k] += reg * W64
        return (value + reg / 2 * penalty) / total, pack(spec, grads) / total

    return f


class Iterations:
    """SciPy's L-BFGS-B from ``params`` on the mean objective, one iteration at a time:
    :meth:`step` returns the parameters (host, the backend's dtype) and the loss after the next
    iteration, or None once SciPy has stopped by itself (:attr:`message` says why: converged, or
    ``max_fun`` evaluations spent); :meth:`close` ends the search early. SciPy runs in a worker
    thread that waits between iterations, so nothing is computed ahead."""

    def __init__(
        self,
        backend: Backend,
        objective: Objective,
        params: HostParams,
        X: Any,
        T: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        max_fun: int = 15000,
        tol: float = 1e-4,
    ) -> None:
        self.spec, self.dtype, self.params = objective.spec, backend.dtype_name, params
        """The starting parameters."""
        self._f = value_and_grad(backend, objective, X, T, weights)
        self._x0 = pack(self.spec, params)
        self._max_fun, self._tol = max_fun, tol
        self._go: queue.Queue[bool] = queue.Queue()
        self._out: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.finished = False
        self.message: str | None = None
        """Why SciPy stopped by itself (None while it has not)."""
        self.converged = False
        """Whether SciPy stopped by itself because it converged."""

    def initial_loss(self) -> float:
        """The loss at the starting parameters."""
        return float(self._f(self._x0)[0])

    def _work(self) -> None:
        def after_iteration(intermediate_result: Any) -> None:
            self._out.put(("iteration", (intermediate_result.x.copy(),
                                         float(intermediate_result.fun))))  # fmt: skip
            if not self._go.get():
                raise StopIteration  # SciPy ends the search and returns

        try:
            import scipy.optimize

            # iterations are counted by whoever calls step(): SciPy's own limit never binds
            res = scipy.optimize.minimize(
                self._f, self._x0, method="L-BFGS-B", jac=True, callback=after_iteration,
                options={"maxfun": self._max_fun, "maxiter": 2**31 - 1, "gtol": self._tol},
            )  # fmt: skip
            message = res.message.decode() if isinstance(res.message, bytes) else str(res.message)
            self._out.put(("done", (res.status == 0, message)))
        except BaseException as exc:  # handed to the caller's thread
            self._out.put(("error", exc))

    def step(self) -> tuple[HostParams, float] | None:
        """The parameters and loss after the next iteration; None once SciPy has stopped."""
        if self.finished:
            return None
        if self._thread is None:
            # in the caller's context: its fit's scratch memory (xpnet.scratch), fused.generic()
            context = contextvars.copy_context()
            self._thread = threading.Thread(target=context.run, args=(self._work,),
                                            name="xpnet-lbfgs", daemon=True)  # fmt: skip
            self._thread.start()
        else:
            self._go.put(True)
        kind, value = self._out.get()
        if kind == "iteration":
            flat, loss = value
            return unpack(self.spec, flat, self.dtype), loss
        self.finished = True
        if kind == "error":
            raise value
        self.converged, self.message = value
        return None

    def close(self) -> None:
        """End the search (if SciPy is still waiting for the next iteration) and its thread."""
        if self._thread is not None and not self.finished:
            self.finished = True
            self._go.put(False)
            while self._out.get()[0] == "iteration":  # one may come first (stopped mid-way)
                pass  # then SciPy's return (or its error), after the StopIteration
        if self._thread is not None:
            self._thread.join()


def warn_unconverged(iterations: int, max_iter: int, message: str,
                     category: type[Warning]) -> None:  # fmt: skip
    """Warn as scikit-learn does when L-BFGS stopped before converging (``message``: why)."""
    warnings.warn(f"lbfgs failed to converge after {iterations} iteration(s) "
                  f"(max_iter={max_iter}): {message}. Increase max_iter or max_fun, or scale the "
                  "data", category, stacklevel=3)  # fmt: skip

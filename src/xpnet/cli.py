"""The ``xpnet`` command line: the only module that prints.

``xpnet train`` with no options reproduces seed 000 (moons 200, hidden 3, tanh, softmax, reg 0.01,
epsilon 0.01, 20000 passes) on the selected backend. ``xpnet backends`` lists what is usable here.
Every deliberate error is printed as one line ``xpnet: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import __version__, backends, data
from xpnet.errors import ConfigError, DivergenceError, XpnetError


def parse_hidden(text: str) -> tuple[int, ...]:
    """Return hidden sizes from '3', '10,10' or '' (no hidden layer)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"--hidden must be comma-separated positive integers, e.g. 3 or 10,10; got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise ConfigError(f"--hidden sizes must be positive; got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnet",
        description="Neural networks written once, run on NumPy, JAX, CuPy or PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train on moons (seed 000 by default) and report the loss")
    t.add_argument("--backend", choices=None, help=f"one of {', '.join(backends.BACKENDS)} "
                   f"(default: ${backends.ENV_VAR} or numpy)")  # fmt: skip
    t.add_argument("--device", help="cpu, gpu, gpu:N or an index N (default: the backend's own)")
    t.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    t.add_argument("--hidden", default="3", help="hidden sizes, e.g. 3 or 10,10; '' for none")
    t.add_argument("--activation", default="tanh", help="tanh, sigmoid, relu or identity")
    t.add_argument("--epochs", type=_positive_int, default=20000, help="full-batch passes")
    t.add_argument("--lr", type=float, default=0.01, help="step size epsilon (default 0.01)")
    t.add_argument("--reg", type=float, default=0.01, help="L2 strength on weights (default 0.01)")
    t.add_argument("--reduction", default="sum", help="gradient over samples: sum (seed) or mean")
    t.add_argument("--n-samples", type=_positive_int, default=200, help="moons samples")
    t.add_argument("--noise", type=float, default=0.2, help="moons noise (default 0.2)")
    t.add_argument("--data-seed", type=int, default=0, help="seed of the data set (default 0)")
    t.add_argument("--init-seed", type=int, default=0, help="seed of the initial weights")
    t.add_argument("--print-every", type=_positive_int, default=1000, help="log interval")
    t.add_argument("--quiet", action="store_true", help="print only the final accuracy")
    t.add_argument("--plot", metavar="FILE", help="write the decision boundary as a PNG")
    t.add_argument("--metrics-out", metavar="FILE", help="write a JSON summary with every loss")

    sub.add_parser("backends", help="list backends: installed, version, devices, usable")
    return parser


def _train(args: argparse.Namespace) -> int:
    from xpnet.model import Network

    name = backends.resolve_name(args.backend)
    hidden = parse_hidden(args.hidden)
    if not (args.noise >= 0):
        raise ConfigError(f"--noise must be >= 0; got {args.noise}")
    net = Network(
        hidden, activation=args.activation, init="britz", init_seed=args.init_seed,
        backend=name, device=args.device, dtype=args.dtype,
    )  # fmt: skip
    X, y = data.moons(args.n_samples, args.noise, args.data_seed)
    if args.plot:  # fail on a missing matplotlib before training, not after
        from xpnet.plotting import _pyplot

        _pyplot()

    def report(first: int, losses: np.ndarray, params: Any) -> None:
        for i in range(first, first + losses.size):
            if i % args.print_every == 0:
                print("Loss after iteration %i: %f" % (i, losses[i - first]), flush=True)

    chunk = args.print_every if not args.quiet else None
    try:
        net.fit(
            X, y, epochs=args.epochs, lr=args.lr, reg=args.reg, reduction=args.reduction,
            chunk_size=chunk, on_chunk=None if args.quiet else report,
        )  # fmt: skip
    except DivergenceError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return 3
    accuracy = net.score(X, y)
    print(f"Training accuracy: {accuracy:.3f}")
    backend = net.backend_
    if args.metrics_out:
        metrics = {
            "backend": backend.name,
            "backend_version": backend.version,
            "device": backend.device_label,
            "dtype": backend.dtype_name,
            "hidden": list(hidden),
            "activation": args.activation,
            "epochs": args.epochs,
            "lr": args.lr,
            "reg": args.reg,
            "reduction": args.reduction,
            "losses": net.loss_curve_.tolist(),
            "final_loss": float(net.loss_curve_[-1]),
            "accuracy": accuracy,
            "train_seconds": net.fit_seconds_,
        }
        Path(args.metrics_out).write_text(json.dumps(metrics, indent=1) + "\n")
    if args.plot:
        from xpnet.plotting import decision_boundary

        title = f"Hidden Layer size {','.join(map(str, hidden)) or 0} ({backend.name})"
        decision_boundary(net.predict, X, y, args.plot, title=title)
        print(f"Decision boundary written to {args.plot}")
    return 0


def _backends() -> int:
    rows = [backends.describe(name) for name in backends.BACKENDS]
    print(f"{'backend':<8} {'installed':<9} {'version':<14} {'usable':<6} devices / why not")
    for r in rows:
        detail = ", ".join(r["devices"]) if r["usable"] else r["why"]
        print(
            f"{r['backend']:<8} {'yes' if r['installed'] else 'no':<9} "
            f"{r['version'] or '-':<14} {'yes' if r['usable'] else 'no':<6} {detail}"
        )
    env = os.environ.get(backends.ENV_VAR)
    print(
        f"default: {env or backends.DEFAULT_BACKEND}"
        + (f" (from ${backends.ENV_VAR})" if env else "")
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        return _backends()
    except XpnetError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130

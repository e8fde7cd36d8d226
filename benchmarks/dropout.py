"""The cost of dropout (issue 24): the wide workload (60000 x 784 -> 256 -> 10, float32; see
``wide.py``) trained with and without dropout on the hidden layer, per full-batch pass (the slope
of 2- and 5-pass chunks, so compiling and the final loss drop out) and per epoch of 256-row
mini-batches, each measured interleaved with its peer in the same run. The masks are xpnet's
counter-based hash (:mod:`xpnet.dropout`), computed on the device inside the compiled step.

    python benchmarks/dropout.py [--quick] [--backends jax,numpy,torch] [--rate 0.5] [--json FILE]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import wide
from common import (
    machine,
    measure_interleaved,
    repeats_of,
    save_json,
    script_parser,
    usable_backends,
)

from xpnet import dropout, optim, train

PASSES = (2, 5)


def _draw(be: Any, n: int, width: int, rows: Any = None) -> dropout.Draw:
    put = lambda a: be.asarray(np.asarray(a, np.int32), np.int32)  # noqa: E731
    return dropout.Draw(put(dropout.seed_words(0)), put(0),
                        put(np.arange(n)) if rows is None else rows, put(np.arange(width)))  # fmt: skip


def runners(p: Any, backend: str, rate: float) -> dict[str, Any]:
    """``{label: run()}``: full-batch chunks of 2 and 5 passes and a mini-batch epoch, with
    dropout ``rate`` and without."""
    be, X, T, params = p.on(backend)
    opt = optim.sgd(p.lr)
    order = be.asarray(np.random.default_rng(0).permutation(p.n), np.int32)
    out: dict[str, Any] = {}
    for label, r in (("plain", 0.0), ("dropout", rate)):
        objective = train.Objective(p.spec, p.reg, "mean", r)
        draw = _draw(be, p.n, 256) if r else None
        carry = (params, opt.init(be.xp, params))
        for k in PASSES:
            chunk = train.full_batch(be, objective, opt, (("P", k), ("M",)))

            def full(chunk: Any = chunk, draw: Any = draw, carry: Any = carry) -> None:
                with be.activate():
                    be.sync(chunk(carry, X, T, None, draw)[1])

            out[f"{label}/full{k}"] = full
        epoch = train.epoch(be, objective, opt, p.n, wide.BATCH)

        def batches(epoch: Any = epoch, draw: Any = draw, carry: Any = carry) -> None:
            with be.activate():
                be.sync(epoch(carry, X, T, order, None, draw)[1])

        out[f"{label}/epoch"] = batches
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = script_parser(__doc__, "8192 rows", 3)
    parser.add_argument("--backends", default="jax")
    parser.add_argument("--rate", type=float, default=0.5)
    args = parser.parse_args(argv)
    p = wide.problem(8192 if args.quick else 60000)
    repeats = repeats_of(args)
    report: dict[str, Any] = {"machine": machine(), "rows": p.n, "rate": args.rate, "results": {}}
    print(f"dropout {args.rate} on {machine()}: {p.n} x 784 -> 256 -> 10, float32")
    print(f"{'backend':8} {'pass plain':>11} {'pass drop':>10} {'ratio':>6} "
          f"{'epoch plain':>12} {'epoch drop':>11} {'ratio':>6}")  # fmt: skip
    for backend in usable_backends(args.backends, "float32"):
        got = measure_interleaved(runners(p, backend, args.rate), repeats)
        row: dict[str, float] = {}
        for label in ("plain", "dropout"):
            five, two = got[f"{label}/full5"]["seconds"], got[f"{label}/full2"]["seconds"]
            row[f"{label}_pass"] = (five - two) / (PASSES[1] - PASSES[0])
            row[f"{label}_epoch"] = got[f"{label}/epoch"]["seconds"]
        row["pass_ratio"] = row["dropout_pass"] / row["plain_pass"]
        row["epoch_ratio"] = row["dropout_epoch"] / row["plain_epoch"]
        report["results"][backend] = row
        print(f"{backend:8} {row['plain_pass'] * 1e3:9.1f}ms {row['dropout_pass'] * 1e3:8.1f}ms "
              f"{row['pass_ratio']:6.3f} {row['plain_epoch'] * 1e3:10.1f}ms "
              f"{row['dropout_epoch'] * 1e3:9.1f}ms {row['epoch_ratio']:6.3f}")  # fmt: skip
    return save_json(report, args.json)


if __name__ == "__main__":
    main()

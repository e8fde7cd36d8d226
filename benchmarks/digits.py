"""Issue 5's acceptance run: scikit-learn's digits, stratified 75/25 split (random_state 0), the
settings of ``sklearn.neural_network.MLPClassifier(hidden_layer_sizes=(64,), solver="adam",
max_iter=200, random_state=0)`` for both, scikit-learn and xpnet on every usable CPU backend.
Prints test accuracy, iterations and fit time side by side; ``--json FILE`` writes them.

    python benchmarks/digits.py --json benchmarks/results/cpu2-DATE-digits.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

from common import usable_backends  # benchmarks/ is the script's own folder
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP

from xpnet.estimators import MLPClassifier

SETTINGS = {"hidden_layer_sizes": (64,), "solver": "adam", "max_iter": 200, "random_state": 0}


def _run(make, X_train, y_train, X_test, y_test) -> dict:
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
    return {"accuracy": float(est.score(X_test, y_test)), "n_iter": int(est.n_iter_),
            "fit_seconds": seconds, "final_loss": float(est.loss_curve_[-1])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,jax,torch")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)  # fmt: skip
    split = (X_train, y_train, X_test, y_test)

    rows = [{"impl": "scikit-learn MLPClassifier", **_run(lambda: SklearnMLP(**SETTINGS), *split)}]
    for name in usable_backends(args.backends):
        _run(
            lambda name=name: MLPClassifier(**SETTINGS, backend=name), *split
        )  # warm-up: JAX compiles
        rows.append({"impl": f"xpnet {name}",
                     **_run(lambda name=name: MLPClassifier(**SETTINGS, backend=name), *split)})  # fmt: skip

    print(f"{'implementation':<28} {'test accuracy':>13} {'iterations':>10} {'fit s':>7} "
          f"{'final loss':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['impl']:<28} {r['accuracy']:>13.4f} {r['n_iter']:>10} "
              f"{r['fit_seconds']:>7.2f} {r['final_loss']:>10.5f}")  # fmt: skip
    if args.json:
        meta = {"machine": platform.node(), "processor": platform.processor(),
                "python": platform.python_version(), "settings": {**SETTINGS,
                "hidden_layer_sizes": [64]}, "split": "stratified 75/25, random_state 0"}  # fmt: skip
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()

"""Workload (d): start-up time of ``import xpnet``, ``from xpnet import Network`` and
``xpnet --help`` against ``import numpy``, each in a fresh interpreter (median of repeats).

Bytecode is allowed and written on a first, untimed run (as ``pip install`` does for an installed
package), so the numbers are those a user sees from the second start on.

    python benchmarks/startup.py [--repeats 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STATEMENTS = {
    "import numpy": "import numpy",
    "import xpnet": "import xpnet",
    "from xpnet import Network": "from xpnet import Network",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def import_seconds(statement: str, repeats: int) -> float:
    """Median seconds of ``statement`` in a fresh interpreter, timed inside it."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    run = [sys.executable, "-c", code]
    subprocess.run(run, env=_env(), check=True, capture_output=True)  # writes bytecode
    return statistics.median(
        float(subprocess.run(run, env=_env(), check=True, capture_output=True, text=True).stdout)
        for _ in range(repeats)
    )


def command_seconds(command: list[str], repeats: int) -> float:
    """Median wall seconds of a whole command (interpreter start included)."""
    subprocess.run(command, env=_env(), check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(command, env=_env(), check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_workload(repeats: int) -> dict[str, Any]:
    seconds = {name: import_seconds(code, repeats) for name, code in STATEMENTS.items()}
    script = shutil.which("xpnet")
    help_cmd = [script, "--help"] if script else [sys.executable, "-m", "xpnet", "--help"]
    seconds["xpnet --help"] = command_seconds(help_cmd, repeats)
    seconds["python -c pass"] = command_seconds([sys.executable, "-c", "pass"], repeats)
    base = seconds["import numpy"]
    rows = [{"impl": k, "seconds": v, "vs_numpy": v / base if k.startswith(("import", "from"))
             else None} for k, v in seconds.items()]  # fmt: skip
    return {"name": "d: start-up", "setting": f"fresh interpreter, median of {repeats}",
            "rows": rows}  # fmt: skip


def text(result: dict[str, Any]) -> str:
    lines = [f"{'what':<28}{'ms':>8}{'/ import numpy':>16}"]
    for r in result["rows"]:
        ratio = f"{r['vs_numpy']:>16.2f}" if r["vs_numpy"] is not None else f"{'-':>16}"
        lines.append(f"{r['impl']:<28}{r['seconds'] * 1e3:>8.1f}{ratio}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    result = measure_workload(args.repeats)
    print(result["setting"])
    print(text(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
